//! Replicated data: the text CRDT, state-based counters, dotted version vectors.

pub mod counter;
pub mod dvv;
pub mod text;
