//! The BFT lab on the lab frame: its parameters (`#/bft?nodes=3&faulty=1`) and its [`Lab`]
//! shape — the precision bound checked as a claim, the rounds' skew as a table.

use super::{Adversary, BftConfig, BftLab};
use crate::labs::chart::{LineChart, Series};
use crate::labs::params::{fmt_number, Canonical, ParamKind, ParamSpec, Params};
use crate::labs::{Claim, Lab, LabSpec, ParamError, Table, Verdict};
use crate::sim::SimTime;
use crate::sync::bft::BftAlgorithm;
use crate::trace::Trace;

/// Nodes.
pub const NODES: ParamSpec = ParamSpec::new(
    "nodes",
    "Nodes (n)",
    "how many clocks",
    ParamKind::Integer { min: 2, max: 16 },
    "4",
);
/// Byzantine nodes.
pub const FAULTY: ParamSpec = ParamSpec::new(
    "faulty",
    "Byzantine (f)",
    "how many of them are Byzantine (the last ones); the algorithm tolerates this many",
    ParamKind::Integer { min: 0, max: 5 },
    "1",
);
/// The convergence function.
pub const ALGORITHM: ParamSpec = ParamSpec::new(
    "algorithm",
    "Algorithm",
    "the convergence function each correct node applies every round",
    ParamKind::Choice(&[
        ("welch-lynch", "Welch–Lynch midpoint"),
        ("interactive-convergence", "Lamport–Melliar-Smith CNV"),
        ("ft-average", "fault-tolerant average"),
        ("marzullo", "Marzullo"),
    ]),
    "welch-lynch",
);
/// The adversary.
pub const ADVERSARY: ParamSpec = ParamSpec::new(
    "adversary",
    "Adversary",
    "what the Byzantine nodes report",
    ParamKind::Choice(&[
        ("two-faced", "two-faced"),
        ("liar", "liar (1 s ahead)"),
        ("random", "random"),
        ("none", "none"),
    ]),
    "two-faced",
);
/// Drift bound, ppm.
pub const DRIFT: ParamSpec = ParamSpec::new(
    "drift",
    "Drift ±ρ",
    "the correct clocks drift evenly over ±ρ",
    ParamKind::Number {
        min: 0.0,
        max: 1000.0,
        step: 10.0,
        unit: "ppm",
    },
    "100",
);
/// Reading error, ms.
pub const ERROR: ParamSpec = ParamSpec::new(
    "error",
    "Reading error e",
    "a clock reading is off by up to this",
    ParamKind::Number {
        min: 0.0,
        max: 20.0,
        step: 0.5,
        unit: "ms",
    },
    "1",
);
/// Round period, s.
pub const PERIOD: ParamSpec = ParamSpec::new(
    "period",
    "Round every R",
    "time between resynchronisations",
    ParamKind::Number {
        min: 1.0,
        max: 120.0,
        step: 1.0,
        unit: "s",
    },
    "10",
);
/// Duration, s.
pub const DURATION: ParamSpec = ParamSpec::new(
    "duration",
    "Duration",
    "the length of the run in simulated seconds",
    ParamKind::Number {
        min: 10.0,
        max: 7200.0,
        step: 10.0,
        unit: "s",
    },
    "600",
);

/// The lab for the frame.
pub const SPEC: LabSpec = LabSpec {
    slug: "bft",
    params: &[
        NODES, FAULTY, ALGORITHM, ADVERSARY, DRIFT, ERROR, PERIOD, DURATION,
    ],
    build: build_boxed,
};

fn build_boxed(p: &Params) -> Result<Box<dyn Lab>, ParamError> {
    Ok(Box::new(BftLab::from_params(p)?))
}

impl BftLab {
    /// Builds the run a link describes.
    pub fn from_params(p: &Params) -> Result<BftLab, ParamError> {
        let config = BftConfig {
            nodes: p.integer(&NODES)? as usize,
            faulty: p.integer(&FAULTY)? as usize,
            algorithm: BftAlgorithm::from_key(&p.value(&ALGORITHM)?)
                .ok_or_else(|| ParamError::new(ALGORITHM.key, "unknown algorithm"))?,
            adversary: Adversary::from_key(&p.value(&ADVERSARY)?)
                .ok_or_else(|| ParamError::new(ADVERSARY.key, "unknown adversary"))?,
            drift_ppm: p.number(&DRIFT)?,
            reading_error_ms: p.number(&ERROR)?,
            period_s: p.number(&PERIOD)?,
            duration_s: p.number(&DURATION)?,
            seed: p.seed()?,
        };
        BftLab::new(config).map_err(|e| ParamError::new(FAULTY.key, e))
    }

    /// The correct clocks' skew before and after each round, with the precision bound.
    pub fn skew_chart(&self) -> LineChart {
        let mut c = LineChart::new(
            "skew",
            "The correct clocks' skew before and after each round, and the precision bound",
            "time (s)",
            "ms",
        );
        let rounds = self.rounds();
        c.series.push(Series::node(
            "skew before a round",
            0,
            rounds.iter().map(|r| (r.at_s, r.skew_before_ms)).collect(),
        ));
        c.series.push(Series::node(
            "skew after a round",
            1,
            rounds.iter().map(|r| (r.at_s, r.skew_after_ms)).collect(),
        ));
        let bound = self.config().bound_ms();
        c.series.push(Series {
            name: format!("bound {}", self.config().bound_formula()),
            node: None,
            points: vec![(0.0, bound), (self.config().duration_s, bound)],
            dashed: true,
        });
        c
    }

    /// Every round's skew before and after.
    pub fn rounds_table(&self) -> Table {
        let mut t = Table::new(
            "rounds",
            "The correct clocks' skew before and after every round",
            &[
                "round",
                "time_s",
                "skew_before_ms",
                "skew_after_ms",
                "bound_ms",
            ],
        );
        let bound = self.config().bound_ms();
        for r in self.rounds() {
            t.push(vec![
                r.round.into(),
                r.at_s.into(),
                r.skew_before_ms.into(),
                r.skew_after_ms.into(),
                bound.into(),
            ]);
        }
        t
    }
}

impl Lab for BftLab {
    fn params(&self) -> Params {
        let c = self.config();
        Canonical::new(c.seed)
            .put(&NODES, c.nodes)
            .put(&FAULTY, c.faulty)
            .put(&ALGORITHM, c.algorithm.key())
            .put(&ADVERSARY, c.adversary.key())
            .put(&DRIFT, fmt_number(c.drift_ppm))
            .put(&ERROR, fmt_number(c.reading_error_ms))
            .put(&PERIOD, fmt_number(c.period_s))
            .put(&DURATION, fmt_number(c.duration_s))
            .done()
    }

    fn settings(&self) -> Params {
        let c = self.config();
        let mut p = Params::new();
        p.set(NODES.key, &c.nodes.to_string());
        p.set(FAULTY.key, &c.faulty.to_string());
        p.set(ALGORITHM.key, c.algorithm.key());
        p.set(ADVERSARY.key, c.adversary.key());
        p.set(DRIFT.key, &fmt_number(c.drift_ppm));
        p.set(ERROR.key, &fmt_number(c.reading_error_ms));
        p.set(PERIOD.key, &fmt_number(c.period_s));
        p.set(DURATION.key, &fmt_number(c.duration_s));
        p.set("seed", &c.seed.to_string());
        p
    }

    fn nodes(&self) -> Vec<String> {
        (0..self.config().nodes).map(super::node_name).collect()
    }

    fn now(&self) -> SimTime {
        BftLab::now(self)
    }

    fn end(&self) -> Option<SimTime> {
        Some(BftLab::end(self))
    }

    fn events(&self) -> u64 {
        BftLab::events(self)
    }

    fn step(&mut self) -> Option<SimTime> {
        BftLab::step(self)
    }

    fn run_until(&mut self, until: SimTime) {
        BftLab::run_until(self, until)
    }

    fn last_event(&self) -> Option<String> {
        BftLab::last_event(self).map(str::to_owned)
    }

    fn trace(&self) -> &Trace {
        BftLab::trace(self)
    }

    fn claims(&self) -> Vec<Claim> {
        let c = self.config();
        let bound = c.bound_ms();
        let max = self.max_skew();
        let n_vs = if c.resilient() {
            format!("n = {} ≥ 3f + 1 = {}", c.nodes, 3 * c.faulty + 1)
        } else {
            format!("n = {} < 3f + 1 = {}", c.nodes, 3 * c.faulty + 1)
        };
        vec![Claim::new(
            format!(
                "{}: with n ≥ 3f + 1 the correct clocks stay within {} = {bound:.3} ms (Welch & Lynch 1988; Lamport & Melliar-Smith 1985)",
                c.algorithm.name(),
                c.bound_formula()
            ),
            format!("{n_vs}; largest skew {max:.3} ms over {} rounds", self.rounds().len()),
            if self.rounds().is_empty() {
                Verdict::Pending
            } else {
                Verdict::of(max <= bound)
            },
        )]
    }

    fn tables(&self) -> Vec<Table> {
        vec![self.rounds_table()]
    }
}
