//! Conservation of money across a recorded global state: the check the seed's project 4 asks
//! of a distributed snapshot (Chandy & Lamport, ACM TOCS 3(1), 1985: a recorded global state
//! is one the system could have passed through, so an invariant of the system — here, the
//! total — holds in it).
//!
//! The checker is given the run's trace, the cut the snapshot recorded (per node, how many of
//! its events came before it recorded), the amount of every transfer, and what the snapshot
//! recorded (balances and in-flight transfers per channel). It decides the truth of every
//! transfer from the trace — sent inside the cut or not, received inside or not — and compares
//! it with what the channels recorded.
//!
//! **Invariant.** The snapshot holds iff its total equals the initial total *and* no transfer
//! is misplaced. Every misplaced transfer is a [`Finding`] naming its channel and amount, and
//! when the recorded balances are the nodes' true balances at the cut, the findings account
//! for every dollar of the difference: `total − initial = orphans + duplicates + phantoms −
//! lost` ([`ConservationReport::explained_difference`], asserted by the snapshot lab's tests).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::consistent_cut::{inside, received_inside, Cut};
use crate::trace::{MessageId, Trace};
use crate::NodeId;

/// A transfer a snapshot recorded as in flight on the channel `from → to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RecordedTransfer {
    /// The channel's sender.
    pub from: NodeId,
    /// The channel's receiver.
    pub to: NodeId,
    /// The transfer's message in the trace.
    pub message: MessageId,
    /// Its amount.
    pub amount: u64,
}

/// What a snapshot recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// Each node's recorded balance.
    pub states: BTreeMap<NodeId, u64>,
    /// Every transfer recorded as in flight.
    pub channels: Vec<RecordedTransfer>,
}

impl Recorded {
    /// Balances plus in-flight money.
    pub fn total(&self) -> u64 {
        self.states.values().sum::<u64>() + self.channels.iter().map(|t| t.amount).sum::<u64>()
    }
}

/// How a transfer is misplaced in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Sent inside the cut, not received inside it, and not recorded on its channel: its money
    /// is in no balance and no channel.
    Lost,
    /// Received inside the cut but sent outside it: counted in the receiver's balance and
    /// still in the sender's (the cut is inconsistent).
    Orphan,
    /// Received inside the cut and also recorded on its channel: counted twice.
    Duplicated,
    /// Recorded on its channel but sent outside the cut: still in the sender's balance.
    Phantom,
}

/// One misplaced transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What is wrong.
    pub kind: FindingKind,
    /// The transfer's message in the trace.
    pub message: MessageId,
    /// Its sender.
    pub from: NodeId,
    /// Its receiver.
    pub to: NodeId,
    /// Its amount.
    pub amount: u64,
}

/// What [`check_conservation`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConservationReport {
    /// The money the bank started with.
    pub initial: u64,
    /// The snapshot's total: recorded balances plus recorded in-flight transfers.
    pub total: u64,
    /// Every misplaced transfer, by message.
    pub findings: Vec<Finding>,
}

impl ConservationReport {
    /// Whether the total matches and nothing is misplaced.
    pub fn holds(&self) -> bool {
        self.total == self.initial && self.findings.is_empty()
    }

    /// The difference the findings account for: orphans, duplicates and phantoms add their
    /// amount, lost transfers take it away.
    pub fn explained_difference(&self) -> i128 {
        self.findings
            .iter()
            .map(|f| match f.kind {
                FindingKind::Lost => -i128::from(f.amount),
                _ => i128::from(f.amount),
            })
            .sum()
    }

    /// Each finding in a sentence, naming nodes as `name` does.
    pub fn explain(&self, name: impl Fn(NodeId) -> String) -> Vec<String> {
        self.findings
            .iter()
            .map(|f| {
                let ch = format!("{}->{}", name(f.from), name(f.to));
                match f.kind {
                    FindingKind::Lost => format!(
                        "lost ${} on {ch}: sent before the sender recorded, received after the \
                         receiver recorded, but missing from the channel's record",
                        f.amount
                    ),
                    FindingKind::Orphan => format!(
                        "${} on {ch} counted twice: received before the receiver recorded but \
                         sent after the sender recorded (an orphan: the cut is inconsistent)",
                        f.amount
                    ),
                    FindingKind::Duplicated => format!(
                        "${} on {ch} counted twice: in the receiver's balance and in the \
                         channel's record",
                        f.amount
                    ),
                    FindingKind::Phantom => format!(
                        "${} on {ch} counted twice: recorded on the channel but sent after the \
                         sender recorded",
                        f.amount
                    ),
                }
            })
            .collect()
    }
}

/// Judges a snapshot: `transfers` gives every transfer's message, receiver and amount
/// (markers and other control messages are not in it). A transfer still in flight when the
/// check runs counts as not received.
pub fn check_conservation(
    trace: &Trace,
    cut: &Cut,
    transfers: &BTreeMap<MessageId, (NodeId, u64)>,
    recorded: &Recorded,
    initial: u64,
) -> ConservationReport {
    let on_channel: BTreeSet<MessageId> = recorded.channels.iter().map(|t| t.message).collect();
    let mut findings = Vec::new();
    for (&message, &(to, amount)) in transfers {
        let Some(send) = trace.send_of(message) else {
            continue;
        };
        let from = trace.events()[send].node;
        let sent = inside(trace, cut, send);
        let received = received_inside(trace, cut, message, to);
        let recorded_here = on_channel.contains(&message);
        let kind = match (sent, received, recorded_here) {
            (true, false, false) => Some(FindingKind::Lost),
            (false, true, _) => Some(FindingKind::Orphan),
            (true, true, true) => Some(FindingKind::Duplicated),
            (false, false, true) => Some(FindingKind::Phantom),
            _ => None,
        };
        if let Some(kind) = kind {
            findings.push(Finding {
                kind,
                message,
                from,
                to,
                amount,
            });
        }
    }
    ConservationReport {
        initial,
        total: recorded.total(),
        findings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Node 1 ($50) sends $10 to node 2 ($30); the cut is given per test.
    fn one_transfer() -> (Trace, BTreeMap<MessageId, (NodeId, u64)>) {
        let mut t = Trace::new();
        let m = t.send(1, 0.0, "$10");
        t.receive(2, m, 5.0, "$10").unwrap();
        (t, [(m, (2, 10))].into())
    }

    fn recorded(states: [u64; 2], flight: Option<u64>) -> Recorded {
        Recorded {
            states: [(1, states[0]), (2, states[1])].into(),
            channels: flight
                .map(|amount| RecordedTransfer {
                    from: 1,
                    to: 2,
                    message: 0,
                    amount,
                })
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn an_in_flight_transfer_recorded_on_its_channel_conserves() {
        let (t, amounts) = one_transfer();
        let cut: Cut = [(1, 1), (2, 0)].into(); // sent, not yet received
        let r = check_conservation(&t, &cut, &amounts, &recorded([40, 30], Some(10)), 80);
        assert!(r.holds(), "{r:?}");
        let cut: Cut = [(1, 1), (2, 1)].into(); // sent and received
        let r = check_conservation(&t, &cut, &amounts, &recorded([40, 40], None), 80);
        assert!(r.holds(), "{r:?}");
    }

    #[test]
    fn every_misplacement_is_found_and_accounts_for_the_difference() {
        let (t, amounts) = one_transfer();
        let cases = [
            // (cut, states, recorded on channel, kind)
            ([1, 0], [40, 30], None, FindingKind::Lost),
            ([0, 1], [50, 40], None, FindingKind::Orphan),
            ([1, 1], [40, 40], Some(10), FindingKind::Duplicated),
            ([0, 0], [50, 30], Some(10), FindingKind::Phantom),
        ];
        for (cut, states, flight, kind) in cases {
            let cut: Cut = [(1, cut[0]), (2, cut[1])].into();
            let r = check_conservation(&t, &cut, &amounts, &recorded(states, flight), 80);
            assert!(!r.holds());
            assert_eq!(r.findings.len(), 1, "{kind:?}");
            assert_eq!(r.findings[0].kind, kind);
            assert_eq!(
                (r.findings[0].from, r.findings[0].to, r.findings[0].amount),
                (1, 2, 10)
            );
            assert_eq!(
                i128::from(r.total) - i128::from(r.initial),
                r.explained_difference(),
                "{kind:?}"
            );
        }
        let cut: Cut = [(1, 1), (2, 0)].into();
        let r = check_conservation(&t, &cut, &amounts, &recorded([40, 30], None), 80);
        assert_eq!(
            r.explain(|n| format!("{n}"))[0],
            "lost $10 on 1->2: sent before the sender recorded, received after the receiver \
             recorded, but missing from the channel's record"
        );
    }
}
