use proptest::prelude::*;
use serde_json::json;

use super::*;

fn cluster(scheme: Scheme, n: u32) -> Vec<Node> {
    (1..=n).map(|i| Node::new(i, scheme)).collect()
}

fn replicate(nodes: &mut [Node], from: usize, key: &str) {
    let state = nodes[from].state(key);
    for (i, n) in nodes.iter_mut().enumerate() {
        if i != from {
            n.merge(key, &state);
        }
    }
}

fn values(r: &ReadResult) -> Vec<String> {
    let mut v: Vec<String> = r.value.iter().map(|v| v.to_string()).collect();
    v.sort();
    v
}

#[test]
fn the_seeds_example_in_both_schemes() {
    for scheme in [Scheme::Dvv, Scheme::Vv] {
        let mut nodes = cluster(scheme, 2);
        nodes[0].put("name", None, Some(json!("Alice")));
        nodes[1].put("name", None, Some(json!("Bob")));
        replicate(&mut nodes, 1, "name");
        let r = nodes[0].get("name");
        assert_eq!(values(&r), ["\"Alice\"", "\"Bob\""], "{scheme:?}");
        assert_eq!(
            serde_json::to_value(&r.vector_clock).unwrap(),
            json!({"Node1": 1, "Node2": 1})
        );
        assert_eq!(r.status, "CONFLICT");
        // Read-modify-write with the merged context resolves it, everywhere.
        nodes[0]
            .put_encoded("name", Some(&r.context), Some(json!("Alice & Bob")))
            .unwrap();
        replicate(&mut nodes, 0, "name");
        for n in &nodes {
            let r = n.get("name");
            assert_eq!(r.value, vec![json!("Alice & Bob")]);
            assert_eq!(r.status, "OK");
        }
    }
}

#[test]
fn the_dynamo_walkthrough() {
    for scheme in [Scheme::Dvv, Scheme::Vv] {
        let (a, b, c) = (0, 1, 2);
        let mut nodes = cluster(scheme, 3);
        // A writes x=1 -> [A:1]; A replicates to B.
        nodes[a].put("x", None, Some(json!(1)));
        let s = nodes[a].state("x");
        nodes[b].merge("x", &s);
        // B writes x=2 having read [A:1] -> [A:1, B:1].
        let ctx = nodes[b].state("x").context();
        nodes[b].put("x", Some(&ctx), Some(json!(2)));
        assert_eq!(
            nodes[b].get("x").value,
            vec![json!(2)],
            "x=2 supersedes x=1"
        );
        // Meanwhile C, offline, writes x=3 -> [C:1].
        nodes[c].put("x", None, Some(json!(3)));
        // Everyone reconnects.
        for from in 0..3 {
            replicate(&mut nodes, from, "x");
        }
        for n in &nodes {
            let r = n.get("x");
            // DVV: x=2 and x=3 are concurrent, no winner. VV: merging C's object with A's
            // old one put x=1 under a joint clock, and nothing can tell it is older than x=2.
            let want: &[&str] = match scheme {
                Scheme::Dvv => &["2", "3"],
                Scheme::Vv => &["1", "2", "3"],
            };
            assert_eq!(values(&r), want, "{scheme:?}");
            assert_eq!(
                serde_json::to_value(&r.vector_clock).unwrap(),
                json!({"Node1": 1, "Node2": 1, "Node3": 1}),
                "the merged clock"
            );
        }
    }
}

#[test]
fn pitfall_1_a_write_with_the_read_clock_overwrites() {
    for scheme in [Scheme::Dvv, Scheme::Vv] {
        let mut n = Node::new(1, scheme);
        n.put("k", None, Some(json!("A")));
        let ctx = n.state("k").context();
        n.put("k", Some(&ctx), Some(json!("B")));
        assert_eq!(n.get("k").value, vec![json!("B")]);
    }
}

#[test]
fn pitfall_2_a_write_descending_both_siblings_prunes_them() {
    for scheme in [Scheme::Dvv, Scheme::Vv] {
        let mut nodes = cluster(scheme, 2);
        nodes[0].put("k", None, Some(json!("A"))); // [1,0]
        nodes[1].put("k", None, Some(json!("B"))); // [0,1]
        replicate(&mut nodes, 1, "k");
        let ctx = nodes[0].state("k").context(); // [1,1]
        assert_eq!(nodes[0].get("k").status, "CONFLICT");
        nodes[0].put("k", Some(&ctx), Some(json!("C")));
        assert_eq!(nodes[0].get("k").value, vec![json!("C")]);
    }
}

#[test]
fn pitfall_3_entries_of_removed_nodes_stay_and_harm_nothing() {
    for scheme in [Scheme::Dvv, Scheme::Vv] {
        let mut nodes = cluster(scheme, 4);
        nodes[3].put("k", None, Some(json!("from 4")));
        replicate(&mut nodes, 3, "k");
        nodes.pop(); // Node4 leaves the cluster.
        let r = nodes[0].get("k");
        assert!(
            r.vector_clock.contains_key("Node4"),
            "old writes keep its entry"
        );
        nodes[0]
            .put_encoded("k", Some(&r.context), Some(json!("after")))
            .unwrap();
        replicate(&mut nodes, 0, "k");
        assert_eq!(nodes[2].get("k").value, vec![json!("after")]);
    }
}

#[test]
fn pitfall_4_many_siblings_are_resolved_by_the_application() {
    // Five shoppers add to the cart through three nodes without reading first.
    let mut nodes = cluster(Scheme::Dvv, 3);
    for (i, item) in ["milk", "eggs", "bread", "tea", "jam"].iter().enumerate() {
        nodes[i % 3].put("cart", None, Some(json!([item])));
    }
    for from in 0..3 {
        replicate(&mut nodes, from, "cart");
    }
    let r = nodes[0].get("cart");
    assert_eq!(r.value.len(), 5, "by design: the store cannot choose");
    // The shopping-cart strategy: the union of the siblings.
    let mut union: Vec<String> = r
        .value
        .iter()
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    union.sort();
    union.dedup();
    nodes[0]
        .put_encoded("cart", Some(&r.context), Some(json!(union)))
        .unwrap();
    assert_eq!(nodes[0].get("cart").value.len(), 1);
}

#[test]
fn deletes_are_tombstones_that_replicate() {
    let mut nodes = cluster(Scheme::Dvv, 2);
    nodes[0].put("k", None, Some(json!(1)));
    replicate(&mut nodes, 0, "k");
    let r = nodes[1].get("k");
    nodes[1].put_encoded("k", Some(&r.context), None).unwrap();
    replicate(&mut nodes, 1, "k");
    assert_eq!(nodes[0].get("k").status, "NOT_FOUND");
    assert!(nodes[0].get("k").value.is_empty());
}

/// Two clients alternate writes through one server, each with the context its own last
/// write returned (never reading in between): the sibling-explosion workload.
fn explosion(scheme: Scheme, rounds: u32) -> (usize, usize) {
    let mut n = Node::new(1, scheme);
    let mut ctx = [VectorClock::new(), VectorClock::new()];
    for r in 0..rounds {
        let who = (r % 2) as usize;
        let state = n.put("k", Some(&ctx[who].clone()), Some(json!(r)));
        // A write answers as a read of the key right after it (Riak's `return_body`): the
        // siblings and their context. The client keeps that context for its next write.
        ctx[who] = state.context();
    }
    let s = n.state("k");
    (s.siblings().len(), s.metadata_bytes())
}

#[test]
fn sibling_explosion_vv_grows_dvv_stays_at_the_concurrent_two() {
    let (dvv, _) = explosion(Scheme::Dvv, 20);
    let (vv, _) = explosion(Scheme::Vv, 20);
    assert_eq!(dvv, 2, "one current value per client");
    assert_eq!(
        vv, 20,
        "no write ever replaces anything: all 20 are siblings"
    );
}

fn random_cluster(seed: u64, scheme: Scheme, ops: usize) -> Vec<Node> {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let mut nodes = cluster(scheme, 3);
    let mut reads: Vec<VectorClock> = vec![VectorClock::new()];
    let keys = ["a", "b", "c"];
    for v in 0..ops {
        let at = rng.gen_range(0..3);
        let key = keys[rng.gen_range(0..3)];
        match rng.gen_range(0..4) {
            0 => reads.push(nodes[at].state(key).context()),
            1 | 2 => {
                let ctx = reads[rng.gen_range(0..reads.len())].clone();
                nodes[at].put(key, Some(&ctx), Some(json!(v)));
            }
            _ => {
                let from = rng.gen_range(0..3);
                let s = nodes[from].state(key);
                nodes[at].merge(key, &s);
            }
        }
    }
    nodes
}

proptest! {
    /// Anti-entropy by difference reaches the state full merging reaches, and never sends
    /// more than the full state.
    #[test]
    fn anti_entropy_sends_only_what_is_lacking(seed in any::<u64>(), ops in 0usize..80, dvv in any::<bool>()) {
        let scheme = if dvv { Scheme::Dvv } else { Scheme::Vv };
        let nodes = random_cluster(seed, scheme, ops);
        let (from, mut to) = (nodes[0].clone(), nodes[1].clone());
        let mut full = nodes[1].clone();
        for (k, v) in from.keys() {
            full.merge(k, v);
        }
        let bytes = from.sync_to(&mut to);
        let norm = |n: &Node| -> Vec<(String, Vec<String>, VectorClock)> {
            n.keys().map(|(k, v)| {
                let mut s: Vec<String> = v.siblings().iter().map(|x| format!("{x:?}")).collect();
                s.sort();
                (k.to_owned(), s, v.context())
            }).collect()
        };
        prop_assert_eq!(norm(&to), norm(&full));
        prop_assert!(bytes.delta <= bytes.full);
        // A second exchange has nothing to send.
        let again = from.sync_to(&mut to);
        prop_assert_eq!(again.keys_sent, 0);
    }
}
