//! The drift lab's parameters: the notations the CLI and the URL share (`5-15ms`,
//! `B:-2s@30s`, `A>B=45ms`) and the page's URL keys (`#/drift?nodes=5&sync=ntp&seed=3`).

use std::time::Duration;

use super::{node_name, DriftConfig, DriftLab, JumpAt, LinkLatency, SyncAlgorithm};
use crate::clocks::physical_clock::AdjustPolicy;
use crate::labs::params::{
    fmt_number, parse_duration, parse_seconds, Canonical, ParamKind, ParamSpec, Params,
};
use crate::labs::ParamError;
use crate::sim::{Latency, SimTime};
use crate::NodeId;

/// A one-way latency: `10ms` (constant), `5-15ms` (uniform), `10±3ms` / `10+-3ms` (normal).
pub fn parse_latency(s: &str) -> Result<Latency, String> {
    let unit_of = |t: &str| {
        t.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
            .to_owned()
    };
    let with_unit = |num: &str, unit: &str| -> Result<Duration, String> {
        let num = num.trim();
        let has_unit = num.ends_with(|c: char| c.is_ascii_alphabetic());
        parse_duration(&if has_unit {
            num.to_owned()
        } else {
            format!("{num}{unit}")
        })
    };
    for sep in ["±", "+-"] {
        if let Some((mean, sd)) = s.split_once(sep) {
            let unit = unit_of(sd);
            return Ok(Latency::Normal {
                mean: with_unit(mean, &unit)?,
                std_dev: with_unit(sd, &unit)?,
            });
        }
    }
    if let Some((lo, hi)) = s.split_once('-') {
        let unit = unit_of(hi);
        let (min, max) = (with_unit(lo, &unit)?, with_unit(hi, &unit)?);
        if min > max {
            return Err(format!(
                "latency range {s:?} is empty: minimum exceeds maximum"
            ));
        }
        return Ok(Latency::Uniform { min, max });
    }
    Ok(Latency::Constant(parse_duration(s)?))
}

/// A node by name: `A`…`Z` or `N30` (or its number).
pub fn parse_node(s: &str) -> Result<NodeId, String> {
    let s = s.trim();
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => {
            Ok((c.to_ascii_uppercase() as u8 - b'A') as NodeId)
        }
        _ => s
            .strip_prefix('N')
            .unwrap_or(s)
            .parse()
            .map_err(|_| format!("expected a node name like B or N30, got {s:?}")),
    }
}

/// A clock jump `NODE:DELTA@TIME`, e.g. `B:-2s@30s`.
pub fn parse_jump(s: &str) -> Result<JumpAt, String> {
    let err = || format!("expected NODE:DELTA@TIME like B:-2s@30s, got {s:?}");
    let (node, rest) = s.split_once(':').ok_or_else(err)?;
    let (delta, at) = rest.split_once('@').ok_or_else(err)?;
    Ok(JumpAt {
        at: SimTime::from_secs_f64(parse_duration(at)?.as_secs_f64()),
        node: parse_node(node)?,
        delta: parse_seconds(delta)?,
    })
}

/// A directed link's latency `FROM>TO=LATENCY`, e.g. `A>B=45ms`.
pub fn parse_link(s: &str) -> Result<LinkLatency, String> {
    let err = || format!("expected FROM>TO=LATENCY like A>B=45ms, got {s:?}");
    let (path, latency) = s.split_once('=').ok_or_else(err)?;
    let (from, to) = path.split_once('>').ok_or_else(err)?;
    Ok(LinkLatency {
        from: parse_node(from)?,
        to: parse_node(to)?,
        latency: parse_latency(latency.trim())?,
    })
}

/// The number of nodes; another count resets the per-node values.
pub const NODES: ParamSpec = ParamSpec::new(
    "nodes",
    "Nodes",
    "how many nodes (2–16); their drifts spread evenly over ±50 ppm",
    ParamKind::Integer { min: 2, max: 16 },
    "4",
)
.resets(&["drift", "latency", "liar"]);

/// The synchronization algorithm.
pub const SYNC: ParamSpec = ParamSpec::new(
    "sync",
    "Algorithm",
    "how the nodes synchronize their clocks",
    ParamKind::Choice(&[
        ("none", "none (free-running)"),
        ("cristian", "Cristian"),
        ("berkeley", "Berkeley"),
        ("ntp", "NTP (Marzullo)"),
        ("ft-average", "fault-tolerant average"),
    ]),
    "berkeley",
);

/// The sync period, seconds.
pub const INTERVAL: ParamSpec = ParamSpec::new(
    "interval",
    "Interval",
    "seconds between sync rounds (NTP: the shortest poll interval)",
    ParamKind::Number {
        min: 1.0,
        max: 3600.0,
        step: 1.0,
        unit: "s",
    },
    "20",
);

/// Slew or step.
pub const ADJUST: ParamSpec = ParamSpec::new(
    "adjust",
    "Adjust",
    "slew a correction in (at most 500 ppm, never backwards) or step the clock",
    ParamKind::Choice(&[("slew", "slew (≤500 ppm)"), ("step", "step")]),
    "slew",
);

/// How often every clock is recorded, seconds.
pub const SAMPLE: ParamSpec = ParamSpec::new(
    "sample",
    "Sample every",
    "how often every clock is recorded (the charts show the last 240 samples)",
    ParamKind::Choice(&[
        ("0.1", "0.1 s"),
        ("1", "1 s"),
        ("10", "10 s"),
        ("60", "1 min"),
        ("600", "10 min"),
    ]),
    "1",
);

/// Each node's drift, ppm.
pub const DRIFT: ParamSpec = ParamSpec::new(
    "drift",
    "Drift",
    "how fast or slow each node's quartz runs, parts per million",
    ParamKind::Number {
        min: -500.0,
        max: 500.0,
        step: 5.0,
        unit: "ppm",
    },
    "",
)
.per_node();

/// Each node's one-way latency, ms (uniform over ½–1½ of it).
pub const LATENCY: ParamSpec = ParamSpec::new(
    "latency",
    "Latency",
    "each node's one-way latency to the others, ms (uniform over half to one and a half of it)",
    ParamKind::Number {
        min: 0.0,
        max: 200.0,
        step: 1.0,
        unit: "ms",
    },
    "10",
)
.per_node();

/// Which nodes lie (Byzantine).
pub const LIAR: ParamSpec = ParamSpec::new(
    "liar",
    "Liar",
    "a liar never adjusts and gives two-faced answers, 500 ms off",
    ParamKind::Flag,
    "0",
)
.per_node();

/// Injected clock jumps, `B:+1@30;C:-1@60` (node, seconds, at simulated second).
pub const JUMPS: ParamSpec = ParamSpec::new(
    "jumps",
    "Jumps",
    "clock jumps as NODE:DELTA@TIME separated by ;, e.g. B:+1@30",
    ParamKind::Text,
    "",
);

/// The lab's parameters, in control order.
pub const PARAMS: &[ParamSpec] = &[
    NODES, SYNC, INTERVAL, ADJUST, SAMPLE, DRIFT, LATENCY, LIAR, JUMPS,
];

/// A node's latency as the page sets it: uniform over ½–1½ of `ms`.
pub fn node_latency(ms: f64) -> Latency {
    let mean = ms.max(0.0) / 1e3;
    Latency::Uniform {
        min: Duration::from_secs_f64(mean * 0.5),
        max: Duration::from_secs_f64(mean * 1.5),
    }
}

/// The default drifts of `n` nodes: evenly spread over ±50 ppm, in whole ppm.
fn default_drifts(n: usize) -> Vec<f64> {
    DriftConfig::new(n, 100.0)
        .clocks
        .iter()
        .map(|c| c.drift_ppm.round())
        .collect()
}

fn list(values: impl IntoIterator<Item = String>) -> String {
    values.into_iter().collect::<Vec<_>>().join(",")
}

/// A drift lab described by a link, with what the page keeps beside its config.
#[derive(Debug, Clone, PartialEq)]
pub struct PageSettings {
    /// The lab's configuration.
    pub config: DriftConfig,
    /// Each node's latency setting, ms.
    pub latencies_ms: Vec<f64>,
}

impl PageSettings {
    /// Reads a link's parameters.
    pub fn from_params(p: &Params) -> Result<PageSettings, ParamError> {
        let n = p.integer(&NODES)? as usize;
        let mut c = DriftConfig::new(n, 100.0);
        c.seed = p.seed()?;
        c.sync = SyncAlgorithm::parse(&p.value(&SYNC)?)
            .ok_or_else(|| ParamError::new(SYNC.key, "unknown algorithm"))?;
        c.interval = Duration::from_secs_f64(p.number(&INTERVAL)?);
        c.adjust = if p.value(&ADJUST)? == "step" {
            AdjustPolicy::Step
        } else {
            AdjustPolicy::SLEW
        };
        c.sample_every = Duration::from_secs_f64(p.number(&SAMPLE)?);
        let given = p.value(&DRIFT)?;
        let given: Vec<&str> = given.split(',').filter(|s| !s.is_empty()).collect();
        if given.len() > n {
            return Err(ParamError::new(
                DRIFT.key,
                format!("{} values for {n} nodes", given.len()),
            ));
        }
        let mut drifts = default_drifts(n);
        for (d, g) in drifts.iter_mut().zip(&given) {
            *d = g.trim().parse().unwrap_or(0.0);
        }
        for (spec, d) in c.clocks.iter_mut().zip(&drifts) {
            spec.drift_ppm = *d;
        }
        let latencies_ms = p.per_node_numbers(&LATENCY, n)?;
        let liars = p.per_node_numbers(&LIAR, n)?;
        c.liars = (0..n as NodeId)
            .filter(|&i| liars[i as usize] != 0.0)
            .collect();
        c.faults_tolerated = c.liars.len().max(1);
        c.jumps = p
            .value(&JUMPS)?
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|j| {
                let j = parse_jump(j).map_err(|e| ParamError::new(JUMPS.key, e))?;
                if (j.node as usize) < n {
                    Ok(j)
                } else {
                    Err(ParamError::new(
                        JUMPS.key,
                        format!("there is no node {}", node_name(j.node)),
                    ))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(PageSettings {
            config: c,
            latencies_ms,
        })
    }

    /// Builds the lab: the configuration, then each node's latency.
    pub fn build(&self) -> Result<DriftLab, ParamError> {
        let mut lab = DriftLab::new(self.config.clone()).map_err(|e| {
            let key = match e {
                super::DriftError::LyingLeader => LIAR.key,
                _ => NODES.key,
            };
            ParamError::new(key, e)
        })?;
        for (i, ms) in self.latencies_ms.iter().enumerate() {
            lab.set_node_latency(i as NodeId, node_latency(*ms))
                .map_err(|e| ParamError::new(LATENCY.key, e))?;
        }
        Ok(lab)
    }

    /// Every value in force (what the controls show).
    pub fn settings(&self) -> Params {
        let c = &self.config;
        let n = c.clocks.len();
        let mut p = Params::new();
        p.set(NODES.key, &n.to_string());
        p.set(SYNC.key, c.sync.name());
        p.set(INTERVAL.key, &fmt_number(c.interval.as_secs_f64()));
        p.set(
            ADJUST.key,
            if c.adjust == AdjustPolicy::Step {
                "step"
            } else {
                "slew"
            },
        );
        p.set(SAMPLE.key, &fmt_number(c.sample_every.as_secs_f64()));
        p.set(
            DRIFT.key,
            &list(c.clocks.iter().map(|s| fmt_number(s.drift_ppm))),
        );
        p.set(
            LATENCY.key,
            &list(self.latencies_ms.iter().map(|v| fmt_number(*v))),
        );
        p.set(
            LIAR.key,
            &list((0..n as NodeId).map(|i| {
                if c.liars.contains(&i) {
                    "1".into()
                } else {
                    "0".into()
                }
            })),
        );
        p.set(JUMPS.key, &jumps_text(&c.jumps));
        p.set("seed", &c.seed.to_string());
        p
    }

    /// The canonical link parameters: defaults left out.
    pub fn params(&self) -> Params {
        let all = self.settings();
        let n = self.config.clocks.len();
        let get = |k: &str| all.get(k).unwrap_or_default().to_owned();
        let mut out = Canonical::new(self.config.seed)
            .put(&NODES, get(NODES.key))
            .put(&SYNC, get(SYNC.key))
            .put(&INTERVAL, get(INTERVAL.key))
            .put(&ADJUST, get(ADJUST.key))
            .put(&SAMPLE, get(SAMPLE.key))
            .put(&JUMPS, get(JUMPS.key));
        if get(DRIFT.key) != list(default_drifts(n).into_iter().map(fmt_number)) {
            out = out.put_always(&DRIFT, get(DRIFT.key));
        }
        if self.latencies_ms.iter().any(|&v| v != 10.0) {
            out = out.put_always(&LATENCY, get(LATENCY.key));
        }
        if !self.config.liars.is_empty() {
            out = out.put_always(&LIAR, get(LIAR.key));
        }
        out.done()
    }
}

/// Jumps in the URL's notation: `B:+1@30;C:-0.5@60.25`.
pub fn jumps_text(jumps: &[JumpAt]) -> String {
    jumps
        .iter()
        .map(|j| {
            format!(
                "{}:{}{}@{}",
                node_name(j.node),
                if j.delta < 0.0 { "-" } else { "+" },
                fmt_number(j.delta.abs()),
                fmt_number(j.at.as_secs_f64())
            )
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// `jumps` with one more jump of `delta` seconds on `node` at `at` (the page's ±1 s buttons):
/// the jump becomes part of the run's link.
pub fn with_jump(p: &Params, node: NodeId, delta: f64, at: SimTime) -> Params {
    let mut text = p.get(JUMPS.key).unwrap_or_default().to_owned();
    let ms = (at.as_nanos() / 1_000_000) as f64 / 1e3;
    let j = jumps_text(&[JumpAt {
        at: SimTime::from_secs_f64(ms),
        node,
        delta,
    }]);
    if !text.is_empty() {
        text.push(';');
    }
    text.push_str(&j);
    let mut q = p.clone();
    q.set(JUMPS.key, &text);
    q
}
