//! The headless labs: each file parses a subcommand's arguments into a lab's configuration
//! (from the `chronoscope` crate) and prints its report. They compute nothing the browser page
//! would have to compute again.

pub mod drift;
pub mod lamport;
pub mod lamport_realtime;
pub mod trace;
