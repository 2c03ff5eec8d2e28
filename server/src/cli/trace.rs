//! `chronoscope trace` — read a trace in any format the importers know (JSON lines with vector
//! clocks, ShiViz/GoVector, TSViz, OpenTelemetry OTLP JSON, Jaeger JSON, our JSON trace) and
//! render it as Mermaid or SVG, or check that its clocks are legal.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chronoscope::trace::import::{self, Format, ImportOptions, Imported};
use chronoscope::trace::jsonl::{JsonLinesOptions, TimeUnit};
use chronoscope::trace::{mermaid, svg, validate};

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
    /// The happens-before graph as a `flowchart`, one lane per node, every edge.
    Flowchart,
    /// The happens-before `graph TD` with only the immediate edges (the transitive reduction).
    Graph,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    /// JSON lines with a vector clock per event.
    Jsonl,
    /// ShiViz or GoVector log.
    Shiviz,
    /// GoVector log (the same as shiviz).
    Govector,
    /// TSViz log: GoVector with Unix-nanosecond timestamps.
    Tsviz,
    /// OpenTelemetry OTLP JSON export.
    Otlp,
    /// Jaeger JSON.
    Jaeger,
    /// Chronoscope's own JSON trace.
    Json,
}

impl FormatArg {
    fn format(self) -> Format {
        match self {
            FormatArg::Jsonl => Format::JsonLines,
            FormatArg::Shiviz | FormatArg::Govector => Format::ShiViz,
            FormatArg::Tsviz => Format::TsViz,
            FormatArg::Otlp => Format::Otlp,
            FormatArg::Jaeger => Format::Jaeger,
            FormatArg::Json => Format::Json,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum UnitArg {
    S,
    Ms,
    Us,
    Ns,
}

/// How to read the log.
#[derive(Debug, clap::Args)]
struct InputArgs {
    /// The log's format (detected from its content when absent).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// JSON lines: the field naming the node (default: node, host or process).
    #[arg(long)]
    node_field: Option<String>,
    /// JSON lines: the field describing the event (default: event, msg or message).
    #[arg(long)]
    event_field: Option<String>,
    /// JSON lines: the field holding the vector clock, an array or a map (default: vc, clock
    /// or vector_clock).
    #[arg(long)]
    clock_field: Option<String>,
    /// JSON lines: the field holding a physical timestamp (default: time, timestamp or ts).
    #[arg(long)]
    time_field: Option<String>,
    /// JSON lines: the unit of numeric timestamps.
    #[arg(long, value_enum, default_value_t = UnitArg::Ms)]
    time_unit: UnitArg,
    /// Renumber each node's own clock 1, 2, 3, … (repairs clocks that start at 0 or 2 or skip
    /// values, as GoVector's appended logs do).
    #[arg(long)]
    renumber: bool,
}

impl InputArgs {
    fn options(&self) -> ImportOptions {
        ImportOptions {
            format: self.format.map(FormatArg::format),
            json_lines: JsonLinesOptions {
                node_field: self.node_field.clone(),
                event_field: self.event_field.clone(),
                clock_field: self.clock_field.clone(),
                time_field: self.time_field.clone(),
                time_unit: match self.time_unit {
                    UnitArg::S => TimeUnit::Seconds,
                    UnitArg::Ms => TimeUnit::Millis,
                    UnitArg::Us => TimeUnit::Micros,
                    UnitArg::Ns => TimeUnit::Nanos,
                },
            },
            renumber: self.renumber,
        }
    }
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
        /// The log (any supported format).
        log: PathBuf,
        /// Which diagram.
        #[arg(long, value_enum, default_value_t = Diagram::Sequence)]
        diagram: Diagram,
        #[command(flatten)]
        window: WindowArgs,
        #[command(flatten)]
        input: InputArgs,
    },
    /// Check the trace's clocks; explains every violation (and every skipped line) and exits
    /// with 1 if there is one.
    Check {
        /// The log (any supported format).
        log: PathBuf,
        #[command(flatten)]
        input: InputArgs,
    },
    /// Write our SVG space-time view (slanted message arrows).
    Svg {
        /// The log (any supported format).
        log: PathBuf,
        /// Where to write the SVG (stdout if absent).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Width in pixels.
        #[arg(long, default_value_t = 1000.0)]
        width: f64,
        #[command(flatten)]
        window: WindowArgs,
        #[command(flatten)]
        input: InputArgs,
    },
}

/// Reads a trace file in the format given or detected.
pub fn load(path: &Path, options: &ImportOptions) -> Result<Imported, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    import::import(&text, options).map_err(|e| format!("{}: {e}", path.display()))
}

/// What the import decided, as `note:` lines on stderr (stdout stays the diagram or the
/// verdict).
fn print_notes(imported: &Imported) {
    eprintln!(
        "note: read as {} ({})",
        imported.format,
        imported.format.describe()
    );
    for n in &imported.notes {
        eprintln!("note: {n}");
    }
}

/// Runs `chronoscope trace`.
pub fn run(args: TraceArgs) -> ExitCode {
    let (path, input) = match &args.command {
        TraceCommand::Mermaid { log, input, .. }
        | TraceCommand::Check { log, input }
        | TraceCommand::Svg { log, input, .. } => (log, input),
    };
    let options = input.options();
    let imported = match load(path, &options) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let trace = &imported.trace;
    match args.command {
        TraceCommand::Mermaid {
            diagram, window, ..
        } => {
            print_notes(&imported);
            for s in &imported.skipped {
                eprintln!("skipped {s}");
            }
            let w = trace.window(window.from, window.count);
            let text = match diagram {
                Diagram::Sequence => mermaid::sequence_diagram(trace, w),
                Diagram::Flowchart => mermaid::happens_before_flowchart(trace, w),
                Diagram::Graph => mermaid::happens_before_graph(trace, w),
            };
            print!("{text}");
            ExitCode::SUCCESS
        }
        TraceCommand::Check { .. } => {
            print_notes(&imported);
            let violations = validate(trace);
            if violations.is_empty() && imported.skipped.is_empty() {
                println!(
                    "ok: {} events on {} nodes; every clock is legal",
                    trace.len(),
                    trace.nodes().len()
                );
                return ExitCode::SUCCESS;
            }
            for s in &imported.skipped {
                println!("skipped {s}");
            }
            for v in &violations {
                println!("{}", v.describe(trace));
            }
            for h in import::hints(&imported, &violations, options.renumber) {
                println!("{h}");
            }
            println!(
                "{} violation(s) in {} events, {} line(s) skipped",
                violations.len(),
                trace.len(),
                imported.skipped.len()
            );
            ExitCode::from(1)
        }
        TraceCommand::Svg {
            out, width, window, ..
        } => {
            print_notes(&imported);
            for s in &imported.skipped {
                eprintln!("skipped {s}");
            }
            let text = svg::space_time_svg(trace, trace.window(window.from, window.count), width);
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
