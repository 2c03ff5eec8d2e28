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

use super::{Event, EventKind, MessageId, Trace, TraceError, VectorTimestamp};
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

/// One parsed log entry before the trace is built.
struct Entry {
    line: usize,
    host: String,
    clock: BTreeMap<String, u64>,
    text: String,
}

/// What a marker at the start of an event line said.
struct Marked {
    kind: EventKind,
    lamport: u64,
    physical_ms: Option<f64>,
    label: String,
}

fn parse_marker(text: &str) -> Option<Marked> {
    /// The first space-separated word of `s`, and what follows it (without the space).
    fn word(s: &str) -> (&str, &str) {
        match s.split_once(' ') {
            Some((w, r)) => (w, r),
            None => (s, ""),
        }
    }
    let message = |w: &str| -> Option<MessageId> { w.strip_prefix('m')?.parse().ok() };
    let (kind_word, mut rest) = word(text);
    let kind = match kind_word {
        "LOCAL" => EventKind::Local,
        "SEND" | "RECEIVE" => {
            let (m, r) = word(rest);
            rest = r;
            let message = message(m)?;
            if kind_word == "SEND" {
                EventKind::Send { message }
            } else {
                EventKind::Receive { message }
            }
        }
        _ => return None,
    };
    let (l, r) = word(rest);
    let lamport = l.strip_prefix('L')?.parse().ok()?;
    rest = r;
    let mut physical_ms = None;
    let (t, r) = word(rest);
    if let Some(ms) = t.strip_prefix('@').and_then(|t| t.strip_suffix("ms")) {
        physical_ms = Some(ms.parse().ok()?);
        rest = r;
    }
    Some(Marked {
        kind,
        lamport,
        physical_ms,
        label: rest.to_owned(),
    })
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

/// Reads a ShiViz (or GoVector) log into a trace. See the module docs for the accepted shapes.
pub fn import(log: &str) -> Result<Trace, ShivizError> {
    let mut lines: Vec<(usize, &str)> = log
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .collect();
    // Optional header: a regular expression line, then the delimiter line.
    if lines
        .first()
        .is_some_and(|(_, l)| l.contains("(?<host>") && l.contains("(?<clock>"))
    {
        let govector_order = lines[0].1.find("(?<host>") < lines[0].1.find("(?<event>");
        lines.remove(0);
        if lines.first().is_some_and(|(_, l)| l.trim().is_empty()) {
            lines.remove(0);
        }
        return entries_to_trace(pair_lines(&lines, govector_order)?);
    }
    lines.retain(|(_, l)| !l.trim().is_empty());
    // Without a header: the order is whichever the first line shows.
    let govector_order = match lines.first() {
        None => return Err(ShivizError::Empty),
        Some((n, l)) => parse_clock_line(*n, l)?.is_some(),
    };
    entries_to_trace(pair_lines(&lines, govector_order)?)
}

fn pair_lines(lines: &[(usize, &str)], clock_first: bool) -> Result<Vec<Entry>, ShivizError> {
    let lines: Vec<(usize, &str)> = lines
        .iter()
        .copied()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let mut entries = Vec::new();
    for pair in lines.chunks(2) {
        let (event, clock) = match (pair, clock_first) {
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
        let (host, clock_map) =
            parse_clock_line(clock.0, clock.1)?.ok_or_else(|| ShivizError::BadClockLine {
                line: clock.0,
                found: clock.1.to_owned(),
            })?;
        entries.push(Entry {
            line: event.map_or(clock.0, |e| e.0),
            host,
            clock: clock_map,
            text: event.map_or(String::new(), |e| e.1.to_owned()),
        });
    }
    if entries.is_empty() {
        return Err(ShivizError::Empty);
    }
    Ok(entries)
}

fn entries_to_trace(entries: Vec<Entry>) -> Result<Trace, ShivizError> {
    // Host names → node ids: `N<k>` keeps k when free, others take the next free id.
    let mut ids: BTreeMap<String, NodeId> = BTreeMap::new();
    let mut taken: std::collections::BTreeSet<NodeId> = Default::default();
    let mut order: Vec<String> = Vec::new();
    for e in &entries {
        for h in std::iter::once(&e.host).chain(e.clock.keys()) {
            if !order.contains(h) {
                order.push(h.clone());
            }
        }
    }
    for h in &order {
        if let Some(k) = h.strip_prefix('N').and_then(|k| k.parse::<NodeId>().ok()) {
            if format!("N{k}") == *h && taken.insert(k) {
                ids.insert(h.clone(), k);
            }
        }
    }
    // The rest in natural order of their names (`M2` before `M10`), so numbered hosts keep
    // their order.
    let natural = |h: &String| {
        let digits = h.len() - h.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (stem, num) = h.split_at(h.len() - digits);
        (stem.to_owned(), num.parse::<u64>().unwrap_or(0), h.clone())
    };
    order.sort_by_key(natural);
    let mut next: NodeId = 0;
    for h in &order {
        if !ids.contains_key(h) {
            while taken.contains(&next) {
                next += 1;
            }
            taken.insert(next);
            ids.insert(h.clone(), next);
        }
    }
    let vector_of = |e: &Entry| -> VectorTimestamp {
        e.clock
            .iter()
            .filter(|(_, &c)| c > 0)
            .map(|(h, &c)| (ids[h], c))
            .collect()
    };

    // Each host's events in its own counter order (stable for equal counters).
    let mut lanes: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        lanes.entry(ids[&e.host]).or_default().push(i);
    }
    for lane in lanes.values_mut() {
        lane.sort_by_key(|&i| {
            let e = &entries[i];
            e.clock.get(&e.host).copied().unwrap_or(0)
        });
    }
    let own = |i: usize| -> u64 {
        let e = &entries[i];
        e.clock.get(&e.host).copied().unwrap_or(0)
    };

    // A linearisation: repeatedly take a lane head whose known events are all taken; when the
    // clocks are illegal and nothing is ready, take the head that came first in the file.
    let mut heads: BTreeMap<NodeId, usize> = lanes.keys().map(|&n| (n, 0)).collect();
    let mut emitted_count: BTreeMap<NodeId, u64> = BTreeMap::new();
    let mut linear: Vec<usize> = Vec::with_capacity(entries.len());
    while linear.len() < entries.len() {
        let candidates: Vec<(NodeId, usize)> = heads
            .iter()
            .filter_map(|(&n, &h)| lanes[&n].get(h).map(|&i| (n, i)))
            .collect();
        let ready = candidates
            .iter()
            .copied()
            .filter(|&(n, i)| {
                vector_of(&entries[i])
                    .iter()
                    .all(|(&m, &c)| m == n || c <= emitted_count.get(&m).copied().unwrap_or(0))
            })
            .min_by_key(|&(_, i)| entries[i].line);
        let (n, i) = ready.unwrap_or_else(|| {
            *candidates
                .iter()
                .min_by_key(|&&(_, i)| entries[i].line)
                .expect("a lane has events left")
        });
        *heads.get_mut(&n).expect("lane") += 1;
        *emitted_count.entry(n).or_insert(0) += 1;
        linear.push(i);
    }

    let marked: Vec<Option<Marked>> = entries.iter().map(|e| parse_marker(&e.text)).collect();
    let use_markers = marked.iter().any(Option::is_some);
    let mut kinds: Vec<EventKind> = vec![EventKind::Local; entries.len()];
    if use_markers {
        for (i, m) in marked.iter().enumerate() {
            if let Some(m) = m {
                kinds[i] = m.kind;
            }
        }
    } else {
        infer_messages(&entries, &ids, &lanes, &own, &mut kinds);
    }

    let mut trace = Trace::new();
    for (h, &id) in &ids {
        trace.name_node(id, h.clone());
    }
    for &i in &linear {
        let e = &entries[i];
        let node = ids[&e.host];
        let vector = vector_of(e);
        let (lamport, physical_ms, label) = match &marked[i] {
            Some(m) if use_markers => (m.lamport, m.physical_ms, m.label.clone()),
            _ => {
                let prev = trace.last_event(node).map_or(0, |p| p.lamport);
                let sent = match kinds[i] {
                    EventKind::Receive { message } => trace
                        .send_of(message)
                        .map_or(0, |s| trace.events()[s].lamport),
                    _ => 0,
                };
                (prev.max(sent) + 1, None, e.text.clone())
            }
        };
        trace
            .push(Event {
                node,
                kind: kinds[i],
                lamport,
                vector,
                physical_ms,
                label,
            })
            .map_err(|source| ShivizError::Structure {
                line: e.line,
                source,
            })?;
    }
    Ok(trace)
}

/// Marks sends and receives from the clocks alone: event `e` on host `h` receives from host
/// `g` when its entry for `g` grew since `h`'s previous event and the newly known event of `g`
/// is not known through another host's newly known event.
fn infer_messages(
    entries: &[Entry],
    ids: &BTreeMap<String, NodeId>,
    lanes: &BTreeMap<NodeId, Vec<usize>>,
    own: &dyn Fn(usize) -> u64,
    kinds: &mut [EventKind],
) {
    let entry_of = |i: usize, g: &str| entries[i].clock.get(g).copied().unwrap_or(0);
    // The entry of `host` whose own counter is `c`.
    let find = |host: &str, c: u64| -> Option<usize> {
        lanes
            .get(&ids[host])?
            .iter()
            .copied()
            .find(|&j| own(j) == c)
    };
    let mut next_message: MessageId = 0;
    for lane in lanes.values() {
        let mut prev: Option<usize> = None;
        for &i in lane {
            let e = &entries[i];
            let mut senders: Vec<usize> = Vec::new();
            for (g, &c) in &e.clock {
                if *g == e.host || c <= prev.map_or(0, |p| entry_of(p, g)) {
                    continue;
                }
                if let Some(s) = find(g, c) {
                    senders.push(s);
                }
            }
            let direct: Vec<usize> = senders
                .iter()
                .copied()
                .filter(|&s| {
                    let g = &entries[s].host;
                    !senders.iter().any(|&o| o != s && entry_of(o, g) >= own(s))
                })
                .collect();
            if let Some(&s) = direct.first() {
                let message = match kinds[s] {
                    EventKind::Send { message } => message,
                    _ => {
                        let m = next_message;
                        next_message += 1;
                        kinds[s] = EventKind::Send { message: m };
                        m
                    }
                };
                if matches!(kinds[i], EventKind::Local) {
                    kinds[i] = EventKind::Receive { message };
                }
            }
            prev = Some(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::validate;

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
                let at = i as f64 * 1.5 + f64::from(dt) / 7.0;
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
