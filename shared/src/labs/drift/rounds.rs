//! The sync algorithms' rounds: who polls whom, and what each algorithm does with the answers
//! (Cristian, Berkeley, NTP with Marzullo, fault-tolerant averaging).

use std::time::Duration;

use super::lab::{DriftLab, Event, PendingRound};
use super::records::{LabEventKind, PeerView};
use super::{node_name, SyncAlgorithm, PRECISION};
use crate::{
    clocks::physical_clock::Adjustment,
    sync::{
        berkeley,
        cristian::CristianSample,
        ft_average::fault_tolerant_average,
        marzullo::{self, Chimer, Interval},
        ntp,
    },
    NodeId,
};

impl DriftLab {
    pub(super) fn start_round(&mut self, node: NodeId) {
        if self.nodes[node as usize].liar || !self.pollers().contains(&node) {
            return;
        }
        let targets: Vec<NodeId> = match self.config.sync {
            SyncAlgorithm::None => return,
            SyncAlgorithm::Cristian => vec![self.config.leader],
            _ => (0..self.nodes.len() as NodeId)
                .filter(|&p| p != node)
                .collect(),
        };
        self.next_round += 1;
        let id = self.next_round;
        self.nodes[node as usize].round = Some(PendingRound {
            id,
            expected: targets.len(),
            responses: Vec::new(),
        });
        for to in targets {
            let t1 = self.read(node);
            let hlc = self.nodes[node as usize].hlc_now();
            let msg = self.trace_send(node, format!("poll {}", node_name(to)));
            self.sim.send(
                node,
                to,
                Event::Request {
                    from: node,
                    to,
                    round: id,
                    t1,
                    hlc,
                    msg,
                },
            );
        }
        let timeout = (self.config.interval / 2).min(Duration::from_secs(1));
        self.sim
            .schedule_in(timeout, Event::Deadline { node, round: id });
        let period = match self.config.sync {
            SyncAlgorithm::Ntp => self
                .config
                .interval
                .mul_f64(self.nodes[node as usize].poll.seconds()),
            _ => self.config.interval,
        };
        let epoch = self.epoch;
        self.sim.schedule_in(period, Event::Poll { node, epoch });
    }

    pub(super) fn finish_round(&mut self, node: NodeId) {
        let Some(round) = self.nodes[node as usize].round.take() else {
            return;
        };
        match self.config.sync {
            SyncAlgorithm::None => {}
            SyncAlgorithm::Cristian => self.finish_cristian(node, round),
            SyncAlgorithm::Berkeley => self.finish_berkeley(node, round),
            SyncAlgorithm::Ntp => self.finish_ntp(node, round),
            SyncAlgorithm::FtAverage => self.finish_ft(node, round),
        }
    }

    fn no_sync(&mut self, node: NodeId, reason: String) {
        self.log(LabEventKind::NoSync { node, reason });
    }

    fn finish_cristian(&mut self, node: NodeId, round: PendingRound) {
        let Some(&(server, x)) = round.responses.first() else {
            return self.no_sync(node, "the time server did not answer in time".into());
        };
        let sample = CristianSample {
            t0: x.t1,
            server_time: x.t3,
            t1: x.t4,
        };
        let now = self.sim.now();
        for id in [node, server] {
            self.nodes[id as usize]
                .clock
                .advance_to(now, self.sim.rng());
        }
        let true_offset =
            self.nodes[server as usize].clock.value() - self.nodes[node as usize].clock.value();
        self.nodes[node as usize].stats.rtt = Some(sample.rtt());
        let adjustment = self.apply(node, sample.offset());
        self.log(LabEventKind::Cristian {
            node,
            server,
            sample,
            true_offset,
            adjustment,
        });
    }

    fn finish_berkeley(&mut self, leader: NodeId, round: PendingRound) {
        let reports: Vec<berkeley::Report> = round
            .responses
            .iter()
            .map(|&(n, x)| berkeley::Report {
                node: n,
                t0: x.t1,
                reported: x.t3,
                t1: x.t4,
            })
            .collect();
        if reports.is_empty() {
            return self.no_sync(leader, "no node answered the poll".into());
        }
        let leader_clock = self.read(leader);
        let result = berkeley::round(leader, &reports, self.config.outlier_threshold);
        for e in &result.estimates {
            self.nodes[e.node as usize].stats.rtt = Some(e.rtt);
        }
        let mut adjustment = None;
        for &(n, delta) in &result.deltas {
            if n == leader {
                adjustment = Some(self.apply(leader, delta));
            } else {
                let hlc = self.nodes[leader as usize].hlc_now();
                let msg = self.trace_send(
                    leader,
                    format!("delta {:+.3} ms to {}", delta * 1e3, node_name(n)),
                );
                self.sim.send(
                    leader,
                    n,
                    Event::Correction {
                        node: n,
                        delta,
                        hlc,
                        msg,
                    },
                );
            }
        }
        let adjustment = adjustment.unwrap_or(Adjustment::Slewing {
            delta: 0.0,
            duration: 0.0,
        });
        self.log(LabEventKind::Berkeley {
            round: result,
            leader_clock,
            adjustment,
        });
    }

    fn finish_ntp(&mut self, node: NodeId, round: PendingRound) {
        let local_now = self.read(node);
        let correction = self.nodes[node as usize].clock.total_correction();
        {
            let n = &mut self.nodes[node as usize];
            for &(peer, x) in &round.responses {
                // Store offsets as if uncorrected, so later local corrections do not make
                // older samples stale (they are re-based on read below).
                let mut s = x.sample(PRECISION);
                s.offset += correction;
                n.filters[peer as usize].push(s);
            }
        }
        let mut candidates: Vec<(NodeId, ntp::Sample, f64)> = Vec::new();
        for (peer, f) in self.nodes[node as usize].filters.iter().enumerate() {
            if let Some(mut best) = f.best() {
                best.offset -= correction;
                candidates.push((peer as NodeId, best, f.jitter()));
            }
        }
        let intervals: Vec<Interval> = candidates
            .iter()
            .map(|(_, s, _)| s.interval_at(local_now))
            .collect();
        let selection = match marzullo::select(&intervals) {
            Ok(s) => s,
            Err(e) => return self.no_sync(node, format!("marzullo: {e}")),
        };
        let peers: Vec<PeerView> = candidates
            .iter()
            .zip(&selection.verdicts)
            .map(|((peer, s, _), chimer)| PeerView {
                peer: *peer,
                offset: s.offset,
                delay: s.delay,
                distance: s.distance_at(local_now),
                chimer: *chimer,
            })
            .collect();
        for p in &peers {
            let judged = &mut self.nodes[p.peer as usize].judged_false_by;
            judged.retain(|&j| j != node);
            if p.chimer == Chimer::Falseticker {
                judged.push(node);
            }
            let verdict = if judged.is_empty() {
                Chimer::Truechimer
            } else {
                Chimer::Falseticker
            };
            self.nodes[p.peer as usize].stats.verdict = Some(verdict);
        }
        let survivors: Vec<(f64, f64)> = peers
            .iter()
            .filter(|p| p.chimer == Chimer::Truechimer)
            .map(|p| (p.offset, p.distance))
            .collect();
        // A node is one of the ensemble too: its own clock (offset 0, distance of its
        // precision) weighs in, as a local reference does in ntpd's orphan mode.
        let mut with_self = survivors.clone();
        with_self.push((0.0, selection_distance(&survivors)));
        let Some(combined) = ntp::combine(&with_self) else {
            return self.no_sync(node, "no truechimer".into());
        };
        let jitter = {
            let js: Vec<f64> = candidates
                .iter()
                .zip(&selection.verdicts)
                .filter(|(_, c)| **c == Chimer::Truechimer)
                .map(|((_, _, j), _)| *j)
                .collect();
            js.iter().sum::<f64>() / js.len().max(1) as f64
        };
        {
            let n = &mut self.nodes[node as usize];
            n.freq.push(local_now, combined + correction);
            n.stats.frequency_ppm = n.freq.ppm();
            n.stats.rtt = peers.iter().map(|p| p.delay).reduce(f64::min);
            n.stats.dispersion = Some(selection.interval.hi - selection.interval.midpoint());
            n.poll.update(combined, jitter.max(PRECISION));
            n.stats.poll = self.config.interval.as_secs_f64() * n.poll.seconds();
        }
        let adjustment = self.apply(node, combined);
        let poll = self.nodes[node as usize].stats.poll;
        self.log(LabEventKind::Ntp {
            node,
            peers,
            interval: selection.interval,
            combined,
            adjustment,
            poll,
        });
    }

    fn finish_ft(&mut self, node: NodeId, round: PendingRound) {
        let mut values: Vec<(NodeId, f64)> = vec![(node, 0.0)];
        values.extend(round.responses.iter().map(|&(peer, x)| (peer, x.offset())));
        let rtt = round
            .responses
            .iter()
            .map(|(_, x)| x.delay())
            .reduce(f64::min);
        self.nodes[node as usize].stats.rtt = rtt;
        let plain: Vec<f64> = values.iter().map(|v| v.1).collect();
        let result = match fault_tolerant_average(&plain, self.config.faults_tolerated) {
            Ok(r) => r,
            Err(e) => return self.no_sync(node, e.to_string()),
        };
        let adjustment = self.apply(node, result.value);
        self.log(LabEventKind::FtAverage {
            node,
            values,
            result,
            adjustment,
        });
    }
}

/// The weight of a node's own clock among its NTP survivors: as uncertain as the worst of
/// them, so it damps but never dominates the correction.
fn selection_distance(survivors: &[(f64, f64)]) -> f64 {
    survivors.iter().map(|s| s.1).fold(PRECISION, f64::max)
}
