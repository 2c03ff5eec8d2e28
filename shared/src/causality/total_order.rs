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
//! Assumptions: the group starts with a membership known to all; each member's frames reach
//! every other member in the order sent (the relay's per-connection WebSocket order, or the
//! FIFO layer of the chat lab). Liveness needs every member to speak: after receiving a message
//! a member owes an [`ChatFrame::Ack`] ([`TotalOrderBroadcast::ack_due`]) unless it broadcasts
//! something anyway. A member that is never heard from blocks display — the safe failure.
//!
//! # Departures
//! A member that leaves must not block stability forever, and every member must agree on which
//! of its messages count. Both follow from FIFO channels, in two ways:
//! - *voluntary*: the leaver broadcasts [`ChatFrame::Leave`] as its last frame
//!   ([`TotalOrderBroadcast::leave`]). Whoever receives it has received everything the leaver
//!   ever sent, so the leaver's horizon becomes infinite and nothing is waited for from it;
//! - *failure*: when a member vanishes (its tab closes), the party that forwards its frames —
//!   the relay, which sees the connection end — announces the departure to every member on the
//!   same FIFO path, after the last frame it forwarded from it. Receiving the notice
//!   ([`TotalOrderBroadcast::depart`]) has the same meaning as a `Leave`: all of the departed
//!   member's frames that anyone will ever get are already here.
//!
//! Either way every survivor holds exactly the same messages of the departed member, so the
//! display order stays identical everywhere (property-tested with departures mid-run). A
//! frame from a departed member is refused ([`TotalOrderError::Departed`]); an id does not
//! rejoin.
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
    /// The sender's last frame: it leaves the group and is waited for no more.
    Leave {
        /// The leaver's final timestamp; `ts.node` is the sender.
        ts: LamportTimestamp,
    },
}

impl<T> ChatFrame<T> {
    /// The frame's timestamp.
    pub fn ts(&self) -> LamportTimestamp {
        match self {
            ChatFrame::Message { ts, .. } | ChatFrame::Ack { ts } | ChatFrame::Leave { ts } => *ts,
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
    /// The sender has left the group (or its departure was announced).
    #[error("node {node} has left the group")]
    Departed {
        /// The sender.
        node: NodeId,
    },
    /// This member has left and takes no more frames.
    #[error("this member has left the group")]
    Left,
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

/// What one member knows of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// A member, with the latest timestamp heard from it (`None` until first heard).
    Present(Option<LamportTimestamp>),
    /// Gone: everything it sent is here; it is waited for no more.
    Departed,
}

/// One member's view of the chat: its Lamport clock, what it has heard from whom, the pending
/// messages and the displayed ones.
#[derive(Debug, Clone)]
pub struct TotalOrderBroadcast<T> {
    /// This member's clock.
    clock: LamportClock,
    /// What this member knows of each *other* member.
    heard: BTreeMap<NodeId, Peer>,
    /// Messages not yet stable, in total order (own broadcasts included).
    pending: BTreeMap<LamportTimestamp, T>,
    /// Stable messages, in total order.
    displayed: Vec<Ordered<T>>,
    /// Whether a message arrived since this member last spoke.
    ack_due: bool,
    /// This member has sent its `Leave`.
    left: bool,
}

impl<T: Clone> TotalOrderBroadcast<T> {
    /// Member `me` of the group `members` (which may list `me` too).
    pub fn new(me: NodeId, members: impl IntoIterator<Item = NodeId>) -> Self {
        TotalOrderBroadcast {
            clock: LamportClock::new(me),
            heard: members
                .into_iter()
                .filter(|&m| m != me)
                .map(|m| (m, Peer::Present(None)))
                .collect(),
            pending: BTreeMap::new(),
            displayed: Vec::new(),
            ack_due: false,
            left: false,
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

    /// Broadcasts `payload`: stamps it, holds it as pending here too (displayed at once if
    /// every other member has departed), and returns the frame to send to every other member.
    pub fn broadcast(&mut self, payload: T) -> ChatFrame<T> {
        let ts = self.clock.send();
        self.pending.insert(ts, payload.clone());
        self.ack_due = false;
        self.flush();
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
        self.ack_due && !self.left
    }

    /// Leaves the group: returns the `Leave` frame to send to every other member, as this
    /// member's last frame. Afterwards this member refuses frames.
    pub fn leave(&mut self) -> ChatFrame<T> {
        self.left = true;
        self.ack_due = false;
        ChatFrame::Leave {
            ts: self.clock.send(),
        }
    }

    /// Whether this member has left.
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// The departure of `node` was announced by whoever forwards its frames, after the last of
    /// them (see the module docs): it is waited for no more. Returns the messages that became
    /// stable. Announcing a departure twice changes nothing.
    pub fn depart(&mut self, node: NodeId) -> Result<&[Ordered<T>], TotalOrderError> {
        if self.left {
            return Err(TotalOrderError::Left);
        }
        let Some(peer) = self.heard.get_mut(&node) else {
            return Err(TotalOrderError::NotAMember { node });
        };
        *peer = Peer::Departed;
        let start = self.displayed.len();
        self.flush();
        Ok(&self.displayed[start..])
    }

    /// Takes a frame from another member and returns the messages that became stable, in
    /// order (the tail of [`displayed`](Self::displayed)).
    pub fn receive(&mut self, frame: ChatFrame<T>) -> Result<&[Ordered<T>], TotalOrderError> {
        if self.left {
            return Err(TotalOrderError::Left);
        }
        let ts = frame.ts();
        let previous = match self.heard.get(&ts.node) {
            None => return Err(TotalOrderError::NotAMember { node: ts.node }),
            Some(Peer::Departed) => return Err(TotalOrderError::Departed { node: ts.node }),
            Some(Peer::Present(previous)) => *previous,
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
        self.clock.witness(ts.time);
        match frame {
            ChatFrame::Message { ts, payload } => {
                self.heard.insert(ts.node, Peer::Present(Some(ts)));
                self.pending.insert(ts, payload);
                self.ack_due = true;
            }
            ChatFrame::Ack { ts } => {
                self.heard.insert(ts.node, Peer::Present(Some(ts)));
            }
            ChatFrame::Leave { ts } => {
                self.heard.insert(ts.node, Peer::Departed);
            }
        }
        let start = self.displayed.len();
        self.flush();
        Ok(&self.displayed[start..])
    }

    /// Moves every stable message from pending to displayed.
    fn flush(&mut self) {
        // The smallest timestamp among the present members' latest: anything at or below it
        // is stable (`None`: nobody left to wait for). Own future broadcasts are always later
        // than anything received or sent.
        let Some(horizon) = self
            .heard
            .values()
            .try_fold(None::<LamportTimestamp>, |acc, peer| match *peer {
                Peer::Departed => Some(acc),
                Peer::Present(h) => h.map(|h| Some(acc.map_or(h, |a| a.min(h)))),
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
            .filter(|(_, h)| **h == Peer::Present(None))
            .map(|(&n, _)| n)
    }

    /// Whom a message stamped `ts` still waits for: the present members not yet heard from
    /// with a timestamp at least `ts`. Empty once it is stable (and for displayed messages).
    pub fn waiting_for(&self, ts: LamportTimestamp) -> Vec<NodeId> {
        self.heard
            .iter()
            .filter(|(_, peer)| match peer {
                Peer::Departed => false,
                Peer::Present(h) => h.is_none_or(|h| h < ts),
            })
            .map(|(&n, _)| n)
            .collect()
    }

    /// The other members still present (not departed), in id order.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.heard
            .iter()
            .filter(|(_, p)| **p != Peer::Departed)
            .map(|(&n, _)| n)
    }

    /// The latest timestamp heard from `node` (`None` if never heard, departed or unknown).
    pub fn heard_from(&self, node: NodeId) -> Option<LamportTimestamp> {
        match self.heard.get(&node) {
            Some(Peer::Present(h)) => *h,
            _ => None,
        }
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

    /// What travels on a FIFO channel: a member's frame, or the forwarder's notice that the
    /// member vanished (sent after its last frame).
    #[derive(Debug, Clone)]
    enum Wire {
        Frame(ChatFrame<u32>),
        Gone,
    }

    /// A random run over FIFO channels; `departures` members leave mid-run (even ones by a
    /// `Leave`, odd ones by vanishing and being announced). Returns the survivors' final
    /// displayed orders and the messages broadcast by anyone.
    fn run(seed: u64, n: u32, steps: usize, departures: u32) -> (Vec<Vec<Ordered<u32>>>, usize) {
        let mut rng = StdRng::seed_from_u64(seed);
        let members: Vec<NodeId> = (0..n).collect();
        let mut nodes: Vec<TotalOrderBroadcast<u32>> = members
            .iter()
            .map(|&m| TotalOrderBroadcast::new(m, members.clone()))
            .collect();
        let mut gone = vec![false; n as usize];
        // channels[from][to], FIFO.
        let mut channels: Vec<Vec<VecDeque<Wire>>> =
            vec![vec![VecDeque::new(); n as usize]; n as usize];
        let mut sent = 0;
        let send_all = |from: usize, w: Wire, ch: &mut Vec<Vec<VecDeque<Wire>>>| {
            for (to, q) in ch[from].iter_mut().enumerate() {
                if to != from {
                    q.push_back(w.clone());
                }
            }
        };
        let deliver = |from: usize,
                       to: usize,
                       nodes: &mut Vec<TotalOrderBroadcast<u32>>,
                       gone: &[bool],
                       ch: &mut Vec<Vec<VecDeque<Wire>>>| {
            if gone[to] {
                ch[from][to].clear();
                return;
            }
            match ch[from][to].pop_front() {
                Some(Wire::Frame(f)) => {
                    nodes[to].receive(f).unwrap();
                }
                Some(Wire::Gone) => {
                    nodes[to].depart(from as NodeId).unwrap();
                }
                None => {}
            }
        };
        let mut left = 0;
        for step in 0..steps {
            let who = rng.gen_range(0..n as usize);
            if gone[who] {
                continue;
            }
            if left < departures && rng.gen_bool(0.02) {
                let w = if left % 2 == 0 {
                    Wire::Frame(nodes[who].leave())
                } else {
                    Wire::Gone
                };
                send_all(who, w, &mut channels);
                gone[who] = true;
                left += 1;
            } else if rng.gen_bool(0.3) {
                let f = nodes[who].broadcast(step as u32);
                sent += 1;
                send_all(who, Wire::Frame(f), &mut channels);
            } else {
                let from = rng.gen_range(0..n as usize);
                deliver(from, who, &mut nodes, &gone, &mut channels);
                if nodes[who].ack_due() && rng.gen_bool(0.5) {
                    let f = nodes[who].ack();
                    send_all(who, Wire::Frame(f), &mut channels);
                }
            }
        }
        // Drain, then every survivor acks once, then drain again: everything becomes stable.
        for round in 0..2 {
            if round == 1 {
                for (who, node) in nodes.iter_mut().enumerate() {
                    if !gone[who] {
                        send_all(who, Wire::Frame(node.ack()), &mut channels);
                    }
                }
            }
            while channels.iter().flatten().any(|q| !q.is_empty()) {
                for from in 0..n as usize {
                    for to in 0..n as usize {
                        deliver(from, to, &mut nodes, &gone, &mut channels);
                    }
                }
            }
        }
        let survivors = nodes
            .iter()
            .zip(&gone)
            .filter(|(_, g)| !**g)
            .map(|(x, _)| {
                assert_eq!(
                    x.pending().count(),
                    0,
                    "nothing left pending at {}: {:?} waiting for {:?}",
                    x.node(),
                    x.pending().next().map(|p| p.0),
                    x.pending().next().map(|p| x.waiting_for(p.0))
                );
                x.displayed().to_vec()
            })
            .collect();
        (survivors, sent)
    }

    #[test]
    fn a_leave_unblocks_and_later_frames_are_refused() {
        let mut a = TotalOrderBroadcast::new(A, [A, B, C]);
        let mut b = TotalOrderBroadcast::new(B, [A, B, C]);
        let mut c = TotalOrderBroadcast::new(C, [A, B, C]);
        let x = b.broadcast("x");
        a.receive(x.clone()).unwrap();
        assert_eq!(a.waiting_for(x.ts()), vec![C]);
        c.receive(x).unwrap();
        let bye = c.leave();
        assert!(c.has_left());
        assert_eq!(a.receive(bye.clone()).unwrap().len(), 1);
        assert_eq!(a.members().collect::<Vec<_>>(), vec![B]);
        assert_eq!(
            a.receive(ChatFrame::Ack {
                ts: LamportTimestamp { time: 9, node: C }
            }),
            Err(TotalOrderError::Departed { node: C })
        );
        assert_eq!(c.receive(a.ack()), Err(TotalOrderError::Left));
        // With C gone, A's and B's messages need only each other.
        let y = a.broadcast("y");
        assert_eq!(a.waiting_for(y.ts()), vec![B]);
        b.receive(bye).unwrap();
        b.receive(y).unwrap();
        // x is stable at B once C left; so is y, A being the only other member left.
        assert_eq!(b.displayed().len(), 2);
        assert_eq!(b.pending().count(), 0);
    }

    #[test]
    fn an_announced_departure_unblocks_a_silent_member() {
        let mut a = TotalOrderBroadcast::new(A, [A, B, C]);
        let mut b = TotalOrderBroadcast::new(B, [A, B, C]);
        let x = b.broadcast("x");
        a.receive(x).unwrap();
        a.receive(b.ack()).unwrap();
        assert!(a.displayed().is_empty(), "C was never heard from");
        assert_eq!(a.depart(C).unwrap().len(), 1);
        assert_eq!(a.depart(C).unwrap().len(), 0, "twice changes nothing");
        assert_eq!(a.depart(9), Err(TotalOrderError::NotAMember { node: 9 }));
    }

    #[test]
    fn seeded_runs_agree_on_one_order() {
        for seed in 0..20 {
            let (logs, sent) = run(seed, 4, 300, 0);
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
            let (logs, sent) = run(seed, n, steps, 0);
            prop_assert_eq!(logs[0].len(), sent);
            prop_assert!(logs[0].windows(2).all(|w| w[0].ts < w[1].ts));
            for log in &logs {
                prop_assert_eq!(log, &logs[0]);
            }
        }

        /// Members leave (by `Leave` or by an announced vanishing) mid-run: nothing stays
        /// pending at the survivors, and they all display the same order.
        #[test]
        fn departures_never_block_and_survivors_agree(seed in any::<u64>(), n in 3u32..6, steps in 0usize..300, departures in 1u32..3) {
            let (logs, sent) = run(seed, n, steps, departures.min(n - 1));
            prop_assert_eq!(logs[0].len(), sent, "every broadcast reaches every survivor");
            prop_assert!(logs[0].windows(2).all(|w| w[0].ts < w[1].ts));
            for log in &logs {
                prop_assert_eq!(log, &logs[0]);
            }
        }
    }
}
