//! Vector-clocked log entries → a trace: what every importer of clock-stamped logs (ShiViz,
//! GoVector, TSViz, JSON lines) shares once its own syntax is parsed.
//!
//! A log of this kind carries, per event, its host and its vector timestamp (Fidge 1988,
//! Mattern 1989) — host → number of that host's events known — but no message identities. The
//! builder orders each host's events by its own counter, linearises the hosts by the clocks
//! (an event is recorded once every event its clock knows of is), and infers the messages the
//! way ShiViz draws them: an event whose clock learns of another host's event *directly* (not
//! through a third host's newly known event) receives a message that event sent.
//!
//! **Guarantee.** The builder never fails on illegal clocks: it records what the log says and
//! leaves judging to [`super::validate`]. Only explicit markers (our own ShiViz export's
//! `SEND m3 …`) that contradict each other are refused, with the line they came from.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use super::{Event, EventKind, MessageId, Trace, TraceError, VectorTimestamp};
use crate::NodeId;

/// One parsed log entry, before the trace is built. Line numbers count from 1.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Where the entry starts in the log.
    pub line: usize,
    /// The host (node) that logged it.
    pub host: String,
    /// Its vector timestamp: host → counter.
    pub clock: BTreeMap<String, u64>,
    /// The event text.
    pub text: String,
    /// Its physical time on the import's time axis (ms), if known.
    pub physical_ms: Option<f64>,
    /// Its raw timestamp in Unix nanoseconds, before [`stamp_axis`] puts it on the ms axis.
    pub stamp_ns: Option<i128>,
}

/// Puts the entries' raw timestamps on the ms axis (ms since the earliest one) and says so.
/// `what` names the timestamps in the note.
pub(crate) fn stamp_axis(entries: &mut [Entry], what: &str) -> Option<String> {
    let origin = entries.iter().filter_map(|e| e.stamp_ns).min()?;
    for e in entries.iter_mut() {
        if let Some(ns) = e.stamp_ns {
            e.physical_ms = Some((ns - origin) as f64 / 1e6);
        }
    }
    Some(super::import::origin_note(origin, what))
}

/// How host names become node ids.
pub(crate) enum HostOrder {
    /// `N<k>` keeps id k when free; the other hosts take the next free ids in the natural order
    /// of their names (`M2` before `M10`).
    Natural,
    /// The i-th name gets id i (array clocks: position i is that node's entry); hosts not named
    /// follow in natural order.
    Given(Vec<String>),
}

/// What a marker at the start of an event line said (our ShiViz export's round trip).
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

/// `(stem, number, name)`: sorts `M2` before `M10`.
fn natural_key(h: &str) -> (String, u64, String) {
    let digits = h.len() - h.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, num) = h.split_at(h.len() - digits);
    (
        stem.to_owned(),
        num.parse::<u64>().unwrap_or(0),
        h.to_owned(),
    )
}

fn assign_ids(entries: &[Entry], order: &HostOrder) -> BTreeMap<String, NodeId> {
    let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
    let mut hosts: Vec<String> = Vec::new();
    for e in entries {
        for h in std::iter::once(&e.host).chain(e.clock.keys()) {
            if seen.insert(h, ()).is_none() {
                hosts.push(h.clone());
            }
        }
    }
    let mut ids: BTreeMap<String, NodeId> = BTreeMap::new();
    let mut taken: std::collections::BTreeSet<NodeId> = Default::default();
    match order {
        HostOrder::Given(names) => {
            for (i, n) in names.iter().enumerate() {
                let id = NodeId::try_from(i).unwrap_or(NodeId::MAX);
                if taken.insert(id) {
                    ids.entry(n.clone()).or_insert(id);
                }
            }
        }
        HostOrder::Natural => {
            for h in &hosts {
                if let Some(k) = h.strip_prefix('N').and_then(|k| k.parse::<NodeId>().ok()) {
                    if format!("N{k}") == *h && taken.insert(k) {
                        ids.insert(h.clone(), k);
                    }
                }
            }
        }
    }
    hosts.sort_by_cached_key(|h| natural_key(h));
    let mut next: NodeId = 0;
    for h in &hosts {
        if !ids.contains_key(h) {
            while taken.contains(&next) {
                next += 1;
            }
            taken.insert(next);
            ids.insert(h.clone(), next);
        }
    }
    ids
}

/// Renumbers each host's own counter to 1, 2, 3, … in its order, and every other host's
/// reference to it accordingly (a reference to value v becomes the number of the host's events
/// with a counter ≤ v). This repairs logs whose clocks start at 0 or 2 or skip values — the
/// "logical clock values for each host must start at 1" refusal ShiViz users meet with GoVector
/// logs appended to an existing file — while keeping every order the clocks state. Returns one
/// note per host it changed.
pub(crate) fn renumber(entries: &mut [Entry]) -> Vec<String> {
    let mut own: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in entries.iter() {
        own.entry(e.host.clone())
            .or_default()
            .push(e.clock.get(&e.host).copied().unwrap_or(0));
    }
    let mut notes = Vec::new();
    let mut changed: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (host, mut values) in own {
        values.sort_unstable();
        values.dedup();
        if values.iter().enumerate().all(|(i, &v)| v == i as u64 + 1) {
            continue;
        }
        let shown: Vec<String> = values.iter().take(4).map(u64::to_string).collect();
        notes.push(format!(
            "renumbered {host}'s clock: its events counted {}{} — now 1, 2, 3, …",
            shown.join(", "),
            if values.len() > 4 { ", …" } else { "" }
        ));
        changed.insert(host, values);
    }
    if changed.is_empty() {
        return notes;
    }
    for e in entries.iter_mut() {
        for (h, c) in e.clock.iter_mut() {
            if let Some(values) = changed.get(h) {
                // The number of the host's events with a counter ≤ c.
                *c = values.partition_point(|&v| v <= *c) as u64;
            }
        }
    }
    notes
}

/// Builds the trace. Returns it with notes on anything the builder had to decide (receives it
/// could not place).
pub(crate) fn build(
    entries: Vec<Entry>,
    order: HostOrder,
) -> Result<(Trace, Vec<String>), (usize, TraceError)> {
    let ids = assign_ids(&entries, &order);
    let nodes: Vec<NodeId> = entries.iter().map(|e| ids[&e.host]).collect();
    let own: Vec<u64> = entries
        .iter()
        .map(|e| e.clock.get(&e.host).copied().unwrap_or(0))
        .collect();
    let vectors: Vec<VectorTimestamp> = entries
        .iter()
        .map(|e| {
            e.clock
                .iter()
                .filter(|(_, &c)| c > 0)
                .map(|(h, &c)| (ids[h], c))
                .collect()
        })
        .collect();

    // Each host's events in its own counter order (stable for equal counters).
    let mut lanes: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
    for (i, &n) in nodes.iter().enumerate() {
        lanes.entry(n).or_default().push(i);
    }
    for lane in lanes.values_mut() {
        lane.sort_by_key(|&i| own[i]);
    }
    let linear = linearise(&entries, &nodes, &vectors, &lanes);

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

    let mut notes = Vec::new();
    let mut unplaced = 0usize;
    let mut trace = Trace::new();
    for (h, &id) in &ids {
        trace.name_node(id, h.clone());
    }
    for &i in &linear {
        let e = &entries[i];
        let node = nodes[i];
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
                (prev.max(sent) + 1, e.physical_ms, e.text.clone())
            }
        };
        let mut event = Event {
            node,
            kind: kinds[i],
            lamport,
            vector: vectors[i].clone(),
            physical_ms,
            label,
        };
        if !use_markers {
            if let EventKind::Receive { message } = event.kind {
                // Illegal clocks can order a receive before its send: keep the event, as local.
                if trace.send_of(message).is_none() {
                    event.kind = EventKind::Local;
                    unplaced += 1;
                }
            }
        }
        trace.push(event).map_err(|err| (e.line, err))?;
    }
    if unplaced > 0 {
        notes.push(format!(
            "{unplaced} receive(s) come before their send by the clocks' order and are shown as local events"
        ));
    }
    Ok((trace, notes))
}

/// A linearisation: repeatedly record the lane head (earliest in the file first) whose known
/// events are all recorded; when the clocks are illegal and nothing is ready, record the head
/// that came first in the file. A head waiting for node m's c-th event is re-examined only
/// once m has recorded c events, so the cost is about one check per event and clock entry.
fn linearise(
    entries: &[Entry],
    nodes: &[NodeId],
    vectors: &[VectorTimestamp],
    lanes: &BTreeMap<NodeId, Vec<usize>>,
) -> Vec<usize> {
    let mut heads: BTreeMap<NodeId, usize> = lanes.keys().map(|&n| (n, 0)).collect();
    let mut emitted: HashMap<NodeId, u64> = HashMap::new();
    // Per node m: the lanes whose head waits for m's c-th event, by c.
    let mut blocked_on: HashMap<NodeId, BinaryHeap<Reverse<(u64, NodeId)>>> = HashMap::new();
    let mut ready: BinaryHeap<Reverse<(usize, NodeId, usize)>> = BinaryHeap::new();
    let mut linear: Vec<usize> = Vec::with_capacity(entries.len());

    let check = |n: NodeId,
                 heads: &BTreeMap<NodeId, usize>,
                 emitted: &HashMap<NodeId, u64>,
                 blocked_on: &mut HashMap<NodeId, BinaryHeap<Reverse<(u64, NodeId)>>>,
                 ready: &mut BinaryHeap<Reverse<(usize, NodeId, usize)>>| {
        let h = heads[&n];
        let Some(&i) = lanes[&n].get(h) else { return };
        let unmet = vectors[i]
            .iter()
            .find(|&(&m, &c)| m != n && c > emitted.get(&m).copied().unwrap_or(0));
        match unmet {
            Some((&m, &c)) => blocked_on.entry(m).or_default().push(Reverse((c, n))),
            None => ready.push(Reverse((entries[i].line, n, h))),
        }
    };
    for &n in lanes.keys() {
        check(n, &heads, &emitted, &mut blocked_on, &mut ready);
    }
    while linear.len() < entries.len() {
        let n = match ready.pop() {
            Some(Reverse((_, n, h))) if heads[&n] == h => n,
            Some(_) => continue, // stale: that head was already recorded
            None => {
                // Nothing is ready: the clocks are illegal. Take the head first in the file.
                let (_, n) = lanes
                    .iter()
                    .filter_map(|(&n, lane)| lane.get(heads[&n]).map(|&i| (entries[i].line, n)))
                    .min()
                    .expect("a lane has events left");
                n
            }
        };
        let h = heads.get_mut(&n).expect("lane");
        linear.push(lanes[&n][*h]);
        *h += 1;
        *emitted.entry(n).or_insert(0) += 1;
        debug_assert_eq!(nodes[*linear.last().expect("pushed")], n);
        check(n, &heads, &emitted, &mut blocked_on, &mut ready);
        let count = emitted[&n];
        let mut due = Vec::new();
        if let Some(waiting) = blocked_on.get_mut(&n) {
            while waiting.peek().is_some_and(|Reverse((c, _))| *c <= count) {
                due.push(waiting.pop().expect("peeked").0 .1);
            }
        }
        for w in due {
            check(w, &heads, &emitted, &mut blocked_on, &mut ready);
        }
    }
    linear
}

/// Marks sends and receives from the clocks alone: event `e` on host `h` receives from host
/// `g` when its entry for `g` grew since `h`'s previous event and the newly known event of `g`
/// is not known through another host's newly known event.
fn infer_messages(
    entries: &[Entry],
    ids: &BTreeMap<String, NodeId>,
    lanes: &BTreeMap<NodeId, Vec<usize>>,
    own: &[u64],
    kinds: &mut [EventKind],
) {
    let entry_of = |i: usize, g: &str| entries[i].clock.get(g).copied().unwrap_or(0);
    // (node, own counter) → the entry with it (the first, for duplicated counters).
    let mut by_counter: HashMap<(NodeId, u64), usize> = HashMap::new();
    for (&n, lane) in lanes {
        for &j in lane {
            by_counter.entry((n, own[j])).or_insert(j);
        }
    }
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
                if let Some(&s) = by_counter.get(&(ids[g], c)) {
                    senders.push(s);
                }
            }
            let direct = senders.iter().copied().find(|&s| {
                let g = &entries[s].host;
                !senders.iter().any(|&o| o != s && entry_of(o, g) >= own[s])
            });
            if let Some(s) = direct {
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

    fn entry(line: usize, host: &str, clock: &[(&str, u64)]) -> Entry {
        Entry {
            line,
            host: host.to_owned(),
            clock: clock.iter().map(|&(h, c)| (h.to_owned(), c)).collect(),
            text: format!("e{line}"),
            physical_ms: None,
            stamp_ns: None,
        }
    }

    #[test]
    fn renumbering_keeps_the_order_and_starts_at_one() {
        let mut log = vec![
            entry(1, "a", &[("a", 2)]),
            entry(2, "a", &[("a", 3)]),
            entry(3, "b", &[("a", 3), ("b", 1)]),
        ];
        let notes = renumber(&mut log);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("renumbered a's clock: its events counted 2, 3"));
        assert_eq!(log[0].clock["a"], 1);
        assert_eq!(log[2].clock["a"], 2);
        let (t, _) = build(log, HostOrder::Natural).unwrap();
        assert!(super::super::validate(&t).is_empty());
        assert!(matches!(t.events()[2].kind, EventKind::Receive { .. }));
    }

    #[test]
    fn a_long_lane_builds_in_linear_time() {
        // 20 000 rounds of ping-pong: a quadratic search would take minutes.
        let mut log = Vec::new();
        for k in 1..=20_000u64 {
            log.push(entry(
                log.len() + 1,
                "a",
                &[("a", 2 * k - 1), ("b", 2 * k - 2)],
            ));
            log.push(entry(log.len() + 1, "a", &[("a", 2 * k), ("b", 2 * k - 2)]));
            log.push(entry(log.len() + 1, "b", &[("a", 2 * k), ("b", 2 * k - 1)]));
            log.push(entry(log.len() + 1, "b", &[("a", 2 * k), ("b", 2 * k)]));
        }
        let (t, _) = build(log, HostOrder::Natural).unwrap();
        assert_eq!(t.len(), 80_000);
        assert_eq!(t.message_edges().len(), 39_999);
    }
}
