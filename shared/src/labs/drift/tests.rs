//! The drift lab's guarantees, asserted on seeded runs.

use super::*;
use crate::clocks::hlc::HlcTimestamp;
use crate::sync::marzullo::Chimer;

const HOUR: u64 = 3600;

fn run(config: DriftConfig, secs: u64) -> DriftLab {
    let mut lab = DriftLab::new(config).unwrap();
    lab.run_until(SimTime::from_secs(secs));
    lab
}

fn at(lab: &DriftLab, secs: u64) -> &Snapshot {
    lab.snapshots()
        .iter()
        .find(|s| s.at == SimTime::from_secs(secs))
        .unwrap()
}

#[test]
fn without_sync_skew_grows_linearly_with_the_drift_difference() {
    let mut c = DriftConfig::new(2, 50.0);
    c.sync = SyncAlgorithm::None;
    c.sample_every = Duration::from_secs(HOUR);
    let lab = run(c, 24 * HOUR);
    // 50 ppm × 86 400 s = 4.32 s/day; half a day, half of it.
    assert!((at(&lab, 24 * HOUR).skew - 4.32).abs() < 1e-6);
    assert!((at(&lab, 12 * HOUR).skew - 2.16).abs() < 1e-6);
    assert!((at(&lab, HOUR).skew - 0.18).abs() < 1e-6);
}

/// The Berkeley bound. One-way delays lie in [d_min, d_max] = [5, 15] ms, so a report
/// compensated by RTT/2 is off by at most (d_max − d_min)/2 = 5 ms (half the asymmetry);
/// the leader's own offset is exact. After a round each node sits at (average − its
/// estimation error), so two nodes differ by at most 2 × 5 ms = 10 ms. Corrections are
/// deltas, so their delivery delay only adds drift during it (15 ms × 50 ppm < 1 µs).
/// Before the next round the clocks drift apart by at most Δρ·P = 50 ppm × 20 s = 1 ms.
/// Bound: 10 ms + 1 ms (+ 10 µs for drift during round trips) = 11.01 ms.
#[test]
fn berkeley_keeps_the_skew_under_the_derived_bound() {
    let bound = 0.010 + 50e-6 * 20.0 + 1e-5;
    for seed in 1..=5 {
        let mut c = DriftConfig::new(3, 50.0);
        c.adjust = AdjustPolicy::Step;
        c.sample_every = Duration::from_millis(500);
        c.seed = seed;
        let lab = run(c, HOUR);
        let s = lab.summary();
        assert!(s.max_skew_after_first_sync <= bound, "seed {seed}: {s:?}");
        // Without sync the same clocks would be 180 ms apart after an hour.
        assert!(s.final_skew < bound);
    }
}

#[test]
fn cristian_errors_stay_within_half_the_rtt() {
    let mut c = DriftConfig::new(4, 50.0);
    c.sync = SyncAlgorithm::Cristian;
    c.latency = Latency::Uniform {
        min: Duration::from_millis(1),
        max: Duration::from_millis(40),
    };
    let lab = run(c, HOUR);
    let mut seen = 0;
    for e in lab.events() {
        if let LabEventKind::Cristian {
            sample,
            true_offset,
            ..
        } = &e.kind
        {
            assert!((sample.offset() - true_offset).abs() <= sample.rtt() / 2.0);
            seen += 1;
        }
    }
    // Three clients poll at 20 s, 40 s, …, 3600 s; the last exchange ends after the run.
    assert_eq!(seen, 3 * (HOUR / 20 - 1) as usize);
}

/// An asymmetric path: requests 1 → 0 take 5 ms, replies 0 → 1 take 45 ms. Cristian
/// assumes half the 50 ms round trip each way, so the client ends up (45 − 5) / 2 = 20 ms
/// behind the server; NTP, which makes the same assumption, is off by the same amount.
#[test]
fn an_asymmetric_link_biases_the_estimate_by_half_the_asymmetry() {
    for sync in [SyncAlgorithm::Cristian, SyncAlgorithm::Ntp] {
        let mut c = DriftConfig::new(2, 0.0);
        c.sync = sync;
        c.adjust = AdjustPolicy::Step;
        c.latency = Latency::Constant(Duration::from_millis(5));
        let symmetric = run(c.clone(), 600).summary().final_skew;
        c.links = vec![LinkLatency {
            from: 0,
            to: 1,
            latency: Latency::Constant(Duration::from_millis(45)),
        }];
        let lab = run(c, 600);
        let skew = lab.summary().final_skew;
        assert!(symmetric < 1e-3, "{sync:?} symmetric: {symmetric}");
        assert!((skew - 0.020).abs() < 1e-3, "{sync:?} asymmetric: {skew}");
        let last = lab.snapshots().last().unwrap();
        assert!(last.clocks[1] < last.clocks[0], "the client is behind");
    }
    let mut c = DriftConfig::new(2, 0.0);
    c.links = vec![LinkLatency {
        from: 1,
        to: 1,
        latency: Latency::Constant(Duration::from_millis(1)),
    }];
    assert_eq!(
        DriftLab::new(c.clone()).unwrap_err(),
        DriftError::SelfLink(1)
    );
    c.links[0].to = 2;
    assert_eq!(DriftLab::new(c).unwrap_err(), DriftError::NoSuchNode(2));
}

#[test]
fn ntp_flags_a_lying_peer_as_a_falseticker() {
    let mut c = DriftConfig::new(5, 50.0);
    c.sync = SyncAlgorithm::Ntp;
    c.liars = vec![4];
    let lab = run(c, HOUR);
    let stats = lab.node_stats();
    assert_eq!(stats[4].verdict, Some(Chimer::Falseticker));
    assert!(stats[..4]
        .iter()
        .all(|s| s.verdict == Some(Chimer::Truechimer)));
    let s = lab.summary();
    assert!(s.max_skew_after_first_sync < 0.020, "{s:?}");
}

fn ft(nodes: usize, liar: NodeId, drifts: &[f64]) -> DriftLab {
    let mut c = DriftConfig::new(nodes, 0.0);
    for (spec, d) in c.clocks.iter_mut().zip(drifts) {
        spec.drift_ppm = *d;
    }
    c.sync = SyncAlgorithm::FtAverage;
    c.adjust = AdjustPolicy::Step;
    c.liars = vec![liar];
    c.faults_tolerated = 1;
    run(c, HOUR)
}

/// n = 4, f = 1: each honest node drops the highest and lowest of its 4 values and
/// averages the middle two, which lie within the honest range, so a round at least halves
/// the honest diameter D, up to the reading error (each estimate off by ≤ 5 ms, two
/// estimates in a difference: 10 ms), and the drift adds Δρ·P = 1 ms per period. The
/// fixed point of D ≤ D/2 + 10 ms + 1 ms is 22 ms.
/// n = 3, f = 1: the two-faced liar makes each honest node's median its own value, so
/// nobody moves and the skew grows like unsynchronized clocks: 50 ppm × 1 h = 180 ms.
#[test]
fn fault_tolerant_average_holds_with_4_nodes_and_breaks_with_3() {
    let held = ft(4, 3, &[-25.0, 0.0, 25.0, 0.0]);
    let s = held.summary();
    assert!(s.max_skew <= 0.022, "n=4: {s:?}");
    let broken = ft(3, 2, &[-25.0, 25.0, 0.0]);
    let s = broken.summary();
    assert!(s.final_skew > 0.022 * 5.0, "n=3: {s:?}");
    // It grows like free-running clocks: at least 90% of 180 ms.
    assert!(s.final_skew > 0.9 * 50e-6 * HOUR as f64, "n=3: {s:?}");
}

#[test]
fn slewing_never_moves_a_clock_backwards_and_stepping_does_and_says_so() {
    let mut c = DriftConfig::new(5, 200.0);
    c.sample_every = Duration::from_millis(250);
    c.jumps = vec![JumpAt {
        at: SimTime::from_secs(100),
        node: 2,
        delta: 0.05,
    }];
    let slewed = run(c.clone(), 600);
    for node in 0..5 {
        let values: Vec<f64> = slewed.snapshots().iter().map(|s| s.clocks[node]).collect();
        assert!(
            values.windows(2).all(|w| w[1] >= w[0]),
            "node {node} went backwards"
        );
    }
    assert_eq!(slewed.summary().backward_steps, 0);
    assert!(!slewed
        .events()
        .iter()
        .any(|e| matches!(e.kind, LabEventKind::SteppedBack { .. })));

    c.adjust = AdjustPolicy::Step;
    let stepped = run(c, 600);
    let backs = stepped
        .events()
        .iter()
        .filter(|e| matches!(e.kind, LabEventKind::SteppedBack { .. }))
        .count();
    assert!(backs > 0);
    assert_eq!(stepped.summary().backward_steps, backs as u64);
    assert!(stepped
        .events()
        .iter()
        .any(|e| e.describe()[0].contains("stepped BACK")));
}

#[test]
fn runs_are_reproducible_from_the_seed() {
    let mut c = DriftConfig::new(6, 80.0);
    c.sync = SyncAlgorithm::Ntp;
    c.latency = Latency::Normal {
        mean: Duration::from_millis(10),
        std_dev: Duration::from_millis(3),
    };
    let a = run(c.clone(), 600);
    let b = run(c.clone(), 600);
    assert_eq!(a.snapshots(), b.snapshots());
    assert_eq!(a.events(), b.events());
    c.seed = 2;
    assert_ne!(run(c, 600).snapshots(), a.snapshots());
}

#[test]
fn bad_configurations_are_refused() {
    assert_eq!(
        DriftLab::new(DriftConfig::new(1, 50.0)).err(),
        Some(DriftError::NodeCount(1))
    );
    let mut c = DriftConfig::new(3, 50.0);
    c.liars = vec![0];
    assert_eq!(
        DriftLab::new(c.clone()).err(),
        Some(DriftError::LyingLeader)
    );
    c.liars = vec![7];
    assert_eq!(
        DriftLab::new(c.clone()).err(),
        Some(DriftError::NoSuchNode(7))
    );
    c.liars.clear();
    c.loss = 2.0;
    assert_eq!(
        DriftLab::new(c).err(),
        Some(DriftError::Network(NetworkError::BadLoss(2.0)))
    );
    let mut lab = DriftLab::new(DriftConfig::new(3, 50.0)).unwrap();
    assert_eq!(lab.set_liar(0, true), Err(DriftError::LyingLeader));
    assert_eq!(lab.set_drift(1, f64::NAN), Err(DriftError::BadClock));
    assert_eq!(lab.inject_jump(9, 1.0), Err(DriftError::NoSuchNode(9)));
}

/// A backward jump makes the physical clock go back; the node's HLC, stamped at every
/// sample and merged on every message, never does.
#[test]
fn hlc_stays_monotonic_through_a_backward_jump() {
    let mut c = DriftConfig::new(3, 50.0);
    c.sample_every = Duration::from_millis(500);
    c.jumps = vec![JumpAt {
        at: SimTime::from_millis(30_250),
        node: 1,
        delta: -2.0,
    }];
    let lab = run(c, 120);
    let physical: Vec<f64> = lab.snapshots().iter().map(|s| s.clocks[1]).collect();
    assert!(
        physical.windows(2).any(|w| w[1] < w[0] - 1.4),
        "the jump went backwards"
    );
    for node in 0..3 {
        let hlc: Vec<HlcTimestamp> = lab.snapshots().iter().map(|s| s.hlc[node]).collect();
        assert!(
            hlc.windows(2).all(|w| w[1] > w[0]),
            "node {node}'s HLC went backwards"
        );
    }
    // Right after the jump B's HLC still reads about 30.0 s (its last reading before the
    // jump), while its physical clock reads 28.5 s.
    let after = lab
        .snapshots()
        .iter()
        .find(|s| s.at == SimTime::from_millis(30_500))
        .unwrap();
    assert!(after.hlc[1].physical_ms() >= 29_900, "{}", after.hlc[1]);
    assert!(after.clocks[1] < 28.6);
}

/// TrueTime's ε = 1 ms + 200 µs/s since the last sync: a sawtooth that peaks at
/// 1 + 0.2 × 20 = 5 ms just before each Berkeley round (every 20 s) and falls back to
/// about 1 ms right after it.
#[test]
fn truetime_uncertainty_grows_between_syncs_and_drops_at_each() {
    let mut c = DriftConfig::new(3, 50.0);
    c.sample_every = Duration::from_millis(100);
    let lab = run(c, 100);
    let eps = |tenths: u64| {
        let at = SimTime::from_millis(tenths * 100);
        lab.snapshots()
            .iter()
            .find(|s| s.at == at)
            .unwrap()
            .epsilon_ms[1]
    };
    assert!((eps(10) - 1.2).abs() < 0.01, "{}", eps(10));
    for k in 1..4u64 {
        let before = eps(200 * k - 1); // 0.1 s before the round
        let after = eps(200 * k + 5); // 0.5 s after the round
        assert!((before - 4.98).abs() < 0.01, "round {k}: {before}");
        assert!(after < 1.2, "round {k}: {after}");
        assert!(eps(200 * k + 100) > after, "grows again");
    }
}

#[test]
fn the_history_limit_bounds_memory() {
    let mut lab = DriftLab::new(DriftConfig::new(3, 50.0)).unwrap();
    lab.set_history_limit(10);
    lab.run_until(SimTime::from_secs(1000));
    assert!((10..20).contains(&lab.snapshots().len()));
    assert!(lab.events().len() < 20);
    assert_eq!(lab.snapshots().last().unwrap().at, SimTime::from_secs(1000));
}

/// Berkeley with 3 nodes every 20 s over a 70 s run: rounds at 20, 40 and 60 s. Each
/// round is 2 polls, 2 answers and 2 corrections (the leader corrects itself locally):
/// 6 messages, all delivered within 45 ms (3 × 15 ms), so 18 sends and 18 receives.
#[test]
fn a_berkeley_run_records_a_legal_trace_of_its_messages() {
    let mut c = DriftConfig::new(3, 50.0);
    c.jumps = vec![JumpAt {
        at: SimTime::from_secs(30),
        node: 2,
        delta: -0.5,
    }];
    let lab = run(c, 70);
    let trace = lab.trace();
    assert!(crate::trace::validate(trace).is_empty());
    let count = |f: fn(&crate::trace::EventKind) -> bool| {
        trace.events().iter().filter(|e| f(&e.kind)).count()
    };
    use crate::trace::EventKind as K;
    assert_eq!(count(|k| matches!(k, K::Send { .. })), 18);
    assert_eq!(count(|k| matches!(k, K::Receive { .. })), 18);
    // The jump (slewing: no backward step from corrections).
    assert_eq!(count(|k| matches!(k, K::Local)), 1);
    assert_eq!(trace.node_name(0), "A");
    // Every receive is at a later true time than its send.
    for edge in trace.message_edges() {
        let at = |id| trace.event(id).unwrap().physical_ms.unwrap();
        assert!(at(edge.receive) > at(edge.send));
    }
    assert!(!lab.trace_full());
}

#[test]
fn the_trace_stops_growing_at_its_cap_and_stays_legal() {
    let mut c = DriftConfig::new(4, 50.0);
    c.sync = SyncAlgorithm::Ntp;
    c.adaptive_poll = false;
    c.interval = Duration::from_secs(1);
    let lab = run(c, 600);
    assert!(lab.trace_full());
    let trace = lab.trace();
    let sends_and_locals = trace
        .events()
        .iter()
        .filter(|e| !matches!(e.kind, crate::trace::EventKind::Receive { .. }))
        .count();
    assert_eq!(sends_and_locals, TRACE_CAP);
    assert!(trace.len() <= 2 * TRACE_CAP);
    assert!(crate::trace::validate(trace).is_empty());
}

#[test]
fn faults_tolerated_changes_from_the_next_round() {
    use crate::sync::ft_average::Resilience;
    let mut c = DriftConfig::new(5, 50.0);
    c.sync = SyncAlgorithm::FtAverage;
    c.faults_tolerated = 1;
    let mut lab = DriftLab::new(c).unwrap();
    lab.run_until(SimTime::from_secs(120));
    let changed = lab.now();
    lab.set_liar(3, true).unwrap();
    lab.set_liar(2, true).unwrap();
    lab.set_faults_tolerated(2);
    lab.run_until(SimTime::from_secs(300));
    let resilience = |after: bool| -> Vec<Resilience> {
        lab.events()
            .iter()
            .filter(|e| (e.at > changed) == after)
            .filter_map(|e| match &e.kind {
                LabEventKind::FtAverage { result, .. } => Some(result.resilience),
                _ => None,
            })
            .collect()
    };
    let (before, after) = (resilience(false), resilience(true));
    assert!(!before.is_empty() && !after.is_empty());
    // n = 5 tolerates f = 1 (3f + 1 = 4), not f = 2 (needs 7).
    assert!(
        before.iter().all(|r| *r == Resilience::Byzantine),
        "{before:?}"
    );
    assert!(
        after
            .iter()
            .all(|r| *r == Resilience::Insufficient { needed: 7 }),
        "{after:?}"
    );
}

#[test]
fn live_changes_take_effect() {
    let mut lab = DriftLab::new(DriftConfig::new(3, 50.0)).unwrap();
    lab.run_until(SimTime::from_secs(60));
    lab.set_sync(SyncAlgorithm::None).unwrap();
    lab.inject_jump(1, 2.0).unwrap();
    lab.run_until(SimTime::from_secs(200));
    let skew = lab.snapshots().last().unwrap().skew;
    assert!(skew > 2.0, "a 2 s jump without sync stays: {skew}");
    lab.set_sync(SyncAlgorithm::Berkeley).unwrap();
    lab.set_adjust(AdjustPolicy::Step);
    lab.run_until(SimTime::from_secs(400));
    assert!(lab.snapshots().last().unwrap().skew < 0.02);
}
