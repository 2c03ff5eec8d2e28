//! Linearizability checking: is there one sequential order of a concurrent history's
//! operations, consistent with their real-time order, that the object's sequential
//! specification accepts?
//!
//! Linearizability is Herlihy & Wing's condition (*Linearizability: a correctness condition
//! for concurrent objects*, TOPLAS 1990): every operation appears to take effect at one
//! instant between its invocation and its response. Operation `a` *precedes* `b` when `a`'s
//! response comes before `b`'s invocation (`a.ret < b.call`); operations that overlap may be
//! ordered either way. Checking it is NP-complete in general (Gibbons & Korach 1997), so the
//! checkers search:
//!
//! - [`search`] — the Wing–Gong tree search with Lowe's just-in-time linearisation and
//!   memoisation of `(linearised set, state)` (Wing & Gong 1993; Lowe, *Testing for
//!   linearizability*, 2017), the algorithm Porcupine (Athalye, 2017) and Knossos' WGL
//!   checker run. Generic over a [`Model`].
//! - [`register`] — the read/write register the Raft lab's clients use: histories of
//!   [`RegisterOp`]s in true time, the check, and on a violation a *minimal* counterexample
//!   (no operation can be dropped without the rest becoming linearizable), named in words
//!   when it is a stale read: which write the read missed, which node served it, in which
//!   term.
//!
//! **Invariant.** The verdict is exact: [`search::check`] says `Linearizable` iff some
//! linearisation exists (property-tested against a brute-force oracle that tries every
//! order of tiny histories), and the order it returns is one.

pub mod register;
pub mod search;

pub use register::{
    check_register, Counterexample, RegisterAction, RegisterOp, RegisterVerdict, Served, StaleRead,
};
pub use search::{check, Model, Operation, Outcome};

#[cfg(test)]
mod tests;
