//! `chronoscope lease` — the lease lab headless: runs [`chronoscope::labs::lease`] and prints
//! the seed's story (`[Worker A] Acquired Lease (Token: 101)` … `[Server] REJECTED: Higher Token
//! (102) already used.`), then the fencing checker's verdict on the storage's history.

use std::process::ExitCode;

use chronoscope::labs::lease::{LeaseConfig, LeaseLab};
use clap::Args;

use super::units::{parse_offset, parse_seconds};

/// Options of `chronoscope lease`.
#[derive(Debug, Args)]
pub struct LeaseArgs {
    /// The lease's time to live on the server's clock, e.g. `5s`.
    #[arg(long, default_value = "5s", value_parser = parse_seconds)]
    ttl: f64,
    /// Worker A's stop-the-world pause between checking its lease and writing, e.g. `10s`
    /// (`0` for none).
    #[arg(long, default_value = "10s", value_parser = parse_seconds)]
    gc_pause: f64,
    /// Worker A's clock rate error in percent, e.g. `-40` (40 % slow).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    drift: f64,
    /// A step of Worker A's clock at 2 s, e.g. `-3s`.
    #[arg(long, default_value = "0s", value_parser = parse_offset, allow_hyphen_values = true)]
    jump: f64,
    /// One-way delay of every message, e.g. `10ms`.
    #[arg(long, default_value = "10ms", value_parser = parse_seconds)]
    delay: f64,
    /// Extra time Worker A's writes spend in the network, e.g. `8s` (slow, not down).
    #[arg(long, default_value = "0s", value_parser = parse_seconds)]
    slow: f64,
    /// Writes per lease, one second apart.
    #[arg(long, default_value_t = 1)]
    writes: u32,
    /// The storage accepts every write, whatever its token.
    #[arg(long)]
    no_fencing: bool,
    /// Length of the run, e.g. `30s`.
    #[arg(long, default_value = "30s", value_parser = parse_seconds)]
    duration: f64,
    /// Print every line (polls, acks, releases) with its time.
    #[arg(long)]
    verbose: bool,
}

/// Runs the lab and prints its story; fails (exit 1) when the checker finds two holders'
/// writes interleaved.
pub fn run(args: LeaseArgs) -> ExitCode {
    let config = LeaseConfig {
        ttl_s: args.ttl,
        gc_pause_s: args.gc_pause,
        drift_percent: args.drift,
        jump_s: args.jump,
        delay_ms: args.delay * 1000.0,
        slow_s: args.slow,
        fencing: !args.no_fencing,
        writes: args.writes,
        duration_s: args.duration,
        ..LeaseConfig::default()
    };
    let mut lab = match LeaseLab::new(config) {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    lab.run();
    print!("{}", lab.report(args.verbose));
    if lab.interleavings().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
