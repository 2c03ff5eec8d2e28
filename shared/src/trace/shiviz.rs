//! ShiViz logs: export a trace so it opens in ShiViz, and import ShiViz/GoVector logs.
//!
//! ShiViz (Beschastnikh et al., "Debugging Distributed Systems", CACM 59(8), 2016) draws
//! space-time diagrams from a text log parsed by a regular expression with named groups
//! `host`, `clock` (a JSON object host → counter, a vector timestamp) and `event`. Its input
//! page's default parser is
//!
//! ```text
//! (?<event>.*)\n(?<host>\S*) (?<clock>{.*})
//! ```
//!
//! — each event is one log line followed by a line `host {"host":n, "other":m, ...}` — and an
//! uploaded file may carry that regular expression on its first line and the
//! multiple-executions delimiter (empty here) on its second. GoVector writes the other order
//! (clock line first, then the event line, regex `(?<host>\S*) (?<clock>{.*})\n(?<event>.*)`).
//! [`export`] writes the default order with the header; [`import`] reads either order, with or
//! without the header.
//!
//! ShiViz logs carry no message identities: only vector clocks. Our export therefore starts
//! each event line with a marker ShiViz shows as plain text — `SEND m3 L5 @12.5ms`,
//! `RECEIVE m3 L7 @14ms`, `LOCAL L2 @3ms` — followed by the label, so a round trip keeps kinds,
//! message ids, Lamport times and physical times. Logs without markers (written by GoVector or
//! by hand) get their messages inferred from the clocks: an event whose vector learns of
//! another host's event directly (not through a third host) receives a message sent by it.
//!
//! **Guarantee.** `import(&export(t))` reproduces `t`'s events (node ids follow host names
//! `N<id>`; other hosts are numbered in the natural order of their names).

use std::collections::BTreeMap;

use super::clocked::{self, Entry};
use super::{Event, EventKind, Trace, TraceError, VectorTimestamp};
use crate::NodeId;

/// ShiViz's default log-parsing regular expression (event line, then host and clock line).
pub const SHIVIZ_REGEX: &str = r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})";

/// GoVector's log-parsing regular expression (host and clock line, then event line).
pub const GOVECTOR_REGEX: &str = r"(?<host>\S*) (?<clock>{.*})\n(?<event>.*)";

/// Why a ShiViz log could not be read. Line numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShivizError {
    /// A clock line is not `host {json object of counters}`.
    #[error("line {line}: expected `host {{\"host\":n, ...}}`, found {found:?}")]
    BadClockLine {
        /// The line number.
        line: usize,
        /// The text found.
        found: String,
    },
    /// The JSON clock is not an object of non-negative integers.
    #[error("line {line}: the vector clock is not a JSON object of counters: {reason}")]
    BadClock {
        /// The line number.
        line: usize,
        /// What the JSON parser said.
        reason: String,
    },
    /// An event line has no clock line to go with it.
    #[error("line {line}: event {event:?} has no clock line")]
    MissingClock {
        /// The line number.
        line: usize,
        /// The event text.
        event: String,
    },
    /// A TSViz timestamp is not a whole number.
    #[error("line {line}: expected a timestamp (a whole number of nanoseconds) at the start, found {found:?}")]
    BadTimestamp {
        /// The line number.
        line: usize,
        /// The text found.
        found: String,
    },
    /// The log contains no events.
    #[error("the log contains no events")]
    Empty,
    /// A marker names a message badly (e.g. a receive of a message never sent).
    #[error("line {line}: {source}")]
    Structure {
        /// The line number.
        line: usize,
        /// The structural error.
        source: TraceError,
    },
}

/// Renders `trace` as a ShiViz log: the regular expression, an empty delimiter line, then per
/// event (in recording order) the event line and the `host {clock}` line.
pub fn export(trace: &Trace) -> String {
    let mut out = String::new();
    out.push_str(SHIVIZ_REGEX);
    out.push_str("\n\n");
    for e in trace.events() {
        out.push_str(&marker(e));
        if !e.label.is_empty() {
            out.push(' ');
            out.push_str(&one_line(&e.label));
        }
        out.push('\n');
        out.push_str(&host_name(trace, e.node));
        out.push(' ');
        out.push_str(&clock_json(trace, &e.vector));
        out.push('\n');
    }
    out
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn host_name(trace: &Trace, node: NodeId) -> String {
    let name: String = trace
        .node_name(node)
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '"' {
                '_'
            } else {
                c
            }
        })
        .collect();
    if name.is_empty() {
        format!("N{node}")
    } else {
        name
    }
}

fn clock_json(trace: &Trace, vector: &VectorTimestamp) -> String {
    let map: serde_json::Map<String, serde_json::Value> = vector
        .iter()
        .filter(|(_, &c)| c > 0)
        .map(|(&n, &c)| (host_name(trace, n), serde_json::Value::from(c)))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn marker(e: &Event) -> String {
    let mut m = match e.kind {
        EventKind::Local => format!("LOCAL L{}", e.lamport),
        EventKind::Send { message } => format!("SEND m{message} L{}", e.lamport),
        EventKind::Receive { message } => format!("RECEIVE m{message} L{}", e.lamport),
    };
    if let Some(t) = e.physical_ms {
        m.push_str(&format!(" @{t}ms"));
    }
    m
}

/// A parsed JSON vector clock: host name → counter.
type HostClock = BTreeMap<String, u64>;

/// Where a TSViz log carries each event's timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stamp {
    /// No timestamps (ShiViz, GoVector).
    None,
    /// `1510094546354718112 host {clock}` — GoVector with `UseTimestamps`, TSViz's default.
    OnClockLine,
    /// `1510094546354718112 event text` — TSViz's other layout.
    OnEventLine,
}

/// How a log is laid out: which line of a pair comes first, and where timestamps stand.
#[derive(Debug, Clone, Copy)]
struct Layout {
    clock_first: bool,
    stamp: Stamp,
}

impl Layout {
    /// The layout a header regular expression describes (named groups `host`, `clock`, `event`,
    /// optionally `timestamp`; `\n` separates the two lines).
    fn from_header(header: &str) -> Self {
        let (first, second) = header.split_once(r"\n").unwrap_or((header, ""));
        let clock_first = first.contains("(?<host>") || first.contains("(?<clock>");
        let stamp_line = if first.contains("(?<timestamp>") {
            Some(first)
        } else if second.contains("(?<timestamp>") {
            Some(second)
        } else {
            None
        };
        let stamp = match stamp_line {
            None => Stamp::None,
            Some(l) if l.contains("(?<clock>") => Stamp::OnClockLine,
            Some(_) => Stamp::OnEventLine,
        };
        Layout { clock_first, stamp }
    }
}

/// Splits a leading Unix-time stamp (`digits` then a space) off `s`.
fn split_stamp(s: &str) -> Option<(u64, &str)> {
    let (digits, rest) = s.split_once(' ')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, rest))
}

fn parse_clock_line(line: usize, s: &str) -> Result<Option<(String, HostClock)>, ShivizError> {
    let Some(brace) = s.find(" {") else {
        return Ok(None);
    };
    let host = &s[..brace];
    if host.is_empty() || host.chars().any(char::is_whitespace) || !s.trim_end().ends_with('}') {
        return Ok(None);
    }
    let json = s[brace + 1..].trim_end();
    let clock: BTreeMap<String, u64> =
        serde_json::from_str(json).map_err(|e| ShivizError::BadClock {
            line,
            reason: e.to_string(),
        })?;
    Ok(Some((host.to_owned(), clock)))
}

/// Whether `s` is a clock line, with or without a leading timestamp.
fn looks_like_clock_line(s: &str) -> (bool, bool) {
    let plain = parse_clock_line(0, s).is_ok_and(|c| c.is_some());
    let stamped = split_stamp(s)
        .is_some_and(|(_, rest)| parse_clock_line(0, rest).is_ok_and(|c| c.is_some()));
    (plain || stamped, stamped && !plain)
}

/// The lines GoVector writes between executions when it appends to an existing log
/// (`=== Execution #<date> ===`, after a clock line with no host), as segment boundaries.
const EXECUTION_MARK: &str = "=== Execution #";

/// A ShiViz, GoVector or TSViz log read into a trace, with what the import decided.
#[derive(Debug, Clone, PartialEq)]
pub struct ShivizImport {
    /// The trace.
    pub trace: Trace,
    /// What the import decided, in words (layout, timestamps, executions, renumbering).
    pub notes: Vec<String>,
    /// Whether the log carried TSViz-style physical timestamps.
    pub timestamped: bool,
}

/// Reads a ShiViz (or GoVector) log into a trace. See the module docs for the accepted shapes.
pub fn import(log: &str) -> Result<Trace, ShivizError> {
    import_log(log, false).map(|i| i.trace)
}

/// Reads a ShiViz, GoVector or TSViz log: either line order, with or without the header line,
/// timestamps on either line, GoVector's execution delimiters. With `renumber`, each host's
/// clock is renumbered 1, 2, 3, … first (see [`super::import::ImportOptions::renumber`]).
pub fn import_log(log: &str, renumber: bool) -> Result<ShivizImport, ShivizError> {
    let mut lines: Vec<(usize, &str)> = log
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .collect();
    let mut notes = Vec::new();
    // Optional header: a regular expression line, then the delimiter line.
    let header = lines
        .first()
        .filter(|(_, l)| l.contains("(?<host>") && l.contains("(?<clock>"))
        .map(|&(_, l)| Layout::from_header(l));
    if header.is_some() {
        lines.remove(0);
        if lines.first().is_some_and(|(_, l)| l.trim().is_empty()) {
            lines.remove(0);
        }
    }
    // Execution delimiters, and the host-less clock line GoVector writes before each.
    let mut boundaries: Vec<(usize, String)> = Vec::new();
    let mut kept: Vec<(usize, &str)> = Vec::with_capacity(lines.len());
    for (n, l) in lines {
        if l.trim().is_empty() {
            continue;
        }
        if l.trim_start().starts_with(EXECUTION_MARK) {
            if kept
                .last()
                .is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit() || b == b' '))
            {
                kept.pop();
            }
            boundaries.push((n, l.trim().to_owned()));
            continue;
        }
        kept.push((n, l));
    }
    let layout = match header {
        Some(h) => h,
        None => {
            let Some(&(_, first)) = kept.first() else {
                return Err(ShivizError::Empty);
            };
            // Event-line stamps without a header are not guessed ("12 apples" is an event).
            let (clock_first, stamped) = looks_like_clock_line(first);
            let second_stamped = kept
                .get(1)
                .is_some_and(|&(_, l)| looks_like_clock_line(l).1);
            let stamp = if stamped || (!clock_first && second_stamped) {
                Stamp::OnClockLine
            } else {
                Stamp::None
            };
            Layout { clock_first, stamp }
        }
    };
    let mut entries = pair_lines(&kept, layout)?;

    if !boundaries.is_empty() {
        let (chosen, count) = last_execution(&entries, &boundaries);
        if count > 1 {
            let first_line = chosen.first().map_or(0, |e| e.line);
            notes.push(format!(
                "the log holds {count} executions (GoVector's AppendLog); showing the last one, from line {first_line}"
            ));
        }
        entries = chosen;
    }

    let timestamped = layout.stamp != Stamp::None;
    if timestamped {
        notes.extend(clocked::stamp_axis(
            &mut entries,
            "timestamps (Unix nanoseconds, as GoVector writes them for TSViz)",
        ));
    }
    if renumber {
        notes.extend(clocked::renumber(&mut entries));
    }
    let (trace, more) = clocked::build(entries, clocked::HostOrder::Natural)
        .map_err(|(line, source)| ShivizError::Structure { line, source })?;
    notes.extend(more);
    Ok(ShivizImport {
        trace,
        notes,
        timestamped,
    })
}

/// Splits the entries at the execution delimiters and returns the last execution and how many
/// there are. Segments whose hosts are new continue the execution (several processes appending
/// to one file each write a delimiter); a segment naming a host already seen starts a new one.
fn last_execution(entries: &[Entry], boundaries: &[(usize, String)]) -> (Vec<Entry>, usize) {
    let mut executions: Vec<Vec<Entry>> = vec![Vec::new()];
    let mut hosts: std::collections::BTreeSet<String> = Default::default();
    let mut segment_hosts: std::collections::BTreeSet<String> = Default::default();
    let mut b = 0;
    for e in entries {
        let mut crossed = false;
        while b < boundaries.len() && boundaries[b].0 < e.line {
            b += 1;
            crossed = true;
        }
        if crossed {
            hosts.extend(std::mem::take(&mut segment_hosts));
        }
        if crossed && hosts.contains(&e.host) && !executions.last().is_some_and(Vec::is_empty) {
            executions.push(Vec::new());
            hosts.clear();
        }
        segment_hosts.insert(e.host.clone());
        executions.last_mut().expect("one").push(e.clone());
    }
    let count = executions.iter().filter(|x| !x.is_empty()).count();
    (executions.pop().unwrap_or_default(), count)
}

fn pair_lines(lines: &[(usize, &str)], layout: Layout) -> Result<Vec<Entry>, ShivizError> {
    let mut entries = Vec::new();
    for pair in lines.chunks(2) {
        let (event, clock) = match (pair, layout.clock_first) {
            ([e], false) => {
                return Err(ShivizError::MissingClock {
                    line: e.0,
                    event: e.1.to_owned(),
                })
            }
            ([c], true) => (None, *c),
            ([e, c], false) => (Some(*e), *c),
            ([c, e], true) => (Some(*e), *c),
            _ => unreachable!("chunks of two"),
        };
        let mut stamp = None;
        let mut clock_text = clock.1;
        let mut event_text = event.map_or("", |e| e.1);
        let bad_stamp = |line: usize, found: &str| ShivizError::BadTimestamp {
            line,
            found: found.chars().take(80).collect(),
        };
        match layout.stamp {
            Stamp::None => {}
            Stamp::OnClockLine => {
                let (t, rest) =
                    split_stamp(clock_text).ok_or_else(|| bad_stamp(clock.0, clock_text))?;
                stamp = Some(t);
                clock_text = rest;
            }
            Stamp::OnEventLine => {
                let line = event.map_or(clock.0, |e| e.0);
                let (t, rest) =
                    split_stamp(event_text).ok_or_else(|| bad_stamp(line, event_text))?;
                stamp = Some(t);
                event_text = rest;
            }
        }
        let (host, clock_map) =
            parse_clock_line(clock.0, clock_text)?.ok_or_else(|| ShivizError::BadClockLine {
                line: clock.0,
                found: clock.1.chars().take(200).collect(),
            })?;
        entries.push(Entry {
            line: event.map_or(clock.0, |e| e.0),
            host,
            clock: clock_map,
            text: event_text.to_owned(),
            physical_ms: None,
            stamp_ns: stamp.map(i128::from),
        });
    }
    if entries.is_empty() {
        return Err(ShivizError::Empty);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{validate, MessageId};

    fn sample() -> Trace {
        let mut t = Trace::new();
        t.local(1, 0.0, "start");
        let m = t.send(1, 1.5, "ping; to all");
        t.local(2, 0.25, "work");
        t.receive(2, m, 2.0, "got ping").unwrap();
        t.receive(3, m, 3.0, "").unwrap();
        let r = t.send(3, 4.0, "reply");
        t.receive(1, r, 5.0, "got reply").unwrap();
        t
    }

    #[test]
    fn export_has_the_shiviz_shape() {
        let s = export(&sample());
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], SHIVIZ_REGEX);
        assert_eq!(lines[1], "");
        assert_eq!(lines[2], "LOCAL L1 @0ms start");
        assert_eq!(lines[3], r#"N1 {"N1":1}"#);
        assert_eq!(lines[9], r#"N2 {"N1":2,"N2":2}"#);
    }

    #[test]
    fn round_trip_reproduces_the_trace() {
        let t = sample();
        let back = import(&export(&t)).unwrap();
        assert_eq!(back.events(), t.events());
        // Named hosts survive too.
        let mut named = Trace::new();
        named.name_node(0, "alice");
        named.name_node(1, "bob smith");
        let m = named.send(0, 0.0, "hi");
        named.receive(1, m, 1.0, "hi back").unwrap();
        let back = import(&export(&named)).unwrap();
        assert_eq!(back.events(), named.events());
        assert_eq!(back.node_name(1), "bob_smith");
    }

    #[test]
    fn govector_order_without_markers_infers_messages() {
        let log = "\
client {\"client\":1}
Initializing
client {\"client\":2}
Sending request
server {\"server\":1}
Initializing
server {\"client\":2, \"server\":2}
Received request
";
        let t = import(log).unwrap();
        assert_eq!(t.len(), 4);
        let recv = t
            .events()
            .iter()
            .find(|e| e.label == "Received request")
            .unwrap();
        let EventKind::Receive { message } = recv.kind else {
            panic!("not a receive: {recv:?}")
        };
        let send = &t.events()[t.send_of(message).unwrap()];
        assert_eq!(send.label, "Sending request");
        assert!(validate(&t).is_empty());
    }

    #[test]
    fn per_host_files_concatenated_out_of_causal_order_still_import() {
        // The receiver's events come first in the file.
        let log = "\
got it
b {\"a\":1, \"b\":1}
sent it
a {\"a\":1}
";
        let t = import(log).unwrap();
        assert_eq!(t.events()[0].label, "sent it");
        assert!(matches!(t.events()[1].kind, EventKind::Receive { .. }));
    }

    #[test]
    fn bad_logs_get_clear_errors() {
        assert_eq!(import(""), Err(ShivizError::Empty));
        assert!(matches!(
            import("event\nhost {\"host\": -1}"),
            Err(ShivizError::BadClock { line: 2, .. })
        ));
        assert!(matches!(
            import("event one\nnot a clock line"),
            Err(ShivizError::BadClockLine { line: 2, .. })
        ));
        assert!(matches!(
            import("a\nh {\"h\":1}\nb"),
            Err(ShivizError::MissingClock { line: 3, .. })
        ));
    }

    #[test]
    fn illegal_clocks_import_and_the_validator_explains_them() {
        let log = "x\nh {\"h\":2}\n";
        let t = import(log).unwrap();
        let v = validate(&t);
        assert!(v[0].to_string().contains("first event"), "{v:?}");
    }

    proptest::proptest! {
        #[test]
        fn random_traces_round_trip_and_validate(
            ops in proptest::collection::vec((0u32..4, 0u8..3, 0usize..50, 0u32..1000), 0..60)
        ) {
            let mut t = Trace::new();
            let mut sent: Vec<MessageId> = Vec::new();
            for (i, (node, kind, pick, dt)) in ops.into_iter().enumerate() {
                // Times grow with recording order (dt / 7 < 150): one clock, no skew.
                let at = i as f64 * 150.0 + f64::from(dt) / 7.0;
                match kind {
                    0 => { t.local(node, at, format!("l{i}")); }
                    1 => sent.push(t.send(node, at, format!("s{i}"))),
                    _ => if !sent.is_empty() {
                        let m = sent[pick % sent.len()];
                        // Refused receives (own or duplicate) leave the trace unchanged.
                        let _ = t.receive(node, m, at, "");
                    },
                }
            }
            proptest::prop_assert!(validate(&t).is_empty());
            let back = import(&export(&t));
            if t.is_empty() {
                proptest::prop_assert_eq!(back, Err(ShivizError::Empty));
            } else {
                let back = back.unwrap();
                proptest::prop_assert_eq!(back.events(), t.events());
            }
        }
    }
}
