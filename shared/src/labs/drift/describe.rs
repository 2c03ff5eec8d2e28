//! The drift lab's events in words: the CLI's sync blocks and the page's event log.

use super::node_name;
use super::records::{LabEvent, LabEventKind};
use crate::clocks::physical_clock::{Adjustment, Direction};
use crate::sync::{berkeley, marzullo::Chimer};
use crate::NodeId;

fn signed(v: f64) -> String {
    format!("{}{:.3}s", if v < 0.0 { "-" } else { "+" }, v.abs())
}

fn signed_ms(v: f64) -> String {
    format!("{}{:.3}ms", if v < 0.0 { "-" } else { "+" }, v.abs() * 1e3)
}

fn ms(v: f64) -> String {
    format!("{:.1}ms", v * 1e3)
}

fn describe_adjustment(a: &Adjustment) -> String {
    match *a {
        Adjustment::Stepped {
            delta,
            direction: Direction::Backward,
        } => {
            format!("stepped BACK by {} (clock went backwards)", ms(-delta))
        }
        Adjustment::Stepped { delta, .. } => format!("stepped forward by {}", ms(delta)),
        Adjustment::Slewing { delta, duration } => {
            format!("slewing {} over {:.1}s", ms(delta), duration)
        }
    }
}

impl LabEvent {
    /// A human explanation of the event, one line per item (the CLI's sync blocks and the
    /// browser's log).
    pub fn describe(&self) -> Vec<String> {
        let n = |id: NodeId| node_name(id);
        match &self.kind {
            LabEventKind::Cristian { node, server, sample, true_offset, adjustment } => vec![
                format!("⟳ SYNC EVENT (Cristian) — Node {} asks time server {}", n(*node), n(*server)),
                format!(
                    "- Server says {:.3}s, RTT {}: estimate {:.3}s + {} = offset {} (true {}, error {} ≤ RTT/2 {})",
                    sample.server_time,
                    ms(sample.rtt()),
                    sample.server_time,
                    ms(sample.rtt() / 2.0),
                    signed(sample.offset()),
                    signed(*true_offset),
                    ms((sample.offset() - true_offset).abs()),
                    ms(sample.rtt() / 2.0)
                ),
                format!("- Node {}: {}", n(*node), describe_adjustment(adjustment)),
            ],
            LabEventKind::Berkeley { round, leader_clock, adjustment } => {
                let mut lines = vec![
                    "⟳ SYNC EVENT (Berkeley Algorithm)".to_string(),
                    format!("- Leader (Node {}) requests timestamps from all nodes", n(round.leader)),
                ];
                for e in &round.estimates {
                    let reported = e.adjusted - e.rtt / 2.0;
                    lines.push(format!(
                        "- Node {} reports: {:.3}s (RTT: {}, adjusted: {:.3} + {:.3} = {:.3}s){}",
                        n(e.node),
                        reported,
                        ms(e.rtt),
                        reported,
                        e.rtt / 2.0,
                        e.adjusted,
                        if e.verdict == berkeley::Verdict::Outlier { " — OUTLIER, not averaged" } else { "" }
                    ));
                }
                lines.push(format!(
                    "- Computed average: {:.3}s (leader clock {:.3}s, average offset {})",
                    leader_clock + round.average_offset,
                    leader_clock,
                    signed(round.average_offset)
                ));
                let deltas: Vec<String> =
                    round.deltas.iter().map(|(id, d)| format!("{}: {}", n(*id), signed(*d))).collect();
                lines.push(format!("- Sending adjustments: {}", deltas.join(", ")));
                lines.push(format!("- Leader {}: {}", n(round.leader), describe_adjustment(adjustment)));
                lines
            }
            LabEventKind::Correction { node, delta, adjustment } => vec![format!(
                "- Node {} receives delta {}: {}",
                n(*node),
                signed(*delta),
                describe_adjustment(adjustment)
            )],
            LabEventKind::Ntp { node, peers, interval, combined, adjustment, poll } => {
                let mut lines = vec![format!("⟳ SYNC EVENT (NTP) — Node {}", n(*node))];
                for p in peers {
                    lines.push(format!(
                        "- peer {}: offset {} delay {} distance {} → {}",
                        n(p.peer),
                        signed_ms(p.offset),
                        ms(p.delay),
                        ms(p.distance),
                        match p.chimer {
                            Chimer::Truechimer => "truechimer",
                            Chimer::Falseticker => "FALSETICKER",
                        }
                    ));
                }
                lines.push(format!(
                    "- Marzullo: [{}, {}]; combined offset {}; next poll {:.0}s",
                    signed_ms(interval.lo),
                    signed_ms(interval.hi),
                    signed_ms(*combined),
                    poll
                ));
                lines.push(format!("- Node {}: {}", n(*node), describe_adjustment(adjustment)));
                lines
            }
            LabEventKind::FtAverage { node, values, result, adjustment } => {
                let vs: Vec<String> =
                    values.iter().map(|(id, v)| format!("{}: {}", n(*id), signed(*v))).collect();
                vec![
                    format!("⟳ SYNC EVENT (fault-tolerant average) — Node {}", n(*node)),
                    format!("- offsets seen: {}", vs.join(", ")),
                    format!(
                        "- kept [{}, {}], average {}{}",
                        signed(result.lowest_kept),
                        signed(result.highest_kept),
                        signed(result.value),
                        match result.resilience {
                            crate::sync::ft_average::Resilience::Byzantine => String::new(),
                            crate::sync::ft_average::Resilience::Insufficient { needed } => format!(
                                " — WARNING: n = {} < 3f+1 = {needed}, liars can defeat this",
                                values.len()
                            ),
                        }
                    ),
                    format!("- Node {}: {}", n(*node), describe_adjustment(adjustment)),
                ]
            }
            LabEventKind::NoSync { node, reason } => {
                vec![format!("- Node {} keeps its local time: {reason}", n(*node))]
            }
            LabEventKind::Jump { node, delta } => {
                vec![format!("⚡ Node {}'s clock jumps {}", n(*node), signed(*delta))]
            }
            LabEventKind::SteppedBack { node, by } => vec![format!(
                "⚠ Node {}'s clock was stepped BACK by {}: timestamps after this can be smaller than before",
                n(*node),
                ms(*by)
            )],
        }
    }
}
