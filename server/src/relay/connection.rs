//! The WebSocket relay at `/ws/{room}`: the connection side.
//!
//! Each connection is two tasks: this reader, which parses [`ClientFrame`]s and turns them
//! into commands for the room's actor (`super::room`), and a writer that drains the
//! connection's outbox into the socket. The protocol is documented frame by frame in
//! [`chronoscope::protocol`].
//!
//! Architecture invariant: the sender of an op is the connection's own replica id, fixed by
//! the room at hello time; nothing in a frame can change it. A frame claiming another sender
//! is ignored, logged and answered with an error.
//!
//! Bad input: a frame that does not parse, is unknown, comes before hello, or is longer than
//! [`MAX_FRAME_BYTES`] gets a [`ServerFrame::Error`] back and is logged; the connection stays
//! open. A frame beyond [`HARD_FRAME_LIMIT`] is refused by the WebSocket layer itself; the
//! connection then closes with code 1009 (message too big) and a reason.
//!
//! Bounded per connection: delayed clock probes in flight ([`MAX_PROBES_IN_FLIGHT`], more get
//! an error; they die with the connection), and the outbox (`super::outbox`: a connection too
//! far behind its room closes with 1013 and resynchronises on its next hello). Closes the
//! relay initiates carry a code and a reason: 1001 at shutdown, 1009, 1013.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::{
    keepalive::{Expired, Keepalive},
    outbox::{Outbox, OutboxReader, MAX_OUTBOX_BYTES},
    room::{self, encode, JoinRefused, RoomCmd, Rooms},
    store::RoomStore,
    tasks::Tasks,
};
use crate::services::metrics::{self, Refused};
use crate::{AppState, Shutdown};
use axum::{
    extract::{
        ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade},
        Path, State,
    },
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chronoscope::{
    protocol::{
        valid_room_name, validate_member, ClientFrame, ServerFrame, MAX_FRAME_BYTES,
        MAX_PROBE_DELAY_MS,
    },
    NodeId,
};
use futures_util::{stream::SplitSink, SinkExt, StreamExt};
use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinSet,
};

/// Frames up to this size are read (and refused with an error frame if over
/// [`MAX_FRAME_BYTES`]); larger ones close the connection.
pub const HARD_FRAME_LIMIT: usize = 16 * MAX_FRAME_BYTES;

/// How long the writer may spend getting its close frame through to a peer.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The most delayed clock probes one connection may have in flight; more get an error.
pub const MAX_PROBES_IN_FLIGHT: usize = 16;

/// All rooms of the relay.
#[derive(Debug)]
pub struct Relay {
    /// Each loaded room's actor, started by a hello; an idle room's actor ends and leaves.
    rooms: Rooms,
    /// The durable store every room writes to.
    store: Arc<dyn RoomStore>,
    /// Room actors stop when this fires.
    shutdown: Shutdown,
    /// Tracks the room actors, pipes and connections, so the server can wait for them (and
    /// so for the database) to close, and learns of any that panicked.
    tasks: Tasks,
    /// Numbers connections, so a late leave never removes a newer connection of a replica.
    next_conn: AtomicU64,
}

impl std::fmt::Debug for RoomCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomCmd")
    }
}

impl Relay {
    /// A relay over `store` whose rooms stop when `shutdown` fires.
    pub fn new(store: Arc<dyn RoomStore>, shutdown: Shutdown) -> Self {
        Relay {
            rooms: Rooms::default(),
            store,
            shutdown,
            tasks: Tasks::default(),
            next_conn: AtomicU64::new(1),
        }
    }

    /// Wait until every room actor and connection has stopped (call after the shutdown
    /// fired); then nothing holds the store any more. Returns how many of the relay's tasks
    /// panicked during the run (each was logged).
    pub async fn closed(&self) -> usize {
        self.tasks.closed().await
    }

    /// The actor of room `name`, started (the room loaded) if it is not running.
    fn room(&self, name: &str) -> mpsc::UnboundedSender<RoomCmd> {
        let mut rooms = self.rooms.lock().expect("relay lock poisoned");
        if let Some(tx) = rooms.get(name).filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        room::spawn(
            name.to_owned(),
            self.store.clone(),
            self.shutdown.clone(),
            &self.tasks,
            &mut rooms,
            self.rooms.clone(),
        )
    }

    /// How many rooms are loaded (have a running actor) now.
    pub fn loaded_rooms(&self) -> usize {
        let rooms = self.rooms.lock().expect("relay lock poisoned");
        rooms.values().filter(|tx| !tx.is_closed()).count()
    }
}

/// Milliseconds since the Unix epoch by the relay's clock.
pub fn wall_clock_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// `GET /ws/{room}`: upgrade to a WebSocket, or 404 for an invalid room name.
pub async fn ws_handler(
    ws: WebSocketUpgrade,
    Path(room): Path<String>,
    State(state): State<Arc<AppState>>,
) -> Response {
    if !valid_room_name(&room) {
        return (
            StatusCode::NOT_FOUND,
            "no such room: names are 1-64 letters, digits, '-' or '_'",
        )
            .into_response();
    }
    ws.max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .on_upgrade(move |socket| {
            // Counted until the connection (and its hold on the store) is gone, so that
            // `Relay::closed` means the database is closed.
            let counted = state.relay.tasks.token();
            let tasks = state.relay.tasks.clone();
            let guarded = tasks.guard("connection", async move {
                connection(socket, room, state).await;
            });
            async move {
                guarded.await;
                drop(counted);
            }
        })
}

/// Any other path under `/ws`: 404.
pub async fn ws_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "no such WebSocket endpoint; use /ws/{room}",
    )
        .into_response()
}

/// Who this connection is, once its hello was accepted.
struct Joined {
    replica: NodeId,
    room: mpsc::UnboundedSender<RoomCmd>,
}

async fn connection(socket: WebSocket, room: String, state: Arc<AppState>) {
    let conn = state.relay.next_conn.fetch_add(1, Ordering::Relaxed);
    let _counted = metrics::relay().connection(); // `/metrics`: open until this returns
    let (sink, mut stream) = socket.split();
    let (out, outbox) = Outbox::new(MAX_OUTBOX_BYTES);
    let (ping, pings) = mpsc::channel::<()>(1);
    let (closer, closing) = watch::channel(None);
    let writer = tokio::spawn(write(sink, outbox, pings, closing, state.shutdown.clone()));
    tracing::debug!(%room, conn, "socket opened");
    let mut me: Option<Joined> = None;
    let mut probes = JoinSet::new();
    let mut keepalive = Keepalive::new(state.keepalive, tokio::time::Instant::now());
    // The close frame to send, if the peer can still read one.
    let close: Option<CloseFrame> = loop {
        let msg = tokio::select! {
            _ = state.shutdown.fired() => break None, // the writer says goodbye
            (code, reason) = out.ended() => {
                tracing::warn!(%room, conn, code, %reason, "closing a connection its room ended");
                break Some(CloseFrame {
                    code,
                    reason: reason.into(),
                });
            }
            _ = tokio::time::sleep_until(keepalive.deadline()) => match keepalive.expired() {
                Expired::Ping => {
                    let _ = ping.try_send(());
                    continue;
                }
                Expired::Dead => {
                    tracing::info!(%room, conn, "no answer to a keepalive ping: closing");
                    break None;
                }
            },
            msg = stream.next() => msg,
        };
        keepalive.heard(tokio::time::Instant::now());
        let msg = match msg {
            Some(Ok(msg)) => msg,
            Some(Err(e)) => match too_big(e) {
                Ok((size, max_size)) => {
                    tracing::warn!(%room, conn, size, "frame over the WebSocket limit: closing");
                    metrics::relay().refused(Refused::TooBig);
                    break Some(CloseFrame {
                        code: close_code::SIZE,
                        reason: format!(
                            "a frame of {size} bytes is over the relay's limit of {max_size}"
                        )
                        .into(),
                    });
                }
                Err(e) => {
                    tracing::warn!(%room, conn, error = %e, "socket error");
                    break None;
                }
            },
            None => break None,
        };
        match msg {
            Message::Text(text) => {
                let text = text.as_str();
                handle_text(text, &room, conn, &out, &mut me, &mut probes, &state).await
            }
            Message::Binary(_) => {
                tracing::warn!(%room, conn, "binary frame refused");
                metrics::relay().refused(Refused::Binary);
                error(
                    &out,
                    "binary frames are not supported; send JSON text".into(),
                );
            }
            Message::Close(_) => break None,
            Message::Ping(_) | Message::Pong(_) => {}
        }
    };
    if let Some(me) = me {
        let _ = me.room.send(RoomCmd::Leave {
            replica: me.replica,
            conn,
        });
    }
    // Pending probes die with their connection.
    drop(probes);
    if close.is_some() || state.shutdown.is_fired() {
        // The writer sends the close frame (waiting at most CLOSE_WAIT for a stalled peer).
        closer.send_replace(close);
        let _ = writer.await;
    } else {
        writer.abort();
    }
    tracing::debug!(%room, conn, "socket closed");
}

/// `Ok((size, limit))` if the socket error is a frame over the WebSocket layer's maximum.
fn too_big(e: axum::Error) -> Result<(usize, usize), axum::Error> {
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong {
            size,
            max_size,
        })) => Ok((*size, *max_size)),
        _ => Err(axum::Error::new(inner)),
    }
}

/// The writer task: drains the outbox and sends the reader's keepalive pings into the socket;
/// ends with a close frame when the reader sets one (or the server shuts down), given at
/// most [`CLOSE_WAIT`] to get through to a peer that may have stopped reading.
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut outbox: OutboxReader,
    mut pings: mpsc::Receiver<()>,
    mut closing: watch::Receiver<Option<CloseFrame>>,
    shutdown: Shutdown,
) {
    let going_away = || CloseFrame {
        code: close_code::AWAY,
        reason: "the relay is shutting down".into(),
    };
    let close = loop {
        let msg = tokio::select! {
            biased;
            _ = shutdown.fired() => break Some(going_away()),
            set = closing.wait_for(Option::is_some) => break set.ok().and_then(|f| f.clone()),
            Some(()) = pings.recv() => Message::Ping(Default::default()),
            text = outbox.recv() => match text {
                Some(text) => Message::Text(text),
                None => return,
            },
        };
        // A send stalled on a peer that stopped reading gives way to the close.
        let sent = tokio::select! {
            biased;
            _ = shutdown.fired() => break Some(going_away()),
            set = closing.wait_for(Option::is_some) => break set.ok().and_then(|f| f.clone()),
            sent = sink.send(msg) => sent,
        };
        if sent.is_err() {
            return;
        }
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, sink.send(Message::Close(close))).await;
}

fn error(out: &Outbox, message: String) {
    metrics::relay().refused(Refused::ErrorFrame);
    let _ = out.send(encode(&ServerFrame::Error { message }));
}

async fn handle_text(
    text: &str,
    room: &str,
    conn: u64,
    out: &Outbox,
    me: &mut Option<Joined>,
    probes: &mut JoinSet<()>,
    state: &AppState,
) {
    let t2 = wall_clock_ms();
    if text.len() > MAX_FRAME_BYTES {
        tracing::warn!(%room, conn, bytes = text.len(), "oversized frame refused");
        return error(
            out,
            format!(
                "frame of {} bytes refused: the limit is {MAX_FRAME_BYTES}",
                text.len()
            ),
        );
    }
    let frame = match ClientFrame::from_json(text) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(%room, conn, error = %e, "malformed frame");
            return error(out, format!("malformed frame: {e}"));
        }
    };
    match frame {
        ClientFrame::Ping { t1, up_ms, down_ms } => {
            if up_ms > MAX_PROBE_DELAY_MS || down_ms > MAX_PROBE_DELAY_MS {
                return error(
                    out,
                    format!("probe delays are at most {MAX_PROBE_DELAY_MS} ms"),
                );
            }
            if up_ms == 0 && down_ms == 0 {
                let _ = out.send(encode(&ServerFrame::Pong {
                    t1,
                    t2,
                    t3: wall_clock_ms(),
                }));
                return;
            }
            // The simulated path must not hold up the connection's other frames; the probes
            // in flight are capped, and die with the connection.
            while probes.try_join_next().is_some() {}
            if probes.len() >= MAX_PROBES_IN_FLIGHT {
                return error(
                    out,
                    format!(
                        "clock probe refused: at most {MAX_PROBES_IN_FLIGHT} delayed probes \
                         in flight per connection"
                    ),
                );
            }
            let out = out.clone();
            probes.spawn(async move {
                tokio::time::sleep(Duration::from_millis(u64::from(up_ms))).await;
                let t2 = wall_clock_ms();
                let pong = encode(&ServerFrame::Pong {
                    t1,
                    t2,
                    t3: wall_clock_ms(),
                });
                tokio::time::sleep(Duration::from_millis(u64::from(down_ms))).await;
                let _ = out.send(pong);
            });
        }
        ClientFrame::Hello {
            name,
            colour,
            resume,
        } => {
            if let Some(me) = me {
                return error(out, format!("already joined as replica {}", me.replica));
            }
            if let Err(e) = validate_member(&name, &colour) {
                return error(out, format!("hello refused: {e}"));
            }
            // A room unloading as the hello arrives hands it back: the next try loads it again.
            for _ in 0..3 {
                let room_tx = state.relay.room(room);
                let (reply, answer) = oneshot::channel();
                let join = RoomCmd::Join {
                    name: name.clone(),
                    colour: colour.clone(),
                    resume: resume.clone(),
                    conn,
                    out: out.clone(),
                    reply,
                };
                if room_tx.send(join).is_err() {
                    continue; // it ended between the lookup and the send
                }
                match answer.await {
                    Ok(Ok(replica)) => {
                        *me = Some(Joined {
                            replica,
                            room: room_tx,
                        });
                        return;
                    }
                    Ok(Err(JoinRefused::Unloaded)) | Err(_) => continue,
                    Ok(Err(JoinRefused::Failed(message))) => return error(out, message),
                }
            }
            if !state.shutdown.is_fired() {
                error(out, "the room is busy reloading; say hello again".into())
            }
        }
        ClientFrame::Op { seq, payload, from } => {
            let Some(me) = me else {
                return error(out, "say hello before sending ops".into());
            };
            if let Some(claimed) = from.filter(|f| *f != me.replica) {
                tracing::warn!(%room, conn, replica = me.replica, claimed, "forged sender ignored");
                return error(
                    out,
                    format!(
                        "op {seq} ignored: you are replica {}, not {claimed}",
                        me.replica
                    ),
                );
            }
            let at = tokio::time::Instant::now();
            let _ = me.room.send(RoomCmd::Op {
                from: me.replica,
                seq,
                payload,
                at,
            });
        }
        ClientFrame::SetLink(link) => {
            let Some(me) = me else {
                return error(out, "say hello before changing links".into());
            };
            if let Err(e) = link.validate() {
                return error(out, format!("link refused: {e}"));
            }
            let _ = me.room.send(RoomCmd::SetLink {
                by: me.replica,
                link,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    //! The relay's rooms without sockets: the real store, the real actors, on the paused clock.
    use chronoscope::protocol::Payload;

    use super::*;
    use crate::relay::{
        outbox::{OutboxReader, CLOSE_NOT_STORED},
        room::ROOM_IDLE,
        store::{Faulty, Store, StoredOp},
    };

    fn scratch() -> std::path::PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("chronoscope-relay-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Say hello to room `name` as connection `conn`; returns the replica and the outbox.
    async fn hello(
        relay: &Relay,
        name: &str,
        conn: u64,
        resume: Option<String>,
    ) -> (NodeId, OutboxReader) {
        let (answer, reader) = try_hello(relay, name, conn, resume).await;
        (answer.unwrap(), reader)
    }

    /// Say hello; returns the room's answer and the outbox.
    async fn try_hello(
        relay: &Relay,
        name: &str,
        conn: u64,
        resume: Option<String>,
    ) -> (Result<NodeId, JoinRefused>, OutboxReader) {
        let (out, reader) = Outbox::new(1 << 20);
        let (reply, answer) = oneshot::channel();
        let join = RoomCmd::Join {
            name: "t".into(),
            colour: "#000000".into(),
            resume,
            conn,
            out,
            reply,
        };
        relay.room(name).send(join).unwrap();
        (answer.await.unwrap(), reader)
    }

    fn op(relay: &Relay, room: &str, from: NodeId, seq: u64) {
        let payload: Payload = serde_json::json!({ "seq": seq }).into();
        let op = RoomCmd::Op {
            from,
            seq,
            payload,
            at: tokio::time::Instant::now(),
        };
        relay.room(room).send(op).unwrap();
    }

    /// Every frame queued for a reader now, decoded.
    fn drain(reader: &mut OutboxReader) -> Vec<ServerFrame> {
        std::iter::from_fn(|| reader.try_recv())
            .map(|t| ServerFrame::from_json(t.as_str()).unwrap())
            .collect()
    }

    /// The `(from, seq)` of the ops among `frames`.
    fn ops(frames: &[ServerFrame]) -> Vec<(NodeId, u64)> {
        frames
            .iter()
            .filter_map(|f| match f {
                ServerFrame::Op { from, seq, .. } => Some((*from, *seq)),
                _ => None,
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_room_whose_load_failed_loads_on_the_next_hello() {
        let dir = scratch();
        let store = Store::open(&dir).unwrap();
        let stored = StoredOp {
            from: 1,
            seq: 1,
            payload: serde_json::json!("before").into(),
        };
        store.append("flaky", 0, &[stored], &[]).unwrap();
        let faulty = Arc::new(Faulty::new(store));
        faulty.fail_loads.store(2, Ordering::Release);
        let relay = Relay::new(faulty.clone(), Shutdown::new());
        for conn in 1..=2 {
            let (answer, _) = try_hello(&relay, "flaky", conn, None).await;
            match answer {
                Err(JoinRefused::Failed(why)) => {
                    assert!(why.contains("injected load failure"), "{why}")
                }
                other => panic!("a failed load refuses the hello: {other:?}"),
            }
        }
        // The disk is back for reads but a write fails: the room loads, and that hello only
        // is refused (its replica id could not be reserved).
        faulty.fail_reserves.store(1, Ordering::Release);
        let (answer, _) = try_hello(&relay, "flaky", 3, None).await;
        match answer {
            Err(JoinRefused::Failed(why)) => assert!(why.contains("injected"), "{why}"),
            other => panic!("a failed reservation refuses the hello: {other:?}"),
        }
        assert_eq!(relay.loaded_rooms(), 1, "the room itself is loaded");
        // The next hello gets in, log and all, with an id above the log's senders.
        let (replica, mut reader) = hello(&relay, "flaky", 4, None).await;
        assert_eq!(caught_up(&mut reader).await.1, 1, "the stored op is there");
        assert!(replica > 1, "never the id of a sender in the log");
        relay.shutdown.trigger();
        assert_eq!(relay.closed().await, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Tabs that say hello and leave without an op leave no replica record on disk (only the
    /// bound of the ids reserved), while a tab that sent an op resumes after the room reloads,
    /// and no id is ever issued twice.
    #[tokio::test(start_paused = true)]
    async fn hellos_without_ops_do_not_grow_the_store_and_ids_are_never_reused() {
        let dir = scratch();
        let faulty = Arc::new(Faulty::new(Store::open(&dir).unwrap()));
        let relay = Relay::new(faulty.clone(), Shutdown::new());
        let (writer, mut rw) = hello(&relay, "many", 1, None).await;
        let (token, _) = caught_up(&mut rw).await;
        op(&relay, "many", writer, 1);
        let acked = ServerFrame::from_json(rw.recv().await.unwrap().as_str()).unwrap();
        assert!(
            matches!(acked, ServerFrame::Ack { seq: 1, .. }),
            "{acked:?}"
        );
        relay
            .room("many")
            .send(RoomCmd::Leave {
                replica: writer,
                conn: 1,
            })
            .unwrap();
        let mut last = writer;
        for conn in 2..=600 {
            let (r, mut reader) = hello(&relay, "many", conn, None).await;
            caught_up(&mut reader).await;
            assert!(r > last, "fresh ids only grow");
            last = r;
            relay
                .room("many")
                .send(RoomCmd::Leave { replica: r, conn })
                .unwrap();
        }
        let record = faulty.inner().load_room("many").unwrap();
        assert_eq!(
            record.replicas.keys().copied().collect::<Vec<_>>(),
            [writer],
            "only the replica that sent an op has a record"
        );
        assert!(record.issued_below > last, "every issued id is reserved");
        // Unload the room; after the reload the writer resumes, and fresh ids stay above
        // every id issued before.
        tokio::time::sleep(ROOM_IDLE + Duration::from_secs(1)).await;
        assert_eq!(relay.loaded_rooms(), 0);
        let (again, mut reader) = hello(&relay, "many", 1000, Some(token)).await;
        assert_eq!(again, writer, "the writer's token survives");
        assert_eq!(caught_up(&mut reader).await.1, 1);
        let (fresh, _) = hello(&relay, "many", 1001, None).await;
        assert!(fresh > last, "{fresh} is above every id issued ({last})");
        relay.shutdown.trigger();
        assert_eq!(relay.closed().await, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A commit fails for one op of tab A; A's next op, already on its way, must not be stored
    /// behind the gap (B would hold it back forever). A's connection is closed; A resumes and
    /// re-sends both; everyone ends with both ops, once, in A's order.
    #[tokio::test(start_paused = true)]
    async fn a_failed_commit_closes_its_senders_and_their_re_sent_ops_leave_no_gap() {
        let dir = scratch();
        let faulty = Arc::new(Faulty::new(Store::open(&dir).unwrap()));
        let relay = Relay::new(faulty.clone(), Shutdown::new());
        let (a, mut ra) = hello(&relay, "gap", 1, None).await;
        let (token_a, _) = caught_up(&mut ra).await;
        let (b, mut rb) = hello(&relay, "gap", 2, None).await;
        caught_up(&mut rb).await;
        drain(&mut ra);
        faulty.fail_appends.store(1, Ordering::Release);
        op(&relay, "gap", a, 1);
        // The room handles its commands in order: once C's hello is answered, A's op 1 has
        // been tried (and failed), in a transaction of its own.
        let (_, mut rc) = hello(&relay, "gap", 9, None).await;
        caught_up(&mut rc).await;
        assert_eq!(faulty.appends.load(Ordering::Acquire), 1);
        drain(&mut rb);
        drain(&mut rc);
        op(&relay, "gap", b, 1);
        let acked = ServerFrame::from_json(rb.recv().await.unwrap().as_str()).unwrap();
        assert!(
            matches!(
                acked,
                ServerFrame::Ack {
                    seq: 1,
                    index: 0,
                    ..
                }
            ),
            "{acked:?}"
        );
        // A's op 2 was already sent on the old connection.
        op(&relay, "gap", a, 2);
        op(&relay, "gap", b, 2);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let (code, reason) = ra.ended_with().expect("A's connection is closed");
        assert_eq!(code, CLOSE_NOT_STORED);
        assert!(reason.contains("op 1 was not stored"), "{reason}");
        assert!(reason.len() <= 123, "fits a close frame");
        let seen_a = drain(&mut ra);
        assert!(
            !seen_a.iter().any(|f| matches!(f, ServerFrame::Ack { .. })),
            "A gets no ack for either op: {seen_a:?}"
        );
        assert!(ops(&seen_a).is_empty(), "nothing reaches A after its close");
        assert!(
            ops(&drain(&mut rb)).is_empty(),
            "B sees none of A's ops: op 2 without op 1 would be a gap"
        );
        // A's tab reconnects: its new socket may say hello before the old one's close lands.
        let relay2 = &relay;
        let resumed = tokio::spawn({
            let token = token_a.clone();
            let (out, reader) = Outbox::new(1 << 20);
            let (reply, answer) = oneshot::channel();
            relay2
                .room("gap")
                .send(RoomCmd::Join {
                    name: "t".into(),
                    colour: "#000000".into(),
                    resume: Some(token),
                    conn: 3,
                    out,
                    reply,
                })
                .unwrap();
            async move { (answer.await.unwrap(), reader) }
        });
        relay
            .room("gap")
            .send(RoomCmd::Leave {
                replica: a,
                conn: 1,
            })
            .unwrap();
        let (again, mut ra) = resumed.await.unwrap();
        assert_eq!(again, Ok(a), "A resumes its replica id");
        let (_, caught) = caught_up(&mut ra).await;
        assert_eq!(caught, 2, "B's two ops");
        // It re-sends everything unacknowledged, in order.
        op(&relay, "gap", a, 1);
        op(&relay, "gap", a, 2);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let acks: Vec<(u64, u64)> = drain(&mut ra)
            .into_iter()
            .filter_map(|f| match f {
                ServerFrame::Ack { seq, index, .. } => Some((seq, index)),
                _ => None,
            })
            .collect();
        assert_eq!(acks, [(1, 2), (2, 3)]);
        assert_eq!(
            ops(&drain(&mut rb)),
            [(a, 1), (a, 2)],
            "B gets both, in order, once"
        );
        assert_eq!(
            ops(&drain(&mut rc)),
            [(b, 1), (b, 2), (a, 1), (a, 2)],
            "so does C"
        );
        // A newcomer's catch-up is the whole log, each op once.
        let (_, mut rd) = hello(&relay, "gap", 4, None).await;
        let log = ops(&drain_until_caught_up(&mut rd).await);
        assert_eq!(log, [(b, 1), (b, 2), (a, 1), (a, 2)]);
        relay.shutdown.trigger();
        assert_eq!(relay.closed().await, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    async fn drain_until_caught_up(reader: &mut OutboxReader) -> Vec<ServerFrame> {
        let mut frames = Vec::new();
        loop {
            let f = ServerFrame::from_json(reader.recv().await.unwrap().as_str()).unwrap();
            let done = matches!(f, ServerFrame::CaughtUp { .. });
            frames.push(f);
            if done {
                return frames;
            }
        }
    }

    /// Frames until `caught_up`; returns the welcome's token and the catch-up's op count.
    async fn caught_up(reader: &mut OutboxReader) -> (String, usize) {
        let (mut token, mut ops) = (String::new(), 0);
        loop {
            match ServerFrame::from_json(reader.recv().await.unwrap().as_str()).unwrap() {
                ServerFrame::Welcome { token: t, .. } => token = t,
                ServerFrame::Op { .. } => ops += 1,
                ServerFrame::CaughtUp { .. } => return (token, ops),
                _ => {}
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_room_is_unloaded_and_reloaded_by_the_next_hello() {
        let dir = scratch();
        let relay = Relay::new(Arc::new(Store::open(&dir).unwrap()), Shutdown::new());
        let (replica, mut reader) = hello(&relay, "idle", 1, None).await;
        let (token, _) = caught_up(&mut reader).await;
        let payload: Payload = serde_json::json!("kept").into();
        let op = RoomCmd::Op {
            from: replica,
            seq: 1,
            payload,
            at: tokio::time::Instant::now(),
        };
        relay.room("idle").send(op).unwrap();
        let acked = ServerFrame::from_json(reader.recv().await.unwrap().as_str()).unwrap();
        assert!(
            matches!(acked, ServerFrame::Ack { seq: 1, .. }),
            "{acked:?}"
        );
        relay
            .room("idle")
            .send(RoomCmd::Leave { replica, conn: 1 })
            .unwrap();
        assert_eq!(relay.loaded_rooms(), 1);
        // Not while a tab is in it, however long.
        let (_, mut other) = hello(&relay, "busy", 2, None).await;
        caught_up(&mut other).await;
        tokio::time::sleep(ROOM_IDLE - Duration::from_secs(1)).await;
        assert_eq!(relay.loaded_rooms(), 2, "idle for less than ROOM_IDLE");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            relay.loaded_rooms(),
            1,
            "the empty room is unloaded, the busy one stays"
        );
        // The next hello loads it again: the log and the resume token are back.
        let (again, mut reader) = hello(&relay, "idle", 3, Some(token)).await;
        assert_eq!(again, replica, "resumed after the reload");
        assert_eq!(
            caught_up(&mut reader).await.1,
            1,
            "the stored op is in the catch-up"
        );
        assert_eq!(relay.loaded_rooms(), 2);
        drop(reader);
        relay.shutdown.trigger();
        assert_eq!(relay.closed().await, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
