//! Helpers shared by the NTP integration tests: child processes that die with the test, and
//! `chronoscope ntp serve` on a free port.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
};

/// A child process killed on drop.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `chronoscope ntp serve ARGS --addr 127.0.0.1:0`, and the address its banner names.
pub fn ntp_serve(args: &[&str]) -> (Running, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chronoscope"))
        .args(["ntp", "serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chronoscope ntp serve");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("udp://")
        .nth(1)
        .and_then(|r| r.split(": ").next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (Running(child), addr)
}

/// Runs `chronoscope ARGS`: success, stdout, trimmed stderr.
pub fn chronoscope(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chronoscope"))
        .args(args)
        .output()
        .expect("run chronoscope");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}
