//! The CRDT counter lab (project 9 of the seed): G-Counter and PN-Counter replicas
//! ([`crate::replication::counter`], Shapiro et al., INRIA RR-7506, 2011) increment and
//! decrement while a link is cut, gossip their state, and converge when it heals.
//!
//! **Guarantee (strong eventual consistency):** replicas that received the same updates hold
//! the same state, whatever the order and repetition of merges — because merge is
//! commutative, associative and idempotent. [`LawCheck`] checks those three laws on the states
//! a run (or a browser tab) actually saw, so the claim is judged on this run's numbers; the
//! run's final values are compared with the true total of every operation made.
//!
//! The simulated run ([`simulate`]) is a function of its [`CounterConfig`].

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::labs::{Claim, Table, Verdict};
use crate::replication::counter::PnCounter;
use crate::NodeId;

/// How many recent states [`LawCheck`] keeps (the laws are checked on every pair and triple).
pub const LAW_WINDOW: usize = 8;

/// The merge laws, checked on the states seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LawCheck {
    /// The most recent distinct states seen.
    recent: Vec<PnCounter>,
    /// Pairs checked for commutativity and idempotence.
    pub pairs: u64,
    /// Triples checked for associativity.
    pub triples: u64,
    /// Violations found (an empty list is the claim holding).
    pub violations: Vec<String>,
}

fn merged(a: &PnCounter, b: &PnCounter) -> PnCounter {
    let mut m = a.clone();
    m.merge(b);
    m
}

impl LawCheck {
    /// An empty check.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a state seen and checks the laws between it and the recent ones.
    pub fn see(&mut self, s: &PnCounter) {
        if self.recent.contains(s) {
            return;
        }
        for a in &self.recent {
            self.pairs += 1;
            if merged(a, s) != merged(s, a) {
                self.violations
                    .push(format!("a ⊔ b ≠ b ⊔ a for {a:?}, {s:?}"));
            }
            if merged(a, a) != *a {
                self.violations.push(format!("a ⊔ a ≠ a for {a:?}"));
            }
            for b in &self.recent {
                self.triples += 1;
                if merged(&merged(a, b), s) != merged(a, &merged(b, s)) {
                    self.violations
                        .push(format!("(a ⊔ b) ⊔ c ≠ a ⊔ (b ⊔ c) for {a:?}, {b:?}, {s:?}"));
                }
            }
        }
        self.violations.truncate(8);
        self.recent.push(s.clone());
        if self.recent.len() > LAW_WINDOW {
            self.recent.remove(0);
        }
    }

    /// The claim, judged on what was checked.
    pub fn claim(&self) -> Claim {
        Claim::new(
            "Merge is commutative, associative and idempotent (Shapiro et al. 2011, §2.2): the \
             states seen form a join semilattice",
            format!(
                "{} pairs and {} triples of states seen checked; {} violations",
                self.pairs,
                self.triples,
                self.violations.len()
            ),
            if self.pairs == 0 {
                Verdict::Pending
            } else {
                Verdict::of(self.violations.is_empty())
            },
        )
    }
}

/// One simulated run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterConfig {
    /// Replicas, 2..=8.
    pub replicas: u32,
    /// Operations per replica.
    pub ops: u32,
    /// Chance an operation is a decrement (0 for a pure G-Counter workload).
    pub decrement_probability: f64,
    /// The first `partition` replicas are cut off from the rest while the operations run
    /// (0: no partition).
    pub partition: u32,
    /// Seed.
    pub seed: u64,
}

/// One replica's line in a [`CounterRun`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaRow {
    /// Replica id.
    pub id: NodeId,
    /// Its value while partitioned (after its offline operations, before healing).
    pub value_partitioned: i128,
    /// Its value after healing.
    pub value_healed: i128,
    /// Its own increments and decrements slots.
    pub slot: (u64, u64),
}

/// A finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterRun {
    /// The configuration.
    pub config: CounterConfig,
    /// Per replica.
    pub replicas: Vec<ReplicaRow>,
    /// The true total of every operation made.
    pub truth: i128,
    /// The final state (every replica's, once converged).
    pub state: PnCounter,
    /// The laws, on every state seen.
    pub laws: LawCheck,
}

/// Runs the scenario: replicas increment and decrement at random while the first
/// `partition` replicas are cut off from the rest, gossiping within their side after every
/// operation; then the cut heals and one round of all-to-all gossip runs.
pub fn simulate(config: CounterConfig) -> CounterRun {
    let n = config.replicas.clamp(2, 8);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut states: Vec<PnCounter> = vec![PnCounter::new(); n as usize];
    let side = |i: u32| i < config.partition.min(n);
    let mut truth: i128 = 0;
    let mut laws = LawCheck::new();
    for _ in 0..config.ops * n {
        let i = rng.gen_range(0..n);
        let by = rng.gen_range(1..=5u64);
        if rng.gen_bool(config.decrement_probability.clamp(0.0, 1.0)) {
            states[i as usize].decrement(i, by);
            truth -= i128::from(by);
        } else {
            states[i as usize].increment(i, by);
            truth += i128::from(by);
        }
        laws.see(&states[i as usize]);
        // Gossip to a random replica on the same side of the cut.
        let j = rng.gen_range(0..n);
        if j != i && side(i) == side(j) {
            let s = states[i as usize].clone();
            states[j as usize].merge(&s);
            laws.see(&states[j as usize]);
        }
    }
    let partitioned: Vec<i128> = states.iter().map(PnCounter::value).collect();
    // Heal: every replica merges every other's state, in a seeded random order, twice.
    for _ in 0..2 {
        for _ in 0..n * n {
            let (i, j) = (rng.gen_range(0..n), rng.gen_range(0..n));
            let s = states[i as usize].clone();
            states[j as usize].merge(&s);
            laws.see(&states[j as usize]);
        }
        for i in 0..n as usize {
            for j in 0..n as usize {
                let s = states[i].clone();
                states[j].merge(&s);
            }
        }
    }
    CounterRun {
        replicas: (0..n)
            .map(|i| ReplicaRow {
                id: i,
                value_partitioned: partitioned[i as usize],
                value_healed: states[i as usize].value(),
                slot: (
                    states[i as usize].increments().slot(i),
                    states[i as usize].decrements().slot(i),
                ),
            })
            .collect(),
        truth,
        state: states[0].clone(),
        laws,
        config,
    }
}

impl CounterRun {
    /// The claims, judged on this run.
    pub fn claims(&self) -> Vec<Claim> {
        let healed: Vec<i128> = self.replicas.iter().map(|r| r.value_healed).collect();
        let diverged = self
            .replicas
            .windows(2)
            .any(|w| w[0].value_partitioned != w[1].value_partitioned);
        vec![
            Claim::new(
                "Replicas that received the same updates hold the same value (strong eventual \
                 consistency), equal to the sum of every operation",
                format!("after healing: {healed:?}; true total {}", self.truth),
                Verdict::of(healed.iter().all(|&v| v == self.truth)),
            ),
            Claim::new(
                "While partitioned, each side counts only what it has seen",
                format!(
                    "values during the partition: {:?}",
                    self.replicas
                        .iter()
                        .map(|r| r.value_partitioned)
                        .collect::<Vec<_>>()
                ),
                if self.config.partition == 0 || self.config.partition >= self.config.replicas {
                    Verdict::Pending
                } else {
                    Verdict::of(diverged)
                },
            ),
            self.laws.claim(),
        ]
    }

    /// Each replica's slots and values.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            "replicas",
            "Each replica: its own slots, its value while cut off and after healing",
            &[
                "replica",
                "own_increments",
                "own_decrements",
                "value_partitioned",
                "value_healed",
            ],
        );
        for r in &self.replicas {
            t.push(vec![
                r.id.into(),
                r.slot.0.into(),
                r.slot.1.into(),
                (r.value_partitioned as i64).into(),
                (r.value_healed as i64).into(),
            ]);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_partitioned_run_diverges_then_converges() {
        let run = simulate(CounterConfig {
            replicas: 4,
            ops: 20,
            decrement_probability: 0.3,
            partition: 2,
            seed: 5,
        });
        for c in run.claims() {
            assert_eq!(c.verdict, Verdict::Holds, "{c:?}");
        }
        let own: u64 = run.replicas.iter().map(|r| r.slot.0).sum();
        assert_eq!(own, run.state.increments().value(), "slots add up");
    }

    #[test]
    fn the_law_check_catches_a_bad_merge() {
        // A state whose merge with itself is not itself cannot exist for PnCounter; feed the
        // checker states and confirm it counts work and finds nothing.
        let mut l = LawCheck::new();
        assert_eq!(l.claim().verdict, Verdict::Pending);
        let mut a = PnCounter::new();
        a.increment(1, 3);
        let mut b = PnCounter::new();
        b.decrement(2, 1);
        l.see(&a);
        l.see(&b);
        l.see(&merged(&a, &b));
        assert_eq!(l.pairs, 3);
        assert_eq!(l.triples, 5);
        assert_eq!(l.claim().verdict, Verdict::Holds);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn every_seed_converges_to_the_truth(seed in any::<u64>(), n in 2u32..7, ops in 0u32..15, p in 0.0f64..1.0, cut in 0u32..7) {
            let run = simulate(CounterConfig { replicas: n, ops, decrement_probability: p, partition: cut, seed });
            prop_assert!(run.replicas.iter().all(|r| r.value_healed == run.truth));
            prop_assert!(run.laws.violations.is_empty());
        }
    }
}
