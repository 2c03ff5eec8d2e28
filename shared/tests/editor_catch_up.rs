//! Catching up from a snapshot, against the oracle of replaying the whole log: editor
//! sessions edit concurrently through a model of the relay (one durable log in arrival order,
//! FIFO links that deliver at different speeds), and a tab that opens on a snapshot of a log
//! prefix plus the ops after it must hold exactly what a tab that replayed everything holds —
//! same text, same clock — and converge with everyone, its own unacknowledged messages
//! included.

use chronoscope::clocks::vector_clock::VectorClock;
use chronoscope::editor::{EditorSession, Outgoing, SessionSnapshot};
use chronoscope::protocol::Payload;
use chronoscope::NodeId;
use proptest::prelude::*;

/// One entry of the relay's log.
#[derive(Clone)]
struct Entry {
    from: NodeId,
    seq: u64,
    payload: Payload,
}

/// A room: tabs 1..=3, the relay's log, and how far each tab has read each sender's entries
/// (links are FIFO per sender, but a slow link lets other senders overtake it).
struct Room {
    tabs: Vec<EditorSession>,
    log: Vec<Entry>,
    /// `read[tab][sender]`: how many of `sender`'s log entries `tab` has received.
    read: Vec<Vec<usize>>,
    /// Messages a tab flushed that the relay has not stored yet (in flight), per tab.
    in_flight: Vec<Vec<Outgoing>>,
}

const TEXTS: [&str; 5] = ["a", "é", "😀x", "\n", "bcd"];

impl Room {
    fn new() -> Room {
        Room {
            tabs: (1..=3).map(EditorSession::new).collect(),
            log: Vec::new(),
            read: vec![vec![0; 4]; 3],
            in_flight: vec![Vec::new(); 3],
        }
    }

    fn step(&mut self, (who, what, at, n): (u8, u8, u16, u8)) {
        let t = who as usize % 3;
        match what % 4 {
            // edit and flush: the message is in flight to the relay
            0 | 1 => {
                let tab = &mut self.tabs[t];
                let len = tab.text().encode_utf16().count();
                // An empty edit is refused only between the halves of a surrogate pair.
                let mut pos = at as usize % (len + 1);
                while tab.edit_utf16(pos, 0, "").is_err() {
                    pos -= 1;
                }
                if what % 4 == 1 && pos < len {
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
            // the relay stores the oldest message in flight from this tab (and acks it)
            2 => {
                if !self.in_flight[t].is_empty() {
                    let out = self.in_flight[t].remove(0);
                    self.tabs[t].ack(out.seq);
                    self.log.push(Entry {
                        from: t as NodeId + 1,
                        seq: out.seq,
                        payload: out.payload,
                    });
                }
            }
            // the next log entry of one sender reaches this tab
            _ => {
                let sender = (n as usize % 3) + 1;
                self.deliver_next(t, sender);
            }
        }
    }

    /// The relay stores every message in flight from these tabs.
    fn store_everything(&mut self, tabs: &[usize]) {
        for &t in tabs {
            for out in std::mem::take(&mut self.in_flight[t]) {
                self.tabs[t].ack(out.seq);
                self.log.push(Entry {
                    from: t as NodeId + 1,
                    seq: out.seq,
                    payload: out.payload,
                });
            }
        }
    }

    /// Every tab receives every log entry it has not received yet.
    fn deliver_everything(&mut self) {
        for t in 0..3 {
            for sender in 1..=3 {
                while self.deliver_next(t, sender) {}
            }
        }
    }

    /// Delivers to tab `t` the next log entry of `sender` it has not received, if any.
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
            self.tabs[t]
                .receive(e.from, e.seq, &e.payload, 0.0)
                .unwrap();
        }
        true
    }
}

/// A tab that replays `log` from the start (what a fresh tab did before snapshots).
fn replay(replica: NodeId, log: &[Entry]) -> EditorSession {
    let mut s = EditorSession::new(replica);
    for e in log {
        s.receive(e.from, e.seq, &e.payload, 0.0).unwrap();
    }
    s
}

/// The relay's compactor: replica 0 (never a tab) replays the log prefix and snapshots it;
/// the snapshot travels as a payload, as in the relay's `snapshot` frame.
fn compact(log: &[Entry]) -> Option<Payload> {
    let s = replay(0, log);
    Some(Payload::encode(&s.snapshot()?).unwrap())
}

fn arb_steps() -> impl Strategy<Value = Vec<(u8, u8, u16, u8)>> {
    prop::collection::vec(any::<(u8, u8, u16, u8)>(), 0..150)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// A new tab opening on the snapshot of any log prefix and the ops after it holds what a
    /// tab that replayed the whole log holds; both converge with the tabs that edited.
    #[test]
    fn a_tab_opened_on_a_snapshot_equals_one_that_replayed_everything(
        steps in arb_steps(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut room = Room::new();
        for &s in &steps {
            room.step(s);
        }
        let cut = cut.index(room.log.len() + 1);
        let snapshot = compact(&room.log[..cut]).expect("a log in arrival order holds nothing back");
        let snapshot: SessionSnapshot = snapshot.decode().unwrap();
        let mut opened = EditorSession::from_snapshot(7, &snapshot).unwrap();
        for e in &room.log[cut..] {
            opened.receive(e.from, e.seq, &e.payload, 0.0).unwrap();
        }
        let full = replay(8, &room.log);
        prop_assert_eq!(opened.text(), full.text());
        prop_assert_eq!(opened.clock(), full.clock());
        // Everything stored and delivered everywhere: every tab shows the same text.
        let seen = room.log.len();
        room.store_everything(&[0, 1, 2]);
        room.deliver_everything();
        let full = replay(8, &room.log);
        for e in &room.log[seen..] {
            opened.receive(e.from, e.seq, &e.payload, 0.0).unwrap();
        }
        prop_assert_eq!(opened.text(), full.text());
        prop_assert_eq!(opened.clock(), full.clock());
        for t in 0..3 {
            prop_assert_eq!(room.tabs[t].text(), full.text(), "tab {}", t + 1);
        }
    }

    /// A tab that reloads (same replica id) with messages the relay has not stored opens on a
    /// snapshot of the log, takes its unacknowledged messages back, re-sends them, goes on
    /// editing — and every tab ends with the same text, nothing lost, nothing twice.
    #[test]
    fn a_reloaded_tab_on_a_snapshot_keeps_its_unacknowledged_messages(steps in arb_steps()) {
        let mut room = Room::new();
        for &s in &steps {
            room.step(s);
        }
        // Tab 1 reloads: what it keeps across the reload is its messages in flight.
        let kept: Vec<Outgoing> = room.in_flight[0].drain(..).collect();
        let snapshot: SessionSnapshot = compact(&room.log).unwrap().decode().unwrap();
        let mut tab = EditorSession::from_snapshot(1, &snapshot).unwrap();
        for out in &kept {
            tab.restore_own(out.seq, &out.payload, 0.0).unwrap();
        }
        prop_assert_eq!(tab.resend(), kept.clone(), "the kept messages are unacknowledged again");
        // Its next message continues its numbering.
        let len = tab.text().encode_utf16().count();
        tab.edit_utf16(len, 0, "!").unwrap();
        let next = tab.flush(0.0).unwrap();
        let expected = room.log.iter().filter(|e| e.from == 1).count() as u64 + kept.len() as u64 + 1;
        prop_assert_eq!(next.seq, expected);
        // The relay stores the re-sent messages and the new one, everyone catches up.
        for out in tab.resend() {
            room.log.push(Entry { from: 1, seq: out.seq, payload: out.payload });
        }
        room.tabs[0] = tab;
        room.store_everything(&[1, 2]);
        room.deliver_everything();
        let full = replay(9, &room.log);
        prop_assert!(full.text().contains('!'));
        for t in 0..3 {
            prop_assert_eq!(room.tabs[t].text(), full.text(), "tab {}", t + 1);
        }
        let mut want = VectorClock::new();
        for e in &room.log {
            want.set(e.from, want.get(e.from).max(e.seq));
        }
        prop_assert_eq!(full.clock(), &want, "every message delivered once");
        prop_assert_eq!(room.tabs[0].clock(), &want);
    }
}
