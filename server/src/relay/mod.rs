//! The WebSocket relay at `/ws/{room}`: [`connection`] turns a socket into commands for its
//! room; `room` is one actor per room, driving a pure state machine (`room::state`: replicas
//! and resume tokens, presence, the delay matrix, the log index) with IO — the store, the
//! sockets, one delivery pipe per directed link (`room::pipe`); [`store`] is the durable op
//! log (redb).

pub mod connection;
mod keepalive;
mod outbox;
mod room;
pub mod store;
mod tasks;

pub use connection::{ws_handler, ws_not_found, Relay};
pub use outbox::MAX_OUTBOX_BYTES;
