//! `chronoscope bft` — the Byzantine clock synchronisation lab headless: runs
//! [`chronoscope::labs::bft`] and prints the rounds' skew and whether the precision bound held.

use std::process::ExitCode;

use chronoscope::labs::bft::{Adversary, BftConfig, BftLab};
use chronoscope::sync::bft::BftAlgorithm;
use clap::{Args, ValueEnum};

use super::units::{parse_seconds, parse_signed_ppm};

/// Options of `chronoscope bft`.
#[derive(Debug, Args)]
pub struct BftArgs {
    /// Nodes (2–16).
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Byzantine nodes (the last ones); the algorithm tolerates this many.
    #[arg(long, default_value_t = 1)]
    faulty: usize,
    /// The convergence function.
    #[arg(long, value_enum, default_value_t = AlgorithmArg::WelchLynch)]
    algorithm: AlgorithmArg,
    /// What the Byzantine nodes report.
    #[arg(long, value_enum, default_value_t = AdversaryArg::TwoFaced)]
    adversary: AdversaryArg,
    /// Drift bound: correct clocks drift evenly over ±this, e.g. `100ppm`.
    #[arg(long, default_value = "100ppm", value_parser = parse_signed_ppm)]
    drift: f64,
    /// A clock reading's error bound, e.g. `1ms`.
    #[arg(long, default_value = "1ms", value_parser = parse_seconds)]
    reading_error: f64,
    /// Time between rounds, e.g. `10s`.
    #[arg(long, default_value = "10s", value_parser = parse_seconds)]
    period: f64,
    /// Length of the run, e.g. `600s`.
    #[arg(long, default_value = "600s", value_parser = parse_seconds)]
    duration: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AlgorithmArg {
    WelchLynch,
    InteractiveConvergence,
    FtAverage,
    Marzullo,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AdversaryArg {
    TwoFaced,
    Liar,
    Random,
    None,
}

/// Runs the lab and prints its report; fails (exit 1) when the precision bound broke.
pub fn run(args: BftArgs) -> ExitCode {
    let config = BftConfig {
        nodes: args.nodes,
        faulty: args.faulty,
        algorithm: match args.algorithm {
            AlgorithmArg::WelchLynch => BftAlgorithm::WelchLynch,
            AlgorithmArg::InteractiveConvergence => BftAlgorithm::InteractiveConvergence,
            AlgorithmArg::FtAverage => BftAlgorithm::FtAverage,
            AlgorithmArg::Marzullo => BftAlgorithm::Marzullo,
        },
        adversary: match args.adversary {
            AdversaryArg::TwoFaced => Adversary::TwoFaced,
            AdversaryArg::Liar => Adversary::Liar,
            AdversaryArg::Random => Adversary::Random,
            AdversaryArg::None => Adversary::None,
        },
        drift_ppm: args.drift,
        reading_error_ms: args.reading_error * 1000.0,
        period_s: args.period,
        duration_s: args.duration,
        seed: args.seed,
    };
    let mut lab = match BftLab::new(config) {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    lab.run();
    print!("{}", lab.report());
    if lab.bound_holds() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
