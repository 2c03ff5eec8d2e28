//! The relay's wire protocol: JSON text frames exchanged between a browser tab and the relay
//! (`chronoscope serve`, path `/ws/{room}`).
//!
//! Every frame is one JSON object tagged by `"type"` (snake_case). The relay is
//! **payload-agnostic**: an editing operation is a client sequence number plus an opaque JSON
//! `payload` whose encoding belongs to the text CRDT; the relay stamps it with the sender's
//! replica id, stores it durably, acknowledges it and forwards it. The payload travels as the
//! JSON text its sender wrote ([`Payload`]): the relay stores and forwards those bytes without
//! building a JSON tree, and [`ServerFrame::from_json`] / [`ClientFrame::from_json`] read an
//! `op` frame in one pass, leaving the payload for its reader to decode once.
//!
//! # A session
//!
//! ```text
//! tab                                   relay
//!  | -- hello {name, colour, resume?} --> |   (first frame; Ping is allowed before it)
//!  | <-- welcome {replica, token, ...} -- |
//!  | <-- presence {members} ------------- |   who is in the room now
//!  | <-- matrix {links} ----------------- |   the room's delay matrix
//!  | <-- op {from, seq, index, payload} - |   × every stored op of the room (catch-up)
//!  | <-- caught_up {ops} ---------------- |
//!  | -- op {seq, payload} --------------> |
//!  | <-- ack {seq, index} --------------- |   only once the op is durable on disk
//!  |                                      | -- op {from, seq, ...} --> every other tab,
//!  |                                      |    after that link's delay (held while cut)
//! ```
//!
//! # Client frames ([`ClientFrame`])
//! - `hello {name, colour, resume?}` — introduces the tab. `resume` is the secret token of an
//!   earlier [`ServerFrame::Welcome`]: presenting it gives the tab its old replica id back, so
//!   its unacknowledged operations keep their ids across reconnects. A token that is unknown,
//!   or whose replica is connected right now, gets a fresh replica id instead
//!   (`resumed: false`): a client can never take over another's id.
//! - `op {seq, payload, from?}` — an operation. `seq` is the sender's own sequence number;
//!   `(replica, seq)` identifies the operation, and a re-sent operation (same replica, same
//!   `seq`) is acknowledged again but stored and forwarded once only. `from` need not be sent;
//!   a frame whose `from` names another replica is ignored (and answered with an error).
//! - `set_link {from, to, delay_ms, jitter_ms, cut}` — change one directed link of the room's
//!   delay matrix; every tab receives the new [`ServerFrame::Matrix`].
//! - `ping {t1, up_ms?, down_ms?}` — an NTP-style clock probe. The relay waits `up_ms` before
//!   stamping `t2` and `down_ms` after stamping `t3`, simulating an asymmetric path.
//!
//! # Server frames ([`ServerFrame`])
//! - `welcome {replica, room, token, resumed}` — the answer to `hello`.
//! - `presence {members}` — the full member list, sent after `welcome`.
//! - `joined {member}` / `left {replica}` — presence changes, broadcast to the room.
//! - `matrix {links}` — the full delay matrix (links differing from the default: no delay, no
//!   jitter, not cut), sent after `welcome` and broadcast on every change.
//! - `op {from, seq, index, payload}` — an operation stamped by the relay with its sender and
//!   its position `index` in the room's durable log.
//! - `caught_up {ops}` — the end of the catch-up after `welcome`; later `op`s are live.
//! - `ack {seq, index, duplicate}` — the op `seq` of this tab is durable at `index`.
//! - `pong {t1, t2, t3}` — the answer to `ping`.
//! - `error {message}` — a frame could not be used; the connection stays open.
//!
//! Frames longer than [`MAX_FRAME_BYTES`] are refused with an `error`.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::NodeId;

/// The largest frame, in bytes, the relay accepts from a client; larger frames are refused.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// The longest delay or jitter, in ms, a link of the delay matrix may be given.
pub const MAX_LINK_DELAY_MS: u32 = 60_000;

/// The longest artificial delay, in ms, a [`ClientFrame::Ping`] may ask for in each direction.
pub const MAX_PROBE_DELAY_MS: u32 = 10_000;

/// A frame sent by a browser tab to the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Introduce this tab to the room; must precede `op` and `set_link`.
    Hello {
        /// Display name for the presence list (at most 64 characters).
        name: String,
        /// Display colour, `#rrggbb`.
        colour: String,
        /// The token of an earlier [`ServerFrame::Welcome`], to get that replica id back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
    },
    /// An operation for the room; the relay stamps, stores, acknowledges and forwards it.
    Op {
        /// The sender's own sequence number for this operation.
        seq: u64,
        /// The operation itself, opaque to the relay.
        payload: Payload,
        /// A claimed sender; if present it must be this tab's own replica id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<NodeId>,
    },
    /// Set one directed link of the room's delay matrix.
    SetLink(Link),
    /// A clock probe: `t1` is the tab's clock (ms since the Unix epoch) when it sent the probe.
    Ping {
        /// Client send time, ms.
        t1: f64,
        /// Simulated delay on the way to the relay, ms (applied before `t2` is stamped).
        #[serde(default, skip_serializing_if = "is_zero")]
        up_ms: u32,
        /// Simulated delay on the way back, ms (applied after `t3` is stamped).
        #[serde(default, skip_serializing_if = "is_zero")]
        down_ms: u32,
    },
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// One directed link `from → to` of a room's delay matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// The sending replica.
    pub from: NodeId,
    /// The receiving replica.
    pub to: NodeId,
    /// Base delay added to every operation on this link, ms.
    #[serde(default)]
    pub delay_ms: u32,
    /// Up to this many extra ms, drawn uniformly per operation (never reorders the link).
    #[serde(default)]
    pub jitter_ms: u32,
    /// A cut link holds its operations and delivers them, in order, when healed.
    #[serde(default)]
    pub cut: bool,
}

impl Link {
    /// Whether this link behaves like no entry at all (no delay, no jitter, not cut).
    pub fn is_default(&self) -> bool {
        self.delay_ms == 0 && self.jitter_ms == 0 && !self.cut
    }

    /// Check the link's bounds: two different replicas, delays within [`MAX_LINK_DELAY_MS`].
    pub fn validate(&self) -> Result<(), FrameError> {
        if self.from == self.to {
            return Err(FrameError::SelfLink(self.from));
        }
        if self.delay_ms > MAX_LINK_DELAY_MS || self.jitter_ms > MAX_LINK_DELAY_MS {
            return Err(FrameError::DelayTooLong(MAX_LINK_DELAY_MS));
        }
        Ok(())
    }
}

/// A tab in a room, as the presence list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its replica id.
    pub replica: NodeId,
    /// Its display name.
    pub name: String,
    /// Its colour, `#rrggbb`.
    pub colour: String,
}

/// A frame sent by the relay to a browser tab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The answer to [`ClientFrame::Hello`]: who the tab is in this room.
    Welcome {
        /// The replica id the relay assigned (or gave back) to this tab.
        replica: NodeId,
        /// The room's name.
        room: String,
        /// Secret to present as `resume` in a later hello to get this replica id back.
        token: String,
        /// Whether the `resume` token was honoured.
        resumed: bool,
    },
    /// Everyone in the room right now (sent after `welcome`).
    Presence {
        /// The members, by replica id.
        members: Vec<Member>,
    },
    /// A tab joined the room.
    Joined {
        /// Who joined.
        member: Member,
    },
    /// A tab left the room.
    Left {
        /// Who left.
        replica: NodeId,
    },
    /// The room's whole delay matrix (links other than the default), after every change.
    Matrix {
        /// The non-default links, sorted by `(from, to)`.
        links: Vec<Link>,
    },
    /// An operation, stamped with its sender by the relay.
    Op {
        /// The sender's replica id (stamped by the relay, never taken from the client).
        from: NodeId,
        /// The sender's sequence number.
        seq: u64,
        /// Position of the operation in the room's durable log, from 0.
        index: u64,
        /// The operation, as the sender sent it.
        payload: Payload,
    },
    /// End of the catch-up that follows `welcome`.
    CaughtUp {
        /// How many stored operations the catch-up carried.
        ops: u64,
    },
    /// The operation `seq` of this tab is durable.
    Ack {
        /// The acknowledged sequence number.
        seq: u64,
        /// Its position in the room's log.
        index: u64,
        /// Whether it had been stored before (a re-send), so was not forwarded again.
        duplicate: bool,
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

/// An operation's payload: one JSON value, kept as the JSON text it arrived as.
///
/// The relay is payload-agnostic, so a payload travels as text end to end (written out
/// verbatim, as serde_json's `RawValue` is): the relay stores and forwards the bytes the
/// sender wrote without ever building a JSON tree of them, and the receiving tab decodes its
/// own type straight from that text ([`Payload::decode`]) — one parse, not three (frame tree,
/// clone, typed value). Two payloads are equal when their JSON texts are.
///
/// Invariant: the text is exactly one valid JSON value (every constructor checks it).
#[derive(Clone)]
pub struct Payload(Box<str>);

impl Payload {
    /// The payload of `value`, serialized.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Payload, serde_json::Error> {
        serde_json::to_string(value).map(|t| Payload(t.into()))
    }

    /// A payload from JSON text; refused unless it is exactly one JSON value.
    pub fn from_json(text: impl Into<String>) -> Result<Payload, serde_json::Error> {
        let text = text.into();
        let mut r = crate::json::Reader::new(&text);
        if r.skip_value().is_none() || !r.at_end() {
            // Not the compact form the fast reader knows: serde_json decides (and explains).
            serde_json::from_str::<serde::de::IgnoredAny>(&text)?;
        }
        Ok(Payload(text.into()))
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        &self.0
    }

    /// Decodes the payload as a `T`, straight from its text.
    pub fn decode<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// The payload as a JSON tree (for tests and tools; the relay and the editor never need it).
    ///
    /// # Panics
    /// On a number serde_json cannot hold in a tree (`1e999` is JSON, but no `f64`).
    pub fn to_value(&self) -> serde_json::Value {
        self.decode().expect("a payload is valid JSON")
    }
}

impl From<serde_json::Value> for Payload {
    fn from(value: serde_json::Value) -> Payload {
        Payload::encode(&value).expect("a JSON value serializes")
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.json() == other.json()
    }
}

impl Eq for Payload {}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}

/// serde_json's marker for a raw value: a struct of this name with one field of this name
/// is written out verbatim by serde_json's serializer, and asked of its deserializer as a
/// newtype struct it hands the raw text to (what `RawValue` itself does).
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Written verbatim by serde_json (the `RawValue` protocol); other serializers see a struct
/// holding the text.
impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct(RAW_VALUE_TOKEN, 1)?;
        s.serialize_field(RAW_VALUE_TOKEN, &*self.0)?;
        s.end()
    }
}

/// Reads a payload from any deserializer: serde_json hands over the raw text (the path of
/// [`ServerFrame::from_json`] and [`ClientFrame::from_json`] when their own reader gives up); serde's
/// buffered content (what a derived internally-tagged enum passes on, where a plain
/// `RawValue` fails) is read as a JSON tree and written back out.
impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Payload;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Payload, A::Error> {
                // serde_json's raw-value protocol: one entry, the marker and the text.
                let key: Option<String> = map.next_key()?;
                if key.as_deref() != Some(RAW_VALUE_TOKEN) {
                    return Err(de::Error::custom("a payload is read by serde_json"));
                }
                let text: String = map.next_value()?;
                Payload::from_json(text).map_err(de::Error::custom)
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Payload, D::Error> {
                let value = serde_json::Value::deserialize(deserializer)?;
                Payload::encode(&value).map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_newtype_struct(RAW_VALUE_TOKEN, V)
    }
}

/// The `"type"` of an `op` frame, and nothing else: reading any other tag fails at once, so
/// the fast path of the frame decoders costs nothing for other frames.
struct OpTag;

impl<'de> Deserialize<'de> for OpTag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OpTag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#""op""#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OpTag, E> {
                if v == "op" {
                    Ok(OpTag)
                } else {
                    Err(E::custom("not an op frame"))
                }
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// An `op` frame from the relay, read field by field (a struct needs no buffering; the
/// derived internally-tagged enum buffers the whole frame first).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerOpFrame {
    #[serde(rename = "type")]
    _tag: OpTag,
    from: NodeId,
    seq: u64,
    index: u64,
    payload: Payload,
}

/// An `op` frame from a tab, read field by field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientOpFrame {
    #[serde(rename = "type")]
    _tag: OpTag,
    seq: u64,
    payload: Payload,
    #[serde(default)]
    from: Option<NodeId>,
}

impl ServerFrame {
    /// Decodes a frame from its JSON text. An `op` frame — nearly all the traffic — is read
    /// in one pass with its payload kept as text; any other frame goes through the derived
    /// decoder (which buffers). Same result as `serde_json::from_str`, faster.
    pub fn from_json(text: &str) -> Result<ServerFrame, serde_json::Error> {
        if let Some(op) = Self::read_op(text) {
            return Ok(op);
        }
        match serde_json::from_str::<ServerOpFrame>(text) {
            Ok(op) => Ok(ServerFrame::Op {
                from: op.from,
                seq: op.seq,
                index: op.index,
                payload: op.payload,
            }),
            Err(_) => serde_json::from_str(text),
        }
    }

    /// An `op` frame exactly as the relay writes it, read by the strict reader of
    /// [`crate::json`]: the payload is checked to be one JSON value and kept as text.
    fn read_op(text: &str) -> Option<ServerFrame> {
        let mut r = crate::json::Reader::new(text);
        r.lit(r#"{"type":"op","from":"#)?;
        let from = r.u32()?;
        r.lit(r#","seq":"#)?;
        let seq = r.u64()?;
        r.lit(r#","index":"#)?;
        let index = r.u64()?;
        r.lit(r#","payload":"#)?;
        let payload = read_payload(&mut r)?;
        r.eat(b'}')?;
        r.at_end().then_some(ServerFrame::Op {
            from,
            seq,
            index,
            payload,
        })
    }
}

impl ClientFrame {
    /// Decodes a frame from its JSON text, `op` frames in one pass (see
    /// [`ServerFrame::from_json`]).
    pub fn from_json(text: &str) -> Result<ClientFrame, serde_json::Error> {
        if let Some(op) = Self::read_op(text) {
            return Ok(op);
        }
        match serde_json::from_str::<ClientOpFrame>(text) {
            Ok(op) => Ok(ClientFrame::Op {
                seq: op.seq,
                payload: op.payload,
                from: op.from,
            }),
            Err(_) => serde_json::from_str(text),
        }
    }

    /// An `op` frame as a tab writes it (`{"type":"op","seq":…,"payload":…}`, optionally
    /// `"from"` last), by the strict reader.
    fn read_op(text: &str) -> Option<ClientFrame> {
        let mut r = crate::json::Reader::new(text);
        r.lit(r#"{"type":"op","seq":"#)?;
        let seq = r.u64()?;
        r.lit(r#","payload":"#)?;
        let payload = read_payload(&mut r)?;
        let from = if r.lit(r#","from":"#).is_some() {
            Some(r.u32()?)
        } else {
            None
        };
        r.eat(b'}')?;
        r.at_end().then_some(ClientFrame::Op { seq, payload, from })
    }
}

/// A payload at the reader's position: one JSON value, taken as text.
fn read_payload(r: &mut crate::json::Reader<'_>) -> Option<Payload> {
    let start = r.offset();
    r.skip_value()?;
    Some(Payload(r.slice(start, r.offset()).into()))
}

/// Why a client frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A link from a replica to itself.
    #[error("a link needs two different replicas (got {0} → {0})")]
    SelfLink(NodeId),
    /// A delay or jitter beyond the bound.
    #[error("delay and jitter are at most {0} ms")]
    DelayTooLong(u32),
    /// A bad display name.
    #[error("names are 1-64 characters without control characters")]
    BadName,
    /// A bad colour.
    #[error("colours are #rrggbb")]
    BadColour,
}

/// Check a hello's display name and colour.
pub fn validate_member(name: &str, colour: &str) -> Result<(), FrameError> {
    let chars = name.chars().count();
    if !(1..=64).contains(&chars) || name.chars().any(char::is_control) {
        return Err(FrameError::BadName);
    }
    let hex = colour.strip_prefix('#').unwrap_or("");
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FrameError::BadColour);
    }
    Ok(())
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
        assert_eq!(
            c,
            ClientFrame::Ping {
                t1: 5.0,
                up_ms: 0,
                down_ms: 0
            }
        );
        let c: ClientFrame =
            serde_json::from_str(r#"{"type":"ping","t1":5,"up_ms":30,"down_ms":2}"#).unwrap();
        assert_eq!(
            c,
            ClientFrame::Ping {
                t1: 5.0,
                up_ms: 30,
                down_ms: 2
            }
        );
    }

    #[test]
    fn client_frames_round_trip() {
        let frames = [
            ClientFrame::Hello {
                name: "Ada".into(),
                colour: "#ff8800".into(),
                resume: Some("abc".into()),
            },
            ClientFrame::Op {
                seq: 7,
                payload: serde_json::json!({"ins": [3, "é😀"]}).into(),
                from: None,
            },
            ClientFrame::SetLink(Link {
                from: 1,
                to: 2,
                delay_ms: 300,
                jitter_ms: 0,
                cut: true,
            }),
        ];
        for f in frames {
            let s = serde_json::to_string(&f).unwrap();
            assert_eq!(serde_json::from_str::<ClientFrame>(&s).unwrap(), f, "{s}");
        }
        let link: ClientFrame =
            serde_json::from_str(r#"{"type":"set_link","from":1,"to":2,"cut":true}"#).unwrap();
        assert_eq!(
            link,
            ClientFrame::SetLink(Link {
                from: 1,
                to: 2,
                delay_ms: 0,
                jitter_ms: 0,
                cut: true
            })
        );
    }

    #[test]
    fn op_frames_keep_their_payload_text_and_decode_in_any_field_order() {
        let text = r#"{"type":"op","from":3,"seq":7,"index":41,"payload":{"c": {"3":7},"o":[[3,0,"é",null,null]]}}"#;
        let f = ServerFrame::from_json(text).unwrap();
        let ServerFrame::Op { payload, .. } = &f else {
            panic!("{f:?}")
        };
        // The text is kept as sent, spaces included, and re-encoded verbatim.
        assert_eq!(
            payload.json(),
            r#"{"c": {"3":7},"o":[[3,0,"é",null,null]]}"#
        );
        assert_eq!(serde_json::to_string(&f).unwrap(), text);
        // The derived decoder (buffered: "type" last, or through a JSON tree) agrees.
        let shuffled = r#"{"payload":{"c": {"3":7},"o":[[3,0,"é",null,null]]},"index":41,"seq":7,"from":3,"type":"op"}"#;
        for other in [
            ServerFrame::from_json(shuffled).unwrap(),
            serde_json::from_str::<ServerFrame>(text).unwrap(),
            serde_json::from_value(serde_json::from_str(text).unwrap()).unwrap(),
        ] {
            let ServerFrame::Op { payload: p, .. } = &other else {
                panic!("{other:?}")
            };
            assert_eq!(p.to_value(), payload.to_value());
        }
        let c = ClientFrame::from_json(r#"{"type":"op","seq":2,"payload":[1, 2]}"#).unwrap();
        assert_eq!(
            c,
            ClientFrame::Op {
                seq: 2,
                payload: Payload::from_json("[1, 2]").unwrap(),
                from: None
            }
        );
        // Other frames go through the derived decoder.
        assert_eq!(
            ClientFrame::from_json(r#"{"type":"ping","t1":5}"#).unwrap(),
            ClientFrame::Ping {
                t1: 5.0,
                up_ms: 0,
                down_ms: 0
            }
        );
        assert!(matches!(
            ServerFrame::from_json(r#"{"type":"caught_up","ops":0}"#).unwrap(),
            ServerFrame::CaughtUp { .. }
        ));
        // A payload is exactly one JSON value.
        assert!(Payload::from_json("1 2").is_err());
        assert!(Payload::from_json("").is_err());
        assert!(ClientFrame::from_json(r#"{"type":"op","seq":1,"payload":}"#).is_err());
        assert!(ClientFrame::from_json(r#"{"type":"op","seq":1,"payload":1,"x":0}"#).is_err());
    }

    #[test]
    fn unknown_fields_and_types_are_refused() {
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"warp"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"op","seq":1}"#).is_err());
        assert!(
            serde_json::from_str::<ClientFrame>(r#"{"type":"op","seq":-1,"payload":1}"#).is_err()
        );
    }

    #[test]
    fn links_and_members_are_validated() {
        let l = Link {
            from: 1,
            to: 1,
            delay_ms: 0,
            jitter_ms: 0,
            cut: false,
        };
        assert_eq!(l.validate(), Err(FrameError::SelfLink(1)));
        let l = Link {
            from: 1,
            to: 2,
            delay_ms: MAX_LINK_DELAY_MS + 1,
            jitter_ms: 0,
            cut: false,
        };
        assert_eq!(
            l.validate(),
            Err(FrameError::DelayTooLong(MAX_LINK_DELAY_MS))
        );
        assert!(Link {
            from: 1,
            to: 2,
            delay_ms: 5000,
            jitter_ms: 100,
            cut: true
        }
        .validate()
        .is_ok());
        assert!(validate_member("Ada 😀", "#A0b1c2").is_ok());
        assert_eq!(validate_member("", "#000000"), Err(FrameError::BadName));
        assert_eq!(validate_member("a\nb", "#000000"), Err(FrameError::BadName));
        assert_eq!(validate_member("Ada", "red"), Err(FrameError::BadColour));
        assert_eq!(validate_member("Ada", "#12345"), Err(FrameError::BadColour));
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
