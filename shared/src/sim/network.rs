//! The network model: per directed link latency distributions, loss and partitions.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::NodeId;

/// A one-way latency distribution. Every sample is non-negative.
///
/// Asymmetric paths (A→B slow, B→A fast) are two directed links with different
/// distributions: see [`Network::set_asymmetric`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Latency {
    /// Always the same delay.
    Constant(Duration),
    /// Uniform on `[min, max]`.
    Uniform {
        /// Smallest delay.
        min: Duration,
        /// Largest delay.
        max: Duration,
    },
    /// Normal with the given mean and standard deviation, truncated at zero (a sample below
    /// zero is redrawn as zero: a message cannot arrive before it is sent).
    Normal {
        /// Mean delay.
        mean: Duration,
        /// Standard deviation.
        std_dev: Duration,
    },
}

impl Latency {
    /// Draws one delay.
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        match *self {
            Latency::Constant(d) => d,
            Latency::Uniform { min, max } => {
                if max <= min {
                    min
                } else {
                    let lo = min.as_nanos() as u64;
                    let hi = max.as_nanos() as u64;
                    Duration::from_nanos(rng.gen_range(lo..=hi))
                }
            }
            Latency::Normal { mean, std_dev } => {
                let z = standard_normal(rng);
                let ns = mean.as_nanos() as f64 + z * std_dev.as_nanos() as f64;
                Duration::from_nanos(ns.max(0.0).round() as u64)
            }
        }
    }

    /// The smallest delay the distribution can produce.
    pub fn min(&self) -> Duration {
        match *self {
            Latency::Constant(d) => d,
            Latency::Uniform { min, max } => min.min(max),
            Latency::Normal { .. } => Duration::ZERO,
        }
    }

    /// The mean delay (for the normal, ignoring the truncation at zero).
    pub fn mean(&self) -> Duration {
        match *self {
            Latency::Constant(d) => d,
            Latency::Uniform { min, max } => (min + max) / 2,
            Latency::Normal { mean, .. } => mean,
        }
    }

    fn validate(&self) -> Result<(), NetworkError> {
        match *self {
            Latency::Uniform { min, max } if min > max => Err(NetworkError::EmptyRange),
            _ => Ok(()),
        }
    }
}

/// A standard normal deviate by the Box–Muller transform (rand 0.8 without `rand_distr`).
pub(crate) fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]: ln is finite
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// What one directed link does to a message.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkModel {
    /// One-way delay.
    pub latency: Latency,
    /// Probability in `[0, 1]` that a message is lost.
    pub loss: f64,
}

impl LinkModel {
    /// A loss-free link with the given latency.
    pub fn new(latency: Latency) -> Self {
        Self { latency, loss: 0.0 }
    }

    /// Checks the loss probability and the latency range.
    pub fn validate(&self) -> Result<(), NetworkError> {
        self.latency.validate()?;
        if (0.0..=1.0).contains(&self.loss) {
            Ok(())
        } else {
            Err(NetworkError::BadLoss(self.loss))
        }
    }
}

/// Invalid network settings.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum NetworkError {
    /// A loss probability outside `[0, 1]`.
    #[error("loss probability {0} is not between 0 and 1")]
    BadLoss(f64),
    /// A uniform latency whose minimum exceeds its maximum.
    #[error("latency range is empty: minimum exceeds maximum")]
    EmptyRange,
}

/// What happened to a message handed to the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// It will arrive after `latency`.
    Delivered {
        /// The sampled one-way delay.
        latency: Duration,
    },
    /// The link dropped it (loss probability).
    Lost,
    /// Sender and receiver are cut off from each other (partition or blocked link).
    Partitioned,
}

/// Who can reach whom, and how: a default link model, per directed link overrides, partitions
/// and individually blocked directed links.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Network {
    /// Used for every link without an override.
    default: Option<LinkModel>,
    /// Per directed link `(from, to)` overrides.
    links: BTreeMap<(NodeId, NodeId), LinkModel>,
    /// Partition groups: node → group number. Empty means no partition. Nodes not listed in
    /// a partition form one more group together.
    groups: BTreeMap<NodeId, usize>,
    /// Directed links that deliver nothing (one-way partitions).
    blocked: BTreeSet<(NodeId, NodeId)>,
}

/// The link used when nothing is configured: instantaneous and reliable.
const IDEAL: LinkModel = LinkModel {
    latency: Latency::Constant(Duration::ZERO),
    loss: 0.0,
};

impl Network {
    /// A network where every link behaves like `default`.
    pub fn new(default: LinkModel) -> Self {
        Self {
            default: Some(default),
            ..Self::default()
        }
    }

    /// The model of the directed link `from → to`.
    pub fn link(&self, from: NodeId, to: NodeId) -> LinkModel {
        self.links
            .get(&(from, to))
            .copied()
            .or(self.default)
            .unwrap_or(IDEAL)
    }

    /// Sets the model of the directed link `from → to`.
    pub fn set_link(
        &mut self,
        from: NodeId,
        to: NodeId,
        model: LinkModel,
    ) -> Result<(), NetworkError> {
        model.validate()?;
        self.links.insert((from, to), model);
        Ok(())
    }

    /// Sets the latency of `from → to` (keeping its loss).
    pub fn set_latency(
        &mut self,
        from: NodeId,
        to: NodeId,
        latency: Latency,
    ) -> Result<(), NetworkError> {
        let model = LinkModel {
            latency,
            ..self.link(from, to)
        };
        self.set_link(from, to, model)
    }

    /// An asymmetric path: `a → b` with `forward`, `b → a` with `backward`.
    pub fn set_asymmetric(
        &mut self,
        a: NodeId,
        b: NodeId,
        forward: Latency,
        backward: Latency,
    ) -> Result<(), NetworkError> {
        self.set_latency(a, b, forward)?;
        self.set_latency(b, a, backward)
    }

    /// Sets the loss probability of `from → to` (keeping its latency).
    pub fn set_loss(&mut self, from: NodeId, to: NodeId, loss: f64) -> Result<(), NetworkError> {
        let model = LinkModel {
            loss,
            ..self.link(from, to)
        };
        self.set_link(from, to, model)
    }

    /// Splits the nodes into groups that cannot reach each other; nodes not listed form one
    /// more group. Replaces any earlier partition.
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        self.groups.clear();
        for (g, members) in groups.iter().enumerate() {
            for &n in *members {
                self.groups.insert(n, g);
            }
        }
    }

    /// Removes the partition and unblocks every link.
    pub fn heal(&mut self) {
        self.groups.clear();
        self.blocked.clear();
    }

    /// Blocks the directed link `from → to` (the reverse direction still works).
    pub fn block(&mut self, from: NodeId, to: NodeId) {
        self.blocked.insert((from, to));
    }

    /// Unblocks the directed link `from → to`.
    pub fn unblock(&mut self, from: NodeId, to: NodeId) {
        self.blocked.remove(&(from, to));
    }

    /// Whether a message from `from` can reach `to` at all.
    pub fn connected(&self, from: NodeId, to: NodeId) -> bool {
        if self.blocked.contains(&(from, to)) {
            return false;
        }
        if self.groups.is_empty() {
            return true;
        }
        let group = |n| self.groups.get(&n).copied().unwrap_or(usize::MAX);
        group(from) == group(to)
    }

    /// Decides the fate of one message: partitioned, lost, or delivered after a sampled
    /// latency. Draws from `rng` only for links that are connected (loss first, then latency).
    pub fn transmit(&self, from: NodeId, to: NodeId, rng: &mut impl Rng) -> SendOutcome {
        if !self.connected(from, to) {
            return SendOutcome::Partitioned;
        }
        let link = self.link(from, to);
        if link.loss > 0.0 && rng.gen::<f64>() < link.loss {
            return SendOutcome::Lost;
        }
        SendOutcome::Delivered {
            latency: link.latency.sample(rng),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, SeedableRng};

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn distributions_stay_in_range_and_have_their_mean() {
        let mut rng = StdRng::seed_from_u64(1);
        let u = Latency::Uniform {
            min: ms(5),
            max: ms(15),
        };
        let n = Latency::Normal {
            mean: ms(10),
            std_dev: ms(2),
        };
        let (mut su, mut sn) = (0.0, 0.0);
        for _ in 0..20_000 {
            let a = u.sample(&mut rng);
            assert!((ms(5)..=ms(15)).contains(&a));
            su += a.as_secs_f64();
            sn += n.sample(&mut rng).as_secs_f64();
        }
        assert!((su / 20_000.0 - 0.010).abs() < 0.0002);
        assert!((sn / 20_000.0 - 0.010).abs() < 0.0002);
        assert_eq!(Latency::Constant(ms(3)).sample(&mut rng), ms(3));
        // A wide normal is truncated at zero, never negative.
        let wide = Latency::Normal {
            mean: ms(1),
            std_dev: ms(10),
        };
        assert!((0..1000).any(|_| wide.sample(&mut rng) == Duration::ZERO));
    }

    #[test]
    fn asymmetric_links_and_one_way_blocks() {
        let mut net = Network::new(LinkModel::new(Latency::Constant(ms(10))));
        net.set_asymmetric(0, 1, Latency::Constant(ms(30)), Latency::Constant(ms(2)))
            .unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(
            net.transmit(0, 1, &mut rng),
            SendOutcome::Delivered { latency: ms(30) }
        );
        assert_eq!(
            net.transmit(1, 0, &mut rng),
            SendOutcome::Delivered { latency: ms(2) }
        );
        assert_eq!(
            net.transmit(0, 2, &mut rng),
            SendOutcome::Delivered { latency: ms(10) }
        );
        net.block(0, 2);
        assert_eq!(net.transmit(0, 2, &mut rng), SendOutcome::Partitioned);
        assert!(net.connected(2, 0));
    }

    #[test]
    fn bad_settings_are_refused_and_change_nothing() {
        let mut net = Network::default();
        assert_eq!(net.set_loss(0, 1, 1.5), Err(NetworkError::BadLoss(1.5)));
        assert_eq!(
            net.set_latency(
                0,
                1,
                Latency::Uniform {
                    min: ms(9),
                    max: ms(1)
                }
            ),
            Err(NetworkError::EmptyRange)
        );
        assert_eq!(net.link(0, 1), IDEAL);
    }

    #[test]
    fn unlisted_nodes_form_their_own_group() {
        let mut net = Network::default();
        net.partition(&[&[0, 1]]);
        assert!(net.connected(0, 1));
        assert!(net.connected(2, 3));
        assert!(!net.connected(1, 2));
        net.heal();
        assert!(net.connected(1, 2));
    }
}
