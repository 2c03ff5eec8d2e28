//! # chronoscope — time in distributed systems, as pure algorithms
//!
//! This crate holds every algorithm Chronoscope shows: it has no sockets, no threads and never
//! reads the system clock. Time and randomness come in as parameters (a clock source, a seeded
//! RNG), which is what lets the same code run in the browser (WASM), in the relay, in the CLI
//! and inside the deterministic simulator.
//!
//! Module map, by field (see ARCHITECTURE.md for the whole picture):
//! - [`clocks`] — Lamport clocks, vector clocks, hybrid logical clocks, TrueTime, and the
//!   drifting physical clocks the simulator runs.
//! - [`causality`] — causal broadcast (the `HoldBackQueue`), total-order broadcast, and
//!   distributed snapshots (Chandy–Lamport, Lai–Yang).
//! - [`coordination`] — leases with fencing tokens; a Raft cluster (tikv's raft-rs) on the
//!   simulator's drifting clocks, with ReadIndex and leader-lease reads.
//! - [`replication`] — CRDTs and versioned registers: the text CRDT, counters, dotted version
//!   vectors.
//! - [`sync`] — clock synchronisation: Cristian, Berkeley, NTP (filter, combine, poll),
//!   Marzullo, fault-tolerant average.
//! - [`check`] — history checkers: linearizability (Wing–Gong search, minimal
//!   counterexamples), consistent cuts, conservation of money, fencing.
//! - [`sim`] — a deterministic discrete-event simulator (virtual time, seeded RNG, event queue,
//!   network model with per-link latency, loss and partitions) that the labs run on.
//! - [`trace`] — the trace model every lab records into; ShiViz logs, Mermaid and SVG diagrams.
//! - [`labs`] — the labs: scenarios built from the models above, each a seeded run with the
//!   claim it checks.
//! - [`editor`] — one editor replica: the text CRDT behind causal multicast, batching, acks.
//! - [`protocol`] — the relay's wire frames, shared by both ends.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod causality;
pub mod check;
pub mod clocks;
pub mod coordination;
pub mod editor;
mod json;
pub mod labs;
pub mod protocol;
pub mod replication;
pub mod sim;
pub mod sync;
pub mod trace;

/// A node (process, replica, machine) in a distributed system. The relay assigns browser tabs
/// their ids; labs number their nodes from 0 or 1 as their sources do.
pub type NodeId = u32;
