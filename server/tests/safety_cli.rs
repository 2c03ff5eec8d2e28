//! The safety labs' subcommands through the real binary: `snapshot` (and, as they land,
//! `lease`, `spanner`, `bft`) print the seed's example output and fail when the checker finds
//! a violation.

use support::chronoscope;

mod support;

#[test]
fn snapshot_prints_the_seed_example() {
    let (ok, out, err) = chronoscope(&["snapshot"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "Snapshot Initiated...\nNode 1 State: $50\nNode 2 State: $30\nNode 3 State: $20\n\
         In-flight (2->1): $10\nTOTAL: $110 (Matches initial $110)\n\
         SUCCESS: Consistent Global State captured.\n"
    );
}

#[test]
fn snapshot_without_fifo_fails_and_lai_yang_fixes_it() {
    let (ok, out, _) = chronoscope(&["snapshot", "--nodes", "5", "--seed", "3", "--no-fifo"]);
    assert!(!ok);
    assert!(
        out.contains("FAILURE: Inconsistent Global State captured."),
        "{out}"
    );
    let (ok, out, _) = chronoscope(&[
        "snapshot",
        "--nodes",
        "5",
        "--seed",
        "3",
        "--no-fifo",
        "--algorithm",
        "lai-yang",
        "--concurrent",
    ]);
    assert!(ok, "{out}");
    assert_eq!(out.matches("SUCCESS").count(), 2, "{out}");
    assert_eq!(out.matches("TOTAL: $500 (Matches initial $500)").count(), 2);
    let (ok, _, err) = chronoscope(&["snapshot", "--nodes", "12"]);
    assert!(!ok);
    assert_eq!(err.trim(), "error: the lab runs 2 to 8 nodes, got 12");
}

