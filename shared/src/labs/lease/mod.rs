//! The lease lab (the seed's project 11): two workers take turns holding a lease on one
//! resource and write to a storage service with the lease's fencing token (Gray & Cheriton,
//! SOSP 1989; Kleppmann, *DDIA* ch. 8), on the shared discrete-event simulator.
//!
//! Worker A starts first and holds the lease; it checks the lease on **its own clock** before
//! each write — and then may stop the world in a garbage-collection pause before the write goes
//! out, or its clock may run slow or jump back, or its write may sit in a slow network. The
//! lease server takes the lease back when the TTL runs out on *its* clock (it cannot tell a
//! paused node from a dead one or a slow link), and Worker B, polling, gets it with the next
//! token. With fencing the storage refuses A's late write ("Higher Token (102) already used");
//! without it, the storage's history shows the two holders' writes interleaved
//! ([`crate::check::fencing`]).
//!
//! Workers do not renew their leases: each job is `writes` writes one second apart under one
//! lease, then a release.
//!
//! **Invariant.** A run is a pure function of its [`LeaseConfig`] (no randomness at all: every
//! delay is a parameter) and the `step`/`run_until` calls made.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::check::fencing::{check_fencing, Interleaving};
use crate::coordination::lease::{FencingToken, Lease, LeaseServer, Storage, WriteError};
use crate::sim::{Network, SimTime, Simulation};
use crate::trace::{MessageId, Trace};

pub mod frame;
#[cfg(test)]
mod tests;

pub use frame::SPEC;

/// The lab's workers: A (index 0) and B.
pub const WORKERS: [&str; 2] = ["A", "B"];

/// One run's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseConfig {
    /// The lease's time to live, on the server's clock, seconds.
    pub ttl_s: f64,
    /// Worker A's stop-the-world pause before its first write, seconds (0: none).
    pub gc_pause_s: f64,
    /// Worker A's clock rate error, percent (−30: its clock runs 30 % slow).
    pub drift_percent: f64,
    /// A step of Worker A's clock at 2 s, seconds (negative: set back).
    pub jump_s: f64,
    /// One-way delay of every message, ms.
    pub delay_ms: f64,
    /// Extra delay of Worker A's writes in the network, seconds ("network slow").
    pub slow_s: f64,
    /// The storage checks fencing tokens.
    pub fencing: bool,
    /// Writes per lease (one second apart).
    pub writes: u32,
    /// The first lease's token.
    pub first_token: u64,
    /// Length of the run, seconds.
    pub duration_s: f64,
}

impl Default for LeaseConfig {
    /// The seed's run: TTL 5 s, a 10 s pause, fencing on.
    fn default() -> Self {
        LeaseConfig {
            ttl_s: 5.0,
            gc_pause_s: 10.0,
            drift_percent: 0.0,
            jump_s: 0.0,
            delay_ms: 10.0,
            slow_s: 0.0,
            fencing: true,
            writes: 1,
            first_token: 101,
            duration_s: 30.0,
        }
    }
}

/// A configuration the lab refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LeaseLabError {
    /// A time out of its range.
    #[error("{what} must be a finite number {range}, got {value}")]
    Bad {
        /// Which parameter.
        what: &'static str,
        /// Its range.
        range: &'static str,
        /// The value.
        value: f64,
    },
}

impl LeaseConfig {
    fn validated(self) -> Result<Self, LeaseLabError> {
        let check = |what, value: f64, lo: f64, hi: f64, range| {
            if value.is_finite() && value >= lo && value <= hi {
                Ok(())
            } else {
                Err(LeaseLabError::Bad { what, range, value })
            }
        };
        check("ttl", self.ttl_s, 0.1, 3600.0, "from 0.1 to 3600 s")?;
        check("gc pause", self.gc_pause_s, 0.0, 3600.0, "from 0 to 3600 s")?;
        check("drift", self.drift_percent, -90.0, 90.0, "from -90 to 90 %")?;
        check("jump", self.jump_s, -3600.0, 3600.0, "from -3600 to 3600 s")?;
        check("delay", self.delay_ms, 0.0, 60_000.0, "from 0 to 60000 ms")?;
        check("slow", self.slow_s, 0.0, 3600.0, "from 0 to 3600 s")?;
        check(
            "duration",
            self.duration_s,
            1.0,
            86_400.0,
            "from 1 to 86400 s",
        )?;
        check(
            "writes",
            f64::from(self.writes),
            1.0,
            100.0,
            "from 1 to 100",
        )?;
        Ok(self)
    }
}

/// A line of the run's log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    /// When, true time.
    pub at: SimTime,
    /// `Worker A`, `Worker B` or `Server`.
    pub who: String,
    /// What happened, in the seed's words.
    pub text: String,
    /// One of the story's lines (printed by default); the rest are details (polls, acks).
    pub story: bool,
}

impl std::fmt::Display for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.who, self.text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not holding; the next tick asks for the lease.
    Idle,
    /// Asked; waiting for the answer.
    Requesting,
    /// Holding; the next tick checks the lease and writes.
    Holding,
    /// A write is out; waiting for the storage.
    Writing,
    /// Stopped the world; the next tick is the wake-up, and the write goes out unchecked.
    Paused,
    /// All its jobs are done.
    Done,
}

#[derive(Debug, Clone)]
struct Worker {
    state: State,
    lease: Option<Lease>,
    /// The local time by which, by its own clock, its lease runs out.
    deadline_local: f64,
    /// Local time its request left.
    asked_local: f64,
    writes_left: u32,
    jobs_left: u32,
    /// Worker A pauses once.
    paused_once: bool,
    /// Writes it made so far.
    written: u32,
}

#[derive(Debug, Clone)]
enum Msg {
    Acquire,
    Release(FencingToken),
    Write {
        token: FencingToken,
        value: String,
    },
    Granted(Lease),
    Denied,
    WriteOk(FencingToken),
    WriteRejected {
        token: FencingToken,
        highest: FencingToken,
    },
}

#[derive(Debug, Clone)]
enum Happening {
    Tick {
        w: usize,
    },
    ToServer {
        w: usize,
        msg: Msg,
        message: MessageId,
    },
    ToWorker {
        w: usize,
        msg: Msg,
        message: MessageId,
    },
    Expiry {
        token: FencingToken,
    },
}

/// A lease lab run in progress.
#[derive(Debug)]
pub struct LeaseLab {
    config: LeaseConfig,
    sim: Simulation<Happening>,
    server: LeaseServer,
    storage: Storage,
    workers: Vec<Worker>,
    grants: Vec<Lease>,
    log: Vec<LogLine>,
    trace: Trace,
    end: SimTime,
}

/// The server's node in the trace (the workers are 0 and 1).
const SERVER: u32 = 2;

impl LeaseLab {
    /// A run at time 0: Worker A asks at once, Worker B at 0.5 s.
    pub fn new(config: LeaseConfig) -> Result<Self, LeaseLabError> {
        let config = config.validated()?;
        let mut sim = Simulation::new(0, Network::default());
        sim.schedule_at(SimTime::ZERO, Happening::Tick { w: 0 });
        sim.schedule_at(SimTime::from_millis(500), Happening::Tick { w: 1 });
        let worker = Worker {
            state: State::Idle,
            lease: None,
            deadline_local: 0.0,
            asked_local: 0.0,
            writes_left: config.writes,
            jobs_left: 1,
            paused_once: false,
            written: 0,
        };
        let mut trace = Trace::new();
        trace.name_node(0, "Worker A");
        trace.name_node(1, "Worker B");
        trace.name_node(SERVER, "Server");
        Ok(LeaseLab {
            server: LeaseServer::new(Duration::from_secs_f64(config.ttl_s), config.first_token),
            storage: Storage::new(config.fencing),
            workers: vec![worker.clone(), worker],
            grants: Vec::new(),
            log: Vec::new(),
            trace,
            end: SimTime::from_secs_f64(config.duration_s),
            sim,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Worker `w`'s clock at true time `t`, seconds: A's drifts and jumps, B's is true.
    pub fn local_clock(&self, w: usize, t: SimTime) -> f64 {
        let s = t.as_secs_f64();
        if w != 0 {
            return s;
        }
        let jump = if s >= 2.0 { self.config.jump_s } else { 0.0 };
        s * (1.0 + self.config.drift_percent / 100.0) + jump
    }

    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        self.sim.now()
    }

    /// The end of the run.
    pub fn end(&self) -> SimTime {
        self.end
    }

    /// Events handled.
    pub fn events(&self) -> u64 {
        self.sim.stats().events_processed
    }

    /// The log so far.
    pub fn log(&self) -> &[LogLine] {
        &self.log
    }

    /// The storage (its history is the checker's input).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Every lease granted.
    pub fn grants(&self) -> &[Lease] {
        &self.grants
    }

    /// The run as a space-time trace: workers and the server (lease server and storage).
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The checker's verdict on the storage's history so far.
    pub fn interleavings(&self) -> Vec<Interleaving> {
        check_fencing(self.storage.history())
    }

    /// Writes the storage applied while their lease had expired on the server's clock.
    pub fn writes_after_expiry(&self) -> usize {
        self.storage
            .history()
            .iter()
            .filter(|w| w.accepted)
            .filter(|w| {
                self.grants
                    .iter()
                    .find(|g| g.token == w.token)
                    .is_some_and(|g| w.at >= g.expires)
            })
            .count()
    }

    /// Handles one event; `None` once the run is over.
    pub fn step(&mut self) -> Option<SimTime> {
        if self.sim.peek_time().is_none_or(|t| t > self.end) {
            return None;
        }
        let (at, ev) = self.sim.pop()?;
        self.handle(at, ev);
        Some(at)
    }

    /// Handles every event up to `until` (never past the end).
    pub fn run_until(&mut self, until: SimTime) {
        let until = until.min(self.end);
        while self.sim.peek_time().is_some_and(|t| t <= until) {
            self.step();
        }
        if until > self.sim.now() {
            self.sim.run_until(until, |_, _, _| {});
        }
    }

    /// Runs to the end.
    pub fn run(&mut self) {
        self.run_until(self.end);
    }

    fn say(&mut self, who: &str, text: String, story: bool) {
        self.log.push(LogLine {
            at: self.sim.now(),
            who: who.to_owned(),
            text,
            story,
        });
    }

    fn ms(t: SimTime) -> f64 {
        t.as_nanos() as f64 / 1e6
    }

    fn delay(&self) -> Duration {
        Duration::from_secs_f64(self.config.delay_ms / 1000.0)
    }

    fn send_to_server(&mut self, w: usize, msg: Msg, extra: Duration) {
        let now = self.sim.now();
        let message = self.trace.send(w as u32, Self::ms(now), describe(&msg));
        let d = self.delay() + extra;
        self.sim
            .schedule_in(d, Happening::ToServer { w, msg, message });
    }

    fn reply_to_worker(&mut self, w: usize, msg: Msg) {
        let now = self.sim.now();
        let message = self.trace.send(SERVER, Self::ms(now), describe(&msg));
        let d = self.delay();
        self.sim
            .schedule_in(d, Happening::ToWorker { w, msg, message });
    }

    fn handle(&mut self, at: SimTime, ev: Happening) {
        match ev {
            Happening::Tick { w } => self.tick(w, at),
            Happening::ToServer { w, msg, message } => {
                let _ = self
                    .trace
                    .receive(SERVER, message, Self::ms(at), describe(&msg));
                self.server_gets(w, msg, at);
            }
            Happening::ToWorker { w, msg, message } => {
                let _ = self
                    .trace
                    .receive(w as u32, message, Self::ms(at), describe(&msg));
                self.worker_gets(w, msg, at);
            }
            Happening::Expiry { token } => {
                if let Some(l) = self.server.expire(at) {
                    if l.token == token {
                        self.trace.local(SERVER, Self::ms(at), "lease expired");
                        self.say("Server", "Lease Expired.".into(), true);
                        self.say(
                            "Server",
                            format!(
                                "(no word from Worker {} for {} s: down, paused or slow — the \
                                 server cannot tell which)",
                                WORKERS[l.holder as usize],
                                crate::labs::params::fmt_number(self.config.ttl_s)
                            ),
                            false,
                        );
                    }
                }
            }
        }
    }

    fn tick(&mut self, w: usize, at: SimTime) {
        let name = format!("Worker {}", WORKERS[w]);
        let local = self.local_clock(w, at);
        match self.workers[w].state {
            State::Idle => {
                self.workers[w].state = State::Requesting;
                self.workers[w].asked_local = local;
                self.send_to_server(w, Msg::Acquire, Duration::ZERO);
            }
            State::Holding => {
                let worker = &self.workers[w];
                let Some(lease) = worker.lease else {
                    return;
                };
                if local >= worker.deadline_local {
                    self.say(
                        &name,
                        format!(
                            "Lease (Token: {}) ran out by its own clock; not writing",
                            lease.token
                        ),
                        false,
                    );
                    self.workers[w].lease = None;
                    self.workers[w].state = State::Idle;
                    self.sim.schedule_in(Duration::ZERO, Happening::Tick { w });
                    return;
                }
                // The lease is valid by its own clock: the write goes ahead — unless the world
                // stops first.
                if w == 0 && self.config.gc_pause_s > 0.0 && !self.workers[w].paused_once {
                    self.workers[w].paused_once = true;
                    self.workers[w].state = State::Paused;
                    self.trace.local(w as u32, Self::ms(at), "GC pause");
                    self.say(
                        &name,
                        format!(
                            "GC PAUSE ({} seconds)...",
                            crate::labs::params::fmt_number(self.config.gc_pause_s)
                        ),
                        true,
                    );
                    self.sim.schedule_in(
                        Duration::from_secs_f64(self.config.gc_pause_s),
                        Happening::Tick { w },
                    );
                    return;
                }
                self.send_write(w, lease.token);
            }
            State::Paused => {
                let Some(lease) = self.workers[w].lease else {
                    return;
                };
                self.say(
                    &name,
                    format!("Wakes up, tries to write with Token {}...", lease.token),
                    true,
                );
                self.send_write(w, lease.token);
            }
            State::Requesting | State::Writing | State::Done => {}
        }
    }

    fn send_write(&mut self, w: usize, token: FencingToken) {
        self.workers[w].state = State::Writing;
        self.workers[w].written += 1;
        let value = format!("{}{}", WORKERS[w], self.workers[w].written);
        let extra = if w == 0 {
            Duration::from_secs_f64(self.config.slow_s)
        } else {
            Duration::ZERO
        };
        self.send_to_server(w, Msg::Write { token, value }, extra);
    }

    fn server_gets(&mut self, w: usize, msg: Msg, at: SimTime) {
        match msg {
            Msg::Acquire => match self.server.acquire(w as u32, at) {
                Ok(lease) => {
                    self.grants.push(lease);
                    self.sim
                        .schedule_at(lease.expires, Happening::Expiry { token: lease.token });
                    self.reply_to_worker(w, Msg::Granted(lease));
                }
                Err(_) => self.reply_to_worker(w, Msg::Denied),
            },
            Msg::Release(token) => {
                let _ = self.server.release(token);
            }
            Msg::Write { token, value } => match self.storage.write(w as u32, token, value, at) {
                Ok(()) => {
                    if !self.config.fencing {
                        let stale = self
                            .grants
                            .iter()
                            .any(|g| g.token == token && at >= g.expires);
                        if stale {
                            self.say(
                                    "Server",
                                    format!("ACCEPTED: no fencing, Token {token} written though its lease expired."),
                                    true,
                                );
                        }
                    }
                    self.reply_to_worker(w, Msg::WriteOk(token));
                }
                Err(WriteError::Fenced { highest }) => {
                    self.say(
                        "Server",
                        format!("REJECTED: Higher Token ({highest}) already used."),
                        true,
                    );
                    self.reply_to_worker(w, Msg::WriteRejected { token, highest });
                }
            },
            Msg::Granted(_) | Msg::Denied | Msg::WriteOk(_) | Msg::WriteRejected { .. } => {}
        }
    }

    fn worker_gets(&mut self, w: usize, msg: Msg, at: SimTime) {
        let name = format!("Worker {}", WORKERS[w]);
        match msg {
            Msg::Granted(lease) => {
                let deadline = self.workers[w].asked_local + self.config.ttl_s;
                let worker = &mut self.workers[w];
                worker.lease = Some(lease);
                worker.deadline_local = deadline;
                worker.state = State::Holding;
                worker.writes_left = self.config.writes;
                self.say(
                    &name,
                    format!("Acquired Lease (Token: {})", lease.token),
                    true,
                );
                self.sim.schedule_at(at, Happening::Tick { w });
            }
            Msg::Denied => {
                self.workers[w].state = State::Idle;
                self.say(&name, "Lease is held; asking again in 1 s".into(), false);
                self.sim
                    .schedule_in(Duration::from_secs(1), Happening::Tick { w });
            }
            Msg::WriteOk(token) => {
                self.say(&name, format!("Write Success (Token: {token})"), true);
                let worker = &mut self.workers[w];
                worker.writes_left = worker.writes_left.saturating_sub(1);
                if worker.writes_left > 0 {
                    worker.state = State::Holding;
                    self.sim
                        .schedule_in(Duration::from_secs(1), Happening::Tick { w });
                } else {
                    worker.lease = None;
                    worker.jobs_left = worker.jobs_left.saturating_sub(1);
                    worker.state = if worker.jobs_left == 0 {
                        State::Done
                    } else {
                        State::Idle
                    };
                    self.send_to_server(w, Msg::Release(token), Duration::ZERO);
                    self.say(&name, format!("Releases the lease (Token: {token})"), false);
                }
            }
            Msg::WriteRejected { token, highest } => {
                let worker = &mut self.workers[w];
                worker.lease = None;
                worker.state = State::Idle;
                self.say(
                    &name,
                    format!("Fenced off: token {token} is older than {highest}; asking for the lease again"),
                    false,
                );
                self.sim.schedule_in(Duration::ZERO, Happening::Tick { w });
            }
            Msg::Acquire | Msg::Release(_) | Msg::Write { .. } => {}
        }
    }

    /// The story (the seed's lines), or every line with its time when `verbose`; then the
    /// checker's verdict.
    pub fn report(&self, verbose: bool) -> String {
        let mut s = String::new();
        for l in &self.log {
            if verbose {
                let _ = writeln!(s, "{:>9.3}s {l}", l.at.as_secs_f64());
            } else if l.story {
                let _ = writeln!(s, "{l}");
            }
        }
        let found = self.interleavings();
        if found.is_empty() {
            let _ = writeln!(
                s,
                "CHECK: no two holders' writes interleaved ({} writes applied, {} refused).",
                self.storage.history().iter().filter(|w| w.accepted).count(),
                self.storage
                    .history()
                    .iter()
                    .filter(|w| !w.accepted)
                    .count()
            );
        } else {
            for i in &found {
                let _ = writeln!(
                    s,
                    "CHECK: CORRUPTED: Worker {}'s write (Token {}) at {:.3} s landed after Worker {}'s (Token {}) at {:.3} s.",
                    WORKERS[i.stale as usize],
                    i.stale_token,
                    i.stale_at.as_secs_f64(),
                    WORKERS[i.newer as usize],
                    i.newer_token,
                    i.newer_at.as_secs_f64()
                );
            }
        }
        s
    }
}

fn describe(m: &Msg) -> String {
    match m {
        Msg::Acquire => "acquire".into(),
        Msg::Release(t) => format!("release {t}"),
        Msg::Write { token, value } => format!("write {value} ({token})"),
        Msg::Granted(l) => format!("granted {}", l.token),
        Msg::Denied => "denied".into(),
        Msg::WriteOk(t) => format!("ok {t}"),
        Msg::WriteRejected { token, .. } => format!("rejected {token}"),
    }
}
