//! The Byzantine clock synchronisation lab (the seed's project 12): `n` drifting clocks, the
//! last `f` of them Byzantine, resynchronising every round with a convergence function from
//! [`crate::sync::bft`], on the shared discrete-event simulator.
//!
//! The correct clocks drift at rates evenly spread over `±ρ` and start within the reading
//! error of each other. Every `R` seconds each correct node reads every other clock (its
//! difference to its own, with an error uniform in `±e`) and applies its algorithm's
//! correction. Adversaries: `none`; `liar` (a Byzantine node reports its clock a fixed 1 s
//! ahead to everybody); `random` (a fresh value within ±10 bounds per reading); `two-faced`
//! ([`crate::sync::bft::two_faced_reading`]: to each correct node, the value that balances that
//! node's view around its own clock).
//!
//! **Claim checked against each run.** For `n ≥ 3f + 1` the correct clocks' skew stays within
//! the algorithm's precision bound — [`precision_bound`] `= 4e + 6ρR` for the trimmed ones
//! (Welch & Lynch 1988), CNV's threshold less `e` for interactive convergence
//! ([`cnv_threshold`]); at `n = 3f` the two-faced adversary keeps every correct node still and
//! the skew grows past the bound.
//!
//! **Invariant.** A run is a pure function of its [`BftConfig`] (seeded) and the
//! `step`/`run_until` calls made.

use std::fmt::Write as _;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::sim::{Network, SimTime, Simulation};
use crate::sync::bft::{
    cnv_threshold, correction, precision_bound, two_faced_reading, BftAlgorithm, Convergence,
};
use crate::trace::Trace;

pub mod frame;
#[cfg(test)]
mod tests;

pub use frame::SPEC;

/// Rounds whose readings are recorded into the trace (the first ones).
pub const TRACED_ROUNDS: u64 = 5;

/// What the Byzantine nodes do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Adversary {
    /// They behave (a crash-free run with `f` spare nodes).
    None,
    /// They report a clock 1 s ahead, to everybody.
    Liar,
    /// A fresh random value within ten precision bounds, per reading.
    Random,
    /// To each correct node, the value that balances its view around its own clock.
    TwoFaced,
}

impl Adversary {
    /// Its key.
    pub fn key(self) -> &'static str {
        match self {
            Adversary::None => "none",
            Adversary::Liar => "liar",
            Adversary::Random => "random",
            Adversary::TwoFaced => "two-faced",
        }
    }

    /// The adversary named by `key`.
    pub fn from_key(key: &str) -> Option<Adversary> {
        [
            Adversary::None,
            Adversary::Liar,
            Adversary::Random,
            Adversary::TwoFaced,
        ]
        .into_iter()
        .find(|a| a.key() == key)
    }
}

/// One run's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BftConfig {
    /// Nodes, 2–16.
    pub nodes: usize,
    /// Byzantine nodes (the last ones); also the `f` the algorithm tolerates.
    pub faulty: usize,
    /// The convergence function.
    pub algorithm: BftAlgorithm,
    /// What the Byzantine nodes do.
    pub adversary: Adversary,
    /// Drift bound ρ, ppm: correct clocks drift evenly over ±ρ.
    pub drift_ppm: f64,
    /// Reading error bound e, ms.
    pub reading_error_ms: f64,
    /// Round period R, seconds.
    pub period_s: f64,
    /// Length of the run, seconds.
    pub duration_s: f64,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for BftConfig {
    fn default() -> Self {
        BftConfig {
            nodes: 4,
            faulty: 1,
            algorithm: BftAlgorithm::WelchLynch,
            adversary: Adversary::TwoFaced,
            drift_ppm: 100.0,
            reading_error_ms: 1.0,
            period_s: 10.0,
            duration_s: 600.0,
            seed: 1,
        }
    }
}

/// A configuration the lab refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BftLabError {
    /// Too few or too many nodes.
    #[error("the lab runs 2 to 16 nodes, got {0}")]
    Nodes(usize),
    /// Not enough correct nodes to measure a skew.
    #[error("{faulty} faulty of {nodes} nodes leaves fewer than 2 correct ones")]
    Faulty {
        /// Nodes.
        nodes: usize,
        /// Faulty.
        faulty: usize,
    },
    /// A value out of range.
    #[error("{what} must be a finite number {range}, got {value}")]
    Bad {
        /// Which parameter.
        what: &'static str,
        /// Its range.
        range: &'static str,
        /// The value.
        value: f64,
    },
}

impl BftConfig {
    fn validated(self) -> Result<Self, BftLabError> {
        if !(2..=16).contains(&self.nodes) {
            return Err(BftLabError::Nodes(self.nodes));
        }
        if self.nodes < self.faulty + 2 {
            return Err(BftLabError::Faulty {
                nodes: self.nodes,
                faulty: self.faulty,
            });
        }
        let check = |what, value: f64, lo: f64, hi: f64, range| {
            if value.is_finite() && value >= lo && value <= hi {
                Ok(())
            } else {
                Err(BftLabError::Bad { what, range, value })
            }
        };
        check(
            "drift",
            self.drift_ppm,
            0.0,
            10_000.0,
            "from 0 to 10000 ppm",
        )?;
        check(
            "reading error",
            self.reading_error_ms,
            0.0,
            1000.0,
            "from 0 to 1000 ms",
        )?;
        check("period", self.period_s, 0.1, 3600.0, "from 0.1 to 3600 s")?;
        check(
            "duration",
            self.duration_s,
            1.0,
            86_400.0,
            "from 1 to 86400 s",
        )?;
        Ok(self)
    }

    /// Whether `n ≥ 3f + 1`.
    pub fn resilient(&self) -> bool {
        self.nodes > 3 * self.faulty
    }

    /// The precision bound of this run's algorithm, ms: [`precision_bound`] for the trimmed
    /// ones (and Marzullo, for comparison), [`cnv_threshold`] less the reading error for
    /// interactive convergence when `n > 3f`.
    pub fn bound_ms(&self) -> f64 {
        let (e, rho, r) = (
            self.reading_error_ms,
            self.drift_ppm * 1e-6,
            self.period_s * 1000.0,
        );
        match (self.algorithm, self.resilient()) {
            (BftAlgorithm::InteractiveConvergence, true) => {
                cnv_threshold(self.nodes, self.faulty, e, rho, r) - e
            }
            _ => precision_bound(e, rho, r),
        }
    }

    /// How [`BftConfig::bound_ms`] is computed, in words.
    pub fn bound_formula(&self) -> &'static str {
        match (self.algorithm, self.resilient()) {
            (BftAlgorithm::InteractiveConvergence, true) => "δ − e",
            _ => "4e + 6ρR",
        }
    }

    /// CNV's threshold δ for this run (infinite when `n ≤ 3f`: no δ works), ms; the other
    /// algorithms ignore it.
    pub fn threshold_ms(&self) -> f64 {
        cnv_threshold(
            self.nodes,
            self.faulty,
            self.reading_error_ms,
            self.drift_ppm * 1e-6,
            self.period_s * 1000.0,
        )
    }
}

/// One round as it went.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RoundRecord {
    /// Its number, from 1.
    pub round: u64,
    /// When, seconds.
    pub at_s: f64,
    /// The correct clocks' skew just before it, ms.
    pub skew_before_ms: f64,
    /// Just after, ms.
    pub skew_after_ms: f64,
}

#[derive(Debug, Clone, Copy)]
enum Happening {
    Round(u64),
}

/// A Byzantine clock synchronisation run in progress.
#[derive(Debug)]
pub struct BftLab {
    config: BftConfig,
    sim: Simulation<Happening>,
    /// Per node: offset at true time 0 (ms) plus corrections so far, and rate error.
    offsets: Vec<f64>,
    drifts: Vec<f64>,
    rounds: Vec<RoundRecord>,
    trace: Trace,
    end: SimTime,
    last: Option<String>,
}

/// A node's display name: `N1`.
pub fn node_name(i: usize) -> String {
    format!("N{}", i + 1)
}

impl BftLab {
    /// A run at time 0, the first round scheduled at `R`.
    pub fn new(config: BftConfig) -> Result<Self, BftLabError> {
        let config = config.validated()?;
        let mut sim = Simulation::new(config.seed, Network::default());
        let n = config.nodes;
        let correct = n - config.faulty;
        let rho = config.drift_ppm * 1e-6;
        let drifts: Vec<f64> = (0..n)
            .map(|i| {
                if i < correct && correct > 1 {
                    -rho + 2.0 * rho * i as f64 / (correct - 1) as f64
                } else {
                    0.0
                }
            })
            .collect();
        let e = config.reading_error_ms;
        let offsets: Vec<f64> = (0..n)
            .map(|_| {
                if e > 0.0 {
                    sim.rng().gen_range(-e / 2.0..=e / 2.0)
                } else {
                    0.0
                }
            })
            .collect();
        sim.schedule_at(SimTime::from_secs_f64(config.period_s), Happening::Round(1));
        let mut trace = Trace::new();
        for i in 0..n {
            let tag = if i >= correct { " (Byzantine)" } else { "" };
            trace.name_node(i as u32, format!("{}{tag}", node_name(i)));
        }
        Ok(BftLab {
            end: SimTime::from_secs_f64(config.duration_s),
            config,
            sim,
            offsets,
            drifts,
            rounds: Vec::new(),
            trace,
            last: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BftConfig {
        &self.config
    }

    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        self.sim.now()
    }

    /// The end of the run.
    pub fn end(&self) -> SimTime {
        self.end
    }

    /// Events handled.
    pub fn events(&self) -> u64 {
        self.sim.stats().events_processed
    }

    /// What the last round did.
    pub fn last_event(&self) -> Option<&str> {
        self.last.as_deref()
    }

    /// The first rounds' readings as a space-time trace.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Every round so far.
    pub fn rounds(&self) -> &[RoundRecord] {
        &self.rounds
    }

    fn correct(&self) -> usize {
        self.config.nodes - self.config.faulty
    }

    /// Node `i`'s clock minus true time at true time `t_ms`, ms.
    pub fn clock_error(&self, i: usize, t_ms: f64) -> f64 {
        self.offsets[i] + self.drifts[i] * t_ms
    }

    /// The correct clocks' skew (largest minus smallest) at `t_ms`, ms.
    pub fn skew(&self, t_ms: f64) -> f64 {
        let errs = (0..self.correct()).map(|i| self.clock_error(i, t_ms));
        let (lo, hi) = errs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        });
        hi - lo
    }

    /// The largest skew of the run so far (just before each round: the clocks drift apart
    /// between rounds and only come together at one), ms.
    pub fn max_skew(&self) -> f64 {
        let now = self.sim.now().as_nanos() as f64 / 1e6;
        self.rounds
            .iter()
            .map(|r| r.skew_before_ms)
            .fold(self.skew(now), f64::max)
    }

    /// Handles one round; `None` once the run is over.
    pub fn step(&mut self) -> Option<SimTime> {
        if self.sim.peek_time().is_none_or(|t| t > self.end) {
            return None;
        }
        let (at, Happening::Round(k)) = self.sim.pop()?;
        self.round(k, at);
        Some(at)
    }

    /// Handles every round up to `until` (never past the end).
    pub fn run_until(&mut self, until: SimTime) {
        let until = until.min(self.end);
        while self.sim.peek_time().is_some_and(|t| t <= until) {
            self.step();
        }
        if until > self.sim.now() {
            self.sim.run_until(until, |_, _, _| {});
        }
    }

    /// Runs to the end.
    pub fn run(&mut self) {
        self.run_until(self.end);
    }

    fn round(&mut self, k: u64, at: SimTime) {
        let t = at.as_nanos() as f64 / 1e6;
        let c = &self.config;
        let (n, correct, e) = (c.nodes, self.correct(), c.reading_error_ms);
        let bound = c.bound_ms();
        let lie_cap = c.threshold_ms();
        let conv = Convergence {
            f: c.faulty,
            threshold: lie_cap,
            reading_error: e,
        };
        let before = self.skew(t);
        let mut corrections = vec![0.0; n];
        let trace_it = k <= TRACED_ROUNDS;
        for (p, corr) in corrections.iter_mut().enumerate().take(correct) {
            let own = self.clock_error(p, t);
            let mut readings = Vec::with_capacity(n);
            let mut correct_others = Vec::new();
            for q in 0..n {
                if q == p {
                    readings.push(0.0);
                    continue;
                }
                let noise = if e > 0.0 {
                    self.sim.rng().gen_range(-e..=e)
                } else {
                    0.0
                };
                if q < correct {
                    let r = self.clock_error(q, t) - own + noise;
                    correct_others.push(r);
                    readings.push(r);
                } else {
                    readings.push(f64::NAN); // filled below, once the correct readings are known
                }
            }
            for (q, slot) in readings.iter_mut().enumerate().skip(correct) {
                let lie = match c.adversary {
                    Adversary::None => self.clock_error(q, t) - own,
                    Adversary::Liar => 1000.0,
                    Adversary::Random => self.sim.rng().gen_range(-10.0 * bound..=10.0 * bound),
                    Adversary::TwoFaced => {
                        two_faced_reading(&correct_others, lie_cap) / c.faulty.max(1) as f64
                    }
                };
                *slot = lie;
            }
            *corr = correction(c.algorithm, &readings, conv).unwrap_or(0.0);
            if trace_it {
                for (q, r) in readings.iter().enumerate() {
                    if q != p {
                        let m = self
                            .trace
                            .send(q as u32, t, format!("clock to {}", node_name(p)));
                        let _ = self.trace.receive(
                            p as u32,
                            m,
                            t,
                            format!("reads {} {r:+.3} ms", node_name(q)),
                        );
                    }
                }
                self.trace
                    .local(p as u32, t, format!("round {k}: corrects by {corr:+.3} ms"));
            }
        }
        for (p, corr) in corrections.iter().enumerate().take(correct) {
            self.offsets[p] += corr;
        }
        let after = self.skew(t);
        self.rounds.push(RoundRecord {
            round: k,
            at_s: at.as_secs_f64(),
            skew_before_ms: before,
            skew_after_ms: after,
        });
        self.last = Some(format!(
            "round {k}: skew {before:.3} ms before, {after:.3} ms after"
        ));
        self.sim.schedule_in(
            Duration::from_secs_f64(self.config.period_s),
            Happening::Round(k + 1),
        );
    }

    /// Whether the correct clocks stayed within the precision bound all run.
    pub fn bound_holds(&self) -> bool {
        self.max_skew() <= self.config.bound_ms()
    }

    /// The run in a few lines: the setting, some rounds, the bound and the verdict.
    pub fn report(&self) -> String {
        let c = &self.config;
        let mut s = String::new();
        let byz = if c.faulty == 0 {
            "none Byzantine".to_owned()
        } else {
            let names: Vec<String> = (self.correct()..c.nodes).map(node_name).collect();
            format!("{} Byzantine, {}", names.join(", "), c.adversary.key())
        };
        let _ = writeln!(
            s,
            "BFT clock sync: {} nodes ({byz}); {}; drift ±{} ppm, reading error {} ms, a round every {} s",
            c.nodes,
            c.algorithm.name(),
            c.drift_ppm,
            c.reading_error_ms,
            c.period_s
        );
        let shown: Vec<&RoundRecord> = self
            .rounds
            .iter()
            .filter(|r| r.round <= 5 || r.round % 10 == 0)
            .collect();
        for r in shown {
            let _ = writeln!(
                s,
                "Round {:>4} at {:>7.1} s: skew {:>9.3} ms before, {:>9.3} ms after",
                r.round, r.at_s, r.skew_before_ms, r.skew_after_ms
            );
        }
        let bound = c.bound_ms();
        let max = self.max_skew();
        let n_ok = if c.resilient() {
            format!("n = {} ≥ 3f + 1 = {}", c.nodes, 3 * c.faulty + 1)
        } else {
            format!("n = {} < 3f + 1 = {}", c.nodes, 3 * c.faulty + 1)
        };
        let _ = writeln!(
            s,
            "Precision bound {} = {bound:.3} ms; largest skew {max:.3} ms: {} ({n_ok})",
            c.bound_formula(),
            if max <= bound { "HOLDS" } else { "BROKEN" }
        );
        s
    }
}
