//! The trace validator: checks the clock conditions of Lamport (1978) and of vector clocks
//! (Fidge 1988, Mattern 1989) on a trace whose clocks came from outside, and explains every
//! violation in words.
//!
//! Physical times are checked too, as TSViz's rules for timestamped logs ask: a node's own
//! timestamps never go backwards, and a message is not received, by the receiver's clock,
//! before it was sent by the sender's — when it is, the two clocks disagree by at least the
//! difference: the clock skew between hosts that makes a child span start before its parent.

use std::fmt;

use super::mermaid::fmt_ms;
use super::{EventId, EventKind, Trace};
use crate::NodeId;

/// One way in which a trace's clocks are illegal.
#[derive(Debug, Clone, PartialEq)]
pub enum Violation {
    /// A node's first event does not have its own vector entry equal to 1.
    FirstClockNotOne {
        /// The event.
        event: EventId,
        /// Its node.
        node: NodeId,
        /// The own entry found.
        found: u64,
    },
    /// A node's own vector entry did not grow by exactly one from its previous event.
    OwnEntryNotNext {
        /// The event.
        event: EventId,
        /// Its node.
        node: NodeId,
        /// The previous event's own entry.
        previous: u64,
        /// The own entry found.
        found: u64,
    },
    /// A vector entry (for another node) is smaller than at the node's previous event.
    ClockWentBackwards {
        /// The event.
        event: EventId,
        /// Its node.
        node: NodeId,
        /// The entry that shrank.
        entry: NodeId,
        /// Its value at the previous event.
        previous: u64,
        /// Its value now.
        found: u64,
    },
    /// A receive's vector timestamp does not dominate its send's.
    ReceiveNotAfterSend {
        /// The receive event.
        receive: EventId,
        /// The send event.
        send: EventId,
        /// An entry where the send is ahead.
        entry: NodeId,
        /// The send's value of that entry.
        sent: u64,
        /// The receive's value of that entry.
        received: u64,
    },
    /// A node's Lamport time did not increase from its previous event.
    LamportNotIncreasing {
        /// The event.
        event: EventId,
        /// Its node.
        node: NodeId,
        /// The previous event's Lamport time.
        previous: u64,
        /// This event's Lamport time.
        found: u64,
    },
    /// A receive's Lamport time is not greater than its send's.
    LamportReceiveNotAfterSend {
        /// The receive event.
        receive: EventId,
        /// The send event.
        send: EventId,
        /// The send's Lamport time.
        sent: u64,
        /// The receive's Lamport time.
        received: u64,
    },
    /// A node's physical time runs backwards from its previous event.
    PhysicalTimeBackwards {
        /// The event.
        event: EventId,
        /// Its node.
        node: NodeId,
        /// The previous event's time (ms).
        previous_ms: f64,
        /// This event's time (ms).
        found_ms: f64,
    },
    /// A message is received, by the receiver's clock, before its sender's clock sent it:
    /// clock skew between the two nodes of at least `sent_ms - received_ms`.
    ReceiveBeforeSend {
        /// The receive event.
        receive: EventId,
        /// The send event.
        send: EventId,
        /// The receiving node.
        receiver: NodeId,
        /// The sending node.
        sender: NodeId,
        /// The send's physical time (sender's clock, ms).
        sent_ms: f64,
        /// The receive's physical time (receiver's clock, ms).
        received_ms: f64,
    },
    /// A vector entry claims knowledge of more events of a node than that node has.
    KnowsFutureEvent {
        /// The event.
        event: EventId,
        /// The entry.
        entry: NodeId,
        /// The value claimed.
        claimed: u64,
        /// The number of events the node has in the trace.
        exists: u64,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Violation::FirstClockNotOne { event, node, found } => write!(
                f,
                "event {event} is node {node}'s first event, so its own vector entry must be 1, but it is {found}"
            ),
            Violation::OwnEntryNotNext { event, node, previous, found } => {
                let how = if found <= previous { "goes backwards or stalls" } else { "skips events" };
                write!(
                    f,
                    "event {event} on node {node}: its own vector entry must be {} (one more than at its previous event), but it is {found} — the clock {how}",
                    previous + 1
                )
            }
            Violation::ClockWentBackwards { event, node, entry, previous, found } => write!(
                f,
                "event {event} on node {node}: the clock goes backwards — its entry for node {entry} falls from {previous} to {found}"
            ),
            Violation::ReceiveNotAfterSend { receive, send, entry, sent, received } => write!(
                f,
                "receive event {receive} does not dominate its send event {send}: the send knows {sent} events of node {entry}, the receive only {received} — a message cannot arrive before what caused it"
            ),
            Violation::LamportNotIncreasing { event, node, previous, found } => write!(
                f,
                "event {event} on node {node}: Lamport time {found} is not greater than the previous event's {previous}"
            ),
            Violation::LamportReceiveNotAfterSend { receive, send, sent, received } => write!(
                f,
                "receive event {receive} has Lamport time {received}, not greater than its send event {send}'s {sent}"
            ),
            Violation::KnowsFutureEvent { event, entry, claimed, exists } => write!(
                f,
                "event {event} claims to know {claimed} events of node {entry}, but that node has only {exists}"
            ),
            Violation::PhysicalTimeBackwards { event, node, previous_ms, found_ms } => write!(
                f,
                "event {event} on node {node}: its physical time goes backwards, from {} ms to {} ms",
                fmt_ms(previous_ms),
                fmt_ms(found_ms)
            ),
            Violation::ReceiveBeforeSend { receive, send, receiver, sender, sent_ms, received_ms } => write!(
                f,
                "clock skew: receive event {receive} on node {receiver} happens at {} ms by its clock, {} ms before its send event {send} on node {sender} at {} ms by that node's clock — node {receiver}'s clock is at least {} ms behind node {sender}'s",
                fmt_ms(received_ms),
                fmt_ms(sent_ms - received_ms),
                fmt_ms(sent_ms),
                fmt_ms(sent_ms - received_ms)
            ),
        }
    }
}

impl Violation {
    /// The violation in words, with the trace's node names and event labels
    /// (`event 12 "start Reserve" on inventory`), as the CLI and the page show it.
    pub fn describe(&self, trace: &Trace) -> String {
        let ev = |id: EventId| -> String {
            match trace.event(id) {
                Some(e) if !e.label.is_empty() => {
                    format!("event {id} \"{}\" on {}", e.label, trace.node_name(e.node))
                }
                Some(e) => format!("event {id} on {}", trace.node_name(e.node)),
                None => format!("event {id}"),
            }
        };
        let name = |n: NodeId| trace.node_name(n);
        match *self {
            Violation::ReceiveBeforeSend {
                receive,
                send,
                receiver,
                sender,
                sent_ms,
                received_ms,
            } => format!(
                "clock skew: {} happens at {} ms by {}'s clock, {} ms before its cause {} at {} ms by {}'s clock — {}'s clock is at least {} ms behind {}'s (a child that starts before its parent, a reply before its request)",
                ev(receive),
                fmt_ms(received_ms),
                name(receiver),
                fmt_ms(sent_ms - received_ms),
                ev(send),
                fmt_ms(sent_ms),
                name(sender),
                name(receiver),
                fmt_ms(sent_ms - received_ms),
                name(sender)
            ),
            Violation::PhysicalTimeBackwards { event, node, previous_ms, found_ms } => format!(
                "{}: {}'s own timestamps go backwards, from {} ms to {} ms",
                ev(event),
                name(node),
                fmt_ms(previous_ms),
                fmt_ms(found_ms)
            ),
            Violation::FirstClockNotOne { event, node, found } => format!(
                "{} is {}'s first event, so its own vector entry must be 1, but it is {found}",
                ev(event),
                name(node)
            ),
            Violation::OwnEntryNotNext { event, node, previous, found } => format!(
                "{}: {}'s own vector entry must be {} (one more than at its previous event), but it is {found} — the clock {}",
                ev(event),
                name(node),
                previous + 1,
                if found <= previous { "goes backwards or stalls" } else { "skips events" }
            ),
            Violation::ClockWentBackwards { event, node, entry, previous, found } => format!(
                "{}: the clock goes backwards — {}'s entry for {} falls from {previous} to {found}",
                ev(event),
                name(node),
                name(entry)
            ),
            Violation::ReceiveNotAfterSend { receive, send, entry, sent, received } => format!(
                "{} does not dominate its send {}: the send knows {sent} events of {}, the receive only {received} — a message cannot arrive before what caused it",
                ev(receive),
                ev(send),
                name(entry)
            ),
            Violation::LamportNotIncreasing { event, previous, found, .. } => format!(
                "{}: Lamport time {found} is not greater than the previous event's {previous}",
                ev(event)
            ),
            Violation::LamportReceiveNotAfterSend { receive, send, sent, received } => format!(
                "{} has Lamport time {received}, not greater than its send {}'s {sent}",
                ev(receive),
                ev(send)
            ),
            Violation::KnowsFutureEvent { event, entry, claimed, exists } => format!(
                "{} claims to know {claimed} events of {}, but {} has only {exists}",
                ev(event),
                name(entry),
                name(entry)
            ),
        }
    }
}

/// Every violation of the clock conditions in `trace`, in event order; empty for a legal trace.
pub fn validate(trace: &Trace) -> Vec<Violation> {
    let mut out = Vec::new();
    let count = |n: NodeId| trace.lane(n).len() as u64;
    for node in trace.nodes() {
        let mut prev: Option<EventId> = None;
        for &id in trace.lane(node) {
            let e = &trace.events()[id];
            let own = e.vector.get(&node).copied().unwrap_or(0);
            match prev.map(|p| &trace.events()[p]) {
                None if own != 1 => out.push(Violation::FirstClockNotOne {
                    event: id,
                    node,
                    found: own,
                }),
                None => {}
                Some(p) => {
                    let before = p.vector.get(&node).copied().unwrap_or(0);
                    if own != before + 1 {
                        out.push(Violation::OwnEntryNotNext {
                            event: id,
                            node,
                            previous: before,
                            found: own,
                        });
                    }
                    for (&entry, &was) in &p.vector {
                        let now = e.vector.get(&entry).copied().unwrap_or(0);
                        if entry != node && now < was {
                            out.push(Violation::ClockWentBackwards {
                                event: id,
                                node,
                                entry,
                                previous: was,
                                found: now,
                            });
                        }
                    }
                    if let (Some(was), Some(now)) = (p.physical_ms, e.physical_ms) {
                        if now < was {
                            out.push(Violation::PhysicalTimeBackwards {
                                event: id,
                                node,
                                previous_ms: was,
                                found_ms: now,
                            });
                        }
                    }
                    if e.lamport <= p.lamport {
                        out.push(Violation::LamportNotIncreasing {
                            event: id,
                            node,
                            previous: p.lamport,
                            found: e.lamport,
                        });
                    }
                }
            }
            for (&entry, &claimed) in &e.vector {
                if claimed > count(entry) {
                    out.push(Violation::KnowsFutureEvent {
                        event: id,
                        entry,
                        claimed,
                        exists: count(entry),
                    });
                }
            }
            if let EventKind::Receive { message } = e.kind {
                if let Some(send) = trace.send_of(message) {
                    let s = &trace.events()[send];
                    for (&entry, &sent) in &s.vector {
                        let received = e.vector.get(&entry).copied().unwrap_or(0);
                        if received < sent {
                            out.push(Violation::ReceiveNotAfterSend {
                                receive: id,
                                send,
                                entry,
                                sent,
                                received,
                            });
                        }
                    }
                    if let (Some(sent_ms), Some(received_ms)) = (s.physical_ms, e.physical_ms) {
                        if received_ms < sent_ms {
                            out.push(Violation::ReceiveBeforeSend {
                                receive: id,
                                send,
                                receiver: node,
                                sender: s.node,
                                sent_ms,
                                received_ms,
                            });
                        }
                    }
                    if e.lamport <= s.lamport {
                        out.push(Violation::LamportReceiveNotAfterSend {
                            receive: id,
                            send,
                            sent: s.lamport,
                            received: e.lamport,
                        });
                    }
                }
            }
            prev = Some(id);
        }
    }
    out.sort_by_key(|v| match *v {
        Violation::FirstClockNotOne { event, .. }
        | Violation::OwnEntryNotNext { event, .. }
        | Violation::ClockWentBackwards { event, .. }
        | Violation::LamportNotIncreasing { event, .. }
        | Violation::KnowsFutureEvent { event, .. }
        | Violation::PhysicalTimeBackwards { event, .. } => event,
        Violation::ReceiveNotAfterSend { receive, .. }
        | Violation::LamportReceiveNotAfterSend { receive, .. }
        | Violation::ReceiveBeforeSend { receive, .. } => receive,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Event, VectorTimestamp};

    fn ev(node: NodeId, kind: EventKind, lamport: u64, vc: &[(NodeId, u64)]) -> Event {
        Event {
            node,
            kind,
            lamport,
            vector: vc.iter().copied().collect::<VectorTimestamp>(),
            physical_ms: None,
            label: String::new(),
        }
    }

    #[test]
    fn first_clock_must_be_one() {
        let mut t = Trace::new();
        t.push(ev(1, EventKind::Local, 1, &[(1, 2)])).unwrap();
        let v = validate(&t);
        assert_eq!(
            v,
            vec![
                Violation::FirstClockNotOne {
                    event: 0,
                    node: 1,
                    found: 2
                },
                Violation::KnowsFutureEvent {
                    event: 0,
                    entry: 1,
                    claimed: 2,
                    exists: 1
                }
            ]
        );
        assert!(v[0].to_string().contains("must be 1, but it is 2"));
    }

    #[test]
    fn clock_going_backwards_is_explained() {
        let mut t = Trace::new();
        t.push(ev(2, EventKind::Local, 1, &[(2, 1)])).unwrap();
        t.push(ev(2, EventKind::Local, 2, &[(2, 2)])).unwrap();
        t.push(ev(1, EventKind::Local, 1, &[(1, 1)])).unwrap();
        t.push(ev(1, EventKind::Local, 2, &[(1, 2), (2, 2)]))
            .unwrap();
        t.push(ev(1, EventKind::Local, 1, &[(1, 3), (2, 1)]))
            .unwrap();
        let v = validate(&t);
        assert_eq!(
            v,
            vec![
                Violation::ClockWentBackwards {
                    event: 4,
                    node: 1,
                    entry: 2,
                    previous: 2,
                    found: 1
                },
                Violation::LamportNotIncreasing {
                    event: 4,
                    node: 1,
                    previous: 2,
                    found: 1
                },
            ]
        );
        assert!(v[0].to_string().contains("goes backwards"));
    }

    #[test]
    fn own_entry_must_step_by_one() {
        let mut t = Trace::new();
        t.push(ev(1, EventKind::Local, 1, &[(1, 1)])).unwrap();
        t.push(ev(1, EventKind::Local, 2, &[(1, 1)])).unwrap();
        let v = validate(&t);
        assert_eq!(
            v,
            vec![Violation::OwnEntryNotNext {
                event: 1,
                node: 1,
                previous: 1,
                found: 1
            }]
        );
        assert!(v[0].to_string().contains("stalls"));
    }

    #[test]
    fn receive_must_dominate_its_send() {
        let mut t = Trace::new();
        t.push(ev(1, EventKind::Local, 1, &[(1, 1)])).unwrap();
        t.push(ev(1, EventKind::Send { message: 7 }, 2, &[(1, 2)]))
            .unwrap();
        t.push(ev(
            2,
            EventKind::Receive { message: 7 },
            2,
            &[(1, 1), (2, 1)],
        ))
        .unwrap();
        let v = validate(&t);
        assert_eq!(
            v,
            vec![
                Violation::ReceiveNotAfterSend {
                    receive: 2,
                    send: 1,
                    entry: 1,
                    sent: 2,
                    received: 1
                },
                Violation::LamportReceiveNotAfterSend {
                    receive: 2,
                    send: 1,
                    sent: 2,
                    received: 2
                },
            ]
        );
        assert!(v[0].to_string().contains("does not dominate"));
    }
}
