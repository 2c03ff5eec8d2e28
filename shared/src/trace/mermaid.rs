//! Mermaid renderings of a trace: a sequence diagram and a happens-before flowchart.
//!
//! A space-time diagram (Lamport 1978, fig. 1) draws processes as lines and messages as arrows
//! between them. Mermaid's `sequenceDiagram` draws every arrow horizontally, so the time a
//! message spent in flight cannot be seen from its slope: here each send also appears as a
//! note at its place on the sender's line, and each arrow (drawn where the receive happens)
//! says in its label when it was sent and received and the delay between. The `flowchart`
//! is the happens-before DAG: one subgraph (lane) per node, local order as edges down the lane,
//! messages as labelled edges across lanes. The `graph TD` of [`happens_before_graph`] is the
//! lab notebook's project 8 output: one node per event, and only the *immediate* edges of
//! happened-before — its transitive reduction (Aho, Garey & Ullman 1972), the Hasse diagram
//! of the partial order — so a graph of a long run stays readable.
//!
//! **Guarantee.** Output is deterministic (a function of the trace and the window) and only
//! contains text Mermaid treats literally: labels are stripped of Mermaid's statement
//! separators, comment and entity markers. Windows bound the size of the output.

use std::fmt::Write as _;
use std::ops::Range;

use super::{Event, EventId, EventKind, Trace};
use crate::NodeId;

/// Text safe inside a Mermaid label (sequence message, note, or quoted flowchart node).
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            ';' => out.push(','),
            '#' => out.push_str("No."),
            '"' => out.push('\''),
            '<' => out.push('‹'),
            '>' => out.push('›'),
            '%' => out.push_str(" percent"),
            '{' => out.push('('),
            '}' => out.push(')'),
            c => out.push(c),
        }
    }
    out
}

/// Milliseconds, at most three decimals, without trailing zeros.
pub(crate) fn fmt_ms(ms: f64) -> String {
    let s = format!("{ms:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// `[a,b,c]`: the vector timestamp as a row in node order.
fn vector_row(nodes: &[NodeId], e: &Event) -> String {
    let parts: Vec<String> = nodes
        .iter()
        .map(|n| e.vector.get(n).copied().unwrap_or(0).to_string())
        .collect();
    format!("[{}]", parts.join(","))
}

fn participant(node: NodeId) -> String {
    format!("n{node}")
}

fn describe(nodes: &[NodeId], e: &Event) -> String {
    let what = match e.kind {
        EventKind::Local => String::new(),
        EventKind::Send { message } => format!(" send m{message}"),
        EventKind::Receive { message } => format!(" receive m{message}"),
    };
    let label = if e.label.is_empty() {
        String::new()
    } else {
        format!(" {}", text(&e.label))
    };
    format!("L{} {}{what}{label}", e.lamport, vector_row(nodes, e))
}

/// A Mermaid `sequenceDiagram` of the events in `window` (event ids, recording order).
///
/// Locals and sends are notes on their node; each receive is an arrow from the sender labelled
/// `mK: L<send>→L<receive>, sent @t1 ms, received @t2 ms, delay d ms`.
pub fn sequence_diagram(trace: &Trace, window: Range<EventId>) -> String {
    let window = window.start.min(trace.len())..window.end.min(trace.len());
    let nodes = trace.nodes();
    let mut out = String::from("sequenceDiagram\n");
    for &n in &nodes {
        let _ = writeln!(
            out,
            "    participant {} as {}",
            participant(n),
            text(&trace.node_name(n))
        );
    }
    for id in window.clone() {
        let e = &trace.events()[id];
        match e.kind {
            EventKind::Local | EventKind::Send { .. } => {
                let _ = writeln!(
                    out,
                    "    Note over {}: {}",
                    participant(e.node),
                    describe(&nodes, e)
                );
            }
            EventKind::Receive { message } => {
                let Some(send) = trace.send_of(message).map(|s| &trace.events()[s]) else {
                    continue;
                };
                let mut label = format!("m{message}: L{}→L{}", send.lamport, e.lamport);
                if let (Some(t1), Some(t2)) = (send.physical_ms, e.physical_ms) {
                    let _ = write!(
                        label,
                        ", sent @{} ms, received @{} ms, delay {} ms",
                        fmt_ms(t1),
                        fmt_ms(t2),
                        fmt_ms(t2 - t1)
                    );
                }
                if trace.send_of(message).is_some_and(|s| s < window.start) {
                    label.push_str(" (sent before this window)");
                }
                let _ = writeln!(
                    out,
                    "    {}->>{}: {}",
                    participant(send.node),
                    participant(e.node),
                    label
                );
                let _ = writeln!(
                    out,
                    "    Note over {}: {}",
                    participant(e.node),
                    describe(&nodes, e)
                );
            }
        }
    }
    out
}

/// A Mermaid `flowchart` of the happens-before DAG of the events in `window`: one subgraph per
/// node holding its events top to bottom, and an edge per message labelled with its id (and
/// delay when physical times are known). Messages with an end outside the window are counted
/// in a comment, not drawn.
pub fn happens_before_flowchart(trace: &Trace, window: Range<EventId>) -> String {
    let window = window.start.min(trace.len())..window.end.min(trace.len());
    let nodes = trace.nodes();
    let mut out = String::from("flowchart TD\n");
    for &n in &nodes {
        let ids: Vec<EventId> = trace
            .lane(n)
            .iter()
            .copied()
            .filter(|id| window.contains(id))
            .collect();
        let _ = writeln!(
            out,
            "    subgraph {}[\"{}\"]",
            participant(n),
            text(&trace.node_name(n))
        );
        let _ = writeln!(out, "        direction TB");
        for &id in &ids {
            let e = &trace.events()[id];
            let _ = writeln!(out, "        e{id}[\"{}\"]", describe(&nodes, e));
        }
        for pair in ids.windows(2) {
            let _ = writeln!(out, "        e{} --> e{}", pair[0], pair[1]);
        }
        let _ = writeln!(out, "    end");
    }
    let mut clipped = 0usize;
    for edge in trace.edges_in(window.clone()) {
        if !(window.contains(&edge.send) && window.contains(&edge.receive)) {
            clipped += 1;
            continue;
        }
        let (s, r) = (&trace.events()[edge.send], &trace.events()[edge.receive]);
        let mut label = format!("m{}", edge.message);
        if let (Some(t1), Some(t2)) = (s.physical_ms, r.physical_ms) {
            let _ = write!(label, ", {} ms", fmt_ms(t2 - t1));
        }
        let _ = writeln!(out, "    e{} -->|\"{label}\"| e{}", edge.send, edge.receive);
    }
    if clipped > 0 {
        let _ = writeln!(
            out,
            "    %% {clipped} message(s) cross the window's edge and are not drawn"
        );
    }
    out
}

/// A Mermaid-safe identifier stem for each node's name: ASCII letters, digits and `_`, not
/// starting with a digit, ending in `_` when it ends in a digit (so `A1`'s first event, `A1_1`,
/// never meets `A`'s eleventh, `A11`), made unique by the node id when two names collide.
fn graph_ids(trace: &Trace) -> std::collections::BTreeMap<NodeId, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut used = std::collections::BTreeSet::new();
    for n in trace.nodes() {
        let mut stem: String = trace
            .node_name(n)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if stem.is_empty() || stem.starts_with(|c: char| c.is_ascii_digit()) {
            stem.insert(0, 'n');
        }
        // Mermaid reserves `end` (and ids starting with o or x after an arrow read as edges).
        if stem.eq_ignore_ascii_case("end") || stem.starts_with(['o', 'x']) {
            stem.insert(0, 'n');
        }
        if !used.insert(stem.clone()) {
            stem = format!("{stem}_{n}");
            used.insert(stem.clone());
        }
        if stem.ends_with(|c: char| c.is_ascii_digit()) {
            stem.push('_');
        }
        out.insert(n, stem);
    }
    out
}

/// A node's label: bare when Mermaid reads it literally (`[Node A: start]`), else quoted.
fn graph_label(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | ':' | ',' | '.' | '\''))
        && !s.starts_with(' ');
    if plain {
        format!("[{s}]")
    } else {
        format!("[\"{}\"]", text(s))
    }
}

/// The happens-before graph of the events in `window` as the lab notebook's project 8 draws
/// it: `graph TD`, one node `<name><k>` per event (the k-th event of that node, labelled
/// `Node <name>: <event>`), and only the immediate edges — the transitive reduction of
/// happened-before restricted to the window. Events related to nothing stand alone.
///
/// In Lamport's model an event's direct predecessors are its node's previous event and, for a
/// receive, its message's send; an edge is immediate unless the other predecessor already
/// comes after its source. Reachability is computed from the window's own structure (vector
/// clocks recomputed over it), so illegal imported clocks cannot distort the graph; every path
/// between two events of the window stays inside it, because recording order is a
/// linearisation.
pub fn happens_before_graph(trace: &Trace, window: Range<EventId>) -> String {
    let window = window.start.min(trace.len())..window.end.min(trace.len());
    let ids = graph_ids(trace);
    let events = trace.events();
    // Window-local vector clocks: node → number of its window events known.
    let mut count: std::collections::BTreeMap<NodeId, u64> = Default::default();
    let mut pos: Vec<u64> = Vec::with_capacity(window.len());
    let mut clocks: Vec<std::collections::BTreeMap<NodeId, u64>> = Vec::with_capacity(window.len());
    let mut last_on: std::collections::BTreeMap<NodeId, usize> = Default::default();
    let local = |id: EventId| id - window.start;
    let sent_by = |e: &Event| match e.kind {
        EventKind::Receive { message } => trace.send_of(message),
        _ => None,
    };
    for id in window.clone() {
        let e = &events[id];
        let mut vc = last_on
            .get(&e.node)
            .map(|&l| clocks[l].clone())
            .unwrap_or_default();
        if let Some(s) = sent_by(e).filter(|s| window.contains(s)) {
            for (&n, &c) in &clocks[local(s)] {
                let v = vc.entry(n).or_insert(0);
                *v = (*v).max(c);
            }
        }
        let k = count.entry(e.node).or_insert(0);
        *k += 1;
        vc.insert(e.node, *k);
        pos.push(*k);
        last_on.insert(e.node, local(id));
        clocks.push(vc);
    }
    // u → v within the window (u ≠ v).
    let before = |u: EventId, v: EventId| {
        u != v && clocks[local(v)].get(&events[u].node).copied().unwrap_or(0) >= pos[local(u)]
    };
    let node_ref = |id: EventId, defined: &mut std::collections::BTreeSet<EventId>| {
        let e = &events[id];
        let k = trace.lane_position(id).unwrap_or(0) + 1;
        let name = format!("{}{k}", ids[&e.node]);
        if defined.insert(id) {
            let node = trace.node_name(e.node);
            let label = if e.label.is_empty() {
                format!("Node {node}")
            } else {
                format!("Node {node}: {}", e.label)
            };
            format!("{name}{}", graph_label(&label))
        } else {
            name
        }
    };
    let mut out = String::from("graph TD\n");
    let mut defined = std::collections::BTreeSet::new();
    let mut clipped = 0usize;
    let mut preds: Vec<Vec<EventId>> = vec![Vec::new(); window.len()];
    let mut has_succ = vec![false; window.len()];
    for id in window.clone() {
        let e = &events[id];
        let lane_prev = trace
            .lane_position(id)
            .filter(|&p| p > 0)
            .map(|p| trace.lane(e.node)[p - 1]);
        let send = sent_by(e);
        for (pred, other) in [(lane_prev, send), (send, lane_prev)] {
            let Some(p) = pred else { continue };
            if !window.contains(&p) {
                if send == Some(p) {
                    clipped += 1;
                }
                continue;
            }
            let redundant = other.is_some_and(|o| window.contains(&o) && before(p, o));
            if !redundant {
                preds[local(id)].push(p);
                has_succ[local(p)] = true;
            }
        }
    }
    for id in window.clone() {
        for &p in &preds[local(id)] {
            let from = node_ref(p, &mut defined);
            let to = node_ref(id, &mut defined);
            let _ = writeln!(out, "{from} --> {to}");
        }
        if preds[local(id)].is_empty() && !has_succ[local(id)] {
            let alone = node_ref(id, &mut defined);
            let _ = writeln!(out, "{alone}");
        }
    }
    if clipped > 0 {
        let _ = writeln!(
            out,
            "%% {clipped} message(s) cross the window's edge and are not drawn"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Trace {
        let mut t = Trace::new();
        t.name_node(1, "A");
        t.name_node(2, "B");
        t.local(1, 0.0, "start");
        let m = t.send(1, 1.0, "ping; #1");
        t.local(2, 0.5, "work");
        t.receive(2, m, 3.25, "got \"ping\"").unwrap();
        t
    }

    #[test]
    fn sequence_diagram_golden() {
        let expected = "\
sequenceDiagram
    participant n1 as A
    participant n2 as B
    Note over n1: L1 [1,0] start
    Note over n1: L2 [2,0] send m0 ping, No.1
    Note over n2: L1 [0,1] work
    n1->>n2: m0: L2→L3, sent @1 ms, received @3.25 ms, delay 2.25 ms
    Note over n2: L3 [2,2] receive m0 got 'ping'
";
        assert_eq!(sequence_diagram(&sample(), 0..4), expected);
    }

    #[test]
    fn flowchart_golden() {
        let expected = "\
flowchart TD
    subgraph n1[\"A\"]
        direction TB
        e0[\"L1 [1,0] start\"]
        e1[\"L2 [2,0] send m0 ping, No.1\"]
        e0 --> e1
    end
    subgraph n2[\"B\"]
        direction TB
        e2[\"L1 [0,1] work\"]
        e3[\"L3 [2,2] receive m0 got 'ping'\"]
        e2 --> e3
    end
    e1 -->|\"m0, 2.25 ms\"| e3
";
        assert_eq!(happens_before_flowchart(&sample(), 0..4), expected);
    }

    #[test]
    fn graph_keeps_only_immediate_edges() {
        // a1 sends to b1; b2 sends back to a2: a1 → a2 is implied (a1 → b1 → b2 → a2).
        let mut t = Trace::new();
        t.name_node(0, "A");
        t.name_node(1, "B");
        let m = t.send(0, 0.0, "ask");
        t.receive(1, m, 1.0, "asked").unwrap();
        let r = t.send(1, 2.0, "answer");
        t.receive(0, r, 3.0, "answered").unwrap();
        t.local(1, 4.0, "after");
        let expected = "\
graph TD
A1[Node A: ask] --> B1[Node B: asked]
B1 --> B2[Node B: answer]
B2 --> A2[Node A: answered]
B2 --> B3[Node B: after]
";
        assert_eq!(happens_before_graph(&t, 0..5), expected);
        // Names that are not identifiers, and labels Mermaid would read as syntax.
        let mut t = Trace::new();
        t.name_node(0, "api-1");
        t.name_node(1, "end");
        t.local(0, 0.0, "GET /x [1]");
        t.local(1, 0.0, "");
        assert_eq!(
            happens_before_graph(&t, 0..2),
            "graph TD\napi_1_1[\"Node api-1: GET /x [1]\"]\nnend1[Node end]\n"
        );
    }

    #[test]
    fn windows_clip_and_say_so() {
        let t = sample();
        let seq = sequence_diagram(&t, 2..4);
        assert!(seq.contains("(sent before this window)"));
        assert!(!seq.contains("start"));
        let flow = happens_before_flowchart(&t, 2..4);
        assert!(flow.contains("%% 1 message(s) cross"));
        assert!(!flow.contains("e1"));
    }
}
