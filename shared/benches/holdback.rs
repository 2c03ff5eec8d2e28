//! Hold-back queue benchmark: `HoldBackQueue` (held messages indexed by the dependency they
//! wait for) against the naive hold-back queue that rescans the whole queue after every
//! delivery, on the same messages, in the same run.
//!
//! Workload: 32 senders broadcast N messages (default 100,000); each sender's clock merges the
//! group's history at a recent checkpoint now and then, so messages depend on each other across
//! senders. They arrive at one receiver (a) fully reversed and (b) shuffled with a fixed seed.
//!
//! Run: `cargo bench -p chronoscope --bench holdback` (optionally `-- --messages 20000`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chronoscope::causality::holdback::{CausalMessage, HoldBackQueue};
use chronoscope::clocks::vector_clock::VectorClock;
use chronoscope::NodeId;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const SENDERS: u32 = 32;
const RECEIVER: NodeId = 1_000;

/// Broadcasts in send order, with valid causal clocks.
fn workload(n: usize, seed: u64) -> Vec<CausalMessage<u32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut global = VectorClock::new();
    let mut checkpoint = VectorClock::new();
    let mut clocks = vec![VectorClock::new(); SENDERS as usize];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        if i % 64 == 0 {
            checkpoint = global.clone();
        }
        let s = rng.gen_range(0..SENDERS);
        let clock = &mut clocks[s as usize];
        if rng.gen_bool(0.5) {
            // The sender has delivered everything up to the checkpoint.
            clock.merge(&checkpoint);
        }
        clock.increment(s);
        global.merge(clock);
        out.push(CausalMessage {
            sender: s,
            clock: clock.clone(),
            payload: i as u32,
        });
    }
    out
}

/// The baseline: a plain list, rescanned from the start after every delivery (the seed's
/// "Hint 3"). Given every help short of an index — the sequence number cached beside each held
/// message and a hash set for duplicates — so the ratio measures the algorithm.
struct NaiveQueue {
    clock: VectorClock,
    /// `(sender, seq, message)`.
    held: Vec<(NodeId, u64, CausalMessage<u32>)>,
    held_ids: HashSet<(NodeId, u64)>,
}

impl NaiveQueue {
    fn deliverable(&self, sender: NodeId, seq: u64, m: &CausalMessage<u32>) -> bool {
        seq == self.clock.get(sender) + 1
            && m.clock
                .iter()
                .all(|(k, c)| k == sender || c <= self.clock.get(k))
    }

    fn receive(&mut self, m: CausalMessage<u32>) -> usize {
        let (sender, seq) = (m.sender, m.seq());
        if seq <= self.clock.get(sender) || !self.held_ids.insert((sender, seq)) {
            return 0;
        }
        self.held.push((sender, seq, m));
        let mut delivered = 0;
        while let Some(i) = self
            .held
            .iter()
            .position(|(s, q, h)| self.deliverable(*s, *q, h))
        {
            let (sender, seq, _message) = self.held.swap_remove(i);
            self.held_ids.remove(&(sender, seq));
            self.clock.set(sender, seq);
            delivered += 1;
        }
        delivered
    }
}

fn time_ours(arrivals: Vec<CausalMessage<u32>>) -> (usize, Duration) {
    let mut q = HoldBackQueue::new(RECEIVER);
    let start = Instant::now();
    let mut delivered = 0;
    for (t, m) in arrivals.into_iter().enumerate() {
        delivered += q.receive(m, t as f64).expect("valid workload").len();
    }
    let elapsed = start.elapsed();
    assert_eq!(q.held_len(), 0);
    (delivered, elapsed)
}

fn time_naive(arrivals: Vec<CausalMessage<u32>>) -> (usize, Duration) {
    let mut q = NaiveQueue {
        clock: VectorClock::new(),
        held: Vec::new(),
        held_ids: HashSet::new(),
    };
    let start = Instant::now();
    let mut delivered = 0;
    for m in arrivals {
        delivered += q.receive(m);
    }
    let elapsed = start.elapsed();
    assert!(q.held.is_empty());
    (delivered, elapsed)
}

fn main() {
    let mut n = 100_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        // `cargo bench` passes `--bench`; ignore what we do not know.
        if a == "--messages" {
            n = args
                .next()
                .and_then(|v| v.parse().ok())
                .expect("--messages takes a number");
        }
    }
    let sent = workload(n, 42);
    let deps: usize = sent.iter().map(|m| m.clock.len()).sum();
    println!(
        "hold-back queue: {SENDERS} senders, {n} messages, {:.1} clock entries per message",
        deps as f64 / n as f64
    );
    println!(
        "{:<10} {:<34} {:>10} {:>16} {:>9}",
        "arrival", "implementation", "time (s)", "deliveries/s", "ratio"
    );
    let mut reversed = sent.clone();
    reversed.reverse();
    let mut shuffled = sent.clone();
    shuffled.shuffle(&mut StdRng::seed_from_u64(7));
    for (name, arrivals) in [("reversed", reversed), ("shuffled", shuffled)] {
        let (d_ours, t_ours) = time_ours(arrivals.clone());
        let (d_naive, t_naive) = time_naive(arrivals);
        assert_eq!((d_ours, d_naive), (n, n), "both deliver every message");
        let rate = |d: usize, t: Duration| d as f64 / t.as_secs_f64();
        let ratio = t_naive.as_secs_f64() / t_ours.as_secs_f64();
        println!(
            "{name:<10} {:<34} {:>10.3} {:>16.0} {:>8.1}x",
            "HoldBackQueue (dependency index)",
            t_ours.as_secs_f64(),
            rate(d_ours, t_ours),
            ratio
        );
        println!(
            "{name:<10} {:<34} {:>10.3} {:>16.0} {:>9}",
            "naive (rescan after each delivery)",
            t_naive.as_secs_f64(),
            rate(d_naive, t_naive),
            "1.0x"
        );
    }
}
