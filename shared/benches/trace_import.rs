//! Import of a 100,000-event log in each format `trace::import` reads: time and peak memory.
//!
//! Each log is generated from a seeded run (8 nodes or services) in the format's own shape,
//! then imported `REPS` times through `chronoscope::trace::import::import` with the format
//! detected — the code path the CLI and the page run. Peak memory is the largest number of
//! bytes the importer held at once beyond the input text (a counting global allocator). As a
//! yardstick from the same process, each JSON format's time is also given as a ratio to
//! `serde_json::from_str::<Value>` of the same text — parsing alone, no trace built.
//!
//! Run: `cargo bench -p chronoscope --bench trace_import` (optional args: events, reps).

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chronoscope::trace::import::{import, ImportOptions};
use chronoscope::trace::{shiviz, Trace};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = NOW.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        NOW.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const NODES: u32 = 8;

/// A seeded run of `events` events on 8 nodes: locals, sends and receives.
fn run(events: usize, seed: u64) -> Trace {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = Trace::new();
    for n in 0..NODES {
        t.name_node(n, format!("node{n}"));
    }
    let mut in_flight: Vec<(u64, u32)> = Vec::new();
    let mut now = 0.0;
    while t.len() < events {
        now += rng.gen_range(0.1..2.0);
        let node = rng.gen_range(0..NODES);
        match rng.gen_range(0..3) {
            0 => {
                t.local(node, now, "work");
            }
            1 => {
                let m = t.send(node, now, "send");
                in_flight.push((m, node));
            }
            _ if !in_flight.is_empty() => {
                let (m, from) = in_flight.swap_remove(rng.gen_range(0..in_flight.len()));
                let to = (from + rng.gen_range(1..NODES)) % NODES;
                let _ = t.receive(to, m, now, "receive");
            }
            _ => {}
        }
    }
    t
}

fn json_lines(t: &Trace) -> String {
    let mut out = String::new();
    for e in t.events() {
        let vc: Vec<String> = (0..NODES)
            .map(|n| e.vector.get(&n).copied().unwrap_or(0).to_string())
            .collect();
        let _ = writeln!(
            out,
            r#"{{"node": "node{}", "event": "{}", "vc": [{}], "time": {}}}"#,
            e.node,
            e.label,
            vc.join(", "),
            e.physical_ms.unwrap_or(0.0)
        );
    }
    out
}

/// GoVector's layout (clock line first) without markers, so messages are inferred.
fn govector(t: &Trace, stamps: bool) -> String {
    let mut out = String::new();
    for e in t.events() {
        let clock: Vec<String> = e
            .vector
            .iter()
            .map(|(n, c)| format!("\"node{n}\":{c}"))
            .collect();
        if stamps {
            let ns = 1_700_000_000_000_000_000u64 + (e.physical_ms.unwrap_or(0.0) * 1e6) as u64;
            let _ = write!(out, "{ns} ");
        }
        let _ = writeln!(out, "node{} {{{}}}\n{}", e.node, clock.join(", "), e.label);
    }
    out
}

/// A forest of RPCs: `spans` spans on 8 services, each request calling up to 3 children.
fn span_forest(spans: usize, seed: u64) -> Vec<(usize, Option<usize>, u32, u64, u64)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<(usize, Option<usize>, u32, u64, u64)> = Vec::with_capacity(spans);
    let mut t = 1_700_000_000_000_000_000u64;
    while out.len() < spans {
        t += 1_000_000;
        let root = out.len();
        out.push((root, None, rng.gen_range(0..NODES), t, t + 900_000));
        let mut frontier = vec![root];
        while let Some(p) = frontier.pop() {
            let (_, _, _, ps, pe) = out[p];
            let kids = rng.gen_range(0..4);
            let width = (pe - ps) / (kids + 1) as u64;
            for k in 0..kids {
                if out.len() >= spans || width < 10 {
                    break;
                }
                let s = ps + width * k as u64 + width / 10;
                let id = out.len();
                out.push((id, Some(p), rng.gen_range(0..NODES), s, s + width * 8 / 10));
                frontier.push(id);
            }
        }
    }
    out
}

fn otlp(spans: &[(usize, Option<usize>, u32, u64, u64)]) -> String {
    let mut by_service: Vec<Vec<String>> = vec![Vec::new(); NODES as usize];
    for &(id, parent, service, start, end) in spans {
        let parent = parent.map_or(String::new(), |p| format!("{:016x}", p + 1));
        // Kinds: a root is a SERVER span, the rest CLIENT calls answered (synchronous).
        let kind = if parent.is_empty() { 2 } else { 3 };
        by_service[service as usize].push(format!(
            r#"{{"traceId":"{:032x}","spanId":"{:016x}","parentSpanId":"{parent}","name":"op{id}","kind":{kind},"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}","attributes":[]}}"#,
            1, id + 1
        ));
    }
    let resources: Vec<String> = by_service
        .iter()
        .enumerate()
        .map(|(s, spans)| {
            format!(
                r#"{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"service{s}"}}}}]}},"scopeSpans":[{{"scope":{{"name":"bench"}},"spans":[{}]}}]}}"#,
                spans.join(",")
            )
        })
        .collect();
    format!(r#"{{"resourceSpans":[{}]}}"#, resources.join(","))
}

fn jaeger(spans: &[(usize, Option<usize>, u32, u64, u64)]) -> String {
    let list: Vec<String> = spans
        .iter()
        .map(|&(id, parent, service, start, end)| {
            let refs = parent.map_or("null".to_owned(), |p| {
                format!(
                    r#"[{{"refType":"CHILD_OF","traceID":"{:032x}","spanID":"{:016x}"}}]"#,
                    1,
                    p + 1
                )
            });
            format!(
                r#"{{"traceID":"{:032x}","spanID":"{:016x}","operationName":"op{id}","references":{refs},"startTime":{},"duration":{},"processID":"p{service}","tags":[],"logs":[]}}"#,
                1,
                id + 1,
                start / 1000,
                (end - start) / 1000
            )
        })
        .collect();
    let processes: Vec<String> = (0..NODES)
        .map(|s| format!(r#""p{s}":{{"serviceName":"service{s}","tags":[]}}"#))
        .collect();
    format!(
        r#"{{"data":[{{"traceID":"{:032x}","spans":[{}],"processes":{{{}}}}}]}}"#,
        1,
        list.join(","),
        processes.join(",")
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let events: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let reps: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let t = run(events, 7);
    let forest = span_forest(events / 2, 7);
    let logs = [
        ("JSON lines", json_lines(&t), true),
        ("ShiViz (our export, markers)", shiviz::export(&t), false),
        ("GoVector (clocks only)", govector(&t, false), false),
        ("TSViz (GoVector + timestamps)", govector(&t, true), false),
        ("OTLP JSON", otlp(&forest), true),
        ("Jaeger JSON", jaeger(&forest), true),
    ];
    println!("| format | input | events | import (median of {reps}) | events/s | peak memory beyond input | vs serde_json::Value parse |");
    println!("|---|---|---|---|---|---|---|");
    for (name, text, json) in &logs {
        let mut times = Vec::new();
        let mut peak = 0usize;
        let mut count = 0usize;
        for _ in 0..reps {
            let base = NOW.load(Ordering::Relaxed);
            PEAK.store(base, Ordering::Relaxed);
            let start = Instant::now();
            let i = import(text, &ImportOptions::default()).expect("imports");
            times.push(start.elapsed().as_secs_f64());
            peak = peak.max(PEAK.load(Ordering::Relaxed) - base);
            count = i.trace.len();
            drop(i);
        }
        let ours = median(times);
        let ratio = if *json {
            let mut parse = Vec::new();
            for _ in 0..reps {
                let start = Instant::now();
                let v: serde_json::Value = if name.starts_with("JSON lines") {
                    serde_json::Value::Array(
                        text.lines()
                            .map(|l| serde_json::from_str(l).expect("JSON"))
                            .collect(),
                    )
                } else {
                    serde_json::from_str(text).expect("JSON")
                };
                parse.push(start.elapsed().as_secs_f64());
                drop(v);
            }
            format!("{:.2}×", ours / median(parse))
        } else {
            "—".to_owned()
        };
        println!(
            "| {name} | {:.1} MB | {count} | {:.1} ms | {:.2} M | {:.1} MB | {ratio} |",
            text.len() as f64 / 1e6,
            ours * 1e3,
            count as f64 / ours / 1e6,
            peak as f64 / 1e6
        );
    }
}
