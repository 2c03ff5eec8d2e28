//! Our own space-time diagram as SVG: one horizontal line per node, time to the right,
//! messages as slanted arrows from send to receive — so messages in flight overlap and cross as
//! they really did, which Mermaid's sequence diagrams cannot show (Lamport 1978, fig. 1).
//!
//! **Guarantee.** Only the events of the given window are drawn (messages with one end outside
//! are drawn dashed to the window's edge), so the output size is bounded by the window, never by
//! the trace. The x axis is physical time when every event in the window has one, otherwise the
//! recording order.
//!
//! **Colours.** Node `n`'s lane and events are drawn in `labs::chart::node_colour(n)`, the
//! colour the labs' charts and tables give it, so a node looks the same in every view of a
//! page. Texts and arrows carry classes (`lane-name`, `caption`, `message`) that a page's
//! stylesheet can re-colour for its theme; the attributes are the defaults of a saved file.

use std::fmt::Write as _;
use std::ops::Range;

use super::mermaid::fmt_ms;
use super::{EventId, EventKind, Trace};
use crate::labs::chart::node_colour;

/// The largest window drawn; longer windows are cut to this many events.
pub const MAX_WINDOW: usize = 2_000;

const LANE_GAP: f64 = 56.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 30.0;

/// Escapes text for SVG content and attributes.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Draws the events of `window` as an SVG space-time diagram `width` pixels wide.
pub fn space_time_svg(trace: &Trace, window: Range<EventId>, width: f64) -> String {
    let start = window.start.min(trace.len());
    let end = window.end.min(trace.len()).min(start + MAX_WINDOW);
    let window = start..end;
    let nodes = trace.nodes();
    let height = TOP * 2.0 + LANE_GAP * nodes.len().saturating_sub(1) as f64 + 10.0;
    let width = width.max(LEFT + RIGHT + 100.0);
    let events = &trace.events()[window.clone()];
    let physical = !events.is_empty() && events.iter().all(|e| e.physical_ms.is_some());
    let at = |id: EventId| -> f64 {
        if physical {
            trace.events()[id].physical_ms.unwrap_or(0.0)
        } else {
            id as f64
        }
    };
    let (lo, hi) = window
        .clone()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), id| {
            (lo.min(at(id)), hi.max(at(id)))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let x = |v: f64| LEFT + (v - lo).clamp(0.0, span) / span * (width - LEFT - RIGHT);
    let lane_y = |node| TOP + LANE_GAP * nodes.iter().position(|&n| n == node).unwrap_or(0) as f64;

    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="space-time" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    out.push_str(r##"<defs><marker id="st-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path class="arrow-head" d="M0,0L10,5L0,10z" fill="#555"/></marker></defs>"##);
    let axis = if physical {
        format!(
            "time {} ms → {} ms",
            fmt_ms(lo),
            fmt_ms(if hi.is_finite() { hi } else { lo })
        )
    } else {
        "recording order →".to_owned()
    };
    let _ = write!(
        out,
        r##"<text class="caption" x="{LEFT}" y="{:.1}" fill="#666">events {}–{} of {}; {}</text>"##,
        height - 6.0,
        window.start,
        window.end,
        trace.len(),
        escape(&axis)
    );
    for &n in &nodes {
        let y = lane_y(n);
        let _ = write!(
            out,
            r##"<text class="lane-name" x="8" y="{:.1}" fill="#222">{}</text><line class="lane" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="2" stroke-opacity=".45"/>"##,
            y + 4.0,
            escape(&trace.node_name(n)),
            width - RIGHT,
            node_colour(n as usize)
        );
    }
    for edge in trace.edges_in(window.clone()) {
        let (s, r) = (&trace.events()[edge.send], &trace.events()[edge.receive]);
        let inside = window.contains(&edge.send) && window.contains(&edge.receive);
        let x1 = if window.contains(&edge.send) {
            x(at(edge.send))
        } else {
            LEFT
        };
        let x2 = if window.contains(&edge.receive) {
            x(at(edge.receive))
        } else {
            width - RIGHT
        };
        let dash = if inside {
            ""
        } else {
            r#" stroke-dasharray="4 3""#
        };
        let mut title = format!("m{}: L{}→L{}", edge.message, s.lamport, r.lamport);
        if let (Some(t1), Some(t2)) = (s.physical_ms, r.physical_ms) {
            let _ = write!(title, ", delay {} ms", fmt_ms(t2 - t1));
        }
        let _ = write!(
            out,
            r##"<line class="message" x1="{x1:.1}" y1="{:.1}" x2="{x2:.1}" y2="{:.1}" stroke="#555"{dash} marker-end="url(#st-arrow)"><title>{}</title></line>"##,
            lane_y(s.node),
            lane_y(r.node),
            escape(&title)
        );
    }
    for id in window.clone() {
        let e = &trace.events()[id];
        // The node's colour; a receive is a ring, a local event a smaller dot.
        let colour = node_colour(e.node as usize);
        let (r, paint) = match e.kind {
            EventKind::Local => (3, format!(r#"fill="{colour}""#)),
            EventKind::Send { .. } => (4, format!(r#"fill="{colour}""#)),
            EventKind::Receive { .. } => (
                4,
                format!(r##"fill="#fff" stroke="{colour}" stroke-width="2""##),
            ),
        };
        let mut title = format!("event {id} on {}: L{}", trace.node_name(e.node), e.lamport);
        if let Some(t) = e.physical_ms {
            let _ = write!(title, " @{} ms", fmt_ms(t));
        }
        if !e.label.is_empty() {
            let _ = write!(title, " — {}", e.label);
        }
        let _ = write!(
            out,
            r#"<circle class="event" cx="{:.1}" cy="{:.1}" r="{r}" {paint}><title>{}</title></circle>"#,
            x(at(id)),
            lane_y(e.node),
            escape(&title)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_slant_by_their_delay() {
        let mut t = Trace::new();
        let m = t.send(0, 0.0, "a<b");
        t.local(1, 5.0, "");
        t.receive(1, m, 10.0, "").unwrap();
        let svg = space_time_svg(&t, 0..3, 400.0);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 3);
        // Send at x = LEFT, receive at the right end: a slanted arrow.
        assert!(
            svg.contains(r#"x1="90.0" y1="30.0" x2="376.0" y2="86.0""#),
            "{svg}"
        );
        assert!(svg.contains("a&lt;b"));
    }

    #[test]
    fn long_traces_draw_only_the_window() {
        let mut t = Trace::new();
        for i in 0..10_000 {
            let m = t.send(0, i as f64, "");
            t.receive(1, m, i as f64 + 0.5, "").unwrap();
        }
        let svg = space_time_svg(&t, 100..150, 800.0);
        assert_eq!(svg.matches("<circle").count(), 50);
        // One message enters the window from before it, and one leaves it, drawn dashed.
        assert_eq!(svg.matches("stroke-dasharray").count(), 0);
        let svg = space_time_svg(&t, 101..151, 800.0);
        assert_eq!(svg.matches("stroke-dasharray").count(), 2);
        let all = space_time_svg(&t, 0..usize::MAX, 800.0);
        assert_eq!(all.matches("<circle").count(), MAX_WINDOW);
    }
}
