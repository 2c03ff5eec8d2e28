//! The distributed snapshot lab (the seed's project 4): nodes pass money while one or two of
//! them take a snapshot with Chandy–Lamport markers (Chandy & Lamport, ACM TOCS 3(1), 1985) or
//! Lai–Yang colours (Lai & Yang, IPL 25(3), 1987), on the shared discrete-event simulator.
//!
//! **Claims checked against each run.** The recorded global state conserves the bank's money
//! ([`crate::check::conservation`]); the recorded cut is consistent by vector clocks
//! ([`crate::check::consistent_cut`]); every node reports to the initiator (termination); two
//! concurrent snapshots are kept apart. The first two hold for Chandy–Lamport on FIFO channels
//! and for Lai–Yang on any channels; take FIFO away from Chandy–Lamport and the checkers name
//! the transfers its markers overtook.
//!
//! Two workloads: `example`, the seed's three nodes scripted so the run prints its example
//! output (Node 2 sends $10 to Node 1, which starts the snapshot before the money lands), and
//! `random`, where every node spends at random. Channels are FIFO when the `fifo` switch is on:
//! a message never arrives before one sent earlier on the same channel (its arrival is held
//! back to the channel's last one, as TCP would); off, each message keeps its own sampled
//! latency and may overtake.
//!
//! **Invariant.** A run is a pure function of its [`SnapshotConfig`] (seeded) and the
//! `step`/`run_until` calls made.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::causality::snapshot::{
    Algorithm, BankNode, Effects, GlobalSnapshot, Outgoing, SnapshotId, TransferId, Wire,
};
use crate::check::conservation::{
    check_conservation, ConservationReport, Recorded, RecordedTransfer,
};
use crate::check::consistent_cut::{check_cut, Cut, CutReport};
use crate::sim::{Network, SimTime, Simulation};
use crate::trace::{MessageId, Trace};
use crate::NodeId;

mod diagram;
pub mod frame;
#[cfg(test)]
mod tests;

pub use frame::SPEC;

/// What the nodes do with their money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// The seed's example: three nodes ($50, $40, $20), Node 2 sends Node 1 $10 (a slow
    /// 30 ms), Node 1 starts the snapshot 5 ms later; every other message takes 10 ms.
    Example,
    /// Every node sends a random peer a random amount every 0–`2 × spend_every` ms.
    Random,
}

/// One run's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotConfig {
    /// What the nodes do.
    pub workload: Workload,
    /// Number of nodes, 2–8 (the example has 3).
    pub nodes: usize,
    /// Each node's starting balance, dollars (random workload).
    pub balance: u64,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Channels deliver in order.
    pub fifo: bool,
    /// How many nodes start a snapshot (1 or 2, concurrently: Node 1 and Node 2).
    pub initiators: usize,
    /// When the first snapshot starts, ms (the second starts 3 ms later).
    pub snapshot_at_ms: u64,
    /// Smallest and largest one-way latency, ms (random workload).
    pub latency_ms: (u64, u64),
    /// Mean time between a node's transfers, ms (random workload).
    pub spend_every_ms: u64,
    /// Length of the run, ms.
    pub duration_ms: u64,
    /// Seed of every random choice.
    pub seed: u64,
}

impl SnapshotConfig {
    /// The seed's example, with the given algorithm and channels.
    pub fn example(algorithm: Algorithm, fifo: bool) -> Self {
        SnapshotConfig {
            workload: Workload::Example,
            nodes: 3,
            balance: 0,
            algorithm,
            fifo,
            initiators: 1,
            snapshot_at_ms: 5,
            latency_ms: (10, 30),
            spend_every_ms: 0,
            duration_ms: 200,
            seed: 0,
        }
    }

    /// A random run of `nodes` nodes with $100 each.
    pub fn random(nodes: usize, algorithm: Algorithm, fifo: bool, seed: u64) -> Self {
        SnapshotConfig {
            workload: Workload::Random,
            nodes,
            balance: 100,
            algorithm,
            fifo,
            initiators: 1,
            snapshot_at_ms: 200,
            latency_ms: (5, 40),
            spend_every_ms: 10,
            duration_ms: 1_000,
            seed,
        }
    }

    fn validated(self) -> Result<Self, SnapshotLabError> {
        if self.workload == Workload::Random && !(2..=8).contains(&self.nodes) {
            return Err(SnapshotLabError::Nodes(self.nodes));
        }
        if !(1..=2).contains(&self.initiators) {
            return Err(SnapshotLabError::Initiators(self.initiators));
        }
        if self.latency_ms.0 > self.latency_ms.1 {
            return Err(SnapshotLabError::Latency);
        }
        Ok(self)
    }

    /// The initial balances, node 1 first.
    pub fn balances(&self) -> Vec<u64> {
        match self.workload {
            Workload::Example => vec![50, 40, 20],
            Workload::Random => vec![self.balance; self.nodes],
        }
    }

    /// The money the bank starts with.
    pub fn initial_total(&self) -> u64 {
        self.balances().iter().sum()
    }
}

/// A configuration the lab refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotLabError {
    /// Too few or too many nodes.
    #[error("the lab runs 2 to 8 nodes, got {0}")]
    Nodes(usize),
    /// Not 1 or 2 initiators.
    #[error("1 or 2 nodes can start a snapshot, got {0}")]
    Initiators(usize),
    /// An empty latency range.
    #[error("the smallest latency exceeds the largest")]
    Latency,
}

/// The simulator's events.
#[derive(Debug, Clone)]
enum Happening {
    /// A message lands at `to`.
    Deliver {
        from: NodeId,
        to: NodeId,
        wire: Wire,
        message: MessageId,
    },
    /// A node spends (random workload).
    Spend { node: NodeId },
    /// The example's scripted transfer: Node 2 sends Node 1 $10.
    ScriptedTransfer,
    /// A node starts a snapshot.
    Initiate { node: NodeId },
}

/// A snapshot as the lab saw it happen.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRecord {
    /// Which snapshot.
    pub id: SnapshotId,
    /// When it started.
    pub started: SimTime,
    /// Per node, its events before it recorded: the cut.
    pub cut: Cut,
    /// The initiator's assembled snapshot, once every report is in.
    pub collected: Option<(SimTime, GlobalSnapshot)>,
}

/// A snapshot lab run in progress.
#[derive(Debug)]
pub struct SnapshotLab {
    config: SnapshotConfig,
    sim: Simulation<Happening>,
    nodes: BTreeMap<NodeId, BankNode>,
    trace: Trace,
    /// The trace's message of every transfer.
    transfer_messages: BTreeMap<TransferId, MessageId>,
    /// Every transfer's receiver and amount, by its trace message (the conservation checker's
    /// input).
    transfers: BTreeMap<MessageId, (NodeId, u64)>,
    /// FIFO: the latest arrival scheduled on each channel.
    last_arrival: BTreeMap<(NodeId, NodeId), SimTime>,
    /// Every snapshot started, in order.
    snapshots: Vec<SnapshotRecord>,
    end: SimTime,
    last: Option<String>,
}

/// A node's display name: `Node 1`.
pub fn node_name(id: NodeId) -> String {
    format!("Node {id}")
}

impl SnapshotLab {
    /// A run at time 0 with its first events scheduled.
    pub fn new(config: SnapshotConfig) -> Result<Self, SnapshotLabError> {
        let config = config.validated()?;
        let balances = config.balances();
        let ids: Vec<NodeId> = (1..=balances.len() as NodeId).collect();
        let mut trace = Trace::new();
        for &id in &ids {
            trace.name_node(id, node_name(id));
        }
        let nodes = ids
            .iter()
            .zip(&balances)
            .map(|(&id, &b)| (id, BankNode::new(id, &ids, config.algorithm, b)))
            .collect();
        let mut sim = Simulation::new(config.seed, Network::default());
        let at = SimTime::from_millis(config.snapshot_at_ms);
        sim.schedule_at(at, Happening::Initiate { node: 1 });
        if config.initiators == 2 {
            sim.schedule_at(
                at + Duration::from_millis(3),
                Happening::Initiate { node: 2 },
            );
        }
        match config.workload {
            Workload::Example => {
                sim.schedule_at(SimTime::ZERO, Happening::ScriptedTransfer);
            }
            Workload::Random => {
                for &id in &ids {
                    let first = sim.rng().gen_range(0..=2 * config.spend_every_ms);
                    sim.schedule_at(SimTime::from_millis(first), Happening::Spend { node: id });
                }
            }
        }
        Ok(SnapshotLab {
            end: SimTime::from_millis(config.duration_ms),
            config,
            sim,
            nodes,
            trace,
            transfer_messages: BTreeMap::new(),
            transfers: BTreeMap::new(),
            last_arrival: BTreeMap::new(),
            snapshots: Vec::new(),
            last: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SnapshotConfig {
        &self.config
    }

    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        self.sim.now()
    }

    /// The end of the run.
    pub fn end(&self) -> SimTime {
        self.end
    }

    /// Events handled so far.
    pub fn events(&self) -> u64 {
        self.sim.stats().events_processed
    }

    /// The run as a space-time trace (transfers, markers, reports, and a local event where
    /// each node recorded).
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// What the last event did.
    pub fn last_event(&self) -> Option<&str> {
        self.last.as_deref()
    }

    /// Every node's balance now.
    pub fn balances(&self) -> BTreeMap<NodeId, u64> {
        self.nodes
            .iter()
            .map(|(&id, n)| (id, n.balance()))
            .collect()
    }

    /// Every snapshot started so far.
    pub fn snapshots(&self) -> &[SnapshotRecord] {
        &self.snapshots
    }

    /// Handles one event; `None` once the run is over.
    pub fn step(&mut self) -> Option<SimTime> {
        if self.sim.peek_time().is_none_or(|t| t > self.end) {
            return None;
        }
        let (at, ev) = self.sim.pop()?;
        self.handle(at, ev);
        Some(at)
    }

    /// Handles every event up to `until` (never past the end).
    pub fn run_until(&mut self, until: SimTime) {
        let until = until.min(self.end);
        while self.sim.peek_time().is_some_and(|t| t <= until) {
            self.step();
        }
        if until > self.sim.now() {
            // Advance the clock through an empty stretch.
            self.sim.run_until(until, |_, _, _| {});
        }
    }

    /// Runs to the end.
    pub fn run(&mut self) {
        self.run_until(self.end);
    }

    fn ms(at: SimTime) -> f64 {
        at.as_nanos() as f64 / 1e6
    }

    fn handle(&mut self, at: SimTime, ev: Happening) {
        match ev {
            Happening::ScriptedTransfer => self.spend(2, 1, 10),
            Happening::Spend { node } => {
                let balance = self.nodes[&node].balance();
                let peers = self.nodes[&node].peers().to_vec();
                if balance > 0 {
                    let rng = self.sim.rng();
                    let to = peers[rng.gen_range(0..peers.len())];
                    let amount = rng.gen_range(1..=balance.min(20));
                    self.spend(node, to, amount);
                } else {
                    self.last = Some(format!("{} has no money to send", node_name(node)));
                }
                let next = self.sim.rng().gen_range(1..=2 * self.config.spend_every_ms);
                self.sim
                    .schedule_in(Duration::from_millis(next), Happening::Spend { node });
            }
            Happening::Initiate { node } => {
                let cut_here = self.trace.lane(node).len();
                let (id, fx) = self.nodes.get_mut(&node).expect("a node").initiate();
                self.trace.local(
                    node,
                    Self::ms(at),
                    format!(
                        "snapshot {}.{}: records ${}",
                        id.initiator,
                        id.seq,
                        self.recorded(node, id)
                    ),
                );
                self.snapshots.push(SnapshotRecord {
                    id,
                    started: at,
                    cut: [(node, cut_here)].into(),
                    collected: None,
                });
                self.last = Some(format!(
                    "{} starts snapshot {}.{} and records ${}",
                    node_name(node),
                    id.initiator,
                    id.seq,
                    self.recorded(node, id)
                ));
                self.effects(node, at, fx);
            }
            Happening::Deliver {
                from,
                to,
                wire,
                message,
            } => {
                let what = describe(&wire);
                let result = self.nodes.get_mut(&to).expect("a node").receive(from, wire);
                match result {
                    Ok(fx) => {
                        // The cut passes just before this receive for every snapshot the
                        // message made the node record.
                        for &s in &fx.recorded {
                            let cut_here = self.trace.lane(to).len();
                            if let Some(r) = self.snapshots.iter_mut().find(|r| r.id == s) {
                                r.cut.insert(to, cut_here);
                            }
                            let state = self.recorded(to, s);
                            self.trace.local(
                                to,
                                Self::ms(at),
                                format!("snapshot {}.{}: records ${state}", s.initiator, s.seq),
                            );
                        }
                        let _ = self.trace.receive(
                            to,
                            message,
                            Self::ms(at),
                            format!("{what} from {from}"),
                        );
                        self.last = Some(format!(
                            "{} takes {what} from {}",
                            node_name(to),
                            node_name(from)
                        ));
                        self.effects(to, at, fx);
                    }
                    Err(e) => self.last = Some(format!("refused: {e}")),
                }
            }
        }
    }

    fn recorded(&self, node: NodeId, s: SnapshotId) -> u64 {
        self.nodes[&node].recorded_state(s).unwrap_or(0)
    }

    fn spend(&mut self, from: NodeId, to: NodeId, amount: u64) {
        let Ok(o) = self
            .nodes
            .get_mut(&from)
            .expect("a node")
            .transfer(to, amount)
        else {
            return;
        };
        self.last = Some(format!(
            "{} sends ${amount} to {}",
            node_name(from),
            node_name(to)
        ));
        let at = self.sim.now();
        self.post(from, at, o);
    }

    fn effects(&mut self, node: NodeId, at: SimTime, fx: Effects) {
        for o in fx.out {
            self.post(node, at, o);
        }
        for g in fx.collected {
            if let Some(r) = self.snapshots.iter_mut().find(|r| r.id == g.snapshot) {
                r.collected = Some((at, g));
            }
        }
    }

    /// Puts one message on its channel: records its send and schedules its arrival.
    fn post(&mut self, from: NodeId, at: SimTime, o: Outgoing) {
        let label = format!("{} to {}", describe(&o.wire), o.to);
        let message = self.trace.send(from, Self::ms(at), label);
        if let Wire::Transfer(t) = &o.wire {
            self.transfer_messages.insert(t.id, message);
            self.transfers.insert(message, (o.to, t.amount));
        }
        let latency = match self.config.workload {
            Workload::Example => match o.wire {
                Wire::Transfer(_) => self.config.latency_ms.1,
                _ => self.config.latency_ms.0,
            },
            Workload::Random => {
                let (lo, hi) = self.config.latency_ms;
                self.sim.rng().gen_range(lo..=hi)
            }
        };
        let mut arrive = at + Duration::from_millis(latency);
        if self.config.fifo {
            let last = self.last_arrival.entry((from, o.to)).or_default();
            arrive = arrive.max(*last);
            *last = arrive;
        }
        self.sim.schedule_at(
            arrive,
            Happening::Deliver {
                from,
                to: o.to,
                wire: o.wire,
                message,
            },
        );
    }

    /// What `snapshot` recorded, as the conservation checker reads it (transfers named by
    /// their trace messages).
    pub fn recorded_state(&self, g: &GlobalSnapshot) -> Recorded {
        let mut channels = Vec::new();
        for (from, to, t) in g.in_flight() {
            if let Some(&message) = self.transfer_messages.get(&t.id) {
                channels.push(RecordedTransfer {
                    from,
                    to,
                    message,
                    amount: t.amount,
                });
            }
        }
        Recorded {
            states: g.locals.iter().map(|(&n, l)| (n, l.state)).collect(),
            channels,
        }
    }

    /// The checkers' verdicts on a collected snapshot: conservation and the cut.
    pub fn judge(&self, r: &SnapshotRecord) -> Option<(ConservationReport, CutReport)> {
        let (_, g) = r.collected.as_ref()?;
        let recorded = self.recorded_state(g);
        let conservation = check_conservation(
            &self.trace,
            &r.cut,
            &self.transfers,
            &recorded,
            self.config.initial_total(),
        );
        Some((conservation, check_cut(&self.trace, &r.cut)))
    }

    /// The seed's report of each collected snapshot (`Node 1 State: $50` … `SUCCESS`), and
    /// what the checkers found when it fails.
    pub fn report(&self) -> String {
        let mut s = String::new();
        let initial = self.config.initial_total();
        if self.snapshots.is_empty() {
            s.push_str("No snapshot was started.\n");
        }
        for r in &self.snapshots {
            s.push_str("Snapshot Initiated...\n");
            let Some((conservation, cut)) = self.judge(r) else {
                let _ = writeln!(
                    s,
                    "INCOMPLETE: snapshot {}.{} did not collect every report by {} ms.",
                    r.id.initiator,
                    r.id.seq,
                    self.end.as_nanos() / 1_000_000
                );
                continue;
            };
            let (_, g) = r.collected.as_ref().expect("judged");
            for (n, l) in &g.locals {
                let _ = writeln!(s, "Node {n} State: ${}", l.state);
            }
            let mut per_channel: BTreeMap<(NodeId, NodeId), Vec<u64>> = BTreeMap::new();
            for (from, to, t) in g.in_flight() {
                per_channel.entry((from, to)).or_default().push(t.amount);
            }
            for ((from, to), amounts) in per_channel {
                let sum: u64 = amounts.iter().sum();
                if amounts.len() == 1 {
                    let _ = writeln!(s, "In-flight ({from}->{to}): ${sum}");
                } else {
                    let parts: Vec<String> = amounts.iter().map(|a| format!("${a}")).collect();
                    let _ = writeln!(
                        s,
                        "In-flight ({from}->{to}): ${sum} ({})",
                        parts.join(" + ")
                    );
                }
            }
            let total = g.total();
            if total == initial {
                let _ = writeln!(s, "TOTAL: ${total} (Matches initial ${initial})");
            } else {
                let _ = writeln!(s, "TOTAL: ${total} (Does not match initial ${initial})");
            }
            if conservation.holds() && cut.consistent() {
                s.push_str("SUCCESS: Consistent Global State captured.\n");
            } else {
                s.push_str("FAILURE: Inconsistent Global State captured.\n");
                for line in conservation.explain(|n| n.to_string()) {
                    let _ = writeln!(s, "  {line}");
                }
                for line in cut.explain(&self.trace) {
                    let _ = writeln!(s, "  {line}");
                }
            }
        }
        s
    }

    /// Whether every snapshot was collected and passed both checkers.
    pub fn all_hold(&self) -> bool {
        !self.snapshots.is_empty()
            && self.snapshots.iter().all(|r| {
                self.judge(r)
                    .is_some_and(|(c, cut)| c.holds() && cut.consistent())
            })
    }
}

fn describe(w: &Wire) -> String {
    match w {
        Wire::Transfer(t) => format!("${}", t.amount),
        Wire::Marker { snapshot, .. } => format!("marker {}.{}", snapshot.initiator, snapshot.seq),
        Wire::Report { report, .. } => {
            format!(
                "report {}.{}",
                report.snapshot.initiator, report.snapshot.seq
            )
        }
    }
}
