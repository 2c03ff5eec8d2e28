//! NTP's on-wire calculation, clock filter, combining and adaptive poll interval, and the
//! protocol itself: the packet codec, symmetric-key MACs, and the client's and server's logic.
//!
//! D. Mills, J. Martin, J. Burbank, W. Kasch, RFC 5905, *Network Time Protocol Version 4*,
//! 2010: §8 (the four timestamps), §10 (clock filter), §11.2.3 (combine), §13 (poll). Source
//! selection is Marzullo's algorithm in [`super::marzullo`].
//!
//! The protocol is layered as ntpd-rs layers its `ntp-proto` crate: everything here is pure
//! (no sockets, no clock reads); the server crate owns the UDP sockets and the clock.
//! - [`packet`] — the 48-byte header, extension fields, MAC and Kiss-o'-Death on the wire.
//! - [`auth`] — chrony's key file format and the MACs (MD5/SHA-x hashes, AES-CMAC).
//! - [`client`] — a request with a random cookie, checking a reply, the per-server estimate
//!   and the selection among servers.
//! - [`server`] — answering a request: timestamps, authentication, rate limiting.
//!
//! Guarantee: for one exchange, if the server's clock is correct, the true offset lies within
//! **offset ± delay/2** (each direction took between 0 and `delay`); asymmetric delay biases
//! the offset by half the asymmetry, never more. The filter keeps the minimum-delay sample of
//! the last 8, which has the least room for that bias.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::marzullo::Interval;

pub mod auth;
pub mod client;
pub mod packet;
pub mod server;

/// NTP's frequency tolerance φ: dispersion grows 15 ppm of elapsed time.
pub const PHI: f64 = 15e-6;

/// The number of samples the clock filter keeps.
pub const FILTER_STAGES: usize = 8;

/// One on-wire exchange: `t1` client send, `t2` server receive, `t3` server send, `t4` client
/// receive, each on its own side's clock, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// Client clock when the request left.
    pub t1: f64,
    /// Server clock when the request arrived.
    pub t2: f64,
    /// Server clock when the response left.
    pub t3: f64,
    /// Client clock when the response arrived.
    pub t4: f64,
}

impl Exchange {
    /// θ = ((t2 − t1) + (t3 − t4)) / 2: server minus client.
    pub fn offset(&self) -> f64 {
        ((self.t2 - self.t1) + (self.t3 - self.t4)) / 2.0
    }

    /// δ = (t4 − t1) − (t3 − t2): the round trip without the server's processing time.
    pub fn delay(&self) -> f64 {
        ((self.t4 - self.t1) - (self.t3 - self.t2)).max(0.0)
    }

    /// An exchange from four readings in nanoseconds since the Unix epoch (`t1`, `t4` on the
    /// client's clock, `t2`, `t3` on the server's), kept relative to `t1` so the seconds keep
    /// nanosecond precision.
    pub fn from_unix_nanos(t1: i128, t2: i128, t3: i128, t4: i128) -> Self {
        let rel = |t: i128| (t - t1) as f64 / 1e9;
        Exchange {
            t1: 0.0,
            t2: rel(t2),
            t3: rel(t3),
            t4: rel(t4),
        }
    }

    /// The sample this exchange gives, taken at client time `t4`, with the given precision
    /// (initial dispersion), seconds.
    pub fn sample(&self, precision: f64) -> Sample {
        Sample {
            offset: self.offset(),
            delay: self.delay(),
            dispersion: precision,
            at: self.t4,
        }
    }
}

/// A filtered measurement of one source.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Source minus local clock, seconds.
    pub offset: f64,
    /// Round-trip delay, seconds.
    pub delay: f64,
    /// Error bound at `at` (precision, grows at φ), seconds.
    pub dispersion: f64,
    /// Local clock time of the measurement, seconds.
    pub at: f64,
}

impl Sample {
    /// The dispersion aged to local time `now`.
    pub fn dispersion_at(&self, now: f64) -> f64 {
        self.dispersion + PHI * (now - self.at).max(0.0)
    }

    /// The root distance λ = δ/2 + ε: the half-width of the interval that must contain the
    /// true offset.
    pub fn distance_at(&self, now: f64) -> f64 {
        self.delay / 2.0 + self.dispersion_at(now)
    }

    /// The correctness interval `offset ± λ`, Marzullo's input.
    pub fn interval_at(&self, now: f64) -> Interval {
        Interval::around(self.offset, self.distance_at(now))
    }
}

/// NTP's clock filter: the last [`FILTER_STAGES`] samples of one source; the best is the one
/// with the smallest delay (the least room for asymmetry).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClockFilter {
    /// Newest last.
    samples: VecDeque<Sample>,
}

impl ClockFilter {
    /// An empty filter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sample, forgetting the oldest beyond eight.
    pub fn push(&mut self, sample: Sample) {
        if self.samples.len() == FILTER_STAGES {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// The minimum-delay sample (the newest among equal delays).
    pub fn best(&self) -> Option<Sample> {
        self.samples
            .iter()
            .rev()
            .min_by(|a, b| a.delay.total_cmp(&b.delay))
            .copied()
    }

    /// RMS of the differences between each sample's offset and the best one's: NTP's peer
    /// jitter.
    pub fn jitter(&self) -> f64 {
        let Some(best) = self.best() else { return 0.0 };
        if self.samples.len() < 2 {
            return 0.0;
        }
        let sum: f64 = self
            .samples
            .iter()
            .map(|s| (s.offset - best.offset).powi(2))
            .sum();
        (sum / (self.samples.len() - 1) as f64).sqrt()
    }

    /// How many samples are held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Forgets every sample (after the local clock was stepped, old offsets are stale).
    pub fn clear(&mut self) {
        self.samples.clear();
    }
}

/// Combines the survivors' offsets, each weighted by the inverse of its root distance
/// (RFC 5905 §11.2.3). Returns `None` for no survivors.
pub fn combine(survivors: &[(f64, f64)]) -> Option<f64> {
    if survivors.is_empty() {
        return None;
    }
    let (mut num, mut den) = (0.0, 0.0);
    for &(offset, distance) in survivors {
        let w = 1.0 / distance.max(1e-9);
        num += w * offset;
        den += w;
    }
    Some(num / den)
}

/// The adaptive poll interval: 2^exponent seconds; it lengthens while offsets stay within a
/// few jitters (the clock is stable, polling less costs nothing) and shortens when they do
/// not (RFC 5905 §13, the "poll-adjust" hysteresis).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PollInterval {
    /// Current exponent.
    exponent: i32,
    /// Smallest exponent.
    min: i32,
    /// Largest exponent.
    max: i32,
    /// Hysteresis counter.
    counter: i32,
}

/// RFC 5905's poll-adjust limit.
const POLL_LIMIT: i32 = 30;
/// RFC 5905's poll-adjust gate: offsets within this many jitters count as stable.
const POLL_GATE: f64 = 4.0;

impl PollInterval {
    /// Starts at `min`, adapts within `[min, max]` (exponents of two seconds).
    pub fn new(min: i32, max: i32) -> Self {
        let max = max.max(min);
        Self {
            exponent: min,
            min,
            max,
            counter: 0,
        }
    }

    /// The current interval in seconds.
    pub fn seconds(&self) -> f64 {
        2f64.powi(self.exponent)
    }

    /// The current exponent.
    pub fn exponent(&self) -> i32 {
        self.exponent
    }

    /// Feeds the latest offset and jitter; returns the new exponent.
    pub fn update(&mut self, offset: f64, jitter: f64) -> i32 {
        if offset.abs() < POLL_GATE * jitter {
            self.counter += self.exponent;
            if self.counter > POLL_LIMIT {
                self.counter = POLL_LIMIT;
                if self.exponent < self.max {
                    self.counter = 0;
                    self.exponent += 1;
                }
            }
        } else {
            self.counter -= 2 * self.exponent;
            if self.counter < -POLL_LIMIT {
                self.counter = -POLL_LIMIT;
                if self.exponent > self.min {
                    self.counter = 0;
                    self.exponent -= 1;
                }
            }
        }
        self.exponent
    }
}

/// A least-squares estimate of the local clock's frequency error relative to its sources,
/// from (local time, uncorrected offset) points, as chrony does: the slope of the offsets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FrequencyEstimator {
    /// Newest last, at most [`FILTER_STAGES`].
    points: VecDeque<(f64, f64)>,
}

impl FrequencyEstimator {
    /// An empty estimator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a point: local time and the offset the source would show if no correction had
    /// been applied to the local clock.
    pub fn push(&mut self, at: f64, raw_offset: f64) {
        if self.points.len() == FILTER_STAGES {
            self.points.pop_front();
        }
        self.points.push_back((at, raw_offset));
    }

    /// The local clock's frequency error in ppm (positive: it runs fast), once three points
    /// are in.
    pub fn ppm(&self) -> Option<f64> {
        if self.points.len() < 3 {
            return None;
        }
        let n = self.points.len() as f64;
        let mx = self.points.iter().map(|p| p.0).sum::<f64>() / n;
        let my = self.points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = self.points.iter().map(|p| (p.0 - mx).powi(2)).sum();
        if sxx <= 0.0 {
            return None;
        }
        let sxy: f64 = self.points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        // Offset = source − local; a fast local clock makes it decrease.
        Some(-sxy / sxx * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_timestamps_give_offset_and_delay() {
        // Client 1 s behind the server; 10 ms out, 30 ms back, 1 ms processing.
        let x = Exchange {
            t1: 100.0,
            t2: 101.010,
            t3: 101.011,
            t4: 100.041,
        };
        assert!((x.delay() - 0.040).abs() < 1e-9);
        // Asymmetry 20 ms biases the offset by half of it: 0.990 instead of 1.000.
        assert!((x.offset() - 0.990).abs() < 1e-9);
        assert!((x.offset() - 1.0).abs() <= x.delay() / 2.0);
    }

    #[test]
    fn the_filter_keeps_the_minimum_delay_of_the_last_eight() {
        let mut f = ClockFilter::new();
        let delays = [
            0.030, 0.005, 0.020, 0.025, 0.022, 0.021, 0.027, 0.029, 0.026, 0.024,
        ];
        for (i, d) in delays.iter().enumerate() {
            f.push(Sample {
                offset: i as f64 * 0.001,
                delay: *d,
                dispersion: 0.0,
                at: i as f64,
            });
        }
        assert_eq!(f.len(), 8);
        // 0.005 (index 1) has aged out; the best of the last eight is 0.020 (index 2).
        assert_eq!(f.best().unwrap().delay, 0.020);
        assert!(f.jitter() > 0.0);
    }

    #[test]
    fn combining_weights_by_inverse_distance() {
        let c = combine(&[(0.010, 0.001), (0.020, 0.003)]).unwrap();
        assert!((c - 0.0125).abs() < 1e-12);
        assert_eq!(combine(&[]), None);
    }

    #[test]
    fn the_poll_interval_backs_off_when_stable_and_tightens_when_not() {
        let mut p = PollInterval::new(4, 10);
        for _ in 0..40 {
            p.update(0.0001, 0.001);
        }
        assert!(p.exponent() > 4);
        let high = p.exponent();
        for _ in 0..40 {
            p.update(0.1, 0.001);
        }
        assert!(p.exponent() < high);
        assert_eq!(p.exponent(), 4);
    }

    #[test]
    fn frequency_is_the_slope_of_uncorrected_offsets() {
        let mut e = FrequencyEstimator::new();
        for k in 0..5 {
            let t = k as f64 * 16.0;
            e.push(t, 0.003 - 50e-6 * t);
        }
        assert!((e.ppm().unwrap() - 50.0).abs() < 1e-6);
    }
}
