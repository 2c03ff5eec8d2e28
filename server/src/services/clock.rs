//! Where the network services read time: the host clock, or the host clock with an injected
//! skew and drift. The services never set the system clock; a server that should be wrong by
//! +250 ms serves `HostClock` through an [`InjectedClock`].
//!
//! Invariant: an [`InjectedClock`] reads `inner + skew + drift · (inner − origin)`, where
//! `origin` is the inner clock's reading when it was made, so a drift of 50 ppm gains exactly
//! 50 µs per second of inner time from the moment the clock was created.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

/// A source of wall-clock time.
pub trait ClockSource: Send + Sync + 'static {
    /// Unix time, nanoseconds (negative before 1970).
    fn now_unix_nanos(&self) -> i128;
}

impl<C: ClockSource + ?Sized> ClockSource for Arc<C> {
    fn now_unix_nanos(&self) -> i128 {
        (**self).now_unix_nanos()
    }
}

/// The operating system's real-time clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostClock;

impl ClockSource for HostClock {
    fn now_unix_nanos(&self) -> i128 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        }
    }
}

/// A skew and a drift added to another clock; both may be changed while it runs (the time
/// service page's sliders), without a jump in the drift term.
#[derive(Debug)]
pub struct InjectedClock<C> {
    /// The clock it is built on.
    inner: C,
    /// Skew, drift and the origin of the drift term.
    state: Mutex<Injection>,
}

#[derive(Debug, Clone, Copy)]
struct Injection {
    /// Added to every reading, ns.
    skew_nanos: f64,
    /// Rate error, ppm.
    drift_ppm: f64,
    /// The inner reading the drift term counts from, ns.
    origin: i128,
    /// The drift term accumulated before `origin` (by earlier drift settings), ns.
    carried_nanos: f64,
}

impl<C: ClockSource> InjectedClock<C> {
    /// `inner` shifted by `skew_secs` and running `drift_ppm` fast from now on.
    pub fn new(inner: C, skew_secs: f64, drift_ppm: f64) -> Self {
        let origin = inner.now_unix_nanos();
        InjectedClock {
            inner,
            state: Mutex::new(Injection {
                skew_nanos: skew_secs * 1e9,
                drift_ppm,
                origin,
                carried_nanos: 0.0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Injection> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current skew, seconds.
    pub fn skew_secs(&self) -> f64 {
        self.lock().skew_nanos / 1e9
    }

    /// The current drift, ppm.
    pub fn drift_ppm(&self) -> f64 {
        self.lock().drift_ppm
    }

    /// Sets the skew (a step of the difference).
    pub fn set_skew_secs(&self, skew: f64) {
        self.lock().skew_nanos = skew * 1e9;
    }

    /// Sets the drift; what the old drift accumulated is kept, so the clock does not jump.
    pub fn set_drift_ppm(&self, ppm: f64) {
        let now = self.inner.now_unix_nanos();
        let mut s = self.lock();
        s.carried_nanos += (now - s.origin) as f64 * s.drift_ppm * 1e-6;
        s.origin = now;
        s.drift_ppm = ppm;
    }

    /// How far this clock is from its inner clock now, seconds.
    pub fn error_secs(&self) -> f64 {
        let inner = self.inner.now_unix_nanos();
        (self.reading(inner) - inner) as f64 / 1e9
    }

    fn reading(&self, inner: i128) -> i128 {
        let s = *self.lock();
        let drift = (inner - s.origin) as f64 * s.drift_ppm * 1e-6 + s.carried_nanos;
        inner + (s.skew_nanos + drift).round() as i128
    }
}

impl<C: ClockSource> ClockSource for InjectedClock<C> {
    fn now_unix_nanos(&self) -> i128 {
        self.reading(self.inner.now_unix_nanos())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;

    /// A clock the test moves by hand.
    #[derive(Debug, Default)]
    struct Manual(AtomicI64);
    impl ClockSource for Manual {
        fn now_unix_nanos(&self) -> i128 {
            i128::from(self.0.load(Ordering::SeqCst))
        }
    }

    #[test]
    fn skew_and_drift_are_added_to_the_inner_clock() {
        let inner = Arc::new(Manual(AtomicI64::new(1_000_000_000_000)));
        let c = InjectedClock::new(inner.clone(), 0.250, 50.0);
        assert_eq!(c.now_unix_nanos(), 1_000_250_000_000);
        inner.0.fetch_add(10_000_000_000, Ordering::SeqCst); // 10 s later: +500 µs of drift
        assert_eq!(c.now_unix_nanos(), 1_010_250_500_000);
        // A new drift continues from the accumulated one; a new skew steps.
        c.set_drift_ppm(-100.0);
        inner.0.fetch_add(1_000_000_000, Ordering::SeqCst);
        assert_eq!(c.now_unix_nanos(), 1_011_250_400_000);
        c.set_skew_secs(0.0);
        assert!((c.error_secs() - 0.000_400).abs() < 1e-12);
    }

    #[test]
    fn the_host_clock_is_after_2020() {
        assert!(HostClock.now_unix_nanos() > 1_577_836_800_000_000_000);
    }
}
