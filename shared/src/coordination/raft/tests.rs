//! The driver on its own: elections on drifting clocks, writes and reads through raft-rs, the
//! invariants, and that a run is a function of its seed.

use std::time::Duration;

use super::*;
use crate::sim::{Latency, LinkModel, Network};

fn network() -> Network {
    Network::new(LinkModel::new(Latency::Uniform {
        min: Duration::from_millis(1),
        max: Duration::from_millis(5),
    }))
}

struct Bench {
    sim: Simulation<Event>,
    cluster: Cluster,
    replies: Vec<(SimTime, Reply)>,
}

impl Bench {
    fn new(seed: u64, drifts: &[f64], mode: ReadMode) -> Bench {
        let config = ClusterConfig {
            nodes: drifts.len(),
            read_mode: mode,
            ..ClusterConfig::default()
        };
        let clocks: Vec<ClockSpec> = drifts.iter().map(|&d| ClockSpec::drifting(d)).collect();
        let mut sim = Simulation::new(seed, network());
        let mut cluster = Cluster::new(config, &clocks, seed).unwrap();
        cluster.start(&mut sim);
        Bench {
            sim,
            cluster,
            replies: Vec::new(),
        }
    }

    fn run(&mut self, until: SimTime) {
        while let Some(t) = self.sim.peek_time() {
            if t > until {
                break;
            }
            let (_, ev) = self.sim.pop().unwrap();
            self.cluster.handle(&mut self.sim, ev);
            let now = self.sim.now();
            for r in self.cluster.take_replies() {
                self.replies.push((now, r));
            }
        }
    }

    fn request(&mut self, node: usize, id: u64, op: Op) {
        self.cluster.request(&mut self.sim, node, id, op);
        let now = self.sim.now();
        for r in self.cluster.take_replies() {
            self.replies.push((now, r));
        }
    }

    fn leaders(&self) -> Vec<usize> {
        (0..self.cluster.len())
            .filter(|&i| self.cluster.status(i).role == Role::Leader)
            .collect()
    }

    fn reply(&self, id: u64) -> Option<Outcome> {
        self.replies
            .iter()
            .find(|(_, r)| r.id == id)
            .map(|(_, r)| r.outcome)
    }
}

#[test]
fn a_bootstrapped_node_leads_and_writes_reach_every_node() {
    let mut b = Bench::new(1, &[0.0; 5], ReadMode::ReadIndex);
    b.cluster.campaign(&mut b.sim, 0);
    b.run(SimTime::from_millis(500));
    assert_eq!(b.leaders(), vec![0]);
    // A write at a follower is forwarded to the leader; the follower answers once applied.
    b.request(3, 1, Op::Write(42));
    b.run(SimTime::from_secs(1));
    assert!(matches!(b.reply(1), Some(Outcome::Written { term: 1, .. })));
    for i in 0..5 {
        assert_eq!(b.cluster.status(i).value, Some(42), "node {i}");
    }
    b.request(2, 2, Op::Read);
    b.run(SimTime::from_millis(1500));
    assert_eq!(
        b.reply(2),
        Some(Outcome::Read {
            value: Some(42),
            term: 1,
            path: ReadPath::ReadIndex
        })
    );
    assert!(b.cluster.safety().holds());
}

#[test]
fn an_isolated_leader_is_replaced_in_a_higher_term() {
    let mut b = Bench::new(3, &[0.0; 5], ReadMode::ReadIndex);
    b.cluster.campaign(&mut b.sim, 0);
    b.run(SimTime::from_secs(1));
    for j in 1..5 {
        b.sim.network_mut().block(0, j);
        b.sim.network_mut().block(j, 0);
    }
    b.run(SimTime::from_secs(5));
    let status: Vec<NodeStatus> = (0..5).map(|i| b.cluster.status(i)).collect();
    // check_quorum: the old leader stepped down on its own.
    assert_ne!(status[0].role, Role::Leader);
    let leaders = b.leaders();
    assert_eq!(leaders.len(), 1, "{status:?}");
    assert!(status[leaders[0]].term > 1);
    let c = b.cluster.campaigns().iter().find(|c| c.node != 0).unwrap();
    assert_eq!(c.prev_leader, Some(0));
    assert!(b.cluster.safety().holds());
}

#[test]
fn the_fastest_clock_times_out_first() {
    // No bootstrap: the first campaign comes from the node whose clock runs twice as fast (its
    // timeout is drawn from the same [10, 20) ticks, but in true time that is [0.5, 1) s
    // against everyone else's [1, 2) s).
    let mut wins = 0;
    for seed in 0..10 {
        let mut b = Bench::new(
            seed,
            &[0.0, 0.0, 1_000_000.0, 0.0, 0.0],
            ReadMode::ReadIndex,
        );
        b.run(SimTime::from_secs(3));
        if b.cluster.campaigns().first().map(|c| c.node) == Some(2) {
            wins += 1;
        }
        assert!(b.cluster.safety().holds());
    }
    assert_eq!(
        wins, 10,
        "the fast node campaigned first in {wins} of 10 runs"
    );
}

#[test]
fn a_lease_read_needs_no_round_and_a_paused_clock_keeps_the_lease() {
    let mut b = Bench::new(5, &[0.0; 3], ReadMode::Lease);
    b.cluster.campaign(&mut b.sim, 0);
    b.run(SimTime::from_millis(500));
    b.request(0, 1, Op::Write(7));
    b.run(SimTime::from_millis(700));
    // The first read has no lease yet: a ReadIndex round, which grants one.
    b.request(0, 2, Op::Read);
    b.run(SimTime::from_millis(800));
    assert!(matches!(
        b.reply(2),
        Some(Outcome::Read {
            path: ReadPath::ReadIndex,
            ..
        })
    ));
    assert!(b.cluster.status(0).lease);
    b.request(0, 3, Op::Read);
    assert!(matches!(
        b.reply(3),
        Some(Outcome::Read {
            value: Some(7),
            path: ReadPath::Lease,
            ..
        })
    ));
    // Frozen with its clock for 3 s: on resume its clock says no time passed.
    b.cluster.pause(&mut b.sim, 0, true);
    b.run(SimTime::from_millis(3800));
    b.cluster.resume(&mut b.sim, 0);
    assert!(
        b.cluster.status(0).lease,
        "the frozen clock still shows a lease"
    );
    // With a running clock the same pause ends the lease.
    b.cluster.pause(&mut b.sim, 0, false);
    b.run(SimTime::from_millis(6800));
    b.cluster.resume(&mut b.sim, 0);
    assert!(!b.cluster.status(0).lease);
}

fn trace(seed: u64) -> (Vec<Campaign>, Vec<Election>, u64) {
    let mut b = Bench::new(seed, &[100.0, -200.0, 0.0, 50.0, 0.0], ReadMode::ReadIndex);
    b.run(SimTime::from_secs(2));
    let leader = b.leaders()[0] as NodeId;
    for j in 0..5 {
        b.sim.network_mut().block(leader, j);
    }
    b.run(SimTime::from_secs(6));
    (
        b.cluster.campaigns().to_vec(),
        b.cluster.elections().to_vec(),
        b.sim.stats().events_processed,
    )
}

#[test]
fn a_run_is_a_function_of_its_seed() {
    let a = trace(11);
    assert_eq!(a, trace(11));
    let others = (12..16).map(trace).collect::<Vec<_>>();
    assert!(
        others.iter().any(|o| o.0 != a.0),
        "timeouts come from the seed"
    );
}

#[test]
fn bad_configurations_are_refused() {
    let clocks = [ClockSpec::drifting(0.0); 3];
    let bad = ClusterConfig {
        nodes: 2,
        ..ClusterConfig::default()
    };
    assert!(Cluster::new(bad, &clocks[..2], 0).is_err());
    let ok = ClusterConfig {
        nodes: 3,
        ..ClusterConfig::default()
    };
    assert!(Cluster::new(ok, &clocks[..2], 0).is_err());
    let bad = ClusterConfig {
        election_ticks: 1,
        ..ok
    };
    assert!(Cluster::new(bad, &clocks, 0).is_err());
}
