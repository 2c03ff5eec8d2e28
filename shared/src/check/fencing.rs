//! Mutual exclusion as the storage saw it: whether two lease holders' writes interleaved
//! (M. Kleppmann, *Designing Data-Intensive Applications*, 2017, ch. 8: a client whose lease
//! expired during a pause goes on writing and corrupts the data unless the storage checks
//! fencing tokens).
//!
//! The checker reads only the storage's history — every write in arrival order, with its
//! holder, its token and whether it was applied — so it judges the storage, not the workers'
//! intentions. A lease grant's token is larger than every earlier grant's, so a holder of token
//! `t` writing *after* a write with token `u > t` was applied is a stale holder writing over its
//! successor's work.
//!
//! **Invariant.** [`check_fencing`] reports an [`Interleaving`] for every applied write whose
//! token is lower than that of an earlier applied write of another holder, and only those: an
//! empty report means the applied writes are grouped by lease in grant order.

use serde::Serialize;

use crate::coordination::lease::{FencingToken, Holder, StorageWrite};
use crate::sim::SimTime;

/// A stale holder's write applied after a newer holder's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Interleaving {
    /// The newer holder, whose write came first.
    pub newer: Holder,
    /// Its token.
    pub newer_token: FencingToken,
    /// When its write arrived.
    pub newer_at: SimTime,
    /// The stale holder, whose write was applied afterwards.
    pub stale: Holder,
    /// Its token.
    pub stale_token: FencingToken,
    /// When its write arrived.
    pub stale_at: SimTime,
}

/// Every interleaving in `history`, in arrival order of the stale writes.
pub fn check_fencing(history: &[StorageWrite]) -> Vec<Interleaving> {
    let mut out = Vec::new();
    // The applied write with the highest token so far.
    let mut newest: Option<&StorageWrite> = None;
    for w in history.iter().filter(|w| w.accepted) {
        match newest {
            Some(n) if w.token < n.token && w.holder != n.holder => out.push(Interleaving {
                newer: n.holder,
                newer_token: n.token,
                newer_at: n.at,
                stale: w.holder,
                stale_token: w.token,
                stale_at: w.at,
            }),
            Some(n) if w.token <= n.token => {}
            _ => newest = Some(w),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(holder: Holder, token: u64, secs: u64, accepted: bool) -> StorageWrite {
        StorageWrite {
            at: SimTime::from_secs(secs),
            holder,
            token: FencingToken(token),
            value: format!("{holder}"),
            accepted,
        }
    }

    #[test]
    fn a_stale_write_after_the_successor_is_found() {
        let h = [w(0, 101, 1, true), w(1, 102, 5, true), w(0, 101, 10, true)];
        let found = check_fencing(&h);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].newer, found[0].stale), (1, 0));
        assert_eq!(found[0].stale_at, SimTime::from_secs(10));
    }

    #[test]
    fn refused_writes_and_writes_in_token_order_are_fine() {
        // Fenced: the stale write was refused.
        assert!(check_fencing(&[w(1, 102, 5, true), w(0, 101, 10, false)]).is_empty());
        // A stale holder writing before its successor wrote is not an interleaving.
        assert!(check_fencing(&[w(0, 101, 6, true), w(1, 102, 7, true)]).is_empty());
        // One holder's writes, one lease.
        assert!(check_fencing(&[w(0, 5, 1, true), w(0, 5, 2, true)]).is_empty());
        assert!(check_fencing(&[]).is_empty());
    }
}
