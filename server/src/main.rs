//! `chronoscope` — serve the lab, or run the labs headless.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use chronoscope_server::{check_config, run, ServeConfig, Shutdown};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "chronoscope",
    version,
    about = "A laboratory for time in distributed systems"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the browser lab and the WebSocket relay.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Directory for the embedded database (created if missing).
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// The built front end (trunk's output).
        #[arg(long, default_value = "./dist")]
        dist: PathBuf,
    },
    /// The Lamport chat as a seeded simulation: PENDING until stable, then (time, node)
    /// order; arrival, FIFO and causal order beside it (`chat --scenario pizza`).
    Chat(chronoscope_server::cli::chat::ChatArgs),
    /// CRDT counters (G-Counter, PN-Counter) counting through a partition, merged on heal.
    Counter(chronoscope_server::cli::counter::CounterArgs),
    /// The Dynamo-style key-value store: `kv serve` (HTTP), `kv scenario NAME`, `kv metadata`.
    Kv(chronoscope_server::cli::kv::KvArgs),
    /// Run the clock drift lab headless: drifting clocks, a sync algorithm, the skew.
    Drift(chronoscope_server::cli::drift::DriftArgs),
    /// Run the Lamport clock lab's experiments (simulated, or in real time on loopback TCP).
    Lamport(chronoscope_server::cli::lamport::LamportArgs),
    /// Render a trace (JSON lines, ShiViz/GoVector, TSViz, OTLP or Jaeger JSON, our JSON) as
    /// Mermaid or SVG, or check its clocks.
    Trace(chronoscope_server::cli::trace::TraceArgs),
    /// NTP (RFC 5905) on UDP: `ntp serve` (a server with injected skew and drift) and
    /// `ntp query` (a client for several servers).
    Ntp(chronoscope_server::cli::ntp::NtpArgs),
    /// Hybrid logical clock timestamps from the system clock (`hlc now [--state FILE]`).
    Hlc(chronoscope_server::cli::hlc::HlcArgs),
    /// Leases with fencing tokens: a worker paused past its lease, and the storage's verdict.
    Lease(chronoscope_server::cli::lease::LeaseArgs),
    /// A distributed snapshot of a bank (Chandy–Lamport or Lai–Yang) and its conservation check.
    Snapshot(chronoscope_server::cli::snapshot::SnapshotArgs),
    /// TrueTime and commit wait: one write (`--write "Key=1, Val=A"`) or regions and clients
    /// judged by the external-consistency checker.
    Spanner(chronoscope_server::cli::spanner::SpannerArgs),
    /// Byzantine fault-tolerant clock synchronisation: n clocks, f of them lying, and the
    /// precision bound.
    Bft(chronoscope_server::cli::bft::BftArgs),
    /// The NTP-for-Raft proposal's TimeSyncService over gRPC: `timesync serve` runs a node
    /// that serves GetTime and keeps its clock in sync with its peers.
    Timesync(chronoscope_server::cli::timesync::TimesyncArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            addr,
            data_dir,
            dist,
        } => serve(
            addr,
            ServeConfig {
                dist,
                data_dir,
                keepalive: chronoscope_server::KEEPALIVE,
            },
        ),
        Command::Chat(args) => chronoscope_server::cli::chat::run(args),
        Command::Counter(args) => chronoscope_server::cli::counter::run(args),
        Command::Kv(args) => chronoscope_server::cli::kv::run(args),
        Command::Drift(args) => chronoscope_server::cli::drift::run(args),
        Command::Lamport(args) => chronoscope_server::cli::lamport::run(args),
        Command::Trace(args) => chronoscope_server::cli::trace::run(args),
        Command::Ntp(args) => chronoscope_server::cli::ntp::run(args),
        Command::Hlc(args) => chronoscope_server::cli::hlc::run(args),
        Command::Lease(args) => chronoscope_server::cli::lease::run(args),
        Command::Snapshot(args) => chronoscope_server::cli::snapshot::run(args),
        Command::Spanner(args) => chronoscope_server::cli::spanner::run(args),
        Command::Bft(args) => chronoscope_server::cli::bft::run(args),
        Command::Timesync(args) => chronoscope_server::cli::timesync::run(args),
    }
}

fn serve(addr: SocketAddr, config: ServeConfig) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .init();
    if let Err(e) = check_config(&config) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let local = listener.local_addr().unwrap_or(addr);
        println!("Chronoscope is running: open http://{local}/  (Ctrl-C to stop)");
        let shutdown = Shutdown::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C: shutting down");
                on_signal.trigger();
            }
        });
        match run(listener, config, shutdown).await {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
