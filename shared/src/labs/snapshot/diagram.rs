//! The snapshot's cut on a space-time diagram: one lane per node, transfers as slanted arrows,
//! markers (and reports) as dashed arrows, each node's recording as a tick, and the cut as a
//! line through the ticks. Transfers that cross the cut forwards (sent before, received after
//! it: in flight) are green; one received before the cut but sent after it (an orphan, which
//! makes the cut inconsistent) is red.
//!
//! **Guarantee.** The drawing is bounded: at most [`MAX_EVENTS`] events around the cut are
//! drawn, whatever the length of the run.

use std::fmt::Write as _;

use super::SnapshotLab;
use crate::check::consistent_cut::inside;
use crate::trace::svg::escape;
use crate::trace::EventKind;

/// The most events drawn.
pub const MAX_EVENTS: usize = 400;

const LANE_GAP: f64 = 48.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 24.0;

impl SnapshotLab {
    /// The `k`-th snapshot's cut drawn over the events around it, `width` pixels wide; `None`
    /// if there is no such snapshot.
    pub fn cut_svg(&self, k: usize, width: f64) -> Option<String> {
        let r = self.snapshots().get(k)?;
        let trace = self.trace();
        let nodes = trace.nodes();
        // The window: from a little before the snapshot started to a little after the last
        // node recorded, in physical time, capped in events.
        let start_ms = r.started.as_nanos() as f64 / 1e6;
        let recorded: Vec<f64> = r
            .cut
            .iter()
            .filter_map(|(&n, &k)| trace.lane(n).get(k))
            .filter_map(|&id| trace.events()[id].physical_ms)
            .collect();
        let last_ms = recorded.iter().copied().fold(start_ms, f64::max);
        let pad = ((last_ms - start_ms) * 0.5).max(20.0);
        let (lo, hi) = (start_ms - pad, last_ms + pad);
        let ids: Vec<usize> = (0..trace.len())
            .filter(|&id| {
                trace.events()[id]
                    .physical_ms
                    .is_some_and(|t| t >= lo && t <= hi)
            })
            .take(MAX_EVENTS)
            .collect();
        let width = width.max(LEFT + RIGHT + 100.0);
        let height = TOP * 2.0 + LANE_GAP * nodes.len().saturating_sub(1) as f64;
        let x = |t: f64| LEFT + (t - lo).clamp(0.0, hi - lo) / (hi - lo) * (width - LEFT - RIGHT);
        let y = |n| TOP + LANE_GAP * nodes.iter().position(|&m| m == n).unwrap_or(0) as f64;
        let t_of = |id: usize| trace.events()[id].physical_ms.unwrap_or(lo);
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="cut" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" role="img" aria-label="snapshot {}.{} cut">"#,
            r.id.initiator, r.id.seq
        );
        for &n in &nodes {
            let _ = write!(
                out,
                r##"<text x="4" y="{:.1}" fill="currentColor">{}</text><line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999"/>"##,
                y(n) + 4.0,
                escape(&trace.node_name(n)),
                y(n),
                width - RIGHT,
                y(n)
            );
        }
        let in_window = |id: usize| ids.binary_search(&id).is_ok();
        for e in trace.message_edges() {
            if !(in_window(e.send) || in_window(e.receive)) {
                continue;
            }
            let (s, rcv) = (&trace.events()[e.send], &trace.events()[e.receive]);
            let transfer = self.transfers.contains_key(&e.message);
            let sent_in = inside(trace, &r.cut, e.send);
            let got_in = inside(trace, &r.cut, e.receive);
            let (colour, class) = match (transfer, sent_in, got_in) {
                (true, true, false) => ("#2e8b57", "in-flight"),
                (true, false, true) => ("#c0392b", "orphan"),
                (true, _, _) => ("#3571c9", "transfer"),
                (false, _, _) => ("#888", "control"),
            };
            let dash = if transfer {
                ""
            } else {
                r#" stroke-dasharray="4 3""#
            };
            let _ = write!(
                out,
                r#"<line class="{class}" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="1.5"{dash}><title>{}</title></line>"#,
                x(t_of(e.send)),
                y(s.node),
                x(t_of(e.receive)),
                y(rcv.node),
                escape(&s.label)
            );
        }
        for &id in &ids {
            let ev = &trace.events()[id];
            if matches!(ev.kind, EventKind::Local) {
                continue;
            }
            let _ = write!(
                out,
                r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="#555"/>"##,
                x(t_of(id)),
                y(ev.node)
            );
        }
        // The cut: through each node's recording, top to bottom.
        let mut points = Vec::new();
        for &n in &nodes {
            if let Some(&id) = r.cut.get(&n).and_then(|&k| trace.lane(n).get(k)) {
                points.push(format!("{:.1},{:.1}", x(t_of(id)), y(n)));
                let _ = write!(
                    out,
                    r##"<rect class="record" x="{:.1}" y="{:.1}" width="4" height="14" fill="#d1601a"><title>{}</title></rect>"##,
                    x(t_of(id)) - 2.0,
                    y(n) - 7.0,
                    escape(&trace.events()[id].label)
                );
            }
        }
        let _ = write!(
            out,
            r##"<polyline class="cut-line" points="{}" fill="none" stroke="#d1601a" stroke-width="2"/></svg>"##,
            points.join(" ")
        );
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn the_cut_is_drawn_through_every_node_and_marks_in_flight_transfers() {
        let mut lab =
            SnapshotLab::new(SnapshotConfig::example(Algorithm::ChandyLamport, true)).unwrap();
        lab.run();
        let svg = lab.cut_svg(0, 600.0).unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches(r#"class="record""#).count(), 3);
        assert_eq!(
            svg.matches(r#"class="in-flight""#).count(),
            1,
            "the $10 on 2->1"
        );
        assert!(lab.cut_svg(1, 600.0).is_none());
        // Without FIFO and with Chandy–Lamport, random runs show orphans or lost transfers;
        // the diagram stays bounded.
        let mut broken = SnapshotLab::new(SnapshotConfig::random(
            5,
            Algorithm::ChandyLamport,
            false,
            2,
        ))
        .unwrap();
        broken.run();
        let svg = broken.cut_svg(0, 800.0).unwrap();
        assert!(svg.matches("<circle").count() <= super::MAX_EVENTS);
    }
}
