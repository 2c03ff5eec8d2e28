//! `chronoscope kv` — the Dynamo-style store: `kv serve` runs it over HTTP
//! ([`crate::services::kv`]); `kv scenario NAME` prints a scripted scenario (the seed's
//! example, the Dynamo walkthrough, the pitfalls, the sibling explosion) under both clocks;
//! `kv metadata` prints metadata bytes per key as clients grow.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use chronoscope::labs::kv::{metadata_table, run as run_scenario, SCENARIOS};
use chronoscope::labs::{Cell, Verdict};
use chronoscope::replication::kv::Scheme;

use crate::services::kv::{serve, KvConfig, KvStore};
use crate::Shutdown;

/// `chronoscope kv …`.
#[derive(Debug, clap::Args)]
pub struct KvArgs {
    #[command(subcommand)]
    command: KvCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KvCommand {
    /// Serve the store over HTTP (`/kv/nodes/{n}/keys/{key}`, `/kv/links/{from}/{to}`).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7300")]
        addr: SocketAddr,
        /// Number of nodes.
        #[arg(long, default_value_t = 3)]
        nodes: u32,
        /// `dvv` (dotted version vector sets) or `vv` (one version vector per object).
        #[arg(long, default_value = "dvv")]
        clock: String,
        /// Replicas per key, placed on a consistent-hash ring (default: every node).
        #[arg(long)]
        replicas: Option<usize>,
        /// Virtual nodes per node on the ring.
        #[arg(long, default_value_t = 64)]
        vnodes: u32,
        /// Initial one-way delay of every link.
        #[arg(long, default_value = "50ms")]
        delay: String,
        /// Keep each node's state here (loaded on start).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print a scripted scenario: seed, dynamo, pitfall1..4, explosion.
    Scenario {
        /// The scenario.
        name: String,
        /// `dvv`, `vv` or `both`.
        #[arg(long, default_value = "both")]
        clock: String,
    },
    /// Metadata bytes per key for 2..64 clients, DVV against version vectors.
    Metadata {
        /// Seed of the workload.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn scheme(s: &str) -> Result<Scheme, String> {
    Scheme::parse(s).ok_or_else(|| format!("--clock must be dvv or vv, got {s:?}"))
}

/// Runs `chronoscope kv`.
pub fn run(args: KvArgs) -> ExitCode {
    match args.command {
        KvCommand::Serve {
            addr,
            nodes,
            clock,
            replicas,
            vnodes,
            delay,
            data_dir,
        } => {
            let config = scheme(&clock).and_then(|scheme| {
                Ok(KvConfig {
                    nodes,
                    scheme,
                    replicas: replicas.unwrap_or(nodes as usize),
                    vnodes,
                    delay: chronoscope::labs::params::parse_duration(&delay)
                        .map_err(|e| format!("--delay: {e}"))?,
                    data_dir,
                })
            });
            match config {
                Ok(c) => serve_blocking(addr, c),
                Err(e) => fail(e),
            }
        }
        KvCommand::Scenario { name, clock } => {
            let schemes = match clock.as_str() {
                "both" => vec![Scheme::Dvv, Scheme::Vv],
                s => match scheme(s) {
                    Ok(s) => vec![s],
                    Err(e) => return fail(e),
                },
            };
            let mut ok = true;
            for s in schemes {
                let Some(t) = run_scenario(&name, s) else {
                    let names: Vec<&str> = SCENARIOS.iter().map(|(n, _)| *n).collect();
                    return fail(format!(
                        "no scenario {name:?}; expected one of {}",
                        names.join(", ")
                    ));
                };
                println!("## {} under {}", t.name, s.name());
                for l in &t.lines {
                    println!("{l}");
                }
                for c in &t.claims {
                    ok &= c.verdict != Verdict::Fails;
                    println!("- [{}] {} — {}", c.verdict.key(), c.claim, c.evidence);
                }
                println!();
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        KvCommand::Metadata { seed } => {
            let t = metadata_table(seed);
            println!("| {} |", t.columns.join(" | "));
            println!("|{}", "---|".repeat(t.columns.len()));
            for row in &t.rows {
                let cells: Vec<String> = row
                    .iter()
                    .map(|c| match c {
                        Cell::Int(v) => v.to_string(),
                        Cell::Num(v) => format!("{v:.1}"),
                        Cell::Text(s) => s.clone(),
                        Cell::Empty => String::new(),
                    })
                    .collect();
                println!("| {} |", cells.join(" | "));
            }
            ExitCode::SUCCESS
        }
    }
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

fn serve_blocking(addr: SocketAddr, config: KvConfig) -> ExitCode {
    super::init_logging();
    let store = match KvStore::open(config) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => return fail(format!("cannot listen on {addr}: {e}")),
        };
        let c = store.config();
        tracing::info!(
            "kv store on http://{} — {} nodes, {} clocks, {} replicas per key",
            listener.local_addr().map_or(addr, |a| a),
            c.nodes,
            c.scheme.name(),
            c.replicas
        );
        let shutdown = Shutdown::new();
        let sd = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            sd.trigger();
        });
        match serve(listener, store, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        }
    })
}
