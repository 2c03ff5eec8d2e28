//! The TrueTime lab's pictures: the latest transactions on a true-time axis (the bar from
//! start to end, orange while the transaction waited, a diamond at its timestamp, red when it
//! broke the real-time order), and every region's ε and real clock error as a chart.
//!
//! **Guarantee.** Bounded: at most the `count` latest finished transactions are drawn.

use std::fmt::Write as _;

use super::{SpannerLab, REGIONS};
use crate::check::external_consistency::{check_external_consistency, TxAction};
use crate::labs::chart::{LineChart, Series};
use crate::trace::svg::escape;

const ROW: f64 = 16.0;
const LEFT: f64 = 150.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 22.0;

impl SpannerLab {
    /// The latest `count` finished transactions in true time, as SVG `width` wide.
    pub fn intervals_svg(&self, count: usize, width: f64) -> String {
        let done: Vec<usize> = (0..self.transactions().len())
            .filter(|&i| self.transactions()[i].tx.end_ms.is_finite())
            .collect();
        let shown = &done[done.len().saturating_sub(count)..];
        let history: Vec<_> = shown
            .iter()
            .map(|&i| self.transactions()[i].tx.clone())
            .collect();
        let late: Vec<usize> = check_external_consistency(&history)
            .order
            .iter()
            .map(|v| v.later)
            .collect();
        let (lo, hi) = history
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| {
                (
                    lo.min(t.start_ms).min(t.ts_ms),
                    hi.max(t.end_ms).max(t.ts_ms),
                )
            });
        let width = width.max(LEFT + RIGHT + 100.0);
        let height = TOP + ROW * history.len() as f64 + 8.0;
        let span = if hi > lo { hi - lo } else { 1.0 };
        let x = |t: f64| LEFT + (t - lo).clamp(0.0, span) / span * (width - LEFT - RIGHT);
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="intervals" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" role="img" aria-label="the latest transactions in true time">"#
        );
        if history.is_empty() {
            out.push_str(r##"<text x="8" y="16" fill="currentColor">no transaction has finished yet</text></svg>"##);
            return out;
        }
        let _ = write!(
            out,
            r##"<text x="{LEFT}" y="12" fill="currentColor">true time {lo:.3} ms → {hi:.3} ms</text>"##
        );
        for (row, (&i, t)) in shown.iter().zip(&history).enumerate() {
            let rec = &self.transactions()[i];
            let y = TOP + ROW * row as f64;
            let what = match &t.action {
                TxAction::Write { key, .. } => format!("#{i} {} write {key}", REGIONS[rec.region]),
                TxAction::Read { key, .. } => format!("#{i} {} read {key}", REGIONS[rec.region]),
            };
            let bad = late.contains(&row);
            let colour = if bad { "#c0392b" } else { "#3571c9" };
            let _ = write!(
                out,
                r##"<text x="4" y="{:.1}" fill="{}">{}</text><rect class="{}" x="{:.1}" y="{:.1}" width="{:.1}" height="8" fill="{}" opacity=".85"><title>start {:.3} ms, end {:.3} ms, waited {:.3} ms, ε {:.3} ms</title></rect>"##,
                y + 9.0,
                if bad { "#c0392b" } else { "currentColor" },
                escape(&what),
                if bad { "tx late" } else { "tx" },
                x(t.start_ms),
                y + 1.0,
                (x(t.end_ms) - x(t.start_ms)).max(1.0),
                if rec.waited_ms > 0.0 {
                    "#d1601a"
                } else {
                    colour
                },
                t.start_ms,
                t.end_ms,
                rec.waited_ms,
                rec.epsilon_ms
            );
            let cx = x(t.ts_ms);
            let _ = write!(
                out,
                r##"<path class="ts" d="M{:.1},{:.1}l4,4l-4,4l-4,-4z" fill="{colour}"><title>timestamp {:.3} ms</title></path>"##,
                cx,
                y + 1.0,
                t.ts_ms
            );
        }
        out.push_str("</svg>");
        out
    }

    /// Each region's ε and its real clock error's magnitude over time.
    pub fn epsilon_chart(&self) -> LineChart {
        let mut c = LineChart::new(
            "epsilon",
            "TrueTime ε (solid) and the real clock error |local − true| (dashed)",
            "time (s)",
            "ms",
        );
        for (r, name) in REGIONS.iter().enumerate() {
            c.series.push(Series::node(
                format!("{name} ε"),
                r,
                self.samples().iter().map(|s| (s.0, s.2[r])).collect(),
            ));
            let mut err = Series::node(
                format!("{name} |error|"),
                r,
                self.samples().iter().map(|s| (s.0, s.1[r].abs())).collect(),
            );
            err.dashed = true;
            c.series.push(err);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn the_pictures_are_bounded_and_mark_late_transactions() {
        let mut lab = SpannerLab::new(SpannerConfig {
            duration_s: 2.0,
            commit_wait: false,
            ..SpannerConfig::default()
        })
        .unwrap();
        assert!(lab
            .intervals_svg(10, 600.0)
            .contains("no transaction has finished yet"));
        lab.run();
        let svg = lab.intervals_svg(200, 700.0);
        assert_eq!(svg.matches("<rect").count(), 200);
        assert!(
            svg.contains(r#"class="tx late""#),
            "commit wait off: some rows break the order"
        );
        let chart = lab.epsilon_chart();
        assert_eq!(chart.series.len(), 6);
        assert!(!chart.series[0].points.is_empty());
    }
}
