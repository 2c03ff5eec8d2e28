//! Text CRDT benchmark: our `chronoscope::replication::text::TextDoc` side by side with the crates.io peers
//! `diamond-types`, `yrs` and `automerge`, in one run, on the `automerge-paper` editing trace.
//!
//! - **local**: replay the trace's 259,778 edits as local edits into one replica.
//! - **merge**: apply the same history at a second, empty replica as remote operations.
//!
//! - **shipped path**: what a tab runs on the relay's frames — each `op` frame's JSON text as
//!   the relay writes it, decoded and handed to `EditorSession::receive` (causal delivery, the
//!   CRDT, the patches for the text area) — the row the product's speed is judged on.
//!
//! Time (median of several runs) and peak heap (a counting global allocator) for each, our
//! ratio to each peer, and bytes on the wire per edit. Run with
//! `cargo bench -p chronoscope-bench --bench text_crdt` (optionally `-- <trace-name> <reps>`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use chronoscope::clocks::vector_clock::VectorClock;
use chronoscope::editor::{EditPayload, EditorSession};
use chronoscope::protocol::{Payload, ServerFrame};
use chronoscope::replication::text::{TextDoc, TextOp};

// ---------------------------------------------------------------- counting allocator

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size > layout.size() {
                let now = CURRENT.fetch_add(new_size - layout.size(), Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Relaxed);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// One measured run: wall time and the heap peak above the level at its start.
struct Sample {
    time: Duration,
    peak: usize,
}

/// Runs `f` `reps` times after one untimed warm-up run (when `reps` ≥ 3: the slow peers run
/// fewer times and skip it); the median time and the largest peak.
fn measure<T>(reps: usize, mut f: impl FnMut() -> T, check: impl Fn(&T)) -> Sample {
    if reps >= 3 {
        check(&black_box(f()));
    }
    let mut times = Vec::new();
    let mut peak = 0;
    for _ in 0..reps {
        let base = CURRENT.load(Relaxed);
        PEAK.store(base, Relaxed);
        let start = Instant::now();
        let out = black_box(f());
        let time = start.elapsed();
        peak = peak.max(PEAK.load(Relaxed) - base);
        check(&out);
        drop(out);
        times.push(time);
    }
    times.sort();
    Sample {
        time: times[times.len() / 2],
        peak,
    }
}

// ---------------------------------------------------------------- the trace

type Patch = (usize, usize, String);

fn load(name: &str) -> (Vec<Patch>, String) {
    let path = format!(
        "{}/../../../shared/data/editing-traces/{name}.json.gz",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut json = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("trace file"))
        .read_to_string(&mut json)
        .expect("gzip");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let mut patches = Vec::new();
    for txn in v["txns"].as_array().expect("txns") {
        for p in txn["patches"].as_array().expect("patches") {
            patches.push((
                p[0].as_u64().unwrap() as usize,
                p[1].as_u64().unwrap() as usize,
                p[2].as_str().unwrap().to_owned(),
            ));
        }
    }
    (patches, v["endContent"].as_str().unwrap().to_owned())
}

// ---------------------------------------------------------------- ours

fn ours_local(patches: &[Patch]) -> (TextDoc, Vec<TextOp>) {
    // As the editor does: local ops go into an outbox where typing runs merge in place.
    let mut doc = TextDoc::new(1);
    let mut ops: Vec<TextOp> = Vec::new();
    for (pos, del, ins) in patches {
        if *del > 0 {
            doc.delete_into(*pos, *del, &mut ops).unwrap();
        }
        if !ins.is_empty() {
            doc.insert_into(*pos, ins, &mut ops).unwrap();
        }
    }
    (doc, ops)
}

fn ours_merge(ops: &[TextOp]) -> TextDoc {
    let mut doc = TextDoc::new(2);
    for op in ops {
        doc.apply_remote_quiet(op).unwrap();
    }
    doc
}

fn ours_merge_with_patches(ops: &[TextOp]) -> (TextDoc, usize) {
    let mut doc = TextDoc::new(2);
    let mut n = 0;
    for op in ops {
        n += doc.apply_remote(op).unwrap().len();
    }
    (doc, n)
}

// ---------------------------------------------------------------- ours, the shipped path

/// A relay `op` frame exactly as the relay writes it (`serde_json::to_string` of the frame).
fn relay_frame(from: u32, seq: u64, index: u64, payload: Payload) -> String {
    serde_json::to_string(&ServerFrame::Op {
        from,
        seq,
        index,
        payload,
    })
    .unwrap()
}

/// The relay's frames of the history when replica 1 sent one message per typing run: each op
/// of `ops` (the runs `ours_local` produced) as the payload an `EditorSession` flushes for it —
/// its clock `{1: seq}` (one writer) and the op.
fn frames_per_run(ops: &[TextOp]) -> Vec<String> {
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            let seq = i as u64 + 1;
            let payload = EditPayload {
                c: VectorClock::from_iter([(1, seq)]),
                o: vec![op.clone()],
            };
            relay_frame(1, seq, i as u64, Payload::encode(&payload).unwrap())
        })
        .collect()
}

/// The relay's frames when replica 1 sent every edit the moment it was made: a real
/// `EditorSession` flushed after each edit of the trace.
fn frames_per_edit(patches: &[Patch]) -> Vec<String> {
    let mut s = EditorSession::new(1);
    let mut frames = Vec::with_capacity(patches.len());
    for (pos, del, ins) in patches {
        // The traces are ASCII: char positions are UTF-16 positions.
        s.edit_utf16(*pos, *del, ins).unwrap();
        let out = s.flush(0.0).unwrap();
        frames.push(relay_frame(1, out.seq, out.seq - 1, out.payload));
    }
    frames
}

/// What a tab runs on each frame: decode the frame, then `EditorSession::receive` (causal
/// delivery, the CRDT, the patches for the text area).
fn ours_shipped(frames: &[String]) -> (EditorSession, usize) {
    let mut s = EditorSession::new(2);
    let mut patches = 0;
    for f in frames {
        let ServerFrame::Op {
            from, seq, payload, ..
        } = ServerFrame::from_json(f).unwrap()
        else {
            unreachable!("op frames only")
        };
        patches += s.receive(from, seq, &payload, 0.0).unwrap().len();
    }
    (s, patches)
}

// ---------------------------------------------------------------- peers

fn dt_local(patches: &[Patch]) -> diamond_types::list::ListCRDT {
    let mut doc = diamond_types::list::ListCRDT::new();
    let agent = doc.get_or_create_agent_id("a");
    for (pos, del, ins) in patches {
        if *del > 0 {
            doc.delete_without_content(agent, *pos..*pos + *del);
        }
        if !ins.is_empty() {
            doc.insert(agent, *pos, ins);
        }
    }
    doc
}

fn yrs_doc() -> (yrs::Doc, yrs::TextRef) {
    let doc = yrs::Doc::new();
    let text = doc.get_or_insert_text("text");
    (doc, text)
}

fn yrs_local(patches: &[Patch]) -> (yrs::Doc, yrs::TextRef) {
    use yrs::{Text, Transact};
    let (doc, text) = yrs_doc();
    for (pos, del, ins) in patches {
        let mut txn = doc.transact_mut();
        if *del > 0 {
            text.remove_range(&mut txn, *pos as u32, *del as u32);
        }
        if !ins.is_empty() {
            text.insert(&mut txn, *pos as u32, ins);
        }
    }
    (doc, text)
}

fn yrs_text(doc: &yrs::Doc, text: &yrs::TextRef) -> String {
    use yrs::{GetString, Transact};
    text.get_string(&doc.transact())
}

fn am_local(patches: &[Patch]) -> (automerge::AutoCommit, automerge::ObjId) {
    use automerge::transaction::Transactable;
    let mut doc = automerge::AutoCommit::new();
    let text = doc
        .put_object(automerge::ROOT, "text", automerge::ObjType::Text)
        .unwrap();
    for (pos, del, ins) in patches {
        doc.splice_text(&text, *pos, *del as isize, ins).unwrap();
    }
    doc.commit();
    (doc, text)
}

// ---------------------------------------------------------------- report

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn row(name: &str, s: &Sample, ours: &Sample) {
    println!(
        "| {name:<48} | {:>10.1} | {:>10.2} | {:>13.2} | {:>12.2} |",
        ms(s.time),
        mib(s.peak),
        ms(ours.time) / ms(s.time),
        ours.peak as f64 / s.peak.max(1) as f64,
    );
}

fn header(what: &str) {
    println!("\n### {what}\n");
    println!(
        "| {:<48} | {:>10} | {:>10} | {:>13} | {:>12} |",
        "implementation", "time ms", "peak MiB", "ours/it time", "ours/it mem"
    );
    println!(
        "|{}|{}|{}|{}|{}|",
        "-".repeat(50),
        "-".repeat(12),
        "-".repeat(12),
        "-".repeat(15),
        "-".repeat(14)
    );
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let name = args.next().unwrap_or_else(|| "automerge-paper".to_owned());
    let reps: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let mode = args.next();
    let only_ours = mode.as_deref() == Some("ours");
    let (patches, end) = load(&name);
    if mode.as_deref() == Some("ours-local") {
        // For a profiler: our local replay alone, `reps` times.
        let l = measure(
            reps,
            || ours_local(&patches),
            |(d, _)| assert_eq!(d.text(), end),
        );
        println!("ours: local {:.2} ms {:.2} MiB", ms(l.time), mib(l.peak));
        return;
    }
    if mode.as_deref() == Some("ours-json") {
        // For a profiler: decoding our wire ops alone, `reps` times.
        let (_, ops) = ours_local(&patches);
        let json: Vec<String> = ops
            .iter()
            .map(|op| serde_json::to_string(op).unwrap())
            .collect();
        let m = measure(
            reps,
            || {
                json.iter()
                    .map(|j| serde_json::from_str(j).unwrap())
                    .collect::<Vec<TextOp>>()
            },
            |d| assert_eq!(d, &ops),
        );
        println!(
            "ours: JSON decode {:.2} ms {:.2} MiB",
            ms(m.time),
            mib(m.peak)
        );
        return;
    }
    if mode.as_deref() == Some("ours-merge") {
        // For a profiler: our merge alone, `reps` times.
        let (_, ops) = ours_local(&patches);
        let m = measure(reps, || ours_merge(&ops), |d| assert_eq!(d.text(), end));
        println!("ours: merge {:.2} ms {:.2} MiB", ms(m.time), mib(m.peak));
        return;
    }
    if mode.as_deref() == Some("ours-shipped") {
        // For a profiler: the shipped receive path alone, `reps` times.
        let (_, ops) = ours_local(&patches);
        let frames = frames_per_run(&ops);
        let m = measure(
            reps,
            || ours_shipped(&frames),
            |(s, _)| assert_eq!(s.text(), end),
        );
        println!(
            "ours: shipped path, {} frames, {:.2} ms {:.2} MiB",
            frames.len(),
            ms(m.time),
            mib(m.peak)
        );
        return;
    }
    if only_ours {
        // Quick loop for tuning our implementation alone.
        let l = measure(
            reps,
            || ours_local(&patches),
            |(d, _)| assert_eq!(d.text(), end),
        );
        let (_, ops) = ours_local(&patches);
        let m = measure(
            reps * 10,
            || ours_merge(&ops),
            |d| assert_eq!(d.text(), end),
        );
        println!(
            "ours: local {:.1} ms {:.2} MiB, merge {:.1} ms {:.2} MiB",
            ms(l.time),
            mib(l.peak),
            ms(m.time),
            mib(m.peak)
        );
        return;
    }
    println!(
        "trace `{name}`: {} edits, final {} chars; median of {reps} runs (yrs local: 3, automerge: {} runs)",
        patches.len(),
        end.chars().count(),
        reps.min(2)
    );

    // ---- local
    let ours_l = measure(
        reps,
        || ours_local(&patches),
        |(d, _)| assert_eq!(d.text(), end),
    );
    let dt_l = measure(
        reps,
        || dt_local(&patches),
        |d| assert_eq!(d.branch.content().to_string(), end),
    );
    let yrs_l = measure(
        reps.min(3),
        || yrs_local(&patches),
        |(d, t)| assert_eq!(yrs_text(d, t), end),
    );
    let am_l = measure(
        reps.min(2),
        || am_local(&patches),
        |(d, t)| {
            use automerge::ReadDoc;
            assert_eq!(d.text(t).unwrap(), end)
        },
    );

    header("local: replay every edit into one replica");
    row("chronoscope TextDoc", &ours_l, &ours_l);
    row("diamond-types ListCRDT", &dt_l, &ours_l);
    row("yrs (one txn per edit)", &yrs_l, &ours_l);
    row("automerge AutoCommit (one commit)", &am_l, &ours_l);

    // ---- remote inputs (built outside the timed region)
    let (_, ops) = ours_local(&patches);
    let dt_src = dt_local(&patches);
    let dt_bytes = dt_src
        .oplog
        .encode(diamond_types::list::encoding::ENCODE_FULL);
    let (yrs_src, _) = yrs_local(&patches);
    let yrs_update = {
        use yrs::{ReadTxn, Transact};
        yrs_src
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default())
    };
    let (mut am_src, _) = am_local(&patches);
    let am_changes = am_src.get_changes(&[]);
    let am_saved = am_src.save();
    let ops_json: Vec<String> = ops
        .iter()
        .map(|op| serde_json::to_string(op).unwrap())
        .collect();
    let run_frames = frames_per_run(&ops);
    let edit_frames = frames_per_edit(&patches);

    // ---- merge
    let ours_m = measure(reps, || ours_merge(&ops), |d| assert_eq!(d.text(), end));
    let ours_mp = measure(
        reps,
        || ours_merge_with_patches(&ops),
        |(d, _)| assert_eq!(d.text(), end),
    );
    let ours_mj = measure(
        reps,
        || {
            let ops: Vec<TextOp> = ops_json
                .iter()
                .map(|j| serde_json::from_str(j).unwrap())
                .collect();
            ours_merge(&ops)
        },
        |d| assert_eq!(d.text(), end),
    );
    let ours_sr = measure(
        reps,
        || ours_shipped(&run_frames),
        |(s, _)| assert_eq!(s.text(), end),
    );
    let ours_se = measure(
        reps,
        || ours_shipped(&edit_frames),
        |(s, _)| assert_eq!(s.text(), end),
    );
    let dt_m = measure(
        reps,
        || {
            let mut b = diamond_types::list::Branch::new();
            b.merge(&dt_src.oplog, dt_src.oplog.local_version_ref());
            b
        },
        |b| assert_eq!(b.content().to_string(), end),
    );
    let dt_mb = measure(
        reps,
        || {
            let mut d = diamond_types::list::ListCRDT::new();
            d.merge_data_and_ff(&dt_bytes).unwrap();
            d
        },
        |d| assert_eq!(d.branch.content().to_string(), end),
    );
    let yrs_m = measure(
        reps,
        || {
            use yrs::updates::decoder::Decode;
            use yrs::Transact;
            let (doc, text) = yrs_doc();
            doc.transact_mut()
                .apply_update(yrs::Update::decode_v1(&yrs_update).unwrap())
                .unwrap();
            (doc, text)
        },
        |(d, t)| assert_eq!(yrs_text(d, t), end),
    );
    // yrs with the update decoded before the clock starts (one decoded copy per run), to
    // compare in-memory apply with in-memory apply.
    let mut yrs_decoded: Vec<yrs::Update> = (0..=reps)
        .map(|_| {
            use yrs::updates::decoder::Decode;
            yrs::Update::decode_v1(&yrs_update).unwrap()
        })
        .collect();
    let yrs_m_mem = measure(
        reps,
        || {
            use yrs::Transact;
            let update = yrs_decoded
                .pop()
                .expect("one decoded update per run and the warm-up");
            let (doc, text) = yrs_doc();
            doc.transact_mut().apply_update(update).unwrap();
            (doc, text)
        },
        |(d, t)| assert_eq!(yrs_text(d, t), end),
    );
    let am_m = measure(
        reps.min(2),
        || {
            let mut doc = automerge::AutoCommit::new();
            doc.apply_changes(am_changes.clone()).unwrap();
            doc
        },
        |d| {
            use automerge::ReadDoc;
            let (_, text) = d.get(automerge::ROOT, "text").unwrap().unwrap();
            assert_eq!(d.text(&text).unwrap(), end)
        },
    );

    header("merge: apply the same history as remote ops at a second replica");
    row(
        "chronoscope apply_remote_quiet (in memory)",
        &ours_m,
        &ours_m,
    );
    row(
        "chronoscope apply_remote (+patches, in memory)",
        &ours_mp,
        &ours_m,
    );
    row(
        "chronoscope op JSON decode + apply_remote_quiet",
        &ours_mj,
        &ours_m,
    );
    row(
        "chronoscope shipped: frames → receive (1/run)",
        &ours_sr,
        &ours_m,
    );
    row(
        "chronoscope shipped: frames → receive (1/edit)",
        &ours_se,
        &ours_m,
    );
    row("diamond-types Branch::merge", &dt_m, &ours_m);
    row("diamond-types decode + merge", &dt_mb, &ours_m);
    row("yrs apply_update (pre-decoded update)", &yrs_m_mem, &ours_m);
    row("yrs decode + apply_update", &yrs_m, &ours_m);
    row("automerge apply_changes", &am_m, &ours_m);

    // ---- wire
    let edits = patches.len() as f64;
    let batched: usize = ops_json.iter().map(String::len).sum();
    let single: usize = {
        // Each edit sent the moment it is made: its own op(s), no merging.
        let mut doc = TextDoc::new(1);
        let mut bytes = 0;
        for (pos, del, ins) in &patches {
            if *del > 0 {
                for op in doc.delete(*pos, *del).unwrap() {
                    bytes += serde_json::to_string(&op).unwrap().len();
                }
            }
            if !ins.is_empty() {
                bytes += serde_json::to_string(&doc.insert(*pos, ins).unwrap())
                    .unwrap()
                    .len();
            }
        }
        bytes
    };
    let yrs_single: usize = {
        use yrs::{Text, Transact};
        let (doc, text) = yrs_doc();
        let mut bytes = 0;
        for (pos, del, ins) in &patches {
            let mut txn = doc.transact_mut();
            if *del > 0 {
                text.remove_range(&mut txn, *pos as u32, *del as u32);
            }
            if !ins.is_empty() {
                text.insert(&mut txn, *pos as u32, ins);
            }
            bytes += txn.encode_update_v1().len();
        }
        bytes
    };
    println!(
        "\n### bytes on the wire per edit ({} edits)\n",
        patches.len()
    );
    println!("| encoding | total bytes | bytes/edit |");
    println!("|---|---:|---:|");
    println!(
        "| chronoscope JSON op per edit, sent at once (no merging) | {single} | {:.1} |",
        single as f64 / edits
    );
    println!(
        "| chronoscope JSON ops, typing runs merged ({} ops) | {batched} | {:.2} |",
        ops.len(),
        batched as f64 / edits
    );
    println!(
        "| yrs v1 update per edit | {yrs_single} | {:.1} |",
        yrs_single as f64 / edits
    );
    println!(
        "| yrs v1 whole-history update | {} | {:.2} |",
        yrs_update.len(),
        yrs_update.len() as f64 / edits
    );
    println!(
        "| diamond-types encoded oplog (full) | {} | {:.2} |",
        dt_bytes.len(),
        dt_bytes.len() as f64 / edits
    );
    println!(
        "| automerge save() | {} | {:.2} |",
        am_saved.len(),
        am_saved.len() as f64 / edits
    );

    // ---- the targets, checked on this run's numbers
    let ratio = |ours: &Sample, it: &Sample| ms(ours.time) / ms(it.time);
    let target = |what: &str, r: f64, limit: f64| {
        let verdict = if r < limit { "met" } else { "NOT met" };
        println!("| {what} | {r:.2}× | < {limit}× | {verdict} |");
    };
    println!("\n### targets (time ratio ours / peer)\n");
    println!("| comparison | ratio | target | |");
    println!("|---|---:|---:|---|");
    target("local vs diamond-types", ratio(&ours_l, &dt_l), 2.0);
    target("local vs yrs", ratio(&ours_l, &yrs_l), 1.0);
    target("local vs automerge", ratio(&ours_l, &am_l), 1.0);
    target(
        "merge vs diamond-types (both in memory; dt replays a linear history without the CRDT)",
        ratio(&ours_m, &dt_m),
        2.0,
    );
    target(
        "merge incl. decoding vs diamond-types (our JSON vs its binary)",
        ratio(&ours_mj, &dt_mb),
        2.0,
    );
    target(
        "merge vs yrs (both in memory)",
        ratio(&ours_m, &yrs_m_mem),
        1.0,
    );
    target(
        "merge incl. decoding vs yrs (our JSON vs its binary)",
        ratio(&ours_mj, &yrs_m),
        1.0,
    );
    target("merge vs automerge", ratio(&ours_m, &am_m), 1.0);
    target(
        "shipped path (relay frames → EditorSession::receive, a message per typing run) vs diamond-types decode + merge",
        ratio(&ours_sr, &dt_mb),
        2.0,
    );
    target(
        "shipped path (a message per typing run) vs yrs decode + apply_update",
        ratio(&ours_sr, &yrs_m),
        1.0,
    );
    println!(
        "| (no target) shipped path, a message per edit ({} frames) vs diamond-types decode + merge | {:.2}× | — | |",
        edit_frames.len(),
        ratio(&ours_se, &dt_mb)
    );
}
