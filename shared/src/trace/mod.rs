//! Traces: the events of one run of a distributed system, recorded per node, from which
//! space-time diagrams are drawn.
//!
//! The model is Lamport's: "Time, Clocks, and the Ordering of Events in a Distributed System"
//! (CACM 21(7), 1978) — a process is a sequence of events, an event is local, a send or a
//! receive, and *happened-before* is the smallest relation containing the per-process order and
//! send → receive. Each event carries its Lamport time and its vector timestamp (Fidge 1988,
//! Mattern 1989), plus the physical time at which it was recorded.
//!
//! **Guarantee.** Events recorded through [`Trace::local`], [`Trace::send`] and
//! [`Trace::receive`] get clocks computed by the textbook rules, so a recorded trace is always
//! legal: a node's own vector entry counts its events from 1, clocks never go backwards, and a
//! receive's clocks dominate its send's. Traces built from outside data (imports, [`Trace::push`])
//! may be illegal; [`validate`] explains in words what is wrong with them.
//!
//! A message is identified by a [`MessageId`] that the trace hands out on send; a message may be
//! received by several nodes (multicast), each at most once.
//!
//! Traces come from the labs or from files: [`import`] reads JSON lines with vector clocks
//! ([`jsonl`]), ShiViz, GoVector and TSViz logs ([`shiviz`]), and OpenTelemetry's OTLP JSON and
//! Jaeger JSON ([`otel`]), detecting the format.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::NodeId;

mod clocked;
pub mod import;
pub mod jsonl;
pub mod mermaid;
pub mod otel;
pub mod shiviz;
pub mod svg;
mod validate;

pub use validate::{validate, Violation};

/// Identifies a message within one trace: handed out by [`Trace::send`].
pub type MessageId = u64;

/// Identifies an event within one trace: its position in recording order.
pub type EventId = usize;

/// A vector timestamp in a serde-friendly form: node → number of that node's events known.
/// Absent entries are zero.
pub type VectorTimestamp = BTreeMap<NodeId, u64>;

/// What an event is, in Lamport's three kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// An internal event: no message.
    Local,
    /// The sending of `message` (to one or more nodes).
    Send {
        /// The message sent.
        message: MessageId,
    },
    /// The receipt (delivery) of `message`.
    Receive {
        /// The message received.
        message: MessageId,
    },
}

impl EventKind {
    /// The message this event sends or receives, if any.
    pub fn message(self) -> Option<MessageId> {
        match self {
            EventKind::Local => None,
            EventKind::Send { message } | EventKind::Receive { message } => Some(message),
        }
    }
}

/// One event on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The node on which the event happened.
    pub node: NodeId,
    /// Local, send or receive.
    #[serde(flatten)]
    pub kind: EventKind,
    /// The Lamport time of the event.
    pub lamport: u64,
    /// The vector timestamp of the event (the node's own entry counts its events from 1).
    pub vector: VectorTimestamp,
    /// Physical (wall or simulated) time of the event in milliseconds, if known; imported logs
    /// may not carry it.
    pub physical_ms: Option<f64>,
    /// A short description ("SEND to 2", "insert 'a'").
    pub label: String,
}

/// Why an event could not be added to a trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// A receive names a message that no earlier event sent.
    #[error("node {node} receives message {message}, which was never sent")]
    UnknownMessage {
        /// The receiving node.
        node: NodeId,
        /// The message named.
        message: MessageId,
    },
    /// A node receives a message it sent itself.
    #[error("node {node} receives its own message {message}")]
    OwnMessage {
        /// The node.
        node: NodeId,
        /// The message.
        message: MessageId,
    },
    /// A node receives the same message twice.
    #[error("node {node} receives message {message} a second time")]
    DuplicateReceive {
        /// The node.
        node: NodeId,
        /// The message.
        message: MessageId,
    },
    /// Two send events use the same message id.
    #[error("message {message} is sent twice")]
    DuplicateSend {
        /// The message.
        message: MessageId,
    },
}

/// The events of one run, in recording order, indexed per node and per message.
///
/// Recording order is a linearisation of happened-before (a receive is recorded after its
/// send), which is what windowing ([`Trace::window`]) slices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TraceData", into = "TraceData")]
pub struct Trace {
    /// Display names of nodes (ShiViz host names); nodes without one are shown as `N{id}`.
    names: BTreeMap<NodeId, String>,
    /// Every event, in recording order.
    events: Vec<Event>,
    /// Per node, the ids of its events in order: the node's process line.
    lanes: BTreeMap<NodeId, Vec<EventId>>,
    /// Per message, its send event and its receive events.
    messages: BTreeMap<MessageId, MessageRecord>,
    /// The next message id [`Trace::send`] hands out.
    next_message: MessageId,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct MessageRecord {
    send: EventId,
    receives: Vec<EventId>,
}

/// The serialised form of a [`Trace`]: names and events; the indexes are rebuilt on load.
#[derive(Serialize, Deserialize)]
struct TraceData {
    #[serde(default)]
    names: BTreeMap<NodeId, String>,
    events: Vec<Event>,
}

impl TryFrom<TraceData> for Trace {
    type Error = TraceError;
    fn try_from(data: TraceData) -> Result<Self, TraceError> {
        let mut t = Trace {
            names: data.names,
            ..Trace::default()
        };
        for e in data.events {
            t.push(e)?;
        }
        Ok(t)
    }
}

impl From<Trace> for TraceData {
    fn from(t: Trace) -> Self {
        TraceData {
            names: t.names,
            events: t.events,
        }
    }
}

/// A message as drawn in a diagram: from its send to one of its receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageEdge {
    /// The message.
    pub message: MessageId,
    /// The send event.
    pub send: EventId,
    /// The receive event.
    pub receive: EventId,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives `node` a display name (used as the ShiViz host and the diagram participant).
    pub fn name_node(&mut self, node: NodeId, name: impl Into<String>) {
        self.names.insert(node, name.into());
    }

    /// The display name of `node`: its given name, or `N{id}`.
    pub fn node_name(&self, node: NodeId) -> String {
        self.names
            .get(&node)
            .cloned()
            .unwrap_or_else(|| format!("N{node}"))
    }

    /// Records an internal event on `node` at physical time `at_ms`.
    pub fn local(&mut self, node: NodeId, at_ms: f64, label: impl Into<String>) -> EventId {
        let (lamport, vector) = self.tick(node, None);
        self.insert(Event {
            node,
            kind: EventKind::Local,
            lamport,
            vector,
            physical_ms: Some(at_ms),
            label: label.into(),
        })
    }

    /// Records the sending of a new message by `node`; returns the message's id, which the
    /// receivers pass to [`Trace::receive`] (carry it in the message).
    pub fn send(&mut self, node: NodeId, at_ms: f64, label: impl Into<String>) -> MessageId {
        let message = self.next_message;
        let (lamport, vector) = self.tick(node, None);
        self.insert(Event {
            node,
            kind: EventKind::Send { message },
            lamport,
            vector,
            physical_ms: Some(at_ms),
            label: label.into(),
        });
        message
    }

    /// Records the receipt of `message` by `node`: Lamport time `max(local, sent) + 1`, vector
    /// timestamp the pointwise maximum, then the node's own entry incremented.
    pub fn receive(
        &mut self,
        node: NodeId,
        message: MessageId,
        at_ms: f64,
        label: impl Into<String>,
    ) -> Result<EventId, TraceError> {
        let send = self.check_receive(node, message)?;
        let (lamport, vector) = self.tick(node, Some(send));
        Ok(self.insert(Event {
            node,
            kind: EventKind::Receive { message },
            lamport,
            vector,
            physical_ms: Some(at_ms),
            label: label.into(),
        }))
    }

    /// Appends an event with clocks given by the caller (an import). Only the message
    /// structure is checked here — a receive must name an earlier send of another node, once;
    /// the clocks are checked by [`validate`].
    pub fn push(&mut self, event: Event) -> Result<EventId, TraceError> {
        match event.kind {
            EventKind::Local => {}
            EventKind::Send { message } => {
                if self.messages.contains_key(&message) {
                    return Err(TraceError::DuplicateSend { message });
                }
            }
            EventKind::Receive { message } => {
                self.check_receive(event.node, message)?;
            }
        }
        Ok(self.insert(event))
    }

    fn check_receive(&self, node: NodeId, message: MessageId) -> Result<EventId, TraceError> {
        let record = self
            .messages
            .get(&message)
            .ok_or(TraceError::UnknownMessage { node, message })?;
        if self.events[record.send].node == node {
            return Err(TraceError::OwnMessage { node, message });
        }
        if record.receives.iter().any(|&r| self.events[r].node == node) {
            return Err(TraceError::DuplicateReceive { node, message });
        }
        Ok(record.send)
    }

    /// The clocks of the next event on `node`, merging in the send event `from` if any.
    fn tick(&self, node: NodeId, from: Option<EventId>) -> (u64, VectorTimestamp) {
        let last = self.last_event(node);
        let mut lamport = last.map_or(0, |e| e.lamport);
        let mut vector = last.map(|e| e.vector.clone()).unwrap_or_default();
        if let Some(s) = from {
            let sent = &self.events[s];
            lamport = lamport.max(sent.lamport);
            for (&n, &c) in &sent.vector {
                let entry = vector.entry(n).or_insert(0);
                *entry = (*entry).max(c);
            }
        }
        *vector.entry(node).or_insert(0) += 1;
        (lamport + 1, vector)
    }

    fn insert(&mut self, event: Event) -> EventId {
        let id = self.events.len();
        match event.kind {
            EventKind::Local => {}
            EventKind::Send { message } => {
                self.messages.insert(
                    message,
                    MessageRecord {
                        send: id,
                        receives: Vec::new(),
                    },
                );
                self.next_message = self.next_message.max(message + 1);
            }
            EventKind::Receive { message } => {
                if let Some(r) = self.messages.get_mut(&message) {
                    r.receives.push(id);
                }
            }
        }
        self.lanes.entry(event.node).or_default().push(id);
        self.events.push(event);
        id
    }

    /// The last event recorded on `node`.
    pub fn last_event(&self, node: NodeId) -> Option<&Event> {
        self.lanes
            .get(&node)
            .and_then(|l| l.last())
            .map(|&i| &self.events[i])
    }

    /// Every event, in recording order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The event with id `id`.
    pub fn event(&self, id: EventId) -> Option<&Event> {
        self.events.get(id)
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event was recorded.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The nodes that have events or names, in ascending order.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self.lanes.keys().copied().collect();
        for n in self.names.keys() {
            if !self.lanes.contains_key(n) {
                nodes.push(*n);
            }
        }
        nodes.sort_unstable();
        nodes
    }

    /// The ids of `node`'s events, in order (empty for an unknown node).
    pub fn lane(&self, node: NodeId) -> &[EventId] {
        self.lanes.get(&node).map_or(&[], |l| l.as_slice())
    }

    /// Position of event `id` on its node's line, counting from 0.
    pub fn lane_position(&self, id: EventId) -> Option<usize> {
        let e = self.events.get(id)?;
        self.lane(e.node).binary_search(&id).ok()
    }

    /// The send event of `message`.
    pub fn send_of(&self, message: MessageId) -> Option<EventId> {
        self.messages.get(&message).map(|r| r.send)
    }

    /// The receive events of `message`, in recording order.
    pub fn receives_of(&self, message: MessageId) -> &[EventId] {
        self.messages
            .get(&message)
            .map_or(&[], |r| r.receives.as_slice())
    }

    /// Every (send, receive) pair, ordered by receive.
    pub fn message_edges(&self) -> Vec<MessageEdge> {
        self.edges_in(0..self.events.len())
    }

    /// The (send, receive) pairs with at least one end in `range` of event ids, ordered by
    /// receive (messages entering or leaving a window are included, their far end clipped by
    /// the renderer).
    pub fn edges_in(&self, range: Range<EventId>) -> Vec<MessageEdge> {
        let mut edges = Vec::new();
        for (&message, r) in &self.messages {
            for &receive in &r.receives {
                if range.contains(&r.send) || range.contains(&receive) {
                    edges.push(MessageEdge {
                        message,
                        send: r.send,
                        receive,
                    });
                }
            }
        }
        edges.sort_by_key(|e| (e.receive, e.send));
        edges
    }

    /// The window of event ids `start..start+len`, clamped to the trace: what diagrams draw for
    /// long traces.
    pub fn window(&self, start: EventId, len: usize) -> Range<EventId> {
        let start = start.min(self.events.len());
        start..(start.saturating_add(len)).min(self.events.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two nodes, one message: the textbook clocks.
    fn ping() -> Trace {
        let mut t = Trace::new();
        t.local(1, 0.0, "start");
        let m = t.send(1, 1.0, "ping");
        t.local(2, 0.5, "work");
        t.receive(2, m, 2.0, "got ping").unwrap();
        t
    }

    #[test]
    fn recording_computes_lamport_and_vector_clocks() {
        let t = ping();
        let e = t.events();
        assert_eq!(e[1].lamport, 2);
        assert_eq!(e[1].vector, VectorTimestamp::from([(1, 2)]));
        assert_eq!(e[3].lamport, 3);
        assert_eq!(e[3].vector, VectorTimestamp::from([(1, 2), (2, 2)]));
        assert_eq!(t.lane(2), &[2, 3]);
        assert_eq!(t.send_of(0), Some(1));
        assert_eq!(t.receives_of(0), &[3]);
        assert!(validate(&t).is_empty());
    }

    #[test]
    fn bad_receives_are_refused_and_change_nothing() {
        let mut t = ping();
        let before = t.clone();
        assert_eq!(
            t.receive(2, 9, 3.0, "x"),
            Err(TraceError::UnknownMessage {
                node: 2,
                message: 9
            })
        );
        assert_eq!(
            t.receive(1, 0, 3.0, "x"),
            Err(TraceError::OwnMessage {
                node: 1,
                message: 0
            })
        );
        assert_eq!(
            t.receive(2, 0, 3.0, "x"),
            Err(TraceError::DuplicateReceive {
                node: 2,
                message: 0
            })
        );
        assert_eq!(t, before);
    }

    #[test]
    fn multicast_is_one_send_many_receives() {
        let mut t = Trace::new();
        let m = t.send(0, 0.0, "to all");
        t.receive(1, m, 1.0, "a").unwrap();
        t.receive(2, m, 2.0, "b").unwrap();
        assert_eq!(t.message_edges().len(), 2);
        assert_eq!(t.edges_in(2..3).len(), 1);
    }

    #[test]
    fn serde_round_trip_rebuilds_the_indexes() {
        let t = ping();
        let json = serde_json::to_string(&t).unwrap();
        let back: Trace = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        let bad = r#"{"events":[{"node":1,"type":"receive","message":4,"lamport":1,"vector":{"1":1},"physical_ms":null,"label":""}]}"#;
        assert!(serde_json::from_str::<Trace>(bad).is_err());
    }

    #[test]
    fn windows_clamp_to_the_trace() {
        let t = ping();
        assert_eq!(t.window(1, 2), 1..3);
        assert_eq!(t.window(3, 10), 3..4);
        assert_eq!(t.window(10, 10), 4..4);
    }
}
