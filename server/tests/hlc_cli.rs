//! `chronoscope hlc now` through the real binary: a state file left by a run whose clock was
//! ten minutes ahead (the same as setting the system clock back ten minutes since), and a
//! remote timestamp beyond the maximum offset.

use std::time::{SystemTime, UNIX_EPOCH};

use support::chronoscope;

mod support;

fn hlc(args: &[&str]) -> (bool, String, String) {
    chronoscope(&[&["hlc", "now"], args].concat())
}

/// The `l.c` in brackets at the end of a line.
fn stamp(line: &str) -> (u64, u16) {
    let inner = line.rsplit('[').next().unwrap().trim_end_matches(']');
    let (l, c) = inner.split_once('.').unwrap();
    (l.parse().unwrap(), c.parse().unwrap())
}

#[test]
fn timestamps_continue_after_the_state_file_though_the_clock_is_behind_it() {
    let dir = std::env::temp_dir().join(format!("chronoscope-hlc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("hlc.json");
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let ahead = now_ms + 10 * 60_000;
    std::fs::write(&state, format!("{{\"l\":{ahead},\"c\":41}}")).unwrap();
    let (ok, out, err) = hlc(&["--state", state.to_str().unwrap(), "--count", "3"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with("TS: ") && lines[0].contains("Logical: 42"),
        "{out}"
    );
    let stamps: Vec<(u64, u16)> = lines.iter().map(|l| stamp(l)).collect();
    assert_eq!(stamps, [(ahead, 42), (ahead, 43), (ahead, 44)]);
    // The state file now holds the last one; the next run continues from it.
    let (ok, out, _) = hlc(&["--state", state.to_str().unwrap()]);
    assert!(ok);
    assert_eq!(stamp(out.trim()), (ahead, 45));
    // A remote timestamp ten minutes ahead is beyond the default 500 ms: refused, one line.
    let remote = format!("{ahead}.0");
    let (ok, _, err) = hlc(&["--receive", &remote]);
    assert!(!ok);
    assert!(
        err.starts_with("error: remote timestamp ") && err.contains("maximum offset of 500 ms"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
