//! The NTP-for-Raft proposal's `TimeSyncService` over gRPC, and the daemon that keeps a node's
//! clock in sync with its peers through it: the sockets and timers around the pure state
//! machine [`chronoscope::sync::timesync::TimeSync`] (four timestamps, clock filter, Marzullo's
//! intersection, history, slewing, backoff — D. Mills, RFC 5905; K. Marzullo, 1984).
//!
//! A [`TimeSyncNode`] is one node: a tonic server answering `GetTime` with its own clock, and a
//! daemon polling its peers' `GetTime`, handing each round's exchanges to the state machine and
//! applying its decision to the clock. The clock is a [`NodeClock`]: "true time" is the host
//! clock (read once at start, advanced by the monotonic clock, so every node of one process
//! shares it), plus the Wiber notes' simulated skew, drift and random variation, plus the
//! daemon's corrections. The system clock is never set.
//!
//! The wire meaning of the proposal's fields (it leaves units open), as `proto/time_sync.proto`
//! states: `client_time` is T1 and `server_time` T3, Unix nanoseconds; `round_trip_time` is the
//! server's residence T3 − T2 in nanoseconds, so the caller has all four timestamps; `offset`
//! is (T2 − T1) in seconds.
//!
//! Faults for the labs and tests are injected at the receiving server, on real packets: a
//! link's extra delay sleeps before T2 (the request leg) or after T3 (the reply leg), so an
//! asymmetric link biases the offset by half the asymmetry exactly as a slow network would; a
//! cut link holds the request unanswered until the caller times out; a lying node adds a
//! constant to the times it serves (its own clock stays honest).
//!
//! Security ([`Security`]): with per-node keys every request carries a token minted with the
//! caller's key and a tonic interceptor refuses a missing, wrong or expired one with
//! `UNAUTHENTICATED` before the handler runs ([`auth`]); with TLS the channels are mutual TLS
//! (rustls): each node presents a certificate from the cluster's CA and accepts only peers that
//! do.
//!
//! Invariant: nothing a peer sends can stop a node. Requests and replies are bounded to
//! [`MAX_MESSAGE_BYTES`], every reply is checked (a residence that is negative or longer than
//! the round trip is refused), and a failed poll is one [`PollResult::Failed`] with its reason.

pub mod auth;
pub mod cluster;
pub mod proto;

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    time::{Duration, Instant},
};

use chronoscope::{
    clocks::physical_clock::Adjustment,
    sync::{
        ntp::Exchange,
        timesync::{
            Correction, Decision, NodeClock, PollResult, RoundEvent, SourceRow, TimeSync,
            TimeSyncConfig, Tracking,
        },
    },
};
use serde::Serialize;
use tokio::net::TcpListener;
use tonic::{
    metadata::MetadataValue,
    service::interceptor::InterceptedService,
    transport::{
        server::TcpIncoming, Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server,
        ServerTlsConfig,
    },
    Request, Response, Status,
};

use self::auth::{Caller, NodeKeys};
use self::proto::{
    time_sync_service_client::TimeSyncServiceClient,
    time_sync_service_server::{TimeSyncService, TimeSyncServiceServer},
    TimeReply, TimeRequest,
};
use super::clock::{ClockSource, HostClock};
use crate::Shutdown;

/// The largest request or reply either side accepts. The messages are a few bytes; anything
/// near this is hostile.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// The metadata key naming the caller (the node id), so a server can apply the link's faults.
pub const NODE_HEADER: &str = "chronoscope-node";

/// How long a cut link holds a request before answering `UNAVAILABLE`; callers give up long
/// before (their `timeout`), so to them the packet is lost.
const CUT_HOLD: Duration = Duration::from_secs(10);

/// Exchanges in a burst to a peer not heard from yet.
const BURST: usize = 4;

/// Log entries a node keeps for its status.
const LOG_LEN: usize = 64;

/// True time for the nodes: the host clock read once, advanced by the monotonic clock. Every
/// node of one process shares one, so their offsets to it are comparable; the host clock being
/// set while they run does not move it.
#[derive(Debug, Clone, Copy)]
pub struct TrueTime {
    /// The host clock at `origin`, Unix nanoseconds.
    origin_unix_nanos: i128,
    /// The monotonic instant it was read.
    origin: Instant,
}

impl TrueTime {
    /// True time from the host clock now.
    pub fn from_host() -> Self {
        TrueTime {
            origin_unix_nanos: HostClock.now_unix_nanos(),
            origin: Instant::now(),
        }
    }

    /// Seconds since it was made.
    pub fn elapsed(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    /// Unix nanoseconds at `elapsed` seconds after it was made.
    pub fn unix_nanos_at(&self, elapsed: f64) -> i128 {
        self.origin_unix_nanos + (elapsed * 1e9).round() as i128
    }
}

/// The Wiber notes' clock simulation for one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Simulation {
    /// Initial offset from true time, milliseconds (`--simulate-skew`).
    pub skew_ms: f64,
    /// Rate error, milliseconds per second (`--simulate-drift`; 0.1 is 100 ppm).
    pub drift_ms_per_s: f64,
    /// Uniform noise on every clock read, ± milliseconds (`--random-variation`).
    pub variation_ms: f64,
}

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Its id, as its peers name it (`[A-Za-z0-9_-]`, at most 32 characters).
    pub id: String,
    /// The proposal's configuration.
    pub config: TimeSyncConfig,
    /// Its peers: id and gRPC address.
    pub peers: Vec<(String, SocketAddr)>,
    /// Its simulated clock.
    pub simulation: Simulation,
    /// Seeds the read variation.
    pub seed: u64,
    /// True time (share one between the nodes of one process).
    pub truth: TrueTime,
    /// Tokens and TLS.
    pub security: Security,
}

/// How a node's RPCs are secured (both off by default).
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Per-node keys: requests carry a token minted with the caller's key; requests without a
    /// valid one are refused with `UNAUTHENTICATED`. The node's own id must have a key.
    pub keys: Option<NodeKeys>,
    /// Mutual TLS.
    pub tls: Option<TlsFiles>,
}

/// Mutual TLS material, PEM: the cluster's CA, this node's certificate and key, and the name
/// the peers' certificates are checked against.
#[derive(Clone)]
pub struct TlsFiles {
    /// The CA that signs every node's certificate (PEM).
    pub ca: Vec<u8>,
    /// This node's certificate chain (PEM).
    pub cert: Vec<u8>,
    /// This node's private key (PEM).
    pub key: Vec<u8>,
    /// The DNS name the peers' certificates must carry (e.g. `localhost`).
    pub domain: String,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("TlsFiles")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// Why a node cannot start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// An id with characters other than `[A-Za-z0-9_-]`, empty, or too long.
    #[error("node id {0:?} must be 1–32 characters of A–Z, a–z, 0–9, '-' or '_'")]
    BadId(String),
    /// A peer named twice, or named like the node itself.
    #[error("peer {0:?} is named twice or is the node itself")]
    DuplicatePeer(String),
    /// The configuration is out of range.
    #[error("configuration: {0}")]
    Config(#[from] chronoscope::sync::timesync::ConfigError),
    /// The listener's address cannot be read.
    #[error("listener: {0}")]
    Io(#[from] io::Error),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Keys were given but none for this node.
    #[error("the key file has no key for node {0:?}")]
    NoOwnKey(String),
}

/// Whether `id` is a valid node id.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Faults on one link, as seen by this node's server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LinkFaults {
    /// Extra delay of the peer → us leg, seconds (slept before T2).
    pub delay_in: f64,
    /// Extra delay of the us → peer leg, seconds (slept after T3).
    pub delay_out: f64,
    /// The link is cut: the peer's requests go unanswered, and ours to it are not sent.
    pub cut: bool,
}

/// A line of a node's log: steps, falsetickers, fallbacks, resynchronisations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    /// Seconds since true time's origin.
    pub at: f64,
    /// What happened.
    pub text: String,
}

/// A peer Marzullo's algorithm rejected, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    /// The peer.
    pub peer: String,
    /// Seconds since true time's origin, the last round it was rejected.
    pub at: f64,
    /// Why, in words and numbers.
    pub why: String,
}

/// A node's state for the `sources`/`tracking` tables, the page and the tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeStatus {
    /// The node.
    pub id: String,
    /// Seconds since true time's origin.
    pub at: f64,
    /// Its clock minus true time (the host clock) now, seconds, without read noise.
    pub offset_to_truth: f64,
    /// Its clock's effective rate error now, ppm (simulated drift, corrections and slew).
    pub rate_ppm: f64,
    /// The daemon's `tracking` line.
    pub tracking: Tracking,
    /// The daemon's `sources` table.
    pub sources: Vec<SourceRow>,
    /// Rounds run.
    pub rounds: u64,
    /// Corrections stepped (past `step_threshold`).
    pub steps: u64,
    /// What the last round decided.
    pub last_event: Option<RoundEvent>,
    /// Peers rejected as falsetickers in the last round that synchronised.
    pub rejected: Vec<Rejection>,
    /// The simulation now (the page's controls change it).
    pub simulation: Simulation,
    /// The constant added to the times it serves, seconds (0: honest).
    pub lie: f64,
    /// Requests its server refused for a missing, wrong or expired token.
    pub auth_failures: u64,
    /// The newest log lines, oldest first.
    pub log: Vec<LogEntry>,
}

/// The mutable part of a node, behind one lock (held for microseconds, never across `.await`).
struct State {
    /// The node's clock.
    clock: NodeClock,
    /// The daemon's state machine.
    sync: TimeSync,
    /// Rounds run.
    rounds: u64,
    /// Steps applied.
    steps: u64,
    /// The last round's outcome.
    last_event: Option<RoundEvent>,
    /// Falsetickers of the last synchronised round.
    rejected: Vec<Rejection>,
    /// The simulation (kept for the status; the clock holds the live values).
    simulation: Simulation,
    /// Served-time lie, seconds.
    lie: f64,
    /// Per peer, the faults on our link with it.
    links: BTreeMap<String, LinkFaults>,
    /// Recent log lines.
    log: VecDeque<LogEntry>,
}

struct Inner {
    /// The node id.
    id: String,
    /// Its peers, by id.
    peers: BTreeMap<String, SocketAddr>,
    /// True time.
    truth: TrueTime,
    /// Tokens and TLS.
    security: Security,
    /// Requests refused by the interceptor.
    auth_failures: AtomicU64,
    /// Everything that changes.
    state: Mutex<State>,
}

/// One time service node (cheap to clone: a handle).
#[derive(Clone)]
pub struct TimeSyncNode {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TimeSyncNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeSyncNode")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

impl TimeSyncNode {
    /// A node, not yet running; checks the id, the peers and the configuration.
    pub fn new(options: NodeOptions) -> Result<Self, NodeError> {
        options.config.validate()?;
        if !valid_id(&options.id) {
            return Err(NodeError::BadId(options.id));
        }
        let mut peers = BTreeMap::new();
        for (name, addr) in &options.peers {
            if !valid_id(name) {
                return Err(NodeError::BadId(name.clone()));
            }
            if *name == options.id || peers.insert(name.clone(), *addr).is_some() {
                return Err(NodeError::DuplicatePeer(name.clone()));
            }
        }
        if let Some(keys) = &options.security.keys {
            if !keys.contains(&options.id) {
                return Err(NodeError::NoOwnKey(options.id));
            }
        }
        let sim = options.simulation;
        let clock = NodeClock::new(
            sim.skew_ms / 1e3,
            sim.drift_ms_per_s / 1e3,
            sim.variation_ms / 1e3,
            options.seed,
        );
        let state = State {
            clock,
            sync: TimeSync::new(options.config, peers.keys().cloned()),
            rounds: 0,
            steps: 0,
            last_event: None,
            rejected: Vec::new(),
            simulation: sim,
            lie: 0.0,
            links: BTreeMap::new(),
            log: VecDeque::new(),
        };
        Ok(TimeSyncNode {
            inner: Arc::new(Inner {
                id: options.id,
                peers,
                truth: options.truth,
                security: options.security,
                auth_failures: AtomicU64::new(0),
                state: Mutex::new(state),
            }),
        })
    }

    /// The node id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the node's clock: Unix nanoseconds, read variation included.
    pub fn now_unix_nanos(&self) -> i128 {
        let elapsed = self.inner.truth.elapsed();
        let offset = self.state().clock.offset_at(elapsed);
        self.inner.truth.unix_nanos_at(elapsed) + (offset * 1e9).round() as i128
    }

    /// The node's status now.
    pub fn status(&self) -> NodeStatus {
        let at = self.inner.truth.elapsed();
        let mut s = self.state();
        // Advance the clock to now (the read's noise is discarded).
        let _ = s.clock.offset_at(at);
        let correction = s.clock.total_correction();
        NodeStatus {
            id: self.inner.id.clone(),
            at,
            offset_to_truth: s.clock.true_offset(),
            rate_ppm: s.clock.rate_ppm(),
            tracking: s.sync.tracking(at),
            sources: s.sync.sources(at, correction),
            rounds: s.rounds,
            steps: s.steps,
            last_event: s.last_event.clone(),
            rejected: s.rejected.clone(),
            simulation: s.simulation,
            lie: s.lie,
            auth_failures: self.inner.auth_failures.load(Ordering::Relaxed),
            log: s.log.iter().cloned().collect(),
        }
    }

    /// Moves the clock by `delta` seconds (an injected fault, not a correction).
    pub fn jump(&self, delta: f64) {
        let at = self.inner.truth.elapsed();
        let mut s = self.state();
        let _ = s.clock.offset_at(at);
        s.clock.jump(delta);
        s.simulation.skew_ms += delta * 1e3;
        push_log(
            &mut s.log,
            at,
            format!("clock jumped {:+.1} ms (fault)", delta * 1e3),
        );
    }

    /// Sets the simulated drift, milliseconds per second.
    pub fn set_drift(&self, ms_per_s: f64) {
        let at = self.inner.truth.elapsed();
        let mut s = self.state();
        let _ = s.clock.offset_at(at);
        s.clock.set_drift(ms_per_s / 1e3);
        s.simulation.drift_ms_per_s = ms_per_s;
    }

    /// Sets the read variation, ± milliseconds.
    pub fn set_variation(&self, ms: f64) {
        let mut s = self.state();
        s.clock.set_variation(ms / 1e3);
        s.simulation.variation_ms = ms.abs();
    }

    /// Serves times shifted by `lie` seconds (0: honest). Its own clock is not affected.
    pub fn set_lie(&self, lie: f64) {
        self.state().lie = lie;
    }

    /// Sets the faults of our link with `peer` (as seen by our server and our daemon).
    pub fn set_link(&self, peer: &str, faults: LinkFaults) {
        self.state().links.insert(peer.to_owned(), faults);
    }

    /// The faults of our link with `peer`.
    pub fn link(&self, peer: &str) -> LinkFaults {
        self.state().links.get(peer).copied().unwrap_or_default()
    }

    /// Cuts (or heals) every link of this node: a partition of one.
    pub fn set_partitioned(&self, cut: bool) {
        let mut s = self.state();
        for peer in self.inner.peers.keys() {
            s.links.entry(peer.clone()).or_default().cut = cut;
        }
    }

    /// Serves `GetTime` on `listener` and runs the daemon until `shutdown` fires.
    pub async fn run(self, listener: TcpListener, shutdown: Shutdown) -> Result<(), NodeError> {
        let service = TimeSyncServiceServer::new(Handler { node: self.clone() })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let node = self.clone();
        let service = InterceptedService::new(service, move |r| node.authenticate(r));
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let mut builder = Server::builder();
        if let Some(tls) = &self.inner.security.tls {
            builder = builder.tls_config(
                ServerTlsConfig::new()
                    .identity(Identity::from_pem(&tls.cert, &tls.key))
                    .client_ca_root(Certificate::from_pem(&tls.ca)),
            )?;
        }
        let server = builder
            .concurrency_limit_per_connection(64)
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, {
                let shutdown = shutdown.clone();
                async move { shutdown.fired().await }
            });
        let daemon = self.daemon(shutdown.clone());
        let (served, ()) = tokio::join!(server, daemon);
        served.map_err(NodeError::from)
    }

    /// The interceptor: with keys, the caller is the node its token names (or the request is
    /// refused and counted); without, the node its header names.
    fn authenticate(&self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = match &self.inner.security.keys {
            Some(keys) => match keys.check(&request, unix_secs()) {
                Ok(id) => id,
                Err(e) => {
                    self.inner.auth_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("timesync {}: refused a request: {e}", self.inner.id);
                    return Err(e.into());
                }
            },
            None => request
                .metadata()
                .get(NODE_HEADER)
                .and_then(|v| v.to_str().ok())
                .filter(|id| valid_id(id))
                .unwrap_or_default()
                .to_owned(),
        };
        request.extensions_mut().insert(Caller(caller));
        Ok(request)
    }

    /// The daemon: a round, then sleep as the state machine says, until `shutdown` fires.
    async fn daemon(self, shutdown: Shutdown) {
        let timeout = Duration::from_secs_f64(self.state().sync.config().timeout);
        let tls = self.inner.security.tls.as_ref().map(|t| {
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&t.ca))
                .identity(Identity::from_pem(&t.cert, &t.key))
                .domain_name(t.domain.clone())
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        let clients: HashMap<String, PeerClient> = self
            .inner
            .peers
            .iter()
            .filter_map(|(name, addr)| {
                let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}")).ok()?;
                if let Some(tls) = &tls {
                    endpoint = match endpoint.tls_config(tls.clone()) {
                        Ok(e) => e,
                        Err(e) => {
                            tracing::error!("timesync {}: TLS for {name}: {e}", self.inner.id);
                            return None;
                        }
                    };
                }
                let channel = endpoint
                    .connect_timeout(timeout)
                    .timeout(timeout)
                    .tcp_nodelay(true)
                    .connect_lazy();
                let client = TimeSyncServiceClient::new(channel)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES);
                Some((
                    name.clone(),
                    PeerClient {
                        client,
                        warm: Arc::new(AtomicBool::new(false)),
                    },
                ))
            })
            .collect();
        loop {
            let to_poll = self.state().sync.peers_to_poll();
            let polls = to_poll.into_iter().map(|name| {
                let client = clients.get(&name).cloned();
                let node = self.clone();
                async move {
                    let Some(c) = client else {
                        return vec![(name, PollResult::Failed("no address".into()))];
                    };
                    // A peer not heard from yet (or since a failure) gets a burst, as chrony's
                    // iburst: the clock filter then starts from the quickest of several
                    // exchanges instead of one that may have queued behind a busy host.
                    let burst = if c.warm.load(Ordering::Relaxed) {
                        1
                    } else {
                        BURST
                    };
                    let mut results = Vec::with_capacity(burst);
                    for _ in 0..burst {
                        let r = node.poll(&name, c.clone(), timeout).await;
                        let failed = matches!(r, PollResult::Failed(_));
                        results.push((name.clone(), r));
                        if failed {
                            break;
                        }
                    }
                    results
                }
            });
            let results = tokio::select! {
                () = shutdown.fired() => return,
                r = futures_util::future::join_all(polls) => r.into_iter().flatten().collect(),
            };
            let next = self.apply_round(results);
            tokio::select! {
                () = shutdown.fired() => return,
                () = tokio::time::sleep(Duration::from_secs_f64(next.clamp(0.01, 3600.0))) => {}
            }
        }
    }

    /// One exchange with `peer`: T1, `GetTime`, T4, and the reply's T2 and T3.
    async fn poll(&self, peer: &str, peer_client: PeerClient, timeout: Duration) -> PollResult {
        if self.link(peer).cut {
            // Our side of a cut link: the request is lost; the caller learns it by its timeout.
            tokio::time::sleep(timeout).await;
            peer_client.warm.store(false, Ordering::Relaxed);
            return PollResult::Failed(format!("timeout after {} ms", timeout.as_millis()));
        }
        let PeerClient { mut client, warm } = peer_client;
        if !warm.load(Ordering::Relaxed) {
            // The first call on a new connection also carries the TCP and HTTP/2 handshakes,
            // all on the request leg: its offset would be biased by half of them. Warm the
            // connection with a call whose answer is not used.
            let warmup = self.request(0, timeout);
            if let Ok(Err(e)) = tokio::time::timeout(timeout, client.get_time(warmup)).await {
                return PollResult::Failed(describe_status(&e));
            }
        }
        let t1 = self.now_unix_nanos();
        let Ok(client_time) = i64::try_from(t1) else {
            return PollResult::Failed("our clock is outside the i64 nanosecond range".into());
        };
        let request = self.request(client_time, timeout);
        let sent = Instant::now();
        let answer = tokio::time::timeout(timeout, client.get_time(request)).await;
        // As the server does: T4 from the monotonic clock, so read variation cannot make the
        // round trip shorter than the server's residence.
        let t4 = t1 + sent.elapsed().as_nanos() as i128;
        warm.store(matches!(answer, Ok(Ok(_))), Ordering::Relaxed);
        match answer {
            Err(_) => PollResult::Failed(format!("timeout after {} ms", timeout.as_millis())),
            Ok(Err(status)) => PollResult::Failed(describe_status(&status)),
            Ok(Ok(reply)) => match exchange_from_reply(t1, &reply.into_inner(), t4) {
                Ok(x) => PollResult::Answered(x),
                Err(why) => PollResult::Failed(why),
            },
        }
    }

    /// A `GetTime` request from this node.
    fn request(&self, client_time: i64, timeout: Duration) -> Request<TimeRequest> {
        let mut request = Request::new(TimeRequest { client_time });
        request.set_timeout(timeout);
        if let Ok(v) = MetadataValue::try_from(self.inner.id.as_str()) {
            request.metadata_mut().insert(NODE_HEADER, v);
        }
        if let Some(keys) = &self.inner.security.keys {
            keys.authorize(&mut request, &self.inner.id, unix_secs());
        }
        request
    }

    /// Hands a round's results to the state machine and applies its decision to the clock;
    /// returns the seconds to the next round.
    fn apply_round(&self, results: Vec<(String, PollResult)>) -> f64 {
        let at = self.inner.truth.elapsed();
        let mut guard = self.state();
        let s = &mut *guard;
        let _ = s.clock.offset_at(at);
        let was_synced = s.sync.tracking(at).synced;
        let had_synced = s.sync.tracking(at).syncs > 0;
        let failed_before = s.sync.tracking(at).failed_rounds;
        let decision: Decision = s.sync.round(at, s.clock.total_correction(), results);
        s.rounds += 1;
        let adjustment = s.clock.apply(&decision);
        let id = &self.inner.id;
        match &decision.event {
            RoundEvent::Synced {
                offset,
                agreeing,
                falsetickers,
            } => {
                if !was_synced && had_synced {
                    let failed = s.sync.tracking(at).failed_rounds - failed_before;
                    let text = format!(
                        "resynchronised with {agreeing} peers after {failed} failed round(s)"
                    );
                    tracing::info!("timesync {id}: {text}");
                    push_log(&mut s.log, at, text);
                }
                let tracking = s.sync.tracking(at);
                let sources = s.sync.sources(at, s.clock.total_correction());
                s.rejected = falsetickers
                    .iter()
                    .map(|peer| {
                        let row = sources.iter().find(|r| &r.peer == peer);
                        let why = match row.and_then(|r| r.offset.zip(r.error)) {
                            Some((o, e)) => format!(
                                "offset {:+.1} ms ± {:.1} ms misses the interval {agreeing} peers agree on ({:+.1} ms ± {:.1} ms)",
                                o * 1e3,
                                e * 1e3,
                                offset * 1e3,
                                tracking.error_bound * 1e3
                            ),
                            None => "outside the majority's interval".to_owned(),
                        };
                        Rejection {
                            peer: peer.clone(),
                            at,
                            why,
                        }
                    })
                    .collect();
                for r in &s.rejected {
                    tracing::warn!("timesync {id}: falseticker {}: {}", r.peer, r.why);
                }
                if !s.rejected.is_empty() {
                    let text = format!(
                        "falseticker(s) rejected: {}",
                        s.rejected
                            .iter()
                            .map(|r| format!("{} ({})", r.peer, r.why))
                            .collect::<Vec<_>>()
                            .join("; ")
                    );
                    push_log(&mut s.log, at, text);
                }
                if let Some(Correction::Step { delta }) = decision.correction {
                    s.steps += 1;
                    let text = format!(
                        "stepped the clock by {:+.1} ms (past the {:.0} ms step threshold)",
                        delta * 1e3,
                        s.sync.config().step_threshold * 1e3
                    );
                    tracing::warn!("timesync {id}: {text}");
                    push_log(&mut s.log, at, text);
                }
                tracing::debug!(
                    "timesync {id}: synced, offset {:+.3} ms, {agreeing} agreeing, {:?}",
                    offset * 1e3,
                    adjustment.map(|a| matches!(a, Adjustment::Stepped { .. }))
                );
            }
            RoundEvent::TooFewPeers { answered, needed } => {
                if was_synced || !had_synced && s.rounds == 1 {
                    let text = format!(
                        "falling back to the local clock: {answered} of {needed} needed peers usable; retrying in {:.1} s",
                        decision.next_poll_in
                    );
                    tracing::warn!("timesync {id}: {text}");
                    push_log(&mut s.log, at, text);
                }
            }
            RoundEvent::NoMajority { answered } => {
                if was_synced || s.rounds == 1 {
                    let text = format!(
                        "falling back to the local clock: the {answered} answers have no majority intersection"
                    );
                    tracing::warn!("timesync {id}: {text}");
                    push_log(&mut s.log, at, text);
                }
            }
        }
        s.last_event = Some(decision.event.clone());
        decision.next_poll_in
    }
}

/// The host clock, Unix seconds (token expiry is judged by it, not by a simulated clock).
fn unix_secs() -> u64 {
    u64::try_from(HostClock.now_unix_nanos() / 1_000_000_000).unwrap_or(0)
}

fn push_log(log: &mut VecDeque<LogEntry>, at: f64, text: String) {
    if log.len() == LOG_LEN {
        log.pop_front();
    }
    log.push_back(LogEntry { at, text });
}

/// A gRPC status in one line.
fn describe_status(status: &Status) -> String {
    let message: String = status.message().chars().take(120).collect();
    if message.is_empty() {
        format!("{:?}", status.code())
    } else {
        format!("{:?}: {message}", status.code())
    }
}

/// The exchange a reply gives, or why the reply is refused. `t1` and `t4` are our clock's
/// readings around the call, Unix nanoseconds.
pub fn exchange_from_reply(t1: i128, reply: &TimeReply, t4: i128) -> Result<Exchange, String> {
    let residence = i128::from(reply.round_trip_time);
    if residence < 0 {
        return Err(format!(
            "implausible reply: negative residence {residence} ns"
        ));
    }
    if residence > t4 - t1 {
        return Err(format!(
            "implausible reply: residence {residence} ns longer than the round trip {} ns",
            t4 - t1
        ));
    }
    let t3 = i128::from(reply.server_time);
    Ok(Exchange::from_unix_nanos(t1, t3 - residence, t3, t4))
}

/// The daemon's client for one peer.
#[derive(Clone)]
struct PeerClient {
    /// The generated client on a lazily connected channel (it reconnects by itself).
    client: TimeSyncServiceClient<Channel>,
    /// Whether the last call succeeded, so the connection is established.
    warm: Arc<AtomicBool>,
}

/// The gRPC side of a node.
struct Handler {
    node: TimeSyncNode,
}

#[tonic::async_trait]
impl TimeSyncService for Handler {
    async fn get_time(&self, request: Request<TimeRequest>) -> Result<Response<TimeReply>, Status> {
        // The interceptor named the caller (from its token when keys are on).
        let caller = request.extensions().get::<Caller>().map(|c| c.0.clone());
        let link = caller
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| self.node.link(c))
            .unwrap_or_default();
        if link.cut {
            tokio::time::sleep(CUT_HOLD).await;
            return Err(Status::unavailable("link cut"));
        }
        if link.delay_in > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(link.delay_in.min(60.0))).await;
        }
        // One clock read per exchange end, durations by the monotonic clock: with read
        // variation, a second read could put T3 before T2.
        let t2 = self.node.now_unix_nanos();
        let received = Instant::now();
        let client_time = i128::from(request.get_ref().client_time);
        let lie = (self.node.state().lie * 1e9).round() as i128;
        let t3 = t2 + received.elapsed().as_nanos() as i128;
        let out_of_range = |_| Status::internal("server clock outside the i64 nanosecond range");
        let reply = TimeReply {
            server_time: i64::try_from(t3 + lie).map_err(out_of_range)?,
            round_trip_time: i64::try_from(t3 - t2).map_err(out_of_range)?,
            offset: (t2 + lie - client_time) as f64 / 1e9,
        };
        if link.delay_out > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(link.delay_out.min(60.0))).await;
        }
        Ok(Response::new(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_give_the_four_timestamps_and_implausible_ones_are_refused() {
        // Server 5 ms ahead, 1 ms each way, 0.2 ms residence.
        let t1 = 1_000_000_000_000_000_000i128;
        let t2 = t1 + 6_000_000;
        let t3 = t2 + 200_000;
        let t4 = t1 + 2_200_000;
        let reply = TimeReply {
            server_time: t3 as i64,
            round_trip_time: (t3 - t2) as i64,
            offset: 0.0,
        };
        let x = exchange_from_reply(t1, &reply, t4).unwrap();
        assert!((x.offset() - 0.005).abs() < 1e-9, "{}", x.offset());
        assert!((x.delay() - 0.002).abs() < 1e-9, "{}", x.delay());
        let negative = TimeReply {
            round_trip_time: -1,
            ..reply
        };
        assert!(exchange_from_reply(t1, &negative, t4)
            .unwrap_err()
            .contains("negative residence"));
        let too_long = TimeReply {
            round_trip_time: 3_000_000,
            ..reply
        };
        assert!(exchange_from_reply(t1, &too_long, t4)
            .unwrap_err()
            .contains("longer than the round trip"));
        // Extreme values do not overflow.
        let extreme = TimeReply {
            server_time: i64::MIN,
            round_trip_time: 0,
            offset: f64::NAN,
        };
        assert!(exchange_from_reply(i128::from(i64::MAX), &extreme, i128::from(i64::MAX)).is_ok());
    }

    #[test]
    fn ids_are_checked() {
        assert!(valid_id("node-1_A"));
        assert!(!valid_id(""));
        assert!(!valid_id("a b"));
        assert!(!valid_id(&"x".repeat(33)));
    }
}
