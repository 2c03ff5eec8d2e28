//! The lease lab on the lab frame: its parameters (`#/lease?gc=10&fencing=0`) and its
//! [`Lab`] shape — the fencing checker's verdict as a claim, the storage's history as a table.

use super::{LeaseConfig, LeaseLab, WORKERS};
use crate::labs::params::{fmt_number, number, Canonical, ParamKind, ParamSpec, Params};
use crate::labs::{Cell, Claim, Lab, LabSpec, ParamError, Table, Verdict};
use crate::sim::SimTime;
use crate::trace::Trace;

/// The lease's TTL, seconds.
pub const TTL: ParamSpec = number(
    "ttl",
    "Lease TTL",
    "how long a grant lasts on the server's clock",
    (0.5, 60.0, 0.5),
    "s",
    "5",
);
/// Worker A's pause, seconds.
pub const GC: ParamSpec = number(
    "gc",
    "GC pause",
    "Worker A stops the world for this long between checking its lease and writing",
    (0.0, 60.0, 0.5),
    "s",
    "10",
);
/// Worker A's clock rate error, percent.
pub const DRIFT: ParamSpec = number(
    "drift",
    "A's clock drift",
    "Worker A's clock runs this much fast (+) or slow (−)",
    (-90.0, 90.0, 5.0),
    "%",
    "0",
);
/// Worker A's clock jump at 2 s.
pub const JUMP: ParamSpec = number(
    "jump",
    "A's clock jump",
    "Worker A's clock steps by this at 2 s (negative: set back)",
    (-30.0, 30.0, 0.5),
    "s",
    "0",
);
/// Message delay, ms.
pub const DELAY: ParamSpec = number(
    "delay",
    "Network delay",
    "one-way delay of every message",
    (0.0, 2000.0, 10.0),
    "ms",
    "10",
);
/// Extra delay on A's writes, seconds.
pub const SLOW: ParamSpec = number(
    "slow",
    "A's writes slow",
    "extra time Worker A's writes spend in the network (slow, not down)",
    (0.0, 60.0, 0.5),
    "s",
    "0",
);
/// Writes per lease.
pub const WRITES: ParamSpec = ParamSpec::new(
    "writes",
    "Writes per lease",
    "how many writes, 1 s apart, each worker makes under one lease",
    ParamKind::Integer { min: 1, max: 10 },
    "1",
);
/// Fencing at the storage.
pub const FENCING: ParamSpec = ParamSpec::new(
    "fencing",
    "Fencing tokens",
    "the storage refuses a token older than one it has accepted",
    ParamKind::Flag,
    "1",
);
/// Run length, seconds.
pub const DURATION: ParamSpec = number(
    "duration",
    "Duration",
    "the length of the run in simulated seconds",
    (5.0, 300.0, 5.0),
    "s",
    "30",
);

/// The lab for the frame.
pub const SPEC: LabSpec = LabSpec {
    slug: "lease",
    params: &[TTL, GC, DRIFT, JUMP, DELAY, SLOW, WRITES, FENCING, DURATION],
    build: build_boxed,
};

fn build_boxed(p: &Params) -> Result<Box<dyn Lab>, ParamError> {
    Ok(Box::new(LeaseLab::from_params(p)?))
}

impl LeaseLab {
    /// Builds the run a link describes.
    pub fn from_params(p: &Params) -> Result<LeaseLab, ParamError> {
        let config = LeaseConfig {
            ttl_s: p.number(&TTL)?,
            gc_pause_s: p.number(&GC)?,
            drift_percent: p.number(&DRIFT)?,
            jump_s: p.number(&JUMP)?,
            delay_ms: p.number(&DELAY)?,
            slow_s: p.number(&SLOW)?,
            fencing: p.flag(&FENCING)?,
            writes: p.integer(&WRITES)? as u32,
            duration_s: p.number(&DURATION)?,
            ..LeaseConfig::default()
        };
        LeaseLab::new(config).map_err(|e| ParamError::new(TTL.key, e))
    }

    /// The storage's history: every write that arrived.
    pub fn storage_table(&self) -> Table {
        let mut t = Table::new(
            "storage",
            "Every write that reached the storage",
            &[
                "time_s",
                "worker",
                "token",
                "value",
                "accepted",
                "lease_expired",
            ],
        );
        for w in self.storage().history() {
            let expired = self
                .grants()
                .iter()
                .find(|g| g.token == w.token)
                .is_some_and(|g| w.at >= g.expires);
            t.push(vec![
                w.at.as_secs_f64().into(),
                Cell::from(WORKERS[w.holder as usize]),
                w.token.0.into(),
                w.value.as_str().into(),
                Cell::from(if w.accepted { "yes" } else { "no" }),
                Cell::from(if expired { "yes" } else { "no" }),
            ]);
        }
        t
    }

    /// Every lease granted.
    pub fn grants_table(&self) -> Table {
        let mut t = Table::new(
            "leases",
            "Every lease the server granted",
            &["worker", "token", "granted_s", "expires_s"],
        );
        for g in self.grants() {
            t.push(vec![
                Cell::from(WORKERS[g.holder as usize]),
                g.token.0.into(),
                g.granted.as_secs_f64().into(),
                g.expires.as_secs_f64().into(),
            ]);
        }
        t
    }

    /// The log, every line.
    pub fn log_table(&self) -> Table {
        let mut t = Table::new("log", "The run's log", &["time_s", "who", "text"]);
        for l in self.log() {
            t.push(vec![
                l.at.as_secs_f64().into(),
                l.who.as_str().into(),
                l.text.as_str().into(),
            ]);
        }
        t
    }
}

impl Lab for LeaseLab {
    fn params(&self) -> Params {
        let c = self.config();
        Canonical::new(0)
            .put(&TTL, fmt_number(c.ttl_s))
            .put(&GC, fmt_number(c.gc_pause_s))
            .put(&DRIFT, fmt_number(c.drift_percent))
            .put(&JUMP, fmt_number(c.jump_s))
            .put(&DELAY, fmt_number(c.delay_ms))
            .put(&SLOW, fmt_number(c.slow_s))
            .put(&WRITES, c.writes)
            .put(&FENCING, if c.fencing { "1" } else { "0" })
            .put(&DURATION, fmt_number(c.duration_s))
            .done()
    }

    fn settings(&self) -> Params {
        let c = self.config();
        let mut p = Params::new();
        p.set(TTL.key, &fmt_number(c.ttl_s));
        p.set(GC.key, &fmt_number(c.gc_pause_s));
        p.set(DRIFT.key, &fmt_number(c.drift_percent));
        p.set(JUMP.key, &fmt_number(c.jump_s));
        p.set(DELAY.key, &fmt_number(c.delay_ms));
        p.set(SLOW.key, &fmt_number(c.slow_s));
        p.set(WRITES.key, &c.writes.to_string());
        p.set(FENCING.key, if c.fencing { "1" } else { "0" });
        p.set(DURATION.key, &fmt_number(c.duration_s));
        p.set("seed", "0");
        p
    }

    fn nodes(&self) -> Vec<String> {
        vec!["Worker A".into(), "Worker B".into(), "Server".into()]
    }

    fn now(&self) -> SimTime {
        LeaseLab::now(self)
    }

    fn end(&self) -> Option<SimTime> {
        Some(LeaseLab::end(self))
    }

    fn events(&self) -> u64 {
        LeaseLab::events(self)
    }

    fn step(&mut self) -> Option<SimTime> {
        LeaseLab::step(self)
    }

    fn run_until(&mut self, until: SimTime) {
        LeaseLab::run_until(self, until)
    }

    fn last_event(&self) -> Option<String> {
        self.log().last().map(|l| l.to_string())
    }

    fn trace(&self) -> &Trace {
        LeaseLab::trace(self)
    }

    fn claims(&self) -> Vec<Claim> {
        let c = self.config();
        let found = self.interleavings();
        let fenced = if c.fencing {
            "with fencing tokens"
        } else {
            "without fencing tokens"
        };
        let evidence = match found.first() {
            None => format!(
                "{} writes applied, {} refused by token; none from a stale holder after its successor's",
                self.storage().history().iter().filter(|w| w.accepted).count(),
                self.storage().history().iter().filter(|w| !w.accepted).count()
            ),
            Some(i) => format!(
                "Worker {}'s write with token {} landed at {:.3} s, after Worker {}'s with token {} at {:.3} s",
                WORKERS[i.stale as usize],
                i.stale_token,
                i.stale_at.as_secs_f64(),
                WORKERS[i.newer as usize],
                i.newer_token,
                i.newer_at.as_secs_f64()
            ),
        };
        let tokens_grow = self.grants().windows(2).all(|w| w[0].token < w[1].token);
        let late = self.writes_after_expiry();
        vec![
            Claim::new(
                format!("Mutual exclusion at the storage {fenced}: two holders' writes never interleave (Kleppmann, DDIA ch. 8)"),
                evidence,
                Verdict::of(found.is_empty()),
            ),
            Claim::new(
                "Every grant's fencing token is larger than every earlier one",
                format!("{} grants, tokens {}", self.grants().len(), self.grants().iter().map(|g| g.token.to_string()).collect::<Vec<_>>().join(", ")),
                Verdict::of(tokens_grow),
            ),
            Claim::new(
                "A lease is only as good as the holder's clock and pauses (Gray & Cheriton 1989): a holder may act after the server took its lease back",
                format!("{late} writes reached the storage after their lease had expired on the server's clock"),
                if late > 0 { Verdict::Holds } else { Verdict::Pending },
            ),
        ]
    }

    fn tables(&self) -> Vec<Table> {
        vec![self.storage_table(), self.grants_table(), self.log_table()]
    }
}
