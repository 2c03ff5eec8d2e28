//! Compacted snapshots of a [`TextDoc`]: the whole CRDT state in one value, so a replica can
//! start from it instead of replaying every operation.
//!
//! A snapshot keeps **every character ever inserted**, tombstones included, in document
//! order, each with its origins — later operations, concurrent with the snapshot's history,
//! may name any of them as an origin or a delete target, and YATA integration compares the
//! positions of origins. What it drops is the history's *shape*: one run-length span per run
//! of characters, however many operations made it.
//!
//! **Guarantee:** `TextDoc::from_snapshot(r, &d.snapshot())` holds the same items (ids,
//! origins, tombstones) in the same order as `d`, so it answers every later operation exactly
//! as `d` would (property-tested below against replay).
//!
//! ## Wire form (JSON)
//! `{"v":1,"replicas":[…],"text":[…],"spans":[…]}`: `text[i]` is every character replica
//! `replicas[i]` inserted, by seq (deleted ones too); `spans` is a flat list of numbers, per
//! span `agent, seq, len, flags` then the explicit origins the flags call for, `agent` being
//! an index into `replicas`. Flags: bit 0 deleted; bits 1–2 the left origin of the span's first
//! character (0 none, 1 the item just before the span, 2 explicit `agent, seq`); bits 3–4 its
//! right origin (0 none, 1 the first item of the next span, 2 explicit). Characters after the
//! first have the one before as left origin and share the right origin, as in the document.

use serde::{Deserialize, Serialize};

use super::{index_entry, Agent, Iid, Leaf, Origin, Span, TextDoc, GAP, LEAF_CAP};
use crate::replication::text::fenwick::Fenwick;
use crate::NodeId;

/// The snapshot format this code writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Spans per leaf when a document is built from a snapshot: half full, so the edits that
/// follow split leaves no sooner than in a document built by typing.
const FILL: usize = LEAF_CAP / 2;

const DELETED: u32 = 1;
const LEFT_SHIFT: u32 = 1;
const RIGHT_SHIFT: u32 = 3;
const NONE: u32 = 0;
const ADJACENT: u32 = 1;
const EXPLICIT: u32 = 2;

/// A compacted copy of a [`TextDoc`] (see the module docs): what a replica needs to go on
/// from where the document was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSnapshot {
    /// The format version, [`SNAPSHOT_VERSION`].
    v: u32,
    /// The replicas that inserted characters.
    replicas: Vec<NodeId>,
    /// Everything each replica inserted, by seq, deleted characters included.
    text: Vec<String>,
    /// The spans in document order, flattened (see the module docs).
    spans: Vec<u32>,
}

/// Why a snapshot could not be read. Nothing is built from a snapshot that fails any check,
/// so a corrupt or hostile one cannot leave a broken document behind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Written by another version of this code.
    #[error(
        "snapshot format {found} is not supported (this build reads format {SNAPSHOT_VERSION})"
    )]
    Version {
        /// The version the snapshot claims.
        found: u32,
    },
    /// The snapshot breaks one of its own rules.
    #[error("malformed snapshot: {0}")]
    Malformed(&'static str),
}

impl TextSnapshot {
    /// How many spans the snapshot holds.
    pub fn spans(&self) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i + 4 <= self.spans.len() {
            let flags = self.spans[i + 3];
            i += 4 + origin_words(flags >> LEFT_SHIFT) + origin_words(flags >> RIGHT_SHIFT);
            n += 1;
        }
        n
    }
}

/// Extra numbers an origin kind takes in the flat span list.
fn origin_words(kind: u32) -> usize {
    if kind & 3 == EXPLICIT {
        2
    } else {
        0
    }
}

impl TextDoc {
    /// A compacted snapshot of this document (see [`TextSnapshot`]), in O(n). Adjacent spans
    /// that are one run are written as one.
    pub fn snapshot(&self) -> TextSnapshot {
        // Snapshot agent numbers: the agents that inserted something, by replica id (so two
        // replicas holding the same items write the same snapshot).
        let mut present: Vec<(NodeId, usize)> = (self.agents.iter().enumerate())
            .filter(|(_, a)| a.chars > 0)
            .map(|(i, a)| (a.replica, i))
            .collect();
        present.sort_unstable();
        let mut index = vec![u32::MAX; self.agents.len()];
        let mut replicas = Vec::with_capacity(present.len());
        let mut text = Vec::with_capacity(present.len());
        for (k, &(replica, i)) in present.iter().enumerate() {
            index[i] = k as u32;
            replicas.push(replica);
            text.push(self.agents[i].text.clone());
        }
        // The runs in document order, adjacent continuing spans merged.
        let mut runs: Vec<Span> = Vec::new();
        for &lid in self.order.iter().filter(|&&l| l != GAP) {
            for span in &self.leaves[lid as usize].spans {
                match runs.last_mut() {
                    Some(last) if last.continued_by(span) => {
                        last.len += span.len;
                        last.len16 += span.len16;
                    }
                    _ => runs.push(span.clone()),
                }
            }
        }
        let mut spans = Vec::with_capacity(runs.len() * 5);
        for (k, s) in runs.iter().enumerate() {
            let prev = k.checked_sub(1).map(|p| runs[p].last());
            let next = runs.get(k + 1).map(|n| n.id);
            let kind = |o: Origin, adjacent: Option<Iid>| match o.get() {
                None => NONE,
                Some(i) if Some(i) == adjacent => ADJACENT,
                Some(_) => EXPLICIT,
            };
            let (left, right) = (kind(s.origin_left, prev), kind(s.origin_right, next));
            spans.extend([
                index[s.id.agent as usize],
                s.id.seq,
                s.len,
                u32::from(s.deleted) | left << LEFT_SHIFT | right << RIGHT_SHIFT,
            ]);
            for (kind, origin) in [(left, s.origin_left), (right, s.origin_right)] {
                if kind == EXPLICIT {
                    let o = origin.0;
                    spans.extend([index[o.agent as usize], o.seq]);
                }
            }
        }
        TextSnapshot {
            v: SNAPSHOT_VERSION,
            replicas,
            text,
            spans,
        }
    }

    /// The document `snapshot` describes, as replica `replica` (which may be one of the
    /// snapshot's replicas: a replica resuming under its old id). Checks every rule of the
    /// format first — every character of every replica in exactly one span, origins naming
    /// characters that exist — and builds nothing from a snapshot that breaks one. O(n).
    pub fn from_snapshot(
        replica: NodeId,
        snapshot: &TextSnapshot,
    ) -> Result<TextDoc, SnapshotError> {
        use SnapshotError::Malformed;
        if snapshot.v != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version { found: snapshot.v });
        }
        if snapshot.text.len() != snapshot.replicas.len() {
            return Err(Malformed("one text per replica"));
        }
        // Internal agents: this replica first, then the others in snapshot order.
        let mut agents = vec![Agent::new(replica)];
        let mut agent_of = Vec::with_capacity(snapshot.replicas.len());
        for (i, &r) in snapshot.replicas.iter().enumerate() {
            if snapshot.replicas[..i].contains(&r) {
                return Err(Malformed("a replica listed twice"));
            }
            if r == replica {
                agent_of.push(0);
            } else {
                agent_of.push(agents.len() as u32);
                agents.push(Agent::new(r));
            }
        }
        for (i, t) in snapshot.text.iter().enumerate() {
            if t.chars().count() >= u32::MAX as usize {
                return Err(Malformed("a replica inserted 2^32 characters"));
            }
            let agent = &mut agents[agent_of[i] as usize];
            agent.push_text(t);
            agent.leaf_of = vec![u32::MAX; agent.chars as usize];
        }
        // Read the spans, resolving agents; origins that name a neighbour come after.
        let words = &snapshot.spans;
        let read_id = |at: usize| -> Result<Iid, SnapshotError> {
            let (a, seq) = (words[at], words[at + 1]);
            let agent = *agent_of
                .get(a as usize)
                .ok_or(Malformed("an origin names an unknown replica"))?;
            if seq >= agents[agent as usize].chars {
                return Err(Malformed("an origin names a character never inserted"));
            }
            Ok(Iid { agent, seq })
        };
        // (span, left kind, right kind)
        let mut spans: Vec<(Span, u32, u32)> = Vec::new();
        let mut at = 0;
        while at < words.len() {
            if at + 4 > words.len() {
                return Err(Malformed("a span cut short"));
            }
            let (a, seq, len, flags) = (words[at], words[at + 1], words[at + 2], words[at + 3]);
            if flags >> 5 != 0 {
                return Err(Malformed("unknown span flags"));
            }
            let (left, right) = ((flags >> LEFT_SHIFT) & 3, (flags >> RIGHT_SHIFT) & 3);
            if left == 3 || right == 3 {
                return Err(Malformed("unknown origin kind"));
            }
            at += 4;
            let agent = *agent_of
                .get(a as usize)
                .ok_or(Malformed("a span names an unknown replica"))?;
            let chars = agents[agent as usize].chars;
            if len == 0 || seq.checked_add(len).is_none_or(|end| end > chars) {
                return Err(Malformed("a span outside its replica's characters"));
            }
            let mut explicit = |kind: u32| -> Result<Origin, SnapshotError> {
                if kind != EXPLICIT {
                    return Ok(Origin::NONE);
                }
                if at + 2 > words.len() {
                    return Err(Malformed("a span cut short"));
                }
                let id = read_id(at)?;
                at += 2;
                Ok(Origin(id))
            };
            let origin_left = explicit(left)?;
            let origin_right = explicit(right)?;
            let id = Iid { agent, seq };
            let len16 = agents[agent as usize].units_in(seq, len);
            spans.push((
                Span {
                    id,
                    len,
                    len16,
                    origin_left,
                    origin_right,
                    deleted: flags & DELETED != 0,
                },
                left,
                right,
            ));
        }
        for k in 0..spans.len() {
            if spans[k].1 == ADJACENT {
                let prev = k
                    .checked_sub(1)
                    .ok_or(Malformed("the first span has no item before it"))?;
                spans[k].0.origin_left = Origin(spans[prev].0.last());
            }
            if spans[k].2 == ADJACENT {
                let next = spans
                    .get(k + 1)
                    .ok_or(Malformed("the last span has no item after it"))?;
                spans[k].0.origin_right = Origin(next.0.id);
            }
        }
        // Leaves half full with a gap slot after each but the last, as `relayout` leaves them.
        let mut doc = TextDoc {
            replica,
            leaves: Vec::new(),
            order: Vec::new(),
            weights: Fenwick::default(),
            agents,
            typing: None,
        };
        let mut spans = spans.into_iter().map(|(s, _, _)| s).peekable();
        loop {
            let lid = doc.leaves.len() as u32;
            let slot = doc.order.len() as u32;
            let chunk: Vec<Span> = spans.by_ref().take(FILL).collect();
            let mut leaf = Leaf {
                spans: Vec::with_capacity(LEAF_CAP + 1),
                order: slot,
                chars: 0,
                units: 0,
            };
            for (si, s) in chunk.into_iter().enumerate() {
                let entries = &mut doc.agents[s.id.agent as usize].leaf_of
                    [s.id.seq as usize..(s.id.seq + s.len) as usize];
                if entries.iter().any(|&e| e != u32::MAX) {
                    return Err(Malformed("a character in two spans"));
                }
                entries.fill(index_entry(lid, si as u32));
                leaf.chars += s.visible();
                leaf.units += s.visible16();
                leaf.spans.push(s);
            }
            doc.leaves.push(leaf);
            doc.order.push(lid);
            if spans.peek().is_none() {
                break;
            }
            doc.order.push(GAP);
        }
        if doc.agents.iter().any(|a| a.leaf_of.contains(&u32::MAX)) {
            return Err(Malformed("a character in no span"));
        }
        let leaves = &doc.leaves;
        doc.weights = Fenwick::build(doc.order.iter().map(|&l| {
            if l == GAP {
                [0, 0]
            } else {
                let leaf = &leaves[l as usize];
                [leaf.chars, leaf.units]
            }
        }));
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::text::{CharId, TextOp};
    use proptest::prelude::*;

    /// Every item in document order: (id, left origin, right origin, deleted) — the state a
    /// document answers later operations from, whatever its spans and leaves look like.
    fn items(d: &TextDoc) -> Vec<(CharId, Option<CharId>, Option<CharId>, bool)> {
        let mut out = Vec::new();
        for &lid in d.order.iter().filter(|&&l| l != GAP) {
            for s in &d.leaves[lid as usize].spans {
                for k in 0..s.len {
                    let left = if k == 0 {
                        s.origin_left.get()
                    } else {
                        Some(s.id.plus(k - 1))
                    };
                    out.push((
                        d.char_id(s.id.plus(k)),
                        left.map(|i| d.char_id(i)),
                        s.origin_right.get().map(|i| d.char_id(i)),
                        s.deleted,
                    ));
                }
            }
        }
        out
    }

    /// Three replicas editing concurrently: each step one replica edits (insert or delete at
    /// a random place) or takes everything another has applied so far (in its order, so
    /// causally). Returns every op in the order it was made (a causal order: a replica only
    /// names what it has applied), and the replicas.
    pub(crate) fn history(steps: &[(u8, u8, u16, u8, bool)]) -> (Vec<TextOp>, Vec<TextDoc>) {
        let mut docs: Vec<TextDoc> = (1..=3).map(TextDoc::new).collect();
        let mut applied: Vec<Vec<TextOp>> = vec![Vec::new(); 3];
        let mut seen = [[0usize; 3]; 3];
        let mut log = Vec::new();
        let texts = ["a", "é😀", "xyz", "\n"];
        for &(who, what, at, n, delete) in steps {
            let who = who as usize % 3;
            if what % 3 == 0 {
                // receive from the next replica
                let from = (who + 1 + what as usize % 2) % 3;
                let new: Vec<TextOp> = applied[from][seen[who][from]..].to_vec();
                seen[who][from] = applied[from].len();
                for op in new {
                    // A duplicate insert is ignored and a repeated delete changes nothing.
                    docs[who].apply_remote(&op).unwrap();
                    applied[who].push(op);
                }
                continue;
            }
            let d = &mut docs[who];
            let len = d.len_chars();
            let pos = at as usize % (len + 1);
            let ops = if delete && len > 0 {
                let pos = pos.min(len - 1);
                d.delete(pos, (n as usize % 4 + 1).min(len - pos)).unwrap()
            } else {
                vec![d.insert(pos, texts[n as usize % texts.len()]).unwrap()]
            };
            for op in ops {
                log.push(op.clone());
                applied[who].push(op);
            }
        }
        // `log` is the order of making: a causal order, since a replica only names what it
        // has applied.
        (log, docs)
    }

    fn arb_steps() -> impl Strategy<Value = Vec<(u8, u8, u16, u8, bool)>> {
        prop::collection::vec(any::<(u8, u8, u16, u8, bool)>(), 0..120)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Snapshot at any cut of the history, then the rest of the ops: the same items and
        /// text as replaying everything, and the rest of the history still applies.
        #[test]
        fn snapshot_then_tail_equals_full_replay(steps in arb_steps(), cut in any::<prop::sample::Index>(), me in 1u32..5) {
            let (log, _) = history(&steps);
            let cut = cut.index(log.len() + 1);
            let mut full = TextDoc::new(9);
            for op in &log[..cut] {
                full.apply_remote(op).unwrap();
            }
            let snap = full.snapshot();
            // Through its wire form, as the relay stores and sends it.
            let snap: TextSnapshot = serde_json::from_str(&serde_json::to_string(&snap).unwrap()).unwrap();
            let mut opened = TextDoc::from_snapshot(me, &snap).unwrap();
            opened.check_invariants();
            prop_assert_eq!(items(&opened), items(&full));
            prop_assert_eq!(opened.text(), full.text());
            for op in &log[cut..] {
                let a = full.apply_remote(op).unwrap();
                let b = opened.apply_remote(op).unwrap();
                prop_assert_eq!(a, b, "the same patches");
            }
            opened.check_invariants();
            prop_assert_eq!(items(&opened), items(&full));
            prop_assert_eq!(opened.text(), full.text());
            // A snapshot of the result is the same whichever way it was reached.
            prop_assert_eq!(opened.snapshot(), full.snapshot());
        }

        /// A replica that appears in the snapshot and opens it under its own id goes on
        /// numbering its characters after the ones the snapshot holds, and local edits work.
        #[test]
        fn own_replica_continues_after_its_snapshot(steps in arb_steps(), pos in any::<u16>()) {
            let (_, docs) = history(&steps);
            let original = &docs[0];
            let mut opened = TextDoc::from_snapshot(1, &original.snapshot()).unwrap();
            prop_assert_eq!(opened.text(), original.text());
            let mut twin = original.clone();
            let pos = pos as usize % (twin.len_chars() + 1);
            let a = twin.insert(pos, "Ω").unwrap();
            let b = opened.insert(pos, "Ω").unwrap();
            prop_assert_eq!(a, b);
            opened.check_invariants();
            prop_assert_eq!(items(&opened), items(&twin));
        }
    }

    #[test]
    fn an_empty_document_round_trips() {
        let d = TextDoc::new(1);
        let s = d.snapshot();
        assert_eq!(s.spans(), 0);
        let o = TextDoc::from_snapshot(2, &s).unwrap();
        o.check_invariants();
        assert_eq!(o.text(), "");
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"v":1,"replicas":[],"text":[],"spans":[]}"#
        );
    }

    #[test]
    fn typing_runs_are_one_span_each() {
        let mut d = TextDoc::new(1);
        d.insert(0, "hello").unwrap();
        d.insert(5, " world").unwrap();
        d.delete(0, 1).unwrap();
        let s = d.snapshot();
        // "h" deleted, "ello world" visible: two spans, the second right after the first.
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"v":1,"replicas":[1],"text":["hello world"],"spans":[0,0,1,1,0,1,10,2]}"#
        );
    }

    #[test]
    fn malformed_snapshots_are_refused() {
        let mut d = TextDoc::new(1);
        d.insert(0, "ab").unwrap();
        d.insert(1, "c").unwrap();
        let good = d.snapshot();
        assert!(TextDoc::from_snapshot(3, &good).is_ok());
        let with = |f: &dyn Fn(&mut TextSnapshot)| {
            let mut s = good.clone();
            f(&mut s);
            TextDoc::from_snapshot(3, &s)
        };
        assert_eq!(
            with(&|s| s.v = 2).err(),
            Some(SnapshotError::Version { found: 2 })
        );
        for (why, f) in [
            (
                "text count",
                &(|s: &mut TextSnapshot| s.text.push("x".into())) as &dyn Fn(&mut TextSnapshot),
            ),
            ("duplicate replica", &|s| {
                s.replicas.push(1);
                s.text.push(String::new());
            }),
            ("char in no span", &|s| s.text[0].push('z')),
            ("span past the text", &|s| {
                s.text[0].pop().map(|_| ()).unwrap_or(())
            }),
            ("cut short", &|s| {
                s.spans.pop();
            }),
            ("unknown agent", &|s| s.spans[0] = 7),
            ("zero length", &|s| s.spans[2] = 0),
            ("bad flags", &|s| s.spans[3] |= 1 << 9),
            ("adjacent left on the first span", &|s| {
                s.spans[3] |= ADJACENT << LEFT_SHIFT
            }),
            ("explicit origin out of range", &|s| {
                s.spans[3] = EXPLICIT << LEFT_SHIFT;
                s.spans.splice(4..4, [0, 99]);
            }),
            ("twice", &|s| {
                let copy: Vec<u32> = s.spans.clone();
                s.spans.extend(copy);
            }),
        ] {
            assert!(
                matches!(with(f), Err(SnapshotError::Malformed(_))),
                "{why}: {:?}",
                with(f)
            );
        }
    }
}
