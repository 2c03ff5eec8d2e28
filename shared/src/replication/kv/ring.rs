//! Consistent hashing with virtual nodes — D. Karger et al., "Consistent Hashing and Random
//! Trees" (STOC 1997), as Dynamo places keys (DeCandia et al., SOSP 2007, §4.2–4.3): each
//! server owns `vnodes` tokens on a 64-bit ring; a key's *preference list* is the first
//! `replicas` distinct servers met walking clockwise from the key's hash.
//!
//! **Invariants:** a preference list has `min(replicas, servers)` distinct servers and is a
//! function of the key and the membership; adding a server moves only the keys whose walk now
//! meets it first (about `1/(n+1)` of them; tested).

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// FNV-1a, then the splitmix64 finaliser (FNV alone spreads short keys poorly). Stable across
/// platforms and runs: placement must not depend on a process's hash seed.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The ring: tokens sorted by position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ring {
    /// `(position, server, vnode index)`, sorted.
    tokens: Vec<(u64, NodeId, u32)>,
    servers: Vec<NodeId>,
    vnodes: u32,
}

impl Ring {
    /// A ring of `servers`, each with `vnodes` (≥ 1) tokens.
    pub fn new(servers: &[NodeId], vnodes: u32) -> Ring {
        let vnodes = vnodes.max(1);
        let mut servers = servers.to_vec();
        servers.sort_unstable();
        servers.dedup();
        let mut tokens: Vec<(u64, NodeId, u32)> = servers
            .iter()
            .flat_map(|&s| (0..vnodes).map(move |v| (hash(format!("{s}#{v}").as_bytes()), s, v)))
            .collect();
        tokens.sort_unstable();
        Ring {
            tokens,
            servers,
            vnodes,
        }
    }

    /// The servers, sorted.
    pub fn servers(&self) -> &[NodeId] {
        &self.servers
    }

    /// Tokens per server.
    pub fn vnodes(&self) -> u32 {
        self.vnodes
    }

    /// The first `replicas` distinct servers clockwise from `key`'s hash: the first is the
    /// coordinator, the rest hold its replicas.
    pub fn preference_list(&self, key: &str, replicas: usize) -> Vec<NodeId> {
        let want = replicas.min(self.servers.len());
        let mut out = Vec::with_capacity(want);
        if want == 0 {
            return out;
        }
        let h = hash(key.as_bytes());
        let start = self.tokens.partition_point(|t| t.0 < h);
        for k in 0..self.tokens.len() {
            let (_, s, _) = self.tokens[(start + k) % self.tokens.len()];
            if !out.contains(&s) {
                out.push(s);
                if out.len() == want {
                    break;
                }
            }
        }
        out
    }

    /// The token a key lands on: `(server, vnode)`.
    pub fn vnode_of(&self, key: &str) -> Option<(NodeId, u32)> {
        let h = hash(key.as_bytes());
        let start = self.tokens.partition_point(|t| t.0 < h) % self.tokens.len().max(1);
        self.tokens.get(start).map(|&(_, s, v)| (s, v))
    }

    /// Each server's share of the ring (as primary), summing to 1.
    pub fn ownership(&self) -> Vec<(NodeId, f64)> {
        let mut share: Vec<(NodeId, f64)> = self.servers.iter().map(|&s| (s, 0.0)).collect();
        let n = self.tokens.len();
        for (k, &(pos, s, _)) in self.tokens.iter().enumerate() {
            let prev = self.tokens[(k + n - 1) % n].0;
            let arc = if n == 1 {
                u64::MAX
            } else {
                pos.wrapping_sub(prev)
            };
            if let Some(e) = share.iter_mut().find(|e| e.0 == s) {
                e.1 += arc as f64 / u64::MAX as f64;
            }
        }
        share
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vnodes_even_out_ownership() {
        let spread = |v| {
            let o = Ring::new(&[1, 2, 3, 4], v).ownership();
            let max = o.iter().map(|e| e.1).fold(0.0, f64::max);
            let min = o.iter().map(|e| e.1).fold(1.0, f64::min);
            max / min
        };
        assert!(spread(128) < 1.5, "{}", spread(128));
        assert!(spread(1) > spread(128));
    }

    #[test]
    fn adding_a_server_moves_about_its_share() {
        let before = Ring::new(&[1, 2, 3, 4], 64);
        let after = Ring::new(&[1, 2, 3, 4, 5], 64);
        let keys: Vec<String> = (0..4000).map(|k| format!("key{k}")).collect();
        let moved = keys
            .iter()
            .filter(|k| before.preference_list(k, 1) != after.preference_list(k, 1))
            .count();
        // Every moved key moved to the new server; about a fifth moved.
        assert!(keys
            .iter()
            .filter(|k| before.preference_list(k, 1) != after.preference_list(k, 1))
            .all(|k| after.preference_list(k, 1) == vec![5]));
        assert!((500..1100).contains(&moved), "{moved}");
    }

    proptest! {
        #[test]
        fn preference_lists_are_distinct_and_stable(key in ".{0,20}", n in 1u32..8, r in 0usize..10, v in 1u32..16) {
            let servers: Vec<NodeId> = (1..=n).collect();
            let ring = Ring::new(&servers, v);
            let p = ring.preference_list(&key, r);
            prop_assert_eq!(p.len(), r.min(n as usize));
            let mut d = p.clone();
            d.sort_unstable();
            d.dedup();
            prop_assert_eq!(d.len(), p.len());
            prop_assert_eq!(Ring::new(&servers, v).preference_list(&key, r), p);
        }
    }
}
