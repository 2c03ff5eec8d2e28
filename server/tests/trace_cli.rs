//! `chronoscope trace` on every importer's format, run as the real binary on the fixtures in
//! `shared/tests/traces/`.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/tests/traces")
        .join(name)
}

fn trace(args: &[&str], file: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chronoscope"))
        .arg("trace")
        .args(args)
        .arg(fixture(file))
        .output()
        .unwrap()
}

fn out(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn the_seed_example_prints_the_seed_graph() {
    let o = trace(&["mermaid", "--diagram", "graph"], "seed.jsonl");
    assert!(o.status.success());
    let (stdout, stderr) = out(&o);
    assert_eq!(
        stdout,
        "graph TD\nA1[Node A: start] --> B1[Node B: recv_from_A]\nC1[Node C: independent_task]\n"
    );
    assert!(stderr.contains("note: read as jsonl"), "{stderr}");
    assert!(stderr.contains("0 → A, 1 → B, 2 → C"), "{stderr}");
    let o = trace(&["check"], "seed.jsonl");
    assert!(o.status.success());
    assert!(out(&o).0.starts_with("ok: 3 events on 3 nodes"));
}

#[test]
fn check_names_clock_skew_in_an_otlp_export_and_fails() {
    let o = trace(&["check"], "skewed.otlp.json");
    assert_eq!(o.status.code(), Some(1));
    let (stdout, _) = out(&o);
    assert!(
        stdout.contains("clock skew: event 4 \"start Reserve\" on inventory"),
        "{stdout}"
    );
    assert!(stdout.contains("3 violation(s) in 39 events"), "{stdout}");
    let o = trace(&["check", "--format", "jaeger"], "shop.jaeger.json");
    assert!(o.status.success(), "{:?}", out(&o));
    // The wrong format, forced: one clear line.
    let o = trace(&["check", "--format", "otlp"], "shop.jaeger.json");
    assert!(!o.status.success());
    assert_eq!(
        out(&o).1,
        format!(
            "error: {}: the OTLP export holds no spans\n",
            fixture("shop.jaeger.json").display()
        )
    );
}

#[test]
fn malformed_lines_fail_check_with_their_numbers() {
    let o = trace(&["check"], "malformed.jsonl");
    assert_eq!(o.status.code(), Some(1));
    let (stdout, _) = out(&o);
    assert!(stdout.contains("skipped line 2: not JSON"), "{stdout}");
    assert!(stdout.contains("skipped line 4: no node field"), "{stdout}");
    assert!(
        stdout.contains("0 violation(s) in 2 events, 4 line(s) skipped"),
        "{stdout}"
    );
}

#[test]
fn govector_clocks_starting_at_2_are_explained_and_renumbered() {
    let o = trace(&["check"], "govector-appended.log");
    assert_eq!(o.status.code(), Some(1));
    let (stdout, _) = out(&o);
    assert!(stdout.contains("must be 1, but it is 2"), "{stdout}");
    assert!(stdout.contains("--renumber"), "{stdout}");
    let o = trace(&["check", "--renumber"], "govector-appended.log");
    assert!(o.status.success(), "{:?}", out(&o));
    assert!(out(&o).1.contains("renumbered client's clock"));
}

#[test]
fn tsviz_svg_slants_by_the_timestamps() {
    let o = trace(&["svg", "--width", "600"], "tsviz.log");
    assert!(o.status.success());
    let (stdout, _) = out(&o);
    assert!(stdout.contains("time 0 ms → 2.615 ms"), "{stdout}");
}
