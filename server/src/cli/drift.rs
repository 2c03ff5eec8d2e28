//! `chronoscope drift` — the clock drift lab, headless: runs [`chronoscope::labs::drift`] and
//! prints every clock, the skew and an explanation of each sync event, as a table, CSV or
//! JSON.

use std::{fmt::Write as _, process::ExitCode, time::Duration};

use chronoscope::{
    clocks::physical_clock::AdjustPolicy,
    labs::drift::{
        node_name,
        params::{parse_jump, parse_latency, parse_link, parse_node},
        DriftConfig, DriftLab, JumpAt, LabEvent, LinkLatency, NodeStats, Snapshot, SyncAlgorithm,
    },
    sim::{Latency, SimTime},
    NodeId,
};
use clap::{Args, ValueEnum};

use super::units::{parse_duration, parse_signed_ppm};
use serde::Serialize;

/// Options of `chronoscope drift`.
#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Number of nodes (2–64).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Drift spread: node drifts are evenly spaced over ±half of it, so the fastest and the
    /// slowest clock differ by exactly this rate (e.g. `50ppm`).
    #[arg(long, default_value = "50ppm", value_parser = parse_ppm)]
    drift_rate: f64,
    /// Synchronization algorithm.
    #[arg(long, value_enum, default_value_t = SyncArg::Berkeley)]
    sync: SyncArg,
    /// Sync interval (NTP: the minimum poll interval), e.g. `20` or `20s`.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    interval: Duration,
    /// One-way latency: `10ms` (constant), `5-15ms` (uniform) or `10±3ms` / `10+-3ms` (normal).
    #[arg(long, default_value = "5-15ms", value_parser = parse_latency)]
    latency: Latency,
    /// One directed link's one-way latency, overriding `--latency`: `FROM>TO=LATENCY`, e.g.
    /// `A>B=45ms` (replies from the server A to B are slow: an asymmetric path). Repeatable.
    #[arg(long, value_parser = parse_link)]
    link: Vec<LinkLatency>,
    /// How long to simulate, e.g. `60s`, `2h`, `1d`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Inject a clock jump: `NODE:DELTA@TIME`, e.g. `B:-2s@30s` (repeatable).
    #[arg(long, value_parser = parse_jump)]
    jump: Vec<JumpAt>,
    /// Byzantine nodes: a count (the last nodes lie) or names, e.g. `1` or `C,D`.
    #[arg(long, value_parser = parse_liars)]
    liars: Option<Liars>,
    /// How far a liar's answers are from the asker's clock, e.g. `500ms`.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    lie: Duration,
    /// How corrections are applied: slew (≤500 ppm, never backwards) or step.
    #[arg(long, value_enum, default_value_t = AdjustArg::Slew)]
    adjust: AdjustArg,
    /// How often to print every clock, e.g. `5s`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    sample_every: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SyncArg {
    None,
    Cristian,
    Berkeley,
    Ntp,
    FtAverage,
}

impl From<SyncArg> for SyncAlgorithm {
    fn from(s: SyncArg) -> Self {
        match s {
            SyncArg::None => SyncAlgorithm::None,
            SyncArg::Cristian => SyncAlgorithm::Cristian,
            SyncArg::Berkeley => SyncAlgorithm::Berkeley,
            SyncArg::Ntp => SyncAlgorithm::Ntp,
            SyncArg::FtAverage => SyncAlgorithm::FtAverage,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AdjustArg {
    Slew,
    Step,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Clone)]
enum Liars {
    Count(usize),
    Named(Vec<NodeId>),
}

fn parse_ppm(s: &str) -> Result<f64, String> {
    match parse_signed_ppm(s) {
        Ok(v) if (0.0..=2000.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "drift rate must be between 0 and 2000 ppm, got {s:?}"
        )),
    }
}

fn parse_liars(s: &str) -> Result<Liars, String> {
    if let Ok(n) = s.trim().parse::<usize>() {
        return Ok(Liars::Count(n));
    }
    s.split(',')
        .map(parse_node)
        .collect::<Result<_, _>>()
        .map(Liars::Named)
}

impl DriftArgs {
    fn config(&self) -> Result<DriftConfig, String> {
        let mut c = DriftConfig::new(self.nodes, self.drift_rate);
        c.sync = self.sync.into();
        c.interval = self.interval;
        c.latency = self.latency;
        c.links = self.link.clone();
        c.seed = self.seed;
        c.jumps = self.jump.clone();
        c.lie = self.lie.as_secs_f64();
        c.sample_every = self.sample_every;
        c.adjust = match self.adjust {
            AdjustArg::Slew => AdjustPolicy::SLEW,
            AdjustArg::Step => AdjustPolicy::Step,
        };
        c.liars = match &self.liars {
            None => Vec::new(),
            Some(Liars::Count(k)) if *k >= self.nodes => {
                return Err(format!(
                    "{k} liars leave no honest node among {}",
                    self.nodes
                ))
            }
            Some(Liars::Count(k)) => ((self.nodes - k) as NodeId..self.nodes as NodeId).collect(),
            Some(Liars::Named(v)) => v.clone(),
        };
        c.faults_tolerated = c.liars.len().max(1);
        Ok(c)
    }
}

/// Runs the lab and prints it. Bad options are reported in one line with a non-zero exit.
pub fn run(args: DriftArgs) -> ExitCode {
    match render(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The whole output of a run, in the requested format.
fn render(args: &DriftArgs) -> Result<String, String> {
    let config = args.config()?;
    let mut lab = DriftLab::new(config).map_err(|e| e.to_string())?;
    lab.run_until(SimTime::ZERO + args.duration);
    Ok(match args.format {
        Format::Table => table(args, &lab),
        Format::Csv => csv(&lab),
        Format::Json => json(&lab)?,
    })
}

fn latency_text(l: &Latency) -> String {
    let ms = |d: Duration| format!("{}", d.as_secs_f64() * 1e3);
    match *l {
        Latency::Constant(d) => format!("{}ms (constant)", ms(d)),
        Latency::Uniform { min, max } => format!("{}-{}ms (random)", ms(min), ms(max)),
        Latency::Normal { mean, std_dev } => format!("{}±{}ms (normal)", ms(mean), ms(std_dev)),
    }
}

fn snapshot_line(s: &Snapshot) -> String {
    let mut line = format!("[T={:.3}s]", s.at.as_secs_f64());
    for (i, v) in s.clocks.iter().enumerate() {
        let sep = if i == 0 { " " } else { " | " };
        let _ = write!(line, "{sep}Node {}: {v:.6}s", node_name(i as NodeId));
    }
    let _ = write!(line, " | Skew: {:.6}s", s.skew);
    line
}

fn table(args: &DriftArgs, lab: &DriftLab) -> String {
    let c = lab.config();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Simulating {} nodes with {}ppm drift (~{:.1} seconds/day), sync: {} every {}s, adjust: {}",
        c.clocks.len(),
        args.drift_rate,
        args.drift_rate * 1e-6 * 86_400.0,
        c.sync.name(),
        c.interval.as_secs_f64(),
        match c.adjust {
            AdjustPolicy::Step => "step",
            _ => "slew (≤500 ppm)",
        }
    );
    let _ = writeln!(out, "Network latency: {}", latency_text(&c.latency));
    for l in &c.links {
        let _ = writeln!(
            out,
            "Link {}→{}: {}",
            node_name(l.from),
            node_name(l.to),
            latency_text(&l.latency)
        );
    }
    if !c.liars.is_empty() {
        let names: Vec<String> = c.liars.iter().map(|&l| node_name(l)).collect();
        let _ = writeln!(
            out,
            "Liars (two-faced, ±{:.3}s): {}",
            c.lie,
            names.join(", ")
        );
    }
    // Snapshots and events merged in time order; at equal times events come first.
    let (mut si, mut ei) = (0, 0);
    let (snaps, events) = (lab.snapshots(), lab.events());
    let mut last_event_line: Option<SimTime> = None;
    while si < snaps.len() || ei < events.len() {
        let take_event = ei < events.len() && (si >= snaps.len() || events[ei].at <= snaps[si].at);
        if take_event {
            let e: &LabEvent = &events[ei];
            let mut lines = e.describe().into_iter();
            if let Some(first) = lines.next() {
                if last_event_line == Some(e.at) || first.starts_with("- ") {
                    let _ = writeln!(out, "[T={:.3}s]   {first}", e.at.as_secs_f64());
                } else {
                    let _ = writeln!(out, "[T={:.3}s] {first}", e.at.as_secs_f64());
                }
            }
            for l in lines {
                let _ = writeln!(out, "             {l}");
            }
            last_event_line = Some(e.at);
            ei += 1;
        } else {
            let _ = writeln!(out, "{}", snapshot_line(&snaps[si]));
            si += 1;
        }
    }
    let s = lab.summary();
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", chrony_table(&lab.node_stats()));
    let _ = writeln!(
        out,
        "Max skew {:.3} ms (after the first sync: {:.3} ms), final skew {:.3} ms, backward steps {}, {} events, {} messages",
        s.max_skew * 1e3,
        s.max_skew_after_first_sync * 1e3,
        s.final_skew * 1e3,
        s.backward_steps,
        s.events,
        s.messages
    );
    out
}

fn opt(v: Option<f64>, scale: f64, unit: &str) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{:.3}{unit}", v * scale))
}

/// One row per node, in the spirit of `chronyc sourcestats`.
fn chrony_table(stats: &[NodeStats]) -> String {
    let mut out = format!(
        "{:<5} {:>12} {:>12} {:>11} {:>11} {:>11} {:>9} {:>9} {:>8} {:>12} {:>5} {:>5} {:>9} {:>16} {:>4}\n",
        "Node",
        "Offset",
        "Last corr",
        "RMS corr",
        "Freq est",
        "Freq true",
        "RTT",
        "Disp",
        "Poll",
        "Status",
        "Syncs",
        "Back",
        "TT ε",
        "HLC (l.c)",
        "TT✗"
    );
    for (i, s) in stats.iter().enumerate() {
        let status = s.status().unwrap_or("-");
        let _ = writeln!(
            out,
            "{:<5} {:>12} {:>12} {:>11} {:>11} {:>11} {:>9} {:>9} {:>8} {:>12} {:>5} {:>5} {:>9} {:>16} {:>4}",
            node_name(i as NodeId),
            format!("{:+.3}ms", s.offset * 1e3),
            opt(s.last_correction, 1e3, "ms"),
            format!("{:.3}ms", s.rms_correction * 1e3),
            opt(s.frequency_ppm, 1.0, "ppm"),
            format!("{:+.3}ppm", s.true_frequency_ppm),
            opt(s.rtt, 1e3, "ms"),
            opt(s.dispersion, 1e3, "ms"),
            if s.poll > 0.0 {
                format!("{:.0}s", s.poll)
            } else {
                "-".into()
            },
            status,
            s.syncs,
            s.backward_steps,
            format!("{:.3}ms", s.epsilon_ms),
            s.hlc.map_or_else(|| "-".into(), |h| h.to_string()),
            s.truetime_misses
        );
    }
    out
}

fn csv(lab: &DriftLab) -> String {
    let n = lab.len();
    let mut out = String::from("t");
    for i in 0..n {
        let name = node_name(i as NodeId);
        let _ = write!(out, ",{name}_clock,{name}_offset,{name}_epsilon_ms");
    }
    out.push_str(",skew\n");
    for s in lab.snapshots() {
        let _ = write!(out, "{:.9}", s.at.as_secs_f64());
        for ((c, o), e) in s.clocks.iter().zip(&s.offsets).zip(&s.epsilon_ms) {
            let _ = write!(out, ",{c:.9},{o:.9},{e:.6}");
        }
        let _ = writeln!(out, ",{:.9}", s.skew);
    }
    out
}

#[derive(Serialize)]
struct JsonRun<'a> {
    config: &'a DriftConfig,
    summary: chronoscope::labs::drift::Summary,
    nodes: Vec<NodeStats>,
    snapshots: &'a [Snapshot],
    events: Vec<JsonEvent<'a>>,
}

#[derive(Serialize)]
struct JsonEvent<'a> {
    #[serde(flatten)]
    event: &'a LabEvent,
    text: Vec<String>,
}

fn json(lab: &DriftLab) -> Result<String, String> {
    let run = JsonRun {
        config: lab.config(),
        summary: lab.summary(),
        nodes: lab.node_stats(),
        snapshots: lab.snapshots(),
        events: lab
            .events()
            .iter()
            .map(|e| JsonEvent {
                event: e,
                text: e.describe(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&run)
        .map(|s| s + "\n")
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers_accept_the_documented_forms() {
        assert_eq!(parse_ppm("50ppm"), Ok(50.0));
        assert_eq!(parse_duration("20"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(
            parse_latency("5-15ms"),
            Ok(Latency::Uniform {
                min: Duration::from_millis(5),
                max: Duration::from_millis(15)
            })
        );
        assert_eq!(
            parse_latency("10ms"),
            Ok(Latency::Constant(Duration::from_millis(10)))
        );
        assert_eq!(
            parse_latency("10±3ms"),
            Ok(Latency::Normal {
                mean: Duration::from_millis(10),
                std_dev: Duration::from_millis(3)
            })
        );
        let j = parse_jump("B:-2s@30s").unwrap();
        assert_eq!((j.node, j.delta, j.at), (1, -2.0, SimTime::from_secs(30)));
        assert!(matches!(parse_liars("C,D"), Ok(Liars::Named(v)) if v == vec![2, 3]));
        assert!(parse_latency("15-5ms").is_err());
        assert!(parse_duration("-3s").is_err());
        assert!(parse_jump("B-2s").is_err());
        assert!(parse_ppm("fast").is_err());
    }
}
