//! The labs: scenarios built from the models (clocks, causality, sync, …), each a seeded run
//! that the CLI and the browser page both drive, with the textbook claim it checks.

pub mod drift;
pub mod lamport;
