//! Vector clocks — C. J. Fidge, "Timestamps in message-passing systems that preserve the partial
//! ordering" (1988) and F. Mattern, "Virtual time and global states of distributed systems"
//! (1989).
//!
//! **Guarantee (strong clock condition):** for events `a` and `b` with vector timestamps
//! `V(a)` and `V(b)`, `a → b` (a happened before b) **if and only if** `V(a) < V(b)`. Two events
//! whose clocks are [`Causality::Concurrent`] are causally unrelated. Lamport clocks
//! ([`crate::clocks::lamport`]) give only the "if" direction.
//!
//! # Dynamic membership
//! The clock is a sparse map from [`NodeId`] to a count; a node that is missing has count 0.
//! Clocks of different sizes therefore compare correctly: a node that has just joined simply
//! has no entry yet. Entries equal to zero are never stored (an invariant of the type), so two
//! clocks are `==` exactly when they [`compare`](VectorClock::compare) as [`Causality::Equal`].
//!
//! # Pruning policy for departed nodes
//! An entry may be removed with [`VectorClock::forget`] only once the node has left for good
//! **and** every one of its events is known to be delivered at every remaining replica (the
//! entry is *stable*). Removing it earlier, or on only some replicas, makes clocks that differ
//! only in that entry compare wrongly (a descendant would look concurrent or equal). Chronoscope
//! never prunes on its own: the owner of the membership view (the relay's room) decides, and
//! must tell every replica to forget the same node. Dotted version vectors ([`crate::replication::dvv`]) are
//! the structural answer to growing metadata; pruning is the operational one.
//!
//! # Wire form
//! Serialized as a map from node id to count, zero entries omitted — in JSON
//! `{"1":3,"4":1}`. Deserializing drops explicit zeros, so the invariant holds for any input.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::NodeId;

/// How two vector clocks (two events) are causally related.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Causality {
    /// The left clock happened before the right one (`left < right`).
    Before,
    /// The left clock happened after the right one (`left > right`).
    After,
    /// The clocks are identical: the same causal history.
    Equal,
    /// Neither happened before the other: the events are concurrent (a conflict, for data).
    Concurrent,
}

impl Causality {
    /// The relation seen from the other side: `a.compare(b).reverse() == b.compare(a)`.
    pub fn reverse(self) -> Causality {
        match self {
            Causality::Before => Causality::After,
            Causality::After => Causality::Before,
            other => other,
        }
    }
}

/// A vector clock keyed by node id; a missing entry counts 0.
///
/// Ordered by [`PartialOrd`] consistently with [`VectorClock::compare`]: `partial_cmp` is
/// `None` exactly for concurrent clocks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct VectorClock {
    /// `(node, count)` sorted by node; never holds a zero (a zero is the same as absence).
    /// A sorted vector rather than a tree: clocks are small, compared and merged far more
    /// often than grown, and a flat array is compact and cache-friendly.
    entries: Vec<(NodeId, u64)>,
}

impl VectorClock {
    /// The clock of the initial state: every count 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The count for `node` (0 if the clock has never heard of it).
    pub fn get(&self, node: NodeId) -> u64 {
        match self.position(node) {
            Ok(i) => self.entries[i].1,
            Err(_) => 0,
        }
    }

    /// Sets the count for `node`; setting 0 removes the entry.
    pub fn set(&mut self, node: NodeId, count: u64) {
        match (self.position(node), count) {
            (Ok(i), 0) => {
                self.entries.remove(i);
            }
            (Ok(i), _) => self.entries[i].1 = count,
            (Err(_), 0) => {}
            (Err(i), _) => self.entries.insert(i, (node, count)),
        }
    }

    /// Records a local event at `node` (increments its entry) and returns the new count.
    ///
    /// # Panics
    /// If the count would overflow `u64` (2^64 events on one node).
    pub fn increment(&mut self, node: NodeId) -> u64 {
        match self.position(node) {
            Ok(i) => {
                let e = &mut self.entries[i].1;
                *e = e.checked_add(1).expect("vector clock entry overflowed u64");
                *e
            }
            Err(i) => {
                self.entries.insert(i, (node, 1));
                1
            }
        }
    }

    /// Merges `other` into `self`: the entry-wise maximum (the least upper bound of both
    /// histories). Commutative, associative and idempotent.
    pub fn merge(&mut self, other: &VectorClock) {
        // Fast path: every node of `other` is already here (the common case).
        let mut i = 0;
        let mut all_present = true;
        for &(node, count) in &other.entries {
            while i < self.entries.len() && self.entries[i].0 < node {
                i += 1;
            }
            if i < self.entries.len() && self.entries[i].0 == node {
                let e = &mut self.entries[i].1;
                *e = (*e).max(count);
            } else {
                all_present = false;
            }
        }
        if all_present {
            return;
        }
        let mut out = Vec::with_capacity(self.entries.len() + other.entries.len());
        let (mut a, mut b) = (
            self.entries.iter().peekable(),
            other.entries.iter().peekable(),
        );
        loop {
            let next = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(_), None) => *a.next().expect("peeked"),
                (None, Some(_)) => *b.next().expect("peeked"),
                (Some(&&(na, ca)), Some(&&(nb, cb))) => match na.cmp(&nb) {
                    Ordering::Less => *a.next().expect("peeked"),
                    Ordering::Greater => *b.next().expect("peeked"),
                    Ordering::Equal => {
                        a.next();
                        b.next();
                        (na, ca.max(cb))
                    }
                },
            };
            out.push(next);
        }
        self.entries = out;
    }

    /// The merge of two clocks, as a new clock.
    pub fn merged(&self, other: &VectorClock) -> VectorClock {
        let mut out = self.clone();
        out.merge(other);
        out
    }

    /// How `self` relates causally to `other`.
    pub fn compare(&self, other: &VectorClock) -> Causality {
        // `less`: some entry of self is smaller; `greater`: some entry of self is larger.
        let mut less = false;
        let mut greater = false;
        let mut a = self.entries.iter().peekable();
        let mut b = other.entries.iter().peekable();
        loop {
            let (x, y) = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(&&(_, x)), None) => {
                    a.next();
                    (x, 0)
                }
                (None, Some(&&(_, y))) => {
                    b.next();
                    (0, y)
                }
                (Some(&&(na, x)), Some(&&(nb, y))) => match na.cmp(&nb) {
                    Ordering::Less => {
                        a.next();
                        (x, 0)
                    }
                    Ordering::Greater => {
                        b.next();
                        (0, y)
                    }
                    Ordering::Equal => {
                        a.next();
                        b.next();
                        (x, y)
                    }
                },
            };
            less |= x < y;
            greater |= x > y;
            if less && greater {
                return Causality::Concurrent;
            }
        }
        match (less, greater) {
            (false, false) => Causality::Equal,
            (true, false) => Causality::Before,
            (false, true) => Causality::After,
            (true, true) => Causality::Concurrent,
        }
    }

    /// Whether `self` happened strictly before `other`.
    pub fn happened_before(&self, other: &VectorClock) -> bool {
        self.compare(other) == Causality::Before
    }

    /// Whether `self` and `other` are concurrent.
    pub fn concurrent_with(&self, other: &VectorClock) -> bool {
        self.compare(other) == Causality::Concurrent
    }

    /// Whether `self` includes all of `other`'s history (`self >= other`).
    pub fn descends(&self, other: &VectorClock) -> bool {
        matches!(self.compare(other), Causality::After | Causality::Equal)
    }

    /// Removes `node`'s entry and returns the count it had. See the module docs for when this
    /// is safe.
    pub fn forget(&mut self, node: NodeId) -> u64 {
        match self.position(node) {
            Ok(i) => self.entries.remove(i).1,
            Err(_) => 0,
        }
    }

    /// The first entry of `self` at or after node `from` (in node order), skipping node
    /// `except`, whose count exceeds `bound`'s — a merge walk over both sorted maps, without
    /// lookups.
    pub(crate) fn first_entry_above(
        &self,
        bound: &VectorClock,
        except: NodeId,
        from: NodeId,
    ) -> Option<(NodeId, u64)> {
        let start = |c: &VectorClock| c.entries.partition_point(|&(n, _)| n < from);
        let mut b = bound.entries[start(bound)..].iter().peekable();
        for &(node, count) in &self.entries[start(self)..] {
            if node == except {
                continue;
            }
            while b.next_if(|&&(bn, _)| bn < node).is_some() {}
            let limit = match b.peek() {
                Some(&&(bn, bc)) if bn == node => bc,
                _ => 0,
            };
            if count > limit {
                return Some((node, count));
            }
        }
        None
    }

    /// The entries as a map (no zero values).
    pub fn to_map(&self) -> BTreeMap<NodeId, u64> {
        self.entries.iter().copied().collect()
    }

    /// Where `node`'s entry is, or where it would go.
    fn position(&self, node: NodeId) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&node, |&(n, _)| n)
    }

    /// The non-zero entries, in increasing node order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.entries.iter().copied()
    }

    /// The number of non-zero entries (the metadata size in entries).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether every entry is zero (the initial state).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The total number of events the clock has seen (the sum of its entries).
    pub fn total(&self) -> u64 {
        self.entries.iter().map(|&(_, c)| c).sum()
    }
}

impl PartialOrd for VectorClock {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.compare(other) {
            Causality::Before => Some(Ordering::Less),
            Causality::After => Some(Ordering::Greater),
            Causality::Equal => Some(Ordering::Equal),
            Causality::Concurrent => None,
        }
    }
}

impl FromIterator<(NodeId, u64)> for VectorClock {
    /// Builds a clock from `(node, count)` pairs; zero counts are dropped and a repeated node
    /// keeps the last count given.
    fn from_iter<I: IntoIterator<Item = (NodeId, u64)>>(iter: I) -> Self {
        let mut clock = VectorClock::new();
        for (node, count) in iter {
            clock.set(node, count);
        }
        clock
    }
}

impl VectorClock {
    /// Reads the wire form written by this type's `Serialize` (`{"1":3,"4":1}`: ascending
    /// nodes, no zeros) on the fast path of [`crate::json`]; `None` for anything else.
    pub(crate) fn read_json(r: &mut crate::json::Reader<'_>) -> Option<VectorClock> {
        r.eat(b'{')?;
        let mut entries: Vec<(NodeId, u64)> = Vec::new();
        if r.eat(b'}').is_none() {
            loop {
                r.eat(b'"')?;
                let node = r.u32()?;
                r.eat(b'"')?;
                r.eat(b':')?;
                let count = r.u64()?;
                if count == 0 || entries.last().is_some_and(|&(n, _)| n >= node) {
                    return None;
                }
                entries.push((node, count));
                if r.eat(b',').is_none() {
                    r.eat(b'}')?;
                    break;
                }
            }
        }
        Some(VectorClock { entries })
    }
}

impl From<BTreeMap<NodeId, u64>> for VectorClock {
    fn from(map: BTreeMap<NodeId, u64>) -> Self {
        map.into_iter().collect()
    }
}

impl From<VectorClock> for BTreeMap<NodeId, u64> {
    /// The entries as a plain map (no zero values) — e.g. a trace's vector timestamp.
    fn from(clock: VectorClock) -> Self {
        clock.entries.into_iter().collect()
    }
}

impl fmt::Display for VectorClock {
    /// `[1:3, 4:1]` — node:count pairs, zero entries omitted; `[]` for the initial clock.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, (node, count)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{node}:{count}")?;
        }
        f.write_str("]")
    }
}

impl Serialize for VectorClock {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.entries.iter().map(|(n, c)| (n, c)))
    }
}

impl<'de> Deserialize<'de> for VectorClock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<NodeId, u64>::deserialize(deserializer).map(VectorClock::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vc(pairs: &[(NodeId, u64)]) -> VectorClock {
        pairs.iter().copied().collect()
    }

    #[test]
    fn missing_entries_count_zero_so_sizes_may_differ() {
        let a = vc(&[(1, 1)]);
        let b = vc(&[(1, 1), (2, 1)]);
        assert_eq!(a.compare(&b), Causality::Before);
        assert_eq!(b.compare(&a), Causality::After);
        assert!(a < b);
        assert_eq!(vc(&[(1, 1), (2, 0)]), a);
        assert_eq!(a.compare(&vc(&[(1, 1), (7, 0)])), Causality::Equal);
    }

    #[test]
    fn dynamo_walkthrough_clocks() {
        // The seed's Dynamo walkthrough: A=1, B=2, C=3.
        let mut a = VectorClock::new();
        a.increment(1); // A writes x=1 -> [A:1]
        let mut b = a.clone(); // A replicates to B
        b.increment(2); // B writes x=2 -> [A:1, B:1]
        let mut c = VectorClock::new();
        c.increment(3); // C (offline) writes x=3 -> [C:1]
        assert_eq!(a.compare(&b), Causality::Before);
        assert_eq!(b.compare(&c), Causality::Concurrent);
        assert_eq!(a.compare(&c), Causality::Concurrent);
        assert_eq!(b.partial_cmp(&c), None);
        assert_eq!(b.merged(&c), vc(&[(1, 1), (2, 1), (3, 1)]));
    }

    #[test]
    fn wire_form_is_a_compact_map_and_drops_zeros() {
        let c = vc(&[(4, 1), (1, 3)]);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"1":3,"4":1}"#);
        let back: VectorClock = serde_json::from_str(r#"{"1":3,"4":1,"9":0}"#).unwrap();
        assert_eq!(back, c);
        assert!(serde_json::from_str::<VectorClock>(r#"{"x":1}"#).is_err());
        assert_eq!(c.to_string(), "[1:3, 4:1]");
    }

    #[test]
    fn converts_to_and_from_a_plain_map() {
        let c = vc(&[(1, 3), (2, 2)]);
        let map: BTreeMap<NodeId, u64> = c.clone().into();
        assert_eq!(c.to_map(), map);
        assert_eq!(VectorClock::from(map), c);
    }

    #[test]
    fn forget_drops_an_entry() {
        let mut c = vc(&[(1, 3), (2, 2)]);
        assert_eq!(c.forget(2), 2);
        assert_eq!(c, vc(&[(1, 3)]));
        assert_eq!(c.forget(2), 0);
    }

    fn arb_clock() -> impl Strategy<Value = VectorClock> {
        // Few nodes and small counts so that every relation occurs often.
        prop::collection::vec((0u32..4, 0u64..4), 0..5).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn compare_is_antisymmetric_and_matches_partial_ord(a in arb_clock(), b in arb_clock()) {
            let r = a.compare(&b);
            prop_assert_eq!(b.compare(&a), r.reverse());
            let expected = match r {
                Causality::Before => Some(Ordering::Less),
                Causality::After => Some(Ordering::Greater),
                Causality::Equal => Some(Ordering::Equal),
                Causality::Concurrent => None,
            };
            prop_assert_eq!(a.partial_cmp(&b), expected);
            prop_assert_eq!(r == Causality::Equal, a == b);
            // The definition: a <= b iff every entry of a is <= b's.
            let le = a.iter().all(|(n, x)| x <= b.get(n));
            prop_assert_eq!(le, matches!(r, Causality::Before | Causality::Equal));
        }

        #[test]
        fn order_is_transitive(a in arb_clock(), b in arb_clock(), c in arb_clock()) {
            if a <= b && b <= c {
                prop_assert!(a <= c);
            }
            if a < b && b < c {
                prop_assert!(a < c);
            }
        }

        #[test]
        fn compare_is_reflexive(a in arb_clock()) {
            prop_assert_eq!(a.compare(&a), Causality::Equal);
        }

        #[test]
        fn merge_is_a_join(a in arb_clock(), b in arb_clock(), c in arb_clock()) {
            prop_assert_eq!(a.merged(&b), b.merged(&a));
            prop_assert_eq!(a.merged(&b).merged(&c), a.merged(&b.merged(&c)));
            prop_assert_eq!(a.merged(&a), a.clone());
            let m = a.merged(&b);
            prop_assert!(m.descends(&a) && m.descends(&b));
            // Least: any upper bound of both is above the merge.
            let u = m.merged(&c);
            prop_assert!(u.descends(&m));
        }

        #[test]
        fn operations_match_a_map_model(ops in prop::collection::vec((0u8..4, 0u32..6, 0u64..4), 0..40), other in arb_clock()) {
            let mut clock = VectorClock::new();
            let mut model: BTreeMap<NodeId, u64> = BTreeMap::new();
            for (op, node, count) in ops {
                match op {
                    0 => {
                        clock.set(node, count);
                        model.insert(node, count);
                    }
                    1 => {
                        let m = model.entry(node).or_insert(0);
                        *m += 1;
                        prop_assert_eq!(clock.increment(node), *m);
                    }
                    2 => {
                        clock.merge(&other);
                        for (n, c) in other.iter() {
                            let m = model.entry(n).or_insert(0);
                            *m = (*m).max(c);
                        }
                    }
                    _ => {
                        prop_assert_eq!(clock.forget(node), model.remove(&node).unwrap_or(0));
                    }
                }
                model.retain(|_, c| *c != 0);
                // Representation invariant: sorted, unique, no zeros; and it matches the model.
                prop_assert!(clock.entries.windows(2).all(|w| w[0].0 < w[1].0));
                prop_assert!(clock.entries.iter().all(|&(_, c)| c != 0));
                prop_assert_eq!(clock.to_map(), model.clone());
            }
        }

        #[test]
        fn increment_moves_strictly_after(a in arb_clock(), n in 0u32..6) {
            let mut b = a.clone();
            let count = b.increment(n);
            prop_assert_eq!(count, a.get(n) + 1);
            prop_assert_eq!(a.compare(&b), Causality::Before);
        }

        #[test]
        fn first_entry_above_finds_the_first_exceeding_entry(a in arb_clock(), b in arb_clock(), except in 0u32..4, from in 0u32..4) {
            let expected = a.iter().find(|&(n, c)| n >= from && n != except && c > b.get(n));
            prop_assert_eq!(a.first_entry_above(&b, except, from), expected);
        }

        #[test]
        fn wire_round_trip(a in arb_clock()) {
            let json = serde_json::to_string(&a).unwrap();
            prop_assert_eq!(serde_json::from_str::<VectorClock>(&json).unwrap(), a);
        }
    }
}
