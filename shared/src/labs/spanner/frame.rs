//! The TrueTime lab on the lab frame: its parameters (`#/spanner?wait=0`) and its [`Lab`]
//! shape — the external-consistency checker's verdicts as claims, the transactions and the
//! clocks' sawtooth as tables.

use super::{SpannerConfig, SpannerLab, REGIONS};
use crate::check::external_consistency::TxAction;
use crate::labs::params::{fmt_number, number, Canonical, ParamKind, ParamSpec, Params};
use crate::labs::{Cell, Claim, Lab, LabSpec, ParamError, Table, Verdict};
use crate::sim::SimTime;
use crate::trace::Trace;

/// The regions' real drift, ppm.
pub const DRIFT: ParamSpec = number(
    "drift",
    "Clock drift",
    "the regions' clocks drift +d, −d and +0.4d",
    (0.0, 1000.0, 10.0),
    "ppm",
    "150",
);
/// The drift bound TrueTime assumes, ppm.
pub const BOUND: ParamSpec = number(
    "bound",
    "Assumed drift bound",
    "TrueTime's ε grows at this rate since the last sync (honest when ≥ the drift)",
    (0.0, 1000.0, 10.0),
    "ppm",
    "200",
);
/// Sync interval, seconds.
pub const SYNC: ParamSpec = number(
    "sync",
    "Sync every",
    "time between a region's Cristian exchanges with the time master",
    (1.0, 120.0, 1.0),
    "s",
    "30",
);
/// Commit wait.
pub const WAIT: ParamSpec = ParamSpec::new(
    "wait",
    "Commit wait",
    "writes wait until TT.after(s); reads until TT.after(snapshot)",
    ParamKind::Flag,
    "1",
);
/// Clients.
pub const CLIENTS: ParamSpec = ParamSpec::new(
    "clients",
    "Clients",
    "concurrent chains of transactions",
    ParamKind::Integer { min: 1, max: 10 },
    "3",
);
/// Think time, ms.
pub const THINK: ParamSpec = number(
    "think",
    "Think time",
    "longest pause between a client's transactions",
    (0.0, 100.0, 1.0),
    "ms",
    "5",
);
/// Duration, seconds.
pub const DURATION: ParamSpec = number(
    "duration",
    "Duration",
    "the length of the run in simulated seconds",
    (1.0, 120.0, 1.0),
    "s",
    "20",
);

/// The lab for the frame.
pub const SPEC: LabSpec = LabSpec {
    slug: "spanner",
    params: &[DRIFT, BOUND, SYNC, WAIT, CLIENTS, THINK, DURATION],
    build: build_boxed,
};

fn build_boxed(p: &Params) -> Result<Box<dyn Lab>, ParamError> {
    Ok(Box::new(SpannerLab::from_params(p)?))
}

impl SpannerLab {
    /// Builds the run a link describes.
    pub fn from_params(p: &Params) -> Result<SpannerLab, ParamError> {
        let config = SpannerConfig {
            drift_ppm: p.number(&DRIFT)?,
            assumed_drift_ppm: p.number(&BOUND)?,
            sync_every_s: p.number(&SYNC)?,
            commit_wait: p.flag(&WAIT)?,
            clients: p.integer(&CLIENTS)? as usize,
            think_ms: p.number(&THINK)?,
            duration_s: p.number(&DURATION)?,
            seed: p.seed()?,
        };
        SpannerLab::new(config).map_err(|e| ParamError::new(DRIFT.key, e))
    }

    /// Every transaction: region, kind, key, true interval, timestamp, ε, wait, what it saw.
    pub fn transactions_table(&self) -> Table {
        let mut t = Table::new(
            "transactions",
            "Every transaction: true-time interval, timestamp, ε and wait",
            &[
                "id",
                "region",
                "kind",
                "key",
                "start_ms",
                "end_ms",
                "ts_ms",
                "epsilon_ms",
                "clock_error_ms",
                "waited_ms",
                "saw",
            ],
        );
        for (i, x) in self.transactions().iter().enumerate() {
            let (kind, key, saw) = match &x.tx.action {
                TxAction::Write { key, .. } => ("write", key.clone(), Cell::Empty),
                TxAction::Read { key, saw } => {
                    ("read", key.clone(), saw.map_or(Cell::Empty, Cell::from))
                }
            };
            t.push(vec![
                i.into(),
                REGIONS[x.region].into(),
                kind.into(),
                key.into(),
                x.tx.start_ms.into(),
                x.tx.end_ms.into(),
                x.tx.ts_ms.into(),
                x.epsilon_ms.into(),
                x.clock_error_ms.into(),
                x.waited_ms.into(),
                saw,
            ]);
        }
        t
    }

    /// Each region's clock error and ε, once a second: the sawtooth.
    pub fn clocks_table(&self) -> Table {
        let mut t = Table::new(
            "clocks",
            "Each region's real clock error and TrueTime ε, per second",
            &[
                "time_s",
                "us_error_ms",
                "us_epsilon_ms",
                "eu_error_ms",
                "eu_epsilon_ms",
                "asia_error_ms",
                "asia_epsilon_ms",
            ],
        );
        for (s, err, eps) in self.samples() {
            let mut row: Vec<Cell> = vec![(*s).into()];
            for r in 0..3 {
                row.push(err[r].into());
                row.push(eps[r].into());
            }
            t.push(row);
        }
        t
    }
}

impl Lab for SpannerLab {
    fn params(&self) -> Params {
        let c = self.config();
        Canonical::new(c.seed)
            .put(&DRIFT, fmt_number(c.drift_ppm))
            .put(&BOUND, fmt_number(c.assumed_drift_ppm))
            .put(&SYNC, fmt_number(c.sync_every_s))
            .put(&WAIT, if c.commit_wait { "1" } else { "0" })
            .put(&CLIENTS, c.clients)
            .put(&THINK, fmt_number(c.think_ms))
            .put(&DURATION, fmt_number(c.duration_s))
            .done()
    }

    fn settings(&self) -> Params {
        let c = self.config();
        let mut p = Params::new();
        p.set(DRIFT.key, &fmt_number(c.drift_ppm));
        p.set(BOUND.key, &fmt_number(c.assumed_drift_ppm));
        p.set(SYNC.key, &fmt_number(c.sync_every_s));
        p.set(WAIT.key, if c.commit_wait { "1" } else { "0" });
        p.set(CLIENTS.key, &c.clients.to_string());
        p.set(THINK.key, &fmt_number(c.think_ms));
        p.set(DURATION.key, &fmt_number(c.duration_s));
        p.set("seed", &c.seed.to_string());
        p
    }

    fn nodes(&self) -> Vec<String> {
        REGIONS.iter().map(|r| (*r).to_owned()).collect()
    }

    fn now(&self) -> SimTime {
        SpannerLab::now(self)
    }

    fn end(&self) -> Option<SimTime> {
        Some(SpannerLab::end(self))
    }

    fn events(&self) -> u64 {
        SpannerLab::events(self)
    }

    fn step(&mut self) -> Option<SimTime> {
        SpannerLab::step(self)
    }

    fn run_until(&mut self, until: SimTime) {
        SpannerLab::run_until(self, until)
    }

    fn last_event(&self) -> Option<String> {
        SpannerLab::last_event(self).map(str::to_owned)
    }

    fn trace(&self) -> &Trace {
        SpannerLab::trace(self)
    }

    fn claims(&self) -> Vec<Claim> {
        let c = self.config();
        let r = self.check();
        let n = self.history().len();
        if n == 0 {
            return vec![Claim::new(
                "External consistency (Spanner §4.1.2)",
                "no transaction has finished yet",
                Verdict::Pending,
            )];
        }
        let (outside, readings, worst) = self.intervals_honest();
        let honest = c.assumed_drift_ppm >= c.drift_ppm;
        vec![
            Claim::new(
                format!(
                    "External consistency (Spanner §4.1.2), commit wait {}: if T1 commits before T2 starts, s1 < s2",
                    if c.commit_wait { "on" } else { "off" }
                ),
                format!("{} of {n} transactions started after one that ended with a timestamp at least theirs", r.order.len()),
                Verdict::of(r.order.is_empty()),
            ),
            Claim::new(
                "Snapshot reads (Spanner §4.1.3): a read at s sees the latest write with a timestamp ≤ s",
                format!("{} stale reads", r.stale_reads.len()),
                Verdict::of(r.stale_reads.is_empty()),
            ),
            Claim::new(
                format!(
                    "TrueTime (Spanner §3): the interval contains true time while ε's drift bound ({} ppm) covers the real drift ({} ppm)",
                    fmt_number(c.assumed_drift_ppm),
                    fmt_number(c.drift_ppm)
                ),
                format!(
                    "{outside} of {readings} intervals missed true time; worst clock error {} ε by {:.3} ms",
                    if worst > 0.0 { "beyond" } else { "within" },
                    worst.abs()
                ),
                if honest { Verdict::of(outside == 0) } else { Verdict::of(outside > 0) },
            ),
        ]
    }

    fn tables(&self) -> Vec<Table> {
        vec![self.transactions_table(), self.clocks_table()]
    }
}
