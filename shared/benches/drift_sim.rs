//! Simulator throughput: events per second of a 16-node NTP drift lab, side by side with two
//! baselines measured in the same run:
//! - the bare simulator (`sim::Simulation`) running a trivial model with the same message
//!   pattern (16 nodes polling each other), to show what the clock and sync code costs;
//! - a bare `std::collections::BinaryHeap` of `(time, seq)` pairs doing the same number of
//!   push/pop pairs, the floor any event queue pays.
//!
//! Run: `cargo bench -p chronoscope --bench drift_sim`.

use std::{cmp::Reverse, collections::BinaryHeap, hint::black_box, time::Duration, time::Instant};

use chronoscope::{
    labs::drift::{DriftConfig, DriftLab, SyncAlgorithm},
    sim::{Latency, LinkModel, Network, SimTime, Simulation},
};

const NODES: u32 = 16;
const SIM_SECS: u64 = 6 * 3600;

fn lab() -> (u64, Duration) {
    let mut c = DriftConfig::new(NODES as usize, 100.0);
    c.sync = SyncAlgorithm::Ntp;
    c.interval = Duration::from_secs(16);
    c.liars = vec![15];
    c.sample_every = Duration::from_secs(10);
    let start = Instant::now();
    let mut lab = DriftLab::new(c).unwrap();
    lab.run_until(SimTime::from_secs(SIM_SECS));
    let elapsed = start.elapsed();
    black_box(lab.summary());
    (lab.sim_stats().events_processed, elapsed)
}

#[derive(Clone, Copy)]
enum Ev {
    Poll(u32),
    Request(u32, u32),
    Response(u32),
}

fn bare_sim() -> (u64, Duration) {
    let net = Network::new(LinkModel::new(Latency::Uniform {
        min: Duration::from_millis(5),
        max: Duration::from_millis(15),
    }));
    let start = Instant::now();
    let mut sim = Simulation::new(1, net);
    for n in 0..NODES {
        sim.schedule_in(Duration::from_secs(16), Ev::Poll(n));
    }
    let mut acc = 0u64;
    sim.run_until(SimTime::from_secs(SIM_SECS), |sim, _, ev| match ev {
        Ev::Poll(n) => {
            for p in (0..NODES).filter(|&p| p != n) {
                sim.send(n, p, Ev::Request(n, p));
            }
            sim.schedule_in(Duration::from_secs(16), Ev::Poll(n));
        }
        Ev::Request(from, to) => {
            sim.send(to, from, Ev::Response(from));
        }
        Ev::Response(n) => acc += n as u64,
    });
    black_box(acc);
    (sim.stats().events_processed, start.elapsed())
}

fn bare_heap(events: u64) -> (u64, Duration) {
    let start = Instant::now();
    let mut heap = BinaryHeap::new();
    let mut seq = 0u64;
    let mut t = 0u64;
    // Keep the queue about as full as the lab's (one poll per node plus messages in flight).
    for _ in 0..64 {
        heap.push(Reverse((t, seq)));
        seq += 1;
    }
    for _ in 0..events {
        let Reverse((now, _)) = heap.pop().unwrap();
        t = now + 10_000_000 + (seq * 7919 % 10_000_000);
        heap.push(Reverse((t, seq)));
        seq += 1;
    }
    black_box(heap.len());
    (events, start.elapsed())
}

fn rate((events, d): (u64, Duration)) -> f64 {
    events as f64 / d.as_secs_f64()
}

fn main() {
    // One warm-up of each, then the best of three.
    let best = |f: &dyn Fn() -> (u64, Duration)| {
        f();
        (0..3)
            .map(|_| f())
            .max_by(|a, b| rate(*a).total_cmp(&rate(*b)))
            .unwrap()
    };
    let lab = best(&lab);
    let sim = best(&bare_sim);
    let heap = best(&|| bare_heap(lab.0));
    println!(
        "16-node NTP drift lab, {} h simulated ({} events)",
        SIM_SECS / 3600,
        lab.0
    );
    println!("{:<44} {:>14} {:>10}", "", "events/s", "vs heap");
    for (name, r) in [
        ("drift lab (clocks + NTP + Marzullo)", lab),
        ("bare simulator, same message pattern", sim),
        ("std BinaryHeap push+pop (floor)", heap),
    ] {
        println!(
            "{:<44} {:>14.0} {:>9.3}x",
            name,
            rate(r),
            rate(r) / rate(heap)
        );
    }
    println!(
        "simulated seconds per wall second (drift lab): {:.0}",
        SIM_SECS as f64 / lab.1.as_secs_f64()
    );
}
