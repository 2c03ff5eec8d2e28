//! Keepalive of one connection, as a pure state machine over [`Instant`]s: silent for one
//! `period` → send a WebSocket ping; silent for as long again → the peer is gone (a sleeping
//! laptop, a cut network) and the connection is closed, so it leaves the room's presence.
//! Browsers answer pings by themselves; any frame heard, a pong included, counts as life.
//!
//! The connection's reader sleeps until [`Keepalive::deadline`] and calls
//! [`Keepalive::expired`] when it passes; the windows are tested here exactly, on instants,
//! with no clock at all.

use std::time::Duration;

use tokio::time::Instant;

/// What to do when the deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// Send a ping; the peer has one more period to answer.
    Ping,
    /// The peer did not answer the ping: close the connection.
    Dead,
}

/// The keepalive state of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Keepalive {
    /// Silence this long earns a ping; as long again after it, a close.
    period: Duration,
    /// When the peer was last heard from.
    heard: Instant,
    /// Whether a ping is out, unanswered.
    pinged: bool,
}

impl Keepalive {
    /// A connection heard from at `now` (its opening).
    pub(crate) fn new(period: Duration, now: Instant) -> Self {
        Keepalive {
            period,
            heard: now,
            pinged: false,
        }
    }

    /// Any frame arrived at `now`.
    pub(crate) fn heard(&mut self, now: Instant) {
        self.heard = now;
        self.pinged = false;
    }

    /// When [`Keepalive::expired`] is next due.
    pub(crate) fn deadline(&self) -> Instant {
        self.heard + self.period * if self.pinged { 2 } else { 1 }
    }

    /// The deadline passed with nothing heard.
    pub(crate) fn expired(&mut self) -> Expired {
        if self.pinged {
            Expired::Dead
        } else {
            self.pinged = true;
            Expired::Ping
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Duration = Duration::from_millis(300);

    #[test]
    fn a_silent_peer_is_pinged_after_one_period_and_dead_after_two() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(P, t0);
        assert_eq!(k.deadline(), t0 + P);
        assert_eq!(k.expired(), Expired::Ping);
        assert_eq!(k.deadline(), t0 + 2 * P);
        assert_eq!(k.expired(), Expired::Dead);
    }

    #[test]
    fn an_answer_to_the_ping_restarts_the_period() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(P, t0);
        assert_eq!(k.expired(), Expired::Ping);
        let answered = t0 + P + Duration::from_millis(299);
        k.heard(answered);
        assert_eq!(
            k.deadline(),
            answered + P,
            "a full period again, not the grace"
        );
        assert_eq!(k.expired(), Expired::Ping, "pinged again, not dropped");
    }

    #[test]
    fn traffic_postpones_the_ping() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(P, t0);
        for i in 1..=10 {
            k.heard(t0 + i * P / 2);
        }
        assert_eq!(k.deadline(), t0 + 5 * P + P);
    }
}
