//! Golden tests of the trace importers, one fixture per format (`tests/traces/`, made as its
//! README says): each file is imported with its format detected, and the import's notes, the
//! validator's findings and the happens-before graph are compared with `<fixture>.golden`.
//! Run with `UPDATE_GOLDENS=1` to rewrite the goldens after a deliberate change (and read the
//! diff).

use std::path::{Path, PathBuf};

use chronoscope::trace::import::{self, Format, ImportOptions};
use chronoscope::trace::mermaid::happens_before_graph;
use chronoscope::trace::{validate, EventKind};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/traces")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap()
}

/// What `chronoscope trace check` and `mermaid --diagram graph` would say about a fixture.
fn report(name: &str, options: &ImportOptions) -> String {
    let text = read(name);
    let mut out = String::new();
    match import::import(&text, options) {
        Err(e) => out.push_str(&format!("error: {e}\n")),
        Ok(i) => {
            out.push_str(&format!("format: {}\n", i.format));
            for n in &i.notes {
                out.push_str(&format!("note: {n}\n"));
            }
            for s in &i.skipped {
                out.push_str(&format!("skipped {s}\n"));
            }
            let violations = validate(&i.trace);
            for v in &violations {
                out.push_str(&format!("violation: {}\n", v.describe(&i.trace)));
            }
            for h in import::hints(&i, &violations, options.renumber) {
                out.push_str(&format!("{h}\n"));
            }
            out.push_str(&format!(
                "{} events on {} nodes, {} messages\n",
                i.trace.len(),
                i.trace.nodes().len(),
                i.trace.message_edges().len()
            ));
            out.push_str(&happens_before_graph(&i.trace, 0..i.trace.len()));
        }
    }
    out
}

fn golden(name: &str, golden_name: &str, options: &ImportOptions) {
    let got = report(name, options);
    let path = dir().join(golden_name);
    if std::env::var_os("UPDATE_GOLDENS").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no golden {golden_name}: run with UPDATE_GOLDENS=1"));
    assert_eq!(got, want, "{name} differs from {golden_name}");
}

fn detected(name: &str) {
    golden(name, &format!("{name}.golden"), &ImportOptions::default());
}

#[test]
fn the_seed_example_gives_the_seed_graph() {
    let i = import::import(&read("seed.jsonl"), &ImportOptions::default()).unwrap();
    assert_eq!(i.format, Format::JsonLines);
    // The lab notebook's expected output, verbatim.
    assert_eq!(
        happens_before_graph(&i.trace, 0..i.trace.len()),
        "graph TD\nA1[Node A: start] --> B1[Node B: recv_from_A]\nC1[Node C: independent_task]\n"
    );
    detected("seed.jsonl");
}

#[test]
fn json_lines_with_malformed_lines() {
    detected("malformed.jsonl");
}

#[test]
fn govector_logs() {
    detected("govector.log");
    // Appended by a second process: its clock starts at 2, ShiViz's refusal — explained, then
    // repaired by renumbering.
    detected("govector-appended.log");
    golden(
        "govector-appended.log",
        "govector-appended.log.renumbered.golden",
        &ImportOptions {
            renumber: true,
            ..Default::default()
        },
    );
}

#[test]
fn tsviz_timestamps_become_physical_times() {
    detected("tsviz.log");
    let i = import::import(&read("tsviz.log"), &ImportOptions::default()).unwrap();
    assert_eq!(i.format, Format::TsViz);
    let last = i.trace.events().last().unwrap();
    assert_eq!(last.physical_ms, Some(2.614906));
}

#[test]
fn opentelemetry_exports() {
    for f in [
        "shop.otlp.json",
        "shop.jaeger.json",
        "skewed.otlp.json",
        "skewed.jaeger.json",
        "truncated.otlp.json",
    ] {
        detected(f);
    }
}

#[test]
fn otlp_and_jaeger_of_one_run_agree() {
    // The same spans through both exporters: the same events, kinds and vector clocks (the
    // Jaeger file's times are whole microseconds, so physical times differ below 1 µs).
    for run in ["shop", "skewed"] {
        let o = import::import(
            &read(&format!("{run}.otlp.json")),
            &ImportOptions::default(),
        )
        .unwrap();
        let j = import::import(
            &read(&format!("{run}.jaeger.json")),
            &ImportOptions::default(),
        )
        .unwrap();
        assert_eq!((o.format, j.format), (Format::Otlp, Format::Jaeger));
        assert_eq!(o.trace.len(), j.trace.len());
        for (a, b) in o.trace.events().iter().zip(j.trace.events()) {
            assert_eq!(
                (a.node, &a.label, a.kind, &a.vector),
                (b.node, &b.label, b.kind, &b.vector)
            );
            let (ta, tb) = (a.physical_ms.unwrap(), b.physical_ms.unwrap());
            assert!((ta - tb).abs() < 0.002, "{ta} vs {tb}");
        }
    }
}

#[test]
fn the_shop_shows_concurrency_and_links() {
    let i = import::import(&read("shop.otlp.json"), &ImportOptions::default()).unwrap();
    let t = &i.trace;
    // The batch's start receives from both orders' producers: two receives.
    let ship: Vec<_> = t
        .events()
        .iter()
        .filter(|e| e.label == "start ship batch")
        .collect();
    assert_eq!(ship.len(), 2);
    assert!(ship
        .iter()
        .all(|e| matches!(e.kind, EventKind::Receive { .. })));
    // The shipper's clock knows the first charge on payments: through the first order's
    // producer, which checkout ran after the charge returned.
    let charge = t
        .events()
        .iter()
        .position(|e| e.label == "end Charge")
        .unwrap();
    let last = t
        .events()
        .iter()
        .rposition(|e| e.label == "start ship batch")
        .unwrap();
    let c = &t.events()[charge];
    assert!(t.events()[last].vector[&c.node] >= c.vector[&c.node]);
}
