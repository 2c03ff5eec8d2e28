//! # chronoscope — time in distributed systems, as pure algorithms
//!
//! This crate holds every algorithm Chronoscope shows: it has no sockets, no threads and never
//! reads the system clock. Time and randomness come in as parameters (a clock source, a seeded
//! RNG), which is what lets the same code run in the browser (WASM), in the relay, in the CLI
//! and inside the deterministic simulator.
//!
//! Module map:
//! - [`text`]: a YATA/FugueMax sequence CRDT for the collaborative editor (UTF-16 aware).
//!
//! (filled as modules land; see ARCHITECTURE.md for the whole picture)

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod protocol;
pub mod text;

/// A node (process, replica, machine) in a distributed system. The relay assigns browser tabs
/// their ids; labs number their nodes from 0 or 1 as their sources do.
pub type NodeId = u32;
