//! Lamport clocks — L. Lamport, "Time, Clocks, and the Ordering of Events in a Distributed
//! System" (CACM 1978).
//!
//! **Guarantee (clock condition):** if event `a` happened before event `b`, then
//! `L(a) < L(b)`. The converse does not hold: a smaller timestamp does not mean "happened
//! before" — the events may be concurrent (vector clocks, [`crate::clocks::vector_clock`], can tell).
//! Breaking ties by node id ([`LamportTimestamp`]'s `Ord`) extends the partial order to a total
//! order every node agrees on, Lamport's relation `⇒` (section 3 of the paper).
//!
//! The rules (IR1, IR2 of the paper): before each local event or send, increment; on receipt of
//! a message stamped `t`, set the clock to `max(local, t) + 1`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// A Lamport timestamp with its node id: ordered by `time`, then by `node` — a total order
/// consistent with happened-before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LamportTimestamp {
    /// The Lamport time (compared first).
    pub time: u64,
    /// The node that stamped it (breaks ties).
    pub node: NodeId,
}

impl fmt::Display for LamportTimestamp {
    /// `(2, 3)` — time, then node, as in the seed's chat output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.time, self.node)
    }
}

/// One node's Lamport clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LamportClock {
    /// The node this clock belongs to, stamped on every timestamp.
    node: NodeId,
    /// The time of the node's latest event (0 before any).
    time: u64,
}

impl LamportClock {
    /// A clock for `node` at time 0.
    pub fn new(node: NodeId) -> Self {
        LamportClock { node, time: 0 }
    }

    /// The node this clock belongs to.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The time of the latest event.
    pub fn time(&self) -> u64 {
        self.time
    }

    /// The latest event's timestamp, with this node's id.
    pub fn timestamp(&self) -> LamportTimestamp {
        LamportTimestamp {
            time: self.time,
            node: self.node,
        }
    }

    /// A local event (IR1): increments and returns the event's timestamp.
    pub fn tick(&mut self) -> LamportTimestamp {
        self.time += 1;
        self.timestamp()
    }

    /// A send: a local event whose timestamp travels with the message.
    pub fn send(&mut self) -> LamportTimestamp {
        self.tick()
    }

    /// A receipt of a message stamped `remote` (IR2): `max(local, remote) + 1`; returns the
    /// receive event's timestamp.
    pub fn receive(&mut self, remote: u64) -> LamportTimestamp {
        self.time = self.time.max(remote);
        self.tick()
    }

    /// Advances the clock past `remote` without recording an event of its own:
    /// `max(local, remote)`. The next [`tick`](Self::tick) is still later than `remote`, so the
    /// clock condition holds for every event that *is* stamped. The total-order chat uses this,
    /// stamping only broadcasts (as the seed's example does: B's reply to A's message 1 is 2).
    pub fn witness(&mut self, remote: u64) {
        self.time = self.time.max(remote);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clocks::vector_clock::VectorClock;
    use proptest::prelude::*;

    #[test]
    fn rules_and_tie_break() {
        let mut a = LamportClock::new(1);
        let mut b = LamportClock::new(2);
        let s = a.send();
        assert_eq!(s, LamportTimestamp { time: 1, node: 1 });
        assert_eq!(b.receive(s.time).time, 2);
        b.tick();
        assert_eq!(b.receive(1).time, 4);
        // Concurrent events with equal times: the node id decides, identically everywhere.
        let x = LamportTimestamp { time: 5, node: 2 };
        let y = LamportTimestamp { time: 5, node: 1 };
        assert!(y < x);
        assert_eq!(x.to_string(), "(5, 2)");
    }

    #[test]
    fn smaller_timestamp_does_not_mean_happened_before() {
        let mut a = LamportClock::new(1);
        let mut b = LamportClock::new(2);
        a.tick();
        a.tick();
        let late = a.tick(); // time 3 at A
        let early = b.tick(); // time 1 at B, concurrent with A's events
        assert!(early < late);
    }

    proptest! {
        /// The clock condition, checked against vector clocks (which characterise
        /// happened-before exactly) over random executions.
        #[test]
        fn clock_condition(ops in prop::collection::vec((0u32..4, 0u32..4, any::<bool>()), 1..80)) {
            let n = 4;
            let mut lamport: Vec<LamportClock> = (0..n).map(LamportClock::new).collect();
            let mut vector: Vec<VectorClock> = vec![VectorClock::new(); n as usize];
            let mut events: Vec<(LamportTimestamp, VectorClock)> = Vec::new();
            let mut in_flight: Vec<(u32, u64, VectorClock)> = Vec::new();
            for (from, to, send) in ops {
                if send || in_flight.is_empty() {
                    let t = lamport[from as usize].send();
                    vector[from as usize].increment(from);
                    events.push((t, vector[from as usize].clone()));
                    in_flight.push((to, t.time, vector[from as usize].clone()));
                } else {
                    let (dest, t, v) = in_flight.remove(from as usize % in_flight.len());
                    let ts = lamport[dest as usize].receive(t);
                    vector[dest as usize].merge(&v);
                    vector[dest as usize].increment(dest);
                    events.push((ts, vector[dest as usize].clone()));
                }
            }
            for (la, va) in &events {
                for (lb, vb) in &events {
                    if va.happened_before(vb) {
                        prop_assert!(la.time < lb.time);
                    }
                }
            }
        }
    }
}
