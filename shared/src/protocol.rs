//! The relay's wire protocol: JSON text frames exchanged between a browser tab and the relay
//! (`chronoscope serve`, path `/ws/{room}`).
//!
//! Every frame is an object tagged by `"type"`. The relay assigns each connection its replica
//! id in [`ServerFrame::Welcome`]; the clock-probe pair ([`ClientFrame::Ping`] /
//! [`ServerFrame::Pong`]) is NTP's four-timestamp exchange, which the drift lab uses to measure
//! a tab's offset and round-trip time to the relay's clock.

use serde::{Deserialize, Serialize};

/// The largest frame, in bytes, the relay accepts from a client; larger frames are refused.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// A frame sent by a browser tab to the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// A clock probe: `t1` is the tab's clock (ms since the Unix epoch) when it sent the probe.
    Ping {
        /// Client send time, ms.
        t1: f64,
    },
}

/// A frame sent by the relay to a browser tab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame on every connection: who the tab is in this room.
    Welcome {
        /// The replica id the relay assigned to this connection.
        replica: u32,
        /// The room's name.
        room: String,
    },
    /// Answer to [`ClientFrame::Ping`].
    Pong {
        /// Client send time, echoed.
        t1: f64,
        /// Relay receive time, ms since the Unix epoch.
        t2: f64,
        /// Relay send time, ms since the Unix epoch.
        t3: f64,
    },
    /// The relay could not use a frame the tab sent; the connection stays open.
    Error {
        /// What was wrong, in words.
        message: String,
    },
}

/// Whether `name` is an acceptable room name: 1–64 characters of ASCII letters, digits, `-`
/// and `_`.
pub fn valid_room_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_as_tagged_json() {
        let f = ServerFrame::Pong {
            t1: 1.0,
            t2: 2.0,
            t3: 3.0,
        };
        let s = serde_json::to_string(&f).unwrap();
        assert_eq!(s, r#"{"type":"pong","t1":1.0,"t2":2.0,"t3":3.0}"#);
        assert_eq!(serde_json::from_str::<ServerFrame>(&s).unwrap(), f);
        let c: ClientFrame = serde_json::from_str(r#"{"type":"ping","t1":5}"#).unwrap();
        assert_eq!(c, ClientFrame::Ping { t1: 5.0 });
    }

    #[test]
    fn room_names_are_validated() {
        assert!(valid_room_name("lobby"));
        assert!(valid_room_name("doc-1_a"));
        assert!(!valid_room_name(""));
        assert!(!valid_room_name("../etc"));
        assert!(!valid_room_name("a b"));
        assert!(!valid_room_name(&"x".repeat(65)));
    }
}
