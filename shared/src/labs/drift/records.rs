//! What a drift lab run reports: every clock at each sample, the sync events, and each
//! node's chrony-like statistics.

use serde::{Deserialize, Serialize};

use crate::{
    clocks::hlc::HlcTimestamp,
    clocks::physical_clock::Adjustment,
    sim::SimTime,
    sync::{
        berkeley,
        cristian::CristianSample,
        ft_average::FtAverage,
        marzullo::{Chimer, Interval},
    },
    NodeId,
};

/// Every clock at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// True time.
    pub at: SimTime,
    /// Each node's clock value, seconds.
    pub clocks: Vec<f64>,
    /// Each node's clock minus true time, seconds.
    pub offsets: Vec<f64>,
    /// Largest minus smallest offset among honest nodes, seconds.
    pub skew: f64,
    /// Each node's hybrid logical clock, stamped at this sample (a local event).
    pub hlc: Vec<HlcTimestamp>,
    /// Each node's TrueTime uncertainty ε, ms: grows between syncs, drops at each.
    pub epsilon_ms: Vec<f64>,
}

/// How one peer looked to an NTP node in a round.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeerView {
    /// The peer.
    pub peer: NodeId,
    /// Filtered offset (peer minus local), seconds.
    pub offset: f64,
    /// Filtered round-trip delay, seconds.
    pub delay: f64,
    /// Root distance, seconds.
    pub distance: f64,
    /// Marzullo's verdict.
    pub chimer: Chimer,
}

/// Something worth telling that happened in the lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabEvent {
    /// True time.
    pub at: SimTime,
    /// What.
    pub kind: LabEventKind,
}

/// The kinds of [`LabEvent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LabEventKind {
    /// A Cristian exchange completed.
    Cristian {
        /// The client.
        node: NodeId,
        /// The time server.
        server: NodeId,
        /// The exchange.
        sample: CristianSample,
        /// Server minus client clock at the moment of the estimate (the lab knows it).
        true_offset: f64,
        /// What the client did.
        adjustment: Adjustment,
    },
    /// A Berkeley round completed at the leader.
    Berkeley {
        /// The leader's computation.
        round: berkeley::Round,
        /// The leader's clock when it computed.
        leader_clock: f64,
        /// What the leader did to its own clock.
        adjustment: Adjustment,
    },
    /// A Berkeley correction reached a node.
    Correction {
        /// The node.
        node: NodeId,
        /// The delta it was sent.
        delta: f64,
        /// What it did.
        adjustment: Adjustment,
    },
    /// An NTP node selected and combined its peers.
    Ntp {
        /// The node.
        node: NodeId,
        /// Its view of each peer.
        peers: Vec<PeerView>,
        /// Marzullo's intersection.
        interval: Interval,
        /// The combined offset.
        combined: f64,
        /// What the node did.
        adjustment: Adjustment,
        /// The next poll interval, seconds.
        poll: f64,
    },
    /// A fault-tolerant-averaging node computed its correction.
    FtAverage {
        /// The node.
        node: NodeId,
        /// Each node's estimated offset from this one (itself: 0).
        values: Vec<(NodeId, f64)>,
        /// The trimmed average.
        result: FtAverage,
        /// What the node did.
        adjustment: Adjustment,
    },
    /// A round gave nothing usable: the node keeps its local time (the proposal's fallback).
    NoSync {
        /// The node.
        node: NodeId,
        /// Why.
        reason: String,
    },
    /// An injected jump.
    Jump {
        /// The node.
        node: NodeId,
        /// By how much, seconds.
        delta: f64,
    },
    /// A correction stepped a clock backwards: timestamps taken after it can be smaller than
    /// timestamps taken before.
    SteppedBack {
        /// The node.
        node: NodeId,
        /// By how much, seconds (positive).
        by: f64,
    },
}

/// The chrony-like status of one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStats {
    /// Clock minus true time now, seconds.
    pub offset: f64,
    /// The last offset the node measured and corrected, seconds.
    pub last_correction: Option<f64>,
    /// Root mean square of the corrections so far, seconds.
    pub rms_correction: f64,
    /// Estimated frequency error, ppm (NTP: least squares; others: from corrections).
    pub frequency_ppm: Option<f64>,
    /// The actual frequency error now (drift plus corrections), ppm.
    pub true_frequency_ppm: f64,
    /// Last round-trip time measured, seconds.
    pub rtt: Option<f64>,
    /// Root dispersion of the last NTP selection, seconds.
    pub dispersion: Option<f64>,
    /// How the other NTP nodes judged it in their last selections: falseticker if any did.
    pub verdict: Option<Chimer>,
    /// Whether it is a liar.
    pub liar: bool,
    /// Corrections applied.
    pub syncs: u64,
    /// Backward steps suffered.
    pub backward_steps: u64,
    /// Current poll interval, seconds.
    pub poll: f64,
    /// The latest hybrid logical clock timestamp.
    pub hlc: Option<HlcTimestamp>,
    /// Remote HLC timestamps refused for being more than the maximum offset ahead.
    pub hlc_refused: u64,
    /// TrueTime ε now, ms.
    pub epsilon_ms: f64,
    /// Samples at which TrueTime's interval did not contain true time (the assumed bounds
    /// were wrong: drift above 200 ppm, or a sync error above the base uncertainty).
    pub truetime_misses: u64,
}

impl NodeStats {
    /// The chrony-like status word: `liar`, `falseticker` or `selected`; `None` before any
    /// NTP selection has judged the node.
    pub fn status(&self) -> Option<&'static str> {
        if self.liar {
            return Some("liar");
        }
        self.verdict.map(|v| match v {
            Chimer::Falseticker => "falseticker",
            Chimer::Truechimer => "selected",
        })
    }
}

/// A summary of a finished run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Largest skew recorded.
    pub max_skew: f64,
    /// Largest skew recorded after the first sync interval.
    pub max_skew_after_first_sync: f64,
    /// Skew at the end.
    pub final_skew: f64,
    /// Backward steps.
    pub backward_steps: u64,
    /// Simulator events processed.
    pub events: u64,
    /// Messages sent.
    pub messages: u64,
}
