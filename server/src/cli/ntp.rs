//! `chronoscope ntp serve|query` — an NTPv4 server whose clock is the host's plus an injected
//! skew and drift, and a client that samples several servers, filters, selects with Marzullo's
//! algorithm and reports as `chronyd -Q` or ntpdate do. The protocol is
//! [`chronoscope::sync::ntp`]; the sockets are [`crate::services::ntp`].

use std::{
    fmt::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use chronoscope::sync::{
    marzullo::Chimer,
    ntp::{
        auth::KeyRing,
        client::{select_and_combine, Combined},
        packet::ReferenceId,
        server::{NtpServer, RateLimit, ServerConfig},
    },
};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use super::units::{parse_duration, parse_offset, parse_signed_ppm};
use crate::{
    services::{
        clock::{HostClock, InjectedClock},
        ntp::{query, NtpService, QueryOptions, ServerQuery},
    },
    Shutdown,
};

/// `chronoscope ntp …`.
#[derive(Debug, Args)]
pub struct NtpArgs {
    #[command(subcommand)]
    command: NtpCommand,
}

#[derive(Debug, Subcommand)]
enum NtpCommand {
    /// Serve NTPv4 on UDP: the host clock plus an injected skew and drift.
    Serve(ServeArgs),
    /// Ask NTP servers for the time: offset, delay, dispersion per server and combined.
    Query(QueryArgs),
}

/// Options of `chronoscope ntp serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// UDP address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:11123")]
    addr: SocketAddr,
    /// Offset added to the host clock, e.g. `+250ms` or `-1.5s`.
    #[arg(long, default_value = "0s", value_parser = parse_offset, allow_hyphen_values = true)]
    skew: f64,
    /// Rate error added to the host clock from start-up, e.g. `50ppm` or `-20ppm`.
    #[arg(long, default_value = "0ppm", value_parser = parse_signed_ppm, allow_hyphen_values = true)]
    drift: f64,
    /// Stratum to announce (1–15).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=15))]
    stratum: u8,
    /// Reference id to announce: four ASCII characters for stratum 1, else an IPv4 address
    /// (default 127.127.1.1, chrony's local clock).
    #[arg(long)]
    refid: Option<String>,
    /// Symmetric keys in chrony's key file format; with it, only authenticated requests get
    /// an answer.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Requests per second one client address may sustain (bursts of twice as many); `off`
    /// to answer every request.
    #[arg(long, default_value = "16", value_parser = parse_rate_limit)]
    rate_limit: RateArg,
}

/// Options of `chronoscope ntp query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Servers as HOST:PORT.
    #[arg(required = true)]
    servers: Vec<String>,
    /// Exchanges per server.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    samples: u16,
    /// How long to wait for each reply, e.g. `1s`.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    timeout: Duration,
    /// Pause between a server's exchanges, e.g. `100ms`.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    interval: Duration,
    /// Authenticate with this key id from `--key-file`.
    #[arg(long, requires = "key_file")]
    key: Option<u32>,
    /// Symmetric keys in chrony's key file format.
    #[arg(long, requires = "key")]
    key_file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

/// `--rate-limit`: requests per second, or `None` for off.
#[derive(Debug, Clone, Copy)]
struct RateArg(Option<f64>);

fn parse_rate_limit(s: &str) -> Result<RateArg, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(RateArg(None));
    }
    let v: f64 = s
        .trim_end_matches("/s")
        .parse()
        .map_err(|_| format!("expected requests per second like 16, or off, got {s:?}"))?;
    if v.is_finite() && v > 0.0 {
        Ok(RateArg(Some(v)))
    } else {
        Err(format!("the rate limit must be positive, got {s:?}"))
    }
}

fn parse_refid(s: &str, stratum: u8) -> Result<ReferenceId, String> {
    if let Ok(ip) = s.parse::<std::net::Ipv4Addr>() {
        return Ok(ReferenceId(ip.octets()));
    }
    if stratum == 1 && (1..=4).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(ReferenceId::ascii(s));
    }
    Err(format!(
        "--refid must be an IPv4 address (or up to 4 ASCII characters at stratum 1), got {s:?}"
    ))
}

fn load_keys(path: &Path) -> Result<KeyRing, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
    KeyRing::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs `chronoscope ntp …`.
pub fn run(args: NtpArgs) -> ExitCode {
    let result = match args.command {
        NtpCommand::Serve(a) => serve(a),
        NtpCommand::Query(a) => run_query(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    crate::cli::init_logging();
    let reference_id = match &args.refid {
        Some(s) => parse_refid(s, args.stratum)?,
        None => ReferenceId::LOCAL,
    };
    let keys = args.key_file.as_deref().map(load_keys).transpose()?;
    if keys.as_ref().is_some_and(KeyRing::is_empty) {
        return Err("the key file holds no keys".into());
    }
    let config = ServerConfig {
        stratum: args.stratum,
        reference_id,
        rate_limit: args.rate_limit.0.map(|per_second| RateLimit {
            per_second,
            burst: 2.0 * per_second,
            ..RateLimit::default()
        }),
        ..ServerConfig::default()
    };
    let auth = match &keys {
        Some(k) => format!("{} keys, authentication required", k.len()),
        None => "no authentication".into(),
    };
    let rt = runtime()?;
    rt.block_on(async move {
        let clock = Arc::new(InjectedClock::new(HostClock, args.skew, args.drift));
        let service = NtpService::bind(args.addr, NtpServer::new(config, keys), clock)
            .await
            .map_err(|e| format!("cannot listen on udp {}: {e}", args.addr))?;
        let local = service
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        println!(
            "NTP server on udp://{local}: stratum {}, skew {:+.3} ms, drift {:+} ppm, {auth} (Ctrl-C to stop)",
            args.stratum,
            args.skew * 1e3,
            args.drift
        );
        let shutdown = Shutdown::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_signal.trigger();
            }
        });
        let s = service.run(shutdown).await;
        println!(
            "served {}, kiss-o'-death {}, malformed {}, not requests {}, failed authentication {}, rate-dropped {}",
            s.served, s.kiss_of_death, s.malformed, s.not_requests, s.auth_failures, s.rate_dropped
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// The JSON report of `ntp query`.
#[derive(Debug, Serialize)]
struct Report {
    servers: Vec<ServerQuery>,
    combined: Option<Combined>,
    /// Why no combined time, when there is none.
    error: Option<String>,
}

fn run_query(args: QueryArgs) -> Result<ExitCode, String> {
    let keys = args.key_file.as_deref().map(load_keys).transpose()?;
    if let (Some(id), Some(ring)) = (args.key, &keys) {
        if ring.get(id).is_none() {
            return Err(format!("key {id} is not in the key file"));
        }
    }
    let options = QueryOptions {
        samples: usize::from(args.samples),
        timeout: args.timeout,
        interval: args.interval,
        key_id: args.key,
        keys: keys.map(Arc::new),
    };
    let rt = runtime()?;
    let report = rt.block_on(async {
        let mut addrs = Vec::new();
        for s in &args.servers {
            let addr = tokio::net::lookup_host(s.as_str())
                .await
                .map_err(|e| format!("cannot resolve {s:?} (expected HOST:PORT): {e}"))?
                .next()
                .ok_or_else(|| format!("{s:?} resolves to no address"))?;
            addrs.push(addr);
        }
        let queries = addrs.iter().map(|a| query(*a, &options, &HostClock));
        let servers = futures_util::future::join_all(queries).await;
        let answering: Vec<_> = servers.iter().filter_map(|s| s.estimate).collect();
        let (combined, error) = if answering.is_empty() {
            let why: Vec<String> = servers
                .iter()
                .map(|s| format!("{}: {}", s.server, s.failure_summary()))
                .collect();
            (
                None,
                Some(format!("no server gave a usable time ({})", why.join("; "))),
            )
        } else {
            match select_and_combine(&answering) {
                Ok(c) => (Some(c), None),
                Err(e) => (None, Some(format!("the servers disagree: {e}"))),
            }
        };
        Ok::<_, String>(Report {
            servers,
            combined,
            error,
        })
    })?;
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        ),
        Format::Table => print!("{}", table(&report)),
    }
    match &report.error {
        Some(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

fn ms(secs: f64) -> String {
    format!("{:+.3} ms", secs * 1e3)
}

fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:>2} {:<15} {:>13} {:>10} {:>10} {:>10} {:<13} {:>3}",
        "server", "st", "refid", "offset", "delay", "disp", "jitter", "leap", "ok"
    );
    let mut verdicts = report.combined.as_ref().map(|c| c.verdicts.iter());
    for s in &report.servers {
        let Some(e) = s.estimate else {
            let _ = writeln!(
                out,
                "{:<24} -- {}",
                s.server.to_string(),
                s.failure_summary()
            );
            continue;
        };
        let verdict = verdicts.as_mut().and_then(|v| v.next());
        let mark = match verdict {
            Some(Chimer::Falseticker) => "  (falseticker)",
            _ => "",
        };
        let _ = writeln!(
            out,
            "{:<24} {:>2} {:<15} {:>13} {:>7.3} ms {:>7.3} ms {:>7.3} ms {:<13} {:>3}{mark}",
            s.server.to_string(),
            e.stratum,
            e.reference_id.display(e.stratum),
            ms(e.offset),
            e.delay * 1e3,
            e.dispersion * 1e3,
            e.jitter * 1e3,
            e.leap.name(),
            e.samples,
        );
    }
    if let Some(c) = &report.combined {
        let agreeing = c
            .verdicts
            .iter()
            .filter(|v| **v == Chimer::Truechimer)
            .count();
        let _ = writeln!(
            out,
            "combined: offset {} (interval {} … {}), {agreeing} of {} answering servers agree",
            ms(c.offset),
            ms(c.interval.lo),
            ms(c.interval.hi),
            c.verdicts.len()
        );
    }
    out
}
