//! Replicated data: the text CRDT, state-based counters, dotted version vectors, and the
//! Dynamo-style key-value store built on them.

pub mod counter;
pub mod dvv;
pub mod kv;
pub mod text;
