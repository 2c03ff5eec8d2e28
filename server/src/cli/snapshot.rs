//! `chronoscope snapshot` — the distributed snapshot lab headless: runs
//! [`chronoscope::labs::snapshot`] and prints the seed's report of each snapshot (`Node 1
//! State: $50` … `SUCCESS`), or what the checkers found when it fails.

use std::process::ExitCode;

use chronoscope::causality::snapshot::Algorithm;
use chronoscope::labs::snapshot::{SnapshotConfig, SnapshotLab};
use clap::{Args, ValueEnum};

/// Options of `chronoscope snapshot`. With neither `--nodes` nor `--seed` it runs the seed's
/// three-node example; with either, a random run of `--nodes` nodes spending $100 each.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Number of bank nodes (2–8) of a random run (default 5).
    #[arg(long)]
    nodes: Option<usize>,
    /// Seed of a random run (default 1).
    #[arg(long)]
    seed: Option<u64>,
    /// Let messages overtake each other on a channel (Chandy–Lamport then breaks).
    #[arg(long)]
    no_fifo: bool,
    /// The snapshot algorithm.
    #[arg(long, value_enum, default_value_t = AlgorithmArg::ChandyLamport)]
    algorithm: AlgorithmArg,
    /// Two concurrent snapshots, started by Node 1 and Node 2 3 ms apart.
    #[arg(long)]
    concurrent: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AlgorithmArg {
    ChandyLamport,
    LaiYang,
}

/// Runs the lab and prints its report; fails (exit 1) when a snapshot did not conserve the
/// money, recorded an inconsistent cut, or did not terminate.
pub fn run(args: SnapshotArgs) -> ExitCode {
    let algorithm = match args.algorithm {
        AlgorithmArg::ChandyLamport => Algorithm::ChandyLamport,
        AlgorithmArg::LaiYang => Algorithm::LaiYang,
    };
    let fifo = !args.no_fifo;
    let mut config = if args.nodes.is_none() && args.seed.is_none() {
        SnapshotConfig::example(algorithm, fifo)
    } else {
        SnapshotConfig::random(
            args.nodes.unwrap_or(5),
            algorithm,
            fifo,
            args.seed.unwrap_or(1),
        )
    };
    if args.concurrent {
        config.initiators = 2;
    }
    let mut lab = match SnapshotLab::new(config) {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    lab.run();
    print!("{}", lab.report());
    if lab.all_hold() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
