//! A connection's outbox: the frames on their way to one socket, bounded in bytes.
//!
//! The room never waits for a slow reader — that would slow every tab of the room down to the
//! slowest one. Instead, when the frames queued for one connection pass its limit, the outbox
//! *overflows*: it refuses every later frame, and the connection closes with WebSocket code
//! 1013 (try again later) and a reason. The tab reconnects, resumes its replica id and catches
//! up from the room's log, so nothing is lost (every op is in the log) and nothing is applied
//! twice (a tab drops what it already has, by `(sender, seq)`). Because nothing after the
//! first refused frame is ever sent on that connection, the tab never sees a gap followed by
//! later ops.
//!
//! The room can also end an outbox itself ([`Outbox::close`], e.g. when it could not store one
//! of the tab's ops): the same rule holds — nothing after it is sent, and the connection closes
//! with the code and reason given.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc, Mutex,
};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How many bytes of live frames may wait for one connection before it is closed as too far
/// behind (the kernel's socket buffers hold more on top).
pub const MAX_OUTBOX_BYTES: usize = 4 << 20;

/// State shared by the sending and the receiving side.
#[derive(Debug)]
struct Shared {
    /// Bytes of frames queued and not yet taken by the writer.
    queued: AtomicUsize,
    /// The bound on `queued`.
    limit: usize,
    /// Cancelled at the first frame refused for lack of room, or when the room closes the
    /// outbox.
    ended: CancellationToken,
    /// The close code and reason of the first end.
    why: Mutex<Option<(u16, String)>>,
}

impl Shared {
    /// End the outbox (if it has not ended yet) with `code` and `reason`.
    fn end(&self, code: u16, reason: impl FnOnce() -> String) {
        let mut why = self.why.lock().expect("outbox lock poisoned");
        if why.is_none() {
            let mut reason = reason();
            // A close frame's reason is at most 123 bytes.
            let mut cut = reason.len().min(MAX_REASON_BYTES);
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
            *why = Some((code, reason));
        }
        self.ended.cancel();
    }
}

/// The longest reason a WebSocket close frame carries (RFC 6455 §5.5: 125 bytes of payload,
/// two of them the code).
const MAX_REASON_BYTES: usize = 123;

/// WebSocket close code 1013 (try again later): the reader fell too far behind.
pub(crate) const CLOSE_BEHIND: u16 = 1013;

/// WebSocket close code 1011 (internal error): the relay could not store one of the tab's ops.
pub(crate) const CLOSE_NOT_STORED: u16 = 1011;

/// The sending side: the room, its pipes and the connection's reader write here.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    /// Each frame with the bytes it counts for.
    tx: mpsc::UnboundedSender<(Utf8Bytes, usize)>,
    shared: Arc<Shared>,
}

/// The receiving side, drained by the connection's writer.
#[derive(Debug)]
pub(crate) struct OutboxReader {
    rx: mpsc::UnboundedReceiver<(Utf8Bytes, usize)>,
    shared: Arc<Shared>,
}

impl Outbox {
    /// An outbox holding at most `limit` bytes of frames.
    pub(crate) fn new(limit: usize) -> (Outbox, OutboxReader) {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queued: AtomicUsize::new(0),
            limit,
            ended: CancellationToken::new(),
            why: Mutex::new(None),
        });
        (
            Outbox {
                tx,
                shared: shared.clone(),
            },
            OutboxReader { rx, shared },
        )
    }

    /// Queue a frame. Returns false if it was refused: the connection is gone, or has
    /// overflowed (now, or before).
    pub(crate) fn send(&self, text: Utf8Bytes) -> bool {
        let n = text.len();
        self.push(text, n)
    }

    /// Queue a frame of the room's log for a catch-up. It counts for nothing: a catch-up is
    /// bounded by the log, whose bytes it shares (a `Utf8Bytes` clone is a reference count),
    /// and a tab must be able to join a room whose log is larger than the limit.
    pub(crate) fn send_catch_up(&self, text: Utf8Bytes) -> bool {
        self.push(text, 0)
    }

    fn push(&self, text: Utf8Bytes, n: usize) -> bool {
        let shared = &self.shared;
        if shared.ended.is_cancelled() {
            return false;
        }
        let before = shared.queued.fetch_add(n, Ordering::AcqRel);
        if before + n > shared.limit {
            shared.queued.fetch_sub(n, Ordering::AcqRel);
            shared.end(CLOSE_BEHIND, || {
                format!(
                    "this tab fell more than {} MiB behind the room; reconnect to catch up",
                    shared.limit >> 20
                )
            });
            return false;
        }
        if self.tx.send((text, n)).is_err() {
            shared.queued.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// End the outbox: nothing more is sent on it, and its connection closes with `code` and
    /// `reason` (unless it had ended already, which keeps the first reason).
    pub(crate) fn close(&self, code: u16, reason: String) {
        self.shared.end(code, || reason);
    }

    /// Resolves once the outbox has ended (overflowed or closed); returns the close code and
    /// reason for the connection.
    pub(crate) async fn ended(&self) -> (u16, String) {
        self.shared.ended.cancelled().await;
        self.shared
            .why
            .lock()
            .expect("outbox lock poisoned")
            .clone()
            .expect("an ended outbox has a reason")
    }
}

impl OutboxReader {
    /// The next frame, or `None` once every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<Utf8Bytes> {
        let (text, n) = self.rx.recv().await?;
        self.shared.queued.fetch_sub(n, Ordering::AcqRel);
        Some(text)
    }

    /// The close code and reason, if the outbox has ended.
    #[cfg(test)]
    pub(crate) fn ended_with(&self) -> Option<(u16, String)> {
        self.shared
            .why
            .lock()
            .expect("outbox lock poisoned")
            .clone()
    }

    /// The next frame if one is queued.
    #[cfg(test)]
    pub(crate) fn try_recv(&mut self) -> Option<Utf8Bytes> {
        let (text, n) = self.rx.try_recv().ok()?;
        self.shared.queued.fetch_sub(n, Ordering::AcqRel);
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Utf8Bytes {
        "x".repeat(n).into()
    }

    #[tokio::test]
    async fn frames_within_the_limit_pass_and_draining_makes_room() {
        let (out, mut reader) = Outbox::new(100);
        assert!(out.send(frame(60)));
        assert!(out.send(frame(40)));
        assert_eq!(reader.recv().await.unwrap().len(), 60);
        assert!(out.send(frame(60)), "the drained frame freed its bytes");
        assert_eq!(reader.recv().await.unwrap().len(), 40);
        assert_eq!(reader.recv().await.unwrap().len(), 60);
    }

    #[tokio::test]
    async fn the_first_frame_over_the_limit_overflows_it_for_good() {
        let (out, mut reader) = Outbox::new(100);
        assert!(out.send(frame(90)));
        assert!(!out.send(frame(20)));
        assert_eq!(out.ended().await.0, CLOSE_BEHIND);
        assert_eq!(reader.recv().await.unwrap().len(), 90);
        // Even with room again, nothing after the refused frame is taken: the tab must never
        // see a gap followed by later frames.
        assert!(!out.send(frame(1)));
        drop(out);
        assert!(reader.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_catch_up_larger_than_the_limit_passes_and_counts_for_nothing() {
        let (out, mut reader) = Outbox::new(100);
        for _ in 0..10 {
            assert!(out.send_catch_up(frame(60)));
        }
        assert!(
            out.send(frame(100)),
            "the live frames still have the whole limit"
        );
        for _ in 0..10 {
            reader.recv().await.unwrap();
        }
        assert_eq!(reader.recv().await.unwrap().len(), 100);
        assert!(out.send(frame(100)));
    }

    #[tokio::test]
    async fn a_closed_connection_refuses_frames() {
        let (out, reader) = Outbox::new(100);
        drop(reader);
        assert!(!out.send(frame(1)));
    }
}
