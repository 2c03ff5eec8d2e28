//! Leases and fencing tokens: C. Gray and D. Cheriton, "Leases: An Efficient Fault-Tolerant
//! Mechanism for Distributed File Cache Consistency" (SOSP 1989), and the fencing token of
//! M. Kleppmann, *Designing Data-Intensive Applications* (2017), ch. 8 ("The truth is defined
//! by the majority": a lock service hands out a monotonically increasing token with every
//! lease, and the storage refuses a write whose token is older than one it has already seen).
//!
//! A lease is a lock with a time limit: the [`LeaseServer`] grants it for a TTL measured on
//! *its own* clock, and takes it back when the TTL runs out whether or not the holder is still
//! working — the holder may be down, stopped in a garbage-collection pause, or its messages may
//! be stuck in a slow network, and the server cannot tell which. A holder that checks its lease
//! on its own clock and then pauses (or whose clock runs slow, or jumps back) goes on writing
//! after the server gave the lease to someone else.
//!
//! **Invariant (fencing).** Every grant carries a [`FencingToken`] larger than every earlier
//! one. A [`Storage`] with fencing on accepts a write only if its token is at least the highest
//! it has accepted, so the accepted writes are in token order: once a newer holder has written,
//! no older holder's write is accepted again — two holders' writes never interleave (judged by
//! [`crate::check::fencing`]). With fencing off, the storage accepts everything.
//!
//! Pure state machines: times are the caller's (`SimTime` on the server's clock, true time in
//! the lab), nothing here sleeps or reads a clock.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sim::SimTime;

/// A lease's fencing token: larger for every later grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FencingToken(pub u64);

impl std::fmt::Display for FencingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who holds a lease (a worker's name or number, the lab's choice).
pub type Holder = u32;

/// A granted lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Who holds it.
    pub holder: Holder,
    /// Its fencing token.
    pub token: FencingToken,
    /// When it was granted, on the server's clock.
    pub granted: SimTime,
    /// When it runs out, on the server's clock.
    pub expires: SimTime,
}

/// Why the server did not grant a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// Someone else holds an unexpired lease.
    #[error("the lease is held by {holder} until {}", expires.as_secs_f64())]
    Held {
        /// The holder.
        holder: Holder,
        /// When its lease runs out.
        expires: SimTime,
    },
    /// A release or renewal with a token that is not the current lease's.
    #[error("token {0} is not the current lease's")]
    NotCurrent(FencingToken),
    /// The token counter is exhausted.
    #[error("fencing tokens exhausted")]
    Exhausted,
}

/// The lease server: one resource, one lease at a time, a TTL, and a token counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseServer {
    /// How long a grant lasts, on the server's clock.
    ttl: Duration,
    /// The next grant's token.
    next_token: u64,
    /// The current lease, possibly expired (cleared by [`LeaseServer::expire`] or a new grant).
    current: Option<Lease>,
}

impl LeaseServer {
    /// A server granting leases of `ttl`, the first with token `first_token`.
    pub fn new(ttl: Duration, first_token: u64) -> Self {
        LeaseServer {
            ttl,
            next_token: first_token,
            current: None,
        }
    }

    /// The TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The lease in force at `now`, if any.
    pub fn holder(&self, now: SimTime) -> Option<Lease> {
        self.current.filter(|l| now < l.expires)
    }

    /// Grants the lease to `holder` if nobody holds an unexpired one (re-granting to the same
    /// holder gives it a new token too: every grant is fenced).
    pub fn acquire(&mut self, holder: Holder, now: SimTime) -> Result<Lease, LeaseError> {
        if let Some(l) = self.holder(now) {
            if l.holder != holder {
                return Err(LeaseError::Held {
                    holder: l.holder,
                    expires: l.expires,
                });
            }
        }
        let token = FencingToken(self.next_token);
        self.next_token = self
            .next_token
            .checked_add(1)
            .ok_or(LeaseError::Exhausted)?;
        let lease = Lease {
            holder,
            token,
            granted: now,
            expires: now + self.ttl,
        };
        self.current = Some(lease);
        Ok(lease)
    }

    /// Gives the lease back early.
    pub fn release(&mut self, token: FencingToken) -> Result<(), LeaseError> {
        match self.current {
            Some(l) if l.token == token => {
                self.current = None;
                Ok(())
            }
            _ => Err(LeaseError::NotCurrent(token)),
        }
    }

    /// Extends the current lease by a TTL from `now`, if `token` is its and it has not run
    /// out.
    pub fn renew(&mut self, token: FencingToken, now: SimTime) -> Result<Lease, LeaseError> {
        match self.current.as_mut() {
            Some(l) if l.token == token && now < l.expires => {
                l.expires = now + self.ttl;
                Ok(*l)
            }
            _ => Err(LeaseError::NotCurrent(token)),
        }
    }

    /// Clears the lease if it has run out by `now`, returning it (the server's "Lease
    /// Expired").
    pub fn expire(&mut self, now: SimTime) -> Option<Lease> {
        match self.current {
            Some(l) if now >= l.expires => {
                self.current = None;
                Some(l)
            }
            _ => None,
        }
    }
}

/// One write as the storage saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageWrite {
    /// When it arrived (true time).
    pub at: SimTime,
    /// Who wrote.
    pub holder: Holder,
    /// The token it carried.
    pub token: FencingToken,
    /// What it wrote.
    pub value: String,
    /// Whether the storage applied it.
    pub accepted: bool,
}

/// Why the storage refused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// A newer token has already been used.
    #[error("higher token ({highest}) already used")]
    Fenced {
        /// The highest token accepted.
        highest: FencingToken,
    },
}

/// The storage service: applies writes, refusing (with fencing on) a token older than the
/// highest it has accepted. Keeps its whole history for the checker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Storage {
    /// Whether it checks tokens.
    fencing: bool,
    /// The highest token accepted so far.
    highest: Option<FencingToken>,
    /// The value now.
    value: Option<String>,
    /// Every write that arrived, accepted or not, in arrival order.
    history: Vec<StorageWrite>,
}

impl Storage {
    /// A storage that checks fencing tokens (or, with `fencing` false, accepts every write).
    pub fn new(fencing: bool) -> Self {
        Storage {
            fencing,
            ..Storage::default()
        }
    }

    /// Whether it checks tokens.
    pub fn fencing(&self) -> bool {
        self.fencing
    }

    /// The current value.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// The highest token accepted.
    pub fn highest(&self) -> Option<FencingToken> {
        self.highest
    }

    /// Every write that arrived.
    pub fn history(&self) -> &[StorageWrite] {
        &self.history
    }

    /// Applies a write arriving at `at`, or refuses it.
    pub fn write(
        &mut self,
        holder: Holder,
        token: FencingToken,
        value: impl Into<String>,
        at: SimTime,
    ) -> Result<(), WriteError> {
        let refused = match self.highest {
            Some(h) if self.fencing && token < h => Some(h),
            _ => None,
        };
        let value = value.into();
        self.history.push(StorageWrite {
            at,
            holder,
            token,
            value: value.clone(),
            accepted: refused.is_none(),
        });
        if let Some(highest) = refused {
            return Err(WriteError::Fenced { highest });
        }
        self.highest = Some(self.highest.map_or(token, |h| h.max(token)));
        self.value = Some(value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: Holder = 0;
    const B: Holder = 1;

    #[test]
    fn the_seed_story_a_paused_holder_is_fenced_off() {
        let mut server = LeaseServer::new(Duration::from_secs(5), 101);
        let mut storage = Storage::new(true);
        let a = server.acquire(A, SimTime::ZERO).unwrap();
        assert_eq!(a.token, FencingToken(101));
        assert!(matches!(
            server.acquire(B, SimTime::from_secs(2)),
            Err(LeaseError::Held { holder: A, .. })
        ));
        assert_eq!(server.expire(SimTime::from_secs(4)), None);
        assert_eq!(server.expire(SimTime::from_secs(5)), Some(a));
        let b = server.acquire(B, SimTime::from_secs(5)).unwrap();
        assert_eq!(b.token, FencingToken(102));
        storage
            .write(B, b.token, "B", SimTime::from_secs(5))
            .unwrap();
        // A wakes from a 10 s pause and writes with its old token.
        assert_eq!(
            storage.write(A, a.token, "A", SimTime::from_secs(10)),
            Err(WriteError::Fenced {
                highest: FencingToken(102)
            })
        );
        assert_eq!(storage.value(), Some("B"));
        assert_eq!(storage.history().len(), 2);
        // Without fencing the same write goes through.
        let mut open = Storage::new(false);
        open.write(B, b.token, "B", SimTime::from_secs(5)).unwrap();
        open.write(A, a.token, "A", SimTime::from_secs(10)).unwrap();
        assert_eq!(open.value(), Some("A"));
    }

    #[test]
    fn release_and_renew_need_the_current_token() {
        let mut server = LeaseServer::new(Duration::from_secs(5), 1);
        let a = server.acquire(A, SimTime::ZERO).unwrap();
        let renewed = server.renew(a.token, SimTime::from_secs(4)).unwrap();
        assert_eq!(renewed.expires, SimTime::from_secs(9));
        assert!(
            server.renew(a.token, SimTime::from_secs(9)).is_err(),
            "ran out"
        );
        assert_eq!(
            server.release(FencingToken(7)),
            Err(LeaseError::NotCurrent(FencingToken(7)))
        );
        server.release(a.token).unwrap();
        assert_eq!(server.holder(SimTime::from_secs(1)), None);
        assert_eq!(
            server.acquire(B, SimTime::from_secs(1)).unwrap().token,
            FencingToken(2)
        );
    }

    proptest! {
        /// Whatever the order of requests, tokens only grow, and a fenced storage's accepted
        /// writes are in token order.
        #[test]
        fn tokens_grow_and_fenced_writes_are_ordered(
            ops in proptest::collection::vec((0u32..3, 0u64..20, any::<bool>()), 1..60)
        ) {
            let mut server = LeaseServer::new(Duration::from_secs(3), 1);
            let mut storage = Storage::new(true);
            let mut granted: Vec<Lease> = Vec::new();
            let mut now = SimTime::ZERO;
            for (who, dt, write) in ops {
                now = now + Duration::from_millis(dt * 250);
                server.expire(now);
                if write && !granted.is_empty() {
                    let l = granted[who as usize % granted.len()];
                    let _ = storage.write(l.holder, l.token, "v", now);
                } else if let Ok(l) = server.acquire(who, now) {
                    if let Some(last) = granted.last() {
                        prop_assert!(l.token > last.token);
                    }
                    granted.push(l);
                }
            }
            let accepted: Vec<FencingToken> =
                storage.history().iter().filter(|w| w.accepted).map(|w| w.token).collect();
            prop_assert!(accepted.windows(2).all(|w| w[0] <= w[1]));
        }
    }
}
