//! History checkers: each judges a recorded history against the guarantee a protocol claims,
//! and names what breaks it. Labs use them to say whether a run confirms its textbook claim,
//! and tests use the same code to assert it — so a lab's verdict and a test's assertion cannot
//! disagree.
//!
//! - [`linearizability`] — linearizability of a concurrent history against a sequential
//!   specification (Wing–Gong / Lowe search with memoisation), and the register histories the
//!   Raft lab records, with a minimal counterexample in words.
//! - [`consistent_cut`] — whether a cut of a trace is consistent, by vector clocks, with the
//!   orphan messages that break it.
//! - [`conservation`] — whether a recorded global state of a bank conserves its money, with
//!   every misplaced transfer named.
//! - [`external_consistency`] — Spanner's external consistency of a timestamped transaction
//!   history in true time, and snapshot reads.
//! - [`fencing`] — whether two lease holders' writes interleaved at the storage.

pub mod conservation;
pub mod consistent_cut;
pub mod external_consistency;
pub mod fencing;
pub mod linearizability;
