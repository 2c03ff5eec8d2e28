//! Rooms of the relay over real WebSockets: delay matrix, cut links, presence, resume,
//! forged senders, bad input, durability across a restart, clock probes with path delays.
//!
//! Every test about time runs the real server and its real clients on tokio's paused clock
//! (`start_paused`): time moves only when every task waits on a timer, so a 300 ms link
//! delivers at exactly 300 ms however loaded the machine is, and the assertions are exact.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use chronoscope::protocol::{ClientFrame, Link, ServerFrame, MAX_FRAME_BYTES};
use chronoscope_e2e::{
    ws::{Client, Welcome},
    Scratch, TestServer,
};
use chronoscope_server::relay::connection::{HARD_FRAME_LIMIT, MAX_PROBES_IN_FLIGHT};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// A server on a throwaway front end and data directory (both kept by the returned guards).
async fn server() -> (TestServer, Scratch, Scratch) {
    let dist = Scratch::new("dist");
    std::fs::write(dist.0.join("index.html"), "<!doctype html><title>t</title>").unwrap();
    let data = Scratch::new("data");
    let s = TestServer::start(dist.0.clone(), data.0.clone(), None).await;
    (s, dist, data)
}

async fn join(s: &TestServer, room: &str, name: &str) -> (Client, Welcome) {
    Client::join(&s.ws_url(&format!("/ws/{room}")), name, None).await
}

/// Read frames for `wait` (on the test's clock) and fail if any of them is an op.
async fn no_op_within(c: &mut Client, wait: Duration) {
    let end = Instant::now() + wait;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match c.next_within(left).await {
            Some(f @ ServerFrame::Op { .. }) => panic!("op delivered too early: {f:?}"),
            Some(_) => {}
            None => return,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_300_ms_link_delivers_at_300_ms_and_slows_no_other_link() {
    let (s, _d, _data) = server().await;
    let (mut a, wa) = join(&s, "delay", "a").await;
    let (mut b, wb) = join(&s, "delay", "b").await;
    let (mut c, _) = join(&s, "delay", "c").await;
    a.set_link(wa.replica, wb.replica, 300, 0, false).await;
    let links = b.matrix().await;
    assert_eq!(
        links,
        vec![Link {
            from: wa.replica,
            to: wb.replica,
            delay_ms: 300,
            jitter_ms: 0,
            cut: false
        }]
    );
    let sent = Instant::now();
    a.op(1, json!("hello")).await;
    // The undelayed link a → c delivers at once, while a → b still holds the op.
    let (from, seq, payload) = c.next_op().await;
    assert_eq!((from, seq, payload), (wa.replica, 1, json!("hello")));
    assert_eq!(sent.elapsed().as_millis(), 0, "a → c has no delay");
    let (from, seq, _) = b.next_op().await;
    assert_eq!((from, seq), (wa.replica, 1));
    assert_eq!(
        sent.elapsed().as_millis(),
        300,
        "a → b delivers at its delay"
    );
    // The reverse link b → a has no delay.
    let sent = Instant::now();
    b.op(1, json!("back")).await;
    assert_eq!(a.next_op().await.0, wb.replica);
    assert_eq!(sent.elapsed().as_millis(), 0, "b → a has no delay");
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_cut_link_holds_its_ops_and_delivers_them_in_order_when_healed() {
    let (s, _d, _data) = server().await;
    let (mut a, wa) = join(&s, "cut", "a").await;
    let (mut b, wb) = join(&s, "cut", "b").await;
    a.set_link(wa.replica, wb.replica, 0, 0, true).await;
    assert!(b.matrix().await[0].cut);
    for seq in 1..=5 {
        a.op(seq, json!({ "n": seq })).await;
    }
    for seq in 1..=5 {
        a.ack(seq).await;
    }
    // Held for as long as the link stays cut (here 10 s, well inside the keepalive).
    no_op_within(&mut b, Duration::from_secs(10)).await;
    // Any tab may heal it; the held ops arrive at once, in order.
    let healed = Instant::now();
    b.set_link(wa.replica, wb.replica, 0, 0, false).await;
    for seq in 1..=5 {
        assert_eq!(b.next_op().await, (wa.replica, seq, json!({ "n": seq })));
    }
    assert_eq!(healed.elapsed().as_millis(), 0);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn jitter_never_reorders_a_link() {
    let (s, _d, _data) = server().await;
    let (mut a, wa) = join(&s, "jitter", "a").await;
    let (mut b, wb) = join(&s, "jitter", "b").await;
    a.set_link(wa.replica, wb.replica, 10, 150, false).await;
    b.matrix().await;
    let sent = Instant::now();
    for seq in 1..=30 {
        a.op(seq, json!(seq)).await;
    }
    for seq in 1..=30 {
        assert_eq!(b.next_op().await.1, seq);
    }
    let took = sent.elapsed();
    assert!(
        (10..=160).contains(&took.as_millis()),
        "the last op is due within delay + jitter, took {took:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn every_tab_sees_the_same_matrix_live_and_newcomers_get_it() {
    let (s, _d, _data) = server().await;
    let (mut a, wa) = join(&s, "matrix", "a").await;
    let (mut b, wb) = join(&s, "matrix", "b").await;
    let (mut c, _) = join(&s, "matrix", "c").await;
    let link = Link {
        from: wa.replica,
        to: wb.replica,
        delay_ms: 1200,
        jitter_ms: 50,
        cut: false,
    };
    c.send(&ClientFrame::SetLink(link)).await;
    for t in [&mut a, &mut b, &mut c] {
        assert_eq!(t.matrix().await, vec![link]);
    }
    let (_d2, wd) = join(&s, "matrix", "d").await;
    assert_eq!(wd.matrix, vec![link]);
    // Resetting a link to the default removes it from the matrix.
    c.set_link(wa.replica, wb.replica, 0, 0, false).await;
    assert_eq!(a.matrix().await, vec![]);
    // Invalid links are refused with an error and change nothing.
    c.set_link(wa.replica, wa.replica, 5, 0, false).await;
    assert!(matches!(
        c.until(|f| matches!(f, ServerFrame::Error { .. })).await,
        ServerFrame::Error { .. }
    ));
    c.set_link(wa.replica, wb.replica, 999_999, 0, false).await;
    assert!(matches!(
        c.until(|f| matches!(f, ServerFrame::Error { .. })).await,
        ServerFrame::Error { .. }
    ));
    s.stop().await;
}

#[tokio::test]
async fn links_only_join_replicas_the_room_issued() {
    let (s, _d, _data) = server().await;
    let (mut a, wa) = join(&s, "links", "a").await;
    let (_other, wo) = join(&s, "links-elsewhere", "o").await;
    // Replica ids of no tab (and of a tab in another room) are refused, and nothing is
    // broadcast: the matrix a newcomer gets is empty.
    for to in [wa.replica + 1000, u32::MAX, wo.replica + 1] {
        a.set_link(wa.replica, to, 100, 0, false).await;
        match a.until(|f| !matches!(f, ServerFrame::Joined { .. })).await {
            ServerFrame::Error { message } => {
                assert!(message.contains("not in this room"), "{message}")
            }
            f => panic!("link to {to} accepted: {f:?}"),
        }
    }
    let (_b, wb) = join(&s, "links", "b").await;
    assert_eq!(wb.matrix, vec![]);
    // Between issued replicas it is accepted, also while one end is away.
    a.set_link(wb.replica, wa.replica, 100, 0, false).await;
    assert_eq!(a.matrix().await.len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn presence_announces_joins_and_leaves() {
    let (s, _d, _data) = server().await;
    let (mut a, wa) = join(&s, "presence", "Ada").await;
    assert_eq!(wa.members.len(), 1);
    assert_eq!(wa.members[0].name, "Ada");
    let (b, wb) = join(&s, "presence", "Bob 😀").await;
    let names: Vec<&str> = wb.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["Ada", "Bob 😀"]);
    match a.until(|f| matches!(f, ServerFrame::Joined { .. })).await {
        ServerFrame::Joined { member } => {
            assert_eq!(
                (member.replica, member.name.as_str()),
                (wb.replica, "Bob 😀")
            )
        }
        _ => unreachable!(),
    }
    b.close().await;
    assert_eq!(
        a.until(|f| matches!(f, ServerFrame::Left { .. })).await,
        ServerFrame::Left {
            replica: wb.replica
        }
    );
    // Rooms are separate.
    let (_c, wc) = join(&s, "presence-2", "Cy").await;
    assert_eq!(wc.members.len(), 1);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_pinged_then_dropped_while_an_answering_one_stays() {
    let dist = Scratch::new("dist");
    std::fs::write(dist.0.join("index.html"), "<!doctype html><title>t</title>").unwrap();
    let data = Scratch::new("data");
    let keepalive = Duration::from_millis(300);
    let s = TestServer::start_with_keepalive(dist.0.clone(), data.0.clone(), None, keepalive).await;
    let url = s.ws_url("/ws/keepalive");
    let (mut alive, _) = Client::join(&url, "reading", None).await;
    // A tab whose machine went to sleep: its socket stays open, but nothing reads it, so it
    // never answers the relay's ping.
    let (silent, ws) = Client::join(&url, "asleep", None).await;
    let started = Instant::now();
    // `alive` keeps reading (tungstenite answers pings as it reads) and sees the other leave:
    // exactly one period of silence earns the ping, as long again without an answer the close.
    assert_eq!(
        alive.until(|f| matches!(f, ServerFrame::Left { .. })).await,
        ServerFrame::Left {
            replica: ws.replica
        }
    );
    assert_eq!(started.elapsed().as_millis(), (keepalive * 2).as_millis());
    // Quiet for several keepalive periods, answering pings all along: still in the room.
    assert!(alive.next_within(keepalive * 5).await.is_none());
    alive.op(1, json!("still here")).await;
    let (_, duplicate) = alive.ack(1).await;
    assert!(!duplicate);
    // What the sleeping tab finds when it wakes: a ping, then the end of the connection.
    let mut socket = silent.into_inner();
    let mut pinged = false;
    loop {
        match socket.next().await {
            Some(Ok(Message::Ping(_))) => pinged = true,
            Some(Ok(Message::Text(_))) => assert!(!pinged, "no frames after the ping"),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            Some(Ok(other)) => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        pinged,
        "the silent connection was pinged before it was dropped"
    );
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn resume_gives_a_tab_its_replica_id_back_but_never_another_tabs() {
    let (s, _d, _data) = server().await;
    let url = s.ws_url("/ws/resume");
    let (mut a, wa) = Client::join(&url, "a", None).await;
    let (mut watcher, ww) = Client::join(&url, "w", None).await;
    a.op(1, json!("one")).await;
    a.ack(1).await;
    assert_eq!(watcher.next_op().await, (wa.replica, 1, json!("one")));
    // Reconnect at once, as a reloading tab does: its new socket may overtake the old one's
    // close, and the relay lets the resume wait for it.
    a.close().await;
    let (mut a2, wa2) = Client::join(&url, "a", Some(&wa.token)).await;
    assert!(wa2.resumed);
    assert_eq!(wa2.replica, wa.replica);
    assert_eq!(wa2.token, wa.token);
    assert_eq!(wa2.ops.len(), 1, "the catch-up holds the tab's own op");
    a2.op(2, json!("two")).await;
    assert_eq!(watcher.next_op().await, (wa.replica, 2, json!("two")));
    // A token whose replica stays connected (a duplicated tab), or an unknown token, gets a
    // fresh id.
    let (_dup, wdup) = Client::join(&url, "dup", Some(&wa.token)).await;
    assert!(!wdup.resumed);
    assert!(![wa.replica, ww.replica].contains(&wdup.replica));
    let (_x, wx) = Client::join(&url, "x", Some("not-a-token")).await;
    assert!(!wx.resumed);
    assert_ne!(wx.replica, wdup.replica);
    s.stop().await;
}

#[tokio::test]
async fn a_forged_sender_is_ignored() {
    let (s, _d, _data) = server().await;
    let (mut a, wa) = join(&s, "forge", "a").await;
    let (mut b, wb) = join(&s, "forge", "b").await;
    a.send(&ClientFrame::Op {
        seq: 1,
        payload: json!("forged").into(),
        from: Some(wb.replica),
    })
    .await;
    match a.until(|f| matches!(f, ServerFrame::Error { .. })).await {
        ServerFrame::Error { message } => assert!(message.contains("ignored"), "{message}"),
        _ => unreachable!(),
    }
    // Claiming one's own id is fine; the forged op never reached b nor the log.
    a.send(&ClientFrame::Op {
        seq: 2,
        payload: json!("honest").into(),
        from: Some(wa.replica),
    })
    .await;
    assert_eq!(b.next_op().await, (wa.replica, 2, json!("honest")));
    let (_c, wc) = join(&s, "forge", "c").await;
    assert_eq!(wc.ops.len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn bad_frames_get_errors_and_leave_everyone_else_unaffected() {
    let (s, _d, _data) = server().await;
    let url = s.ws_url("/ws/bad");
    let (mut a, wa) = Client::join(&url, "a", None).await;
    let (mut b, wb) = Client::join(&url, "b", None).await;
    let oversized = format!(
        r#"{{"type":"op","seq":1,"payload":"{}"}}"#,
        "x".repeat(MAX_FRAME_BYTES)
    );
    let bad = [
        "not json".to_owned(),
        r#"{"type":"warp_drive"}"#.to_owned(),
        r#"{"type":"op","seq":"one","payload":1}"#.to_owned(),
        r#"{"type":"op","seq":1,"payload":1,"extra":true}"#.to_owned(),
        r##"{"type":"hello","name":"again","colour":"#000000"}"##.to_owned(),
        r#"{"type":"ping","t1":1,"up_ms":99999999}"#.to_owned(),
        "[]".to_owned(),
        oversized,
    ];
    for text in &bad {
        a.send_raw(text).await;
        // (a may first see b's join.)
        let f = a.until(|f| !matches!(f, ServerFrame::Joined { .. })).await;
        assert!(
            matches!(f, ServerFrame::Error { .. }),
            "no error for {}: {f:?}",
            &text[..text.len().min(60)]
        );
    }
    // A tab that has not said hello cannot send ops, and bad hellos are refused.
    let mut c = Client::connect(&url).await;
    c.op(1, json!(1)).await;
    assert!(matches!(c.next().await, ServerFrame::Error { .. }));
    c.send_raw(r##"{"type":"hello","name":"","colour":"#000000"}"##)
        .await;
    assert!(matches!(c.next().await, ServerFrame::Error { .. }));
    c.send_raw(r#"{"type":"hello","name":"c","colour":"red"}"#)
        .await;
    assert!(matches!(c.next().await, ServerFrame::Error { .. }));
    // Everyone still works: a's connection, b's, and the room's log has only good ops.
    a.op(1, json!("fine")).await;
    assert_eq!(a.ack(1).await, (0, false));
    assert_eq!(b.next_op().await, (wa.replica, 1, json!("fine")));
    b.op(1, json!("also fine")).await;
    assert_eq!(a.next_op().await, (wb.replica, 1, json!("also fine")));
    let w = c.hello("c", None).await;
    assert_eq!(w.ops.len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn re_sent_ops_are_acknowledged_again_but_stored_and_forwarded_once() {
    let (s, _d, _data) = server().await;
    let (mut a, wa) = join(&s, "dedup", "a").await;
    let (mut b, _) = join(&s, "dedup", "b").await;
    a.op(1, json!("x")).await;
    a.op(1, json!("x")).await;
    assert_eq!(a.ack(1).await, (0, false));
    assert_eq!(a.ack(1).await, (0, true));
    a.op(2, json!("y")).await;
    assert_eq!(a.ack(2).await, (1, false));
    assert_eq!(b.next_op().await.1, 1);
    assert_eq!(b.next_op().await.1, 2, "the re-sent op was forwarded again");
    let (_c, wc) = join(&s, "dedup", "c").await;
    let seqs: Vec<_> = wc
        .ops
        .iter()
        .map(|f| match f {
            ServerFrame::Op {
                from, seq, index, ..
            } => (*from, *seq, *index),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(seqs, vec![(wa.replica, 1, 0), (wa.replica, 2, 1)]);
    s.stop().await;
}

#[tokio::test]
async fn acknowledged_ops_and_replica_ids_survive_a_restart() {
    let dist = Scratch::new("dist");
    std::fs::write(dist.0.join("index.html"), "<!doctype html>").unwrap();
    let data = Scratch::new("data");
    let s = TestServer::start(dist.0.clone(), data.0.clone(), None).await;
    let (mut a, wa) = join(&s, "persist", "a").await;
    for seq in 1..=20 {
        a.op(seq, json!({ "seq": seq, "text": "é😀" })).await;
    }
    for seq in 1..=20 {
        a.ack(seq).await;
    }
    s.stop().await;
    let s = TestServer::start(dist.0.clone(), data.0.clone(), None).await;
    let (_b, wb) = join(&s, "persist", "b").await;
    assert_eq!(wb.ops.len(), 20);
    assert_ne!(wb.replica, wa.replica, "replica ids are never reused");
    let (_a, wa2) = Client::join(&s.ws_url("/ws/persist"), "a", Some(&wa.token)).await;
    assert!(wa2.resumed);
    assert_eq!(wa2.replica, wa.replica);
    s.stop().await;
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

#[tokio::test]
async fn clock_probes_wait_out_their_asymmetric_path_delays() {
    let (s, _d, _data) = server().await;
    let mut c = Client::connect(&s.ws_url("/ws/probe")).await;
    let t1 = now_ms().floor(); // whole ms, like Date.now()
    c.send(&ClientFrame::Ping {
        t1,
        up_ms: 150,
        down_ms: 50,
    })
    .await;
    let ServerFrame::Pong { t1: e1, t2, t3 } = c.next().await else {
        panic!("expected pong")
    };
    let t4 = now_ms();
    assert_eq!(e1, t1);
    assert!(t2 - t1 >= 150.0, "up path took {} ms", t2 - t1);
    assert!(t4 - t3 >= 50.0, "down path took {} ms", t4 - t3);
    assert!(t3 >= t2);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn delayed_clock_probes_in_flight_are_capped_per_connection() {
    let (s, _d, _data) = server().await;
    let mut c = Client::connect(&s.ws_url("/ws/probes")).await;
    let sent = Instant::now();
    let n = MAX_PROBES_IN_FLIGHT + 24;
    for i in 0..n {
        c.send(&ClientFrame::Ping {
            t1: i as f64,
            up_ms: 1000,
            down_ms: 0,
        })
        .await;
    }
    let (mut pongs, mut refused) = (0, 0);
    for _ in 0..n {
        match c.next().await {
            ServerFrame::Error { message } => {
                assert!(message.contains("in flight"), "{message}");
                assert_eq!(sent.elapsed().as_millis(), 0, "refused at once");
                refused += 1;
            }
            ServerFrame::Pong { .. } => {
                assert_eq!(sent.elapsed().as_millis(), 1000, "answered after its path");
                pongs += 1;
            }
            f => panic!("unexpected {f:?}"),
        }
    }
    assert_eq!(
        (pongs, refused),
        (MAX_PROBES_IN_FLIGHT, n - MAX_PROBES_IN_FLIGHT)
    );
    // Answered probes free their places.
    c.send(&ClientFrame::Ping {
        t1: 0.0,
        up_ms: 10,
        down_ms: 10,
    })
    .await;
    assert!(matches!(c.next().await, ServerFrame::Pong { .. }));
    s.stop().await;
}

#[tokio::test]
async fn a_frame_over_the_websocket_limit_closes_with_1009_and_a_reason() {
    let (s, _d, _data) = server().await;
    let (a, _) = join(&s, "huge", "a").await;
    let (mut b, _) = join(&s, "huge", "b").await;
    let huge = format!(
        r#"{{"type":"op","seq":1,"payload":"{}"}}"#,
        "x".repeat(HARD_FRAME_LIMIT)
    );
    let (mut tx, mut rx) = a.into_inner().split();
    // The relay stops reading at the frame's header, so the send may never finish.
    tokio::spawn(async move {
        let _ = tx.send(Message::Text(huge.into())).await;
    });
    let close = loop {
        match rx.next().await {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(Message::Text(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.expect("a close frame with a code");
    assert_eq!(u16::from(close.code), 1009);
    assert!(close.reason.contains("limit"), "{}", close.reason);
    // The room saw the tab leave; everyone else is unaffected.
    assert!(matches!(
        b.until(|f| matches!(f, ServerFrame::Left { .. })).await,
        ServerFrame::Left { .. }
    ));
    b.op(1, json!("fine")).await;
    assert_eq!(b.ack(1).await, (0, false));
    s.stop().await;
}

#[tokio::test]
async fn a_reader_too_far_behind_is_closed_and_catches_up_on_resume_with_nothing_lost() {
    // A keepalive far beyond the test, so only the outbox can drop the slow tab.
    let dist = Scratch::new("dist");
    std::fs::write(dist.0.join("index.html"), "<!doctype html><title>t</title>").unwrap();
    let data = Scratch::new("data");
    let hour = Duration::from_secs(3600);
    let s = TestServer::start_with_keepalive(dist.0.clone(), data.0.clone(), None, hour).await;
    let url = s.ws_url("/ws/slow");
    let (mut fast, wf) = Client::join(&url, "fast", None).await;
    // A tab that stopped reading (a frozen background tab, a very slow link).
    let (slow, wslow) = Client::join(&url, "slow", None).await;
    let pad = "y".repeat(60_000);
    // Send until the room drops the slow reader: its outbox fills (and the kernel's socket
    // buffers before it). The fast tab is never held up: each op is acknowledged.
    let mut sent = 0u64;
    let mut dropped = false;
    while !dropped {
        sent += 1;
        assert!(
            sent <= 3000,
            "the slow reader is still in the room after {sent} ops"
        );
        fast.op(sent, json!({ "n": sent, "pad": pad })).await;
        loop {
            match fast.next().await {
                ServerFrame::Left { replica } if replica == wslow.replica => dropped = true,
                ServerFrame::Ack { seq, .. } if seq == sent => break,
                _ => {}
            }
        }
    }
    // What the slow tab finds when it reads again: a gapless prefix of the ops, then a close
    // with code 1013 (try again later) and a reason.
    let mut socket = slow.into_inner();
    let mut seen = 0u64;
    let close = loop {
        match socket.next().await {
            Some(Ok(Message::Text(t))) => {
                if let ServerFrame::Op { seq, .. } = ServerFrame::from_json(t.as_str()).unwrap() {
                    seen += 1;
                    assert_eq!(seq, seen, "a gap in what the slow tab was sent");
                }
            }
            Some(Ok(Message::Close(frame))) => break frame.expect("a close code"),
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1013);
    assert!(close.reason.contains("behind"), "{}", close.reason);
    assert!(seen < sent, "it was dropped before it had everything");
    // It reconnects with its token: same replica, and the catch-up holds every op once, in order.
    let (_slow, again) = Client::join(&url, "slow", Some(&wslow.token)).await;
    assert!(again.resumed);
    assert_eq!(again.replica, wslow.replica);
    let seqs: Vec<(u32, u64)> = again
        .ops
        .iter()
        .map(|f| match f {
            ServerFrame::Op { from, seq, .. } => (*from, *seq),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        seqs,
        (1..=sent).map(|q| (wf.replica, q)).collect::<Vec<_>>()
    );
    s.stop().await;
}
