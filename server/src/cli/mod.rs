//! The headless labs: each file parses a subcommand's arguments into a lab's configuration
//! (from the `chronoscope` crate) and prints its report. They compute nothing the browser page
//! would have to compute again.

pub mod bft;
pub mod chat;
pub mod counter;
pub mod drift;
pub mod hlc;
pub mod kv;
pub mod lamport;
pub mod lamport_realtime;
pub mod lease;
pub mod ntp;
pub mod snapshot;
pub mod spanner;
pub mod timesync;
pub mod trace;
mod units;

/// Logs to stderr with `tracing` (`RUST_LOG` overrides the default `info`), for the
/// subcommands that run services.
pub(crate) fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
}
