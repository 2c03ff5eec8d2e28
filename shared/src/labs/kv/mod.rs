//! The key-value lab's scripted scenarios (the seed's projects 3 and 10): the seed's curl
//! example, the Dynamo walkthrough, the four pitfalls, the sibling explosion, and the
//! metadata-per-key comparison as clients grow — each run under both clock schemes of
//! [`crate::replication::kv`], printed as a transcript and judged by its [`Claim`]s.
//!
//! **Invariant:** a scenario is a pure function of its scheme (and seed, for the workloads);
//! every claim it makes is computed from the reads it did, so a regression shows as `fails`.

use serde_json::{json, Value};

use crate::clocks::vector_clock::VectorClock;
use crate::labs::{Claim, Table, Verdict};
use crate::replication::dvv::VcRegister;
use crate::replication::kv::{codec, node_name, Node, ReadResult, Scheme};
use crate::NodeId;

/// A scenario's run: what it did, line by line, and what it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The scenario's name.
    pub name: &'static str,
    /// The scheme it ran under.
    pub scheme: Scheme,
    /// Each step and each read, as the seed prints them (reads as JSON).
    pub lines: Vec<String>,
    /// The claims, checked against the reads.
    pub claims: Vec<Claim>,
}

/// The scenarios, by name.
pub const SCENARIOS: &[(&str, &str)] = &[
    (
        "seed",
        "the seed's curl example: Alice and Bob written to two nodes",
    ),
    (
        "dynamo",
        "the Dynamo walkthrough: A writes, B overwrites, C writes offline",
    ),
    (
        "pitfall1",
        "pitfall 1: a write with the read clock overwrites",
    ),
    (
        "pitfall2",
        "pitfall 2: a write descending both siblings prunes them",
    ),
    (
        "pitfall3",
        "pitfall 3: entries of a removed node stay, harmlessly",
    ),
    (
        "pitfall4",
        "pitfall 4: five siblings, resolved as a shopping cart",
    ),
    (
        "explosion",
        "the sibling explosion: stale contexts through one node",
    ),
];

/// A little cluster that records what it does.
struct Script {
    scheme: Scheme,
    nodes: Vec<Node>,
    lines: Vec<String>,
}

impl Script {
    fn new(scheme: Scheme, n: u32) -> Script {
        Script {
            scheme,
            nodes: (1..=n).map(|i| Node::new(i, scheme)).collect(),
            lines: Vec::new(),
        }
    }

    fn note(&mut self, s: impl Into<String>) {
        self.lines.push(format!("# {}", s.into()));
    }

    /// Node `n` (1-based) coordinates a write; returns the read-after-write context.
    fn put(&mut self, n: NodeId, key: &str, ctx: Option<&VectorClock>, v: Value) -> VectorClock {
        let state = self.nodes[n as usize - 1].put(key, ctx, Some(v.clone()));
        let c = state.context();
        self.lines.push(format!(
            "# Write to {}: {{{key:?}: {v}}}{} -> clock {c}",
            node_name(n),
            ctx.map_or(String::new(), |c| format!(" with context {c}"))
        ));
        c
    }

    fn replicate(&mut self, from: NodeId, to: &[NodeId], key: &str) {
        let state = self.nodes[from as usize - 1].state(key);
        for &t in to {
            self.nodes[t as usize - 1].merge(key, &state);
        }
        let names: Vec<String> = to.iter().map(|&t| node_name(t)).collect();
        self.note(format!(
            "{} replicates {key:?} to {}",
            node_name(from),
            names.join(", ")
        ));
    }

    fn gossip(&mut self, key: &str) {
        let all: Vec<NodeId> = (1..=self.nodes.len() as NodeId).collect();
        for &from in &all {
            let others: Vec<NodeId> = all.iter().copied().filter(|&t| t != from).collect();
            let state = self.nodes[from as usize - 1].state(key);
            for &t in &others {
                self.nodes[t as usize - 1].merge(key, &state);
            }
        }
        self.note(format!("all nodes reconnect and exchange {key:?}"));
    }

    fn get(&mut self, n: NodeId, key: &str) -> ReadResult {
        let r = self.nodes[n as usize - 1].get(key);
        self.lines.push(format!("# Read from {}:", node_name(n)));
        let shown = json!({"value": r.value, "vector_clock": r.vector_clock, "status": r.status});
        self.lines
            .push(serde_json::to_string_pretty(&shown).unwrap_or_default());
        r
    }

    fn done(self, name: &'static str, claims: Vec<Claim>) -> Transcript {
        Transcript {
            name,
            scheme: self.scheme,
            lines: self.lines,
            claims,
        }
    }
}

fn sorted(r: &ReadResult) -> Vec<Value> {
    let mut v = r.value.clone();
    v.sort_by_key(|x| x.to_string());
    v
}

fn clock_json(r: &ReadResult) -> Value {
    serde_json::to_value(&r.vector_clock).unwrap_or_default()
}

/// Runs scenario `name` under `scheme`.
pub fn run(name: &str, scheme: Scheme) -> Option<Transcript> {
    Some(match name {
        "seed" => seed_example(scheme),
        "dynamo" => dynamo(scheme),
        "pitfall1" => pitfall1(scheme),
        "pitfall2" => pitfall2(scheme),
        "pitfall3" => pitfall3(scheme),
        "pitfall4" => pitfall4(scheme),
        "explosion" => explosion(scheme, 20),
        _ => return None,
    })
}

/// The seed's example: `{"value": ["Alice", "Bob"], "vector_clock": {"Node1": 1, "Node2": 1},
/// "status": "CONFLICT"}`, then a read-modify-write resolving it.
pub fn seed_example(scheme: Scheme) -> Transcript {
    let mut s = Script::new(scheme, 2);
    s.put(1, "name", None, json!("Alice"));
    s.put(2, "name", None, json!("Bob"));
    s.replicate(2, &[1], "name");
    let r = s.get(1, "name");
    let ctx = codec::decode_context(scheme, &r.context).unwrap_or_default();
    s.put(1, "name", Some(&ctx), json!("Alice and Bob"));
    s.replicate(1, &[2], "name");
    let after = s.get(2, "name");
    let claims = vec![
        Claim::new(
            "Concurrent writes to two nodes become siblings (the seed's CONFLICT)",
            format!(
                "{} siblings, clock {}, status {}",
                r.value.len(),
                clock_json(&r),
                r.status
            ),
            Verdict::of(
                sorted(&r) == vec![json!("Alice"), json!("Bob")]
                    && clock_json(&r) == json!({"Node1": 1, "Node2": 1})
                    && r.status == "CONFLICT",
            ),
        ),
        Claim::new(
            "A write with the merged context resolves the conflict on every node",
            format!("{} after replication: {:?}", node_name(2), after.value),
            Verdict::of(after.value == vec![json!("Alice and Bob")] && after.status == "OK"),
        ),
    ];
    s.done("seed", claims)
}

/// The seed's Dynamo walkthrough.
pub fn dynamo(scheme: Scheme) -> Transcript {
    let mut s = Script::new(scheme, 3);
    s.note("Node1 = A, Node2 = B, Node3 = C");
    s.put(1, "x", None, json!(1));
    s.replicate(1, &[2], "x");
    let ctx = s.nodes[1].state("x").context();
    s.put(2, "x", Some(&ctx), json!(2));
    s.note("meanwhile C is offline");
    s.put(3, "x", None, json!(3));
    s.gossip("x");
    let r = s.get(1, "x");
    let first = match scheme {
        Scheme::Dvv => Claim::new(
            "x=2 descends x=1 (B had seen it); x=3 is concurrent with both: no winner",
            format!("siblings {:?}", sorted(&r)),
            Verdict::of(sorted(&r) == vec![json!(2), json!(3)]),
        ),
        Scheme::Vv => Claim::new(
            "One clock per object cannot tell x=1 is older than x=2 once it was merged with \
             C's x=3: it comes back as a false sibling",
            format!("siblings {:?}", sorted(&r)),
            Verdict::of(sorted(&r) == vec![json!(1), json!(2), json!(3)]),
        ),
    };
    let claims = vec![
        first,
        Claim::new(
            "Merging them gives the pointwise maximum [A:1, B:1, C:1]",
            format!("clock {}", clock_json(&r)),
            Verdict::of(clock_json(&r) == json!({"Node1": 1, "Node2": 1, "Node3": 1})),
        ),
    ];
    s.done("dynamo", claims)
}

/// Pitfall 1: write A, then B with A's clock: B overwrites A.
pub fn pitfall1(scheme: Scheme) -> Transcript {
    let mut s = Script::new(scheme, 1);
    let ctx = s.put(1, "k", None, json!("A"));
    s.put(1, "k", Some(&ctx), json!("B"));
    let r = s.get(1, "k");
    let claims = vec![Claim::new(
        "A write carrying the clock it read overwrites (no sibling)",
        format!("{:?}", r.value),
        Verdict::of(r.value == vec![json!("B")]),
    )];
    s.done("pitfall1", claims)
}

/// Pitfall 2: A [1,0], B [0,1], C with [1,1]: only C.
pub fn pitfall2(scheme: Scheme) -> Transcript {
    let mut s = Script::new(scheme, 2);
    s.put(1, "k", None, json!("A"));
    s.put(2, "k", None, json!("B"));
    s.replicate(2, &[1], "k");
    let both = s.get(1, "k");
    let ctx = s.nodes[0].state("k").context();
    s.put(1, "k", Some(&ctx), json!("C"));
    let r = s.get(1, "k");
    let claims = vec![Claim::new(
        "A write whose clock descends every sibling replaces them all",
        format!("before: {:?}; after: {:?}", sorted(&both), r.value),
        Verdict::of(both.value.len() == 2 && r.value == vec![json!("C")]),
    )];
    s.done("pitfall2", claims)
}

/// Pitfall 3: a node writes, then leaves; its entry stays and harms nothing.
pub fn pitfall3(scheme: Scheme) -> Transcript {
    let mut s = Script::new(scheme, 3);
    s.put(3, "k", None, json!("from Node3"));
    s.replicate(3, &[1, 2], "k");
    s.nodes.pop();
    s.note("Node3 is removed from the cluster");
    let r = s.get(1, "k");
    let ctx = codec::decode_context(scheme, &r.context).unwrap_or_default();
    s.put(1, "k", Some(&ctx), json!("after"));
    s.replicate(1, &[2], "k");
    let after = s.get(2, "k");
    let claims = vec![Claim::new(
        "Old writes keep the removed node's entry (Riak accepts it); writes still resolve",
        format!("clock {} then {:?}", clock_json(&r), after.value),
        Verdict::of(r.vector_clock.contains_key("Node3") && after.value == vec![json!("after")]),
    )];
    s.done("pitfall3", claims)
}

/// Pitfall 4: five blind writes through three nodes; the application merges them.
pub fn pitfall4(scheme: Scheme) -> Transcript {
    let mut s = Script::new(scheme, 3);
    for (i, item) in ["milk", "eggs", "bread", "tea", "jam"].iter().enumerate() {
        s.put(i as NodeId % 3 + 1, "cart", None, json!([item]));
    }
    s.gossip("cart");
    let r = s.get(1, "cart");
    let mut union: Vec<String> = r
        .value
        .iter()
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    union.sort();
    union.dedup();
    s.note("the application takes the union of the carts");
    let ctx = codec::decode_context(scheme, &r.context).unwrap_or_default();
    s.put(1, "cart", Some(&ctx), json!(union));
    let after = s.get(1, "cart");
    let claims = vec![Claim::new(
        "Five siblings are by design; a shopping cart resolves them by union",
        format!("{} siblings, then {:?}", r.value.len(), after.value),
        Verdict::of(r.value.len() == 5 && after.value.len() == 1 && union.len() == 5),
    )];
    s.done("pitfall4", claims)
}

/// The sibling explosion: two clients alternate writes through one node, each with the
/// context its own previous write returned (a write answers as a read right after it).
pub fn explosion(scheme: Scheme, rounds: u32) -> Transcript {
    let mut s = Script::new(scheme, 1);
    let mut ctx = [VectorClock::new(), VectorClock::new()];
    for r in 0..rounds {
        let who = (r % 2) as usize;
        let c = ctx[who].clone();
        ctx[who] = s.put(1, "k", Some(&c), json!(format!("{}{r}", ["x", "y"][who])));
    }
    let r = s.get(1, "k");
    let bytes = s.nodes[0].metadata_bytes("k");
    let claims =
        vec![match scheme {
        Scheme::Dvv => Claim::new(
            "DVV: a stale context replaces exactly what it had seen — one value per client stays",
            format!("{} siblings after {rounds} writes; {bytes} metadata bytes", r.value.len()),
            Verdict::of(r.value.len() == 2),
        ),
        Scheme::Vv => Claim::new(
            "Version vectors keep false siblings: a stale context cannot replace anything",
            format!("{} siblings after {rounds} writes; {bytes} metadata bytes", r.value.len()),
            Verdict::of(r.value.len() == rounds as usize),
        ),
    }];
    s.done("explosion", claims)
}

/// One row of the metadata comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataRow {
    /// Clients writing.
    pub clients: u32,
    /// DVVSet: siblings left, causal metadata bytes per key.
    pub dvv: (usize, usize),
    /// Object version vector with server entries: siblings, bytes.
    pub vv: (usize, usize),
    /// Per-sibling version vectors with client entries (exact, but per client): siblings,
    /// bytes.
    pub client_vv: (usize, usize),
}

/// `clients` clients each do `writes_each` read-modify-writes of one key through 3 servers,
/// reading at a random server and writing back a few steps later (so sessions overlap);
/// servers replicate every write at once. Seeded.
pub fn metadata_row(clients: u32, writes_each: u32, seed: u64) -> MetadataRow {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let servers = 3usize;
    let mut dvv: Vec<Node> = (1..=3).map(|i| Node::new(i, Scheme::Dvv)).collect();
    let mut vv: Vec<Node> = (1..=3).map(|i| Node::new(i, Scheme::Vv)).collect();
    let mut cvv: Vec<VcRegister<u64>> = vec![VcRegister::new(); servers];
    // (due, client, server, contexts)
    let mut pending: Vec<(u64, u32, usize, [VectorClock; 3])> = Vec::new();
    let total = u64::from(clients) * u64::from(writes_each);
    let mut started = 0u64;
    let mut step = 0u64;
    while started < total || !pending.is_empty() {
        pending.sort_by_key(|p| (p.0, p.1));
        while pending.first().is_some_and(|p| p.0 <= step) {
            let (_, client, s, [cd, cv, cc]) = pending.remove(0);
            let v = json!(step);
            let d = dvv[s].put("k", Some(&cd), Some(v.clone()));
            let o = vv[s].put("k", Some(&cv), Some(v));
            cvv[s].write(1000 + client, &cc, step);
            for t in (0..servers).filter(|&t| t != s) {
                dvv[t].merge("k", &d);
                vv[t].merge("k", &o);
                let c = cvv[s].clone();
                cvv[t].merge(&c);
            }
        }
        if started < total {
            let client = (started % u64::from(clients)) as u32;
            let s = rng.gen_range(0..servers);
            let ctx = [
                dvv[s].state("k").context(),
                vv[s].state("k").context(),
                cvv[s].read().context,
            ];
            pending.push((step + rng.gen_range(0..4), client, s, ctx));
            started += 1;
        }
        step += 1;
    }
    let cread = cvv[0].read();
    MetadataRow {
        clients,
        dvv: (
            dvv[0].state("k").siblings().len(),
            dvv[0].metadata_bytes("k"),
        ),
        vv: (vv[0].state("k").siblings().len(), vv[0].metadata_bytes("k")),
        client_vv: (
            cread.siblings.len(),
            cread
                .siblings
                .iter()
                .map(|s| codec::clock_len(&s.version))
                .sum(),
        ),
    }
}

/// The metadata table for 2, 4, …, 64 clients.
pub fn metadata_table(seed: u64) -> Table {
    let mut t = Table::new(
        "metadata",
        "Causal metadata per key as clients grow (3 servers, 4 writes each)",
        &[
            "clients",
            "dvv_siblings",
            "dvv_bytes",
            "vv_siblings",
            "vv_bytes",
            "client_vv_siblings",
            "client_vv_bytes",
        ],
    );
    for clients in [2u32, 4, 8, 16, 32, 64] {
        let r = metadata_row(clients, 4, seed);
        t.push(vec![
            clients.into(),
            r.dvv.0.into(),
            r.dvv.1.into(),
            r.vv.0.into(),
            r.vv.1.into(),
            r.client_vv.0.into(),
            r.client_vv.1.into(),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_holds_under_both_schemes() {
        for (name, _) in SCENARIOS {
            for scheme in [Scheme::Dvv, Scheme::Vv] {
                let t = run(name, scheme).unwrap();
                assert!(!t.claims.is_empty());
                for c in &t.claims {
                    assert_eq!(c.verdict, Verdict::Holds, "{name} {scheme:?}: {c:?}");
                }
            }
        }
        assert!(run("nope", Scheme::Dvv).is_none());
    }

    #[test]
    fn the_seed_example_prints_the_seeds_json() {
        let t = seed_example(Scheme::Dvv);
        let text = t.lines.join("\n");
        assert!(
            text.contains("# Write to Node1: {\"name\": \"Alice\"}"),
            "{text}"
        );
        assert!(text.contains("\"status\": \"CONFLICT\""));
        assert!(text.contains("\"Node1\": 1,\n    \"Node2\": 1"));
    }

    #[test]
    fn metadata_grows_with_clients_only_for_client_vectors() {
        let small = metadata_row(2, 4, 1);
        let big = metadata_row(64, 4, 1);
        // DVV and object VV: one counter per server, whatever the clients.
        assert!(big.dvv.1 <= 3 * 4 + 1 + 8, "{big:?}");
        assert!(big.vv.1 <= 3 * 4 + 1, "{big:?}");
        // Per-client vectors grow with the clients.
        assert!(
            big.client_vv.1 > 10 * small.client_vv.1,
            "{small:?} {big:?}"
        );
        assert_eq!(metadata_row(16, 4, 7), metadata_row(16, 4, 7));
    }
}
