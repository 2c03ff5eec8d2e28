//! One machine of the Lamport lab: its tick rule (receive one message, or roll for an internal
//! event or a send) and its log, one line per event in the notebook's fields.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::LabError;
use crate::trace::MessageId;

/// A message between machines: the sender's clock, and its id in the run's trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabMessage {
    /// The sending machine.
    pub from: usize,
    /// The sender's Lamport clock after the send.
    pub clock: u64,
    /// The message's id in the trace.
    pub message: MessageId,
}

/// What a machine did at one log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LabEvent {
    /// An internal event.
    Internal,
    /// Sent its clock to these machines.
    Send {
        /// The receivers.
        to: Vec<usize>,
    },
    /// Took a message from its queue.
    Receive {
        /// The sender.
        from: usize,
    },
    /// The machine stopped (the notebook logs the final clock).
    Stop,
}

/// One line of a machine's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Seconds since the run started (system time in real-time mode, virtual time simulated).
    pub time_s: f64,
    /// What happened.
    pub event: LabEvent,
    /// Messages left in the queue after this event.
    pub queue: usize,
    /// The Lamport clock after this event.
    pub clock: u64,
}

impl fmt::Display for LogEntry {
    /// `12.500000 RECEIVE from=2 queue=3 clock=17` — the notebook's fields, one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6} ", self.time_s)?;
        match &self.event {
            LabEvent::Internal => write!(f, "INTERNAL")?,
            LabEvent::Send { to } => {
                let to: Vec<String> = to.iter().map(usize::to_string).collect();
                write!(f, "SEND to={}", to.join(","))?
            }
            LabEvent::Receive { from } => write!(f, "RECEIVE from={from}")?,
            LabEvent::Stop => write!(f, "STOP")?,
        }
        write!(f, " queue={} clock={}", self.queue, self.clock)
    }
}

/// Parses a machine's log written with [`LogEntry`]'s `Display` (one entry per line).
pub fn parse_log(text: &str) -> Result<Vec<LogEntry>, LabError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason| LabError::BadLogLine {
            line: i + 1,
            reason,
            text: line.to_owned(),
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let time_s: f64 = words
            .first()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| bad("expected a time in seconds first"))?;
        let field = |name: &str| -> Option<&str> {
            words
                .iter()
                .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
        };
        let event = match words.get(1).copied() {
            Some("INTERNAL") => LabEvent::Internal,
            Some("STOP") => LabEvent::Stop,
            Some("SEND") => LabEvent::Send {
                to: field("to")
                    .ok_or_else(|| bad("a SEND needs to=…"))?
                    .split(',')
                    .map(|s| s.parse().map_err(|_| bad("to= must list machine numbers")))
                    .collect::<Result<_, _>>()?,
            },
            Some("RECEIVE") => LabEvent::Receive {
                from: field("from")
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad("a RECEIVE needs from=N"))?,
            },
            _ => return Err(bad("expected INTERNAL, SEND, RECEIVE or STOP")),
        };
        let queue = field("queue")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("missing queue=N"))?;
        let clock = field("clock")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("missing clock=N"))?;
        out.push(LogEntry {
            time_s,
            event,
            queue,
            clock,
        });
    }
    Ok(out)
}

/// What a machine decided at a tick with an empty queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// An internal event.
    Internal,
    /// Send the (already incremented) clock to these machines.
    Send {
        /// The receivers.
        to: Vec<usize>,
        /// The clock to put in the messages.
        clock: u64,
    },
}

/// One virtual machine's logic: its Lamport clock and its log. The driver (simulator or
/// real-time threads) owns the queue and the network.
#[derive(Debug, Clone)]
pub struct Machine {
    /// This machine's number, 0-based.
    pub id: usize,
    /// Ticks per second.
    pub rate: u32,
    /// The Lamport clock.
    pub clock: u64,
    /// Every event, in order.
    pub log: Vec<LogEntry>,
}

impl Machine {
    /// A machine with clock 0 and an empty log.
    pub fn new(id: usize, rate: u32) -> Self {
        Machine {
            id,
            rate,
            clock: 0,
            log: Vec::new(),
        }
    }

    /// Applies a received message taken from the queue (`queue_left` messages remain):
    /// `clock = max(clock, received) + 1`.
    pub fn receive(&mut self, now_s: f64, message: &LabMessage, queue_left: usize) {
        self.clock = self.clock.max(message.clock) + 1;
        self.log.push(LogEntry {
            time_s: now_s,
            event: LabEvent::Receive { from: message.from },
            queue: queue_left,
            clock: self.clock,
        });
    }

    /// A tick with an empty queue: roll 1–10 as the notebook does, generalised to an internal
    /// probability `p` — internal with probability `p`, otherwise (evenly) send to the next
    /// machine, to the one after it, or to all others; the clock is incremented first.
    pub fn roll<R: Rng>(&mut self, now_s: f64, machines: usize, p: f64, rng: &mut R) -> Action {
        self.clock += 1;
        let u: f64 = rng.gen();
        let action = if u < p || machines < 2 {
            Action::Internal
        } else {
            let third = (1.0 - p) / 3.0;
            let next = (self.id + 1) % machines;
            let after = (self.id + 2) % machines;
            let to = if u < p + third {
                vec![next]
            } else if u < p + 2.0 * third && after != self.id {
                vec![after]
            } else if u < p + 2.0 * third {
                vec![next]
            } else {
                (0..machines).filter(|&m| m != self.id).collect()
            };
            Action::Send {
                to,
                clock: self.clock,
            }
        };
        self.log.push(LogEntry {
            time_s: now_s,
            event: match &action {
                Action::Internal => LabEvent::Internal,
                Action::Send { to, .. } => LabEvent::Send { to: to.clone() },
            },
            queue: 0,
            clock: self.clock,
        });
        action
    }

    /// Logs the final clock when the machine stops.
    pub fn stop(&mut self, now_s: f64, queue_left: usize) {
        self.log.push(LogEntry {
            time_s: now_s,
            event: LabEvent::Stop,
            queue: queue_left,
            clock: self.clock,
        });
    }
}
