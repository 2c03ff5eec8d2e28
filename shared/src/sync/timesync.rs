//! The time synchronisation daemon of the NTP-for-Raft proposal, as a pure state machine: the
//! caller polls peers (the proposal's `TimeSyncService.GetTime` over gRPC), hands each round's
//! four-timestamp exchanges to [`TimeSync::round`], and applies the [`Decision`] to its clock.
//!
//! The algorithm is the proposal's, built from NTP's parts (D. Mills, RFC 5905): per peer the
//! offset θ and delay δ of each exchange and a clock filter (minimum delay of the last eight,
//! restarted when a sample's interval misses the best one's: the peer's clock has moved);
//! at least `min_peers` fresh answers before a result is trusted; Marzullo's intersection
//! (K. Marzullo, 1984) over `offset ± (δ/2 + ε)` rejects falsetickers; the truechimers are
//! combined by inverse distance; a history of `history_size` uncorrected offsets gives the
//! drift (their slope, when it is statistically significant) and the adaptive interval; the
//! clock is corrected by the least that puts it inside the majority's interval (nothing if it
//! is inside already), slewing at `adjustment_rate` and stepping only past `step_threshold`. When too few peers answer
//! the node keeps its own clock, its error bound grows by φ per second, and it retries with
//! exponential backoff (from `timeout` up to `sync_interval`) until the partition heals.
//!
//! Guarantee: a correction is only ever derived from a Marzullo majority of at least
//! `min_peers` fresh answers, so fewer than half lying peers cannot move the clock outside the
//! correct peers' intervals; the error bound [`Tracking::error_bound`] never shrinks without
//! such a synchronisation.

use std::collections::{BTreeMap, VecDeque};

use rand::{rngs::SmallRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{
    marzullo::{self, Chimer, Interval},
    ntp::{combine, ClockFilter, Exchange, PHI},
};
use crate::{
    clocks::physical_clock::{AdjustPolicy, Adjustment, ClockSpec, PhysicalClock},
    sim::SimTime,
};

/// The proposal's `TIME_SYNC_CONFIG`, plus the step threshold its "gradual adjustment"
/// implies. Times in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeSyncConfig {
    /// Seconds between synchronisations when all is well.
    pub sync_interval: f64,
    /// Fresh answers needed before a result is trusted.
    pub min_peers: usize,
    /// Peers polled per round (the most reachable ones).
    pub max_peers: usize,
    /// How long to wait for one peer's answer.
    pub timeout: f64,
    /// The error the clock may accumulate between synchronisations: when the observed drift
    /// would exceed it within `sync_interval`, the interval shortens.
    pub drift_threshold: f64,
    /// Slew rate, seconds of correction per second (0.1: 100 ms/s; ntpd's is 0.0005).
    pub adjustment_rate: f64,
    /// Uncorrected offsets kept for the drift estimate.
    pub history_size: usize,
    /// Corrections larger than this are stepped (and logged) instead of slewed.
    pub step_threshold: f64,
}

impl Default for TimeSyncConfig {
    fn default() -> Self {
        TimeSyncConfig {
            sync_interval: 60.0,
            min_peers: 3,
            max_peers: 5,
            timeout: 1.0,
            drift_threshold: 0.1,
            adjustment_rate: 0.1,
            history_size: 10,
            step_threshold: 0.5,
        }
    }
}

/// Why a configuration is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A value out of its range.
    #[error("{field} must be {rule}, got {value}")]
    Range {
        /// The field.
        field: &'static str,
        /// Its range in words.
        rule: &'static str,
        /// The value given.
        value: f64,
    },
}

impl TimeSyncConfig {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, field, rule, value: f64| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Range { field, rule, value })
            }
        };
        let pos = |v: f64| v.is_finite() && v > 0.0;
        check(
            pos(self.sync_interval),
            "sync_interval",
            "positive",
            self.sync_interval,
        )?;
        check(
            self.min_peers >= 1,
            "min_peers",
            "at least 1",
            self.min_peers as f64,
        )?;
        check(
            self.max_peers >= self.min_peers,
            "max_peers",
            "at least min_peers",
            self.max_peers as f64,
        )?;
        check(pos(self.timeout), "timeout", "positive", self.timeout)?;
        check(
            pos(self.drift_threshold),
            "drift_threshold",
            "positive",
            self.drift_threshold,
        )?;
        check(
            pos(self.adjustment_rate) && self.adjustment_rate <= 0.5,
            "adjustment_rate",
            "in (0, 0.5]",
            self.adjustment_rate,
        )?;
        check(
            self.history_size >= 3,
            "history_size",
            "at least 3",
            self.history_size as f64,
        )?;
        check(
            pos(self.step_threshold),
            "step_threshold",
            "positive",
            self.step_threshold,
        )
    }
}

/// One peer's answer this round.
#[derive(Debug, Clone, PartialEq)]
pub enum PollResult {
    /// An exchange (seconds, client clock for t1/t4, server clock for t2/t3).
    Answered(Exchange),
    /// No answer: timeout, refused, unauthenticated — in words.
    Failed(String),
}

/// A peer's state in the `sources` table, chrony's symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// `*`: the best truechimer, the one the combined offset leans on most.
    Best,
    /// `+`: a truechimer combined into the result.
    Combined,
    /// `-`: answered, but no result was formed this round (too few peers).
    NotCombined,
    /// `x`: a falseticker, rejected by Marzullo's algorithm.
    Falseticker,
    /// `?`: no fresh answer.
    Unreachable,
}

impl SourceState {
    /// chrony's one-character symbol.
    pub fn symbol(self) -> char {
        match self {
            SourceState::Best => '*',
            SourceState::Combined => '+',
            SourceState::NotCombined => '-',
            SourceState::Falseticker => 'x',
            SourceState::Unreachable => '?',
        }
    }
}

/// One row of the `sources` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRow {
    /// The peer's name.
    pub peer: String,
    /// Its state.
    pub state: SourceState,
    /// Its filtered offset (peer minus us, now), seconds.
    pub offset: Option<f64>,
    /// Its error: half the delay plus dispersion, seconds.
    pub error: Option<f64>,
    /// Its filtered round-trip delay, seconds.
    pub rtt: Option<f64>,
    /// NTP's reach register: one bit per round, newest lowest.
    pub reach: u8,
    /// Why the last poll failed, if it did.
    pub last_failure: Option<String>,
}

/// The `tracking` line: how this node's clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tracking {
    /// The last combined offset measured (peers minus us), seconds.
    pub last_offset: Option<f64>,
    /// The estimated frequency error of our clock, ppm (positive: fast).
    pub frequency_ppm: Option<f64>,
    /// The bound on our error now, seconds: Marzullo's half-width at the last sync plus what
    /// was left to slew, grown by φ per second since.
    pub error_bound: f64,
    /// Whether the last round synchronised (false: fallback to the local clock).
    pub synced: bool,
    /// Rounds that synchronised.
    pub syncs: u64,
    /// Rounds that did not (too few peers, no majority).
    pub failed_rounds: u64,
}

/// What a round decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// What happened.
    pub event: RoundEvent,
    /// The correction to apply to the clock, seconds (peers minus us).
    pub correction: Option<Correction>,
    /// The frequency correction to set, ppm (the negated drift estimate).
    pub frequency_correction_ppm: Option<f64>,
    /// When to poll next, seconds from now.
    pub next_poll_in: f64,
}

/// How to apply a correction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Correction {
    /// Slew `delta` seconds at `rate` seconds per second.
    Slew {
        /// Seconds to add.
        delta: f64,
        /// Seconds per second.
        rate: f64,
    },
    /// Step by `delta` seconds at once (past the step threshold; callers log it).
    Step {
        /// Seconds to add.
        delta: f64,
    },
}

/// The outcome of a round, for logs and the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoundEvent {
    /// A majority agreed.
    Synced {
        /// The combined offset, seconds.
        offset: f64,
        /// Peers in the majority.
        agreeing: usize,
        /// Peers rejected as falsetickers, by name.
        falsetickers: Vec<String>,
    },
    /// Fewer than `min_peers` answered: the node keeps its own clock.
    TooFewPeers {
        /// Fresh answers.
        answered: usize,
        /// Needed.
        needed: usize,
    },
    /// The answers have no majority intersection.
    NoMajority {
        /// Fresh answers.
        answered: usize,
    },
}

#[derive(Debug, Clone, Default)]
struct Peer {
    /// Samples with *uncorrected* offsets (measured offset + our total correction then), so
    /// that samples from before a correction stay comparable after it.
    filter: ClockFilter,
    /// One bit per round.
    reach: u8,
    /// State in the last round.
    state: Option<SourceState>,
    /// Why the last poll failed.
    last_failure: Option<String>,
}

/// A node's synchronisation state.
#[derive(Debug, Clone)]
pub struct TimeSync {
    /// The configuration.
    config: TimeSyncConfig,
    /// By peer name.
    peers: BTreeMap<String, Peer>,
    /// Uncorrected combined offsets `(mono, offset)`, newest last, at most `history_size`.
    history: VecDeque<(f64, f64)>,
    /// The last significant drift estimate from the history, ppm (positive: fast).
    drift_ppm: Option<f64>,
    /// Rounds in a row without synchronisation (drives the backoff).
    failures: u32,
    /// Error bound at `error_at`, seconds.
    error_bound: f64,
    /// Monotonic seconds of the last error-bound update.
    error_at: f64,
    /// The last combined offset.
    last_offset: Option<f64>,
    /// Whether the last round synchronised.
    synced: bool,
    /// Counters.
    syncs: u64,
    /// Counters.
    failed_rounds: u64,
}

/// The initial error bound before any synchronisation: unknown, one second.
const UNSYNCED_ERROR: f64 = 1.0;

impl TimeSync {
    /// A node with these peers; `config` must be valid ([`TimeSyncConfig::validate`]).
    pub fn new(config: TimeSyncConfig, peers: impl IntoIterator<Item = String>) -> Self {
        TimeSync {
            config,
            peers: peers.into_iter().map(|p| (p, Peer::default())).collect(),
            history: VecDeque::new(),
            drift_ppm: None,
            failures: 0,
            error_bound: UNSYNCED_ERROR,
            error_at: 0.0,
            last_offset: None,
            synced: false,
            syncs: 0,
            failed_rounds: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TimeSyncConfig {
        &self.config
    }

    /// The peers to poll this round: the `max_peers` most reachable (ties by name).
    pub fn peers_to_poll(&self) -> Vec<String> {
        let mut peers: Vec<(&String, &Peer)> = self.peers.iter().collect();
        peers.sort_by_key(|(name, p)| (std::cmp::Reverse(p.reach.count_ones()), (*name).clone()));
        peers
            .into_iter()
            .take(self.config.max_peers)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// One round: `mono` is monotonic seconds now, `total_correction` everything applied to
    /// our clock so far (seconds), `results` the polled peers' answers — several for one peer
    /// in a burst (each goes through its clock filter; the peer counts once).
    pub fn round(
        &mut self,
        mono: f64,
        total_correction: f64,
        results: Vec<(String, PollResult)>,
    ) -> Decision {
        let polled: Vec<String> = results.iter().map(|(n, _)| n.clone()).collect();
        let mut fresh: Vec<String> = Vec::new();
        for (name, result) in results {
            let peer = self.peers.entry(name.clone()).or_default();
            peer.reach <<= 1;
            match result {
                PollResult::Answered(x) => {
                    peer.reach |= 1;
                    peer.last_failure = None;
                    let mut sample = x.sample(1e-6);
                    sample.offset += total_correction;
                    sample.at = mono;
                    // Two samples of an unchanged peer clock both contain its offset, so their
                    // intervals meet. If the new one misses the filter's best, the peer's clock
                    // has moved (its own daemon corrected it): the older samples are stale.
                    if peer
                        .filter
                        .best()
                        .is_some_and(|b| !b.interval_at(mono).meets(&sample.interval_at(mono)))
                    {
                        peer.filter.clear();
                    }
                    peer.filter.push(sample);
                    // A burst (chrony's iburst) gives one peer several exchanges a round.
                    if !fresh.contains(&name) {
                        fresh.push(name);
                    }
                }
                PollResult::Failed(why) => {
                    peer.last_failure = Some(why);
                }
            }
        }
        for (name, peer) in self.peers.iter_mut() {
            peer.state = Some(if fresh.contains(name) {
                SourceState::NotCombined
            } else {
                if !polled.contains(name) {
                    peer.reach <<= 1;
                }
                SourceState::Unreachable
            });
        }
        if fresh.len() < self.config.min_peers {
            return self.fall_back(
                mono,
                RoundEvent::TooFewPeers {
                    answered: fresh.len(),
                    needed: self.config.min_peers,
                },
            );
        }
        // Each fresh peer's filtered sample, offsets back in terms of the clock as it is now.
        let candidates: Vec<(String, f64, f64)> = fresh
            .iter()
            .filter_map(|n| {
                let best = self.peers[n].filter.best()?;
                Some((
                    n.clone(),
                    best.offset - total_correction,
                    best.distance_at(mono),
                ))
            })
            .collect();
        let intervals: Vec<Interval> = candidates
            .iter()
            .map(|(_, o, d)| Interval::around(*o, *d))
            .collect();
        let selection = match marzullo::select(&intervals) {
            Ok(s) => s,
            Err(_) => {
                return self.fall_back(
                    mono,
                    RoundEvent::NoMajority {
                        answered: fresh.len(),
                    },
                )
            }
        };
        let truechimers: Vec<&(String, f64, f64)> = candidates
            .iter()
            .zip(&selection.verdicts)
            .filter(|(_, v)| **v == Chimer::Truechimer)
            .map(|(c, _)| c)
            .collect();
        if truechimers.len() < self.config.min_peers {
            return self.fall_back(
                mono,
                RoundEvent::TooFewPeers {
                    answered: truechimers.len(),
                    needed: self.config.min_peers,
                },
            );
        }
        let survivors: Vec<(f64, f64)> = truechimers.iter().map(|(_, o, d)| (*o, *d)).collect();
        let offset = combine(&survivors).unwrap_or(0.0);
        let best = truechimers
            .iter()
            .min_by(|a, b| a.2.total_cmp(&b.2))
            .map(|c| c.0.clone());
        let mut falsetickers = Vec::new();
        for ((name, _, _), verdict) in candidates.iter().zip(&selection.verdicts) {
            let state = match verdict {
                Chimer::Falseticker => {
                    falsetickers.push(name.clone());
                    SourceState::Falseticker
                }
                Chimer::Truechimer if Some(name) == best.as_ref() => SourceState::Best,
                Chimer::Truechimer => SourceState::Combined,
            };
            if let Some(p) = self.peers.get_mut(name) {
                p.state = Some(state);
            }
        }
        // Drift from the uncorrected offsets.
        let raw = offset + total_correction;
        self.history.push_back((mono, raw));
        while self.history.len() > self.config.history_size {
            self.history.pop_front();
        }
        // A frequency correction only when slewing alone cannot hold the clock: the drift
        // would carry it past its error bound within one interval. (Peers correct too, and
        // to each node their corrections look like drift; correcting small "drifts" in a
        // fast loop lets the whole group wander in frequency.)
        let half_width = (selection.interval.hi - selection.interval.lo) / 2.0;
        let estimate = significant_drift_ppm(&self.history);
        if estimate.is_some() {
            self.drift_ppm = estimate;
        }
        let fresh_drift =
            estimate.filter(|ppm| ppm.abs() * 1e-6 * self.config.sync_interval > half_width);
        let ppm = self.drift_ppm;
        self.failures = 0;
        self.synced = true;
        self.syncs += 1;
        self.last_offset = Some(offset);
        // The smallest correction that makes our clock consistent with the majority: none
        // when zero offset lies in the interval they agree on (a slew in progress stops),
        // else to the interval's nearer end. An imprecise round (wide intervals) thus never
        // moves a clock further than it is measurably wrong; moving to the middle of a wide
        // interval would scatter the peers beyond each other's intervals, and a scattered
        // group has no majority left. Rounds with tighter intervals then bring it closer.
        let interval = selection.interval;
        let delta = 0.0_f64.clamp(interval.lo, interval.hi);
        self.error_bound = half_width + (delta - interval.midpoint()).abs();
        self.error_at = mono;
        let correction = if delta.abs() > self.config.step_threshold {
            Correction::Step { delta }
        } else {
            Correction::Slew {
                delta,
                rate: self.config.adjustment_rate,
            }
        };
        // Poll sooner when the observed drift would exceed the threshold within an interval.
        let drift = ppm.map_or(0.0, |p| p.abs() * 1e-6);
        let next = if drift * self.config.sync_interval > self.config.drift_threshold {
            (self.config.drift_threshold / drift).max(self.config.sync_interval / 8.0)
        } else {
            self.config.sync_interval
        };
        Decision {
            event: RoundEvent::Synced {
                offset,
                agreeing: selection.agreeing,
                falsetickers,
            },
            correction: Some(correction),
            frequency_correction_ppm: fresh_drift.map(|p| -p),
            next_poll_in: next,
        }
    }

    fn fall_back(&mut self, mono: f64, event: RoundEvent) -> Decision {
        self.error_bound = self.error_bound_at(mono);
        self.error_at = mono;
        self.failures = self.failures.saturating_add(1);
        self.synced = false;
        self.failed_rounds += 1;
        let backoff = self.config.timeout * 2f64.powi(self.failures.min(30) as i32 - 1);
        Decision {
            event,
            correction: None,
            frequency_correction_ppm: None,
            next_poll_in: backoff.min(self.config.sync_interval),
        }
    }

    /// The error bound at monotonic time `mono`: grows by φ (plus a tenth of the drift
    /// estimate, for its own uncertainty) per second since the last update.
    pub fn error_bound_at(&self, mono: f64) -> f64 {
        let rate = PHI + self.drift_ppm.map_or(0.0, |p| p.abs() * 1e-7);
        self.error_bound + rate * (mono - self.error_at).max(0.0)
    }

    /// The `sources` table, by peer name.
    pub fn sources(&self, mono: f64, total_correction: f64) -> Vec<SourceRow> {
        self.peers
            .iter()
            .map(|(name, p)| {
                let best = p.filter.best();
                SourceRow {
                    peer: name.clone(),
                    state: p.state.unwrap_or(SourceState::Unreachable),
                    offset: best.map(|b| b.offset - total_correction),
                    error: best.map(|b| b.distance_at(mono)),
                    rtt: best.map(|b| b.delay),
                    reach: p.reach,
                    last_failure: p.last_failure.clone(),
                }
            })
            .collect()
    }

    /// The `tracking` line.
    pub fn tracking(&self, mono: f64) -> Tracking {
        Tracking {
            last_offset: self.last_offset,
            frequency_ppm: self.drift_ppm,
            error_bound: self.error_bound_at(mono),
            synced: self.synced,
            syncs: self.syncs,
            failed_rounds: self.failed_rounds,
        }
    }
}

/// The fewest history points a drift estimate is made from.
const MIN_DRIFT_POINTS: usize = 4;

/// Our clock's drift from the history of uncorrected offsets `(mono, offset)`: the negated
/// least-squares slope (a fast clock makes the offsets fall), ppm — when it is significant:
/// at least [`MIN_DRIFT_POINTS`] points and a slope that is not zero at the 0.1 % level
/// (Student's t with n − 2 degrees of freedom). Otherwise `None`, so that read noise over a
/// short history (1 ms over 2 s reads as 500 ppm) never becomes a frequency correction.
fn significant_drift_ppm(history: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = history.len();
    if n < MIN_DRIFT_POINTS {
        return None;
    }
    let nf = n as f64;
    let mx = history.iter().map(|p| p.0).sum::<f64>() / nf;
    let my = history.iter().map(|p| p.1).sum::<f64>() / nf;
    let sxx: f64 = history.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx.is_nan() || sxx <= 0.0 {
        return None;
    }
    let slope = history.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / sxx;
    let residuals: f64 = history
        .iter()
        .map(|p| (p.1 - my - slope * (p.0 - mx)).powi(2))
        .sum();
    let stderr = (residuals / (nf - 2.0) / sxx).sqrt();
    (slope.is_finite() && slope.abs() > t_999(n - 2) * stderr).then_some(-slope * 1e6)
}

/// Two-sided 99.9 % quantiles of Student's t distribution by degrees of freedom (beyond ten,
/// the quantile at the low end of each range, so the test never gets less strict).
fn t_999(dof: usize) -> f64 {
    const T: [f64; 10] = [
        636.6, 31.60, 12.92, 8.610, 6.869, 5.959, 5.408, 5.041, 4.781, 4.587,
    ];
    match dof {
        0 => f64::INFINITY,
        1..=10 => T[dof - 1],
        11..=20 => 4.437,
        21..=60 => 3.850,
        _ => 3.460,
    }
}

/// A node's clock for the time service: "true time" is the host clock's elapsed time; on top
/// of it the Wiber notes' simulated skew, drift and random variation, and the daemon's
/// corrections (a [`PhysicalClock`], so slewing never moves it backwards).
#[derive(Debug, Clone)]
pub struct NodeClock {
    /// The drifting, corrected clock; its value is seconds since the node started.
    clock: PhysicalClock,
    /// Uniform read noise, ± seconds.
    variation: f64,
    /// Seeded noise.
    rng: SmallRng,
}

impl NodeClock {
    /// Starts `skew` seconds off, drifting `drift` seconds per second, with reads varying by up
    /// to ± `variation` seconds.
    pub fn new(skew: f64, drift: f64, variation: f64, seed: u64) -> Self {
        let mut spec = ClockSpec::drifting(drift * 1e6);
        spec.offset = skew;
        NodeClock {
            clock: PhysicalClock::new(spec),
            variation: variation.abs(),
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// Our clock minus true time at `elapsed` (host seconds since the start), read noise
    /// included. Earlier `elapsed` values than the last read return the last state.
    pub fn offset_at(&mut self, elapsed: f64) -> f64 {
        self.clock
            .advance_to(SimTime::from_secs_f64(elapsed.max(0.0)), &mut self.rng);
        let noise = if self.variation > 0.0 {
            self.rng.gen_range(-self.variation..=self.variation)
        } else {
            0.0
        };
        self.clock.offset() + noise
    }

    /// Our clock minus true time without read noise, at the last read.
    pub fn true_offset(&self) -> f64 {
        self.clock.offset()
    }

    /// Everything the daemon has added so far, seconds.
    pub fn total_correction(&self) -> f64 {
        self.clock.total_correction()
    }

    /// The effective frequency error now, ppm (drift + frequency correction + slew).
    pub fn rate_ppm(&self) -> f64 {
        self.clock.effective_rate_ppm()
    }

    /// Applies a daemon's decision: the correction and the frequency correction.
    pub fn apply(&mut self, decision: &Decision) -> Option<Adjustment> {
        if let Some(ppm) = decision.frequency_correction_ppm {
            self.clock.set_frequency_correction_ppm(ppm);
        }
        decision.correction.map(|c| match c {
            Correction::Slew { delta, rate } => self.clock.adjust(
                delta,
                AdjustPolicy::Slew {
                    max_ppm: rate * 1e6,
                },
            ),
            Correction::Step { delta } => self.clock.adjust(delta, AdjustPolicy::Step),
        })
    }

    /// Moves the clock by `delta` seconds (the page's skew control: a fault, not a correction).
    pub fn jump(&mut self, delta: f64) {
        self.clock.jump(delta);
    }

    /// Sets the simulated drift, seconds per second.
    pub fn set_drift(&mut self, drift: f64) {
        self.clock.set_drift_ppm(drift * 1e6);
    }

    /// The simulated drift, seconds per second.
    pub fn drift(&self) -> f64 {
        self.clock.drift_ppm() * 1e-6
    }

    /// Sets the read variation, ± seconds.
    pub fn set_variation(&mut self, variation: f64) {
        self.variation = variation.abs();
    }

    /// The read variation, ± seconds.
    pub fn variation(&self) -> f64 {
        self.variation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One exchange between us (offset `ours` from truth) and a peer (offset `theirs`), 1 ms
    /// each way, at true time 0.
    fn exchange(ours: f64, theirs: f64) -> Exchange {
        Exchange {
            t1: ours,
            t2: 0.001 + theirs,
            t3: 0.0011 + theirs,
            t4: 0.0021 + ours,
        }
    }

    fn config() -> TimeSyncConfig {
        TimeSyncConfig {
            sync_interval: 2.0,
            ..TimeSyncConfig::default()
        }
    }

    #[test]
    fn the_majority_corrects_and_a_liar_is_a_falseticker() {
        let mut s = TimeSync::new(config(), ["B", "C", "D", "E"].map(String::from));
        let ours = 0.120;
        let answers = [("B", 0.0), ("C", 0.001), ("D", -0.001), ("E", 0.5)]
            .map(|(n, o)| (n.to_owned(), PollResult::Answered(exchange(ours, o))))
            .to_vec();
        let d = s.round(10.0, 0.0, answers);
        let RoundEvent::Synced {
            offset,
            agreeing,
            falsetickers,
        } = &d.event
        else {
            panic!("{d:?}")
        };
        assert_eq!(
            (*agreeing, falsetickers.as_slice()),
            (3, &["E".to_owned()][..])
        );
        assert!((offset + 0.120).abs() < 0.0015, "{offset}");
        // Corrected to the near end of the agreed interval: short of the offset by at most
        // the half round trip and dispersion (1 ms here).
        let Some(Correction::Slew { delta, rate }) = d.correction else {
            panic!("{d:?}")
        };
        assert!(
            rate == 0.1 && delta > *offset && delta - offset < 0.0011,
            "{delta}"
        );
        let rows = s.sources(10.0, 0.0);
        let symbols: String = rows.iter().map(|r| r.state.symbol()).collect();
        assert_eq!(symbols.chars().filter(|c| *c == '*').count(), 1);
        assert_eq!(rows[3].state, SourceState::Falseticker);
        assert!(s.tracking(10.0).synced);
        assert!(s.tracking(10.0).error_bound < 0.01);
    }

    #[test]
    fn too_few_peers_fall_back_with_a_growing_bound_and_backoff_then_resync() {
        let mut s = TimeSync::new(config(), ["B", "C", "D"].map(String::from));
        let ok = |n: &str| (n.to_owned(), PollResult::Answered(exchange(0.0, 0.0)));
        let fail = |n: &str| (n.to_owned(), PollResult::Failed("timeout".into()));
        let d = s.round(0.0, 0.0, vec![ok("B"), ok("C"), ok("D")]);
        assert!(matches!(d.event, RoundEvent::Synced { .. }));
        let synced_bound = s.tracking(0.0).error_bound;
        let mut waits = Vec::new();
        let mut bounds = Vec::new();
        let mut t = 0.0;
        for _ in 0..4 {
            t += 5.0;
            let d = s.round(t, 0.0, vec![fail("B"), fail("C"), ok("D")]);
            assert!(matches!(
                d.event,
                RoundEvent::TooFewPeers {
                    answered: 1,
                    needed: 3
                }
            ));
            assert_eq!(d.correction, None);
            waits.push(d.next_poll_in);
            bounds.push(s.tracking(t).error_bound);
        }
        // Backoff from the timeout, capped at the interval; the bound only grows.
        assert_eq!(waits, [1.0, 2.0, 2.0, 2.0]);
        assert!(bounds.windows(2).all(|w| w[1] > w[0]) && bounds[0] > synced_bound);
        assert!(!s.tracking(t).synced);
        assert_eq!(
            s.sources(t, 0.0)[0].last_failure.as_deref(),
            Some("timeout")
        );
        // The partition heals.
        let d = s.round(t + 1.0, 0.0, vec![ok("B"), ok("C"), ok("D")]);
        assert!(matches!(d.event, RoundEvent::Synced { .. }));
        assert!(s.tracking(t + 1.0).error_bound < bounds[3]);
    }

    #[test]
    fn large_offsets_step_and_the_node_clock_converges() {
        let mut s = TimeSync::new(config(), ["B", "C", "D"].map(String::from));
        let mut clock = NodeClock::new(2.0, 0.0, 0.0, 1);
        let mut t = 0.0;
        let mut stepped = false;
        for _ in 0..30 {
            let ours = clock.offset_at(t);
            let answers = ["B", "C", "D"]
                .map(|n| (n.to_owned(), PollResult::Answered(exchange(ours, 0.0))))
                .to_vec();
            let d = s.round(t, clock.total_correction(), answers);
            stepped |= matches!(d.correction, Some(Correction::Step { .. }));
            clock.apply(&d);
            t += d.next_poll_in;
        }
        assert!(stepped);
        assert!(clock.offset_at(t).abs() < 0.002, "{}", clock.offset_at(t));
    }

    #[test]
    fn drift_is_estimated_and_compensated() {
        // 200 ppm over 20 s intervals is 4 ms: more than the 1 ms interval, so slewing alone
        // would not hold the clock and the frequency is corrected.
        let config = TimeSyncConfig {
            sync_interval: 20.0,
            ..config()
        };
        let mut s = TimeSync::new(config, ["B", "C", "D"].map(String::from));
        // 200 ppm fast, slewing only.
        let mut clock = NodeClock::new(0.0, 200e-6, 0.0, 1);
        let mut t = 0.0;
        for _ in 0..40 {
            let ours = clock.offset_at(t);
            let answers = ["B", "C", "D"]
                .map(|n| (n.to_owned(), PollResult::Answered(exchange(ours, 0.0))))
                .to_vec();
            let d = s.round(t, clock.total_correction(), answers);
            clock.apply(&d);
            t += d.next_poll_in;
        }
        let ppm = s.tracking(t).frequency_ppm.unwrap();
        assert!((ppm - 200.0).abs() < 5.0, "{ppm}");
        // Within the agreed interval (1 ms half round trip) and within the error bound.
        let left = clock.offset_at(t);
        assert!(left.abs() < 0.0011, "{left}");
        assert!(left.abs() <= s.tracking(t).error_bound, "{left}");
    }

    #[test]
    fn a_clock_inside_the_majoritys_interval_is_kept() {
        // Three peers 0.3 ms ahead, with 2 ms round trips: zero is inside their interval, so
        // the clock is consistent and not moved; 3 ms ahead it is not, and it is corrected
        // to the interval's nearer end (3 ms less the 1 ms half round trip and dispersion).
        let mut s = TimeSync::new(config(), ["B", "C", "D"].map(String::from));
        let answers = |theirs: f64| {
            ["B", "C", "D"]
                .map(|n| (n.to_owned(), PollResult::Answered(exchange(0.0, theirs))))
                .to_vec()
        };
        let d = s.round(0.0, 0.0, answers(0.0003));
        assert_eq!(
            d.correction,
            Some(Correction::Slew {
                delta: 0.0,
                rate: 0.1
            })
        );
        assert!(s.tracking(0.0).error_bound >= 0.0003);
        let mut s = TimeSync::new(config(), ["B", "C", "D"].map(String::from));
        let d = s.round(0.0, 0.0, answers(0.003));
        let Some(Correction::Slew { delta, .. }) = d.correction else {
            panic!("{d:?}")
        };
        assert!((delta - 0.002).abs() < 1e-4, "{delta}");
    }

    #[test]
    fn a_peer_whose_clock_moved_is_not_judged_by_stale_samples() {
        // B's fast samples show it 120 ms ahead; then B corrects its clock and answers from 0
        // with slower round trips. The filter restarts instead of keeping the stale 120 ms.
        let mut s = TimeSync::new(config(), ["B", "C", "D"].map(String::from));
        let answer = |theirs: f64, extra: f64| {
            let mut x = exchange(0.0, theirs);
            x.t4 += extra;
            PollResult::Answered(x)
        };
        for i in 0..3 {
            s.round(f64::from(i), 0.0, vec![("B".into(), answer(0.120, 0.0))]);
        }
        s.round(3.0, 0.0, vec![("B".into(), answer(0.0, 0.004))]);
        let b = &s.sources(3.0, 0.0)[0];
        assert!(b.offset.unwrap().abs() < 0.003, "{b:?}");
    }

    #[test]
    fn noise_on_a_short_history_is_not_taken_for_drift() {
        // Rounds every 0.5 s, offsets with ±1 ms of noise and no drift: a plain slope would
        // read hundreds of ppm; the significance test keeps the frequency alone.
        let mut s = TimeSync::new(
            TimeSyncConfig {
                sync_interval: 0.5,
                ..config()
            },
            ["B", "C", "D"].map(String::from),
        );
        let mut rng = SmallRng::seed_from_u64(3);
        let mut corrections = 0;
        for i in 0..40 {
            let ours: f64 = rng.gen_range(-0.001..0.001);
            let answers = ["B", "C", "D"]
                .map(|n| (n.to_owned(), PollResult::Answered(exchange(ours, 0.0))))
                .to_vec();
            let d = s.round(f64::from(i) * 0.5, 0.0, answers);
            corrections += usize::from(d.frequency_correction_ppm.is_some());
        }
        assert!(
            corrections <= 2,
            "{corrections} frequency corrections from noise"
        );
        assert!(s
            .tracking(20.0)
            .frequency_ppm
            .is_none_or(|p| p.abs() < 500.0));
    }

    #[test]
    fn config_ranges_are_checked() {
        assert_eq!(TimeSyncConfig::default().validate(), Ok(()));
        let bad = TimeSyncConfig {
            max_peers: 2,
            ..TimeSyncConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("max_peers must be"));
    }
}
