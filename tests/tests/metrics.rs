//! `/metrics` on real sockets: `chronoscope serve`'s relay counters after real WebSocket
//! traffic, and a time service cluster's node metrics after real gRPC rounds (and a request
//! without a token). Every scrape goes through a strict parser of the Prometheus text format
//! (version 0.0.4, Prometheus' "Exposition formats"), written here so the test does not trust
//! the encoder it checks.

use std::{
    collections::{BTreeMap, HashSet},
    time::Duration,
};

use chronoscope::{protocol::ServerFrame, sync::timesync::TimeSyncConfig};
use chronoscope_e2e::{ws::Client, Scratch, TestServer};
use chronoscope_server::{
    services::{
        metrics,
        timesync::{
            auth::NodeKeys,
            cluster::Cluster,
            proto::{time_sync_service_client::TimeSyncServiceClient, TimeRequest},
            Security, Simulation,
        },
    },
    Shutdown,
};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::{client::legacy::Client as HttpClient, rt::TokioExecutor};
use tonic::Code;

/// One parsed sample: its name, labels and value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// One metric family: its type, help and samples.
#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: Option<String>,
    samples: Vec<Sample>,
}

/// A scrape, by family name.
#[derive(Debug)]
struct Exposition(BTreeMap<String, Family>);

fn is_name(s: &str, colons: bool) -> bool {
    let mut chars = s.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':');
    let ok_rest = |c: char| c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':');
    matches!(chars.next(), Some(c) if ok_first(c)) && chars.all(ok_rest)
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// The family a sample name belongs to, given the declared types.
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, Family>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).is_some_and(|f| f.kind == "histogram") {
                return base;
            }
        }
    }
    name
}

/// Parses the text format strictly: names and label syntax, escapes, one TYPE and HELP per
/// family before its samples, a family's samples together, no duplicate series, counters
/// non-negative, histograms with cumulative buckets ending in `+Inf` equal to `_count`.
fn parse(text: &str) -> Result<Exposition, String> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut seen_series = HashSet::new();
    let mut closed: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the exposition must end with a newline".into());
    }
    for (n, line) in text.lines().enumerate() {
        let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim_start();
            let mut parts = rest.splitn(3, ' ');
            let keyword = parts.next().unwrap_or("");
            if keyword != "HELP" && keyword != "TYPE" {
                continue; // a comment
            }
            let name = parts.next().ok_or_else(|| err("no metric name".into()))?;
            if !is_name(name, true) {
                return Err(err(format!("bad metric name {name:?}")));
            }
            let arg = parts.next().unwrap_or("");
            if closed.contains(name) {
                return Err(err(format!("{name} declared after its samples")));
            }
            let family = families.entry(name.to_owned()).or_default();
            if keyword == "TYPE" {
                if !family.kind.is_empty() {
                    return Err(err("second TYPE".into()));
                }
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg) {
                    return Err(err(format!("unknown type {arg:?}")));
                }
                family.kind = arg.to_owned();
            } else {
                if family.help.is_some() {
                    return Err(err("second HELP".into()));
                }
                let mut help = String::new();
                let mut chars = arg.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some('\\') => help.push('\\'),
                            Some('n') => help.push('\n'),
                            other => return Err(err(format!("bad HELP escape {other:?}"))),
                        },
                        c => help.push(c),
                    }
                }
                family.help = Some(help);
            }
            continue;
        }
        // A sample: name, optional labels, value, optional timestamp.
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !is_name(name, true) {
            return Err(err(format!("bad metric name {name:?}")));
        }
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            loop {
                let Some(&(i, c)) = chars.peek() else {
                    return Err(err("unterminated labels".into()));
                };
                if c == '}' {
                    rest = &body[i + 1..];
                    break;
                }
                let key_start = i;
                while chars.peek().is_some_and(|&(_, c)| c != '=') {
                    chars.next();
                }
                let Some((eq, _)) = chars.next() else {
                    return Err(err("label without '='".into()));
                };
                let key = &body[key_start..eq];
                if !is_name(key, false) || key.starts_with("__") {
                    return Err(err(format!("bad label name {key:?}")));
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(err("label value not quoted".into()));
                }
                let mut value = String::new();
                loop {
                    match chars.next().map(|(_, c)| c) {
                        Some('"') => break,
                        Some('\\') => match chars.next().map(|(_, c)| c) {
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            Some('n') => value.push('\n'),
                            other => return Err(err(format!("bad label escape {other:?}"))),
                        },
                        Some(c) => value.push(c),
                        None => return Err(err("unterminated label value".into())),
                    }
                }
                if labels.insert(key.to_owned(), value).is_some() {
                    return Err(err(format!("label {key} twice")));
                }
                match chars.peek().map(|&(_, c)| c) {
                    Some(',') => {
                        chars.next();
                    }
                    Some('}') => {}
                    _ => return Err(err("expected ',' or '}' after a label".into())),
                }
            }
        }
        let fields: Vec<&str> = rest.split(' ').filter(|f| !f.is_empty()).collect();
        if !rest.starts_with(' ') || fields.is_empty() || fields.len() > 2 {
            return Err(err("expected ' VALUE [TIMESTAMP]'".into()));
        }
        let value = parse_value(fields[0]).map_err(err)?;
        if let Some(ts) = fields.get(1) {
            ts.parse::<i64>()
                .map_err(|_| err(format!("bad timestamp {ts:?}")))?;
        }
        let family_name = family_of(name, &families).to_owned();
        if current.as_deref() != Some(family_name.as_str()) {
            if let Some(prev) = current.replace(family_name.clone()) {
                closed.insert(prev);
            }
            if closed.contains(&family_name) {
                return Err(err(format!("{family_name}'s samples are not together")));
            }
        }
        let family = families.entry(family_name.clone()).or_default();
        if family.kind.is_empty() {
            family.kind = "untyped".into();
        }
        if family.kind == "counter" && (value.is_nan() || value < 0.0) {
            return Err(err("a counter below zero or NaN".into()));
        }
        let series = format!("{name}{labels:?}");
        if !seen_series.insert(series) {
            return Err(err("duplicate series".into()));
        }
        family.samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    for (name, f) in &families {
        if f.kind == "histogram" {
            check_histogram(name, f)?;
        }
    }
    Ok(Exposition(families))
}

fn check_histogram(name: &str, f: &Family) -> Result<(), String> {
    let mut groups: BTreeMap<Vec<(String, String)>, Vec<&Sample>> = BTreeMap::new();
    for s in &f.samples {
        let key = s
            .labels
            .iter()
            .filter(|(k, _)| *k != "le")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        groups.entry(key).or_default().push(s);
    }
    for samples in groups.values() {
        let mut last = (f64::NEG_INFINITY, 0.0);
        let mut inf = None;
        for s in samples.iter().filter(|s| s.name.ends_with("_bucket")) {
            let le = parse_value(
                s.labels
                    .get("le")
                    .ok_or(format!("{name}: bucket without le"))?,
            )?;
            if le <= last.0 || s.value < last.1 {
                return Err(format!("{name}: buckets not cumulative at le={le}"));
            }
            last = (le, s.value);
            if le == f64::INFINITY {
                inf = Some(s.value);
            }
        }
        let count = samples
            .iter()
            .find(|s| s.name.ends_with("_count"))
            .ok_or(format!("{name}: no _count"))?
            .value;
        if !samples.iter().any(|s| s.name.ends_with("_sum")) {
            return Err(format!("{name}: no _sum"));
        }
        if inf != Some(count) {
            return Err(format!("{name}: +Inf bucket {inf:?} is not _count {count}"));
        }
    }
    Ok(())
}

impl Exposition {
    /// The value of the sample `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0
            .values()
            .flat_map(|f| &f.samples)
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }

    fn kind(&self, family: &str) -> Option<&str> {
        self.0.get(family).map(|f| f.kind.as_str())
    }
}

#[test]
fn the_parser_is_strict() {
    let good = "# HELP a_total Things.\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\\n\"} 3\n\
                # TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\n";
    let e = parse(good).unwrap();
    assert_eq!(e.value("a_total", &[("x", "q\"\\\n")]), Some(3.0));
    assert_eq!(e.value("h_count", &[]), Some(2.0));
    for bad in [
        "a 1",                                   // no final newline
        "a{x=1} 1\n",                            // unquoted label value
        "a{x=\"1\" 1\n",                         // unterminated labels
        "1a 1\n",                                // bad name
        "a one\n",                               // bad value
        "a 1\na 2\n",                            // duplicate series
        "# TYPE a counter\na -1\n",              // negative counter
        "# TYPE a gauge\n# TYPE a gauge\na 1\n", // two TYPEs
        "a 1\nb 1\na{x=\"y\"} 1\n",              // family split
        "a 1\n# TYPE a gauge\n",                 // TYPE after samples
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 2\n",
        "a{x=\"\\q\"} 1\n", // bad escape
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}

/// `GET url`: status and body.
async fn get(url: &str) -> (u16, String, String) {
    let client = HttpClient::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let res = client
        .get(url.parse().unwrap())
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = res.status().as_u16();
    let ctype = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, ctype, String::from_utf8(body.to_vec()).unwrap())
}

async fn scrape(url: &str) -> Exposition {
    let (status, ctype, body) = get(url).await;
    assert_eq!(status, 200, "{body}");
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"))
}

/// Scrapes until `done` holds (waited for with a generous limit: a loaded machine is slower,
/// never wrong).
async fn scrape_until(url: &str, what: &str, done: impl Fn(&Exposition) -> bool) -> Exposition {
    for _ in 0..600 {
        let e = scrape(url).await;
        if done(&e) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not {what}: {:#?}", scrape(url).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_counts_connections_rooms_ops_commits_and_refused_frames() {
    let dist = Scratch::new("metrics-dist");
    std::fs::write(dist.0.join("index.html"), "<!doctype html><title>t</title>").unwrap();
    let data = Scratch::new("metrics-data");
    let server = TestServer::start(dist.0.clone(), data.0.clone(), None).await;
    let url = server.url("/metrics");
    let before = scrape(&url).await;
    assert_eq!(
        before.kind("chronoscope_relay_connections_total"),
        Some("counter")
    );
    assert_eq!(
        before.kind("chronoscope_relay_commit_seconds"),
        Some("histogram")
    );
    assert_eq!(
        before.value("chronoscope_relay_connections_total", &[]),
        Some(0.0)
    );
    assert_eq!(before.value("chronoscope_relay_rooms", &[]), Some(0.0));

    let room = server.ws_url("/ws/metrics-room");
    let (mut a, _) = Client::join(&room, "ada", None).await;
    let (mut b, _) = Client::join(&room, "bob", None).await;
    for seq in 1..=3 {
        a.op(seq, serde_json::json!({"n": seq})).await;
        a.ack(seq).await;
    }
    b.send_raw("{not json").await;
    b.until(|f| matches!(f, ServerFrame::Error { .. })).await;

    let during = scrape(&url).await;
    assert_eq!(
        during.value("chronoscope_relay_connections_total", &[]),
        Some(2.0)
    );
    assert_eq!(
        during.value("chronoscope_relay_connections_open", &[]),
        Some(2.0)
    );
    assert_eq!(during.value("chronoscope_relay_rooms", &[]), Some(1.0));
    assert_eq!(during.value("chronoscope_relay_ops_total", &[]), Some(3.0));
    // Three acknowledged ops are three commits (each acknowledged before the next was sent).
    assert_eq!(
        during.value("chronoscope_relay_commit_seconds_count", &[]),
        Some(3.0)
    );
    assert!(
        during
            .value("chronoscope_relay_commit_seconds_sum", &[])
            .unwrap()
            > 0.0
    );
    assert_eq!(
        during.value(
            "chronoscope_relay_frames_refused_total",
            &[("reason", "error_frame")]
        ),
        Some(1.0)
    );

    b.close().await;
    scrape_until(&url, "one connection open", |e| {
        e.value("chronoscope_relay_connections_open", &[]) == Some(1.0)
    })
    .await;
    a.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timesync_nodes_expose_offsets_rtts_bounds_counts_and_auth_failures() {
    let config = TimeSyncConfig {
        sync_interval: 0.5,
        timeout: 0.5,
        ..TimeSyncConfig::default()
    };
    // One skewed node among five honest-clocked ones: the other four agree, so every node
    // (A too) finds a majority.
    let sims: Vec<Simulation> = [40.0, 0.0, 0.0, 0.0, 0.0]
        .map(|skew_ms| Simulation {
            skew_ms,
            ..Simulation::default()
        })
        .to_vec();
    let mut keys = NodeKeys::new();
    for id in ["A", "B", "C", "D", "E"] {
        keys.insert(id, vec![id.as_bytes()[0]; 32]);
    }
    let shutdown = Shutdown::new();
    let cluster = Cluster::start_secured(config, &sims, 7, shutdown.clone(), |_| Security {
        keys: Some(keys.clone()),
        tls: None,
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(metrics::serve(
        listener,
        metrics::nodes_registry(cluster.nodes().to_vec()),
        shutdown.clone(),
    ));

    let first = scrape(&url).await;
    for (family, kind) in [
        ("timesync_offset_seconds", "gauge"),
        ("timesync_error_bound_seconds", "gauge"),
        ("timesync_drift_estimate_ppm", "gauge"),
        ("timesync_syncs_total", "counter"),
        ("timesync_sync_failures_total", "counter"),
        ("timesync_auth_failures_total", "counter"),
        ("timesync_peer_rtt_seconds", "gauge"),
        ("timesync_peer_reachable", "gauge"),
    ] {
        assert_eq!(first.kind(family), Some(kind), "{family}");
    }
    assert_eq!(
        first.value("timesync_auth_failures_total", &[("node", "A")]),
        Some(0.0)
    );

    // Real rounds: every node synchronises and sees every peer; A's skew is measured.
    let synced = scrape_until(&url, "synchronised", |e| {
        ["A", "B", "C", "D", "E"].iter().all(|n| {
            e.value("timesync_syncs_total", &[("node", n)]) >= Some(2.0)
                && e.value("timesync_synced", &[("node", n)]) == Some(1.0)
        })
    })
    .await;
    for peer in ["A", "C", "D", "E"] {
        assert_eq!(
            synced.value("timesync_peer_reachable", &[("node", "B"), ("peer", peer)]),
            Some(1.0)
        );
        let rtt = synced
            .value(
                "timesync_peer_rtt_seconds",
                &[("node", "B"), ("peer", peer)],
            )
            .unwrap();
        assert!(rtt > 0.0 && rtt < 0.5, "rtt {rtt}");
    }
    let bound = synced
        .value("timesync_error_bound_seconds", &[("node", "C")])
        .unwrap();
    assert!(bound > 0.0 && bound.is_finite(), "{bound}");
    assert!(synced
        .value("timesync_offset_seconds", &[("node", "A")])
        .is_some());

    // A request without a token is refused, and B counts it.
    let b = cluster.addrs()[1];
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{b}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = TimeSyncServiceClient::new(channel);
    let status = client
        .get_time(TimeRequest { client_time: 1 })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let after = scrape(&url).await;
    assert_eq!(
        after.value("timesync_auth_failures_total", &[("node", "B")]),
        Some(1.0)
    );
    assert_eq!(
        after.value("timesync_auth_failures_total", &[("node", "A")]),
        Some(0.0)
    );
    assert!(
        after.value("timesync_syncs_total", &[("node", "A")])
            >= synced.value("timesync_syncs_total", &[("node", "A")])
    );
    cluster.stop().await.unwrap();
}
