//! `chronoscope drift`: the numbers the issue asks for, through the real binary.

use std::process::Command;

fn drift(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chronoscope"))
        .arg("drift")
        .args(args)
        .output()
        .expect("run chronoscope");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

fn summary(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let (ok, out, err) = drift(&all);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json output");
    v["summary"].clone()
}

fn f(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[test]
fn without_sync_50_ppm_is_4_32_seconds_a_day() {
    let s = summary(&[
        "--nodes",
        "2",
        "--drift-rate",
        "50ppm",
        "--sync",
        "none",
        "--duration",
        "1d",
        "--sample-every",
        "1h",
    ]);
    assert!((f(&s, "final_skew") - 4.32).abs() < 1e-6, "{s}");
}

#[test]
fn berkeley_every_20s_stays_under_the_derived_bound() {
    // (d_max − d_min) + Δρ·P + drift during round trips = 10 ms + 1 ms + 10 µs; see
    // shared/src/labs/drift.rs for the derivation.
    let s = summary(&[
        "--nodes",
        "3",
        "--drift-rate",
        "50ppm",
        "--sync",
        "berkeley",
        "--interval",
        "20",
        "--latency",
        "5-15ms",
        "--adjust",
        "step",
        "--duration",
        "2h",
        "--sample-every",
        "1s",
    ]);
    assert!(f(&s, "max_skew_after_first_sync") <= 0.01101, "{s}");
}

#[test]
fn the_table_explains_each_sync_event() {
    let (ok, out, err) = drift(&[
        "--nodes",
        "3",
        "--drift-rate",
        "50ppm",
        "--sync",
        "berkeley",
        "--interval",
        "20",
        "--latency",
        "5-15ms",
        "--duration",
        "70s",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("Simulating 3 nodes with 50ppm drift (~4.3 seconds/day)"),
        "{out}"
    );
    assert!(
        out.contains("[T=5.000000s]") || out.contains("[T=5.000s] Node A:"),
        "{out}"
    );
    for needle in [
        "SYNC EVENT (Berkeley Algorithm)",
        "Leader (Node A) requests timestamps",
        "Node B reports:",
        "Computed average:",
        "Sending adjustments: A:",
        "| Skew:",
        "Freq true",
        "TT ε",
        "HLC (l.c)",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
    // Three rounds in 70 s: at 20, 40 and 60 s.
    assert_eq!(out.matches("SYNC EVENT").count(), 3, "{out}");
}

#[test]
fn fault_tolerant_average_holds_with_4_and_breaks_with_3() {
    let common = [
        "--sync",
        "ft-average",
        "--adjust",
        "step",
        "--duration",
        "1h",
        "--liars",
        "1",
    ];
    let mut four = vec!["--nodes", "4"];
    four.extend(common);
    let mut three = vec!["--nodes", "3"];
    three.extend(common);
    let held = summary(&four);
    let broken = summary(&three);
    assert!(f(&held, "max_skew_after_first_sync") <= 0.022, "{held}");
    // Honest drifts −25 and 0 ppm: 25 ppm × 3600 s = 90 ms if nothing holds them together.
    assert!(f(&broken, "final_skew") > 0.08, "{broken}");
}

#[test]
fn stepping_back_is_reported_and_slewing_never_steps() {
    let args = [
        "--nodes",
        "4",
        "--drift-rate",
        "200ppm",
        "--duration",
        "10m",
        "--jump",
        "B:+50ms@100s",
    ];
    let (ok, out, _) = drift(&[&args[..], &["--adjust", "step"]].concat());
    assert!(ok);
    assert!(out.contains("stepped BACK"), "{out}");
    let s = summary(&[&args[..], &["--adjust", "slew"]].concat());
    assert_eq!(s["backward_steps"], 0, "{s}");
}

#[test]
fn csv_has_a_header_and_one_row_per_sample() {
    let (ok, out, _) = drift(&["--nodes", "2", "--duration", "60s", "--format", "csv"]);
    assert!(ok);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("t,A_clock,A_offset,A_epsilon_ms,B_clock,B_offset,B_epsilon_ms,skew")
    );
    assert_eq!(lines.count(), 13); // 0, 5, …, 60 s
}

#[test]
fn an_asymmetric_link_leaves_cristian_off_by_half_the_asymmetry() {
    // Requests B → A take 5 ms, replies A → B 45 ms: B sets its clock as if each way took
    // 25 ms, so it ends (45 − 5) / 2 = 20 ms behind A.
    let args = [
        "--nodes",
        "2",
        "--drift-rate",
        "0ppm",
        "--sync",
        "cristian",
        "--latency",
        "5ms",
        "--link",
        "A>B=45ms",
        "--adjust",
        "step",
        "--duration",
        "10m",
    ];
    let s = summary(&args);
    assert!((f(&s, "final_skew") - 0.020).abs() < 1e-3, "{s}");
    let (ok, out, err) = drift(&args);
    assert!(ok, "{err}");
    assert!(out.contains("Link A→B: 45ms (constant)"), "{out}");
}

#[test]
fn bad_options_are_one_clear_line() {
    for (args, needle) in [
        (vec!["--nodes", "1"], "2 to 64 nodes"),
        (vec!["--latency", "15-5ms"], "minimum exceeds maximum"),
        (vec!["--jump", "Z:1s@5s"], "no node Z"),
        (vec!["--liars", "3"], "no honest node"),
        (vec!["--link", "A>Z=5ms"], "no node Z"),
        (vec!["--link", "B>B=5ms"], "B to itself is not a link"),
        (vec!["--link", "A-B=5ms"], "expected FROM>TO=LATENCY"),
        (vec!["--link", "A>B=9-1ms"], "minimum exceeds maximum"),
    ] {
        let (ok, _, err) = drift(&args);
        assert!(!ok, "{args:?} succeeded");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
