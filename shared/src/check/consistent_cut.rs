//! Consistent cuts, judged by vector clocks: F. Mattern, "Virtual Time and Global States of
//! Distributed Systems" (Parallel and Distributed Algorithms, 1989), and Chandy & Lamport's
//! consistent global states (ACM TOCS 3(1), 1985).
//!
//! A *cut* takes a prefix of every node's events. It is *consistent* when it is closed under
//! happened-before: if an event is inside, so is every event that happened before it.
//! Equivalently — and that is what makes it checkable from a trace alone — no message is
//! received inside the cut that was sent outside it (an *orphan*).
//!
//! **Invariant.** [`check_cut`] decides consistency by vector clocks, independently of the
//! message structure: the cut is consistent iff for every node `i` with frontier event `e_i`
//! (its last event inside) and every node `j`, `VC(e_i)[j] ≤ |cut_j|` — `e_i` knows of no event
//! of `j` beyond `j`'s frontier. It also lists the orphan messages, which explain a violation;
//! the two agree on every trace recorded with [`crate::trace::Trace`]'s clock rules (tested).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::trace::{EventId, EventKind, MessageId, Trace};
use crate::NodeId;

/// A cut: per node, how many of its events (a prefix of its lane) lie inside. A node not
/// named has none inside.
pub type Cut = BTreeMap<NodeId, usize>;

/// A message received inside the cut but sent outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Orphan {
    /// The message.
    pub message: MessageId,
    /// Its sender.
    pub from: NodeId,
    /// Its receiver.
    pub to: NodeId,
    /// The send event (outside the cut).
    pub send: EventId,
    /// The receive event (inside the cut).
    pub receive: EventId,
}

/// A frontier that knows of an event beyond another node's frontier (the vector-clock test).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Overreach {
    /// The node whose frontier knows too much.
    pub node: NodeId,
    /// The node it knows too much of.
    pub of: NodeId,
    /// How many of `of`'s events its frontier's vector clock counts.
    pub knows: u64,
    /// How many of `of`'s events the cut holds.
    pub inside: usize,
}

/// What [`check_cut`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CutReport {
    /// Vector-clock violations; the cut is consistent iff there are none.
    pub overreach: Vec<Overreach>,
    /// Messages received inside the cut and sent outside it.
    pub orphans: Vec<Orphan>,
}

impl CutReport {
    /// Whether the cut is consistent (by the vector clocks).
    pub fn consistent(&self) -> bool {
        self.overreach.is_empty()
    }

    /// The report in one line per finding, naming nodes as the trace does.
    pub fn explain(&self, trace: &Trace) -> Vec<String> {
        let mut out = Vec::new();
        for o in &self.orphans {
            out.push(format!(
                "message {} from {} to {} is received inside the cut but sent outside it",
                o.message,
                trace.node_name(o.from),
                trace.node_name(o.to)
            ));
        }
        for o in &self.overreach {
            out.push(format!(
                "{}'s frontier has seen {} events of {}, whose part of the cut holds {}",
                trace.node_name(o.node),
                o.knows,
                trace.node_name(o.of),
                o.inside
            ));
        }
        out
    }
}

/// Judges `cut` against `trace`'s vector clocks and messages.
pub fn check_cut(trace: &Trace, cut: &Cut) -> CutReport {
    let inside = |node: NodeId| cut.get(&node).copied().unwrap_or(0);
    let nodes = trace.nodes();
    let mut overreach = Vec::new();
    for &i in &nodes {
        let lane = trace.lane(i);
        let k = inside(i).min(lane.len());
        if k == 0 {
            continue;
        }
        let frontier = &trace.events()[lane[k - 1]];
        for &j in &nodes {
            let knows = frontier.vector.get(&j).copied().unwrap_or(0);
            if j != i && knows > inside(j) as u64 {
                overreach.push(Overreach {
                    node: i,
                    of: j,
                    knows,
                    inside: inside(j),
                });
            }
        }
    }
    let in_cut = |id: EventId| {
        let e = &trace.events()[id];
        trace.lane_position(id).is_some_and(|p| p < inside(e.node))
    };
    let mut orphans = Vec::new();
    for edge in trace.message_edges() {
        if in_cut(edge.receive) && !in_cut(edge.send) {
            orphans.push(Orphan {
                message: edge.message,
                from: trace.events()[edge.send].node,
                to: trace.events()[edge.receive].node,
                send: edge.send,
                receive: edge.receive,
            });
        }
    }
    CutReport { overreach, orphans }
}

/// Whether event `id` lies inside `cut` (used by the conservation checker too).
pub fn inside(trace: &Trace, cut: &Cut, id: EventId) -> bool {
    let Some(e) = trace.event(id) else {
        return false;
    };
    trace
        .lane_position(id)
        .is_some_and(|p| p < cut.get(&e.node).copied().unwrap_or(0))
}

/// Whether `message` was received by `to` inside `cut`.
pub fn received_inside(trace: &Trace, cut: &Cut, message: MessageId, to: NodeId) -> bool {
    trace.receives_of(message).iter().any(|&r| {
        trace.events()[r].node == to
            && matches!(trace.events()[r].kind, EventKind::Receive { .. })
            && inside(trace, cut, r)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 1 sends m0 to 2; 2 sends m1 to 3.
    fn chain() -> Trace {
        let mut t = Trace::new();
        let m0 = t.send(1, 0.0, "m0");
        t.receive(2, m0, 1.0, "m0").unwrap();
        let m1 = t.send(2, 2.0, "m1");
        t.receive(3, m1, 3.0, "m1").unwrap();
        t
    }

    #[test]
    fn a_cut_with_a_receive_but_not_its_send_is_inconsistent() {
        let t = chain();
        let good: Cut = [(1, 1), (2, 1), (3, 0)].into();
        assert!(check_cut(&t, &good).consistent());
        assert!(check_cut(&t, &good).orphans.is_empty());
        let bad: Cut = [(1, 1), (2, 1), (3, 1)].into(); // 3 got m1, 2 had not sent it
        let r = check_cut(&t, &bad);
        assert!(!r.consistent());
        assert_eq!(r.orphans.len(), 1);
        assert_eq!((r.orphans[0].from, r.orphans[0].to), (2, 3));
        assert_eq!(
            r.overreach,
            [Overreach {
                node: 3,
                of: 2,
                knows: 2,
                inside: 1
            }]
        );
        assert_eq!(
            r.explain(&t)[0],
            "message 1 from N2 to N3 is received inside the cut but sent outside it"
        );
    }

    #[test]
    fn the_empty_and_the_full_cut_are_consistent() {
        let t = chain();
        assert!(check_cut(&t, &Cut::new()).consistent());
        let full: Cut = t
            .nodes()
            .into_iter()
            .map(|n| (n, t.lane(n).len()))
            .collect();
        assert!(check_cut(&t, &full).consistent());
    }

    proptest! {
        /// On random traces and random cuts the vector-clock verdict and the orphan list agree.
        #[test]
        fn vector_clocks_and_orphans_agree(
            steps in proptest::collection::vec((0u32..4, 0u32..4, any::<bool>()), 1..40),
            cut in proptest::collection::vec(0usize..12, 4)
        ) {
            let mut t = Trace::new();
            let mut pending: Vec<(MessageId, NodeId)> = Vec::new();
            for (k, (a, b, deliver)) in steps.into_iter().enumerate() {
                if deliver && !pending.is_empty() {
                    let (m, to) = pending.remove(a as usize % pending.len());
                    t.receive(to, m, k as f64, "r").unwrap();
                } else if a != b {
                    pending.push((t.send(a, k as f64, "s"), b));
                } else {
                    t.local(a, k as f64, "l");
                }
            }
            let cut: Cut = cut.into_iter().enumerate().map(|(n, c)| (n as NodeId, c)).collect();
            let r = check_cut(&t, &cut);
            prop_assert_eq!(r.consistent(), r.orphans.is_empty());
        }
    }
}
