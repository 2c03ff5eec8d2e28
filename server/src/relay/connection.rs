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
//! open. Frames beyond [`HARD_FRAME_LIMIT`] are cut off by the WebSocket layer itself, which
//! closes that one connection.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::{
    keepalive::{Expired, Keepalive},
    room::{self, encode, Outbox, RoomCmd},
    store::Store,
    tasks::Tasks,
};
use crate::{AppState, Shutdown};
use axum::{
    extract::{
        ws::{Message, WebSocket, WebSocketUpgrade},
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
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};

/// Frames up to this size are read (and refused with an error frame if over
/// [`MAX_FRAME_BYTES`]); larger ones close the connection.
pub const HARD_FRAME_LIMIT: usize = 16 * MAX_FRAME_BYTES;

/// How long the writer may spend sending the close frame at shutdown.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// All rooms of the relay.
#[derive(Debug)]
pub struct Relay {
    /// Each room's actor, started on the first hello. Rooms live as long as the server.
    rooms: Mutex<HashMap<String, mpsc::UnboundedSender<RoomCmd>>>,
    /// The durable store every room writes to.
    store: Arc<Store>,
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
    pub fn new(store: Arc<Store>, shutdown: Shutdown) -> Self {
        Relay {
            rooms: Mutex::new(HashMap::new()),
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

    fn room(&self, name: &str) -> mpsc::UnboundedSender<RoomCmd> {
        let mut rooms = self.rooms.lock().expect("relay lock poisoned");
        if let Some(tx) = rooms.get(name).filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let tx = room::spawn(
            name.to_owned(),
            self.store.clone(),
            self.shutdown.clone(),
            &self.tasks,
        );
        rooms.insert(name.to_owned(), tx.clone());
        tx
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
    let (mut sink, mut stream) = socket.split();
    let (out, mut outbox) = mpsc::unbounded_channel();
    let (ping, mut pings) = mpsc::channel::<()>(1);
    let shutdown = state.shutdown.clone();
    let writer = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.fired() => {
                    // A peer that stopped reading must not hold the shutdown up.
                    let _ = tokio::time::timeout(CLOSE_WAIT, sink.send(Message::Close(None))).await;
                    break;
                }
                Some(()) = pings.recv() => {
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        break;
                    }
                }
                text = outbox.recv() => {
                    let Some(text) = text else { break };
                    if sink.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    tracing::debug!(%room, conn, "socket opened");
    let mut me: Option<Joined> = None;
    let mut keepalive = Keepalive::new(state.keepalive, tokio::time::Instant::now());
    loop {
        let msg = tokio::select! {
            _ = state.shutdown.fired() => break,
            _ = tokio::time::sleep_until(keepalive.deadline()) => match keepalive.expired() {
                Expired::Ping => {
                    let _ = ping.try_send(());
                    continue;
                }
                Expired::Dead => {
                    tracing::info!(%room, conn, "no answer to a keepalive ping: closing");
                    break;
                }
            },
            msg = stream.next() => msg,
        };
        keepalive.heard(tokio::time::Instant::now());
        let msg = match msg {
            Some(Ok(msg)) => msg,
            Some(Err(e)) => {
                tracing::warn!(%room, conn, error = %e, "socket error");
                break;
            }
            None => break,
        };
        match msg {
            Message::Text(text) => {
                handle_text(text.as_str(), &room, conn, &out, &mut me, &state).await
            }
            Message::Binary(_) => {
                tracing::warn!(%room, conn, "binary frame refused");
                error(
                    &out,
                    "binary frames are not supported; send JSON text".into(),
                );
            }
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
    if let Some(me) = me {
        let _ = me.room.send(RoomCmd::Leave {
            replica: me.replica,
            conn,
        });
    }
    if state.shutdown.is_fired() {
        let _ = writer.await; // it sends the close frame
    } else {
        writer.abort();
    }
    tracing::debug!(%room, conn, "socket closed");
}

fn error(out: &Outbox, message: String) {
    let _ = out.send(encode(&ServerFrame::Error { message }));
}

async fn handle_text(
    text: &str,
    room: &str,
    conn: u64,
    out: &Outbox,
    me: &mut Option<Joined>,
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
            // The simulated path must not hold up the connection's other frames.
            let out = out.clone();
            tokio::spawn(async move {
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
            let room_tx = state.relay.room(room);
            let (reply, answer) = oneshot::channel();
            let join = RoomCmd::Join {
                name,
                colour,
                resume,
                conn,
                out: out.clone(),
                reply,
            };
            if room_tx.send(join).is_err() {
                return error(out, "the room is closing".into());
            }
            match answer.await {
                Ok(Ok(replica)) => {
                    *me = Some(Joined {
                        replica,
                        room: room_tx,
                    })
                }
                Ok(Err(message)) => error(out, message),
                Err(_) => error(out, "the room is closing".into()),
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
