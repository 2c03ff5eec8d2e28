use super::*;
use crate::labs::{Params, Verdict};

fn run(config: LeaseConfig) -> LeaseLab {
    let mut lab = LeaseLab::new(config).unwrap();
    lab.run();
    lab
}

const SEED_STORY: &str = "[Worker A] Acquired Lease (Token: 101)
[Worker A] GC PAUSE (10 seconds)...
[Server] Lease Expired.
[Worker B] Acquired Lease (Token: 102)
[Worker B] Write Success (Token: 102)
[Worker A] Wakes up, tries to write with Token 101...
[Server] REJECTED: Higher Token (102) already used.
";

#[test]
fn the_seed_run_prints_the_seed_story_and_no_interleaving() {
    let lab = run(LeaseConfig::default());
    let report = lab.report(false);
    assert!(report.starts_with(SEED_STORY), "{report}");
    assert!(lab.interleavings().is_empty());
    assert!(
        report.ends_with(
            "CHECK: no two holders' writes interleaved (2 writes applied, 1 refused).\n"
        ),
        "{report}"
    );
    // A asks again after being fenced off and gets a fresh token.
    assert_eq!(
        lab.grants().iter().map(|g| g.token.0).collect::<Vec<_>>(),
        [101, 102, 103]
    );
}

#[test]
fn without_fencing_the_same_run_interleaves_two_holders() {
    let lab = run(LeaseConfig {
        fencing: false,
        ..LeaseConfig::default()
    });
    let found = lab.interleavings();
    assert_eq!(found.len(), 1, "{}", lab.report(true));
    assert_eq!((found[0].newer, found[0].stale), (1, 0));
    assert_eq!(found[0].stale_token, FencingToken(101));
    assert!(lab
        .report(false)
        .contains("CHECK: CORRUPTED: Worker A's write (Token 101)"));
    assert_eq!(
        lab.storage().value(),
        Some("A1"),
        "A's stale write overwrote B's"
    );
}

#[test]
fn a_slow_clock_or_a_slow_network_breaks_it_the_same_way_and_fencing_saves_both() {
    let cases = [
        // A's clock runs 40 % slow: it believes its 5 s lease lasts ~8 true seconds.
        LeaseConfig {
            gc_pause_s: 0.0,
            drift_percent: -40.0,
            writes: 8,
            ..LeaseConfig::default()
        },
        // A's clock is set back 3 s at 2 s.
        LeaseConfig {
            gc_pause_s: 0.0,
            jump_s: -3.0,
            writes: 8,
            ..LeaseConfig::default()
        },
        // Not down, not paused: its write sits 8 s in the network.
        LeaseConfig {
            gc_pause_s: 0.0,
            slow_s: 8.0,
            ..LeaseConfig::default()
        },
    ];
    for c in cases {
        let open = run(LeaseConfig {
            fencing: false,
            ..c.clone()
        });
        assert!(
            !open.interleavings().is_empty(),
            "{c:?}\n{}",
            open.report(true)
        );
        assert!(open.writes_after_expiry() > 0);
        let fenced = run(c.clone());
        assert!(
            fenced.interleavings().is_empty(),
            "{c:?}\n{}",
            fenced.report(true)
        );
        assert!(
            fenced.storage().history().iter().any(|w| !w.accepted),
            "{c:?}"
        );
    }
}

#[test]
fn an_honest_worker_keeps_within_its_lease() {
    let lab = run(LeaseConfig {
        gc_pause_s: 0.0,
        writes: 3,
        fencing: false,
        ..LeaseConfig::default()
    });
    assert!(lab.interleavings().is_empty());
    assert_eq!(lab.writes_after_expiry(), 0);
    assert!(lab.storage().history().iter().all(|w| w.accepted));
}

#[test]
fn claims_and_links() {
    let mut lab = SPEC.build(&Params::parse("fencing=0")).unwrap();
    lab.run_until(SimTime::from_secs(30));
    let claims = lab.claims();
    assert_eq!(claims[0].verdict, Verdict::Fails, "{claims:?}");
    assert_eq!(claims[1].verdict, Verdict::Holds);
    assert_eq!(lab.params().to_query(), "seed=0&fencing=0");
    let mut again = SPEC.build(&lab.params()).unwrap();
    again.run_until(SimTime::from_secs(30));
    assert_eq!(again.tables(), lab.tables());
    let e = SPEC.build(&Params::parse("ttl=0")).err().unwrap();
    assert_eq!(e.to_string(), "ttl: 0 is outside 0.5–60");
    let fenced = {
        let mut l = SPEC.build(&Params::new()).unwrap();
        l.run_until(SimTime::from_secs(30));
        l.claims()
    };
    assert_eq!(fenced[0].verdict, Verdict::Holds);
    assert!(crate::trace::validate(lab.trace()).is_empty());
}
