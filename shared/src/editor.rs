//! # One replica of the collaborative editor: the text CRDT behind causal multicast
//!
//! An [`EditorSession`] glues the pieces a browser tab needs to co-edit a document through the
//! relay: the [`TextDoc`] (YATA/FugueMax, see [`crate::replication::text`]), a [`HoldBackQueue`]
//! (Birman–Schiper–Stephenson causal broadcast, see [`crate::causality::holdback`]) and the bookkeeping of
//! operations the relay has not yet acknowledged. It has no DOM and no socket: the page turns
//! text-area `input` events into [`EditorSession::edit_utf16`] calls (via [`diff_utf16`]), sends
//! what [`EditorSession::flush`] returns as `op` frames, and hands every `op` frame it receives
//! to [`EditorSession::receive`], applying the returned [`Patch`]es to its view.
//!
//! **Guarantee:** text operations are applied in causal order (every op after the ops its
//! origins and delete targets come from), each exactly once — a message delivered twice (a
//! catch-up after a reconnect, a re-send the relay forwarded) is dropped by its id — so all
//! sessions that have received the same messages show the same text (strong eventual
//! consistency of the CRDT).
//!
//! ## Batching
//! Consecutive keystrokes merge into one [`TextOp`] ([`TextOp::try_merge`]) while they sit in
//! the open batch; [`EditorSession::flush`] closes the batch into **one** causal message with one
//! vector clock. Typing a word therefore costs one clock, not one per character.
//!
//! ## Wire
//! A message travels as the relay's opaque `payload`: `{"c": {clock}, "o": [ops]}` (see
//! [`EditPayload`]); the relay stamps the sender, and the `op` frame's `seq` is the message's
//! own clock entry — so the relay's `(replica, seq)` de-duplication and the causal layer's
//! message id are the same thing.
//!
//! ## Catch-up
//! The relay stores ops in the order it receives them, and forwards an op only once it is
//! stored, so its log is a causal order. A reloaded tab that got its replica id back receives
//! its *own* earlier messages in the catch-up; the session adopts them as its own broadcasts
//! ([`HoldBackQueue::stamp_send`]) so its next message continues its sequence.
//!
//! A tab may instead open on a [`SessionSnapshot`] of a prefix of the log (made by the relay
//! from the same code, [`EditorSession::snapshot`]) and receive only the ops after it
//! ([`EditorSession::from_snapshot`]): the same document and clock as replaying the prefix,
//! without replaying it.
//!
//! ## Trace
//! The session records the tab's view of the causal multicast as a [`Trace`]
//! ([`EditorSession::trace`]): each own broadcast is a send on this replica's line; each
//! delivered remote message is a send on its sender's line (the first time it is seen) and a
//! receive here. A remote send's clocks are derived from the message's vector clock — it comes
//! after every recorded broadcast the clock says its sender had delivered — so the trace is
//! legal ([`crate::trace::validate`] finds nothing) and its happened-before is the causal order
//! the hold-back queue enforced. The payload carries no send time, so a remote send is stamped
//! with the time its delivery was recorded here. Recording stops at [`TRACE_CAP`] events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::causality::holdback::{
    CausalError, CausalMessage, DeliveryRecord, Dependency, HoldBackQueue,
};
use crate::clocks::vector_clock::VectorClock;
use crate::protocol::Payload;
use crate::replication::text::{Patch, SnapshotError, TextDoc, TextError, TextOp, TextSnapshot};
use crate::trace::{Event, EventId, EventKind, MessageId, Trace, VectorTimestamp};
use crate::NodeId;

/// At most this many events are recorded in an editor session's trace (a delivered message
/// adds two, so the trace may hold one more); later messages are not recorded, so a long
/// session's trace stops growing.
pub const TRACE_CAP: usize = 2000;

/// The relay payload of one editor message: the sender's vector clock and the ops of one batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditPayload {
    /// The sender's clock at the send, its own entry being the message's sequence number.
    pub c: VectorClock,
    /// The batch of text operations, in the order they were made.
    pub o: Vec<TextOp>,
}

impl EditPayload {
    /// Decodes a payload from its JSON text: the compact form [`EditorSession::flush`]
    /// writes is read by a strict hand-written reader (one pass, no intermediate values);
    /// anything else goes to serde, with the same result for valid input and serde's error
    /// for the rest.
    pub fn from_json(text: &str) -> Result<EditPayload, serde_json::Error> {
        EditPayload::read_json(text).map_or_else(|| serde_json::from_str(text), Ok)
    }

    fn read_json(text: &str) -> Option<EditPayload> {
        let mut r = crate::json::Reader::new(text);
        r.lit(r#"{"c":"#)?;
        let c = VectorClock::read_json(&mut r)?;
        r.lit(r#","o":["#)?;
        let mut o = Vec::new();
        if r.eat(b']').is_none() {
            loop {
                o.push(TextOp::read_json(&mut r)?);
                if r.eat(b',').is_none() {
                    r.eat(b']')?;
                    break;
                }
            }
        }
        r.eat(b'}')?;
        r.at_end().then_some(EditPayload { c, o })
    }
}

/// A compacted editor replica: the document and the vector clock of the messages it holds —
/// what a tab needs to open a room without replaying the room's log
/// ([`EditorSession::snapshot`], [`EditorSession::from_snapshot`]). The relay's `snapshot`
/// frame carries one as its payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSnapshot {
    /// The messages the document holds: entry `k` counts the broadcasts of `k` delivered.
    pub clock: VectorClock,
    /// The document, tombstones included ([`TextSnapshot`]).
    pub doc: TextSnapshot,
}

/// A message ready to go to the relay as an `op` frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The `op` frame's `seq`: this message's number among this replica's broadcasts.
    pub seq: u64,
    /// The `op` frame's `payload` (an [`EditPayload`]).
    pub payload: Payload,
}

/// A held message as the side panel shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldView {
    /// The message's sender.
    pub sender: NodeId,
    /// The message's sequence number among its sender's broadcasts.
    pub seq: u64,
    /// The broadcast it waits for.
    pub waiting_for: Dependency,
    /// When it arrived, ms on the caller's clock.
    pub held_since: f64,
    /// Its ops, described ([`describe_op`]).
    pub ops: Vec<String>,
}

/// A sent but unacknowledged message, as the side panel shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnackedView {
    /// Its sequence number.
    pub seq: u64,
    /// When it was first sent, ms.
    pub sent_at: f64,
    /// Its ops, described.
    pub ops: Vec<String>,
}

/// Why a received message could not be used. The session is unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditorError {
    /// The payload is not an [`EditPayload`].
    #[error("malformed editor payload: {0}")]
    Malformed(String),
    /// The relay's `seq` and the payload's clock disagree about the message's number.
    #[error("message from {from} says seq {seq} but its clock says {clock_seq}")]
    SeqMismatch {
        /// The sender the relay stamped.
        from: NodeId,
        /// The relay's seq.
        seq: u64,
        /// The clock's entry for the sender.
        clock_seq: u64,
    },
    /// The causal layer refused the message.
    #[error(transparent)]
    Causal(#[from] CausalError),
    /// A delivered message's op could not be applied (a corrupt message: causal delivery
    /// guarantees its dependencies were applied).
    #[error("delivered op refused by the text CRDT: {0}")]
    Text(#[from] TextError),
    /// One of our own messages came back out of order (only the catch-up may replay them).
    #[error("own message {seq} replayed out of order (next expected {expected})")]
    OwnOutOfOrder {
        /// Its seq.
        seq: u64,
        /// The next own seq this session expected.
        expected: u64,
    },
}

/// One replica of the shared document: CRDT + hold-back queue + unacknowledged messages.
#[derive(Debug, Clone)]
pub struct EditorSession {
    /// The replicated text.
    doc: TextDoc,
    /// Causal delivery of remote messages; its clock is this replica's vector clock.
    queue: HoldBackQueue<Vec<TextOp>>,
    /// Local ops already applied to `doc` but not yet broadcast (the open batch).
    batch: Vec<TextOp>,
    /// Broadcast messages the relay has not acknowledged, by seq, with their send time:
    /// re-sent after a reconnect.
    unacked: BTreeMap<u64, (f64, EditPayload)>,
    /// The tab's view of the multicast: own broadcasts, remote sends and their deliveries.
    trace: Trace,
    /// The send event of each recorded broadcast, by (sender, seq).
    traced_sends: BTreeMap<(NodeId, u64), EventId>,
}

impl EditorSession {
    /// A session for replica `replica` (the id the relay gave the tab) with an empty document.
    pub fn new(replica: NodeId) -> Self {
        EditorSession {
            doc: TextDoc::new(replica),
            queue: HoldBackQueue::new(replica),
            batch: Vec::new(),
            unacked: BTreeMap::new(),
            trace: Trace::new(),
            traced_sends: BTreeMap::new(),
        }
    }

    /// A session for replica `replica` that starts where `snapshot` is: as if it had received
    /// every message the snapshot's clock counts. If `replica` is one of the snapshot's
    /// writers (a reloaded tab resuming its id), its next message continues after its last one
    /// in the snapshot, and [`EditorSession::restore_own`] takes back the rest. The trace
    /// records from here on.
    pub fn from_snapshot(
        replica: NodeId,
        snapshot: &SessionSnapshot,
    ) -> Result<EditorSession, SnapshotError> {
        Ok(EditorSession {
            doc: TextDoc::from_snapshot(replica, &snapshot.doc)?,
            queue: HoldBackQueue::starting_at(replica, snapshot.clock.clone()),
            ..EditorSession::new(replica)
        })
    }

    /// A snapshot of what this replica has delivered — `None` while a message is held back (a
    /// snapshot is a clean cut: it cannot hold a message without its dependencies) or local
    /// edits wait in the open batch (they are in the document but in no message yet).
    pub fn snapshot(&self) -> Option<SessionSnapshot> {
        if self.queue.held_len() > 0 || !self.batch.is_empty() {
            return None;
        }
        Some(SessionSnapshot {
            clock: self.queue.clock().clone(),
            doc: self.doc.snapshot(),
        })
    }

    /// This replica's id.
    pub fn replica(&self) -> NodeId {
        self.doc.replica()
    }

    /// The current text (local edits included).
    pub fn text(&self) -> String {
        self.doc.text()
    }

    /// The delivered vector clock (own entry: messages broadcast).
    pub fn clock(&self) -> &VectorClock {
        self.queue.clock()
    }

    /// A local edit at UTF-16 position `pos`: remove `delete` code units, then insert `insert`.
    /// The ops join the open batch; on error nothing changes.
    pub fn edit_utf16(&mut self, pos: usize, delete: usize, insert: &str) -> Result<(), TextError> {
        let len = self.doc.len_utf16();
        if pos.checked_add(delete).is_none_or(|end| end > len) {
            return Err(TextError::OutOfRange {
                pos: pos.saturating_add(delete),
                len,
            });
        }
        // Validate both ends before changing anything (a split surrogate pair is refused).
        self.doc.utf16_to_char(pos)?;
        self.doc.utf16_to_char(pos + delete)?;
        if delete > 0 {
            self.doc.delete_utf16_into(pos, delete, &mut self.batch)?;
        }
        if !insert.is_empty() {
            self.doc.insert_utf16_into(pos, insert, &mut self.batch)?;
        }
        Ok(())
    }

    /// How many ops wait in the open batch.
    pub fn batch_len(&self) -> usize {
        self.batch.len()
    }

    /// Closes the open batch into one causal message stamped at `now_ms`; `None` if the batch
    /// is empty. The message is kept as unacknowledged until [`EditorSession::ack`].
    pub fn flush(&mut self, now_ms: f64) -> Option<Outgoing> {
        if self.batch.is_empty() {
            return None;
        }
        let ops = std::mem::take(&mut self.batch);
        let message = self.queue.send(ops, now_ms);
        let seq = message.seq();
        self.trace_send(self.replica(), &message.clock, now_ms);
        let payload = EditPayload {
            c: message.clock,
            o: message.payload,
        };
        let out = Outgoing {
            seq,
            payload: Payload::encode(&payload).expect("payloads serialize"),
        };
        self.unacked.insert(seq, (now_ms, payload));
        Some(out)
    }

    /// The relay made message `seq` durable: it need not be re-sent.
    pub fn ack(&mut self, seq: u64) {
        self.unacked.remove(&seq);
    }

    /// Every unacknowledged message, in order, to re-send after a reconnect (the relay
    /// acknowledges a duplicate again and neither stores nor forwards it twice).
    pub fn resend(&self) -> Vec<Outgoing> {
        self.unacked
            .iter()
            .map(|(&seq, (_, p))| Outgoing {
                seq,
                payload: Payload::encode(p).expect("payloads serialize"),
            })
            .collect()
    }

    /// The unacknowledged messages, for the side panel.
    pub fn unacked(&self) -> Vec<UnackedView> {
        self.unacked
            .iter()
            .map(|(&seq, (at, p))| UnackedView {
                seq,
                sent_at: *at,
                ops: p.o.iter().map(describe_op).collect(),
            })
            .collect()
    }

    /// Takes an `op` frame the relay stamped with sender `from` and sequence `seq`, received at
    /// `now_ms`. Returns the patches the deliveries made to the visible text (empty when the
    /// message is held or a duplicate). A malformed, mis-numbered or causally impossible
    /// message changes nothing. [`EditorError::Text`] means a *delivered* message carried an op
    /// the CRDT refused (a corrupt sender): the other ops were applied, and the view should
    /// re-read [`EditorSession::text`].
    ///
    /// A remote delivery may fall between local edits of the open batch: the batch's clock,
    /// stamped at [`EditorSession::flush`], then over-states its dependencies, which delays
    /// its delivery elsewhere a little but never breaks it.
    pub fn receive(
        &mut self,
        from: NodeId,
        seq: u64,
        payload: &Payload,
        now_ms: f64,
    ) -> Result<Vec<Patch>, EditorError> {
        let payload = EditPayload::from_json(payload.json())
            .map_err(|e| EditorError::Malformed(e.to_string()))?;
        let clock_seq = payload.c.get(from);
        if clock_seq != seq {
            return Err(EditorError::SeqMismatch {
                from,
                seq,
                clock_seq,
            });
        }
        if payload.o.is_empty() {
            return Err(EditorError::Malformed("a message without ops".into()));
        }
        if from == self.replica() {
            return self.adopt_own(seq, payload, now_ms);
        }
        let message = CausalMessage {
            sender: from,
            clock: payload.c,
            payload: payload.o,
        };
        let delivered = self.queue.receive(message, now_ms)?;
        let mut patches = Vec::new();
        let mut refused = None;
        for m in delivered {
            self.trace_delivery(&m, now_ms);
            for op in &m.payload {
                // Causal delivery applied every dependency first; a refusal means the message
                // itself is corrupt. The queue has delivered it: go on with the rest.
                match self.doc.apply_remote(op) {
                    Ok(p) => patches.extend(p),
                    Err(e) => refused = refused.or(Some(e)),
                }
            }
        }
        match refused {
            Some(e) => Err(e.into()),
            None => Ok(patches),
        }
    }

    /// Takes back one of our own messages that a reload kept but the relay never acknowledged
    /// (it is not in the catch-up): applied like a catch-up message of ours and kept as
    /// unacknowledged, to be re-sent. One the catch-up already brought is a duplicate and
    /// changes nothing. Call after the catch-up, in `seq` order.
    pub fn restore_own(
        &mut self,
        seq: u64,
        payload: &Payload,
        now_ms: f64,
    ) -> Result<Vec<Patch>, EditorError> {
        let me = self.replica();
        let before = self.queue.clock().get(me);
        let patches = self.receive(me, seq, payload, now_ms)?;
        if self.queue.clock().get(me) > before {
            let payload: EditPayload = payload.decode().expect("receive parsed it");
            self.unacked.insert(seq, (now_ms, payload));
        }
        Ok(patches)
    }

    /// One of our own messages from the relay's log: a duplicate if we made it in this
    /// session, else (a reload) adopted as our next broadcast.
    fn adopt_own(
        &mut self,
        seq: u64,
        payload: EditPayload,
        now_ms: f64,
    ) -> Result<Vec<Patch>, EditorError> {
        let sent = self.queue.clock().get(self.replica());
        if seq <= sent {
            return Ok(Vec::new());
        }
        if seq != sent + 1 || !self.batch.is_empty() {
            return Err(EditorError::OwnOutOfOrder {
                seq,
                expected: sent + 1,
            });
        }
        let mut scratch = self.doc.clone();
        let mut patches = Vec::new();
        for op in &payload.o {
            patches.extend(scratch.apply_remote(op)?);
        }
        self.doc = scratch;
        self.queue.stamp_send(now_ms);
        self.trace_send(self.replica(), &payload.c, now_ms);
        Ok(patches)
    }

    /// The tab's trace of the causal multicast (see the module docs), time in ms on the
    /// caller's clock. Only the first [`TRACE_CAP`] events are recorded.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Records the broadcast `(sender, clock[sender])` as a send on the sender's line, after
    /// the sender's previous recorded event and after every recorded broadcast that `clock`
    /// says the sender had delivered; its vector timestamp merges theirs. Returns the message
    /// id, or `None` when the trace is full.
    fn trace_send(
        &mut self,
        sender: NodeId,
        clock: &VectorClock,
        now_ms: f64,
    ) -> Option<MessageId> {
        let seq = clock.get(sender);
        if let Some(&id) = self.traced_sends.get(&(sender, seq)) {
            return self.trace.event(id).and_then(|e| e.kind.message());
        }
        if self.trace.len() >= TRACE_CAP {
            return None;
        }
        let mut lamport = 0;
        let mut vector = VectorTimestamp::new();
        let mut merge = |e: &Event| {
            lamport = lamport.max(e.lamport);
            for (&n, &c) in &e.vector {
                let entry = vector.entry(n).or_insert(0);
                *entry = (*entry).max(c);
            }
        };
        if let Some(last) = self.trace.last_event(sender) {
            merge(last);
        }
        for (node, count) in clock.iter().filter(|&(n, _)| n != sender) {
            // The latest recorded broadcast of `node` among the `count` the sender knew.
            if let Some((_, &id)) = self
                .traced_sends
                .range((node, 1)..=(node, count))
                .next_back()
            {
                merge(&self.trace.events()[id]);
            }
        }
        vector.insert(sender, self.trace.lane(sender).len() as u64 + 1);
        // A message id no earlier message has: every id is at most its send's event index.
        let message = self.trace.len() as MessageId;
        let id = self
            .trace
            .push(Event {
                node: sender,
                kind: EventKind::Send { message },
                lamport: lamport + 1,
                vector,
                physical_ms: Some(now_ms),
                label: format!("broadcast {sender}#{seq}"),
            })
            .expect("a fresh message id");
        self.traced_sends.insert((sender, seq), id);
        Some(message)
    }

    /// Records a delivered remote message: its send (if not yet recorded) and its receive here.
    fn trace_delivery(&mut self, m: &CausalMessage<Vec<TextOp>>, now_ms: f64) {
        // A send and its receive go in together, so the cap is checked for both at once.
        if self.trace.len() >= TRACE_CAP {
            return;
        }
        let seq = m.seq();
        if let Some(message) = self.trace_send(m.sender, &m.clock, now_ms) {
            let label = format!("deliver {}#{seq}", m.sender);
            // The hold-back queue delivers each message once, and never our own.
            let _ = self.trace.receive(self.replica(), message, now_ms, label);
        }
    }

    /// The held messages, each with the broadcast it waits for and since when.
    pub fn held(&self) -> Vec<HeldView> {
        self.queue
            .held()
            .map(|h| HeldView {
                sender: h.message.sender,
                seq: h.message.seq(),
                waiting_for: h.waiting_for,
                held_since: h.held_since,
                ops: h.message.payload.iter().map(describe_op).collect(),
            })
            .collect()
    }

    /// Every delivery in order (local sends included).
    pub fn delivered_log(&self) -> &[DeliveryRecord] {
        self.queue.delivered_log()
    }
}

/// A short human description of an op: `ins "héllo" at 3:0 after 1:4`, `del 2 from 1:7`.
pub fn describe_op(op: &TextOp) -> String {
    match op {
        TextOp::Insert {
            id,
            origin_left,
            text,
            ..
        } => {
            let shown: String = text.chars().take(24).collect();
            let more = if text.chars().count() > 24 { "…" } else { "" };
            match origin_left {
                Some(l) => format!("ins {shown:?}{more} as {id} after {l}"),
                None => format!("ins {shown:?}{more} as {id} at start"),
            }
        }
        TextOp::Delete { target, len } => format!("del {len} from {target}"),
    }
}

/// The splice that turns `old` into `new`, in UTF-16 code units: `(pos, deleted, inserted)`,
/// found by the common prefix and suffix (what one `input` event of a text area does). Never
/// splits a surrogate pair. `None` when the texts are equal.
pub fn diff_utf16(old: &str, new: &str) -> Option<(usize, usize, String)> {
    if old == new {
        return None;
    }
    let a: Vec<u16> = old.encode_utf16().collect();
    let b: Vec<u16> = new.encode_utf16().collect();
    let mut prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if prefix > 0 && is_high_surrogate(a[prefix - 1]) {
        prefix -= 1;
    }
    let max_suffix = a.len().min(b.len()) - prefix;
    let mut suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    if suffix > 0 && is_low_surrogate(a[a.len() - suffix]) {
        suffix -= 1;
    }
    let inserted = String::from_utf16(&b[prefix..b.len() - suffix])
        .expect("cut at surrogate boundaries of valid text");
    Some((prefix, a.len() - suffix - prefix, inserted))
}

fn is_high_surrogate(u: u16) -> bool {
    (0xD800..0xDC00).contains(&u)
}

fn is_low_surrogate(u: u16) -> bool {
    (0xDC00..0xE000).contains(&u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn splice(old: &str, new: &str) -> String {
        let (pos, del, ins) = diff_utf16(old, new).unwrap();
        let u: Vec<u16> = old.encode_utf16().collect();
        let mut out = String::from_utf16(&u[..pos]).unwrap();
        out.push_str(&ins);
        out.push_str(&String::from_utf16(&u[pos + del..]).unwrap());
        out
    }

    #[test]
    fn diff_finds_the_splice_and_keeps_surrogate_pairs_whole() {
        assert_eq!(diff_utf16("abc", "abc"), None);
        assert_eq!(diff_utf16("abc", "abXc"), Some((2, 0, "X".into())));
        assert_eq!(diff_utf16("abc", "ac"), Some((1, 1, String::new())));
        // 😀 (U+1F600) and 😁 (U+1F601) share their high surrogate.
        assert_eq!(diff_utf16("a😀b", "a😁b"), Some((1, 2, "😁".into())));
        // 🙂 (U+1F642) and 😂 (U+1F602) share their low surrogate.
        assert_eq!(diff_utf16("🙂", "😂"), Some((0, 2, "😂".into())));
        for (old, new) in [
            ("aaa", "aa"),
            ("", "日本語"),
            ("é😀😀", "é😀"),
            ("x😀y", "x😀😀y"),
        ] {
            assert_eq!(splice(old, new), new, "{old:?} → {new:?}");
        }
    }

    /// Delivers `out` from `from` to `to` and returns the patches.
    fn send(from: &EditorSession, out: &Outgoing, to: &mut EditorSession, t: f64) -> Vec<Patch> {
        to.receive(from.replica(), out.seq, &out.payload, t)
            .unwrap()
    }

    #[test]
    fn a_batch_of_typing_is_one_message_with_one_op() {
        let mut a = EditorSession::new(1);
        for (i, c) in "héllo 世界 😀".chars().enumerate() {
            let pos = a.text().encode_utf16().count();
            a.edit_utf16(pos, 0, &c.to_string()).unwrap();
            assert_eq!(a.batch_len(), 1, "after {i} keystrokes");
        }
        let out = a.flush(1.0).unwrap();
        assert_eq!(out.seq, 1);
        assert_eq!(a.flush(2.0), None);
        let mut b = EditorSession::new(2);
        send(&a, &out, &mut b, 3.0);
        assert_eq!(b.text(), "héllo 世界 😀");
        assert_eq!(b.clock().to_string(), "[1:1]");
    }

    #[test]
    fn held_messages_wait_for_their_dependency_then_all_converge() {
        let (mut a, mut b, mut c) = (
            EditorSession::new(1),
            EditorSession::new(2),
            EditorSession::new(3),
        );
        a.edit_utf16(0, 0, "hello").unwrap();
        let m1 = a.flush(0.0).unwrap();
        send(&a, &m1, &mut b, 1.0);
        b.edit_utf16(5, 0, " world").unwrap();
        let m2 = b.flush(2.0).unwrap();
        // c gets b's message first (a → c is the slow link): it is held, waiting for (1, 1).
        assert!(send(&b, &m2, &mut c, 3.0).is_empty());
        let held = c.held();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].waiting_for, Dependency { node: 1, seq: 1 });
        assert_eq!(held[0].held_since, 3.0);
        assert_eq!(c.text(), "");
        let patches = send(&a, &m1, &mut c, 10.0);
        assert_eq!(patches.len(), 2);
        assert!(c.held().is_empty());
        send(&b, &m2, &mut a, 11.0);
        assert_eq!(a.text(), "hello world");
        assert_eq!(b.text(), "hello world");
        assert_eq!(c.text(), "hello world");
        // a duplicate changes nothing
        assert!(send(&a, &m1, &mut c, 12.0).is_empty());
        assert_eq!(c.text(), "hello world");
    }

    #[test]
    fn remote_patches_move_the_caret() {
        let mut a = EditorSession::new(1);
        let mut b = EditorSession::new(2);
        a.edit_utf16(0, 0, "😀 day").unwrap();
        let m = a.flush(0.0).unwrap();
        send(&a, &m, &mut b, 0.0);
        // b's caret after "day" (UTF-16 6); a inserts "good " before "day"
        a.edit_utf16(3, 0, "good ").unwrap();
        let m = a.flush(1.0).unwrap();
        let patches = send(&a, &m, &mut b, 2.0);
        assert_eq!(b.text(), "😀 good day");
        assert_eq!(crate::replication::text::map_caret_utf16(6, &patches), 11);
    }

    #[test]
    fn unacked_messages_are_resent_until_acked() {
        let mut a = EditorSession::new(1);
        a.edit_utf16(0, 0, "ab").unwrap();
        let m1 = a.flush(0.0).unwrap();
        a.edit_utf16(2, 0, "c").unwrap();
        let m2 = a.flush(1.0).unwrap();
        assert_eq!(a.resend(), vec![m1.clone(), m2.clone()]);
        a.ack(1);
        assert_eq!(a.resend(), vec![m2.clone()]);
        assert_eq!(a.unacked()[0].seq, 2);
        a.ack(2);
        assert!(a.resend().is_empty());
    }

    /// Replica 1 types "abc", replica 2 appends "!": the relay's log is `[m1, m2]`. Returns
    /// replica 2 and the two messages.
    fn two_message_log() -> (EditorSession, Outgoing, Outgoing) {
        let mut a = EditorSession::new(1);
        let mut b = EditorSession::new(2);
        a.edit_utf16(0, 0, "abc").unwrap();
        let m1 = a.flush(0.0).unwrap();
        send(&a, &m1, &mut b, 0.0);
        b.edit_utf16(3, 0, "!").unwrap();
        let m2 = b.flush(1.0).unwrap();
        (b, m1, m2)
    }

    #[test]
    fn a_reloaded_replica_adopts_its_own_messages_from_the_catch_up() {
        let (mut b, m1, m2) = two_message_log();
        // the relay's log: m1, m2; a reloads and keeps replica id 1
        let mut a2 = EditorSession::new(1);
        a2.receive(1, m1.seq, &m1.payload, 5.0).unwrap();
        a2.receive(2, m2.seq, &m2.payload, 5.0).unwrap();
        assert_eq!(a2.text(), "abc!");
        // a replay of the same log (a reconnect) changes nothing
        a2.receive(1, m1.seq, &m1.payload, 6.0).unwrap();
        assert_eq!(a2.text(), "abc!");
        a2.edit_utf16(0, 0, "X").unwrap();
        let m3 = a2.flush(7.0).unwrap();
        assert_eq!(m3.seq, 2);
        send(&a2, &m3, &mut b, 8.0);
        assert_eq!(b.text(), "Xabc!");
        // skipping an own message is refused
        let mut a3 = EditorSession::new(1);
        assert_eq!(
            a3.receive(1, m3.seq, &m3.payload, 0.0),
            Err(EditorError::OwnOutOfOrder {
                seq: 2,
                expected: 1
            })
        );
    }

    #[test]
    fn a_reload_restores_own_messages_the_relay_never_acked() {
        let mut a = EditorSession::new(1);
        a.edit_utf16(0, 0, "ab").unwrap();
        let m1 = a.flush(0.0).unwrap();
        a.edit_utf16(2, 0, "ç😀").unwrap();
        let m2 = a.flush(1.0).unwrap();
        // the relay stored m1 only; a reloads with both kept
        let mut a2 = EditorSession::new(1);
        a2.receive(1, m1.seq, &m1.payload, 5.0).unwrap();
        assert!(a2.restore_own(m1.seq, &m1.payload, 6.0).unwrap().is_empty());
        assert_eq!(a2.restore_own(m2.seq, &m2.payload, 6.0).unwrap().len(), 1);
        assert_eq!(a2.text(), "abç😀");
        assert_eq!(a2.resend(), vec![m2]);
        a2.edit_utf16(0, 0, "X").unwrap();
        assert_eq!(a2.flush(7.0).unwrap().seq, 3);
    }

    #[test]
    fn bad_payloads_are_refused_and_change_nothing() {
        let mut a = EditorSession::new(1);
        a.edit_utf16(0, 0, "x").unwrap();
        let m = a.flush(0.0).unwrap();
        let mut b = EditorSession::new(2);
        let junk = Payload::from(serde_json::json!({"c": {"1": 1}, "o": "nope"}));
        assert!(matches!(
            b.receive(1, 1, &junk, 0.0),
            Err(EditorError::Malformed(_))
        ));
        assert_eq!(
            b.receive(1, 2, &m.payload, 0.0),
            Err(EditorError::SeqMismatch {
                from: 1,
                seq: 2,
                clock_seq: 1
            })
        );
        assert!(b.edit_utf16(5, 0, "y").is_err());
        b.edit_utf16(0, 0, "😀").unwrap();
        assert!(b.edit_utf16(1, 0, "y").is_err(), "inside a surrogate pair");
        assert_eq!(b.text(), "😀");
        send(&a, &m, &mut b, 1.0);
        assert_eq!(b.clock().get(1), 1);
    }

    /// The (node, kind, label) of every event, in recording order.
    fn trace_events(s: &EditorSession) -> Vec<(NodeId, &'static str, String)> {
        s.trace()
            .events()
            .iter()
            .map(|e| {
                let kind = match e.kind {
                    EventKind::Local => "local",
                    EventKind::Send { .. } => "send",
                    EventKind::Receive { .. } => "receive",
                };
                (e.node, kind, e.label.clone())
            })
            .collect()
    }

    #[test]
    fn traces_record_the_tabs_view_of_the_multicast_and_validate() {
        let (mut a, mut b, mut c) = (
            EditorSession::new(1),
            EditorSession::new(2),
            EditorSession::new(3),
        );
        a.edit_utf16(0, 0, "hello").unwrap();
        let m1 = a.flush(0.0).unwrap();
        send(&a, &m1, &mut b, 1.0);
        b.edit_utf16(5, 0, " world").unwrap();
        let m2 = b.flush(2.0).unwrap();
        // c gets m2 before m1: m2 is held (not traced) until m1 arrives.
        send(&b, &m2, &mut c, 3.0);
        assert!(c.trace().is_empty());
        send(&a, &m1, &mut c, 10.0);
        send(&b, &m2, &mut a, 11.0);
        c.edit_utf16(0, 0, ">").unwrap();
        let m3 = c.flush(12.0).unwrap();
        send(&c, &m3, &mut a, 13.0);

        for s in [&a, &b, &c] {
            assert_eq!(crate::trace::validate(s.trace()), vec![], "{}", s.replica());
        }
        let own = |n: NodeId, seq: u64| (n, "send", format!("broadcast {n}#{seq}"));
        let got =
            |n: NodeId, from: NodeId, seq: u64| (n, "receive", format!("deliver {from}#{seq}"));
        assert_eq!(
            trace_events(&a),
            vec![own(1, 1), own(2, 1), got(1, 2, 1), own(3, 1), got(1, 3, 1)]
        );
        assert_eq!(trace_events(&b), vec![own(1, 1), got(2, 1, 1), own(2, 1)]);
        // c delivered m1 then the held m2, in causal order, then sent m3.
        assert_eq!(
            trace_events(&c),
            vec![own(1, 1), got(3, 1, 1), own(2, 1), got(3, 2, 1), own(3, 1)]
        );
        // In c's trace b's broadcast comes after a's (b had delivered m1): happened-before.
        let t = c.trace();
        let (a_send, b_send) = (&t.events()[0], &t.events()[2]);
        assert_eq!(a_send.vector, VectorTimestamp::from([(1, 1)]));
        assert_eq!(b_send.vector, VectorTimestamp::from([(1, 1), (2, 1)]));
        assert!(b_send.lamport > a_send.lamport);
        // c's own send knows both deliveries; in a's trace c's send knows a's own send
        // (c had delivered m1) and b's.
        assert_eq!(
            t.events()[4].vector,
            VectorTimestamp::from([(1, 1), (2, 1), (3, 3)])
        );
        let c_send_at_a = &a.trace().events()[3];
        assert_eq!(
            c_send_at_a.vector,
            VectorTimestamp::from([(1, 1), (2, 1), (3, 1)])
        );
        assert_eq!(c_send_at_a.physical_ms, Some(13.0));
        // A duplicate delivery records nothing.
        let before = c.trace().len();
        send(&a, &m1, &mut c, 20.0);
        assert_eq!(c.trace().len(), before);
    }

    #[test]
    fn a_reloaded_replica_traces_its_adopted_messages_as_its_own_sends() {
        let (_b, m1, m2) = two_message_log();
        let mut a2 = EditorSession::new(1);
        a2.receive(1, m1.seq, &m1.payload, 5.0).unwrap();
        a2.receive(2, m2.seq, &m2.payload, 5.0).unwrap();
        a2.receive(1, m1.seq, &m1.payload, 6.0).unwrap();
        a2.edit_utf16(0, 0, "X").unwrap();
        a2.flush(7.0).unwrap();
        let kinds: Vec<_> = trace_events(&a2)
            .into_iter()
            .map(|(n, k, _)| (n, k))
            .collect();
        assert_eq!(
            kinds,
            vec![(1, "send"), (2, "send"), (1, "receive"), (1, "send")]
        );
        assert_eq!(crate::trace::validate(a2.trace()), vec![]);
    }

    #[test]
    fn the_trace_stops_growing_at_its_cap() {
        let mut a = EditorSession::new(1);
        let mut b = EditorSession::new(2);
        for i in 0..TRACE_CAP {
            a.edit_utf16(0, 0, "x").unwrap();
            let m = a.flush(i as f64).unwrap();
            send(&a, &m, &mut b, i as f64);
        }
        assert_eq!(a.trace().len(), TRACE_CAP);
        assert_eq!(b.trace().len(), TRACE_CAP);
        b.edit_utf16(0, 0, "y").unwrap();
        let m = b.flush(1e6).unwrap();
        send(&b, &m, &mut a, 1e6);
        assert_eq!(a.trace().len(), TRACE_CAP);
        assert_eq!(b.trace().len(), TRACE_CAP);
        assert_eq!(a.text(), b.text(), "the session goes on without recording");
        assert_eq!(crate::trace::validate(b.trace()), vec![]);
    }
}
