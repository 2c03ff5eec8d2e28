//! Coordination: leases with fencing tokens.

pub mod lease;
