//! `kv serve` over real HTTP on 127.0.0.1:0: siblings after concurrent writes to two nodes,
//! resolution with the context, a partition and its heal, VV against DVV sibling counts, and
//! hostile requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chronoscope::replication::kv::Scheme;
use chronoscope_server::services::kv::{serve, KvConfig, KvStore};
use chronoscope_server::Shutdown;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

struct Server {
    addr: SocketAddr,
    store: Arc<KvStore>,
    shutdown: Shutdown,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

async fn start(config: KvConfig) -> Server {
    let store = KvStore::open(config).expect("open");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    tokio::spawn(serve(listener, store.clone(), shutdown.clone()));
    Server {
        addr,
        store,
        shutdown,
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

fn config(scheme: Scheme) -> KvConfig {
    KvConfig {
        nodes: 3,
        scheme,
        replicas: 3,
        vnodes: 16,
        delay: Duration::from_millis(20),
        data_dir: None,
    }
}

impl Server {
    async fn call(
        &self,
        method: Method,
        path: &str,
        context: Option<&str>,
        body: &str,
    ) -> (StatusCode, Option<String>, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        if let Some(c) = context {
            req = req.header("X-Causal-Context", c);
        }
        let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        let resp = self.client.request(req).await.expect("http");
        let status = resp.status();
        let ctx = resp
            .headers()
            .get("x-causal-context")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, ctx, v)
    }

    async fn put(&self, n: u32, key: &str, ctx: Option<&str>, value: Value) -> Value {
        let (s, _, v) = self
            .call(
                Method::PUT,
                &format!("/kv/nodes/{n}/keys/{key}"),
                ctx,
                &value.to_string(),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    async fn get(&self, n: u32, key: &str) -> Value {
        self.call(Method::GET, &format!("/kv/nodes/{n}/keys/{key}"), None, "")
            .await
            .2
    }

    async fn link(&self, from: u32, to: u32, body: Value) -> Value {
        let (s, _, v) = self
            .call(
                Method::PUT,
                &format!("/kv/links/{from}/{to}"),
                None,
                &body.to_string(),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    /// Waits until every replication message sent has been applied or dropped (a condition
    /// on the store, not a time window).
    async fn settle(&self) {
        loop {
            let s = self.store.stats();
            if s.replications_applied + s.replications_dropped == s.replications_sent {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn concurrent_writes_to_two_nodes_become_siblings_then_resolve() {
    for scheme in [Scheme::Dvv, Scheme::Vv] {
        let s = start(config(scheme)).await;
        s.put(1, "name", None, json!("Alice")).await;
        s.put(2, "name", None, json!("Bob")).await;
        s.settle().await;
        let r = s.get(1, "name").await;
        assert_eq!(sorted(&r), ["\"Alice\"", "\"Bob\""]);
        assert_eq!(r["vector_clock"], json!({"Node1": 1, "Node2": 1}));
        assert_eq!(r["status"], "CONFLICT");
        // Resolve with the merged context, through a third node.
        let ctx = r["context"].as_str().unwrap().to_owned();
        let w = s.put(3, "name", Some(&ctx), json!("Alice and Bob")).await;
        assert_eq!(w["status"], "OK");
        s.settle().await;
        for n in 1..=3 {
            let r = s.get(n, "name").await;
            assert_eq!(r["value"], json!(["Alice and Bob"]), "node {n} {scheme:?}");
        }
    }
}

#[tokio::test]
async fn a_partition_heals_by_anti_entropy() {
    let s = start(config(Scheme::Dvv)).await;
    // Cut Node3 off in both directions.
    for (a, b) in [(1, 3), (3, 1), (2, 3), (3, 2)] {
        s.link(a, b, json!({"cut": true})).await;
    }
    s.put(1, "k", None, json!("left")).await;
    s.put(3, "k", None, json!("right")).await;
    s.settle().await;
    assert_eq!(s.get(1, "k").await["value"], json!(["left"]));
    assert_eq!(s.get(3, "k").await["value"], json!(["right"]));
    assert!(s.store.stats().replications_dropped >= 2);
    // Heal: once both directions are up, anti-entropy runs both ways and reports its bytes.
    let half = s.link(1, 3, json!({"cut": false})).await;
    assert_eq!(half["anti_entropy"], json!([]), "3 -> 1 is still cut");
    let healed = s.link(3, 1, json!({"cut": false})).await;
    let ex = healed["anti_entropy"].as_array().unwrap();
    assert_eq!(ex.len(), 2, "{healed}");
    assert!(ex[0]["bytes"]["delta"].as_u64().unwrap() > 0);
    for n in [1, 3] {
        let r = s.get(n, "k").await;
        assert_eq!(sorted(&r), ["\"left\"", "\"right\""]);
        assert_eq!(r["status"], "CONFLICT");
    }
    // Nothing new: a second round sends no keys.
    let (_, _, again) = s.call(Method::POST, "/kv/anti-entropy", None, "").await;
    let sent: u64 = again["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["from"] == "Node1" && e["to"] == "Node3")
        .map(|e| e["bytes"]["keys_sent"].as_u64().unwrap())
        .sum();
    assert_eq!(sent, 0);
}

/// Two clients alternate writes through Node1, each with the context its own last write
/// returned: version vectors keep every write as a sibling, DVV keeps one per client.
#[tokio::test]
async fn stale_contexts_give_vv_false_siblings_and_dvv_none() {
    let mut counts = Vec::new();
    for scheme in [Scheme::Dvv, Scheme::Vv] {
        let s = start(config(scheme)).await;
        let mut ctx: [Option<String>; 2] = [None, None];
        for r in 0..10 {
            let who = r % 2;
            let w = s
                .put(1, "cart", ctx[who].as_deref(), json!(format!("w{r}")))
                .await;
            ctx[who] = Some(w["context"].as_str().unwrap().to_owned());
        }
        counts.push(s.get(1, "cart").await["value"].as_array().unwrap().len());
    }
    assert_eq!(counts, vec![2, 10]);
}

#[tokio::test]
async fn deletes_need_a_context_and_replicate() {
    let s = start(config(Scheme::Dvv)).await;
    s.put(1, "k", None, json!({"a": 1})).await;
    s.settle().await;
    let (st, _, e) = s.call(Method::DELETE, "/kv/nodes/2/keys/k", None, "").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(e["error"].as_str().unwrap().contains("X-Causal-Context"));
    let (_, ctx, _) = s.call(Method::GET, "/kv/nodes/2/keys/k", None, "").await;
    let (st, _, _) = s
        .call(Method::DELETE, "/kv/nodes/2/keys/k", ctx.as_deref(), "")
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "nothing left after the delete");
    s.settle().await;
    let (st, _, r) = s.call(Method::GET, "/kv/nodes/1/keys/k", None, "").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(r["status"], "NOT_FOUND");
}

#[tokio::test]
async fn hostile_requests_get_clear_4xx() {
    let s = start(config(Scheme::Dvv)).await;
    /// Method, path, context header, body, the status wanted, what the error says.
    type Case<'a> = (Method, String, Option<&'a str>, String, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            Method::PUT,
            "/kv/nodes/1/keys/k".into(),
            None,
            "{not json".into(),
            StatusCode::BAD_REQUEST,
            "JSON",
        ),
        (
            Method::PUT,
            "/kv/nodes/9/keys/k".into(),
            None,
            "1".into(),
            StatusCode::NOT_FOUND,
            "no node 9",
        ),
        (
            Method::PUT,
            "/kv/nodes/x/keys/k".into(),
            None,
            "1".into(),
            StatusCode::BAD_REQUEST,
            "number",
        ),
        (
            Method::PUT,
            "/kv/nodes/1/keys/k".into(),
            Some("!!!"),
            "1".into(),
            StatusCode::BAD_REQUEST,
            "base64",
        ),
        (
            Method::PUT,
            "/kv/nodes/1/keys/k".into(),
            Some("AXY"),
            "1".into(),
            StatusCode::BAD_REQUEST,
            "vv store",
        ),
        (
            Method::PUT,
            format!("/kv/nodes/1/keys/{}", "a".repeat(300)),
            None,
            "1".into(),
            StatusCode::BAD_REQUEST,
            "key",
        ),
        (
            Method::PUT,
            "/kv/nodes/1/keys/a%20b".into(),
            None,
            "1".into(),
            StatusCode::BAD_REQUEST,
            "letters",
        ),
        (
            Method::PUT,
            "/kv/links/1/1".into(),
            None,
            "{}".into(),
            StatusCode::BAD_REQUEST,
            "two different",
        ),
        (
            Method::PUT,
            "/kv/links/1/2".into(),
            None,
            "{\"bogus\":1}".into(),
            StatusCode::BAD_REQUEST,
            "delay_ms",
        ),
        (
            Method::GET,
            "/kv/whatever".into(),
            None,
            String::new(),
            StatusCode::NOT_FOUND,
            "no such endpoint",
        ),
    ];
    for (m, path, ctx, body, want, says) in cases {
        let (st, _, v) = s.call(m.clone(), &path, ctx, &body).await;
        assert_eq!(st, want, "{m} {path}: {v}");
        assert!(
            v["error"].as_str().unwrap_or("").contains(says),
            "{m} {path}: {v}"
        );
    }
    // A body over the cap is refused before it is read whole.
    let big = format!("\"{}\"", "x".repeat(70 * 1024));
    let (st, _, _) = s.call(Method::PUT, "/kv/nodes/1/keys/k", None, &big).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    // The store still works.
    s.put(1, "k", None, json!(1)).await;
}

#[tokio::test]
async fn keys_live_on_their_preference_list() {
    let mut c = config(Scheme::Dvv);
    c.nodes = 5;
    c.replicas = 2;
    let s = start(c).await;
    let (_, _, ring) = s.call(Method::GET, "/kv/ring/user42", None, "").await;
    let prefs: Vec<u32> = ring["preference_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap()[4..].parse().unwrap())
        .collect();
    assert_eq!(prefs.len(), 2);
    let outsider = (1..=5).find(|n| !prefs.contains(n)).unwrap();
    // A write through a non-replica is coordinated by the first of the list.
    let w = s.put(outsider, "user42", None, json!("x")).await;
    assert_eq!(w["node"], format!("Node{}", prefs[0]));
    s.settle().await;
    for n in 1..=5 {
        let held = s.store.state(n, "user42").unwrap().siblings().len();
        assert_eq!(held, usize::from(prefs.contains(&n)), "node {n}");
    }
}

#[tokio::test]
async fn state_survives_a_restart_with_a_data_dir() {
    let dir = std::env::temp_dir().join(format!("kv-restart-{}", std::process::id()));
    for scheme in [Scheme::Dvv, Scheme::Vv] {
        let _ = std::fs::remove_dir_all(&dir);
        let mut c = config(scheme);
        c.data_dir = Some(dir.clone());
        {
            let s = start(c.clone()).await;
            s.put(1, "k", None, json!("one")).await;
            s.put(2, "k", None, json!("two")).await;
            s.settle().await;
        }
        let s = start(c).await;
        assert_eq!(
            sorted(&s.get(3, "k").await),
            ["\"one\"", "\"two\""],
            "{scheme:?}"
        );
    }
    let mut c = config(Scheme::Vv);
    c.data_dir = Some(dir.clone());
    // The other scheme refuses these files.
    c.scheme = Scheme::Dvv;
    let err = KvStore::open(c).unwrap_err().to_string();
    assert!(err.contains("under vv; this store runs dvv"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
