//! Marzullo's algorithm: given one confidence interval per time source, find the smallest
//! interval consistent with the largest number of sources.
//!
//! K. Marzullo, *Maintaining the time in a distributed system*, PhD thesis, Stanford, 1984;
//! used (as the "intersection algorithm") by NTP, D. Mills, RFC 5905 §11.2.1. Sources whose
//! interval meets the winning intersection are **truechimers**; the others are
//! **falsetickers**.
//!
//! Guarantee: if the correct sources (intervals containing the true offset) outnumber the
//! faulty ones, the selected interval is covered by at least as many sources as cover the
//! truth, so at least one *correct* interval meets it: the selection lies within one correct
//! interval's width of the true offset. When the faulty intervals do not overlap each other
//! near the correct ones (the usual single falseticker), it contains the true offset. With no
//! majority the algorithm refuses ([`MarzulloError::NoMajority`]).

use serde::{Deserialize, Serialize};

/// A source's claim: the true offset lies in `[lo, hi]`, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

impl Interval {
    /// The interval `offset ± radius`.
    pub fn around(offset: f64, radius: f64) -> Self {
        Self {
            lo: offset - radius.abs(),
            hi: offset + radius.abs(),
        }
    }

    /// The midpoint.
    pub fn midpoint(&self) -> f64 {
        (self.lo + self.hi) / 2.0
    }

    /// Whether the two intervals share a point.
    pub fn meets(&self, other: &Interval) -> bool {
        self.lo <= other.hi && other.lo <= self.hi
    }
}

/// How one source was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chimer {
    /// Its interval meets the intersection of the majority.
    Truechimer,
    /// It disagrees with the majority.
    Falseticker,
}

/// The outcome of a selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The smallest interval covered by the most sources.
    pub interval: Interval,
    /// How many sources cover it.
    pub agreeing: usize,
    /// The verdict on each source, in input order.
    pub verdicts: Vec<Chimer>,
}

/// Why no interval could be selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MarzulloError {
    /// No sources at all.
    #[error("no time sources")]
    NoSources,
    /// An interval with a NaN end or `lo > hi`.
    #[error("source {0} has an invalid interval")]
    InvalidInterval(usize),
    /// The best intersection is covered by only `agreeing` of `sources`: not a majority.
    #[error("no majority: the best intersection is covered by {agreeing} of {sources} sources")]
    NoMajority {
        /// Sources covering the best intersection.
        agreeing: usize,
        /// All sources.
        sources: usize,
    },
}

/// Selects the interval agreed by the most sources and judges each source.
pub fn select(intervals: &[Interval]) -> Result<Selection, MarzulloError> {
    if intervals.is_empty() {
        return Err(MarzulloError::NoSources);
    }
    if let Some(i) = intervals
        .iter()
        .position(|iv| iv.lo.is_nan() || iv.hi.is_nan() || iv.lo > iv.hi)
    {
        return Err(MarzulloError::InvalidInterval(i));
    }
    // Edges: (offset, +1 for a start, -1 for an end). Starts sort before ends at equal
    // offsets so intervals that touch count as overlapping.
    let mut edges: Vec<(f64, i32)> = intervals
        .iter()
        .flat_map(|iv| [(iv.lo, 1), (iv.hi, -1)])
        .collect();
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
    let (mut count, mut best) = (0i32, 0i32);
    let mut interval = Interval {
        lo: edges[0].0,
        hi: edges[0].0,
    };
    for (i, &(offset, kind)) in edges.iter().enumerate() {
        count += kind;
        if count > best {
            best = count;
            // A start is never the last edge, so `i + 1` exists.
            interval = Interval {
                lo: offset,
                hi: edges[i + 1].0,
            };
        }
    }
    let agreeing = best as usize;
    if agreeing * 2 <= intervals.len() {
        return Err(MarzulloError::NoMajority {
            agreeing,
            sources: intervals.len(),
        });
    }
    let verdicts = intervals
        .iter()
        .map(|iv| {
            if iv.meets(&interval) {
                Chimer::Truechimer
            } else {
                Chimer::Falseticker
            }
        })
        .collect();
    Ok(Selection {
        interval,
        agreeing,
        verdicts,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn one_falseticker_among_four_is_rejected() {
        // True offset +10 ms; sources 0, 1, 3 are correct, source 2 claims +250 ms.
        let sources = [
            Interval {
                lo: 0.004,
                hi: 0.016,
            },
            Interval {
                lo: 0.008,
                hi: 0.020,
            },
            Interval {
                lo: 0.240,
                hi: 0.260,
            },
            Interval {
                lo: 0.002,
                hi: 0.012,
            },
        ];
        let s = select(&sources).unwrap();
        assert_eq!(s.agreeing, 3);
        assert_eq!(
            s.interval,
            Interval {
                lo: 0.008,
                hi: 0.012
            }
        );
        assert_eq!(
            s.verdicts,
            [
                Chimer::Truechimer,
                Chimer::Truechimer,
                Chimer::Falseticker,
                Chimer::Truechimer
            ]
        );
    }

    #[test]
    fn no_majority_and_bad_input_are_errors() {
        let split = [Interval::around(0.0, 0.001), Interval::around(1.0, 0.001)];
        assert_eq!(
            select(&split),
            Err(MarzulloError::NoMajority {
                agreeing: 1,
                sources: 2
            })
        );
        assert_eq!(select(&[]), Err(MarzulloError::NoSources));
        assert_eq!(
            select(&[Interval { lo: 1.0, hi: 0.0 }]),
            Err(MarzulloError::InvalidInterval(0))
        );
    }

    proptest! {
        /// With more correct sources than faulty ones, a correct interval meets the
        /// selection, so the selection is within a correct interval's width of the truth;
        /// when the falsetickers stay clear of the correct intervals, it contains
        /// the truth.
        #[test]
        fn a_correct_majority_wins(
            truth in -1.0f64..1.0,
            good in prop::collection::vec((0.0f64..0.05, 0.0f64..0.05), 3..8),
            bad in prop::collection::vec((-5.0f64..5.0, 0.0f64..0.05), 0..3),
        ) {
            prop_assume!(bad.len() < good.len());
            let good: Vec<Interval> =
                good.iter().map(|(l, h)| Interval { lo: truth - l, hi: truth + h }).collect();
            let mut ivs = good.clone();
            ivs.extend(bad.iter().map(|(o, r)| Interval::around(*o, *r)));
            let s = select(&ivs).unwrap();
            prop_assert!(good.iter().any(|g| g.meets(&s.interval)));
            prop_assert!(s.interval.lo <= truth + 0.1 && truth - 0.1 <= s.interval.hi);
            let bad_ivs = &ivs[good.len()..];
            if bad_ivs.iter().all(|b| !good.iter().any(|g| g.meets(b))) {
                prop_assert!(s.interval.lo <= truth && truth <= s.interval.hi);
            }
        }
    }
}
