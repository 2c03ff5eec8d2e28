//! The fault-tolerant average: drop the `f` highest and `f` lowest clock values, average the
//! rest.
//!
//! L. Lamport and P. M. Melliar-Smith, "Synchronizing clocks in the presence of faults",
//! *JACM* 32(1), 1985; J. Lundelius Welch and N. Lynch, "A new fault-tolerant algorithm for
//! clock synchronization", *Information and Computation* 77(1), 1988.
//!
//! Guarantee: with **n ≥ 3f + 1** clocks of which at most `f` are Byzantine (they may tell
//! different peers different values), every value that survives the trimming lies within the
//! range of the correct values, and the results computed by two correct nodes differ by at
//! most a fraction of that range, so each round shrinks the correct nodes' skew. With
//! n < 3f + 1 a two-faced liar can keep correct nodes apart forever: the lab shows the skew
//! growing with the drift as if there were no synchronization at all.

use serde::{Deserialize, Serialize};

/// Whether the number of clocks is enough for the number of faults tolerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resilience {
    /// n ≥ 3f + 1: the guarantee holds.
    Byzantine,
    /// n < 3f + 1: the average is still computed, but liars can defeat it.
    Insufficient {
        /// How many clocks the guarantee needs (3f + 1).
        needed: usize,
    },
}

impl Resilience {
    /// The resilience of `n` clocks against `f` Byzantine ones.
    pub fn of(n: usize, f: usize) -> Self {
        if n > 3 * f {
            Resilience::Byzantine
        } else {
            Resilience::Insufficient { needed: 3 * f + 1 }
        }
    }
}

/// The result of one fault-tolerant average.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FtAverage {
    /// The mean of the surviving values.
    pub value: f64,
    /// The smallest surviving value.
    pub lowest_kept: f64,
    /// The largest surviving value.
    pub highest_kept: f64,
    /// Whether n is large enough for f.
    pub resilience: Resilience,
}

/// Why no average could be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FtAverageError {
    /// Dropping `f` from each end leaves nothing.
    #[error("{n} values cannot tolerate {f} faults: at least {} are needed", 2 * f + 1)]
    TooFewValues {
        /// Values given.
        n: usize,
        /// Faults to tolerate.
        f: usize,
    },
    /// A value is NaN.
    #[error("value {0} is not a number")]
    NotANumber(usize),
}

/// Drops the `f` highest and `f` lowest of `values` and averages the rest.
pub fn fault_tolerant_average(values: &[f64], f: usize) -> Result<FtAverage, FtAverageError> {
    let n = values.len();
    if n < 2 * f + 1 {
        return Err(FtAverageError::TooFewValues { n, f });
    }
    if let Some(i) = values.iter().position(|v| v.is_nan()) {
        return Err(FtAverageError::NotANumber(i));
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let kept = &sorted[f..n - f];
    Ok(FtAverage {
        value: kept.iter().sum::<f64>() / kept.len() as f64,
        lowest_kept: kept[0],
        highest_kept: kept[kept.len() - 1],
        resilience: Resilience::of(n, f),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn trims_and_averages() {
        let r = fault_tolerant_average(&[1.0, 2.0, 3.0, 1000.0], 1).unwrap();
        assert_eq!(r.value, 2.5);
        assert_eq!(r.resilience, Resilience::Byzantine);
        let r = fault_tolerant_average(&[1.0, 2.0, 1000.0], 1).unwrap();
        assert_eq!(r.value, 2.0);
        assert_eq!(r.resilience, Resilience::Insufficient { needed: 4 });
        assert_eq!(
            fault_tolerant_average(&[1.0, 2.0], 1),
            Err(FtAverageError::TooFewValues { n: 2, f: 1 })
        );
        assert_eq!(
            fault_tolerant_average(&[1.0, f64::NAN, 2.0], 0),
            Err(FtAverageError::NotANumber(1))
        );
    }

    proptest! {
        /// Whatever f liars say, the result lies within the range of the correct values.
        #[test]
        fn the_result_stays_within_the_correct_range(
            correct in prop::collection::vec(-1.0f64..1.0, 1..10),
            lies in prop::collection::vec(-1e6f64..1e6, 0..4),
        ) {
            let f = lies.len();
            prop_assume!(correct.len() > f);
            let mut all = correct.clone();
            all.extend(&lies);
            let r = fault_tolerant_average(&all, f).unwrap();
            let lo = correct.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = correct.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(lo - 1e-9 <= r.value && r.value <= hi + 1e-9);
        }
    }
}
