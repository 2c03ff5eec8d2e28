//! Byzantine fault-tolerant clock synchronisation: the convergence functions of
//! L. Lamport and P. M. Melliar-Smith, "Synchronizing Clocks in the Presence of Faults"
//! (JACM 32(1), 1985: *interactive convergence*, CNV) and J. Lundelius Welch and N. Lynch,
//! "A New Fault-Tolerant Algorithm for Clock Synchronization" (Information and Computation
//! 77(1), 1988: the *fault-tolerant midpoint*), beside the fault-tolerant average
//! ([`super::ft_average`]) and Marzullo's intersection ([`super::marzullo`]) for comparison.
//!
//! In a round every correct node reads every other node's clock — a reading is the other
//! clock minus its own, with an error of at most `e` — and applies the correction its
//! convergence function computes from the `n` readings (its own is 0). Up to `f` nodes are
//! Byzantine: they may report anything, and a *two-faced* one reports different values to
//! different peers.
//!
//! **Guarantee.** With `n ≥ 3f + 1`, every value that survives the trimming (or, for CNV, every
//! reading within the threshold) lies within the correct nodes' range, so two correct nodes'
//! corrections differ by at most half the previous skew plus the reading error: with rounds
//! every `R` and drift at most `ρ`, the correct clocks stay within the precision bound
//! [`precision_bound`] `= 4e + 6ρR` (Welch–Lynch's `β ≥ 4ε + 4ρP` right after a round, plus the
//! `2ρR` the clocks drift apart before the next) for the trimmed functions, and within
//! [`cnv_threshold`] less `e` for interactive convergence. With `n = 3f` a two-faced node can agree with
//! each correct node on *its own* clock, so no correct node ever moves and the skew grows with
//! the drift, past any bound ([`two_faced_reading`] is that strategy).

use serde::{Deserialize, Serialize};

use super::ft_average::fault_tolerant_average;
use super::marzullo::{select, Interval};

/// A convergence function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BftAlgorithm {
    /// Lamport–Melliar-Smith interactive convergence: readings beyond the threshold count as
    /// 0, then the mean of all `n`.
    InteractiveConvergence,
    /// Welch–Lynch: drop the `f` lowest and `f` highest, take the midpoint of the rest.
    WelchLynch,
    /// Drop the `f` lowest and `f` highest, take the mean of the rest.
    FtAverage,
    /// Marzullo's intersection of the readings' error intervals; no move without a majority.
    Marzullo,
}

impl BftAlgorithm {
    /// Every algorithm, in the order the lab lists them.
    pub const ALL: [BftAlgorithm; 4] = [
        BftAlgorithm::InteractiveConvergence,
        BftAlgorithm::WelchLynch,
        BftAlgorithm::FtAverage,
        BftAlgorithm::Marzullo,
    ];

    /// Its key: `interactive-convergence`, `welch-lynch`, `ft-average`, `marzullo`.
    pub fn key(self) -> &'static str {
        match self {
            BftAlgorithm::InteractiveConvergence => "interactive-convergence",
            BftAlgorithm::WelchLynch => "welch-lynch",
            BftAlgorithm::FtAverage => "ft-average",
            BftAlgorithm::Marzullo => "marzullo",
        }
    }

    /// Its name with its source.
    pub fn name(self) -> &'static str {
        match self {
            BftAlgorithm::InteractiveConvergence => "Lamport–Melliar-Smith interactive convergence",
            BftAlgorithm::WelchLynch => "Welch–Lynch fault-tolerant midpoint",
            BftAlgorithm::FtAverage => "fault-tolerant average",
            BftAlgorithm::Marzullo => "Marzullo's intersection",
        }
    }

    /// The algorithm named by `key`.
    pub fn from_key(key: &str) -> Option<BftAlgorithm> {
        BftAlgorithm::ALL.into_iter().find(|a| a.key() == key)
    }
}

/// Why a correction could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BftError {
    /// Trimming `f` from each end leaves nothing.
    #[error("{n} readings cannot tolerate {f} faults: at least {} are needed", 2 * f + 1)]
    TooFewReadings {
        /// Readings given.
        n: usize,
        /// Faults tolerated.
        f: usize,
    },
    /// A reading is not a finite number.
    #[error("reading {0} is not a finite number")]
    NotFinite(usize),
}

/// The parameters every convergence function may use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Convergence {
    /// Faults tolerated.
    pub f: usize,
    /// Interactive convergence's threshold δ: a reading farther than this counts as 0.
    pub threshold: f64,
    /// A reading's error bound `e` (Marzullo's interval radius).
    pub reading_error: f64,
}

/// Lamport–Melliar-Smith's CNV: the mean of the readings, each replaced by 0 when farther
/// than `threshold`.
pub fn interactive_convergence(readings: &[f64], threshold: f64) -> Result<f64, BftError> {
    check(readings)?;
    if readings.is_empty() {
        return Err(BftError::TooFewReadings { n: 0, f: 0 });
    }
    let sum: f64 = readings
        .iter()
        .map(|&r| if r.abs() <= threshold { r } else { 0.0 })
        .sum();
    Ok(sum / readings.len() as f64)
}

/// Welch–Lynch's fault-tolerant midpoint: drop the `f` lowest and `f` highest readings and
/// take the midpoint of the lowest and highest left.
pub fn fault_tolerant_midpoint(readings: &[f64], f: usize) -> Result<f64, BftError> {
    check(readings)?;
    let n = readings.len();
    if n < 2 * f + 1 {
        return Err(BftError::TooFewReadings { n, f });
    }
    let mut sorted = readings.to_vec();
    sorted.sort_by(f64::total_cmp);
    Ok((sorted[f] + sorted[n - 1 - f]) / 2.0)
}

fn check(readings: &[f64]) -> Result<(), BftError> {
    match readings.iter().position(|r| !r.is_finite()) {
        Some(i) => Err(BftError::NotFinite(i)),
        None => Ok(()),
    }
}

/// The correction `algorithm` computes from one node's readings (its own included, as 0).
pub fn correction(
    algorithm: BftAlgorithm,
    readings: &[f64],
    c: Convergence,
) -> Result<f64, BftError> {
    match algorithm {
        BftAlgorithm::InteractiveConvergence => interactive_convergence(readings, c.threshold),
        BftAlgorithm::WelchLynch => fault_tolerant_midpoint(readings, c.f),
        BftAlgorithm::FtAverage => {
            check(readings)?;
            fault_tolerant_average(readings, c.f)
                .map(|a| a.value)
                .map_err(|_| BftError::TooFewReadings {
                    n: readings.len(),
                    f: c.f,
                })
        }
        BftAlgorithm::Marzullo => {
            check(readings)?;
            let intervals: Vec<Interval> = readings
                .iter()
                .map(|&r| Interval::around(r, c.reading_error))
                .collect();
            // Without a majority Marzullo picks nothing, and the node keeps its clock.
            Ok(select(&intervals).map_or(0.0, |s| s.interval.midpoint()))
        }
    }
}

/// Welch–Lynch's precision for reading error `e`, drift bound `rho` and round period
/// `period` (same time unit as `e`): `4e + 6ρR`.
pub fn precision_bound(e: f64, rho: f64, period: f64) -> f64 {
    4.0 * e + 6.0 * rho * period
}

/// Interactive convergence's threshold δ for `n` nodes, `f` faults, reading error `e`, drift
/// bound `rho` and period `period`: `(3e(n − f) + 2nρR) / (n − 3f)`, infinite when `n ≤ 3f`.
///
/// Derivation (the shape of Lamport & Melliar-Smith's condition, constants for this model):
/// two correct nodes' means differ by at most `(f·S + 2e(n − f) + 2f·δ)/n` after a round that
/// began at skew `S` — their own clocks' share, the reading errors, and a two-faced liar's
/// `±δ`. With `2ρR` of drift per round, the skew settles at `2e + (2fδ + 2nρR)/(n − f)`; that
/// plus one reading error stays within δ (so no correct reading is ever zeroed) exactly when
/// δ is at least this. The run's precision is then `δ − e`.
pub fn cnv_threshold(n: usize, f: usize, e: f64, rho: f64, period: f64) -> f64 {
    if n <= 3 * f {
        return f64::INFINITY;
    }
    let (n, f) = (n as f64, f as f64);
    (3.0 * e * (n - f) + 2.0 * n * rho * period) / (n - 3.0 * f)
}

/// The two-faced strategy: what a Byzantine node reports to the correct node whose readings
/// of the *other correct* nodes are `others` — the negation of their sum, clipped to
/// `threshold`, so that the node's view is balanced around its own clock and it does not move
/// (the trimmed algorithms keep its own 0 in the middle; CNV's mean comes out 0).
pub fn two_faced_reading(others: &[f64], threshold: f64) -> f64 {
    let s: f64 = others.iter().sum();
    (-s).clamp(-threshold, threshold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_convergence_functions() {
        assert_eq!(
            interactive_convergence(&[0.0, 2.0, 4.0, 100.0], 10.0),
            Ok(1.5)
        );
        assert_eq!(fault_tolerant_midpoint(&[0.0, 2.0, 5.0, 100.0], 1), Ok(3.5));
        assert_eq!(
            fault_tolerant_midpoint(&[0.0, 2.0], 1),
            Err(BftError::TooFewReadings { n: 2, f: 1 })
        );
        assert_eq!(
            interactive_convergence(&[0.0, f64::NAN], 1.0),
            Err(BftError::NotFinite(1))
        );
        let c = Convergence {
            f: 1,
            threshold: 10.0,
            reading_error: 1.0,
        };
        assert_eq!(
            correction(BftAlgorithm::FtAverage, &[0.0, 2.0, 4.0, 100.0], c),
            Ok(3.0)
        );
        // Three agreeing intervals around 2 and one liar: Marzullo lands near 2.
        let m = correction(BftAlgorithm::Marzullo, &[1.5, 2.0, 2.5, 100.0], c).unwrap();
        assert!((m - 2.0).abs() <= 1.0, "{m}");
        for a in BftAlgorithm::ALL {
            assert_eq!(BftAlgorithm::from_key(a.key()), Some(a));
        }
    }

    #[test]
    fn at_n_3f_a_two_faced_node_keeps_both_correct_nodes_still() {
        // Two correct nodes x apart, one liar.
        let x = 7.0;
        let c = Convergence {
            f: 1,
            threshold: 20.0,
            reading_error: 1.0,
        };
        for a in BftAlgorithm::ALL {
            let to_a = [0.0, x, two_faced_reading(&[x], c.threshold)];
            let to_b = [0.0, -x, two_faced_reading(&[-x], c.threshold)];
            assert_eq!(correction(a, &to_a, c), Ok(0.0), "{a:?}");
            assert_eq!(correction(a, &to_b, c), Ok(0.0), "{a:?}");
        }
    }

    proptest! {
        /// With n ≥ 3f + 1, trimmed corrections of two correct nodes with exact readings land
        /// within the correct range, whatever the liars say to each.
        #[test]
        fn trimmed_corrections_stay_within_the_correct_range(
            correct in prop::collection::vec(-10.0f64..10.0, 3..8),
            lies_a in prop::collection::vec(-1e3f64..1e3, 1..3),
        ) {
            let f = lies_a.len();
            prop_assume!(correct.len() > 2 * f);
            let lo = correct.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = correct.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let own = correct[0];
            let mut readings: Vec<f64> = correct.iter().map(|c| c - own).collect();
            readings.extend(lies_a.iter().map(|l| l - own));
            for a in [BftAlgorithm::WelchLynch, BftAlgorithm::FtAverage] {
                let c = Convergence { f, threshold: 1e9, reading_error: 0.0 };
                let new = own + correction(a, &readings, c).unwrap();
                prop_assert!(lo - 1e-9 <= new && new <= hi + 1e-9, "{a:?}");
            }
        }
    }
}
