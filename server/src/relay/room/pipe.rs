//! A delivery *pipe*: one task per directed link `from → to` with a connected recipient. It
//! keeps the link's ops in a FIFO queue and releases each at `received + delay + jitter`, but
//! never before the op ahead of it — so jitter adds delay without reordering the link, as
//! over TCP. A cut link holds its queue; on heal, everything overdue goes at once, in order.
//! The pipe reads the link's settings live from a `watch` channel, so moving a slider
//! affects ops already queued. One pipe per link means a slow link never slows another.

use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use chronoscope::protocol::Link;
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use super::Outbox;

/// An op travelling on a link.
pub(crate) struct InFlight {
    /// When the relay received it; the link's delay counts from here.
    pub(crate) at: Instant,
    /// Where in `[0, 1)` of the link's jitter this op falls.
    pub(crate) jitter: f64,
    /// Its `op` frame, serialized once for every recipient.
    pub(crate) text: Utf8Bytes,
}

/// Deliver one link's ops in FIFO order, each no earlier than its due time, holding them all
/// while the link is cut.
pub(crate) async fn pipe(
    mut queue: mpsc::UnboundedReceiver<InFlight>,
    mut config: watch::Receiver<Link>,
    out: Outbox,
    gone: CancellationToken,
) {
    // Due time of the op delivered last: the next one never goes before it.
    let mut last_due: Option<Instant> = None;
    loop {
        let item = tokio::select! {
            _ = gone.cancelled() => return,
            item = queue.recv() => match item { Some(i) => i, None => return },
        };
        loop {
            let link = *config.borrow_and_update();
            if link.cut {
                tokio::select! {
                    _ = gone.cancelled() => return,
                    changed = config.changed() => if changed.is_err() { return },
                }
                continue;
            }
            let extra = item.jitter * f64::from(link.jitter_ms);
            let mut due = item.at
                + Duration::from_millis(u64::from(link.delay_ms))
                + Duration::from_secs_f64(extra / 1000.0);
            if let Some(last) = last_due {
                due = due.max(last);
            }
            if due <= Instant::now() {
                last_due = Some(due);
                break;
            }
            tokio::select! {
                _ = gone.cancelled() => return,
                _ = tokio::time::sleep_until(due) => {
                    last_due = Some(due);
                    break;
                }
                changed = config.changed() => if changed.is_err() { return },
            }
        }
        if !out.send(item.text) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    //! The pipe's schedule on tokio's paused clock: exact, deterministic times.
    use super::*;
    use crate::relay::outbox::OutboxReader;

    fn link(delay_ms: u32, jitter_ms: u32, cut: bool) -> Link {
        Link {
            from: 1,
            to: 2,
            delay_ms,
            jitter_ms,
            cut,
        }
    }

    struct Harness {
        queue: mpsc::UnboundedSender<InFlight>,
        config: watch::Sender<Link>,
        out: OutboxReader,
        start: Instant,
    }

    fn harness(l: Link) -> Harness {
        let (queue, rx) = mpsc::unbounded_channel();
        let config = watch::Sender::new(l);
        let (out_tx, out) = Outbox::new(usize::MAX);
        tokio::spawn(pipe(
            rx,
            config.subscribe(),
            out_tx,
            CancellationToken::new(),
        ));
        Harness {
            queue,
            config,
            out,
            start: Instant::now(),
        }
    }

    impl Harness {
        fn send(&self, name: &str, jitter: f64) {
            let item = InFlight {
                at: Instant::now(),
                jitter,
                text: name.to_owned().into(),
            };
            self.queue.send(item).unwrap();
        }
        /// The next delivery and its time since the start, in ms.
        async fn recv(&mut self) -> (String, u128) {
            let text = self.out.recv().await.unwrap();
            (text.as_str().to_owned(), self.start.elapsed().as_millis())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_delayed_link_delivers_exactly_at_its_delay() {
        let mut h = harness(link(300, 0, false));
        h.send("a", 0.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        h.send("b", 0.0);
        assert_eq!(h.recv().await, ("a".into(), 300));
        assert_eq!(h.recv().await, ("b".into(), 400));
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_delays_but_never_reorders() {
        let mut h = harness(link(100, 200, false));
        h.send("a", 0.9); // due at 280
        h.send("b", 0.0); // due at 100, but waits for a
        tokio::time::sleep(Duration::from_millis(10)).await;
        h.send("c", 0.5); // due at 210, but waits for a
        assert_eq!(h.recv().await, ("a".into(), 280));
        assert_eq!(h.recv().await, ("b".into(), 280));
        assert_eq!(h.recv().await, ("c".into(), 280));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_link_holds_until_healed_then_flushes_in_order() {
        let mut h = harness(link(50, 0, true));
        for name in ["a", "b", "c"] {
            h.send(name, 0.0);
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(h.out.try_recv().is_none(), "a cut link delivers nothing");
        h.config.send_replace(link(50, 0, false));
        for name in ["a", "b", "c"] {
            assert_eq!(h.recv().await, (name.into(), 1000));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn moving_the_slider_reschedules_queued_ops() {
        let mut h = harness(link(5000, 0, false));
        h.send("a", 0.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        h.config.send_replace(link(200, 0, false));
        assert_eq!(h.recv().await, ("a".into(), 200));
    }
}
