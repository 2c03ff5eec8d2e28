//! One room of the relay: its members, its delay matrix and its durable operation log, owned
//! by a single actor task ([`spawn`]) that handles the room's commands one at a time.
//!
//! Architecture invariant: everything that changes a room goes through its actor, so the
//! order of the log, the acknowledgements, the catch-up a newcomer receives and the live
//! forwarding can never disagree — a newcomer's catch-up holds exactly the ops committed
//! before its join, and every later op reaches it live.
//!
//! Durability: ops waiting in the actor's queue are committed together in one redb write
//! transaction (group commit); an op is acknowledged, and forwarded, only after that commit.
//!
//! Delivery: each directed link `from → to` with a connected recipient has a *pipe* — a task
//! with a FIFO queue that releases each op at `received + delay + jitter`, but never before the
//! op ahead of it (so jitter adds delay without reordering the link, as over TCP). A cut link
//! holds its queue; on heal, everything overdue is released at once, in order. Pipes read the
//! link's settings live from a `watch` channel, so moving a slider affects ops already queued.
//! One pipe per link means a slow link never slows another.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use axum::extract::ws::Utf8Bytes;
use chronoscope::{
    protocol::{Link, Member, Payload, ServerFrame},
    NodeId,
};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use tokio::{
    sync::{mpsc, oneshot, watch},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use super::{
    store::{Store, StoredOp},
    tasks::Tasks,
};
use crate::Shutdown;

/// Frames on their way to one connection, already serialized.
pub(crate) type Outbox = mpsc::UnboundedSender<Utf8Bytes>;

/// Serialize a server frame once, for any number of sockets.
pub(crate) fn encode(frame: &ServerFrame) -> Utf8Bytes {
    serde_json::to_string(frame)
        .expect("server frames serialize")
        .into()
}

/// The most ops committed in one transaction.
const MAX_BATCH: usize = 1024;

/// What a connection asks of its room.
pub(crate) enum RoomCmd {
    /// A tab said hello.
    Join {
        /// Display name (validated).
        name: String,
        /// Display colour (validated).
        colour: String,
        /// Resume token, if any.
        resume: Option<String>,
        /// Identifies the connection, so a stale `Leave` cannot remove a newer one.
        conn: u64,
        /// Where the room writes to this tab.
        out: Outbox,
        /// The replica id, or why the join failed.
        reply: oneshot::Sender<Result<NodeId, String>>,
    },
    /// A tab's connection ended.
    Leave {
        /// Its replica id.
        replica: NodeId,
        /// Its connection.
        conn: u64,
    },
    /// An operation from a joined tab, already stamped with its sender.
    Op {
        /// The sender (from the connection's identity, never from the frame).
        from: NodeId,
        /// The sender's sequence number.
        seq: u64,
        /// The opaque operation.
        payload: Payload,
        /// When the relay received it; link delays count from here.
        at: Instant,
    },
    /// The grace period of a resume waiting for its replica's old connection ran out.
    ResumeExpired {
        /// The replica the resume asked for.
        replica: NodeId,
        /// The waiting connection.
        conn: u64,
    },
    /// A tab changed a link (already validated).
    SetLink {
        /// Who changed it, for the log.
        by: NodeId,
        /// The new settings.
        link: Link,
    },
}

/// How long a resume may wait for the old connection of its replica to go (a reloaded tab's
/// new socket can overtake the old one's close); after that the tab gets a fresh id.
const RESUME_GRACE: Duration = Duration::from_secs(3);

/// A hello the room has not answered yet.
struct PendingJoin {
    name: String,
    colour: String,
    conn: u64,
    out: Outbox,
    reply: oneshot::Sender<Result<NodeId, String>>,
}

/// A joined tab.
struct MemberState {
    member: Member,
    conn: u64,
    out: Outbox,
    /// Cancelled when the tab leaves: its incoming pipes stop.
    gone: CancellationToken,
}

/// An op travelling on a link.
struct InFlight {
    at: Instant,
    /// Where in `[0, 1)` of the link's jitter this op falls.
    jitter: f64,
    text: Utf8Bytes,
}

struct Room {
    name: String,
    store: Arc<Store>,
    /// The log, each op serialized once as its `ServerFrame::Op` frame.
    log: Vec<Utf8Bytes>,
    /// `(sender, seq) → index`: re-sent ops are recognised, not stored twice.
    ids: HashMap<(NodeId, u64), u64>,
    /// Every replica id issued in this room, with its resume token.
    tokens: HashMap<NodeId, String>,
    members: BTreeMap<NodeId, MemberState>,
    /// The delay matrix; every link a pipe or a tab has touched has a sender here.
    links: HashMap<(NodeId, NodeId), watch::Sender<Link>>,
    pipes: HashMap<(NodeId, NodeId), mpsc::UnboundedSender<InFlight>>,
    /// Resumes waiting for their replica's current connection to leave.
    waiting: HashMap<NodeId, Vec<PendingJoin>>,
    /// The room's own queue, for its timers (weak: it must not keep the room alive).
    me: mpsc::WeakUnboundedSender<RoomCmd>,
    /// Where the room's pipes and timers are spawned (tracked, panics counted).
    tasks: Tasks,
    rng: SmallRng,
}

/// Start the actor of room `name`: it loads the room from `store`, then serves commands
/// until `shutdown` fires.
pub(crate) fn spawn(
    name: String,
    store: Arc<Store>,
    shutdown: Shutdown,
    tasks: &Tasks,
) -> mpsc::UnboundedSender<RoomCmd> {
    let (tx, rx) = mpsc::unbounded_channel();
    tasks.spawn(
        "room",
        run(name, store, rx, tx.downgrade(), shutdown, tasks.clone()),
    );
    tx
}

async fn run(
    name: String,
    store: Arc<Store>,
    mut rx: mpsc::UnboundedReceiver<RoomCmd>,
    me: mpsc::WeakUnboundedSender<RoomCmd>,
    shutdown: Shutdown,
    tasks: Tasks,
) {
    let loaded = {
        let (store, name) = (store.clone(), name.clone());
        tokio::task::spawn_blocking(move || store.load_room(&name)).await
    };
    let record = match loaded {
        Ok(Ok(record)) => record,
        failure => {
            let why = match failure {
                Ok(Err(e)) => e.to_string(),
                _ => "loading panicked".to_owned(),
            };
            tracing::error!(room = %name, error = %why, "cannot load room");
            // Refuse every join; nothing else can arrive before a join succeeds.
            loop {
                let cmd = tokio::select! {
                    _ = shutdown.fired() => return,
                    cmd = rx.recv() => match cmd { Some(c) => c, None => return },
                };
                if let RoomCmd::Join { reply, .. } = cmd {
                    let _ = reply.send(Err(format!("room {name} is unavailable: {why}")));
                }
            }
        }
    };
    let mut room = Room {
        log: Vec::with_capacity(record.ops.len()),
        ids: HashMap::with_capacity(record.ops.len()),
        tokens: record.replicas,
        name,
        store,
        members: BTreeMap::new(),
        links: HashMap::new(),
        pipes: HashMap::new(),
        waiting: HashMap::new(),
        me,
        tasks,
        rng: SmallRng::from_entropy(),
    };
    for (index, op) in record.ops.into_iter().enumerate() {
        room.push_log(index as u64, op);
    }
    tracing::info!(room = %room.name, ops = room.log.len(), "room loaded");
    loop {
        let cmd = tokio::select! {
            _ = shutdown.fired() => break,
            cmd = rx.recv() => match cmd { Some(c) => c, None => break },
        };
        match cmd {
            RoomCmd::Op {
                from,
                seq,
                payload,
                at,
            } => {
                let mut batch = vec![(from, seq, payload, at)];
                let mut deferred = None;
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(RoomCmd::Op {
                            from,
                            seq,
                            payload,
                            at,
                        }) => batch.push((from, seq, payload, at)),
                        Ok(other) => {
                            deferred = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                room.commit(batch).await;
                if let Some(cmd) = deferred {
                    room.handle(cmd).await;
                }
            }
            other => room.handle(other).await,
        }
    }
}

impl Room {
    fn push_log(&mut self, index: u64, op: StoredOp) {
        debug_assert_eq!(index, self.log.len() as u64);
        self.ids.insert((op.from, op.seq), index);
        self.log.push(encode(&ServerFrame::Op {
            from: op.from,
            seq: op.seq,
            index,
            payload: op.payload,
        }));
    }

    async fn handle(&mut self, cmd: RoomCmd) {
        match cmd {
            RoomCmd::Join {
                name,
                colour,
                resume,
                conn,
                out,
                reply,
            } => {
                let pending = PendingJoin {
                    name,
                    colour,
                    conn,
                    out,
                    reply,
                };
                // A token names its own replica only: tokens are secret, 128 random bits.
                let asked = resume.and_then(|token| {
                    self.tokens
                        .iter()
                        .find(|(_, t)| **t == token)
                        .map(|(r, _)| *r)
                });
                match asked {
                    Some(r) if self.members.contains_key(&r) => {
                        // Never two connections on one replica: wait for the holder to go.
                        self.waiting.entry(r).or_default().push(pending);
                        let me = self.me.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(RESUME_GRACE).await;
                            if let Some(me) = me.upgrade() {
                                let _ = me.send(RoomCmd::ResumeExpired { replica: r, conn });
                            }
                        });
                    }
                    resumed => self.admit(pending, resumed).await,
                }
            }
            RoomCmd::Leave { replica, conn } => {
                if self.leave(replica, conn) {
                    let next = self.waiting.get_mut(&replica).filter(|q| !q.is_empty());
                    if let Some(pending) = next.map(|q| q.remove(0)) {
                        self.admit(pending, Some(replica)).await;
                    }
                }
            }
            RoomCmd::ResumeExpired { replica, conn } => {
                let queue = self.waiting.get_mut(&replica);
                let pos = queue
                    .as_ref()
                    .and_then(|q| q.iter().position(|p| p.conn == conn));
                if let (Some(q), Some(pos)) = (queue, pos) {
                    let pending = q.remove(pos);
                    tracing::info!(room = %self.name, replica, "resume refused: replica still connected");
                    self.admit(pending, None).await;
                }
            }
            RoomCmd::SetLink { by, link } => {
                tracing::info!(room = %self.name, by, ?link, "link changed");
                self.link(link.from, link.to).send_replace(link);
                self.broadcast_matrix();
            }
            RoomCmd::Op {
                from,
                seq,
                payload,
                at,
            } => self.commit(vec![(from, seq, payload, at)]).await,
        }
    }

    /// Answer a hello: as replica `resumed` (free by now), or as a fresh replica.
    async fn admit(&mut self, pending: PendingJoin, resumed: Option<NodeId>) {
        let PendingJoin {
            name,
            colour,
            conn,
            out,
            reply,
        } = pending;
        let result = self.join(name, colour, resumed, conn, out).await;
        let _ = reply.send(result);
    }

    async fn join(
        &mut self,
        name: String,
        colour: String,
        resumed: Option<NodeId>,
        conn: u64,
        out: Outbox,
    ) -> Result<NodeId, String> {
        debug_assert!(resumed.is_none_or(|r| !self.members.contains_key(&r)));
        let (replica, token) = match resumed {
            Some(r) => (r, self.tokens[&r].clone()),
            None => {
                let r = self.tokens.keys().max().map_or(1, |m| m + 1);
                let token = format!("{:032x}", rand::thread_rng().gen::<u128>());
                let (store, room, t) = (self.store.clone(), self.name.clone(), token.clone());
                match tokio::task::spawn_blocking(move || store.add_replica(&room, r, &t)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::error!(room = %self.name, error = %e, "cannot store replica");
                        return Err(format!("cannot register a replica: {e}"));
                    }
                    Err(_) => return Err("cannot register a replica".to_owned()),
                }
                self.tokens.insert(r, token.clone());
                (r, token)
            }
        };
        let member = Member {
            replica,
            name,
            colour,
        };
        tracing::info!(room = %self.name, replica, resumed = resumed.is_some(), "tab joined");
        let send = |f: &ServerFrame| {
            let _ = out.send(encode(f));
        };
        send(&ServerFrame::Welcome {
            replica,
            room: self.name.clone(),
            token,
            resumed: resumed.is_some(),
        });
        self.broadcast(&ServerFrame::Joined {
            member: member.clone(),
        });
        self.members.insert(
            replica,
            MemberState {
                member,
                conn,
                out: out.clone(),
                gone: CancellationToken::new(),
            },
        );
        send(&ServerFrame::Presence {
            members: self.members.values().map(|m| m.member.clone()).collect(),
        });
        send(&ServerFrame::Matrix {
            links: self.matrix(),
        });
        for op in &self.log {
            let _ = out.send(op.clone());
        }
        send(&ServerFrame::CaughtUp {
            ops: self.log.len() as u64,
        });
        Ok(replica)
    }

    /// Remove the member if `conn` is its current connection; returns whether it was.
    fn leave(&mut self, replica: NodeId, conn: u64) -> bool {
        if self.members.get(&replica).is_none_or(|m| m.conn != conn) {
            return false;
        }
        let gone = self.members.remove(&replica).expect("checked above");
        gone.gone.cancel();
        self.pipes.retain(|(_, to), _| *to != replica);
        tracing::info!(room = %self.name, replica, "tab left");
        self.broadcast(&ServerFrame::Left { replica });
        true
    }

    /// Commit a batch of ops in one transaction, then acknowledge and forward them.
    async fn commit(&mut self, batch: Vec<(NodeId, u64, Payload, Instant)>) {
        let first = self.log.len() as u64;
        let mut fresh: Vec<StoredOp> = Vec::new();
        let mut at = Vec::new();
        // (sender, seq, index, duplicate)
        let mut acks: Vec<(NodeId, u64, u64, bool)> = Vec::new();
        let mut in_batch: HashMap<(NodeId, u64), u64> = HashMap::new();
        for (from, seq, payload, received) in batch {
            if let Some(&index) = self.ids.get(&(from, seq)).or(in_batch.get(&(from, seq))) {
                acks.push((from, seq, index, true));
                continue;
            }
            let index = first + fresh.len() as u64;
            in_batch.insert((from, seq), index);
            acks.push((from, seq, index, false));
            fresh.push(StoredOp { from, seq, payload });
            at.push(received);
        }
        if !fresh.is_empty() {
            let (store, room) = (self.store.clone(), self.name.clone());
            let written = tokio::task::spawn_blocking(move || {
                store.append(&room, first, &fresh).map(|()| fresh)
            })
            .await;
            match written {
                Ok(Ok(ops)) => {
                    for ((index, op), received) in (first..).zip(ops).zip(at) {
                        let from = op.from;
                        self.push_log(index, op);
                        self.forward(from, index, received);
                    }
                }
                failure => {
                    let why = match failure {
                        Ok(Err(e)) => e.to_string(),
                        _ => "the write panicked".to_owned(),
                    };
                    tracing::error!(room = %self.name, error = %why, "cannot store ops");
                    for (from, seq, _, duplicate) in acks {
                        let message = if duplicate {
                            continue;
                        } else {
                            format!("op {seq} not stored ({why}); send it again later")
                        };
                        self.send_to(from, &ServerFrame::Error { message });
                    }
                    return;
                }
            }
        }
        for (from, seq, index, duplicate) in acks {
            self.send_to(
                from,
                &ServerFrame::Ack {
                    seq,
                    index,
                    duplicate,
                },
            );
        }
    }

    /// Put log entry `index`, sent by `from`, on the pipe to every other member.
    fn forward(&mut self, from: NodeId, index: u64, at: Instant) {
        let recipients: Vec<NodeId> = self
            .members
            .keys()
            .copied()
            .filter(|r| *r != from)
            .collect();
        for to in recipients {
            let item = InFlight {
                at,
                jitter: self.rng.gen::<f64>(),
                text: self.log[index as usize].clone(),
            };
            let _ = self.pipe(from, to).send(item);
        }
    }

    fn pipe(&mut self, from: NodeId, to: NodeId) -> mpsc::UnboundedSender<InFlight> {
        if let Some(p) = self.pipes.get(&(from, to)) {
            return p.clone();
        }
        let config = self.link(from, to).subscribe();
        let member = &self.members[&to];
        let (tx, rx) = mpsc::unbounded_channel();
        self.tasks.spawn(
            "pipe",
            pipe(rx, config, member.out.clone(), member.gone.clone()),
        );
        self.pipes.insert((from, to), tx.clone());
        tx
    }

    fn link(&mut self, from: NodeId, to: NodeId) -> &watch::Sender<Link> {
        self.links.entry((from, to)).or_insert_with(|| {
            watch::Sender::new(Link {
                from,
                to,
                delay_ms: 0,
                jitter_ms: 0,
                cut: false,
            })
        })
    }

    fn matrix(&self) -> Vec<Link> {
        let mut links: Vec<Link> = self
            .links
            .values()
            .map(|l| *l.borrow())
            .filter(|l| !l.is_default())
            .collect();
        links.sort_by_key(|l| (l.from, l.to));
        links
    }

    fn broadcast_matrix(&self) {
        self.broadcast(&ServerFrame::Matrix {
            links: self.matrix(),
        });
    }

    fn broadcast(&self, frame: &ServerFrame) {
        let text = encode(frame);
        for m in self.members.values() {
            let _ = m.out.send(text.clone());
        }
    }

    fn send_to(&self, replica: NodeId, frame: &ServerFrame) {
        if let Some(m) = self.members.get(&replica) {
            let _ = m.out.send(encode(frame));
        }
    }
}

/// Deliver one link's ops in FIFO order, each no earlier than its due time, holding them all
/// while the link is cut.
async fn pipe(
    mut queue: mpsc::UnboundedReceiver<InFlight>,
    mut config: watch::Receiver<Link>,
    out: Outbox,
    gone: CancellationToken,
) {
    // Due time of the op delivered last: the next one never goes before it.
    let mut last_due: Option<Instant> = None;
    loop {
        let item = tokio::select! {
            _ = gone.cancelled() => return,
            item = queue.recv() => match item { Some(i) => i, None => return },
        };
        loop {
            let link = *config.borrow_and_update();
            if link.cut {
                tokio::select! {
                    _ = gone.cancelled() => return,
                    changed = config.changed() => if changed.is_err() { return },
                }
                continue;
            }
            let extra = item.jitter * f64::from(link.jitter_ms);
            let mut due = item.at
                + Duration::from_millis(u64::from(link.delay_ms))
                + Duration::from_secs_f64(extra / 1000.0);
            if let Some(last) = last_due {
                due = due.max(last);
            }
            if due <= Instant::now() {
                last_due = Some(due);
                break;
            }
            tokio::select! {
                _ = gone.cancelled() => return,
                _ = tokio::time::sleep_until(due) => {
                    last_due = Some(due);
                    break;
                }
                changed = config.changed() => if changed.is_err() { return },
            }
        }
        if out.send(item.text).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    //! The pipe's schedule on tokio's paused clock: exact, deterministic times.
    use super::*;

    fn link(delay_ms: u32, jitter_ms: u32, cut: bool) -> Link {
        Link {
            from: 1,
            to: 2,
            delay_ms,
            jitter_ms,
            cut,
        }
    }

    struct Harness {
        queue: mpsc::UnboundedSender<InFlight>,
        config: watch::Sender<Link>,
        out: mpsc::UnboundedReceiver<Utf8Bytes>,
        start: Instant,
    }

    fn harness(l: Link) -> Harness {
        let (queue, rx) = mpsc::unbounded_channel();
        let config = watch::Sender::new(l);
        let (out_tx, out) = mpsc::unbounded_channel();
        tokio::spawn(pipe(
            rx,
            config.subscribe(),
            out_tx,
            CancellationToken::new(),
        ));
        Harness {
            queue,
            config,
            out,
            start: Instant::now(),
        }
    }

    impl Harness {
        fn send(&self, name: &str, jitter: f64) {
            let item = InFlight {
                at: Instant::now(),
                jitter,
                text: name.to_owned().into(),
            };
            self.queue.send(item).unwrap();
        }
        /// The next delivery and its time since the start, in ms.
        async fn recv(&mut self) -> (String, u128) {
            let text = self.out.recv().await.unwrap();
            (text.as_str().to_owned(), self.start.elapsed().as_millis())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_delayed_link_delivers_exactly_at_its_delay() {
        let mut h = harness(link(300, 0, false));
        h.send("a", 0.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        h.send("b", 0.0);
        assert_eq!(h.recv().await, ("a".into(), 300));
        assert_eq!(h.recv().await, ("b".into(), 400));
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_delays_but_never_reorders() {
        let mut h = harness(link(100, 200, false));
        h.send("a", 0.9); // due at 280
        h.send("b", 0.0); // due at 100, but waits for a
        tokio::time::sleep(Duration::from_millis(10)).await;
        h.send("c", 0.5); // due at 210, but waits for a
        assert_eq!(h.recv().await, ("a".into(), 280));
        assert_eq!(h.recv().await, ("b".into(), 280));
        assert_eq!(h.recv().await, ("c".into(), 280));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_link_holds_until_healed_then_flushes_in_order() {
        let mut h = harness(link(50, 0, true));
        for name in ["a", "b", "c"] {
            h.send(name, 0.0);
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(h.out.try_recv().is_err(), "a cut link delivers nothing");
        h.config.send_replace(link(50, 0, false));
        for name in ["a", "b", "c"] {
            assert_eq!(h.recv().await, (name.into(), 1000));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn moving_the_slider_reschedules_queued_ops() {
        let mut h = harness(link(5000, 0, false));
        h.send("a", 0.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        h.config.send_replace(link(200, 0, false));
        assert_eq!(h.recv().await, ("a".into(), 200));
    }
}
