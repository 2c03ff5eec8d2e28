//! `chronoscope kv scenario|metadata|serve` and `chronoscope counter` through the real binary.

mod support;

use support::chronoscope as run;

#[test]
fn the_seed_example_prints_the_seeds_conflict() {
    let (ok, out, err) = run(&["kv", "scenario", "seed", "--clock", "vv"]);
    assert!(ok, "{err}");
    assert!(out.contains("# Write to Node1: {\"name\": \"Alice\"}"));
    assert!(out.contains("# Write to Node2: {\"name\": \"Bob\"}"));
    assert!(
        out.contains("\"value\": [\n    \"Alice\",\n    \"Bob\"\n  ]"),
        "{out}"
    );
    assert!(out.contains("\"status\": \"CONFLICT\""));
    assert!(!out.contains("[fails]"));
}

#[test]
fn every_scenario_runs_under_both_clocks() {
    for name in [
        "dynamo",
        "pitfall1",
        "pitfall2",
        "pitfall3",
        "pitfall4",
        "explosion",
    ] {
        let (ok, out, err) = run(&["kv", "scenario", name]);
        assert!(ok, "{name}: {err}");
        assert!(out.contains(&format!("## {name} under dvv")));
        assert!(out.contains(&format!("## {name} under vv")));
    }
    let (ok, out, _) = run(&["kv", "scenario", "explosion"]);
    assert!(ok);
    assert!(out.contains("2 siblings after 20 writes"));
    assert!(out.contains("20 siblings after 20 writes"));
}

#[test]
fn metadata_table_has_a_row_per_client_count() {
    let (ok, out, err) = run(&["kv", "metadata"]);
    assert!(ok, "{err}");
    for c in ["| 2 |", "| 4 |", "| 8 |", "| 16 |", "| 32 |", "| 64 |"] {
        assert!(out.contains(c), "{out}");
    }
}

#[test]
fn bad_flags_are_one_clear_line() {
    let (ok, _, err) = run(&["kv", "serve", "--clock", "lamport"]);
    assert!(!ok);
    assert_eq!(err, "error: --clock must be dvv or vv, got \"lamport\"");
    let (ok, _, err) = run(&["kv", "serve", "--nodes", "3", "--replicas", "4"]);
    assert!(!ok);
    assert_eq!(err, "error: --replicas must be 1 to --nodes (3), got 4");
    let (ok, _, err) = run(&["kv", "scenario", "nope"]);
    assert!(!ok);
    assert!(err.starts_with("error: no scenario \"nope\""));
}

#[test]
fn counter_converges_after_the_partition() {
    let (ok, out, err) = run(&[
        "counter",
        "--replicas",
        "4",
        "--partition",
        "2",
        "--ops",
        "12",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("| R0 |") && out.contains("| R3 |"));
    assert!(out.contains("[holds] Replicas that received the same updates"));
    assert!(out.contains("[holds] Merge is commutative"));
    let (ok, _, err) = run(&["counter", "--kind", "lww"]);
    assert!(!ok);
    assert_eq!(err, "error: --kind must be g or pn, got \"lww\"");
}
