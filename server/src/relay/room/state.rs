//! The pure state of one relay room: the replica ids it issued (with their resume tokens),
//! the tabs present, the resumes waiting for their replica's old connection to go, the delay
//! matrix, and the index of the op log. No sockets, no tasks, no clock, no randomness: the
//! room's actor (`super`) feeds it what happened and performs the IO it decides on, so every
//! rule here is tested exhaustively without a socket.
//!
//! Invariants (checked in the tests below):
//! - at most one connection per replica, and only replicas this room issued are present;
//! - a resume token names its own replica only;
//! - a fresh replica id is above every id the room issued, also across restarts (issued ids
//!   are reserved durably in blocks, see [`RoomState::reservation`]);
//! - the tokens of replicas that never had an op stored are kept in memory only, and at most
//!   [`MAX_IDLE_UNSTORED`] of them for tabs not present (oldest forgotten first): a stream of
//!   `hello`s grows neither the store nor the room;
//! - the log index is dense (`0..len`) and names each `(sender, seq)` once, so a re-sent op
//!   is recognised and never stored twice;
//! - the matrix holds only links that differ from the default, in `(from, to)` order.
//!
//! `C` is what the actor keeps for a present tab (its outbox), `J` a hello waiting for its
//! answer; the tests use plain values for both.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use chronoscope::{
    protocol::{Link, Member},
    NodeId,
};

/// How many replicas that never had an op stored, and are not present, keep their resume
/// token (in memory); beyond it the oldest is forgotten and its tab, if it ever comes back,
/// gets a fresh id (it has nothing in the log to lose).
pub(crate) const MAX_IDLE_UNSTORED: usize = 1024;

/// How many replica ids a room reserves in the store at a time.
pub(crate) use super::super::store::REPLICA_BLOCK;

/// A tab present in the room.
#[derive(Debug)]
pub(crate) struct Present<C> {
    /// Who it says it is (its replica id is the map's key too).
    pub(crate) member: Member,
    /// Its connection; a leave from an older connection of the same replica is ignored.
    pub(crate) conn: u64,
    /// What the actor needs to reach it.
    pub(crate) io: C,
}

/// What to do with a hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hello {
    /// Its token names this replica, which is free: give it back.
    Resume(NodeId),
    /// Its token names this replica, still connected (a reloaded tab's new socket overtook
    /// the old one's close, or a duplicated tab): wait for it to leave, for a grace period.
    Wait(NodeId),
    /// No token, or one this room never issued: a fresh replica.
    Fresh,
}

/// Where an op of a batch goes in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placed {
    /// Its log index.
    pub(crate) index: u64,
    /// Whether it was already in the log (or earlier in the same batch): acknowledge it
    /// again, store and forward nothing.
    pub(crate) duplicate: bool,
}

/// The most non-default links a room's delay matrix holds (a full matrix of 23 tabs).
pub(crate) const MAX_LINKS: usize = 512;

/// Why a link change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LinkRefused {
    /// An end of the link is not a replica of this room.
    #[error("replica {0} is not in this room")]
    NotInRoom(NodeId),
    /// The matrix is full.
    #[error("the room's delay matrix holds at most {MAX_LINKS} links; reset some first")]
    Full,
}

/// A hello waiting for its replica's current connection to leave.
#[derive(Debug)]
struct Waiting<J> {
    conn: u64,
    join: J,
}

/// The state of one room.
#[derive(Debug)]
pub(crate) struct RoomState<C, J> {
    /// The resume token of every replica that can resume: those with ops in the log (loaded
    /// from the store) and those issued since the room loaded that were not forgotten.
    tokens: HashMap<NodeId, String>,
    /// The replicas whose token the store holds (they have an op in the log).
    stored: HashSet<NodeId>,
    /// Replicas with an unstored token that are not present, by when they left.
    idle_unstored: BTreeMap<u64, NodeId>,
    /// When each of those left (the key into `idle_unstored`).
    left_at: HashMap<NodeId, u64>,
    /// Counts leaves, to order `idle_unstored`.
    leaves: u64,
    /// The next fresh replica id.
    next: u64,
    /// The store's bound: every id below it may have been issued.
    issued_below: u32,
    /// The tabs present, by replica id.
    members: BTreeMap<NodeId, Present<C>>,
    /// Resumes waiting for their replica's connection to leave, oldest first.
    waiting: HashMap<NodeId, VecDeque<Waiting<J>>>,
    /// The delay matrix: the links that differ from the default.
    links: BTreeMap<(NodeId, NodeId), Link>,
    /// `(sender, seq) → log index`.
    ids: HashMap<(NodeId, u64), u64>,
    /// The log's length: the next op's index.
    len: u64,
}

impl<C, J> RoomState<C, J> {
    /// A room whose stored replicas are `tokens` and that issued ids below `issued_below`,
    /// with an empty log (feed the stored log to [`RoomState::logged`]).
    pub(crate) fn new(tokens: HashMap<NodeId, String>, issued_below: u32) -> Self {
        let above_stored = tokens.keys().max().map_or(1, |m| u64::from(*m) + 1);
        RoomState {
            stored: tokens.keys().copied().collect(),
            tokens,
            idle_unstored: BTreeMap::new(),
            left_at: HashMap::new(),
            leaves: 0,
            next: above_stored.max(u64::from(issued_below)).max(1),
            issued_below,
            members: BTreeMap::new(),
            waiting: HashMap::new(),
            links: BTreeMap::new(),
            ids: HashMap::new(),
            len: 0,
        }
    }

    // --- replicas and presence ---

    /// What to do with a hello carrying `resume`.
    pub(crate) fn hello(&self, resume: Option<&str>) -> Hello {
        // Tokens are secret (128 random bits) and name their own replica only.
        let asked = resume.and_then(|token| {
            self.tokens
                .iter()
                .find(|(_, t)| t.as_str() == token)
                .map(|(r, _)| *r)
        });
        match asked {
            Some(r) if self.members.contains_key(&r) => Hello::Wait(r),
            Some(r) => Hello::Resume(r),
            None => Hello::Fresh,
        }
    }

    /// The id a fresh replica gets: one above every id ever issued here (ids are never
    /// reused, not even after a restart, since the issued ones are reserved in the store);
    /// `None` once the ids are used up.
    pub(crate) fn next_replica(&self) -> Option<NodeId> {
        NodeId::try_from(self.next)
            .ok()
            .filter(|r| *r < NodeId::MAX)
    }

    /// The bound to reserve in the store before `replica` may be issued, if its block is not
    /// reserved yet.
    pub(crate) fn reservation(&self, replica: NodeId) -> Option<u32> {
        (replica >= self.issued_below).then(|| replica.saturating_add(REPLICA_BLOCK))
    }

    /// The store now holds the bound `bound`.
    pub(crate) fn reserved(&mut self, bound: u32) {
        self.issued_below = self.issued_below.max(bound);
    }

    /// Record a fresh replica (its block reserved) with its resume token, kept in memory until
    /// its first op is stored.
    pub(crate) fn issued(&mut self, replica: NodeId, token: String) {
        debug_assert!(!self.tokens.contains_key(&replica), "ids are never reused");
        debug_assert!(replica < self.issued_below, "issued ids are reserved");
        self.tokens.insert(replica, token);
        self.next = self.next.max(u64::from(replica) + 1);
    }

    /// Of `senders`, those whose token the store does not hold yet, with their tokens: to be
    /// written with their ops.
    pub(crate) fn unstored(
        &self,
        senders: impl IntoIterator<Item = NodeId>,
    ) -> Vec<(NodeId, String)> {
        let mut seen = HashSet::new();
        senders
            .into_iter()
            .filter(|r| !self.stored.contains(r) && seen.insert(*r))
            .filter_map(|r| self.tokens.get(&r).map(|t| (r, t.clone())))
            .collect()
    }

    /// The store now holds the tokens of `replicas`.
    pub(crate) fn recorded(&mut self, replicas: impl IntoIterator<Item = NodeId>) {
        for r in replicas {
            self.stored.insert(r);
            if let Some(at) = self.left_at.remove(&r) {
                self.idle_unstored.remove(&at);
            }
        }
    }

    /// How many tokens the room keeps in memory.
    #[cfg(test)]
    pub(crate) fn tokens_kept(&self) -> usize {
        self.tokens.len()
    }

    /// Whether this room issued `replica`.
    pub(crate) fn is_issued(&self, replica: NodeId) -> bool {
        self.tokens.contains_key(&replica)
    }

    /// The resume token of an issued replica.
    pub(crate) fn token(&self, replica: NodeId) -> Option<&str> {
        self.tokens.get(&replica).map(String::as_str)
    }

    /// Park a hello (from connection `conn`) until `replica`'s connection leaves.
    pub(crate) fn wait(&mut self, replica: NodeId, conn: u64, join: J) {
        debug_assert!(self.members.contains_key(&replica));
        self.waiting
            .entry(replica)
            .or_default()
            .push_back(Waiting { conn, join });
    }

    /// The grace of the resume from `conn` ran out: its hello, if it still waits (to be
    /// admitted as a fresh replica).
    pub(crate) fn expire(&mut self, replica: NodeId, conn: u64) -> Option<J> {
        let queue = self.waiting.get_mut(&replica)?;
        let pos = queue.iter().position(|w| w.conn == conn)?;
        let waiting = queue.remove(pos).expect("position is in range");
        if queue.is_empty() {
            self.waiting.remove(&replica);
        }
        Some(waiting.join)
    }

    /// Admit a tab on connection `conn` as `member` (an issued replica, not present).
    pub(crate) fn join(&mut self, member: Member, conn: u64, io: C) {
        let replica = member.replica;
        debug_assert!(self.is_issued(replica), "only issued replicas join");
        debug_assert!(
            !self.members.contains_key(&replica),
            "one connection per replica"
        );
        if let Some(at) = self.left_at.remove(&replica) {
            self.idle_unstored.remove(&at);
        }
        self.members.insert(replica, Present { member, conn, io });
    }

    /// Connection `conn` of `replica` ended. If it was the replica's current connection,
    /// the member is removed: returns it, with the oldest hello waiting to resume it (to be
    /// admitted now, as that replica).
    pub(crate) fn leave(&mut self, replica: NodeId, conn: u64) -> Option<(Present<C>, Option<J>)> {
        if self.members.get(&replica)?.conn != conn {
            return None;
        }
        let gone = self.members.remove(&replica).expect("checked above");
        if !self.stored.contains(&replica) {
            self.leaves += 1;
            self.idle_unstored.insert(self.leaves, replica);
            self.left_at.insert(replica, self.leaves);
            while self.idle_unstored.len() > MAX_IDLE_UNSTORED {
                let (_, oldest) = self.idle_unstored.pop_first().expect("over the cap");
                self.left_at.remove(&oldest);
                // A resume still waiting for it keeps it (it is about to be present again).
                if !self.waiting.contains_key(&oldest) {
                    self.tokens.remove(&oldest);
                }
            }
        }
        let next = self
            .waiting
            .get_mut(&replica)
            .and_then(VecDeque::pop_front)
            .map(|w| w.join);
        if self.waiting.get(&replica).is_some_and(VecDeque::is_empty) {
            self.waiting.remove(&replica);
        }
        Some((gone, next))
    }

    /// The tabs present, in replica order.
    pub(crate) fn members(&self) -> impl Iterator<Item = &Present<C>> {
        self.members.values()
    }

    /// The tab present as `replica`, if any.
    pub(crate) fn member(&self, replica: NodeId) -> Option<&Present<C>> {
        self.members.get(&replica)
    }

    /// Whether no tab is present and none waits to resume.
    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty() && self.waiting.is_empty()
    }

    /// The presence list.
    pub(crate) fn presence(&self) -> Vec<Member> {
        self.members.values().map(|p| p.member.clone()).collect()
    }

    // --- the delay matrix ---

    /// Set a link (its fields already validated): both ends must be replicas this room
    /// issued, and the matrix holds at most [`MAX_LINKS`] non-default links. A link back at
    /// the default leaves the matrix.
    pub(crate) fn set_link(&mut self, link: Link) -> Result<(), LinkRefused> {
        for end in [link.from, link.to] {
            if !self.is_issued(end) {
                return Err(LinkRefused::NotInRoom(end));
            }
        }
        let key = (link.from, link.to);
        if link.is_default() {
            self.links.remove(&key);
        } else if self.links.len() >= MAX_LINKS && !self.links.contains_key(&key) {
            return Err(LinkRefused::Full);
        } else {
            self.links.insert(key, link);
        }
        Ok(())
    }

    /// The settings of link `from → to`.
    pub(crate) fn link(&self, from: NodeId, to: NodeId) -> Link {
        self.links.get(&(from, to)).copied().unwrap_or(Link {
            from,
            to,
            delay_ms: 0,
            jitter_ms: 0,
            cut: false,
        })
    }

    /// The matrix as sent to tabs: non-default links in `(from, to)` order.
    pub(crate) fn matrix(&self) -> Vec<Link> {
        self.links.values().copied().collect()
    }

    // --- the log index ---

    /// The log's length: the index the next stored op gets.
    pub(crate) fn log_len(&self) -> u64 {
        self.len
    }

    /// Place a batch of `(sender, seq)` in the log: a re-sent op (already logged, or earlier
    /// in this batch) keeps its index; fresh ops get the next indices, in batch order. Changes
    /// nothing: call [`RoomState::logged`] for the fresh ones once they are stored.
    pub(crate) fn place(&self, batch: &[(NodeId, u64)]) -> Vec<Placed> {
        let mut in_batch: HashMap<(NodeId, u64), u64> = HashMap::new();
        let mut next = self.len;
        batch
            .iter()
            .map(|id| {
                if let Some(&index) = self.ids.get(id).or(in_batch.get(id)) {
                    return Placed {
                        index,
                        duplicate: true,
                    };
                }
                in_batch.insert(*id, next);
                next += 1;
                Placed {
                    index: next - 1,
                    duplicate: false,
                }
            })
            .collect()
    }

    /// Op `(from, seq)` is stored at the next index; returns that index.
    pub(crate) fn logged(&mut self, from: NodeId, seq: u64) -> u64 {
        let index = self.len;
        let fresh = self.ids.insert((from, seq), index).is_none();
        debug_assert!(fresh, "an op is logged once");
        self.next = self.next.max(u64::from(from) + 1);
        self.len += 1;
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type State = RoomState<&'static str, &'static str>;

    fn member(replica: NodeId) -> Member {
        Member {
            replica,
            name: format!("tab {replica}"),
            colour: "#000000".into(),
        }
    }

    /// A room that issued replicas 1..=n with tokens "t1".. and has none present.
    fn room(n: NodeId) -> State {
        RoomState::new((1..=n).map(|r| (r, format!("t{r}"))).collect(), 0)
    }

    fn link(from: NodeId, to: NodeId, delay_ms: u32, cut: bool) -> Link {
        Link {
            from,
            to,
            delay_ms,
            jitter_ms: 0,
            cut,
        }
    }

    /// Issue the next fresh replica as the actor does: reserve its block first if needed.
    fn fresh<C, J>(s: &mut RoomState<C, J>) -> NodeId {
        let r = s.next_replica().expect("ids left");
        if let Some(bound) = s.reservation(r) {
            s.reserved(bound);
        }
        s.issued(r, format!("t{r}"));
        r
    }

    #[test]
    fn fresh_replicas_are_numbered_above_every_id_ever_issued() {
        let mut s: State = RoomState::new(HashMap::new(), 0);
        assert_eq!(s.next_replica(), Some(1));
        assert_eq!(s.reservation(1), Some(1 + REPLICA_BLOCK));
        assert_eq!(fresh(&mut s), 1);
        assert_eq!(s.reservation(2), None, "inside the reserved block");
        assert_eq!(fresh(&mut s), 2);
        // Leaving does not free an id.
        s.join(member(2), 1, "c2");
        s.leave(2, 1).unwrap();
        assert_eq!(s.next_replica(), Some(3));
        // After a restart: above the stored replicas and the reserved bound, whichever is
        // higher (a database from before the bound existed has only the stored replicas).
        let stored: HashMap<NodeId, String> = [(7, "t7".to_owned())].into();
        assert_eq!(State::new(stored.clone(), 65).next_replica(), Some(65));
        assert_eq!(State::new(stored, 0).next_replica(), Some(8));
        assert_eq!(State::new(HashMap::new(), NodeId::MAX).next_replica(), None);
    }

    #[test]
    fn tokens_of_replicas_that_never_sent_an_op_are_bounded_and_stored_ones_are_kept() {
        let mut s: State = RoomState::new(HashMap::new(), 0);
        let mut bound_writes = 0;
        let keeper = fresh(&mut s);
        s.join(member(keeper), 0, "k");
        assert_eq!(
            s.unstored([keeper, keeper]),
            [(keeper, format!("t{keeper}"))]
        );
        s.recorded([keeper]);
        assert!(
            s.unstored([keeper]).is_empty(),
            "written with its first op, once"
        );
        s.leave(keeper, 0).unwrap();
        for conn in 1..=5000u64 {
            let r = s.next_replica().unwrap();
            if let Some(bound) = s.reservation(r) {
                s.reserved(bound);
                bound_writes += 1;
            }
            s.issued(r, format!("t{r}"));
            s.join(member(r), conn, "c");
            s.leave(r, conn).unwrap();
            assert!(s.tokens_kept() <= MAX_IDLE_UNSTORED + 1);
        }
        // One reservation per block of ids (the keeper's was the first).
        assert_eq!(bound_writes + 1, 5001_u32.div_ceil(REPLICA_BLOCK));
        assert_eq!(s.hello(Some(&format!("t{keeper}"))), Hello::Resume(keeper));
        assert_eq!(
            s.hello(Some("t5001")),
            Hello::Resume(5001),
            "recent ones resume"
        );
        assert_eq!(
            s.hello(Some("t2")),
            Hello::Fresh,
            "the oldest are forgotten"
        );
        assert_eq!(s.next_replica(), Some(5002), "and their ids are not reused");
        // A forgotten-about replica that comes back and sends an op is recorded again.
        let r = fresh(&mut s);
        s.join(member(r), 9999, "c");
        assert_eq!(s.unstored([r]).len(), 1);
    }

    #[test]
    fn a_token_resumes_its_own_replica_only_and_waits_while_it_is_connected() {
        let mut s = room(3);
        assert_eq!(s.hello(None), Hello::Fresh);
        assert_eq!(s.hello(Some("nope")), Hello::Fresh);
        assert_eq!(s.hello(Some("t2")), Hello::Resume(2));
        s.join(member(2), 10, "c10");
        assert_eq!(s.hello(Some("t2")), Hello::Wait(2));
        assert_eq!(s.hello(Some("t3")), Hello::Resume(3));
        assert_eq!(s.token(2), Some("t2"));
        assert_eq!(s.token(9), None);
    }

    #[test]
    fn a_waiting_resume_is_admitted_when_the_old_connection_leaves_oldest_first() {
        let mut s = room(2);
        s.join(member(1), 10, "old");
        s.wait(1, 11, "first");
        s.wait(1, 12, "second");
        // A stale leave (another connection of the replica) changes nothing.
        assert!(s.leave(1, 99).is_none());
        let (gone, next) = s.leave(1, 10).unwrap();
        assert_eq!((gone.conn, gone.io, next), (10, "old", Some("first")));
        assert!(s.member(1).is_none());
        s.join(member(1), 11, "new");
        // The second one's grace runs out: it gets a fresh replica; the first's expiry (it
        // was admitted) finds nothing.
        assert_eq!(s.expire(1, 12), Some("second"));
        assert_eq!(s.expire(1, 11), None);
        assert_eq!(s.expire(1, 12), None);
        s.leave(1, 11).unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn presence_is_in_replica_order() {
        let mut s = room(3);
        s.join(member(3), 1, "c");
        s.join(member(1), 2, "a");
        let ids: Vec<NodeId> = s.presence().iter().map(|m| m.replica).collect();
        assert_eq!(ids, [1, 3]);
    }

    #[test]
    fn the_matrix_holds_only_non_default_links_in_order() {
        let mut s = room(3);
        assert_eq!(s.link(1, 2), link(1, 2, 0, false));
        s.set_link(link(2, 1, 300, false)).unwrap();
        s.set_link(link(1, 3, 0, true)).unwrap();
        s.set_link(link(1, 2, 50, false)).unwrap();
        assert_eq!(
            s.matrix(),
            [
                link(1, 2, 50, false),
                link(1, 3, 0, true),
                link(2, 1, 300, false)
            ]
        );
        s.set_link(link(1, 2, 0, false)).unwrap();
        assert_eq!(s.matrix(), [link(1, 3, 0, true), link(2, 1, 300, false)]);
        assert_eq!(s.link(2, 1).delay_ms, 300);
    }

    #[test]
    fn links_join_only_issued_replicas_and_the_matrix_is_capped() {
        let mut s = room(40);
        assert_eq!(
            s.set_link(link(1, 41, 10, false)),
            Err(LinkRefused::NotInRoom(41))
        );
        assert_eq!(
            s.set_link(link(u32::MAX, 2, 10, false)),
            Err(LinkRefused::NotInRoom(u32::MAX))
        );
        let pairs = (1..=40).flat_map(|a| (1..=40).map(move |b| (a, b)));
        let mut pairs = pairs.filter(|(a, b)| a != b);
        for (a, b) in pairs.by_ref().take(MAX_LINKS) {
            s.set_link(link(a, b, 10, false)).unwrap();
        }
        let (a, b) = pairs.next().unwrap();
        assert_eq!(s.set_link(link(a, b, 10, false)), Err(LinkRefused::Full));
        assert_eq!(s.matrix().len(), MAX_LINKS);
        // A full matrix still takes changes to its links, and resets make room.
        s.set_link(link(1, 2, 99, false)).unwrap();
        s.set_link(link(1, 2, 0, false)).unwrap();
        s.set_link(link(40, 39, 5, true)).unwrap();
        assert_eq!(s.matrix().len(), MAX_LINKS);
        assert!(s
            .matrix()
            .iter()
            .all(|l| s.is_issued(l.from) && s.is_issued(l.to)));
    }

    #[test]
    fn re_sent_ops_keep_their_index_within_and_across_batches() {
        let mut s = room(2);
        let placed = s.place(&[(1, 1), (2, 1), (1, 1), (1, 2)]);
        let plain = |index, duplicate| Placed { index, duplicate };
        assert_eq!(
            placed,
            [
                plain(0, false),
                plain(1, false),
                plain(0, true),
                plain(2, false)
            ]
        );
        assert_eq!(s.log_len(), 0, "placing changes nothing");
        for (from, seq) in [(1, 1), (2, 1), (1, 2)] {
            s.logged(from, seq);
        }
        assert_eq!(s.log_len(), 3);
        assert_eq!(
            s.place(&[(2, 1), (2, 2)]),
            [plain(1, true), plain(3, false)]
        );
    }

    /// Every interleaving of hellos, leaves and grace expiries over a few replicas keeps the
    /// invariants: one connection per replica, only issued replicas present, and a hello is
    /// answered exactly once (admitted, or still waiting).
    #[test]
    fn presence_invariants_hold_over_random_schedules() {
        use rand::{rngs::SmallRng, Rng, SeedableRng};
        for seed in 0..300u64 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut s: RoomState<u64, u64> = RoomState::new(HashMap::new(), 0);
            let mut next_conn = 0u64;
            let mut answered = 0u64;
            let mut waiting: Vec<(NodeId, u64)> = Vec::new();
            let admit = |s: &mut RoomState<u64, u64>, r: NodeId, conn: u64| {
                s.join(member(r), conn, conn);
            };
            for _ in 0..60 {
                match rng.gen_range(0..4) {
                    0 | 1 => {
                        next_conn += 1;
                        let conn = next_conn;
                        let token = match rng.gen_range(0..3) {
                            0 => None,
                            _ => Some(format!("t{}", rng.gen_range(1..5))),
                        };
                        match s.hello(token.as_deref()) {
                            Hello::Fresh => {
                                let r = fresh(&mut s);
                                admit(&mut s, r, conn);
                                answered += 1;
                            }
                            Hello::Resume(r) => {
                                admit(&mut s, r, conn);
                                answered += 1;
                            }
                            Hello::Wait(r) => {
                                s.wait(r, conn, conn);
                                waiting.push((r, conn));
                            }
                        }
                    }
                    2 => {
                        let present: Vec<(NodeId, u64)> =
                            s.members().map(|p| (p.member.replica, p.conn)).collect();
                        if present.is_empty() {
                            continue;
                        }
                        let (r, conn) = present[rng.gen_range(0..present.len())];
                        let (_, next) = s.leave(r, conn).expect("its current connection");
                        if let Some(conn) = next {
                            waiting.retain(|w| *w != (r, conn));
                            admit(&mut s, r, conn);
                            answered += 1;
                        }
                    }
                    _ => {
                        if waiting.is_empty() {
                            continue;
                        }
                        let (r, conn) = waiting.remove(rng.gen_range(0..waiting.len()));
                        let join = s.expire(r, conn).expect("it was waiting");
                        let r = fresh(&mut s);
                        admit(&mut s, r, join);
                        answered += 1;
                    }
                }
                let present: Vec<&Present<u64>> = s.members().collect();
                assert!(present.iter().all(|p| s.is_issued(p.member.replica)));
                let mut conns: Vec<u64> = present.iter().map(|p| p.conn).collect();
                conns.sort_unstable();
                conns.dedup();
                assert_eq!(
                    conns.len(),
                    present.len(),
                    "seed {seed}: a connection twice"
                );
                assert_eq!(
                    answered + waiting.len() as u64,
                    next_conn,
                    "seed {seed}: a hello lost or answered twice"
                );
            }
        }
    }
}
