//! A read/write register's histories, their check, and minimal counterexamples.
//!
//! Writes should carry distinct values (the Raft lab's clients write unique numbers, as
//! Jepsen's register workloads do): then every read names the one write it read from, and
//! the search is fast. Duplicate values are still judged exactly, only less cheaply.
//!
//! **Minimal counterexamples.** Call a set of operations *closed* when it holds, for each of
//! its reads, every write of the value that read returned. For a register, restricting a
//! legal sequential order to a closed subset keeps it legal (each read still follows the
//! write it read from, with no kept write between them), so a closed subset of a
//! linearisable history is linearisable. Hence a violation, once found, shrinks: the
//! shortest violating prefix by invocation (binary search), then the latest start
//! (binary search), then one pass dropping each operation (a write with the reads that read
//! it) while the rest still violates. What is left is minimal: dropping any one operation
//! makes it linearisable. For a stale read that is three operations — the write the read
//! returned, a later write that completed before the read began, and the read.

use std::collections::BTreeMap;

use serde::Serialize;

use super::search::{check, Model, Operation, Outcome};
use crate::sim::SimTime;
use crate::NodeId;

/// What a register operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterAction {
    /// Wrote this value.
    Write(u64),
    /// Read this value (`None`: the register's initial, never-written value).
    Read(Option<u64>),
}

/// Which replica served an operation, in which term (the Raft lab fills it in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Served {
    /// The node that answered.
    pub node: NodeId,
    /// Its Raft term when it answered.
    pub term: u64,
}

/// One client operation on the register, in true time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterOp {
    /// The client that issued it.
    pub client: u32,
    /// Invocation, true time.
    pub call: SimTime,
    /// Response, true time; `None` if it never answered. A write without a response may or
    /// may not have taken effect; a read without one says nothing and is ignored.
    pub ret: Option<SimTime>,
    /// What it did.
    pub action: RegisterAction,
    /// Who answered it (for the counterexample's words).
    pub served: Option<Served>,
}

/// The register's sequential specification: a read returns the last value written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Register;

impl Model for Register {
    type State = Option<u64>;
    type Input = RegisterAction;
    type Output = ();

    fn init(&self) -> Option<u64> {
        None
    }

    fn step(&self, state: &Option<u64>, input: &RegisterAction, _: &()) -> Option<Option<u64>> {
        match *input {
            RegisterAction::Write(v) => Some(Some(v)),
            RegisterAction::Read(v) => (v == *state).then_some(*state),
        }
    }
}

/// A stale read in a counterexample: `read` returned the value of `read_from` (or the initial
/// value), though `missed` was written after it and had completed before `read` began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StaleRead {
    /// The read (an index into the checked history).
    pub read: usize,
    /// The write whose value it returned; `None` for the initial value.
    pub read_from: Option<usize>,
    /// The write it missed.
    pub missed: usize,
}

/// A minimal non-linearisable part of a history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counterexample {
    /// The operations (indices into the checked history), by invocation time.
    pub ops: Vec<usize>,
    /// The stale read among them, when the violation is one.
    pub stale: Option<StaleRead>,
}

/// The verdict on a register history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum RegisterVerdict {
    /// Linearisable; `order` is one linearisation (indices into the history).
    Linearizable {
        /// Operations in the order they take effect.
        order: Vec<usize>,
    },
    /// Not linearisable: a minimal counterexample.
    Violation(Counterexample),
}

impl RegisterVerdict {
    /// Whether the history is linearisable.
    pub fn is_linearizable(&self) -> bool {
        matches!(self, RegisterVerdict::Linearizable { .. })
    }

    /// The counterexample, if any.
    pub fn counterexample(&self) -> Option<&Counterexample> {
        match self {
            RegisterVerdict::Violation(c) => Some(c),
            RegisterVerdict::Linearizable { .. } => None,
        }
    }
}

/// The history as the search sees it: the answered reads and every write, with the index
/// each came from.
struct Checked {
    /// Indices into the caller's history.
    index: Vec<usize>,
    ops: Vec<Operation<RegisterAction, ()>>,
    /// For each operation (by position in `ops`): the writes a read depends on.
    sources: Vec<Vec<usize>>,
}

impl Checked {
    fn new(history: &[RegisterOp]) -> Self {
        let mut index = Vec::new();
        for (i, op) in history.iter().enumerate() {
            if op.ret.is_some() || matches!(op.action, RegisterAction::Write(_)) {
                index.push(i);
            }
        }
        // By invocation, so prefixes are "what had begun by then".
        index.sort_by_key(|&i| (history[i].call, i));
        let ops: Vec<Operation<RegisterAction, ()>> = index
            .iter()
            .map(|&i| Operation {
                call: history[i].call.as_nanos(),
                ret: history[i].ret.map(SimTime::as_nanos),
                input: history[i].action,
                output: (),
            })
            .collect();
        let mut writers: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (k, op) in ops.iter().enumerate() {
            if let RegisterAction::Write(v) = op.input {
                writers.entry(v).or_default().push(k);
            }
        }
        let sources = ops
            .iter()
            .map(|op| match op.input {
                RegisterAction::Read(Some(v)) => writers.get(&v).cloned().unwrap_or_default(),
                _ => Vec::new(),
            })
            .collect();
        Checked {
            index,
            ops,
            sources,
        }
    }

    /// Whether the closure of `members` (positions in `ops`) is linearisable.
    fn linearizable(&self, members: &[bool]) -> bool {
        let subset: Vec<Operation<RegisterAction, ()>> = (0..self.ops.len())
            .filter(|&k| members[k])
            .map(|k| self.ops[k].clone())
            .collect();
        check(&Register, &subset).is_linearizable()
    }

    /// `members` with, for each read in it, the writes it read from.
    fn close(&self, mut members: Vec<bool>) -> Vec<bool> {
        for k in 0..members.len() {
            if members[k] {
                for &w in &self.sources[k] {
                    members[w] = true;
                }
            }
        }
        members
    }

    /// The closed set of the operations at positions `from..to` (by invocation).
    fn range(&self, from: usize, to: usize) -> Vec<bool> {
        self.close(
            (0..self.ops.len())
                .map(|k| (from..to).contains(&k))
                .collect(),
        )
    }

    /// Shrinks a violating history to a minimal violating closed subset.
    fn minimise(&self) -> Vec<usize> {
        let n = self.ops.len();
        // The shortest violating prefix: closed prefixes grow, and a violation persists.
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.linearizable(&self.range(0, mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let end = lo;
        // The latest start that still violates.
        let (mut lo, mut hi) = (0, end);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if self.linearizable(&self.range(mid, end)) {
                hi = mid - 1;
            } else {
                lo = mid;
            }
        }
        let mut members = self.range(lo, end);
        // One pass: drop each operation (a write with its readers) if the rest still
        // violates. By the closure property, a drop refused now would be refused later too.
        for k in 0..n {
            if !members[k] {
                continue;
            }
            let mut without = members.clone();
            without[k] = false;
            // A closed set holds every write of the value a read returned.
            for (member, sources) in without.iter_mut().zip(&self.sources) {
                if sources.contains(&k) {
                    *member = false;
                }
            }
            if !self.linearizable(&without) {
                members = without;
            }
        }
        (0..n).filter(|&k| members[k]).collect()
    }

    /// A stale read among `members`: a read, the write it read from (or the initial value),
    /// and a write wholly between them in real time.
    fn stale(&self, members: &[usize]) -> Option<StaleRead> {
        let precedes =
            |a: usize, b: usize| self.ops[a].ret.is_some_and(|ret| ret < self.ops[b].call);
        for &r in members {
            let RegisterAction::Read(value) = self.ops[r].input else {
                continue;
            };
            let froms: Vec<Option<usize>> = match value {
                None => vec![None],
                Some(_) => self.sources[r].iter().map(|&w| Some(w)).collect(),
            };
            for from in froms {
                let missed = members.iter().copied().find(|&w| {
                    matches!(self.ops[w].input, RegisterAction::Write(_))
                        && Some(w) != from
                        && from.is_none_or(|f| precedes(f, w))
                        && precedes(w, r)
                });
                if let Some(missed) = missed {
                    return Some(StaleRead {
                        read: self.index[r],
                        read_from: from.map(|f| self.index[f]),
                        missed: self.index[missed],
                    });
                }
            }
        }
        None
    }
}

/// Checks a register history; on a violation, finds a minimal counterexample.
pub fn check_register(history: &[RegisterOp]) -> RegisterVerdict {
    let checked = Checked::new(history);
    match check(&Register, &checked.ops) {
        Outcome::Linearizable(order) => RegisterVerdict::Linearizable {
            order: order.into_iter().map(|k| checked.index[k]).collect(),
        },
        Outcome::NotLinearizable { .. } => {
            let members = checked.minimise();
            let stale = checked.stale(&members);
            RegisterVerdict::Violation(Counterexample {
                ops: members.iter().map(|&k| checked.index[k]).collect(),
                stale,
            })
        }
    }
}

impl RegisterOp {
    /// One line: `client 3 read 17 [12.003s, 12.010s] from n2 (term 4)`.
    pub fn describe(&self) -> String {
        let what = match self.action {
            RegisterAction::Write(v) => format!("write {v}"),
            RegisterAction::Read(Some(v)) => format!("read {v}"),
            RegisterAction::Read(None) => "read the initial value".to_owned(),
        };
        let ret = self
            .ret
            .map_or_else(|| "no response".to_owned(), |t| t.to_string());
        let served = self.served.map_or_else(String::new, |s| {
            format!(" served by node {} in term {}", s.node, s.term)
        });
        format!(
            "client {} {what} [{}, {ret}]{served}",
            self.client, self.call
        )
    }
}

impl Counterexample {
    /// The counterexample in words, one line each: the stale read's story when it is one,
    /// then every operation.
    pub fn describe(&self, history: &[RegisterOp]) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(s) = self.stale {
            let read = &history[s.read];
            let missed = &history[s.missed];
            let from = s.read_from.map_or_else(
                || "the initial value".to_owned(),
                |f| format!("the value of an older write ({})", history[f].describe()),
            );
            lines.push(format!(
                "stale read: {} returned {from}, missing {} which had completed before the read began",
                read.describe(),
                missed.describe()
            ));
        }
        lines.extend(
            self.ops
                .iter()
                .map(|&i| format!("  {}", history[i].describe())),
        );
        lines
    }
}
