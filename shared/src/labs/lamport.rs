//! The Lamport clock lab: machines ticking at different rates exchange messages and keep
//! Lamport clocks, as in the lab notebook (`seeds/lamport-lab-notebook.md`), after Lamport,
//! "Time, Clocks, and the Ordering of Events in a Distributed System" (CACM 21(7), 1978).
//!
//! Each machine has a clock rate of 1–6 ticks per second, a message queue and a Lamport clock.
//! On each tick it takes one message from its queue if there is one and sets its clock to
//! `max(local, received) + 1`; otherwise it rolls: with the internal probability it does an
//! internal event, otherwise (the rest split evenly) it sends its clock to the next machine, to
//! the one after that, or to all others — each of these increments the clock first. Every event
//! is logged per machine with the time, the event type, the queue length and the clock
//! ([`LogEntry`], one line each in the notebook's fields).
//!
//! **Guarantee (Lamport's clock condition).** If event a happened before event b then
//! `C(a) < C(b)`: clocks increase on every event and a receive's clock exceeds its send's. Every
//! run is recorded into a [`Trace`], whose independently computed Lamport times equal the
//! machines' clocks (checked in the tests), and whose vector clocks make the run a legal
//! space-time diagram.
//!
//! [`simulate`] runs the lab on the shared discrete-event simulator ([`crate::sim`]): tick `k`
//! of a machine with rate `r` happens at exactly `k/r` seconds, a message arrives in the
//! receiver's queue a fixed network delay after it was sent, and every random choice comes
//! from the simulator's seeded RNG, so a run is a function of its [`LabConfig`]. The real-time mode (threads and TCP sockets) lives in the
//! server crate and drives the same [`Machine`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::{self, Write as _};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::sim::{Latency, LinkModel, Network, SimTime, Simulation};
use crate::trace::{MessageId, Trace};
use crate::NodeId;

/// The slowest and fastest clock rates the notebook allows, in ticks per second.
pub const RATES: std::ops::RangeInclusive<u32> = 1..=6;

/// Why a lab configuration cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LabError {
    /// Fewer than two machines.
    #[error("the lab needs at least 2 machines, got {0}")]
    TooFewMachines(usize),
    /// A clock rate outside 1–6 ticks per second.
    #[error("clock rate {0} is outside 1–6 ticks per second")]
    BadRate(u32),
    /// A probability outside [0, 1].
    #[error("internal probability {0} is not between 0 and 1")]
    BadProbability(f64),
    /// A non-positive or non-finite duration or a negative delay.
    #[error("{what} must be a finite number {bound}, got {value}")]
    BadTime {
        /// Which parameter.
        what: &'static str,
        /// The bound it must satisfy.
        bound: &'static str,
        /// The value given.
        value: f64,
    },
    /// An experiment number outside 1–11.
    #[error("there is no experiment {0}; the notebook has experiments 1 to 11")]
    NoSuchExperiment(u32),
    /// A log line that is not in the lab's format.
    #[error("log line {line}: {reason}: {text:?}")]
    BadLogLine {
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: &'static str,
        /// The line.
        text: String,
    },
}

/// One run's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabConfig {
    /// Clock rate of each machine, ticks per second (1–6); the number of machines.
    pub rates: Vec<u32>,
    /// Probability that a tick with an empty queue is an internal event (0.7 in the notebook).
    pub internal_probability: f64,
    /// Length of the run in seconds (60 in the notebook).
    pub duration_s: f64,
    /// Time from send to arrival in the receiver's queue, in milliseconds (simulated mode).
    pub network_delay_ms: f64,
    /// Seed of every random choice.
    pub seed: u64,
}

impl LabConfig {
    /// Checks the configuration, returning it unchanged when it can run.
    pub fn validated(self) -> Result<Self, LabError> {
        if self.rates.len() < 2 {
            return Err(LabError::TooFewMachines(self.rates.len()));
        }
        if let Some(&r) = self.rates.iter().find(|r| !RATES.contains(r)) {
            return Err(LabError::BadRate(r));
        }
        if !(0.0..=1.0).contains(&self.internal_probability) {
            return Err(LabError::BadProbability(self.internal_probability));
        }
        if !(self.duration_s.is_finite() && self.duration_s > 0.0) {
            return Err(LabError::BadTime {
                what: "duration",
                bound: "above 0",
                value: self.duration_s,
            });
        }
        if !(self.network_delay_ms.is_finite() && self.network_delay_ms >= 0.0) {
            return Err(LabError::BadTime {
                what: "network delay",
                bound: "at least 0",
                value: self.network_delay_ms,
            });
        }
        Ok(self)
    }
}

/// One of the notebook's 11 experiments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Experiment {
    /// Its number in the notebook, 1–11.
    pub number: u32,
    /// Its title in the notebook.
    pub title: &'static str,
    /// The clock rates; `None` for experiment 1, which draws them at random from the seed.
    pub rates: Option<[u32; 3]>,
    /// Probability of an internal event.
    pub internal_probability: f64,
}

impl Experiment {
    /// The notebook's experiments, in order.
    pub const ALL: [Experiment; 11] = [
        Experiment::new(1, "Default settings", None, 0.7),
        Experiment::new(2, "Specific clock rates", Some([6, 4, 4]), 0.7),
        Experiment::new(3, "Uniform clock rate", Some([3, 3, 3]), 0.7),
        Experiment::new(4, "Big clock differences", Some([1, 3, 6]), 0.7),
        Experiment::new(5, "Small clock differences", Some([5, 3, 2]), 0.7),
        Experiment::new(
            6,
            "More communication with small clock differences",
            Some([5, 3, 2]),
            0.4,
        ),
        Experiment::new(
            7,
            "High communication with uniform clocks",
            Some([3, 3, 3]),
            0.1,
        ),
        Experiment::new(
            8,
            "High communication with mixed clocks",
            Some([4, 4, 6]),
            0.1,
        ),
        Experiment::new(
            9,
            "High communication with extreme clock difference",
            Some([1, 1, 6]),
            0.1,
        ),
        Experiment::new(
            10,
            "High communication with big clock differences",
            Some([1, 4, 6]),
            0.1,
        ),
        Experiment::new(
            11,
            "High communication with small clock differences",
            Some([5, 3, 2]),
            0.1,
        ),
    ];

    const fn new(number: u32, title: &'static str, rates: Option<[u32; 3]>, p: f64) -> Self {
        Experiment {
            number,
            title,
            rates,
            internal_probability: p,
        }
    }

    /// Experiment `number` (1–11).
    pub fn get(number: u32) -> Result<Experiment, LabError> {
        Experiment::ALL
            .iter()
            .copied()
            .find(|e| e.number == number)
            .ok_or(LabError::NoSuchExperiment(number))
    }

    /// The run configuration for this experiment; experiment 1 draws its rates from `seed`.
    pub fn config(&self, duration_s: f64, seed: u64) -> LabConfig {
        let rates = match self.rates {
            Some(r) => r.to_vec(),
            None => {
                let mut rng = StdRng::seed_from_u64(seed ^ 0x1a2b_3c4d);
                (0..3).map(|_| rng.gen_range(RATES)).collect()
            }
        };
        LabConfig {
            rates,
            internal_probability: self.internal_probability,
            duration_s,
            network_delay_ms: 0.5,
            seed,
        }
    }
}

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

/// The machines' trace node ids: machine `i` is node `i`, named `M{i}`.
pub fn trace_node(machine: usize) -> NodeId {
    machine as NodeId
}

/// A trace with the lab's machines named.
pub fn new_trace(machines: usize) -> Trace {
    let mut t = Trace::new();
    for m in 0..machines {
        t.name_node(trace_node(m), format!("M{m}"));
    }
    t
}

/// One run's result: the configuration, each machine's log, and the trace.
#[derive(Debug, Clone)]
pub struct LabRun {
    /// The configuration run.
    pub config: LabConfig,
    /// Per machine, its log.
    pub logs: Vec<Vec<LogEntry>>,
    /// Every event as a space-time trace (physical time in ms).
    pub trace: Trace,
}

impl LabRun {
    /// Machine `m`'s log as text, one [`LogEntry`] per line.
    pub fn log_text(&self, m: usize) -> String {
        let mut s = String::new();
        for e in &self.logs[m] {
            let _ = writeln!(s, "{e}");
        }
        s
    }
}

/// The lab's simulation events.
#[derive(Debug)]
enum Happening {
    /// A message lands in machine `to`'s queue.
    Arrive { to: usize, msg: LabMessage },
    /// Machine `m` ticks (its `k`-th tick).
    Tick { m: usize, k: u64 },
}

/// Runs the lab on the shared discrete-event simulator ([`crate::sim`]), seeded.
pub fn simulate(config: LabConfig) -> Result<LabRun, LabError> {
    let config = config.validated()?;
    let n = config.rates.len();
    let delay = std::time::Duration::from_nanos((config.network_delay_ms * 1e6).round() as u64);
    let network = Network::new(LinkModel::new(Latency::Constant(delay)));
    let mut sim: Simulation<Happening> = Simulation::new(config.seed, network);
    let mut machines: Vec<Machine> = config
        .rates
        .iter()
        .enumerate()
        .map(|(i, &r)| Machine::new(i, r))
        .collect();
    let mut queues: Vec<VecDeque<LabMessage>> = vec![VecDeque::new(); n];
    let mut trace = new_trace(n);
    let end = SimTime::from_nanos((config.duration_s * 1e9).round() as u64);
    // Tick k of a machine with rate r is at exactly k/r seconds.
    let tick_at = |rate: u32, k: u64| SimTime::from_nanos(k * 1_000_000_000 / u64::from(rate));
    for (m, &r) in config.rates.iter().enumerate() {
        sim.schedule_at(tick_at(r, 1), Happening::Tick { m, k: 1 });
    }
    sim.run_until(end, |sim, t, what| {
        // Microsecond resolution: what the log prints, so logs parse back to equal entries.
        let now_s = (t.as_nanos() / 1000) as f64 / 1e6;
        let now_ms = t.as_nanos() as f64 / 1e6;
        match what {
            Happening::Arrive { to, msg } => queues[to].push_back(msg),
            Happening::Tick { m, k } => {
                let node = trace_node(m);
                if let Some(msg) = queues[m].pop_front() {
                    machines[m].receive(now_s, &msg, queues[m].len());
                    trace
                        .receive(
                            node,
                            msg.message,
                            now_ms,
                            format!("RECEIVE from M{}", msg.from),
                        )
                        .expect("each lab message is received once, by another machine");
                } else {
                    let p = config.internal_probability;
                    match machines[m].roll(now_s, n, p, sim.rng()) {
                        Action::Internal => {
                            trace.local(node, now_ms, "INTERNAL");
                        }
                        Action::Send { to, clock } => {
                            let names: Vec<String> = to.iter().map(|t| format!("M{t}")).collect();
                            let message =
                                trace.send(node, now_ms, format!("SEND to {}", names.join(",")));
                            let msg = LabMessage {
                                from: m,
                                clock,
                                message,
                            };
                            for dest in to {
                                // Loss-free links: every message arrives after the delay.
                                sim.send(
                                    trace_node(m),
                                    trace_node(dest),
                                    Happening::Arrive { to: dest, msg },
                                );
                            }
                        }
                    }
                }
                sim.schedule_at(
                    tick_at(config.rates[m], k + 1),
                    Happening::Tick { m, k: k + 1 },
                );
            }
        }
    });
    for (m, machine) in machines.iter_mut().enumerate() {
        machine.stop(config.duration_s, queues[m].len());
    }
    Ok(LabRun {
        logs: machines.into_iter().map(|m| m.log).collect(),
        config,
        trace,
    })
}

/// Per-machine results of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineStats {
    /// Machine number.
    pub machine: usize,
    /// Ticks per second.
    pub rate: u32,
    /// The clock when the run stopped.
    pub final_clock: u64,
    /// Logical clock advance per second of real time over the run.
    pub clock_speed: f64,
    /// Internal events.
    pub internal: usize,
    /// Send events (a send to all counts once).
    pub sends: usize,
    /// Receive events.
    pub receives: usize,
    /// Mean clock jump between consecutive events.
    pub jump_mean: f64,
    /// Largest clock jump, and when it happened (seconds).
    pub jump_max: (u64, f64),
    /// Jump size → how many times it occurred.
    pub jumps: BTreeMap<u64, usize>,
    /// Mean queue length over the machine's events.
    pub queue_mean: f64,
    /// Longest queue seen.
    pub queue_max: usize,
    /// Queue length when the run stopped.
    pub queue_final: usize,
    /// Mean of (fastest machine's clock − this clock), sampled every second.
    pub gap_mean: f64,
    /// Largest such gap.
    pub gap_max: i64,
    /// The gap when the run stopped.
    pub gap_final: i64,
    /// Fraction of the one-second samples at which this machine's queue was empty.
    pub empty_queue_share: f64,
}

/// A run's analysis: the notebook's four questions (drift, queues, jumps, rate vs progress).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Per machine.
    pub machines: Vec<MachineStats>,
    /// The machine with the highest rate (the first of equals): the reference for gaps.
    pub fastest: usize,
    /// Sample times (seconds) of the series below.
    pub sample_times: Vec<f64>,
    /// Per machine, its clock at each sample time.
    pub clocks: Vec<Vec<u64>>,
    /// Per machine, its queue length at each sample time (after its last event by then).
    pub queues: Vec<Vec<usize>>,
}

/// The last log entry at or before `t`.
fn at_time(log: &[LogEntry], t: f64) -> Option<&LogEntry> {
    let i = log.partition_point(|e| e.time_s <= t + 1e-9);
    i.checked_sub(1).map(|i| &log[i])
}

/// Analyses per-machine logs (from either mode) of a run with these rates.
pub fn analyse(rates: &[u32], logs: &[Vec<LogEntry>]) -> Analysis {
    let fastest = rates
        .iter()
        .enumerate()
        .max_by_key(|&(i, &r)| (r, Reverse(i)))
        .map_or(0, |(i, _)| i);
    let end = logs
        .iter()
        .filter_map(|l| l.last())
        .map(|e| e.time_s)
        .fold(0.0_f64, f64::max);
    let sample_times: Vec<f64> = (0..=end.floor() as u64).map(|s| s as f64).collect();
    let clocks: Vec<Vec<u64>> = logs
        .iter()
        .map(|l| {
            sample_times
                .iter()
                .map(|&t| at_time(l, t).map_or(0, |e| e.clock))
                .collect()
        })
        .collect();
    let queues: Vec<Vec<usize>> = logs
        .iter()
        .map(|l| {
            sample_times
                .iter()
                .map(|&t| at_time(l, t).map_or(0, |e| e.queue))
                .collect()
        })
        .collect();
    let machines = logs
        .iter()
        .enumerate()
        .map(|(m, log)| {
            let events: Vec<&LogEntry> = log.iter().filter(|e| e.event != LabEvent::Stop).collect();
            let mut jumps = BTreeMap::new();
            let mut jump_max = (0, 0.0);
            let mut prev = 0;
            for e in &events {
                let j = e.clock.saturating_sub(prev);
                *jumps.entry(j).or_insert(0) += 1;
                if j > jump_max.0 {
                    jump_max = (j, e.time_s);
                }
                prev = e.clock;
            }
            let count = |f: fn(&LabEvent) -> bool| events.iter().filter(|e| f(&e.event)).count();
            let mean = |xs: &mut dyn Iterator<Item = f64>| {
                let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
                if n == 0 {
                    0.0
                } else {
                    s / n as f64
                }
            };
            let gaps: Vec<i64> = (0..sample_times.len())
                .map(|i| clocks[fastest][i] as i64 - clocks[m][i] as i64)
                .collect();
            let final_clock = log.last().map_or(0, |e| e.clock);
            MachineStats {
                machine: m,
                rate: rates.get(m).copied().unwrap_or(0),
                final_clock,
                clock_speed: if end > 0.0 {
                    final_clock as f64 / end
                } else {
                    0.0
                },
                internal: count(|e| matches!(e, LabEvent::Internal)),
                sends: count(|e| matches!(e, LabEvent::Send { .. })),
                receives: count(|e| matches!(e, LabEvent::Receive { .. })),
                jump_mean: mean(
                    &mut jumps
                        .iter()
                        .flat_map(|(&j, &c)| std::iter::repeat_n(j as f64, c)),
                ),
                jump_max,
                jumps,
                queue_mean: mean(&mut events.iter().map(|e| e.queue as f64)),
                queue_max: log.iter().map(|e| e.queue).max().unwrap_or(0),
                queue_final: log.last().map_or(0, |e| e.queue),
                gap_mean: mean(&mut gaps.iter().map(|&g| g as f64)),
                gap_max: gaps.iter().copied().max().unwrap_or(0),
                gap_final: logs[fastest].last().map_or(0, |e| e.clock) as i64 - final_clock as i64,
                empty_queue_share: mean(
                    &mut queues[m].iter().map(|&q| if q == 0 { 1.0 } else { 0.0 }),
                ),
            }
        })
        .collect();
    Analysis {
        machines,
        fastest,
        sample_times,
        clocks,
        queues,
    }
}

/// Colours of the machines' lines in the plots.
const COLOURS: [&str; 6] = [
    "#2a7ae2", "#d9822b", "#3a9d5d", "#b5485d", "#7a5cc4", "#6b6b6b",
];

/// An SVG line chart: one step line per series over `times`.
fn line_chart(title: &str, y_label: &str, times: &[f64], series: &[(String, Vec<f64>)]) -> String {
    let (w, h) = (640.0, 320.0);
    let (left, right, top, bottom) = (56.0, 110.0, 30.0, 40.0);
    let t_max = times.last().copied().unwrap_or(1.0).max(1e-9);
    let y_max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(1.0_f64, f64::max);
    let x = |t: f64| left + t / t_max * (w - left - right);
    let y = |v: f64| top + (1.0 - v / y_max) * (h - top - bottom);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        s,
        r##"<text x="{left}" y="18" font-size="14" fill="#222">{}</text><line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999"/><line x1="{left}" y1="{top}" x2="{left}" y2="{:.1}" stroke="#999"/><text x="{left}" y="{:.1}" fill="#666">0 s</text><text x="{:.1}" y="{:.1}" fill="#666" text-anchor="end">{} s</text><text x="{:.1}" y="{:.1}" fill="#666" text-anchor="end">{}</text><text x="{:.1}" y="{:.1}" fill="#666" text-anchor="end">0</text><text x="12" y="{:.1}" fill="#666" transform="rotate(-90 12 {:.1})" text-anchor="middle">{}</text>"##,
        crate::trace::svg::escape(title),
        h - bottom,
        w - right,
        h - bottom,
        h - bottom,
        h - bottom + 16.0,
        w - right,
        h - bottom + 16.0,
        t_max,
        left - 4.0,
        top + 4.0,
        y_max,
        left - 4.0,
        h - bottom,
        h / 2.0,
        h / 2.0,
        crate::trace::svg::escape(y_label),
    );
    for (i, (name, values)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut d = String::new();
        for (j, (&t, &v)) in times.iter().zip(values).enumerate() {
            if j == 0 {
                let _ = write!(d, "M{:.1},{:.1}", x(t), y(v));
            } else {
                let _ = write!(d, "H{:.1}V{:.1}", x(t), y(v));
            }
        }
        let _ = write!(
            s,
            r#"<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}" fill="{colour}">{}</text>"#,
            w - right + 8.0,
            top + 16.0 * i as f64 + 4.0,
            crate::trace::svg::escape(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// Event times and values of a log, for plotting every event rather than samples.
fn series_of(log: &[LogEntry], value: fn(&LogEntry) -> f64) -> (Vec<f64>, Vec<f64>) {
    log.iter().map(|e| (e.time_s, value(e))).unzip()
}

/// One chart with a step line per machine, each over its own event times.
fn per_machine_chart(
    title: &str,
    y_label: &str,
    rates: &[u32],
    logs: &[Vec<LogEntry>],
    value: fn(&LogEntry) -> f64,
) -> String {
    // Merge all event times so every line is drawn on the same time axis.
    let mut times: Vec<f64> = logs.iter().flatten().map(|e| e.time_s).collect();
    times.push(0.0);
    times.sort_by(f64::total_cmp);
    times.dedup();
    let series: Vec<(String, Vec<f64>)> = logs
        .iter()
        .enumerate()
        .map(|(m, log)| {
            let (ts, vs) = series_of(log, value);
            let vals = times
                .iter()
                .map(|&t| {
                    let i = ts.partition_point(|&x| x <= t);
                    if i == 0 {
                        0.0
                    } else {
                        vs[i - 1]
                    }
                })
                .collect();
            (
                format!("M{m} ({}/s)", rates.get(m).copied().unwrap_or(0)),
                vals,
            )
        })
        .collect();
    line_chart(title, y_label, &times, &series)
}

/// SVG chart of every machine's logical clock over time.
pub fn plot_clocks(rates: &[u32], logs: &[Vec<LogEntry>]) -> String {
    per_machine_chart(
        "Logical clock over time",
        "logical clock",
        rates,
        logs,
        |e| e.clock as f64,
    )
}

/// SVG chart of every machine's queue length over time.
pub fn plot_queues(rates: &[u32], logs: &[Vec<LogEntry>]) -> String {
    per_machine_chart(
        "Queue length over time",
        "messages queued",
        rates,
        logs,
        |e| e.queue as f64,
    )
}

/// Markdown table of an analysis.
pub fn summary_table(a: &Analysis) -> String {
    let mut s = String::from(
        "| machine | rate/s | final clock | clock/s | internal | sends | receives | jump mean | jump max (at s) | queue mean | queue max | queue final | gap mean | gap final |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for m in &a.machines {
        let _ = writeln!(
            s,
            "| M{} | {} | {} | {:.2} | {} | {} | {} | {:.2} | {} ({:.1}) | {:.2} | {} | {} | {:.1} | {} |",
            m.machine,
            m.rate,
            m.final_clock,
            m.clock_speed,
            m.internal,
            m.sends,
            m.receives,
            m.jump_mean,
            m.jump_max.0,
            m.jump_max.1,
            m.queue_mean,
            m.queue_max,
            m.queue_final,
            m.gap_mean,
            m.gap_final
        );
    }
    s
}

/// A Markdown report of one experiment's run: the table, the jump distributions, and the
/// notebook's observations, each stated with this run's numbers and whether it holds here.
pub fn report(experiment: Option<&Experiment>, config: &LabConfig, a: &Analysis) -> String {
    let mut s = String::new();
    match experiment {
        Some(e) => {
            let _ = writeln!(s, "# Experiment {}: {}\n", e.number, e.title);
        }
        None => {
            let _ = writeln!(s, "# Lamport lab run\n");
        }
    }
    let _ = writeln!(
        s,
        "Rates {:?} ticks/s, internal probability {:.0} %, {} s, seed {}, network delay {} ms.\n",
        config.rates,
        config.internal_probability * 100.0,
        config.duration_s,
        config.seed,
        config.network_delay_ms
    );
    s.push_str(&summary_table(a));
    s.push_str("\nJump distribution (jump size × count):\n\n");
    for m in &a.machines {
        let d: Vec<String> = m.jumps.iter().map(|(j, c)| format!("{j}×{c}")).collect();
        let _ = writeln!(s, "- M{} ({}/s): {}", m.machine, m.rate, d.join(", "));
    }
    s.push_str("\n## Observations\n\n");
    for line in observations(config, a) {
        let _ = writeln!(s, "- {line}");
    }
    s
}

fn holds(b: bool) -> &'static str {
    if b {
        "holds in this run"
    } else {
        "does NOT hold in this run"
    }
}

/// The notebook's observations, stated with this run's numbers.
pub fn observations(config: &LabConfig, a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    let fast = &a.machines[a.fastest];
    let top_clock = a.machines.iter().map(|m| m.final_clock).max().unwrap_or(0);
    out.push(format!(
        "The fastest machine has the highest clock (M{} at {}/s ends at {}, the highest final clock is {}): {}.",
        fast.machine,
        fast.rate,
        fast.final_clock,
        top_clock,
        holds(fast.final_clock == top_clock)
    ));
    for m in &a.machines {
        if m.machine == a.fastest || m.rate == fast.rate {
            continue;
        }
        let ratio = m.clock_speed / fast.clock_speed.max(1e-9);
        let grows = m.queue_final >= 10 && m.queue_final * 2 >= m.queue_max;
        if grows {
            out.push(format!(
                "M{} ({}/s) cannot keep up: its queue ends at {} (max {}), so it handles ever older messages and its clock advances at {:.2}× the speed of M{}'s ({:.2} vs {:.2} per second; the notebook's 10/18 argument predicts about ½ for rates 1, 3, 6), ending {} behind.",
                m.machine, m.rate, m.queue_final, m.queue_max, ratio, fast.machine, m.clock_speed, fast.clock_speed, m.gap_final
            ));
        } else {
            out.push(format!(
                "M{} ({}/s) keeps up: its queue peaks at {} and ends at {}, it is empty at {:.0} % of the one-second samples, and its clock advances at {:.2}× the speed of M{}'s (mean gap {:.1}, final gap {}).",
                m.machine, m.rate, m.queue_max, m.queue_final, m.empty_queue_share * 100.0, ratio, fast.machine, m.gap_mean, m.gap_final
            ));
        }
    }
    let q_max = a.machines.iter().map(|m| m.queue_max).max().unwrap_or(0);
    out.push(format!(
        "Queue build-up at {:.0} % internal events: the longest queue is {} (the notebook: at 70 % with rates 5, 3, 2 no queue passes 2; at 40 % the slowest drifts away; at 10 % both slower machines do).",
        config.internal_probability * 100.0,
        q_max
    ));
    if let Some(big) = a.machines.iter().max_by_key(|m| m.jump_max.0) {
        out.push(format!(
            "Largest jump: M{} ({}/s) jumps by {} at {:.1} s — big jumps come after long gaps without news from a faster machine (the notebook saw 20 for the rate-3 machine in experiment 4).",
            big.machine, big.rate, big.jump_max.0, big.jump_max.1
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::validate;

    fn run(n: u32, seed: u64) -> (LabRun, Analysis) {
        let e = Experiment::get(n).unwrap();
        let r = simulate(e.config(60.0, seed)).unwrap();
        let a = analyse(&r.config.rates, &r.logs);
        (r, a)
    }

    #[test]
    fn the_trace_agrees_with_the_machines_clocks_and_is_legal() {
        let (r, _) = run(6, 7);
        assert!(validate(&r.trace).is_empty());
        for (m, log) in r.logs.iter().enumerate() {
            let lane = r.trace.lane(trace_node(m));
            let events: Vec<&LogEntry> = log.iter().filter(|e| e.event != LabEvent::Stop).collect();
            assert_eq!(lane.len(), events.len());
            for (&id, e) in lane.iter().zip(events) {
                assert_eq!(r.trace.events()[id].lamport, e.clock);
            }
        }
    }

    #[test]
    fn runs_are_functions_of_the_seed() {
        let a = simulate(Experiment::get(10).unwrap().config(20.0, 3)).unwrap();
        let b = simulate(Experiment::get(10).unwrap().config(20.0, 3)).unwrap();
        let c = simulate(Experiment::get(10).unwrap().config(20.0, 4)).unwrap();
        assert_eq!(a.logs, b.logs);
        assert_ne!(a.logs, c.logs);
    }

    #[test]
    fn each_machine_ticks_at_its_rate() {
        let (r, a) = run(4, 1);
        for (m, &rate) in r.config.rates.iter().enumerate() {
            let s = &a.machines[m];
            assert_eq!((s.internal + s.sends + s.receives) as u32, rate * 60);
        }
    }

    #[test]
    fn logs_print_and_parse_back() {
        let (r, _) = run(8, 2);
        for m in 0..3 {
            assert_eq!(parse_log(&r.log_text(m)).unwrap(), r.logs[m]);
        }
        assert!(matches!(
            parse_log("1.0 RECEIVE queue=1 clock=2"),
            Err(LabError::BadLogLine { line: 1, .. })
        ));
    }

    #[test]
    fn bad_configurations_are_refused() {
        let mut c = Experiment::get(2).unwrap().config(60.0, 0);
        c.rates = vec![0, 3];
        assert_eq!(simulate(c.clone()).err(), Some(LabError::BadRate(0)));
        c.rates = vec![3];
        assert_eq!(simulate(c.clone()).err(), Some(LabError::TooFewMachines(1)));
        c.rates = vec![3, 3];
        c.internal_probability = 1.5;
        assert_eq!(simulate(c).err(), Some(LabError::BadProbability(1.5)));
        assert_eq!(Experiment::get(12), Err(LabError::NoSuchExperiment(12)));
    }

    #[test]
    fn lab_traces_survive_a_shiviz_round_trip() {
        let (r, _) = run(11, 5);
        let back = crate::trace::shiviz::import(&crate::trace::shiviz::export(&r.trace)).unwrap();
        assert_eq!(back.events(), r.trace.events());
        assert_eq!(back.node_name(2), "M2");
    }
}
