//! One room of the relay: its members, its delay matrix and its durable operation log, owned
//! by a single actor task ([`spawn`]) that handles the room's commands one at a time.
//!
//! Architecture invariant: everything that changes a room goes through its actor, so the
//! order of the log, the acknowledgements, the catch-up a newcomer receives and the live
//! forwarding can never disagree — a newcomer's catch-up holds exactly the ops committed
//! before its join, and every later op reaches it live.
//!
//! Lifetime: the actor starts at a hello and ends when the room has had no tab for
//! [`ROOM_IDLE`] (or its load failed), freeing the room's memory; it first leaves the relay's
//! rooms and answers any hello still queued, which the connection then sends to a new actor.
//!
//! Durability: ops waiting in the actor's queue are committed together in one redb write
//! transaction (group commit); an op is acknowledged, and forwarded, only after that commit.
//! A commit that fails stores none of its ops (redb commits atomically), and the room closes
//! the connection of every tab that had an op in it (code 1011, the reason says so), and drops
//! that tab's later ops still queued on the same connection: storing them would put a gap in
//! the tab's sequence that every other tab's hold-back queue would stack its later ops behind.
//! The tab reconnects, resumes its replica id and re-sends every op not acknowledged, in
//! order: nothing is lost and, since the log refuses a `(sender, seq)` twice, nothing is stored
//! twice.
//!
//! Delivery: each directed link `from → to` with a connected recipient has a [`pipe`] that
//! releases its ops at their due times, in order.
//!
//! The rules — who is present, which ids and tokens were issued, where a resume waits, the
//! delay matrix, where an op goes in the log — live in the pure [`state::RoomState`]; this
//! actor owns it and does the IO it decides on (the store, the sockets, the pipes, the timers).

mod pipe;
pub(crate) mod state;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
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

use self::{
    pipe::{pipe, InFlight},
    state::{Hello, RoomState},
};
use super::{
    outbox::{Outbox, CLOSE_NOT_STORED},
    store::{RoomStore, StoredOp},
    tasks::Tasks,
};
use crate::Shutdown;

/// Serialize a server frame once, for any number of sockets.
pub(crate) fn encode(frame: &ServerFrame) -> Utf8Bytes {
    serde_json::to_string(frame)
        .expect("server frames serialize")
        .into()
}

/// The most ops committed in one transaction.
const MAX_BATCH: usize = 1024;

/// Why a room did not take a hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JoinRefused {
    /// The room was unloading as the hello arrived: send it to the room's next actor.
    Unloaded,
    /// The room cannot take it (its load or the replica's registration failed).
    Failed(String),
}

/// The relay's loaded rooms, by name: each one's actor.
pub(crate) type Rooms = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<RoomCmd>>>>;

/// How long a room with no tab in it (present or waiting to resume) stays loaded; then its
/// actor ends and its memory (log, index, tokens, matrix) is freed. The next hello loads it
/// again from the store.
pub(crate) const ROOM_IDLE: Duration = Duration::from_secs(300);

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
        reply: oneshot::Sender<Result<NodeId, JoinRefused>>,
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
    reply: oneshot::Sender<Result<NodeId, JoinRefused>>,
}

/// How the actor reaches a present tab.
struct Conn {
    /// Its outbox.
    out: Outbox,
    /// Cancelled when the tab leaves: its incoming pipes stop.
    gone: CancellationToken,
}

struct Room {
    name: String,
    store: Arc<dyn RoomStore>,
    /// Replicas, presence, waiting resumes, the delay matrix and the log index.
    state: RoomState<Conn, PendingJoin>,
    /// The log, each op serialized once as its `ServerFrame::Op` frame.
    log: Vec<Utf8Bytes>,
    /// The live settings of each link that has a pipe (its pipe watches them).
    links: HashMap<(NodeId, NodeId), watch::Sender<Link>>,
    /// Each link's pipe, while its recipient is present.
    pipes: HashMap<(NodeId, NodeId), mpsc::UnboundedSender<InFlight>>,
    /// The room's own queue, for its timers (weak: it must not keep the room alive).
    me: mpsc::WeakUnboundedSender<RoomCmd>,
    /// Where the room's pipes are spawned (tracked, panics counted).
    tasks: Tasks,
    rng: SmallRng,
    /// Present replicas whose connection the room closed because an op of theirs was not
    /// stored: their ops still queued from that connection are dropped, unacknowledged (the
    /// tab re-sends them after it resumes). Cleared when the connection leaves.
    broken: HashSet<NodeId>,
}

/// Start the actor of room `name`, registered in `rooms` (`registry`, locked by the caller):
/// it loads the room from `store`, then serves commands until `shutdown` fires or the room
/// has been empty for [`ROOM_IDLE`]. A failed load ends the actor too, so the next hello
/// tries the load again.
pub(crate) fn spawn(
    name: String,
    store: Arc<dyn RoomStore>,
    shutdown: Shutdown,
    tasks: &Tasks,
    rooms: &mut HashMap<String, mpsc::UnboundedSender<RoomCmd>>,
    registry: Rooms,
) -> mpsc::UnboundedSender<RoomCmd> {
    let (tx, rx) = mpsc::unbounded_channel();
    rooms.insert(name.clone(), tx.clone());
    let actor = Actor {
        name,
        rx,
        me: tx.downgrade(),
        rooms: registry,
    };
    tasks.spawn("room", run(actor, store, shutdown, tasks.clone()));
    tx
}

/// The actor's own handles: its queue and its entry in the relay's rooms.
struct Actor {
    name: String,
    rx: mpsc::UnboundedReceiver<RoomCmd>,
    me: mpsc::WeakUnboundedSender<RoomCmd>,
    rooms: Rooms,
}

impl Actor {
    /// Leave the relay's rooms (if the entry is still this actor's) and answer every hello
    /// still queued with `refusal`, so none is lost.
    async fn retire(mut self, refusal: JoinRefused) {
        {
            let mut rooms = self.rooms.lock().expect("relay lock poisoned");
            let mine = match (rooms.get(&self.name), self.me.upgrade()) {
                (Some(tx), Some(me)) => tx.same_channel(&me),
                _ => false,
            };
            if mine {
                rooms.remove(&self.name);
            }
        }
        self.rx.close();
        while let Some(cmd) = self.rx.recv().await {
            // Nobody is joined, so only hellos (and stale leaves or timers) can be queued.
            if let RoomCmd::Join { reply, .. } = cmd {
                let _ = reply.send(Err(refusal.clone()));
            }
        }
    }
}

async fn run(mut actor: Actor, store: Arc<dyn RoomStore>, shutdown: Shutdown, tasks: Tasks) {
    let name = actor.name.clone();
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
            let why = format!("room {name} is unavailable: {why}; say hello again to retry");
            actor.retire(JoinRefused::Failed(why)).await;
            return;
        }
    };
    let me = actor.me.clone();
    let mut room = Room {
        log: Vec::with_capacity(record.ops.len()),
        state: RoomState::new(record.replicas, record.issued_below),
        name,
        store,
        links: HashMap::new(),
        pipes: HashMap::new(),
        me,
        tasks,
        rng: SmallRng::from_entropy(),
        broken: HashSet::new(),
    };
    for op in record.ops {
        room.push_log(op);
    }
    tracing::info!(room = %room.name, ops = room.log.len(), "room loaded");
    let rx = &mut actor.rx;
    // Since when the room has had no tab, present or waiting.
    let mut idle_since = Some(Instant::now());
    loop {
        let cmd = tokio::select! {
            _ = shutdown.fired() => break,
            _ = tokio::time::sleep_until(idle_since.unwrap_or_else(Instant::now) + ROOM_IDLE),
                if idle_since.is_some() => {
                tracing::info!(room = %room.name, "room idle: unloading");
                drop(room);
                actor.retire(JoinRefused::Unloaded).await;
                return;
            }
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
        idle_since = match (room.state.is_empty(), idle_since) {
            (true, None) => Some(Instant::now()),
            (true, since) => since,
            (false, _) => None,
        };
    }
}

impl Room {
    /// Append a stored op to the log (and its index); returns its index.
    fn push_log(&mut self, op: StoredOp) -> u64 {
        let index = self.state.logged(op.from, op.seq);
        debug_assert_eq!(index, self.log.len() as u64);
        self.log.push(encode(&ServerFrame::Op {
            from: op.from,
            seq: op.seq,
            index,
            payload: op.payload,
        }));
        index
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
                match self.state.hello(resume.as_deref()) {
                    Hello::Wait(r) => {
                        // Never two connections on one replica: wait for the holder to go.
                        self.state.wait(r, conn, pending);
                        let me = self.me.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(RESUME_GRACE).await;
                            if let Some(me) = me.upgrade() {
                                let _ = me.send(RoomCmd::ResumeExpired { replica: r, conn });
                            }
                        });
                    }
                    Hello::Resume(r) => self.admit(pending, Some(r)).await,
                    Hello::Fresh => self.admit(pending, None).await,
                }
            }
            RoomCmd::Leave { replica, conn } => {
                if let Some((gone, next)) = self.state.leave(replica, conn) {
                    gone.io.gone.cancel();
                    self.broken.remove(&replica);
                    self.pipes.retain(|(_, to), _| *to != replica);
                    self.links.retain(|(_, to), _| *to != replica);
                    tracing::info!(room = %self.name, replica, "tab left");
                    self.broadcast(&ServerFrame::Left { replica });
                    if let Some(pending) = next {
                        self.admit(pending, Some(replica)).await;
                    }
                }
            }
            RoomCmd::ResumeExpired { replica, conn } => {
                if let Some(pending) = self.state.expire(replica, conn) {
                    tracing::info!(room = %self.name, replica, "resume refused: replica still connected");
                    self.admit(pending, None).await;
                }
            }
            RoomCmd::SetLink { by, link } => {
                if let Err(e) = self.state.set_link(link) {
                    let message = format!("link refused: {e}");
                    return self.send_to(by, &ServerFrame::Error { message });
                }
                tracing::info!(room = %self.name, by, ?link, "link changed");
                if let Some(live) = self.links.get(&(link.from, link.to)) {
                    live.send_replace(link);
                }
                self.broadcast(&ServerFrame::Matrix {
                    links: self.state.matrix(),
                });
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
        let _ = reply.send(result.map_err(JoinRefused::Failed));
    }

    async fn join(
        &mut self,
        name: String,
        colour: String,
        resumed: Option<NodeId>,
        conn: u64,
        out: Outbox,
    ) -> Result<NodeId, String> {
        let replica = match resumed {
            Some(r) => r,
            None => {
                let Some(r) = self.state.next_replica() else {
                    return Err("this room has issued every replica id there is".to_owned());
                };
                if let Some(bound) = self.state.reservation(r) {
                    let (store, room) = (self.store.clone(), self.name.clone());
                    match tokio::task::spawn_blocking(move || store.reserve_replicas(&room, bound))
                        .await
                    {
                        Ok(Ok(())) => self.state.reserved(bound),
                        Ok(Err(e)) => {
                            tracing::error!(room = %self.name, error = %e, "cannot reserve replica ids");
                            return Err(format!("cannot register a replica: {e}"));
                        }
                        Err(_) => return Err("cannot register a replica".to_owned()),
                    }
                }
                // The token reaches the store with the replica's first op (see `commit`).
                let token = format!("{:032x}", rand::thread_rng().gen::<u128>());
                self.state.issued(r, token);
                r
            }
        };
        let token = self
            .state
            .token(replica)
            .expect("a joining replica was issued")
            .to_owned();
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
        let io = Conn {
            out: out.clone(),
            gone: CancellationToken::new(),
        };
        self.state.join(member, conn, io);
        send(&ServerFrame::Presence {
            members: self.state.presence(),
        });
        send(&ServerFrame::Matrix {
            links: self.state.matrix(),
        });
        for op in &self.log {
            out.send_catch_up(op.clone());
        }
        send(&ServerFrame::CaughtUp {
            ops: self.log.len() as u64,
        });
        Ok(replica)
    }

    /// Commit a batch of ops in one transaction, then acknowledge and forward them. Ops from a
    /// connection the room has closed (see `broken`) are dropped unacknowledged.
    async fn commit(&mut self, mut batch: Vec<(NodeId, u64, Payload, Instant)>) {
        batch.retain(|(from, ..)| !self.broken.contains(from));
        let ids: Vec<(NodeId, u64)> = batch.iter().map(|(f, s, _, _)| (*f, *s)).collect();
        let placed = self.state.place(&ids);
        let first = self.state.log_len();
        let mut fresh: Vec<StoredOp> = Vec::new();
        let mut at = Vec::new();
        for ((from, seq, payload, received), p) in batch.into_iter().zip(&placed) {
            if !p.duplicate {
                fresh.push(StoredOp { from, seq, payload });
                at.push(received);
            }
        }
        if !fresh.is_empty() {
            let (store, room) = (self.store.clone(), self.name.clone());
            // Senders whose first op this is: their tokens go into the same transaction.
            let replicas = self.state.unstored(fresh.iter().map(|op| op.from));
            let recorded: Vec<NodeId> = replicas.iter().map(|(r, _)| *r).collect();
            let written = tokio::task::spawn_blocking(move || {
                store
                    .append(&room, first, &fresh, &replicas)
                    .map(|()| fresh)
            })
            .await;
            match written {
                Ok(Ok(ops)) => {
                    self.state.recorded(recorded);
                    for (op, received) in ops.into_iter().zip(at) {
                        let from = op.from;
                        let index = self.push_log(op);
                        self.forward(from, index, received);
                    }
                }
                failure => {
                    let why = match failure {
                        Ok(Err(e)) => e.to_string(),
                        _ => "the write panicked".to_owned(),
                    };
                    tracing::error!(room = %self.name, error = %why, "cannot store ops");
                    self.not_stored(&ids, &placed, &why);
                }
            }
        }
        for ((from, seq), p) in ids.into_iter().zip(placed) {
            if self.broken.contains(&from) {
                continue;
            }
            self.send_to(
                from,
                &ServerFrame::Ack {
                    seq,
                    index: p.index,
                    duplicate: p.duplicate,
                },
            );
        }
    }

    /// A commit failed: close the connection of every sender of a fresh op in it, so that
    /// none of its later ops is stored behind the gap; it resumes and re-sends them all.
    fn not_stored(&mut self, ids: &[(NodeId, u64)], placed: &[state::Placed], why: &str) {
        for (&(from, seq), p) in ids.iter().zip(placed) {
            // A sender that already left re-sends on its next hello anyway.
            let Some(member) = self.state.member(from) else {
                continue;
            };
            if p.duplicate || self.broken.contains(&from) {
                continue;
            }
            member.io.out.close(
                CLOSE_NOT_STORED,
                format!("op {seq} was not stored ({why}); reconnect to send it again"),
            );
            self.broken.insert(from);
        }
    }

    /// Put log entry `index`, sent by `from`, on the pipe to every other member.
    fn forward(&mut self, from: NodeId, index: u64, at: Instant) {
        let recipients: Vec<NodeId> = self
            .state
            .members()
            .map(|p| p.member.replica)
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

    /// The pipe of link `from → to` (its recipient present), started on first use.
    fn pipe(&mut self, from: NodeId, to: NodeId) -> mpsc::UnboundedSender<InFlight> {
        if let Some(p) = self.pipes.get(&(from, to)) {
            return p.clone();
        }
        let settings = self.state.link(from, to);
        let config = self
            .links
            .entry((from, to))
            .or_insert_with(|| watch::Sender::new(settings))
            .subscribe();
        let conn = &self.state.member(to).expect("pipes go to present tabs").io;
        let (tx, rx) = mpsc::unbounded_channel();
        self.tasks.spawn(
            "pipe",
            pipe(rx, config, conn.out.clone(), conn.gone.clone()),
        );
        self.pipes.insert((from, to), tx.clone());
        tx
    }

    fn broadcast(&self, frame: &ServerFrame) {
        let text = encode(frame);
        for p in self.state.members() {
            let _ = p.io.out.send(text.clone());
        }
    }

    fn send_to(&self, replica: NodeId, frame: &ServerFrame) {
        if let Some(p) = self.state.member(replica) {
            let _ = p.io.out.send(encode(frame));
        }
    }
}
