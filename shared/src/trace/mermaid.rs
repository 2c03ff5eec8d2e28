//! Mermaid renderings of a trace: a sequence diagram and a happens-before flowchart.
//!
//! A space-time diagram (Lamport 1978, fig. 1) draws processes as lines and messages as arrows
//! between them. Mermaid's `sequenceDiagram` draws every arrow horizontally, so the time a
//! message spent in flight cannot be seen from its slope: here each send also appears as a
//! note at its place on the sender's line, and each arrow (drawn where the receive happens)
//! says in its label when it was sent and received and the delay between. The `flowchart`
//! is the happens-before DAG: one subgraph (lane) per node, local order as edges down the lane,
//! messages as labelled edges across lanes.
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
