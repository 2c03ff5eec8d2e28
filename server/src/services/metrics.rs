//! `/metrics` in the Prometheus text exposition format (version 0.0.4, the format Prometheus
//! scrapes; Prometheus' "Exposition formats" document), encoded by prometheus-client, the
//! Prometheus project's Rust client: the relay's counters for `chronoscope serve` and every
//! time service node's state for `chronoscope timesync serve|cluster --metrics ADDR`.
//!
//! Two kinds of metric, as Prometheus' instrumentation guide separates them:
//! - Events are counted where they happen: the relay calls [`relay()`]'s hooks (a connection
//!   opened or closed, a frame refused, a durable commit with its latency). They are
//!   process-wide, as a Prometheus client's default registry is: one `chronoscope serve` is one
//!   process.
//! - State is read at scrape time: a [`NodesCollector`] turns each node's [`NodeStatus`] (the
//!   same numbers its `sources` table and `tracking` line print) into gauges and counters, so a
//!   scrape never shows a value the node has not got, and the node keeps no second copy.
//!
//! Invariant: a scrape never holds up the service. Hooks are atomic increments; a collector
//! takes each node's status lock once, for microseconds; the output is bounded by the number
//! of nodes and peers (at most 26 × 25 peer series).

use std::{
    fmt,
    sync::{Arc, LazyLock},
    time::Duration,
};

use axum::{
    extract::State,
    http::{header::CONTENT_TYPE, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use prometheus_client::{
    collector::Collector,
    encoding::{prometheus_text, DescriptorEncoder, EncodeMetric},
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::{exponential_buckets, Histogram},
        MetricType,
    },
    registry::{Registry, Unit},
};
use tokio::net::TcpListener;

use super::timesync::{NodeStatus, TimeSyncNode};
use crate::{AppState, Shutdown};
use chronoscope::sync::timesync::SourceState;

/// The relay's event counters (see [`relay()`]).
#[derive(Debug)]
pub struct RelayMetrics {
    connections_open: Gauge,
    connections: Counter,
    ops: Counter,
    commit_seconds: Histogram,
    frames_refused: Family<[(&'static str, &'static str); 1], Counter>,
}

/// Why the relay refused a frame (the `reason` label of `frames_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Answered with an error frame (malformed, unknown, before hello, over the frame limit,
    /// a probe over its caps, a hello refused); the connection stays open.
    ErrorFrame,
    /// Over the WebSocket layer's hard limit: the connection closed with 1009.
    TooBig,
    /// A binary frame.
    Binary,
}

impl Refused {
    fn label(self) -> &'static str {
        match self {
            Refused::ErrorFrame => "error_frame",
            Refused::TooBig => "too_big",
            Refused::Binary => "binary",
        }
    }
}

/// Counts an open connection until dropped.
#[derive(Debug)]
#[must_use = "the connection counts as open until this is dropped"]
pub struct OpenConnection(&'static RelayMetrics);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_open.dec();
    }
}

impl RelayMetrics {
    fn new() -> Self {
        RelayMetrics {
            connections_open: Gauge::default(),
            connections: Counter::default(),
            ops: Counter::default(),
            // 100 µs … 3.3 s: an fsync on a fast disk to one on a loaded VM.
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            frames_refused: Family::default(),
        }
    }

    /// A WebSocket connection opened; it counts as open until the guard is dropped.
    pub fn connection(&'static self) -> OpenConnection {
        self.connections.inc();
        self.connections_open.inc();
        OpenConnection(self)
    }

    /// A frame was refused.
    pub fn refused(&self, why: Refused) {
        self.frames_refused
            .get_or_create(&[("reason", why.label())])
            .inc();
    }

    /// A durable commit of `ops` operations took `took` (they are then relayed to the room).
    pub fn committed(&self, ops: usize, took: Duration) {
        self.ops.inc_by(ops as u64);
        self.commit_seconds.observe(took.as_secs_f64());
    }

    fn register(&'static self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("chronoscope_relay");
        r.register(
            "connections_open",
            "WebSocket connections open now",
            self.connections_open.clone(),
        );
        r.register(
            "connections",
            "WebSocket connections accepted",
            self.connections.clone(),
        );
        r.register(
            "ops",
            "Operations durably committed and relayed to their room",
            self.ops.clone(),
        );
        r.register_with_unit(
            "commit",
            "Latency of the op log's durable commits (one redb write transaction, fsync included)",
            Unit::Seconds,
            self.commit_seconds.clone(),
        );
        r.register(
            "frames_refused",
            "Client frames the relay refused, by reason",
            self.frames_refused.clone(),
        );
    }
}

static RELAY: LazyLock<RelayMetrics> = LazyLock::new(RelayMetrics::new);

/// The relay's counters (process-wide).
pub fn relay() -> &'static RelayMetrics {
    &RELAY
}

/// The rooms gauge, read from the relay at scrape time.
#[derive(Debug)]
struct RoomsCollector(Arc<AppState>);

impl Collector for RoomsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let rooms = ConstGauge::new(self.0.relay.loaded_rooms() as i64);
        let m = encoder.encode_descriptor(
            "chronoscope_relay_rooms",
            "Rooms loaded (with a running actor) now",
            None,
            MetricType::Gauge,
        )?;
        rooms.encode(m)
    }
}

/// The registry of `chronoscope serve`: the relay's counters and rooms, and the hosted time
/// service cluster's nodes if there is one.
pub fn serve_registry(state: Arc<AppState>, nodes: Vec<TimeSyncNode>) -> Registry {
    let mut registry = Registry::default();
    relay().register(&mut registry);
    registry.register_collector(Box::new(RoomsCollector(state)));
    if !nodes.is_empty() {
        registry.register_collector(Box::new(NodesCollector::new(nodes)));
    }
    registry
}

/// The time service nodes' state at scrape time, labelled by `node` (and `peer`).
#[derive(Debug)]
pub struct NodesCollector {
    nodes: Vec<TimeSyncNode>,
}

impl NodesCollector {
    /// A collector over these nodes.
    pub fn new(nodes: Vec<TimeSyncNode>) -> Self {
        NodesCollector { nodes }
    }
}

/// A family's samples for one node: the peer label (if per peer) and the value.
type Samples = Vec<(Option<String>, f64)>;

/// One metric family of the node collector: a name, its help, its type, and per status the
/// samples (labels, value).
struct NodeFamily {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    samples: fn(&NodeStatus) -> Samples,
}

fn one(v: Option<f64>) -> Samples {
    v.into_iter().map(|v| (None, v)).collect()
}

fn per_peer(
    s: &NodeStatus,
    value: impl Fn(&chronoscope::sync::timesync::SourceRow) -> Option<f64>,
) -> Samples {
    s.sources
        .iter()
        .filter_map(|r| value(r).map(|v| (Some(r.peer.clone()), v)))
        .collect()
}

fn bool01(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

const NODE_FAMILIES: &[NodeFamily] = &[
    NodeFamily {
        name: "timesync_offset_seconds",
        help: "The last combined offset measured, peers minus this node",
        kind: MetricType::Gauge,
        samples: |s| one(s.tracking.last_offset),
    },
    NodeFamily {
        name: "timesync_true_offset_seconds",
        help: "This node's clock minus true time (the host clock), without read noise",
        kind: MetricType::Gauge,
        samples: |s| one(Some(s.offset_to_truth)),
    },
    NodeFamily {
        name: "timesync_error_bound_seconds",
        help: "The bound on this node's error now (Marzullo's half-width at the last sync, grown since)",
        kind: MetricType::Gauge,
        samples: |s| one(Some(s.tracking.error_bound)),
    },
    NodeFamily {
        name: "timesync_drift_estimate_ppm",
        help: "The estimated frequency error of this node's clock, ppm (positive: fast)",
        kind: MetricType::Gauge,
        samples: |s| one(s.tracking.frequency_ppm),
    },
    NodeFamily {
        name: "timesync_synced",
        help: "1 if the last round synchronised, 0 if the node fell back to its own clock",
        kind: MetricType::Gauge,
        samples: |s| one(Some(bool01(s.tracking.synced))),
    },
    NodeFamily {
        name: "timesync_syncs",
        help: "Rounds that synchronised",
        kind: MetricType::Counter,
        samples: |s| one(Some(s.tracking.syncs as f64)),
    },
    NodeFamily {
        name: "timesync_sync_failures",
        help: "Rounds that did not synchronise (too few peers, no majority)",
        kind: MetricType::Counter,
        samples: |s| one(Some(s.tracking.failed_rounds as f64)),
    },
    NodeFamily {
        name: "timesync_steps",
        help: "Corrections stepped (past the step threshold) instead of slewed",
        kind: MetricType::Counter,
        samples: |s| one(Some(s.steps as f64)),
    },
    NodeFamily {
        name: "timesync_auth_failures",
        help: "Requests this node's server refused as unauthenticated (missing, wrong or expired token)",
        kind: MetricType::Counter,
        samples: |s| one(Some(s.auth_failures as f64)),
    },
    NodeFamily {
        name: "timesync_peer_rtt_seconds",
        help: "The filtered round-trip time to each peer",
        kind: MetricType::Gauge,
        samples: |s| per_peer(s, |r| r.rtt),
    },
    NodeFamily {
        name: "timesync_peer_offset_seconds",
        help: "The filtered offset of each peer, peer minus this node",
        kind: MetricType::Gauge,
        samples: |s| per_peer(s, |r| r.offset),
    },
    NodeFamily {
        name: "timesync_peer_reachable",
        help: "1 if the peer answered the last poll",
        kind: MetricType::Gauge,
        samples: |s| per_peer(s, |r| Some(bool01(r.reach & 1 == 1))),
    },
    NodeFamily {
        name: "timesync_peer_reach",
        help: "NTP's reach register of each peer: one bit per round, newest lowest",
        kind: MetricType::Gauge,
        samples: |s| per_peer(s, |r| Some(f64::from(r.reach))),
    },
    NodeFamily {
        name: "timesync_peer_falseticker",
        help: "1 if Marzullo's algorithm rejected the peer as a falseticker",
        kind: MetricType::Gauge,
        samples: |s| per_peer(s, |r| Some(bool01(r.state == SourceState::Falseticker))),
    },
];

impl Collector for NodesCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let statuses: Vec<NodeStatus> = self.nodes.iter().map(TimeSyncNode::status).collect();
        for family in NODE_FAMILIES {
            // The prometheus text encoder appends `_total` to counters.
            let mut f = encoder.encode_descriptor(family.name, family.help, None, family.kind)?;
            for s in &statuses {
                for (peer, value) in (family.samples)(s) {
                    let mut labels = vec![("node", s.id.clone())];
                    if let Some(p) = peer {
                        labels.push(("peer", p));
                    }
                    let m = f.encode_family(&labels)?;
                    match family.kind {
                        MetricType::Counter => ConstCounter::new(value as u64).encode(m)?,
                        _ => ConstGauge::new(value).encode(m)?,
                    }
                }
            }
        }
        Ok(())
    }
}

/// A registry of the given time service nodes.
pub fn nodes_registry(nodes: Vec<TimeSyncNode>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(NodesCollector::new(nodes)));
    registry
}

/// `GET /metrics` for `registry`.
pub fn router(registry: Registry) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Arc::new(registry))
}

async fn scrape(State(registry): State<Arc<Registry>>) -> Response {
    let mut body = String::new();
    match prometheus_text::encode(&mut body, &registry) {
        Ok(()) => ([(CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], body).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics\n",
        )
            .into_response(),
    }
}

/// Serves `GET /metrics` for `registry` on `listener` until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    registry: Registry,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    axum::serve(listener, router(registry))
        .with_graceful_shutdown(async move { shutdown.fired().await })
        .await
}
