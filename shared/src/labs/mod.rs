//! The labs: scenarios built from the models (clocks, causality, sync, …), each a seeded run
//! that the CLI and the browser page both drive, with the textbook claim it checks.
//!
//! Every simulated lab has one shape, [`Lab`]: built from its URL [`Params`] (declared by
//! [`ParamSpec`]s in its [`LabSpec`]), stepped one event at a time or run until a time, with
//! its trace, its [`Claim`]s checked against its own numbers and its data as [`Table`]s. The
//! browser's lab frame drives any `dyn Lab` with the same controls; [`chart`] draws every lab's
//! line charts in the same node colours.

pub mod bft;
pub mod chart;
pub mod chat;
pub mod counter;
pub mod drift;
pub mod kv;
mod lab;
pub mod lamport;
pub mod lease;
pub mod params;
pub mod snapshot;
pub mod spanner;

pub use lab::{Cell, Claim, Lab, LabSpec, Table, Verdict};
pub use params::{ParamError, ParamKind, ParamSpec, Params};
