//! The `chronoscope lamport` and `chronoscope trace` commands, run as the real binary.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chronoscope"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chronoscope-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn lamport_writes_logs_plots_report_and_a_legal_trace() {
    let out = scratch("lamport");
    let o = bin()
        .args([
            "lamport",
            "--experiment",
            "4",
            "--duration",
            "20",
            "--seed",
            "3",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("| exp-04 | [1, 3, 6] | 70 % | simulated |"),
        "{stdout}"
    );
    let dir = out.join("exp-04");
    for f in [
        "machine-0.log",
        "machine-1.log",
        "machine-2.log",
        "clocks.svg",
        "queues.svg",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.starts_with("# Experiment 4: Big clock differences"));
    assert!(report.contains("M0 (1/s) cannot keep up"), "{report}");

    let log = dir.join("trace.shiviz.log");
    let o = bin().args(["trace", "check"]).arg(&log).output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("ok: "));
    let o = bin()
        .args(["trace", "mermaid", "--count", "5"])
        .arg(&log)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.starts_with("sequenceDiagram\n    participant n0 as M0\n"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn trace_check_explains_an_illegal_log_and_fails() {
    let dir = scratch("check");
    let log = dir.join("bad.log");
    std::fs::write(&log, "start\na {\"a\":1}\nagain\na {\"a\":1}\n").unwrap();
    let o = bin().args(["trace", "check"]).arg(&log).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("goes backwards or stalls"), "{text}");
    let o = bin()
        .args(["trace", "check"])
        .arg(dir.join("missing.log"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("error: cannot read"));
    let o = bin()
        .args(["lamport", "--experiment", "12"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no experiment 12"));
    let _ = std::fs::remove_dir_all(&dir);
}
