//! `chronoscope counter` — G-Counter / PN-Counter replicas counting through a partition: each
//! replica's own slots, its value while cut off and after healing, and the merge laws checked
//! on every state the run saw.

use std::process::ExitCode;

use chronoscope::labs::counter::{simulate, CounterConfig};
use chronoscope::labs::Verdict;

/// Flags of `chronoscope counter`.
#[derive(Debug, clap::Args)]
pub struct CounterArgs {
    /// Replicas (2–8).
    #[arg(long, default_value_t = 3)]
    pub replicas: u32,
    /// Operations per replica.
    #[arg(long, default_value_t = 10)]
    pub ops: u32,
    /// `g` (increments only) or `pn` (increments and decrements).
    #[arg(long, default_value = "pn")]
    pub kind: String,
    /// How many replicas are cut off from the rest while counting (0: none).
    #[arg(long, default_value_t = 1)]
    pub partition: u32,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs `chronoscope counter`.
pub fn run(args: CounterArgs) -> ExitCode {
    let p = match args.kind.as_str() {
        "g" => 0.0,
        "pn" => 0.3,
        k => {
            eprintln!("error: --kind must be g or pn, got {k:?}");
            return ExitCode::FAILURE;
        }
    };
    if !(2..=8).contains(&args.replicas) {
        eprintln!("error: --replicas must be 2 to 8, got {}", args.replicas);
        return ExitCode::FAILURE;
    }
    let run = simulate(CounterConfig {
        replicas: args.replicas,
        ops: args.ops,
        decrement_probability: p,
        partition: args.partition,
        seed: args.seed,
    });
    println!("| replica | own +slot | own -slot | value while cut off | value after heal |");
    println!("|---|---|---|---|---|");
    for r in &run.replicas {
        println!(
            "| R{} | {} | {} | {} | {} |",
            r.id, r.slot.0, r.slot.1, r.value_partitioned, r.value_healed
        );
    }
    println!(
        "\ntrue total {}; merged state {}",
        run.truth,
        serde_json::to_string(&run.state).unwrap_or_default()
    );
    let mut ok = true;
    for c in run.claims() {
        ok &= c.verdict != Verdict::Fails;
        println!("- [{}] {} — {}", c.verdict.key(), c.claim, c.evidence);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
