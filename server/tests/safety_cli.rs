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

#[test]
fn lease_prints_the_seed_story_and_no_fencing_corrupts() {
    let (ok, out, err) = chronoscope(&["lease", "--ttl", "5s", "--gc-pause", "10s"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with(
            "[Worker A] Acquired Lease (Token: 101)\n\
             [Worker A] GC PAUSE (10 seconds)...\n\
             [Server] Lease Expired.\n\
             [Worker B] Acquired Lease (Token: 102)\n\
             [Worker B] Write Success (Token: 102)\n\
             [Worker A] Wakes up, tries to write with Token 101...\n\
             [Server] REJECTED: Higher Token (102) already used.\n"
        ),
        "{out}"
    );
    let (ok, out, _) = chronoscope(&["lease", "--ttl", "5s", "--gc-pause", "10s", "--no-fencing"]);
    assert!(!ok);
    assert!(
        out.contains("CHECK: CORRUPTED: Worker A's write (Token 101)"),
        "{out}"
    );
    let (ok, out, _) = chronoscope(&[
        "lease",
        "--gc-pause",
        "0",
        "--drift",
        "-40",
        "--writes",
        "8",
        "--no-fencing",
        "--verbose",
    ]);
    assert!(!ok, "{out}");
    let (ok, _, err) = chronoscope(&["lease", "--ttl", "0s"]);
    assert!(!ok);
    assert_eq!(
        err,
        "error: ttl must be a finite number from 0.1 to 3600 s, got 0"
    );
}

#[test]
fn spanner_write_prints_the_seed_output_and_the_lab_is_judged() {
    let (ok, out, err) = chronoscope(&["spanner", "--write", "Key=1, Val=A"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "[TrueTime] Now: [100ms, 105ms] (Epsilon: 5ms)\n\
         [Spanner] Assigned Commit Timestamp: 105ms\n\
         [Spanner] WAIT: Sleeping for 5ms to ensure safety...\n\
         [Spanner] COMMIT SUCCESS.\n"
    );
    let (ok, out, _) = chronoscope(&["spanner", "--duration", "3s"]);
    assert!(ok, "{out}");
    assert!(out.contains("CHECK: externally consistent"), "{out}");
    let (ok, out, _) = chronoscope(&["spanner", "--duration", "3s", "--no-commit-wait"]);
    assert!(!ok);
    assert!(out.contains("CHECK: VIOLATED"), "{out}");
    let (ok, _, err) = chronoscope(&["spanner", "--write", "Key=1"]);
    assert!(!ok);
    assert_eq!(err, "error: expected \"Key=K, Val=V\", got \"Key=1\"");
}

#[test]
fn bft_holds_at_3f_plus_1_and_breaks_at_3f() {
    let args = [
        "bft",
        "--nodes",
        "4",
        "--faulty",
        "1",
        "--algorithm",
        "welch-lynch",
        "--adversary",
        "two-faced",
    ];
    let (ok, out, err) = chronoscope(&args);
    assert!(ok, "{err}");
    assert!(out.starts_with("BFT clock sync: 4 nodes (N4 Byzantine, two-faced); Welch–Lynch fault-tolerant midpoint"), "{out}");
    assert!(out.contains("HOLDS (n = 4 ≥ 3f + 1 = 4)"), "{out}");
    let (ok, out, _) = chronoscope(&["bft", "--nodes", "3", "--faulty", "1"]);
    assert!(!ok);
    assert!(out.contains("BROKEN (n = 3 < 3f + 1 = 4)"), "{out}");
    let (ok, _, err) = chronoscope(&["bft", "--nodes", "3", "--faulty", "2"]);
    assert!(!ok);
    assert_eq!(
        err,
        "error: 2 faulty of 3 nodes leaves fewer than 2 correct ones"
    );
}
