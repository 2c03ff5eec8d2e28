//! The WebSocket relay at `/ws/{room}`: [`connection`] turns a socket into commands for its
//! room, `room` is one actor per room (members, the delay matrix, the op log's index, one
//! delivery pipe per directed link), and [`store`] is the durable op log (redb).

pub mod connection;
mod keepalive;
mod room;
pub mod store;
mod tasks;

pub use connection::{ws_handler, ws_not_found, Relay};
