//! The notebook's four questions about a run (drift between clocks, queues, jumps, rate versus
//! progress), the claims the lab checks against a run's own numbers, and the Markdown report.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::machine::{LabEvent, LogEntry};
use super::{Experiment, LabConfig};
use crate::labs::{Claim, Verdict};
use crate::trace::{EventKind, Trace};

/// Per-machine results of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineStats {
    /// Machine number.
    pub machine: usize,
    /// Ticks per second.
    pub rate: u32,
    /// The clock when the run stopped.
    pub final_clock: u64,
    /// Logical clock advance per second of real time over the run.
    pub clock_speed: f64,
    /// Internal events.
    pub internal: usize,
    /// Send events (a send to all counts once).
    pub sends: usize,
    /// Receive events.
    pub receives: usize,
    /// Mean clock jump between consecutive events.
    pub jump_mean: f64,
    /// Largest clock jump, and when it happened (seconds).
    pub jump_max: (u64, f64),
    /// Jump size → how many times it occurred.
    pub jumps: BTreeMap<u64, usize>,
    /// Mean queue length over the machine's events.
    pub queue_mean: f64,
    /// Longest queue seen.
    pub queue_max: usize,
    /// Queue length when the run stopped.
    pub queue_final: usize,
    /// Mean of (fastest machine's clock − this clock), sampled every second.
    pub gap_mean: f64,
    /// Largest such gap.
    pub gap_max: i64,
    /// The gap when the run stopped.
    pub gap_final: i64,
    /// Fraction of the one-second samples at which this machine's queue was empty.
    pub empty_queue_share: f64,
}

/// A run's analysis: the notebook's four questions (drift, queues, jumps, rate vs progress).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Per machine.
    pub machines: Vec<MachineStats>,
    /// The machine with the highest rate (the first of equals): the reference for gaps.
    pub fastest: usize,
    /// Sample times (seconds) of the series below.
    pub sample_times: Vec<f64>,
    /// Per machine, its clock at each sample time.
    pub clocks: Vec<Vec<u64>>,
    /// Per machine, its queue length at each sample time (after its last event by then).
    pub queues: Vec<Vec<usize>>,
}

/// The last log entry at or before `t`.
fn at_time(log: &[LogEntry], t: f64) -> Option<&LogEntry> {
    let i = log.partition_point(|e| e.time_s <= t + 1e-9);
    i.checked_sub(1).map(|i| &log[i])
}

/// Analyses per-machine logs (from either mode) of a run with these rates.
pub fn analyse<L: AsRef<[LogEntry]>>(rates: &[u32], logs: &[L]) -> Analysis {
    let logs: Vec<&[LogEntry]> = logs.iter().map(AsRef::as_ref).collect();
    let fastest = rates
        .iter()
        .enumerate()
        .max_by_key(|&(i, &r)| (r, Reverse(i)))
        .map_or(0, |(i, _)| i);
    let end = logs
        .iter()
        .filter_map(|l| l.last())
        .map(|e| e.time_s)
        .fold(0.0_f64, f64::max);
    let sample_times: Vec<f64> = (0..=end.floor() as u64).map(|s| s as f64).collect();
    let clocks: Vec<Vec<u64>> = logs
        .iter()
        .map(|l| {
            sample_times
                .iter()
                .map(|&t| at_time(l, t).map_or(0, |e| e.clock))
                .collect()
        })
        .collect();
    let queues: Vec<Vec<usize>> = logs
        .iter()
        .map(|l| {
            sample_times
                .iter()
                .map(|&t| at_time(l, t).map_or(0, |e| e.queue))
                .collect()
        })
        .collect();
    let machines = logs
        .iter()
        .enumerate()
        .map(|(m, log)| {
            let events: Vec<&LogEntry> = log.iter().filter(|e| e.event != LabEvent::Stop).collect();
            let mut jumps = BTreeMap::new();
            let mut jump_max = (0, 0.0);
            let mut prev = 0;
            for e in &events {
                let j = e.clock.saturating_sub(prev);
                *jumps.entry(j).or_insert(0) += 1;
                if j > jump_max.0 {
                    jump_max = (j, e.time_s);
                }
                prev = e.clock;
            }
            let count = |f: fn(&LabEvent) -> bool| events.iter().filter(|e| f(&e.event)).count();
            let mean = |xs: &mut dyn Iterator<Item = f64>| {
                let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
                if n == 0 {
                    0.0
                } else {
                    s / n as f64
                }
            };
            let gaps: Vec<i64> = (0..sample_times.len())
                .map(|i| clocks[fastest][i] as i64 - clocks[m][i] as i64)
                .collect();
            let final_clock = log.last().map_or(0, |e| e.clock);
            MachineStats {
                machine: m,
                rate: rates.get(m).copied().unwrap_or(0),
                final_clock,
                clock_speed: if end > 0.0 {
                    final_clock as f64 / end
                } else {
                    0.0
                },
                internal: count(|e| matches!(e, LabEvent::Internal)),
                sends: count(|e| matches!(e, LabEvent::Send { .. })),
                receives: count(|e| matches!(e, LabEvent::Receive { .. })),
                jump_mean: mean(
                    &mut jumps
                        .iter()
                        .flat_map(|(&j, &c)| std::iter::repeat_n(j as f64, c)),
                ),
                jump_max,
                jumps,
                queue_mean: mean(&mut events.iter().map(|e| e.queue as f64)),
                queue_max: log.iter().map(|e| e.queue).max().unwrap_or(0),
                queue_final: log.last().map_or(0, |e| e.queue),
                gap_mean: mean(&mut gaps.iter().map(|&g| g as f64)),
                gap_max: gaps.iter().copied().max().unwrap_or(0),
                gap_final: logs[fastest].last().map_or(0, |e| e.clock) as i64 - final_clock as i64,
                empty_queue_share: mean(
                    &mut queues[m].iter().map(|&q| if q == 0 { 1.0 } else { 0.0 }),
                ),
            }
        })
        .collect();
    Analysis {
        machines,
        fastest,
        sample_times,
        clocks,
        queues,
    }
}

/// Markdown table of an analysis.
pub fn summary_table(a: &Analysis) -> String {
    let mut s = String::from(
        "| machine | rate/s | final clock | clock/s | internal | sends | receives | jump mean | jump max (at s) | queue mean | queue max | queue final | gap mean | gap final |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for m in &a.machines {
        let _ = writeln!(
            s,
            "| M{} | {} | {} | {:.2} | {} | {} | {} | {:.2} | {} ({:.1}) | {:.2} | {} | {} | {:.1} | {} |",
            m.machine,
            m.rate,
            m.final_clock,
            m.clock_speed,
            m.internal,
            m.sends,
            m.receives,
            m.jump_mean,
            m.jump_max.0,
            m.jump_max.1,
            m.queue_mean,
            m.queue_max,
            m.queue_final,
            m.gap_mean,
            m.gap_final
        );
    }
    s
}

/// A Markdown report of one experiment's run: the table, the jump distributions, and the
/// notebook's observations, each stated with this run's numbers and whether it holds here.
pub fn report(experiment: Option<&Experiment>, config: &LabConfig, a: &Analysis) -> String {
    let mut s = String::new();
    match experiment {
        Some(e) => {
            let _ = writeln!(s, "# Experiment {}: {}\n", e.number, e.title);
        }
        None => {
            let _ = writeln!(s, "# Lamport lab run\n");
        }
    }
    let _ = writeln!(
        s,
        "Rates {:?} ticks/s, internal probability {:.0} %, {} s, seed {}, network delay {} ms.\n",
        config.rates,
        config.internal_probability * 100.0,
        config.duration_s,
        config.seed,
        config.network_delay_ms
    );
    s.push_str(&summary_table(a));
    s.push_str("\nJump distribution (jump size × count):\n\n");
    for m in &a.machines {
        let d: Vec<String> = m.jumps.iter().map(|(j, c)| format!("{j}×{c}")).collect();
        let _ = writeln!(s, "- M{} ({}/s): {}", m.machine, m.rate, d.join(", "));
    }
    s.push_str("\n## Observations\n\n");
    for line in observations(config, a) {
        let _ = writeln!(s, "- {line}");
    }
    s
}

/// The probability that one roll of machine `from` (of `n`) sends to machine `to`, by
/// [`super::Machine::roll`]'s rule: a third of the non-internal rolls each to the next machine,
/// to the one after it (the next one when that is `from` itself), and to all others.
fn send_probability(from: usize, to: usize, n: usize, p: f64) -> f64 {
    if from == to || n < 2 {
        return 0.0;
    }
    let third = (1.0 - p) / 3.0;
    let next = (from + 1) % n;
    let after = (from + 2) % n;
    let mut q = third; // to all others
    if to == next {
        q += third;
    }
    if (after != from && to == after) || (after == from && to == next) {
        q += third;
    }
    q
}

/// The notebook's observations as claims, each decided by this run's numbers.
///
/// The queueing claim uses the offered load: machine `m` gets messages at
/// `λ_m = Σ_j r_j · (1 − s_j) · q_jm` per second, where `r_j` is machine `j`'s rate, `s_j` the
/// share of its ticks spent receiving (measured) and `q_jm` the probability that one of its
/// rolls sends to `m` (the tick rule). A machine with `λ_m / r_m > 1` cannot keep up — its queue
/// grows without bound — and one below 1 can (a single-server queue's stability condition).
pub fn claims(config: &LabConfig, a: &Analysis) -> Vec<Claim> {
    let mut out = Vec::new();
    let Some(fast) = a.machines.get(a.fastest) else {
        return out;
    };
    let top_clock = a.machines.iter().map(|m| m.final_clock).max().unwrap_or(0);
    out.push(Claim::new(
        "The fastest machine has the highest clock: what it receives carries smaller clocks \
         than its own, so no message pushes another machine past it.",
        format!(
            "M{} at {}/s ends at {}; the highest final clock is {}",
            fast.machine, fast.rate, fast.final_clock, top_clock
        ),
        Verdict::of(fast.final_clock == top_clock),
    ));
    let n = a.machines.len();
    let p = config.internal_probability;
    let ticks = |m: &MachineStats| (m.internal + m.sends + m.receives).max(1) as f64;
    for m in &a.machines {
        if m.machine == a.fastest || m.rate == fast.rate {
            continue;
        }
        let load: f64 = a
            .machines
            .iter()
            .map(|j| {
                let rolls = 1.0 - j.receives as f64 / ticks(j);
                f64::from(j.rate) * rolls * send_probability(j.machine, m.machine, n, p)
            })
            .sum();
        let rho = load / f64::from(m.rate.max(1));
        let ratio = m.clock_speed / fast.clock_speed.max(1e-9);
        let grows = m.queue_final >= 10 && m.queue_final * 2 >= m.queue_max;
        let evidence = if grows {
            format!(
                "M{} ({}/s) cannot keep up: its queue ends at {} (max {}), so it handles ever older messages and its clock advances at {:.2}× the speed of M{}'s ({:.2} vs {:.2} per second; the notebook's 10/18 argument predicts about ½ for rates 1, 3, 6), ending {} behind; offered load ρ = {:.2}",
                m.machine, m.rate, m.queue_final, m.queue_max, ratio, fast.machine, m.clock_speed, fast.clock_speed, m.gap_final, rho
            )
        } else {
            format!(
                "M{} ({}/s) keeps up: its queue peaks at {} and ends at {}, it is empty at {:.0} % of the one-second samples, and its clock advances at {:.2}× the speed of M{}'s (mean gap {:.1}, final gap {}); offered load ρ = {:.2}",
                m.machine, m.rate, m.queue_max, m.queue_final, m.empty_queue_share * 100.0, ratio, fast.machine, m.gap_mean, m.gap_final, rho
            )
        };
        // Near ρ = 1 a queue may go either way within a minute: both outcomes agree.
        let verdict = if (0.9..=1.1).contains(&rho) {
            Verdict::Holds
        } else {
            Verdict::of(grows == (rho > 1.0))
        };
        out.push(Claim::new(
            format!(
                "A machine that is sent messages faster than it ticks (offered load ρ > 1) \
                 cannot keep up: its queue grows and its clock lags; with ρ < 1 it keeps up \
                 (M{}).",
                m.machine
            ),
            evidence,
            verdict,
        ));
    }
    let mixed = a.machines.iter().any(|m| m.rate != fast.rate);
    if let Some(big) = a
        .machines
        .iter()
        .max_by_key(|m| m.jump_max.0)
        .filter(|_| mixed)
    {
        let verdict = Verdict::of(big.rate < fast.rate || big.jump_max.0 <= 1);
        out.push(Claim::new(
            "Clocks jump at the slower machines: a message from a faster machine carries a \
             larger clock, and the receiver takes max(local, received) + 1 (the notebook saw a \
             jump of 20 at the rate-3 machine in experiment 4).",
            format!(
                "Largest jump: M{} ({}/s) jumps by {} at {:.1} s — big jumps come after long gaps without news from a faster machine",
                big.machine, big.rate, big.jump_max.0, big.jump_max.1
            ),
            verdict,
        ));
    }
    out
}

/// Lamport's clock condition, checked over a run: every event raises its machine's clock, and
/// every receive has a higher clock than its send; and the machines' clocks equal the Lamport
/// times the trace computes on its own from the send/receive structure.
pub fn clock_condition<L: AsRef<[LogEntry]>>(logs: &[L], trace: &Trace) -> Claim {
    let mut events = 0usize;
    let mut rises = true;
    let mut agree = true;
    for (m, log) in logs.iter().enumerate() {
        let entries: Vec<&LogEntry> = log
            .as_ref()
            .iter()
            .filter(|e| e.event != LabEvent::Stop)
            .collect();
        events += entries.len();
        rises &= entries.windows(2).all(|w| w[0].clock < w[1].clock);
        rises &= entries.first().is_none_or(|e| e.clock >= 1);
        let lane = trace.lane(super::trace_node(m));
        agree &= lane.len() == entries.len()
            && lane
                .iter()
                .zip(&entries)
                .all(|(&id, e)| trace.events()[id].lamport == e.clock);
    }
    let mut received = 0usize;
    let mut ordered = true;
    for e in trace.events() {
        if let EventKind::Receive { message } = e.kind {
            received += 1;
            let sent = trace
                .send_of(message)
                .and_then(|s| trace.event(s))
                .map_or(u64::MAX, |s| s.lamport);
            ordered &= sent < e.lamport;
        }
    }
    Claim::new(
        "Lamport's clock condition (1978): if event a happened before event b, then \
         C(a) < C(b) — each event raises its machine's clock, and a receive's clock exceeds its \
         send's.",
        format!(
            "{events} events: clocks rise at every event ({}); {received} receives, each above its send ({}); the trace's independently computed Lamport times {} the machines' clocks",
            if rises { "yes" } else { "NO" },
            if ordered { "yes" } else { "NO" },
            if agree { "equal" } else { "DIFFER from" }
        ),
        Verdict::of(rises && ordered && agree),
    )
}

/// The notebook's observations, stated with this run's numbers and whether each holds here.
pub fn observations(config: &LabConfig, a: &Analysis) -> Vec<String> {
    claims(config, a)
        .into_iter()
        .map(|c| match c.verdict {
            Verdict::Holds => format!("{}: holds in this run.", c.evidence),
            Verdict::Fails => format!("{}: does NOT hold in this run.", c.evidence),
            Verdict::Pending => format!("{}: not decided yet.", c.evidence),
        })
        .collect()
}
