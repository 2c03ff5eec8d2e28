//! `kill -9` the real `chronoscope serve` process while a tab streams ops, restart it on the
//! same data directory: every acknowledged op is still there, and re-sending everything
//! stores nothing twice.

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use chronoscope::protocol::{ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::{connect_async, tungstenite::Message};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn scratch(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("chronoscope-kill9-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Start the binary on a free port; returns the process and its `host:port`.
fn start(dist: &std::path::Path, data: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chronoscope"))
        .args(["serve", "--addr", "127.0.0.1:0", "--dist"])
        .arg(dist)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chronoscope serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read the banner");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in banner {line:?}"))
        .to_owned();
    (child, addr)
}

async fn send(ws: &mut Ws, frame: &ClientFrame) {
    let text = serde_json::to_string(frame).unwrap();
    ws.send(Message::Text(text.into())).await.unwrap();
}

/// The next server frame, or `None` when the socket ends (or nothing comes for 10 s).
async fn next(ws: &mut Ws) -> Option<ServerFrame> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                return Some(serde_json::from_str(t.as_str()).unwrap())
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) | Err(_) => return None,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Connect and say hello; returns the socket, the welcome's replica and token, and the
/// catch-up as `(from, seq)` pairs.
async fn join(addr: &str, resume: Option<String>) -> (Ws, u32, String, Vec<(u32, u64)>) {
    let (mut ws, _) = connect_async(format!("ws://{addr}/ws/durable"))
        .await
        .unwrap();
    send(
        &mut ws,
        &ClientFrame::Hello {
            name: "k".into(),
            colour: "#000000".into(),
            resume,
        },
    )
    .await;
    let (mut replica, mut token, mut ops) = (0, String::new(), Vec::new());
    loop {
        match next(&mut ws).await.expect("catch-up") {
            ServerFrame::Welcome {
                replica: r,
                token: t,
                ..
            } => (replica, token) = (r, t),
            ServerFrame::Op { from, seq, .. } => ops.push((from, seq)),
            ServerFrame::CaughtUp { .. } => break,
            _ => {}
        }
    }
    (ws, replica, token, ops)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_op_and_re_sends_are_stored_once() {
    let dist = scratch("dist");
    std::fs::write(dist.join("index.html"), "<!doctype html>").unwrap();
    let data = scratch("data");
    const OPS: u64 = 3000;

    let (mut server, addr) = start(&dist, &data);
    let (mut ws, replica, token, _) = join(&addr, None).await;
    for seq in 1..=OPS {
        send(
            &mut ws,
            &ClientFrame::Op {
                seq,
                payload: serde_json::json!({ "seq": seq }).into(),
                from: None,
            },
        )
        .await;
    }
    // Kill the relay once 200 ops are acknowledged: most of the rest are still in flight.
    let mut acked = BTreeSet::new();
    while acked.len() < 200 {
        match next(&mut ws).await.expect("acks keep coming") {
            ServerFrame::Ack { seq, .. } => {
                acked.insert(seq);
            }
            f => panic!("unexpected {f:?}"),
        }
    }
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    drop(ws);

    let (mut server, addr) = start(&dist, &data);
    let (mut ws, replica2, _, stored) = join(&addr, Some(token)).await;
    assert_eq!(replica2, replica, "the resume token survived the crash");
    let stored_seqs: BTreeSet<u64> = stored
        .iter()
        .map(|(from, seq)| {
            assert_eq!(*from, replica);
            *seq
        })
        .collect();
    assert_eq!(stored_seqs.len(), stored.len(), "no op stored twice");
    eprintln!(
        "acked before the kill: {}, stored after restart: {}",
        acked.len(),
        stored.len()
    );
    let lost: Vec<_> = acked.difference(&stored_seqs).collect();
    assert!(
        lost.is_empty(),
        "acknowledged ops lost in the crash: {lost:?}"
    );

    // The tab re-sends everything it sent; the relay stores each op once.
    for seq in 1..=OPS {
        send(
            &mut ws,
            &ClientFrame::Op {
                seq,
                payload: serde_json::json!({ "seq": seq }).into(),
                from: None,
            },
        )
        .await;
    }
    let mut duplicates = 0;
    for _ in 1..=OPS {
        match next(&mut ws).await.expect("an ack per op") {
            ServerFrame::Ack { seq, duplicate, .. } => {
                assert_eq!(duplicate, stored_seqs.contains(&seq), "op {seq}");
                duplicates += usize::from(duplicate);
            }
            f => panic!("unexpected {f:?}"),
        }
    }
    assert_eq!(duplicates, stored.len());
    let (_ws, _, _, log) = join(&addr, None).await;
    let seqs: Vec<u64> = log.iter().map(|(_, s)| *s).collect();
    assert_eq!(seqs.len() as u64, OPS);
    assert_eq!(
        seqs.iter().copied().collect::<BTreeSet<_>>().len() as u64,
        OPS
    );
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dist);
    let _ = std::fs::remove_dir_all(&data);
}
