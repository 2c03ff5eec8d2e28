//! The text CRDT at its boundaries: real editing traces, convergence of replicas under random
//! concurrent edits and random causal delivery orders, non-ASCII positions, the wire form.

use std::io::Read;

use chronoscope::causality::holdback::{CausalMessage, HoldBackQueue};
use chronoscope::replication::text::{map_caret_utf16, CharId, Patch, TextDoc, TextError, TextOp};
use chronoscope::NodeId;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

// ---------------------------------------------------------------- traces

#[derive(Deserialize)]
struct Trace {
    #[serde(rename = "endContent")]
    end_content: String,
    txns: Vec<Txn>,
}

#[derive(Deserialize)]
struct Txn {
    patches: Vec<(usize, usize, String)>,
}

fn load_trace(name: &str) -> Trace {
    let path = format!(
        "{}/../../shared/data/editing-traces/{name}.json.gz",
        env!("CARGO_MANIFEST_DIR")
    );
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut json = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut json)
        .expect("gzip");
    serde_json::from_str(&json).expect("trace json")
}

/// Replays a trace as local edits at replica 1, then its ops as remote ops at replica 2, checking
/// both against `endContent`; returns the ops.
fn replay(name: &str) -> Vec<TextOp> {
    let trace = load_trace(name);
    // Twice: ops returned one by one and merged with `try_merge`, and ops merged in place in
    // an outbox (`insert_into`/`delete_into`); both must give the same ops.
    let mut local = TextDoc::new(1);
    let mut ops: Vec<TextOp> = Vec::new();
    let mut push = |op: TextOp| {
        if !ops.last_mut().is_some_and(|last| last.try_merge(&op)) {
            ops.push(op);
        }
    };
    let mut local_into = TextDoc::new(1);
    let mut outbox: Vec<TextOp> = Vec::new();
    for txn in &trace.txns {
        for (pos, del, ins) in &txn.patches {
            if *del > 0 {
                local
                    .delete(*pos, *del)
                    .unwrap()
                    .into_iter()
                    .for_each(&mut push);
                local_into.delete_into(*pos, *del, &mut outbox).unwrap();
            }
            if !ins.is_empty() {
                push(local.insert(*pos, ins).unwrap());
                local_into.insert_into(*pos, ins, &mut outbox).unwrap();
            }
        }
    }
    local.check_invariants();
    assert_eq!(local.text(), trace.end_content, "{name}: local replay");
    local_into.check_invariants();
    assert_eq!(
        local_into.text(),
        trace.end_content,
        "{name}: local replay, outbox"
    );
    // Greedy merging is not confluent for deletes (merging a delete's pieces before or after
    // the outbox's last op can leave one more or one fewer op), so compare effects.
    let mut remote_into = TextDoc::new(2);
    for op in &outbox {
        remote_into.apply_remote_quiet(op).unwrap();
    }
    assert_eq!(
        remote_into.text(),
        trace.end_content,
        "{name}: remote replay, outbox"
    );
    let inserts = |ops: &[TextOp]| {
        ops.iter()
            .filter(|o| matches!(o, TextOp::Insert { .. }))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(inserts(&outbox), inserts(&ops), "{name}: inserts");
    let deleted = |ops: &[TextOp]| {
        ops.iter()
            .map(|o| {
                if let TextOp::Delete { len, .. } = o {
                    *len as usize
                } else {
                    0
                }
            })
            .sum::<usize>()
    };
    assert_eq!(deleted(&outbox), deleted(&ops), "{name}: deleted chars");
    let mut remote = TextDoc::new(2);
    for op in &ops {
        remote.apply_remote_quiet(op).unwrap();
    }
    remote.check_invariants();
    assert_eq!(remote.text(), trace.end_content, "{name}: remote replay");
    ops
}

#[test]
fn trace_sveltecomponent_replays_to_end_content() {
    replay("sveltecomponent");
}

#[test]
fn trace_rustcode_replays_to_end_content() {
    replay("rustcode");
}

#[test]
fn trace_seph_blog1_replays_to_end_content() {
    replay("seph-blog1");
}

#[test]
fn trace_automerge_paper_replays_to_end_content() {
    let ops = replay("automerge-paper");
    // Typing runs merge: far fewer ops than the trace's 259,778 patches.
    assert!(ops.len() < 259_778 / 2, "{} ops", ops.len());
}

// ---------------------------------------------------------------- replicas and delivery

/// `n` replicas, each a `TextDoc` behind a real `HoldBackQueue` (causal broadcast); each keeps a
/// plain-string model of its own text, updated only through the patches the CRDT returns.
/// Messages carry a *batch* of ops (a run of local edits merged with `try_merge`), and the
/// network delivers them to each replica in a random order — not causal, with duplicates — so
/// the hold-back queue has real work to do.
struct Cluster {
    docs: Vec<TextDoc>,
    queues: Vec<HoldBackQueue<Vec<TextOp>>>,
    models: Vec<Vec<char>>,
    /// Per replica, local ops not yet broadcast (merged into runs).
    outbox: Vec<Vec<TextOp>>,
    /// Per replica, messages in flight to it.
    inflight: Vec<Vec<CausalMessage<Vec<TextOp>>>>,
    now: f64,
}

impl Cluster {
    fn new(n: usize) -> Self {
        Cluster {
            docs: (0..n).map(|i| TextDoc::new(10 + i as NodeId)).collect(),
            queues: (0..n)
                .map(|i| HoldBackQueue::new(10 + i as NodeId))
                .collect(),
            models: vec![Vec::new(); n],
            outbox: vec![Vec::new(); n],
            inflight: vec![Vec::new(); n],
            now: 0.0,
        }
    }

    fn queue_op(&mut self, r: usize, op: TextOp) {
        let out = &mut self.outbox[r];
        if !out.last_mut().is_some_and(|last| last.try_merge(&op)) {
            out.push(op);
        }
    }

    /// Broadcasts `r`'s pending ops as one causal message.
    fn flush(&mut self, r: usize) {
        if self.outbox[r].is_empty() {
            return;
        }
        self.now += 1.0;
        let batch = std::mem::take(&mut self.outbox[r]);
        let msg = self.queues[r].send(batch, self.now);
        for (to, inflight) in self.inflight.iter_mut().enumerate() {
            if to != r {
                inflight.push(msg.clone());
            }
        }
    }

    /// A random local edit at replica `r`, checked against the string model.
    fn local_edit(&mut self, r: usize, rng: &mut StdRng, alphabet: &[&str]) {
        let len = self.models[r].len();
        if len > 0 && rng.gen_bool(0.35) {
            let pos = rng.gen_range(0..len);
            let n = rng.gen_range(1..=(len - pos).min(4));
            let ops = self.docs[r].delete(pos, n).unwrap();
            self.models[r].drain(pos..pos + n);
            for op in ops {
                self.queue_op(r, op);
            }
        } else {
            let pos = rng.gen_range(0..=len);
            let text: String = (0..rng.gen_range(1..=3))
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            let op = self.docs[r].insert(pos, &text).unwrap();
            self.models[r].splice(pos..pos, text.chars());
            self.queue_op(r, op);
        }
        assert_eq!(self.docs[r].text(), self.model_text(r));
    }

    fn model_text(&self, r: usize) -> String {
        self.models[r].iter().collect()
    }

    /// One random in-flight message arrives at `r` (sometimes a copy stays in flight: a
    /// duplicate); whatever the hold-back queue delivers is applied.
    fn arrive_one(&mut self, r: usize, rng: &mut StdRng) {
        if self.inflight[r].is_empty() {
            return;
        }
        let i = rng.gen_range(0..self.inflight[r].len());
        let msg = if rng.gen_bool(0.1) {
            self.inflight[r][i].clone()
        } else {
            self.inflight[r].swap_remove(i)
        };
        self.now += 1.0;
        let delivered = self.queues[r].receive(msg, self.now).unwrap();
        for m in delivered {
            for op in &m.payload {
                let patches = self.docs[r].apply_remote(op).unwrap();
                let after: Vec<char> = self.docs[r].text().chars().collect();
                apply_patches(&mut self.models[r], &patches, &after);
                assert_eq!(
                    self.docs[r].text(),
                    self.model_text(r),
                    "patches track the text"
                );
            }
        }
    }

    fn deliver_all(&mut self, rng: &mut StdRng) {
        for r in 0..self.docs.len() {
            self.flush(r);
        }
        for r in 0..self.docs.len() {
            while !self.inflight[r].is_empty() {
                self.arrive_one(r, rng);
            }
            assert_eq!(self.queues[r].held_len(), 0, "a message stayed held");
        }
    }
}

/// Applies patches to a plain model (an insert op yields one patch, so inserted text is read
/// from the doc's resulting text), checking the UTF-16 fields against the model.
fn apply_patches(model: &mut Vec<char>, patches: &[Patch], after: &[char]) {
    let units = |cs: &[char]| cs.iter().map(|c| c.len_utf16()).sum::<usize>();
    for p in patches {
        match *p {
            Patch::Insert {
                pos,
                pos_utf16,
                len,
                len_utf16,
            } => {
                assert_eq!(pos_utf16, units(&model[..pos]));
                assert_eq!(len_utf16, units(&after[pos..pos + len]));
                model.splice(pos..pos, after[pos..pos + len].iter().copied());
            }
            Patch::Delete {
                pos,
                pos_utf16,
                len,
                len_utf16,
            } => {
                assert_eq!(pos_utf16, units(&model[..pos]));
                assert_eq!(len_utf16, units(&model[pos..pos + len]));
                model.drain(pos..pos + len);
            }
        }
    }
}

/// The simulation: random local edits at random replicas interleaved with random causal
/// deliveries, then everything delivered; all replicas must hold the same text.
fn simulate(seed: u64, replicas: usize, steps: usize, alphabet: &[&str]) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut c = Cluster::new(replicas);
    for _ in 0..steps {
        let r = rng.gen_range(0..replicas);
        match rng.gen_range(0..10) {
            0..=4 => c.local_edit(r, &mut rng, alphabet),
            5 => c.flush(r),
            _ => c.arrive_one(r, &mut rng),
        }
    }
    c.deliver_all(&mut rng);
    let text = c.docs[0].text();
    for (r, d) in c.docs.iter().enumerate() {
        d.check_invariants();
        assert_eq!(d.text(), text, "seed {seed}: replica {r} diverged");
    }
    text
}

const ASCII: &[&str] = &["a", "b", "c", "d", " "];
const WORLD: &[&str] = &["é", "ü", "中", "文", "😀", "👍🏽", "a", "\n"];

#[test]
fn fuzz_three_replicas_fixed_seeds() {
    for seed in 0..40 {
        simulate(seed, 3, 300, ASCII);
    }
}

#[test]
fn fuzz_five_replicas_non_ascii_fixed_seeds() {
    for seed in 100..120 {
        simulate(seed, 5, 400, WORLD);
    }
}

#[test]
fn fuzz_long_histories_split_leaves_under_concurrency() {
    // Long enough that the documents outgrow one leaf many times over while edits race.
    for seed in 200..202 {
        let text = simulate(seed, 3, 2500, ASCII);
        assert!(text.chars().count() > 500, "{}", text.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn replicas_converge_under_any_causal_delivery_order(
        seed in any::<u64>(), replicas in 3usize..=5, steps in 10usize..200,
    ) {
        simulate(seed, replicas, steps, WORLD);
    }
}

// ---------------------------------------------------------------- concurrency cases

#[test]
fn concurrent_typing_at_one_place_does_not_interleave() {
    let mut a = TextDoc::new(1);
    let mut b = TextDoc::new(2);
    let base = a.insert(0, "[]").unwrap();
    b.apply_remote(&base).unwrap();
    // Keystroke by keystroke, each its own op.
    let mut a_ops = Vec::new();
    let mut b_ops = Vec::new();
    for (i, (x, y)) in "abc".chars().zip("xyz".chars()).enumerate() {
        a_ops.push(a.insert(1 + i, &x.to_string()).unwrap());
        b_ops.push(b.insert(1 + i, &y.to_string()).unwrap());
    }
    for op in &b_ops {
        a.apply_remote(op).unwrap();
    }
    for op in &a_ops {
        b.apply_remote(op).unwrap();
    }
    assert_eq!(a.text(), b.text());
    assert!(
        a.text() == "[abcxyz]" || a.text() == "[xyzabc]",
        "{}",
        a.text()
    );
}

#[test]
fn concurrent_deletes_of_the_same_text_converge() {
    let mut a = TextDoc::new(1);
    let mut b = TextDoc::new(2);
    b.apply_remote(&a.insert(0, "hello world").unwrap())
        .unwrap();
    let da = a.delete(2, 6).unwrap();
    let db = b.delete(4, 5).unwrap();
    for op in &db {
        a.apply_remote(op).unwrap();
    }
    for op in &da {
        b.apply_remote(op).unwrap();
    }
    assert_eq!(a.text(), "held");
    assert_eq!(b.text(), "held");
    // Re-delivery changes nothing.
    assert!(a.apply_remote(&db[0]).unwrap().is_empty());
    assert_eq!(a.text(), "held");
}

#[test]
fn ops_out_of_causal_order_are_refused_without_damage() {
    let mut a = TextDoc::new(1);
    let mut b = TextDoc::new(2);
    let first = a.insert(0, "ab").unwrap();
    let second = a.insert(1, "X").unwrap();
    assert_eq!(
        b.apply_remote(&second),
        Err(TextError::SeqGap {
            replica: 1,
            seq: 2,
            expected: 0
        })
    );
    let del = a.delete(0, 1).unwrap();
    assert_eq!(
        b.apply_remote(&del[0]),
        Err(TextError::UnknownCharacter(CharId { replica: 1, seq: 0 }))
    );
    assert_eq!(b.text(), "");
    b.apply_remote(&first).unwrap();
    b.apply_remote(&second).unwrap();
    b.apply_remote(&del[0]).unwrap();
    assert_eq!(b.text(), a.text());
    // A duplicate is ignored.
    assert!(b.apply_remote(&first).unwrap().is_empty());
    assert_eq!(b.text(), "Xb");
    b.check_invariants();
}

// ---------------------------------------------------------------- positions

#[test]
fn utf16_positions_for_accents_cjk_and_emoji() {
    let mut d = TextDoc::new(1);
    d.insert(0, "héllo 中文 😀!").unwrap();
    // h é l l o ␠ 中 文 ␠ 😀 !  → 11 chars, 12 UTF-16 units
    assert_eq!(d.len_chars(), 11);
    assert_eq!(d.len_utf16(), 12);
    assert_eq!(d.char_to_utf16(10).unwrap(), 11);
    assert_eq!(d.utf16_to_char(11).unwrap(), 10);
    assert_eq!(d.utf16_to_char(10), Err(TextError::SplitsSurrogatePair(10)));
    // Insert after the emoji in UTF-16 units.
    d.insert_utf16(11, "👍🏽").unwrap();
    assert_eq!(d.text(), "héllo 中文 😀👍🏽!");
    // Delete the emoji (2 units) and the thumbs up with skin tone (4 units).
    d.delete_utf16(9, 6).unwrap();
    assert_eq!(d.text(), "héllo 中文 !");
    assert_eq!(
        d.delete_utf16(0, 99),
        Err(TextError::OutOfRange { pos: 99, len: 10 })
    );
    d.check_invariants();
}

#[test]
fn remote_patches_move_a_utf16_caret() {
    let mut a = TextDoc::new(1);
    let mut b = TextDoc::new(2);
    b.apply_remote(&a.insert(0, "😀 world").unwrap()).unwrap();
    // b's caret sits before "world": UTF-16 position 3.
    let caret = 3;
    let ins = a.insert(1, "中😀").unwrap();
    let patches = b.apply_remote(&ins).unwrap();
    assert_eq!(
        patches,
        vec![Patch::Insert {
            pos: 1,
            pos_utf16: 2,
            len: 2,
            len_utf16: 3
        }]
    );
    let caret = map_caret_utf16(caret, &patches);
    assert_eq!(caret, 6);
    assert_eq!(
        &b.text().encode_utf16().collect::<Vec<_>>()[caret..],
        "world".encode_utf16().collect::<Vec<_>>()
    );
    // An insert after the caret leaves it; a delete before it pulls it back.
    let patches = b.apply_remote(&a.insert(9, "!").unwrap()).unwrap();
    assert_eq!(map_caret_utf16(caret, &patches), 6);
    let dels = a.delete(0, 1).unwrap();
    let patches = b.apply_remote(&dels[0]).unwrap();
    assert_eq!(map_caret_utf16(caret, &patches), 4);
    assert_eq!(b.text(), a.text());
}

// ---------------------------------------------------------------- wire

#[test]
fn typing_a_word_is_one_op_on_the_wire() {
    let mut d = TextDoc::new(7);
    let mut batch = d.insert(0, "h").unwrap();
    for (i, c) in "ello".chars().enumerate() {
        let op = d.insert(1 + i, &c.to_string()).unwrap();
        assert!(batch.try_merge(&op));
    }
    let json = serde_json::to_string(&batch).unwrap();
    assert_eq!(json, r#"[7,0,"hello",null,null]"#);
    let back: TextOp = serde_json::from_str(&json).unwrap();
    assert_eq!(back, batch);
    let mut other = TextDoc::new(8);
    other.apply_remote(&back).unwrap();
    assert_eq!(other.text(), "hello");

    // Backspacing three characters is one delete op.
    let mut dels = d.delete(4, 1).unwrap();
    for pos in [3, 2] {
        let op = d.delete(pos, 1).unwrap().remove(0);
        assert!(dels[0].try_merge(&op));
    }
    let json = serde_json::to_string(&dels[0]).unwrap();
    assert_eq!(json, "[7,2,3]");
    other
        .apply_remote(&serde_json::from_str(&json).unwrap())
        .unwrap();
    assert_eq!(other.text(), "he");
}

#[test]
fn an_outbox_merges_only_what_it_holds() {
    let mut d = TextDoc::new(3);
    let mut other = TextDoc::new(4);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    // One run of typing split over two outboxes (the first flushed after "ab", then the run
    // goes on in the second and back in the first): no op may claim characters it lacks.
    d.insert_into(0, "ab", &mut a).unwrap();
    d.insert_into(2, "c", &mut b).unwrap();
    d.insert_into(3, "d", &mut a).unwrap();
    d.insert_into(4, "é", &mut a).unwrap();
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(b.len(), 1);
    for op in [&a[0], &b[0], &a[1]] {
        other.apply_remote(op).unwrap();
    }
    assert_eq!(other.text(), "abcdé");
    // Deletes merge backwards and forwards into the outbox's last op, not across others.
    let mut c = Vec::new();
    d.delete_into(4, 1, &mut c).unwrap();
    d.delete_into(3, 1, &mut c).unwrap();
    d.insert_into(3, "x", &mut c).unwrap();
    d.delete_into(0, 1, &mut c).unwrap();
    assert_eq!(c.len(), 3, "{c:?}");
    assert_eq!(
        c[0],
        TextOp::Delete {
            target: CharId { replica: 3, seq: 3 },
            len: 2
        }
    );
    for op in &c {
        other.apply_remote(op).unwrap();
    }
    assert_eq!(other.text(), d.text());
    assert_eq!(d.text(), "bcx");
    assert_eq!(
        d.insert_into(9, "y", &mut c),
        Err(TextError::OutOfRange { pos: 9, len: 3 })
    );
    assert_eq!(c.len(), 3, "a refused edit leaves the outbox alone");
}

#[test]
fn origins_of_the_ops_own_replica_are_a_bare_seq_on_the_wire() {
    let op = TextOp::Insert {
        id: CharId {
            replica: 7,
            seq: 41,
        },
        origin_left: Some(CharId {
            replica: 7,
            seq: 40,
        }),
        origin_right: Some(CharId {
            replica: 3,
            seq: 12,
        }),
        text: "h".into(),
    };
    assert_eq!(
        serde_json::to_string(&op).unwrap(),
        r#"[7,41,"h",40,[3,12]]"#
    );
    // The long form of an own origin reads the same.
    let long: TextOp = serde_json::from_str(r#"[7,41,"h",[7,40],[3,12]]"#).unwrap();
    assert_eq!(long, op);
}

#[test]
fn malformed_wire_ops_are_rejected() {
    for bad in [
        r#"[1,0,"",null,null]"#,
        "[1,0,0]",
        r#"[1,"x",3]"#,
        "{}",
        "[1,4294967295,2]",
        r#"[1,0,"x",null]"#,
        r#"[1,0,"x",null,null,7]"#,
        "[1,0,3,9]",
        "[1,0,-1]",
        "[1,0,4294967296]",
        r#"[1,0,"x",[1,2,3],null]"#,
        r#"[1,0,"x",-2,null]"#,
        r#"[1,0,"x",4294967296,null]"#,
        r#"[1,0,"x",[1],null]"#,
        r#"[1,0,"x",null,"y"]"#,
        r#"[1,4294967295,"ab",null,null]"#,
        r#"[-1,0,"x",null,null]"#,
        "[1,0]",
        "[]",
        "7",
    ] {
        assert!(serde_json::from_str::<TextOp>(bad).is_err(), "{bad}");
        let value: serde_json::Value = serde_json::from_str(bad).unwrap();
        assert!(serde_json::from_value::<TextOp>(value).is_err(), "{bad}");
    }
    for good in [
        TextOp::Insert {
            id: CharId { replica: 3, seq: 9 },
            origin_left: Some(CharId { replica: 1, seq: 0 }),
            origin_right: None,
            text: "é 日本 🦀 \"q\"".into(),
        },
        TextOp::Insert {
            id: CharId { replica: 3, seq: 9 },
            origin_left: Some(CharId { replica: 3, seq: 8 }),
            origin_right: Some(CharId { replica: 2, seq: 0 }),
            text: "x".into(),
        },
        TextOp::Delete {
            target: CharId { replica: 2, seq: 4 },
            len: 3,
        },
    ] {
        let json = serde_json::to_string(&good).unwrap();
        assert_eq!(
            serde_json::from_str::<TextOp>(&json).unwrap(),
            good,
            "{json}"
        );
        let value = serde_json::to_value(&good).unwrap();
        assert_eq!(serde_json::from_value::<TextOp>(value).unwrap(), good);
    }
}
