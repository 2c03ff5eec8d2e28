//! Clocks: logical (Lamport, vector), hybrid (HLC), interval (TrueTime), and the physical
//! clocks the simulator drifts.

pub mod hlc;
pub mod lamport;
pub mod physical_clock;
pub mod truetime;
pub mod vector_clock;
