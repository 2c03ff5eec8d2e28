//! Causal broadcast — K. Birman, A. Schiper, P. Stephenson, "Lightweight causal and atomic
//! group multicast" (ACM TOCS 1991), the BSS delivery rule.
//!
//! **Guarantee (causal delivery):** if the broadcast of `m` happened before the broadcast of
//! `m'`, every replica delivers `m` before `m'`. A [`HoldBackQueue`] accepts messages in any
//! order, duplicated or not, and delivers a message from `j` stamped `V` exactly when
//! `V[j] == local[j] + 1` and `V[k] <= local[k]` for every other `k`; until then the message is
//! *held*. It never delivers out of causal order: a dependency that never arrives is reported
//! ([`HoldBackQueue::gaps`], [`HoldBackQueue::stalled`]), not skipped.
//!
//! # Time
//! Times passed in (`now_ms`) are **milliseconds as `f64`** on whatever clock the caller uses
//! (the browser's `performance.now()`, a simulator's virtual clock). They are only recorded and
//! subtracted, never compared across replicas.
//!
//! # Cost
//! Each held message is indexed under the one dependency it currently waits for. Delivering the
//! message that satisfies a dependency wakes exactly the messages indexed under it, so `n`
//! messages arriving in reverse order are delivered in `O(n · d)` clock-entry checks (`d` the
//! number of entries per clock), not `O(n²)` as a rescan of the whole queue after each delivery
//! would be.
//!
//! # Example: the out-of-order edit
//! ```
//! use chronoscope::causality::holdback::{Dependency, HoldBackQueue};
//!
//! let (mut alice, mut bob, mut carol) =
//!     (HoldBackQueue::new(1), HoldBackQueue::new(2), HoldBackQueue::new(3));
//! let hello = alice.send("Hello", 0.0);
//! bob.receive(hello.clone(), 5.0)?;
//! let world = bob.send("World", 6.0); // stamped [1:1, 2:1]: it depends on "Hello"
//!
//! // Carol gets "World" first: it is held, waiting for Alice's first message.
//! assert!(carol.receive(world, 10.0)?.is_empty());
//! let held = carol.held().next().unwrap();
//! assert_eq!(held.waiting_for, Dependency { node: 1, seq: 1 });
//! assert_eq!(held.held_since, 10.0);
//!
//! // "Hello" arrives: both are delivered, in causal order.
//! let delivered = carol.receive(hello, 12.0)?;
//! assert_eq!(delivered.iter().map(|m| m.payload).collect::<Vec<_>>(), ["Hello", "World"]);
//! assert_eq!(carol.clock().to_string(), "[1:1, 2:1]");
//! # Ok::<(), chronoscope::causality::holdback::CausalError>(())
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::clocks::vector_clock::VectorClock;
use crate::NodeId;

/// A broadcast message: the sender, the vector clock the sender stamped on it, and the payload.
///
/// The sender's own entry in `clock` is the message's sequence number among that sender's
/// broadcasts (1, 2, 3, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CausalMessage<T> {
    /// The node that broadcast the message.
    pub sender: NodeId,
    /// The sender's clock at the send, its own entry already incremented.
    pub clock: VectorClock,
    /// What the application sent.
    pub payload: T,
}

impl<T> CausalMessage<T> {
    /// The message's sequence number among its sender's broadcasts.
    pub fn seq(&self) -> u64 {
        self.clock.get(self.sender)
    }

    /// The message's identity: `(sender, seq)`.
    pub fn id(&self) -> MessageId {
        MessageId {
            sender: self.sender,
            seq: self.seq(),
        }
    }
}

/// Which broadcast a message is: the `seq`-th broadcast of `sender`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageId {
    /// The node that broadcast it.
    pub sender: NodeId,
    /// Its sequence number among the sender's broadcasts, from 1.
    pub seq: u64,
}

/// A dependency a held message waits for: the delivery of the `seq`-th broadcast of `node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dependency {
    /// The node whose broadcast is awaited.
    pub node: NodeId,
    /// The sequence number that must have been delivered from `node`.
    pub seq: u64,
}

/// A held message as the hold-back queue reports it.
#[derive(Debug, PartialEq)]
pub struct HeldMessage<'a, T> {
    /// The message itself.
    pub message: &'a CausalMessage<T>,
    /// The dependency it waits for now (once that is delivered it may wait for another).
    pub waiting_for: Dependency,
    /// When it arrived, ms.
    pub held_since: f64,
}

// Manual impls: a derive would demand `T: Clone` for what is only a reference.
impl<T> Clone for HeldMessage<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for HeldMessage<'_, T> {}

/// One line of the delivered log.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Which message was delivered.
    pub id: MessageId,
    /// When it arrived (for local sends: when it was sent), ms.
    pub received_at: f64,
    /// When it was delivered, ms; `delivered_at - received_at` is the time it was held.
    pub delivered_at: f64,
}

/// A broadcast that has not arrived while later messages wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    /// The first undelivered broadcast of the node, which is not held either: it has not
    /// arrived at all.
    pub missing: Dependency,
    /// The earliest arrival among the messages waiting on this node, ms.
    pub since: f64,
    /// How many held messages wait directly on this node.
    pub blocked: usize,
}

/// A message the hold-back queue refuses; the queue is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CausalError {
    /// The clock's entry for the sender is 0, so the message is no broadcast of its sender.
    #[error("message from node {sender} has no event of its sender in its clock")]
    NoSenderEvent {
        /// The claimed sender.
        sender: NodeId,
    },
    /// The message depends on a broadcast of this very node that this node never made.
    #[error(
        "message {id:?} depends on broadcast {claimed} of this node, which has sent only {sent}"
    )]
    UnknownOwnBroadcast {
        /// The refused message.
        id: MessageId,
        /// The sequence number of this node's broadcast it claims to depend on.
        claimed: u64,
        /// How many broadcasts this node has made.
        sent: u64,
    },
}

/// A message waiting in the queue.
#[derive(Debug, Clone)]
struct Held<T> {
    message: CausalMessage<T>,
    /// The dependency the message is indexed under in `HoldBackQueue::waiting`.
    waiting_for: Dependency,
    received_at: f64,
}

/// The BSS hold-back queue of one replica: its delivered vector clock, the messages held back,
/// and the log of deliveries.
///
/// Generic over the payload `T`; the queue never looks inside it.
#[derive(Debug, Clone)]
pub struct HoldBackQueue<T> {
    /// This replica.
    me: NodeId,
    /// `clock[k]` = how many broadcasts of `k` this replica has delivered (for `me`: sent).
    clock: VectorClock,
    /// Held messages by identity; a `BTreeMap` so listings are deterministic.
    held: BTreeMap<MessageId, Held<T>>,
    /// Held messages by the dependency they wait for — the index that avoids rescans.
    /// Architecture invariant: every held message is listed exactly once, under its
    /// `waiting_for`, and that dependency is not yet delivered.
    waiting: HashMap<Dependency, Vec<MessageId>>,
    /// Every delivery in order, local sends included.
    log: Vec<DeliveryRecord>,
    /// How many duplicates were dropped.
    duplicates: u64,
}

impl<T> HoldBackQueue<T> {
    /// An empty queue for replica `me`, which has delivered nothing.
    pub fn new(me: NodeId) -> Self {
        HoldBackQueue {
            me,
            clock: VectorClock::new(),
            held: BTreeMap::new(),
            waiting: HashMap::new(),
            log: Vec::new(),
            duplicates: 0,
        }
    }

    /// A queue for replica `me` that has already delivered everything `delivered` covers — a
    /// tab that caught up from a snapshot rather than by replaying every message. If `me`
    /// has an entry in `delivered` (a replica resuming under its old id), its next broadcast
    /// continues after it.
    pub fn starting_at(me: NodeId, delivered: VectorClock) -> Self {
        HoldBackQueue {
            clock: delivered,
            ..HoldBackQueue::new(me)
        }
    }

    /// The replica this queue belongs to.
    pub fn node(&self) -> NodeId {
        self.me
    }

    /// The delivered vector clock: entry `k` counts the broadcasts of `k` delivered here
    /// (for this replica itself: the broadcasts it made).
    pub fn clock(&self) -> &VectorClock {
        &self.clock
    }

    /// Stamps a local broadcast made at `now_ms`: increments this replica's own entry, records
    /// the send in the delivered log (a sender delivers its own message at once) and returns the
    /// clock to attach to the message.
    pub fn stamp_send(&mut self, now_ms: f64) -> VectorClock {
        let seq = self.clock.increment(self.me);
        self.log.push(DeliveryRecord {
            id: MessageId {
                sender: self.me,
                seq,
            },
            received_at: now_ms,
            delivered_at: now_ms,
        });
        // No remote message can wait on our own broadcasts: `receive` refuses any that does.
        self.clock.clone()
    }

    /// Stamps a local broadcast of `payload` made at `now_ms` and returns the message to send
    /// to the other replicas. The caller applies `payload` locally itself.
    pub fn send(&mut self, payload: T, now_ms: f64) -> CausalMessage<T> {
        let clock = self.stamp_send(now_ms);
        CausalMessage {
            sender: self.me,
            clock,
            payload,
        }
    }

    /// Takes a message that arrived at `now_ms` and returns the messages now deliverable, in a
    /// causal order: possibly none (the message is held, or was a duplicate and is dropped),
    /// possibly this one followed by held messages it unblocked.
    ///
    /// A message this replica sent itself (an echo) counts as a duplicate.
    pub fn receive(
        &mut self,
        message: CausalMessage<T>,
        now_ms: f64,
    ) -> Result<Vec<CausalMessage<T>>, CausalError> {
        let id = message.id();
        if id.seq == 0 {
            return Err(CausalError::NoSenderEvent { sender: id.sender });
        }
        let sent = self.clock.get(self.me);
        let claimed = message.clock.get(self.me);
        if claimed > sent {
            return Err(CausalError::UnknownOwnBroadcast { id, claimed, sent });
        }
        if id.seq <= self.clock.get(id.sender) || self.held.contains_key(&id) {
            self.duplicates += 1;
            return Ok(Vec::new());
        }
        let mut delivered = Vec::new();
        match next_unmet(&self.clock, &message, None) {
            Some(dep) => {
                self.waiting.entry(dep).or_default().push(id);
                self.held.insert(
                    id,
                    Held {
                        message,
                        waiting_for: dep,
                        received_at: now_ms,
                    },
                );
            }
            None => {
                self.deliver(message, now_ms, now_ms, &mut delivered);
                self.release(&mut delivered, now_ms);
            }
        }
        Ok(delivered)
    }

    /// Delivers held messages unblocked by the deliveries already in `delivered`, appending
    /// them; each newly delivered message may unblock more.
    fn release(&mut self, delivered: &mut Vec<CausalMessage<T>>, now_ms: f64) {
        if self.held.is_empty() {
            return; // nothing waits (the common case): no index to consult
        }
        let mut woken: VecDeque<Dependency> = delivered
            .iter()
            .map(|m| Dependency {
                node: m.sender,
                seq: m.seq(),
            })
            .collect();
        while let Some(dep) = woken.pop_front() {
            let Some(waiters) = self.waiting.remove(&dep) else {
                continue;
            };
            for id in waiters {
                let held = self
                    .held
                    .get_mut(&id)
                    .expect("index lists only held messages");
                match next_unmet(&self.clock, &held.message, Some(dep)) {
                    Some(next) => {
                        held.waiting_for = next;
                        self.waiting.entry(next).or_default().push(id);
                    }
                    None => {
                        let held = self.held.remove(&id).expect("present above");
                        self.deliver(held.message, held.received_at, now_ms, delivered);
                        woken.push_back(Dependency {
                            node: id.sender,
                            seq: id.seq,
                        });
                    }
                }
            }
        }
    }

    fn deliver(
        &mut self,
        message: CausalMessage<T>,
        received_at: f64,
        now_ms: f64,
        out: &mut Vec<CausalMessage<T>>,
    ) {
        let id = message.id();
        debug_assert_eq!(self.clock.get(id.sender) + 1, id.seq, "BSS rule violated");
        self.clock.set(id.sender, id.seq);
        self.log.push(DeliveryRecord {
            id,
            received_at,
            delivered_at: now_ms,
        });
        out.push(message);
    }

    /// The held messages, in `(sender, seq)` order, each with the dependency it waits for and
    /// since when.
    pub fn held(&self) -> impl Iterator<Item = HeldMessage<'_, T>> + '_ {
        self.held.values().map(|h| HeldMessage {
            message: &h.message,
            waiting_for: h.waiting_for,
            held_since: h.received_at,
        })
    }

    /// How many messages are held.
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    /// Every delivery in order, local sends included. The clock after the `k`-th delivery is
    /// the starting clock with `clock[id.sender] = id.seq` applied for records `0..=k` (what a
    /// trace needs for each delivery event).
    pub fn delivered_log(&self) -> &[DeliveryRecord] {
        &self.log
    }

    /// How many duplicate messages (already delivered or already held) were dropped.
    pub fn duplicates_ignored(&self) -> u64 {
        self.duplicates
    }

    /// The broadcasts that have not arrived while held messages wait for them, one per node,
    /// in node order.
    pub fn gaps(&self) -> Vec<Gap> {
        let mut per_node: BTreeMap<NodeId, (f64, usize)> = BTreeMap::new();
        for h in self.held.values() {
            let e = per_node
                .entry(h.waiting_for.node)
                .or_insert((f64::INFINITY, 0));
            e.0 = e.0.min(h.received_at);
            e.1 += 1;
        }
        per_node
            .into_iter()
            .filter_map(|(node, (since, blocked))| {
                let missing = Dependency {
                    node,
                    seq: self.clock.get(node) + 1,
                };
                // If the next message of `node` is itself held, the gap lies elsewhere.
                let held = self.held.contains_key(&MessageId {
                    sender: node,
                    seq: missing.seq,
                });
                (!held).then_some(Gap {
                    missing,
                    since,
                    blocked,
                })
            })
            .collect()
    }

    /// The stall policy: the gaps that have blocked messages for at least `patience_ms` at
    /// `now_ms`. The caller decides what to do (ask the sender to resend, warn the user); the
    /// queue keeps holding, because delivering past a gap would break causal order.
    pub fn stalled(&self, now_ms: f64, patience_ms: f64) -> Vec<Gap> {
        self.gaps()
            .into_iter()
            .filter(|g| now_ms - g.since >= patience_ms)
            .collect()
    }

    /// Gives up on a broadcast that will never arrive (its sender left for good): removes and
    /// returns every held message that causally depends on `missing` — exactly the messages
    /// that can never be delivered in causal order. Nothing is delivered and nothing is lost
    /// silently: the caller gets them back (to show, or to [`receive`](Self::receive) again if
    /// the broadcast turns up after all).
    pub fn abandon(&mut self, missing: Dependency) -> Vec<CausalMessage<T>> {
        let doomed: Vec<MessageId> = self
            .held
            .iter()
            .filter(|(_, h)| h.message.clock.get(missing.node) >= missing.seq)
            .map(|(&id, _)| id)
            .collect();
        let mut out = Vec::with_capacity(doomed.len());
        for id in doomed {
            let held = self.held.remove(&id).expect("listed above");
            if let Some(list) = self.waiting.get_mut(&held.waiting_for) {
                list.retain(|&w| w != id);
                if list.is_empty() {
                    self.waiting.remove(&held.waiting_for);
                }
            }
            out.push(held.message);
        }
        out
    }
}

/// The first dependency of `message` that `clock` has not delivered, or `None` if the BSS rule
/// lets it be delivered now. `after` is the dependency just satisfied, if any: entries of other
/// nodes before it were satisfied when the message was indexed under it, and the clock only
/// grows, so the scan resumes there — each entry is checked about once over all wake-ups.
fn next_unmet<T>(
    clock: &VectorClock,
    message: &CausalMessage<T>,
    after: Option<Dependency>,
) -> Option<Dependency> {
    let sender = message.sender;
    let seq = message.seq();
    if clock.get(sender) + 1 < seq {
        return Some(Dependency {
            node: sender,
            seq: seq - 1,
        });
    }
    let resume_from = match after {
        Some(dep) if dep.node != sender => dep.node,
        _ => NodeId::MIN,
    };
    message
        .clock
        .first_entry_above(clock, sender, resume_from)
        .map(|(node, count)| Dependency { node, seq: count })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    fn msg(
        sender: NodeId,
        pairs: &[(NodeId, u64)],
        payload: &'static str,
    ) -> CausalMessage<&'static str> {
        CausalMessage {
            sender,
            clock: pairs.iter().copied().collect(),
            payload,
        }
    }

    #[test]
    fn out_of_order_edit_is_held_until_its_cause_arrives() {
        // The seed's out-of-order edit: B's edit depends on A's, C receives B's first.
        let mut a = HoldBackQueue::new(1);
        let mut b = HoldBackQueue::new(2);
        let mut c = HoldBackQueue::new(3);
        let m1 = a.send("insert 'H' at 0", 0.0);
        assert_eq!(b.receive(m1.clone(), 1.0).unwrap(), vec![m1.clone()]);
        let m2 = b.send("insert 'i' at 1", 2.0);
        assert_eq!(m2.clock, [(1, 1), (2, 1)].into_iter().collect());

        assert!(c.receive(m2.clone(), 10.0).unwrap().is_empty());
        let held: Vec<_> = c.held().collect();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].message, &m2);
        assert_eq!(held[0].waiting_for, Dependency { node: 1, seq: 1 });
        assert_eq!(held[0].held_since, 10.0);
        assert_eq!(
            c.gaps(),
            vec![Gap {
                missing: Dependency { node: 1, seq: 1 },
                since: 10.0,
                blocked: 1
            }]
        );
        assert!(c.stalled(15.0, 10.0).is_empty());
        assert_eq!(c.stalled(20.0, 10.0).len(), 1);

        assert_eq!(c.receive(m1.clone(), 30.0).unwrap(), vec![m1, m2]);
        assert_eq!(c.held_len(), 0);
        assert!(c.gaps().is_empty());
        assert_eq!(c.clock(), &[(1, 1), (2, 1)].into_iter().collect());
        let log = c.delivered_log();
        assert_eq!(log[1].id, MessageId { sender: 2, seq: 1 });
        assert_eq!((log[1].received_at, log[1].delivered_at), (10.0, 30.0));
    }

    #[test]
    fn a_queue_can_start_from_a_snapshot_clock() {
        let mut a = HoldBackQueue::new(1);
        let m1 = a.send("a1", 0.0);
        let m2 = a.send("a2", 0.0);
        // A late joiner caught up with a1 from a snapshot and resumes its own id 2 at seq 4.
        let mut b = HoldBackQueue::starting_at(2, [(1, 1), (2, 3)].into_iter().collect());
        assert!(b.receive(m1, 0.0).unwrap().is_empty());
        assert_eq!(b.duplicates_ignored(), 1);
        assert_eq!(b.receive(m2.clone(), 0.0).unwrap(), vec![m2]);
        assert_eq!(b.send("b4", 1.0).seq(), 4);
        assert_eq!(b.clock(), &[(1, 2), (2, 4)].into_iter().collect());
    }

    #[test]
    fn abandoning_a_lost_broadcast_returns_exactly_its_dependents() {
        let mut a = HoldBackQueue::new(1);
        let mut b = HoldBackQueue::new(2);
        let a1 = a.send("a1 (lost)", 0.0);
        let a2 = a.send("a2", 0.0);
        b.receive(a1.clone(), 0.0).unwrap();
        let b1 = b.send("b1 after a1", 0.0);
        let b0 = HoldBackQueue::new(3).send("c1 independent", 0.0);
        let mut c = HoldBackQueue::new(4);
        c.receive(a2.clone(), 1.0).unwrap();
        c.receive(b1.clone(), 2.0).unwrap();
        assert_eq!(c.receive(b0.clone(), 3.0).unwrap(), vec![b0]);
        assert_eq!(
            c.stalled(10.0, 5.0)[0].missing,
            Dependency { node: 1, seq: 1 }
        );
        let gone = c.abandon(Dependency { node: 1, seq: 1 });
        assert_eq!(gone, vec![a2.clone(), b1.clone()]);
        assert_eq!(c.held_len(), 0);
        assert!(c.gaps().is_empty());
        // If the broadcast turns up after all, the returned messages can be fed again.
        assert_eq!(c.receive(a1.clone(), 20.0).unwrap(), vec![a1]);
        let mut out = c.receive(b1.clone(), 21.0).unwrap();
        out.extend(c.receive(a2.clone(), 21.0).unwrap());
        assert_eq!(out, vec![b1, a2]);
    }

    #[test]
    fn duplicates_and_echoes_are_ignored() {
        let mut a = HoldBackQueue::new(1);
        let mut b = HoldBackQueue::new(2);
        let m1 = a.send("x", 0.0);
        let m2 = a.send("y", 0.0);
        assert!(b.receive(m2.clone(), 0.0).unwrap().is_empty());
        assert!(b.receive(m2.clone(), 0.0).unwrap().is_empty());
        assert_eq!(b.receive(m1.clone(), 0.0).unwrap().len(), 2);
        assert!(b.receive(m1.clone(), 0.0).unwrap().is_empty());
        assert!(a.receive(m1, 0.0).unwrap().is_empty()); // echo of own broadcast
        assert_eq!(b.duplicates_ignored(), 2);
        assert_eq!(a.duplicates_ignored(), 1);
        assert_eq!(b.delivered_log().len(), 2);
    }

    #[test]
    fn bad_messages_are_refused_and_change_nothing() {
        let mut q = HoldBackQueue::new(1);
        q.send("mine", 0.0);
        assert_eq!(
            q.receive(msg(2, &[(3, 1)], "no own event"), 0.0),
            Err(CausalError::NoSenderEvent { sender: 2 })
        );
        let err = q
            .receive(msg(2, &[(1, 5), (2, 1)], "from the future"), 0.0)
            .unwrap_err();
        assert_eq!(
            err,
            CausalError::UnknownOwnBroadcast {
                id: MessageId { sender: 2, seq: 1 },
                claimed: 5,
                sent: 1
            }
        );
        assert!(err.to_string().starts_with("message"));
        assert_eq!(q.held_len(), 0);
        assert_eq!(q.clock(), &[(1, 1)].into_iter().collect());
    }

    #[test]
    fn a_message_waits_for_each_dependency_in_turn() {
        let mut q = HoldBackQueue::new(9);
        // (3,1) depends on 1:2 and 2:1.
        let m = msg(3, &[(1, 2), (2, 1), (3, 1)], "late");
        assert!(q.receive(m.clone(), 0.0).unwrap().is_empty());
        assert_eq!(
            q.held().next().unwrap().waiting_for,
            Dependency { node: 1, seq: 2 }
        );
        assert!(q.receive(msg(1, &[(1, 2)], "a2"), 1.0).unwrap().is_empty());
        // Held a2 now waits for a1; the gap is a1.
        assert_eq!(q.gaps()[0].missing, Dependency { node: 1, seq: 1 });
        let out = q.receive(msg(1, &[(1, 1)], "a1"), 2.0).unwrap();
        assert_eq!(
            out.iter().map(|m| m.payload).collect::<Vec<_>>(),
            vec!["a1", "a2"]
        );
        assert_eq!(
            q.held().next().unwrap().waiting_for,
            Dependency { node: 2, seq: 1 }
        );
        let out = q.receive(msg(2, &[(2, 1)], "b1"), 3.0).unwrap();
        assert_eq!(
            out.iter().map(|m| m.payload).collect::<Vec<_>>(),
            vec!["b1", "late"]
        );
    }

    #[test]
    fn reverse_arrival_delivers_everything_in_one_go() {
        let mut a = HoldBackQueue::new(1);
        let msgs: Vec<_> = (0..1000).map(|i| a.send(i, 0.0)).collect();
        let mut b = HoldBackQueue::new(2);
        for m in msgs[1..].iter().rev() {
            assert!(b.receive(m.clone(), 0.0).unwrap().is_empty());
        }
        let out = b.receive(msgs[0].clone(), 0.0).unwrap();
        assert_eq!(out, msgs);
    }

    /// A random execution: `n` replicas broadcast and receive with random delays (messages
    /// are delivered to each replica in a random order, some twice). Returns every replica's
    /// delivery sequence and every broadcast message.
    fn simulate(
        seed: u64,
        n: u32,
        steps: usize,
    ) -> (Vec<Vec<CausalMessage<u32>>>, Vec<CausalMessage<u32>>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut queues: Vec<HoldBackQueue<u32>> = (0..n).map(HoldBackQueue::new).collect();
        let mut delivered: Vec<Vec<CausalMessage<u32>>> = vec![Vec::new(); n as usize];
        let mut all = Vec::new();
        // In flight: (destination, message).
        let mut in_flight: Vec<(u32, CausalMessage<u32>)> = Vec::new();
        let mut t = 0.0;
        for step in 0..steps {
            t += 1.0;
            if in_flight.is_empty() || rng.gen_bool(0.3) {
                let s = rng.gen_range(0..n);
                let m = queues[s as usize].send(step as u32, t);
                delivered[s as usize].push(m.clone());
                all.push(m.clone());
                for d in (0..n).filter(|&d| d != s) {
                    in_flight.push((d, m.clone()));
                    if rng.gen_bool(0.1) {
                        in_flight.push((d, m.clone()));
                    }
                }
            } else {
                let i = rng.gen_range(0..in_flight.len());
                let (d, m) = in_flight.swap_remove(i);
                let out = queues[d as usize].receive(m, t).unwrap();
                delivered[d as usize].extend(out);
            }
        }
        in_flight.shuffle(&mut rng);
        for (d, m) in in_flight {
            let out = queues[d as usize].receive(m, t).unwrap();
            delivered[d as usize].extend(out);
        }
        for q in &queues {
            assert_eq!(q.held_len(), 0, "everything eventually delivered");
            assert!(q.gaps().is_empty());
        }
        (delivered, all)
    }

    fn assert_causal(sequence: &[CausalMessage<u32>], all: &[CausalMessage<u32>]) {
        assert_eq!(
            sequence.len(),
            all.len(),
            "each message delivered exactly once"
        );
        let mut ids: Vec<_> = sequence.iter().map(|m| m.id()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len(), "no message delivered twice");
        // Strong clock condition: m → m' iff V(m) < V(m'). No later message may precede an
        // earlier one.
        for (i, later) in sequence.iter().enumerate() {
            for earlier in &sequence[i + 1..] {
                assert!(
                    !earlier.clock.happened_before(&later.clock),
                    "{:?} delivered before its cause {:?}",
                    later.id(),
                    earlier.id()
                );
            }
        }
    }

    #[test]
    fn seeded_simulations_deliver_causally() {
        for seed in 0..20 {
            let (delivered, all) = simulate(seed, 4, 300);
            for seq in &delivered {
                assert_causal(seq, &all);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn causal_delivery_over_random_interleavings(seed in any::<u64>(), n in 2u32..6, steps in 1usize..200) {
            let (delivered, all) = simulate(seed, n, steps);
            for seq in &delivered {
                assert_causal(seq, &all);
            }
        }

        #[test]
        fn lost_broadcasts_stall_and_abandoning_them_loses_nothing_silently(seed in any::<u64>(), n in 2u32..5, steps in 1usize..120) {
            let (_, all) = simulate(seed, n, steps);
            let mut rng = StdRng::seed_from_u64(seed ^ 0x51);
            let mut arrivals: Vec<_> = all.iter().filter(|_| !rng.gen_bool(0.1)).cloned().collect();
            let lost = all.len() - arrivals.len();
            arrivals.shuffle(&mut rng);
            let mut observer = HoldBackQueue::new(100);
            let mut out = Vec::new();
            for m in arrivals {
                out.extend(observer.receive(m, 0.0).unwrap());
            }
            let mut abandoned = Vec::new();
            while let Some(gap) = observer.gaps().first().copied() {
                abandoned.extend(observer.abandon(gap.missing));
                prop_assert!(observer.held().all(|h| h.message.clock.get(gap.missing.node) < gap.missing.seq));
            }
            prop_assert_eq!(observer.held_len(), 0);
            prop_assert_eq!(out.len() + abandoned.len() + lost, all.len());
            for (i, later) in out.iter().enumerate() {
                for earlier in &out[i + 1..] {
                    prop_assert!(!earlier.clock.happened_before(&later.clock));
                }
            }
        }

        #[test]
        fn an_observer_delivers_any_arrival_order_causally(seed in any::<u64>(), n in 2u32..5, steps in 1usize..150) {
            let (_, all) = simulate(seed, n, steps);
            let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37);
            let mut arrivals = all.clone();
            arrivals.extend(all.iter().filter(|_| rng.gen_bool(0.2)).cloned());
            arrivals.shuffle(&mut rng);
            let mut observer = HoldBackQueue::new(100);
            let mut out = Vec::new();
            for (t, m) in arrivals.into_iter().enumerate() {
                out.extend(observer.receive(m, t as f64).unwrap());
                // Index invariant: every held message waits for an undelivered dependency.
                for h in observer.held() {
                    prop_assert!(observer.clock().get(h.waiting_for.node) < h.waiting_for.seq);
                }
                // Whatever is held, some broadcast that has not arrived is to blame.
                prop_assert_eq!(observer.held_len() > 0, !observer.gaps().is_empty());
            }
            assert_causal(&out, &all);
            prop_assert_eq!(observer.delivered_log().len(), all.len());
        }
    }
}
