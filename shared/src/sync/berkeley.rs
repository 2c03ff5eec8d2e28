//! The Berkeley algorithm: a leader polls every node, compensates each report for half its
//! round trip, discards outliers, averages, and sends each node its own correction.
//!
//! R. Gusella and S. Zatti, "The accuracy of the clock synchronization achieved by TEMPO in
//! Berkeley UNIX 4.3BSD", *IEEE Trans. Software Eng.* 15(7), 1989. Unlike Cristian's, no
//! clock is an authority: the nodes agree on their (fault-tolerant) average.
//!
//! Guarantee: right after a round, every two non-outlier nodes agree to within the sum of
//! their two Cristian errors, i.e. at most `(max delay − min delay)` when one-way delays lie
//! in `[min, max]` (each estimate is off by at most half the spread); the leader's own
//! estimate is exact. Corrections are deltas, so the delay of the correction message does
//! not matter (beyond drift during it).

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// One node's answer to the leader's poll, in clock readings (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The node.
    pub node: NodeId,
    /// Leader clock when the poll left.
    pub t0: f64,
    /// The node's clock as it reported it.
    pub reported: f64,
    /// Leader clock when the report arrived.
    pub t1: f64,
}

/// Whether a report took part in the average.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Averaged.
    Kept,
    /// Further than the threshold from the median: left out of the average (but still
    /// corrected).
    Outlier,
}

/// The leader's view of one node in a round.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The node.
    pub node: NodeId,
    /// Round trip of its report, leader clock.
    pub rtt: f64,
    /// Its clock estimated at the leader's `t1`: `reported + RTT/2`.
    pub adjusted: f64,
    /// Its clock minus the leader's, at `t1`.
    pub offset: f64,
    /// Whether it was averaged.
    pub verdict: Verdict,
}

/// The outcome of a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    /// The leader.
    pub leader: NodeId,
    /// One estimate per report (the leader itself is not listed; its offset is 0).
    pub estimates: Vec<Estimate>,
    /// The average of the kept offsets and the leader's 0, relative to the leader's clock.
    pub average_offset: f64,
    /// The correction each node (leader included, first) must add to its clock.
    pub deltas: Vec<(NodeId, f64)>,
}

/// Runs the leader's computation for one round. Reports whose offset is more than
/// `outlier_threshold` seconds from the median offset are outliers.
pub fn round(leader: NodeId, reports: &[Report], outlier_threshold: f64) -> Round {
    let mut estimates: Vec<Estimate> = reports
        .iter()
        .map(|r| {
            let rtt = r.t1 - r.t0;
            let adjusted = r.reported + rtt / 2.0;
            Estimate {
                node: r.node,
                rtt,
                adjusted,
                offset: adjusted - r.t1,
                verdict: Verdict::Kept,
            }
        })
        .collect();
    let mut offsets: Vec<f64> = estimates.iter().map(|e| e.offset).chain([0.0]).collect();
    offsets.sort_by(f64::total_cmp);
    let median = offsets[offsets.len() / 2];
    let mut sum = 0.0;
    let mut kept = 0usize;
    for e in &mut estimates {
        if (e.offset - median).abs() > outlier_threshold {
            e.verdict = Verdict::Outlier;
        } else {
            sum += e.offset;
            kept += 1;
        }
    }
    // The leader always counts (its offset from itself is 0).
    let average_offset = sum / (kept + 1) as f64;
    let deltas = std::iter::once((leader, average_offset))
        .chain(
            estimates
                .iter()
                .map(|e| (e.node, average_offset - e.offset)),
        )
        .collect();
    Round {
        leader,
        estimates,
        average_offset,
        deltas,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_example() {
        // Leader B at 20.000; A reports 20.000 with an 8 ms RTT, C reports 20.006 with 12 ms.
        let reports = [
            Report {
                node: 0,
                t0: 19.992,
                reported: 20.000,
                t1: 20.000,
            },
            Report {
                node: 2,
                t0: 19.988,
                reported: 20.006,
                t1: 20.000,
            },
        ];
        let r = round(1, &reports, 1.0);
        assert!((r.estimates[0].adjusted - 20.004).abs() < 1e-9);
        assert!((r.estimates[1].adjusted - 20.012).abs() < 1e-9);
        // Offsets +4 ms, +12 ms, leader 0: average +16/3 ms.
        assert!((r.average_offset - 0.016 / 3.0).abs() < 1e-9);
        let sum_after: Vec<f64> = [0.0, 0.004, 0.012]
            .iter()
            .zip(&r.deltas)
            .map(|(o, (_, d))| o + d)
            .collect();
        assert!(sum_after
            .iter()
            .all(|v| (v - r.average_offset).abs() < 1e-9));
    }

    #[test]
    fn an_outlier_is_corrected_but_not_averaged() {
        let reports = [
            Report {
                node: 1,
                t0: 0.0,
                reported: 0.005,
                t1: 0.010,
            },
            Report {
                node: 2,
                t0: 0.0,
                reported: 60.005,
                t1: 0.010,
            },
            Report {
                node: 3,
                t0: 0.0,
                reported: 0.007,
                t1: 0.010,
            },
        ];
        let r = round(0, &reports, 0.5);
        assert_eq!(r.estimates[1].verdict, Verdict::Outlier);
        assert!(r.average_offset.abs() < 0.001);
        let d2 = r.deltas.iter().find(|(n, _)| *n == 2).unwrap().1;
        assert!((d2 + 60.0).abs() < 0.001);
    }
}
