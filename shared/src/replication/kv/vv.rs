//! A key versioned by one plain version vector with an entry per **server** (Dynamo's and
//! Riak's "vnode vclocks", G. DeCandia et al., "Dynamo: Amazon's Highly Available Key-value
//! Store", SOSP 2007, §4.4): the object's clock covers all its siblings together.
//!
//! **Guarantee:** no write is lost — a write whose context does not descend the stored clock
//! is kept beside what is stored. **What it cannot do:** tell which of the values under one
//! clock a context had seen. So a stale context cannot drop anything (its old values stay as
//! *false siblings*, the "sibling explosion" the DVV paper starts from), and merging two
//! concurrent objects keeps every value of both, including values one side had already
//! overwritten — which also makes this merge commutative and idempotent but **not
//! associative** (tested; Riak's object merge behaves the same). [`super::dvvset`] has
//! neither flaw with the same one counter per server; per-client clocks would be exact too
//! but grow with the clients ([`crate::replication::dvv::VcRegister`] with client actors).

use serde::{Deserialize, Serialize};

use crate::clocks::vector_clock::{Causality, VectorClock};
use crate::NodeId;

/// The object: its siblings and the one clock that covers them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VvObject<V> {
    /// The version vector of the whole object.
    pub clock: VectorClock,
    /// The siblings, oldest first, without duplicates.
    pub values: Vec<V>,
}

impl<V> Default for VvObject<V> {
    fn default() -> Self {
        VvObject {
            clock: VectorClock::new(),
            values: Vec::new(),
        }
    }
}

impl<V: Clone + PartialEq> VvObject<V> {
    /// A key never written.
    pub fn new() -> Self {
        Self::default()
    }

    /// Server `id` coordinates a write of `value` with the client's `context`: if the context
    /// descends the stored clock the value replaces every sibling, otherwise it joins them.
    /// The clock becomes the join of both, with `id`'s entry incremented.
    pub fn update(&self, context: &VectorClock, id: NodeId, value: V) -> VvObject<V> {
        let mut clock = self.clock.merged(context);
        clock.increment(id);
        let values = if context.descends(&self.clock) {
            vec![value]
        } else {
            let mut v = self.values.clone();
            v.push(value);
            v
        };
        VvObject { clock, values }
    }

    /// Anti-entropy: the dominating side wins; concurrent sides keep both sets of siblings.
    pub fn sync(&self, other: &VvObject<V>) -> VvObject<V> {
        match self.clock.compare(&other.clock) {
            Causality::Before => other.clone(),
            Causality::After | Causality::Equal => self.clone(),
            Causality::Concurrent => {
                let mut values = self.values.clone();
                for v in &other.values {
                    if !values.contains(v) {
                        values.push(v.clone());
                    }
                }
                VvObject {
                    clock: self.clock.merged(&other.clock),
                    values,
                }
            }
        }
    }

    /// Whether `other` has something this side lacks.
    pub fn lacks(&self, other: &VectorClock) -> bool {
        !self.clock.descends(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_stale_context_leaves_a_false_sibling() {
        let s0 = VvObject::new().update(&VectorClock::new(), 1, "v1");
        let read = s0.clock.clone();
        let s1 = s0.update(&read, 1, "v2");
        let x_ctx = s1.clock.clone();
        let s2 = s1.update(&read, 1, "v3");
        assert_eq!(s2.values, vec!["v2", "v3"]);
        // X overwrites its own v2 — but its context does not descend the object's clock.
        let s3 = s2.update(&x_ctx, 1, "v4");
        assert_eq!(s3.values, vec!["v2", "v3", "v4"], "v2 is a false sibling");
        // A read-modify-write with the merged context resolves everything.
        let s4 = s3.update(&s3.clock.clone(), 1, "v5");
        assert_eq!(s4.values, vec!["v5"]);
    }

    #[test]
    fn merging_is_not_associative() {
        let e = VectorClock::new();
        let a = VvObject::new().update(&e, 1, "x1");
        let b = a.update(&a.clock.clone(), 2, "x2"); // B overwrote x1 having seen it
        let c = VvObject::new().update(&e, 3, "x3");
        let mut left = a.sync(&c).sync(&b).values;
        let mut right = a.sync(&c.sync(&b)).values;
        left.sort();
        right.sort();
        assert_eq!(left, vec!["x1", "x2", "x3"], "x1 comes back");
        assert_eq!(right, vec!["x2", "x3"]);
    }

    proptest! {
        #[test]
        fn merge_is_commutative_and_idempotent(ops in proptest::collection::vec((0u32..3, 0u32..3, any::<bool>()), 0..40)) {
            let mut s: Vec<VvObject<u32>> = vec![VvObject::new(); 3];
            for (k, &(at, from, write)) in ops.iter().enumerate() {
                let (at, from) = (at as usize, from as usize);
                if write {
                    let ctx = s[from].clock.clone();
                    s[at] = s[at].update(&ctx, at as NodeId, k as u32);
                } else {
                    s[at] = s[at].sync(&s[from]);
                }
            }
            let norm = |mut o: VvObject<u32>| { o.values.sort(); o };
            let (a, b) = (&s[0], &s[1]);
            prop_assert_eq!(norm(a.sync(b)), norm(b.sync(a)));
            prop_assert_eq!(norm(a.sync(a)), norm(a.clone()));
        }
    }
}
