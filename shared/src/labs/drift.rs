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

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    clocks::hlc::{Hlc, HlcTimestamp, ManualClock},
    clocks::physical_clock::{AdjustPolicy, Adjustment, ClockSpec, Direction, PhysicalClock},
    clocks::truetime::TrueTime,
    sim::{Latency, LinkModel, Network, NetworkError, SimTime, Simulation},
    sync::{
        berkeley,
        cristian::CristianSample,
        ft_average::{fault_tolerant_average, FtAverage},
        marzullo::{self, Chimer, Interval},
        ntp::{self, ClockFilter, Exchange, FrequencyEstimator, PollInterval},
    },
    trace::{MessageId, Trace},
    NodeId,
};

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

/// Every clock at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// True time.
    pub at: SimTime,
    /// Each node's clock value, seconds.
    pub clocks: Vec<f64>,
    /// Each node's clock minus true time, seconds.
    pub offsets: Vec<f64>,
    /// Largest minus smallest offset among honest nodes, seconds.
    pub skew: f64,
    /// Each node's hybrid logical clock, stamped at this sample (a local event).
    pub hlc: Vec<HlcTimestamp>,
    /// Each node's TrueTime uncertainty ε, ms: grows between syncs, drops at each.
    pub epsilon_ms: Vec<f64>,
}

/// How one peer looked to an NTP node in a round.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeerView {
    /// The peer.
    pub peer: NodeId,
    /// Filtered offset (peer minus local), seconds.
    pub offset: f64,
    /// Filtered round-trip delay, seconds.
    pub delay: f64,
    /// Root distance, seconds.
    pub distance: f64,
    /// Marzullo's verdict.
    pub chimer: Chimer,
}

/// Something worth telling that happened in the lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabEvent {
    /// True time.
    pub at: SimTime,
    /// What.
    pub kind: LabEventKind,
}

/// The kinds of [`LabEvent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LabEventKind {
    /// A Cristian exchange completed.
    Cristian {
        /// The client.
        node: NodeId,
        /// The time server.
        server: NodeId,
        /// The exchange.
        sample: CristianSample,
        /// Server minus client clock at the moment of the estimate (the lab knows it).
        true_offset: f64,
        /// What the client did.
        adjustment: Adjustment,
    },
    /// A Berkeley round completed at the leader.
    Berkeley {
        /// The leader's computation.
        round: berkeley::Round,
        /// The leader's clock when it computed.
        leader_clock: f64,
        /// What the leader did to its own clock.
        adjustment: Adjustment,
    },
    /// A Berkeley correction reached a node.
    Correction {
        /// The node.
        node: NodeId,
        /// The delta it was sent.
        delta: f64,
        /// What it did.
        adjustment: Adjustment,
    },
    /// An NTP node selected and combined its peers.
    Ntp {
        /// The node.
        node: NodeId,
        /// Its view of each peer.
        peers: Vec<PeerView>,
        /// Marzullo's intersection.
        interval: Interval,
        /// The combined offset.
        combined: f64,
        /// What the node did.
        adjustment: Adjustment,
        /// The next poll interval, seconds.
        poll: f64,
    },
    /// A fault-tolerant-averaging node computed its correction.
    FtAverage {
        /// The node.
        node: NodeId,
        /// Each node's estimated offset from this one (itself: 0).
        values: Vec<(NodeId, f64)>,
        /// The trimmed average.
        result: FtAverage,
        /// What the node did.
        adjustment: Adjustment,
    },
    /// A round gave nothing usable: the node keeps its local time (the proposal's fallback).
    NoSync {
        /// The node.
        node: NodeId,
        /// Why.
        reason: String,
    },
    /// An injected jump.
    Jump {
        /// The node.
        node: NodeId,
        /// By how much, seconds.
        delta: f64,
    },
    /// A correction stepped a clock backwards: timestamps taken after it can be smaller than
    /// timestamps taken before.
    SteppedBack {
        /// The node.
        node: NodeId,
        /// By how much, seconds (positive).
        by: f64,
    },
}

/// The chrony-like status of one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStats {
    /// Clock minus true time now, seconds.
    pub offset: f64,
    /// The last offset the node measured and corrected, seconds.
    pub last_correction: Option<f64>,
    /// Root mean square of the corrections so far, seconds.
    pub rms_correction: f64,
    /// Estimated frequency error, ppm (NTP: least squares; others: from corrections).
    pub frequency_ppm: Option<f64>,
    /// The actual frequency error now (drift plus corrections), ppm.
    pub true_frequency_ppm: f64,
    /// Last round-trip time measured, seconds.
    pub rtt: Option<f64>,
    /// Root dispersion of the last NTP selection, seconds.
    pub dispersion: Option<f64>,
    /// How the other NTP nodes judged it in their last selections: falseticker if any did.
    pub verdict: Option<Chimer>,
    /// Whether it is a liar.
    pub liar: bool,
    /// Corrections applied.
    pub syncs: u64,
    /// Backward steps suffered.
    pub backward_steps: u64,
    /// Current poll interval, seconds.
    pub poll: f64,
    /// The latest hybrid logical clock timestamp.
    pub hlc: Option<HlcTimestamp>,
    /// Remote HLC timestamps refused for being more than the maximum offset ahead.
    pub hlc_refused: u64,
    /// TrueTime ε now, ms.
    pub epsilon_ms: f64,
    /// Samples at which TrueTime's interval did not contain true time (the assumed bounds
    /// were wrong: drift above 200 ppm, or a sync error above the base uncertainty).
    pub truetime_misses: u64,
}

impl NodeStats {
    /// The chrony-like status word: `liar`, `falseticker` or `selected`; `None` before any
    /// NTP selection has judged the node.
    pub fn status(&self) -> Option<&'static str> {
        if self.liar {
            return Some("liar");
        }
        self.verdict.map(|v| match v {
            Chimer::Falseticker => "falseticker",
            Chimer::Truechimer => "selected",
        })
    }
}

/// A summary of a finished run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Largest skew recorded.
    pub max_skew: f64,
    /// Largest skew recorded after the first sync interval.
    pub max_skew_after_first_sync: f64,
    /// Skew at the end.
    pub final_skew: f64,
    /// Backward steps.
    pub backward_steps: u64,
    /// Simulator events processed.
    pub events: u64,
    /// Messages sent.
    pub messages: u64,
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Poll {
        node: NodeId,
        epoch: u64,
    },
    Request {
        from: NodeId,
        to: NodeId,
        round: u64,
        t1: f64,
        hlc: HlcTimestamp,
        msg: Option<MessageId>,
    },
    Response {
        server: NodeId,
        client: NodeId,
        round: u64,
        t1: f64,
        t2: f64,
        t3: f64,
        hlc: HlcTimestamp,
        msg: Option<MessageId>,
    },
    Deadline {
        node: NodeId,
        round: u64,
    },
    Correction {
        node: NodeId,
        delta: f64,
        hlc: HlcTimestamp,
        msg: Option<MessageId>,
    },
    Sample,
    Jump {
        node: NodeId,
        delta: f64,
    },
}

#[derive(Debug, Clone)]
struct PendingRound {
    id: u64,
    expected: usize,
    responses: Vec<(NodeId, Exchange)>,
}

#[derive(Debug, Clone)]
struct NodeState {
    clock: PhysicalClock,
    liar: bool,
    round: Option<PendingRound>,
    filters: Vec<ClockFilter>,
    poll: PollInterval,
    freq: FrequencyEstimator,
    stats: NodeStats,
    sum_sq: f64,
    judged_false_by: Vec<NodeId>,
    hlc: Hlc<ManualClock>,
    truetime: TrueTime,
}

impl NodeState {
    /// The physical clock in ms, as the HLC and TrueTime read it.
    fn local_ms(&self) -> f64 {
        (self.clock.value() * 1e3).max(0.0)
    }

    fn feed_hlc(&mut self) {
        self.hlc.clock_mut().now_ms = self.local_ms() as u64;
    }

    /// A send or local event: the next HLC timestamp.
    fn hlc_now(&mut self) -> HlcTimestamp {
        self.feed_hlc();
        let t = self.hlc.now();
        self.stats.hlc = Some(t);
        t
    }

    /// A receive event.
    fn hlc_receive(&mut self, remote: HlcTimestamp) {
        self.feed_hlc();
        match self.hlc.receive(remote) {
            Ok(t) => self.stats.hlc = Some(t),
            Err(_) => self.stats.hlc_refused += 1,
        }
    }
}

/// The poll schedule's generation: changing the algorithm or interval starts a new one and
/// older `Poll` events are ignored.
type Epoch = u64;

/// A running drift lab.
///
/// Architecture invariant: every clock is advanced to the simulator's current time before it
/// is read or adjusted, so a reading always corresponds to the true time it is reported at.
#[derive(Debug, Clone)]
pub struct DriftLab {
    config: DriftConfig,
    sim: Simulation<Event>,
    nodes: Vec<NodeState>,
    snapshots: Vec<Snapshot>,
    events: Vec<LabEvent>,
    next_round: u64,
    /// The current poll generation.
    epoch: Epoch,
    /// Keep at most about this many snapshots and events (the oldest go first); `None`
    /// keeps everything.
    history: Option<usize>,
    /// Every sync message as a send and a receive, clock jumps and backward steps as local
    /// events, at true time in ms; capped by [`TRACE_CAP`].
    trace: Trace,
    /// Sends and local events recorded so far (the cap counts these).
    traced: usize,
}

impl DriftLab {
    /// Builds the lab and schedules the first polls, samples and jumps.
    pub fn new(config: DriftConfig) -> Result<Self, DriftError> {
        config.validate()?;
        let link = LinkModel {
            latency: config.latency,
            loss: config.loss,
        };
        link.validate()?;
        let mut network = Network::new(link);
        for l in &config.links {
            network.set_latency(l.from, l.to, l.latency)?;
        }
        let n = config.clocks.len();
        let nodes = config
            .clocks
            .iter()
            .enumerate()
            .map(|(i, spec)| NodeState {
                clock: PhysicalClock::new(*spec),
                liar: config.liars.contains(&(i as NodeId)),
                round: None,
                filters: vec![ClockFilter::new(); n],
                poll: PollInterval::new(0, if config.adaptive_poll { 4 } else { 0 }),
                freq: FrequencyEstimator::new(),
                stats: NodeStats::default(),
                sum_sq: 0.0,
                judged_false_by: Vec::new(),
                hlc: Hlc::new(ManualClock::default(), HLC_MAX_OFFSET_MS),
                truetime: TrueTime::new(TT_BASE_MS, TT_DRIFT_BOUND, (spec.offset * 1e3).max(0.0))
                    .expect("constant, valid TrueTime parameters"),
            })
            .collect();
        let mut lab = Self {
            sim: Simulation::new(config.seed, network),
            config,
            nodes,
            snapshots: Vec::new(),
            events: Vec::new(),
            next_round: 0,
            epoch: 0,
            history: None,
            trace: Trace::new(),
            traced: 0,
        };
        for i in 0..n as NodeId {
            lab.trace.name_node(i, node_name(i));
        }
        lab.sim.schedule_at(SimTime::ZERO, Event::Sample);
        for j in lab.config.jumps.clone() {
            lab.sim.schedule_at(
                j.at,
                Event::Jump {
                    node: j.node,
                    delta: j.delta,
                },
            );
        }
        lab.schedule_polls();
        Ok(lab)
    }

    fn pollers(&self) -> Vec<NodeId> {
        let n = self.nodes.len() as NodeId;
        let leader = self.config.leader;
        match self.config.sync {
            SyncAlgorithm::None => Vec::new(),
            SyncAlgorithm::Berkeley => vec![leader],
            SyncAlgorithm::Cristian => (0..n).filter(|&i| i != leader).collect(),
            SyncAlgorithm::Ntp | SyncAlgorithm::FtAverage => (0..n).collect(),
        }
        .into_iter()
        .filter(|&i| !self.nodes[i as usize].liar)
        .collect()
    }

    fn schedule_polls(&mut self) {
        for node in self.pollers() {
            self.sim.schedule_in(
                self.config.interval,
                Event::Poll {
                    node,
                    epoch: self.epoch,
                },
            );
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &DriftConfig {
        &self.config
    }

    /// The current true time.
    pub fn now(&self) -> SimTime {
        self.sim.now()
    }

    /// Every snapshot so far (one per sample period).
    pub fn snapshots(&self) -> &[Snapshot] {
        &self.snapshots
    }

    /// Every lab event so far.
    pub fn events(&self) -> &[LabEvent] {
        &self.events
    }

    /// The run as a space-time trace: each sync message (poll request and response, Berkeley
    /// correction) a send and a receive, each jump and backward step a local event, at true
    /// time in ms. Only the first [`TRACE_CAP`] sends and local events are recorded.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Whether the trace has stopped recording new messages and steps ([`TRACE_CAP`]).
    pub fn trace_full(&self) -> bool {
        self.traced >= TRACE_CAP
    }

    fn true_ms(&self) -> f64 {
        self.sim.now().as_secs_f64() * 1e3
    }

    /// Records a send, unless the cap is reached.
    fn trace_send(&mut self, node: NodeId, label: String) -> Option<MessageId> {
        if self.trace_full() {
            return None;
        }
        self.traced += 1;
        let at = self.true_ms();
        Some(self.trace.send(node, at, label))
    }

    /// Records the receipt of a recorded message.
    fn trace_receive(&mut self, node: NodeId, msg: Option<MessageId>, label: String) {
        if let Some(msg) = msg {
            let at = self.true_ms();
            self.trace
                .receive(node, msg, at, label)
                .expect("each lab message is sent once and received once by another node");
        }
    }

    /// Records a local event, unless the cap is reached.
    fn trace_local(&mut self, node: NodeId, label: String) {
        if self.trace_full() {
            return;
        }
        self.traced += 1;
        let at = self.true_ms();
        self.trace.local(node, at, label);
    }

    /// The simulator's counters.
    pub fn sim_stats(&self) -> crate::sim::SimStats {
        self.sim.stats()
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the lab has no nodes (never true: at least two are required).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The chrony-like status of every node.
    pub fn node_stats(&self) -> Vec<NodeStats> {
        self.nodes
            .iter()
            .map(|n| NodeStats {
                offset: n.clock.offset(),
                true_frequency_ppm: n.clock.effective_rate_ppm(),
                liar: n.liar,
                ..n.stats
            })
            .collect()
    }

    /// Runs every event up to true time `until`, then records nothing more: snapshots fall on
    /// the sample period.
    pub fn run_until(&mut self, until: SimTime) {
        while self.sim.peek_time().is_some_and(|t| t <= until) {
            self.step();
        }
        if until > self.sim.now() {
            // Move the clock without events; clocks are advanced lazily when next read.
            self.sim.run_until(until, |_, _, _| {});
        }
    }

    /// Handles the next event. Returns its time, or `None` if nothing is pending.
    pub fn step(&mut self) -> Option<SimTime> {
        let (at, event) = self.sim.pop()?;
        self.handle(at, event);
        Some(at)
    }

    /// The skew and offsets right now (advancing every clock to the current time).
    pub fn snapshot_now(&mut self) -> Snapshot {
        let now = self.sim.now();
        for n in &mut self.nodes {
            n.clock.advance_to(now, self.sim.rng());
        }
        let clocks: Vec<f64> = self.nodes.iter().map(|n| n.clock.value()).collect();
        let offsets: Vec<f64> = self.nodes.iter().map(|n| n.clock.offset()).collect();
        let honest = offsets
            .iter()
            .zip(&self.nodes)
            .filter(|(_, n)| !n.liar)
            .map(|(o, _)| *o);
        let (lo, hi) = honest.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), o| {
            (lo.min(o), hi.max(o))
        });
        let skew = if hi >= lo { hi - lo } else { 0.0 };
        let true_ms = now.as_secs_f64() * 1e3;
        let mut hlc = Vec::with_capacity(self.nodes.len());
        let mut epsilon_ms = Vec::with_capacity(self.nodes.len());
        for n in &mut self.nodes {
            hlc.push(n.hlc_now());
            let interval = n.truetime.now(n.local_ms());
            if !(interval.earliest <= true_ms && true_ms <= interval.latest) {
                n.stats.truetime_misses += 1;
            }
            n.stats.epsilon_ms = interval.epsilon();
            epsilon_ms.push(interval.epsilon());
        }
        Snapshot {
            at: now,
            clocks,
            offsets,
            skew,
            hlc,
            epsilon_ms,
        }
    }

    /// Injects a jump of `delta` seconds into `node`'s clock now.
    pub fn inject_jump(&mut self, node: NodeId, delta: f64) -> Result<(), DriftError> {
        self.check_node(node)?;
        if !delta.is_finite() {
            return Err(DriftError::BadClock);
        }
        let now = self.sim.now();
        self.handle(now, Event::Jump { node, delta });
        Ok(())
    }

    /// Makes `node` a liar or honest again.
    pub fn set_liar(&mut self, node: NodeId, liar: bool) -> Result<(), DriftError> {
        self.check_node(node)?;
        if liar
            && node == self.config.leader
            && matches!(
                self.config.sync,
                SyncAlgorithm::Cristian | SyncAlgorithm::Berkeley
            )
        {
            return Err(DriftError::LyingLeader);
        }
        let was = self.nodes[node as usize].liar;
        self.nodes[node as usize].liar = liar;
        self.config.liars.retain(|&l| l != node);
        if liar {
            self.config.liars.push(node);
        } else if was && self.pollers().contains(&node) {
            // A reformed liar starts polling again.
            let epoch = self.epoch;
            self.sim
                .schedule_in(self.config.interval, Event::Poll { node, epoch });
        }
        Ok(())
    }

    /// Changes `node`'s drift, ppm (within ±1000).
    pub fn set_drift(&mut self, node: NodeId, ppm: f64) -> Result<(), DriftError> {
        self.check_node(node)?;
        if !ppm.is_finite() || ppm.abs() > 1000.0 {
            return Err(DriftError::BadClock);
        }
        let now = self.sim.now();
        let n = &mut self.nodes[node as usize];
        n.clock.advance_to(now, self.sim.rng());
        n.clock.set_drift_ppm(ppm);
        self.config.clocks[node as usize].drift_ppm = ppm;
        Ok(())
    }

    /// Sets the latency of every link to and from `node`.
    pub fn set_node_latency(&mut self, node: NodeId, latency: Latency) -> Result<(), DriftError> {
        self.check_node(node)?;
        for other in 0..self.nodes.len() as NodeId {
            if other != node {
                self.sim.network_mut().set_latency(node, other, latency)?;
                self.sim.network_mut().set_latency(other, node, latency)?;
            }
        }
        Ok(())
    }

    /// Switches the algorithm (takes effect at once: pending rounds are abandoned).
    pub fn set_sync(&mut self, sync: SyncAlgorithm) -> Result<(), DriftError> {
        let mut config = self.config.clone();
        config.sync = sync;
        config.validate()?;
        self.config = config;
        self.restart_polling();
        Ok(())
    }

    /// Changes the sync interval.
    pub fn set_interval(&mut self, interval: Duration) -> Result<(), DriftError> {
        if interval.is_zero() {
            return Err(DriftError::ZeroPeriod);
        }
        self.config.interval = interval;
        self.restart_polling();
        Ok(())
    }

    /// Bounds the history kept: past `limit`, the oldest snapshots and events are dropped
    /// (amortized: trimmed when twice the limit is reached). For long interactive runs.
    pub fn set_history_limit(&mut self, limit: usize) {
        self.history = Some(limit.max(1));
        self.trim_history();
    }

    fn trim_history(&mut self) {
        let Some(limit) = self.history else { return };
        if self.snapshots.len() >= 2 * limit {
            self.snapshots.drain(..self.snapshots.len() - limit);
        }
        if self.events.len() >= 2 * limit {
            self.events.drain(..self.events.len() - limit);
        }
    }

    /// Changes how often snapshots are taken (from the next one on).
    pub fn set_sample_every(&mut self, period: Duration) -> Result<(), DriftError> {
        if period.is_zero() {
            return Err(DriftError::ZeroPeriod);
        }
        self.config.sample_every = period;
        Ok(())
    }

    /// Changes `f`, how many values fault-tolerant averaging drops at each end, from its next
    /// round on (a page that marks a node a liar mid-run raises it to match).
    pub fn set_faults_tolerated(&mut self, f: usize) {
        self.config.faults_tolerated = f;
    }

    /// Changes how corrections are applied.
    pub fn set_adjust(&mut self, adjust: AdjustPolicy) {
        self.config.adjust = adjust;
    }

    fn restart_polling(&mut self) {
        // Abandon rounds (stale responses and deadlines no longer match) and old poll timers
        // (stale Poll events carry an old epoch).
        for n in &mut self.nodes {
            n.round = None;
            n.poll = PollInterval::new(0, if self.config.adaptive_poll { 4 } else { 0 });
        }
        self.epoch += 1;
        self.schedule_polls();
    }

    fn check_node(&self, node: NodeId) -> Result<(), DriftError> {
        if (node as usize) < self.nodes.len() {
            Ok(())
        } else {
            Err(DriftError::NoSuchNode(node))
        }
    }

    /// Summarizes the snapshots so far.
    pub fn summary(&self) -> Summary {
        let first_sync = SimTime::ZERO + self.config.interval;
        let max = |it: &mut dyn Iterator<Item = &Snapshot>| it.map(|s| s.skew).fold(0.0, f64::max);
        let stats = self.sim.stats();
        Summary {
            max_skew: max(&mut self.snapshots.iter()),
            max_skew_after_first_sync: max(&mut self
                .snapshots
                .iter()
                .filter(|s| s.at > first_sync)),
            final_skew: self.snapshots.last().map_or(0.0, |s| s.skew),
            backward_steps: self.nodes.iter().map(|n| n.stats.backward_steps).sum(),
            events: stats.events_processed,
            messages: stats.messages_sent,
        }
    }

    fn log(&mut self, kind: LabEventKind) {
        self.events.push(LabEvent {
            at: self.sim.now(),
            kind,
        });
    }

    fn read(&mut self, node: NodeId) -> f64 {
        let now = self.sim.now();
        let n = &mut self.nodes[node as usize];
        n.clock.advance_to(now, self.sim.rng());
        n.clock.timestamp(self.sim.rng())
    }

    /// What a liar answers `asker`: the asker's own clock pushed away from the honest median.
    fn lie_to(&mut self, asker: NodeId) -> f64 {
        let now = self.sim.now();
        let mut honest: Vec<f64> = Vec::new();
        for n in &mut self.nodes {
            n.clock.advance_to(now, self.sim.rng());
            if !n.liar {
                honest.push(n.clock.value());
            }
        }
        honest.sort_by(f64::total_cmp);
        let median = if honest.is_empty() {
            0.0
        } else if honest.len() % 2 == 1 {
            honest[honest.len() / 2]
        } else {
            (honest[honest.len() / 2 - 1] + honest[honest.len() / 2]) / 2.0
        };
        let own = self.nodes[asker as usize].clock.value();
        if own >= median {
            own + self.config.lie
        } else {
            own - self.config.lie
        }
    }

    fn apply(&mut self, node: NodeId, delta: f64) -> Adjustment {
        let now = self.sim.now();
        let policy = self.config.adjust;
        let n = &mut self.nodes[node as usize];
        n.clock.advance_to(now, self.sim.rng());
        let adjustment = n.clock.adjust(delta, policy);
        let local = n.local_ms();
        n.truetime.sync(local);
        n.stats.syncs += 1;
        n.stats.last_correction = Some(delta);
        n.sum_sq += delta * delta;
        n.stats.rms_correction = (n.sum_sq / n.stats.syncs as f64).sqrt();
        if let Adjustment::Stepped {
            direction: Direction::Backward,
            delta,
        } = adjustment
        {
            n.stats.backward_steps += 1;
            n.filters.iter_mut().for_each(ClockFilter::clear);
            self.log(LabEventKind::SteppedBack { node, by: -delta });
            self.trace_local(node, format!("stepped back {:.3} ms", -delta * 1e3));
        } else if matches!(adjustment, Adjustment::Stepped { .. }) {
            n.filters.iter_mut().for_each(ClockFilter::clear);
        }
        adjustment
    }

    fn handle(&mut self, _at: SimTime, event: Event) {
        match event {
            Event::Sample => {
                let s = self.snapshot_now();
                self.snapshots.push(s);
                self.trim_history();
                self.sim
                    .schedule_in(self.config.sample_every, Event::Sample);
            }
            Event::Jump { node, delta } => {
                self.read(node);
                let n = &mut self.nodes[node as usize];
                if n.clock.jump(delta) == Direction::Backward {
                    n.stats.backward_steps += 1;
                }
                n.filters.iter_mut().for_each(ClockFilter::clear);
                self.log(LabEventKind::Jump { node, delta });
                self.trace_local(node, format!("clock jumps {:+.3} s", delta));
            }
            Event::Poll { node, epoch } if epoch == self.epoch => self.start_round(node),
            Event::Poll { .. } => {}
            Event::Request {
                from,
                to,
                round,
                t1,
                hlc,
                msg,
            } => {
                self.trace_receive(to, msg, format!("poll from {}", node_name(from)));
                self.read(to);
                self.nodes[to as usize].hlc_receive(hlc);
                let (t2, t3) = if self.nodes[to as usize].liar {
                    let lie = self.lie_to(from);
                    (lie, lie)
                } else {
                    let t = self.read(to);
                    (t, t)
                };
                let hlc = self.nodes[to as usize].hlc_now();
                let msg = self.trace_send(to, format!("time to {}", node_name(from)));
                let reply = Event::Response {
                    server: to,
                    client: from,
                    round,
                    t1,
                    t2,
                    t3,
                    hlc,
                    msg,
                };
                self.sim.send(to, from, reply);
            }
            Event::Response {
                server,
                client,
                round,
                t1,
                t2,
                t3,
                hlc,
                msg,
            } => {
                self.trace_receive(client, msg, format!("time from {}", node_name(server)));
                let t4 = self.read(client);
                let n = &mut self.nodes[client as usize];
                n.hlc_receive(hlc);
                let Some(r) = n.round.as_mut().filter(|r| r.id == round) else {
                    return;
                };
                r.responses.push((server, Exchange { t1, t2, t3, t4 }));
                let complete = r.responses.len() == r.expected;
                if complete {
                    self.finish_round(client);
                }
            }
            Event::Deadline { node, round } => {
                if self.nodes[node as usize]
                    .round
                    .as_ref()
                    .is_some_and(|r| r.id == round)
                {
                    self.finish_round(node);
                }
            }
            Event::Correction {
                node,
                delta,
                hlc,
                msg,
            } => {
                self.trace_receive(node, msg, format!("delta {:+.3} ms", delta * 1e3));
                self.read(node);
                self.nodes[node as usize].hlc_receive(hlc);
                if self.nodes[node as usize].liar {
                    return;
                }
                let adjustment = self.apply(node, delta);
                self.log(LabEventKind::Correction {
                    node,
                    delta,
                    adjustment,
                });
            }
        }
    }

    fn start_round(&mut self, node: NodeId) {
        if self.nodes[node as usize].liar || !self.pollers().contains(&node) {
            return;
        }
        let targets: Vec<NodeId> = match self.config.sync {
            SyncAlgorithm::None => return,
            SyncAlgorithm::Cristian => vec![self.config.leader],
            _ => (0..self.nodes.len() as NodeId)
                .filter(|&p| p != node)
                .collect(),
        };
        self.next_round += 1;
        let id = self.next_round;
        self.nodes[node as usize].round = Some(PendingRound {
            id,
            expected: targets.len(),
            responses: Vec::new(),
        });
        for to in targets {
            let t1 = self.read(node);
            let hlc = self.nodes[node as usize].hlc_now();
            let msg = self.trace_send(node, format!("poll {}", node_name(to)));
            self.sim.send(
                node,
                to,
                Event::Request {
                    from: node,
                    to,
                    round: id,
                    t1,
                    hlc,
                    msg,
                },
            );
        }
        let timeout = (self.config.interval / 2).min(Duration::from_secs(1));
        self.sim
            .schedule_in(timeout, Event::Deadline { node, round: id });
        let period = match self.config.sync {
            SyncAlgorithm::Ntp => self
                .config
                .interval
                .mul_f64(self.nodes[node as usize].poll.seconds()),
            _ => self.config.interval,
        };
        let epoch = self.epoch;
        self.sim.schedule_in(period, Event::Poll { node, epoch });
    }

    fn finish_round(&mut self, node: NodeId) {
        let Some(round) = self.nodes[node as usize].round.take() else {
            return;
        };
        match self.config.sync {
            SyncAlgorithm::None => {}
            SyncAlgorithm::Cristian => self.finish_cristian(node, round),
            SyncAlgorithm::Berkeley => self.finish_berkeley(node, round),
            SyncAlgorithm::Ntp => self.finish_ntp(node, round),
            SyncAlgorithm::FtAverage => self.finish_ft(node, round),
        }
    }

    fn no_sync(&mut self, node: NodeId, reason: String) {
        self.log(LabEventKind::NoSync { node, reason });
    }

    fn finish_cristian(&mut self, node: NodeId, round: PendingRound) {
        let Some(&(server, x)) = round.responses.first() else {
            return self.no_sync(node, "the time server did not answer in time".into());
        };
        let sample = CristianSample {
            t0: x.t1,
            server_time: x.t3,
            t1: x.t4,
        };
        let now = self.sim.now();
        for id in [node, server] {
            self.nodes[id as usize]
                .clock
                .advance_to(now, self.sim.rng());
        }
        let true_offset =
            self.nodes[server as usize].clock.value() - self.nodes[node as usize].clock.value();
        self.nodes[node as usize].stats.rtt = Some(sample.rtt());
        let adjustment = self.apply(node, sample.offset());
        self.log(LabEventKind::Cristian {
            node,
            server,
            sample,
            true_offset,
            adjustment,
        });
    }

    fn finish_berkeley(&mut self, leader: NodeId, round: PendingRound) {
        let reports: Vec<berkeley::Report> = round
            .responses
            .iter()
            .map(|&(n, x)| berkeley::Report {
                node: n,
                t0: x.t1,
                reported: x.t3,
                t1: x.t4,
            })
            .collect();
        if reports.is_empty() {
            return self.no_sync(leader, "no node answered the poll".into());
        }
        let leader_clock = self.read(leader);
        let result = berkeley::round(leader, &reports, self.config.outlier_threshold);
        for e in &result.estimates {
            self.nodes[e.node as usize].stats.rtt = Some(e.rtt);
        }
        let mut adjustment = None;
        for &(n, delta) in &result.deltas {
            if n == leader {
                adjustment = Some(self.apply(leader, delta));
            } else {
                let hlc = self.nodes[leader as usize].hlc_now();
                let msg = self.trace_send(
                    leader,
                    format!("delta {:+.3} ms to {}", delta * 1e3, node_name(n)),
                );
                self.sim.send(
                    leader,
                    n,
                    Event::Correction {
                        node: n,
                        delta,
                        hlc,
                        msg,
                    },
                );
            }
        }
        let adjustment = adjustment.unwrap_or(Adjustment::Slewing {
            delta: 0.0,
            duration: 0.0,
        });
        self.log(LabEventKind::Berkeley {
            round: result,
            leader_clock,
            adjustment,
        });
    }

    fn finish_ntp(&mut self, node: NodeId, round: PendingRound) {
        let local_now = self.read(node);
        let correction = self.nodes[node as usize].clock.total_correction();
        {
            let n = &mut self.nodes[node as usize];
            for &(peer, x) in &round.responses {
                // Store offsets as if uncorrected, so later local corrections do not make
                // older samples stale (they are re-based on read below).
                let mut s = x.sample(PRECISION);
                s.offset += correction;
                n.filters[peer as usize].push(s);
            }
        }
        let mut candidates: Vec<(NodeId, ntp::Sample, f64)> = Vec::new();
        for (peer, f) in self.nodes[node as usize].filters.iter().enumerate() {
            if let Some(mut best) = f.best() {
                best.offset -= correction;
                candidates.push((peer as NodeId, best, f.jitter()));
            }
        }
        let intervals: Vec<Interval> = candidates
            .iter()
            .map(|(_, s, _)| s.interval_at(local_now))
            .collect();
        let selection = match marzullo::select(&intervals) {
            Ok(s) => s,
            Err(e) => return self.no_sync(node, format!("marzullo: {e}")),
        };
        let peers: Vec<PeerView> = candidates
            .iter()
            .zip(&selection.verdicts)
            .map(|((peer, s, _), chimer)| PeerView {
                peer: *peer,
                offset: s.offset,
                delay: s.delay,
                distance: s.distance_at(local_now),
                chimer: *chimer,
            })
            .collect();
        for p in &peers {
            let judged = &mut self.nodes[p.peer as usize].judged_false_by;
            judged.retain(|&j| j != node);
            if p.chimer == Chimer::Falseticker {
                judged.push(node);
            }
            let verdict = if judged.is_empty() {
                Chimer::Truechimer
            } else {
                Chimer::Falseticker
            };
            self.nodes[p.peer as usize].stats.verdict = Some(verdict);
        }
        let survivors: Vec<(f64, f64)> = peers
            .iter()
            .filter(|p| p.chimer == Chimer::Truechimer)
            .map(|p| (p.offset, p.distance))
            .collect();
        // A node is one of the ensemble too: its own clock (offset 0, distance of its
        // precision) weighs in, as a local reference does in ntpd's orphan mode.
        let mut with_self = survivors.clone();
        with_self.push((0.0, selection_distance(&survivors)));
        let Some(combined) = ntp::combine(&with_self) else {
            return self.no_sync(node, "no truechimer".into());
        };
        let jitter = {
            let js: Vec<f64> = candidates
                .iter()
                .zip(&selection.verdicts)
                .filter(|(_, c)| **c == Chimer::Truechimer)
                .map(|((_, _, j), _)| *j)
                .collect();
            js.iter().sum::<f64>() / js.len().max(1) as f64
        };
        {
            let n = &mut self.nodes[node as usize];
            n.freq.push(local_now, combined + correction);
            n.stats.frequency_ppm = n.freq.ppm();
            n.stats.rtt = peers.iter().map(|p| p.delay).reduce(f64::min);
            n.stats.dispersion = Some(selection.interval.hi - selection.interval.midpoint());
            n.poll.update(combined, jitter.max(PRECISION));
            n.stats.poll = self.config.interval.as_secs_f64() * n.poll.seconds();
        }
        let adjustment = self.apply(node, combined);
        let poll = self.nodes[node as usize].stats.poll;
        self.log(LabEventKind::Ntp {
            node,
            peers,
            interval: selection.interval,
            combined,
            adjustment,
            poll,
        });
    }

    fn finish_ft(&mut self, node: NodeId, round: PendingRound) {
        let mut values: Vec<(NodeId, f64)> = vec![(node, 0.0)];
        values.extend(round.responses.iter().map(|&(peer, x)| (peer, x.offset())));
        let rtt = round
            .responses
            .iter()
            .map(|(_, x)| x.delay())
            .reduce(f64::min);
        self.nodes[node as usize].stats.rtt = rtt;
        let plain: Vec<f64> = values.iter().map(|v| v.1).collect();
        let result = match fault_tolerant_average(&plain, self.config.faults_tolerated) {
            Ok(r) => r,
            Err(e) => return self.no_sync(node, e.to_string()),
        };
        let adjustment = self.apply(node, result.value);
        self.log(LabEventKind::FtAverage {
            node,
            values,
            result,
            adjustment,
        });
    }
}

/// The weight of a node's own clock among its NTP survivors: as uncertain as the worst of
/// them, so it damps but never dominates the correction.
fn selection_distance(survivors: &[(f64, f64)]) -> f64 {
    survivors.iter().map(|s| s.1).fold(PRECISION, f64::max)
}

fn signed(v: f64) -> String {
    format!("{}{:.3}s", if v < 0.0 { "-" } else { "+" }, v.abs())
}

fn signed_ms(v: f64) -> String {
    format!("{}{:.3}ms", if v < 0.0 { "-" } else { "+" }, v.abs() * 1e3)
}

fn ms(v: f64) -> String {
    format!("{:.1}ms", v * 1e3)
}

fn describe_adjustment(a: &Adjustment) -> String {
    match *a {
        Adjustment::Stepped {
            delta,
            direction: Direction::Backward,
        } => {
            format!("stepped BACK by {} (clock went backwards)", ms(-delta))
        }
        Adjustment::Stepped { delta, .. } => format!("stepped forward by {}", ms(delta)),
        Adjustment::Slewing { delta, duration } => {
            format!("slewing {} over {:.1}s", ms(delta), duration)
        }
    }
}

impl LabEvent {
    /// A human explanation of the event, one line per item (the CLI's sync blocks and the
    /// browser's log).
    pub fn describe(&self) -> Vec<String> {
        let n = |id: NodeId| node_name(id);
        match &self.kind {
            LabEventKind::Cristian { node, server, sample, true_offset, adjustment } => vec![
                format!("⟳ SYNC EVENT (Cristian) — Node {} asks time server {}", n(*node), n(*server)),
                format!(
                    "- Server says {:.3}s, RTT {}: estimate {:.3}s + {} = offset {} (true {}, error {} ≤ RTT/2 {})",
                    sample.server_time,
                    ms(sample.rtt()),
                    sample.server_time,
                    ms(sample.rtt() / 2.0),
                    signed(sample.offset()),
                    signed(*true_offset),
                    ms((sample.offset() - true_offset).abs()),
                    ms(sample.rtt() / 2.0)
                ),
                format!("- Node {}: {}", n(*node), describe_adjustment(adjustment)),
            ],
            LabEventKind::Berkeley { round, leader_clock, adjustment } => {
                let mut lines = vec![
                    "⟳ SYNC EVENT (Berkeley Algorithm)".to_string(),
                    format!("- Leader (Node {}) requests timestamps from all nodes", n(round.leader)),
                ];
                for e in &round.estimates {
                    let reported = e.adjusted - e.rtt / 2.0;
                    lines.push(format!(
                        "- Node {} reports: {:.3}s (RTT: {}, adjusted: {:.3} + {:.3} = {:.3}s){}",
                        n(e.node),
                        reported,
                        ms(e.rtt),
                        reported,
                        e.rtt / 2.0,
                        e.adjusted,
                        if e.verdict == berkeley::Verdict::Outlier { " — OUTLIER, not averaged" } else { "" }
                    ));
                }
                lines.push(format!(
                    "- Computed average: {:.3}s (leader clock {:.3}s, average offset {})",
                    leader_clock + round.average_offset,
                    leader_clock,
                    signed(round.average_offset)
                ));
                let deltas: Vec<String> =
                    round.deltas.iter().map(|(id, d)| format!("{}: {}", n(*id), signed(*d))).collect();
                lines.push(format!("- Sending adjustments: {}", deltas.join(", ")));
                lines.push(format!("- Leader {}: {}", n(round.leader), describe_adjustment(adjustment)));
                lines
            }
            LabEventKind::Correction { node, delta, adjustment } => vec![format!(
                "- Node {} receives delta {}: {}",
                n(*node),
                signed(*delta),
                describe_adjustment(adjustment)
            )],
            LabEventKind::Ntp { node, peers, interval, combined, adjustment, poll } => {
                let mut lines = vec![format!("⟳ SYNC EVENT (NTP) — Node {}", n(*node))];
                for p in peers {
                    lines.push(format!(
                        "- peer {}: offset {} delay {} distance {} → {}",
                        n(p.peer),
                        signed_ms(p.offset),
                        ms(p.delay),
                        ms(p.distance),
                        match p.chimer {
                            Chimer::Truechimer => "truechimer",
                            Chimer::Falseticker => "FALSETICKER",
                        }
                    ));
                }
                lines.push(format!(
                    "- Marzullo: [{}, {}]; combined offset {}; next poll {:.0}s",
                    signed_ms(interval.lo),
                    signed_ms(interval.hi),
                    signed_ms(*combined),
                    poll
                ));
                lines.push(format!("- Node {}: {}", n(*node), describe_adjustment(adjustment)));
                lines
            }
            LabEventKind::FtAverage { node, values, result, adjustment } => {
                let vs: Vec<String> =
                    values.iter().map(|(id, v)| format!("{}: {}", n(*id), signed(*v))).collect();
                vec![
                    format!("⟳ SYNC EVENT (fault-tolerant average) — Node {}", n(*node)),
                    format!("- offsets seen: {}", vs.join(", ")),
                    format!(
                        "- kept [{}, {}], average {}{}",
                        signed(result.lowest_kept),
                        signed(result.highest_kept),
                        signed(result.value),
                        match result.resilience {
                            crate::sync::ft_average::Resilience::Byzantine => String::new(),
                            crate::sync::ft_average::Resilience::Insufficient { needed } => format!(
                                " — WARNING: n = {} < 3f+1 = {needed}, liars can defeat this",
                                values.len()
                            ),
                        }
                    ),
                    format!("- Node {}: {}", n(*node), describe_adjustment(adjustment)),
                ]
            }
            LabEventKind::NoSync { node, reason } => {
                vec![format!("- Node {} keeps its local time: {reason}", n(*node))]
            }
            LabEventKind::Jump { node, delta } => {
                vec![format!("⚡ Node {}'s clock jumps {}", n(*node), signed(*delta))]
            }
            LabEventKind::SteppedBack { node, by } => vec![format!(
                "⚠ Node {}'s clock was stepped BACK by {}: timestamps after this can be smaller than before",
                n(*node),
                ms(*by)
            )],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3600;

    fn run(config: DriftConfig, secs: u64) -> DriftLab {
        let mut lab = DriftLab::new(config).unwrap();
        lab.run_until(SimTime::from_secs(secs));
        lab
    }

    fn at(lab: &DriftLab, secs: u64) -> &Snapshot {
        lab.snapshots()
            .iter()
            .find(|s| s.at == SimTime::from_secs(secs))
            .unwrap()
    }

    #[test]
    fn without_sync_skew_grows_linearly_with_the_drift_difference() {
        let mut c = DriftConfig::new(2, 50.0);
        c.sync = SyncAlgorithm::None;
        c.sample_every = Duration::from_secs(HOUR);
        let lab = run(c, 24 * HOUR);
        // 50 ppm × 86 400 s = 4.32 s/day; half a day, half of it.
        assert!((at(&lab, 24 * HOUR).skew - 4.32).abs() < 1e-6);
        assert!((at(&lab, 12 * HOUR).skew - 2.16).abs() < 1e-6);
        assert!((at(&lab, HOUR).skew - 0.18).abs() < 1e-6);
    }

    /// The Berkeley bound. One-way delays lie in [d_min, d_max] = [5, 15] ms, so a report
    /// compensated by RTT/2 is off by at most (d_max − d_min)/2 = 5 ms (half the asymmetry);
    /// the leader's own offset is exact. After a round each node sits at (average − its
    /// estimation error), so two nodes differ by at most 2 × 5 ms = 10 ms. Corrections are
    /// deltas, so their delivery delay only adds drift during it (15 ms × 50 ppm < 1 µs).
    /// Before the next round the clocks drift apart by at most Δρ·P = 50 ppm × 20 s = 1 ms.
    /// Bound: 10 ms + 1 ms (+ 10 µs for drift during round trips) = 11.01 ms.
    #[test]
    fn berkeley_keeps_the_skew_under_the_derived_bound() {
        let bound = 0.010 + 50e-6 * 20.0 + 1e-5;
        for seed in 1..=5 {
            let mut c = DriftConfig::new(3, 50.0);
            c.adjust = AdjustPolicy::Step;
            c.sample_every = Duration::from_millis(500);
            c.seed = seed;
            let lab = run(c, HOUR);
            let s = lab.summary();
            assert!(s.max_skew_after_first_sync <= bound, "seed {seed}: {s:?}");
            // Without sync the same clocks would be 180 ms apart after an hour.
            assert!(s.final_skew < bound);
        }
    }

    #[test]
    fn cristian_errors_stay_within_half_the_rtt() {
        let mut c = DriftConfig::new(4, 50.0);
        c.sync = SyncAlgorithm::Cristian;
        c.latency = Latency::Uniform {
            min: Duration::from_millis(1),
            max: Duration::from_millis(40),
        };
        let lab = run(c, HOUR);
        let mut seen = 0;
        for e in lab.events() {
            if let LabEventKind::Cristian {
                sample,
                true_offset,
                ..
            } = &e.kind
            {
                assert!((sample.offset() - true_offset).abs() <= sample.rtt() / 2.0);
                seen += 1;
            }
        }
        // Three clients poll at 20 s, 40 s, …, 3600 s; the last exchange ends after the run.
        assert_eq!(seen, 3 * (HOUR / 20 - 1) as usize);
    }

    /// An asymmetric path: requests 1 → 0 take 5 ms, replies 0 → 1 take 45 ms. Cristian
    /// assumes half the 50 ms round trip each way, so the client ends up (45 − 5) / 2 = 20 ms
    /// behind the server; NTP, which makes the same assumption, is off by the same amount.
    #[test]
    fn an_asymmetric_link_biases_the_estimate_by_half_the_asymmetry() {
        for sync in [SyncAlgorithm::Cristian, SyncAlgorithm::Ntp] {
            let mut c = DriftConfig::new(2, 0.0);
            c.sync = sync;
            c.adjust = AdjustPolicy::Step;
            c.latency = Latency::Constant(Duration::from_millis(5));
            let symmetric = run(c.clone(), 600).summary().final_skew;
            c.links = vec![LinkLatency {
                from: 0,
                to: 1,
                latency: Latency::Constant(Duration::from_millis(45)),
            }];
            let lab = run(c, 600);
            let skew = lab.summary().final_skew;
            assert!(symmetric < 1e-3, "{sync:?} symmetric: {symmetric}");
            assert!((skew - 0.020).abs() < 1e-3, "{sync:?} asymmetric: {skew}");
            let last = lab.snapshots().last().unwrap();
            assert!(last.clocks[1] < last.clocks[0], "the client is behind");
        }
        let mut c = DriftConfig::new(2, 0.0);
        c.links = vec![LinkLatency {
            from: 1,
            to: 1,
            latency: Latency::Constant(Duration::from_millis(1)),
        }];
        assert_eq!(
            DriftLab::new(c.clone()).unwrap_err(),
            DriftError::SelfLink(1)
        );
        c.links[0].to = 2;
        assert_eq!(DriftLab::new(c).unwrap_err(), DriftError::NoSuchNode(2));
    }

    #[test]
    fn ntp_flags_a_lying_peer_as_a_falseticker() {
        let mut c = DriftConfig::new(5, 50.0);
        c.sync = SyncAlgorithm::Ntp;
        c.liars = vec![4];
        let lab = run(c, HOUR);
        let stats = lab.node_stats();
        assert_eq!(stats[4].verdict, Some(Chimer::Falseticker));
        assert!(stats[..4]
            .iter()
            .all(|s| s.verdict == Some(Chimer::Truechimer)));
        let s = lab.summary();
        assert!(s.max_skew_after_first_sync < 0.020, "{s:?}");
    }

    fn ft(nodes: usize, liar: NodeId, drifts: &[f64]) -> DriftLab {
        let mut c = DriftConfig::new(nodes, 0.0);
        for (spec, d) in c.clocks.iter_mut().zip(drifts) {
            spec.drift_ppm = *d;
        }
        c.sync = SyncAlgorithm::FtAverage;
        c.adjust = AdjustPolicy::Step;
        c.liars = vec![liar];
        c.faults_tolerated = 1;
        run(c, HOUR)
    }

    /// n = 4, f = 1: each honest node drops the highest and lowest of its 4 values and
    /// averages the middle two, which lie within the honest range, so a round at least halves
    /// the honest diameter D, up to the reading error (each estimate off by ≤ 5 ms, two
    /// estimates in a difference: 10 ms), and the drift adds Δρ·P = 1 ms per period. The
    /// fixed point of D ≤ D/2 + 10 ms + 1 ms is 22 ms.
    /// n = 3, f = 1: the two-faced liar makes each honest node's median its own value, so
    /// nobody moves and the skew grows like unsynchronized clocks: 50 ppm × 1 h = 180 ms.
    #[test]
    fn fault_tolerant_average_holds_with_4_nodes_and_breaks_with_3() {
        let held = ft(4, 3, &[-25.0, 0.0, 25.0, 0.0]);
        let s = held.summary();
        assert!(s.max_skew <= 0.022, "n=4: {s:?}");
        let broken = ft(3, 2, &[-25.0, 25.0, 0.0]);
        let s = broken.summary();
        assert!(s.final_skew > 0.022 * 5.0, "n=3: {s:?}");
        // It grows like free-running clocks: at least 90% of 180 ms.
        assert!(s.final_skew > 0.9 * 50e-6 * HOUR as f64, "n=3: {s:?}");
    }

    #[test]
    fn slewing_never_moves_a_clock_backwards_and_stepping_does_and_says_so() {
        let mut c = DriftConfig::new(5, 200.0);
        c.sample_every = Duration::from_millis(250);
        c.jumps = vec![JumpAt {
            at: SimTime::from_secs(100),
            node: 2,
            delta: 0.05,
        }];
        let slewed = run(c.clone(), 600);
        for node in 0..5 {
            let values: Vec<f64> = slewed.snapshots().iter().map(|s| s.clocks[node]).collect();
            assert!(
                values.windows(2).all(|w| w[1] >= w[0]),
                "node {node} went backwards"
            );
        }
        assert_eq!(slewed.summary().backward_steps, 0);
        assert!(!slewed
            .events()
            .iter()
            .any(|e| matches!(e.kind, LabEventKind::SteppedBack { .. })));

        c.adjust = AdjustPolicy::Step;
        let stepped = run(c, 600);
        let backs = stepped
            .events()
            .iter()
            .filter(|e| matches!(e.kind, LabEventKind::SteppedBack { .. }))
            .count();
        assert!(backs > 0);
        assert_eq!(stepped.summary().backward_steps, backs as u64);
        assert!(stepped
            .events()
            .iter()
            .any(|e| e.describe()[0].contains("stepped BACK")));
    }

    #[test]
    fn runs_are_reproducible_from_the_seed() {
        let mut c = DriftConfig::new(6, 80.0);
        c.sync = SyncAlgorithm::Ntp;
        c.latency = Latency::Normal {
            mean: Duration::from_millis(10),
            std_dev: Duration::from_millis(3),
        };
        let a = run(c.clone(), 600);
        let b = run(c.clone(), 600);
        assert_eq!(a.snapshots(), b.snapshots());
        assert_eq!(a.events(), b.events());
        c.seed = 2;
        assert_ne!(run(c, 600).snapshots(), a.snapshots());
    }

    #[test]
    fn bad_configurations_are_refused() {
        assert_eq!(
            DriftLab::new(DriftConfig::new(1, 50.0)).err(),
            Some(DriftError::NodeCount(1))
        );
        let mut c = DriftConfig::new(3, 50.0);
        c.liars = vec![0];
        assert_eq!(
            DriftLab::new(c.clone()).err(),
            Some(DriftError::LyingLeader)
        );
        c.liars = vec![7];
        assert_eq!(
            DriftLab::new(c.clone()).err(),
            Some(DriftError::NoSuchNode(7))
        );
        c.liars.clear();
        c.loss = 2.0;
        assert_eq!(
            DriftLab::new(c).err(),
            Some(DriftError::Network(NetworkError::BadLoss(2.0)))
        );
        let mut lab = DriftLab::new(DriftConfig::new(3, 50.0)).unwrap();
        assert_eq!(lab.set_liar(0, true), Err(DriftError::LyingLeader));
        assert_eq!(lab.set_drift(1, f64::NAN), Err(DriftError::BadClock));
        assert_eq!(lab.inject_jump(9, 1.0), Err(DriftError::NoSuchNode(9)));
    }

    /// A backward jump makes the physical clock go back; the node's HLC, stamped at every
    /// sample and merged on every message, never does.
    #[test]
    fn hlc_stays_monotonic_through_a_backward_jump() {
        let mut c = DriftConfig::new(3, 50.0);
        c.sample_every = Duration::from_millis(500);
        c.jumps = vec![JumpAt {
            at: SimTime::from_millis(30_250),
            node: 1,
            delta: -2.0,
        }];
        let lab = run(c, 120);
        let physical: Vec<f64> = lab.snapshots().iter().map(|s| s.clocks[1]).collect();
        assert!(
            physical.windows(2).any(|w| w[1] < w[0] - 1.4),
            "the jump went backwards"
        );
        for node in 0..3 {
            let hlc: Vec<HlcTimestamp> = lab.snapshots().iter().map(|s| s.hlc[node]).collect();
            assert!(
                hlc.windows(2).all(|w| w[1] > w[0]),
                "node {node}'s HLC went backwards"
            );
        }
        // Right after the jump B's HLC still reads about 30.0 s (its last reading before the
        // jump), while its physical clock reads 28.5 s.
        let after = lab
            .snapshots()
            .iter()
            .find(|s| s.at == SimTime::from_millis(30_500))
            .unwrap();
        assert!(after.hlc[1].physical_ms() >= 29_900, "{}", after.hlc[1]);
        assert!(after.clocks[1] < 28.6);
    }

    /// TrueTime's ε = 1 ms + 200 µs/s since the last sync: a sawtooth that peaks at
    /// 1 + 0.2 × 20 = 5 ms just before each Berkeley round (every 20 s) and falls back to
    /// about 1 ms right after it.
    #[test]
    fn truetime_uncertainty_grows_between_syncs_and_drops_at_each() {
        let mut c = DriftConfig::new(3, 50.0);
        c.sample_every = Duration::from_millis(100);
        let lab = run(c, 100);
        let eps = |tenths: u64| {
            let at = SimTime::from_millis(tenths * 100);
            lab.snapshots()
                .iter()
                .find(|s| s.at == at)
                .unwrap()
                .epsilon_ms[1]
        };
        assert!((eps(10) - 1.2).abs() < 0.01, "{}", eps(10));
        for k in 1..4u64 {
            let before = eps(200 * k - 1); // 0.1 s before the round
            let after = eps(200 * k + 5); // 0.5 s after the round
            assert!((before - 4.98).abs() < 0.01, "round {k}: {before}");
            assert!(after < 1.2, "round {k}: {after}");
            assert!(eps(200 * k + 100) > after, "grows again");
        }
    }

    #[test]
    fn the_history_limit_bounds_memory() {
        let mut lab = DriftLab::new(DriftConfig::new(3, 50.0)).unwrap();
        lab.set_history_limit(10);
        lab.run_until(SimTime::from_secs(1000));
        assert!((10..20).contains(&lab.snapshots().len()));
        assert!(lab.events().len() < 20);
        assert_eq!(lab.snapshots().last().unwrap().at, SimTime::from_secs(1000));
    }

    /// Berkeley with 3 nodes every 20 s over a 70 s run: rounds at 20, 40 and 60 s. Each
    /// round is 2 polls, 2 answers and 2 corrections (the leader corrects itself locally):
    /// 6 messages, all delivered within 45 ms (3 × 15 ms), so 18 sends and 18 receives.
    #[test]
    fn a_berkeley_run_records_a_legal_trace_of_its_messages() {
        let mut c = DriftConfig::new(3, 50.0);
        c.jumps = vec![JumpAt {
            at: SimTime::from_secs(30),
            node: 2,
            delta: -0.5,
        }];
        let lab = run(c, 70);
        let trace = lab.trace();
        assert!(crate::trace::validate(trace).is_empty());
        let count = |f: fn(&crate::trace::EventKind) -> bool| {
            trace.events().iter().filter(|e| f(&e.kind)).count()
        };
        use crate::trace::EventKind as K;
        assert_eq!(count(|k| matches!(k, K::Send { .. })), 18);
        assert_eq!(count(|k| matches!(k, K::Receive { .. })), 18);
        // The jump (slewing: no backward step from corrections).
        assert_eq!(count(|k| matches!(k, K::Local)), 1);
        assert_eq!(trace.node_name(0), "A");
        // Every receive is at a later true time than its send.
        for edge in trace.message_edges() {
            let at = |id| trace.event(id).unwrap().physical_ms.unwrap();
            assert!(at(edge.receive) > at(edge.send));
        }
        assert!(!lab.trace_full());
    }

    #[test]
    fn the_trace_stops_growing_at_its_cap_and_stays_legal() {
        let mut c = DriftConfig::new(4, 50.0);
        c.sync = SyncAlgorithm::Ntp;
        c.adaptive_poll = false;
        c.interval = Duration::from_secs(1);
        let lab = run(c, 600);
        assert!(lab.trace_full());
        let trace = lab.trace();
        let sends_and_locals = trace
            .events()
            .iter()
            .filter(|e| !matches!(e.kind, crate::trace::EventKind::Receive { .. }))
            .count();
        assert_eq!(sends_and_locals, TRACE_CAP);
        assert!(trace.len() <= 2 * TRACE_CAP);
        assert!(crate::trace::validate(trace).is_empty());
    }

    #[test]
    fn faults_tolerated_changes_from_the_next_round() {
        use crate::sync::ft_average::Resilience;
        let mut c = DriftConfig::new(5, 50.0);
        c.sync = SyncAlgorithm::FtAverage;
        c.faults_tolerated = 1;
        let mut lab = DriftLab::new(c).unwrap();
        lab.run_until(SimTime::from_secs(120));
        let changed = lab.now();
        lab.set_liar(3, true).unwrap();
        lab.set_liar(2, true).unwrap();
        lab.set_faults_tolerated(2);
        lab.run_until(SimTime::from_secs(300));
        let resilience = |after: bool| -> Vec<Resilience> {
            lab.events()
                .iter()
                .filter(|e| (e.at > changed) == after)
                .filter_map(|e| match &e.kind {
                    LabEventKind::FtAverage { result, .. } => Some(result.resilience),
                    _ => None,
                })
                .collect()
        };
        let (before, after) = (resilience(false), resilience(true));
        assert!(!before.is_empty() && !after.is_empty());
        // n = 5 tolerates f = 1 (3f + 1 = 4), not f = 2 (needs 7).
        assert!(
            before.iter().all(|r| *r == Resilience::Byzantine),
            "{before:?}"
        );
        assert!(
            after
                .iter()
                .all(|r| *r == Resilience::Insufficient { needed: 7 }),
            "{after:?}"
        );
    }

    #[test]
    fn live_changes_take_effect() {
        let mut lab = DriftLab::new(DriftConfig::new(3, 50.0)).unwrap();
        lab.run_until(SimTime::from_secs(60));
        lab.set_sync(SyncAlgorithm::None).unwrap();
        lab.inject_jump(1, 2.0).unwrap();
        lab.run_until(SimTime::from_secs(200));
        let skew = lab.snapshots().last().unwrap().skew;
        assert!(skew > 2.0, "a 2 s jump without sync stays: {skew}");
        lab.set_sync(SyncAlgorithm::Berkeley).unwrap();
        lab.set_adjust(AdjustPolicy::Step);
        lab.run_until(SimTime::from_secs(400));
        assert!(lab.snapshots().last().unwrap().skew < 0.02);
    }
}
