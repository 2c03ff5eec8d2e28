//! The simulated run: the machines on the shared discrete-event simulator, one event at a
//! time ([`LamportLab`]) or all at once ([`simulate`]).
//!
//! Tick `k` of a machine with rate `r` happens at exactly `k/r` seconds; a message lands in the
//! receiver's queue a fixed network delay after it was sent; every random choice comes from the
//! simulator's seeded RNG. **Invariant:** the run is a function of its [`LabConfig`] and the
//! `step`/`run_until` calls made, and stepping it event by event reaches the same state as
//! running it at once (tested).

use std::collections::VecDeque;
use std::fmt::Write as _;

use super::machine::{Action, LabMessage, LogEntry, Machine};
use super::{LabConfig, LabError};
use crate::sim::{Latency, LinkModel, Network, SimTime, Simulation};
use crate::trace::Trace;
use crate::NodeId;

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

/// A Lamport lab run in progress: the machines, their queues and the trace, advanced one
/// simulator event at a time up to the configured duration.
#[derive(Debug)]
pub struct LamportLab {
    config: LabConfig,
    sim: Simulation<Happening>,
    machines: Vec<Machine>,
    queues: Vec<VecDeque<LabMessage>>,
    trace: Trace,
    /// The end of the run (the duration).
    end: SimTime,
    /// The machines have logged their final clocks.
    stopped: bool,
    /// What the last event did, in words.
    last: Option<String>,
    /// The notebook experiment the run started from, if any (its link names it).
    pub(crate) experiment: Option<u32>,
}

/// Tick `k` of a machine with rate `r` is at exactly `k/r` seconds.
fn tick_at(rate: u32, k: u64) -> SimTime {
    SimTime::from_nanos(k * 1_000_000_000 / u64::from(rate))
}

impl LamportLab {
    /// A run at time 0 with every machine's first tick scheduled.
    pub fn new(config: LabConfig) -> Result<Self, LabError> {
        let config = config.validated()?;
        let n = config.rates.len();
        let delay = std::time::Duration::from_nanos((config.network_delay_ms * 1e6).round() as u64);
        let network = Network::new(LinkModel::new(Latency::Constant(delay)));
        let mut sim: Simulation<Happening> = Simulation::new(config.seed, network);
        for (m, &r) in config.rates.iter().enumerate() {
            sim.schedule_at(tick_at(r, 1), Happening::Tick { m, k: 1 });
        }
        Ok(LamportLab {
            machines: config
                .rates
                .iter()
                .enumerate()
                .map(|(i, &r)| Machine::new(i, r))
                .collect(),
            queues: vec![VecDeque::new(); n],
            trace: new_trace(n),
            end: SimTime::from_nanos((config.duration_s * 1e9).round() as u64),
            stopped: false,
            last: None,
            experiment: None,
            sim,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LabConfig {
        &self.config
    }

    /// Each machine's log so far.
    pub fn logs(&self) -> Vec<&[LogEntry]> {
        self.machines.iter().map(|m| m.log.as_slice()).collect()
    }

    /// Each machine's queue length now.
    pub fn queue_lengths(&self) -> Vec<usize> {
        self.queues.iter().map(VecDeque::len).collect()
    }

    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        self.sim.now()
    }

    /// The end of the run.
    pub fn end(&self) -> SimTime {
        self.end
    }

    /// Simulator events handled so far.
    pub fn events(&self) -> u64 {
        self.sim.stats().events_processed
    }

    /// Whether the run has reached its end.
    pub fn finished(&self) -> bool {
        self.stopped
    }

    /// What the last event did.
    pub fn last_event(&self) -> Option<&str> {
        self.last.as_deref()
    }

    /// The trace so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Handles the next event (a tick or an arrival) if it falls within the run; at the end,
    /// the machines log their final clocks and `None` is returned.
    pub fn step(&mut self) -> Option<SimTime> {
        if self.sim.peek_time().is_some_and(|t| t <= self.end) {
            let (at, what) = self.sim.pop()?;
            self.handle(at, what);
            return Some(at);
        }
        self.stop();
        None
    }

    /// Handles every event up to `until` (at most the end of the run).
    pub fn run_until(&mut self, until: SimTime) {
        let until = until.min(self.end);
        while self.sim.peek_time().is_some_and(|t| t <= until) {
            self.step();
        }
        if until >= self.end {
            self.stop();
        } else if until > self.sim.now() {
            self.sim.run_until(until, |_, _, _| {});
        }
    }

    /// Runs to the end and returns the result.
    pub fn finish(mut self) -> LabRun {
        self.run_until(self.end);
        LabRun {
            logs: self.machines.into_iter().map(|m| m.log).collect(),
            config: self.config,
            trace: self.trace,
        }
    }

    fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if self.end > self.sim.now() {
            self.sim.run_until(self.end, |_, _, _| {});
        }
        let d = self.config.duration_s;
        for (m, machine) in self.machines.iter_mut().enumerate() {
            machine.stop(d, self.queues[m].len());
        }
    }

    fn handle(&mut self, t: SimTime, what: Happening) {
        // Microsecond resolution: what the log prints, so logs parse back to equal entries.
        let now_s = (t.as_nanos() / 1000) as f64 / 1e6;
        let now_ms = t.as_nanos() as f64 / 1e6;
        let n = self.machines.len();
        match what {
            Happening::Arrive { to, msg } => {
                self.queues[to].push_back(msg);
                self.last = Some(format!(
                    "a message from M{} (clock {}) lands in M{to}'s queue ({} waiting)",
                    msg.from,
                    msg.clock,
                    self.queues[to].len()
                ));
            }
            Happening::Tick { m, k } => {
                let node = trace_node(m);
                if let Some(msg) = self.queues[m].pop_front() {
                    let before = self.machines[m].clock;
                    self.machines[m].receive(now_s, &msg, self.queues[m].len());
                    self.trace
                        .receive(
                            node,
                            msg.message,
                            now_ms,
                            format!("RECEIVE from M{}", msg.from),
                        )
                        .expect("each lab message is received once, by another machine");
                    self.last = Some(format!(
                        "M{m} takes M{}'s message: clock max({before}, {}) + 1 = {}",
                        msg.from, msg.clock, self.machines[m].clock
                    ));
                } else {
                    let p = self.config.internal_probability;
                    match self.machines[m].roll(now_s, n, p, self.sim.rng()) {
                        Action::Internal => {
                            self.trace.local(node, now_ms, "INTERNAL");
                            self.last = Some(format!(
                                "M{m} does an internal event: clock {}",
                                self.machines[m].clock
                            ));
                        }
                        Action::Send { to, clock } => {
                            let names: Vec<String> = to.iter().map(|t| format!("M{t}")).collect();
                            let message = self.trace.send(
                                node,
                                now_ms,
                                format!("SEND to {}", names.join(",")),
                            );
                            let msg = LabMessage {
                                from: m,
                                clock,
                                message,
                            };
                            for dest in to {
                                // Loss-free links: every message arrives after the delay.
                                self.sim.send(
                                    trace_node(m),
                                    trace_node(dest),
                                    Happening::Arrive { to: dest, msg },
                                );
                            }
                            self.last =
                                Some(format!("M{m} sends clock {clock} to {}", names.join(", ")));
                        }
                    }
                }
                let rate = self.config.rates[m];
                self.sim
                    .schedule_at(tick_at(rate, k + 1), Happening::Tick { m, k: k + 1 });
            }
        }
    }
}

/// Runs the lab on the shared discrete-event simulator ([`crate::sim`]), seeded, to its end.
pub fn simulate(config: LabConfig) -> Result<LabRun, LabError> {
    Ok(LamportLab::new(config)?.finish())
}
