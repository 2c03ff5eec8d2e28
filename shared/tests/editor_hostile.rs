//! Convergence with a hostile tab in the room, against the oracle of the honest tabs
//! themselves: three honest editor sessions edit concurrently through a model of the relay
//! (one log in arrival order, de-duplicated by `(sender, seq)`; FIFO links per sender that let
//! other senders overtake), while replica 4 writes well-formed but lying payloads into the
//! log — stolen character ids, deletes of characters never sent or never seen, clocks that
//! claim too much or too little, sequence jumps, origins anywhere. However the log reaches
//! each tab, every honest tab — and a late joiner replaying the log in order — must end with
//! the same text, and every honest message must be delivered everywhere (no stall).

use std::collections::BTreeMap;

use chronoscope::clocks::vector_clock::VectorClock;
use chronoscope::editor::{EditPayload, EditorError, EditorSession, Outgoing, MAX_AHEAD};
use chronoscope::protocol::Payload;
use chronoscope::replication::text::{CharId, TextOp};
use chronoscope::NodeId;
use proptest::prelude::*;

/// The hostile replica.
const EVIL: NodeId = 4;

#[derive(Clone)]
struct Entry {
    from: NodeId,
    seq: u64,
    payload: Payload,
}

struct Room {
    tabs: Vec<EditorSession>,
    log: Vec<Entry>,
    /// `read[tab][sender]`: how many of `sender`'s log entries `tab` has received.
    read: Vec<Vec<usize>>,
    in_flight: Vec<Vec<Outgoing>>,
    /// The hostile tab's next seq and its guess of its next character id.
    evil_seq: u64,
    evil_chars: u32,
    /// What the tabs said about each frame, for the report of a failing case.
    refusals: BTreeMap<(usize, NodeId, u64), String>,
}

const TEXTS: [&str; 5] = ["a", "é", "😀x", "\n", "bcd"];

impl Room {
    fn new() -> Room {
        Room {
            tabs: (1..=3).map(EditorSession::new).collect(),
            log: Vec::new(),
            read: vec![vec![0; 5]; 3],
            in_flight: vec![Vec::new(); 3],
            evil_seq: 1,
            evil_chars: 0,
            refusals: BTreeMap::new(),
        }
    }

    /// The relay stores a frame unless it has stored `(from, seq)` already.
    fn store(&mut self, from: NodeId, seq: u64, payload: Payload) {
        if !self.log.iter().any(|e| e.from == from && e.seq == seq) {
            self.log.push(Entry { from, seq, payload });
        }
    }

    /// Characters each honest replica has inserted in the log so far (honest messages are
    /// all valid), and the log's clock: what the hostile tab can know.
    fn known(&self) -> (BTreeMap<NodeId, u32>, VectorClock) {
        let mut chars = BTreeMap::new();
        let mut clock = VectorClock::new();
        for e in &self.log {
            clock.set(e.from, clock.get(e.from).max(e.seq));
            if e.from == EVIL {
                continue;
            }
            let p: EditPayload = e.payload.decode().unwrap();
            for op in &p.o {
                if let TextOp::Insert { .. } = op {
                    *chars.entry(e.from).or_insert(0) += op.len_chars() as u32;
                }
            }
        }
        (chars, clock)
    }

    fn step(&mut self, (who, what, at, n): (u8, u8, u16, u8), evil: &[u32]) {
        let t = who as usize % 3;
        match what % 6 {
            0 | 1 => {
                let tab = &mut self.tabs[t];
                let len = tab.text().encode_utf16().count();
                let mut pos = at as usize % (len + 1);
                while tab.edit_utf16(pos, 0, "").is_err() {
                    pos -= 1;
                }
                if what % 6 == 1 && pos < len {
                    let mut del = (n as usize % 3 + 1).min(len - pos);
                    while tab.edit_utf16(pos + del, 0, "").is_err() {
                        del += 1;
                    }
                    tab.edit_utf16(pos, del, "").unwrap();
                } else {
                    tab.edit_utf16(pos, 0, TEXTS[n as usize % TEXTS.len()])
                        .unwrap();
                }
                if let Some(out) = tab.flush(0.0) {
                    self.in_flight[t].push(out);
                }
            }
            2 => {
                if !self.in_flight[t].is_empty() {
                    let out = self.in_flight[t].remove(0);
                    self.tabs[t].ack(out.seq);
                    self.store(t as NodeId + 1, out.seq, out.payload);
                }
            }
            3 => self.lie(evil),
            _ => {
                let sender = n as usize % 4 + 1;
                self.deliver_next(t, sender);
            }
        }
    }

    /// The hostile tab writes one lying (or, sometimes, honest) message into the log, made of
    /// the numbers in `r`.
    fn lie(&mut self, r: &[u32]) {
        let pick = |i: usize| r.get(i).copied().unwrap_or(0);
        let (chars, mut clock) = self.known();
        let honest = pick(0) % 3 + 1;
        let count = |node: NodeId| {
            if node == EVIL {
                0
            } else {
                chars.get(&node).copied().unwrap_or(0)
            }
        };
        // A character the hostile tab can name: usually one that exists, sometimes one past.
        let evil_chars = self.evil_chars;
        let char_of = |a: u32, b: u32| {
            let node = a % 4 + 1;
            let c = if node == EVIL {
                evil_chars
            } else {
                count(node)
            };
            CharId {
                replica: node,
                seq: b % (c + 3),
            }
        };
        let mut seq = self.evil_seq;
        let mut ops = Vec::new();
        let mut next_own = self.evil_chars;
        for k in 0..(pick(1) % 2 + 1) as usize {
            let a = pick(2 + 4 * k);
            let b = pick(3 + 4 * k);
            let c = pick(4 + 4 * k);
            let origin = |x: u32| (!x.is_multiple_of(3)).then(|| char_of(x, x / 3));
            ops.push(match a % 5 {
                // steal an honest replica's next id
                0 => TextOp::Insert {
                    id: CharId {
                        replica: honest,
                        seq: count(honest) + b % 2,
                    },
                    origin_left: origin(c),
                    origin_right: None,
                    text: "X".into(),
                },
                // own id, origins anywhere it can name
                1 | 2 => {
                    let id = CharId {
                        replica: EVIL,
                        seq: if a % 5 == 2 {
                            b % (next_own + 2)
                        } else {
                            next_own
                        },
                    };
                    next_own += 1;
                    TextOp::Insert {
                        id,
                        origin_left: origin(b),
                        origin_right: origin(c),
                        text: "Y".into(),
                    }
                }
                // delete, possibly of characters never sent
                3 => TextOp::Delete {
                    target: char_of(b, c),
                    len: c % 3 + 1,
                },
                _ => TextOp::Delete {
                    target: char_of(b, c),
                    len: 0,
                },
            });
        }
        // The clock: the log's, with some entry claiming too much or too little.
        match pick(10) % 6 {
            0 => clock.set(honest, clock.get(honest) + 1 + pick(11) as u64 % 3),
            1 => clock.set(honest, 0),
            2 => clock.set(9, 1),
            3 => seq += MAX_AHEAD + pick(11) as u64 % 3,
            _ => {}
        }
        clock.set(EVIL, seq);
        self.evil_seq += 1;
        self.evil_chars = next_own;
        let payload = Payload::encode(&EditPayload { c: clock, o: ops }).unwrap();
        self.store(EVIL, seq, payload);
    }

    fn drain_in_flight(&mut self) {
        for t in 0..3 {
            for out in std::mem::take(&mut self.in_flight[t]) {
                self.tabs[t].ack(out.seq);
                self.store(t as NodeId + 1, out.seq, out.payload);
            }
        }
    }

    fn deliver_everything(&mut self) {
        for t in 0..3 {
            for sender in 1..=4 {
                while self.deliver_next(t, sender) {}
            }
        }
    }

    fn deliver_next(&mut self, t: usize, sender: usize) -> bool {
        let k = self.read[t][sender];
        let Some(e) = self
            .log
            .iter()
            .filter(|e| e.from as usize == sender)
            .nth(k)
            .cloned()
        else {
            return false;
        };
        self.read[t][sender] += 1;
        if sender != t + 1 {
            if let Err(err) = self.tabs[t].receive(e.from, e.seq, &e.payload, 0.0) {
                assert_refused_for_a_reason(&err);
                self.refusals
                    .insert((t + 1, e.from, e.seq), err.to_string());
            }
        }
        true
    }
}

/// Only the hostile tab's messages may be refused, and only with a typed reason.
fn assert_refused_for_a_reason(err: &EditorError) {
    let from = match err {
        EditorError::TooFarAhead { from, .. }
        | EditorError::ForeignInsert { from, .. }
        | EditorError::InsertOutOfSequence { from, .. }
        | EditorError::OutsideCausalPast { from, .. }
        | EditorError::OriginsApart { from, .. } => *from,
        // Empty ops and id ranges past 2^32 do not even decode.
        EditorError::Malformed(_) => EVIL,
        e => panic!("refused without a hostile-input reason: {e}"),
    };
    assert_eq!(from, EVIL, "an honest message was refused: {err}");
}

fn replay(replica: NodeId, log: &[Entry]) -> EditorSession {
    let mut s = EditorSession::new(replica);
    for e in log {
        if let Err(err) = s.receive(e.from, e.seq, &e.payload, 0.0) {
            assert_refused_for_a_reason(&err);
        }
    }
    s
}

/// One step of the room, and the numbers the hostile tab makes its message of.
type Step = ((u8, u8, u16, u8), Vec<u32>);

fn arb_steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            any::<(u8, u8, u16, u8)>(),
            prop::collection::vec(any::<u32>(), 12),
        ),
        0..160,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever the hostile tab writes and however the log reaches each tab, the honest tabs
    /// and a late joiner end with one text, and every honest message is delivered everywhere.
    #[test]
    fn honest_tabs_converge_whatever_a_hostile_tab_sends(steps in arb_steps()) {
        let mut room = Room::new();
        for (s, evil) in &steps {
            room.step(*s, evil);
        }
        room.drain_in_flight();
        room.deliver_everything();
        let late = replay(8, &room.log);
        let mut honest = VectorClock::new();
        for e in room.log.iter().filter(|e| e.from != EVIL) {
            honest.set(e.from, honest.get(e.from).max(e.seq));
        }
        for (t, tab) in room.tabs.iter().enumerate() {
            prop_assert_eq!(
                tab.text(), late.text(),
                "tab {} diverged; refusals {:?}", t + 1, room.refusals
            );
            for (node, count) in honest.iter() {
                prop_assert_eq!(tab.clock().get(node), count, "tab {} stalled on {}", t + 1, node);
            }
            prop_assert!(tab.held().iter().all(|h| h.sender == EVIL), "only hostile messages wait");
        }
    }
}

/// Replica 1 typed "ab" (ids (1, 0), (1, 1)) in its message 1; returns that message's frame.
fn typed_ab() -> (EditorSession, Outgoing) {
    let mut a = EditorSession::new(1);
    a.edit_utf16(0, 0, "ab").unwrap();
    let m = a.flush(0.0).unwrap();
    (a, m)
}

fn payload(clock: &[(NodeId, u64)], ops: Vec<TextOp>) -> Payload {
    let mut c = VectorClock::new();
    for &(n, k) in clock {
        c.set(n, k);
    }
    Payload::encode(&EditPayload { c, o: ops }).unwrap()
}

/// The attack the issue names: a tab inserts with another replica's next id. Refused, so the
/// real owner's insert with that id still lands everywhere.
#[test]
fn a_stolen_id_is_refused_and_the_owner_still_converges() {
    let (mut a, m1) = typed_ab();
    let mut b = EditorSession::new(2);
    b.receive(1, m1.seq, &m1.payload, 0.0).unwrap();
    let steal = payload(
        &[(1, 1), (EVIL, 1)],
        vec![TextOp::Insert {
            id: CharId { replica: 1, seq: 2 },
            origin_left: Some(CharId { replica: 1, seq: 1 }),
            origin_right: None,
            text: "!".into(),
        }],
    );
    assert_eq!(
        b.receive(EVIL, 1, &steal, 0.0),
        Err(EditorError::ForeignInsert {
            from: EVIL,
            seq: 1,
            id: CharId { replica: 1, seq: 2 }
        })
    );
    a.edit_utf16(2, 0, "c").unwrap();
    let m2 = a.flush(1.0).unwrap();
    b.receive(1, m2.seq, &m2.payload, 1.0).unwrap();
    assert_eq!(b.text(), "abc");
    assert_eq!(a.text(), b.text());
}

#[test]
fn deletes_of_characters_never_sent_or_never_seen_are_refused() {
    let (_a, m1) = typed_ab();
    let mut b = EditorSession::new(2);
    b.receive(1, m1.seq, &m1.payload, 0.0).unwrap();
    // (1, 2) was never sent.
    let never_sent = payload(
        &[(1, 1), (EVIL, 1)],
        vec![TextOp::Delete {
            target: CharId { replica: 1, seq: 1 },
            len: 2,
        }],
    );
    assert_eq!(
        b.receive(EVIL, 1, &never_sent, 0.0),
        Err(EditorError::OutsideCausalPast {
            from: EVIL,
            seq: 1,
            id: CharId { replica: 1, seq: 2 }
        })
    );
    // (1, 0) exists here, but the clock says its sender never delivered it.
    let unseen = payload(
        &[(EVIL, 2)],
        vec![TextOp::Delete {
            target: CharId { replica: 1, seq: 0 },
            len: 1,
        }],
    );
    assert_eq!(
        b.receive(EVIL, 2, &unseen, 0.0),
        Err(EditorError::OutsideCausalPast {
            from: EVIL,
            seq: 2,
            id: CharId { replica: 1, seq: 0 }
        })
    );
    assert_eq!(b.text(), "ab");
    // Refused messages are no-ops that still count: the sender's next message is delivered.
    let honest = payload(
        &[(1, 1), (EVIL, 3)],
        vec![TextOp::Insert {
            id: CharId {
                replica: EVIL,
                seq: 0,
            },
            origin_left: Some(CharId { replica: 1, seq: 1 }),
            origin_right: None,
            text: "?".into(),
        }],
    );
    b.receive(EVIL, 3, &honest, 0.0).unwrap();
    assert_eq!(b.text(), "ab?");
}

#[test]
fn inserts_must_continue_their_senders_numbering() {
    let mut b = EditorSession::new(2);
    let ins = |seq: u32, text: &str| TextOp::Insert {
        id: CharId { replica: EVIL, seq },
        origin_left: None,
        origin_right: None,
        text: text.into(),
    };
    b.receive(EVIL, 1, &payload(&[(EVIL, 1)], vec![ins(0, "xy")]), 0.0)
        .unwrap();
    for (seq, at) in [(2, 5), (3, 1), (4, u32::MAX - 1)] {
        assert_eq!(
            b.receive(EVIL, seq, &payload(&[(EVIL, seq)], vec![ins(at, "z")]), 0.0),
            Err(EditorError::InsertOutOfSequence {
                from: EVIL,
                seq,
                id: CharId {
                    replica: EVIL,
                    seq: at
                },
                expected: 2
            })
        );
    }
    // Empty inserts and id ranges past 2^32 are refused by the wire reader.
    for bad in [ins(2, ""), ins(u32::MAX, "z")] {
        assert!(matches!(
            b.receive(EVIL, 5, &payload(&[(EVIL, 5)], vec![bad]), 0.0),
            Err(EditorError::Malformed(_))
        ));
    }
    assert_eq!(b.text(), "xy");
}

#[test]
fn clocks_and_seqs_that_claim_too_much_are_refused_not_held() {
    let mut b = EditorSession::new(2);
    let op = vec![TextOp::Insert {
        id: CharId {
            replica: EVIL,
            seq: 0,
        },
        origin_left: None,
        origin_right: None,
        text: "x".into(),
    }];
    let far = MAX_AHEAD + 1;
    assert_eq!(
        b.receive(EVIL, far, &payload(&[(EVIL, far)], op.clone()), 0.0),
        Err(EditorError::TooFarAhead {
            from: EVIL,
            seq: far,
            node: EVIL,
            claimed: far,
            delivered: 0
        })
    );
    assert_eq!(
        b.receive(
            EVIL,
            1,
            &payload(&[(1, u64::MAX), (EVIL, 1)], op.clone()),
            0.0
        ),
        Err(EditorError::TooFarAhead {
            from: EVIL,
            seq: 1,
            node: 1,
            claimed: u64::MAX,
            delivered: 0
        })
    );
    assert!(b.held().is_empty(), "nothing parked in the hold-back queue");
    // Within the window a claim is held like any message waiting for its past.
    assert_eq!(
        b.receive(EVIL, 1, &payload(&[(1, 3), (EVIL, 1)], op), 0.0),
        Ok(vec![])
    );
    assert_eq!(b.held().len(), 1);
}

/// A snapshot carries what the causal-past checks need: a tab opened on it refuses exactly
/// what a tab that replayed the log refuses.
#[test]
fn a_tab_opened_on_a_snapshot_refuses_what_a_replaying_tab_refuses() {
    let (mut a, m1) = typed_ab();
    a.edit_utf16(2, 0, "cd").unwrap();
    let m2 = a.flush(1.0).unwrap();
    let mut relay = EditorSession::new(0);
    relay.receive(1, 1, &m1.payload, 0.0).unwrap();
    relay.receive(1, 2, &m2.payload, 0.0).unwrap();
    let snap = relay.snapshot().unwrap();
    let mut opened = EditorSession::from_snapshot(3, &snap).unwrap();
    let mut replayed = EditorSession::new(3);
    replayed.receive(1, 1, &m1.payload, 0.0).unwrap();
    replayed.receive(1, 2, &m2.payload, 0.0).unwrap();
    // The hostile sender had seen message 1 only: (1, 2) is outside its causal past.
    let lie = payload(
        &[(1, 1), (EVIL, 1)],
        vec![TextOp::Delete {
            target: CharId { replica: 1, seq: 2 },
            len: 1,
        }],
    );
    let want = Err(EditorError::OutsideCausalPast {
        from: EVIL,
        seq: 1,
        id: CharId { replica: 1, seq: 2 },
    });
    assert_eq!(opened.receive(EVIL, 1, &lie, 0.0), want);
    assert_eq!(replayed.receive(EVIL, 1, &lie, 0.0), want);
    assert_eq!(opened.text(), "abcd");
}

/// Found by the property test: an insert between the start and `x` of "😀x", claiming a past
/// in which "😀x" was already there. Where it lands would depend on which concurrent
/// characters a replica holds; refused instead.
#[test]
fn an_insert_between_origins_that_were_not_neighbours_is_refused() {
    let mut a = EditorSession::new(2);
    a.edit_utf16(0, 0, "😀x").unwrap();
    let m1 = a.flush(0.0).unwrap();
    let mut b = EditorSession::new(3);
    b.receive(2, 1, &m1.payload, 0.0).unwrap();
    let ins = |left: Option<CharId>, right: Option<CharId>| TextOp::Insert {
        id: CharId {
            replica: EVIL,
            seq: 0,
        },
        origin_left: left,
        origin_right: right,
        text: "Y".into(),
    };
    let (smile, x) = (CharId { replica: 2, seq: 0 }, CharId { replica: 2, seq: 1 });
    let want = |seq| {
        Err(EditorError::OriginsApart {
            from: EVIL,
            seq,
            id: CharId {
                replica: EVIL,
                seq: 0,
            },
        })
    };
    let apart = payload(&[(2, 1), (EVIL, 1)], vec![ins(None, Some(x))]);
    assert_eq!(b.receive(EVIL, 1, &apart, 0.0), want(1));
    // Right origin before the left one.
    let reversed = payload(&[(2, 1), (EVIL, 2)], vec![ins(Some(x), Some(smile))]);
    assert_eq!(b.receive(EVIL, 2, &reversed, 0.0), want(2));
    assert_eq!(b.text(), "😀x");
    // Neighbours in its past, though not here: fine (a concurrent insert sits between).
    b.edit_utf16(2, 0, "z").unwrap();
    let honest = payload(&[(2, 1), (EVIL, 3)], vec![ins(Some(smile), Some(x))]);
    b.receive(EVIL, 3, &honest, 0.0).unwrap();
    assert_eq!(b.text(), "😀zYx");
}
