use super::*;
use crate::labs::{Params, Verdict};

fn run(config: BftConfig) -> BftLab {
    let mut lab = BftLab::new(config).unwrap();
    lab.run();
    lab
}

const ADVERSARIES: [Adversary; 4] = [
    Adversary::None,
    Adversary::Liar,
    Adversary::Random,
    Adversary::TwoFaced,
];

#[test]
fn the_bound_holds_for_n_at_least_3f_plus_1_across_seeds() {
    for algorithm in [
        BftAlgorithm::WelchLynch,
        BftAlgorithm::InteractiveConvergence,
        BftAlgorithm::FtAverage,
    ] {
        for (nodes, faulty) in [(4, 1), (7, 2), (5, 1)] {
            for adversary in ADVERSARIES {
                for seed in 1..=3 {
                    let lab = run(BftConfig {
                        nodes,
                        faulty,
                        algorithm,
                        adversary,
                        seed,
                        ..BftConfig::default()
                    });
                    assert!(
                        lab.bound_holds(),
                        "{algorithm:?} n={nodes} f={faulty} {adversary:?} seed {seed}\n{}",
                        lab.report()
                    );
                }
            }
        }
    }
}

#[test]
fn a_two_faced_node_breaks_it_at_n_equal_3f() {
    for algorithm in BftAlgorithm::ALL {
        for seed in 1..=3 {
            let lab = run(BftConfig {
                nodes: 3,
                faulty: 1,
                algorithm,
                adversary: Adversary::TwoFaced,
                seed,
                ..BftConfig::default()
            });
            assert!(
                !lab.bound_holds(),
                "{algorithm:?} seed {seed}\n{}",
                lab.report()
            );
            // The skew grows with the drift, as if nobody synchronised: 2ρ·t.
            let last = lab.rounds().last().unwrap();
            assert!(
                last.skew_before_ms > 0.9 * 2.0 * 100e-6 * last.at_s * 1000.0,
                "{algorithm:?}"
            );
        }
    }
    // Without a liar the same three clocks keep the bound.
    let honest = run(BftConfig {
        nodes: 3,
        faulty: 1,
        adversary: Adversary::None,
        ..BftConfig::default()
    });
    assert!(honest.bound_holds(), "{}", honest.report());
}

#[test]
fn the_skew_chart_has_both_lines_and_the_bound() {
    let lab = run(BftConfig {
        duration_s: 100.0,
        ..BftConfig::default()
    });
    let c = lab.skew_chart();
    assert_eq!(c.series.len(), 3);
    assert_eq!(c.series[0].points.len(), lab.rounds().len());
    assert_eq!(c.series[2].points[0].1, lab.config().bound_ms());
}

#[test]
fn without_synchronisation_the_skew_would_pass_the_bound() {
    // The run is long enough for the drift alone to break the bound: the holds above mean
    // something.
    let c = BftConfig::default();
    assert!(2.0 * c.drift_ppm * 1e-6 * c.duration_s * 1000.0 > 10.0 * c.bound_ms());
}

#[test]
fn the_seed_command_holds_and_links_rebuild_it() {
    let lab = run(BftConfig::default());
    let r = lab.report();
    assert!(r.starts_with("BFT clock sync: 4 nodes (N4 Byzantine, two-faced); Welch–Lynch fault-tolerant midpoint"), "{r}");
    assert!(r.contains("HOLDS (n = 4 ≥ 3f + 1 = 4)"), "{r}");
    let mut x = SPEC
        .build(&Params::parse("nodes=3&faulty=1&seed=2"))
        .unwrap();
    x.run_until(SimTime::from_secs(600));
    assert_eq!(x.claims()[0].verdict, Verdict::Fails);
    assert_eq!(x.params().to_query(), "seed=2&nodes=3");
    let mut y = SPEC.build(&x.params()).unwrap();
    y.run_until(SimTime::from_secs(600));
    assert_eq!(x.tables(), y.tables());
    assert!(crate::trace::validate(x.trace()).is_empty());
    let e = SPEC
        .build(&Params::parse("nodes=3&faulty=2"))
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "faulty: 2 faulty of 3 nodes leaves fewer than 2 correct ones"
    );
}
