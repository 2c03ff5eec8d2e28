//! The Lamport clock lab: machines ticking at different rates exchange messages and keep
//! Lamport clocks, as in the lab notebook (`seeds/lamport-lab-notebook.md`), after Lamport,
//! "Time, Clocks, and the Ordering of Events in a Distributed System" (CACM 21(7), 1978).
//!
//! Each machine has a clock rate of 1–6 ticks per second, a message queue and a Lamport clock.
//! On each tick it takes one message from its queue if there is one and sets its clock to
//! `max(local, received) + 1`; otherwise it rolls: with the internal probability it does an
//! internal event, otherwise (the rest split evenly) it sends its clock to the next machine, to
//! the one after that, or to all others — each of these increments the clock first. Every event
//! is logged per machine with the time, the event type, the queue length and the clock
//! ([`LogEntry`], one line each in the notebook's fields).
//!
//! **Guarantee (Lamport's clock condition).** If event a happened before event b then
//! `C(a) < C(b)`: clocks increase on every event and a receive's clock exceeds its send's. Every
//! run is recorded into a [`Trace`], whose independently computed Lamport times equal the
//! machines' clocks (checked in the tests), and whose vector clocks make the run a legal
//! space-time diagram.
//!
//! [`simulate`] runs the lab on the shared discrete-event simulator ([`crate::sim`]): tick `k`
//! of a machine with rate `r` happens at exactly `k/r` seconds, a message arrives in the
//! receiver's queue a fixed network delay after it was sent, and every random choice comes
//! from the simulator's seeded RNG, so a run is a function of its [`LabConfig`]. The real-time mode (threads and TCP sockets) lives in the
//! server crate and drives the same [`Machine`].
//!
//! The lab is split by job: [`machine`] (one machine's tick rule and its log format), [`run`]
//! (the seeded run on the simulator, one event at a time: [`LamportLab`]), [`analysis`] (the
//! notebook's questions, the claims checked against a run, the report), [`plots`] (the
//! charts), and [`frame`] (the lab's parameters and its shape for the lab frame).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

pub mod analysis;
pub mod frame;
pub mod machine;
pub mod plots;
pub mod run;

pub use analysis::{analyse, claims, observations, report, summary_table, Analysis, MachineStats};
pub use frame::SPEC;
pub use machine::{parse_log, Action, LabEvent, LabMessage, LogEntry, Machine};
pub use plots::{clock_chart, plot_clocks, plot_queues, queue_chart};
pub use run::{new_trace, simulate, trace_node, LabRun, LamportLab};

/// The slowest and fastest clock rates the notebook allows, in ticks per second.
pub const RATES: std::ops::RangeInclusive<u32> = 1..=6;

/// Why a lab configuration cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LabError {
    /// Fewer than two machines.
    #[error("the lab needs at least 2 machines, got {0}")]
    TooFewMachines(usize),
    /// A clock rate outside 1–6 ticks per second.
    #[error("clock rate {0} is outside 1–6 ticks per second")]
    BadRate(u32),
    /// A probability outside [0, 1].
    #[error("internal probability {0} is not between 0 and 1")]
    BadProbability(f64),
    /// A non-positive or non-finite duration or a negative delay.
    #[error("{what} must be a finite number {bound}, got {value}")]
    BadTime {
        /// Which parameter.
        what: &'static str,
        /// The bound it must satisfy.
        bound: &'static str,
        /// The value given.
        value: f64,
    },
    /// An experiment number outside 1–11.
    #[error("there is no experiment {0}; the notebook has experiments 1 to 11")]
    NoSuchExperiment(u32),
    /// A log line that is not in the lab's format.
    #[error("log line {line}: {reason}: {text:?}")]
    BadLogLine {
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: &'static str,
        /// The line.
        text: String,
    },
}

/// One run's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabConfig {
    /// Clock rate of each machine, ticks per second (1–6); the number of machines.
    pub rates: Vec<u32>,
    /// Probability that a tick with an empty queue is an internal event (0.7 in the notebook).
    pub internal_probability: f64,
    /// Length of the run in seconds (60 in the notebook).
    pub duration_s: f64,
    /// Time from send to arrival in the receiver's queue, in milliseconds (simulated mode).
    pub network_delay_ms: f64,
    /// Seed of every random choice.
    pub seed: u64,
}

impl LabConfig {
    /// Checks the configuration, returning it unchanged when it can run.
    pub fn validated(self) -> Result<Self, LabError> {
        if self.rates.len() < 2 {
            return Err(LabError::TooFewMachines(self.rates.len()));
        }
        if let Some(&r) = self.rates.iter().find(|r| !RATES.contains(r)) {
            return Err(LabError::BadRate(r));
        }
        if !(0.0..=1.0).contains(&self.internal_probability) {
            return Err(LabError::BadProbability(self.internal_probability));
        }
        if !(self.duration_s.is_finite() && self.duration_s > 0.0) {
            return Err(LabError::BadTime {
                what: "duration",
                bound: "above 0",
                value: self.duration_s,
            });
        }
        if !(self.network_delay_ms.is_finite() && self.network_delay_ms >= 0.0) {
            return Err(LabError::BadTime {
                what: "network delay",
                bound: "at least 0",
                value: self.network_delay_ms,
            });
        }
        Ok(self)
    }
}

/// One of the notebook's 11 experiments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Experiment {
    /// Its number in the notebook, 1–11.
    pub number: u32,
    /// Its title in the notebook.
    pub title: &'static str,
    /// The clock rates; `None` for experiment 1, which draws them at random from the seed.
    pub rates: Option<[u32; 3]>,
    /// Probability of an internal event.
    pub internal_probability: f64,
}

impl Experiment {
    /// The notebook's experiments, in order.
    pub const ALL: [Experiment; 11] = [
        Experiment::new(1, "Default settings", None, 0.7),
        Experiment::new(2, "Specific clock rates", Some([6, 4, 4]), 0.7),
        Experiment::new(3, "Uniform clock rate", Some([3, 3, 3]), 0.7),
        Experiment::new(4, "Big clock differences", Some([1, 3, 6]), 0.7),
        Experiment::new(5, "Small clock differences", Some([5, 3, 2]), 0.7),
        Experiment::new(
            6,
            "More communication with small clock differences",
            Some([5, 3, 2]),
            0.4,
        ),
        Experiment::new(
            7,
            "High communication with uniform clocks",
            Some([3, 3, 3]),
            0.1,
        ),
        Experiment::new(
            8,
            "High communication with mixed clocks",
            Some([4, 4, 6]),
            0.1,
        ),
        Experiment::new(
            9,
            "High communication with extreme clock difference",
            Some([1, 1, 6]),
            0.1,
        ),
        Experiment::new(
            10,
            "High communication with big clock differences",
            Some([1, 4, 6]),
            0.1,
        ),
        Experiment::new(
            11,
            "High communication with small clock differences",
            Some([5, 3, 2]),
            0.1,
        ),
    ];

    const fn new(number: u32, title: &'static str, rates: Option<[u32; 3]>, p: f64) -> Self {
        Experiment {
            number,
            title,
            rates,
            internal_probability: p,
        }
    }

    /// Experiment `number` (1–11).
    pub fn get(number: u32) -> Result<Experiment, LabError> {
        Experiment::ALL
            .iter()
            .copied()
            .find(|e| e.number == number)
            .ok_or(LabError::NoSuchExperiment(number))
    }

    /// The run configuration for this experiment; experiment 1 draws its rates from `seed`.
    pub fn config(&self, duration_s: f64, seed: u64) -> LabConfig {
        let rates = match self.rates {
            Some(r) => r.to_vec(),
            None => {
                let mut rng = StdRng::seed_from_u64(seed ^ 0x1a2b_3c4d);
                (0..3).map(|_| rng.gen_range(RATES)).collect()
            }
        };
        LabConfig {
            rates,
            internal_probability: self.internal_probability,
            duration_s,
            network_delay_ms: 0.5,
            seed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::validate;

    fn run(n: u32, seed: u64) -> (LabRun, Analysis) {
        let e = Experiment::get(n).unwrap();
        let r = simulate(e.config(60.0, seed)).unwrap();
        let a = analyse(&r.config.rates, &r.logs);
        (r, a)
    }

    #[test]
    fn the_trace_agrees_with_the_machines_clocks_and_is_legal() {
        let (r, _) = run(6, 7);
        assert!(validate(&r.trace).is_empty());
        for (m, log) in r.logs.iter().enumerate() {
            let lane = r.trace.lane(trace_node(m));
            let events: Vec<&LogEntry> = log.iter().filter(|e| e.event != LabEvent::Stop).collect();
            assert_eq!(lane.len(), events.len());
            for (&id, e) in lane.iter().zip(events) {
                assert_eq!(r.trace.events()[id].lamport, e.clock);
            }
        }
    }

    #[test]
    fn runs_are_functions_of_the_seed() {
        let a = simulate(Experiment::get(10).unwrap().config(20.0, 3)).unwrap();
        let b = simulate(Experiment::get(10).unwrap().config(20.0, 3)).unwrap();
        let c = simulate(Experiment::get(10).unwrap().config(20.0, 4)).unwrap();
        assert_eq!(a.logs, b.logs);
        assert_ne!(a.logs, c.logs);
    }

    #[test]
    fn each_machine_ticks_at_its_rate() {
        let (r, a) = run(4, 1);
        for (m, &rate) in r.config.rates.iter().enumerate() {
            let s = &a.machines[m];
            assert_eq!((s.internal + s.sends + s.receives) as u32, rate * 60);
        }
    }

    #[test]
    fn logs_print_and_parse_back() {
        let (r, _) = run(8, 2);
        for m in 0..3 {
            assert_eq!(parse_log(&r.log_text(m)).unwrap(), r.logs[m]);
        }
        assert!(matches!(
            parse_log("1.0 RECEIVE queue=1 clock=2"),
            Err(LabError::BadLogLine { line: 1, .. })
        ));
    }

    #[test]
    fn bad_configurations_are_refused() {
        let mut c = Experiment::get(2).unwrap().config(60.0, 0);
        c.rates = vec![0, 3];
        assert_eq!(simulate(c.clone()).err(), Some(LabError::BadRate(0)));
        c.rates = vec![3];
        assert_eq!(simulate(c.clone()).err(), Some(LabError::TooFewMachines(1)));
        c.rates = vec![3, 3];
        c.internal_probability = 1.5;
        assert_eq!(simulate(c).err(), Some(LabError::BadProbability(1.5)));
        assert_eq!(Experiment::get(12), Err(LabError::NoSuchExperiment(12)));
    }

    #[test]
    fn lab_traces_survive_a_shiviz_round_trip() {
        let (r, _) = run(11, 5);
        let back = crate::trace::shiviz::import(&crate::trace::shiviz::export(&r.trace)).unwrap();
        assert_eq!(back.events(), r.trace.events());
        assert_eq!(back.node_name(2), "M2");
    }

    #[test]
    fn stepping_event_by_event_reaches_the_same_run_as_running_at_once() {
        let config = Experiment::get(9).unwrap().config(20.0, 4);
        let whole = simulate(config.clone()).unwrap();
        let mut lab = LamportLab::new(config).unwrap();
        let mut steps = 0u64;
        while let Some(t) = lab.step() {
            steps += 1;
            assert_eq!(lab.events(), steps, "one event per step");
            assert_eq!(lab.now(), t);
        }
        assert!(lab.finished());
        let stepped = lab.finish();
        assert_eq!(stepped.logs, whole.logs);
        assert_eq!(stepped.trace.events(), whole.trace.events());
    }

    #[test]
    fn a_link_rebuilds_the_same_run() {
        use crate::labs::Params;
        let p = Params::parse("exp=10&seed=7&duration=30");
        let mut a = SPEC.build(&p).unwrap();
        a.run_until(crate::sim::SimTime::from_secs(30));
        let canonical = a.params();
        assert_eq!(canonical.to_query(), "seed=7&exp=10&duration=30");
        let mut b = SPEC.build(&Params::parse(&canonical.to_query())).unwrap();
        b.run_until(crate::sim::SimTime::from_secs(30));
        assert_eq!(a.claims(), b.claims());
        assert_eq!(a.tables(), b.tables());
        // Customised rates travel in the link; another experiment resets them.
        let custom = Params::parse("exp=4&rates=2,3,6&seed=1");
        let lab = SPEC.build(&custom).unwrap();
        assert_eq!(lab.params().get("rates"), Some("2,3,6"));
        let next = lab.params().with_change(SPEC.params, "exp", "5");
        assert_eq!(
            SPEC.build(&next).unwrap().settings().get("rates"),
            Some("5,3,2")
        );
        // Bad values are refused in one line, naming the parameter.
        let e = SPEC.build(&Params::parse("rates=1,9,3")).err().unwrap();
        assert_eq!(e.to_string(), "rates: 9 is outside 1–6");
        let e = SPEC.build(&Params::parse("speed=3")).err().unwrap();
        assert_eq!(e.to_string(), "speed: no such parameter in this lab");
    }

    #[test]
    fn every_claim_of_experiment_4_holds_and_names_the_slow_machine() {
        let mut lab = SPEC.build(&crate::labs::Params::new()).unwrap();
        lab.run_until(crate::sim::SimTime::from_secs(60));
        let claims = lab.claims();
        assert!(claims.len() >= 4, "{claims:?}");
        for c in &claims {
            assert_eq!(c.verdict, crate::labs::Verdict::Holds, "{c:?}");
        }
        assert!(claims[0].claim.starts_with("Lamport's clock condition"));
        assert!(claims
            .iter()
            .any(|c| c.evidence.starts_with("M0 (1/s) cannot keep up")));
        let tables = lab.tables();
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["machines", "clocks", "queues", "log"]);
        assert_eq!(tables[0].rows.len(), 3);
    }

    #[test]
    fn the_clock_condition_claim_fails_on_a_broken_log() {
        let mut r = simulate(Experiment::get(4).unwrap().config(10.0, 1)).unwrap();
        assert_eq!(
            analysis::clock_condition(&r.logs, &r.trace).verdict,
            crate::labs::Verdict::Holds
        );
        r.logs[1][3].clock = 0;
        assert_eq!(
            analysis::clock_condition(&r.logs, &r.trace).verdict,
            crate::labs::Verdict::Fails
        );
    }
}
