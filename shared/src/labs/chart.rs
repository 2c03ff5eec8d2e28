//! Line charts as SVG, for every lab: one colour per node ([`node_colour`]) in every chart,
//! table and diagram of a page, and the numbers a chart plots as a [`Table`] — its text
//! alternative and its download.
//!
//! The SVG carries classes (`chart-title`, `axis`, `grid`) so the page's stylesheet can theme
//! it (a dark theme overrides the presentation attributes); the attributes keep a downloaded
//! file readable on its own.

use std::fmt::Write as _;

use super::lab::{Cell, Table};
use crate::trace::svg::escape;

/// The node colours, in node order: every colour has at least 3:1 contrast against both the
/// light (white) and the dark (`#161b22`) page background (WCAG 2.1, 1.4.11 non-text contrast).
pub const PALETTE: [&str; 8] = [
    "#3571c9", "#d1601a", "#2e8b57", "#c2386c", "#7b5fc7", "#8a6d00", "#1a8a99", "#b5462f",
];

/// The colour of node `i` (cycling through [`PALETTE`]).
pub fn node_colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its name in the legend and the table's column.
    pub name: String,
    /// The node it belongs to (its colour); `None` for a summary line (drawn in the text
    /// colour).
    pub node: Option<usize>,
    /// `(x, y)` points in increasing `x`.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (a liar, an estimate).
    pub dashed: bool,
}

impl Series {
    /// A node's line.
    pub fn node(name: impl Into<String>, node: usize, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            node: Some(node),
            points,
            dashed: false,
        }
    }
}

/// A line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// File-name stem of its downloads.
    pub name: String,
    /// Its title.
    pub title: String,
    /// The x axis' label, with its unit.
    pub x_label: String,
    /// The y axis' label, with its unit.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Steps (the value holds until the next point) instead of straight segments.
    pub step: bool,
    /// The y range; `None` fits the data (from 0 if every value is positive).
    pub y_range: Option<(f64, f64)>,
    /// Size in SVG units (the page scales it to its width).
    pub size: (f64, f64),
}

impl LineChart {
    /// A chart with no lines yet, 640 × 280.
    pub fn new(name: &str, title: &str, x_label: &str, y_label: &str) -> Self {
        LineChart {
            name: name.to_owned(),
            title: title.to_owned(),
            x_label: x_label.to_owned(),
            y_label: y_label.to_owned(),
            series: Vec::new(),
            step: false,
            y_range: None,
            size: (640.0, 280.0),
        }
    }

    fn x_range(&self) -> (f64, f64) {
        let (lo, hi) = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(x), hi.max(x))
            });
        if lo.is_finite() && hi > lo {
            (lo, hi)
        } else if lo.is_finite() {
            (lo, lo + 1.0)
        } else {
            (0.0, 1.0)
        }
    }

    fn fitted_y(&self) -> (f64, f64) {
        if let Some(r) = self.y_range {
            return r;
        }
        let (lo, hi) = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|y| y.is_finite())
            .fold((0.0f64, f64::NEG_INFINITY), |(lo, hi), y| {
                (lo.min(y), hi.max(y))
            });
        if hi > lo {
            (lo, hi)
        } else {
            (lo, lo + 1.0)
        }
    }

    /// The chart as a standalone SVG document (`role="img"`, titled, with a legend).
    pub fn svg(&self) -> String {
        let (w, h) = self.size;
        let (left, right, top, bottom) = (62.0, 120.0, 28.0, 36.0);
        let (x0, x1) = self.x_range();
        let (y0, y1) = self.fitted_y();
        let x = |v: f64| left + (v - x0) / (x1 - x0) * (w - left - right);
        let y = |v: f64| top + (1.0 - (v.clamp(y0, y1) - y0) / (y1 - y0)) * (h - top - bottom);
        let mut s = String::with_capacity(4096);
        let _ = write!(
            s,
            r##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12"><title>{}</title>"##,
            escape(&self.title)
        );
        let _ = write!(
            s,
            r##"<text class="chart-title" x="{left}" y="17" font-size="14" fill="#1b1f24">{}</text>"##,
            escape(&self.title)
        );
        // Axes, the zero line, and the ends of both ranges.
        let (bx, by) = (w - right, h - bottom);
        let _ = write!(
            s,
            r##"<g class="axis" fill="#5c6670" stroke="#8a949e"><line x1="{left}" y1="{by}" x2="{bx}" y2="{by}"/><line x1="{left}" y1="{top}" x2="{left}" y2="{by}"/>"##
        );
        if y0 < 0.0 && y1 > 0.0 {
            let z = y(0.0);
            let _ = write!(
                s,
                r##"<line class="grid" x1="{left}" y1="{z:.1}" x2="{bx}" y2="{z:.1}" stroke-dasharray="3 3"/>"##
            );
        }
        let _ = write!(
            s,
            r##"<text stroke="none" x="{left}" y="{:.1}">{}</text><text stroke="none" x="{bx}" y="{:.1}" text-anchor="end">{}</text><text stroke="none" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><text stroke="none" x="{:.1}" y="{by}" text-anchor="end">{}</text><text stroke="none" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text stroke="none" x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle">{}</text></g>"##,
            by + 15.0,
            tick(x0),
            by + 15.0,
            tick(x1),
            left - 5.0,
            top + 4.0,
            tick(y1),
            left - 5.0,
            tick(y0),
            (left + bx) / 2.0,
            by + 28.0,
            escape(&self.x_label),
            (top + by) / 2.0,
            (top + by) / 2.0,
            escape(&self.y_label),
        );
        for (i, series) in self.series.iter().enumerate() {
            let colour = series.node.map_or("#1b1f24", node_colour);
            let mut d = String::new();
            for (j, &(px, py)) in series.points.iter().enumerate() {
                if !py.is_finite() {
                    continue;
                }
                if j == 0 || d.is_empty() {
                    let _ = write!(d, "M{:.1},{:.1}", x(px), y(py));
                } else if self.step {
                    let _ = write!(d, "H{:.1}V{:.1}", x(px), y(py));
                } else {
                    let _ = write!(d, "L{:.1},{:.1}", x(px), y(py));
                }
            }
            let class = if series.node.is_some() {
                "line"
            } else {
                "line summary"
            };
            let dash = if series.dashed {
                r#" stroke-dasharray="5 3""#
            } else {
                ""
            };
            let _ = write!(
                s,
                r##"<path class="{class}" d="{d}" fill="none" stroke="{colour}" stroke-width="2"{dash}/><g class="legend"><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="3"{dash}/><text x="{:.1}" y="{:.1}" fill="#1b1f24">{}</text></g>"##,
                bx + 8.0,
                top + 16.0 * i as f64,
                bx + 24.0,
                top + 16.0 * i as f64,
                bx + 28.0,
                top + 16.0 * i as f64 + 4.0,
                escape(&series.name)
            );
        }
        s.push_str("</svg>");
        s
    }

    /// The plotted numbers: one row per x value of any series, one column per series (a
    /// series without a point at that x holds its last value when stepped, else is empty).
    pub fn table(&self) -> Table {
        let mut columns = vec![self.x_label.clone()];
        columns.extend(self.series.iter().map(|s| s.name.clone()));
        let mut xs: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let rows = xs
            .iter()
            .map(|&at| {
                let mut row = vec![Cell::Num(at)];
                for s in &self.series {
                    let i = s.points.partition_point(|p| p.0 <= at);
                    let v = match i.checked_sub(1).map(|i| s.points[i]) {
                        Some((px, py)) if px == at || self.step => Cell::Num(py),
                        _ => Cell::Empty,
                    };
                    row.push(v);
                }
                row
            })
            .collect();
        Table {
            name: self.name.clone(),
            title: self.title.clone(),
            columns,
            rows,
        }
    }
}

/// An axis tick: short, without float noise.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_draws_every_series_and_tabulates_its_points() {
        let mut c = LineChart::new("clocks", "Clocks", "time_s", "clock");
        c.step = true;
        c.series.push(Series::node(
            "M0",
            0,
            vec![(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)],
        ));
        c.series
            .push(Series::node("M1", 1, vec![(0.0, 0.0), (1.5, 3.0)]));
        let svg = c.svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches(r#"class="line""#).count(), 2);
        assert!(svg.contains(node_colour(1)));
        let t = c.table();
        assert_eq!(t.columns, ["time_s", "M0", "M1"]);
        assert_eq!(t.rows.len(), 4); // x = 0, 1, 1.5, 2
        assert_eq!(
            t.rows[2],
            vec![Cell::Num(1.5), Cell::Num(1.0), Cell::Num(3.0)]
        );
    }
}
