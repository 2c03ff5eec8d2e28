//! The one shape every simulated lab has, so one frame can drive them all: built from its
//! [`Params`], stepped one event at a time or run until a time, its trace opened in the
//! space-time view, its textbook [`Claim`]s checked against its own numbers, its data
//! downloadable as [`Table`]s.
//!
//! **Invariant.** A lab is a pure function of its parameters and the calls made: building it
//! twice from equal [`Params`] and making the same `step`/`run_until` calls gives equal
//! claims, tables and traces (every lab's tests assert it), so a link reproduces a run.

use std::any::Any;
use std::fmt::Write as _;

use serde::Serialize;

use super::params::{ParamError, ParamSpec, Params};
use crate::sim::SimTime;
use crate::trace::Trace;

/// A lab the frame can drive. Object safe: the frame holds a `Box<dyn Lab>` and pages
/// downcast to their own type (every `Lab` is `Any`).
pub trait Lab: Any {
    /// The canonical parameters of this run (what its link carries): building the lab from
    /// them gives this run again.
    fn params(&self) -> Params;
    /// Every parameter's value in force, defaults filled in: what the controls show.
    fn settings(&self) -> Params;
    /// The nodes' display names, in the order of their colours (node `i` is
    /// [`super::chart::node_colour`]`(i)` in every chart, table and diagram).
    fn nodes(&self) -> Vec<String>;
    /// The current simulated time.
    fn now(&self) -> SimTime;
    /// When the run ends by itself (a lab with a duration); `None` runs forever.
    fn end(&self) -> Option<SimTime>;
    /// How many events the run has handled.
    fn events(&self) -> u64;
    /// Handles exactly one event and returns its time; `None` when the run is over.
    fn step(&mut self) -> Option<SimTime>;
    /// Handles every event up to `until` (never past [`Lab::end`]) and sets the time to it.
    fn run_until(&mut self, until: SimTime);
    /// What the last event did, in a line (shown after a single step).
    fn last_event(&self) -> Option<String>;
    /// The run as a space-time trace.
    fn trace(&self) -> &Trace;
    /// The textbook results this lab demonstrates, each checked against this run's numbers.
    fn claims(&self) -> Vec<Claim>;
    /// The run's data: series and tables, downloadable as CSV and JSON.
    fn tables(&self) -> Vec<Table>;
}

/// What the frame needs to know about a lab before one is built.
#[derive(Debug, Clone, Copy)]
pub struct LabSpec {
    /// Its path in the app (`lamport` for `#/lamport`).
    pub slug: &'static str,
    /// Its parameters, in the order of their controls (the seed is implied).
    pub params: &'static [ParamSpec],
    /// Builds the lab from its parameters (absent keys take their defaults).
    pub build: fn(&Params) -> Result<Box<dyn Lab>, ParamError>,
}

impl LabSpec {
    /// Builds the lab, refusing keys it does not know.
    pub fn build(&self, params: &Params) -> Result<Box<dyn Lab>, ParamError> {
        if let Some(e) = params.unknown(self.params).into_iter().next() {
            return Err(e);
        }
        (self.build)(params)
    }
}

/// Whether this run bears a claim out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// This run's numbers confirm the claim.
    Holds,
    /// This run's numbers contradict it (a lab shows when the textbook's assumptions break).
    Fails,
    /// The run has not yet produced what the claim needs (no sync round yet, say).
    Pending,
}

impl Verdict {
    /// `holds` / `fails` / `pending`.
    pub fn key(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Fails => "fails",
            Verdict::Pending => "pending",
        }
    }

    /// `Holds` when `ok`, else `Fails`.
    pub fn of(ok: bool) -> Verdict {
        if ok {
            Verdict::Holds
        } else {
            Verdict::Fails
        }
    }
}

/// A textbook result and what this run says about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    /// The result as the literature states it, with its source.
    pub claim: String,
    /// This run's numbers that decide it.
    pub evidence: String,
    /// The verdict those numbers give.
    pub verdict: Verdict,
}

impl Claim {
    /// A claim with its evidence and verdict.
    pub fn new(claim: impl Into<String>, evidence: impl Into<String>, verdict: Verdict) -> Self {
        Claim {
            claim: claim.into(),
            evidence: evidence.into(),
            verdict,
        }
    }
}

/// One value of a [`Table`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cell {
    /// A whole number.
    Int(i64),
    /// A real number (non-finite values are written as empty / `null`).
    Num(f64),
    /// Text.
    Text(String),
    /// No value (empty in CSV, `null` in JSON).
    Empty,
}

impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::Int(v)
    }
}
impl From<u64> for Cell {
    fn from(v: u64) -> Self {
        Cell::Int(v.min(i64::MAX as u64) as i64)
    }
}
impl From<usize> for Cell {
    fn from(v: usize) -> Self {
        Cell::Int(v.min(i64::MAX as usize) as i64)
    }
}
impl From<u32> for Cell {
    fn from(v: u32) -> Self {
        Cell::Int(v.into())
    }
}
impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::Num(v)
    }
}
impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(v)
    }
}
impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(v.to_owned())
    }
}

impl Cell {
    fn csv(&self, out: &mut String) {
        match self {
            Cell::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Cell::Num(v) if v.is_finite() => {
                let _ = write!(out, "{v}");
            }
            Cell::Num(_) | Cell::Empty => {}
            Cell::Text(t) if t.contains([',', '"', '\n', '\r']) => {
                out.push('"');
                out.push_str(&t.replace('"', "\"\""));
                out.push('"');
            }
            Cell::Text(t) => out.push_str(t),
        }
    }
}

/// A table of a run's data (a series is a table with a time column).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    /// File-name stem of its downloads (`machines` → `lamport-machines.csv`).
    pub name: String,
    /// What it holds, for the download menu.
    pub title: String,
    /// Column names (with units: `offset_ms`).
    pub columns: Vec<String>,
    /// Rows, each with one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(name: &str, title: &str, columns: &[&str]) -> Self {
        Table {
            name: name.to_owned(),
            title: title.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (its length must equal the number of columns).
    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len(), "a row per column");
        self.rows.push(row);
    }

    /// RFC 4180 CSV: a header line, then one line per row.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let header: Vec<Cell> = self
            .columns
            .iter()
            .map(|c| Cell::from(c.as_str()))
            .collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            for (i, c) in row.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                c.csv(&mut out);
            }
            out.push('\n');
        }
        out
    }

    /// JSON: an array of objects keyed by column.
    pub fn to_json(&self) -> String {
        let rows: Vec<serde_json::Map<String, serde_json::Value>> = self
            .rows
            .iter()
            .map(|r| {
                self.columns
                    .iter()
                    .cloned()
                    .zip(
                        r.iter()
                            .map(|c| serde_json::to_value(c).unwrap_or_default()),
                    )
                    .collect()
            })
            .collect();
        serde_json::to_string_pretty(&rows).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_write_csv_and_json() {
        let mut t = Table::new("t", "a table", &["name", "n", "x"]);
        t.push(vec!["a,b".into(), 3u64.into(), 0.5.into()]);
        t.push(vec!["say \"hi\"".into(), 4u64.into(), Cell::Empty]);
        assert_eq!(
            t.to_csv(),
            "name,n,x\n\"a,b\",3,0.5\n\"say \"\"hi\"\"\",4,\n"
        );
        let v: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        assert_eq!(v[0]["name"], "a,b");
        assert_eq!(v[0]["n"], 3);
        assert_eq!(v[1]["x"], serde_json::Value::Null);
    }
}
