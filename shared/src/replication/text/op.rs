//! Operations (what travels between replicas), their compact wire form, and patches (what a
//! view must do to its copy of the text).

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

use crate::NodeId;

/// The length of `text` in chars (Unicode scalar values), with a fast path for ASCII.
pub(crate) fn char_len(text: &str) -> usize {
    if text.is_ascii() {
        text.len()
    } else {
        text.chars().count()
    }
}

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
/// each origin `null` (the start or the end), a bare `seq` when it is a character of the op's
/// own replica, or `[replica, seq]`; a delete is `[replica, seq, len]`. Typing `"hello"` in a
/// row, merged with [`TextOp::try_merge`], is one ~25-byte op.
#[derive(Debug, Clone, PartialEq, Eq)]
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
            || nleft
                .is_none_or(|l| l.replica != id.replica || l.seq.checked_add(1) != Some(nid.seq))
        {
            return false;
        }
        if id.seq.checked_add(char_len(text) as u32) == Some(nid.seq) {
            text.push_str(ntext);
            true
        } else {
            false
        }
    }

    /// How many characters this op inserts or deletes.
    pub fn len_chars(&self) -> usize {
        match self {
            TextOp::Insert { text, .. } => char_len(text),
            TextOp::Delete { len, .. } => *len as usize,
        }
    }
}

/// Writes the array form: `[replica, seq, "text", left, right]` or `[replica, seq, len]`, each
/// origin `null`, a bare `seq` when the origin is the op's own replica (typing after one's own
/// text, the common case), or `[replica, seq]`.
impl Serialize for TextOp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TextOp::Insert {
                id,
                origin_left,
                origin_right,
                text,
            } => {
                let mut t = serializer.serialize_tuple(5)?;
                t.serialize_element(&id.replica)?;
                t.serialize_element(&id.seq)?;
                t.serialize_element(text)?;
                t.serialize_element(&WireOrigin(*origin_left, id.replica))?;
                t.serialize_element(&WireOrigin(*origin_right, id.replica))?;
                t.end()
            }
            TextOp::Delete { target, len } => {
                let mut t = serializer.serialize_tuple(3)?;
                t.serialize_element(&target.replica)?;
                t.serialize_element(&target.seq)?;
                t.serialize_element(len)?;
                t.end()
            }
        }
    }
}

/// An origin on the wire, written relative to the op's replica.
struct WireOrigin(Option<CharId>, NodeId);

impl Serialize for WireOrigin {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => serializer.serialize_none(),
            Some(c) if c.replica == self.1 => serializer.serialize_u32(c.seq),
            Some(c) => (c.replica, c.seq).serialize(serializer),
        }
    }
}

/// An origin as read: `null`, a bare seq (the op's own replica) or `[replica, seq]`.
enum ReadOrigin {
    None,
    Own(u32),
    Other(NodeId, u32),
}

impl ReadOrigin {
    fn resolve(self, replica: NodeId) -> Option<CharId> {
        match self {
            ReadOrigin::None => None,
            ReadOrigin::Own(seq) => Some(CharId { replica, seq }),
            ReadOrigin::Other(replica, seq) => Some(CharId { replica, seq }),
        }
    }
}

impl<'de> Deserialize<'de> for ReadOrigin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ReadOrigin;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an origin: null, seq or [replica, seq]")
            }
            fn visit_unit<E: de::Error>(self) -> Result<ReadOrigin, E> {
                Ok(ReadOrigin::None)
            }
            fn visit_none<E: de::Error>(self) -> Result<ReadOrigin, E> {
                Ok(ReadOrigin::None)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ReadOrigin, E> {
                u32::try_from(v)
                    .map(ReadOrigin::Own)
                    .map_err(|_| E::custom("origin seq over 2^32"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ReadOrigin, E> {
                u32::try_from(v)
                    .map(ReadOrigin::Own)
                    .map_err(|_| E::custom("origin seq out of range"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ReadOrigin, A::Error> {
                let replica: NodeId = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let s: u32 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(ReadOrigin::Other(replica, s))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl TextOp {
    /// Reads the wire form (see [`TextOp`]) on the fast path of [`crate::json`]: the same op
    /// the serde decoder returns, or `None` (then the caller asks serde, which also explains
    /// what is wrong).
    pub(crate) fn read_json(r: &mut crate::json::Reader<'_>) -> Option<TextOp> {
        fn origin(r: &mut crate::json::Reader<'_>, own: NodeId) -> Option<Option<CharId>> {
            match r.peek()? {
                b'n' => r.lit("null").map(|()| None),
                b'[' => {
                    r.eat(b'[')?;
                    let replica = r.u32()?;
                    r.eat(b',')?;
                    let seq = r.u32()?;
                    r.eat(b']')?;
                    Some(Some(CharId { replica, seq }))
                }
                _ => r.u32().map(|seq| Some(CharId { replica: own, seq })),
            }
        }
        r.eat(b'[')?;
        let replica = r.u32()?;
        r.eat(b',')?;
        let seq = r.u32()?;
        r.eat(b',')?;
        let id = CharId { replica, seq };
        let op = if r.peek()? == b'"' {
            let text = r.str()?.into_owned();
            r.eat(b',')?;
            let origin_left = origin(r, replica)?;
            r.eat(b',')?;
            let origin_right = origin(r, replica)?;
            let n = char_len(&text) as u64;
            if n == 0 || u64::from(seq) + n > u64::from(u32::MAX) {
                return None;
            }
            TextOp::Insert {
                id,
                origin_left,
                origin_right,
                text,
            }
        } else {
            let len = r.u32()?;
            if len == 0 || u64::from(seq) + u64::from(len) > u64::from(u32::MAX) {
                return None;
            }
            TextOp::Delete { target: id, len }
        };
        r.eat(b']')?;
        Some(op)
    }
}

/// Reads the array form directly, deciding insert or delete by the type of the third element
/// (a hand-written visitor: `#[serde(untagged)]` would buffer every op and try each variant,
/// which made decoding cost four times the apply).
impl<'de> Deserialize<'de> for TextOp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(OpVisitor)
    }
}

struct OpVisitor;

impl<'de> Visitor<'de> for OpVisitor {
    type Value = TextOp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a text op: [replica, seq, "text", left, right] or [replica, seq, len]"#)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TextOp, A::Error> {
        fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
            seq: &mut A,
            i: usize,
            v: &OpVisitor,
        ) -> Result<T, A::Error> {
            seq.next_element()?
                .ok_or_else(|| de::Error::invalid_length(i, v))
        }
        let replica: NodeId = next(&mut seq, 0, &self)?;
        let first: u32 = next(&mut seq, 1, &self)?;
        let id = CharId {
            replica,
            seq: first,
        };
        let op = match next::<TextOrLen, _>(&mut seq, 2, &self)? {
            TextOrLen::Text(text) => {
                let left = next::<ReadOrigin, _>(&mut seq, 3, &self)?.resolve(replica);
                let right = next::<ReadOrigin, _>(&mut seq, 4, &self)?.resolve(replica);
                let n = char_len(&text) as u64;
                if n == 0 || u64::from(first) + n > u64::from(u32::MAX) {
                    return Err(de::Error::custom("insert needs 1..2^32 characters of text"));
                }
                TextOp::Insert {
                    id,
                    origin_left: left,
                    origin_right: right,
                    text,
                }
            }
            TextOrLen::Len(len) => {
                if len == 0 || u64::from(first) + u64::from(len) > u64::from(u32::MAX) {
                    return Err(de::Error::custom("delete needs 1..2^32 characters"));
                }
                TextOp::Delete { target: id, len }
            }
        };
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("a text op has 3 or 5 elements"));
        }
        Ok(op)
    }
}

/// The third element of a wire op: an insert's text or a delete's length.
enum TextOrLen {
    Text(String),
    Len(u32),
}

impl<'de> Deserialize<'de> for TextOrLen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = TextOrLen;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the inserted text or the deleted length")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TextOrLen, E> {
                Ok(TextOrLen::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<TextOrLen, E> {
                Ok(TextOrLen::Text(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TextOrLen, E> {
                u32::try_from(v)
                    .map(TextOrLen::Len)
                    .map_err(|_| E::custom("delete length over 2^32"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TextOrLen, E> {
                u32::try_from(v)
                    .map(TextOrLen::Len)
                    .map_err(|_| E::custom("delete length out of range"))
            }
        }
        deserializer.deserialize_any(V)
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
