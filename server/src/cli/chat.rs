//! `chronoscope chat` — the Lamport chat as a seeded simulation: each member's output in the
//! seed's format (`[PENDING] (2, B): Hello Alice` … `[DISPLAY] (1, A): Hi`), then the four
//! delivery orders side by side and the claims checked against the run.

use std::process::ExitCode;

use chronoscope::labs::chat::{ChatConfig, ChatLab, Departure, Status, SCENARIOS};
use chronoscope::labs::Lab;

/// Flags of `chronoscope chat`.
#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// `pizza` (the seed's example and its chat race) or `random`.
    #[arg(long, default_value = "pizza")]
    pub scenario: String,
    /// Link delays, `FROM>TO=TIME`, comma-separated or repeated (`--delay B>C=2s`). The pizza
    /// scenario starts with `A>C=2s`; naming a link replaces its delay.
    #[arg(long)]
    pub delay: Vec<String>,
    /// Every other link's one-way delay (default 100ms).
    #[arg(long)]
    pub link: Option<String>,
    /// Extra random delay per frame up to this much (frames may overtake on a link).
    #[arg(long)]
    pub jitter: Option<String>,
    /// Members of a random chat.
    #[arg(long, default_value_t = 3)]
    pub members: usize,
    /// Messages per member in a random chat.
    #[arg(long, default_value_t = 4)]
    pub messages: u32,
    /// Members leaving with a Leave frame, `MEMBER@TIME` (`C@3s`).
    #[arg(long)]
    pub leave: Vec<String>,
    /// Members whose tab closes, `MEMBER@TIME`; the relay announces them after `--detect`.
    #[arg(long)]
    pub vanish: Vec<String>,
    /// How long the relay takes to announce a closed tab.
    #[arg(long, default_value = "500ms")]
    pub detect: String,
    /// Print only this member's output (default: every member's).
    #[arg(long)]
    pub node: Option<String>,
    /// Add to each PENDING line whom it waits for (`# waiting for A`).
    #[arg(long)]
    pub why: bool,
    /// Seed of the random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn ms(text: &str) -> Result<f64, String> {
    chronoscope::labs::params::parse_seconds(text).map(|s| s * 1000.0)
}

fn config(args: &ChatArgs) -> Result<ChatConfig, String> {
    let mut c = ChatConfig::scenario(&args.scenario, args.members, args.messages, args.seed)
        .ok_or_else(|| {
            let names: Vec<&str> = SCENARIOS.iter().map(|(k, _)| *k).collect();
            format!(
                "no scenario {:?}; expected one of {}",
                args.scenario,
                names.join(", ")
            )
        })?;
    if let Some(l) = &args.link {
        c.link_ms = ms(l)?;
    }
    if let Some(j) = &args.jitter {
        c.jitter_ms = ms(j)?;
    }
    c.detect_ms = ms(&args.detect)?;
    for d in &args.delay {
        c.set_delays(d).map_err(|e| e.to_string())?;
    }
    for d in &args.leave {
        c.add_departures(d, Departure::Leave)
            .map_err(|e| e.to_string())?;
    }
    for d in &args.vanish {
        c.add_departures(d, Departure::Vanish)
            .map_err(|e| e.to_string())?;
    }
    Ok(c)
}

/// Runs `chronoscope chat`.
pub fn run(args: ChatArgs) -> ExitCode {
    let lab = config(&args).and_then(|c| ChatLab::new(c).map_err(|e| e.to_string()));
    let mut lab = match lab {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let only = match args.node.as_deref().map(|n| lab.config().member(n)) {
        None => None,
        Some(Ok(i)) => Some(i),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    lab.run_to_end();
    print!("{}", report(&lab, only, args.why));
    if lab
        .claims()
        .iter()
        .any(|c| c.verdict == chronoscope::labs::Verdict::Fails)
    {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The whole printout: the script, each member's output, the orders, the claims.
pub fn report(lab: &ChatLab, only: Option<usize>, why: bool) -> String {
    let mut out = String::new();
    let names = lab.names();
    let c = lab.config();
    let mut links: Vec<String> = c
        .delays
        .iter()
        .map(|d| format!("{}>{} {} ms", names[d.from], names[d.to], d.ms))
        .collect();
    links.insert(0, format!("every link {} ms", c.link_ms));
    if c.jitter_ms > 0.0 {
        links.push(format!("jitter up to {} ms", c.jitter_ms));
    }
    out.push_str(&format!("# Links: {}\n", links.join(", ")));
    for s in lab.sent() {
        out.push_str(&format!(
            "# Node {} sends {:?} (TS: {}, Node: {}) at {:.0} ms\n",
            names[s.message.ts.node as usize],
            s.message.text,
            s.message.ts.time,
            names[s.message.ts.node as usize],
            s.at_ms
        ));
    }
    for d in &c.departures {
        let how = match d.how {
            Departure::Leave => "leaves (Leave frame)",
            Departure::Vanish => "closes its tab (the relay announces it)",
        };
        out.push_str(&format!(
            "# Node {} {how} at {:.0} ms\n",
            names[d.who], d.at_ms
        ));
    }
    for i in (0..names.len()).filter(|&i| only.is_none_or(|o| o == i)) {
        out.push_str(&format!("# Node {} output:\n", names[i]));
        for line in lab.output(i) {
            out.push_str(&line.to_string());
            if why && line.status == Status::Pending && !line.waiting_for.is_empty() {
                out.push_str(&format!("   # waiting for {}", line.waiting_for.join(", ")));
            }
            out.push('\n');
        }
        if lab.is_gone(i) {
            out.push_str(&format!("# Node {} left; its view ends here\n", names[i]));
            continue;
        }
        for (m, waiting) in lab.pending(i) {
            out.push_str(&format!(
                "# still pending at the end: ({}, {}): {} — waiting for {}\n",
                m.ts.time,
                names[m.ts.node as usize],
                m.text,
                waiting.join(", ")
            ));
        }
    }
    out.push_str("\n# Orders side by side\n");
    out.push_str(
        "| node | # | arrival | FIFO | causal | total order |\n|---|---|---|---|---|---|\n",
    );
    let t = lab.orders_table();
    for row in &t.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|c| match c {
                chronoscope::labs::Cell::Text(s) => s.clone(),
                chronoscope::labs::Cell::Int(v) => v.to_string(),
                _ => String::new(),
            })
            .collect();
        if only.is_some_and(|o| cells[0] != names[o]) {
            continue;
        }
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out.push_str("\n# Claims\n");
    for claim in lab.claims() {
        out.push_str(&format!(
            "- [{}] {} — {}\n",
            claim.verdict.key(),
            claim.claim,
            claim.evidence
        ));
    }
    out
}
