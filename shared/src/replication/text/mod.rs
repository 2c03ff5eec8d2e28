//! # Replicated text: a YATA-family sequence CRDT with FugueMax ordering
//!
//! Implements the list CRDT of Nicolaescu, Jahns, Derntl and Klamma, *Near Real-Time Peer-to-Peer
//! Shared Editing on Extensible Data Types* (GROUP 2016, "YATA", the algorithm behind Yjs), with
//! the conflict rule that Weidner and Kleppmann, *The Art of the Fugue: Minimizing Interleaving in
//! Collaborative Text Editing* (2023), prove equivalent to FugueMax ("YjsMod"): two users typing
//! at the same place concurrently never see their runs interleaved character by character.
//!
//! **Guarantee (strong eventual consistency):** every character has a unique [`CharId`]
//! (replica, sequence number). Two replicas that have applied the same set of operations hold the
//! same text, whatever order the operations arrived in, provided each operation is applied after
//! the operations it depends on (its origins and delete targets) — which causal delivery
//! (`HoldBackQueue`) ensures. Deletes are tombstones, so concurrent and repeated deletes of a
//! character commute and are idempotent; a duplicate insert is recognised by its id and ignored.
//!
//! ## Positions
//! The traces and the core speak **Unicode scalar values** (`char`s); the browser speaks
//! **UTF-16 code units**. [`TextDoc`] keeps both counts in its position index, so the `_utf16`
//! methods cost the same O(log n) as the char ones, and every [`Patch`] reports both.
//!
//! ## Wire
//! A [`TextOp`] serialises (serde) to a short JSON array; consecutive keystrokes merge into one
//! op with [`TextOp::try_merge`] (typing "hello" in a row is one insert of `"hello"`), and an op
//! carries no vector clock: its causal dependencies are its origin ids.
//!
//! ```
//! use chronoscope::replication::text::TextDoc;
//! let mut alice = TextDoc::new(1);
//! let mut bob = TextDoc::new(2);
//! let hello = alice.insert(0, "hello").unwrap();
//! bob.apply_remote(&hello).unwrap();
//! // concurrent edits at the same place
//! let a = alice.insert(5, " alice").unwrap();
//! let b = bob.insert(5, " bob").unwrap();
//! alice.apply_remote(&b).unwrap();
//! bob.apply_remote(&a).unwrap();
//! assert_eq!(alice.text(), bob.text());
//! ```

mod doc;
mod fenwick;
mod op;

pub use doc::{SnapshotError, TextDoc, TextSnapshot, SNAPSHOT_VERSION};
pub use op::{map_caret_utf16, CharId, Patch, TextOp};

/// Why a text operation could not be applied. Nothing is changed when an error is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// A local edit named a position past the end of the text.
    #[error("position {pos} is past the end of the text (length {len})")]
    OutOfRange {
        /// The position asked for (in the unit of the call: chars or UTF-16 code units).
        pos: usize,
        /// The text's length in the same unit.
        len: usize,
    },
    /// A UTF-16 position fell between the two halves of a surrogate pair.
    #[error("utf-16 position {0} falls inside a surrogate pair")]
    SplitsSurrogatePair(usize),
    /// A remote operation refers to a character this replica has not seen: its causal
    /// predecessors must be delivered first.
    #[error("operation refers to unknown character {0}; deliver its causal predecessors first")]
    UnknownCharacter(CharId),
    /// A remote insert skips sequence numbers of its replica (an earlier insert is missing).
    #[error("insert from replica {replica} starts at seq {seq} but seq {expected} is next")]
    SeqGap {
        /// The inserting replica.
        replica: crate::NodeId,
        /// The first sequence number of the insert.
        seq: u32,
        /// The sequence number this replica expected next from it.
        expected: u32,
    },
    /// An insert without text, or a delete of nothing.
    #[error("empty operation")]
    Empty,
}
