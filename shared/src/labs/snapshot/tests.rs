use super::*;
use crate::check::conservation::FindingKind;
use crate::labs::{Params, Verdict};

fn run(config: SnapshotConfig) -> SnapshotLab {
    let mut lab = SnapshotLab::new(config).unwrap();
    lab.run();
    lab
}

#[test]
fn the_example_prints_the_seed_output() {
    let lab = run(SnapshotConfig::example(Algorithm::ChandyLamport, true));
    assert_eq!(
        lab.report(),
        "Snapshot Initiated...\n\
         Node 1 State: $50\n\
         Node 2 State: $30\n\
         Node 3 State: $20\n\
         In-flight (2->1): $10\n\
         TOTAL: $110 (Matches initial $110)\n\
         SUCCESS: Consistent Global State captured.\n"
    );
    assert!(lab.all_hold());
}

#[test]
fn the_example_without_fifo_loses_the_10_dollars_and_lai_yang_keeps_them() {
    let cl = run(SnapshotConfig::example(Algorithm::ChandyLamport, false));
    let r = cl.report();
    assert!(
        r.contains("TOTAL: $100 (Does not match initial $110)"),
        "{r}"
    );
    assert!(r.contains("lost $10 on 2->1"), "{r}");
    assert!(!cl.all_hold());
    let ly = run(SnapshotConfig::example(Algorithm::LaiYang, false));
    assert!(ly.report().contains("In-flight (2->1): $10"));
    assert!(ly.all_hold(), "{}", ly.report());
}

/// The checkers' findings account for every dollar of the difference, and the cut checker
/// agrees with the conservation checker about orphans.
fn findings_explain(lab: &SnapshotLab) {
    for r in lab.snapshots() {
        let (c, cut) = lab.judge(r).expect("collected");
        assert_eq!(
            i128::from(c.total) - i128::from(c.initial),
            c.explained_difference(),
            "{c:?}"
        );
        let orphans = c
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::Orphan)
            .count();
        let transfer_orphans = cut
            .orphans
            .iter()
            .filter(|o| lab.transfers.contains_key(&o.message))
            .count();
        assert_eq!(orphans, transfer_orphans);
    }
}

#[test]
fn chandy_lamport_on_fifo_channels_conserves_over_seeds() {
    for seed in 1..=8 {
        for initiators in [1, 2] {
            let mut c = SnapshotConfig::random(5, Algorithm::ChandyLamport, true, seed);
            c.initiators = initiators;
            let lab = run(c);
            assert_eq!(lab.snapshots().len(), initiators);
            assert!(lab.all_hold(), "seed {seed}: {}", lab.report());
            findings_explain(&lab);
        }
    }
}

#[test]
fn without_fifo_chandy_lamport_breaks_and_the_checker_says_where() {
    for seed in 1..=8 {
        let lab = run(SnapshotConfig::random(
            5,
            Algorithm::ChandyLamport,
            false,
            seed,
        ));
        assert!(
            !lab.all_hold(),
            "seed {seed} should break: {}",
            lab.report()
        );
        let (c, _) = lab.judge(&lab.snapshots()[0]).unwrap();
        assert!(!c.findings.is_empty(), "seed {seed}");
        findings_explain(&lab);
        assert!(lab.report().contains("FAILURE"));
    }
}

#[test]
fn lai_yang_needs_no_fifo_over_seeds_and_concurrent_snapshots() {
    for seed in 1..=8 {
        for initiators in [1, 2] {
            let mut c = SnapshotConfig::random(5, Algorithm::LaiYang, false, seed);
            c.initiators = initiators;
            let lab = run(c);
            assert_eq!(lab.snapshots().len(), initiators);
            assert!(lab.all_hold(), "seed {seed}: {}", lab.report());
            findings_explain(&lab);
        }
    }
}

#[test]
fn the_lab_trace_is_legal_and_the_cut_sits_where_nodes_recorded() {
    let lab = run(SnapshotConfig::random(4, Algorithm::ChandyLamport, true, 3));
    assert!(crate::trace::validate(lab.trace()).is_empty());
    let r = &lab.snapshots()[0];
    for (&n, &k) in &r.cut {
        let first_out = lab.trace().lane(n)[k];
        assert!(lab.trace().events()[first_out]
            .label
            .starts_with("snapshot 1.0: records"));
    }
}

#[test]
fn runs_are_functions_of_the_seed_and_links_rebuild_them() {
    let a = run(SnapshotConfig::random(5, Algorithm::LaiYang, false, 4));
    let b = run(SnapshotConfig::random(5, Algorithm::LaiYang, false, 4));
    let c = run(SnapshotConfig::random(5, Algorithm::LaiYang, false, 5));
    assert_eq!(a.trace().events(), b.trace().events());
    assert_ne!(a.trace().events(), c.trace().events());
    let p = Params::parse("seed=9&fifo=0&algorithm=lai-yang&initiators=2");
    let mut x = SPEC.build(&p).unwrap();
    x.run_until(SimTime::from_secs(1));
    let q = x.params();
    assert_eq!(
        q.to_query(),
        "seed=9&algorithm=lai-yang&fifo=0&initiators=2"
    );
    let mut y = SPEC.build(&Params::parse(&q.to_query())).unwrap();
    y.run_until(SimTime::from_secs(1));
    assert_eq!(x.claims(), y.claims());
    assert_eq!(x.tables(), y.tables());
    assert!(
        x.claims().iter().all(|c| c.verdict == Verdict::Holds),
        "{:?}",
        x.claims()
    );
}

#[test]
fn claims_are_pending_then_decided() {
    let mut lab = SPEC.build(&Params::parse("fifo=0")).unwrap();
    assert_eq!(lab.claims()[0].verdict, Verdict::Pending);
    lab.run_until(SimTime::from_secs(1));
    let claims = lab.claims();
    assert!(
        claims.iter().any(|c| c.verdict == Verdict::Fails),
        "{claims:?}"
    );
    let channels = &lab.tables()[1];
    assert!(channels
        .rows
        .iter()
        .any(|r| r[5] != crate::labs::Cell::from("in flight")));
}
