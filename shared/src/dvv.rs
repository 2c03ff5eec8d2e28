//! Dotted version vectors — N. Preguiça, C. Baquero, P. S. Almeida, V. Fonte, R. Gonçalves,
//! "Dotted Version Vectors: Logical Clocks for Optimistic Replication" (arXiv:1011.5808, 2010),
//! and the versioned key-value register of Dynamo/Riak built on them.
//!
//! **Guarantee:** every write is named by a unique *dot* `(replica, counter)` and carries the
//! causal *context* (a version vector) the client read before writing. A write replaces exactly
//! the versions its context covers and keeps every other as a *sibling*, so concurrent writes
//! are never lost — also when many clients write through the same replica — while the metadata
//! has one entry per **replica server**, not per client.
//!
//! Plain vector clocks force a choice, shown by [`VcRegister`]: with one entry per client
//! (correct) the clocks grow with the number of clients ever seen; with one entry per server
//! (compact) two clients writing concurrently through one server make the second write
//! *dominate* the first, which is silently lost. The tests here demonstrate both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::vector_clock::{Causality, VectorClock};
use crate::NodeId;

/// The name of one write: the `counter`-th write coordinated by replica `node` (for this key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// The replica that coordinated the write.
    pub node: NodeId,
    /// Its per-replica counter, from 1.
    pub counter: u64,
}

/// A dotted version vector: the write's own dot plus the context it was written in.
///
/// Unlike a plain vector clock, the dot need not be contiguous with the context:
/// `context[node]` may be below `dot.counter − 1`, which is how two concurrent writes through
/// the same replica stay distinguishable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dvv {
    /// The write's own event.
    pub dot: Dot,
    /// The causal past the writer had seen (what it read).
    pub context: VectorClock,
}

impl Dvv {
    /// Whether `dot` is in this version's history (its own dot or covered by its context).
    pub fn contains(&self, dot: Dot) -> bool {
        self.dot == dot || self.context.get(dot.node) >= dot.counter
    }

    /// How this version relates to `other`: `Before` if `other` has seen this write, `Equal`
    /// for the same write, `Concurrent` if neither has seen the other.
    pub fn compare(&self, other: &Dvv) -> Causality {
        if self.dot == other.dot {
            Causality::Equal
        } else if other.contains(self.dot) {
            Causality::Before
        } else if self.contains(other.dot) {
            Causality::After
        } else {
            Causality::Concurrent
        }
    }

    /// The version as a plain vector clock: the context joined with the dot (loses the gap
    /// information; used to build read contexts).
    pub fn to_vector_clock(&self) -> VectorClock {
        let mut vc = self.context.clone();
        if vc.get(self.dot.node) < self.dot.counter {
            vc.set(self.dot.node, self.dot.counter);
        }
        vc
    }

    /// Metadata size in counters: the context's entries plus the dot.
    pub fn metadata_entries(&self) -> usize {
        self.context.len() + 1
    }
}

/// One value of a register together with its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sibling<V, C> {
    /// The version (a [`Dvv`] or, for [`VcRegister`], a [`VectorClock`]).
    pub version: C,
    /// The value written.
    pub value: V,
}

/// A read: every sibling, and the context to pass back with the next write to replace them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Read<V, C> {
    /// The concurrent values and their versions; more than one is a conflict.
    pub siblings: Vec<Sibling<V, C>>,
    /// The join of all siblings' versions: a write with this context supersedes them all.
    pub context: VectorClock,
}

impl<V, C> Read<V, C> {
    /// Whether the read found concurrent values (the seed's `"status": "CONFLICT"`).
    pub fn is_conflict(&self) -> bool {
        self.siblings.len() > 1
    }
}

/// A multi-value register versioned by dotted version vectors: the state one replica keeps for
/// one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DvvRegister<V> {
    /// Mutually concurrent versions, sorted by dot. Invariant: no sibling's dot is contained
    /// in another's version.
    siblings: Vec<Sibling<V, Dvv>>,
}

impl<V> Default for DvvRegister<V> {
    fn default() -> Self {
        DvvRegister {
            siblings: Vec::new(),
        }
    }
}

impl<V: Clone> DvvRegister<V> {
    /// An empty register (never written).
    pub fn new() -> Self {
        Self::default()
    }

    /// All siblings with their versions, and the context for the next write.
    pub fn read(&self) -> Read<V, Dvv> {
        let mut context = VectorClock::new();
        for s in &self.siblings {
            context.merge(&s.version.to_vector_clock());
        }
        Read {
            siblings: self.siblings.clone(),
            context,
        }
    }

    /// The values only, in dot order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.siblings.iter().map(|s| &s.value)
    }

    /// A write of `value` coordinated by replica `node`, by a client that read `context` (the
    /// empty clock for a blind write). Replaces every sibling the context covers; keeps the
    /// others. Returns the new version.
    pub fn write(&mut self, node: NodeId, context: &VectorClock, value: V) -> Dvv {
        // The next counter of `node` for this key: past everything this replica knows of it,
        // so dots are unique (a replaced dot survives in the context that replaced it).
        let seen = self
            .siblings
            .iter()
            .map(|s| s.version.to_vector_clock().get(node))
            .chain(std::iter::once(context.get(node)))
            .max()
            .unwrap_or(0);
        let version = Dvv {
            dot: Dot {
                node,
                counter: seen + 1,
            },
            context: context.clone(),
        };
        self.siblings
            .retain(|s| context.get(s.version.dot.node) < s.version.dot.counter);
        self.siblings.push(Sibling {
            version: version.clone(),
            value,
        });
        self.siblings.sort_by_key(|s| s.version.dot);
        version
    }

    /// Anti-entropy: merges another replica's state for the same key. Keeps every sibling not
    /// contained in a version of the other side. Commutative, associative and idempotent.
    pub fn merge(&mut self, other: &DvvRegister<V>) {
        let mut all: BTreeMap<Dot, Sibling<V, Dvv>> = BTreeMap::new();
        for s in self
            .siblings
            .drain(..)
            .chain(other.siblings.iter().cloned())
        {
            all.entry(s.version.dot).or_insert(s);
        }
        let versions: Vec<Dvv> = all.values().map(|s| s.version.clone()).collect();
        self.siblings = all
            .into_values()
            .filter(|s| {
                !versions
                    .iter()
                    .any(|v| v.dot != s.version.dot && v.contains(s.version.dot))
            })
            .collect();
    }

    /// Metadata size in counters, summed over siblings.
    pub fn metadata_entries(&self) -> usize {
        self.siblings
            .iter()
            .map(|s| s.version.metadata_entries())
            .sum()
    }
}

/// The same register versioned by plain vector clocks (Dynamo's original scheme), kept for
/// comparison. `actor` is whoever owns the incremented entry: the client (correct, but clocks
/// grow with clients) or the coordinating server (compact, but loses concurrent writes made
/// through one server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcRegister<V> {
    /// Mutually concurrent versions.
    siblings: Vec<Sibling<V, VectorClock>>,
}

impl<V> Default for VcRegister<V> {
    fn default() -> Self {
        VcRegister {
            siblings: Vec::new(),
        }
    }
}

impl<V: Clone> VcRegister<V> {
    /// An empty register.
    pub fn new() -> Self {
        Self::default()
    }

    /// All siblings and the join of their clocks.
    pub fn read(&self) -> Read<V, VectorClock> {
        let mut context = VectorClock::new();
        for s in &self.siblings {
            context.merge(&s.version);
        }
        Read {
            siblings: self.siblings.clone(),
            context,
        }
    }

    /// The values only.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.siblings.iter().map(|s| &s.value)
    }

    /// A write by `actor` with the context it read: the new clock is the context with
    /// `actor`'s entry moved past every value of it known here; siblings the new clock
    /// descends from are replaced (the seed's "Hint 3").
    pub fn write(&mut self, actor: NodeId, context: &VectorClock, value: V) -> VectorClock {
        let seen = self
            .siblings
            .iter()
            .map(|s| s.version.get(actor))
            .chain(std::iter::once(context.get(actor)))
            .max()
            .unwrap_or(0);
        let mut clock = context.clone();
        clock.set(actor, seen + 1);
        self.siblings.retain(|s| !clock.descends(&s.version));
        self.siblings.push(Sibling {
            version: clock.clone(),
            value,
        });
        clock
    }

    /// Anti-entropy: the union of both sides minus versions another one descends from.
    pub fn merge(&mut self, other: &VcRegister<V>) {
        let mut all: Vec<Sibling<V, VectorClock>> = self.siblings.drain(..).collect();
        for s in &other.siblings {
            if !all.iter().any(|t| t.version == s.version) {
                all.push(s.clone());
            }
        }
        let clocks: Vec<VectorClock> = all.iter().map(|s| s.version.clone()).collect();
        self.siblings = all
            .into_iter()
            .filter(|s| !clocks.iter().any(|c| s.version.happened_before(c)))
            .collect();
    }

    /// Metadata size in counters, summed over siblings.
    pub fn metadata_entries(&self) -> usize {
        self.siblings.iter().map(|s| s.version.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: NodeId = 1;
    const B: NodeId = 2;
    const C: NodeId = 3;

    fn sorted<V: Ord + Clone>(it: impl Iterator<Item = V>) -> Vec<V> {
        let mut v: Vec<V> = it.collect();
        v.sort();
        v
    }

    #[test]
    fn dynamo_walkthrough() {
        let (mut a, mut b, mut c) = (DvvRegister::new(), DvvRegister::new(), DvvRegister::new());
        a.write(A, &VectorClock::new(), "x=1"); // A writes x=1 -> [A:1]
        b.merge(&a); // A replicates to B
        let ctx = b.read().context;
        assert_eq!(ctx, [(A, 1)].into_iter().collect());
        b.write(B, &ctx, "x=2"); // B writes x=2 -> [A:1, B:1]
        assert_eq!(sorted(b.values().copied()), vec!["x=2"]);
        c.write(C, &VectorClock::new(), "x=3"); // C, offline, writes x=3 -> [C:1]
                                                // All nodes reconnect.
        let mut merged = a.clone();
        merged.merge(&b);
        merged.merge(&c);
        let read = merged.read();
        assert!(read.is_conflict());
        assert_eq!(sorted(merged.values().copied()), vec!["x=2", "x=3"]);
        // x=1 is an ancestor of x=2; x=2 and x=3 are concurrent.
        let v2 = &read
            .siblings
            .iter()
            .find(|s| s.value == "x=2")
            .unwrap()
            .version;
        let v3 = &read
            .siblings
            .iter()
            .find(|s| s.value == "x=3")
            .unwrap()
            .version;
        assert_eq!(v2.compare(v3), Causality::Concurrent);
        // The merged clock: [A:1, B:1, C:1].
        assert_eq!(read.context, [(A, 1), (B, 1), (C, 1)].into_iter().collect());
        // Resolving with that context leaves one value everywhere.
        merged.write(A, &read.context, "x=resolved");
        assert_eq!(sorted(merged.values().copied()), vec!["x=resolved"]);
        // The same history with plain (server-id) vector clocks gives the same answer here.
        let (mut va, mut vb, mut vc) = (VcRegister::new(), VcRegister::new(), VcRegister::new());
        va.write(A, &VectorClock::new(), "x=1");
        vb.merge(&va);
        let ctx = vb.read().context;
        vb.write(B, &ctx, "x=2");
        vc.write(C, &VectorClock::new(), "x=3");
        va.merge(&vb);
        va.merge(&vc);
        assert_eq!(sorted(va.values().copied()), vec!["x=2", "x=3"]);
        assert_eq!(
            va.read().context,
            [(A, 1), (B, 1), (C, 1)].into_iter().collect()
        );
    }

    #[test]
    fn pitfall_1_a_write_with_the_read_context_overwrites() {
        let mut r = DvvRegister::new();
        let v1 = r.write(A, &VectorClock::new(), "A");
        let ctx = r.read().context;
        let v2 = r.write(A, &ctx, "B");
        assert_eq!(r.values().copied().collect::<Vec<_>>(), vec!["B"]);
        assert_eq!(v1.compare(&v2), Causality::Before);
        let mut p = VcRegister::new();
        p.write(A, &VectorClock::new(), "A");
        let ctx = p.read().context;
        p.write(A, &ctx, "B");
        assert_eq!(p.values().copied().collect::<Vec<_>>(), vec!["B"]);
    }

    #[test]
    fn pitfall_2_a_write_descending_from_both_siblings_prunes_both() {
        let mut r = DvvRegister::new();
        r.write(A, &VectorClock::new(), "A"); // [1,0]
        r.write(B, &VectorClock::new(), "B"); // [0,1], concurrent
        assert_eq!(r.read().siblings.len(), 2);
        let ctx = r.read().context;
        assert_eq!(ctx, [(A, 1), (B, 1)].into_iter().collect());
        r.write(A, &ctx, "C"); // descends from both
        assert_eq!(r.values().copied().collect::<Vec<_>>(), vec!["C"]);
        let mut p = VcRegister::new();
        p.write(A, &VectorClock::new(), "A");
        p.write(B, &VectorClock::new(), "B");
        let ctx = p.read().context;
        p.write(A, &ctx, "C");
        assert_eq!(p.values().copied().collect::<Vec<_>>(), vec!["C"]);
    }

    #[test]
    fn concurrent_clients_through_one_server_server_id_vcs_lose_a_write_dvv_does_not() {
        // Two clients read nothing and write through replica A concurrently.
        let mut plain = VcRegister::new();
        plain.write(A, &VectorClock::new(), "cart: milk");
        plain.write(A, &VectorClock::new(), "cart: eggs");
        // [A:2] descends from [A:1]: the milk was silently dropped.
        assert_eq!(
            plain.values().copied().collect::<Vec<_>>(),
            vec!["cart: eggs"]
        );

        let mut dvv = DvvRegister::new();
        dvv.write(A, &VectorClock::new(), "cart: milk");
        dvv.write(A, &VectorClock::new(), "cart: eggs");
        assert_eq!(
            sorted(dvv.values().copied()),
            vec!["cart: eggs", "cart: milk"]
        );
    }

    #[test]
    fn metadata_grows_with_clients_for_client_id_vcs_but_with_servers_for_dvv() {
        // 60 clients each read from one of 3 servers and write back through it; every fourth
        // client writes blind (without reading), creating siblings.
        let servers = [A, B, C];
        let mut client_vc: Vec<VcRegister<u32>> = vec![VcRegister::new(); 3];
        let mut dvv: Vec<DvvRegister<u32>> = vec![DvvRegister::new(); 3];
        for client in 0..60u32 {
            let s = (client % 3) as usize;
            let blind = client % 4 == 0;
            let ctx = if blind {
                VectorClock::new()
            } else {
                client_vc[s].read().context
            };
            client_vc[s].write(1000 + client, &ctx, client);
            let ctx = if blind {
                VectorClock::new()
            } else {
                dvv[s].read().context
            };
            dvv[s].write(servers[s], &ctx, client);
            // Gossip after every write.
            for t in 0..3 {
                if t != s {
                    let (x, y) = (client_vc[s].clone(), dvv[s].clone());
                    client_vc[t].merge(&x);
                    dvv[t].merge(&y);
                }
            }
            // Both detect the same conflicts at every step.
            assert_eq!(client_vc[0].values().count(), dvv[0].values().count());
        }
        let (vc_meta, dvv_meta) = (client_vc[0].metadata_entries(), dvv[0].metadata_entries());
        let (vc_sibs, dvv_sibs) = (client_vc[0].values().count(), dvv[0].values().count());
        assert_eq!(vc_sibs, dvv_sibs);
        // Per version, client-id clocks carry an entry per client ever seen, DVVs at
        // most one per server plus the dot.
        assert!(
            vc_meta / vc_sibs > 40,
            "client-id clocks: {vc_meta} entries"
        );
        assert!(dvv_meta / dvv_sibs <= 4, "dvv: {dvv_meta} entries");
    }

    #[test]
    fn wire_form_of_a_version() {
        let v = Dvv {
            dot: Dot {
                node: 2,
                counter: 3,
            },
            context: [(1, 4)].into_iter().collect(),
        };
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"dot":{"node":2,"counter":3},"context":{"1":4}}"#);
        assert_eq!(serde_json::from_str::<Dvv>(&json).unwrap(), v);
        assert_eq!(v.to_vector_clock(), [(1, 4), (2, 3)].into_iter().collect());
    }

    /// Three replicas after a random history of reads, writes and syncs.
    fn arb_replicas() -> impl Strategy<Value = Vec<DvvRegister<u32>>> {
        prop::collection::vec((0usize..3, 0usize..3, 0u8..3), 0..30).prop_map(|ops| {
            let mut rs: Vec<DvvRegister<u32>> = vec![DvvRegister::new(); 3];
            for (i, (r, other, kind)) in ops.into_iter().enumerate() {
                match kind {
                    0 => {
                        let ctx = rs[r].read().context;
                        rs[r].write(r as NodeId, &ctx, i as u32);
                    }
                    1 => {
                        rs[r].write(r as NodeId, &VectorClock::new(), i as u32);
                    }
                    _ => {
                        let o = rs[other].clone();
                        rs[r].merge(&o);
                    }
                }
            }
            rs
        })
    }

    fn merged(a: &DvvRegister<u32>, b: &DvvRegister<u32>) -> DvvRegister<u32> {
        let mut x = a.clone();
        x.merge(b);
        x
    }

    proptest! {
        #[test]
        fn merge_laws(rs in arb_replicas()) {
            let (a, b, c) = (&rs[0], &rs[1], &rs[2]);
            prop_assert_eq!(merged(a, b), merged(b, a));
            prop_assert_eq!(merged(&merged(a, b), c), merged(a, &merged(b, c)));
            prop_assert_eq!(merged(a, a), a.clone());
            // Siblings stay mutually concurrent.
            let m = merged(&merged(a, b), c);
            let read = m.read();
            for x in &read.siblings {
                for y in &read.siblings {
                    if x.version.dot != y.version.dot {
                        prop_assert_eq!(x.version.compare(&y.version), Causality::Concurrent);
                    }
                }
            }
        }
    }
}
