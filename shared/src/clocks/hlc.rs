//! Hybrid logical clocks — S. Kulkarni, M. Demirbas, D. Madappa, B. Avva, M. Leone, "Logical
//! Physical Clocks" (OPODIS 2014).
//!
//! **Guarantee:** timestamps `(l, c)` are strictly increasing at each node, and if `e` happened
//! before `f` then `hlc(e) < hlc(f)` (the Lamport clock condition), while `l` stays close to
//! physical time: it is the largest physical reading the node has heard of, never less than its
//! own physical clock. A physical clock that jumps backwards does not make timestamps go
//! backwards; the logical counter `c` absorbs it.
//!
//! # Representation
//! A timestamp packs into a `u64`: the top 48 bits are milliseconds (`l`), the low 16 bits the
//! logical counter (`c`), so integer order *is* HLC order ([`HlcTimestamp::to_u64`]). The
//! counter never wraps: when it would pass `u16::MAX`, it carries into the millisecond part
//! (`l + 1, c = 0`), which keeps the order and the clock condition (`l` then runs at most a few
//! ms ahead of physical time, only under more than 65,535 events in one millisecond).
//!
//! # Maximum offset
//! As in CockroachDB, a node refuses a remote timestamp whose `l` is more than
//! `max_offset_ms` ahead of its own physical clock: such a timestamp would drag the whole
//! cluster's clocks forward. The refusal is a typed [`HlcError`] and leaves the clock unchanged.
//!
//! # Wire form
//! `{"l": <ms>, "c": <counter>}` rather than the packed `u64`, which exceeds JavaScript's 2^53
//! safe integers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The largest millisecond value a timestamp can hold: 2^48 − 1 (about the year 10889).
pub const MAX_PHYSICAL_MS: u64 = (1 << 48) - 1;

/// A hybrid logical clock timestamp `(l, c)`: `l` in ms (48 bits), `c` a 16-bit counter.
///
/// Ordered by `l`, then `c` — the same order as [`HlcTimestamp::to_u64`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawTimestamp")]
pub struct HlcTimestamp {
    /// `l`: the largest physical time heard of, ms. Invariant: `<= MAX_PHYSICAL_MS`.
    #[serde(rename = "l")]
    physical_ms: u64,
    /// `c`: orders events that share `l`.
    #[serde(rename = "c")]
    logical: u16,
}

/// The wire form before validation.
#[derive(Deserialize)]
struct RawTimestamp {
    l: u64,
    c: u16,
}

impl TryFrom<RawTimestamp> for HlcTimestamp {
    type Error = HlcError;
    fn try_from(raw: RawTimestamp) -> Result<Self, HlcError> {
        HlcTimestamp::new(raw.l, raw.c)
    }
}

impl HlcTimestamp {
    /// The timestamp `(l = physical_ms, c = logical)`; refused if `physical_ms` does not fit
    /// in 48 bits.
    pub fn new(physical_ms: u64, logical: u16) -> Result<Self, HlcError> {
        if physical_ms > MAX_PHYSICAL_MS {
            return Err(HlcError::PhysicalOutOfRange { physical_ms });
        }
        Ok(HlcTimestamp {
            physical_ms,
            logical,
        })
    }

    /// `l`, in ms.
    pub fn physical_ms(self) -> u64 {
        self.physical_ms
    }

    /// `c`.
    pub fn logical(self) -> u16 {
        self.logical
    }

    /// Packed as `l << 16 | c`; the integer order is the HLC order.
    pub fn to_u64(self) -> u64 {
        (self.physical_ms << 16) | u64::from(self.logical)
    }

    /// Unpacks [`to_u64`](Self::to_u64)'s form (every `u64` is a valid timestamp).
    pub fn from_u64(packed: u64) -> Self {
        HlcTimestamp {
            physical_ms: packed >> 16,
            logical: (packed & 0xFFFF) as u16,
        }
    }

    /// The next timestamp after `self` with the same `l`, carrying into `l` instead of
    /// wrapping the counter.
    ///
    /// # Panics
    /// At `(MAX_PHYSICAL_MS, u16::MAX)`, the last representable timestamp.
    fn bump(self) -> Self {
        match self.logical.checked_add(1) {
            Some(c) => HlcTimestamp {
                physical_ms: self.physical_ms,
                logical: c,
            },
            None => {
                assert!(
                    self.physical_ms < MAX_PHYSICAL_MS,
                    "hybrid logical clock exhausted"
                );
                HlcTimestamp {
                    physical_ms: self.physical_ms + 1,
                    logical: 0,
                }
            }
        }
    }
}

impl fmt::Display for HlcTimestamp {
    /// `1700000000000.3` — l, a dot, c.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.physical_ms, self.logical)
    }
}

impl std::str::FromStr for HlcTimestamp {
    type Err = HlcError;

    /// Parses the [`Display`](fmt::Display) form, `l.c`.
    fn from_str(s: &str) -> Result<Self, HlcError> {
        let bad = || HlcError::Syntax(s.to_owned());
        let (l, c) = s.trim().split_once('.').ok_or_else(bad)?;
        HlcTimestamp::new(l.parse().map_err(|_| bad())?, c.parse().map_err(|_| bad())?)
    }
}

/// Errors of the hybrid logical clock; a refused operation leaves the clock unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HlcError {
    /// A remote timestamp is too far ahead of the local physical clock.
    #[error(
        "remote timestamp {remote_ms} ms is more than the maximum offset of {max_offset_ms} ms \
         ahead of the local physical clock ({local_ms} ms)"
    )]
    OffsetExceeded {
        /// The remote `l`, ms.
        remote_ms: u64,
        /// The local physical reading, ms.
        local_ms: u64,
        /// The configured maximum offset, ms.
        max_offset_ms: u64,
    },
    /// Text that is not `l.c`.
    #[error("expected a timestamp like 1700000000000.3 (ms, a dot, the counter), got {0:?}")]
    Syntax(String),
    /// A millisecond value does not fit in 48 bits.
    #[error("physical time {physical_ms} ms does not fit in 48 bits")]
    PhysicalOutOfRange {
        /// The value given.
        physical_ms: u64,
    },
}

/// A source of physical time in ms (the OS clock, `Date.now()`, a simulator's drifting clock).
///
/// Any `FnMut() -> u64` is one. Readings may jump backwards; the HLC copes.
pub trait PhysicalClock {
    /// The current physical time, ms. Readings above [`MAX_PHYSICAL_MS`] saturate to it.
    fn now_ms(&mut self) -> u64;
}

impl<F: FnMut() -> u64> PhysicalClock for F {
    fn now_ms(&mut self) -> u64 {
        self()
    }
}

/// A physical clock that reads whatever it was last set to — for simulators and for callers
/// that read their clock themselves ([`Hlc::clock_mut`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualClock {
    /// The time it reads, ms.
    pub now_ms: u64,
}

impl PhysicalClock for ManualClock {
    fn now_ms(&mut self) -> u64 {
        self.now_ms
    }
}

/// One node's hybrid logical clock, reading physical time from `C`.
#[derive(Debug, Clone)]
pub struct Hlc<C> {
    /// The injected physical clock.
    clock: C,
    /// The latest timestamp issued or received (`(0, 0)` at first).
    last: HlcTimestamp,
    /// How far ahead of the local physical clock a remote `l` may be, ms.
    max_offset_ms: u64,
}

impl<C: PhysicalClock> Hlc<C> {
    /// A clock that reads `clock` and refuses remote timestamps more than `max_offset_ms`
    /// ahead (CockroachDB's default is 500 ms).
    pub fn new(clock: C, max_offset_ms: u64) -> Self {
        Hlc {
            clock,
            last: HlcTimestamp {
                physical_ms: 0,
                logical: 0,
            },
            max_offset_ms,
        }
    }

    /// A clock that continues after `last`, its own earlier state (read back from a file after
    /// a restart): every timestamp it issues is greater than `last`, whatever the physical
    /// clock reads — even one set back since. Unlike [`receive`](Self::receive), no maximum
    /// offset applies: the node's own history is not a remote claim.
    pub fn resume(clock: C, max_offset_ms: u64, last: HlcTimestamp) -> Self {
        Hlc {
            clock,
            last,
            max_offset_ms,
        }
    }

    /// The latest timestamp this clock issued or merged.
    pub fn last(&self) -> HlcTimestamp {
        self.last
    }

    /// The physical clock, e.g. to set a [`ManualClock`] before the next event.
    pub fn clock_mut(&mut self) -> &mut C {
        &mut self.clock
    }

    /// The configured maximum offset, ms.
    pub fn max_offset_ms(&self) -> u64 {
        self.max_offset_ms
    }

    /// A local or send event: `l' = max(l, pt)`; `c` counts up if `l` did not move, else 0.
    pub fn now(&mut self) -> HlcTimestamp {
        let pt = self.read();
        self.last = if pt > self.last.physical_ms {
            HlcTimestamp {
                physical_ms: pt,
                logical: 0,
            }
        } else {
            self.last.bump()
        };
        self.last
    }

    /// A receive event for a message stamped `remote`: the result is later than both the
    /// local clock and `remote`. Refused, with the clock unchanged, if `remote` is more than the
    /// maximum offset ahead of the physical clock.
    pub fn receive(&mut self, remote: HlcTimestamp) -> Result<HlcTimestamp, HlcError> {
        let pt = self.read();
        if remote.physical_ms > pt.saturating_add(self.max_offset_ms) {
            return Err(HlcError::OffsetExceeded {
                remote_ms: remote.physical_ms,
                local_ms: pt,
                max_offset_ms: self.max_offset_ms,
            });
        }
        let local = self.last;
        let l = local.physical_ms.max(remote.physical_ms).max(pt);
        self.last = if l == local.physical_ms && l == remote.physical_ms {
            local.max(remote).bump()
        } else if l == local.physical_ms {
            local.bump()
        } else if l == remote.physical_ms {
            remote.bump()
        } else {
            HlcTimestamp {
                physical_ms: pt,
                logical: 0,
            }
        };
        Ok(self.last)
    }

    fn read(&mut self) -> u64 {
        self.clock.now_ms().min(MAX_PHYSICAL_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A settable physical clock shared with the test.
    fn manual(start: u64) -> (Rc<Cell<u64>>, impl FnMut() -> u64) {
        let cell = Rc::new(Cell::new(start));
        let reader = Rc::clone(&cell);
        (cell, move || reader.get())
    }

    fn ts(l: u64, c: u16) -> HlcTimestamp {
        HlcTimestamp::new(l, c).unwrap()
    }

    #[test]
    fn seed_example_clock_set_back_five_minutes() {
        let noon = 12 * 3_600_000;
        let (pt, clock) = manual(noon);
        let mut hlc = Hlc::new(clock, 500);
        assert_eq!(hlc.now(), ts(noon, 0));
        assert_eq!(hlc.now(), ts(noon, 1));
        pt.set(noon - 5 * 60_000); // the operator sets the clock back to 11:55
        assert_eq!(hlc.now(), ts(noon, 2)); // causality preserved
        pt.set(noon + 1);
        assert_eq!(hlc.now(), ts(noon + 1, 0));
    }

    #[test]
    fn a_resumed_clock_stays_ahead_of_its_saved_state() {
        let noon = 12 * 3_600_000;
        let saved = ts(noon, 7);
        // The clock was set back ten minutes while the node was down.
        let mut hlc = Hlc::resume(
            ManualClock {
                now_ms: noon - 600_000,
            },
            500,
            saved,
        );
        assert_eq!(hlc.now(), ts(noon, 8));
        hlc.clock_mut().now_ms = noon + 5;
        assert_eq!(hlc.now(), ts(noon + 5, 0));
    }

    #[test]
    fn manual_clock_drives_the_hlc() {
        let mut hlc = Hlc::new(ManualClock { now_ms: 40 }, 10);
        assert_eq!(hlc.now(), ts(40, 0));
        hlc.clock_mut().now_ms = 30;
        assert_eq!(hlc.now(), ts(40, 1));
    }

    #[test]
    fn receive_rules() {
        let (pt, clock) = manual(100);
        let mut hlc = Hlc::new(clock, 50);
        assert_eq!(hlc.now(), ts(100, 0));
        // Remote ahead (within the offset): adopt its l, count past its c.
        assert_eq!(hlc.receive(ts(120, 4)).unwrap(), ts(120, 5));
        // Same l on both sides: max of the counters, plus one.
        assert_eq!(hlc.receive(ts(120, 9)).unwrap(), ts(120, 10));
        // Local ahead of remote: count on.
        assert_eq!(hlc.receive(ts(110, 99)).unwrap(), ts(120, 11));
        // Physical clock ahead of both: reset the counter.
        pt.set(200);
        assert_eq!(hlc.receive(ts(150, 3)).unwrap(), ts(200, 0));
    }

    #[test]
    fn remote_beyond_max_offset_is_refused_and_changes_nothing() {
        let (_pt, clock) = manual(1_000);
        let mut hlc = Hlc::new(clock, 500);
        let before = hlc.now();
        let err = hlc.receive(ts(1_501, 0)).unwrap_err();
        assert_eq!(
            err,
            HlcError::OffsetExceeded {
                remote_ms: 1_501,
                local_ms: 1_000,
                max_offset_ms: 500
            }
        );
        assert!(err.to_string().starts_with("remote timestamp 1501 ms"));
        assert_eq!(hlc.last(), before);
        assert_eq!(hlc.receive(ts(1_500, 0)).unwrap(), ts(1_500, 1));
    }

    #[test]
    fn counter_carries_instead_of_wrapping() {
        let (_pt, clock) = manual(7);
        let mut hlc = Hlc::new(clock, 0);
        let mut prev = hlc.now();
        for _ in 0..70_000 {
            let t = hlc.now();
            assert!(t > prev && t.to_u64() > prev.to_u64());
            prev = t;
        }
        // 65,535 steps fill the counter, the next carries to (8, 0), 4,464 more follow.
        assert_eq!(prev, ts(8, 4_464));
        // And through receive.
        let (_pt, clock) = manual(7);
        let mut hlc = Hlc::new(clock, 10);
        assert_eq!(hlc.receive(ts(9, u16::MAX)).unwrap(), ts(10, 0));
    }

    #[test]
    fn wire_form_and_validation() {
        let t = ts(1_700_000_000_000, 3);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#"{"l":1700000000000,"c":3}"#);
        assert_eq!(serde_json::from_str::<HlcTimestamp>(&json).unwrap(), t);
        assert!(serde_json::from_str::<HlcTimestamp>(r#"{"l":281474976710656,"c":0}"#).is_err());
        assert_eq!(
            HlcTimestamp::new(1 << 48, 0),
            Err(HlcError::PhysicalOutOfRange {
                physical_ms: 1 << 48
            })
        );
        assert_eq!(t.to_string(), "1700000000000.3");
        assert_eq!("1700000000000.3".parse::<HlcTimestamp>(), Ok(t));
        assert!(matches!(
            "17.x".parse::<HlcTimestamp>(),
            Err(HlcError::Syntax(_))
        ));
    }

    proptest! {
        #[test]
        fn packed_order_is_hlc_order(a in 0..=MAX_PHYSICAL_MS, ac: u16, b in 0..=MAX_PHYSICAL_MS, bc: u16) {
            let (x, y) = (ts(a, ac), ts(b, bc));
            prop_assert_eq!(x.cmp(&y), x.to_u64().cmp(&y.to_u64()));
            prop_assert_eq!(HlcTimestamp::from_u64(x.to_u64()), x);
        }

        /// Monotonic under arbitrary physical readings, backward jumps included; every receive
        /// is later than the remote timestamp; `l` never falls behind the physical clock.
        #[test]
        fn monotonic_under_any_physical_clock(
            steps in prop::collection::vec((0u64..2_000, prop::option::of((0u64..2_600, any::<u16>()))), 1..200)
        ) {
            let (pt, clock) = manual(0);
            let mut hlc = Hlc::new(clock, 500);
            let mut prev = hlc.last();
            for (physical, remote) in steps {
                pt.set(physical);
                let next = match remote {
                    None => hlc.now(),
                    Some((l, c)) => match hlc.receive(ts(l, c)) {
                        Ok(t) => {
                            prop_assert!(t > ts(l, c));
                            t
                        }
                        Err(_) => {
                            prop_assert!(l > physical + 500);
                            prop_assert_eq!(hlc.last(), prev);
                            continue;
                        }
                    },
                };
                prop_assert!(next > prev);
                prop_assert!(next.physical_ms() >= physical);
                prev = next;
            }
        }
    }
}
