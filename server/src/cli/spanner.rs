//! `chronoscope spanner` — the TrueTime lab headless. `--write "Key=1, Val=A"` commits one
//! write with commit wait and prints the seed's four lines; without it, runs
//! [`chronoscope::labs::spanner`]'s regions and clients and prints the external-consistency
//! checker's verdict.

use std::process::ExitCode;

use chronoscope::labs::spanner::{SingleWrite, SpannerConfig, SpannerLab};
use clap::Args;

use super::units::{parse_seconds, parse_signed_ppm};

/// Options of `chronoscope spanner`.
#[derive(Debug, Args)]
pub struct SpannerArgs {
    /// Commit one write, e.g. `"Key=1, Val=A"`, and print TrueTime's interval, the commit
    /// timestamp and the commit wait.
    #[arg(long)]
    write: Option<String>,
    /// For `--write`: the region's clock when it commits, e.g. `102.5ms`.
    #[arg(long, default_value = "102.5ms", value_parser = parse_seconds)]
    at: f64,
    /// For `--write`: time since the region's last synchronisation, e.g. `10s`.
    #[arg(long, default_value = "10s", value_parser = parse_seconds)]
    since_sync: f64,
    /// For `--write`: the last synchronisation's error bound, e.g. `0.5ms`.
    #[arg(long, default_value = "0.5ms", value_parser = parse_seconds)]
    base: f64,
    /// The drift bound TrueTime assumes, e.g. `200ppm`.
    #[arg(long, default_value = "200ppm", value_parser = parse_signed_ppm)]
    drift_bound: f64,
    /// The regions' real clock drift (they drift +d, −d, +0.4d), e.g. `150ppm`.
    #[arg(long, default_value = "150ppm", value_parser = parse_signed_ppm)]
    drift: f64,
    /// Time between a region's synchronisations, e.g. `30s`.
    #[arg(long, default_value = "30s", value_parser = parse_seconds)]
    sync_every: f64,
    /// Commit without waiting out the uncertainty.
    #[arg(long)]
    no_commit_wait: bool,
    /// Concurrent clients.
    #[arg(long, default_value_t = 3)]
    clients: usize,
    /// Length of the run, e.g. `20s`.
    #[arg(long, default_value = "20s", value_parser = parse_seconds)]
    duration: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Parses `Key=1, Val=A` into its key and value.
fn parse_write(s: &str) -> Result<(String, String), String> {
    let mut key = None;
    let mut val = None;
    for part in s.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("expected \"Key=K, Val=V\", got {s:?}"))?;
        match k.trim().to_ascii_lowercase().as_str() {
            "key" => key = Some(v.trim().to_owned()),
            "val" | "value" => val = Some(v.trim().to_owned()),
            other => return Err(format!("unknown field {other:?} in {s:?}")),
        }
    }
    match (key, val) {
        (Some(k), Some(v)) if !k.is_empty() => Ok((k, v)),
        _ => Err(format!("expected \"Key=K, Val=V\", got {s:?}")),
    }
}

/// Runs one write or the lab; fails (exit 1) when the checker finds a violation.
pub fn run(args: SpannerArgs) -> ExitCode {
    if let Some(w) = &args.write {
        if let Err(e) = parse_write(w) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        let single = SingleWrite {
            local_ms: args.at * 1000.0,
            since_sync_ms: args.since_sync * 1000.0,
            base_ms: args.base * 1000.0,
            drift_bound_ppm: args.drift_bound,
        };
        return match single.story() {
            Ok(lines) => {
                for l in lines {
                    println!("{l}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = SpannerConfig {
        drift_ppm: args.drift,
        assumed_drift_ppm: args.drift_bound,
        sync_every_s: args.sync_every,
        commit_wait: !args.no_commit_wait,
        clients: args.clients,
        duration_s: args.duration,
        seed: args.seed,
        ..SpannerConfig::default()
    };
    let mut lab = match SpannerLab::new(config) {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    lab.run();
    print!("{}", lab.report());
    if lab.check().holds() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_parse() {
        assert_eq!(parse_write("Key=1, Val=A"), Ok(("1".into(), "A".into())));
        assert!(parse_write("Key=1").is_err());
        assert!(parse_write("Colour=red, Val=A").is_err());
    }
}
