//! Total-order broadcast with Lamport timestamps — L. Lamport, "Time, Clocks, and the Ordering
//! of Events in a Distributed System" (CACM 1978), the state-machine construction of section 4,
//! as used by the Lamport chat (project 2 of the seed).
//!
//! **Guarantee:** every member displays the same messages in the same order, the total order
//! `(Lamport time, node id)` of [`LamportTimestamp`], which extends happened-before (a reply is
//! never shown before what it replies to). A message is displayed only once it is *stable*:
//! every other member has been heard from with a timestamp at least as large, so — channels
//! being FIFO and each member's timestamps increasing — no message that sorts before it can
//! still arrive. Until then it is PENDING.
//!
//! Assumptions: membership is fixed and known to all; each member's frames reach every other
//! member in the order sent (the relay's per-connection WebSocket order). Liveness needs every
//! member to speak: after receiving a message a member owes an [`ChatFrame::Ack`]
//! ([`TotalOrderBroadcast::ack_due`]) unless it broadcasts something anyway. A member that is
//! never heard from blocks display — the safe failure.
//!
//! Timestamps: a broadcast or ack ticks the clock; a receipt only advances it past the remote
//! time ([`LamportClock::witness`]), so the seed's example numbers hold (A's "Hi" is 1, B's
//! reply is 2).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clocks::lamport::{LamportClock, LamportTimestamp};
use crate::NodeId;

/// What members send each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatFrame<T> {
    /// A chat message, stamped.
    Message {
        /// Its Lamport timestamp; `ts.node` is the sender.
        ts: LamportTimestamp,
        /// The text (or whatever the application sends).
        payload: T,
    },
    /// "I have heard everything up to here": lets others' messages become stable.
    Ack {
        /// The acknowledging member's timestamp; `ts.node` is the sender.
        ts: LamportTimestamp,
    },
}

impl<T> ChatFrame<T> {
    /// The frame's timestamp.
    pub fn ts(&self) -> LamportTimestamp {
        match self {
            ChatFrame::Message { ts, .. } | ChatFrame::Ack { ts } => *ts,
        }
    }
}

/// A message with its place in the total order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ordered<T> {
    /// Its timestamp: the sort key.
    pub ts: LamportTimestamp,
    /// The message.
    pub payload: T,
}

/// A frame the member refuses; its state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotalOrderError {
    /// The sender is not a member (or is this member itself).
    #[error("node {node} is not another member of this group")]
    NotAMember {
        /// The claimed sender.
        node: NodeId,
    },
    /// The frame's time is not above the sender's previous one: the channel is not FIFO or
    /// the frame is a duplicate.
    #[error("frame from node {node} at time {time} is not after its previous frame at {previous}")]
    NotFifo {
        /// The sender.
        node: NodeId,
        /// The frame's time.
        time: u64,
        /// The sender's previous time.
        previous: u64,
    },
}

/// One member's view of the chat: its Lamport clock, what it has heard from whom, the pending
/// messages and the displayed ones.
#[derive(Debug, Clone)]
pub struct TotalOrderBroadcast<T> {
    /// This member's clock.
    clock: LamportClock,
    /// The latest timestamp heard from each *other* member; `None` until first heard.
    heard: BTreeMap<NodeId, Option<LamportTimestamp>>,
    /// Messages not yet stable, in total order (own broadcasts included).
    pending: BTreeMap<LamportTimestamp, T>,
    /// Stable messages, in total order.
    displayed: Vec<Ordered<T>>,
    /// Whether a message arrived since this member last spoke.
    ack_due: bool,
}

impl<T: Clone> TotalOrderBroadcast<T> {
    /// Member `me` of the group `members` (which may list `me` too).
    pub fn new(me: NodeId, members: impl IntoIterator<Item = NodeId>) -> Self {
        TotalOrderBroadcast {
            clock: LamportClock::new(me),
            heard: members
                .into_iter()
                .filter(|&m| m != me)
                .map(|m| (m, None))
                .collect(),
            pending: BTreeMap::new(),
            displayed: Vec::new(),
            ack_due: false,
        }
    }

    /// This member's id.
    pub fn node(&self) -> NodeId {
        self.clock.node()
    }

    /// This member's current Lamport time.
    pub fn time(&self) -> u64 {
        self.clock.time()
    }

    /// Broadcasts `payload`: stamps it, holds it as pending here too, and returns the frame
    /// to send to every other member.
    pub fn broadcast(&mut self, payload: T) -> ChatFrame<T> {
        let ts = self.clock.send();
        self.pending.insert(ts, payload.clone());
        self.ack_due = false;
        ChatFrame::Message { ts, payload }
    }

    /// An acknowledgement to send to every other member.
    pub fn ack(&mut self) -> ChatFrame<T> {
        self.ack_due = false;
        ChatFrame::Ack {
            ts: self.clock.send(),
        }
    }

    /// Whether a message arrived since this member last broadcast or acked: if so, it should
    /// send an [`ack`](Self::ack) (or a message) so others can make progress.
    pub fn ack_due(&self) -> bool {
        self.ack_due
    }

    /// Takes a frame from another member and returns the messages that became stable, in
    /// order (the tail of [`displayed`](Self::displayed)).
    pub fn receive(&mut self, frame: ChatFrame<T>) -> Result<&[Ordered<T>], TotalOrderError> {
        let ts = frame.ts();
        let Some(previous) = self.heard.get(&ts.node) else {
            return Err(TotalOrderError::NotAMember { node: ts.node });
        };
        if let Some(previous) = previous {
            if ts.time <= previous.time {
                return Err(TotalOrderError::NotFifo {
                    node: ts.node,
                    time: ts.time,
                    previous: previous.time,
                });
            }
        }
        self.heard.insert(ts.node, Some(ts));
        self.clock.witness(ts.time);
        if let ChatFrame::Message { ts, payload } = frame {
            self.pending.insert(ts, payload);
            self.ack_due = true;
        }
        let start = self.displayed.len();
        self.flush();
        Ok(&self.displayed[start..])
    }

    /// Moves every stable message from pending to displayed.
    fn flush(&mut self) {
        // The smallest timestamp among the other members' latest: anything at or below it is
        // stable. Own future broadcasts are always later than anything received or sent.
        let Some(horizon) = self
            .heard
            .values()
            .copied()
            .try_fold(None::<LamportTimestamp>, |acc, h| {
                h.map(|h| Some(acc.map_or(h, |a| a.min(h))))
            })
        else {
            return; // some member never heard from
        };
        while let Some(entry) = self.pending.first_entry() {
            if horizon.is_some_and(|h| *entry.key() > h) {
                break;
            }
            let (ts, payload) = entry.remove_entry();
            self.displayed.push(Ordered { ts, payload });
        }
    }

    /// The pending messages, in total order.
    pub fn pending(&self) -> impl Iterator<Item = (LamportTimestamp, &T)> + '_ {
        self.pending.iter().map(|(&ts, p)| (ts, p))
    }

    /// The displayed (stable) messages, in total order.
    pub fn displayed(&self) -> &[Ordered<T>] {
        &self.displayed
    }

    /// The other members never heard from yet (they block display).
    pub fn silent_members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.heard
            .iter()
            .filter(|(_, h)| h.is_none())
            .map(|(&n, _)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::VecDeque;

    const A: NodeId = 1;
    const B: NodeId = 2;
    const C: NodeId = 3;

    fn lines(node: &TotalOrderBroadcast<&str>) -> Vec<String> {
        let name = |n: NodeId| ["?", "A", "B", "C"][n as usize];
        let mut out: Vec<String> = node
            .displayed()
            .iter()
            .map(|m| {
                format!(
                    "[DISPLAY] ({}, {}): {}",
                    m.ts.time,
                    name(m.ts.node),
                    m.payload
                )
            })
            .collect();
        out.extend(
            node.pending()
                .map(|(ts, p)| format!("[PENDING] ({}, {}): {}", ts.time, name(ts.node), p)),
        );
        out
    }

    #[test]
    fn the_chat_race_from_the_seed() {
        let members = [A, B, C];
        let mut a = TotalOrderBroadcast::new(A, members);
        let mut b = TotalOrderBroadcast::new(B, members);
        let mut c = TotalOrderBroadcast::new(C, members);
        let hi = a.broadcast("Hi");
        assert_eq!(hi.ts(), LamportTimestamp { time: 1, node: A });
        b.receive(hi.clone()).unwrap();
        let hello = b.broadcast("Hello Alice");
        assert_eq!(hello.ts(), LamportTimestamp { time: 2, node: B });

        // C receives "Hello Alice" first, due to lag.
        assert!(c.receive(hello.clone()).unwrap().is_empty());
        assert_eq!(lines(&c), vec!["[PENDING] (2, B): Hello Alice"]);
        let shown: Vec<_> = c.receive(hi).unwrap().iter().map(|m| m.payload).collect();
        assert_eq!(shown, vec!["Hi"]);
        // A hears the reply and acknowledges it; that makes it stable at C.
        a.receive(hello).unwrap();
        assert!(a.ack_due());
        let ack = a.ack();
        let shown: Vec<_> = c.receive(ack).unwrap().iter().map(|m| m.payload).collect();
        assert_eq!(shown, vec!["Hello Alice"]);
        assert_eq!(
            lines(&c),
            vec!["[DISPLAY] (1, A): Hi", "[DISPLAY] (2, B): Hello Alice"]
        );
    }

    #[test]
    fn bad_frames_are_refused_and_change_nothing() {
        let mut a = TotalOrderBroadcast::new(A, [A, B]);
        let mut b = TotalOrderBroadcast::new(B, [A, B]);
        let m1 = b.broadcast("one");
        a.receive(m1.clone()).unwrap();
        assert_eq!(
            a.receive(m1),
            Err(TotalOrderError::NotFifo {
                node: B,
                time: 1,
                previous: 1
            })
        );
        let stranger = ChatFrame::Ack {
            ts: LamportTimestamp { time: 9, node: C },
        };
        assert_eq!(
            a.receive(stranger),
            Err(TotalOrderError::NotAMember { node: C })
        );
        assert_eq!(a.time(), 1);
        assert_eq!(a.displayed().len(), 1);
        assert_eq!(
            TotalOrderError::NotAMember { node: C }.to_string(),
            "node 3 is not another member of this group"
        );
    }

    #[test]
    fn a_silent_member_blocks_display() {
        let mut a = TotalOrderBroadcast::new(A, [A, B, C]);
        let mut b = TotalOrderBroadcast::new(B, [A, B, C]);
        a.receive(b.broadcast("x")).unwrap();
        assert_eq!(a.silent_members().collect::<Vec<_>>(), vec![C]);
        assert!(a.displayed().is_empty());
        assert_eq!(a.pending().count(), 1);
    }

    /// A random run over FIFO channels; returns each member's final displayed order and the
    /// number of messages broadcast. (Display only appends, so a complete, sorted final log
    /// means every member displayed a prefix of the common order at every step.)
    fn run(seed: u64, n: u32, steps: usize) -> (Vec<Vec<Ordered<u32>>>, usize) {
        let mut rng = StdRng::seed_from_u64(seed);
        let members: Vec<NodeId> = (0..n).collect();
        let mut nodes: Vec<TotalOrderBroadcast<u32>> = members
            .iter()
            .map(|&m| TotalOrderBroadcast::new(m, members.clone()))
            .collect();
        // channels[from][to], FIFO.
        let mut channels: Vec<Vec<VecDeque<ChatFrame<u32>>>> =
            vec![vec![VecDeque::new(); n as usize]; n as usize];
        let mut sent = 0;
        let send_all = |from: usize, frame: ChatFrame<u32>, ch: &mut Vec<Vec<VecDeque<_>>>| {
            for (to, q) in ch[from].iter_mut().enumerate() {
                if to != from {
                    q.push_back(frame.clone());
                }
            }
        };
        let deliver = |from: usize,
                       to: usize,
                       nodes: &mut Vec<TotalOrderBroadcast<u32>>,
                       ch: &mut Vec<Vec<VecDeque<ChatFrame<u32>>>>| {
            if let Some(f) = ch[from][to].pop_front() {
                nodes[to].receive(f).unwrap();
            }
        };
        for step in 0..steps {
            let who = rng.gen_range(0..n as usize);
            if rng.gen_bool(0.3) {
                let f = nodes[who].broadcast(step as u32);
                sent += 1;
                send_all(who, f, &mut channels);
            } else {
                let from = rng.gen_range(0..n as usize);
                deliver(from, who, &mut nodes, &mut channels);
                if nodes[who].ack_due() && rng.gen_bool(0.5) {
                    let f = nodes[who].ack();
                    send_all(who, f, &mut channels);
                }
            }
        }
        // Drain, then everyone acks once, then drain again: everything becomes stable.
        for round in 0..2 {
            if round == 1 {
                for (who, node) in nodes.iter_mut().enumerate() {
                    send_all(who, node.ack(), &mut channels);
                }
            }
            while channels.iter().flatten().any(|q| !q.is_empty()) {
                for from in 0..n as usize {
                    for to in 0..n as usize {
                        deliver(from, to, &mut nodes, &mut channels);
                    }
                }
            }
        }
        (nodes.iter().map(|x| x.displayed().to_vec()).collect(), sent)
    }

    #[test]
    fn seeded_runs_agree_on_one_order() {
        for seed in 0..20 {
            let (logs, sent) = run(seed, 4, 300);
            assert_eq!(logs[0].len(), sent);
            assert!(logs[0].windows(2).all(|w| w[0].ts < w[1].ts));
            for log in &logs {
                assert_eq!(log, &logs[0]);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn total_order_identical_at_every_replica(seed in any::<u64>(), n in 2u32..6, steps in 0usize..200) {
            let (logs, sent) = run(seed, n, steps);
            prop_assert_eq!(logs[0].len(), sent);
            prop_assert!(logs[0].windows(2).all(|w| w[0].ts < w[1].ts));
            for log in &logs {
                prop_assert_eq!(log, &logs[0]);
            }
        }
    }
}
