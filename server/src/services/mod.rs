//! The real network services, each a socket around protocol logic from the `chronoscope` crate:
//! - [`ntp`] — NTPv4 on UDP (RFC 5905): a server and a client, interoperating with chrony.
//! - [`kv`] — the Dynamo-style key-value store over HTTP: N nodes, siblings under DVV or
//!   version vectors, asynchronous replication over links with delay and cut, anti-entropy.
//! - [`metrics`] — `/metrics` in the Prometheus text format: the relay's counters and every time
//!   service node's state.
//! - [`clock`] — where they read time: the host clock, optionally with an injected skew and
//!   drift (they never set the system clock).

pub mod clock;
pub mod kv;
pub mod metrics;
pub mod ntp;
pub mod timesync;
