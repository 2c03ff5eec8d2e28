use proptest::prelude::*;

use super::register::Register;
use super::*;
use crate::sim::SimTime;

fn op(call: u64, ret: Option<u64>, action: RegisterAction) -> RegisterOp {
    RegisterOp {
        client: 0,
        call: SimTime::from_millis(call),
        ret: ret.map(SimTime::from_millis),
        action,
        served: None,
    }
}

fn w(call: u64, ret: u64, v: u64) -> RegisterOp {
    op(call, Some(ret), RegisterAction::Write(v))
}

fn r(call: u64, ret: u64, v: Option<u64>) -> RegisterOp {
    op(call, Some(ret), RegisterAction::Read(v))
}

/// Every order consistent with real time, tried one by one: the oracle.
fn brute_force(history: &[RegisterOp]) -> bool {
    let ops: Vec<&RegisterOp> = history
        .iter()
        .filter(|o| o.ret.is_some() || matches!(o.action, RegisterAction::Write(_)))
        .collect();
    fn go(ops: &[&RegisterOp], done: &mut Vec<bool>, state: Option<u64>) -> bool {
        if done.iter().all(|&d| d) {
            return true;
        }
        for c in 0..ops.len() {
            if done[c] {
                continue;
            }
            // c may go next only if no remaining operation precedes it.
            let blocked = (0..ops.len())
                .any(|p| !done[p] && p != c && ops[p].ret.is_some_and(|t| t < ops[c].call));
            if blocked {
                continue;
            }
            let next = match ops[c].action {
                RegisterAction::Write(v) => Some(v),
                RegisterAction::Read(v) if v == state => state,
                RegisterAction::Read(_) => continue,
            };
            done[c] = true;
            if go(ops, done, next) {
                return true;
            }
            done[c] = false;
        }
        false
    }
    go(&ops, &mut vec![false; ops.len()], None)
}

/// Whether `order` is a legal sequential history that respects real time.
fn is_linearisation(history: &[RegisterOp], order: &[usize]) -> bool {
    let mut state = None;
    for (k, &i) in order.iter().enumerate() {
        let ok = order[k + 1..]
            .iter()
            .all(|&j| history[j].ret.is_none_or(|t| t >= history[i].call));
        if !ok {
            return false;
        }
        match history[i].action {
            RegisterAction::Write(v) => state = Some(v),
            RegisterAction::Read(v) if v == state => {}
            RegisterAction::Read(_) => return false,
        }
    }
    true
}

#[test]
fn sequential_writes_and_reads_are_linearizable() {
    let h = [w(0, 1, 1), r(2, 3, Some(1)), w(4, 5, 2), r(6, 7, Some(2))];
    let v = check_register(&h);
    let RegisterVerdict::Linearizable { order } = &v else {
        panic!("{v:?}")
    };
    assert_eq!(order, &[0, 1, 2, 3]);
    assert!(is_linearisation(&h, order));
}

#[test]
fn a_read_concurrent_with_a_write_may_see_either_value() {
    for seen in [Some(1), Some(2)] {
        let h = [w(0, 1, 1), w(2, 10, 2), r(3, 4, seen)];
        assert!(check_register(&h).is_linearizable(), "{seen:?}");
    }
    // Two reads inside one write: old then new is fine, new then old is not.
    let fine = [w(0, 1, 1), w(2, 20, 2), r(3, 4, Some(1)), r(5, 6, Some(2))];
    assert!(check_register(&fine).is_linearizable());
    let flicker = [w(0, 1, 1), w(2, 20, 2), r(3, 4, Some(2)), r(5, 6, Some(1))];
    let v = check_register(&flicker);
    let c = v
        .counterexample()
        .expect("new-then-old is not linearizable");
    assert_eq!(c.ops, vec![0, 1, 2, 3]);
    assert_eq!(c.stale, None, "no write lies wholly between");
}

#[test]
fn a_stale_read_is_found_and_shrunk_to_three_operations() {
    let h = [
        w(0, 1, 1),
        r(1, 2, Some(1)),
        w(3, 5, 2),
        w(4, 6, 7), // concurrent with the write of 2; completes before the read
        r(8, 9, Some(7)),
        r(10, 11, Some(1)), // stale: both later writes completed before it began
        r(12, 13, Some(7)),
    ];
    let v = check_register(&h);
    let c = v.counterexample().expect("stale read");
    assert_eq!(c.ops.len(), 3, "{c:?}");
    let s = c.stale.expect("a stale read");
    assert_eq!(s.read, 5);
    assert_eq!(s.read_from, Some(0));
    assert!(s.missed == 2 || s.missed == 3);
    let words = c.describe(&h).join("\n");
    assert!(words.starts_with("stale read: client 0 read 1"), "{words}");
}

#[test]
fn reading_the_initial_value_after_a_completed_write_is_stale() {
    let h = [w(0, 1, 5), r(2, 3, None)];
    let c = check_register(&h).counterexample().cloned().expect("stale");
    assert_eq!(
        c.stale,
        Some(StaleRead {
            read: 1,
            read_from: None,
            missed: 0
        })
    );
}

#[test]
fn reads_from_the_future_and_of_unwritten_values_are_violations() {
    let future = [r(0, 1, Some(3)), w(2, 3, 3)];
    assert!(!check_register(&future).is_linearizable());
    let unwritten = [w(0, 1, 1), r(2, 3, Some(9)), r(4, 5, Some(1))];
    let c = check_register(&unwritten)
        .counterexample()
        .cloned()
        .unwrap();
    assert_eq!(c.ops, vec![1], "the read of 9 alone is the counterexample");
}

#[test]
fn an_unanswered_write_may_or_may_not_take_effect() {
    let pending = op(2, None, RegisterAction::Write(2));
    let took = [
        w(0, 1, 1),
        pending.clone(),
        r(5, 6, Some(2)),
        r(7, 8, Some(2)),
    ];
    assert!(check_register(&took).is_linearizable());
    let never = [w(0, 1, 1), pending.clone(), r(5, 6, Some(1))];
    assert!(check_register(&never).is_linearizable());
    // But once seen, it cannot be undone.
    let undone = [w(0, 1, 1), pending, r(5, 6, Some(2)), r(7, 8, Some(1))];
    assert!(!check_register(&undone).is_linearizable());
    // An unanswered read says nothing.
    let silent = [w(0, 1, 1), op(2, None, RegisterAction::Read(Some(42)))];
    assert!(check_register(&silent).is_linearizable());
}

#[test]
fn touching_operations_are_concurrent() {
    // The write answers at 5 and the read begins at 5: either order.
    let h = [w(0, 1, 1), w(2, 5, 2), r(5, 6, Some(1))];
    assert!(check_register(&h).is_linearizable());
}

#[test]
fn long_sequential_history_with_one_stale_read_deep_inside() {
    let mut h = Vec::new();
    for k in 0..2_000u64 {
        h.push(w(10 * k, 10 * k + 3, k + 1));
        h.push(r(10 * k + 4, 10 * k + 8, Some(k + 1)));
    }
    assert!(check_register(&h).is_linearizable());
    h[1_501].action = RegisterAction::Read(Some(700));
    let c = check_register(&h).counterexample().cloned().unwrap();
    assert_eq!(c.ops.len(), 3);
    let s = c.stale.unwrap();
    assert_eq!((s.read, s.read_from), (1_501, Some(1_398)));
}

fn arb_history() -> impl Strategy<Value = Vec<RegisterOp>> {
    let one = (0u64..20, 1u64..10, 0u8..20, 0u64..4).prop_map(|(call, len, kind, v)| {
        let ret = Some(call + len);
        match kind {
            0..=2 => op(call, None, RegisterAction::Write(v + 1)),
            3..=9 => op(call, ret, RegisterAction::Write(v + 1)),
            _ => op(call, ret, RegisterAction::Read((v > 0).then_some(v))),
        }
    });
    prop::collection::vec(one, 0..7)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// The search agrees with trying every order, and its order is a linearisation.
    #[test]
    fn search_agrees_with_brute_force(h in arb_history()) {
        let verdict = check_register(&h);
        prop_assert_eq!(verdict.is_linearizable(), brute_force(&h), "{:?}", h);
        if let RegisterVerdict::Linearizable { order } = &verdict {
            prop_assert!(is_linearisation(&h, order));
        }
    }

    /// A counterexample violates by itself, and dropping any one of its operations (a write
    /// with the reads of its value) leaves a linearisable history.
    #[test]
    fn counterexamples_are_minimal(h in arb_history()) {
        if let RegisterVerdict::Violation(c) = check_register(&h) {
            let sub: Vec<RegisterOp> = c.ops.iter().map(|&i| h[i].clone()).collect();
            prop_assert!(!brute_force(&sub));
            for drop in 0..sub.len() {
                let dropped = sub[drop].action;
                let rest: Vec<RegisterOp> = sub
                    .iter()
                    .enumerate()
                    .filter(|&(k, o)| {
                        k != drop
                            && !matches!((dropped, o.action),
                                (RegisterAction::Write(a), RegisterAction::Read(Some(b))) if a == b)
                    })
                    .map(|(_, o)| o.clone())
                    .collect();
                prop_assert!(brute_force(&rest), "dropping {} of {:?}", drop, sub);
            }
        }
    }
}

#[test]
fn the_generic_search_takes_any_model() {
    // A counter that returns its new value: two concurrent increments both returning 1 is
    // not linearisable.
    struct Counter;
    impl Model for Counter {
        type State = u64;
        type Input = ();
        type Output = u64;
        fn init(&self) -> u64 {
            0
        }
        fn step(&self, s: &u64, _: &(), out: &u64) -> Option<u64> {
            (*out == s + 1).then_some(s + 1)
        }
    }
    let inc = |call, ret, out| Operation {
        call,
        ret: Some(ret),
        input: (),
        output: out,
    };
    assert!(check(&Counter, &[inc(0, 5, 2), inc(1, 6, 1)]).is_linearizable());
    assert!(!check(&Counter, &[inc(0, 5, 1), inc(1, 6, 1)]).is_linearizable());
    assert!(check(&Register, &[]).is_linearizable());
}
