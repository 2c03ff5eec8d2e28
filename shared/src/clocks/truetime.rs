//! TrueTime — J. C. Corbett et al., "Spanner: Google's Globally-Distributed Database"
//! (OSDI 2012), sections 3 and 4.1.2.
//!
//! **Guarantee:** if the local clock's error really is bounded as configured, the absolute time
//! at which [`TrueTime::now`] is called lies within the returned
//! [`TtInterval`] `[earliest, latest]`. From that follows *commit wait*: a transaction that
//! takes the commit timestamp `s = now().latest` and waits until [`TrueTime::after`]`(s)` holds
//! before making its writes visible is externally consistent — any transaction that starts
//! after it commits gets a larger timestamp.
//!
//! The uncertainty grows between synchronisations: `ε = base + drift_bound × (t − last_sync)`
//! (Spanner's sawtooth: 1 ms base plus 200 µs/s assumed drift, about 1–7 ms). All times are
//! **milliseconds as `f64`** on the local clock, passed in by the caller.

use serde::{Deserialize, Serialize};

/// An interval of absolute time, ms: the true time lies in `[earliest, latest]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TtInterval {
    /// The earliest the true time can be.
    pub earliest: f64,
    /// The latest the true time can be.
    pub latest: f64,
}

impl TtInterval {
    /// The half-width ε of the interval, ms.
    pub fn epsilon(&self) -> f64 {
        (self.latest - self.earliest) / 2.0
    }
}

/// A refused TrueTime configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrueTimeError {
    /// The base uncertainty must be a finite number ≥ 0.
    #[error("base uncertainty must be finite and at least 0 ms, got {0}")]
    BadBase(f64),
    /// The drift bound must be a finite rate in `[0, 1)`.
    #[error("drift bound must be a finite rate in [0, 1), got {0}")]
    BadDrift(f64),
}

/// One node's TrueTime: its uncertainty model and the local time of its last synchronisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrueTime {
    /// ε right after a synchronisation (the reference's own error plus the round trip), ms.
    base_uncertainty_ms: f64,
    /// The assumed worst-case drift rate of the local oscillator (200 ppm = `0.0002`).
    drift_bound: f64,
    /// Local time of the last synchronisation, ms.
    last_sync_ms: f64,
}

impl TrueTime {
    /// A TrueTime last synchronised at local time `synced_at_ms`.
    pub fn new(
        base_uncertainty_ms: f64,
        drift_bound: f64,
        synced_at_ms: f64,
    ) -> Result<Self, TrueTimeError> {
        if !(base_uncertainty_ms.is_finite() && base_uncertainty_ms >= 0.0) {
            return Err(TrueTimeError::BadBase(base_uncertainty_ms));
        }
        if !(drift_bound.is_finite() && (0.0..1.0).contains(&drift_bound)) {
            return Err(TrueTimeError::BadDrift(drift_bound));
        }
        Ok(TrueTime {
            base_uncertainty_ms,
            drift_bound,
            last_sync_ms: synced_at_ms,
        })
    }

    /// Records a synchronisation with the time masters at local time `local_ms`: the
    /// uncertainty falls back to the base.
    pub fn sync(&mut self, local_ms: f64) {
        self.last_sync_ms = local_ms;
    }

    /// Records a synchronisation at local time `local_ms` whose own error bound is
    /// `base_uncertainty_ms` (a Cristian exchange's RTT/2, say): ε falls to it and grows from
    /// there. A base that is not finite and ≥ 0 is refused and nothing changes.
    pub fn sync_with(
        &mut self,
        local_ms: f64,
        base_uncertainty_ms: f64,
    ) -> Result<(), TrueTimeError> {
        if !(base_uncertainty_ms.is_finite() && base_uncertainty_ms >= 0.0) {
            return Err(TrueTimeError::BadBase(base_uncertainty_ms));
        }
        self.base_uncertainty_ms = base_uncertainty_ms;
        self.last_sync_ms = local_ms;
        Ok(())
    }

    /// The assumed drift bound (a rate: 200 ppm is `0.0002`).
    pub fn drift_bound(&self) -> f64 {
        self.drift_bound
    }

    /// Local time of the last synchronisation, ms.
    pub fn last_sync(&self) -> f64 {
        self.last_sync_ms
    }

    /// ε at local time `local_ms`, ms.
    pub fn epsilon(&self, local_ms: f64) -> f64 {
        let since = (local_ms - self.last_sync_ms).max(0.0);
        self.base_uncertainty_ms + self.drift_bound * since
    }

    /// `TT.now()` at local time `local_ms`: `[local − ε, local + ε]`.
    pub fn now(&self, local_ms: f64) -> TtInterval {
        let eps = self.epsilon(local_ms);
        TtInterval {
            earliest: local_ms - eps,
            latest: local_ms + eps,
        }
    }

    /// `TT.after(t)`: whether `t` has certainly passed at local time `local_ms`.
    pub fn after(&self, t: f64, local_ms: f64) -> bool {
        t < self.now(local_ms).earliest
    }

    /// `TT.before(t)`: whether `t` has certainly not arrived at local time `local_ms`.
    pub fn before(&self, t: f64, local_ms: f64) -> bool {
        t > self.now(local_ms).latest
    }

    /// Spanner's commit timestamp for a commit at local time `local_ms`: `now().latest`, no
    /// earlier than any true time the commit could be happening at.
    pub fn commit_timestamp(&self, local_ms: f64) -> f64 {
        self.now(local_ms).latest
    }

    /// Commit wait: how long, in local ms from `local_ms`, until `commit_ts` is certainly in
    /// the past (`after(commit_ts)` holds for any later local time), assuming no
    /// synchronisation happens meanwhile. 0 if it already is.
    pub fn commit_wait(&self, commit_ts: f64, local_ms: f64) -> f64 {
        // earliest(local + w) = local + w − base − drift·(local + w − last_sync) must pass
        // commit_ts; with d = max(0, local − last_sync) that is w·(1 − drift) ≥ commit_ts −
        // local + ε(local).
        let needed = commit_ts - local_ms + self.epsilon(local_ms);
        if needed < 0.0 {
            0.0
        } else {
            needed / (1.0 - self.drift_bound)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn uncertainty_grows_between_syncs_like_a_sawtooth() {
        let mut tt = TrueTime::new(1.0, 0.0002, 0.0).unwrap();
        assert_eq!(tt.epsilon(0.0), 1.0);
        assert!((tt.epsilon(30_000.0) - 7.0).abs() < 1e-9); // 30 s after sync: 1 + 6 ms
        let iv = tt.now(30_000.0);
        assert!((iv.epsilon() - 7.0).abs() < 1e-9);
        assert!((iv.earliest - 29_993.0).abs() < 1e-9);
        tt.sync(30_000.0);
        assert_eq!(tt.epsilon(30_000.0), 1.0);
    }

    #[test]
    fn seed_example_commit_wait() {
        // [TrueTime] Now: [100ms, 105ms]: the seed's interval, ε = 2.5 ms around 102.5 ms.
        let tt = TrueTime::new(2.5, 0.0, 0.0).unwrap();
        let iv = tt.now(102.5);
        assert_eq!((iv.earliest, iv.latest), (100.0, 105.0));
        let s = tt.commit_timestamp(102.5);
        assert_eq!(s, 105.0);
        // Wait out the uncertainty: 2ε = 5 ms, as the seed prints.
        assert_eq!(tt.commit_wait(s, 102.5), 5.0);
        assert!(!tt.after(s, 107.5));
        assert!(tt.after(s, 107.5 + 1e-9));
        assert!(tt.before(105.5, 102.5));
        assert!(!tt.before(104.0, 102.5));
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert_eq!(
            TrueTime::new(-1.0, 0.0, 0.0),
            Err(TrueTimeError::BadBase(-1.0))
        );
        assert_eq!(
            TrueTime::new(1.0, 1.0, 0.0),
            Err(TrueTimeError::BadDrift(1.0))
        );
        assert!(TrueTime::new(f64::NAN, 0.0, 0.0).is_err());
    }

    proptest! {
        /// After the computed commit wait the timestamp has passed, and not a moment before.
        #[test]
        fn commit_wait_is_exact(base in 0.0f64..10.0, drift in 0.0f64..0.01, since in 0.0f64..60_000.0, ahead in -20.0f64..20.0) {
            let tt = TrueTime::new(base, drift, 0.0).unwrap();
            let local = since;
            let s = tt.commit_timestamp(local) + ahead;
            let w = tt.commit_wait(s, local);
            prop_assert!(w >= 0.0);
            prop_assert!(tt.after(s, local + w + 1e-6));
            if w > 1e-6 {
                prop_assert!(!tt.after(s, local + w - 1e-6));
            }
        }

        /// External consistency in a two-node simulation: the true time lies in each node's
        /// interval, and a transaction starting after a commit-waited one gets a larger
        /// timestamp, whatever the clock errors within the bound.
        #[test]
        fn commit_wait_gives_external_consistency(
            err_a in -1.0f64..1.0, err_b in -1.0f64..1.0, start in 0.0f64..1_000.0, gap in 0.0f64..5.0
        ) {
            // Both clocks are within base = 1 ms of true time; no drift in this run.
            let tt = TrueTime::new(1.0, 0.0, 0.0).unwrap();
            let local_a = start + err_a;
            prop_assert!(tt.now(local_a).earliest <= start && start <= tt.now(local_a).latest);
            let s1 = tt.commit_timestamp(local_a);
            let commit_true = start + tt.commit_wait(s1, local_a);
            // T2 starts at node B after T1's commit became visible.
            let t2_true = commit_true + gap;
            let s2 = tt.commit_timestamp(t2_true + err_b);
            prop_assert!(s2 > s1);
        }
    }
}
