//! Reading traces from anywhere: format detection and one entry point over every importer.
//!
//! Engineers' logs come in many shapes (the lab notebook's project 8 names "parsing
//! heterogeneous log formats" its first challenge). [`import`] reads each of:
//!
//! | [`Format`] | what | module |
//! |---|---|---|
//! | `Json` | our own JSON trace (`{"events": [...]}`) | [`super::Trace`]'s serde form |
//! | `JsonLines` | one JSON object per line with a vector clock | [`super::jsonl`] |
//! | `ShiViz` | ShiViz and GoVector logs (either line order, optional header) | [`super::shiviz`] |
//! | `TsViz` | GoVector's timestamped logs for TSViz (Unix nanoseconds) | [`super::shiviz`] |
//! | `Otlp` | OpenTelemetry's OTLP JSON export (one or more `ExportTraceServiceRequest`s) | [`super::otel`] |
//! | `Jaeger` | Jaeger's JSON (`{"data": [trace, ...]}`) | [`super::otel`] |
//!
//! **Guarantee.** No input panics; every importer answers with a trace and notes, or one
//! lowercase error naming the line (or span) at fault. What an import decided on the reader's
//! behalf (position → node mappings, time origins, skipped lines, renumbered clocks) is said in
//! [`Imported::notes`] and [`Imported::skipped`], never done silently.

use std::fmt;

use super::jsonl::{self, JsonLinesOptions, LineError};
use super::{otel, shiviz, validate::Violation, Trace};

/// A trace file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Our own JSON trace.
    Json,
    /// JSON lines with a vector clock per event.
    JsonLines,
    /// ShiViz or GoVector log.
    ShiViz,
    /// GoVector's timestamped log, as TSViz reads it.
    TsViz,
    /// OpenTelemetry OTLP JSON.
    Otlp,
    /// Jaeger JSON.
    Jaeger,
}

impl Format {
    /// Every format, in the order detection tries them.
    pub const ALL: [Format; 6] = [
        Format::Otlp,
        Format::Jaeger,
        Format::Json,
        Format::JsonLines,
        Format::TsViz,
        Format::ShiViz,
    ];

    /// The format's name on the command line and in the page (`otlp`, `jaeger`, …).
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::JsonLines => "jsonl",
            Format::ShiViz => "shiviz",
            Format::TsViz => "tsviz",
            Format::Otlp => "otlp",
            Format::Jaeger => "jaeger",
        }
    }

    /// A short description for people.
    pub fn describe(self) -> &'static str {
        match self {
            Format::Json => "Chronoscope JSON trace",
            Format::JsonLines => "JSON lines with vector clocks",
            Format::ShiViz => "ShiViz / GoVector log",
            Format::TsViz => "TSViz log (GoVector with timestamps)",
            Format::Otlp => "OpenTelemetry OTLP JSON",
            Format::Jaeger => "Jaeger JSON",
        }
    }

    /// The format named `name` (also `govector` for ShiViz, `ndjson` for JSON lines).
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "govector" => Some(Format::ShiViz),
            "ndjson" | "json-lines" | "jsonlines" => Some(Format::JsonLines),
            n => Format::ALL.into_iter().find(|f| f.name() == n),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to read a log: its format (detected when `None`), the JSON-lines field names, and
/// whether to renumber each node's clock 1, 2, 3, … (repairs logs whose clocks start at 0 or
/// 2 or skip values, as GoVector's appended logs do).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportOptions {
    /// The format, or `None` to detect it.
    pub format: Option<Format>,
    /// Field names and time unit for JSON lines.
    pub json_lines: JsonLinesOptions,
    /// Renumber each node's own clock entries 1, 2, 3, … before building the trace.
    pub renumber: bool,
}

/// A trace read from a file, with what the import decided on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The trace.
    pub trace: Trace,
    /// The format it was read as.
    pub format: Format,
    /// What the import decided, in words.
    pub notes: Vec<String>,
    /// Lines that were skipped (JSON lines), with why.
    pub skipped: Vec<LineError>,
}

/// Why a file could not be read as a trace.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImportError {
    /// Not a JSON trace.
    #[error("not a JSON trace: {0}")]
    Json(String),
    /// Not a JSON-lines log.
    #[error("{0}")]
    JsonLines(#[from] jsonl::JsonLinesError),
    /// Not a ShiViz / GoVector / TSViz log.
    #[error("{0}")]
    ShiViz(#[from] shiviz::ShivizError),
    /// Not an OTLP or Jaeger export.
    #[error("{0}")]
    Otel(#[from] otel::OtelError),
}

/// The format `text` is most likely in: OTLP, Jaeger or our JSON by their top-level keys, JSON
/// lines for other JSON objects, TSViz when clock lines carry timestamps, else ShiViz.
pub fn detect(text: &str) -> Format {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        // Top-level keys of the first document, without parsing all of a big file.
        let head: String = t.chars().take(1 << 16).collect();
        if head.contains("\"resourceSpans\"") {
            return Format::Otlp;
        }
        if head.contains("\"data\"") && (head.contains("\"spans\"") || head.contains("\"traceID\""))
        {
            return Format::Jaeger;
        }
        let first_line = t.lines().next().unwrap_or("");
        let one_document = t.lines().filter(|l| !l.trim().is_empty()).count() == 1
            || serde_json::from_str::<serde_json::Value>(first_line).is_err();
        if head.contains("\"events\"") && one_document {
            return Format::Json;
        }
        return Format::JsonLines;
    }
    let first = t.lines().next().unwrap_or("");
    if first.contains("(?<host>") && first.contains("(?<timestamp>") {
        return Format::TsViz;
    }
    let stamped = t.lines().take(4).any(|l| {
        l.split_once(' ').is_some_and(|(d, rest)| {
            !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && rest.contains(" {")
        })
    });
    if stamped {
        Format::TsViz
    } else {
        Format::ShiViz
    }
}

/// Reads `text` as a trace in `options.format`, or in the format [`detect`] finds.
pub fn import(text: &str, options: &ImportOptions) -> Result<Imported, ImportError> {
    let format = options.format.unwrap_or_else(|| detect(text));
    let mut notes = Vec::new();
    let mut skipped = Vec::new();
    let trace = match format {
        Format::Json => serde_json::from_str::<Trace>(text.trim_start_matches('\u{feff}'))
            .map_err(|e| ImportError::Json(e.to_string()))?,
        Format::JsonLines => {
            let i = jsonl::import(text, &options.json_lines)?;
            notes = i.notes;
            skipped = i.skipped;
            i.trace
        }
        Format::ShiViz | Format::TsViz => {
            let i = shiviz::import_log(text, options.renumber)?;
            notes = i.notes;
            i.trace
        }
        Format::Otlp | Format::Jaeger => {
            let i = if format == Format::Otlp {
                otel::import_otlp(text)?
            } else {
                otel::import_jaeger(text)?
            };
            notes = i.notes;
            i.trace
        }
    };
    Ok(Imported {
        trace,
        format,
        notes,
        skipped,
    })
}

/// Advice for a reader whose imported trace has `violations`: names the GoVector/ShiViz
/// "clock must start at 1" pitfall and its repair when a node's clock starts elsewhere or skips.
pub fn hints(imported: &Imported, violations: &[Violation], renumbered: bool) -> Vec<String> {
    let clock_log = matches!(
        imported.format,
        Format::ShiViz | Format::TsViz | Format::JsonLines
    );
    let counting = violations.iter().any(|v| {
        matches!(
            v,
            Violation::FirstClockNotOne { .. } | Violation::OwnEntryNotNext { .. }
        )
    });
    let mut out = Vec::new();
    if clock_log && counting && !renumbered {
        out.push(
            "hint: each node's own clock entry must count its events 1, 2, 3, … (ShiViz refuses \
             such logs: \"logical clock values for each host must start at 1\"). GoVector writes \
             no \"Initialization Complete\" line at 1 when it appends to an existing log, so such \
             a host starts at 2; logs that count from 0 or log only some events skip values. \
             Renumbering (--renumber, or the page's \"renumber clocks\") keeps every order the \
             clocks state and counts each node's events from 1."
                .to_owned(),
        );
    }
    out
}

/// "physical times are ms since <origin>": the note every importer with timestamps gives.
/// `origin_ns` is Unix nanoseconds when it looks like a date (after 1973), else a raw count.
pub(crate) fn origin_note(origin_ns: i128, what: &str) -> String {
    if origin_ns > 100_000_000_000_000_000 {
        format!(
            "physical times are ms since {}, the earliest of the {what}",
            fmt_unix_ns(origin_ns)
        )
    } else {
        format!("physical times are ms since the earliest of the {what} ({origin_ns} ns)")
    }
}

/// Unix nanoseconds as an RFC 3339 UTC date, to the nanosecond.
pub(crate) fn fmt_unix_ns(ns: i128) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i128::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_as_rfc3339() {
        assert_eq!(fmt_unix_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            fmt_unix_ns(1_510_094_546_354_718_112),
            "2017-11-07T22:42:26.354718112Z"
        );
        assert_eq!(
            fmt_unix_ns(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn detection_by_shape() {
        assert_eq!(detect("{\"resourceSpans\": []}"), Format::Otlp);
        assert_eq!(
            detect("{\"data\": [{\"traceID\": \"a\", \"spans\": []}]}"),
            Format::Jaeger
        );
        assert_eq!(detect("{\"names\": {}, \"events\": []}"), Format::Json);
        assert_eq!(
            detect("{\"node\": \"A\", \"vc\": [1]}\n{\"node\": \"B\", \"vc\": [1, 1]}"),
            Format::JsonLines
        );
        assert_eq!(
            detect(
                "{\"node\": \"A\", \"events\": 3, \"vc\": [1]}\n{\"node\": \"B\", \"vc\": [1, 1]}"
            ),
            Format::JsonLines
        );
        assert_eq!(detect("a {\"a\":1}\nstart\n"), Format::ShiViz);
        assert_eq!(
            detect("1510094546354718112 a {\"a\":1}\nstart\n"),
            Format::TsViz
        );
        assert_eq!(
            detect("(?<timestamp>\\d+) (?<host>\\S*) (?<clock>{.*})\\n(?<event>.*)\n\n"),
            Format::TsViz
        );
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
        }
        assert_eq!(Format::from_name("GoVector"), Some(Format::ShiViz));
    }
}
