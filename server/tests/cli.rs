//! `chronoscope serve` refuses bad configuration in one clear line and a non-zero exit.

use std::process::Command;

fn scratch(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("chronoscope-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn serve(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chronoscope"))
        .arg("serve")
        .args(args)
        .output()
        .expect("run chronoscope");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

fn dist(tag: &str) -> std::path::PathBuf {
    let d = scratch(tag);
    std::fs::write(d.join("index.html"), "<!doctype html>").unwrap();
    d
}

#[test]
fn missing_dist_is_one_clear_line() {
    let data = scratch("data1");
    let (ok, err) = serve(&[
        "--addr",
        "127.0.0.1:0",
        "--dist",
        "/nonexistent/chronoscope-dist",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("front end not found"), "{err}");
}

#[test]
fn unwritable_data_dir_is_one_clear_line() {
    let base = scratch("data2");
    let file = base.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let bad = file.join("sub");
    let d = dist("dist2");
    let (ok, err) = serve(&[
        "--addr",
        "127.0.0.1:0",
        "--dist",
        d.to_str().unwrap(),
        "--data-dir",
        bad.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not writable"), "{err}");
}

#[test]
fn taken_port_is_one_clear_line() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let d = dist("dist3");
    let data = scratch("data3");
    let (ok, err) = serve(&[
        "--addr",
        &addr,
        "--dist",
        d.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot listen on"), "{err}");
}
