//! # chronoscope — time in distributed systems, as pure algorithms
//!
//! This crate holds every algorithm Chronoscope shows: it has no sockets, no threads and never
//! reads the system clock. Time and randomness come in as parameters (a clock source, a seeded
//! RNG), which is what lets the same code run in the browser (WASM), in the relay, in the CLI
//! and inside the deterministic simulator.
//!
//! Module map (see ARCHITECTURE.md for the whole picture):
//! - [`lamport`] — Lamport clocks and the `(time, node)` total order.
//! - [`vector_clock`] — vector clocks (Fidge/Mattern) with `Before | After | Equal | Concurrent`.
//! - [`causal`] — causal broadcast (Birman–Schiper–Stephenson): the `HoldBackQueue`.
//! - [`total_order`] — total-order broadcast on `(Lamport time, node)` for the Lamport chat.
//! - [`hlc`] — hybrid logical clocks (Kulkarni et al.), packed into a `u64`, with a max offset.
//! - [`dvv`] — dotted version vectors and a versioned register with siblings (vs plain VCs).
//! - [`counter`] — G-Counter and PN-Counter, state-based CRDTs.
//! - [`truetime`] — Spanner's TrueTime intervals and commit wait.
//! - [`sim`] — a deterministic discrete-event simulator (virtual time, seeded RNG, event queue,
//!   network model with per-link latency, loss and partitions) that the labs run on.
//! - [`drift_lab`] — the clock drift lab scenario the CLI and the browser page both run.
//! - [`physical_clock`] — drifting, wandering, jittering clocks corrected by slewing or stepping.
//! - [`text`] — a YATA/FugueMax sequence CRDT for the collaborative editor (UTF-16 aware).
//! - [`editor`] — one editor replica: the text CRDT behind causal multicast, batching, acks.
//! - [`sync`] — Cristian, Berkeley, NTP (filter, combine, poll), Marzullo, fault-tolerant average.
//! - [`trace`] — the trace model every lab records into; ShiViz logs, Mermaid and SVG diagrams.
//! - [`lamport_lab`] — the Lamport lab notebook's machines, 11 experiments and analysis.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod causal;
pub mod counter;
pub mod drift_lab;
pub mod dvv;
pub mod editor;
pub mod hlc;
pub mod lamport;
pub mod lamport_lab;
pub mod physical_clock;
pub mod protocol;
pub mod sim;
pub mod sync;
pub mod text;
pub mod total_order;
pub mod trace;
pub mod truetime;
pub mod vector_clock;

/// A node (process, replica, machine) in a distributed system. The relay assigns browser tabs
/// their ids; labs number their nodes from 0 or 1 as their sources do.
pub type NodeId = u32;
