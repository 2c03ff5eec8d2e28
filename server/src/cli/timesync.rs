//! `chronoscope timesync serve` — one node of the NTP-for-Raft proposal's time service: it
//! serves `TimeSyncService.GetTime` over gRPC and keeps its own clock in sync with its peers.
//! The algorithm is [`chronoscope::sync::timesync`]; the sockets are
//! [`crate::services::timesync`]. This file parses flags and prints the `sources`/`tracking`
//! tables.

use std::{fmt::Write as _, net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use chronoscope::sync::timesync::TimeSyncConfig;
use clap::{Args, Subcommand};

use super::units::parse_duration;
use crate::{
    services::metrics,
    services::timesync::{
        auth::NodeKeys,
        cluster::{node_id, Cluster},
        NodeOptions, NodeStatus, Security, Simulation, TimeSyncNode, TlsFiles, TrueTime,
    },
    Shutdown,
};

/// `chronoscope timesync …`.
#[derive(Debug, Args)]
pub struct TimesyncArgs {
    #[command(subcommand)]
    command: TimesyncCommand,
}

#[derive(Debug, Subcommand)]
enum TimesyncCommand {
    /// Run one node: serve TimeSyncService.GetTime and sync with the peers.
    Serve(ServeArgs),
    /// Run N nodes on loopback in one process, printing each one's `sources` table and
    /// `tracking` line every few seconds.
    Cluster(ClusterArgs),
}

/// Options of `chronoscope timesync cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// How many nodes (2–26; ids A, B, C, …).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(2..=26))]
    nodes: u8,
    /// Initial skews, milliseconds, per node: `A=+120,B=-80`.
    #[arg(long, value_parser = parse_per_node, default_value = "", allow_hyphen_values = true)]
    simulate_skew: PerNode,
    /// Drifts, milliseconds per second, per node: `C=0.1`.
    #[arg(long, value_parser = parse_per_node, default_value = "", allow_hyphen_values = true)]
    simulate_drift: PerNode,
    /// Random read variation, ± milliseconds, per node: `D=2`.
    #[arg(long, value_parser = parse_per_node, default_value = "")]
    random_variation: PerNode,
    /// Nodes that serve shifted times, milliseconds: `E=+300` (falsetickers).
    #[arg(long, value_parser = parse_per_node, default_value = "", allow_hyphen_values = true)]
    lie: PerNode,
    /// The configuration as TOML (default: the proposal's, with `sync_interval = 2`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// How long to run, e.g. `60s`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Print the tables this often.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    report: Duration,
    /// Seed of the read variation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Authenticate every RPC with per-node keys (made up for this run).
    #[arg(long)]
    auth: bool,
    /// Serve every node's metrics (labelled `node`) at `http://ADDR/metrics`, Prometheus
    /// text format.
    #[arg(long)]
    metrics: Option<SocketAddr>,
}

/// A per-node list of numbers, `A=+120,B=-80`.
#[derive(Debug, Clone, Default)]
struct PerNode(Vec<(String, f64)>);

fn parse_per_node(s: &str) -> Result<PerNode, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, v) = part
            .split_once('=')
            .ok_or_else(|| format!("expected ID=NUMBER, got {part:?}"))?;
        let v: f64 = v
            .trim()
            .trim_end_matches("ms")
            .parse()
            .map_err(|_| format!("{id}: expected a number, got {v:?}"))?;
        out.push((id.trim().to_owned(), v));
    }
    Ok(PerNode(out))
}

/// Options of `chronoscope timesync serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// This node's id (how its peers name it).
    #[arg(long)]
    id: String,
    /// gRPC address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:7101")]
    addr: SocketAddr,
    /// Peers as ID=HOST:PORT, comma-separated, e.g. `B=127.0.0.1:7102,C=127.0.0.1:7103`.
    #[arg(long, value_parser = parse_peers, default_value = "")]
    peers: Peers,
    /// The proposal's TIME_SYNC_CONFIG as TOML (sync_interval, min_peers, max_peers, timeout,
    /// drift_threshold, adjustment_rate, history_size, step_threshold; seconds).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Initial clock skew, milliseconds (e.g. 120 or -80).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    simulate_skew: f64,
    /// Clock drift, milliseconds per second (0.1 is 100 ppm).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    simulate_drift: f64,
    /// Random variation of every clock read, ± milliseconds.
    #[arg(long, default_value_t = 0.0)]
    random_variation: f64,
    /// Serve times shifted by this many milliseconds (a lying node, for demonstrations; its
    /// own clock stays honest).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    lie: f64,
    /// Seed of the random variation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the `sources` table and the `tracking` line this often (`0s`: never).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    report: Duration,
    /// The cluster's per-node keys (`ID HEX:<secret>` lines): every request then carries a
    /// token minted with this node's key, and requests without a valid one are refused with
    /// UNAUTHENTICATED.
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Mutual TLS: present `--tls-cert`/`--tls-key`, accept only peers whose certificate the
    /// `--tls-ca` signed.
    #[arg(long, requires_all = ["tls_ca", "tls_cert", "tls_key"])]
    tls: bool,
    /// The cluster's CA certificate (PEM).
    #[arg(long, requires = "tls")]
    tls_ca: Option<PathBuf>,
    /// This node's certificate (PEM).
    #[arg(long, requires = "tls")]
    tls_cert: Option<PathBuf>,
    /// This node's private key (PEM).
    #[arg(long, requires = "tls")]
    tls_key: Option<PathBuf>,
    /// The name the peers' certificates must carry.
    #[arg(long, default_value = "localhost")]
    tls_domain: String,
    /// Serve this node's metrics at `http://ADDR/metrics` (offset, RTT, error bound, drift
    /// estimate, sync and authentication counts, peer reachability), Prometheus text format.
    #[arg(long)]
    metrics: Option<SocketAddr>,
}

/// `--keys` and `--tls*` into a [`Security`].
fn security(args: &ServeArgs) -> Result<Security, String> {
    let keys = args.keys.as_deref().map(NodeKeys::load).transpose()?;
    let read = |p: &Option<PathBuf>| -> Result<Vec<u8>, String> {
        let p = p
            .as_deref()
            .ok_or("--tls needs --tls-ca, --tls-cert and --tls-key")?;
        std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let tls = if args.tls {
        Some(TlsFiles {
            ca: read(&args.tls_ca)?,
            cert: read(&args.tls_cert)?,
            key: read(&args.tls_key)?,
            domain: args.tls_domain.clone(),
        })
    } else {
        None
    };
    Ok(Security { keys, tls })
}

/// `--peers`.
#[derive(Debug, Clone, Default)]
struct Peers(Vec<(String, SocketAddr)>);

fn parse_peers(s: &str) -> Result<Peers, String> {
    let mut peers = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| format!("expected ID=HOST:PORT, got {part:?}"))?;
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("peer {id}: expected an IP address and port, got {addr:?}"))?;
        peers.push((id.trim().to_owned(), addr));
    }
    Ok(Peers(peers))
}

/// Checks the simulation flags: finite, within reason.
fn simulation(skew: f64, drift: f64, variation: f64) -> Result<Simulation, String> {
    let check = |name: &str, v: f64, max: f64| {
        if v.is_finite() && v.abs() <= max {
            Ok(v)
        } else {
            Err(format!("{name} must be within ±{max}, got {v}"))
        }
    };
    Ok(Simulation {
        skew_ms: check("--simulate-skew (ms)", skew, 86_400_000.0)?,
        drift_ms_per_s: check("--simulate-drift (ms/s)", drift, 100.0)?,
        variation_ms: check("--random-variation (ms)", variation, 10_000.0)?.abs(),
    })
}

/// Reads a `timesync.toml`: any of the configuration's fields, the rest default.
pub fn load_config(path: &std::path::Path) -> Result<TimeSyncConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let config: TimeSyncConfig =
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
    config
        .validate()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(config)
}

/// Runs `chronoscope timesync …`.
pub fn run(args: TimesyncArgs) -> ExitCode {
    let result = match args.command {
        TimesyncCommand::Serve(a) => serve(a),
        TimesyncCommand::Cluster(a) => cluster(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    crate::cli::init_logging();
    let config = match &args.config {
        Some(p) => load_config(p)?,
        None => TimeSyncConfig::default(),
    };
    if args.peers.0.len() < config.min_peers {
        tracing::warn!(
            "{} peers given but min_peers is {}: the node will never trust a result",
            args.peers.0.len(),
            config.min_peers
        );
    }
    let lie = args.lie;
    if !(lie.is_finite() && lie.abs() <= 86_400_000.0) {
        return Err(format!("--lie must be within ±1 day in ms, got {lie}"));
    }
    let node = TimeSyncNode::new(NodeOptions {
        id: args.id.clone(),
        config,
        peers: args.peers.0.clone(),
        simulation: simulation(
            args.simulate_skew,
            args.simulate_drift,
            args.random_variation,
        )?,
        seed: args.seed,
        truth: TrueTime::from_host(),
        security: security(&args)?,
    })
    .map_err(|e| e.to_string())?;
    node.set_lie(lie / 1e3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|e| format!("cannot listen on tcp {}: {e}", args.addr))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let peers: Vec<&str> = args.peers.0.iter().map(|(id, _)| id.as_str()).collect();
        println!(
            "timesync node {} serving TimeSyncService on {local}; peers: {}",
            args.id,
            if peers.is_empty() {
                "none".to_owned()
            } else {
                peers.join(", ")
            }
        );
        let shutdown = Shutdown::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_signal.trigger();
            }
        });
        if let Some(addr) = args.metrics {
            serve_metrics(addr, metrics::nodes_registry(vec![node.clone()]), &shutdown).await?;
        }
        if !args.report.is_zero() {
            let node = node.clone();
            let shutdown = shutdown.clone();
            let every = args.report;
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = shutdown.fired() => break,
                        () = tokio::time::sleep(every) => {}
                    }
                    print!("{}", report(&node.status()));
                }
            });
        }
        node.run(listener, shutdown)
            .await
            .map_err(|e| e.to_string())?;
        Ok(ExitCode::SUCCESS)
    })
}

fn cluster(args: ClusterArgs) -> Result<ExitCode, String> {
    crate::cli::init_logging();
    let config = match &args.config {
        Some(p) => load_config(p)?,
        None => TimeSyncConfig {
            sync_interval: 2.0,
            ..TimeSyncConfig::default()
        },
    };
    let n = usize::from(args.nodes);
    let ids: Vec<String> = (0..n).map(node_id).collect();
    let value = |list: &PerNode, flag: &str, id: &str| -> Result<f64, String> {
        for (who, _) in &list.0 {
            if !ids.contains(who) {
                return Err(format!(
                    "{flag}: no node {who:?} (the nodes are A to {})",
                    ids[n - 1]
                ));
            }
        }
        Ok(list
            .0
            .iter()
            .rev()
            .find(|(w, _)| w == id)
            .map_or(0.0, |(_, v)| *v))
    };
    let mut sims = Vec::with_capacity(n);
    let mut lies = Vec::with_capacity(n);
    for id in &ids {
        sims.push(simulation(
            value(&args.simulate_skew, "--simulate-skew", id)?,
            value(&args.simulate_drift, "--simulate-drift", id)?,
            value(&args.random_variation, "--random-variation", id)?,
        )?);
        let lie = value(&args.lie, "--lie", id)?;
        if !(lie.is_finite() && lie.abs() <= 86_400_000.0) {
            return Err(format!("--lie must be within ±1 day in ms, got {lie}"));
        }
        lies.push(lie / 1e3);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async move {
        let shutdown = Shutdown::new();
        let keys = args.auth.then(|| {
            let mut keys = NodeKeys::new();
            for id in &ids {
                keys.insert(id, rand::random::<[u8; 32]>().to_vec());
            }
            keys
        });
        let cluster =
            Cluster::start_secured(config, &sims, args.seed, shutdown.clone(), |_| Security {
                keys: keys.clone(),
                tls: None,
            })
            .await
            .map_err(|e| e.to_string())?;
        for (node, lie) in cluster.nodes().iter().zip(&lies) {
            node.set_lie(*lie);
        }
        let addrs: Vec<String> = ids
            .iter()
            .zip(cluster.addrs())
            .map(|(id, a)| format!("{id}={a}"))
            .collect();
        println!(
            "timesync cluster: {n} nodes on loopback gRPC ({}), sync every {} s, for {:.0} s{}",
            addrs.join(", "),
            config.sync_interval,
            args.duration.as_secs_f64(),
            if args.auth {
                ", every RPC authenticated"
            } else {
                ""
            }
        );
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_signal.trigger();
            }
        });
        if let Some(addr) = args.metrics {
            let registry = metrics::nodes_registry(cluster.nodes().to_vec());
            serve_metrics(addr, registry, &shutdown).await?;
        }
        let end = tokio::time::Instant::now() + args.duration;
        let every = if args.report.is_zero() {
            args.duration
        } else {
            args.report
        };
        loop {
            let wake = (tokio::time::Instant::now() + every).min(end);
            tokio::select! {
                () = shutdown.fired() => break,
                () = tokio::time::sleep_until(wake) => {}
            }
            for s in cluster.statuses() {
                print!("{}", report(&s));
            }
            println!();
            if tokio::time::Instant::now() >= end {
                break;
            }
        }
        let statuses = cluster.statuses();
        let worst = statuses
            .iter()
            .map(|s| s.offset_to_truth.abs())
            .fold(0.0, f64::max);
        let synced = statuses.iter().filter(|s| s.tracking.synced).count();
        println!(
            "summary: {synced} of {n} nodes synced; the largest offset to true time is {:.3} ms",
            worst * 1e3
        );
        cluster.stop().await.map_err(|e| e.to_string())?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Binds `addr` and serves `GET /metrics` for `registry` there until `shutdown` fires; prints
/// the address (port 0 picks a free one).
async fn serve_metrics(
    addr: SocketAddr,
    registry: prometheus_client::registry::Registry,
    shutdown: &Shutdown,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for metrics on tcp {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("metrics on http://{local}/metrics");
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = metrics::serve(listener, registry, shutdown).await {
            tracing::error!("metrics server: {e}");
        }
    });
    Ok(())
}

/// chrony's `sources` table for one node: state symbol, peer, reach (octal), offset ± error,
/// RTT, and the last failure of a peer that did not answer.
pub fn sources_table(status: &NodeStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "S Peer         Reach       Offset      ± Error        RTT  Note"
    );
    for row in &status.sources {
        let ms = |v: Option<f64>, width: usize, signed: bool| match v {
            Some(v) if signed => format!("{:>width$}", format!("{:+.3}ms", v * 1e3)),
            Some(v) => format!("{:>width$}", format!("{:.3}ms", v * 1e3)),
            None => format!("{:>width$}", "-"),
        };
        let note = if let Some(r) = status.rejected.iter().find(|r| r.peer == row.peer) {
            format!("falseticker: {}", r.why)
        } else {
            row.last_failure.clone().unwrap_or_default()
        };
        let _ = writeln!(
            out,
            "{} {:<12} {:>5o} {} {} {}  {}",
            row.state.symbol(),
            row.peer,
            row.reach,
            ms(row.offset, 12, true),
            ms(row.error, 12, false),
            ms(row.rtt, 10, false),
            note
        );
    }
    out
}

/// The `tracking` line for one node.
pub fn tracking_line(status: &NodeStatus) -> String {
    let t = &status.tracking;
    format!(
        "tracking {}: offset to true time {:+.3} ms, frequency {}, error bound {:.3} ms, {} ({} syncs, {} failed rounds, {} steps)",
        status.id,
        status.offset_to_truth * 1e3,
        t.frequency_ppm
            .map_or_else(|| "unknown".to_owned(), |p| format!("{p:+.2} ppm")),
        t.error_bound * 1e3,
        if t.synced { "synced" } else { "NOT synced (local clock)" },
        t.syncs,
        t.failed_rounds,
        status.steps
    ) + &if status.auth_failures > 0 {
        format!(", {} requests refused as unauthenticated", status.auth_failures)
    } else {
        String::new()
    }
}

/// The `sources` table and the `tracking` line.
pub fn report(status: &NodeStatus) -> String {
    format!(
        "--- {} at {:.1} s\n{}{}\n",
        status.id,
        status.at,
        sources_table(status),
        tracking_line(status)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_errors_are_one_line() {
        let p = parse_peers("B=127.0.0.1:7102, C=127.0.0.1:7103").unwrap();
        assert_eq!(p.0.len(), 2);
        assert_eq!(p.0[1].0, "C");
        assert!(parse_peers("").unwrap().0.is_empty());
        assert!(parse_peers("B").unwrap_err().contains("ID=HOST:PORT"));
        assert!(parse_peers("B=localhost").unwrap_err().contains("peer B"));
    }

    #[test]
    fn config_files_are_checked() {
        let dir = std::env::temp_dir().join(format!("timesync-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(&good, "sync_interval = 2.0\nmin_peers = 2\n").unwrap();
        let c = load_config(&good).unwrap();
        assert_eq!((c.sync_interval, c.min_peers, c.max_peers), (2.0, 2, 5));
        let unknown = dir.join("unknown.toml");
        std::fs::write(&unknown, "sync_intervall = 2.0\n").unwrap();
        assert!(load_config(&unknown).unwrap_err().contains("unknown field"));
        let range = dir.join("range.toml");
        std::fs::write(&range, "adjustment_rate = 2.0\n").unwrap();
        assert!(load_config(&range).unwrap_err().contains("adjustment_rate"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn simulation_flags_are_bounded() {
        assert!(simulation(120.0, 0.1, 5.0).is_ok());
        assert!(simulation(f64::NAN, 0.0, 0.0).is_err());
        assert!(simulation(0.0, 1000.0, 0.0).is_err());
    }
}
