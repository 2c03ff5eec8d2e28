//! Operations (what travels between replicas), their compact wire form, and patches (what a
//! view must do to its copy of the text).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// The unique, immutable identity of one inserted character: the replica that typed it and
/// that replica's count of characters inserted before it (so one replica's characters are
/// numbered 0, 1, 2, … and a run of typing is a contiguous range of ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CharId {
    /// The inserting replica.
    pub replica: NodeId,
    /// The replica's sequence number of this character.
    pub seq: u32,
}

impl fmt::Display for CharId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.replica, self.seq)
    }
}

/// One replicated edit. An insert places a run of characters (ids `id.seq ..`, contiguous)
/// between two existing ones; a delete tombstones a run of ids of one replica.
///
/// On the wire (serde) an insert is the JSON array `[replica, seq, "text", left, right]` with
/// each origin `[replica, seq]` or `null`, and a delete is `[replica, seq, len]`: typing
/// `"hello"` in a row, merged with [`TextOp::try_merge`], is one ~30-byte op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WireOp", try_from = "WireOp")]
pub enum TextOp {
    /// Insert `text` with ids `id`, `id + 1`, … between `origin_left` and `origin_right`.
    Insert {
        /// The id of the first inserted character.
        id: CharId,
        /// The character immediately left of the insertion point when it was made (`None`: the
        /// start of the text).
        origin_left: Option<CharId>,
        /// The character (possibly deleted) immediately right of it (`None`: the end).
        origin_right: Option<CharId>,
        /// The inserted characters (at least one).
        text: String,
    },
    /// Delete the characters with ids `target`, `target + 1`, …, `target + len - 1`.
    Delete {
        /// The first deleted character.
        target: CharId,
        /// How many consecutive ids of `target.replica` are deleted (at least one).
        len: u32,
    },
}

impl TextOp {
    /// Appends `next` to this op when the pair is one run of typing (or of deleting, forwards or
    /// backwards), so a batch of keystrokes travels as one op. Returns whether it merged; when it
    /// did not, `self` is unchanged.
    pub fn try_merge(&mut self, next: &TextOp) -> bool {
        match (self, next) {
            (
                this @ TextOp::Insert { .. },
                TextOp::Insert {
                    id,
                    origin_left,
                    origin_right,
                    text,
                },
            ) => this.try_extend_insert(*id, *origin_left, *origin_right, text),
            (
                TextOp::Delete { target, len },
                TextOp::Delete {
                    target: nt,
                    len: nlen,
                },
            ) if nt.replica == target.replica => {
                if nt.seq == target.seq + *len {
                    *len += nlen;
                    true
                } else if nt.seq + nlen == target.seq {
                    target.seq = nt.seq;
                    *len += nlen;
                    true
                } else {
                    false
                }
            }
            _ => false,
        }
    }

    /// [`TextOp::try_merge`] of an insert given by its parts (so the caller need not allocate
    /// its text): appends `ntext` when this is an insert whose run it continues.
    pub(crate) fn try_extend_insert(
        &mut self,
        nid: CharId,
        nleft: Option<CharId>,
        nright: Option<CharId>,
        ntext: &str,
    ) -> bool {
        let TextOp::Insert {
            id,
            origin_right,
            text,
            ..
        } = self
        else {
            return false;
        };
        if nid.replica != id.replica
            || nright != *origin_right
            || nleft.is_none_or(|l| l.replica != id.replica || l.seq + 1 != nid.seq)
        {
            return false;
        }
        let n = if text.is_ascii() {
            text.len()
        } else {
            text.chars().count()
        } as u32;
        if nid.seq == id.seq + n {
            text.push_str(ntext);
            true
        } else {
            false
        }
    }

    /// How many characters this op inserts or deletes.
    pub fn len_chars(&self) -> usize {
        match self {
            TextOp::Insert { text, .. } => text.chars().count(),
            TextOp::Delete { len, .. } => *len as usize,
        }
    }
}

/// The compact serde form of [`TextOp`] (an untagged JSON array).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum WireOp {
    Insert(
        NodeId,
        u32,
        String,
        Option<(NodeId, u32)>,
        Option<(NodeId, u32)>,
    ),
    Delete(NodeId, u32, u32),
}

impl From<TextOp> for WireOp {
    fn from(op: TextOp) -> Self {
        let pair = |c: CharId| (c.replica, c.seq);
        match op {
            TextOp::Insert {
                id,
                origin_left,
                origin_right,
                text,
            } => WireOp::Insert(
                id.replica,
                id.seq,
                text,
                origin_left.map(pair),
                origin_right.map(pair),
            ),
            TextOp::Delete { target, len } => WireOp::Delete(target.replica, target.seq, len),
        }
    }
}

impl TryFrom<WireOp> for TextOp {
    type Error = String;

    fn try_from(w: WireOp) -> Result<Self, String> {
        let id = |(replica, seq)| CharId { replica, seq };
        match w {
            WireOp::Insert(replica, seq, text, l, r) => {
                let n = text.chars().count() as u64;
                if n == 0 || u64::from(seq) + n > u64::from(u32::MAX) {
                    return Err("insert needs 1..2^32 characters of text".into());
                }
                Ok(TextOp::Insert {
                    id: CharId { replica, seq },
                    origin_left: l.map(id),
                    origin_right: r.map(id),
                    text,
                })
            }
            WireOp::Delete(replica, seq, len) => {
                if len == 0 || u64::from(seq) + u64::from(len) > u64::from(u32::MAX) {
                    return Err("delete needs 1..2^32 characters".into());
                }
                Ok(TextOp::Delete {
                    target: CharId { replica, seq },
                    len,
                })
            }
        }
    }
}

/// What applying an operation did to the visible text, in both position units, so a view (a
/// browser text area) can update its copy and move its caret without re-reading the document.
/// Patches from one call apply in order, each to the text left by the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patch {
    /// Text was inserted at a position.
    Insert {
        /// Position in chars (Unicode scalar values).
        pos: usize,
        /// Position in UTF-16 code units.
        pos_utf16: usize,
        /// Inserted length in chars.
        len: usize,
        /// Inserted length in UTF-16 code units.
        len_utf16: usize,
    },
    /// Text was removed at a position.
    Delete {
        /// Position in chars.
        pos: usize,
        /// Position in UTF-16 code units.
        pos_utf16: usize,
        /// Removed length in chars.
        len: usize,
        /// Removed length in UTF-16 code units.
        len_utf16: usize,
    },
}

impl Patch {
    /// Where a UTF-16 caret (or selection end) at `caret` ends up after this patch: an insert
    /// strictly before the caret moves it right; an insert exactly at the caret leaves it in
    /// front of the new text; a delete before it moves it left, one around it moves it to the
    /// start of the deletion.
    pub fn map_caret_utf16(&self, caret: usize) -> usize {
        match *self {
            Patch::Insert {
                pos_utf16,
                len_utf16,
                ..
            } => {
                if pos_utf16 < caret {
                    caret + len_utf16
                } else {
                    caret
                }
            }
            Patch::Delete {
                pos_utf16,
                len_utf16,
                ..
            } => {
                if caret <= pos_utf16 {
                    caret
                } else {
                    caret - len_utf16.min(caret - pos_utf16)
                }
            }
        }
    }
}

/// Maps a UTF-16 caret through a sequence of patches (see [`Patch::map_caret_utf16`]).
pub fn map_caret_utf16(caret: usize, patches: &[Patch]) -> usize {
    patches.iter().fold(caret, |c, p| p.map_caret_utf16(c))
}
