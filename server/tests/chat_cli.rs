//! `chronoscope chat`: the seed's example output through the real binary.

mod support;

fn chat(args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["chat"];
    all.extend_from_slice(args);
    support::chronoscope(&all)
}

/// The lines of one node's output section.
fn section<'a>(out: &'a str, node: &str) -> Vec<&'a str> {
    out.lines()
        .skip_while(|l| *l != format!("# Node {node} output:"))
        .skip(1)
        .take_while(|l| l.starts_with('['))
        .collect()
}

#[test]
fn pizza_prints_the_seeds_example() {
    let (ok, out, err) = chat(&["--scenario", "pizza"]);
    assert!(ok, "{err}");
    assert!(out.contains("# Node A sends \"Hi\" (TS: 1, Node: A)"));
    assert!(out.contains("# Node B sends \"Hello Alice\" (TS: 2, Node: B)"));
    assert_eq!(
        section(&out, "C")[..3],
        [
            "[PENDING] (2, B): Hello Alice",
            "[DISPLAY] (1, A): Hi",
            "[DISPLAY] (2, B): Hello Alice",
        ]
    );
    assert!(out.contains("| C | 3 | (6, B): I do! | (6, B): I do! | (5, A): Who wants pizza? | (5, A): Who wants pizza? |"));
    assert!(!out.contains("[fails]"));
}

#[test]
fn a_delay_moves_the_lag_and_why_names_the_silent_member() {
    let (ok, out, err) = chat(&[
        "--delay",
        "A>C=100ms",
        "--delay",
        "B>C=2s",
        "--why",
        "--node",
        "C",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        section(&out, "C")[0],
        "[PENDING] (1, A): Hi   # waiting for B"
    );
    assert!(!out.contains("# Node A output:"));
}

#[test]
fn a_vanished_member_is_announced_and_stops_blocking() {
    let (ok, out, err) = chat(&["--vanish", "C@0s", "--detect", "3s"]);
    assert!(ok, "{err}");
    assert!(out.contains("# Node C closes its tab"));
    assert!(!out.contains("still pending at the end"));
    assert!(out.contains("[holds] A member that leaves"));
}

#[test]
fn bad_input_is_one_clear_line() {
    let (ok, _, err) = chat(&["--delay", "B>Z=2s"]);
    assert!(!ok);
    assert_eq!(err, "error: no member named \"Z\"");
    let (ok, _, err) = chat(&["--scenario", "pasta"]);
    assert!(!ok);
    assert_eq!(
        err,
        "error: no scenario \"pasta\"; expected one of pizza, random"
    );
}
