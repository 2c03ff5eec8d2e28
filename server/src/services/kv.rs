//! The Dynamo-style key-value store over HTTP (the seed's projects 3 and 10): N nodes in one
//! process, each with its own [`Node`] state, replicating every write to the key's other
//! replicas asynchronously over links with a delay and a cut switch; anti-entropy repairs
//! what a cut dropped, sending only what the other side lacks.
//!
//! HTTP, so `curl` works as the seed shows:
//! - `PUT /kv/nodes/{n}/keys/{key}` — body: a JSON value; header `X-Causal-Context` (optional):
//!   the context of an earlier read. Answers like a read of the key right after the write
//!   (Riak's `return_body`), with the new context in the body and the header.
//! - `GET /kv/nodes/{n}/keys/{key}` — `{"value": [...], "vector_clock": {"Node1": 1},
//!   "status": "OK" | "CONFLICT", "context": "..."}`; 404 with `"status": "NOT_FOUND"`.
//! - `DELETE /kv/nodes/{n}/keys/{key}` — with the context: a tombstone that replicates.
//! - `PUT /kv/links/{from}/{to}` — `{"delay_ms": 200}` and/or `{"cut": true}`; healing a cut
//!   runs anti-entropy both ways at once. `GET /kv/links` lists them.
//! - `GET /kv/nodes` — every node's keys with siblings, their clocks and metadata bytes (what
//!   the page draws); `GET /kv/ring/{key}` — the key's preference list; `POST /kv/anti-entropy`
//!   — one exchange between every connected pair; `GET /kv/stats`.
//!
//! **Hostile input:** bodies are capped at [`MAX_BODY`]; keys at [`MAX_KEY`] bytes of
//! `[A-Za-z0-9._~-]`; a bad node number, JSON body or context is a 4xx with a one-line JSON
//! `{"error": ...}`; nothing a client sends can panic the service.
//!
//! **Invariant:** every state change happens under one lock and, with `--data-dir`, is
//! written to `node{n}.json` (by rename) before the answer is sent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chronoscope::replication::kv::{
    node_name, read_result, ExchangeBytes, Node, Ring, Scheme, Versioned,
};
use chronoscope::NodeId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The largest request body accepted, bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// The longest key accepted, bytes.
pub const MAX_KEY: usize = 256;
/// The most nodes a store may have.
pub const MAX_NODES: u32 = 16;
/// The header carrying the causal context.
pub const CONTEXT_HEADER: &str = "x-causal-context";

/// How to run the store.
#[derive(Debug, Clone)]
pub struct KvConfig {
    /// Number of nodes, 1..=[`MAX_NODES`].
    pub nodes: u32,
    /// The clock scheme.
    pub scheme: Scheme,
    /// Replicas per key (the preference list's length), 1..=nodes.
    pub replicas: usize,
    /// Virtual nodes per node on the ring.
    pub vnodes: u32,
    /// Initial one-way delay of every link.
    pub delay: Duration,
    /// Where to keep each node's state (`None`: in memory only).
    pub data_dir: Option<PathBuf>,
}

impl Default for KvConfig {
    fn default() -> Self {
        KvConfig {
            nodes: 3,
            scheme: Scheme::Dvv,
            replicas: 3,
            vnodes: 64,
            delay: Duration::from_millis(50),
            data_dir: None,
        }
    }
}

/// Why the store cannot start.
#[derive(Debug, thiserror::Error)]
pub enum KvStartError {
    /// A bad node or replica count.
    #[error("{0}")]
    Config(String),
    /// The data directory cannot be read or written.
    #[error("data directory {path}: {source}")]
    Data {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A state file that is not ours.
    #[error("state file {path} is unreadable: {message}")]
    Corrupt {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// One directed link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// One-way delay, ms.
    pub delay_ms: u64,
    /// Whether it drops everything.
    pub cut: bool,
}

/// Counters, for `GET /kv/stats` and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KvStats {
    /// Replication messages sent.
    pub replications_sent: u64,
    /// Replication messages applied at their replica.
    pub replications_applied: u64,
    /// Replication messages dropped by a cut link.
    pub replications_dropped: u64,
    /// Anti-entropy exchanges run.
    pub exchanges: u64,
    /// Bytes of their summaries.
    pub exchange_summary_bytes: u64,
    /// Bytes of what they sent.
    pub exchange_delta_bytes: u64,
    /// What sending full state would have cost.
    pub exchange_full_bytes: u64,
}

#[derive(Debug)]
struct Inner {
    nodes: Vec<Node>,
    links: BTreeMap<(NodeId, NodeId), Link>,
    stats: KvStats,
}

/// The running store: shared by the handlers and the replication tasks.
#[derive(Debug)]
pub struct KvStore {
    config: KvConfig,
    ring: Ring,
    inner: Mutex<Inner>,
}

/// A 4xx/5xx with a one-line JSON error.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

impl KvStore {
    /// A store as configured, its nodes loaded from `data_dir` if there are files.
    pub fn open(config: KvConfig) -> Result<Arc<KvStore>, KvStartError> {
        if !(1..=MAX_NODES).contains(&config.nodes) {
            return Err(KvStartError::Config(format!(
                "--nodes must be 1 to {MAX_NODES}, got {}",
                config.nodes
            )));
        }
        if !(1..=config.nodes as usize).contains(&config.replicas) {
            return Err(KvStartError::Config(format!(
                "--replicas must be 1 to --nodes ({}), got {}",
                config.nodes, config.replicas
            )));
        }
        let ids: Vec<NodeId> = (1..=config.nodes).collect();
        let mut nodes: Vec<Node> = ids.iter().map(|&i| Node::new(i, config.scheme)).collect();
        if let Some(dir) = &config.data_dir {
            let err = |source| KvStartError::Data {
                path: dir.clone(),
                source,
            };
            std::fs::create_dir_all(dir).map_err(err)?;
            for node in &mut nodes {
                let path = dir.join(format!("node{}.json", node.id));
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        let loaded: Node =
                            serde_json::from_slice(&bytes).map_err(|e| KvStartError::Corrupt {
                                path: path.clone(),
                                message: e.to_string(),
                            })?;
                        if loaded.id != node.id || loaded.scheme != config.scheme {
                            return Err(KvStartError::Corrupt {
                                path,
                                message: format!(
                                    "it holds node {} under {}; this store runs {}",
                                    loaded.id,
                                    loaded.scheme.name(),
                                    config.scheme.name()
                                ),
                            });
                        }
                        *node = loaded;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(err(e)),
                }
            }
        }
        let delay_ms = config.delay.as_millis().min(u128::from(u64::MAX)) as u64;
        let links = ids
            .iter()
            .flat_map(|&a| ids.iter().map(move |&b| (a, b)))
            .filter(|(a, b)| a != b)
            .map(|k| {
                (
                    k,
                    Link {
                        delay_ms,
                        cut: false,
                    },
                )
            })
            .collect();
        Ok(Arc::new(KvStore {
            ring: Ring::new(&ids, config.vnodes),
            inner: Mutex::new(Inner {
                nodes,
                links,
                stats: KvStats::default(),
            }),
            config,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not wedge the store: the state is still consistent (every
        // change is one assignment).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The configuration.
    pub fn config(&self) -> &KvConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> KvStats {
        self.lock().stats
    }

    /// Node `n`'s state of `key`.
    pub fn state(&self, n: NodeId, key: &str) -> Option<Versioned> {
        self.lock()
            .nodes
            .get(n as usize - 1)
            .map(|node| node.state(key))
    }

    fn node_index(&self, n: &str) -> Result<NodeId, ApiError> {
        let id: NodeId = n
            .parse()
            .map_err(|_| bad(format!("node must be a number 1 to {}", self.config.nodes)))?;
        if !(1..=self.config.nodes).contains(&id) {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no node {id}; nodes are 1 to {}", self.config.nodes),
            ));
        }
        Ok(id)
    }

    /// The key's replicas; the node asked serves the request itself if it is one, else the
    /// first of the preference list coordinates (Dynamo's forwarding).
    fn coordinator(&self, asked: NodeId, key: &str) -> (NodeId, Vec<NodeId>) {
        let prefs = self.ring.preference_list(key, self.config.replicas);
        let c = if prefs.contains(&asked) {
            asked
        } else {
            prefs[0]
        };
        (c, prefs)
    }

    fn persist(&self, inner: &Inner, node: NodeId) -> Result<(), ApiError> {
        let Some(dir) = &self.config.data_dir else {
            return Ok(());
        };
        let n = &inner.nodes[node as usize - 1];
        let bytes = serde_json::to_vec(n).map_err(|e| internal(e.to_string()))?;
        let path = dir.join(format!("node{node}.json"));
        let tmp = dir.join(format!("node{node}.json.tmp"));
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| internal(format!("cannot save node {node}: {e}")))
    }

    /// A write of `value` (`None`: a delete) at node `asked`; schedules its replication.
    fn write(
        self: &Arc<Self>,
        asked: NodeId,
        key: &str,
        context: Option<&str>,
        value: Option<Value>,
    ) -> Result<(NodeId, Versioned), ApiError> {
        let (c, prefs) = self.coordinator(asked, key);
        let mut inner = self.lock();
        if c != asked && inner.links[&(asked, c)].cut {
            return Err(ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{} is not a replica of {key:?} and its link to the coordinator {} is cut",
                    node_name(asked),
                    node_name(c)
                ),
            ));
        }
        let state = inner.nodes[c as usize - 1]
            .put_encoded(key, context, value)
            .map_err(|e| bad(e.to_string()))?;
        self.persist(&inner, c)?;
        for &r in prefs.iter().filter(|&&r| r != c) {
            inner.stats.replications_sent += 1;
            let delay = Duration::from_millis(inner.links[&(c, r)].delay_ms);
            let store = Arc::clone(self);
            let (key, state) = (key.to_owned(), state.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                store.deliver(c, r, &key, &state);
            });
        }
        Ok((c, state))
    }

    /// A replication message arrives at `to` (or is dropped if the link is cut now).
    fn deliver(&self, from: NodeId, to: NodeId, key: &str, state: &Versioned) {
        let mut inner = self.lock();
        if inner.links[&(from, to)].cut {
            inner.stats.replications_dropped += 1;
            return;
        }
        inner.nodes[to as usize - 1].merge(key, state);
        inner.stats.replications_applied += 1;
        if let Err(e) = self.persist(&inner, to) {
            tracing::warn!("{}", e.1);
        }
    }

    /// One anti-entropy exchange `from → to` (if the link is up).
    fn exchange(&self, inner: &mut Inner, from: NodeId, to: NodeId) -> Option<ExchangeBytes> {
        if inner.links[&(from, to)].cut || inner.links[&(to, from)].cut {
            return None;
        }
        let sender = inner.nodes[from as usize - 1].clone();
        let bytes = sender.sync_to(&mut inner.nodes[to as usize - 1]);
        inner.stats.exchanges += 1;
        inner.stats.exchange_summary_bytes += bytes.summary as u64;
        inner.stats.exchange_delta_bytes += bytes.delta as u64;
        inner.stats.exchange_full_bytes += bytes.full as u64;
        if let Err(e) = self.persist(inner, to) {
            tracing::warn!("{}", e.1);
        }
        Some(bytes)
    }

    /// Anti-entropy between every connected ordered pair.
    pub fn anti_entropy(&self) -> Vec<(NodeId, NodeId, ExchangeBytes)> {
        let mut inner = self.lock();
        let n = self.config.nodes;
        let mut out = Vec::new();
        for a in 1..=n {
            for b in (1..=n).filter(|&b| b != a) {
                if let Some(bytes) = self.exchange(&mut inner, a, b) {
                    out.push((a, b, bytes));
                }
            }
        }
        out
    }
}

fn internal(msg: String) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, msg)
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(bad(format!("a key is 1 to {MAX_KEY} bytes")));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
    {
        return Err(bad("a key is made of letters, digits and . _ ~ -"));
    }
    Ok(())
}

fn context_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get(CONTEXT_HEADER) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.to_owned()))
            .map_err(|_| bad("X-Causal-Context is not ASCII")),
    }
}

fn answer(store: &KvStore, coordinator: NodeId, state: &Versioned) -> Response {
    let r = read_result(store.config.scheme, state);
    let status = if r.status == "NOT_FOUND" {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    let mut body = serde_json::to_value(&r).unwrap_or_default();
    body["node"] = json!(node_name(coordinator));
    let mut resp = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&r.context) {
        resp.headers_mut().insert(CONTEXT_HEADER, v);
    }
    resp
}

async fn get_key(
    State(store): State<Arc<KvStore>>,
    Path((n, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let asked = store.node_index(&n)?;
    check_key(&key)?;
    let (c, _) = store.coordinator(asked, &key);
    let inner = store.lock();
    if c != asked && inner.links[&(asked, c)].cut {
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{} is not a replica of {key:?} and its link to {} is cut",
                node_name(asked),
                node_name(c)
            ),
        ));
    }
    let state = inner.nodes[c as usize - 1].state(&key);
    drop(inner);
    Ok(answer(&store, c, &state))
}

async fn put_key(
    State(store): State<Arc<KvStore>>,
    Path((n, key)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let asked = store.node_index(&n)?;
    check_key(&key)?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("the body must be one JSON value: {e}")))?;
    let ctx = context_of(&headers)?;
    let (c, state) = store.write(asked, &key, ctx.as_deref(), Some(value))?;
    Ok(answer(&store, c, &state))
}

async fn delete_key(
    State(store): State<Arc<KvStore>>,
    Path((n, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let asked = store.node_index(&n)?;
    check_key(&key)?;
    let ctx = context_of(&headers)?;
    if ctx.is_none() {
        return Err(bad(
            "a delete needs the X-Causal-Context of a read (what it deletes)",
        ));
    }
    let (c, state) = store.write(asked, &key, ctx.as_deref(), None)?;
    Ok(answer(&store, c, &state))
}

/// The body of `PUT /kv/links/{from}/{to}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkChange {
    delay_ms: Option<u64>,
    cut: Option<bool>,
}

async fn put_link(
    State(store): State<Arc<KvStore>>,
    Path((from, to)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (a, b) = (store.node_index(&from)?, store.node_index(&to)?);
    if a == b {
        return Err(bad("a link joins two different nodes"));
    }
    let change: LinkChange = serde_json::from_slice(&body).map_err(|e| {
        bad(format!(
            "expected {{\"delay_ms\": N, \"cut\": true|false}}: {e}"
        ))
    })?;
    if change.delay_ms.is_some_and(|d| d > 600_000) {
        return Err(bad("delay_ms is at most 600000 (10 minutes)"));
    }
    let mut inner = store.lock();
    let link = inner.links.get_mut(&(a, b)).expect("every pair has a link");
    let was_cut = link.cut;
    if let Some(d) = change.delay_ms {
        link.delay_ms = d;
    }
    if let Some(c) = change.cut {
        link.cut = c;
    }
    let link = *link;
    // Healing runs anti-entropy both ways.
    let mut healed = Vec::new();
    if was_cut && !link.cut {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(bytes) = store.exchange(&mut inner, x, y) {
                healed.push(json!({"from": node_name(x), "to": node_name(y), "bytes": bytes}));
            }
        }
    }
    Ok(Json(json!({
        "from": node_name(a), "to": node_name(b),
        "delay_ms": link.delay_ms, "cut": link.cut, "anti_entropy": healed,
    }))
    .into_response())
}

async fn get_links(State(store): State<Arc<KvStore>>) -> Json<Value> {
    let inner = store.lock();
    let links: Vec<Value> = inner
        .links
        .iter()
        .map(|(&(a, b), l)| json!({"from": a, "to": b, "delay_ms": l.delay_ms, "cut": l.cut}))
        .collect();
    Json(json!({ "links": links }))
}

async fn get_nodes(State(store): State<Arc<KvStore>>) -> Json<Value> {
    let inner = store.lock();
    let nodes: Vec<Value> = inner
        .nodes
        .iter()
        .map(|n| {
            let keys: Vec<Value> = n
                .keys()
                .map(|(k, v)| {
                    let siblings: Vec<Value> = v
                        .sibling_clocks()
                        .into_iter()
                        .map(|(value, clock, dot)| {
                            json!({
                                "value": value,
                                "deleted": value.is_none(),
                                "clock": clock.iter().map(|(i, c)| (node_name(i), c)).collect::<BTreeMap<_, _>>(),
                                "dot": dot.map(|(i, c)| json!([node_name(i), c])),
                            })
                        })
                        .collect();
                    json!({
                        "key": k,
                        "siblings": siblings,
                        "vector_clock": v.context().iter().map(|(i, c)| (node_name(i), c)).collect::<BTreeMap<_, _>>(),
                        "metadata_bytes": v.metadata_bytes(),
                    })
                })
                .collect();
            json!({"node": node_name(n.id), "id": n.id, "keys": keys})
        })
        .collect();
    Json(json!({
        "clock": store.config.scheme.name(),
        "replicas": store.config.replicas,
        "nodes": nodes,
    }))
}

async fn get_ring(
    State(store): State<Arc<KvStore>>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_key(&key)?;
    let prefs = store.ring.preference_list(&key, store.config.replicas);
    let vnode = store.ring.vnode_of(&key);
    Ok(Json(json!({
        "key": key,
        "preference_list": prefs.iter().map(|&n| node_name(n)).collect::<Vec<_>>(),
        "vnode": vnode.map(|(n, v)| json!({"node": node_name(n), "vnode": v})),
        "vnodes_per_node": store.ring.vnodes(),
        "ownership": store.ring.ownership().iter().map(|&(n, s)| json!({"node": node_name(n), "share": s})).collect::<Vec<_>>(),
    })))
}

async fn post_anti_entropy(State(store): State<Arc<KvStore>>) -> Json<Value> {
    let ex: Vec<Value> = store
        .anti_entropy()
        .into_iter()
        .map(|(a, b, bytes)| json!({"from": node_name(a), "to": node_name(b), "bytes": bytes}))
        .collect();
    Json(json!({ "exchanges": ex }))
}

async fn get_stats(State(store): State<Arc<KvStore>>) -> Json<KvStats> {
    Json(store.stats())
}

async fn not_found() -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "no such endpoint; see /kv/nodes/{n}/keys/{key}, /kv/links/{from}/{to}, /kv/nodes".into(),
    )
}

/// The store's routes, all under `/kv/`.
pub fn router(store: Arc<KvStore>) -> Router {
    Router::new()
        .route(
            "/kv/nodes/{n}/keys/{key}",
            get(get_key).put(put_key).delete(delete_key),
        )
        .route("/kv/nodes", get(get_nodes))
        .route("/kv/links", get(get_links))
        .route("/kv/links/{from}/{to}", put(put_link))
        .route("/kv/ring/{key}", get(get_ring))
        .route("/kv/anti-entropy", post(post_anti_entropy))
        .route("/kv/stats", get(get_stats))
        .route("/kv", get(not_found))
        .route("/kv/{*rest}", get(not_found))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(store)
}

/// Serves the store on `listener` until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<KvStore>,
    shutdown: crate::Shutdown,
) -> std::io::Result<()> {
    axum::serve(listener, router(store))
        .with_graceful_shutdown(async move { shutdown.fired().await })
        .await
}
