//! The TrueTime lab (the seed's project 7): regions with drifting clocks, synchronised to a
//! time master by Cristian's algorithm, serve Spanner-style transactions with commit wait
//! (Corbett et al., "Spanner", OSDI 2012, sections 3 and 4.1.2), on the shared
//! discrete-event simulator.
//!
//! Each region's [`TrueTime`] ε is the last Cristian exchange's error bound (RTT/2) plus the
//! assumed drift bound times the local time since that exchange — Spanner's sawtooth, not a
//! constant. A write takes `s = TT.now().latest` (and above the region's last timestamp) and,
//! with commit wait on, becomes visible only once `TT.after(s)` holds on its region's clock. A
//! read takes its snapshot `s = TT.now().latest`, waits until `TT.after(s)` and until no write
//! with a timestamp `≤ s` is still waiting, and returns the latest version `≤ s`. Clients chain
//! transactions across regions: each starts a moment after the previous one ended (in true
//! time), the pattern that exposes a clock running behind another.
//!
//! **Claims checked against each run** ([`crate::check::external_consistency`]): with commit
//! wait on and ε honest (the assumed drift bound at least the clocks' real drift), every
//! transaction that starts after another ended gets a larger timestamp, and every read sees the
//! latest write at its snapshot. Turn commit wait off, or understate the drift bound, and the
//! checker lists the violations it finds.
//!
//! **Invariant.** A run is a pure function of its [`SpannerConfig`] (seeded) and the
//! `step`/`run_until` calls made.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::check::external_consistency::{
    check_external_consistency, ConsistencyReport, Transaction, TxAction, TxId,
};
use crate::clocks::truetime::TrueTime;
use crate::sim::{Network, SimTime, Simulation};
use crate::sync::cristian::CristianSample;
use crate::trace::Trace;

mod diagram;
pub mod frame;
#[cfg(test)]
mod tests;

pub use frame::SPEC;

/// The regions' names, in order.
pub const REGIONS: [&str; 3] = ["us", "eu", "asia"];

/// Keys the clients write and read.
const KEYS: [&str; 3] = ["k0", "k1", "k2"];

/// Transactions recorded into the trace (the first ones); the history keeps all.
pub const TRACE_CAP: usize = 300;

/// One run's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpannerConfig {
    /// The largest real drift of a region's clock, ppm: the regions drift `+d`, `−d`, `+0.4d`.
    pub drift_ppm: f64,
    /// The drift bound TrueTime assumes, ppm (honest when at least `drift_ppm`).
    pub assumed_drift_ppm: f64,
    /// Time between a region's synchronisations with the time master, seconds.
    pub sync_every_s: f64,
    /// Commit wait (and the matching wait of reads) on.
    pub commit_wait: bool,
    /// Concurrent clients, each a chain of transactions.
    pub clients: usize,
    /// Longest pause of a client between one transaction's end and the next one's start, ms.
    pub think_ms: f64,
    /// Length of the run, seconds.
    pub duration_s: f64,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for SpannerConfig {
    fn default() -> Self {
        SpannerConfig {
            drift_ppm: 150.0,
            assumed_drift_ppm: 200.0,
            sync_every_s: 30.0,
            commit_wait: true,
            clients: 3,
            think_ms: 5.0,
            duration_s: 20.0,
            seed: 1,
        }
    }
}

/// A configuration the lab refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpannerLabError {
    /// A value out of its range.
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

impl SpannerConfig {
    fn validated(self) -> Result<Self, SpannerLabError> {
        let check = |what, value: f64, lo: f64, hi: f64, range| {
            if value.is_finite() && value >= lo && value <= hi {
                Ok(())
            } else {
                Err(SpannerLabError::Bad { what, range, value })
            }
        };
        check("drift", self.drift_ppm, 0.0, 5000.0, "from 0 to 5000 ppm")?;
        check(
            "assumed drift",
            self.assumed_drift_ppm,
            0.0,
            5000.0,
            "from 0 to 5000 ppm",
        )?;
        check(
            "sync interval",
            self.sync_every_s,
            0.1,
            3600.0,
            "from 0.1 to 3600 s",
        )?;
        check("clients", self.clients as f64, 1.0, 10.0, "from 1 to 10")?;
        check(
            "think time",
            self.think_ms,
            0.0,
            10_000.0,
            "from 0 to 10000 ms",
        )?;
        check(
            "duration",
            self.duration_s,
            0.1,
            3600.0,
            "from 0.1 to 3600 s",
        )?;
        Ok(self)
    }

    /// Each region's real drift, ppm.
    pub fn drifts(&self) -> [f64; 3] {
        [self.drift_ppm, -self.drift_ppm, 0.4 * self.drift_ppm]
    }
}

/// A region's clock: piecewise linear in true time, stepped at each synchronisation.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Clock {
    /// True time of the last step, ms.
    ref_true: f64,
    /// Its reading then, ms.
    ref_local: f64,
    /// `1 + drift`.
    rate: f64,
}

impl Clock {
    fn read(&self, true_ms: f64) -> f64 {
        self.ref_local + (true_ms - self.ref_true) * self.rate
    }

    fn step(&mut self, true_ms: f64, by_ms: f64) {
        self.ref_local = self.read(true_ms) + by_ms;
        self.ref_true = true_ms;
    }
}

#[derive(Debug, Clone)]
struct Region {
    clock: Clock,
    tt: TrueTime,
    /// The largest timestamp it has assigned (Spanner's leaders assign increasing ones).
    last_ts: f64,
}

/// One transaction as the lab ran it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TxRecord {
    /// The region that ran it.
    pub region: usize,
    /// The client.
    pub client: usize,
    /// The history entry the checker reads (`end_ms` is NaN while it runs).
    pub tx: Transaction,
    /// ε of its region when it started, ms.
    pub epsilon_ms: f64,
    /// Its region's real clock error when it started (local − true), ms.
    pub clock_error_ms: f64,
    /// How long it waited, true time, ms.
    pub waited_ms: f64,
}

#[derive(Debug, Clone)]
enum Happening {
    SyncStart {
        region: usize,
    },
    SyncDone {
        region: usize,
        sample: CristianSample,
    },
    ClientNext {
        client: usize,
    },
    Check {
        tx: TxId,
    },
}

/// A TrueTime lab run in progress.
#[derive(Debug)]
pub struct SpannerLab {
    config: SpannerConfig,
    sim: Simulation<Happening>,
    regions: Vec<Region>,
    txs: Vec<TxRecord>,
    /// Per key, the visible versions `(ts, tx)`.
    store: BTreeMap<&'static str, Vec<(f64, TxId)>>,
    /// Writes that have a timestamp but are still waiting, with their timestamp.
    pending: BTreeMap<TxId, f64>,
    /// Per region and second: (true s, clock error ms, ε ms).
    samples: Vec<(f64, [f64; 3], [f64; 3])>,
    trace: Trace,
    end: SimTime,
    last: Option<String>,
}

fn ms(t: SimTime) -> f64 {
    t.as_nanos() as f64 / 1e6
}

fn after_ms(d: f64) -> Duration {
    Duration::from_nanos((d.max(0.0) * 1e6).ceil() as u64)
}

impl SpannerLab {
    /// A run at time 0: every region starts synchronised (error within its first RTT/2).
    pub fn new(config: SpannerConfig) -> Result<Self, SpannerLabError> {
        let config = config.validated()?;
        let mut sim = Simulation::new(config.seed, Network::default());
        let bound = config.assumed_drift_ppm * 1e-6;
        let mut regions = Vec::new();
        for (r, drift) in config.drifts().into_iter().enumerate() {
            let start_error = sim.rng().gen_range(-0.5..0.5);
            regions.push(Region {
                clock: Clock {
                    ref_true: 0.0,
                    ref_local: start_error,
                    rate: 1.0 + drift * 1e-6,
                },
                tt: TrueTime::new(0.5, bound.min(0.999), start_error).expect("validated"),
                last_ts: f64::MIN,
            });
            // Staggered syncs, so the regions' sawtooths are out of phase.
            let first = config.sync_every_s * (r as f64 + 1.0) / 3.0;
            sim.schedule_at(
                SimTime::from_secs_f64(first),
                Happening::SyncStart { region: r },
            );
        }
        for c in 0..config.clients {
            sim.schedule_at(
                SimTime::from_millis(c as u64),
                Happening::ClientNext { client: c },
            );
        }
        let mut trace = Trace::new();
        for (r, name) in REGIONS.iter().enumerate() {
            trace.name_node(r as u32, *name);
        }
        let mut lab = SpannerLab {
            end: SimTime::from_secs_f64(config.duration_s),
            config,
            sim,
            regions,
            txs: Vec::new(),
            store: BTreeMap::new(),
            pending: BTreeMap::new(),
            samples: Vec::new(),
            trace,
            last: None,
        };
        lab.sample(0.0);
        Ok(lab)
    }

    /// The configuration.
    pub fn config(&self) -> &SpannerConfig {
        &self.config
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

    /// What the last event did.
    pub fn last_event(&self) -> Option<&str> {
        self.last.as_deref()
    }

    /// The run's first transactions as a space-time trace (a local event per transaction on
    /// its region's lane).
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Every transaction so far.
    pub fn transactions(&self) -> &[TxRecord] {
        &self.txs
    }

    /// The finished transactions, as the checker reads them.
    pub fn history(&self) -> Vec<Transaction> {
        self.txs
            .iter()
            .filter(|t| t.tx.end_ms.is_finite())
            .map(|t| t.tx.clone())
            .collect()
    }

    /// The checker's verdict on the finished transactions (ids are positions among them).
    pub fn check(&self) -> ConsistencyReport {
        check_external_consistency(&self.history())
    }

    /// Per second: each region's clock error and ε, ms.
    pub fn samples(&self) -> &[(f64, [f64; 3], [f64; 3])] {
        &self.samples
    }

    /// Handles one event; `None` once the run is over.
    pub fn step(&mut self) -> Option<SimTime> {
        let next = self.sim.peek_time()?;
        if next > self.end {
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

    fn sample(&mut self, true_s: f64) {
        let t = true_s * 1000.0;
        let mut err = [0.0; 3];
        let mut eps = [0.0; 3];
        for (r, region) in self.regions.iter().enumerate() {
            let local = region.clock.read(t);
            err[r] = local - t;
            eps[r] = region.tt.epsilon(local);
        }
        self.samples.push((true_s, err, eps));
    }

    fn handle(&mut self, at: SimTime, ev: Happening) {
        let now = ms(at);
        while let Some(&(last, _, _)) = self.samples.last() {
            if last + 1.0 > at.as_secs_f64() {
                break;
            }
            self.sample(last + 1.0);
        }
        match ev {
            Happening::SyncStart { region } => {
                // A Cristian exchange with the time master (true time): 0.2–1.2 ms each way,
                // independently, so the path may be asymmetric.
                let rng = self.sim.rng();
                let out = rng.gen_range(0.2..1.2);
                let back = rng.gen_range(0.2..1.2);
                let clock = self.regions[region].clock;
                let sample = CristianSample {
                    t0: clock.read(now),
                    server_time: now + out,
                    t1: clock.read(now + out + back),
                };
                self.sim
                    .schedule_in(after_ms(out + back), Happening::SyncDone { region, sample });
            }
            Happening::SyncDone { region, sample } => {
                let r = &mut self.regions[region];
                r.clock.step(now, sample.offset());
                let local = r.clock.read(now);
                let _ = r.tt.sync_with(local, sample.error_bound(0.0));
                self.last = Some(format!(
                    "{} synchronises: offset {:+.3} ms, ε back to {:.3} ms",
                    REGIONS[region],
                    sample.offset(),
                    sample.error_bound(0.0)
                ));
                self.sim.schedule_in(
                    Duration::from_secs_f64(self.config.sync_every_s),
                    Happening::SyncStart { region },
                );
            }
            Happening::ClientNext { client } => self.start(client, now),
            Happening::Check { tx } => self.check_tx(tx, now),
        }
    }

    fn start(&mut self, client: usize, now: f64) {
        let rng = self.sim.rng();
        let region = rng.gen_range(0..REGIONS.len());
        let key = KEYS[rng.gen_range(0..KEYS.len())];
        let is_write = rng.gen_bool(0.6);
        let r = &mut self.regions[region];
        let local = r.clock.read(now);
        let iv = r.tt.now(local);
        let id = self.txs.len();
        let action = if is_write {
            TxAction::Write {
                key: key.to_owned(),
                value: format!("c{client}#{id}"),
            }
        } else {
            TxAction::Read {
                key: key.to_owned(),
                saw: None,
            }
        };
        // Spanner's leaders assign increasing timestamps: above the last one, too.
        let ts = if is_write {
            let ts = iv.latest.max(r.last_ts + 1e-3);
            r.last_ts = ts;
            ts
        } else {
            iv.latest
        };
        self.txs.push(TxRecord {
            region,
            client,
            tx: Transaction {
                action,
                start_ms: now,
                end_ms: f64::NAN,
                ts_ms: ts,
            },
            epsilon_ms: iv.epsilon(),
            clock_error_ms: local - now,
            waited_ms: 0.0,
        });
        if is_write {
            self.pending.insert(id, ts);
        }
        self.last = Some(format!(
            "{} {} {key} at {} (TT.now() = [{:.3}, {:.3}] ms, ts {:.3} ms)",
            if is_write { "write" } else { "read" },
            format_args!("#{id}"),
            REGIONS[region],
            iv.earliest,
            iv.latest,
            ts
        ));
        if self.config.commit_wait {
            self.check_tx(id, now);
        } else {
            self.finish(id, now);
        }
    }

    /// Commit wait (or a read's wait): done when `TT.after(ts)` holds and, for a read, no
    /// write at or below its snapshot is still waiting.
    fn check_tx(&mut self, id: TxId, now: f64) {
        let t = &self.txs[id];
        let r = &self.regions[t.region];
        let local = r.clock.read(now);
        let ts = t.tx.ts_ms;
        if !r.tt.after(ts, local) {
            let wait_local = r.tt.commit_wait(ts, local);
            let wait_true = wait_local / r.clock.rate + 1e-6;
            self.sim
                .schedule_in(after_ms(wait_true), Happening::Check { tx: id });
            return;
        }
        if matches!(t.tx.action, TxAction::Read { .. })
            && self.pending.iter().any(|(&w, &wts)| w != id && wts <= ts)
        {
            // Recheck when the earliest such write has had time to finish its own wait.
            self.sim
                .schedule_in(after_ms(0.05), Happening::Check { tx: id });
            return;
        }
        self.finish(id, now);
    }

    fn finish(&mut self, id: TxId, now: f64) {
        let (key, is_write, ts) = match &self.txs[id].tx.action {
            TxAction::Write { key, .. } => (key.clone(), true, self.txs[id].tx.ts_ms),
            TxAction::Read { key, .. } => (key.clone(), false, self.txs[id].tx.ts_ms),
        };
        let k = KEYS.iter().copied().find(|k| *k == key).unwrap_or(KEYS[0]);
        if is_write {
            self.pending.remove(&id);
            let versions = self.store.entry(k).or_default();
            versions.push((ts, id));
        } else {
            let saw = self
                .store
                .get(k)
                .and_then(|vs| {
                    vs.iter()
                        .filter(|(vts, _)| *vts <= ts)
                        .max_by(|a, b| a.0.total_cmp(&b.0))
                })
                .map(|&(_, w)| w);
            if let TxAction::Read { saw: s, .. } = &mut self.txs[id].tx.action {
                *s = saw;
            }
        }
        let t = &mut self.txs[id];
        t.tx.end_ms = now;
        t.waited_ms = now - t.tx.start_ms;
        if id < TRACE_CAP {
            let label = match &t.tx.action {
                TxAction::Write { key, value } => {
                    format!("#{id} write {key}={value} @ {:.3}", t.tx.ts_ms)
                }
                TxAction::Read { key, saw } => format!(
                    "#{id} read {key} @ {:.3} saw {}",
                    t.tx.ts_ms,
                    saw.map_or("nothing".to_owned(), |s| format!("#{s}"))
                ),
            };
            let region = t.region as u32;
            self.trace.local(region, now, label);
        }
        let client = self.txs[id].client;
        let think = self.sim.rng().gen_range(0.0..=self.config.think_ms);
        self.sim
            .schedule_in(after_ms(think), Happening::ClientNext { client });
    }

    /// Whether every TrueTime interval the run read contained true time, and the worst
    /// reading: (readings outside, readings, the largest |error| − ε, ms).
    pub fn intervals_honest(&self) -> (usize, usize, f64) {
        let mut outside = 0;
        let mut worst = f64::MIN;
        for t in &self.txs {
            let over = t.clock_error_ms.abs() - t.epsilon_ms;
            worst = worst.max(over);
            if over > 0.0 {
                outside += 1;
            }
        }
        (outside, self.txs.len(), worst)
    }

    /// The run in a few lines: the regions, the transactions, the waits, and the checker.
    pub fn report(&self) -> String {
        let c = &self.config;
        let mut s = String::new();
        let drifts = c.drifts();
        let _ = writeln!(
            s,
            "Regions: {}; TrueTime drift bound {} ppm; sync every {} s; commit wait {}",
            REGIONS
                .iter()
                .zip(drifts)
                .map(|(r, d)| format!("{r} ({d:+} ppm)"))
                .collect::<Vec<_>>()
                .join(", "),
            c.assumed_drift_ppm,
            c.sync_every_s,
            if c.commit_wait { "on" } else { "off" }
        );
        let done: Vec<&TxRecord> = self
            .txs
            .iter()
            .filter(|t| t.tx.end_ms.is_finite())
            .collect();
        let writes = done
            .iter()
            .filter(|t| matches!(t.tx.action, TxAction::Write { .. }))
            .count();
        let mean = |f: &dyn Fn(&TxRecord) -> f64| {
            if done.is_empty() {
                0.0
            } else {
                done.iter().map(|t| f(t)).sum::<f64>() / done.len() as f64
            }
        };
        let (outside, readings, worst) = self.intervals_honest();
        let _ = writeln!(
            s,
            "Transactions: {} ({writes} writes, {} reads); mean wait {:.3} ms; mean ε {:.3} ms",
            done.len(),
            done.len() - writes,
            mean(&|t| t.waited_ms),
            mean(&|t| t.epsilon_ms)
        );
        let _ = writeln!(
            s,
            "TrueTime intervals missing true time: {outside} of {readings} (worst: clock error {} ε by {:.3} ms)",
            if worst > 0.0 { "beyond" } else { "within" },
            worst.abs()
        );
        let r = self.check();
        let history = self.history();
        if r.holds() {
            s.push_str("CHECK: externally consistent: every transaction that started after another ended has a larger timestamp, and every read saw the latest write at its snapshot.\n");
        } else {
            let _ = writeln!(
                s,
                "CHECK: VIOLATED: {} transactions ordered against real time, {} stale reads.",
                r.order.len(),
                r.stale_reads.len()
            );
            if let Some(v) = r.order.first() {
                let (e, l) = (&history[v.earlier], &history[v.later]);
                let _ = writeln!(
                    s,
                    "  e.g. a transaction started {:.3} ms after another ended, yet its timestamp is {:.3} ms lower ({:.3} vs {:.3} ms)",
                    l.start_ms - e.end_ms,
                    v.by_ms,
                    l.ts_ms,
                    e.ts_ms
                );
            }
        }
        s
    }
}

/// The seed's single write: a region whose clock reads `local_ms`, last synchronised
/// `since_sync_ms` earlier with an error bound of `base_ms`, assuming a drift bound of
/// `drift_bound_ppm`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SingleWrite {
    /// The region's clock when the write commits, ms.
    pub local_ms: f64,
    /// Local time since its last synchronisation, ms.
    pub since_sync_ms: f64,
    /// The last synchronisation's error bound, ms.
    pub base_ms: f64,
    /// The assumed drift bound, ppm.
    pub drift_bound_ppm: f64,
}

impl Default for SingleWrite {
    /// The seed's numbers: the clock reads 102.5 ms, 10 s after a sync good to 0.5 ms, with
    /// Spanner's 200 ppm bound, so ε = 0.5 + 200 ppm × 10 s = 2.5 ms: `[100 ms, 105 ms]`.
    fn default() -> Self {
        SingleWrite {
            local_ms: 102.5,
            since_sync_ms: 10_000.0,
            base_ms: 0.5,
            drift_bound_ppm: 200.0,
        }
    }
}

/// A time in ms as the seed prints it: to 10 µs, no trailing zeros.
pub fn fmt_ms(v: f64) -> String {
    let s = format!("{:.2}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}ms")
}

impl SingleWrite {
    /// The seed's lines for one write: TrueTime's interval (the seed calls its *width*
    /// "Epsilon"; Spanner's ε is half of it), the commit timestamp, the commit wait, the
    /// commit.
    pub fn story(&self) -> Result<Vec<String>, crate::clocks::truetime::TrueTimeError> {
        let tt = TrueTime::new(
            self.base_ms,
            self.drift_bound_ppm * 1e-6,
            self.local_ms - self.since_sync_ms,
        )?;
        let iv = tt.now(self.local_ms);
        let s = tt.commit_timestamp(self.local_ms);
        let wait = tt.commit_wait(s, self.local_ms);
        debug_assert!(tt.after(s, self.local_ms + wait + 1e-9));
        Ok(vec![
            format!(
                "[TrueTime] Now: [{}, {}] (Epsilon: {})",
                fmt_ms(iv.earliest),
                fmt_ms(iv.latest),
                fmt_ms(iv.latest - iv.earliest)
            ),
            format!("[Spanner] Assigned Commit Timestamp: {}", fmt_ms(s)),
            format!(
                "[Spanner] WAIT: Sleeping for {} to ensure safety...",
                fmt_ms(wait)
            ),
            "[Spanner] COMMIT SUCCESS.".to_owned(),
        ])
    }
}
