//! The drift lab on the lab frame: a [`DriftRun`] is a [`DriftLab`] built from a link's
//! parameters, with the textbook claims checked against its own numbers, its charts and the
//! tables it offers for download.
//!
//! The claims and the bounds they check (derived in the tests of this module's parent):
//! - free-running clocks: skew(t) = max − min of `ρ_i·t + jumps_i` (exact, no wander);
//! - Berkeley: skew ≤ 2e + Δρ·P after the first rounds, where `e` is the largest reading error
//!   (half a link's delay spread) and `Δρ·P` the drift between rounds;
//! - Cristian: every estimate is within RTT/2 of the true offset (Cristian 1989);
//! - NTP: Marzullo flags liars as falsetickers and keeps honest peers (Marzullo 1984);
//! - fault-tolerant averaging: with n ≥ 3f+1 the honest skew stays under 2(2e + Δρ·P)
//!   (Lamport & Melliar-Smith 1985); below that a two-faced liar can keep nodes apart;
//! - slewing never moves a clock backwards; HLC never goes backwards (Kulkarni et al. 2014);
//!   TrueTime's interval contains true time while its assumptions hold (Corbett et al. 2012).

use super::params::{PageSettings, PARAMS};
use super::records::LabEventKind;
use super::{node_name, DriftLab, SyncAlgorithm, TT_BASE_MS, TT_DRIFT_BOUND};
use crate::clocks::physical_clock::AdjustPolicy;
use crate::labs::chart::{LineChart, Series};
use crate::labs::{Cell, Claim, Lab, LabSpec, ParamError, Params, Table, Verdict};
use crate::sim::SimTime;
use crate::sync::marzullo::Chimer;
use crate::trace::Trace;
use crate::NodeId;

/// Snapshots drawn in the charts (the last ones).
pub const WINDOW: usize = 240;

/// The lab for the frame.
pub const SPEC: LabSpec = LabSpec {
    slug: "drift",
    params: PARAMS,
    build: build_boxed,
};

fn build_boxed(p: &Params) -> Result<Box<dyn Lab>, ParamError> {
    Ok(Box::new(DriftRun::from_params(p)?))
}

/// A drift lab built from a link.
#[derive(Debug, Clone)]
pub struct DriftRun {
    /// The running lab.
    pub lab: DriftLab,
    settings: PageSettings,
}

fn ms(v: f64) -> String {
    format!("{:.3} ms", v * 1e3)
}

impl DriftRun {
    /// Builds the run a link describes (its history bounded for long interactive runs).
    pub fn from_params(p: &Params) -> Result<DriftRun, ParamError> {
        let settings = PageSettings::from_params(p)?;
        let mut lab = settings.build()?;
        lab.set_history_limit(WINDOW * 2);
        Ok(DriftRun { lab, settings })
    }

    fn honest(&self) -> Vec<usize> {
        let liars = &self.lab.config().liars;
        (0..self.lab.len())
            .filter(|&i| !liars.contains(&(i as NodeId)))
            .collect()
    }

    /// Δρ: the largest minus the smallest honest drift, as a rate.
    fn drift_spread(&self) -> f64 {
        let c = self.lab.config();
        let (lo, hi) = self
            .honest()
            .iter()
            .map(|&i| c.clocks[i].drift_ppm)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), d| {
                (lo.min(d), hi.max(d))
            });
        if hi >= lo {
            (hi - lo) * 1e-6
        } else {
            0.0
        }
    }

    /// The largest reading error of one exchange, seconds: half the delay spread of the
    /// slowest node's links (uniform over ½–1½ of its latency).
    fn reading_error(&self) -> f64 {
        self.settings
            .latencies_ms
            .iter()
            .skip(1)
            .fold(0.0f64, |m, &v| m.max(v))
            / 1e3
            / 2.0
    }

    /// The largest skew over the snapshots after `from`, if there are any.
    fn max_skew_after(&self, from: SimTime) -> Option<f64> {
        self.lab
            .snapshots()
            .iter()
            .filter(|s| s.at >= from)
            .map(|s| s.skew)
            .reduce(f64::max)
    }

    fn settle(&self, rounds: u32) -> SimTime {
        SimTime::ZERO + self.lab.config().interval * rounds
    }

    fn sync_claim(&self) -> Option<Claim> {
        let c = self.lab.config();
        let p = c.interval.as_secs_f64();
        let e = self.reading_error();
        let dr = self.drift_spread();
        let last = self.lab.snapshots().last();
        match c.sync {
            SyncAlgorithm::None => {
                let t = last?.at;
                let secs = t.as_secs_f64();
                let predicted: Vec<f64> = self
                    .honest()
                    .iter()
                    .map(|&i| {
                        let jumps: f64 = c
                            .jumps
                            .iter()
                            .filter(|j| j.node as usize == i && j.at <= t)
                            .map(|j| j.delta)
                            .sum();
                        c.clocks[i].drift_ppm * 1e-6 * secs + jumps
                    })
                    .collect();
                let (lo, hi) = predicted
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &o| {
                        (lo.min(o), hi.max(o))
                    });
                let predicted = if hi >= lo { hi - lo } else { 0.0 };
                let skew = last?.skew;
                Some(Claim::new(
                    "Free-running clocks drift apart linearly: the skew grows by the drift \
                     difference Δρ every second (plus any jumps).",
                    format!(
                        "at T = {secs:.1} s the skew is {}; Δρ·T (+ jumps) predicts {} (Δρ = {:.0} ppm)",
                        ms(skew),
                        ms(predicted),
                        dr * 1e6
                    ),
                    Verdict::of((skew - predicted).abs() <= 1e-6 + 1e-6 * predicted),
                ))
            }
            SyncAlgorithm::Berkeley => {
                let bound = 2.0 * e + dr * p + 1e-5;
                let from = self.settle(2);
                let worst = self.max_skew_after(from).filter(|_| self.lab.now() > from);
                let claim = "Berkeley (Gusella & Zatti 1989) keeps the skew under 2e + Δρ·P: \
                             each report is off by at most e (half a link's delay spread), and \
                             clocks drift apart by Δρ·P between rounds.";
                Some(match worst {
                    None => Claim::new(
                        claim,
                        format!("waiting for two rounds (T > {:.0} s)", from.as_secs_f64()),
                        Verdict::Pending,
                    ),
                    Some(w) => Claim::new(
                        claim,
                        format!(
                            "largest skew since T = {:.0} s: {}; bound 2·{} + {:.0} ppm × {p:.0} s = {}",
                            from.as_secs_f64(),
                            ms(w),
                            ms(e),
                            dr * 1e6,
                            ms(bound)
                        ),
                        Verdict::of(w <= bound),
                    ),
                })
            }
            SyncAlgorithm::Cristian => {
                let (mut n, mut bad, mut worst) = (0usize, 0usize, 0.0f64);
                for ev in self.lab.events() {
                    if let LabEventKind::Cristian {
                        sample,
                        true_offset,
                        ..
                    } = &ev.kind
                    {
                        n += 1;
                        let err = (sample.offset() - true_offset).abs();
                        worst = worst.max(err / (sample.rtt() / 2.0).max(1e-12));
                        if err > sample.rtt() / 2.0 + 1e-12 {
                            bad += 1;
                        }
                    }
                }
                let claim = "Cristian's estimate (1989) is within RTT/2 of the true offset: the \
                             server read its clock somewhere inside the round trip.";
                Some(if n == 0 {
                    Claim::new(claim, "no exchange has completed yet", Verdict::Pending)
                } else {
                    Claim::new(
                        claim,
                        format!(
                            "{n} exchanges: {bad} outside RTT/2; the worst error is {:.0} % of its RTT/2",
                            worst * 100.0
                        ),
                        Verdict::of(bad == 0),
                    )
                })
            }
            SyncAlgorithm::Ntp => {
                let stats = self.lab.node_stats();
                let judged = stats.iter().filter(|s| s.verdict.is_some()).count();
                let claim = if c.liars.is_empty() {
                    "Marzullo's algorithm (1984) keeps every honest peer: their intervals all \
                     contain the true offset, so they intersect."
                } else {
                    "Marzullo's algorithm (1984) flags a lying peer as a falseticker: its interval \
                     misses the majority's intersection."
                };
                if judged == 0 {
                    return Some(Claim::new(claim, "no selection yet", Verdict::Pending));
                }
                let liars_flagged = c
                    .liars
                    .iter()
                    .filter(|&&l| stats[l as usize].verdict == Some(Chimer::Falseticker))
                    .count();
                let honest_kept = self
                    .honest()
                    .iter()
                    .filter(|&&i| stats[i].verdict != Some(Chimer::Falseticker))
                    .count();
                Some(Claim::new(
                    claim,
                    format!(
                        "{liars_flagged} of {} liars flagged falsetickers; {honest_kept} of {} honest nodes kept",
                        c.liars.len(),
                        self.honest().len()
                    ),
                    Verdict::of(liars_flagged == c.liars.len() && honest_kept == self.honest().len()),
                ))
            }
            SyncAlgorithm::FtAverage => {
                let n = self.lab.len();
                let f = c.faults_tolerated;
                let bound = 2.0 * (2.0 * e + dr * p) + 1e-5;
                let from = self.settle(5);
                let worst = self.max_skew_after(from).filter(|_| self.lab.now() > from);
                let resilient = n > 3 * f;
                let claim = if resilient {
                    format!(
                        "Fault-tolerant averaging (Lamport & Melliar-Smith 1985) with n = {n} ≥ 3f+1 = {}: \
                         the honest clocks stay within 2(2e + Δρ·P), whatever the f liars say.",
                        3 * f + 1
                    )
                } else {
                    format!(
                        "With n = {n} < 3f+1 = {} no averaging can be Byzantine tolerant: a two-faced \
                         liar can hold the honest clocks apart (Lamport & Melliar-Smith 1985).",
                        3 * f + 1
                    )
                };
                Some(match worst {
                    None => Claim::new(
                        claim,
                        format!("waiting for five rounds (T > {:.0} s)", from.as_secs_f64()),
                        Verdict::Pending,
                    ),
                    Some(w) if resilient => Claim::new(
                        claim,
                        format!("largest honest skew since T = {:.0} s: {}; bound {}", from.as_secs_f64(), ms(w), ms(bound)),
                        Verdict::of(w <= bound),
                    ),
                    Some(w) if c.liars.is_empty() => Claim::new(
                        claim,
                        format!("no liar in this run: largest skew {}", ms(w)),
                        Verdict::Pending,
                    ),
                    Some(w) => Claim::new(
                        claim,
                        format!("largest honest skew since T = {:.0} s: {} (the n ≥ 3f+1 bound would be {})", from.as_secs_f64(), ms(w), ms(bound)),
                        Verdict::of(w > bound),
                    ),
                })
            }
        }
    }
}

impl Lab for DriftRun {
    fn params(&self) -> Params {
        self.settings.params()
    }

    fn settings(&self) -> Params {
        self.settings.settings()
    }

    fn nodes(&self) -> Vec<String> {
        (0..self.lab.len() as NodeId).map(node_name).collect()
    }

    fn now(&self) -> SimTime {
        self.lab.now()
    }

    fn end(&self) -> Option<SimTime> {
        None
    }

    fn events(&self) -> u64 {
        self.lab.sim_stats().events_processed
    }

    fn step(&mut self) -> Option<SimTime> {
        self.lab.step()
    }

    fn run_until(&mut self, until: SimTime) {
        self.lab.run_until(until)
    }

    fn last_event(&self) -> Option<String> {
        self.lab.last_event().map(str::to_owned)
    }

    fn trace(&self) -> &Trace {
        self.lab.trace()
    }

    fn claims(&self) -> Vec<Claim> {
        let c = self.lab.config();
        let mut out: Vec<Claim> = self.sync_claim().into_iter().collect();
        let stats = self.lab.node_stats();
        if c.adjust != AdjustPolicy::Step {
            let corrections: u64 = stats.iter().map(|s| s.syncs).sum();
            let back_jumps = c
                .jumps
                .iter()
                .filter(|j| j.delta < 0.0 && j.at <= self.lab.now())
                .count() as u64;
            let back: u64 = stats.iter().map(|s| s.backward_steps).sum::<u64>();
            let by_corrections = back.saturating_sub(back_jumps);
            out.push(Claim::new(
                "Slewing never moves a clock backwards: a correction changes the clock's rate \
                 (by at most 500 ppm), not its value.",
                format!(
                    "{corrections} corrections slewed; {by_corrections} moved a clock backwards ({back_jumps} injected backward jumps not counted)"
                ),
                if corrections == 0 {
                    Verdict::Pending
                } else {
                    Verdict::of(by_corrections == 0)
                },
            ));
        }
        // HLC: each sample stamps a local event, so every node's HLC strictly increases.
        let snaps = self.lab.snapshots();
        let mut backwards = 0usize;
        for w in snaps.windows(2) {
            backwards += w[0]
                .hlc
                .iter()
                .zip(&w[1].hlc)
                .filter(|(a, b)| b <= a)
                .count();
        }
        let stepped_back: u64 = stats.iter().map(|s| s.backward_steps).sum();
        out.push(Claim::new(
            "A hybrid logical clock never goes backwards, even when the physical clock under \
             it does (Kulkarni et al. 2014).",
            format!(
                "{} samples × {} nodes: the HLC went backwards {backwards} times; physical clocks stepped back {stepped_back} times",
                snaps.len(),
                self.lab.len()
            ),
            if snaps.len() < 2 {
                Verdict::Pending
            } else {
                Verdict::of(backwards == 0)
            },
        ));
        let max_drift = c
            .clocks
            .iter()
            .map(|s| s.drift_ppm.abs())
            .fold(0.0, f64::max);
        let tt_assumed = max_drift <= TT_DRIFT_BOUND * 1e6
            && c.jumps.is_empty()
            && c.liars.is_empty()
            && self.reading_error() * 2.0 * 1e3 <= TT_BASE_MS
            && c.sync != SyncAlgorithm::None;
        if tt_assumed {
            let misses: u64 = stats.iter().map(|s| s.truetime_misses).sum();
            out.push(Claim::new(
                format!(
                    "TrueTime's interval [earliest, latest] contains true time while its \
                     assumptions hold: drift within {:.0} ppm and a sync error within ε₀ = {TT_BASE_MS} ms \
                     (Corbett et al. 2012).",
                    TT_DRIFT_BOUND * 1e6
                ),
                format!("{} samples: true time fell outside the interval {misses} times", snaps.len()),
                Verdict::of(misses == 0),
            ));
        }
        out
    }

    fn tables(&self) -> Vec<Table> {
        let names = self.nodes();
        let mut offsets = vec!["time_s".to_owned()];
        offsets.extend(names.iter().map(|n| format!("offset_{n}_ms")));
        offsets.push("skew_ms".to_owned());
        let mut series = Table {
            name: "samples".into(),
            title: "Every clock's offset from true time at each sample".into(),
            columns: offsets,
            rows: Vec::new(),
        };
        for s in self.lab.snapshots() {
            let mut row = vec![Cell::Num(s.at.as_secs_f64())];
            row.extend(s.offsets.iter().map(|o| Cell::Num(o * 1e3)));
            row.push(Cell::Num(s.skew * 1e3));
            series.rows.push(row);
        }
        let nodes = self.nodes_table();
        let mut events = Table::new("events", "Sync events, explained", &["time_s", "event"]);
        for e in self.lab.events() {
            events.push(vec![
                e.at.as_secs_f64().into(),
                e.describe().join(" ").into(),
            ]);
        }
        vec![series, nodes, events]
    }
}

impl DriftRun {
    /// The chrony-like status of every node.
    pub fn nodes_table(&self) -> Table {
        let names = self.nodes();
        let mut nodes = Table::new(
            "nodes",
            "Per node: the chrony-like status",
            &[
                "node",
                "offset_ms",
                "rms_correction_ms",
                "frequency_estimate_ppm",
                "frequency_true_ppm",
                "rtt_ms",
                "dispersion_ms",
                "status",
                "syncs",
                "backward_steps",
                "truetime_epsilon_ms",
                "hlc",
            ],
        );
        for (i, s) in self.lab.node_stats().iter().enumerate() {
            let opt = |v: Option<f64>, k: f64| v.map_or(Cell::Empty, |v| Cell::Num(v * k));
            nodes.push(vec![
                names[i].as_str().into(),
                (s.offset * 1e3).into(),
                (s.rms_correction * 1e3).into(),
                opt(s.frequency_ppm, 1.0),
                s.true_frequency_ppm.into(),
                opt(s.rtt, 1e3),
                opt(s.dispersion, 1e3),
                s.status().unwrap_or("").into(),
                s.syncs.into(),
                s.backward_steps.into(),
                s.epsilon_ms.into(),
                s.hlc.map_or(String::new(), |h| h.to_string()).into(),
            ]);
        }
        nodes
    }

    /// Every node's offset from true time over the last [`WINDOW`] samples, ms (liars dashed;
    /// the range fits the honest nodes).
    pub fn offset_chart(&self) -> LineChart {
        let snaps = self.lab.snapshots();
        let shown = &snaps[snaps.len().saturating_sub(WINDOW)..];
        let liars = &self.lab.config().liars;
        let honest = self.honest();
        let scale = shown
            .iter()
            .flat_map(|s| honest.iter().map(|&i| s.offsets[i].abs() * 1e3))
            .fold(1.0f64, f64::max);
        let mut c = LineChart::new("offsets", "Offset from true time", "time_s", "offset (ms)");
        c.y_range = Some((-scale * 1.1, scale * 1.1));
        c.series = self
            .nodes()
            .into_iter()
            .enumerate()
            .map(|(i, name)| Series {
                name: format!(
                    "{name}{}",
                    if liars.contains(&(i as NodeId)) {
                        " (liar)"
                    } else {
                        ""
                    }
                ),
                node: Some(i),
                points: shown
                    .iter()
                    .map(|s| (s.at.as_secs_f64(), s.offsets[i] * 1e3))
                    .collect(),
                dashed: liars.contains(&(i as NodeId)),
            })
            .collect();
        c.size = (720.0, 260.0);
        c
    }

    /// The honest skew over the last [`WINDOW`] samples, ms.
    pub fn skew_chart(&self) -> LineChart {
        let snaps = self.lab.snapshots();
        let shown = &snaps[snaps.len().saturating_sub(WINDOW)..];
        let mut c = LineChart::new(
            "skew",
            "Skew (largest − smallest honest offset)",
            "time_s",
            "skew (ms)",
        );
        c.series = vec![Series {
            name: "skew".into(),
            node: None,
            points: shown
                .iter()
                .map(|s| (s.at.as_secs_f64(), s.skew * 1e3))
                .collect(),
            dashed: false,
        }];
        c.size = (720.0, 160.0);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_to(query: &str, secs: u64) -> Box<dyn Lab> {
        let mut lab = SPEC.build(&Params::parse(query)).unwrap();
        lab.run_until(SimTime::from_secs(secs));
        lab
    }

    #[test]
    fn a_link_rebuilds_the_same_run_and_played_in_pieces_equals_at_once() {
        let q = "nodes=5&sync=ntp&liar=0,0,0,0,1&drift=-40,20&jumps=B:+1@30&seed=9";
        let a = run_to(q, 600);
        let canonical = a.params().to_query();
        assert_eq!(
            canonical,
            "seed=9&nodes=5&sync=ntp&jumps=B:+1@30&drift=-40,20,0,25,50&liar=0,0,0,0,1"
        );
        let mut b = SPEC.build(&Params::parse(&canonical)).unwrap();
        for s in (7..=600).step_by(7) {
            b.run_until(SimTime::from_secs(s));
        }
        b.run_until(SimTime::from_secs(600));
        assert_eq!(a.claims(), b.claims());
        assert_eq!(a.tables(), b.tables());
    }

    #[test]
    fn the_default_run_confirms_every_claim() {
        let lab = run_to("", 600);
        let claims = lab.claims();
        assert!(claims.len() >= 3, "{claims:?}");
        for c in &claims {
            assert_eq!(c.verdict, Verdict::Holds, "{c:?}");
        }
    }

    #[test]
    fn each_algorithm_states_its_claim_and_this_run_decides_it() {
        for (q, first) in [
            ("sync=none", "Free-running"),
            ("sync=cristian", "Cristian"),
            ("sync=ntp&nodes=5&liar=0,0,0,0,1", "Marzullo"),
            ("sync=ft-average&adjust=step&liar=0,0,0,1", "Fault-tolerant"),
            (
                "sync=ft-average&adjust=step&nodes=3&liar=0,0,1&drift=-25,25,0&latency=10,10,10",
                "With n = 3",
            ),
        ] {
            let lab = run_to(q, 3600);
            let c = &lab.claims()[0];
            assert!(c.claim.starts_with(first), "{q}: {c:?}");
            assert_eq!(c.verdict, Verdict::Holds, "{q}: {c:?}");
        }
        // Early on, the Berkeley bound is not yet decided.
        let early = run_to("", 10);
        assert_eq!(early.claims()[0].verdict, Verdict::Pending);
    }

    #[test]
    fn a_jump_button_becomes_part_of_the_link() {
        let p = super::super::params::with_jump(
            &Params::parse("seed=2"),
            1,
            -1.0,
            SimTime::from_millis(12_345),
        );
        assert_eq!(p.get("jumps"), Some("B:-1@12.345"));
        let lab = SPEC.build(&p).unwrap();
        assert_eq!(lab.params().get("jumps"), Some("B:-1@12.345"));
        let e = SPEC.build(&Params::parse("jumps=Q:+1@3")).err().unwrap();
        assert!(e.to_string().starts_with("jumps: "), "{e}");
    }
}
