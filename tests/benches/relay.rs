//! Relay benchmark over real WebSockets on loopback: one sender, 50 receivers.
//!
//! 1. Zero delay: messages/s delivered (sender blasting) and the latency the relay adds
//!    (sender paced at 500 msgs/s), our relay side by side with a *bare fan-out relay* — the
//!    baseline: tokio-tungstenite, forward every text frame to every other socket, no
//!    parsing, no storage, no delay machinery — and the ratio.
//! 2. 100 ms configured delay on every link, 500 msgs/s: p50/p99 error of the actual delay.
//!
//! Client and server share this process and the machine's cores; run with
//! `cargo bench -p chronoscope-e2e --bench relay`.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chronoscope::protocol::ServerFrame;
use chronoscope_e2e::{ws::Client, Scratch, TestServer};
use futures_util::{SinkExt, StreamExt};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_tungstenite::{accept_async, connect_async, tungstenite::Message};

const RECEIVERS: usize = 50;
const BLAST: usize = 2_000;
const PACED: usize = 1_500;
const RATE: u64 = 500;

/// What a receiver measured: one latency (µs) per message, and when it got the last one.
type Received = (Vec<u64>, Instant);

/// Our relay or the baseline.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    Chronoscope,
    Bare,
}

/// Receivers count `n` messages each, recording `now - sent` from the payload's timestamp.
async fn receiver(
    url: String,
    target: Target,
    base: Instant,
    n: usize,
    ready: mpsc::Sender<()>,
) -> Received {
    let mut ws = match target {
        Target::Chronoscope => Client::join(&url, "rx", None).await.0.into_inner(),
        Target::Bare => connect_async(&url).await.unwrap().0,
    };
    ready.send(()).await.unwrap();
    let mut lat = Vec::with_capacity(n);
    while lat.len() < n {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("receiver socket ended")
        };
        let sent_us = match target {
            Target::Chronoscope => match ServerFrame::from_json(t.as_str()).unwrap() {
                ServerFrame::Op { payload, .. } => payload.to_value()["t"].as_u64().unwrap(),
                _ => continue,
            },
            Target::Bare => serde_json::from_str::<serde_json::Value>(t.as_str()).unwrap()["t"]
                .as_u64()
                .unwrap(),
        };
        lat.push((base.elapsed().as_micros() as u64).saturating_sub(sent_us));
    }
    (lat, Instant::now())
}

/// Send `n` messages, paced at `rate` per second (0: as fast as possible).
async fn sender(ws: &mut Client, target: Target, base: Instant, n: usize, rate: u64) {
    let mut tick = (rate > 0).then(|| {
        let mut i = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        i
    });
    for seq in 1..=n as u64 {
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        let payload =
            serde_json::json!({ "t": base.elapsed().as_micros() as u64, "ins": [seq, "x"] });
        match target {
            Target::Chronoscope => ws.op(seq, payload).await,
            Target::Bare => ws.send_raw(&payload.to_string()).await,
        }
    }
}

/// Run one scenario: `RECEIVERS` receivers, one sender; returns all latencies and the
/// delivery rate (messages delivered per second over all receivers).
async fn scenario(
    url: &str,
    target: Target,
    n: usize,
    rate: u64,
    delay_ms: u32,
) -> (Vec<u64>, f64) {
    let base = Instant::now();
    let (ready_tx, mut ready) = mpsc::channel(RECEIVERS);
    let mut rx = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..RECEIVERS {
        rx.push(tokio::spawn(receiver(
            url.to_owned(),
            target,
            base,
            n,
            ready_tx.clone(),
        )));
    }
    for _ in 0..RECEIVERS {
        ready.recv().await.unwrap();
    }
    let mut tx = match target {
        Target::Chronoscope => {
            let (mut c, w) = Client::join(url, "tx", None).await;
            for m in &w.members {
                if m.replica != w.replica {
                    ids.push(m.replica);
                }
            }
            if delay_ms > 0 {
                for &to in &ids {
                    c.set_link(w.replica, to, delay_ms, 0, false).await;
                    c.matrix().await;
                }
            }
            c
        }
        Target::Bare => Client::connect(url).await,
    };
    let start = Instant::now();
    sender(&mut tx, target, base, n, rate).await;
    let mut all = Vec::with_capacity(n * RECEIVERS);
    let mut last = start;
    for r in rx {
        let (lat, done) = r.await.unwrap();
        all.extend(lat);
        last = last.max(done);
    }
    tx.close().await;
    let rate = (n * RECEIVERS) as f64 / (last - start).as_secs_f64();
    (all, rate)
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

/// The baseline: forward every text frame to every other socket.
async fn bare_relay() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    type Peers = Arc<Mutex<Vec<(usize, mpsc::UnboundedSender<Message>)>>>;
    let peers: Peers = Arc::default();
    tokio::spawn(async move {
        for id in 0.. {
            let (tcp, _) = listener.accept().await.unwrap();
            let peers = peers.clone();
            tokio::spawn(async move {
                let ws = accept_async(tcp).await.unwrap();
                let (mut sink, mut stream) = ws.split();
                let (tx, mut rx) = mpsc::unbounded_channel();
                peers.lock().unwrap().push((id, tx));
                tokio::spawn(async move {
                    while let Some(m) = rx.recv().await {
                        if sink.send(m).await.is_err() {
                            break;
                        }
                    }
                });
                while let Some(Ok(m)) = stream.next().await {
                    if m.is_text() {
                        for (peer, tx) in peers.lock().unwrap().iter() {
                            if *peer != id {
                                let _ = tx.send(m.clone());
                            }
                        }
                    }
                }
            });
        }
    });
    format!("ws://{addr}/")
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dist = Scratch::new("bench-dist");
        std::fs::write(dist.0.join("index.html"), "<!doctype html>").unwrap();
        let data = Scratch::new("bench-data");
        let server = TestServer::start(dist.0.clone(), data.0.clone(), None).await;
        let bare = bare_relay().await;
        println!("relay benchmark: 1 sender, {RECEIVERS} receivers, loopback, {} cores shared by clients and server",
            std::thread::available_parallelism().map_or(1, |n| n.get()));
        println!();
        println!("| scenario | relay | delivered msgs/s | p50 latency ms | p99 latency ms |");
        println!("|---|---|---:|---:|---:|");
        let mut rates = Vec::new();
        let mut p50s = Vec::new();
        for (target, name, url) in [
            (Target::Chronoscope, "chronoscope", server.ws_url("/ws/bench-blast")),
            (Target::Bare, "bare fan-out", bare.clone()),
        ] {
            let (mut lat, rate) = scenario(&url, target, BLAST, 0, 0).await;
            lat.sort_unstable();
            println!("| zero delay, {BLAST} msgs blasted | {name} | {rate:.0} | {:.2} | {:.2} |", pct(&lat, 0.5), pct(&lat, 0.99));
            rates.push(rate);
        }
        for (target, name, url) in [
            (Target::Chronoscope, "chronoscope", server.ws_url("/ws/bench-paced")),
            (Target::Bare, "bare fan-out", bare.clone()),
        ] {
            let (mut lat, rate) = scenario(&url, target, PACED, RATE, 0).await;
            lat.sort_unstable();
            println!("| zero delay, {RATE} msgs/s paced | {name} | {rate:.0} | {:.2} | {:.2} |", pct(&lat, 0.5), pct(&lat, 0.99));
            p50s.push(pct(&lat, 0.5));
        }
        println!();
        println!("throughput ratio chronoscope / bare fan-out: {:.2}", rates[0] / rates[1]);
        println!("paced p50 latency ratio chronoscope / bare fan-out: {:.2}", p50s[0] / p50s[1]);
        println!();
        let (lat, _) = scenario(&server.ws_url("/ws/bench-delay"), Target::Chronoscope, PACED, RATE, 100).await;
        let mut err: Vec<i64> = lat.iter().map(|&us| us as i64 - 100_000).collect();
        err.sort_unstable();
        let at = |p: f64| err[((err.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
        println!("100 ms configured delay, {RATE} msgs/s, {PACED} msgs x {RECEIVERS} receivers:");
        println!("| error of the actual delay | min | p50 | p99 | max |");
        println!("|---|---:|---:|---:|---:|");
        println!("| ms | {:.2} | {:.2} | {:.2} | {:.2} |", at(0.0), at(0.5), at(0.99), at(1.0));
        server.stop().await;
        println!();
        // What a durable commit costs on this disk: the floor of the relay's ack latency.
        let store_dir = Scratch::new("bench-store");
        let store = chronoscope_server::relay::store::Store::open(&store_dir.0).unwrap();
        let mut commits: Vec<u64> = (0..200u64)
            .map(|i| {
                let op = chronoscope_server::relay::store::StoredOp { from: 1, seq: i, payload: serde_json::json!({ "ins": [i, "x"] }).into() };
                let t = Instant::now();
                store.append("bench", i, &[op], &[]).unwrap();
                t.elapsed().as_micros() as u64
            })
            .collect();
        commits.sort_unstable();
        println!("redb durable commit of one op (200 commits): p50 {:.2} ms, p99 {:.2} ms", pct(&commits, 0.5), pct(&commits, 0.99));
    });
}
