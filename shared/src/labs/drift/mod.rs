//! The clock drift lab: nodes with drifting [`PhysicalClock`]s exchanging synchronization
//! messages over the simulated [`Network`], under one of the algorithms of [`crate::sync`].
//! The CLI (`chronoscope drift`) and the browser page both drive this one scenario.
//!
//! Sources: project 1 ("Physical clock drift simulator") and project 12 ("Byzantine fault
//! tolerant clock synchronization") of the seed; Cristian (1989), Gusella & Zatti (1989),
//! RFC 5905 and Marzullo (1984), Lamport & Melliar-Smith (1985) for the algorithms.
//!
//! Guarantees (asserted by the tests below, derived in their comments):
//! - without synchronization the skew grows linearly with the drift difference;
//! - Berkeley with period `P`, one-way delays in `[d_min, d_max]` and drift spread `Δρ` keeps
//!   the skew under `(d_max − d_min) + Δρ·P` (plus a few µs of drift during round trips);
//! - a Cristian estimate is within RTT/2 of the true offset;
//! - fault-tolerant averaging keeps the honest nodes together with n ≥ 3f+1 and does not with
//!   n < 3f+1;
//! - with slewing no clock ever moves backwards; every backward step is reported as
//!   [`LabEventKind::SteppedBack`].
//!
//! True time is the simulator's virtual time; "offset" always means a clock's value minus
//! true time, and "skew" the largest minus the smallest offset among the honest nodes.
//!
//! The lab is split by job: this module holds its configuration; [`records`] what a run
//! reports (snapshots, events, per-node statistics); [`lab`] the run itself ([`DriftLab`]:
//! the nodes, their clocks and the simulator); `rounds` the sync algorithms' rounds;
//! [`describe`] the events in words; [`params`] the lab's URL parameters and the notations
//! the CLI shares (`5-15ms`, `B:-2s@30s`, `A>B=45ms`); [`frame`] its claims, tables and charts
//! on the lab frame.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    clocks::physical_clock::{AdjustPolicy, ClockSpec},
    sim::{Latency, NetworkError, SimTime},
    NodeId,
};

pub mod describe;
pub mod frame;
pub mod lab;
pub mod params;
pub mod records;
mod rounds;

pub use frame::SPEC;
pub use lab::DriftLab;
pub use records::{LabEvent, LabEventKind, NodeStats, PeerView, Snapshot, Summary};

/// The most nodes a lab may have.
pub const MAX_NODES: usize = 64;

/// Initial dispersion of an NTP sample: the clocks' read precision, seconds.
const PRECISION: f64 = 1e-6;

/// TrueTime's uncertainty right after a sync, ms (Spanner's 1 ms).
pub const TT_BASE_MS: f64 = 1.0;
/// TrueTime's assumed drift bound (Spanner's 200 µs/s).
pub const TT_DRIFT_BOUND: f64 = 200e-6;
/// The HLC's maximum offset: remote timestamps further ahead are refused (CockroachDB: 500 ms).
pub const HLC_MAX_OFFSET_MS: u64 = 500;

/// The most sends and local events the lab records into its [`Trace`]: past this, new
/// messages and clock steps are no longer recorded (receives of recorded messages still are,
/// so the trace stays legal and holds at most twice this many events).
pub const TRACE_CAP: usize = 2000;

/// The synchronization algorithm the nodes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncAlgorithm {
    /// Free-running clocks.
    None,
    /// Every node asks the time server (the leader) and corrects by RTT/2.
    Cristian,
    /// The leader polls, averages and sends deltas.
    Berkeley,
    /// Every node polls every other: clock filter, Marzullo, combine, adaptive poll.
    Ntp,
    /// Every node polls every other and applies the fault-tolerant average.
    FtAverage,
}

impl SyncAlgorithm {
    /// Every algorithm, for pickers.
    pub const ALL: [SyncAlgorithm; 5] = [
        SyncAlgorithm::None,
        SyncAlgorithm::Cristian,
        SyncAlgorithm::Berkeley,
        SyncAlgorithm::Ntp,
        SyncAlgorithm::FtAverage,
    ];

    /// The command-line spelling.
    pub fn name(self) -> &'static str {
        match self {
            SyncAlgorithm::None => "none",
            SyncAlgorithm::Cristian => "cristian",
            SyncAlgorithm::Berkeley => "berkeley",
            SyncAlgorithm::Ntp => "ntp",
            SyncAlgorithm::FtAverage => "ft-average",
        }
    }

    /// Parses the command-line spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == s)
    }
}

/// A clock jump injected at a given true time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JumpAt {
    /// When.
    pub at: SimTime,
    /// Which node's clock.
    pub node: NodeId,
    /// By how much, seconds (negative: backwards).
    pub delta: f64,
}

/// The one-way latency of one directed link, overriding [`DriftConfig::latency`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkLatency {
    /// The sending node.
    pub from: NodeId,
    /// The receiving node.
    pub to: NodeId,
    /// Its one-way latency.
    pub latency: Latency,
}

/// Everything that defines a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftConfig {
    /// One clock per node.
    pub clocks: Vec<ClockSpec>,
    /// Byzantine nodes: they never adjust and lie when asked (see [`DriftConfig::lie`]).
    pub liars: Vec<NodeId>,
    /// How far a liar's answer is from the asker's own clock, seconds. A liar is two-faced:
    /// it tells nodes ahead of the honest median that the time is later still, and nodes
    /// behind it that the time is earlier still, pushing them apart.
    pub lie: f64,
    /// One-way latency of every link.
    pub latency: Latency,
    /// Directed links whose one-way latency differs from `latency` (asymmetric paths: the
    /// offset estimates of Cristian and NTP are off by half the asymmetry).
    #[serde(default)]
    pub links: Vec<LinkLatency>,
    /// Loss probability of every link.
    pub loss: f64,
    /// The algorithm.
    pub sync: SyncAlgorithm,
    /// Sync period (NTP: the minimum poll interval).
    pub interval: Duration,
    /// How corrections are applied.
    pub adjust: AdjustPolicy,
    /// The time server (Cristian) or leader (Berkeley).
    pub leader: NodeId,
    /// Berkeley: reports further than this from the median offset are outliers, seconds.
    pub outlier_threshold: f64,
    /// Fault-tolerant average: the `f` highest and lowest values dropped.
    pub faults_tolerated: usize,
    /// NTP: lengthen the poll interval up to 16× while the offsets are stable.
    pub adaptive_poll: bool,
    /// Injected jumps.
    pub jumps: Vec<JumpAt>,
    /// How often the lab records every clock.
    pub sample_every: Duration,
    /// The seed of every random choice.
    pub seed: u64,
}

impl DriftConfig {
    /// `nodes` clocks whose drifts are evenly spread over `[−spread/2, +spread/2]` ppm (the
    /// fastest and slowest differ by exactly `spread`), Berkeley every 20 s over 5–15 ms
    /// links with slewing: the seed's example.
    pub fn new(nodes: usize, drift_spread_ppm: f64) -> Self {
        let clocks = (0..nodes)
            .map(|i| {
                let frac = if nodes > 1 {
                    i as f64 / (nodes - 1) as f64
                } else {
                    0.5
                };
                ClockSpec::drifting(drift_spread_ppm * (frac - 0.5))
            })
            .collect();
        Self {
            clocks,
            liars: Vec::new(),
            lie: 0.5,
            latency: Latency::Uniform {
                min: Duration::from_millis(5),
                max: Duration::from_millis(15),
            },
            links: Vec::new(),
            loss: 0.0,
            sync: SyncAlgorithm::Berkeley,
            interval: Duration::from_secs(20),
            adjust: AdjustPolicy::SLEW,
            leader: 0,
            outlier_threshold: 1.0,
            faults_tolerated: 1,
            adaptive_poll: true,
            jumps: Vec::new(),
            sample_every: Duration::from_secs(5),
            seed: 1,
        }
    }

    fn validate(&self) -> Result<(), DriftError> {
        let n = self.clocks.len();
        if !(2..=MAX_NODES).contains(&n) {
            return Err(DriftError::NodeCount(n));
        }
        let bad_node = |id: NodeId| (id as usize) >= n;
        if bad_node(self.leader) {
            return Err(DriftError::NoSuchNode(self.leader));
        }
        if let Some(&l) = self.liars.iter().find(|&&l| bad_node(l)) {
            return Err(DriftError::NoSuchNode(l));
        }
        if let Some(j) = self.jumps.iter().find(|j| bad_node(j.node)) {
            return Err(DriftError::NoSuchNode(j.node));
        }
        if let Some(l) = self
            .links
            .iter()
            .find(|l| bad_node(l.from) || bad_node(l.to))
        {
            return Err(DriftError::NoSuchNode(if bad_node(l.from) {
                l.from
            } else {
                l.to
            }));
        }
        if let Some(l) = self.links.iter().find(|l| l.from == l.to) {
            return Err(DriftError::SelfLink(l.from));
        }
        if self.interval.is_zero() || self.sample_every.is_zero() {
            return Err(DriftError::ZeroPeriod);
        }
        if self.liars.contains(&self.leader)
            && matches!(self.sync, SyncAlgorithm::Cristian | SyncAlgorithm::Berkeley)
        {
            return Err(DriftError::LyingLeader);
        }
        let all_finite = self.clocks.iter().all(|c| {
            c.offset.is_finite()
                && c.drift_ppm.is_finite()
                && c.drift_ppm.abs() <= 1000.0
                && c.wander_ppm.is_finite()
                && c.wander_ppm >= 0.0
                && c.jitter.is_finite()
                && c.jitter >= 0.0
        });
        if !all_finite || !self.lie.is_finite() || !self.jumps.iter().all(|j| j.delta.is_finite()) {
            return Err(DriftError::BadClock);
        }
        Ok(())
    }
}

/// A configuration the lab cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriftError {
    /// Too few or too many nodes.
    #[error("a drift lab needs 2 to {MAX_NODES} nodes, not {0}")]
    NodeCount(usize),
    /// A node id out of range.
    #[error("there is no node {}", node_name(*.0))]
    NoSuchNode(NodeId),
    /// A link from a node to itself.
    #[error("a link needs two nodes; {} to itself is not a link", node_name(*.0))]
    SelfLink(NodeId),
    /// A zero sync or sample period.
    #[error("the sync interval and the sample period must be positive")]
    ZeroPeriod,
    /// The time server or leader is a liar (the algorithm trusts it by design).
    #[error("the leader cannot be a liar: cristian and berkeley trust it by design")]
    LyingLeader,
    /// A drift beyond ±1000 ppm, a negative noise or a non-finite number.
    #[error("clock parameters must be finite, drifts within ±1000 ppm, noise non-negative")]
    BadClock,
    /// The network settings were refused.
    #[error(transparent)]
    Network(#[from] NetworkError),
}

/// The conventional name of a node: A, B, …, Z, then N26, N27, ….
pub fn node_name(id: NodeId) -> String {
    if id < 26 {
        char::from(b'A' + id as u8).to_string()
    } else {
        format!("N{id}")
    }
}

#[cfg(test)]
mod tests;
