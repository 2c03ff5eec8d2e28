//! A deterministic discrete-event simulator: virtual time, a seeded RNG, an event queue and a
//! network model.
//!
//! The classic event-scheduling world view (Fishman, *Discrete-Event Simulation*, 2001; the
//! "future event list" of every DES text): the simulation holds a set of pending events, each
//! stamped with the virtual time at which it fires; it repeatedly removes the earliest one,
//! advances virtual time to it and hands it to the model, which may schedule more events.
//!
//! Guarantee: **the same seed and the same calls give the same run, bit for bit, on every
//! platform** (native and WASM). Three things make that true:
//! - virtual time is an integer ([`SimTime`], nanoseconds), never a float and never the host
//!   clock;
//! - the event queue has a *total* order: events are ordered by time, and events at the same
//!   time by the order in which they were scheduled (a sequence number), so ties never depend
//!   on heap internals;
//! - every random choice (latency samples, loss) comes from one [`rand::rngs::StdRng`]
//!   (ChaCha12, portable and reproducible) seeded by the caller.
//!
//! The simulator is generic over the event type `E`: a lab defines its own event enum
//! (message deliveries, timers, ticks) and drives the loop with [`Simulation::pop`] or
//! [`Simulation::run_until`]. Messages go through [`Simulation::send`], which asks the
//! [`Network`] whether and when the message arrives and schedules the delivery event.

pub(crate) mod network;
mod queue;
mod time;

pub use network::{Latency, LinkModel, Network, NetworkError, SendOutcome};
pub use queue::EventQueue;
pub use time::SimTime;

use std::time::Duration;

use rand::{rngs::StdRng, SeedableRng};

use crate::NodeId;

/// Counters of what happened in a run: how much work the simulator did and what the network
/// did to the messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Events taken off the queue and handed to the model.
    pub events_processed: u64,
    /// Messages given to [`Simulation::send`].
    pub messages_sent: u64,
    /// Messages scheduled for delivery.
    pub messages_delivered: u64,
    /// Messages dropped by the link's loss probability.
    pub messages_lost: u64,
    /// Messages dropped because sender and receiver were on different sides of a partition.
    pub messages_partitioned: u64,
}

/// A deterministic discrete-event simulation over events of type `E`.
///
/// Architecture invariant: virtual time never goes backwards. [`Simulation::schedule_at`]
/// refuses a time in the past (it schedules at `now` instead and says so in the return value),
/// and [`Simulation::pop`] advances `now` to the popped event's time.
#[derive(Debug, Clone)]
pub struct Simulation<E> {
    /// The current virtual time: the time of the event most recently popped.
    now: SimTime,
    /// Pending events in their total order.
    queue: EventQueue<E>,
    /// The one source of randomness of the run.
    rng: StdRng,
    /// Who can reach whom, with which latency and loss.
    network: Network,
    /// Work and network counters.
    stats: SimStats,
}

/// Where a scheduled event landed in virtual time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduled {
    /// At the requested time.
    At(SimTime),
    /// The requested time was in the past; the event was scheduled at the current time.
    ClampedToNow(SimTime),
}

impl<E> Simulation<E> {
    /// A simulation at time zero with an empty queue, the given network and an RNG seeded
    /// with `seed`.
    pub fn new(seed: u64, network: Network) -> Self {
        Self {
            now: SimTime::ZERO,
            queue: EventQueue::new(),
            rng: StdRng::seed_from_u64(seed),
            network,
            stats: SimStats::default(),
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// The run's random number generator. Models draw every random choice from it so a run is
    /// reproducible from its seed.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// The network model (read).
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The network model (change links, partitions, loss during a run).
    pub fn network_mut(&mut self) -> &mut Network {
        &mut self.network
    }

    /// The counters so far.
    pub fn stats(&self) -> SimStats {
        self.stats
    }

    /// How many events are pending.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// The time of the next pending event, if any.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.queue.peek_time()
    }

    /// Schedules `event` at virtual time `at` (or now, if `at` is in the past).
    pub fn schedule_at(&mut self, at: SimTime, event: E) -> Scheduled {
        if at < self.now {
            self.queue.push(self.now, event);
            Scheduled::ClampedToNow(self.now)
        } else {
            self.queue.push(at, event);
            Scheduled::At(at)
        }
    }

    /// Schedules `event` after `delay` from now.
    pub fn schedule_in(&mut self, delay: Duration, event: E) -> SimTime {
        let at = self.now + delay;
        self.queue.push(at, event);
        at
    }

    /// Sends a message from `from` to `to`: the network decides whether it arrives (loss,
    /// partitions) and after which latency; if it does, `event` (the delivery, built by the
    /// caller) is scheduled at the arrival time.
    pub fn send(&mut self, from: NodeId, to: NodeId, event: E) -> SendOutcome {
        self.stats.messages_sent += 1;
        let outcome = self.network.transmit(from, to, &mut self.rng);
        match outcome {
            SendOutcome::Delivered { latency } => {
                self.stats.messages_delivered += 1;
                let at = self.now + latency;
                self.queue.push(at, event);
            }
            SendOutcome::Lost => self.stats.messages_lost += 1,
            SendOutcome::Partitioned => self.stats.messages_partitioned += 1,
        }
        outcome
    }

    /// Removes the earliest pending event, advances virtual time to it and returns it.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let (at, event) = self.queue.pop()?;
        debug_assert!(at >= self.now, "virtual time went backwards");
        self.now = at;
        self.stats.events_processed += 1;
        Some((at, event))
    }

    /// Pops and handles events in order while the next one is at or before `until`, then
    /// sets the clock to `until`. The handler gets the simulation back so it can schedule
    /// and send. Returns the number of events handled.
    pub fn run_until(
        &mut self,
        until: SimTime,
        mut handle: impl FnMut(&mut Self, SimTime, E),
    ) -> u64 {
        let mut handled = 0;
        while self.queue.peek_time().is_some_and(|t| t <= until) {
            let Some((at, event)) = self.pop() else { break };
            handle(self, at, event);
            handled += 1;
        }
        if until > self.now {
            self.now = until;
        }
        handled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    enum Ev {
        Tick(u32),
        Deliver { from: NodeId, to: NodeId, n: u32 },
    }

    fn ping_pong(seed: u64) -> Vec<(SimTime, Ev)> {
        let mut net = Network::new(LinkModel::new(Latency::Uniform {
            min: Duration::from_millis(5),
            max: Duration::from_millis(15),
        }));
        net.set_loss(0, 1, 0.2).unwrap();
        let mut sim = Simulation::new(seed, net);
        sim.schedule_at(SimTime::ZERO, Ev::Tick(0));
        let mut log = Vec::new();
        sim.run_until(SimTime::from_secs(2), |sim, at, ev| {
            log.push((at, ev.clone()));
            match ev {
                Ev::Tick(k) => {
                    sim.send(
                        0,
                        1,
                        Ev::Deliver {
                            from: 0,
                            to: 1,
                            n: k,
                        },
                    );
                    sim.schedule_in(Duration::from_millis(100), Ev::Tick(k + 1));
                }
                Ev::Deliver { from, to, n } if n % 2 == 0 => {
                    sim.send(
                        to,
                        from,
                        Ev::Deliver {
                            from: to,
                            to: from,
                            n: n + 1,
                        },
                    );
                }
                Ev::Deliver { .. } => {}
            }
        });
        log
    }

    #[test]
    fn same_seed_same_run_different_seed_different_run() {
        let a = ping_pong(7);
        assert_eq!(a, ping_pong(7));
        assert_ne!(a, ping_pong(8));
        // Time in the log never decreases.
        assert!(a.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn equal_times_pop_in_scheduling_order() {
        let mut sim: Simulation<u32> = Simulation::new(1, Network::default());
        for k in 0..100 {
            sim.schedule_at(SimTime::from_millis(5), k);
        }
        sim.schedule_at(SimTime::from_millis(1), 1000);
        assert_eq!(sim.pop(), Some((SimTime::from_millis(1), 1000)));
        let order: Vec<u32> = std::iter::from_fn(|| sim.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn scheduling_in_the_past_is_clamped_to_now() {
        let mut sim: Simulation<u8> = Simulation::new(1, Network::default());
        sim.schedule_at(SimTime::from_secs(3), 0);
        sim.pop();
        assert_eq!(
            sim.schedule_at(SimTime::from_secs(1), 1),
            Scheduled::ClampedToNow(SimTime::from_secs(3))
        );
        assert_eq!(sim.pop(), Some((SimTime::from_secs(3), 1)));
    }

    #[test]
    fn partitions_and_loss_are_counted() {
        let mut net = Network::new(LinkModel::new(Latency::Constant(Duration::from_millis(1))));
        net.partition(&[&[0, 1], &[2]]);
        let mut sim: Simulation<()> = Simulation::new(3, net);
        assert_eq!(sim.send(0, 2, ()), SendOutcome::Partitioned);
        assert_eq!(
            sim.send(0, 1, ()),
            SendOutcome::Delivered {
                latency: Duration::from_millis(1)
            }
        );
        sim.network_mut().heal();
        sim.network_mut().set_loss(1, 2, 1.0).unwrap();
        assert_eq!(sim.send(1, 2, ()), SendOutcome::Lost);
        assert!(matches!(sim.send(2, 1, ()), SendOutcome::Delivered { .. }));
        let s = sim.stats();
        assert_eq!(
            (
                s.messages_sent,
                s.messages_delivered,
                s.messages_lost,
                s.messages_partitioned
            ),
            (4, 2, 1, 1)
        );
        assert_eq!(sim.pending(), 2);
    }

    #[test]
    fn run_until_advances_the_clock_even_without_events() {
        let mut sim: Simulation<()> = Simulation::new(0, Network::default());
        assert_eq!(sim.run_until(SimTime::from_secs(10), |_, _, _| {}), 0);
        assert_eq!(sim.now(), SimTime::from_secs(10));
    }
}
