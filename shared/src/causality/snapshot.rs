//! Distributed snapshots of a bank: K. M. Chandy and L. Lamport, "Distributed Snapshots:
//! Determining Global States of Distributed Systems" (ACM TOCS 3(1), 1985), and T. H. Lai and
//! T. H. Yang, "On Distributed Snapshots" (IPL 25(3), 1987) with F. Mattern's message counters
//! for termination ("Efficient Algorithms for Distributed Snapshots and Global Virtual Time
//! Approximation", JPDC 18(4), 1993).
//!
//! Every node holds a balance and moves money to its peers with [`Wire::Transfer`]s; any node
//! may start a snapshot ([`BankNode::initiate`]) while money is in flight. Each node records
//! its balance once, each incoming channel records the transfers that were in flight across
//! the cut, every node reports its part to the initiator ([`Wire::Report`]) when its channels
//! are closed, and the initiator assembles the [`GlobalSnapshot`].
//!
//! - **Chandy–Lamport** (needs FIFO channels): on its first marker a node records its state,
//!   sends a marker on every outgoing channel and records every other incoming channel until
//!   that channel's marker arrives.
//! - **Lai–Yang** (any channels): every transfer carries its sender's colour — the snapshots
//!   its sender had recorded when it sent it (red for those, white for the others). A node
//!   records before it takes in a red transfer; a channel's state is the white transfers that
//!   arrive after the receiver recorded. The control message (the [`Wire::Marker`]) carries how
//!   many white transfers the sender sent on the channel, so the receiver knows when the channel
//!   is complete even if the control message overtook them.
//!
//! **Invariant (conservation).** With FIFO channels for Chandy–Lamport, or any channels for
//! Lai–Yang, the recorded balances plus the recorded in-flight transfers add up to the money
//! the bank started with, and the recorded cut is consistent (no transfer is received inside
//! the cut that was sent outside it). Concurrent snapshots (several initiators, or one
//! initiator several times) are kept apart: markers, colours, counts and recordings are all per
//! [`SnapshotId`]. The checkers that judge a recorded run are
//! [`crate::check::conservation`] and [`crate::check::consistent_cut`].
//!
//! The node is a pure state machine: it never sends anything itself, it returns the
//! [`Outgoing`] messages for the caller (the simulator, or a browser tab's relay connection) to
//! carry. Every message may come from a hostile peer, so each receive is checked and refused
//! with a [`SnapshotError`] rather than trusted.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// Names one snapshot: the node that started it and its count of snapshots started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SnapshotId {
    /// The node that started it and collects the reports.
    pub initiator: NodeId,
    /// How many snapshots the initiator had started before this one.
    pub seq: u32,
}

/// Which snapshot algorithm the nodes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Markers on FIFO channels (Chandy & Lamport 1985).
    ChandyLamport,
    /// Colours on the transfers and white-message counts on the control messages (Lai & Yang
    /// 1987, Mattern 1993): no FIFO needed.
    LaiYang,
}

impl Algorithm {
    /// `chandy-lamport` / `lai-yang`.
    pub fn key(self) -> &'static str {
        match self {
            Algorithm::ChandyLamport => "chandy-lamport",
            Algorithm::LaiYang => "lai-yang",
        }
    }

    /// `Chandy–Lamport` / `Lai–Yang`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::ChandyLamport => "Chandy–Lamport",
            Algorithm::LaiYang => "Lai–Yang",
        }
    }
}

/// Names one transfer: its sender and the sender's count of transfers before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TransferId {
    /// The sending node.
    pub from: NodeId,
    /// The sender's count of transfers sent before this one.
    pub seq: u64,
}

/// Money on its way from one node to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Which transfer this is.
    pub id: TransferId,
    /// Dollars moved.
    pub amount: u64,
    /// Lai–Yang's colour: the snapshots the sender had recorded when it sent this (the
    /// transfer is red for them, white for every other). Chandy–Lamport nodes ignore it.
    #[serde(default)]
    pub red: Vec<SnapshotId>,
}

/// One node's part of a snapshot, as it reports it to the initiator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalSnapshot {
    /// The snapshot.
    pub snapshot: SnapshotId,
    /// The reporting node.
    pub node: NodeId,
    /// Its balance when it recorded.
    pub state: u64,
    /// Per incoming channel (keyed by the sender), the transfers recorded as in flight.
    pub channels: BTreeMap<NodeId, Vec<Transfer>>,
}

/// What one node sends another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Wire {
    /// Money.
    Transfer(Transfer),
    /// The snapshot's marker (Chandy–Lamport) or control message (Lai–Yang).
    Marker {
        /// Which snapshot.
        snapshot: SnapshotId,
        /// How many transfers the sender sent on this channel before it recorded: the white
        /// ones Lai–Yang's receiver must wait for. Chandy–Lamport ignores it (FIFO does the
        /// job).
        white_sent: u64,
        /// Lai–Yang's colour of this message (besides `snapshot` itself): the other
        /// snapshots its sender had recorded. Every message carries one, or a control message
        /// of one snapshot could cross another snapshot's cut backwards.
        #[serde(default)]
        red: Vec<SnapshotId>,
    },
    /// A node's part of the snapshot, on its way to the initiator.
    Report {
        /// The part.
        report: LocalSnapshot,
        /// Lai–Yang's colour of this message, as for a marker.
        #[serde(default)]
        red: Vec<SnapshotId>,
    },
}

/// A message the caller must carry from this node to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// The destination.
    pub to: NodeId,
    /// The message.
    pub wire: Wire,
}

/// A whole snapshot, assembled by the initiator from every node's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalSnapshot {
    /// The snapshot.
    pub snapshot: SnapshotId,
    /// Every node's part, by node.
    pub locals: BTreeMap<NodeId, LocalSnapshot>,
}

impl GlobalSnapshot {
    /// Every recorded in-flight transfer as `(from, to, transfer)`, by channel.
    pub fn in_flight(&self) -> Vec<(NodeId, NodeId, &Transfer)> {
        let mut out = Vec::new();
        for (&to, local) in &self.locals {
            for (&from, transfers) in &local.channels {
                out.extend(transfers.iter().map(|t| (from, to, t)));
            }
        }
        out.sort_by_key(|&(from, to, t)| (from, to, t.id));
        out
    }

    /// Recorded balances plus recorded in-flight money.
    pub fn total(&self) -> u64 {
        let states: u64 = self.locals.values().map(|l| l.state).sum();
        let flight: u64 = self.in_flight().iter().map(|(_, _, t)| t.amount).sum();
        states + flight
    }
}

/// A message or request this node refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The sender is not one of this node's peers.
    #[error("node {node} has no channel from {from}")]
    UnknownPeer {
        /// This node.
        node: NodeId,
        /// The claimed sender.
        from: NodeId,
    },
    /// A transfer to a node that is not a peer (or to itself).
    #[error("node {node} has no channel to {to}")]
    NoChannel {
        /// This node.
        node: NodeId,
        /// The requested destination.
        to: NodeId,
    },
    /// A transfer of more than the balance, or of nothing.
    #[error("node {node} cannot send ${amount} with a balance of ${balance}")]
    Funds {
        /// This node.
        node: NodeId,
        /// The amount asked for.
        amount: u64,
        /// The balance.
        balance: u64,
    },
    /// A second marker for the same snapshot on the same channel.
    #[error("node {node} got a second marker of snapshot {}.{} from {from}", snapshot.initiator, snapshot.seq)]
    DuplicateMarker {
        /// This node.
        node: NodeId,
        /// The snapshot.
        snapshot: SnapshotId,
        /// The channel's sender.
        from: NodeId,
    },
    /// A transfer whose id says it came from another node than the channel it arrived on, or
    /// one that would overflow the balance.
    #[error("node {node} refuses a forged or impossible transfer on the channel from {from}")]
    BadTransfer {
        /// This node.
        node: NodeId,
        /// The channel's sender.
        from: NodeId,
    },
    /// More white transfers arrived on a channel than its control message counted.
    #[error("node {node} got more white transfers from {from} than its control message of snapshot {}.{} counted", snapshot.initiator, snapshot.seq)]
    TooManyWhite {
        /// This node.
        node: NodeId,
        /// The snapshot.
        snapshot: SnapshotId,
        /// The channel's sender.
        from: NodeId,
    },
    /// A report for a snapshot this node did not start, a report from the wrong node, or a
    /// second report from a node.
    #[error("node {node} refuses a report from {from}")]
    BadReport {
        /// This node.
        node: NodeId,
        /// The sender.
        from: NodeId,
    },
}

/// What handling one call did, beyond changing the node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// Messages to carry, in the order they were sent (a channel's order matters).
    pub out: Vec<Outgoing>,
    /// Snapshots this node recorded its state for *before* taking in the message (for a
    /// space-time diagram: the cut passes just before the receive).
    pub recorded: Vec<SnapshotId>,
    /// Snapshots whose part this node completed (and reported) in this call.
    pub completed: Vec<SnapshotId>,
    /// Snapshots this node (their initiator) now holds every report of.
    pub collected: Vec<GlobalSnapshot>,
}

/// One snapshot as seen by one node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Recording {
    /// The balance when the node recorded.
    state: u64,
    /// Incoming channels still recording.
    open: BTreeSet<NodeId>,
    /// Per incoming channel, the transfers recorded as in flight.
    channels: BTreeMap<NodeId, Vec<Transfer>>,
    /// Lai–Yang: per incoming channel, the white count its control message announced.
    expected_white: BTreeMap<NodeId, u64>,
    /// Lai–Yang: per incoming channel, white transfers received (before and after recording).
    white_received: BTreeMap<NodeId, u64>,
    /// The node has reported its part.
    reported: bool,
}

/// One bank node: its balance, its channels to every peer, and every snapshot it takes part in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankNode {
    /// This node.
    id: NodeId,
    /// Everyone it has a channel to and from (every other node: a complete graph).
    peers: Vec<NodeId>,
    /// The algorithm the whole bank runs.
    algorithm: Algorithm,
    /// Dollars held now.
    balance: u64,
    /// Transfers sent per outgoing channel (numbering, and Lai–Yang's white counts).
    sent: BTreeMap<NodeId, u64>,
    /// Transfers received per incoming channel (Lai–Yang's white counts at recording).
    received: BTreeMap<NodeId, u64>,
    /// Transfers sent in all.
    next_transfer: u64,
    /// Snapshots this node started.
    next_snapshot: u32,
    /// Every snapshot this node has recorded, by id.
    recordings: BTreeMap<SnapshotId, Recording>,
    /// As an initiator: the reports in so far, per snapshot it started.
    reports: BTreeMap<SnapshotId, BTreeMap<NodeId, LocalSnapshot>>,
    /// As an initiator: the snapshots with every report in.
    finished: Vec<GlobalSnapshot>,
}

impl BankNode {
    /// Node `id` with `balance` dollars and a channel to and from each of `peers`.
    pub fn new(id: NodeId, peers: &[NodeId], algorithm: Algorithm, balance: u64) -> Self {
        let peers: Vec<NodeId> = peers
            .iter()
            .copied()
            .filter(|&p| p != id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        BankNode {
            id,
            sent: peers.iter().map(|&p| (p, 0)).collect(),
            received: peers.iter().map(|&p| (p, 0)).collect(),
            peers,
            algorithm,
            balance,
            next_transfer: 0,
            next_snapshot: 0,
            recordings: BTreeMap::new(),
            reports: BTreeMap::new(),
            finished: Vec::new(),
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Its peers.
    pub fn peers(&self) -> &[NodeId] {
        &self.peers
    }

    /// Dollars held now.
    pub fn balance(&self) -> u64 {
        self.balance
    }

    /// The algorithm it runs.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The balance it recorded for `snapshot`, if it has recorded.
    pub fn recorded_state(&self, snapshot: SnapshotId) -> Option<u64> {
        self.recordings.get(&snapshot).map(|r| r.state)
    }

    /// Whether it has reported its part of `snapshot`.
    pub fn has_reported(&self, snapshot: SnapshotId) -> bool {
        self.recordings.get(&snapshot).is_some_and(|r| r.reported)
    }

    /// The snapshots this node started that have every report in.
    pub fn finished(&self) -> &[GlobalSnapshot] {
        &self.finished
    }

    /// Sends `amount` dollars to `to`.
    pub fn transfer(&mut self, to: NodeId, amount: u64) -> Result<Outgoing, SnapshotError> {
        if !self.peers.contains(&to) {
            return Err(SnapshotError::NoChannel { node: self.id, to });
        }
        if amount == 0 || amount > self.balance {
            return Err(SnapshotError::Funds {
                node: self.id,
                amount,
                balance: self.balance,
            });
        }
        self.balance -= amount;
        *self.sent.entry(to).or_default() += 1;
        let id = TransferId {
            from: self.id,
            seq: self.next_transfer,
        };
        self.next_transfer += 1;
        Ok(Outgoing {
            to,
            wire: Wire::Transfer(Transfer {
                id,
                amount,
                red: self.recordings.keys().copied().collect(),
            }),
        })
    }

    /// Starts a new snapshot: records this node's state and sends the markers.
    pub fn initiate(&mut self) -> (SnapshotId, Effects) {
        let snapshot = SnapshotId {
            initiator: self.id,
            seq: self.next_snapshot,
        };
        self.next_snapshot += 1;
        let mut fx = Effects::default();
        self.record(snapshot, None, &mut fx);
        self.try_complete(snapshot, &mut fx);
        (snapshot, fx)
    }

    /// Takes in a message that arrived on the channel from `from`.
    pub fn receive(&mut self, from: NodeId, wire: Wire) -> Result<Effects, SnapshotError> {
        if !self.peers.contains(&from) {
            return Err(SnapshotError::UnknownPeer {
                node: self.id,
                from,
            });
        }
        let mut fx = Effects::default();
        match wire {
            Wire::Transfer(t) => self.take_transfer(from, t, &mut fx)?,
            Wire::Marker {
                snapshot,
                white_sent,
                red,
            } => {
                self.take_colour(&red, &mut fx);
                self.take_marker(from, snapshot, white_sent, &mut fx)?
            }
            Wire::Report { report, red } => {
                self.take_colour(&red, &mut fx);
                self.take_report(from, report, &mut fx)?
            }
        }
        Ok(fx)
    }

    /// Lai–Yang: records every snapshot a message is red for before taking the message in.
    fn take_colour(&mut self, red: &[SnapshotId], fx: &mut Effects) {
        if self.algorithm != Algorithm::LaiYang {
            return;
        }
        for &s in red {
            if !self.recordings.contains_key(&s) {
                self.record(s, None, fx);
                fx.recorded.push(s);
                self.try_complete(s, fx);
            }
        }
    }

    fn take_transfer(
        &mut self,
        from: NodeId,
        t: Transfer,
        fx: &mut Effects,
    ) -> Result<(), SnapshotError> {
        let bad = SnapshotError::BadTransfer {
            node: self.id,
            from,
        };
        if t.id.from != from || t.amount == 0 {
            return Err(bad);
        }
        let Some(balance) = self.balance.checked_add(t.amount) else {
            return Err(bad);
        };
        if self.algorithm == Algorithm::LaiYang {
            // Refuse before changing anything: a channel never carries more white transfers
            // than its control message counted.
            let got = |r: &Recording| r.white_received.get(&from).copied().unwrap_or(0);
            if let Some((&s, _)) = self.recordings.iter().find(|&(s, r)| {
                !t.red.contains(s) && r.expected_white.get(&from).is_some_and(|&e| got(r) >= e)
            }) {
                return Err(SnapshotError::TooManyWhite {
                    node: self.id,
                    snapshot: s,
                    from,
                });
            }
            // Record before taking in a red transfer: it was sent after its sender's cut.
            self.take_colour(&t.red, fx);
        }
        self.balance = balance;
        *self.received.entry(from).or_default() += 1;
        let mut touched = Vec::new();
        for (&s, rec) in &mut self.recordings {
            match self.algorithm {
                Algorithm::ChandyLamport => {
                    if rec.open.contains(&from) {
                        rec.channels.entry(from).or_default().push(t.clone());
                    }
                }
                Algorithm::LaiYang => {
                    if t.red.contains(&s) {
                        continue;
                    }
                    *rec.white_received.entry(from).or_default() += 1;
                    // White and received after recording: it was in flight across the cut.
                    rec.channels.entry(from).or_default().push(t.clone());
                    touched.push(s);
                }
            }
        }
        for s in touched {
            self.try_complete(s, fx);
        }
        Ok(())
    }

    fn take_marker(
        &mut self,
        from: NodeId,
        snapshot: SnapshotId,
        white_sent: u64,
        fx: &mut Effects,
    ) -> Result<(), SnapshotError> {
        let duplicate = SnapshotError::DuplicateMarker {
            node: self.id,
            snapshot,
            from,
        };
        match self.algorithm {
            Algorithm::ChandyLamport => {
                if let Some(rec) = self.recordings.get_mut(&snapshot) {
                    if !rec.open.remove(&from) {
                        return Err(duplicate);
                    }
                } else {
                    // First marker: record, and the channel it came on is empty.
                    self.record(snapshot, Some(from), fx);
                    fx.recorded.push(snapshot);
                }
            }
            Algorithm::LaiYang => {
                if !self.recordings.contains_key(&snapshot) {
                    self.record(snapshot, None, fx);
                    fx.recorded.push(snapshot);
                }
                let id = self.id;
                let rec = self.recordings.get_mut(&snapshot).expect("just recorded");
                if rec.expected_white.contains_key(&from) {
                    return Err(duplicate);
                }
                if rec.white_received.get(&from).copied().unwrap_or(0) > white_sent {
                    return Err(SnapshotError::TooManyWhite {
                        node: id,
                        snapshot,
                        from,
                    });
                }
                rec.expected_white.insert(from, white_sent);
            }
        }
        self.try_complete(snapshot, fx);
        Ok(())
    }

    fn take_report(
        &mut self,
        from: NodeId,
        local: LocalSnapshot,
        fx: &mut Effects,
    ) -> Result<(), SnapshotError> {
        let bad = SnapshotError::BadReport {
            node: self.id,
            from,
        };
        if local.snapshot.initiator != self.id || local.node != from {
            return Err(bad);
        }
        let Some(reports) = self.reports.get_mut(&local.snapshot) else {
            return Err(bad);
        };
        if reports.contains_key(&from) {
            return Err(bad);
        }
        let snapshot = local.snapshot;
        reports.insert(from, local);
        self.try_collect(snapshot, fx);
        Ok(())
    }

    /// Records this node's state for `snapshot` and sends its markers. `marker_from` is the
    /// channel whose marker triggered it (Chandy–Lamport: that channel is empty).
    fn record(&mut self, snapshot: SnapshotId, marker_from: Option<NodeId>, fx: &mut Effects) {
        let open: BTreeSet<NodeId> = match self.algorithm {
            Algorithm::ChandyLamport => self
                .peers
                .iter()
                .copied()
                .filter(|&p| Some(p) != marker_from)
                .collect(),
            Algorithm::LaiYang => BTreeSet::new(),
        };
        self.recordings.insert(
            snapshot,
            Recording {
                state: self.balance,
                open,
                channels: BTreeMap::new(),
                expected_white: BTreeMap::new(),
                // Everything received so far was white for a snapshot not yet recorded.
                white_received: self.received.clone(),
                reported: false,
            },
        );
        if snapshot.initiator == self.id {
            self.reports.entry(snapshot).or_default();
        }
        let red: Vec<SnapshotId> = self
            .recordings
            .keys()
            .copied()
            .filter(|&s| s != snapshot)
            .collect();
        for &p in &self.peers {
            fx.out.push(Outgoing {
                to: p,
                wire: Wire::Marker {
                    snapshot,
                    white_sent: self.sent.get(&p).copied().unwrap_or(0),
                    red: red.clone(),
                },
            });
        }
    }

    /// Reports this node's part of `snapshot` if every incoming channel is complete.
    fn try_complete(&mut self, snapshot: SnapshotId, fx: &mut Effects) {
        let Some(rec) = self.recordings.get_mut(&snapshot) else {
            return;
        };
        if rec.reported {
            return;
        }
        let done = match self.algorithm {
            Algorithm::ChandyLamport => rec.open.is_empty(),
            Algorithm::LaiYang => self.peers.iter().all(|p| {
                rec.expected_white
                    .get(p)
                    .is_some_and(|&e| rec.white_received.get(p).copied().unwrap_or(0) == e)
            }),
        };
        if !done {
            return;
        }
        rec.reported = true;
        let local = LocalSnapshot {
            snapshot,
            node: self.id,
            state: rec.state,
            channels: rec.channels.clone(),
        };
        fx.completed.push(snapshot);
        if snapshot.initiator == self.id {
            self.reports
                .entry(snapshot)
                .or_default()
                .insert(self.id, local);
            self.try_collect(snapshot, fx);
        } else {
            fx.out.push(Outgoing {
                to: snapshot.initiator,
                wire: Wire::Report {
                    report: local,
                    red: self.recordings.keys().copied().collect(),
                },
            });
        }
    }

    fn try_collect(&mut self, snapshot: SnapshotId, fx: &mut Effects) {
        let Some(reports) = self.reports.get(&snapshot) else {
            return;
        };
        if reports.len() == self.peers.len() + 1 {
            let global = GlobalSnapshot {
                snapshot,
                locals: reports.clone(),
            };
            self.reports.remove(&snapshot);
            self.finished.push(global.clone());
            fx.collected.push(global);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A hand-driven bank: per directed channel a queue, delivered when the test says.
    struct Bank {
        nodes: BTreeMap<NodeId, BankNode>,
        channels: BTreeMap<(NodeId, NodeId), VecDeque<Wire>>,
        collected: Vec<GlobalSnapshot>,
    }

    impl Bank {
        fn new(algorithm: Algorithm, balances: &[(NodeId, u64)]) -> Bank {
            let ids: Vec<NodeId> = balances.iter().map(|b| b.0).collect();
            Bank {
                nodes: balances
                    .iter()
                    .map(|&(id, b)| (id, BankNode::new(id, &ids, algorithm, b)))
                    .collect(),
                channels: BTreeMap::new(),
                collected: Vec::new(),
            }
        }

        fn post(&mut self, from: NodeId, fx: Effects) {
            for o in fx.out {
                self.channels
                    .entry((from, o.to))
                    .or_default()
                    .push_back(o.wire);
            }
            self.collected.extend(fx.collected);
        }

        fn send(&mut self, from: NodeId, to: NodeId, amount: u64) {
            let o = self
                .nodes
                .get_mut(&from)
                .unwrap()
                .transfer(to, amount)
                .unwrap();
            self.channels
                .entry((from, o.to))
                .or_default()
                .push_back(o.wire);
        }

        fn initiate(&mut self, at: NodeId) -> SnapshotId {
            let (s, fx) = self.nodes.get_mut(&at).unwrap().initiate();
            self.post(at, fx);
            s
        }

        /// Delivers the head of the channel `from → to` (FIFO).
        fn deliver(&mut self, from: NodeId, to: NodeId) -> Wire {
            let w = self
                .channels
                .get_mut(&(from, to))
                .and_then(VecDeque::pop_front)
                .expect("a message on the channel");
            let fx = self
                .nodes
                .get_mut(&to)
                .unwrap()
                .receive(from, w.clone())
                .unwrap();
            self.post(to, fx);
            w
        }

        /// Delivers the `k`-th message on the channel (overtaking: no FIFO).
        fn deliver_nth(&mut self, from: NodeId, to: NodeId, k: usize) -> Wire {
            let q = self.channels.get_mut(&(from, to)).unwrap();
            let w = q.remove(k).unwrap();
            let fx = self
                .nodes
                .get_mut(&to)
                .unwrap()
                .receive(from, w.clone())
                .unwrap();
            self.post(to, fx);
            w
        }

        /// Delivers everything still in flight, channel by channel in FIFO order.
        fn drain(&mut self) {
            while let Some((&(from, to), _)) = self.channels.iter().find(|(_, q)| !q.is_empty()) {
                self.deliver(from, to);
            }
        }
    }

    const A: NodeId = 1;
    const B: NodeId = 2;
    const C: NodeId = 3;

    /// The seed's thinking exercise: A=$50, B=$30, C=$20; A sends $10 to B (M1), B sends $5
    /// to C (M2); the snapshot starts at A after M1 left.
    #[test]
    fn the_seed_money_transfer_trace_records_100_dollars() {
        for algorithm in [Algorithm::ChandyLamport, Algorithm::LaiYang] {
            let mut bank = Bank::new(algorithm, &[(A, 50), (B, 30), (C, 20)]);
            bank.send(A, B, 10); // M1
            let s = bank.initiate(A);
            assert_eq!(
                bank.nodes[&A].recorded_state(s),
                Some(40),
                "A after sending"
            );
            bank.deliver(A, B); // M1 arrives at B
            assert!(matches!(bank.deliver(A, B), Wire::Marker { .. }));
            assert_eq!(bank.nodes[&B].recorded_state(s), Some(40), "B after M1");
            bank.send(B, C, 5); // M2, after B's marker went out on B→C
            bank.drain();
            let [g] = bank.collected.as_slice() else {
                panic!("one snapshot collected, got {:?}", bank.collected)
            };
            assert_eq!(g.snapshot, s);
            let states: Vec<u64> = g.locals.values().map(|l| l.state).collect();
            assert_eq!(states, [40, 40, 20], "{algorithm:?}");
            assert!(
                g.in_flight().is_empty(),
                "M1 in B's state, M2 after the cut"
            );
            assert_eq!(g.total(), 100);
        }
    }

    /// The variant where M2 leaves B before B's marker: it is in flight across the cut and is
    /// recorded on channel B→C.
    #[test]
    fn a_transfer_sent_before_the_marker_is_recorded_on_its_channel() {
        for algorithm in [Algorithm::ChandyLamport, Algorithm::LaiYang] {
            let mut bank = Bank::new(algorithm, &[(A, 50), (B, 30), (C, 20)]);
            bank.send(A, B, 10);
            bank.deliver(A, B);
            bank.send(B, C, 5); // M2 leaves B before B records
            bank.initiate(A);
            bank.deliver(A, C); // C records $20, starts recording B→C
            bank.deliver(A, B); // B records $35, marker behind M2 on B→C
            bank.drain();
            let g = &bank.collected[0];
            let flights: Vec<(NodeId, NodeId, u64)> = g
                .in_flight()
                .iter()
                .map(|&(f, t, x)| (f, t, x.amount))
                .collect();
            assert_eq!(flights, [(B, C, 5)], "{algorithm:?}");
            assert_eq!(g.total(), 100);
        }
    }

    #[test]
    fn without_fifo_chandy_lamport_loses_money_and_lai_yang_does_not() {
        let run = |algorithm| {
            let mut bank = Bank::new(algorithm, &[(A, 50), (B, 30), (C, 20)]);
            bank.send(B, C, 5); // M2 leaves before B records
            bank.initiate(A);
            bank.deliver(A, C); // C records $20 and waits for B→C
            bank.deliver(A, B); // B records $25, its marker queued behind M2
            bank.deliver_nth(B, C, 1); // the marker overtakes M2
            bank.drain();
            bank.collected[0].total()
        };
        assert_eq!(run(Algorithm::ChandyLamport), 95, "M2's $5 vanished");
        assert_eq!(
            run(Algorithm::LaiYang),
            100,
            "the count waits for the white M2"
        );
    }

    #[test]
    fn a_red_transfer_makes_a_lai_yang_node_record_first() {
        let mut bank = Bank::new(Algorithm::LaiYang, &[(A, 50), (B, 30), (C, 20)]);
        let s = bank.initiate(A);
        bank.send(A, B, 10); // red: sent after A recorded
        bank.deliver_nth(A, B, 1); // overtakes A's control message
        assert_eq!(
            bank.nodes[&B].recorded_state(s),
            Some(30),
            "recorded before the red $10"
        );
        bank.drain();
        assert_eq!(bank.collected[0].total(), 100);
        assert!(bank.collected[0].in_flight().is_empty());
    }

    #[test]
    fn concurrent_snapshots_from_two_initiators_are_kept_apart() {
        for algorithm in [Algorithm::ChandyLamport, Algorithm::LaiYang] {
            let mut bank = Bank::new(algorithm, &[(A, 50), (B, 30), (C, 20)]);
            bank.send(A, C, 7);
            bank.send(C, B, 3);
            let sa = bank.initiate(A);
            bank.send(B, A, 4);
            let sb = bank.initiate(B);
            bank.send(C, A, 2);
            bank.drain();
            assert_eq!(bank.collected.len(), 2, "{algorithm:?}");
            for g in &bank.collected {
                assert_eq!(g.total(), 100, "{algorithm:?} {:?}", g.snapshot);
                assert_eq!(g.locals.len(), 3);
            }
            assert_eq!(bank.nodes[&A].finished()[0].snapshot, sa);
            assert_eq!(bank.nodes[&B].finished()[0].snapshot, sb);
        }
    }

    #[test]
    fn hostile_messages_are_refused() {
        let mut n = BankNode::new(A, &[A, B, C], Algorithm::ChandyLamport, 10);
        let t = |from, amount| {
            Wire::Transfer(Transfer {
                id: TransferId { from, seq: 0 },
                amount,
                red: vec![],
            })
        };
        assert!(matches!(
            n.receive(9, t(9, 1)),
            Err(SnapshotError::UnknownPeer { .. })
        ));
        assert!(matches!(
            n.receive(B, t(C, 1)),
            Err(SnapshotError::BadTransfer { .. })
        ));
        assert!(matches!(
            n.receive(B, t(B, u64::MAX)),
            Err(SnapshotError::BadTransfer { .. })
        ));
        assert!(matches!(
            n.transfer(B, 11),
            Err(SnapshotError::Funds { .. })
        ));
        assert!(matches!(
            n.transfer(A, 1),
            Err(SnapshotError::NoChannel { .. })
        ));
        let s = SnapshotId {
            initiator: B,
            seq: 0,
        };
        let marker = Wire::Marker {
            snapshot: s,
            white_sent: 0,
            red: vec![],
        };
        n.receive(B, marker.clone()).unwrap();
        assert!(matches!(
            n.receive(B, marker),
            Err(SnapshotError::DuplicateMarker { .. })
        ));
        let forged = LocalSnapshot {
            snapshot: s,
            node: B,
            state: 1,
            channels: BTreeMap::new(),
        };
        assert!(matches!(
            n.receive(
                B,
                Wire::Report {
                    report: forged,
                    red: vec![]
                }
            ),
            Err(SnapshotError::BadReport { .. })
        ));
        // Lai–Yang: more white transfers than the control message counted.
        let mut ly = BankNode::new(A, &[A, B], Algorithm::LaiYang, 10);
        ly.receive(
            B,
            Wire::Marker {
                snapshot: s,
                white_sent: 0,
                red: vec![],
            },
        )
        .unwrap();
        assert!(matches!(
            ly.receive(B, t(B, 1)),
            Err(SnapshotError::TooManyWhite { .. })
        ));
    }

    #[test]
    fn wire_messages_round_trip_through_json() {
        let w = Wire::Transfer(Transfer {
            id: TransferId { from: 2, seq: 4 },
            amount: 10,
            red: vec![SnapshotId {
                initiator: 1,
                seq: 0,
            }],
        });
        let s = serde_json::to_string(&w).unwrap();
        assert_eq!(serde_json::from_str::<Wire>(&s).unwrap(), w);
    }
}
