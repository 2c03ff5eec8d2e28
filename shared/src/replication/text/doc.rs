//! The replicated document: run-length-encoded items in leaves of a two-level order-statistic
//! tree (leaf weights in Fenwick trees), plus an id index (replica, seq) → leaf.

mod snapshot;

pub use snapshot::{SnapshotError, TextSnapshot, SNAPSHOT_VERSION};

use super::fenwick::Fenwick;
use super::op::{char_len, CharId, Patch, TextOp};
use super::TextError;
use crate::NodeId;

/// Most spans a leaf holds before it splits in two.
const LEAF_CAP: usize = 48;

/// An empty slot in [`TextDoc::order`]: room for a split leaf's new half without renumbering
/// every leaf after it.
const GAP: u32 = u32::MAX;

/// How many slots right of a splitting leaf to look for a gap (shifting the leaves between one
/// slot right) before laying the whole order out afresh.
const GAP_REACH: usize = 8;

/// Low bits of an id-index entry that hold a span-index hint (`LEAF_CAP` fits).
const HINT_BITS: u32 = 7;
const _: () = assert!(LEAF_CAP < 1 << HINT_BITS);

/// An id-index entry: the leaf arena id, and where in the leaf the span holding the character
/// was when the entry was written. Spans shift as neighbours are inserted or split, so the
/// hint is only where [`TextDoc::locate`] starts looking.
fn index_entry(lid: u32, si: u32) -> u32 {
    assert!(
        lid < 1 << (32 - HINT_BITS),
        "text document exceeds {} leaves",
        1u32 << (32 - HINT_BITS)
    );
    lid << HINT_BITS | si.min((1 << HINT_BITS) - 1)
}

/// A character id with the replica replaced by its dense index in [`TextDoc::agents`]
/// (dense indices differ between replicas; only [`CharId`] travels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Iid {
    agent: u32,
    seq: u32,
}

impl Iid {
    fn plus(self, n: u32) -> Iid {
        Iid {
            agent: self.agent,
            seq: self.seq + n,
        }
    }
}

/// An optional [`Iid`] in 8 bytes, with no separate tag (a span is scanned and moved often, so
/// its size matters): agent `u32::MAX` is "none" — the start or the end of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Origin(Iid);

impl Origin {
    const NONE: Origin = Origin(Iid {
        agent: u32::MAX,
        seq: 0,
    });

    fn new(i: Option<Iid>) -> Origin {
        i.map_or(Origin::NONE, Origin)
    }

    fn get(self) -> Option<Iid> {
        (self.0.agent != u32::MAX).then_some(self.0)
    }
}

/// A run of characters with consecutive ids inserted as one typing run: character `k > 0` has
/// character `k - 1` as its left origin, and all share `origin_right`.
#[derive(Debug, Clone)]
struct Span {
    id: Iid,
    /// Length in chars (≥ 1).
    len: u32,
    /// Length in UTF-16 code units.
    len16: u32,
    origin_left: Origin,
    origin_right: Origin,
    /// Tombstone: the characters stay in the sequence (others' origins point at them) but are
    /// not visible.
    deleted: bool,
}

impl Span {
    fn last(&self) -> Iid {
        self.id.plus(self.len - 1)
    }
    fn visible(&self) -> u32 {
        if self.deleted {
            0
        } else {
            self.len
        }
    }
    fn visible16(&self) -> u32 {
        if self.deleted {
            0
        } else {
            self.len16
        }
    }
    /// Whether `next` continues this run (same state, consecutive ids, implied origins).
    fn continued_by(&self, next: &Span) -> bool {
        self.deleted == next.deleted
            && self.id.agent == next.id.agent
            && self.id.seq + self.len == next.id.seq
            && next.origin_left == Origin(self.last())
            && next.origin_right == self.origin_right
    }
}

/// A chunk of consecutive spans.
#[derive(Debug, Clone)]
struct Leaf {
    spans: Vec<Span>,
    /// This leaf's index in [`TextDoc::order`].
    order: u32,
    /// Visible chars in this leaf.
    chars: u32,
    /// Visible UTF-16 code units in this leaf.
    units: u32,
}

/// What this replica knows about one replica's characters.
#[derive(Debug, Clone)]
struct Agent {
    replica: NodeId,
    /// The characters it inserted, by seq (deleted ones included), as UTF-8: an ASCII
    /// character costs one byte, so a pasted page costs its size, not four times it.
    text: String,
    /// How many characters `text` holds: the next seq.
    chars: u32,
    /// Its non-ASCII characters, ascending, as `(seq, extra)`: `extra` counts the UTF-8 bytes
    /// beyond one per character up to and including this one, so character `s` starts at byte
    /// `s + extra` of the last entry below `s`.
    wide: Vec<(u32, u32)>,
    /// Seqs of its characters outside the BMP (two UTF-16 code units), ascending.
    astral: Vec<u32>,
    /// Id index: for each of its characters, by seq, the leaf arena id holding it and a hint
    /// of its span's index there ([`index_entry`]; one `u32` per character, so a lookup is one
    /// load; a leaf split rewrites the entries of the spans it moves).
    leaf_of: Vec<u32>,
}

/// A position in the item sequence (tombstones included): leaf order index, span index, offset
/// in the span. Ordered as the sequence is, while the document is not modified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    oi: u32,
    si: u32,
    off: u32,
}

/// Past the last item.
const END: Pos = Pos {
    oi: u32::MAX,
    si: 0,
    off: 0,
};

/// The ids of a local insert's op (its text is the caller's).
struct InsertHead {
    id: CharId,
    origin_left: Option<CharId>,
    origin_right: Option<CharId>,
}

impl InsertHead {
    fn into_op(self, text: String) -> TextOp {
        TextOp::Insert {
            id: self.id,
            origin_left: self.origin_left,
            origin_right: self.origin_right,
            text,
        }
    }
}

/// One replica of a shared text. Local edits return the [`TextOp`]s to broadcast; remote ops
/// go in through [`TextDoc::apply_remote`] in causal order.
///
/// Architecture invariant: a leaf's `chars`/`units` equal the visible lengths of its spans, the
/// Fenwick trees hold those per leaf in document order, and every inserted id is covered by
/// exactly one id-index entry naming the leaf that holds it ([`TextDoc::check_invariants`]).
#[derive(Debug, Clone)]
pub struct TextDoc {
    replica: NodeId,
    /// Leaf arena (ids are stable; leaves are never removed).
    leaves: Vec<Leaf>,
    /// Leaf ids in document order, with [`GAP`] slots between some of them (never two in a row,
    /// never first or last). A leaf's `order` is its slot; positions compare by slot.
    order: Vec<u32>,
    /// Visible `[chars, UTF-16 code units]` per leaf, by order index.
    weights: Fenwick,
    /// Known replicas; index 0 is this one.
    agents: Vec<Agent>,
    /// Typing cursor: the char position right after the last local insert and the span (leaf
    /// order index, span index) that ends with it — valid only while nothing else has changed
    /// the document (every other edit clears it), so the next keystroke there just extends
    /// that span.
    typing: Option<(usize, u32, u32)>,
}

impl TextDoc {
    /// An empty document at replica `replica`. A replica id must not be reused by another
    /// fresh document in the same session: ids would collide.
    pub fn new(replica: NodeId) -> Self {
        TextDoc {
            replica,
            leaves: vec![Leaf {
                spans: Vec::new(),
                order: 0,
                chars: 0,
                units: 0,
            }],
            order: vec![0],
            weights: Fenwick::build([[0, 0]].into_iter()),
            agents: vec![Agent::new(replica)],
            typing: None,
        }
    }

    /// This replica's id.
    pub fn replica(&self) -> NodeId {
        self.replica
    }

    /// Length of the visible text in chars (Unicode scalar values).
    pub fn len_chars(&self) -> usize {
        self.weights.total()[0] as usize
    }

    /// Length of the visible text in UTF-16 code units.
    pub fn len_utf16(&self) -> usize {
        self.weights.total()[1] as usize
    }

    /// Whether the visible text is empty.
    pub fn is_empty(&self) -> bool {
        self.len_chars() == 0
    }

    /// The visible text.
    pub fn text(&self) -> String {
        let mut s = String::with_capacity(self.len_chars());
        for &lid in self.order.iter().filter(|&&l| l != GAP) {
            for span in &self.leaves[lid as usize].spans {
                if !span.deleted {
                    s.push_str(self.agents[span.id.agent as usize].slice(span.id.seq, span.len));
                }
            }
        }
        s
    }

    // ------------------------------------------------------------------ local edits

    /// Inserts `text` at char position `pos` and returns the op to broadcast.
    pub fn insert(&mut self, pos: usize, text: &str) -> Result<TextOp, TextError> {
        let head = self.insert_local(pos, text)?;
        Ok(head.into_op(text.to_owned()))
    }

    /// [`TextDoc::insert`], with the op appended to `outbox` — or, when it continues the typing
    /// run of the insert at the end of `outbox` ([`TextOp::try_merge`]), appended to that op's
    /// text in place, so a burst of keystrokes costs no allocation per key.
    pub fn insert_into(
        &mut self,
        pos: usize,
        text: &str,
        outbox: &mut Vec<TextOp>,
    ) -> Result<(), TextError> {
        let head = self.insert_local(pos, text)?;
        let extended = outbox.last_mut().is_some_and(|last| {
            last.try_extend_insert(head.id, head.origin_left, head.origin_right, text)
        });
        if !extended {
            outbox.push(head.into_op(text.to_owned()));
        }
        Ok(())
    }

    /// The local part of an insert: the document changes; returns the new op's ids.
    fn insert_local(&mut self, pos: usize, text: &str) -> Result<InsertHead, TextError> {
        let len = self.len_chars();
        if pos > len {
            return Err(TextError::OutOfRange { pos, len });
        }
        if text.is_empty() {
            return Err(TextError::Empty);
        }
        if let Some((at, oi, si)) = self.typing {
            if at == pos {
                return Ok(self.keep_typing(pos, oi, si, text));
            }
        }
        let (dest, origin_left) = if pos == 0 {
            (
                self.normalize(Pos {
                    oi: 0,
                    si: 0,
                    off: 0,
                }),
                None,
            )
        } else {
            let p = self.find_visible(pos as u32 - 1);
            (self.next_item(p), Some(self.item_id(p)))
        };
        let origin_right = (dest != END).then(|| self.item_id(dest));
        let seq = self.agents[0].chars;
        let (n, n16) = self.agents[0].push_text(text);
        let span = Span {
            id: Iid { agent: 0, seq },
            len: n,
            len16: n16,
            origin_left: Origin::new(origin_left),
            origin_right: Origin::new(origin_right),
            deleted: false,
        };
        self.typing = self
            .place(dest, span)
            .map(|(oi, si)| (pos + n as usize, oi, si));
        Ok(InsertHead {
            id: CharId {
                replica: self.replica,
                seq,
            },
            origin_left: origin_left.map(|i| self.char_id(i)),
            origin_right: origin_right.map(|i| self.char_id(i)),
        })
    }

    /// The next keystroke right after the previous one: extend its span in place.
    fn keep_typing(&mut self, pos: usize, oi: u32, si: u32, text: &str) -> InsertHead {
        let seq = self.agents[0].chars;
        let (n, n16) = self.agents[0].push_text(text);
        let lid = self.order[oi as usize];
        let span = &mut self.leaves[lid as usize].spans[si as usize];
        debug_assert!(span.id.agent == 0 && span.id.seq + span.len == seq && !span.deleted);
        let origin_left = span.last();
        let origin_right = span.origin_right.get();
        span.len += n;
        span.len16 += n16;
        self.add_visible(oi, n as i64, n16 as i64);
        self.agents[0].index_append(seq, n, index_entry(lid, si));
        self.typing = Some((pos + n as usize, oi, si));
        InsertHead {
            id: CharId {
                replica: self.replica,
                seq,
            },
            origin_left: Some(self.char_id(origin_left)),
            origin_right: origin_right.map(|i| self.char_id(i)),
        }
    }

    /// Deletes `len` chars from char position `pos` and returns the ops to broadcast (one per
    /// run of consecutive ids; none when `len` is 0).
    pub fn delete(&mut self, pos: usize, len: usize) -> Result<Vec<TextOp>, TextError> {
        let mut ops = Vec::new();
        self.delete_into(pos, len, &mut ops)?;
        Ok(ops)
    }

    /// [`TextDoc::delete`], with the ops appended to `outbox`, the first merged into the op at
    /// its end when they are one run of deleting ([`TextOp::try_merge`]).
    pub fn delete_into(
        &mut self,
        pos: usize,
        len: usize,
        outbox: &mut Vec<TextOp>,
    ) -> Result<(), TextError> {
        let total = self.len_chars();
        if pos.checked_add(len).is_none_or(|end| end > total) {
            return Err(TextError::OutOfRange {
                pos: pos.saturating_add(len),
                len: total,
            });
        }
        self.typing = None;
        let mut remaining = len as u32;
        while remaining > 0 {
            let p = self.find_visible(pos as u32);
            let span = self.span(p);
            let k = remaining.min(span.len - p.off);
            let target = self.char_id(span.id.plus(p.off));
            self.delete_in_span(p, k);
            let op = TextOp::Delete { target, len: k };
            if !outbox.last_mut().is_some_and(|last| last.try_merge(&op)) {
                outbox.push(op);
            }
            remaining -= k;
        }
        Ok(())
    }

    /// [`TextDoc::insert_into`] at a UTF-16 position.
    pub fn insert_utf16_into(
        &mut self,
        pos_utf16: usize,
        text: &str,
        outbox: &mut Vec<TextOp>,
    ) -> Result<(), TextError> {
        let pos = self.utf16_to_char(pos_utf16)?;
        self.insert_into(pos, text, outbox)
    }

    /// [`TextDoc::delete_into`] of the UTF-16 range `pos_utf16 .. pos_utf16 + len_utf16`.
    pub fn delete_utf16_into(
        &mut self,
        pos_utf16: usize,
        len_utf16: usize,
        outbox: &mut Vec<TextOp>,
    ) -> Result<(), TextError> {
        let start = self.utf16_to_char(pos_utf16)?;
        let end = self.utf16_to_char(pos_utf16.saturating_add(len_utf16))?;
        self.delete_into(start, end - start, outbox)
    }

    /// [`TextDoc::insert`] at a UTF-16 position (what a browser text area reports).
    pub fn insert_utf16(&mut self, pos_utf16: usize, text: &str) -> Result<TextOp, TextError> {
        let pos = self.utf16_to_char(pos_utf16)?;
        self.insert(pos, text)
    }

    /// [`TextDoc::delete`] of the UTF-16 range `pos_utf16 .. pos_utf16 + len_utf16`.
    pub fn delete_utf16(
        &mut self,
        pos_utf16: usize,
        len_utf16: usize,
    ) -> Result<Vec<TextOp>, TextError> {
        let mut ops = Vec::new();
        self.delete_utf16_into(pos_utf16, len_utf16, &mut ops)?;
        Ok(ops)
    }

    /// Converts a char position (0 ..= length) to UTF-16 code units, in O(log n).
    pub fn char_to_utf16(&self, pos: usize) -> Result<usize, TextError> {
        let len = self.len_chars();
        if pos > len {
            return Err(TextError::OutOfRange { pos, len });
        }
        if pos == len {
            return Ok(self.len_utf16());
        }
        let p = self.find_visible(pos as u32);
        Ok(self.visible_before(p).1 as usize)
    }

    /// Converts a UTF-16 position (0 ..= length) to chars, in O(log n); a position inside a
    /// surrogate pair is an error.
    pub fn utf16_to_char(&self, pos_utf16: usize) -> Result<usize, TextError> {
        let len16 = self.len_utf16();
        if pos_utf16 > len16 {
            return Err(TextError::OutOfRange {
                pos: pos_utf16,
                len: len16,
            });
        }
        if pos_utf16 == len16 {
            return Ok(self.len_chars());
        }
        let (oi, [mut chars, base16]) = self.weights.find(1, pos_utf16 as u32);
        let mut rem = pos_utf16 as u32 - base16;
        for span in &self.leaves[self.order[oi] as usize].spans {
            if span.deleted {
                continue;
            }
            if rem < span.len16 {
                if span.len16 == span.len {
                    return Ok((chars + rem) as usize);
                }
                let agent = &self.agents[span.id.agent as usize];
                for c in agent.slice(span.id.seq, span.len).chars() {
                    if rem == 0 {
                        break;
                    }
                    let w = c.len_utf16() as u32;
                    if w > rem {
                        return Err(TextError::SplitsSurrogatePair(pos_utf16));
                    }
                    rem -= w;
                    chars += 1;
                }
                return Ok(chars as usize);
            }
            rem -= span.len16;
            chars += span.len;
        }
        unreachable!("the Fenwick tree and the leaf disagree")
    }

    // ------------------------------------------------------------------ remote edits

    /// Applies an op from another replica (or a replay of history) and returns what changed in
    /// the visible text. Ops must arrive in causal order; a duplicate insert, and a delete of
    /// already deleted characters, change nothing. On error nothing changes.
    pub fn apply_remote(&mut self, op: &TextOp) -> Result<Vec<Patch>, TextError> {
        let mut patches = Vec::new();
        self.apply(op, Some(&mut patches))?;
        Ok(patches)
    }

    /// [`TextDoc::apply_remote`] without computing patches (for replicas with no view).
    pub fn apply_remote_quiet(&mut self, op: &TextOp) -> Result<(), TextError> {
        self.apply(op, None)
    }

    fn apply(&mut self, op: &TextOp, patches: Option<&mut Vec<Patch>>) -> Result<(), TextError> {
        self.typing = None;
        match op {
            TextOp::Insert {
                id,
                origin_left,
                origin_right,
                text,
            } => {
                let expected = self
                    .agent_of(id.replica)
                    .map_or(0, |a| self.agents[a as usize].chars);
                let n = char_len(text) as u32;
                if n == 0 {
                    return Err(TextError::Empty);
                }
                if id.seq < expected && id.seq + n <= expected {
                    return Ok(()); // already applied
                }
                if id.seq != expected {
                    return Err(TextError::SeqGap {
                        replica: id.replica,
                        seq: id.seq,
                        expected,
                    });
                }
                let left = origin_left.map(|c| self.to_iid(&c)).transpose()?;
                let right = origin_right.map(|c| self.to_iid(&c)).transpose()?;
                let left_pos = left.map(|i| self.locate(i));
                let first = match left_pos {
                    None => self.normalize(Pos {
                        oi: 0,
                        si: 0,
                        off: 0,
                    }),
                    Some(l) => self.next_item(l),
                };
                // No concurrent insert between the origins (the usual case): the item right of
                // the left origin is the right origin, and the new text goes between them.
                let adjacent = match right {
                    None => first == END,
                    Some(r) => first != END && self.item_id(first) == r,
                };
                let dest = if adjacent {
                    first
                } else {
                    let right_pos = right.map_or(END, |i| self.locate(i));
                    self.integrate(id.replica, first, left_pos, right_pos)
                };
                let agent = self.agent_or_insert(id.replica);
                let (n, n16) = self.agents[agent as usize].push_text(text);
                if let Some(patches) = patches {
                    let (pos, pos16) = self.visible_before(dest);
                    patches.push(Patch::Insert {
                        pos: pos as usize,
                        pos_utf16: pos16 as usize,
                        len: n as usize,
                        len_utf16: n16 as usize,
                    });
                }
                self.place(
                    dest,
                    Span {
                        id: Iid { agent, seq: id.seq },
                        len: n,
                        len16: n16,
                        origin_left: Origin::new(left),
                        origin_right: Origin::new(right),
                        deleted: false,
                    },
                );
                Ok(())
            }
            TextOp::Delete { target, len } => {
                if *len == 0 {
                    return Err(TextError::Empty);
                }
                let first = self.to_iid(target)?;
                let known = self.agents[first.agent as usize].chars;
                let end = target.seq.saturating_add(*len);
                if end > known {
                    return Err(TextError::UnknownCharacter(CharId {
                        replica: target.replica,
                        seq: known.max(target.seq),
                    }));
                }
                let mut patches = patches;
                let mut seq = target.seq;
                while seq < end {
                    let p = self.locate(Iid {
                        agent: first.agent,
                        seq,
                    });
                    let span = self.span(p);
                    let k = (end - seq).min(span.len - p.off);
                    if !span.deleted {
                        if let Some(patches) = patches.as_deref_mut() {
                            let (pos, pos16) = self.visible_before(p);
                            patches.push(Patch::Delete {
                                pos: pos as usize,
                                pos_utf16: pos16 as usize,
                                len: k as usize,
                                len_utf16: self.units_of(first.agent, seq, k) as usize,
                            });
                        }
                        self.delete_in_span(p, k);
                    }
                    seq += k;
                }
                Ok(())
            }
        }
    }

    /// YATA integration with the FugueMax ("YjsMod") conflict rule: where does an item with
    /// origins at `left`/`right` go? Scans the items between its origins; returns the position
    /// of the item it is inserted before (or [`END`]). `first` is the item right after `left`.
    fn integrate(&self, replica: NodeId, first: Pos, left: Option<Pos>, right: Pos) -> Pos {
        let mut cur = first;
        let mut dest = cur;
        let mut scanning = false;
        loop {
            if !scanning {
                dest = cur;
            }
            if cur == END || cur == right {
                break;
            }
            let span = self.span(cur);
            let other_left = if cur.off > 0 {
                Some(Pos {
                    off: cur.off - 1,
                    ..cur
                })
            } else {
                span.origin_left.get().map(|i| self.locate(i))
            };
            match other_left.cmp(&left) {
                std::cmp::Ordering::Less => break,
                std::cmp::Ordering::Equal => {
                    let other_right = span.origin_right.get().map_or(END, |i| self.locate(i));
                    match other_right.cmp(&right) {
                        std::cmp::Ordering::Less => scanning = true,
                        std::cmp::Ordering::Equal => {
                            if replica < self.agents[span.id.agent as usize].replica {
                                break;
                            }
                            scanning = false;
                        }
                        std::cmp::Ordering::Greater => scanning = false,
                    }
                }
                std::cmp::Ordering::Greater => {}
            }
            // The rest of this span has its left origin inside the scanned range (> left):
            // nothing changes until the span ends or `right` is reached.
            cur = if right.oi == cur.oi && right.si == cur.si && right.off > cur.off {
                right
            } else {
                self.normalize(Pos {
                    si: cur.si + 1,
                    off: 0,
                    ..cur
                })
            };
        }
        dest
    }

    // ------------------------------------------------------------------ structure

    /// Puts `new` before the item at `dest` (or at the end), extending the span before it when
    /// `new` continues that run. Returns the (leaf order index, span index) of the span that
    /// now ends with `new`, unless a leaf split moved it.
    fn place(&mut self, dest: Pos, new: Span) -> Option<(u32, u32)> {
        let (oi, si) = if dest == END {
            let oi = self.order.len() as u32 - 1;
            (oi, self.leaf_at(oi).spans.len() as u32)
        } else if dest.off > 0 {
            self.split_span(dest.oi, dest.si, dest.off);
            (dest.oi, dest.si + 1)
        } else {
            (dest.oi, dest.si)
        };
        let prev = if si > 0 {
            Some((oi, si - 1))
        } else {
            (0..oi)
                .rev()
                .find(|&j| self.order[j as usize] != GAP)
                .and_then(|poi| {
                    let n = self.leaf_at(poi).spans.len() as u32;
                    (n > 0).then_some((poi, n - 1))
                })
        };
        let (n, n16, id) = (new.len, new.len16, new.id);
        if let Some((poi, psi)) = prev {
            let lid = self.order[poi as usize];
            let p = &mut self.leaves[lid as usize].spans[psi as usize];
            if p.continued_by(&new) {
                p.len += n;
                p.len16 += n16;
                self.add_visible(poi, n as i64, n16 as i64);
                self.agents[id.agent as usize].index_append(id.seq, n, index_entry(lid, psi));
                return Some((poi, psi));
            }
        }
        let lid = self.order[oi as usize];
        self.leaves[lid as usize].spans.insert(si as usize, new);
        self.add_visible(oi, n as i64, n16 as i64);
        self.agents[id.agent as usize].index_append(id.seq, n, index_entry(lid, si));
        (!self.maybe_split_leaf(oi)).then_some((oi, si))
    }

    /// Tombstones `k` chars from `p` (all inside the span at `p`, all visible).
    fn delete_in_span(&mut self, p: Pos, k: u32) {
        let mut si = p.si;
        if p.off > 0 {
            self.split_span(p.oi, si, p.off);
            si += 1;
        }
        if k < self.leaf_at(p.oi).spans[si as usize].len {
            self.split_span(p.oi, si, k);
        }
        let lid = self.order[p.oi as usize] as usize;
        let spans = &mut self.leaves[lid].spans;
        spans[si as usize].deleted = true;
        let k16 = spans[si as usize].len16;
        self.add_visible(p.oi, -(k as i64), -(k16 as i64));
        // Re-join tombstone runs (backspacing a run leaves one deleted span, not many).
        let spans = &mut self.leaves[lid].spans;
        let si = si as usize;
        if si + 1 < spans.len() && spans[si].continued_by(&spans[si + 1]) {
            let next = spans.remove(si + 1);
            spans[si].len += next.len;
            spans[si].len16 += next.len16;
        }
        if si > 0 && spans[si - 1].continued_by(&spans[si]) {
            let cur = spans.remove(si);
            spans[si - 1].len += cur.len;
            spans[si - 1].len16 += cur.len16;
        }
        self.maybe_split_leaf(p.oi);
    }

    /// Splits the span at (`oi`, `si`) into `0..off` and `off..` (0 < off < len).
    fn split_span(&mut self, oi: u32, si: u32, off: u32) {
        let lid = self.order[oi as usize] as usize;
        let s = &self.leaves[lid].spans[si as usize];
        let left16 = self.units_of(s.id.agent, s.id.seq, off);
        let s = &mut self.leaves[lid].spans[si as usize];
        let right = Span {
            id: s.id.plus(off),
            len: s.len - off,
            len16: s.len16 - left16,
            origin_left: Origin(s.id.plus(off - 1)),
            origin_right: s.origin_right,
            deleted: s.deleted,
        };
        s.len = off;
        s.len16 = left16;
        self.leaves[lid].spans.insert(si as usize + 1, right);
    }

    /// Splits the leaf at `oi` if it is over capacity; returns whether it did.
    fn maybe_split_leaf(&mut self, oi: u32) -> bool {
        let lid = self.order[oi as usize] as usize;
        if self.leaves[lid].spans.len() <= LEAF_CAP {
            return false;
        }
        let mid = self.leaves[lid].spans.len() / 2;
        let moved = self.leaves[lid].spans.split_off(mid);
        let chars: u32 = moved.iter().map(Span::visible).sum();
        let units: u32 = moved.iter().map(Span::visible16).sum();
        self.leaves[lid].chars -= chars;
        self.leaves[lid].units -= units;
        let new_lid = self.leaves.len() as u32;
        for (k, s) in moved.iter().enumerate() {
            let entry = index_entry(new_lid, k as u32);
            self.agents[s.id.agent as usize].index_move(s.id.seq, s.id.seq + s.len, entry);
        }
        self.leaves.push(Leaf {
            spans: moved,
            order: GAP,
            chars,
            units,
        });
        self.insert_leaf_after(oi as usize, new_lid);
        true
    }

    /// Puts the new leaf `new_lid` in the slot after the leaf at slot `oi`: into a gap there,
    /// or one within [`GAP_REACH`] slots (shifting the leaves between), or a new last slot;
    /// failing those, lays the order out again with a gap after every leaf. The new leaf's
    /// counts move from the old leaf's slot in the Fenwick tree (the old leaf's counts are
    /// already reduced).
    fn insert_leaf_after(&mut self, oi: usize, new_lid: u32) {
        let w = {
            let l = &self.leaves[new_lid as usize];
            [l.chars as i64, l.units as i64]
        };
        let reach = (oi + 1 + GAP_REACH).min(self.order.len());
        let slot = if let Some(g) = (oi + 1..reach).find(|&j| self.order[j] == GAP) {
            for j in (oi + 1..g).rev() {
                let l = self.order[j];
                self.order[j + 1] = l;
                let leaf = &mut self.leaves[l as usize];
                leaf.order = j as u32 + 1;
                let (c, u) = (leaf.chars as i64, leaf.units as i64);
                self.weights.add(j, -c, -u);
                self.weights.add(j + 1, c, u);
            }
            oi + 1
        } else if oi + 1 == self.order.len() {
            self.order.push(GAP);
            self.weights.push([0, 0]);
            oi + 1
        } else {
            self.relayout(oi, new_lid);
            return;
        };
        self.order[slot] = new_lid;
        self.leaves[new_lid as usize].order = slot as u32;
        self.weights.add(oi, -w[0], -w[1]);
        self.weights.add(slot, w[0], w[1]);
    }

    /// Lays the order out again with a gap after every leaf but the last, `new_lid` right after
    /// the leaf at slot `oi`, and rebuilds the Fenwick tree: O(leaves), and it leaves a gap
    /// beside every leaf, so splits between two layouts are O(log n).
    fn relayout(&mut self, oi: usize, new_lid: u32) {
        let after = self.order[oi];
        let old = std::mem::take(&mut self.order);
        let mut order = Vec::with_capacity(2 * self.leaves.len());
        for l in old.into_iter().filter(|&l| l != GAP) {
            order.push(l);
            order.push(GAP);
            if l == after {
                order.push(new_lid);
                order.push(GAP);
            }
        }
        order.pop();
        for (j, &l) in order.iter().enumerate() {
            if l != GAP {
                self.leaves[l as usize].order = j as u32;
            }
        }
        let leaves = &self.leaves;
        self.weights.rebuild(order.iter().map(|&l| {
            if l == GAP {
                [0, 0]
            } else {
                let leaf = &leaves[l as usize];
                [leaf.chars, leaf.units]
            }
        }));
        self.order = order;
    }

    fn add_visible(&mut self, oi: u32, chars: i64, units: i64) {
        let leaf = &mut self.leaves[self.order[oi as usize] as usize];
        leaf.chars = (leaf.chars as i64 + chars) as u32;
        leaf.units = (leaf.units as i64 + units) as u32;
        self.weights.add(oi as usize, chars, units);
    }

    // ------------------------------------------------------------------ lookups

    fn leaf_at(&self, oi: u32) -> &Leaf {
        &self.leaves[self.order[oi as usize] as usize]
    }

    fn span(&self, p: Pos) -> &Span {
        &self.leaf_at(p.oi).spans[p.si as usize]
    }

    fn item_id(&self, p: Pos) -> Iid {
        self.span(p).id.plus(p.off)
    }

    /// The first position at or after `p` that names an item (skipping past leaf ends).
    fn normalize(&self, mut p: Pos) -> Pos {
        loop {
            if p.oi as usize >= self.order.len() {
                return END;
            }
            let lid = self.order[p.oi as usize];
            if lid != GAP && (p.si as usize) < self.leaves[lid as usize].spans.len() {
                return p;
            }
            p = Pos {
                oi: p.oi + 1,
                si: 0,
                off: 0,
            };
        }
    }

    fn next_item(&self, p: Pos) -> Pos {
        if p.off + 1 < self.span(p).len {
            Pos {
                off: p.off + 1,
                ..p
            }
        } else {
            self.normalize(Pos {
                si: p.si + 1,
                off: 0,
                ..p
            })
        }
    }

    /// The position of the visible char number `p` (< length).
    fn find_visible(&self, p: u32) -> Pos {
        let (oi, [base, _]) = self.weights.find(0, p);
        let mut rem = p - base;
        for (si, span) in self.leaf_at(oi as u32).spans.iter().enumerate() {
            if !span.deleted {
                if rem < span.len {
                    return Pos {
                        oi: oi as u32,
                        si: si as u32,
                        off: rem,
                    };
                }
                rem -= span.len;
            }
        }
        unreachable!("the Fenwick tree and the leaf disagree")
    }

    /// Visible (chars, UTF-16 units) before the item at `p`.
    fn visible_before(&self, p: Pos) -> (u32, u32) {
        if p == END {
            return (self.len_chars() as u32, self.len_utf16() as u32);
        }
        let [mut chars, mut units] = self.weights.prefix(p.oi as usize);
        let leaf = self.leaf_at(p.oi);
        let spans = &leaf.spans;
        let si = p.si as usize;
        // Sum the spans before `p`, or subtract those from `p` on from the leaf's total:
        // whichever side of the leaf is shorter.
        if si <= spans.len() / 2 {
            for span in &spans[..si] {
                chars += span.visible();
                units += span.visible16();
            }
        } else {
            let (mut c, mut u) = (leaf.chars, leaf.units);
            for span in &spans[si..] {
                c -= span.visible();
                u -= span.visible16();
            }
            chars += c;
            units += u;
        }
        let span = &spans[si];
        if !span.deleted && p.off > 0 {
            chars += p.off;
            units += self.units_of(span.id.agent, span.id.seq, p.off);
        }
        (chars, units)
    }

    /// Where the (known) item `id` is.
    fn locate(&self, id: Iid) -> Pos {
        let entry = self.agents[id.agent as usize].leaf_of[id.seq as usize];
        let leaf = &self.leaves[(entry >> HINT_BITS) as usize];
        let spans = &leaf.spans;
        let holds = |si: usize| {
            let s = &spans[si];
            s.id.agent == id.agent && id.seq.wrapping_sub(s.id.seq) < s.len
        };
        let found = |si: usize| Pos {
            oi: leaf.order,
            si: si as u32,
            off: id.seq - spans[si].id.seq,
        };
        // Look at the hinted span first, then outwards from it.
        let n = spans.len();
        let h = ((entry & ((1 << HINT_BITS) - 1)) as usize).min(n - 1);
        if holds(h) {
            return found(h);
        }
        for d in 1..n {
            if h + d < n && holds(h + d) {
                return found(h + d);
            }
            if d <= h && holds(h - d) {
                return found(h - d);
            }
        }
        unreachable!("id index names a leaf without the id")
    }

    /// UTF-16 length of `len` chars of `agent` from `seq`.
    fn units_of(&self, agent: u32, seq: u32, len: u32) -> u32 {
        self.agents[agent as usize].units_in(seq, len)
    }

    fn agent_of(&self, replica: NodeId) -> Option<u32> {
        self.agents
            .iter()
            .position(|a| a.replica == replica)
            .map(|i| i as u32)
    }

    fn agent_or_insert(&mut self, replica: NodeId) -> u32 {
        self.agent_of(replica).unwrap_or_else(|| {
            self.agents.push(Agent::new(replica));
            self.agents.len() as u32 - 1
        })
    }

    /// The internal id of a known character.
    fn to_iid(&self, c: &CharId) -> Result<Iid, TextError> {
        match self.agent_of(c.replica) {
            Some(agent) if c.seq < self.agents[agent as usize].chars => {
                Ok(Iid { agent, seq: c.seq })
            }
            _ => Err(TextError::UnknownCharacter(*c)),
        }
    }

    fn char_id(&self, i: Iid) -> CharId {
        CharId {
            replica: self.agents[i.agent as usize].replica,
            seq: i.seq,
        }
    }

    /// Checks every structural invariant (see the type's doc); panics with a message when one
    /// fails. For tests and fuzzing: O(n log n).
    pub fn check_invariants(&self) {
        let gaps = self.order.iter().filter(|&&l| l == GAP).count();
        assert_eq!(
            self.order.len() - gaps,
            self.leaves.len(),
            "every leaf has a slot"
        );
        assert_ne!(self.order.first(), Some(&GAP), "no gap first");
        assert_ne!(self.order.last(), Some(&GAP), "no gap last");
        assert!(
            self.order.windows(2).all(|w| w != [GAP, GAP]),
            "no two gaps in a row"
        );
        let (mut chars, mut units) = (0u32, 0u32);
        for (oi, &lid) in self.order.iter().enumerate() {
            if lid == GAP {
                assert_eq!(
                    self.weights.prefix(oi + 1),
                    [chars, units],
                    "a gap weighs 0"
                );
                continue;
            }
            let leaf = &self.leaves[lid as usize];
            assert_eq!(leaf.order as usize, oi, "leaf order index");
            assert!(leaf.spans.len() <= LEAF_CAP);
            assert!(
                !leaf.spans.is_empty() || self.order.len() == 1,
                "empty leaf"
            );
            let c: u32 = leaf.spans.iter().map(Span::visible).sum();
            let u: u32 = leaf.spans.iter().map(Span::visible16).sum();
            assert_eq!((leaf.chars, leaf.units), (c, u), "leaf counts");
            assert_eq!(self.weights.prefix(oi), [chars, units], "fenwick weights");
            chars += c;
            units += u;
            for (si, s) in leaf.spans.iter().enumerate() {
                assert!(s.len > 0);
                assert_eq!(
                    s.len16,
                    self.units_of(s.id.agent, s.id.seq, s.len),
                    "span len16"
                );
                for k in [0, s.len - 1] {
                    let p = self.locate(s.id.plus(k));
                    assert_eq!(
                        (p.oi as usize, p.si as usize, p.off),
                        (oi, si, k),
                        "id index"
                    );
                }
            }
        }
        for a in &self.agents {
            assert_eq!(a.leaf_of.len(), a.chars as usize, "id index covers content");
            assert_eq!(a.text.chars().count(), a.chars as usize, "char count");
            let wide: Vec<(u32, u32)> = a
                .text
                .chars()
                .enumerate()
                .filter(|(_, c)| !c.is_ascii())
                .scan(0, |extra, (k, c)| {
                    *extra += c.len_utf8() as u32 - 1;
                    Some((k as u32, *extra))
                })
                .collect();
            assert_eq!(a.wide, wide, "non-ASCII index");
        }
    }
}

impl Agent {
    fn new(replica: NodeId) -> Self {
        Agent {
            replica,
            text: String::new(),
            chars: 0,
            wide: Vec::new(),
            astral: Vec::new(),
            leaf_of: Vec::new(),
        }
    }

    /// Appends inserted text; returns its length in chars and UTF-16 units.
    fn push_text(&mut self, text: &str) -> (u32, u32) {
        let start = self.chars;
        if text.is_ascii() {
            self.text.push_str(text);
            let n = text.len() as u32;
            self.chars += n;
            return (n, n);
        }
        let mut extra = self.wide.last().map_or(0, |w| w.1);
        let (mut n, mut n16) = (0u32, 0u32);
        for c in text.chars() {
            let seq = start + n;
            if !c.is_ascii() {
                extra += c.len_utf8() as u32 - 1;
                self.wide.push((seq, extra));
            }
            if c.len_utf16() == 2 {
                self.astral.push(seq);
            }
            n += 1;
            n16 += c.len_utf16() as u32;
        }
        self.text.push_str(text);
        self.chars += n;
        (n, n16)
    }

    /// UTF-16 length of its `len` characters from `seq`.
    fn units_in(&self, seq: u32, len: u32) -> u32 {
        if self.astral.is_empty() {
            return len;
        }
        let lo = self.astral.partition_point(|&s| s < seq);
        let hi = self.astral.partition_point(|&s| s < seq + len);
        len + (hi - lo) as u32
    }

    /// Byte offset in `text` of character `seq` (≤ `chars`).
    fn byte_of(&self, seq: u32) -> usize {
        let i = self.wide.partition_point(|&(s, _)| s < seq);
        seq as usize
            + if i == 0 {
                0
            } else {
                self.wide[i - 1].1 as usize
            }
    }

    /// Characters `seq .. seq + len`.
    fn slice(&self, seq: u32, len: u32) -> &str {
        if self.wide.is_empty() {
            &self.text[seq as usize..(seq + len) as usize]
        } else {
            &self.text[self.byte_of(seq)..self.byte_of(seq + len)]
        }
    }

    /// Records that the new ids `seq .. seq + n` live where `entry` ([`index_entry`]) says.
    fn index_append(&mut self, seq: u32, n: u32, entry: u32) {
        debug_assert_eq!(self.leaf_of.len(), seq as usize);
        self.leaf_of.resize(self.leaf_of.len() + n as usize, entry);
    }

    /// Records that the known ids `start .. end` now live where `entry` says.
    fn index_move(&mut self, start: u32, end: u32, entry: u32) {
        self.leaf_of[start as usize..end as usize].fill(entry);
    }
}
