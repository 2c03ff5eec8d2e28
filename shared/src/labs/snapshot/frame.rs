//! The snapshot lab on the lab frame: its parameters (`#/snapshot?fifo=0&algorithm=lai-yang`)
//! and its [`Lab`] shape — the checkers' verdicts as claims, the recorded states as tables.

use super::{node_name, SnapshotConfig, SnapshotLab, Workload};
use crate::causality::snapshot::Algorithm;
use crate::check::conservation::FindingKind;
use crate::labs::params::{fmt_number, Canonical, ParamKind, ParamSpec, Params};
use crate::labs::{Cell, Claim, Lab, LabSpec, ParamError, Table, Verdict};
use crate::sim::SimTime;
use crate::trace::Trace;

/// The workload: the seed's scripted example or random spending.
pub const WORKLOAD: ParamSpec = ParamSpec::new(
    "workload",
    "Workload",
    "the seed's three-node example, or every node spending at random",
    ParamKind::Choice(&[
        ("random", "random transfers"),
        ("example", "the seed's example (3 nodes)"),
    ]),
    "random",
);

/// The snapshot algorithm.
pub const ALGORITHM: ParamSpec = ParamSpec::new(
    "algorithm",
    "Algorithm",
    "Chandy–Lamport markers (needs FIFO channels) or Lai–Yang colours (any channels)",
    ParamKind::Choice(&[
        ("chandy-lamport", "Chandy–Lamport"),
        ("lai-yang", "Lai–Yang"),
    ]),
    "chandy-lamport",
);

/// FIFO channels.
pub const FIFO: ParamSpec = ParamSpec::new(
    "fifo",
    "FIFO channels",
    "messages on a channel arrive in the order they were sent",
    ParamKind::Flag,
    "1",
);

/// Number of nodes (random workload).
pub const NODES: ParamSpec = ParamSpec::new(
    "nodes",
    "Nodes",
    "how many bank nodes (random workload)",
    ParamKind::Integer { min: 2, max: 8 },
    "5",
);

/// Concurrent initiators.
pub const INITIATORS: ParamSpec = ParamSpec::new(
    "initiators",
    "Initiators",
    "1, or 2 snapshots started 3 ms apart by Node 1 and Node 2",
    ParamKind::Integer { min: 1, max: 2 },
    "1",
);

/// The largest one-way latency, ms.
pub const LATENCY: ParamSpec = ParamSpec::new(
    "latency",
    "Max latency",
    "each message takes 5 ms up to this (random workload)",
    ParamKind::Number {
        min: 5.0,
        max: 200.0,
        step: 5.0,
        unit: "ms",
    },
    "40",
);

/// The run's length, ms.
pub const DURATION: ParamSpec = ParamSpec::new(
    "duration",
    "Duration",
    "the length of the run in simulated milliseconds",
    ParamKind::Number {
        min: 100.0,
        max: 10_000.0,
        step: 100.0,
        unit: "ms",
    },
    "1000",
);

/// The lab for the frame.
pub const SPEC: LabSpec = LabSpec {
    slug: "snapshot",
    params: &[
        WORKLOAD, ALGORITHM, FIFO, NODES, INITIATORS, LATENCY, DURATION,
    ],
    build: build_boxed,
};

fn build_boxed(p: &Params) -> Result<Box<dyn Lab>, ParamError> {
    Ok(Box::new(SnapshotLab::from_params(p)?))
}

/// `chandy-lamport` / `lai-yang` as the algorithm.
pub fn parse_algorithm(s: &str) -> Option<Algorithm> {
    match s {
        "chandy-lamport" => Some(Algorithm::ChandyLamport),
        "lai-yang" => Some(Algorithm::LaiYang),
        _ => None,
    }
}

impl SnapshotLab {
    /// Builds the run a link describes.
    pub fn from_params(p: &Params) -> Result<SnapshotLab, ParamError> {
        let algorithm = parse_algorithm(&p.value(&ALGORITHM)?)
            .ok_or_else(|| ParamError::new(ALGORITHM.key, "unknown algorithm"))?;
        let fifo = p.flag(&FIFO)?;
        let mut config = match p.value(&WORKLOAD)?.as_str() {
            "example" => SnapshotConfig::example(algorithm, fifo),
            _ => {
                let mut c =
                    SnapshotConfig::random(p.integer(&NODES)? as usize, algorithm, fifo, p.seed()?);
                c.latency_ms.1 = p.number(&LATENCY)?.round() as u64;
                c.duration_ms = p.number(&DURATION)?.round() as u64;
                c
            }
        };
        config.seed = p.seed()?;
        config.initiators = p.integer(&INITIATORS)? as usize;
        SnapshotLab::new(config).map_err(|e| ParamError::new(NODES.key, e))
    }

    /// Per snapshot and node: the recorded balance, and the balance now.
    pub fn states_table(&self) -> Table {
        let mut t = Table::new(
            "states",
            "Recorded balance of every node in every snapshot",
            &["snapshot", "node", "recorded_usd", "balance_now_usd"],
        );
        let now = self.balances();
        for r in self.snapshots() {
            if let Some((_, g)) = &r.collected {
                for (n, l) in &g.locals {
                    t.push(vec![
                        Cell::from(format!("{}.{}", r.id.initiator, r.id.seq)),
                        Cell::from(node_name(*n)),
                        l.state.into(),
                        now.get(n).copied().unwrap_or(0).into(),
                    ]);
                }
            }
        }
        t
    }

    /// Per snapshot, every transfer recorded in flight, and every one the checker found
    /// misplaced.
    pub fn channels_table(&self) -> Table {
        let mut t = Table::new(
            "channels",
            "Transfers recorded in flight, and misplaced ones the checker found",
            &["snapshot", "from", "to", "amount_usd", "message", "verdict"],
        );
        for r in self.snapshots() {
            let Some((c, _)) = self.judge(r) else {
                continue;
            };
            let (_, g) = r.collected.as_ref().expect("judged");
            let snap = format!("{}.{}", r.id.initiator, r.id.seq);
            for x in self.recorded_state(g).channels {
                if !c.findings.iter().any(|f| f.message == x.message) {
                    t.push(vec![
                        Cell::from(snap.as_str()),
                        x.from.into(),
                        x.to.into(),
                        x.amount.into(),
                        x.message.into(),
                        "in flight".into(),
                    ]);
                }
            }
            for f in &c.findings {
                let kind = match f.kind {
                    FindingKind::Lost => "lost",
                    FindingKind::Orphan => "orphan",
                    FindingKind::Duplicated => "duplicated",
                    FindingKind::Phantom => "phantom",
                };
                t.push(vec![
                    Cell::from(snap.as_str()),
                    f.from.into(),
                    f.to.into(),
                    f.amount.into(),
                    f.message.into(),
                    kind.into(),
                ]);
            }
        }
        t
    }
}

impl Lab for SnapshotLab {
    fn params(&self) -> Params {
        let c = self.config();
        let mut out = Canonical::new(c.seed)
            .put(
                &WORKLOAD,
                match c.workload {
                    Workload::Example => "example",
                    Workload::Random => "random",
                },
            )
            .put(&ALGORITHM, c.algorithm.key())
            .put(&FIFO, if c.fifo { "1" } else { "0" })
            .put(&INITIATORS, c.initiators);
        if c.workload == Workload::Random {
            out = out
                .put(&NODES, c.nodes)
                .put(&LATENCY, fmt_number(c.latency_ms.1 as f64))
                .put(&DURATION, fmt_number(c.duration_ms as f64));
        }
        out.done()
    }

    fn settings(&self) -> Params {
        let c = self.config();
        let mut p = Params::new();
        p.set(
            WORKLOAD.key,
            match c.workload {
                Workload::Example => "example",
                Workload::Random => "random",
            },
        );
        p.set(ALGORITHM.key, c.algorithm.key());
        p.set(FIFO.key, if c.fifo { "1" } else { "0" });
        p.set(NODES.key, &c.nodes.to_string());
        p.set(INITIATORS.key, &c.initiators.to_string());
        p.set(LATENCY.key, &fmt_number(c.latency_ms.1 as f64));
        p.set(DURATION.key, &fmt_number(c.duration_ms as f64));
        p.set("seed", &c.seed.to_string());
        p
    }

    fn nodes(&self) -> Vec<String> {
        (1..=self.config().balances().len() as u32)
            .map(node_name)
            .collect()
    }

    fn now(&self) -> SimTime {
        SnapshotLab::now(self)
    }

    fn end(&self) -> Option<SimTime> {
        Some(SnapshotLab::end(self))
    }

    fn events(&self) -> u64 {
        SnapshotLab::events(self)
    }

    fn step(&mut self) -> Option<SimTime> {
        SnapshotLab::step(self)
    }

    fn run_until(&mut self, until: SimTime) {
        SnapshotLab::run_until(self, until)
    }

    fn last_event(&self) -> Option<String> {
        SnapshotLab::last_event(self).map(str::to_owned)
    }

    fn trace(&self) -> &Trace {
        SnapshotLab::trace(self)
    }

    fn claims(&self) -> Vec<Claim> {
        let c = self.config();
        let algorithm = c.algorithm.name();
        let channels = if c.fifo { "FIFO" } else { "non-FIFO" };
        let initial = c.initial_total();
        let mut out = Vec::new();
        if self.snapshots().is_empty() {
            out.push(Claim::new(
                format!("{algorithm} (on {channels} channels) records a global state that conserves the bank's money"),
                format!("no snapshot yet: Node 1 starts one at {} ms", c.snapshot_at_ms),
                Verdict::Pending,
            ));
        }
        for r in self.snapshots() {
            let name = format!("snapshot {}.{}", r.id.initiator, r.id.seq);
            let Some((cons, cut)) = self.judge(r) else {
                let finished = self.now() >= self.end();
                out.push(Claim::new(
                    format!("Termination: every node reports its part of {name} to the initiator"),
                    "not every report is in yet",
                    if finished {
                        Verdict::Fails
                    } else {
                        Verdict::Pending
                    },
                ));
                continue;
            };
            let at = r
                .collected
                .as_ref()
                .map(|(t, _)| t.as_nanos() / 1_000_000)
                .unwrap_or(0);
            out.push(Claim::new(
                format!("Termination: every node reports its part of {name} to the initiator"),
                format!(
                    "all {} reports in at {at} ms",
                    self.config().balances().len()
                ),
                Verdict::Holds,
            ));
            let evidence = if cons.holds() {
                format!(
                    "TOTAL ${} matches the initial ${initial}; no transfer misplaced",
                    cons.total
                )
            } else {
                let mut e = format!("TOTAL ${} against the initial ${initial}", cons.total);
                for line in cons.explain(|n| n.to_string()) {
                    e.push_str("; ");
                    e.push_str(&line);
                }
                e
            };
            out.push(Claim::new(
                format!(
                    "{algorithm} on {channels} channels: {name} conserves the money \
                     (Chandy & Lamport 1985; balances + in-flight = initial)"
                ),
                evidence,
                Verdict::of(cons.holds()),
            ));
            let evidence = if cut.consistent() {
                "no frontier's vector clock counts an event beyond another node's frontier"
                    .to_owned()
            } else {
                cut.explain(self.trace()).join("; ")
            };
            out.push(Claim::new(
                format!("The cut of {name} is consistent (Mattern 1989, by vector clocks)"),
                evidence,
                Verdict::of(cut.consistent()),
            ));
        }
        if c.initiators == 2 {
            let both = self.snapshots().len() == 2
                && self.snapshots().iter().all(|r| r.collected.is_some());
            let verdict = if !both {
                if self.now() >= self.end() {
                    Verdict::Fails
                } else {
                    Verdict::Pending
                }
            } else {
                Verdict::of(self.all_hold())
            };
            out.push(Claim::new(
                "Two concurrent snapshots are kept apart: each conserves the money on its own",
                format!(
                    "{} of {} snapshots collected and judged sound",
                    self.snapshots()
                        .iter()
                        .filter(|r| self
                            .judge(r)
                            .is_some_and(|(c, cut)| c.holds() && cut.consistent()))
                        .count(),
                    self.snapshots().len()
                ),
                verdict,
            ));
        }
        out
    }

    fn tables(&self) -> Vec<Table> {
        vec![self.states_table(), self.channels_table()]
    }
}
