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

use crate::clocks::vector_clock::{Causality, VectorClock};
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

    /// Anti-entropy by difference: the part of this state a replica whose read context is
    /// `peer` lacks — the siblings whose dot `peer` does not cover. Merging it there gives the
    /// same state as merging everything (each replica's known dots are downward closed per
    /// node, so a covered dot is held there or superseded; property-tested below).
    pub fn missing_from(&self, peer: &VectorClock) -> DvvRegister<V> {
        DvvRegister {
            siblings: self
                .siblings
                .iter()
                .filter(|s| peer.get(s.version.dot.node) < s.version.dot.counter)
                .cloned()
                .collect(),
        }
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

/// How one versioning scheme fared in [`compare_schemes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemeOutcome {
    /// Siblings left at the end (after full gossip).
    pub siblings: usize,
    /// Counters stored for them, in total (the metadata size).
    pub metadata_entries: usize,
    /// Writes whose value is gone although no client ever read it: silently lost.
    pub lost_writes: usize,
}

/// One workload run under three versioning schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemeComparison {
    /// Dotted version vectors, dots from the coordinating server.
    pub dvv: SchemeOutcome,
    /// Plain vector clocks with one entry per client.
    pub client_vc: SchemeOutcome,
    /// Plain vector clocks with one entry per server.
    pub server_vc: SchemeOutcome,
}

/// The metadata-versus-correctness demonstration: `clients` clients each read a key from one
/// of `servers` replicas and write it back through the same replica up to `max_lag` steps
/// later (so sessions overlap and some writes are concurrent); replicas gossip after every
/// write. Seeded, so a run is reproducible. DVV and client-id clocks lose nothing; DVV keeps one
/// counter per server where client-id clocks keep one per client; server-id clocks are as small
/// as DVV but lose concurrent writes.
pub fn compare_schemes(clients: u32, servers: u32, max_lag: u32, seed: u64) -> SchemeComparison {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeSet;

    let servers = servers.max(1);
    let mut rng = StdRng::seed_from_u64(seed);
    let n = servers as usize;
    let mut dvv: Vec<DvvRegister<u32>> = vec![DvvRegister::new(); n];
    let mut cvc: Vec<VcRegister<u32>> = vec![VcRegister::new(); n];
    let mut svc: Vec<VcRegister<u32>> = vec![VcRegister::new(); n];
    // Values some read returned, per scheme (dvv, client vc, server vc).
    let mut seen: [BTreeSet<u32>; 3] = Default::default();
    // Pending writes: (due step, client, server, contexts per scheme).
    type Pending = (u32, u32, usize, [VectorClock; 3]);
    let mut pending: Vec<Pending> = Vec::new();
    let mut step = 0;
    let mut next_client = 0;
    while next_client < clients || !pending.is_empty() {
        // Writes due now, in client order.
        pending.sort_by_key(|p| (p.0, p.1));
        while pending.first().is_some_and(|p| p.0 <= step) {
            let (_, client, s, [c_dvv, c_cvc, c_svc]) = pending.remove(0);
            dvv[s].write(s as NodeId, &c_dvv, client);
            cvc[s].write(servers + client, &c_cvc, client);
            svc[s].write(s as NodeId, &c_svc, client);
            for t in (0..n).filter(|&t| t != s) {
                let (d, c, v) = (dvv[s].clone(), cvc[s].clone(), svc[s].clone());
                dvv[t].merge(&d);
                cvc[t].merge(&c);
                svc[t].merge(&v);
            }
        }
        if next_client < clients {
            let s = rng.gen_range(0..n);
            let (rd, rc, rs) = (dvv[s].read(), cvc[s].read(), svc[s].read());
            seen[0].extend(rd.siblings.iter().map(|x| x.value));
            seen[1].extend(rc.siblings.iter().map(|x| x.value));
            seen[2].extend(rs.siblings.iter().map(|x| x.value));
            let lag = rng.gen_range(0..=max_lag);
            pending.push((
                step + lag,
                next_client,
                s,
                [rd.context, rc.context, rs.context],
            ));
            next_client += 1;
        }
        step += 1;
    }
    let lost = |present: Vec<u32>, seen: &BTreeSet<u32>| {
        (0..clients)
            .filter(|v| !present.contains(v) && !seen.contains(v))
            .count()
    };
    SchemeComparison {
        dvv: SchemeOutcome {
            siblings: dvv[0].siblings.len(),
            metadata_entries: dvv[0].metadata_entries(),
            lost_writes: lost(dvv[0].values().copied().collect(), &seen[0]),
        },
        client_vc: SchemeOutcome {
            siblings: cvc[0].siblings.len(),
            metadata_entries: cvc[0].metadata_entries(),
            lost_writes: lost(cvc[0].values().copied().collect(), &seen[1]),
        },
        server_vc: SchemeOutcome {
            siblings: svc[0].siblings.len(),
            metadata_entries: svc[0].metadata_entries(),
            lost_writes: lost(svc[0].values().copied().collect(), &seen[2]),
        },
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
    fn metadata_and_lost_writes_per_scheme() {
        let r = compare_schemes(200, 3, 4, 1);
        // Nobody but server-id clocks loses a write, and they do.
        assert_eq!(r.dvv.lost_writes, 0);
        assert_eq!(r.client_vc.lost_writes, 0);
        assert!(r.server_vc.lost_writes > 0);
        // DVV and client-id clocks see the same conflicts.
        assert_eq!(r.dvv.siblings, r.client_vc.siblings);
        // Per version: DVV at most one counter per server plus the dot; client-id clocks one
        // per client seen.
        assert!(r.dvv.metadata_entries <= r.dvv.siblings * 4);
        assert!(r.client_vc.metadata_entries > r.client_vc.siblings * 100);
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
        fn dvv_never_loses_a_write(clients in 1u32..60, servers in 1u32..5, lag in 0u32..5, seed: u64) {
            let r = compare_schemes(clients, servers, lag, seed);
            prop_assert_eq!(r.dvv.lost_writes, 0);
            prop_assert_eq!(r.client_vc.lost_writes, 0);
            prop_assert_eq!(r.dvv.siblings, r.client_vc.siblings);
        }

        #[test]
        fn delta_sync_equals_full_merge(rs in arb_replicas()) {
            for (x, y) in [(0, 1), (1, 0), (0, 2), (2, 1)] {
                let delta = rs[x].missing_from(&rs[y].read().context);
                prop_assert!(delta.siblings.len() <= rs[x].siblings.len());
                let mut by_delta = rs[y].clone();
                by_delta.merge(&delta);
                prop_assert_eq!(by_delta, merged(&rs[y], &rs[x]));
            }
        }

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
