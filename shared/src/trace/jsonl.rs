//! JSON-lines logs with a vector clock per event — the input of the trace visualizer in the
//! lab notebook's project 8:
//!
//! ```text
//! {"node": "A", "event": "start", "vc": [1, 0, 0]}
//! {"node": "B", "event": "recv_from_A", "vc": [1, 1, 0]}
//! {"node": "C", "event": "independent_task", "vc": [0, 0, 1]}
//! ```
//!
//! One JSON object per line. The node, event and clock fields are found by name: `node`
//! (else `host`, `process`), `event` (else `msg`, `message`), `vc` (else `clock`,
//! `vector_clock`), or as [`JsonLinesOptions`] names them. The clock is a map (node name →
//! counter, as ShiViz's) or an array: position i is the i-th node, in the order of an optional
//! header line `{"nodes": ["A", "B", "C"]}` or else in the order nodes first appear in the
//! log — the import says which in its notes. An optional time field (`time`, `timestamp`,
//! `ts`) gives physical times. Messages are inferred from the clocks ([`super::clocked`]).
//!
//! **Guarantee.** Every line is either an event or reported with its line number and why it
//! was skipped; no input panics or is silently dropped.

use std::collections::BTreeMap;

use serde_json::Value;

use super::clocked::{self, Entry, HostOrder};
use super::{Trace, TraceError};

/// Names of a log's fields (each `None` tries the usual names) and the unit of its times.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonLinesOptions {
    /// The field holding the node (host, process) name.
    pub node_field: Option<String>,
    /// The field holding the event's description.
    pub event_field: Option<String>,
    /// The field holding the vector clock.
    pub clock_field: Option<String>,
    /// The field holding a physical timestamp.
    pub time_field: Option<String>,
    /// The unit of numeric timestamps (default milliseconds).
    pub time_unit: TimeUnit,
}

/// The unit of a log's numeric timestamps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimeUnit {
    /// Seconds.
    Seconds,
    /// Milliseconds (the default).
    #[default]
    Millis,
    /// Microseconds.
    Micros,
    /// Nanoseconds.
    Nanos,
}

impl TimeUnit {
    fn to_ns(self, v: f64) -> i128 {
        let scale = match self {
            TimeUnit::Seconds => 1e9,
            TimeUnit::Millis => 1e6,
            TimeUnit::Micros => 1e3,
            TimeUnit::Nanos => 1.0,
        };
        (v * scale) as i128
    }
}

const NODE_FIELDS: [&str; 3] = ["node", "host", "process"];
const EVENT_FIELDS: [&str; 3] = ["event", "msg", "message"];
const CLOCK_FIELDS: [&str; 3] = ["vc", "clock", "vector_clock"];
const TIME_FIELDS: [&str; 3] = ["time", "timestamp", "ts"];

/// One line that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LineError {
    /// The line number (from 1).
    pub line: usize,
    /// Why the line was skipped.
    pub reason: String,
}

/// Why a JSON-lines log could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonLinesError {
    /// No line is an event; the first malformed lines say why.
    #[error("no line is an event{}", first_errors(.0))]
    NoEvents(Vec<LineError>),
    /// Events contradict each other's message structure.
    #[error("line {line}: {source}")]
    Structure {
        /// The line.
        line: usize,
        /// What is wrong.
        source: TraceError,
    },
}

fn first_errors(errors: &[LineError]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = errors.iter().take(3).map(ToString::to_string).collect();
    format!(": {}", shown.join("; "))
}

/// A JSON-lines log read into a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonLinesImport {
    /// The trace.
    pub trace: Trace,
    /// What the import decided (the position → node mapping, the time axis), in words.
    pub notes: Vec<String>,
    /// The lines that were skipped, with why.
    pub skipped: Vec<LineError>,
}

/// A clock as the line wrote it.
enum RawClock {
    Array(Vec<u64>),
    Map(BTreeMap<String, u64>),
}

struct RawEvent {
    line: usize,
    node: String,
    text: String,
    clock: RawClock,
    stamp_ns: Option<i128>,
}

fn field<'a>(
    obj: &'a serde_json::Map<String, Value>,
    given: &Option<String>,
    defaults: &[&str],
) -> Option<&'a Value> {
    match given {
        Some(name) => obj.get(name),
        None => defaults.iter().find_map(|k| obj.get(*k)),
    }
}

fn names(given: &Option<String>, defaults: &[&str]) -> String {
    match given {
        Some(n) => format!("{n:?}"),
        None => defaults
            .iter()
            .map(|d| format!("{d:?}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn counter(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 9e15)
            .map(|f| f as u64)
    })
}

fn parse_clock(v: &Value) -> Result<RawClock, String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|c| {
                counter(c)
                    .ok_or_else(|| format!("clock entry {c} is not a counter (a whole number ≥ 0)"))
            })
            .collect::<Result<Vec<u64>, String>>()
            .map(RawClock::Array),
        Value::Object(map) => map
            .iter()
            .map(|(k, c)| {
                counter(c).map(|c| (k.clone(), c)).ok_or_else(|| {
                    format!("clock entry {k:?}: {c} is not a counter (a whole number ≥ 0)")
                })
            })
            .collect::<Result<BTreeMap<String, u64>, String>>()
            .map(RawClock::Map),
        other => Err(format!(
            "the vector clock must be an array or an object of counters, found {}",
            kind_of(other)
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn name_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The header line's node names, if `obj` is one: `{"nodes": [...]}` and no clock.
fn header(obj: &serde_json::Map<String, Value>, options: &JsonLinesOptions) -> Option<Vec<String>> {
    if field(obj, &options.clock_field, &CLOCK_FIELDS).is_some() {
        return None;
    }
    let nodes = obj.get("nodes")?.as_array()?;
    nodes.iter().map(name_of).collect()
}

fn read_line(
    n: usize,
    obj: &serde_json::Map<String, Value>,
    options: &JsonLinesOptions,
) -> Result<RawEvent, String> {
    let node_v = field(obj, &options.node_field, &NODE_FIELDS).ok_or_else(|| {
        format!(
            "no node field (looked for {}; name it with --node-field)",
            names(&options.node_field, &NODE_FIELDS)
        )
    })?;
    let node = name_of(node_v).ok_or_else(|| {
        format!(
            "the node must be a name or a number, found {}",
            kind_of(node_v)
        )
    })?;
    let clock_v = field(obj, &options.clock_field, &CLOCK_FIELDS).ok_or_else(|| {
        format!(
            "no vector clock field (looked for {}; name it with --clock-field)",
            names(&options.clock_field, &CLOCK_FIELDS)
        )
    })?;
    let clock = parse_clock(clock_v)?;
    let text = match field(obj, &options.event_field, &EVENT_FIELDS) {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let stamp_ns = match field(obj, &options.time_field, &TIME_FIELDS) {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_f64() {
            Some(t) if t.is_finite() && t.abs() < 1e19 => Some(options.time_unit.to_ns(t)),
            _ => return Err(format!("the time must be a number, found {}", kind_of(v))),
        },
    };
    Ok(RawEvent {
        line: n,
        node,
        text,
        clock,
        stamp_ns,
    })
}

/// Reads a JSON-lines log. Lines that are not events are skipped and reported in
/// [`JsonLinesImport::skipped`]; the import fails only when no line is an event.
pub fn import(log: &str, options: &JsonLinesOptions) -> Result<JsonLinesImport, JsonLinesError> {
    let mut skipped: Vec<LineError> = Vec::new();
    let mut raw: Vec<RawEvent> = Vec::new();
    let mut given: Option<Vec<String>> = None;
    for (i, line) in log.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                skipped.push(LineError {
                    line: n,
                    reason: format!("not JSON: {e}"),
                });
                continue;
            }
        };
        let Value::Object(obj) = value else {
            skipped.push(LineError {
                line: n,
                reason: format!("expected a JSON object, found {}", kind_of(&value)),
            });
            continue;
        };
        if raw.is_empty() && given.is_none() {
            if let Some(h) = header(&obj, options) {
                given = Some(h);
                continue;
            }
        }
        match read_line(n, &obj, options) {
            Ok(e) => raw.push(e),
            Err(reason) => skipped.push(LineError { line: n, reason }),
        }
    }
    if raw.is_empty() {
        return Err(JsonLinesError::NoEvents(skipped));
    }

    let mut notes = Vec::new();
    let any_array = raw.iter().any(|e| matches!(e.clock, RawClock::Array(_)));
    let positions: Vec<String> = match &given {
        Some(h) => h.clone(),
        None => {
            let mut order: Vec<String> = Vec::new();
            for e in &raw {
                if !order.contains(&e.node) {
                    order.push(e.node.clone());
                }
            }
            order
        }
    };
    if any_array {
        let mapping: Vec<String> = positions
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{i} → {n}"))
            .collect();
        notes.push(format!(
            "vector positions map to nodes {}: {}",
            if given.is_some() {
                "as the header line names them"
            } else {
                "in the order the nodes first appear (a first line {\"nodes\": [...]} sets them)"
            },
            mapping.join(", ")
        ));
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(raw.len());
    for e in raw {
        let clock = match e.clock {
            RawClock::Map(m) => m,
            RawClock::Array(a) => {
                if let Some((pos, _)) = a
                    .iter()
                    .enumerate()
                    .find(|&(p, &c)| p >= positions.len() && c > 0)
                {
                    skipped.push(LineError {
                        line: e.line,
                        reason: format!(
                            "the vector clock counts events at position {pos}, but only {} node(s) are known — give a first line {{\"nodes\": [...]}} naming every position",
                            positions.len()
                        ),
                    });
                    continue;
                }
                a.iter()
                    .zip(&positions)
                    .map(|(&c, n)| (n.clone(), c))
                    .collect()
            }
        };
        entries.push(Entry {
            line: e.line,
            host: e.node,
            clock,
            text: e.text,
            physical_ms: None,
            stamp_ns: e.stamp_ns,
        });
    }
    if entries.is_empty() {
        return Err(JsonLinesError::NoEvents(skipped));
    }
    notes.extend(clocked::stamp_axis(&mut entries, "the log's time field"));
    let order = if any_array || given.is_some() {
        HostOrder::Given(positions)
    } else {
        HostOrder::Natural
    };
    let (trace, more) = clocked::build(entries, order)
        .map_err(|(line, source)| JsonLinesError::Structure { line, source })?;
    notes.extend(more);
    skipped.sort_by_key(|e| e.line);
    Ok(JsonLinesImport {
        trace,
        notes,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{validate, EventKind};

    const SEED: &str = r#"{"node": "A", "event": "start", "vc": [1, 0, 0]}
{"node": "B", "event": "recv_from_A", "vc": [1, 1, 0]}
{"node": "C", "event": "independent_task", "vc": [0, 0, 1]}
"#;

    #[test]
    fn the_seed_example_imports_with_its_message() {
        let i = import(SEED, &JsonLinesOptions::default()).unwrap();
        let t = &i.trace;
        assert_eq!(t.len(), 3);
        assert_eq!(t.node_name(0), "A");
        assert_eq!(t.node_name(2), "C");
        assert!(matches!(t.events()[0].kind, EventKind::Send { .. }));
        assert!(matches!(t.events()[1].kind, EventKind::Receive { .. }));
        assert!(matches!(t.events()[2].kind, EventKind::Local));
        assert!(validate(t).is_empty());
        assert!(i.notes[0].contains("first appear"), "{:?}", i.notes);
        assert!(i.notes[0].contains("0 → A, 1 → B, 2 → C"));
        assert!(i.skipped.is_empty());
    }

    #[test]
    fn a_header_sets_the_positions() {
        let log = "{\"nodes\": [\"C\", \"B\", \"A\"]}\n\
                   {\"node\": \"A\", \"event\": \"x\", \"vc\": [0, 0, 1]}\n\
                   {\"node\": \"C\", \"event\": \"y\", \"vc\": [1, 0, 1]}\n";
        let i = import(log, &JsonLinesOptions::default()).unwrap();
        assert!(i.notes[0].contains("header"), "{:?}", i.notes);
        assert_eq!(i.trace.node_name(0), "C");
        assert!(validate(&i.trace).is_empty());
        assert!(matches!(
            i.trace.events()[1].kind,
            EventKind::Receive { .. }
        ));
    }

    #[test]
    fn map_clocks_other_field_names_and_times() {
        let log = r#"{"host":0,"msg":{"type":"tok"},"vc":{"0":1},"ts":1000}
{"host":1,"msg":"got it","vc":{"0":1,"1":1},"ts":1002.5}
"#;
        let i = import(log, &JsonLinesOptions::default()).unwrap();
        assert_eq!(i.trace.events()[0].label, r#"{"type":"tok"}"#);
        assert_eq!(i.trace.events()[1].physical_ms, Some(2.5));
        let named = JsonLinesOptions {
            node_field: Some("who".into()),
            event_field: Some("what".into()),
            clock_field: Some("c".into()),
            ..Default::default()
        };
        let i = import(r#"{"who":"x","what":"w","c":{"x":1}}"#, &named).unwrap();
        assert_eq!(i.trace.events()[0].label, "w");
    }

    #[test]
    fn malformed_lines_are_reported_with_their_numbers() {
        let log = "{\"node\": \"A\", \"event\": \"start\", \"vc\": [1, 0]}\n\
                   not json\n\
                   [1, 2]\n\
                   {\"event\": \"x\", \"vc\": [1]}\n\
                   {\"node\": \"B\", \"vc\": \"1,1\"}\n\
                   {\"node\": \"B\", \"vc\": [1, -1]}\n\
                   {\"node\": \"B\", \"vc\": [1, 1, 5]}\n\
                   {\"node\": \"B\", \"event\": \"ok\", \"vc\": [1, 1]}\n";
        let i = import(log, &JsonLinesOptions::default()).unwrap();
        let lines: Vec<usize> = i.skipped.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6, 7]);
        assert!(i.skipped[0].to_string().starts_with("line 2: not JSON"));
        assert!(i.skipped[2].reason.contains("--node-field"));
        assert!(i.skipped[5].reason.contains("position 2"));
        assert_eq!(i.trace.len(), 2);
        let err = import("nope\n{}\n", &JsonLinesOptions::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no line is an event: line 1: not JSON"),
            "{err}"
        );
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = import(&text, &JsonLinesOptions::default());
        }

        #[test]
        fn mangled_json_lines_never_panic(
            lines in proptest::collection::vec(
                (0usize..4, proptest::collection::vec(0u64..4, 0..5), 0u8..6), 0..30)
        ) {
            // Real-looking lines with random clocks, names and damage.
            let mut log = String::new();
            for (node, clock, damage) in lines {
                let vc: Vec<String> = clock.iter().map(u64::to_string).collect();
                let mut l = format!("{{\"node\": \"N{node}\", \"event\": \"e\", \"vc\": [{}]}}", vc.join(","));
                match damage {
                    0 => l.truncate(l.len() / 2),
                    1 => l = l.replace('[', "{"),
                    _ => {}
                }
                log.push_str(&l);
                log.push('\n');
            }
            if let Ok(i) = import(&log, &JsonLinesOptions::default()) {
                let _ = validate(&i.trace);
            }
        }
    }
}
