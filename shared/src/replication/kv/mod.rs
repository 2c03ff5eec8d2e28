//! A Dynamo-style multi-leader key-value store with siblings (the seed's projects 3 and 10):
//! G. DeCandia et al., "Dynamo: Amazon's Highly Available Key-value Store" (SOSP 2007), with
//! keys versioned by either the compact dotted version vector set of Riak
//! ([`dvvset`], Almeida et al., DAIS 2014) or one plain version vector per object with server
//! entries ([`vv`], Dynamo's and Riak's "vnode vclocks") — the same workload side by side.
//!
//! **Guarantee (both schemes):** a write is never lost — a write concurrent with what a replica
//! holds becomes a *sibling*; a write carrying the context of a read replaces what that read
//! returned. **Where they differ:** with a stale context (a client writing again through the
//! same server without reading in between) the version vector cannot tell which values the
//! writer had seen and keeps them as false siblings; the DVVSet keeps exactly the concurrent
//! ones. Metadata is one counter per server in both; per-client version vectors
//! ([`crate::replication::dvv::VcRegister`]) would be exact too but grow with the clients.
//!
//! Pieces: [`Node`] (one server's keys: `put`, `get`, `delete`, replication by `merge`, the
//! anti-entropy summary and delta with their byte counts), [`ring`] (consistent hashing with
//! virtual nodes, preference lists), [`codec`] (the opaque `X-Causal-Context` and the varint
//! form that metadata bytes are counted in). Pure: the HTTP service and the simulations drive it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clocks::vector_clock::VectorClock;
use crate::NodeId;

pub mod codec;
pub mod dvvset;
pub mod ring;
pub mod vv;

pub use codec::{decode_context, encode_context, ContextError};
pub use dvvset::DvvSet;
pub use ring::Ring;
pub use vv::VvObject;

/// Which clock versions the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// Dotted version vector sets.
    Dvv,
    /// One version vector per object, entries per server.
    Vv,
}

impl Scheme {
    /// `dvv` / `vv`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Dvv => "dvv",
            Scheme::Vv => "vv",
        }
    }

    /// Parses `dvv` / `vv`.
    pub fn parse(s: &str) -> Option<Scheme> {
        match s {
            "dvv" => Some(Scheme::Dvv),
            "vv" => Some(Scheme::Vv),
            _ => None,
        }
    }

    pub(crate) fn tag(self) -> u8 {
        match self {
            Scheme::Dvv => b'd',
            Scheme::Vv => b'v',
        }
    }

    pub(crate) fn from_tag(t: u8) -> Option<Scheme> {
        match t {
            b'd' => Some(Scheme::Dvv),
            b'v' => Some(Scheme::Vv),
            _ => None,
        }
    }
}

/// A stored value: JSON, or a tombstone left by a delete (kept so the delete replicates and
/// overwrites what it had seen; a read whose siblings are all tombstones finds nothing).
pub type Stored = Option<Value>;

/// One key's state on one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Versioned {
    /// Under a DVVSet.
    Dvv(DvvSet<Stored>),
    /// Under an object version vector.
    Vv(VvObject<Stored>),
}

impl Versioned {
    /// The empty state of `scheme`.
    pub fn empty(scheme: Scheme) -> Versioned {
        match scheme {
            Scheme::Dvv => Versioned::Dvv(DvvSet::new()),
            Scheme::Vv => Versioned::Vv(VvObject::new()),
        }
    }

    /// The context a read returns.
    pub fn context(&self) -> VectorClock {
        match self {
            Versioned::Dvv(d) => d.join(),
            Versioned::Vv(o) => o.clock.clone(),
        }
    }

    /// Every sibling, tombstones included.
    pub fn siblings(&self) -> Vec<Stored> {
        match self {
            Versioned::Dvv(d) => d.values(),
            Versioned::Vv(o) => o.values.clone(),
        }
    }

    /// Server `id` coordinates a write of `value` with `context`.
    pub fn write(&self, id: NodeId, context: &VectorClock, value: Stored) -> Versioned {
        match self {
            Versioned::Dvv(d) => {
                Versioned::Dvv(DvvSet::update(DvvSet::new_with(context, value), d, id))
            }
            Versioned::Vv(o) => Versioned::Vv(o.update(context, id, value)),
        }
    }

    /// Merges another replica's state of the same key (replication, anti-entropy).
    pub fn merge(&self, other: &Versioned) -> Versioned {
        match (self, other) {
            (Versioned::Dvv(a), Versioned::Dvv(b)) => Versioned::Dvv(a.sync(b)),
            (Versioned::Vv(a), Versioned::Vv(b)) => Versioned::Vv(a.sync(b)),
            // Stores never mix schemes; keep ours.
            _ => self.clone(),
        }
    }

    /// Causal metadata stored for this key, bytes, in the varint form of [`codec`]: for a
    /// DVVSet each entry's id, counter and value count; for a version vector the clock.
    pub fn metadata_bytes(&self) -> usize {
        use codec::varint_len;
        match self {
            Versioned::Dvv(d) => {
                varint_len(d.entries().len() as u64)
                    + d.entries()
                        .iter()
                        .map(|e| {
                            varint_len(u64::from(e.id))
                                + varint_len(e.counter)
                                + varint_len(e.values.len() as u64)
                        })
                        .sum::<usize>()
            }
            Versioned::Vv(o) => codec::clock_len(&o.clock),
        }
    }

    /// Bytes of the whole state (metadata plus the values' JSON), what a full transfer sends.
    pub fn state_bytes(&self) -> usize {
        self.metadata_bytes()
            + self
                .siblings()
                .iter()
                .map(|v| v.as_ref().map_or(1, |v| v.to_string().len()))
                .sum::<usize>()
    }

    /// Each sibling's own clock, for display: a DVVSet value's is the context it was written
    /// in plus its dot (`(context, Some(dot))`); under a version vector every sibling shares
    /// the object's clock (`(clock, None)`).
    pub fn sibling_clocks(&self) -> Vec<SiblingClock> {
        match self {
            Versioned::Dvv(d) => {
                let join = d.join();
                d.dotted_values()
                    .into_iter()
                    .map(|(dot, v)| {
                        let mut c = join.clone();
                        c.set(dot.0, dot.1);
                        (v, c, Some(dot))
                    })
                    .collect()
            }
            Versioned::Vv(o) => o
                .values
                .iter()
                .map(|v| (v.clone(), o.clock.clone(), None))
                .collect(),
        }
    }
}

/// A sibling for display: its value, its own clock and, under a DVVSet, its dot.
pub type SiblingClock = (Stored, VectorClock, Option<(NodeId, u64)>);

/// What a read returns: the seed's shape, plus the context to send back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadResult {
    /// The live siblings (tombstones left out).
    pub value: Vec<Value>,
    /// The key's clock as `{"Node1": 1, "Node2": 1}`.
    pub vector_clock: BTreeMap<String, u64>,
    /// `OK` (one value), `CONFLICT` (siblings) or `NOT_FOUND`.
    pub status: String,
    /// The opaque causal context for the next write or delete.
    pub context: String,
}

/// The seed's node names: server `n` is `Node{n}`.
pub fn node_name(n: NodeId) -> String {
    format!("Node{n}")
}

/// A read of `state` in the seed's shape.
pub fn read_result(scheme: Scheme, state: &Versioned) -> ReadResult {
    let value: Vec<Value> = state.siblings().into_iter().flatten().collect();
    let status = match value.len() {
        0 => "NOT_FOUND",
        1 => "OK",
        _ => "CONFLICT",
    };
    let ctx = state.context();
    ReadResult {
        vector_clock: ctx.iter().map(|(n, c)| (node_name(n), c)).collect(),
        status: status.to_owned(),
        context: encode_context(scheme, &ctx),
        value,
    }
}

/// One server's keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// This server's id (its entry in every clock it coordinates).
    pub id: NodeId,
    /// The scheme of every key here.
    pub scheme: Scheme,
    keys: BTreeMap<String, Versioned>,
}

/// What one anti-entropy exchange cost, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeBytes {
    /// The summary the receiver sent (keys and their causal metadata).
    pub summary: usize,
    /// The states sent back (only what the receiver lacked).
    pub delta: usize,
    /// What sending every state would have cost.
    pub full: usize,
    /// Keys sent back.
    pub keys_sent: usize,
}

/// One key of an anti-entropy summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeySummary {
    /// A DVVSet's entries: `(id, counter, floor)`.
    Dvv(dvvset::Summary),
    /// A version vector.
    Vv(VectorClock),
}

impl Node {
    /// An empty server.
    pub fn new(id: NodeId, scheme: Scheme) -> Node {
        Node {
            id,
            scheme,
            keys: BTreeMap::new(),
        }
    }

    /// Key `key`'s state (empty if never written here).
    pub fn state(&self, key: &str) -> Versioned {
        self.keys
            .get(key)
            .cloned()
            .unwrap_or_else(|| Versioned::empty(self.scheme))
    }

    /// Every key held, with its state.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &Versioned)> + '_ {
        self.keys.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// A read, in the seed's shape.
    pub fn get(&self, key: &str) -> ReadResult {
        read_result(self.scheme, &self.state(key))
    }

    /// A write coordinated here, with the context of an earlier read (`None`: a blind write).
    /// Returns the key's new state: replicate it to the key's other servers ([`Node::merge`]).
    pub fn put(&mut self, key: &str, context: Option<&VectorClock>, value: Stored) -> Versioned {
        let empty = VectorClock::new();
        let next = self
            .state(key)
            .write(self.id, context.unwrap_or(&empty), value);
        self.keys.insert(key.to_owned(), next.clone());
        next
    }

    /// A write with an encoded context (the HTTP form).
    pub fn put_encoded(
        &mut self,
        key: &str,
        context: Option<&str>,
        value: Stored,
    ) -> Result<Versioned, ContextError> {
        let ctx = context
            .map(|c| decode_context(self.scheme, c))
            .transpose()?;
        Ok(self.put(key, ctx.as_ref(), value))
    }

    /// Merges another replica's state of `key`.
    pub fn merge(&mut self, key: &str, state: &Versioned) {
        let next = self.state(key).merge(state);
        self.keys.insert(key.to_owned(), next);
    }

    /// Causal metadata bytes for `key` (0 if absent).
    pub fn metadata_bytes(&self, key: &str) -> usize {
        self.keys.get(key).map_or(0, Versioned::metadata_bytes)
    }

    /// Anti-entropy, step 1 (run by the receiver): per key, what this server knows.
    pub fn summary(&self) -> BTreeMap<String, KeySummary> {
        self.keys
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    Versioned::Dvv(d) => KeySummary::Dvv(d.summary()),
                    Versioned::Vv(o) => KeySummary::Vv(o.clock.clone()),
                };
                (k.clone(), s)
            })
            .collect()
    }

    /// Anti-entropy, step 2 (run by the sender): the states the holder of `summary` lacks —
    /// whole keys it does not have, for the rest only what carries news (DVVSet entries with a
    /// later event or a higher floor; an object clock it does not descend).
    pub fn delta(&self, summary: &BTreeMap<String, KeySummary>) -> Vec<(String, Versioned)> {
        self.keys
            .iter()
            .filter_map(|(k, v)| match (v, summary.get(k)) {
                (_, None) => Some((k.clone(), v.clone())),
                (Versioned::Dvv(d), Some(KeySummary::Dvv(s))) => {
                    let part = d.missing_from(s);
                    (!part.entries().is_empty()).then(|| (k.clone(), Versioned::Dvv(part)))
                }
                (Versioned::Vv(o), Some(KeySummary::Vv(c))) => {
                    (!c.descends(&o.clock)).then(|| (k.clone(), v.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// One full anti-entropy exchange from `self` to `to`: `to` summarises, `self` sends what
    /// it lacks, `to` merges it. Returns the bytes each part cost.
    pub fn sync_to(&self, to: &mut Node) -> ExchangeBytes {
        let summary = to.summary();
        let summary_bytes: usize = summary
            .iter()
            .map(|(k, s)| {
                k.len()
                    + match s {
                        KeySummary::Dvv(d) => {
                            codec::varint_len(d.0.len() as u64)
                                + d.0
                                    .iter()
                                    .map(|&(i, c, f)| {
                                        codec::varint_len(u64::from(i))
                                            + codec::varint_len(c)
                                            + codec::varint_len(f)
                                    })
                                    .sum::<usize>()
                        }
                        KeySummary::Vv(c) => codec::clock_len(c),
                    }
            })
            .sum();
        let delta = self.delta(&summary);
        let delta_bytes = delta.iter().map(|(k, v)| k.len() + v.state_bytes()).sum();
        let full = self
            .keys
            .iter()
            .map(|(k, v)| k.len() + v.state_bytes())
            .sum();
        for (k, v) in &delta {
            to.merge(k, v);
        }
        ExchangeBytes {
            summary: summary_bytes,
            delta: delta_bytes,
            full,
            keys_sent: delta.len(),
        }
    }
}

#[cfg(test)]
mod tests;
