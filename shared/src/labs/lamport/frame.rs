//! The Lamport lab on the lab frame: its parameters (`#/lamport?exp=4&seed=7`) and its
//! [`Lab`] shape — claims with this run's numbers, the tables it offers for download.

use super::analysis::{analyse, claims, clock_condition};
use super::machine::LabEvent;
use super::plots::{clock_chart, queue_chart};
use super::run::LamportLab;
use super::{Experiment, LabConfig, RATES};
use crate::labs::params::{fmt_number, Canonical, ParamKind, ParamSpec, Params};
use crate::labs::{Cell, Claim, Lab, LabSpec, ParamError, Table};
use crate::sim::SimTime;
use crate::trace::Trace;

/// The experiments as choices: `("4", "4: Big clock differences")`.
const EXPERIMENTS: &[(&str, &str)] = &[
    ("1", "1: Default settings (random rates)"),
    ("2", "2: Specific clock rates"),
    ("3", "3: Uniform clock rate"),
    ("4", "4: Big clock differences"),
    ("5", "5: Small clock differences"),
    ("6", "6: More communication, small differences"),
    ("7", "7: High communication, uniform clocks"),
    ("8", "8: High communication, mixed clocks"),
    ("9", "9: High communication, extreme difference"),
    ("10", "10: High communication, big differences"),
    ("11", "11: High communication, small differences"),
];

/// The notebook experiment; choosing one resets the rates and the internal probability to it.
pub const EXP: ParamSpec = ParamSpec::new(
    "exp",
    "Experiment",
    "one of the lab notebook's 11 experiments: its rates and internal probability",
    ParamKind::Choice(EXPERIMENTS),
    "4",
)
.resets(&["rates", "internal"]);

/// Each machine's clock rate, ticks per second (default: the experiment's).
pub const RATES_PARAM: ParamSpec = ParamSpec::new(
    "rates",
    "Rate",
    "ticks per second of each machine (1–6)",
    ParamKind::Integer {
        min: *RATES.start() as i64,
        max: *RATES.end() as i64,
    },
    "1,3,6",
)
.per_node();

/// The chance that a tick with an empty queue is an internal event, percent.
pub const INTERNAL: ParamSpec = ParamSpec::new(
    "internal",
    "Internal events",
    "the chance that a tick with an empty queue is an internal event rather than a send",
    ParamKind::Number {
        min: 0.0,
        max: 100.0,
        step: 5.0,
        unit: "%",
    },
    "70",
);

/// The run's length, seconds.
pub const DURATION: ParamSpec = ParamSpec::new(
    "duration",
    "Duration",
    "the length of the run in simulated seconds",
    ParamKind::Number {
        min: 1.0,
        max: 600.0,
        step: 1.0,
        unit: "s",
    },
    "60",
);

/// The lab for the frame.
pub const SPEC: LabSpec = LabSpec {
    slug: "lamport",
    params: &[EXP, RATES_PARAM, INTERNAL, DURATION],
    build: build_boxed,
};

fn build_boxed(p: &Params) -> Result<Box<dyn Lab>, ParamError> {
    Ok(Box::new(LamportLab::from_params(p)?))
}

impl LamportLab {
    /// Builds the run a link describes.
    pub fn from_params(p: &Params) -> Result<LamportLab, ParamError> {
        let n: u32 = p
            .value(&EXP)?
            .parse()
            .map_err(|_| ParamError::new(EXP.key, "expected an experiment number"))?;
        let e = Experiment::get(n).map_err(|e| ParamError::new(EXP.key, e))?;
        let seed = p.seed()?;
        let duration = p.number(&DURATION)?;
        let mut config = e.config(duration, seed);
        if p.get(RATES_PARAM.key).is_some() {
            let rates = p.value(&RATES_PARAM)?;
            config.rates = rates
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.trim().parse().unwrap_or(0))
                .collect();
        }
        if p.get(INTERNAL.key).is_some() {
            config.internal_probability = p.number(&INTERNAL)? / 100.0;
        }
        let mut lab = LamportLab::new(config).map_err(|e| ParamError::new(RATES_PARAM.key, e))?;
        lab.experiment = Some(n);
        Ok(lab)
    }

    fn experiment_config(&self) -> Option<LabConfig> {
        let c = self.config();
        let e = Experiment::get(self.experiment?).ok()?;
        Some(e.config(c.duration_s, c.seed))
    }

    fn rates_text(rates: &[u32]) -> String {
        rates
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The machines' table: the analysis of the run so far.
    pub fn machines_table(&self) -> Table {
        let a = analyse(&self.config().rates, &self.logs());
        let mut t = Table::new(
            "machines",
            "Per machine: clock, events, jumps, queues",
            &[
                "machine",
                "rate_per_s",
                "clock",
                "internal",
                "sends",
                "receives",
                "largest_jump",
                "largest_jump_at_s",
                "queue_max",
                "queue_now",
            ],
        );
        let queues = self.queue_lengths();
        for m in a.machines {
            t.push(vec![
                Cell::from(format!("M{}", m.machine)),
                m.rate.into(),
                m.final_clock.into(),
                m.internal.into(),
                m.sends.into(),
                m.receives.into(),
                m.jump_max.0.into(),
                m.jump_max.1.into(),
                m.queue_max.into(),
                queues.get(m.machine).copied().unwrap_or(0).into(),
            ]);
        }
        t
    }

    /// Every log entry of every machine, in time order.
    pub fn log_table(&self) -> Table {
        let mut t = Table::new(
            "log",
            "Every machine's log (the notebook's fields)",
            &["time_s", "machine", "event", "detail", "queue", "clock"],
        );
        let mut rows: Vec<(f64, usize, Vec<Cell>)> = Vec::new();
        for (m, log) in self.logs().iter().enumerate() {
            for e in log.iter() {
                let (event, detail) = match &e.event {
                    LabEvent::Internal => ("internal", String::new()),
                    LabEvent::Send { to } => (
                        "send",
                        to.iter()
                            .map(|t| format!("M{t}"))
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                    LabEvent::Receive { from } => ("receive", format!("M{from}")),
                    LabEvent::Stop => ("stop", String::new()),
                };
                rows.push((
                    e.time_s,
                    m,
                    vec![
                        e.time_s.into(),
                        Cell::from(format!("M{m}")),
                        event.into(),
                        detail.into(),
                        e.queue.into(),
                        e.clock.into(),
                    ],
                ));
            }
        }
        rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        t.rows = rows.into_iter().map(|r| r.2).collect();
        t
    }
}

impl Lab for LamportLab {
    fn params(&self) -> Params {
        let c = self.config();
        let base = self.experiment_config();
        let mut out = Canonical::new(c.seed)
            .put(&EXP, self.experiment.unwrap_or(4))
            .put(&DURATION, fmt_number(c.duration_s));
        if base.as_ref().is_none_or(|b| b.rates != c.rates) {
            out = out.put_always(&RATES_PARAM, Self::rates_text(&c.rates));
        }
        if base
            .as_ref()
            .is_none_or(|b| b.internal_probability != c.internal_probability)
        {
            out = out.put_always(&INTERNAL, fmt_number(c.internal_probability * 100.0));
        }
        out.done()
    }

    fn settings(&self) -> Params {
        let c = self.config();
        let mut p = Params::new();
        p.set(EXP.key, &self.experiment.unwrap_or(4).to_string());
        p.set(RATES_PARAM.key, &Self::rates_text(&c.rates));
        p.set(INTERNAL.key, &fmt_number(c.internal_probability * 100.0));
        p.set(DURATION.key, &fmt_number(c.duration_s));
        p.set("seed", &c.seed.to_string());
        p
    }

    fn nodes(&self) -> Vec<String> {
        (0..self.config().rates.len())
            .map(|m| format!("M{m}"))
            .collect()
    }

    fn now(&self) -> SimTime {
        LamportLab::now(self)
    }

    fn end(&self) -> Option<SimTime> {
        Some(LamportLab::end(self))
    }

    fn events(&self) -> u64 {
        LamportLab::events(self)
    }

    fn step(&mut self) -> Option<SimTime> {
        LamportLab::step(self)
    }

    fn run_until(&mut self, until: SimTime) {
        LamportLab::run_until(self, until)
    }

    fn last_event(&self) -> Option<String> {
        LamportLab::last_event(self).map(str::to_owned)
    }

    fn trace(&self) -> &Trace {
        LamportLab::trace(self)
    }

    fn claims(&self) -> Vec<Claim> {
        let logs = self.logs();
        let a = analyse(&self.config().rates, &logs);
        let mut out = vec![clock_condition(&logs, self.trace())];
        out.extend(claims(self.config(), &a));
        out
    }

    fn tables(&self) -> Vec<Table> {
        let logs = self.logs();
        let rates = &self.config().rates;
        vec![
            self.machines_table(),
            clock_chart(rates, &logs).table(),
            queue_chart(rates, &logs).table(),
            self.log_table(),
        ]
    }
}
