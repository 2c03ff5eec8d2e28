//! The relay's durable store: one [redb](https://docs.rs/redb) database file under
//! `--data-dir`, holding every room's operation log and the replica ids it has handed out.
//!
//! Architecture invariant: [`Store::append`] returns only after its write transaction has
//! committed with redb's default `Durability::Immediate` (fsync), and the relay acknowledges an
//! operation only after `append` returned. So a `kill -9` at any point loses no acknowledged
//! operation: redb's commit is atomic, and an interrupted transaction is rolled back on reopen.
//!
//! Tables:
//! - `ops`: `(room, index) → JSON {from, seq, payload}` — the room's log, `index` from 0, dense.
//! - `replicas`: `(room, replica) → resume token` — the replicas that have an op in the log,
//!   written in the transaction that stores the replica's first op, so a token resumes its own
//!   id only, across restarts. A tab that never sent an op leaves no record: `hello`s alone do
//!   not grow the file.
//! - `issued`: `room → bound` — every replica id the room ever issued is below `bound`. Ids are
//!   reserved in blocks ([`REPLICA_BLOCK`]), one small overwrite per block, so ids are never
//!   reused (not even after a restart) while a stream of hellos writes O(1) bytes.
//!
//! The rooms reach the store through the [`RoomStore`] trait, so a test can put a store that
//! fails on purpose ([`Faulty`]) under the real room actors.

use std::{
    collections::HashMap,
    path::Path,
    sync::atomic::{AtomicU32, Ordering},
};

use chronoscope::{protocol::Payload, NodeId};
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};

const OPS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("ops");
const REPLICAS: TableDefinition<(&str, u32), &str> = TableDefinition::new("replicas");
const ISSUED: TableDefinition<&str, u32> = TableDefinition::new("issued");

/// How many replica ids a room reserves at a time (see the `issued` table).
pub const REPLICA_BLOCK: u32 = 64;

/// The file name of the database inside the data directory.
pub const DB_FILE: &str = "relay.redb";

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (open, transaction, commit, IO).
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    /// A stored record does not decode: the file was not written by this relay.
    #[error("stored operation {index} of room {room} is unreadable: {source}")]
    Corrupt {
        /// The room.
        room: String,
        /// The log index.
        index: u64,
        /// The decoding error.
        source: serde_json::Error,
    },
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db(e.into())
}

/// One stored operation: who sent it, their sequence number, and the opaque payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredOp {
    /// The sender's replica id, as stamped by the relay.
    pub from: NodeId,
    /// The sender's sequence number.
    pub seq: u64,
    /// The operation, opaque to the relay.
    pub payload: Payload,
}

/// Everything stored about one room.
#[derive(Debug, Default)]
pub struct RoomRecord {
    /// The log, in index order.
    pub ops: Vec<StoredOp>,
    /// Every replica with an op in the log, with its resume token.
    pub replicas: HashMap<NodeId, String>,
    /// Every replica id the room issued is below this (0 for a room never seen).
    pub issued_below: u32,
}

/// What a room needs from durable storage. Every method blocks on disk IO, so async callers
/// run it on the blocking pool.
pub trait RoomStore: Send + Sync + std::fmt::Debug + 'static {
    /// Read a room's whole record (empty for a room never seen).
    fn load_room(&self, room: &str) -> Result<RoomRecord, StoreError>;
    /// Append `ops` to `room`'s log at indices `first_index..`, and record `replicas` (the
    /// senders whose first ops these are, with their resume tokens), durably and atomically:
    /// when it returns `Ok` all of it is on disk, when it returns `Err` none of it is.
    fn append(
        &self,
        room: &str,
        first_index: u64,
        ops: &[StoredOp],
        replicas: &[(NodeId, String)],
    ) -> Result<(), StoreError>;
    /// Record, durably, that the room may issue replica ids below `bound`.
    fn reserve_replicas(&self, room: &str, bound: u32) -> Result<(), StoreError>;
}

impl RoomStore for Store {
    fn load_room(&self, room: &str) -> Result<RoomRecord, StoreError> {
        Store::load_room(self, room)
    }
    fn append(
        &self,
        room: &str,
        first_index: u64,
        ops: &[StoredOp],
        replicas: &[(NodeId, String)],
    ) -> Result<(), StoreError> {
        Store::append(self, room, first_index, ops, replicas)
    }
    fn reserve_replicas(&self, room: &str, bound: u32) -> Result<(), StoreError> {
        Store::reserve_replicas(self, room, bound)
    }
}

/// A real [`Store`] that fails on purpose: each `fail_*` counter makes that many of the next
/// calls of its kind return an IO error without touching the database (so a failed append
/// stores nothing, as redb's atomic commit guarantees for a real failure). For testing how
/// the relay recovers from a disk that fails now and then.
#[derive(Debug)]
pub struct Faulty {
    inner: Store,
    /// How many of the next loads fail.
    pub fail_loads: AtomicU32,
    /// How many of the next appends fail.
    pub fail_appends: AtomicU32,
    /// How many of the next replica-id reservations fail.
    pub fail_reserves: AtomicU32,
    /// How many appends were attempted (failed or not).
    pub appends: AtomicU32,
}

impl Faulty {
    /// Wrap a store; nothing fails until a counter is set.
    pub fn new(inner: Store) -> Faulty {
        Faulty {
            inner,
            fail_loads: AtomicU32::new(0),
            fail_appends: AtomicU32::new(0),
            fail_reserves: AtomicU32::new(0),
            appends: AtomicU32::new(0),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Store {
        &self.inner
    }

    fn trip(counter: &AtomicU32, what: &str) -> Result<(), StoreError> {
        let tripped = counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if tripped {
            let e = std::io::Error::other(format!("injected {what} failure"));
            return Err(StoreError::Db(redb::Error::Io(e)));
        }
        Ok(())
    }
}

impl RoomStore for Faulty {
    fn load_room(&self, room: &str) -> Result<RoomRecord, StoreError> {
        Self::trip(&self.fail_loads, "load")?;
        self.inner.load_room(room)
    }
    fn append(
        &self,
        room: &str,
        first_index: u64,
        ops: &[StoredOp],
        replicas: &[(NodeId, String)],
    ) -> Result<(), StoreError> {
        self.appends.fetch_add(1, Ordering::AcqRel);
        Self::trip(&self.fail_appends, "append")?;
        self.inner.append(room, first_index, ops, replicas)
    }
    fn reserve_replicas(&self, room: &str, bound: u32) -> Result<(), StoreError> {
        Self::trip(&self.fail_reserves, "reservation")?;
        self.inner.reserve_replicas(room, bound)
    }
}

/// The database. Cheap to share behind an `Arc`; every method blocks on disk IO, so async
/// callers run it on the blocking pool.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Open (or create) the database in `dir`. After an unclean stop redb repairs the file here.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db = Database::create(dir.join(DB_FILE)).map_err(db_err)?;
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(OPS).map_err(db_err)?;
        txn.open_table(REPLICAS).map_err(db_err)?;
        txn.open_table(ISSUED).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(Store { db })
    }

    /// Read a room's whole record (empty for a room never seen).
    pub fn load_room(&self, room: &str) -> Result<RoomRecord, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let ops_table = txn.open_table(OPS).map_err(db_err)?;
        let mut ops = Vec::new();
        for entry in ops_table
            .range((room, 0u64)..=(room, u64::MAX))
            .map_err(db_err)?
        {
            let (key, value) = entry.map_err(db_err)?;
            let index = key.value().1;
            debug_assert_eq!(index, ops.len() as u64, "the log is dense");
            let op =
                serde_json::from_slice(value.value()).map_err(|source| StoreError::Corrupt {
                    room: room.to_owned(),
                    index,
                    source,
                })?;
            ops.push(op);
        }
        let replica_table = txn.open_table(REPLICAS).map_err(db_err)?;
        let mut replicas = HashMap::new();
        for entry in replica_table
            .range((room, 0u32)..=(room, u32::MAX))
            .map_err(db_err)?
        {
            let (key, value) = entry.map_err(db_err)?;
            replicas.insert(key.value().1, value.value().to_owned());
        }
        let issued_below = txn
            .open_table(ISSUED)
            .map_err(db_err)?
            .get(room)
            .map_err(db_err)?
            .map_or(0, |v| v.value());
        Ok(RoomRecord {
            ops,
            replicas,
            issued_below,
        })
    }

    /// Append `ops` to `room`'s log at indices `first_index..` and record `replicas` with
    /// their tokens, durably, in one transaction.
    pub fn append(
        &self,
        room: &str,
        first_index: u64,
        ops: &[StoredOp],
        replicas: &[(NodeId, String)],
    ) -> Result<(), StoreError> {
        let started = std::time::Instant::now(); // `/metrics`: the commit latency
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = txn.open_table(OPS).map_err(db_err)?;
            for (i, op) in ops.iter().enumerate() {
                let bytes = serde_json::to_vec(op).expect("stored ops serialize");
                table
                    .insert((room, first_index + i as u64), bytes.as_slice())
                    .map_err(db_err)?;
            }
            let mut table = txn.open_table(REPLICAS).map_err(db_err)?;
            for (replica, token) in replicas {
                table
                    .insert((room, *replica), token.as_str())
                    .map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        crate::services::metrics::relay().committed(ops.len(), started.elapsed());
        Ok(())
    }

    /// Record, durably, that `room` may issue replica ids below `bound`.
    pub fn reserve_replicas(&self, room: &str, bound: u32) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(ISSUED)
            .map_err(db_err)?
            .insert(room, bound)
            .map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(())
    }

    /// How many replica records `room` holds on disk.
    pub fn replica_records(&self, room: &str) -> Result<usize, StoreError> {
        Ok(self.load_room(room)?.replicas.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("chronoscope-store-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn rooms_keep_their_own_logs_across_reopen() {
        let dir = scratch();
        let op = |from, seq| StoredOp {
            from,
            seq,
            payload: serde_json::json!({"k": seq}).into(),
        };
        {
            let s = Store::open(&dir).unwrap();
            s.append("a", 0, &[op(1, 1), op(2, 1)], &[(1, "t1".into())])
                .unwrap();
            s.append("ab", 0, &[op(3, 9)], &[]).unwrap();
            s.append("a", 2, &[op(1, 2)], &[(2, "t2".into())]).unwrap();
            s.reserve_replicas("a", 64).unwrap();
        }
        let s = Store::open(&dir).unwrap();
        let a = s.load_room("a").unwrap();
        assert_eq!(a.ops, vec![op(1, 1), op(2, 1), op(1, 2)]);
        assert_eq!(a.replicas.len(), 2);
        assert_eq!(a.replicas[&2], "t2");
        assert_eq!(a.issued_below, 64);
        assert_eq!(s.load_room("ab").unwrap().ops, vec![op(3, 9)]);
        assert_eq!(s.load_room("ab").unwrap().issued_below, 0);
        assert!(s.load_room("b").unwrap().ops.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
