//! Raft's safety properties (Ongaro & Ousterhout 2014, Figure 3), watched as the run goes:
//! Election Safety (at most one leader per term), State Machine Safety (every node applies the
//! same entry at each index, in order), Leader Completeness (a new leader holds every entry
//! committed before it), and the seed's use of the HLC stamps — the committed log's stamps
//! increase with the index, so log order and timestamp order agree.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::clocks::hlc::HlcTimestamp;
use crate::sim::SimTime;

/// A broken invariant, with when and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Violation {
    /// Two nodes led the same term.
    TwoLeaders {
        /// When the second one took over.
        at: SimTime,
        /// The term.
        term: u64,
        /// The first leader.
        first: usize,
        /// The second.
        second: usize,
    },
    /// A node applied a different entry at an index than another node had.
    Diverged {
        /// When.
        at: SimTime,
        /// The node.
        node: usize,
        /// The index.
        index: u64,
    },
    /// A node applied indices out of order (a gap or a repeat).
    OutOfOrder {
        /// When.
        at: SimTime,
        /// The node.
        node: usize,
        /// The index it applied.
        index: u64,
        /// The index it should have applied.
        expected: u64,
    },
    /// A new leader's log lacks a committed entry.
    LostCommitted {
        /// When it became leader.
        at: SimTime,
        /// The leader.
        leader: usize,
        /// Its term.
        term: u64,
        /// The committed index it lacks (or holds with another term).
        index: u64,
    },
    /// A committed entry's HLC stamp is not above the previous entry's.
    HlcOrder {
        /// The index.
        index: u64,
        /// Its stamp.
        stamp: HlcTimestamp,
        /// The previous committed entry's stamp.
        previous: HlcTimestamp,
    },
}

impl Violation {
    /// In words.
    pub fn describe(&self) -> String {
        match *self {
            Violation::TwoLeaders {
                at,
                term,
                first,
                second,
            } => format!("at {at}: nodes {first} and {second} both led term {term}"),
            Violation::Diverged { at, node, index } => {
                format!("at {at}: node {node} applied a different entry at index {index}")
            }
            Violation::OutOfOrder {
                at,
                node,
                index,
                expected,
            } => format!("at {at}: node {node} applied index {index}, expected {expected}"),
            Violation::LostCommitted {
                at,
                leader,
                term,
                index,
            } => format!(
                "at {at}: node {leader}, leader of term {term}, lacks committed index {index}"
            ),
            Violation::HlcOrder {
                index,
                stamp,
                previous,
            } => format!("committed index {index} is stamped {stamp}, not after {previous}"),
        }
    }
}

/// The safety monitor: what has been committed, who led which term, and every violation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Safety {
    /// The leader of each term.
    leaders: BTreeMap<u64, usize>,
    /// The committed log as first applied anywhere: index `k + 1` is `committed[k]`
    /// (term, value and stamp; `None` for a no-op).
    committed: Vec<(u64, Option<(u64, HlcTimestamp)>)>,
    /// The last index each node applied.
    applied: BTreeMap<usize, u64>,
    /// The latest stamp in the committed log.
    last_stamp: Option<HlcTimestamp>,
    /// Everything broken, in order.
    violations: Vec<Violation>,
}

impl Safety {
    /// `node` became leader of `term`; `term_at` reads its log.
    pub(crate) fn on_leader(
        &mut self,
        at: SimTime,
        node: usize,
        term: u64,
        term_at: impl Fn(u64) -> Option<u64>,
    ) {
        match self.leaders.get(&term) {
            Some(&first) if first != node => self.violations.push(Violation::TwoLeaders {
                at,
                term,
                first,
                second: node,
            }),
            Some(_) => {}
            None => {
                self.leaders.insert(term, node);
            }
        }
        for (k, &(t, _)) in self.committed.iter().enumerate() {
            let index = k as u64 + 1;
            if term_at(index) != Some(t) {
                self.violations.push(Violation::LostCommitted {
                    at,
                    leader: node,
                    term,
                    index,
                });
                break;
            }
        }
    }

    /// `node` applied the entry at `index` of `term` (`payload`: value and stamp).
    pub(crate) fn on_apply(
        &mut self,
        at: SimTime,
        node: usize,
        index: u64,
        term: u64,
        payload: Option<(u64, HlcTimestamp)>,
    ) {
        let last = self.applied.entry(node).or_insert(0);
        if index != *last + 1 {
            self.violations.push(Violation::OutOfOrder {
                at,
                node,
                index,
                expected: *last + 1,
            });
        }
        *last = index;
        let k = (index as usize).saturating_sub(1);
        match self.committed.get(k) {
            Some(&entry) if entry != (term, payload) => {
                self.violations
                    .push(Violation::Diverged { at, node, index });
            }
            Some(_) => {}
            None if k == self.committed.len() => {
                if let Some((_, stamp)) = payload {
                    if let Some(previous) = self.last_stamp.filter(|p| stamp <= *p) {
                        self.violations.push(Violation::HlcOrder {
                            index,
                            stamp,
                            previous,
                        });
                    }
                    self.last_stamp = Some(stamp);
                }
                self.committed.push((term, payload));
            }
            None => {}
        }
    }

    /// Every violation so far, in order.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Whether no invariant broke.
    pub fn holds(&self) -> bool {
        self.violations.is_empty()
    }

    /// How many entries are committed (and applied somewhere).
    pub fn committed(&self) -> usize {
        self.committed.len()
    }

    /// How many terms had a leader.
    pub fn terms_led(&self) -> usize {
        self.leaders.len()
    }

    /// Whether any two leaders shared a term.
    pub fn two_leaders_in_a_term(&self) -> bool {
        self.violations
            .iter()
            .any(|v| matches!(v, Violation::TwoLeaders { .. }))
    }
}
