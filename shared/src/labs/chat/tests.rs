use proptest::prelude::*;

use super::*;
use crate::labs::{Lab, Params, Verdict};

fn lines(lab: &ChatLab, who: usize) -> Vec<String> {
    lab.output(who).iter().map(ToString::to_string).collect()
}

fn texts(m: &[MessageRef]) -> Vec<&str> {
    m.iter().map(|m| m.text.as_str()).collect()
}

#[test]
fn pizza_reproduces_the_seeds_example_at_c() {
    let mut lab = ChatLab::new(ChatConfig::pizza(1)).unwrap();
    lab.run_to_end();
    let c = lines(&lab, 2);
    assert_eq!(
        &c[..3],
        [
            "[PENDING] (2, B): Hello Alice",
            "[DISPLAY] (1, A): Hi",
            "[DISPLAY] (2, B): Hello Alice",
        ]
    );
    assert_eq!(
        &c[3..],
        [
            "[PENDING] (6, B): I do!",
            "[DISPLAY] (5, A): Who wants pizza?",
            "[DISPLAY] (6, B): I do!",
        ]
    );
    // While "Hello Alice" was pending, C waited for A.
    assert_eq!(lab.output(2)[0].waiting_for, vec!["A".to_owned()]);
    // The race: C receives "I do!" before "Who wants pizza?"; causal and total order fix it.
    assert_eq!(
        texts(lab.arrival(2)),
        ["Hello Alice", "Hi", "I do!", "Who wants pizza?"]
    );
    assert_eq!(
        texts(lab.causal(2)),
        ["Hi", "Hello Alice", "Who wants pizza?", "I do!"]
    );
    for who in 0..3 {
        assert_eq!(
            texts(&lab.total(who)),
            ["Hi", "Hello Alice", "Who wants pizza?", "I do!"]
        );
        assert!(lab.pending(who).is_empty());
    }
    let claims = lab.claims();
    assert!(
        claims.iter().all(|c| c.verdict == Verdict::Holds),
        "{claims:#?}"
    );
    assert!(claims[2]
        .evidence
        .contains("C received \"Hello Alice\" before \"Hi\""));
}

#[test]
fn a_delay_flag_moves_the_lag() {
    let mut c = ChatConfig::pizza(1);
    c.set_delays("A>C=100ms,B>C=2s").unwrap();
    let mut lab = ChatLab::new(c).unwrap();
    lab.run_to_end();
    // Now C hears A first and holds "Hi" until B speaks.
    let c = lines(&lab, 2);
    assert_eq!(c[0], "[PENDING] (1, A): Hi");
    assert_eq!(lab.output(2)[0].waiting_for, vec!["B".to_owned()]);
    assert_eq!(texts(&lab.total(2)), texts(&lab.total(0)));
}

#[test]
fn notation_errors_are_clear() {
    let mut c = ChatConfig::pizza(1);
    assert_eq!(
        c.set_delays("B>D=2s").unwrap_err().to_string(),
        "no member named \"D\""
    );
    assert!(c
        .set_delays("B-C=2s")
        .unwrap_err()
        .to_string()
        .starts_with("delay: expected FROM>TO=TIME"));
    assert!(c.set_delays("B>C=soon").is_err());
    assert!(c.add_departures("C", Departure::Leave).is_err());
    let mut bad = ChatConfig::pizza(1);
    bad.link_ms = f64::NAN;
    assert!(ChatLab::new(bad).is_err());
    assert!(ChatLab::new(ChatConfig::random(1, 2, 0)).is_err());
}

#[test]
fn stepping_equals_running_at_once() {
    let config = ChatConfig::random(4, 5, 9);
    let mut a = ChatLab::new(config.clone()).unwrap();
    let mut b = ChatLab::new(config).unwrap();
    a.run_to_end();
    while b.step().is_some() {}
    for i in 0..4 {
        assert_eq!(a.total(i), b.total(i));
        assert_eq!(a.output(i), b.output(i));
        assert_eq!(a.arrival(i), b.arrival(i));
    }
    assert_eq!(a.tables(), b.tables());
}

#[test]
fn links_rebuild_the_same_run() {
    let p = Params::parse("scenario=random&members=4&messages=3&jitter=50&vanish=D@1s&seed=3");
    let mut a = SPEC.build(&p).unwrap();
    a.run_until(crate::sim::SimTime::from_secs(60));
    let mut b = SPEC.build(&a.params()).unwrap();
    b.run_until(crate::sim::SimTime::from_secs(60));
    assert_eq!(a.claims(), b.claims());
    assert_eq!(a.tables(), b.tables());
    assert!(SPEC.build(&Params::parse("delay=A>Z=1s")).is_err());
    assert!(SPEC.build(&Params::parse("nonsense=1")).is_err());
}

#[test]
fn a_silent_member_blocks_until_the_relay_announces_it() {
    // C's tab closes before it ever speaks; the relay notices 3 s later.
    let mut c = ChatConfig::pizza(1);
    c.add_departures("C@0s", Departure::Vanish).unwrap();
    c.detect_ms = 3000.0;
    let mut lab = ChatLab::new(c).unwrap();
    lab.run_until(crate::sim::SimTime::from_millis(2900));
    assert!(lab.total(0).is_empty(), "A waits for C");
    assert_eq!(lab.pending(0)[0].1, vec!["C".to_owned()]);
    lab.run_to_end();
    for who in [0, 1] {
        assert_eq!(
            texts(&lab.total(who)),
            ["Hi", "Hello Alice", "Who wants pizza?", "I do!"]
        );
    }
    let last = lab.claims().pop().unwrap();
    assert_eq!(last.verdict, Verdict::Holds, "{last:?}");
}

#[test]
fn a_leave_frame_unblocks_at_once() {
    let mut c = ChatConfig::pizza(1);
    c.add_departures("C@0s", Departure::Leave).unwrap();
    let mut lab = ChatLab::new(c).unwrap();
    lab.run_to_end();
    assert_eq!(lab.total(0).len(), 4);
    assert_eq!(lab.total(0), lab.total(1));
}

fn check_run(lab: &ChatLab) -> Result<(), TestCaseError> {
    let present = lab.present();
    let totals: Vec<_> = present.iter().map(|&i| lab.total(i)).collect();
    for t in &totals {
        prop_assert_eq!(t, &totals[0]);
        prop_assert!(t.windows(2).all(|w| w[0].ts < w[1].ts));
        prop_assert!(lab.inversions(t).is_empty());
    }
    for &i in &present {
        prop_assert!(lab.pending(i).is_empty());
        prop_assert!(lab.inversions(lab.causal(i)).is_empty());
        // FIFO: each sender's messages in the order sent.
        let fifo = lab.fifo(i);
        for (k, a) in fifo.iter().enumerate() {
            for b in &fifo[k + 1..] {
                prop_assert!(a.ts.node != b.ts.node || a.ts < b.ts);
            }
        }
        // Every message of a present member reached every present member.
        let sent = lab
            .sent()
            .iter()
            .filter(|s| present.contains(&(s.message.ts.node as usize)))
            .count();
        prop_assert!(totals[0].len() >= sent);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random chats over jittery links: one total order at every member, sorted and causal;
    /// causal columns causal; FIFO columns per-sender ordered; nothing stuck.
    #[test]
    fn random_chats_agree(seed in any::<u64>(), n in 2usize..6, messages in 0u32..8, jitter in 0.0f64..300.0) {
        let mut c = ChatConfig::random(n, messages, seed);
        c.jitter_ms = jitter;
        let mut lab = ChatLab::new(c).unwrap();
        lab.run_to_end();
        check_run(&lab)?;
    }

    /// The same with members leaving or vanishing mid-run.
    #[test]
    fn departures_never_block(seed in any::<u64>(), n in 3usize..6, messages in 1u32..6, at in 0.0f64..6.0, vanish in any::<bool>()) {
        let mut c = ChatConfig::random(n, messages, seed);
        let how = if vanish { Departure::Vanish } else { Departure::Leave };
        c.add_departures(&format!("{}@{at}s", c.members[n - 1]), how).unwrap();
        let mut lab = ChatLab::new(c).unwrap();
        lab.run_to_end();
        prop_assert!(lab.is_gone(n - 1));
        check_run(&lab)?;
    }
}
