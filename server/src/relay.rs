//! The WebSocket relay at `/ws/{room}`.
//!
//! Each connection gets a replica id unique within its room, announced in a
//! [`ServerFrame::Welcome`]. Frames a tab sends are parsed as [`ClientFrame`]s; a frame that
//! does not parse, or is too large, gets a [`ServerFrame::Error`] back and the connection stays
//! open. Every socket closes when the server's [`Shutdown`](crate::Shutdown) fires.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex,
    },
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{
        ws::{Message, WebSocket, WebSocketUpgrade},
        Path, State,
    },
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chronoscope::protocol::{valid_room_name, ClientFrame, ServerFrame, MAX_FRAME_BYTES};

use crate::AppState;

/// All rooms of the relay.
#[derive(Debug, Default)]
pub struct Relay {
    /// Next replica id per room; ids are never reused within a room's lifetime.
    next_replica: Mutex<HashMap<String, Arc<AtomicU32>>>,
}

impl Relay {
    /// An empty relay.
    pub fn new() -> Self {
        Self::default()
    }

    fn assign_replica(&self, room: &str) -> u32 {
        let counter = self
            .next_replica
            .lock()
            .expect("relay lock poisoned")
            .entry(room.to_owned())
            .or_insert_with(|| Arc::new(AtomicU32::new(1)))
            .clone();
        counter.fetch_add(1, Ordering::Relaxed)
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
    ws.max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| connection(socket, room, state))
}

/// Any other path under `/ws`: 404.
pub async fn ws_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "no such WebSocket endpoint; use /ws/{room}",
    )
        .into_response()
}

async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> Result<(), axum::Error> {
    let text = serde_json::to_string(frame).expect("server frames serialize");
    socket.send(Message::Text(text.into())).await
}

async fn connection(mut socket: WebSocket, room: String, state: Arc<AppState>) {
    let replica = state.relay.assign_replica(&room);
    tracing::info!(%room, replica, "tab connected");
    if send(
        &mut socket,
        &ServerFrame::Welcome {
            replica,
            room: room.clone(),
        },
    )
    .await
    .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            _ = state.shutdown.fired() => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
            msg = socket.recv() => {
                let Some(Ok(msg)) = msg else { break };
                let reply = match msg {
                    Message::Text(text) => handle_text(text.as_str()),
                    Message::Binary(_) => Some(ServerFrame::Error {
                        message: "binary frames are not supported; send JSON text".into(),
                    }),
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => None,
                };
                if let Some(reply) = reply {
                    if send(&mut socket, &reply).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    tracing::info!(%room, replica, "tab disconnected");
}

fn handle_text(text: &str) -> Option<ServerFrame> {
    let t2 = wall_clock_ms();
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(ClientFrame::Ping { t1 }) => Some(ServerFrame::Pong {
            t1,
            t2,
            t3: wall_clock_ms(),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "malformed frame");
            Some(ServerFrame::Error {
                message: format!("malformed frame: {e}"),
            })
        }
    }
}
