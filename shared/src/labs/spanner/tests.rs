use super::*;
use crate::labs::{Params, Verdict};

fn run(config: SpannerConfig) -> SpannerLab {
    let mut lab = SpannerLab::new(config).unwrap();
    lab.run();
    lab
}

#[test]
fn the_single_write_prints_the_seed_output() {
    assert_eq!(
        SingleWrite::default().story().unwrap(),
        [
            "[TrueTime] Now: [100ms, 105ms] (Epsilon: 5ms)",
            "[Spanner] Assigned Commit Timestamp: 105ms",
            "[Spanner] WAIT: Sleeping for 5ms to ensure safety...",
            "[Spanner] COMMIT SUCCESS.",
        ]
    );
    // ε is not a constant: a minute later the same write waits longer.
    let later = SingleWrite {
        since_sync_ms: 60_000.0,
        ..SingleWrite::default()
    };
    assert_eq!(
        later.story().unwrap()[0],
        "[TrueTime] Now: [90ms, 115ms] (Epsilon: 25ms)"
    );
}

#[test]
fn commit_wait_with_an_honest_epsilon_is_externally_consistent_over_seeds() {
    for seed in 1..=5 {
        let lab = run(SpannerConfig {
            seed,
            duration_s: 10.0,
            ..SpannerConfig::default()
        });
        let r = lab.check();
        assert!(r.holds(), "seed {seed}: {r:?}\n{}", lab.report());
        assert!(lab.history().len() > 500, "seed {seed}");
        assert_eq!(lab.intervals_honest().0, 0, "seed {seed}");
    }
}

#[test]
fn without_commit_wait_the_checker_finds_violations_over_seeds() {
    for seed in 1..=5 {
        let lab = run(SpannerConfig {
            seed,
            duration_s: 10.0,
            commit_wait: false,
            ..SpannerConfig::default()
        });
        let r = lab.check();
        assert!(!r.order.is_empty(), "seed {seed}: {}", lab.report());
        assert!(lab.report().contains("CHECK: VIOLATED"));
    }
}

#[test]
fn an_understated_epsilon_breaks_it_even_with_commit_wait() {
    for seed in 1..=5 {
        let lab = run(SpannerConfig {
            seed,
            duration_s: 20.0,
            assumed_drift_ppm: 5.0,
            drift_ppm: 400.0,
            sync_every_s: 60.0,
            ..SpannerConfig::default()
        });
        assert!(lab.intervals_honest().0 > 0, "seed {seed}");
        assert!(!lab.check().holds(), "seed {seed}: {}", lab.report());
    }
}

#[test]
fn epsilon_is_a_sawtooth_that_covers_the_clock_error() {
    let lab = run(SpannerConfig {
        duration_s: 70.0,
        clients: 1,
        think_ms: 100.0,
        ..SpannerConfig::default()
    });
    let eps: Vec<f64> = lab.samples().iter().map(|s| s.2[0]).collect();
    // It grows between syncs and falls back at each.
    assert!(eps.windows(2).any(|w| w[1] > w[0]));
    assert!(eps.windows(2).any(|w| w[1] < w[0]));
    let max = eps.iter().cloned().fold(0.0, f64::max);
    assert!(
        max > 5.0 && max < 0.5 + 1.2 + 200e-6 * 30_000.0 + 1.0,
        "{max}"
    );
    for (_, err, eps) in lab.samples() {
        for r in 0..3 {
            assert!(err[r].abs() <= eps[r], "{err:?} {eps:?}");
        }
    }
}

#[test]
fn claims_tables_and_links() {
    let mut lab = SPEC
        .build(&Params::parse("wait=0&duration=5&seed=2"))
        .unwrap();
    lab.run_until(SimTime::from_secs(5));
    let claims = lab.claims();
    assert_eq!(claims[0].verdict, Verdict::Fails, "{claims:?}");
    assert_eq!(claims[2].verdict, Verdict::Holds);
    assert_eq!(lab.params().to_query(), "seed=2&wait=0&duration=5");
    let mut again = SPEC.build(&lab.params()).unwrap();
    again.run_until(SimTime::from_secs(5));
    assert_eq!(again.tables(), lab.tables());
    assert!(crate::trace::validate(lab.trace()).is_empty());
}
