//! A physical (hardware) clock that drifts, wanders, jitters and jumps, and the two ways a
//! synchronization algorithm can correct it: slewing and stepping.
//!
//! The model is the one of Mills, *Computer Network Time Synchronization* (2nd ed., 2011),
//! ch. 11–12, and of ntpd's `adjtime()` discipline: a crystal oscillator runs at a nominal
//! rate plus a frequency error (drift, in parts per million); the error itself wanders as a
//! random walk (temperature, ageing); reading the clock adds a little noise (jitter).
//! Corrections are applied either by **slewing** — running the clock at most 500 ppm faster
//! or slower until the correction is absorbed, as ntpd and `adjtime(2)` do — or by
//! **stepping** the value at once.
//!
//! Guarantee: **a slewed clock never goes backwards**. With slewing, the clock's rate stays
//! `1 + drift − slew > 0` (slews are bounded by [`MAX_ANY_SLEW_PPM`], half a second per
//! second; ntpd's is 500 ppm), so its value is non-decreasing in true time. Stepping (and
//! injected jumps) can move it backwards, and [`Adjustment::Stepped`] says so.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::sim::{network::standard_normal, SimTime};

/// ntpd's maximum slew rate: 500 ppm (0.5 ms per second).
pub const MAX_SLEW_PPM: f64 = 500.0;

/// The fastest slew any policy may ask for: 0.5 s per second. ntpd stays at
/// [`MAX_SLEW_PPM`]; a demonstration daemon (the time service's `adjustment_rate`) may slew
/// faster, and the clock's rate `1 + drift − 0.5` stays positive, so it still never goes
/// backwards.
pub const MAX_ANY_SLEW_PPM: f64 = 500_000.0;

/// ntpd's default step threshold: corrections larger than 128 ms are stepped.
pub const STEP_THRESHOLD_SECS: f64 = 0.128;

/// The initial state and the noise of a physical clock.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClockSpec {
    /// The clock's reading minus true time at time zero, seconds.
    pub offset: f64,
    /// Frequency error, ppm: the clock gains `drift_ppm` microseconds per second.
    pub drift_ppm: f64,
    /// Drift wander: standard deviation of the random walk of the drift, ppm per √second.
    pub wander_ppm: f64,
    /// Standard deviation of the noise on each timestamp read, seconds.
    pub jitter: f64,
}

impl ClockSpec {
    /// A clock with the given drift and no offset, wander or jitter.
    pub fn drifting(drift_ppm: f64) -> Self {
        Self {
            offset: 0.0,
            drift_ppm,
            wander_ppm: 0.0,
            jitter: 0.0,
        }
    }
}

/// How a synchronization algorithm applies a correction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AdjustPolicy {
    /// Always slew, at most `max_ppm` (never backwards).
    Slew {
        /// The slew rate bound, ppm (ntpd: 500; at most [`MAX_ANY_SLEW_PPM`]).
        max_ppm: f64,
    },
    /// Always step.
    Step,
    /// ntpd's rule: step when the correction exceeds `threshold` seconds, otherwise slew.
    StepAbove {
        /// Step threshold, seconds (ntpd: 0.128).
        threshold: f64,
        /// The slew rate bound, ppm.
        max_ppm: f64,
    },
}

impl AdjustPolicy {
    /// Slewing at ntpd's 500 ppm.
    pub const SLEW: AdjustPolicy = AdjustPolicy::Slew {
        max_ppm: MAX_SLEW_PPM,
    };
    /// ntpd's default: step above 128 ms, slew at 500 ppm below.
    pub const NTPD: AdjustPolicy = AdjustPolicy::StepAbove {
        threshold: STEP_THRESHOLD_SECS,
        max_ppm: MAX_SLEW_PPM,
    };
}

/// Which way a step moved the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The clock's value increased.
    Forward,
    /// The clock's value decreased: timestamps taken after it may be smaller than before.
    Backward,
}

impl Direction {
    fn of(delta: f64) -> Self {
        if delta < 0.0 {
            Direction::Backward
        } else {
            Direction::Forward
        }
    }
}

/// What an adjustment did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Adjustment {
    /// The value was set at once.
    Stepped {
        /// The correction, seconds.
        delta: f64,
        /// Which way the value moved.
        direction: Direction,
    },
    /// The correction will be absorbed gradually.
    Slewing {
        /// The correction, seconds.
        delta: f64,
        /// How long absorbing it takes at the bounded rate, seconds of true time.
        duration: f64,
    },
}

/// A drifting physical clock in true (simulated) time.
///
/// Architecture invariant: the clock's value is a function of true time that only changes
/// through [`PhysicalClock::advance_to`] (rate), [`PhysicalClock::adjust`] (step or slew) and
/// [`PhysicalClock::jump`] (fault); between steps and jumps it is non-decreasing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhysicalClock {
    /// Noise parameters (the initial offset and drift are only read at creation).
    spec: ClockSpec,
    /// The current frequency error, ppm (starts at `spec.drift_ppm`, wanders).
    drift_ppm: f64,
    /// A frequency correction applied by a discipline (NTP's frequency estimate), ppm.
    freq_correction_ppm: f64,
    /// The true time the clock was last advanced to.
    last_true: SimTime,
    /// The clock's value at `last_true`, seconds.
    value: f64,
    /// Correction still to be slewed in, seconds.
    slew_remaining: f64,
    /// The rate at which `slew_remaining` is applied, ppm.
    slew_ppm: f64,
    /// Everything the discipline has added so far (steps, slews, frequency correction),
    /// seconds; jumps are faults and are not counted.
    corrected: f64,
}

impl PhysicalClock {
    /// A clock at true time zero.
    pub fn new(spec: ClockSpec) -> Self {
        Self {
            spec,
            drift_ppm: spec.drift_ppm,
            freq_correction_ppm: 0.0,
            last_true: SimTime::ZERO,
            value: spec.offset,
            slew_remaining: 0.0,
            slew_ppm: MAX_SLEW_PPM,
            corrected: 0.0,
        }
    }

    /// Runs the clock forward to true time `t` (no-op if `t` is not later than the last
    /// advance). The drift wanders by a random walk step drawn from `rng`.
    pub fn advance_to(&mut self, t: SimTime, rng: &mut impl Rng) {
        if t <= self.last_true {
            return;
        }
        let dt = (t - self.last_true).as_secs_f64();
        self.last_true = t;
        let rate = 1.0 + (self.drift_ppm + self.freq_correction_ppm) * 1e-6;
        let mut increment = rate * dt;
        self.corrected += self.freq_correction_ppm * 1e-6 * dt;
        if self.slew_remaining != 0.0 {
            let most = self.slew_ppm * 1e-6 * dt;
            let applied = self.slew_remaining.clamp(-most, most);
            self.slew_remaining -= applied;
            self.corrected += applied;
            increment += applied;
        }
        // Rates are bounded far below 1 s/s, so this only guards against absurd settings.
        self.value += increment.max(0.0);
        if self.spec.wander_ppm > 0.0 {
            self.drift_ppm += self.spec.wander_ppm * dt.sqrt() * standard_normal(rng);
        }
    }

    /// The clock's value at the last advance, seconds (no read noise).
    pub fn value(&self) -> f64 {
        self.value
    }

    /// A timestamp as a process would read it: the value plus read jitter.
    pub fn timestamp(&self, rng: &mut impl Rng) -> f64 {
        if self.spec.jitter > 0.0 {
            self.value + self.spec.jitter * standard_normal(rng)
        } else {
            self.value
        }
    }

    /// The clock's value minus true time, seconds, at the last advance.
    pub fn offset(&self) -> f64 {
        self.value - self.last_true.as_secs_f64()
    }

    /// The current frequency error, ppm, including any correction and an ongoing slew.
    pub fn effective_rate_ppm(&self) -> f64 {
        let slewing = if self.slew_remaining == 0.0 {
            0.0
        } else {
            self.slew_ppm.copysign(self.slew_remaining)
        };
        self.drift_ppm + self.freq_correction_ppm + slewing
    }

    /// The oscillator's own frequency error, ppm (without corrections).
    pub fn drift_ppm(&self) -> f64 {
        self.drift_ppm
    }

    /// Changes the oscillator's frequency error (e.g. a temperature change), ppm.
    pub fn set_drift_ppm(&mut self, ppm: f64) {
        self.drift_ppm = ppm;
    }

    /// The discipline's frequency correction, ppm.
    pub fn frequency_correction_ppm(&self) -> f64 {
        self.freq_correction_ppm
    }

    /// Sets the discipline's frequency correction, clamped to ±500 ppm as in ntpd.
    pub fn set_frequency_correction_ppm(&mut self, ppm: f64) {
        self.freq_correction_ppm = ppm.clamp(-MAX_SLEW_PPM, MAX_SLEW_PPM);
    }

    /// Everything the discipline has added to the clock so far (steps, slews, frequency
    /// correction), seconds: subtracting it gives what the clock would read uncorrected.
    pub fn total_correction(&self) -> f64 {
        self.corrected
    }

    /// Correction not yet slewed in, seconds.
    pub fn slew_remaining(&self) -> f64 {
        self.slew_remaining
    }

    /// A fault: the value jumps by `delta` seconds at once (a VM resume, an operator's
    /// `date -s`, a leap second handled badly). Cancels any slew in progress.
    pub fn jump(&mut self, delta: f64) -> Direction {
        self.value += delta;
        self.slew_remaining = 0.0;
        Direction::of(delta)
    }

    /// Applies a correction of `delta` seconds under `policy`. A new correction replaces any
    /// slew still in progress (as `adjtime(2)` does).
    pub fn adjust(&mut self, delta: f64, policy: AdjustPolicy) -> Adjustment {
        let slew = |clock: &mut Self, max_ppm: f64| {
            let max_ppm = max_ppm.clamp(1.0, MAX_ANY_SLEW_PPM);
            clock.slew_remaining = delta;
            clock.slew_ppm = max_ppm;
            Adjustment::Slewing {
                delta,
                duration: delta.abs() / (max_ppm * 1e-6),
            }
        };
        match policy {
            AdjustPolicy::Slew { max_ppm } => slew(self, max_ppm),
            AdjustPolicy::StepAbove { threshold, max_ppm } if delta.abs() <= threshold => {
                slew(self, max_ppm)
            }
            AdjustPolicy::Step | AdjustPolicy::StepAbove { .. } => {
                self.value += delta;
                self.corrected += delta;
                self.slew_remaining = 0.0;
                Adjustment::Stepped {
                    delta,
                    direction: Direction::of(delta),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::{rngs::StdRng, SeedableRng};

    use super::*;

    #[test]
    fn drift_accumulates_linearly() {
        let mut rng = StdRng::seed_from_u64(0);
        let mut c = PhysicalClock::new(ClockSpec::drifting(50.0));
        c.advance_to(SimTime::from_secs(86_400), &mut rng);
        // 50 ppm ≈ 4.32 s/day.
        assert!((c.offset() - 4.32).abs() < 1e-9, "offset {}", c.offset());
    }

    #[test]
    fn slewing_takes_time_at_500_ppm_and_stepping_is_immediate() {
        let mut rng = StdRng::seed_from_u64(0);
        let mut c = PhysicalClock::new(ClockSpec::drifting(0.0));
        let a = c.adjust(-0.010, AdjustPolicy::SLEW);
        assert_eq!(
            a,
            Adjustment::Slewing {
                delta: -0.010,
                duration: 20.0
            }
        );
        c.advance_to(SimTime::from_secs(10), &mut rng);
        assert!((c.offset() + 0.005).abs() < 1e-12);
        c.advance_to(SimTime::from_secs(30), &mut rng);
        assert!((c.offset() + 0.010).abs() < 1e-12);
        assert_eq!(c.slew_remaining(), 0.0);
        assert_eq!(
            c.adjust(-1.0, AdjustPolicy::NTPD),
            Adjustment::Stepped {
                delta: -1.0,
                direction: Direction::Backward
            }
        );
        assert!((c.offset() + 1.010).abs() < 1e-12);
    }

    proptest! {
        /// Whatever the corrections and the slew rate, a slewed clock never goes backwards.
        #[test]
        fn slewing_never_moves_the_clock_backwards(
            drift in -200.0f64..200.0,
            deltas in prop::collection::vec(-5.0f64..5.0, 1..20),
            steps in prop::collection::vec(1u64..5_000, 1..60),
            max_ppm in 1.0f64..MAX_ANY_SLEW_PPM,
        ) {
            let mut rng = StdRng::seed_from_u64(1);
            let mut c = PhysicalClock::new(ClockSpec { offset: 0.0, drift_ppm: drift, wander_ppm: 1.0, jitter: 0.0 });
            let mut t = SimTime::ZERO;
            let mut last = c.value();
            for (i, ms) in steps.iter().enumerate() {
                c.adjust(deltas[i % deltas.len()], AdjustPolicy::Slew { max_ppm });
                t = t + std::time::Duration::from_millis(*ms);
                c.advance_to(t, &mut rng);
                prop_assert!(c.value() >= last, "went back from {} to {}", last, c.value());
                last = c.value();
            }
        }
    }
}
