//! The hand-written readers of the hot wire paths (`EditPayload::from_json`,
//! `ServerFrame::from_json`, `ClientFrame::from_json`) against serde_json as the oracle: on
//! what our serializers write and on every small corruption of it, they accept exactly what
//! serde_json accepts and return the same values.

use chronoscope::clocks::vector_clock::VectorClock;
use chronoscope::editor::EditPayload;
use chronoscope::protocol::{ClientFrame, Payload, ServerFrame};
use chronoscope::replication::text::{CharId, TextOp};
use proptest::prelude::*;

fn arb_id() -> impl Strategy<Value = CharId> {
    (0u32..4, prop_oneof![0u32..50, Just(u32::MAX - 1)])
        .prop_map(|(replica, seq)| CharId { replica, seq })
}

fn arb_op() -> impl Strategy<Value = TextOp> {
    prop_oneof![
        (
            arb_id(),
            prop::option::of(arb_id()),
            prop::option::of(arb_id()),
            // quotes, backslashes, control characters, non-ASCII, astral
            "(a|é|😀|\"|\\\\|\n|\u{1}|\u{7f}|\u{2028}|x){1,6}",
        )
            .prop_filter("fits u32", |(id, _, _, t)| {
                u64::from(id.seq) + t.chars().count() as u64 <= u64::from(u32::MAX)
            })
            .prop_map(|(id, l, r, text)| TextOp::Insert {
                id,
                origin_left: l,
                origin_right: r,
                text,
            }),
        (arb_id(), 1u32..9).prop_map(|(target, len)| TextOp::Delete {
            target: CharId {
                seq: target.seq.min(1000),
                ..target
            },
            len
        }),
    ]
}

fn arb_payload() -> impl Strategy<Value = EditPayload> {
    (
        prop::collection::vec((0u32..6, 1u64..u64::MAX), 0..4),
        prop::collection::vec(arb_op(), 0..4),
    )
        .prop_map(|(c, o)| EditPayload {
            c: c.into_iter().collect::<VectorClock>(),
            o,
        })
}

/// One small corruption of `text`: a byte removed, replaced or inserted. `None` when the
/// result is not UTF-8, or holds a number no `f64` can (`1e999`: valid JSON that serde's
/// derived enum decoders refuse and a payload kept as text does not — a difference of serde's
/// buffering, not of the readers under test).
fn corrupt(text: &str, at: usize, edit: u8, byte: u8) -> Option<String> {
    let mut b = text.as_bytes().to_vec();
    let i = at % (b.len() + 1);
    match edit % 3 {
        0 if i < b.len() => {
            b.remove(i);
        }
        1 if i < b.len() => b[i] = byte,
        _ => b.insert(i, byte),
    }
    let s = String::from_utf8(b).ok()?;
    let out_of_range = serde_json::from_str::<serde_json::Value>(&s)
        .is_err_and(|e| e.to_string().contains("out of range"));
    (!out_of_range).then_some(s)
}

const BYTES: &[u8] = b"{}[]\",:-.0123456789eEnul \\tu\x01";

/// What a payload means to the editor (a frame read by serde's derived decoder has its
/// payload re-written through a tree — floats may print differently — while the other paths
/// keep the text verbatim, so payloads compare by meaning).
type Meaning = (bool, Option<EditPayload>);

fn meaning(p: &Payload) -> Meaning {
    (
        p.decode::<serde::de::IgnoredAny>().is_ok(),
        EditPayload::from_json(p.json()).ok(),
    )
}

/// A frame with its payload by meaning.
fn normal(f: ServerFrame) -> (String, Option<Meaning>) {
    match f {
        ServerFrame::Op {
            from,
            seq,
            index,
            payload,
        } => (format!("op {from} {seq} {index}"), Some(meaning(&payload))),
        other => (format!("{other:?}"), None),
    }
}

fn normal_client(f: ClientFrame) -> (String, Option<Meaning>) {
    match f {
        ClientFrame::Op { seq, payload, from } => {
            (format!("op {seq} {from:?}"), Some(meaning(&payload)))
        }
        other => (format!("{other:?}"), None),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn payloads_read_as_serde_reads_them(p in arb_payload(), at in any::<usize>(), edit in any::<u8>(), byte in prop::sample::select(BYTES.to_vec())) {
        let text = serde_json::to_string(&p).unwrap();
        prop_assert_eq!(EditPayload::from_json(&text).unwrap(), p);
        if let Some(bad) = corrupt(&text, at, edit, byte) {
            prop_assert_eq!(
                EditPayload::from_json(&bad).ok(),
                serde_json::from_str::<EditPayload>(&bad).ok(),
                "{}", bad
            );
        }
    }

    #[test]
    fn frames_read_as_serde_reads_them(p in arb_payload(), from in any::<u32>(), seq in any::<u64>(), index in any::<u64>(), at in any::<usize>(), edit in any::<u8>(), byte in prop::sample::select(BYTES.to_vec())) {
        let payload = Payload::encode(&p).unwrap();
        let server = ServerFrame::Op { from, seq, index, payload: payload.clone() };
        let text = serde_json::to_string(&server).unwrap();
        prop_assert_eq!(ServerFrame::from_json(&text).unwrap(), server);
        if let Some(bad) = corrupt(&text, at, edit, byte) {
            prop_assert_eq!(
                ServerFrame::from_json(&bad).ok().map(normal),
                serde_json::from_str::<ServerFrame>(&bad).ok().map(normal),
                "{}", bad
            );
        }
        let client = ClientFrame::Op { seq, payload, from: (from % 2 == 0).then_some(from) };
        let text = serde_json::to_string(&client).unwrap();
        prop_assert_eq!(ClientFrame::from_json(&text).unwrap(), client);
        if let Some(bad) = corrupt(&text, at, edit, byte) {
            prop_assert_eq!(
                ClientFrame::from_json(&bad).ok().map(normal_client),
                serde_json::from_str::<ClientFrame>(&bad).ok().map(normal_client),
                "{}", bad
            );
        }
    }
}
