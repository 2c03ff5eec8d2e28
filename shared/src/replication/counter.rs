//! State-based counters — M. Shapiro, N. Preguiça, C. Baquero, M. Zawirski, "A comprehensive
//! study of Convergent and Commutative Replicated Data Types" (INRIA RR-7506, 2011), §3.1.1–2.
//!
//! **Guarantee (strong eventual consistency):** every replica increments only its own slot, and
//! `merge` is the slot-wise maximum — commutative, associative and idempotent — so replicas that
//! have received the same updates, in any order and any number of times, hold the same state
//! and report the same value. Each slot is that replica's own logical timeline, exactly like a
//! vector clock entry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// A grow-only counter: one non-decreasing slot per replica; the value is their sum.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GCounter {
    /// Increments made by each replica. A missing slot is 0.
    slots: BTreeMap<NodeId, u64>,
}

impl GCounter {
    /// A counter at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replica `node` adds `by` to the counter.
    ///
    /// # Panics
    /// If the replica's slot would overflow `u64`.
    pub fn increment(&mut self, node: NodeId, by: u64) {
        if by == 0 {
            return;
        }
        let slot = self.slots.entry(node).or_insert(0);
        *slot = slot.checked_add(by).expect("g-counter slot overflowed u64");
    }

    /// The counter's value: the sum of all slots (saturating at `u64::MAX`).
    pub fn value(&self) -> u64 {
        self.slots
            .values()
            .fold(0u64, |sum, &x| sum.saturating_add(x))
    }

    /// What replica `node` has added.
    pub fn slot(&self, node: NodeId) -> u64 {
        self.slots.get(&node).copied().unwrap_or(0)
    }

    /// Merges another replica's state: the slot-wise maximum.
    pub fn merge(&mut self, other: &GCounter) {
        for (&node, &count) in &other.slots {
            let slot = self.slots.entry(node).or_insert(0);
            *slot = (*slot).max(count);
        }
    }

    /// The slots, in node order.
    pub fn slots(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.slots.iter().map(|(&n, &c)| (n, c))
    }
}

/// A positive-negative counter: two grow-only counters, increments and decrements; the value
/// is their difference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PnCounter {
    /// Increments.
    p: GCounter,
    /// Decrements.
    n: GCounter,
}

impl PnCounter {
    /// A counter at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replica `node` adds `by`.
    pub fn increment(&mut self, node: NodeId, by: u64) {
        self.p.increment(node, by);
    }

    /// Replica `node` subtracts `by`.
    pub fn decrement(&mut self, node: NodeId, by: u64) {
        self.n.increment(node, by);
    }

    /// The value: increments minus decrements.
    pub fn value(&self) -> i128 {
        i128::from(self.p.value()) - i128::from(self.n.value())
    }

    /// Merges another replica's state: each half merged on its own.
    pub fn merge(&mut self, other: &PnCounter) {
        self.p.merge(&other.p);
        self.n.merge(&other.n);
    }

    /// The increments half.
    pub fn increments(&self) -> &GCounter {
        &self.p
    }

    /// The decrements half.
    pub fn decrements(&self) -> &GCounter {
        &self.n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    fn merged<T: Clone>(a: &T, b: &T, merge: impl Fn(&mut T, &T)) -> T {
        let mut x = a.clone();
        merge(&mut x, b);
        x
    }

    fn arb_pn() -> impl Strategy<Value = PnCounter> {
        prop::collection::vec((0u32..4, any::<bool>(), 0u64..10), 0..12).prop_map(|ops| {
            let mut c = PnCounter::new();
            for (node, up, by) in ops {
                if up {
                    c.increment(node, by);
                } else {
                    c.decrement(node, by);
                }
            }
            c
        })
    }

    proptest! {
        #[test]
        fn pn_merge_laws(a in arb_pn(), b in arb_pn(), c in arb_pn()) {
            let m = PnCounter::merge;
            prop_assert_eq!(merged(&a, &b, m), merged(&b, &a, m));
            prop_assert_eq!(merged(&merged(&a, &b, m), &c, m), merged(&a, &merged(&b, &c, m), m));
            prop_assert_eq!(merged(&a, &a, m), a.clone());
        }

        #[test]
        fn g_merge_laws(a in arb_pn(), b in arb_pn(), c in arb_pn()) {
            let (a, b, c) = (a.increments(), b.increments(), c.increments());
            let m = GCounter::merge;
            prop_assert_eq!(merged(a, b, m), merged(b, a, m));
            prop_assert_eq!(merged(&merged(a, b, m), c, m), merged(a, &merged(b, c, m), m));
            prop_assert_eq!(merged(a, a, m), a.clone());
            prop_assert!(merged(a, b, m).value() >= a.value().max(b.value()));
        }
    }

    /// Replicas update offline, then gossip their states in a random order with repeats: all
    /// converge to the true total.
    #[test]
    fn seeded_gossip_converges_to_the_true_total() {
        for seed in 0..10 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut replicas = vec![PnCounter::new(); 5];
            let mut truth: i128 = 0;
            for _ in 0..200 {
                let r = rng.gen_range(0..5u32);
                let by = rng.gen_range(1..5u64);
                if rng.gen_bool(0.6) {
                    replicas[r as usize].increment(r, by);
                    truth += i128::from(by);
                } else {
                    replicas[r as usize].decrement(r, by);
                    truth -= i128::from(by);
                }
                if rng.gen_bool(0.2) {
                    let (from, to) = (rng.gen_range(0..5), rng.gen_range(0..5));
                    let state = replicas[from].clone();
                    replicas[to].merge(&state);
                }
            }
            // Final anti-entropy: every ordered pair, shuffled, twice.
            let mut pairs: Vec<(usize, usize)> =
                (0..5).flat_map(|a| (0..5).map(move |b| (a, b))).collect();
            pairs.extend(pairs.clone());
            pairs.shuffle(&mut rng);
            for _ in 0..2 {
                for &(from, to) in &pairs {
                    let state = replicas[from].clone();
                    replicas[to].merge(&state);
                }
            }
            for r in &replicas {
                assert_eq!(r.value(), truth);
                assert_eq!(r, &replicas[0]);
            }
        }
    }

    #[test]
    fn wire_form() {
        let mut g = GCounter::new();
        g.increment(2, 3);
        g.increment(1, 1);
        assert_eq!(serde_json::to_string(&g).unwrap(), r#"{"1":1,"2":3}"#);
        assert_eq!(g.value(), 4);
        let mut pn = PnCounter::new();
        pn.increment(1, 2);
        pn.decrement(1, 5);
        assert_eq!(pn.value(), -3);
        let back: PnCounter = serde_json::from_str(&serde_json::to_string(&pn).unwrap()).unwrap();
        assert_eq!(back, pn);
    }
}
