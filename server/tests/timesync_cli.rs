//! `chronoscope timesync serve|cluster` through the real binary: three node processes on
//! loopback gRPC bring a skewed one back to true time; the cluster prints its tables; bad
//! flags fail with one line.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use support::{chronoscope, Running};

mod support;

/// A free loopback port (bound, read, released: the node binds it again at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The "offset to true time X ms" of a tracking line.
fn offset_ms(line: &str) -> Option<f64> {
    line.split("offset to true time ")
        .nth(1)?
        .split(" ms")
        .next()?
        .parse()
        .ok()
}

#[test]
fn three_node_processes_bring_the_skewed_one_to_true_time() {
    let dir = std::env::temp_dir().join(format!("chronoscope-timesync-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("timesync.toml");
    std::fs::write(
        &config,
        "sync_interval = 0.3\ntimeout = 0.5\nmin_peers = 2\nmax_peers = 2\n",
    )
    .unwrap();
    let ids = ["A", "B", "C"];
    let ports: Vec<u16> = ids.iter().map(|_| free_port()).collect();
    let mut children = Vec::new();
    let mut b_stdout = None;
    for (i, id) in ids.iter().enumerate() {
        let peers: Vec<String> = ids
            .iter()
            .zip(&ports)
            .filter(|(p, _)| *p != id)
            .map(|(p, port)| format!("{p}=127.0.0.1:{port}"))
            .collect();
        let skew = if *id == "B" { "150" } else { "0" };
        let mut child = Command::new(env!("CARGO_BIN_EXE_chronoscope"))
            .args(["timesync", "serve", "--id", id])
            .args(["--addr", &format!("127.0.0.1:{}", ports[i])])
            .args(["--peers", &peers.join(",")])
            .args(["--config", config.to_str().unwrap()])
            .args(["--simulate-skew", skew, "--report", "300ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chronoscope timesync serve");
        if *id == "B" {
            b_stdout = child.stdout.take();
        }
        children.push(Running(child));
    }
    let (tx, rx) = mpsc::channel();
    let reader = BufReader::new(b_stdout.unwrap());
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let banner = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(
        banner.starts_with("timesync node B serving TimeSyncService on 127.0.0.1:"),
        "{banner}"
    );
    let mut seen = Vec::new();
    let first_offset = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no tracking line:\n{}", seen.join("\n")));
        if let Some(o) = offset_ms(&line) {
            break o;
        }
        seen.push(line);
    };
    assert!(first_offset > 1.0, "B starts ahead: {first_offset}");
    // Wait (generously) until B reports itself synced within 5 ms of true time.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("B keeps reporting");
        if line.starts_with("tracking B:")
            && line.contains(", synced (")
            && offset_ms(&line).is_some_and(|o| o.abs() < 5.0)
        {
            break;
        }
        seen.push(line);
        assert!(
            std::time::Instant::now() < deadline,
            "B never converged:\n{}",
            seen[seen.len().saturating_sub(20)..].join("\n")
        );
    }
    drop(children);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_cluster_prints_sources_tables_and_tracking_lines() {
    let (ok, out, err) = chronoscope(&[
        "timesync",
        "cluster",
        "--nodes",
        "3",
        "--simulate-skew",
        "A=+40",
        "--duration",
        "2s",
        "--report",
        "1s",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("timesync cluster: 3 nodes on loopback gRPC (A=127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("S Peer"), "{out}");
    for id in ["A", "B", "C"] {
        assert!(
            out.contains(&format!("tracking {id}: offset to true time ")),
            "{out}"
        );
    }
    assert!(out.contains("summary: "), "{out}");
}

#[test]
fn bad_flags_fail_with_one_line() {
    let (ok, _, err) = chronoscope(&["timesync", "serve", "--id", "A", "--peers", "B"]);
    assert!(!ok && err.contains("expected ID=HOST:PORT"), "{err}");
    let (ok, _, err) = chronoscope(&[
        "timesync",
        "serve",
        "--id",
        "A",
        "--peers",
        "A=127.0.0.1:1",
        "--addr",
        "127.0.0.1:0",
    ]);
    assert!(
        !ok && err.contains("named twice or is the node itself"),
        "{err}"
    );
    let (ok, _, err) = chronoscope(&["timesync", "cluster", "--simulate-skew", "Q=5"]);
    assert!(!ok && err.contains("no node \"Q\""), "{err}");
}

#[test]
fn serve_metrics_flag_serves_the_node_s_metrics() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chronoscope"))
        .args(["timesync", "serve", "--id", "A", "--addr", "127.0.0.1:0"])
        .args(["--metrics", "127.0.0.1:0", "--report", "0s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chronoscope timesync serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _running = Running(child);
    let metrics_line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("metrics on http://"))
        .expect("the metrics address is printed");
    let addr = metrics_line
        .trim_start_matches("metrics on http://")
        .trim_end_matches("/metrics");
    // A plain HTTP/1.0 request, read to the end (the server closes).
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    assert!(
        response.contains("content-type: text/plain; version=0.0.4"),
        "{response}"
    );
    assert!(
        response.contains("# TYPE timesync_syncs_total counter\n"),
        "{response}"
    );
    assert!(
        response.contains("timesync_syncs_total{node=\"A\"} 0\n"),
        "{response}"
    );
}
