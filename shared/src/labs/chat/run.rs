//! The seeded chat run: members on the simulator, each with a FIFO layer, a causal layer and
//! a total-order layer, one event at a time ([`ChatLab::step`]).
//!
//! **Invariant:** the run is a function of its [`ChatConfig`] and the calls made; stepping it
//! event by event reaches the same state as running it at once (tested).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rand::Rng;

use super::{ChatConfig, ChatError, Departure, Trigger};
use crate::causality::holdback::{CausalMessage, HoldBackQueue};
use crate::causality::total_order::{ChatFrame, Ordered, TotalOrderBroadcast};
use crate::clocks::lamport::LamportTimestamp;
use crate::clocks::vector_clock::VectorClock;
use crate::sim::{Latency, LinkModel, Network, SimTime, Simulation};
use crate::trace::{MessageId, Trace};
use crate::NodeId;

/// A chat message as the columns show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef {
    /// Its Lamport timestamp (its identity: unique per message).
    pub ts: LamportTimestamp,
    /// Its text.
    pub text: String,
}

/// PENDING or DISPLAY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Held: a member that could still send something earlier has not been heard from.
    Pending,
    /// Stable: shown in its final place.
    Display,
}

/// One line of a member's chat output, as the seed prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputLine {
    /// Simulated time, ms.
    pub at_ms: f64,
    /// PENDING or DISPLAY.
    pub status: Status,
    /// The message.
    pub message: MessageRef,
    /// The sender's name.
    pub sender: String,
    /// For a PENDING line, whom it waits for (names).
    pub waiting_for: Vec<String>,
}

impl fmt::Display for OutputLine {
    /// `[PENDING] (2, B): Hello Alice` — the seed's format.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.status {
            Status::Pending => "PENDING",
            Status::Display => "DISPLAY",
        };
        write!(
            f,
            "[{tag}] ({}, {}): {}",
            self.message.ts.time, self.sender, self.message.text
        )
    }
}

/// What travels on a link.
#[derive(Debug, Clone)]
enum Payload {
    /// A member's frame; a message also carries its causal stamp.
    Frame {
        frame: ChatFrame<String>,
        causal: Option<CausalMessage<MessageRef>>,
        trace: MessageId,
    },
    /// The forwarder's notice that the sender vanished, after its last frame.
    Gone,
}

/// A frame on the wire with its per-sender FIFO sequence number.
#[derive(Debug, Clone)]
struct Wire {
    from: usize,
    seq: u64,
    payload: Payload,
}

#[derive(Debug)]
enum Happening {
    Arrive { to: usize, wire: Wire },
    Say { line: usize },
    Random { who: usize, k: u32 },
    AckTimer { who: usize },
    Depart { who: usize, how: Departure },
    Notice { from: usize },
}

/// One member: its three delivery layers and its four columns.
#[derive(Debug)]
struct Member {
    tob: TotalOrderBroadcast<String>,
    causal: HoldBackQueue<MessageRef>,
    /// Next FIFO sequence number expected from each sender.
    fifo_next: Vec<u64>,
    /// Frames that arrived ahead of their turn, by `(sender, seq)`.
    fifo_held: BTreeMap<(usize, u64), Wire>,
    /// This member's next outgoing sequence number.
    seq: u64,
    gone: bool,
    arrival: Vec<MessageRef>,
    fifo: Vec<MessageRef>,
    causal_order: Vec<MessageRef>,
    output: Vec<OutputLine>,
    /// When each displayed message was displayed here, ms.
    displayed_at: BTreeMap<LamportTimestamp, f64>,
}

/// A message as sent, for the tables and claims.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Its reference.
    pub message: MessageRef,
    /// Its causal stamp (the sender's causal-delivery vector clock).
    pub vector: VectorClock,
    /// When it was sent, ms.
    pub at_ms: f64,
}

/// A chat run in progress.
#[derive(Debug)]
pub struct ChatLab {
    config: ChatConfig,
    sim: Simulation<Happening>,
    members: Vec<Member>,
    trace: Trace,
    sent: Vec<Sent>,
    /// Scripted line index → timestamp once said.
    said: Vec<Option<LamportTimestamp>>,
    /// What the last event did, in words.
    last: Option<String>,
    events: u64,
}

fn ms(t: SimTime) -> f64 {
    t.as_nanos() as f64 / 1e6
}

impl ChatLab {
    /// A run at time 0 with the script and the departures scheduled.
    pub fn new(config: ChatConfig) -> Result<Self, ChatError> {
        let config = config.validated()?;
        let n = config.members.len();
        let mut sim = Simulation::new(
            config.seed,
            Network::new(LinkModel::new(Latency::Constant(Duration::ZERO))),
        );
        for (line, s) in config.script.iter().enumerate() {
            if let Trigger::At(at) = s.when {
                sim.schedule_at(SimTime::from_secs_f64(at / 1000.0), Happening::Say { line });
            }
        }
        for who in 0..n {
            for k in 0..config.random_messages {
                let at = sim.rng().gen_range(0.0..=config.random_window_ms.max(0.0));
                sim.schedule_at(
                    SimTime::from_secs_f64(at / 1000.0),
                    Happening::Random { who, k },
                );
            }
        }
        for d in &config.departures {
            sim.schedule_at(
                SimTime::from_secs_f64(d.at_ms / 1000.0),
                Happening::Depart {
                    who: d.who,
                    how: d.how,
                },
            );
        }
        let ids: Vec<NodeId> = (0..n as NodeId).collect();
        let members = (0..n)
            .map(|i| Member {
                tob: TotalOrderBroadcast::new(i as NodeId, ids.clone()),
                causal: HoldBackQueue::new(i as NodeId),
                fifo_next: vec![1; n],
                fifo_held: BTreeMap::new(),
                seq: 0,
                gone: false,
                arrival: Vec::new(),
                fifo: Vec::new(),
                causal_order: Vec::new(),
                output: Vec::new(),
                displayed_at: BTreeMap::new(),
            })
            .collect();
        let mut trace = Trace::new();
        for (i, name) in config.members.iter().enumerate() {
            trace.name_node(i as NodeId, name.clone());
        }
        Ok(ChatLab {
            said: vec![None; config.script.len()],
            config,
            sim,
            members,
            trace,
            sent: Vec::new(),
            last: None,
            events: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ChatConfig {
        &self.config
    }

    /// The member names.
    pub fn names(&self) -> &[String] {
        &self.config.members
    }

    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        self.sim.now()
    }

    /// Events handled so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// What the last event did.
    pub fn last_event(&self) -> Option<&str> {
        self.last.as_deref()
    }

    /// The run's space-time trace (messages, acks, leaves and their receipts).
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Every message sent, in sending order.
    pub fn sent(&self) -> &[Sent] {
        &self.sent
    }

    /// Member `i`'s output, `[PENDING]`/`[DISPLAY]` lines in the order printed.
    pub fn output(&self, i: usize) -> &[OutputLine] {
        &self.members[i].output
    }

    /// Member `i`'s messages in arrival order.
    pub fn arrival(&self, i: usize) -> &[MessageRef] {
        &self.members[i].arrival
    }

    /// Member `i`'s messages in FIFO-delivery order.
    pub fn fifo(&self, i: usize) -> &[MessageRef] {
        &self.members[i].fifo
    }

    /// Member `i`'s messages in causal-delivery order.
    pub fn causal(&self, i: usize) -> &[MessageRef] {
        &self.members[i].causal_order
    }

    /// Member `i`'s displayed messages, in total order.
    pub fn total(&self, i: usize) -> Vec<MessageRef> {
        self.members[i]
            .tob
            .displayed()
            .iter()
            .map(|o| MessageRef {
                ts: o.ts,
                text: o.payload.clone(),
            })
            .collect()
    }

    /// Member `i`'s pending messages, in total order, each with whom it waits for.
    pub fn pending(&self, i: usize) -> Vec<(MessageRef, Vec<String>)> {
        let tob = &self.members[i].tob;
        tob.pending()
            .map(|(ts, text)| {
                (
                    MessageRef {
                        ts,
                        text: text.clone(),
                    },
                    self.name_all(tob.waiting_for(ts)),
                )
            })
            .collect()
    }

    /// When member `i` displayed the message stamped `ts`, ms.
    pub fn displayed_at(&self, i: usize, ts: LamportTimestamp) -> Option<f64> {
        self.members[i].displayed_at.get(&ts).copied()
    }

    /// Whether member `i` has left or vanished.
    pub fn is_gone(&self, i: usize) -> bool {
        self.members[i].gone
    }

    fn name(&self, node: NodeId) -> String {
        self.config.members[node as usize].clone()
    }

    fn name_all(&self, nodes: Vec<NodeId>) -> Vec<String> {
        nodes.into_iter().map(|n| self.name(n)).collect()
    }

    /// Whether no event is left.
    pub fn is_over(&self) -> bool {
        self.sim.peek_time().is_none()
    }

    /// Handles one event; `None` when the run is over.
    pub fn step(&mut self) -> Option<SimTime> {
        let (at, happening) = self.sim.pop()?;
        self.events += 1;
        self.handle(at, happening);
        Some(at)
    }

    /// Handles every event up to `until` and sets the time to it.
    pub fn run_until(&mut self, until: SimTime) {
        while self.sim.peek_time().is_some_and(|t| t <= until) {
            self.step();
        }
        // Advance the clock with an empty run.
        self.sim.run_until(until, |_, _, _| {});
    }

    /// Runs until no event is left.
    pub fn run_to_end(&mut self) {
        while self.step().is_some() {}
    }

    fn handle(&mut self, at: SimTime, happening: Happening) {
        match happening {
            Happening::Say { line } => {
                let s = self.config.script[line].clone();
                if let Some(ts) = self.broadcast(s.who, s.text.clone(), at) {
                    self.said[line] = Some(ts);
                }
            }
            Happening::Random { who, k } => {
                let text = format!("{} #{}", self.config.members[who], k + 1);
                self.broadcast(who, text, at);
            }
            Happening::AckTimer { who } => {
                let m = &mut self.members[who];
                if !m.gone && m.tob.ack_due() {
                    let frame = m.tob.ack();
                    let ts = frame.ts();
                    self.send_frame(who, frame, None, at, format!("ack {}", ts.time));
                    self.last = Some(format!(
                        "{} acknowledges at time {}",
                        self.config.members[who], ts.time
                    ));
                }
            }
            Happening::Depart { who, how } => {
                if self.members[who].gone {
                    return;
                }
                let name = self.config.members[who].clone();
                match how {
                    Departure::Leave => {
                        let frame = self.members[who].tob.leave();
                        self.send_frame(who, frame, None, at, "leave".to_owned());
                        self.last = Some(format!("{name} leaves (its last frame: Leave)"));
                    }
                    Departure::Vanish => {
                        self.trace.local(who as NodeId, ms(at), "vanishes");
                        self.sim.schedule_at(
                            at + Duration::from_secs_f64(self.config.detect_ms / 1000.0),
                            Happening::Notice { from: who },
                        );
                        self.last = Some(format!("{name}'s tab closes; nothing more from it"));
                    }
                }
                self.members[who].gone = true;
            }
            Happening::Notice { from } => {
                // The forwarder announces the departure after `from`'s last frame, on each
                // of its FIFO paths.
                let seq = self.next_seq(from);
                for to in 0..self.members.len() {
                    if to != from {
                        let wire = Wire {
                            from,
                            seq,
                            payload: Payload::Gone,
                        };
                        self.transmit(from, to, wire, at);
                    }
                }
                self.last = Some(format!(
                    "the relay announces that {} is gone",
                    self.config.members[from]
                ));
            }
            Happening::Arrive { to, wire } => self.arrive(to, wire, at),
        }
    }

    fn next_seq(&mut self, who: usize) -> u64 {
        let m = &mut self.members[who];
        m.seq += 1;
        m.seq
    }

    /// Member `who` says `text`; returns its timestamp (`None` if it is gone).
    fn broadcast(&mut self, who: usize, text: String, at: SimTime) -> Option<LamportTimestamp> {
        if self.members[who].gone {
            return None;
        }
        let m = &mut self.members[who];
        let frame = m.tob.broadcast(text.clone());
        let ts = frame.ts();
        let message = MessageRef {
            ts,
            text: text.clone(),
        };
        let causal = m.causal.send(message.clone(), ms(at));
        self.sent.push(Sent {
            message: message.clone(),
            vector: causal.clock.clone(),
            at_ms: ms(at),
        });
        // Own messages go straight into the sender's own columns.
        let m = &mut self.members[who];
        m.arrival.push(message.clone());
        m.fifo.push(message.clone());
        m.causal_order.push(message.clone());
        let waiting = m.tob.waiting_for(ts);
        let line = OutputLine {
            at_ms: ms(at),
            status: Status::Pending,
            message,
            sender: self.config.members[who].clone(),
            waiting_for: self.name_all(waiting),
        };
        self.members[who].output.push(line);
        self.send_frame(
            who,
            frame,
            Some(causal),
            at,
            format!("{} {text:?}", ts.time),
        );
        self.last = Some(format!(
            "{} says {text:?} at Lamport time {}",
            self.config.members[who], ts.time
        ));
        Some(ts)
    }

    fn send_frame(
        &mut self,
        who: usize,
        frame: ChatFrame<String>,
        causal: Option<CausalMessage<MessageRef>>,
        at: SimTime,
        label: String,
    ) {
        let trace = self.trace.send(who as NodeId, ms(at), label);
        let seq = self.next_seq(who);
        for to in 0..self.members.len() {
            if to != who {
                let wire = Wire {
                    from: who,
                    seq,
                    payload: Payload::Frame {
                        frame: frame.clone(),
                        causal: causal.clone(),
                        trace,
                    },
                };
                self.transmit(who, to, wire, at);
            }
        }
    }

    fn transmit(&mut self, from: usize, to: usize, wire: Wire, at: SimTime) {
        let jitter = if self.config.jitter_ms > 0.0 {
            self.sim.rng().gen_range(0.0..=self.config.jitter_ms)
        } else {
            0.0
        };
        let delay = self.config.delay_ms(from, to) + jitter;
        self.sim.schedule_at(
            at + Duration::from_secs_f64(delay / 1000.0),
            Happening::Arrive { to, wire },
        );
    }

    fn arrive(&mut self, to: usize, wire: Wire, at: SimTime) {
        if self.members[to].gone {
            return;
        }
        if let Payload::Frame {
            frame: ChatFrame::Message { ts, payload },
            trace,
            ..
        } = &wire.payload
        {
            self.members[to].arrival.push(MessageRef {
                ts: *ts,
                text: payload.clone(),
            });
            let _ = self
                .trace
                .receive(to as NodeId, *trace, ms(at), format!("recv {payload:?}"));
        } else if let Payload::Frame { trace, frame, .. } = &wire.payload {
            let label = match frame {
                ChatFrame::Leave { .. } => "recv leave",
                _ => "recv ack",
            };
            let _ = self.trace.receive(to as NodeId, *trace, ms(at), label);
        }
        self.last = Some(format!(
            "a frame from {} reaches {}",
            self.config.members[wire.from], self.config.members[to]
        ));
        // FIFO layer: deliver in sequence order, holding frames that overtook others.
        let from = wire.from;
        self.members[to].fifo_held.insert((from, wire.seq), wire);
        loop {
            let next = self.members[to].fifo_next[from];
            let Some(w) = self.members[to].fifo_held.remove(&(from, next)) else {
                break;
            };
            self.members[to].fifo_next[from] += 1;
            self.deliver_fifo(to, w, at);
        }
    }

    fn deliver_fifo(&mut self, to: usize, wire: Wire, at: SimTime) {
        let now = ms(at);
        match wire.payload {
            Payload::Gone => {
                let shown = self.members[to]
                    .tob
                    .depart(wire.from as NodeId)
                    .map(<[_]>::to_vec)
                    .unwrap_or_default();
                self.show(to, shown, now);
            }
            Payload::Frame { frame, causal, .. } => {
                let message = match &frame {
                    ChatFrame::Message { ts, payload } => Some(MessageRef {
                        ts: *ts,
                        text: payload.clone(),
                    }),
                    _ => None,
                };
                if let Some(m) = &message {
                    self.members[to].fifo.push(m.clone());
                }
                if let Some(c) = causal {
                    let delivered = self.members[to].causal.receive(c, now).unwrap_or_default();
                    let m = &mut self.members[to];
                    m.causal_order
                        .extend(delivered.into_iter().map(|d| d.payload));
                }
                let shown = self.members[to]
                    .tob
                    .receive(frame)
                    .map(<[_]>::to_vec)
                    .unwrap_or_default();
                let shown_now = shown
                    .iter()
                    .any(|o| Some(o.ts) == message.as_ref().map(|m| m.ts));
                if let (Some(m), false) = (&message, shown_now) {
                    let waiting = self.members[to].tob.waiting_for(m.ts);
                    let line = OutputLine {
                        at_ms: now,
                        status: Status::Pending,
                        message: m.clone(),
                        sender: self.name(m.ts.node),
                        waiting_for: self.name_all(waiting),
                    };
                    self.members[to].output.push(line);
                }
                self.show(to, shown, now);
                if let Some(m) = &message {
                    // Replies scripted to this message are said before the acknowledgement
                    // (both scheduled now; the reply first, so it makes the ack unnecessary).
                    for (line, s) in self.config.script.iter().enumerate() {
                        if let Trigger::Reply { line: of, after_ms } = s.when {
                            if s.who == to && self.said[of] == Some(m.ts) {
                                self.sim.schedule_at(
                                    at + Duration::from_secs_f64(after_ms / 1000.0),
                                    Happening::Say { line },
                                );
                            }
                        }
                    }
                    self.sim.schedule_at(at, Happening::AckTimer { who: to });
                }
            }
        }
    }

    fn show(&mut self, to: usize, shown: Vec<Ordered<String>>, now: f64) {
        for o in shown {
            let m = MessageRef {
                ts: o.ts,
                text: o.payload,
            };
            self.members[to].displayed_at.insert(m.ts, now);
            let line = OutputLine {
                at_ms: now,
                status: Status::Display,
                sender: self.name(m.ts.node),
                message: m,
                waiting_for: Vec::new(),
            };
            self.members[to].output.push(line);
        }
    }
}
