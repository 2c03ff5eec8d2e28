//! The chat on the lab frame: its parameters (`#/chat?scenario=pizza&delay=B>C=2s`), the
//! claims checked against the run, and its tables (each member's output, the four orders side
//! by side, the messages).

use super::run::{ChatLab, MessageRef};
use super::{ChatConfig, Departure, SCENARIOS};
use crate::clocks::lamport::LamportTimestamp;
use crate::clocks::vector_clock::Causality;
use crate::labs::params::{fmt_number, Canonical, ParamKind, ParamSpec, Params};
use crate::labs::{Cell, Claim, Lab, LabSpec, ParamError, Table, Verdict};
use crate::sim::SimTime;
use crate::trace::Trace;

/// The scenario.
pub const SCENARIO: ParamSpec = ParamSpec::new(
    "scenario",
    "Scenario",
    "the seed's pizza race, or every member chatting at random times",
    ParamKind::Choice(SCENARIOS),
    "pizza",
)
.resets(&["members", "messages", "link", "jitter", "delay"]);

/// Members of a random chat.
pub const MEMBERS: ParamSpec = ParamSpec::new(
    "members",
    "Members",
    "how many members chat (random scenario; the pizza race has three)",
    ParamKind::Integer { min: 2, max: 8 },
    "3",
);

/// Random messages per member.
pub const MESSAGES: ParamSpec = ParamSpec::new(
    "messages",
    "Messages each",
    "messages each member sends at random times within 5 s (random scenario)",
    ParamKind::Integer { min: 0, max: 50 },
    "4",
);

/// Default link delay.
pub const LINK: ParamSpec = ParamSpec::new(
    "link",
    "Link delay",
    "one-way delay of every link not named in the delays",
    ParamKind::Number {
        min: 0.0,
        max: 5000.0,
        step: 10.0,
        unit: "ms",
    },
    "100",
);

/// Jitter: lets a link reorder its frames.
pub const JITTER: ParamSpec = ParamSpec::new(
    "jitter",
    "Jitter",
    "extra random delay per frame, up to this much: frames on one link may overtake each other",
    ParamKind::Number {
        min: 0.0,
        max: 2000.0,
        step: 10.0,
        unit: "ms",
    },
    "0",
);

/// Per-link delays.
pub const DELAY: ParamSpec = ParamSpec::new(
    "delay",
    "Link delays",
    "delays of single links, FROM>TO=TIME, comma-separated (the pizza race lags A>C=2s)",
    ParamKind::Text,
    "",
);

/// Members that leave with a `Leave` frame.
pub const LEAVE: ParamSpec = ParamSpec::new(
    "leave",
    "Leaves",
    "members that leave, sending Leave as their last frame: MEMBER@TIME, e.g. C@3s",
    ParamKind::Text,
    "",
);

/// Members whose tab closes.
pub const VANISH: ParamSpec = ParamSpec::new(
    "vanish",
    "Tab closes",
    "members that vanish without a word; the relay announces them after the detection delay",
    ParamKind::Text,
    "",
);

/// The relay's detection delay.
pub const DETECT: ParamSpec = ParamSpec::new(
    "detect",
    "Detection delay",
    "how long the relay takes to notice a closed tab and announce it",
    ParamKind::Number {
        min: 0.0,
        max: 10000.0,
        step: 50.0,
        unit: "ms",
    },
    "500",
);

/// The lab for the frame.
pub const SPEC: LabSpec = LabSpec {
    slug: "chat",
    params: &[
        SCENARIO, MEMBERS, MESSAGES, LINK, JITTER, DELAY, LEAVE, VANISH, DETECT,
    ],
    build: build_boxed,
};

fn build_boxed(p: &Params) -> Result<Box<dyn Lab>, ParamError> {
    Ok(Box::new(ChatLab::from_params(p)?))
}

impl ChatLab {
    /// Builds the run a link describes.
    pub fn from_params(p: &Params) -> Result<ChatLab, ParamError> {
        let scenario = p.value(&SCENARIO)?;
        let members = p.integer(&MEMBERS)? as usize;
        let messages = p.integer(&MESSAGES)? as u32;
        let mut c = ChatConfig::scenario(&scenario, members, messages, p.seed()?)
            .ok_or_else(|| ParamError::new(SCENARIO.key, "no such scenario"))?;
        if p.get(LINK.key).is_some() {
            c.link_ms = p.number(&LINK)?;
        }
        if p.get(JITTER.key).is_some() {
            c.jitter_ms = p.number(&JITTER)?;
        }
        c.detect_ms = p.number(&DETECT)?;
        c.set_delays(&p.value(&DELAY)?)
            .map_err(|e| ParamError::new(DELAY.key, e))?;
        c.add_departures(&p.value(&LEAVE)?, Departure::Leave)
            .map_err(|e| ParamError::new(LEAVE.key, e))?;
        c.add_departures(&p.value(&VANISH)?, Departure::Vanish)
            .map_err(|e| ParamError::new(VANISH.key, e))?;
        ChatLab::new(c).map_err(|e| ParamError::new(SCENARIO.key, e))
    }

    fn scenario_name(&self) -> &'static str {
        if self.config().script.is_empty() {
            "random"
        } else {
            "pizza"
        }
    }

    fn delays_text(&self) -> String {
        let c = self.config();
        c.delays
            .iter()
            .map(|d| {
                format!(
                    "{}>{}={}ms",
                    c.members[d.from],
                    c.members[d.to],
                    fmt_number(d.ms)
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn departures_text(&self, how: Departure) -> String {
        let c = self.config();
        c.departures
            .iter()
            .filter(|d| d.how == how)
            .map(|d| format!("{}@{}ms", c.members[d.who], fmt_number(d.at_ms)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Members still in the chat.
    pub fn present(&self) -> Vec<usize> {
        (0..self.names().len())
            .filter(|&i| !self.is_gone(i))
            .collect()
    }

    /// How `a` relates to `b` by the causal stamps they were sent with.
    pub fn causality(&self, a: LamportTimestamp, b: LamportTimestamp) -> Option<Causality> {
        let find = |ts| self.sent().iter().find(|s| s.message.ts == ts);
        Some(find(a)?.vector.compare(&find(b)?.vector))
    }

    /// Pairs `(earlier, later)` in `order` where `later` happened before `earlier`: the
    /// causality violations of an order.
    pub fn inversions(&self, order: &[MessageRef]) -> Vec<(MessageRef, MessageRef)> {
        let mut out = Vec::new();
        for (i, a) in order.iter().enumerate() {
            for b in &order[i + 1..] {
                if self.causality(b.ts, a.ts) == Some(Causality::Before) {
                    out.push((a.clone(), b.clone()));
                }
            }
        }
        out
    }

    /// The four orders side by side for member `i`: one row per position.
    pub fn orders_table(&self) -> Table {
        let mut t = Table::new(
            "orders",
            "Each member's messages in arrival, FIFO, causal and total order",
            &[
                "member",
                "position",
                "arrival",
                "fifo",
                "causal",
                "total_order",
            ],
        );
        let cell = |m: Option<&MessageRef>, who: &dyn Fn(u32) -> String| -> Cell {
            m.map_or(Cell::Empty, |m| {
                Cell::Text(format!("({}, {}): {}", m.ts.time, who(m.ts.node), m.text))
            })
        };
        let who = |n: u32| self.names()[n as usize].clone();
        for (i, name) in self.names().iter().enumerate() {
            let total = self.total(i);
            let cols = [self.arrival(i), self.fifo(i), self.causal(i), &total];
            let rows = cols.iter().map(|c| c.len()).max().unwrap_or(0);
            for k in 0..rows {
                let mut row = vec![Cell::from(name.as_str()), Cell::from(k + 1)];
                row.extend(cols.iter().map(|c| cell(c.get(k), &who)));
                t.push(row);
            }
        }
        t
    }

    /// Every member's output lines.
    pub fn output_table(&self) -> Table {
        let mut t = Table::new(
            "output",
            "Each member's chat output: PENDING and DISPLAY lines",
            &["member", "time_ms", "line", "waiting_for"],
        );
        for (i, name) in self.names().iter().enumerate() {
            for l in self.output(i) {
                t.push(vec![
                    name.as_str().into(),
                    l.at_ms.into(),
                    l.to_string().into(),
                    l.waiting_for.join(" ").into(),
                ]);
            }
        }
        t
    }

    /// The messages with their stamps and per-member display delay.
    pub fn messages_table(&self) -> Table {
        let mut cols = vec![
            "lamport_time".to_owned(),
            "sender".to_owned(),
            "text".to_owned(),
            "vector_clock".to_owned(),
            "sent_ms".to_owned(),
        ];
        cols.extend(self.names().iter().map(|n| format!("displayed_at_{n}_ms")));
        let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
        let mut t = Table::new("messages", "The messages, their stamps, when shown", &refs);
        for s in self.sent() {
            let mut row = vec![
                s.message.ts.time.into(),
                self.names()[s.message.ts.node as usize].as_str().into(),
                s.message.text.as_str().into(),
                s.vector.to_string().into(),
                s.at_ms.into(),
            ];
            row.extend((0..self.names().len()).map(|i| {
                self.displayed_at(i, s.message.ts)
                    .map_or(Cell::Empty, Cell::from)
            }));
            t.push(row);
        }
        t
    }

    /// The claims, checked against this run.
    pub fn chat_claims(&self) -> Vec<Claim> {
        let present = self.present();
        let totals: Vec<Vec<MessageRef>> = present.iter().map(|&i| self.total(i)).collect();
        let longest = totals
            .iter()
            .max_by_key(|t| t.len())
            .cloned()
            .unwrap_or_default();
        let prefixes = totals.iter().all(|t| longest.starts_with(t));
        let sorted = longest.windows(2).all(|w| w[0].ts < w[1].ts);
        let total_inv: usize = present
            .iter()
            .map(|&i| self.inversions(&self.total(i)).len())
            .sum();
        let mut out = vec![Claim::new(
            "Total order (Lamport 1978, §4): every member displays the same messages in the \
             same (time, node) order",
            format!(
                "{} present members; displayed {}; every log a prefix of the longest: {}; sorted: {}",
                present.len(),
                totals
                    .iter()
                    .map(|t| t.len().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                if prefixes { "yes" } else { "no" },
                if sorted { "yes" } else { "no" },
            ),
            if longest.is_empty() {
                Verdict::Pending
            } else {
                Verdict::of(prefixes && sorted)
            },
        )];
        out.push(Claim::new(
            "The Lamport order extends happened-before: no reply is displayed before what it \
             replies to",
            format!("{total_inv} causality violations in the displayed orders"),
            if longest.is_empty() {
                Verdict::Pending
            } else {
                Verdict::of(total_inv == 0)
            },
        ));
        let arrival_inv: Vec<(String, MessageRef, MessageRef)> = (0..self.names().len())
            .flat_map(|i| {
                self.inversions(self.arrival(i))
                    .into_iter()
                    .map(move |(a, b)| (self.names()[i].clone(), a, b))
            })
            .collect();
        out.push(Claim::new(
            "Arrival order can show a reply before what it replies to (the seed's chat race)",
            match arrival_inv.first() {
                Some((who, a, b)) => format!(
                    "{} inversions; {who} received {:?} before {:?}",
                    arrival_inv.len(),
                    a.text,
                    b.text
                ),
                None => "no message overtook its cause in this run".to_owned(),
            },
            if arrival_inv.is_empty() {
                Verdict::Pending
            } else {
                Verdict::Holds
            },
        ));
        let causal_inv: usize = (0..self.names().len())
            .map(|i| self.inversions(self.causal(i)).len())
            .sum();
        // Concurrent pairs the causal columns show in different orders.
        let mut disagreements = 0;
        for (x, &i) in present.iter().enumerate() {
            for &j in &present[x + 1..] {
                let (ci, cj) = (self.causal(i), self.causal(j));
                let pos = |c: &[MessageRef], ts| c.iter().position(|m| m.ts == ts);
                for (k, a) in ci.iter().enumerate() {
                    for b in &ci[k + 1..] {
                        if let (Some(pa), Some(pb)) = (pos(cj, a.ts), pos(cj, b.ts)) {
                            if pa > pb {
                                disagreements += 1;
                            }
                        }
                    }
                }
            }
        }
        out.push(Claim::new(
            "Causal delivery (Birman–Schiper–Stephenson) fixes the race but does not order \
             concurrent messages the same way everywhere",
            format!(
                "{causal_inv} causality violations in causal order; {disagreements} pairs of \
                 concurrent messages shown in different orders by two members"
            ),
            Verdict::of(causal_inv == 0),
        ));
        if !self.config().departures.is_empty() {
            let gone: Vec<&str> = (0..self.names().len())
                .filter(|&i| self.is_gone(i))
                .map(|i| self.names()[i].as_str())
                .collect();
            let stuck: usize = present.iter().map(|&i| self.pending(i).len()).sum();
            out.push(Claim::new(
                "A member that leaves — by a Leave frame or a closed tab the relay announces — \
                 does not block stability forever",
                format!(
                    "gone: {}; messages still pending at the others: {stuck}",
                    if gone.is_empty() {
                        "nobody yet".to_owned()
                    } else {
                        gone.join(", ")
                    }
                ),
                if gone.is_empty() || !self.is_over() {
                    Verdict::Pending
                } else {
                    Verdict::of(stuck == 0)
                },
            ));
        }
        out
    }
}

impl Lab for ChatLab {
    fn params(&self) -> Params {
        let c = self.config();
        let scenario = self.scenario_name();
        let base = ChatConfig::scenario(scenario, c.members.len(), c.random_messages, c.seed)
            .unwrap_or_else(|| ChatConfig::pizza(c.seed));
        let mut p = Canonical::new(c.seed).put(&SCENARIO, scenario);
        if scenario == "random" {
            p = p
                .put(&MEMBERS, c.members.len())
                .put(&MESSAGES, c.random_messages);
        }
        if c.link_ms != base.link_ms {
            p = p.put_always(&LINK, fmt_number(c.link_ms));
        }
        if c.jitter_ms != base.jitter_ms {
            p = p.put_always(&JITTER, fmt_number(c.jitter_ms));
        }
        if c.delays != base.delays {
            p = p.put(&DELAY, self.delays_text());
        }
        p.put(&LEAVE, self.departures_text(Departure::Leave))
            .put(&VANISH, self.departures_text(Departure::Vanish))
            .put(&DETECT, fmt_number(c.detect_ms))
            .done()
    }

    fn settings(&self) -> Params {
        let c = self.config();
        Canonical::new(c.seed)
            .put_always(&SCENARIO, self.scenario_name())
            .put_always(&MEMBERS, c.members.len())
            .put_always(&MESSAGES, c.random_messages)
            .put_always(&LINK, fmt_number(c.link_ms))
            .put_always(&JITTER, fmt_number(c.jitter_ms))
            .put_always(&DELAY, self.delays_text())
            .put_always(&LEAVE, self.departures_text(Departure::Leave))
            .put_always(&VANISH, self.departures_text(Departure::Vanish))
            .put_always(&DETECT, fmt_number(c.detect_ms))
            .done()
    }

    fn nodes(&self) -> Vec<String> {
        self.names().to_vec()
    }

    fn now(&self) -> SimTime {
        ChatLab::now(self)
    }

    fn end(&self) -> Option<SimTime> {
        None
    }

    fn events(&self) -> u64 {
        ChatLab::events(self)
    }

    fn step(&mut self) -> Option<SimTime> {
        ChatLab::step(self)
    }

    fn run_until(&mut self, until: SimTime) {
        ChatLab::run_until(self, until)
    }

    fn last_event(&self) -> Option<String> {
        ChatLab::last_event(self).map(str::to_owned)
    }

    fn trace(&self) -> &Trace {
        ChatLab::trace(self)
    }

    fn claims(&self) -> Vec<Claim> {
        self.chat_claims()
    }

    fn tables(&self) -> Vec<Table> {
        vec![
            self.output_table(),
            self.orders_table(),
            self.messages_table(),
        ]
    }
}
