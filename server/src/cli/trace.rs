//! `chronoscope trace` — read a trace (a ShiViz/GoVector log, or our JSON trace) and render it
//! as Mermaid or SVG, or check that its clocks are legal.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chronoscope::trace::{mermaid, shiviz, svg, validate, Trace};

/// Flags of `chronoscope trace`.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    #[command(subcommand)]
    command: TraceCommand,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Diagram {
    /// A `sequenceDiagram` (participants are nodes, arrows are messages).
    Sequence,
    /// The happens-before graph as a `flowchart`, one lane per node.
    Flowchart,
}

/// Which events to draw: long traces are drawn a window at a time.
#[derive(Debug, clap::Args)]
struct WindowArgs {
    /// First event to draw (0-based, recording order).
    #[arg(long, default_value_t = 0)]
    from: usize,
    /// How many events to draw.
    #[arg(long, default_value_t = 200)]
    count: usize,
}

#[derive(Debug, clap::Subcommand)]
enum TraceCommand {
    /// Print the trace as Mermaid text.
    Mermaid {
        /// A ShiViz/GoVector log, or a JSON trace.
        log: PathBuf,
        /// Which diagram.
        #[arg(long, value_enum, default_value_t = Diagram::Sequence)]
        diagram: Diagram,
        #[command(flatten)]
        window: WindowArgs,
    },
    /// Check the trace's clocks; explains every violation and exits with 1 if there is one.
    Check {
        /// A ShiViz/GoVector log, or a JSON trace.
        log: PathBuf,
    },
    /// Write our SVG space-time view (slanted message arrows).
    Svg {
        /// A ShiViz/GoVector log, or a JSON trace.
        log: PathBuf,
        /// Where to write the SVG (stdout if absent).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Width in pixels.
        #[arg(long, default_value_t = 1000.0)]
        width: f64,
        #[command(flatten)]
        window: WindowArgs,
    },
}

/// Reads a trace file: JSON when it starts with `{`, otherwise a ShiViz log.
pub fn load(path: &Path) -> Result<Trace, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.trim_start().starts_with('{') {
        serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a JSON trace: {e}", path.display()))
    } else {
        shiviz::import(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Runs `chronoscope trace`.
pub fn run(args: TraceArgs) -> ExitCode {
    let path = match &args.command {
        TraceCommand::Mermaid { log, .. }
        | TraceCommand::Check { log }
        | TraceCommand::Svg { log, .. } => log,
    };
    let trace = match load(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match args.command {
        TraceCommand::Mermaid {
            diagram, window, ..
        } => {
            let w = trace.window(window.from, window.count);
            let text = match diagram {
                Diagram::Sequence => mermaid::sequence_diagram(&trace, w),
                Diagram::Flowchart => mermaid::happens_before_flowchart(&trace, w),
            };
            print!("{text}");
            ExitCode::SUCCESS
        }
        TraceCommand::Check { .. } => {
            let violations = validate(&trace);
            if violations.is_empty() {
                println!(
                    "ok: {} events on {} nodes; every clock is legal",
                    trace.len(),
                    trace.nodes().len()
                );
                ExitCode::SUCCESS
            } else {
                for v in &violations {
                    println!("{v}");
                }
                println!(
                    "{} violation(s) in {} events",
                    violations.len(),
                    trace.len()
                );
                ExitCode::from(1)
            }
        }
        TraceCommand::Svg {
            out, width, window, ..
        } => {
            let text = svg::space_time_svg(&trace, trace.window(window.from, window.count), width);
            match out {
                None => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Some(p) => match std::fs::write(&p, text) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: cannot write {}: {e}", p.display());
                        ExitCode::FAILURE
                    }
                },
            }
        }
    }
}
