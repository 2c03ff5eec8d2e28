//! A Raft cluster on simulated clocks: tikv's `raft` crate (raft-rs, the engine TiKV runs)
//! driven by the deterministic simulator, each node's timers on its own drifting clock.
//!
//! Raft is Ongaro & Ousterhout's consensus algorithm (*In Search of an Understandable Consensus
//! Algorithm*, USENIX ATC 2014; Ongaro's thesis, 2014, §6.4 for ReadIndex and leases). The
//! engine is not ours: [`raft::RawNode`] is a pure state machine — `tick()`, `step(message)`,
//! `propose`, `read_index`, then `ready()` hands back what to persist, send and apply. This
//! module only drives it:
//!
//! - **Ticks on the node's own clock.** Node `i` ticks every `tick` seconds of its
//!   *monotonic* clock: its [`PhysicalClock`] (drift, wander, slews, frequency corrections)
//!   without the steps a time daemon applies, as `CLOCK_MONOTONIC` is. A fast clock times out
//!   early, a slow one late, a frozen one (a paused VM) never.
//! - **Messages through the simulator's network** (per-link latency, loss, partitions), as
//!   events delivered at their arrival time.
//! - **No OS randomness.** raft-rs redraws a node's randomised election timeout with rand's
//!   thread RNG whenever it resets (becomes follower, candidate, leader). That value is only
//!   ever read by `tick()`; after every call into the engine the driver overwrites it with a
//!   draw from the node's own seeded RNG, redrawn exactly when the node's `(term, role)`
//!   changes. So the crate's own draw is never read, and a run is a pure function of its seed.
//! - **Reads, two ways** ([`ReadMode`]). *ReadIndex* (thesis §6.4): the leader confirms it is
//!   still leader with a heartbeat round, then serves the read at the commit index it noted —
//!   raft-rs' `ReadOnlyOption::Safe`, clock-free. *Leader lease* (thesis §6.4.1, as TiKV does
//!   on top of raft-rs): a confirmed ReadIndex issued at monotonic time `m0` grants a lease
//!   until `m0 + L`, during which the leader answers reads from its own state without asking.
//!   The lease is sound because raft-rs followers with `check_quorum` refuse to vote for
//!   `election_tick` ticks after hearing from their leader; with clock rates within `±ρ` of
//!   true time, `L = (election_tick − 1) · tick · (1 − ρ)/(1 + ρ)` ends before any follower's
//!   refusal does. A clock slower than `1 − ρ`, or frozen, breaks that — the lab's point.
//! - **Log entries stamped by a hybrid logical clock** (Kulkarni et al., 2014) fed by the
//!   node's wall clock (the one the time daemon disciplines): the leader stamps each entry as
//!   it appends it, every node merges the stamps of the entries it stores.
//!
//! **Invariants checked in every run** ([`Safety`]): at most one leader per term (Election
//! Safety); every node applies the same entry at each index, in index order (State Machine
//! Safety); a new leader's log holds every entry committed before it (Leader Completeness); the
//! committed log's HLC stamps increase with the index.

mod safety;
#[cfg(test)]
mod tests;

pub use safety::{Safety, Violation};

use std::collections::BTreeMap;
use std::time::Duration;

use raft::{
    eraftpb::{Entry, EntryType, Message, MessageType},
    storage::MemStorage,
    Config, RawNode, ReadOnlyOption, StateRole,
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;

use crate::clocks::hlc::{Hlc, HlcTimestamp, ManualClock};
use crate::clocks::physical_clock::{AdjustPolicy, ClockSpec, PhysicalClock};
use crate::sim::{SimTime, Simulation};
use crate::sync::timesync::{Correction, Decision};
use crate::NodeId;

/// Wall clocks start at this Unix time (ms), so HLC physical parts are real-looking and
/// positive whatever a clock's initial offset.
pub const EPOCH_MS: f64 = 1_700_000_000_000.0;

/// How reads are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// ReadIndex: every read confirms leadership with a heartbeat round (no clocks).
    ReadIndex,
    /// Leader lease: reads inside a lease are answered locally, without a round.
    Lease,
}

impl ReadMode {
    /// `read-index` / `lease`.
    pub fn key(self) -> &'static str {
        match self {
            ReadMode::ReadIndex => "read-index",
            ReadMode::Lease => "lease",
        }
    }
}

/// The cluster's configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterConfig {
    /// Voters, 3 to 9.
    pub nodes: usize,
    /// raft-rs `election_tick`: followers time out after `[E, 2E)` ticks.
    pub election_ticks: usize,
    /// raft-rs `heartbeat_tick`.
    pub heartbeat_ticks: usize,
    /// The floor of every node's tick interval (monotonic seconds); adaptation only raises a
    /// node's tick above it, so the lease computed from it stays sound.
    pub tick: Duration,
    /// How reads are served.
    pub read_mode: ReadMode,
    /// ρ, the clock-rate error the lease assumes (ppm): ntpd's tolerance is 500.
    pub drift_bound_ppm: f64,
    /// How far ahead a remote HLC stamp may be before a node refuses to merge it, ms.
    pub hlc_max_offset_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nodes: 5,
            election_ticks: 10,
            heartbeat_ticks: 1,
            tick: Duration::from_millis(100),
            read_mode: ReadMode::ReadIndex,
            drift_bound_ppm: 500.0,
            hlc_max_offset_ms: 500,
        }
    }
}

/// Why a cluster cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RaftError {
    /// A configuration value out of range.
    #[error("{0}")]
    Config(String),
    /// raft-rs refused to start a node.
    #[error("raft-rs: {0}")]
    Engine(String),
}

/// The driver's events; a lab's own event type wraps them (`E: From<Event>`).
#[derive(Debug, Clone)]
pub enum Event {
    /// Node `node`'s timer fired; `generation` tells stale timers (from before a pause).
    Tick {
        /// The node.
        node: usize,
        /// Its timer generation when scheduled.
        generation: u64,
    },
    /// A Raft message arrives at `to`.
    Deliver {
        /// The receiver.
        to: usize,
        /// The message (raft-rs' protobuf type).
        msg: Box<Message>,
    },
}

/// A client operation on the replicated register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Write this value.
    Write(u64),
    /// Read the value.
    Read,
}

/// How a read was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadPath {
    /// From the leader's own state inside its lease.
    Lease,
    /// After a ReadIndex round confirmed the commit index.
    ReadIndex,
}

/// What a node answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// The write is committed and applied here.
    Written {
        /// The entry's term.
        term: u64,
        /// The entry's index.
        index: u64,
        /// Its HLC stamp.
        hlc: HlcTimestamp,
    },
    /// The read's value.
    Read {
        /// The value (`None`: never written).
        value: Option<u64>,
        /// The answering node's term.
        term: u64,
        /// How it was answered.
        path: ReadPath,
    },
    /// Refused at once: the node knows no leader to forward to.
    Refused,
}

/// A node's answer to a client request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// The answering node.
    pub node: usize,
    /// The request's id.
    pub id: u64,
    /// The answer.
    pub outcome: Outcome,
}

/// A node became a (pre-)candidate: the facts a lab needs to name the election's cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Campaign {
    /// When, true time.
    pub at: SimTime,
    /// The campaigning node.
    pub node: usize,
    /// The term it campaigns for.
    pub term: u64,
    /// The leader it last followed (`None`: none known).
    pub prev_leader: Option<usize>,
}

/// A node became leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Election {
    /// When, true time.
    pub at: SimTime,
    /// The new leader.
    pub leader: usize,
    /// Its term.
    pub term: u64,
}

/// A node's role, in the paper's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Follows a leader.
    Follower,
    /// Pre-vote: asks whether it could win before raising its term.
    PreCandidate,
    /// Asks for votes.
    Candidate,
    /// Leads its term.
    Leader,
}

impl From<StateRole> for Role {
    fn from(r: StateRole) -> Self {
        match r {
            StateRole::Follower => Role::Follower,
            StateRole::PreCandidate => Role::PreCandidate,
            StateRole::Candidate => Role::Candidate,
            StateRole::Leader => Role::Leader,
        }
    }
}

impl Role {
    /// `follower`, `pre-candidate`, `candidate`, `leader`.
    pub fn key(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

/// One log entry as the page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// Its index.
    pub index: u64,
    /// Its term.
    pub term: u64,
    /// The value written (`None`: a leader's no-op).
    pub value: Option<u64>,
    /// Its HLC stamp (`None`: a no-op).
    pub hlc: Option<HlcTimestamp>,
}

/// A node's state, for tables and the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeStatus {
    /// Its role.
    pub role: Role,
    /// Its term.
    pub term: u64,
    /// The leader it follows.
    pub leader: Option<usize>,
    /// Its last log index.
    pub last_index: u64,
    /// Its commit index.
    pub commit: u64,
    /// The last index it applied.
    pub applied: u64,
    /// Its register's value.
    pub value: Option<u64>,
    /// Paused (frozen) now.
    pub paused: bool,
    /// Holds a valid lease now (its own clock's opinion).
    pub lease: bool,
    /// Its wall clock minus true time, seconds.
    pub offset: f64,
    /// Its monotonic clock's rate error, ppm.
    pub rate_ppm: f64,
    /// Its tick interval now, seconds.
    pub tick: f64,
    /// Its current randomised election timeout, ticks.
    pub election_timeout: usize,
}

/// One node: the engine, its clocks and what the driver keeps beside it.
struct Node {
    /// raft-rs.
    raw: RawNode<MemStorage>,
    /// The wall clock (disciplined by a time daemon).
    clock: PhysicalClock,
    /// Steps applied to `clock` (seconds): the monotonic clock is `clock − steps`.
    steps: f64,
    /// Seconds of the monotonic clock per tick.
    tick: f64,
    /// Monotonic time of the next tick.
    next_tick: f64,
    /// Bumped when the timer is re-armed, so older tick events are ignored.
    generation: u64,
    /// Frozen since, and the wall clock's value then, when paused.
    frozen: Option<(SimTime, f64, bool)>,
    /// The node's own seeded RNG for election timeouts.
    timeouts: StdRng,
    /// The current randomised election timeout, ticks: drawn from `timeouts`.
    timeout: usize,
    /// `(term, role)` after the last call, to see resets.
    seen: (u64, StateRole),
    /// The leader it followed before its last campaign.
    last_leader: Option<usize>,
    /// The HLC that stamps entries.
    hlc: Hlc<ManualClock>,
    /// The replicated register.
    value: Option<u64>,
    /// Writes proposed here and not yet applied, by request id.
    writes: BTreeMap<u64, ()>,
    /// ReadIndex requests issued here: request id → (monotonic issue time, term, as leader).
    issued: BTreeMap<u64, (f64, u64, bool)>,
    /// Confirmed reads waiting for the apply index: (request id, read index).
    reads: Vec<(u64, u64)>,
    /// The lease: its term and its end, monotonic seconds.
    lease: Option<(u64, f64)>,
}

/// A Raft cluster on simulated clocks.
pub struct Cluster {
    /// The configuration.
    config: ClusterConfig,
    /// The nodes, indexed from 0 (raft id `i + 1`, simulator node `i`).
    nodes: Vec<Node>,
    /// Answers to clients, drained by [`Cluster::take_replies`].
    replies: Vec<Reply>,
    /// The invariants' monitor.
    safety: Safety,
    /// Every campaign.
    campaigns: Vec<Campaign>,
    /// Every election won.
    elections: Vec<Election>,
    /// Messages that reached a paused node and were lost.
    dropped_paused: u64,
    /// HLC merges refused for exceeding the maximum offset.
    hlc_refusals: u64,
}

const fn raft_id(i: usize) -> u64 {
    i as u64 + 1
}

fn index_of(id: u64) -> Option<usize> {
    (id as usize).checked_sub(1)
}

/// An entry's payload: the value and the leader's HLC stamp, 16 bytes.
fn encode(value: u64, hlc: HlcTimestamp) -> Vec<u8> {
    let mut b = Vec::with_capacity(16);
    b.extend_from_slice(&value.to_be_bytes());
    b.extend_from_slice(&hlc.to_u64().to_be_bytes());
    b
}

fn decode(data: &[u8]) -> Option<(u64, HlcTimestamp)> {
    let v: [u8; 8] = data.get(0..8)?.try_into().ok()?;
    let h: [u8; 8] = data.get(8..16)?.try_into().ok()?;
    Some((
        u64::from_be_bytes(v),
        HlcTimestamp::from_u64(u64::from_be_bytes(h)),
    ))
}

fn request_id(ctx: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(ctx.get(0..8)?.try_into().ok()?))
}

impl Node {
    /// The monotonic clock at the last advance, seconds.
    fn mono(&self) -> f64 {
        self.clock.value() - self.steps
    }

    /// The wall clock as Unix ms.
    fn wall_ms(&self) -> u64 {
        (EPOCH_MS + self.clock.value() * 1e3).max(0.0) as u64
    }

    fn role(&self) -> StateRole {
        self.raw.raft.state
    }

    fn term(&self) -> u64 {
        self.raw.raft.term
    }

    fn lease_valid(&self) -> bool {
        self.role() == StateRole::Leader
            && self.frozen.is_none()
            && self
                .lease
                .is_some_and(|(term, until)| term == self.term() && self.mono() < until)
    }
}

impl Cluster {
    /// A cluster of `config.nodes` voters with these clocks (one per node), all followers at
    /// term 0; `seed` seeds the election timeouts.
    pub fn new(
        config: ClusterConfig,
        clocks: &[ClockSpec],
        seed: u64,
    ) -> Result<Cluster, RaftError> {
        if !(3..=9).contains(&config.nodes) {
            return Err(RaftError::Config(format!(
                "nodes must be 3 to 9, got {}",
                config.nodes
            )));
        }
        if clocks.len() != config.nodes {
            return Err(RaftError::Config(format!(
                "{} clocks for {} nodes",
                clocks.len(),
                config.nodes
            )));
        }
        if config.heartbeat_ticks == 0 || config.election_ticks <= config.heartbeat_ticks {
            return Err(RaftError::Config(
                "election ticks must exceed heartbeat ticks, which must be at least 1".into(),
            ));
        }
        if config.tick.is_zero() {
            return Err(RaftError::Config("the tick must be positive".into()));
        }
        if !(0.0..100_000.0).contains(&config.drift_bound_ppm) {
            return Err(RaftError::Config(
                "the lease's drift bound must be 0 to 100000 ppm".into(),
            ));
        }
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let voters: Vec<u64> = (0..config.nodes).map(raft_id).collect();
        let mut nodes = Vec::with_capacity(config.nodes);
        for (i, spec) in clocks.iter().enumerate() {
            let cfg = Config {
                id: raft_id(i),
                election_tick: config.election_ticks,
                heartbeat_tick: config.heartbeat_ticks,
                check_quorum: true,
                pre_vote: true,
                read_only_option: ReadOnlyOption::Safe,
                max_inflight_msgs: 256,
                max_size_per_msg: 1 << 20,
                ..Config::default()
            };
            cfg.validate()
                .map_err(|e| RaftError::Engine(e.to_string()))?;
            let storage = MemStorage::new_with_conf_state((voters.clone(), vec![]));
            let raw = RawNode::new(&cfg, storage, &logger)
                .map_err(|e| RaftError::Engine(e.to_string()))?;
            let seen = (raw.raft.term, raw.raft.state);
            let clock = PhysicalClock::new(*spec);
            let tick = config.tick.as_secs_f64();
            let mut node = Node {
                raw,
                steps: 0.0,
                tick,
                next_tick: clock.value() + tick,
                clock,
                generation: 0,
                frozen: None,
                timeouts: StdRng::seed_from_u64(
                    seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1)),
                ),
                seen,
                timeout: 0,
                last_leader: None,
                hlc: Hlc::new(ManualClock::default(), config.hlc_max_offset_ms),
                value: None,
                writes: BTreeMap::new(),
                issued: BTreeMap::new(),
                reads: Vec::new(),
                lease: None,
            };
            let e = config.election_ticks;
            node.timeout = node.timeouts.gen_range(e..2 * e);
            node.raw.raft.set_randomized_election_timeout(node.timeout);
            nodes.push(node);
        }
        Ok(Cluster {
            config,
            nodes,
            replies: Vec::new(),
            safety: Safety::default(),
            campaigns: Vec::new(),
            elections: Vec::new(),
            dropped_paused: 0,
            hlc_refusals: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never: a cluster has at least three nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The lease length `L` in monotonic seconds (see the module docs).
    pub fn lease_duration(&self) -> f64 {
        let rho = self.config.drift_bound_ppm * 1e-6;
        (self.config.election_ticks as f64 - 1.0) * self.config.tick.as_secs_f64() * (1.0 - rho)
            / (1.0 + rho)
    }

    /// Arms every node's timer. Call once, at time zero.
    pub fn start<E: From<Event>>(&mut self, sim: &mut Simulation<E>) {
        for i in 0..self.nodes.len() {
            self.arm(sim, i);
        }
    }

    /// Makes node `i` campaign now (a bootstrap, or an operator's nudge).
    pub fn campaign<E: From<Event>>(&mut self, sim: &mut Simulation<E>, i: usize) {
        if self.nodes[i].frozen.is_none() {
            let _ = self.nodes[i].raw.campaign();
            self.after(sim, i);
        }
    }

    /// Handles one of the driver's events.
    pub fn handle<E: From<Event>>(&mut self, sim: &mut Simulation<E>, event: Event) {
        match event {
            Event::Tick { node, generation } => self.on_tick(sim, node, generation),
            Event::Deliver { to, msg } => self.deliver(sim, to, *msg),
        }
    }

    fn advance<E>(&mut self, sim: &mut Simulation<E>, i: usize) {
        let now = sim.now();
        let node = &mut self.nodes[i];
        if node.frozen.is_none() {
            node.clock.advance_to(now, sim.rng());
        }
    }

    /// Schedules node `i`'s next tick in true time from its monotonic clock's rate now.
    fn arm<E: From<Event>>(&mut self, sim: &mut Simulation<E>, i: usize) {
        self.advance(sim, i);
        let node = &mut self.nodes[i];
        node.generation += 1;
        let rate = (1.0 + node.clock.effective_rate_ppm() * 1e-6).max(1e-3);
        let wait = ((node.next_tick - node.mono()) / rate).max(0.0);
        sim.schedule_in(
            Duration::from_secs_f64(wait),
            Event::Tick {
                node: i,
                generation: node.generation,
            }
            .into(),
        );
    }

    fn on_tick<E: From<Event>>(&mut self, sim: &mut Simulation<E>, i: usize, generation: u64) {
        if self.nodes[i].generation != generation || self.nodes[i].frozen.is_some() {
            return;
        }
        self.advance(sim, i);
        let node = &mut self.nodes[i];
        // The rate may have changed since the timer was armed (a slew ended, wander): fire
        // only when the monotonic clock has really reached the tick.
        if node.mono() + 1e-9 >= node.next_tick {
            node.next_tick += node.tick;
            if node.next_tick <= node.mono() {
                // A long stall (the clock raced ahead): one tick, not a burst.
                node.next_tick = node.mono() + node.tick;
            }
            node.raw.tick();
            self.after(sim, i);
        }
        self.arm(sim, i);
    }

    fn deliver<E: From<Event>>(&mut self, sim: &mut Simulation<E>, i: usize, mut msg: Message) {
        if self.nodes[i].frozen.is_some() {
            self.dropped_paused += 1;
            return;
        }
        self.advance(sim, i);
        if msg.get_msg_type() == MessageType::MsgPropose
            && self.nodes[i].role() == StateRole::Leader
        {
            // A forwarded proposal: the leader stamps it as it appends it.
            let node = &mut self.nodes[i];
            for e in msg.mut_entries().iter_mut() {
                if let Some((v, _)) = decode(e.get_data()) {
                    node.hlc.clock_mut().now_ms = node.wall_ms();
                    e.data = encode(v, node.hlc.now()).into();
                }
            }
        }
        let _ = self.nodes[i].raw.step(msg);
        self.after(sim, i);
    }

    /// A client request arrives at node `i`. Answers come out of [`Cluster::take_replies`],
    /// now or later; a paused node loses the request (the client times out).
    pub fn request<E: From<Event>>(&mut self, sim: &mut Simulation<E>, i: usize, id: u64, op: Op) {
        if self.nodes[i].frozen.is_some() {
            self.dropped_paused += 1;
            return;
        }
        self.advance(sim, i);
        let mode = self.config.read_mode;
        let node = &mut self.nodes[i];
        match op {
            Op::Write(v) => {
                let stamp = if node.role() == StateRole::Leader {
                    node.hlc.clock_mut().now_ms = node.wall_ms();
                    node.hlc.now()
                } else {
                    HlcTimestamp::from_u64(0)
                };
                match node
                    .raw
                    .propose(id.to_be_bytes().to_vec(), encode(v, stamp))
                {
                    Ok(()) => {
                        node.writes.insert(id, ());
                    }
                    Err(_) => self.replies.push(Reply {
                        node: i,
                        id,
                        outcome: Outcome::Refused,
                    }),
                }
            }
            Op::Read => {
                if mode == ReadMode::Lease
                    && node.lease_valid()
                    && node.raw.raft.commit_to_current_term()
                {
                    self.replies.push(Reply {
                        node: i,
                        id,
                        outcome: Outcome::Read {
                            value: node.value,
                            term: node.term(),
                            path: ReadPath::Lease,
                        },
                    });
                    return;
                }
                if node.role() != StateRole::Leader && node.raw.raft.leader_id == raft::INVALID_ID {
                    self.replies.push(Reply {
                        node: i,
                        id,
                        outcome: Outcome::Refused,
                    });
                    return;
                }
                let leader = node.role() == StateRole::Leader;
                node.issued.insert(id, (node.mono(), node.term(), leader));
                node.raw.read_index(id.to_be_bytes().to_vec());
            }
        }
        self.after(sim, i);
    }

    /// Answers produced since the last call.
    pub fn take_replies(&mut self) -> Vec<Reply> {
        std::mem::take(&mut self.replies)
    }

    /// Freezes node `i` (a stopped process or VM): no ticks, messages and requests to it are
    /// lost. With `freeze_clock` its clock stops too (a paused VM's monotonic and guest wall
    /// clock), so after [`Cluster::resume`] it reads as if no time had passed.
    pub fn pause<E>(&mut self, sim: &mut Simulation<E>, i: usize, freeze_clock: bool) {
        if self.nodes[i].frozen.is_some() {
            return;
        }
        self.advance(sim, i);
        let node = &mut self.nodes[i];
        node.frozen = Some((sim.now(), node.clock.value(), freeze_clock));
    }

    /// Resumes node `i` after [`Cluster::pause`].
    pub fn resume<E: From<Event>>(&mut self, sim: &mut Simulation<E>, i: usize) {
        let Some((_, value, freeze_clock)) = self.nodes[i].frozen.take() else {
            return;
        };
        self.advance(sim, i);
        let node = &mut self.nodes[i];
        if freeze_clock {
            let lost = node.clock.value() - value;
            node.clock.jump(-lost);
        }
        if node.next_tick <= node.mono() {
            node.next_tick = node.mono() + node.tick;
        }
        self.arm(sim, i);
    }

    /// Whether node `i` is paused.
    pub fn is_paused(&self, i: usize) -> bool {
        self.nodes[i].frozen.is_some()
    }

    /// Node `i`'s wall clock now, seconds since the run began on its own reckoning (what it
    /// stamps on time-sync exchanges).
    pub fn wall_clock<E>(&mut self, sim: &mut Simulation<E>, i: usize) -> f64 {
        self.advance(sim, i);
        self.nodes[i].clock.value()
    }

    /// Node `i`'s monotonic clock now, seconds (what its daemon measures intervals with).
    pub fn mono_clock<E>(&mut self, sim: &mut Simulation<E>, i: usize) -> f64 {
        self.advance(sim, i);
        self.nodes[i].mono()
    }

    /// Applies a time daemon's decision to node `i`'s wall clock. A step moves the wall clock
    /// only; slews and frequency corrections move the monotonic clock too, as `adjtime(2)`
    /// does.
    pub fn discipline<E: From<Event>>(
        &mut self,
        sim: &mut Simulation<E>,
        i: usize,
        decision: &Decision,
    ) {
        self.advance(sim, i);
        let node = &mut self.nodes[i];
        if let Some(ppm) = decision.frequency_correction_ppm {
            node.clock.set_frequency_correction_ppm(ppm);
        }
        match decision.correction {
            Some(Correction::Slew { delta, rate }) => {
                node.clock.adjust(
                    delta,
                    AdjustPolicy::Slew {
                        max_ppm: rate * 1e6,
                    },
                );
            }
            Some(Correction::Step { delta }) => {
                node.clock.adjust(delta, AdjustPolicy::Step);
                node.steps += delta;
            }
            None => {}
        }
        self.arm(sim, i);
    }

    /// Everything the daemon has added to node `i`'s clock, seconds.
    pub fn total_correction(&self, i: usize) -> f64 {
        self.nodes[i].clock.total_correction()
    }

    /// Changes node `i`'s oscillator drift, ppm (a control on the page).
    pub fn set_drift<E: From<Event>>(&mut self, sim: &mut Simulation<E>, i: usize, ppm: f64) {
        self.advance(sim, i);
        self.nodes[i].clock.set_drift_ppm(ppm);
        self.arm(sim, i);
    }

    /// Moves node `i`'s wall and monotonic clock by `delta` seconds (a fault).
    pub fn jump<E: From<Event>>(&mut self, sim: &mut Simulation<E>, i: usize, delta: f64) {
        self.advance(sim, i);
        self.nodes[i].clock.jump(delta);
        self.arm(sim, i);
    }

    /// Sets node `i`'s tick interval (seconds), never below the configured floor.
    pub fn set_tick<E: From<Event>>(&mut self, sim: &mut Simulation<E>, i: usize, tick: f64) {
        let floor = self.config.tick.as_secs_f64();
        let node = &mut self.nodes[i];
        let tick = tick.max(floor);
        if (tick - node.tick).abs() < 1e-12 {
            return;
        }
        node.next_tick += tick - node.tick;
        node.tick = tick;
        if node.frozen.is_none() {
            self.arm(sim, i);
        }
    }

    /// Node `i`'s state.
    pub fn status(&self, i: usize) -> NodeStatus {
        let n = &self.nodes[i];
        let r = &n.raw.raft;
        NodeStatus {
            role: r.state.into(),
            term: r.term,
            leader: (r.leader_id != raft::INVALID_ID)
                .then(|| index_of(r.leader_id))
                .flatten(),
            last_index: r.raft_log.last_index(),
            commit: r.raft_log.committed,
            applied: r.raft_log.applied,
            value: n.value,
            paused: n.frozen.is_some(),
            lease: n.lease_valid(),
            offset: n.clock.offset(),
            rate_ppm: n.clock.effective_rate_ppm(),
            tick: n.tick,
            election_timeout: r.randomized_election_timeout(),
        }
    }

    /// The last `k` entries of node `i`'s log.
    pub fn log_tail(&self, i: usize, k: usize) -> Vec<LogEntry> {
        let log = &self.nodes[i].raw.raft.raft_log;
        let last = log.last_index();
        let first = last.saturating_sub(k as u64).max(1);
        if first > last {
            return Vec::new();
        }
        log.entries(first, raft::NO_LIMIT, raft::GetEntriesContext::empty(false))
            .unwrap_or_default()
            .iter()
            .map(|e| {
                let d = decode(e.get_data());
                LogEntry {
                    index: e.index,
                    term: e.term,
                    value: d.map(|(v, _)| v),
                    hlc: d.map(|(_, h)| h),
                }
            })
            .collect()
    }

    /// The invariants' monitor.
    pub fn safety(&self) -> &Safety {
        &self.safety
    }

    /// Every campaign so far.
    pub fn campaigns(&self) -> &[Campaign] {
        &self.campaigns
    }

    /// Every election won so far.
    pub fn elections(&self) -> &[Election] {
        &self.elections
    }

    /// Messages and requests lost because their receiver was paused.
    pub fn dropped_while_paused(&self) -> u64 {
        self.dropped_paused
    }

    /// HLC merges refused because a stamp was more than the maximum offset ahead.
    pub fn hlc_refusals(&self) -> u64 {
        self.hlc_refusals
    }

    /// After any call into node `i`'s engine: see role changes, re-seed the election timeout
    /// from the node's RNG, then handle its `Ready`.
    fn after<E: From<Event>>(&mut self, sim: &mut Simulation<E>, i: usize) {
        let now = sim.now();
        let e = self.config.election_ticks;
        let node = &mut self.nodes[i];
        let state = (node.raw.raft.term, node.raw.raft.state);
        if state != node.seen {
            let (_, old_role) = node.seen;
            node.seen = state;
            node.timeout = node.timeouts.gen_range(e..2 * e);
            if node.lease.is_some_and(|(term, _)| term != state.0) || state.1 != StateRole::Leader {
                node.lease = None;
            }
            match state.1 {
                StateRole::PreCandidate | StateRole::Candidate => {
                    let prev = if old_role == StateRole::Follower {
                        node.last_leader
                    } else {
                        None
                    };
                    self.campaigns.push(Campaign {
                        at: now,
                        node: i,
                        term: if state.1 == StateRole::PreCandidate {
                            state.0 + 1
                        } else {
                            state.0
                        },
                        prev_leader: prev,
                    });
                }
                StateRole::Leader => {
                    self.elections.push(Election {
                        at: now,
                        leader: i,
                        term: state.0,
                    });
                    let log = &node.raw.raft.raft_log;
                    self.safety
                        .on_leader(now, i, state.0, |idx| log.term(idx).ok());
                }
                StateRole::Follower => {}
            }
        }
        // Always ours: whatever raft-rs drew in a reset is overwritten before a tick reads it.
        node.raw.raft.set_randomized_election_timeout(node.timeout);
        if node.raw.raft.leader_id != raft::INVALID_ID {
            node.last_leader = index_of(node.raw.raft.leader_id);
        }
        self.ready(sim, i);
    }

    fn ready<E: From<Event>>(&mut self, sim: &mut Simulation<E>, i: usize) {
        if !self.nodes[i].raw.has_ready() {
            return;
        }
        let mut rd = self.nodes[i].raw.ready();
        let msgs = rd.take_messages();
        self.send(sim, i, msgs);
        let committed = rd.take_committed_entries();
        self.apply(sim.now(), i, committed);
        let node = &mut self.nodes[i];
        if !rd.entries().is_empty() {
            for e in rd.entries() {
                if let Some((_, stamp)) = decode(e.get_data()) {
                    if stamp > node.hlc.last() {
                        node.hlc.clock_mut().now_ms = node.wall_ms();
                        if node.hlc.receive(stamp).is_err() {
                            self.hlc_refusals += 1;
                        }
                    }
                }
            }
            let _ = node.raw.mut_store().wl().append(rd.entries());
        }
        if let Some(hs) = rd.hs() {
            node.raw.mut_store().wl().set_hardstate(hs.clone());
        }
        let lease = self.lease_duration();
        let node = &mut self.nodes[i];
        for rs in rd.take_read_states() {
            let Some(id) = request_id(&rs.request_ctx) else {
                continue;
            };
            if let Some((issued_at, term, as_leader)) = node.issued.remove(&id) {
                if as_leader && term == node.term() && node.role() == StateRole::Leader {
                    let until = issued_at + lease;
                    if node.lease.is_none_or(|(t, u)| t != term || u < until) {
                        node.lease = Some((term, until));
                    }
                }
                node.reads.push((id, rs.index));
            }
        }
        let persisted = rd.take_persisted_messages();
        self.send(sim, i, persisted);
        let mut light = self.nodes[i].raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.nodes[i]
                .raw
                .mut_store()
                .wl()
                .mut_hard_state()
                .set_commit(commit);
        }
        let msgs = light.take_messages();
        self.send(sim, i, msgs);
        let committed = light.take_committed_entries();
        self.apply(sim.now(), i, committed);
        self.nodes[i].raw.advance_apply();
        self.flush_reads(i);
    }

    fn send<E: From<Event>>(&mut self, sim: &mut Simulation<E>, from: usize, msgs: Vec<Message>) {
        for m in msgs {
            let Some(to) = index_of(m.to).filter(|&t| t < self.nodes.len()) else {
                continue;
            };
            sim.send(
                from as NodeId,
                to as NodeId,
                Event::Deliver {
                    to,
                    msg: Box::new(m),
                }
                .into(),
            );
        }
    }

    fn apply(&mut self, now: SimTime, i: usize, entries: Vec<Entry>) {
        for e in entries {
            let node = &mut self.nodes[i];
            let payload = if e.get_entry_type() == EntryType::EntryNormal {
                decode(e.get_data())
            } else {
                None
            };
            if let Some((v, _)) = payload {
                node.value = Some(v);
            }
            self.safety.on_apply(now, i, e.index, e.term, payload);
            if let Some(id) = request_id(e.get_context()) {
                if node.writes.remove(&id).is_some() {
                    self.replies.push(Reply {
                        node: i,
                        id,
                        outcome: Outcome::Written {
                            term: e.term,
                            index: e.index,
                            hlc: payload.map_or(HlcTimestamp::from_u64(0), |(_, h)| h),
                        },
                    });
                }
            }
        }
    }

    fn flush_reads(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let applied = node.raw.raft.raft_log.applied;
        let term = node.term();
        let value = node.value;
        let replies = &mut self.replies;
        node.reads.retain(|&(id, index)| {
            if index <= applied {
                replies.push(Reply {
                    node: i,
                    id,
                    outcome: Outcome::Read {
                        value,
                        term,
                        path: ReadPath::ReadIndex,
                    },
                });
                false
            } else {
                true
            }
        });
    }
}
