//! Benchmark: the lab notebook's 11 experiments × 60 s, simulated, against the same lab in
//! real time (which by design takes wall-clock time: the notebook's 11 minutes).
//!
//! Run: `cargo bench -p chronoscope-server --bench lamport`

use std::time::{Duration, Instant};

use chronoscope::labs::lamport::{analyse, simulate, Experiment};
use chronoscope_server::cli::lamport_realtime::run_realtime;

fn all_simulated(seed: u64) -> usize {
    let mut events = 0;
    for e in Experiment::ALL {
        let run = simulate(e.config(60.0, seed)).expect("valid preset");
        let a = analyse(&run.config.rates, &run.logs);
        events += run.trace.len() + a.machines.len();
    }
    events
}

fn main() {
    // Warm up, then take the median of several full sweeps.
    all_simulated(0);
    let mut times: Vec<Duration> = Vec::new();
    let mut events = 0;
    for seed in 1..=15 {
        let t = Instant::now();
        events = std::hint::black_box(all_simulated(seed));
        times.push(t.elapsed());
    }
    times.sort();
    let sim = times[times.len() / 2];

    // The peer: the same lab in real time, one experiment for a short run, extrapolated.
    let short = 3.0;
    let t = Instant::now();
    let run =
        run_realtime(Experiment::get(4).expect("preset").config(short, 1)).expect("real-time run");
    let rt = t.elapsed();
    let rt_all = rt.as_secs_f64() / short * 60.0 * 11.0;

    let notebook = 11.0 * 60.0;
    println!("| what | time | events |");
    println!("|---|---|---|");
    println!(
        "| simulated: 11 experiments × 60 s (median of {}) | {:.2} ms | {events} |",
        times.len(),
        sim.as_secs_f64() * 1e3
    );
    println!(
        "| real time: experiment 4 × {short} s on loopback TCP | {:.3} s | {} |",
        rt.as_secs_f64(),
        run.trace.len()
    );
    println!("| real time extrapolated to 11 × 60 s | {rt_all:.1} s | |");
    println!("| the notebook (11 × 60 s in real time) | {notebook:.0} s | |");
    println!(
        "\nspeed-up of simulated over real time: {:.0}× (measured peer), {:.0}× (notebook's 11 minutes)",
        rt_all / sim.as_secs_f64(),
        notebook / sim.as_secs_f64()
    );
}
