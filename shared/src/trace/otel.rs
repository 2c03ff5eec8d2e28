//! OpenTelemetry traces — the industry's version of the space-time diagram: OTLP JSON exports
//! and Jaeger's JSON, read into a [`Trace`].
//!
//! A distributed trace (Sigelman et al., "Dapper, a Large-Scale Distributed Systems Tracing
//! Infrastructure", Google 2010; the OpenTelemetry specification's trace data model) is a tree
//! of spans: named, timed intervals of work, each on one service, each knowing its parent span
//! and possibly *links* to spans that caused it without being its parent (a batch consuming
//! several producers' messages). The import maps this onto Lamport's model:
//!
//! - each service is a process (a lane); each span contributes two events on its service's
//!   lane, `start <name>` and `end <name>`, ordered by that service's own clock;
//! - a parent → child relation across services is a message from the parent's start to the
//!   child's start (the request carried the parent's context); a synchronous call — a CLIENT
//!   parent or a SERVER child, neither PRODUCER nor CONSUMER — also returns: a message from the
//!   child's end to the parent's end (for spans without kinds, as the Jaeger JSON of
//!   `opentelemetry-contrib` writes them, a child that ends before its parent is taken as
//!   synchronous);
//! - a span link is a message from the linked span's start to the linking span's start;
//! - within one service the lane's order already orders parent and child.
//!
//! The trace then computes Lamport and vector clocks by the textbook rules, so concurrency
//! between services shows; the spans' timestamps become the events' physical times, which
//! slant the space-time view's arrows — and a child that starts before its parent, by their
//! services' clocks, is the clock skew [`super::validate`] names in words.
//!
//! **Guarantee.** Every well-formed span appears as its two events, or the import says in its
//! notes why it could not (a duplicate id, an edge contradicting a service's own clock order).
//! Ids are compared as lowercase hex (base64 ids of older OTLP JSON are converted).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use serde::{Deserialize, Deserializer};

use super::{MessageId, Trace};
use crate::NodeId;

/// Why an OTLP or Jaeger export could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtelError {
    /// The JSON is malformed or not of the format's shape.
    #[error("not {format} JSON: {reason}")]
    Json {
        /// "OTLP" or "Jaeger".
        format: &'static str,
        /// What the JSON parser said (with line and column).
        reason: String,
    },
    /// The export holds no spans.
    #[error("the {0} export holds no spans")]
    NoSpans(&'static str),
}

/// An OpenTelemetry export read into a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelImport {
    /// The trace: two events per span.
    pub trace: Trace,
    /// What the import found and decided, in words.
    pub notes: Vec<String>,
}

/// OpenTelemetry's span kinds (OTLP `kind`, Jaeger's `span.kind` tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl Kind {
    fn from_otlp(v: &serde_json::Value) -> Kind {
        match v {
            serde_json::Value::Number(n) => match n.as_u64() {
                Some(1) => Kind::Internal,
                Some(2) => Kind::Server,
                Some(3) => Kind::Client,
                Some(4) => Kind::Producer,
                Some(5) => Kind::Consumer,
                _ => Kind::Unspecified,
            },
            serde_json::Value::String(s) => Kind::from_name(s.trim_start_matches("SPAN_KIND_")),
            _ => Kind::Unspecified,
        }
    }

    fn from_name(s: &str) -> Kind {
        match s.to_ascii_lowercase().as_str() {
            "internal" => Kind::Internal,
            "server" => Kind::Server,
            "client" => Kind::Client,
            "producer" => Kind::Producer,
            "consumer" => Kind::Consumer,
            _ => Kind::Unspecified,
        }
    }

    fn is_messaging(self) -> bool {
        matches!(self, Kind::Producer | Kind::Consumer)
    }
}

/// A span as every format reduces to it. Ids are lowercase hex.
#[derive(Debug, Clone)]
struct SpanRecord {
    trace_id: String,
    span_id: String,
    parent: Option<String>,
    links: Vec<(String, String)>,
    service: String,
    name: String,
    kind: Kind,
    start_ns: i128,
    end_ns: i128,
}

/// A u64 written as a JSON number or a decimal string (OTLP JSON writes strings).
fn u64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        N(u64),
        F(f64),
        S(String),
    }
    match Either::deserialize(d)? {
        Either::N(n) => Ok(n),
        Either::F(f) if (0.0..1.9e19).contains(&f) => Ok(f as u64),
        Either::F(f) => Err(serde::de::Error::custom(format!("{f} is not a time"))),
        Either::S(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a whole number"))),
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

// --- OTLP JSON (opentelemetry-proto's JSON mapping) ---

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OtlpRequest {
    #[serde(default, deserialize_with = "null_as_default")]
    resource_spans: Vec<OtlpResourceSpans>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OtlpResourceSpans {
    #[serde(default)]
    resource: Option<OtlpResource>,
    #[serde(
        default,
        alias = "instrumentationLibrarySpans",
        deserialize_with = "null_as_default"
    )]
    scope_spans: Vec<OtlpScopeSpans>,
}

#[derive(Deserialize)]
struct OtlpResource {
    #[serde(default, deserialize_with = "null_as_default")]
    attributes: Vec<OtlpKeyValue>,
}

#[derive(Deserialize)]
struct OtlpKeyValue {
    key: String,
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Deserialize)]
struct OtlpScopeSpans {
    #[serde(default, deserialize_with = "null_as_default")]
    spans: Vec<OtlpSpan>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OtlpSpan {
    trace_id: String,
    span_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    parent_span_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    name: String,
    #[serde(default)]
    kind: serde_json::Value,
    #[serde(deserialize_with = "u64_lenient")]
    start_time_unix_nano: u64,
    #[serde(deserialize_with = "u64_lenient")]
    end_time_unix_nano: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    links: Vec<OtlpLink>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OtlpLink {
    trace_id: String,
    span_id: String,
}

// --- Jaeger JSON (the query service's and the UI's format) ---

#[derive(Deserialize)]
struct JaegerDoc {
    #[serde(default, deserialize_with = "null_as_default")]
    data: Vec<JaegerTrace>,
}

#[derive(Deserialize)]
struct JaegerTrace {
    #[serde(default, deserialize_with = "null_as_default")]
    spans: Vec<JaegerSpan>,
    #[serde(default, deserialize_with = "null_as_default")]
    processes: BTreeMap<String, JaegerProcess>,
}

#[derive(Deserialize, Default)]
struct JaegerProcess {
    #[serde(default, rename = "serviceName", deserialize_with = "null_as_default")]
    service_name: String,
}

#[derive(Deserialize)]
struct JaegerSpan {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
    #[serde(default, rename = "parentSpanID")]
    parent_span_id: Option<String>,
    #[serde(
        default,
        rename = "operationName",
        deserialize_with = "null_as_default"
    )]
    operation_name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    references: Vec<JaegerRef>,
    #[serde(rename = "startTime", deserialize_with = "u64_lenient")]
    start_time: u64,
    #[serde(default, deserialize_with = "u64_lenient_default")]
    duration: u64,
    #[serde(default, rename = "processID", deserialize_with = "null_as_default")]
    process_id: String,
    #[serde(default)]
    process: Option<JaegerProcess>,
    #[serde(default, deserialize_with = "null_as_default")]
    tags: Vec<JaegerTag>,
}

fn u64_lenient_default<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    u64_lenient(d)
}

#[derive(Deserialize)]
struct JaegerRef {
    #[serde(rename = "refType", default, deserialize_with = "null_as_default")]
    ref_type: String,
    #[serde(rename = "traceID", default, deserialize_with = "null_as_default")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
}

#[derive(Deserialize)]
struct JaegerTag {
    key: String,
    #[serde(default)]
    value: serde_json::Value,
}

/// A span or trace id as lowercase hex: hex is kept, base64 (older OTLP JSON) converted.
fn hex_id(id: &str) -> String {
    let id = id.trim();
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return id.to_ascii_lowercase();
    }
    match base64_decode(id) {
        Some(bytes) if bytes.len() == 8 || bytes.len() == 16 => {
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
        _ => id.to_owned(),
    }
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Reads an OTLP JSON export: one `ExportTraceServiceRequest` (`{"resourceSpans": [...]}`) or
/// several, one after another (as the OpenTelemetry Collector's file exporter writes them, one
/// per line).
pub fn import_otlp(text: &str) -> Result<OtelImport, OtelError> {
    let bad = |e: serde_json::Error| OtelError::Json {
        format: "OTLP",
        reason: e.to_string(),
    };
    let mut spans = Vec::new();
    let mut requests = 0usize;
    for request in serde_json::Deserializer::from_str(text.trim_start_matches('\u{feff}'))
        .into_iter::<OtlpRequest>()
    {
        let request = request.map_err(bad)?;
        requests += 1;
        for rs in request.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.get("stringValue").and_then(|v| v.as_str()))
                .unwrap_or("unknown_service")
                .to_owned();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    let parent = hex_id(&s.parent_span_id);
                    spans.push(SpanRecord {
                        trace_id: hex_id(&s.trace_id),
                        span_id: hex_id(&s.span_id),
                        parent: (!parent.is_empty() && parent.bytes().any(|b| b != b'0'))
                            .then_some(parent),
                        links: s
                            .links
                            .iter()
                            .map(|l| (hex_id(&l.trace_id), hex_id(&l.span_id)))
                            .collect(),
                        service: service.clone(),
                        name: s.name,
                        kind: Kind::from_otlp(&s.kind),
                        start_ns: i128::from(s.start_time_unix_nano),
                        end_ns: i128::from(s.end_time_unix_nano),
                    });
                }
            }
        }
    }
    if spans.is_empty() {
        return Err(OtelError::NoSpans("OTLP"));
    }
    let mut notes = vec![format!(
        "{} span(s) from {requests} OTLP export request(s)",
        spans.len()
    )];
    let (trace, more) = spans_to_trace(spans);
    notes.extend(more);
    Ok(OtelImport { trace, notes })
}

/// Reads Jaeger JSON: `{"data": [trace, ...]}` as the query service answers and the UI
/// downloads, or a bare array of traces. Timestamps are microseconds.
pub fn import_jaeger(text: &str) -> Result<OtelImport, OtelError> {
    let text = text.trim_start_matches('\u{feff}').trim_start();
    let bad = |e: serde_json::Error| OtelError::Json {
        format: "Jaeger",
        reason: e.to_string(),
    };
    let traces: Vec<JaegerTrace> = if text.starts_with('[') {
        serde_json::from_str(text).map_err(bad)?
    } else {
        serde_json::from_str::<JaegerDoc>(text).map_err(bad)?.data
    };
    let mut spans = Vec::new();
    let mut unknown_kinds = 0usize;
    let trace_count = traces.len();
    for t in traces {
        for s in t.spans {
            let service = s
                .process
                .as_ref()
                .map(|p| p.service_name.clone())
                .filter(|n| !n.is_empty())
                .or_else(|| {
                    t.processes
                        .get(&s.process_id)
                        .map(|p| p.service_name.clone())
                })
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "unknown_service".to_owned());
            let kind = s
                .tags
                .iter()
                .find(|t| t.key == "span.kind")
                .and_then(|t| t.value.as_str())
                .map_or(Kind::Unspecified, Kind::from_name);
            if kind == Kind::Unspecified {
                unknown_kinds += 1;
            }
            let mut parent = s
                .parent_span_id
                .as_deref()
                .map(hex_id)
                .filter(|p| !p.is_empty() && p.bytes().any(|b| b != b'0'));
            let mut links = Vec::new();
            for r in &s.references {
                let target_trace = if r.trace_id.is_empty() {
                    hex_id(&s.trace_id)
                } else {
                    hex_id(&r.trace_id)
                };
                let target = (target_trace, hex_id(&r.span_id));
                if r.ref_type.eq_ignore_ascii_case("CHILD_OF")
                    && parent.is_none()
                    && target.0 == hex_id(&s.trace_id)
                {
                    parent = Some(target.1);
                } else if parent.as_ref() != Some(&target.1) {
                    links.push(target);
                }
            }
            let start_ns = i128::from(s.start_time) * 1000;
            spans.push(SpanRecord {
                trace_id: hex_id(&s.trace_id),
                span_id: hex_id(&s.span_id),
                parent,
                links,
                service,
                name: s.operation_name,
                kind,
                start_ns,
                end_ns: start_ns + i128::from(s.duration) * 1000,
            });
        }
    }
    if spans.is_empty() {
        return Err(OtelError::NoSpans("Jaeger"));
    }
    let mut notes = vec![format!(
        "{} span(s) in {trace_count} Jaeger trace object(s)",
        spans.len()
    )];
    if unknown_kinds > 0 {
        notes.push(format!(
            "{unknown_kinds} span(s) carry no span.kind tag: a child on another service that ends before its parent is taken as a synchronous call (its end answers the parent)"
        ));
    }
    let (trace, more) = spans_to_trace(spans);
    notes.extend(more);
    Ok(OtelImport { trace, notes })
}

/// One trace event an endpoint (a span's start or end) becomes.
#[derive(Debug, Clone)]
enum Sub {
    Local,
    /// Receives the message of edge `e`.
    Receive(usize),
    /// Sends one message, received by the targets of the edges whose send it is.
    Send,
}

/// The mapping of the module docs: spans → endpoints on service lanes → trace events, with the
/// cross-service edges as messages, recorded in an order consistent with both.
fn spans_to_trace(mut spans: Vec<SpanRecord>) -> (Trace, Vec<String>) {
    let mut notes = Vec::new();

    // Duplicate span ids: keep the first.
    let mut index: HashMap<(String, String), usize> = HashMap::with_capacity(spans.len());
    let mut kept = Vec::with_capacity(spans.len());
    let mut duplicates = 0usize;
    for s in spans.drain(..) {
        let key = (s.trace_id.clone(), s.span_id.clone());
        if index.contains_key(&key) {
            duplicates += 1;
            continue;
        }
        index.insert(key, kept.len());
        kept.push(s);
    }
    let spans = kept;
    if duplicates > 0 {
        notes.push(format!(
            "{duplicates} span(s) repeat an earlier span's id and are left out"
        ));
    }
    let find = |trace: &str, span: &str| index.get(&(trace.to_owned(), span.to_owned())).copied();

    // Lanes: services by their first span's start.
    let mut first_start: BTreeMap<&str, i128> = BTreeMap::new();
    for s in &spans {
        let e = first_start.entry(&s.service).or_insert(s.start_ns);
        *e = (*e).min(s.start_ns);
    }
    let mut services: Vec<(&str, i128)> = first_start.into_iter().collect();
    services.sort_by_key(|&(name, t)| (t, name));
    let lane_of: HashMap<&str, NodeId> = services
        .iter()
        .enumerate()
        .map(|(i, &(name, _))| (name, i as NodeId))
        .collect();
    let lane = |s: usize| lane_of[spans[s].service.as_str()];

    let mut ended_early = 0usize;
    let start_ns = |s: usize| spans[s].start_ns;
    let end_ns: Vec<i128> = spans
        .iter()
        .map(|s| {
            if s.end_ns < s.start_ns {
                ended_early += 1;
                s.start_ns
            } else {
                s.end_ns
            }
        })
        .collect();
    if ended_early > 0 {
        notes.push(format!(
            "{ended_early} span(s) end before they start; drawn as instants at their start"
        ));
    }

    // Parents, depths (for tie-breaks), and the cross-service edges between endpoints
    // (endpoint 2s is span s's start, 2s+1 its end).
    let parent: Vec<Option<usize>> = spans
        .iter()
        .map(|s| s.parent.as_deref().and_then(|p| find(&s.trace_id, p)))
        .collect();
    let missing_parents = spans
        .iter()
        .zip(&parent)
        .filter(|(s, p)| s.parent.is_some() && p.is_none())
        .count();
    if missing_parents > 0 {
        notes.push(format!(
            "{missing_parents} span(s) name a parent that is not in the file (drawn as roots)"
        ));
    }
    let mut depth: Vec<u32> = vec![u32::MAX; spans.len()];
    for s in 0..spans.len() {
        let mut chain = vec![s];
        let mut at = s;
        while let Some(p) = parent[at] {
            if depth[p] != u32::MAX || chain.len() > spans.len() {
                break;
            }
            chain.push(p);
            at = p;
        }
        let mut d = parent[at].map_or(0, |p| depth[p].saturating_add(1).min(u32::MAX - 1));
        for &c in chain.iter().rev() {
            if depth[c] == u32::MAX {
                depth[c] = d;
            }
            d = depth[c].saturating_add(1).min(u32::MAX - 1);
        }
    }

    let mut edges: Vec<(usize, usize)> = Vec::new();
    let mut same_lane_backwards = 0usize;
    let mut missing_links = 0usize;
    for s in 0..spans.len() {
        if let Some(p) = parent[s] {
            if lane(p) != lane(s) {
                edges.push((2 * p, 2 * s));
                let (pk, ck) = (spans[p].kind, spans[s].kind);
                let sync = if pk.is_messaging() || ck.is_messaging() {
                    false
                } else if pk == Kind::Client || ck == Kind::Server {
                    true
                } else {
                    pk == Kind::Unspecified && ck == Kind::Unspecified && end_ns[s] <= end_ns[p]
                };
                if sync {
                    edges.push((2 * s + 1, 2 * p + 1));
                }
            } else if start_ns(s) < start_ns(p) {
                same_lane_backwards += 1;
            }
        }
        for (t, l) in &spans[s].links {
            match find(t, l) {
                Some(l) if lane(l) != lane(s) => edges.push((2 * l, 2 * s)),
                Some(_) => {}
                None => missing_links += 1,
            }
        }
    }
    if same_lane_backwards > 0 {
        notes.push(format!(
            "{same_lane_backwards} span(s) start before their parent on the same service — their own service's clock says so, which no skew explains"
        ));
    }
    if missing_links > 0 {
        notes.push(format!(
            "{missing_links} span link(s) point to spans not in the file"
        ));
    }

    // Endpoints on each lane in the service's time order.
    let endpoints = 2 * spans.len();
    let time = |ep: usize| {
        if ep.is_multiple_of(2) {
            start_ns(ep / 2)
        } else {
            end_ns[ep / 2]
        }
    };
    let mut lanes: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
    for ep in 0..endpoints {
        lanes.entry(lane(ep / 2)).or_default().push(ep);
    }
    for eps in lanes.values_mut() {
        eps.sort_by_key(|&ep| {
            let s = ep / 2;
            let d = i64::from(depth[s]);
            (
                time(ep),
                ep % 2,
                if ep.is_multiple_of(2) { d } else { -d },
                s,
            )
        });
    }
    let mut incoming: Vec<Vec<usize>> = vec![Vec::new(); endpoints];
    let mut outgoing: Vec<Vec<usize>> = vec![Vec::new(); endpoints];
    for (e, &(from, to)) in edges.iter().enumerate() {
        outgoing[from].push(e);
        incoming[to].push(e);
    }

    // Each endpoint becomes its receives, then its sends (one per repeated target lane).
    struct SubEvent {
        endpoint: usize,
        sub: Sub,
    }
    let mut subs: Vec<SubEvent> = Vec::with_capacity(endpoints);
    let mut lane_subs: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
    let mut send_sub_of_edge: Vec<usize> = vec![usize::MAX; edges.len()];
    for (&n, eps) in &lanes {
        let list = lane_subs.entry(n).or_default();
        for &ep in eps {
            let before = subs.len();
            for &e in &incoming[ep] {
                subs.push(SubEvent {
                    endpoint: ep,
                    sub: Sub::Receive(e),
                });
            }
            let mut groups: Vec<Vec<usize>> = Vec::new();
            for &e in &outgoing[ep] {
                let target_lane = lane(edges[e].1 / 2);
                match groups
                    .iter_mut()
                    .find(|g| g.iter().all(|&o| lane(edges[o].1 / 2) != target_lane))
                {
                    Some(g) => g.push(e),
                    None => groups.push(vec![e]),
                }
            }
            for g in groups {
                for &e in &g {
                    send_sub_of_edge[e] = subs.len();
                }
                subs.push(SubEvent {
                    endpoint: ep,
                    sub: Sub::Send,
                });
            }
            if subs.len() == before {
                subs.push(SubEvent {
                    endpoint: ep,
                    sub: Sub::Local,
                });
            }
            list.extend(before..subs.len());
        }
    }

    // Record in an order consistent with the lanes and the messages (Kahn, earliest first).
    let origin = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let ms = |ep: usize| (time(ep) - origin) as f64 / 1e6;
    let mut heads: BTreeMap<NodeId, usize> = lane_subs.keys().map(|&n| (n, 0)).collect();
    let mut recorded: Vec<bool> = vec![false; subs.len()];
    let mut waiting: HashMap<usize, Vec<NodeId>> = HashMap::new();
    let mut ready: BinaryHeap<Reverse<(i128, NodeId, usize)>> = BinaryHeap::new();
    let check = |n: NodeId,
                 heads: &BTreeMap<NodeId, usize>,
                 recorded: &[bool],
                 subs: &[SubEvent],
                 waiting: &mut HashMap<usize, Vec<NodeId>>,
                 ready: &mut BinaryHeap<Reverse<(i128, NodeId, usize)>>| {
        let h = heads[&n];
        let Some(&sub) = lane_subs[&n].get(h) else {
            return;
        };
        if let Sub::Receive(e) = subs[sub].sub {
            let from = send_sub_of_edge[e];
            if !recorded[from] {
                waiting.entry(from).or_default().push(n);
                return;
            }
        }
        ready.push(Reverse((time(subs[sub].endpoint), n, h)));
    };
    for &n in lane_subs.keys() {
        check(n, &heads, &recorded, &subs, &mut waiting, &mut ready);
    }
    let mut trace = Trace::new();
    for &(name, _) in &services {
        trace.name_node(lane_of[name], name);
    }
    let mut message_of_sub: HashMap<usize, MessageId> = HashMap::new();
    let mut dropped = 0usize;
    let mut left = subs.len();
    while left > 0 {
        let n = match ready.pop() {
            Some(Reverse((_, n, h))) if heads[&n] == h => n,
            Some(_) => continue,
            None => {
                // Every lane waits on another: the edges contradict the services' clock
                // orders. Take the earliest head and let its receive go.
                let (_, n) = lane_subs
                    .iter()
                    .filter_map(|(&n, l)| l.get(heads[&n]).map(|&s| (time(subs[s].endpoint), n)))
                    .min()
                    .expect("a lane has events left");
                let sub = lane_subs[&n][heads[&n]];
                subs[sub].sub = Sub::Local;
                dropped += 1;
                n
            }
        };
        let h = heads.get_mut(&n).expect("lane");
        let sub = lane_subs[&n][*h];
        *h += 1;
        left -= 1;
        recorded[sub] = true;
        let ep = subs[sub].endpoint;
        let label = format!(
            "{} {}",
            if ep.is_multiple_of(2) { "start" } else { "end" },
            spans[ep / 2].name
        );
        match &subs[sub].sub {
            Sub::Local => {
                trace.local(n, ms(ep), label);
            }
            Sub::Send => {
                let m = trace.send(n, ms(ep), label);
                message_of_sub.insert(sub, m);
            }
            Sub::Receive(e) => {
                let m = message_of_sub[&send_sub_of_edge[*e]];
                if trace.receive(n, m, ms(ep), label.clone()).is_err() {
                    trace.local(n, ms(ep), label);
                    dropped += 1;
                }
            }
        }
        check(n, &heads, &recorded, &subs, &mut waiting, &mut ready);
        for w in waiting.remove(&sub).unwrap_or_default() {
            check(w, &heads, &recorded, &subs, &mut waiting, &mut ready);
        }
    }
    if dropped > 0 {
        notes.push(format!(
            "{dropped} edge(s) contradict the order of a service's own timestamps and are not drawn (a service name shared by hosts with different clocks?)"
        ));
    }
    notes.push(super::import::origin_note(origin, "span start times"));
    notes.push(format!(
        "{} services as lanes: {}; parent → child and span links across services are messages, and so is each synchronous call's return",
        services.len(),
        services.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
    ));
    (trace, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{validate, EventKind, Violation};

    fn otlp_span(
        service: &str,
        id: &str,
        parent: &str,
        name: &str,
        kind: u8,
        start: u64,
        end: u64,
    ) -> String {
        format!(
            r#"{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeSpans":[{{"spans":[{{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"{id}","parentSpanId":"{parent}","name":"{name}","kind":{kind},"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}"}}]}}]}}"#
        )
    }

    fn rpc(child_start_ms: u64) -> String {
        let ms = 1_000_000u64;
        let t0 = 1_700_000_000_000 * ms;
        let spans = [
            otlp_span("web", "00f067aa0ba902b7", "", "GET /", 2, t0, t0 + 50 * ms),
            otlp_span(
                "web",
                "00f067aa0ba902b8",
                "00f067aa0ba902b7",
                "call api",
                3,
                t0 + 10 * ms,
                t0 + 40 * ms,
            ),
            otlp_span(
                "api",
                "00f067aa0ba902b9",
                "00f067aa0ba902b8",
                "serve",
                2,
                t0 + child_start_ms * ms,
                t0 + 30 * ms,
            ),
        ];
        format!(r#"{{"resourceSpans":[{}]}}"#, spans.join(","))
    }

    #[test]
    fn an_rpc_is_a_request_and_a_reply() {
        let i = import_otlp(&rpc(12)).unwrap();
        let t = &i.trace;
        assert_eq!(t.len(), 6);
        assert_eq!(t.node_name(0), "web");
        assert_eq!(t.node_name(1), "api");
        assert_eq!(t.message_edges().len(), 2);
        let labels: Vec<&str> = t.events().iter().map(|e| e.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "start GET /",
                "start call api",
                "start serve",
                "end serve",
                "end call api",
                "end GET /"
            ]
        );
        assert!(matches!(t.events()[1].kind, EventKind::Send { .. }));
        assert!(matches!(t.events()[2].kind, EventKind::Receive { .. }));
        assert_eq!(t.events()[2].physical_ms, Some(12.0));
        assert!(validate(t).is_empty(), "{:?}", validate(t));
        assert!(
            i.notes.iter().any(|n| n.contains("2023-11-14T22:13:20")),
            "{:?}",
            i.notes
        );
    }

    #[test]
    fn a_child_starting_before_its_parent_is_flagged_as_skew() {
        let i = import_otlp(&rpc(4)).unwrap();
        let v = validate(&i.trace);
        assert!(
            v.iter()
                .any(|v| matches!(v, Violation::ReceiveBeforeSend { .. })),
            "{v:?}"
        );
        let words = v[0].describe(&i.trace);
        assert!(words.contains("clock skew"), "{words}");
        assert!(
            words.contains("api's clock is at least 6 ms behind web's"),
            "{words}"
        );
    }

    #[test]
    fn messaging_has_no_return_and_links_are_edges() {
        let ms = 1_000_000u64;
        let spans = [
            otlp_span("shop", "0000000000000001", "", "publish", 4, 0, 2 * ms),
            otlp_span(
                "mail",
                "0000000000000002",
                "0000000000000001",
                "consume",
                5,
                5 * ms,
                9 * ms,
            ),
        ];
        let mut doc = format!(r#"{{"resourceSpans":[{}]}}"#, spans.join(","));
        let i = import_otlp(&doc).unwrap();
        assert_eq!(i.trace.message_edges().len(), 1);
        // A link instead of a parent: still an edge.
        doc = doc.replace(
            r#""parentSpanId":"0000000000000001""#,
            r#""parentSpanId":"","links":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"0000000000000001"}]"#,
        );
        let i = import_otlp(&doc).unwrap();
        assert_eq!(i.trace.message_edges().len(), 1);
        assert!(validate(&i.trace).is_empty());
    }

    #[test]
    fn jaeger_and_otlp_of_one_rpc_agree() {
        let jaeger = r#"{"data":[{"traceID":"0af7651916cd43dd8448eb211c80319c","spans":[
          {"traceID":"0af7651916cd43dd8448eb211c80319c","spanID":"00f067aa0ba902b7","operationName":"GET /","references":null,"startTime":1700000000000000,"duration":50000,"processID":"p1","tags":[{"key":"span.kind","type":"string","value":"server"}]},
          {"traceID":"0af7651916cd43dd8448eb211c80319c","spanID":"00f067aa0ba902b8","operationName":"call api","references":[{"refType":"CHILD_OF","traceID":"0af7651916cd43dd8448eb211c80319c","spanID":"00f067aa0ba902b7"}],"startTime":1700000000010000,"duration":30000,"processID":"p1","tags":[]},
          {"traceID":"0af7651916cd43dd8448eb211c80319c","spanID":"00f067aa0ba902b9","operationName":"serve","references":[{"refType":"CHILD_OF","traceID":"0af7651916cd43dd8448eb211c80319c","spanID":"00f067aa0ba902b8"}],"startTime":1700000000012000,"duration":18000,"processID":"p2","tags":[]}
        ],"processes":{"p1":{"serviceName":"web","tags":[]},"p2":{"serviceName":"api","tags":[]}}}]}"#;
        let j = import_jaeger(jaeger).unwrap();
        let o = import_otlp(&rpc(12)).unwrap();
        assert_eq!(j.trace.events(), o.trace.events());
    }

    #[test]
    fn base64_ids_are_read_as_hex() {
        assert_eq!(hex_id("AAAAAAAAAAE="), "0000000000000001");
        assert_eq!(hex_id("ABCdef0123456789"), "abcdef0123456789");
    }

    #[test]
    fn bad_exports_get_clear_errors() {
        assert_eq!(import_otlp("{}"), Err(OtelError::NoSpans("OTLP")));
        let e = import_otlp(
            "{\"resourceSpans\": [{\"scopeSpans\": [{\"spans\": [{\"traceId\": 1}]}]}]}",
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("not OTLP JSON: invalid type"),
            "{e}"
        );
        assert!(import_jaeger("{\"data\": 5}")
            .unwrap_err()
            .to_string()
            .contains("line 1"));
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = import_otlp(&text);
            let _ = import_jaeger(&text);
        }

        #[test]
        fn random_span_forests_import_legal_clocks(
            spans in proptest::collection::vec((0usize..4, 0usize..40, 0u8..6, 0u64..100, 0u64..50), 1..40)
        ) {
            // Random parents (earlier spans), services, kinds and times on one clock: the
            // logical clocks are always legal (skew may be flagged; nothing else).
            let mut parts = Vec::new();
            for (i, (service, parent, kind, start, len)) in spans.iter().enumerate() {
                let p = if i == 0 { String::new() } else { format!("{:016x}", parent % i + 1) };
                parts.push(otlp_span(&format!("s{service}"), &format!("{:016x}", i + 1), &p, &format!("op{i}"), *kind, *start, start + len));
            }
            let doc = format!(r#"{{"resourceSpans":[{}]}}"#, parts.join(","));
            let i = import_otlp(&doc).unwrap();
            let labels: std::collections::BTreeSet<&str> =
                i.trace.events().iter().map(|e| e.label.as_str()).collect();
            for k in 0..spans.len() {
                let start = format!("start op{k}");
                let end = format!("end op{k}");
                proptest::prop_assert!(labels.contains(start.as_str()));
                proptest::prop_assert!(labels.contains(end.as_str()));
            }
            for v in validate(&i.trace) {
                let allowed = matches!(v, Violation::ReceiveBeforeSend { .. });
                proptest::prop_assert!(allowed, "{:?}", v);
            }
        }
    }
}
