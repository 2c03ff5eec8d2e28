//! The time synchronisation daemon of the NTP-for-Raft proposal, as a pure state machine: the
//! caller polls peers (the proposal's `TimeSyncService.GetTime` over gRPC), hands each round's
//! four-timestamp exchanges to [`TimeSync::round`], and applies the [`Decision`] to its clock.
//!
//! The algorithm is the proposal's, built from NTP's parts (D. Mills, RFC 5905): per peer the
//! offset θ and delay δ of each exchange and a clock filter (minimum delay of the last eight);
//! at least `min_peers` fresh answers before a result is trusted; Marzullo's intersection
//! (K. Marzullo, 1984) over `offset ± (δ/2 + ε)` rejects falsetickers; the truechimers are
//! combined by inverse distance; a history of `history_size` uncorrected offsets gives the
//! drift (their slope, as chrony estimates frequency) and the adaptive interval; corrections
//! slew at `adjustment_rate` and step only past `step_threshold`. When too few peers answer
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
    ntp::{combine, ClockFilter, Exchange, FrequencyEstimator, PHI},
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
    /// Drift estimate from the history.
    frequency: FrequencyEstimator,
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
            frequency: FrequencyEstimator::new(),
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
    /// our clock so far (seconds), `results` the polled peers' answers.
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
                    peer.filter.push(sample);
                    fresh.push(name);
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
        self.frequency.push(mono, raw);
        let ppm = self.frequency.ppm();
        self.failures = 0;
        self.synced = true;
        self.syncs += 1;
        self.last_offset = Some(offset);
        let half_width = (selection.interval.hi - selection.interval.lo) / 2.0;
        self.error_bound = half_width + (offset - selection.interval.midpoint()).abs();
        self.error_at = mono;
        let correction = if offset.abs() > self.config.step_threshold {
            Correction::Step { delta: offset }
        } else {
            Correction::Slew {
                delta: offset,
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
            frequency_correction_ppm: ppm.map(|p| -p),
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
        let rate = PHI + self.frequency.ppm().map_or(0.0, |p| p.abs() * 1e-7);
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
            frequency_ppm: self.frequency.ppm(),
            error_bound: self.error_bound_at(mono),
            synced: self.synced,
            syncs: self.syncs,
            failed_rounds: self.failed_rounds,
        }
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
        assert_eq!(
            d.correction,
            Some(Correction::Slew {
                delta: *offset,
                rate: 0.1
            })
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
        let mut s = TimeSync::new(config(), ["B", "C", "D"].map(String::from));
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
        assert!(clock.offset_at(t).abs() < 0.001);
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
