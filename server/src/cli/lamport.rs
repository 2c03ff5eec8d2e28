//! `chronoscope lamport` — run the Lamport clock lab's experiments headless (simulated or in
//! real time), print a summary table and write logs, plots, the report and the trace.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use chronoscope::labs::lamport::{
    analyse, plot_clocks, plot_queues, report, simulate, Experiment, LabConfig, LabRun,
};
use chronoscope::trace::shiviz;

use super::lamport_realtime::run_realtime;

/// Flags of `chronoscope lamport`.
#[derive(Debug, clap::Args)]
pub struct LamportArgs {
    /// Run one of the notebook's experiments (1–11).
    #[arg(long, conflicts_with = "all", required_unless_present_any = ["all", "rates"])]
    pub experiment: Option<u32>,
    /// Run all 11 experiments.
    #[arg(long)]
    pub all: bool,
    /// Custom clock rates instead of an experiment, e.g. `--rates 1,3,6`.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["experiment", "all"])]
    pub rates: Option<Vec<u32>>,
    /// Internal-event probability for `--rates` runs (default 0.7, as in the notebook).
    #[arg(long, default_value_t = 0.7, requires = "rates")]
    pub internal: f64,
    /// Seconds per run.
    #[arg(long, default_value_t = 60.0)]
    pub duration: f64,
    /// Seed of the random choices (and of experiment 1's rates).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run in real time with threads and TCP sockets on loopback instead of simulating.
    #[arg(long)]
    pub realtime: bool,
    /// Directory for logs, plots, reports and traces (one subdirectory per run).
    #[arg(long, default_value = "lamport-out")]
    pub out: PathBuf,
}

/// Runs `chronoscope lamport`.
pub fn run(args: LamportArgs) -> ExitCode {
    let runs: Vec<(Option<Experiment>, LabConfig)> = if args.all {
        Experiment::ALL
            .iter()
            .map(|e| (Some(*e), e.config(args.duration, args.seed)))
            .collect()
    } else if let Some(rates) = &args.rates {
        let mut c = Experiment::ALL[1].config(args.duration, args.seed);
        c.rates = rates.clone();
        c.internal_probability = args.internal;
        vec![(None, c)]
    } else {
        let n = args.experiment.unwrap_or(1);
        match Experiment::get(n) {
            Ok(e) => vec![(Some(e), e.config(args.duration, args.seed))],
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let mode = if args.realtime {
        "real time"
    } else {
        "simulated"
    };
    let started = Instant::now();
    println!(
        "| run | rates | internal | mode | final clocks | queue max | queue final | wall time |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (experiment, config) in runs {
        let t0 = Instant::now();
        let result = if args.realtime {
            run_realtime(config.clone()).map_err(|e| e.to_string())
        } else {
            simulate(config.clone()).map_err(|e| e.to_string())
        };
        let run = match result {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let elapsed = t0.elapsed();
        let name =
            experiment.map_or_else(|| "custom".to_owned(), |e| format!("exp-{:02}", e.number));
        let analysis = analyse(&run.config.rates, &run.logs);
        let col = |f: &dyn Fn(&chronoscope::labs::lamport::MachineStats) -> String| {
            analysis
                .machines
                .iter()
                .map(f)
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "| {name} | {:?} | {:.0} % | {mode} | {} | {} | {} | {:.3} s |",
            run.config.rates,
            run.config.internal_probability * 100.0,
            col(&|m| m.final_clock.to_string()),
            col(&|m| m.queue_max.to_string()),
            col(&|m| m.queue_final.to_string()),
            elapsed.as_secs_f64()
        );
        let dir = args.out.join(&name);
        let text = report(experiment.as_ref(), &run.config, &analysis);
        if let Err(e) = write_outputs(&dir, &run, &text) {
            eprintln!("error: cannot write {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    println!(
        "\n{} in {:.3} s; logs, plots (clocks.svg, queues.svg), report.md and trace.shiviz.log under {}",
        mode,
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    ExitCode::SUCCESS
}

fn write_outputs(dir: &Path, run: &LabRun, report_md: &str) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    for m in 0..run.logs.len() {
        fs::write(dir.join(format!("machine-{m}.log")), run.log_text(m))?;
    }
    fs::write(
        dir.join("clocks.svg"),
        plot_clocks(&run.config.rates, &run.logs),
    )?;
    fs::write(
        dir.join("queues.svg"),
        plot_queues(&run.config.rates, &run.logs),
    )?;
    fs::write(dir.join("report.md"), report_md)?;
    fs::write(dir.join("trace.shiviz.log"), shiviz::export(&run.trace))?;
    Ok(())
}
