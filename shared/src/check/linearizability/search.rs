//! The Wing–Gong search with Lowe's just-in-time linearisation and memoisation.
//!
//! The history becomes one list of events — each operation's invocation and response —
//! sorted by time (at equal times invocations first, so operations that touch are concurrent).
//! The search walks the list: at an invocation it tries to linearise that operation now (the
//! model must accept it in the current state); if it can, the operation's two events are
//! lifted out of the list (dancing links) and the walk restarts at the head; at a response
//! of an operation not yet linearised, the last choice was wrong and the search backtracks.
//! The list empties exactly when every operation is linearised. A cache of
//! `(linearised set, state)` pairs already explored cuts the search (Lowe 2017, §4): two
//! paths that linearised the same operations into the same state have the same future.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A sequential specification: a state machine that says whether an operation with this
/// input may return this output in this state, and the state after it.
pub trait Model {
    /// The object's state (hashed for the search's cache).
    type State: Clone + Eq + Hash;
    /// What an invocation asks (a write's value, a read).
    type Input;
    /// What a response says (a read's value).
    type Output;
    /// The state before any operation.
    fn init(&self) -> Self::State;
    /// The state after `input` returned `output` in `state`, or `None` if the
    /// specification does not allow that response there.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;
}

/// One operation of a concurrent history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// Invocation time (any unit; only the order matters).
    pub call: u64,
    /// Response time; `None` for an operation that never answered (a timed-out write may or
    /// may not have taken effect: it may be linearised anywhere after its invocation). Its
    /// `output` must be one the model accepts whatever the state (a write's).
    pub ret: Option<u64>,
    /// What was asked.
    pub input: I,
    /// What was answered.
    pub output: O,
}

/// The search's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A linearisation: the operations' indices in the order they take effect.
    Linearizable(Vec<usize>),
    /// None exists. `longest` is the most operations any explored order linearised.
    NotLinearizable {
        /// The length of the longest linearisable prefix the search found.
        longest: usize,
    },
}

impl Outcome {
    /// Whether a linearisation exists.
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Outcome::Linearizable(_))
    }
}

/// A set of operation indices, one bit each.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Bits(Box<[u64]>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)].into_boxed_slice())
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// FxHash (rustc's hasher): the cache hashes a bitset per step, and SipHash's resistance to
/// hostile keys buys nothing here.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

type FxSet<T> = HashSet<T, BuildHasherDefault<FxHasher>>;

/// The doubly linked event list: entry 0 is the head, the last entry the tail; between them
/// each operation's invocation and response in time order.
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each entry: the operation, and whether it is the invocation.
    op: Vec<(usize, bool)>,
    /// For each operation: its invocation entry and its response entry.
    entries: Vec<(usize, usize)>,
}

impl Events {
    fn new<I, O>(ops: &[Operation<I, O>]) -> Self {
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, o) in ops.iter().enumerate() {
            events.push((o.call, false, i));
            events.push((o.ret.unwrap_or(u64::MAX), true, i));
        }
        // (time, is_response, op): invocations before responses at equal times.
        events.sort_unstable();
        let len = events.len() + 2;
        let mut op = vec![(usize::MAX, false); len];
        let mut entries = vec![(0, 0); ops.len()];
        for (k, &(_, is_ret, i)) in events.iter().enumerate() {
            op[k + 1] = (i, !is_ret);
            if is_ret {
                entries[i].1 = k + 1;
            } else {
                entries[i].0 = k + 1;
            }
        }
        Events {
            next: (1..=len).collect(),
            prev: (0..len).map(|k| k.saturating_sub(1)).collect(),
            op,
            entries,
        }
    }

    const HEAD: usize = 0;

    fn tail(&self) -> usize {
        self.next.len() - 1
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        self.prev[n] = e;
    }

    /// Takes an operation's invocation and response out of the list.
    fn lift(&mut self, op: usize) {
        let (c, r) = self.entries[op];
        self.unlink(c);
        self.unlink(r);
    }

    /// Puts them back (in the reverse order of [`Events::lift`], as dancing links need).
    fn unlift(&mut self, op: usize) {
        let (c, r) = self.entries[op];
        self.relink(r);
        self.relink(c);
    }
}

/// Searches for a linearisation of `ops` under `model`.
pub fn check<M: Model>(model: &M, ops: &[Operation<M::Input, M::Output>]) -> Outcome {
    let mut events = Events::new(ops);
    let tail = events.tail();
    let mut state = model.init();
    let mut linearised = Bits::new(ops.len());
    let mut cache: FxSet<(Bits, M::State)> = FxSet::default();
    // The choices made: (operation, state before it).
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut longest = 0;
    let mut cur = events.next[Events::HEAD];
    while events.next[Events::HEAD] != tail {
        let (op, is_call) = events.op[cur];
        if is_call {
            let o = &ops[op];
            if let Some(after) = model.step(&state, &o.input, &o.output) {
                linearised.set(op);
                if cache.insert((linearised.clone(), after.clone())) {
                    stack.push((op, std::mem::replace(&mut state, after)));
                    longest = longest.max(stack.len());
                    events.lift(op);
                    cur = events.next[Events::HEAD];
                    continue;
                }
                linearised.clear(op);
            }
            cur = events.next[cur];
        } else {
            // A response of an operation not yet linearised: undo the last choice.
            let Some((op, before)) = stack.pop() else {
                return Outcome::NotLinearizable { longest };
            };
            linearised.clear(op);
            events.unlift(op);
            state = before;
            cur = events.next[events.entries[op].0];
        }
    }
    Outcome::Linearizable(stack.into_iter().map(|(op, _)| op).collect())
}
