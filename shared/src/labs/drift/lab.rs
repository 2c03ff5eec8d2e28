//! A running drift lab: the nodes with their physical clocks, HLCs and TrueTime intervals on
//! the simulator, the events that move them (polls, answers, corrections, samples, jumps) and
//! the live setters the CLI and tests use.

use std::time::Duration;

use super::records::{LabEvent, LabEventKind, NodeStats, Snapshot, Summary};
use super::{
    node_name, DriftConfig, DriftError, SyncAlgorithm, HLC_MAX_OFFSET_MS, TRACE_CAP, TT_BASE_MS,
    TT_DRIFT_BOUND,
};
use crate::{
    clocks::hlc::{Hlc, HlcTimestamp, ManualClock},
    clocks::physical_clock::{AdjustPolicy, Adjustment, Direction, PhysicalClock},
    clocks::truetime::TrueTime,
    sim::{Latency, LinkModel, Network, SimTime, Simulation},
    sync::ntp::{ClockFilter, Exchange, FrequencyEstimator, PollInterval},
    trace::{MessageId, Trace},
    NodeId,
};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Event {
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

impl Event {
    /// The event in words, for the frame's single step.
    fn describe(&self) -> String {
        let n = |id: NodeId| node_name(id);
        match self {
            Event::Poll { node, .. } => format!("node {} starts a sync round", n(*node)),
            Event::Request { from, to, .. } => {
                format!("{}'s time request reaches {}", n(*from), n(*to))
            }
            Event::Response { server, client, .. } => {
                format!("{}'s answer reaches {}", n(*server), n(*client))
            }
            Event::Deadline { node, .. } => format!("node {}'s round times out", n(*node)),
            Event::Correction { node, delta, .. } => format!(
                "a correction of {:+.3} ms reaches node {}",
                delta * 1e3,
                n(*node)
            ),
            Event::Sample => "every clock is sampled".to_owned(),
            Event::Jump { node, delta } => format!("node {}'s clock jumps {delta:+} s", n(*node)),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct PendingRound {
    pub(super) id: u64,
    pub(super) expected: usize,
    pub(super) responses: Vec<(NodeId, Exchange)>,
}

#[derive(Debug, Clone)]
pub(super) struct NodeState {
    pub(super) clock: PhysicalClock,
    pub(super) liar: bool,
    pub(super) round: Option<PendingRound>,
    pub(super) filters: Vec<ClockFilter>,
    pub(super) poll: PollInterval,
    pub(super) freq: FrequencyEstimator,
    pub(super) stats: NodeStats,
    pub(super) sum_sq: f64,
    pub(super) judged_false_by: Vec<NodeId>,
    pub(super) hlc: Hlc<ManualClock>,
    pub(super) truetime: TrueTime,
}

impl NodeState {
    /// The physical clock in ms, as the HLC and TrueTime read it.
    pub(super) fn local_ms(&self) -> f64 {
        (self.clock.value() * 1e3).max(0.0)
    }

    pub(super) fn feed_hlc(&mut self) {
        self.hlc.clock_mut().now_ms = self.local_ms() as u64;
    }

    /// A send or local event: the next HLC timestamp.
    pub(super) fn hlc_now(&mut self) -> HlcTimestamp {
        self.feed_hlc();
        let t = self.hlc.now();
        self.stats.hlc = Some(t);
        t
    }

    /// A receive event.
    pub(super) fn hlc_receive(&mut self, remote: HlcTimestamp) {
        self.feed_hlc();
        match self.hlc.receive(remote) {
            Ok(t) => self.stats.hlc = Some(t),
            Err(_) => self.stats.hlc_refused += 1,
        }
    }
}

/// The poll schedule's generation: changing the algorithm or interval starts a new one and
/// older `Poll` events are ignored.
pub(super) type Epoch = u64;

/// A running drift lab.
///
/// Architecture invariant: every clock is advanced to the simulator's current time before it
/// is read or adjusted, so a reading always corresponds to the true time it is reported at.
#[derive(Debug, Clone)]
pub struct DriftLab {
    pub(super) config: DriftConfig,
    pub(super) sim: Simulation<Event>,
    pub(super) nodes: Vec<NodeState>,
    pub(super) snapshots: Vec<Snapshot>,
    pub(super) events: Vec<LabEvent>,
    pub(super) next_round: u64,
    /// The current poll generation.
    pub(super) epoch: Epoch,
    /// Keep at most about this many snapshots and events (the oldest go first); `None`
    /// keeps everything.
    pub(super) history: Option<usize>,
    /// Every sync message as a send and a receive, clock jumps and backward steps as local
    /// events, at true time in ms; capped by [`TRACE_CAP`].
    pub(super) trace: Trace,
    /// Sends and local events recorded so far (the cap counts these).
    pub(super) traced: usize,
    /// What the last event handled by [`DriftLab::step`] was, in words.
    pub(super) last: Option<String>,
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
            last: None,
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

    pub(super) fn pollers(&self) -> Vec<NodeId> {
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

    pub(super) fn schedule_polls(&mut self) {
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

    pub(super) fn true_ms(&self) -> f64 {
        self.sim.now().as_secs_f64() * 1e3
    }

    /// Records a send, unless the cap is reached.
    pub(super) fn trace_send(&mut self, node: NodeId, label: String) -> Option<MessageId> {
        if self.trace_full() {
            return None;
        }
        self.traced += 1;
        let at = self.true_ms();
        Some(self.trace.send(node, at, label))
    }

    /// Records the receipt of a recorded message.
    pub(super) fn trace_receive(&mut self, node: NodeId, msg: Option<MessageId>, label: String) {
        if let Some(msg) = msg {
            let at = self.true_ms();
            self.trace
                .receive(node, msg, at, label)
                .expect("each lab message is sent once and received once by another node");
        }
    }

    /// Records a local event, unless the cap is reached.
    pub(super) fn trace_local(&mut self, node: NodeId, label: String) {
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
        self.last = Some(event.describe());
        self.handle(at, event);
        Some(at)
    }

    /// What the last event was, in words.
    pub fn last_event(&self) -> Option<&str> {
        self.last.as_deref()
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

    pub(super) fn trim_history(&mut self) {
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

    pub(super) fn restart_polling(&mut self) {
        // Abandon rounds (stale responses and deadlines no longer match) and old poll timers
        // (stale Poll events carry an old epoch).
        for n in &mut self.nodes {
            n.round = None;
            n.poll = PollInterval::new(0, if self.config.adaptive_poll { 4 } else { 0 });
        }
        self.epoch += 1;
        self.schedule_polls();
    }

    pub(super) fn check_node(&self, node: NodeId) -> Result<(), DriftError> {
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

    pub(super) fn log(&mut self, kind: LabEventKind) {
        self.events.push(LabEvent {
            at: self.sim.now(),
            kind,
        });
    }

    pub(super) fn read(&mut self, node: NodeId) -> f64 {
        let now = self.sim.now();
        let n = &mut self.nodes[node as usize];
        n.clock.advance_to(now, self.sim.rng());
        n.clock.timestamp(self.sim.rng())
    }

    /// What a liar answers `asker`: the asker's own clock pushed away from the honest median.
    pub(super) fn lie_to(&mut self, asker: NodeId) -> f64 {
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

    pub(super) fn apply(&mut self, node: NodeId, delta: f64) -> Adjustment {
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

    pub(super) fn handle(&mut self, _at: SimTime, event: Event) {
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
}
