//! The Lamport chat (project 2 of the seed): members chat over a network whose links have
//! their own delays, and every member shows the conversation four ways side by side —
//! **arrival** order, **FIFO** delivery (per sender, by sequence number), **causal** delivery
//! (Birman–Schiper–Stephenson, [`crate::causality::holdback`]) and the **total order** of
//! Lamport timestamps (Lamport, "Time, Clocks, and the Ordering of Events in a Distributed
//! System", CACM 1978, §4; [`crate::causality::total_order`]).
//!
//! **Guarantee.** The total-order column is the same sequence at every member that stays (each
//! member's is a prefix of the longest), sorted by `(time, node)`, and it never shows a message
//! before one that happened before it; a message stays PENDING — and says whom it waits for —
//! until every present member has been heard from past it. A member that leaves (a `Leave`
//! frame) or vanishes (announced by the forwarder after its last frame) stops being waited for,
//! so it cannot block the others forever. Arrival order gives neither guarantee (the seed's
//! pizza race: "I do!" before "Who wants pizza?"); causal delivery fixes the race but lets
//! concurrent messages appear in different orders at different members.
//!
//! The layers stack as a real chat's do: the network may reorder a link's frames (jitter),
//! the FIFO layer puts each sender's frames back in order, and both the causal layer and the
//! total-order layer consume FIFO output. The run is a function of its [`ChatConfig`] (the
//! seeded simulator, [`crate::sim`]).
//!
//! Split by job: this file (configuration and its notation), [`run`] (the seeded run,
//! [`ChatLab`]) and [`frame`] (parameters, claims and tables for the lab frame).

use serde::{Deserialize, Serialize};

use crate::labs::params::parse_seconds;

pub mod frame;
pub mod run;

pub use frame::SPEC;
pub use run::{ChatLab, MessageRef, OutputLine, Status};

/// Why a chat configuration cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChatError {
    /// Fewer than two or more than 8 members.
    #[error("the chat needs 2 to 8 members, got {0}")]
    Members(usize),
    /// A member name that is not in the group.
    #[error("no member named {0:?}")]
    NoSuchMember(String),
    /// A malformed entry in the lab's notation.
    #[error("{what}: expected {expected}, got {got:?}")]
    Notation {
        /// Which parameter.
        what: &'static str,
        /// The form it takes.
        expected: &'static str,
        /// The entry given.
        got: String,
    },
    /// A time that is negative, not finite or beyond an hour.
    #[error("{what} must be between 0 and 3600 s, got {value}")]
    BadTime {
        /// Which parameter.
        what: &'static str,
        /// The value given, seconds.
        value: f64,
    },
}

/// When a scripted line is said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Trigger {
    /// At this simulated time, ms.
    At(f64),
    /// `after_ms` after the speaker receives script line `line` (a reply: it causally follows).
    Reply {
        /// The index of the line replied to.
        line: usize,
        /// Thinking time, ms (0: the reply goes out before the speaker's acknowledgement).
        after_ms: f64,
    },
}

/// One line of a scripted conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Say {
    /// The speaker's index.
    pub who: usize,
    /// When it is said.
    pub when: Trigger,
    /// What is said.
    pub text: String,
}

/// How a member leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Departure {
    /// It sends `Leave` as its last frame.
    Leave,
    /// Its tab closes: it just stops; the forwarder announces it `detect_ms` later.
    Vanish,
}

/// A member leaving at a time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Leaving {
    /// The member's index.
    pub who: usize,
    /// When, ms.
    pub at_ms: f64,
    /// How.
    pub how: Departure,
}

/// A directed link's delay, overriding the default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkDelay {
    /// Sender index.
    pub from: usize,
    /// Receiver index.
    pub to: usize,
    /// One-way delay, ms.
    pub ms: f64,
}

/// One chat run's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatConfig {
    /// The members' names (`A`, `B`, `C`); member `i` is node `i`.
    pub members: Vec<String>,
    /// The scripted lines (the pizza scenario), said in addition to `random_messages`.
    pub script: Vec<Say>,
    /// Random messages per member, at uniform times within `random_window_ms`.
    pub random_messages: u32,
    /// The window random messages fall in, ms.
    pub random_window_ms: f64,
    /// One-way delay of every link not in `delays`, ms.
    pub link_ms: f64,
    /// Extra uniform delay in `[0, jitter_ms]` per frame: lets a link reorder frames.
    pub jitter_ms: f64,
    /// Per-link overrides.
    pub delays: Vec<LinkDelay>,
    /// Members leaving mid-run.
    pub departures: Vec<Leaving>,
    /// How long the forwarder takes to notice a vanished member, ms.
    pub detect_ms: f64,
    /// Seed of every random choice.
    pub seed: u64,
}

/// The scenarios the CLI and the page know.
pub const SCENARIOS: &[(&str, &str)] = &[
    ("pizza", "pizza: the seed's example and its chat race"),
    ("random", "random: every member chats at random times"),
];

impl ChatConfig {
    /// The seed's example and its thinking exercise: A says "Hi", B replies "Hello Alice" as
    /// soon as it hears it; three seconds later A asks "Who wants pizza?" and B answers "I do!".
    /// The link A→C lags 2 s, so C receives each reply before what it replies to.
    pub fn pizza(seed: u64) -> ChatConfig {
        let say = |who, when, text: &str| Say {
            who,
            when,
            text: text.to_owned(),
        };
        ChatConfig {
            members: names(3),
            script: vec![
                say(0, Trigger::At(0.0), "Hi"),
                say(
                    1,
                    Trigger::Reply {
                        line: 0,
                        after_ms: 0.0,
                    },
                    "Hello Alice",
                ),
                say(0, Trigger::At(3000.0), "Who wants pizza?"),
                say(
                    1,
                    Trigger::Reply {
                        line: 2,
                        after_ms: 0.0,
                    },
                    "I do!",
                ),
            ],
            random_messages: 0,
            random_window_ms: 0.0,
            link_ms: 100.0,
            jitter_ms: 0.0,
            delays: vec![LinkDelay {
                from: 0,
                to: 2,
                ms: 2000.0,
            }],
            departures: Vec::new(),
            detect_ms: 500.0,
            seed,
        }
    }

    /// `members` members each sending `messages` messages at random times within 5 s, over
    /// links of 100 ms ± 80 ms jitter.
    pub fn random(members: usize, messages: u32, seed: u64) -> ChatConfig {
        ChatConfig {
            members: names(members),
            script: Vec::new(),
            random_messages: messages,
            random_window_ms: 5000.0,
            link_ms: 100.0,
            jitter_ms: 80.0,
            delays: Vec::new(),
            departures: Vec::new(),
            detect_ms: 500.0,
            seed,
        }
    }

    /// A scenario by name (one of [`SCENARIOS`]).
    pub fn scenario(name: &str, members: usize, messages: u32, seed: u64) -> Option<ChatConfig> {
        match name {
            "pizza" => Some(ChatConfig::pizza(seed)),
            "random" => Some(ChatConfig::random(members, messages, seed)),
            _ => None,
        }
    }

    /// Checks the configuration, returning it unchanged when it can run.
    pub fn validated(self) -> Result<Self, ChatError> {
        let n = self.members.len();
        if !(2..=8).contains(&n) {
            return Err(ChatError::Members(n));
        }
        let time = |what, ms: f64| {
            if ms.is_finite() && (0.0..=3_600_000.0).contains(&ms) {
                Ok(())
            } else {
                Err(ChatError::BadTime {
                    what,
                    value: ms / 1000.0,
                })
            }
        };
        time("link delay", self.link_ms)?;
        time("jitter", self.jitter_ms)?;
        time("detection delay", self.detect_ms)?;
        time("random window", self.random_window_ms)?;
        for d in &self.delays {
            time("link delay", d.ms)?;
            if d.from >= n || d.to >= n {
                return Err(ChatError::Members(n));
            }
        }
        for d in &self.departures {
            time("departure", d.at_ms)?;
            if d.who >= n {
                return Err(ChatError::Members(n));
            }
        }
        for (i, s) in self.script.iter().enumerate() {
            if s.who >= n {
                return Err(ChatError::Members(n));
            }
            match s.when {
                Trigger::At(ms) => time("script time", ms)?,
                Trigger::Reply { line, after_ms } => {
                    time("thinking time", after_ms)?;
                    if line >= i {
                        return Err(ChatError::Notation {
                            what: "script",
                            expected: "a reply to an earlier line",
                            got: s.text.clone(),
                        });
                    }
                }
            }
        }
        Ok(self)
    }

    /// The index of the member called `name` (case-insensitive).
    pub fn member(&self, name: &str) -> Result<usize, ChatError> {
        self.members
            .iter()
            .position(|m| m.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| ChatError::NoSuchMember(name.trim().to_owned()))
    }

    /// Sets link delays from `B>C=2s,A>B=50ms` (the CLI's `--delay`, the page's `delay`),
    /// replacing earlier settings of the same links.
    pub fn set_delays(&mut self, text: &str) -> Result<(), ChatError> {
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || ChatError::Notation {
                what: "delay",
                expected: "FROM>TO=TIME, e.g. B>C=2s",
                got: entry.to_owned(),
            };
            let (link, time) = entry.split_once('=').ok_or_else(bad)?;
            let (from, to) = link.split_once('>').ok_or_else(bad)?;
            let (from, to) = (self.member(from)?, self.member(to)?);
            if from == to {
                return Err(bad());
            }
            let ms = parse_seconds(time).map_err(|_| bad())? * 1000.0;
            self.delays.retain(|d| (d.from, d.to) != (from, to));
            self.delays.push(LinkDelay { from, to, ms });
        }
        Ok(())
    }

    /// Adds departures from `C@3s` (how: `Leave` or `Vanish`).
    pub fn add_departures(&mut self, text: &str, how: Departure) -> Result<(), ChatError> {
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || ChatError::Notation {
                what: "departure",
                expected: "MEMBER@TIME, e.g. C@3s",
                got: entry.to_owned(),
            };
            let (who, at) = entry.split_once('@').ok_or_else(bad)?;
            let who = self.member(who)?;
            let at_ms = parse_seconds(at).map_err(|_| bad())? * 1000.0;
            self.departures.retain(|d| d.who != who);
            self.departures.push(Leaving { who, at_ms, how });
        }
        Ok(())
    }

    /// The delay of link `from → to`, ms (before jitter).
    pub fn delay_ms(&self, from: usize, to: usize) -> f64 {
        self.delays
            .iter()
            .rev()
            .find(|d| d.from == from && d.to == to)
            .map_or(self.link_ms, |d| d.ms)
    }
}

/// `A`, `B`, `C`, … for `n` members.
pub fn names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| char::from(b'A' + (i % 26) as u8).to_string())
        .collect()
}

#[cfg(test)]
mod tests;
