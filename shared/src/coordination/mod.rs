//! Coordination: protocols that make nodes agree — on a leader, on a log, on who holds a
//! lease — and the clocks they lean on.
//!
//! - [`lease`] — leases with fencing tokens.
//! - [`raft`] — a Raft cluster (tikv's raft-rs) driven by the simulator, each node's timers on
//!   its own drifting clock; ReadIndex and leader-lease reads; Raft's safety watched every run.

pub mod lease;
pub mod raft;
