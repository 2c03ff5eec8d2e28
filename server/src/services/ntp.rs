//! NTP on UDP (RFC 5905): the sockets around the pure protocol logic of
//! [`chronoscope::sync::ntp`] — [`NtpService`] answers requests with a [`ClockSource`]'s time,
//! [`query`] asks servers for theirs.
//!
//! Invariant: nothing a datagram holds can stop the service: every datagram goes through
//! [`NtpServer::respond`], which parses without panicking; refusals are counted (see
//! [`NtpService::stats`]) and logged at debug level, with a summary at most every 10 s.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chronoscope::sync::ntp::{
    auth::KeyRing,
    client::{ClientRequest, Measurement, ReplyError, SourceEstimate},
    packet::{NtpTimestamp, MAX_PACKET_LEN},
    server::{NtpServer, ServerStats, Verdict},
};
use rand::Rng;
use serde::Serialize;
use tokio::{net::UdpSocket, time::Instant};

use super::clock::ClockSource;
use crate::Shutdown;

/// An NTP server on a bound UDP socket.
pub struct NtpService {
    /// The bound socket (tests bind `127.0.0.1:0`).
    socket: UdpSocket,
    /// The protocol state; shared so [`NtpService::stats`] can be read while it runs.
    server: Arc<Mutex<NtpServer>>,
    /// The time it serves.
    clock: Arc<dyn ClockSource>,
}

impl NtpService {
    /// Binds `addr` and serves `clock` through `server`.
    pub async fn bind(
        addr: SocketAddr,
        server: NtpServer,
        clock: Arc<dyn ClockSource>,
    ) -> io::Result<Self> {
        Ok(Self::new(UdpSocket::bind(addr).await?, server, clock))
    }

    /// Serves on an already bound socket.
    pub fn new(socket: UdpSocket, server: NtpServer, clock: Arc<dyn ClockSource>) -> Self {
        NtpService {
            socket,
            server: Arc::new(Mutex::new(server)),
            clock,
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// A handle to read its counters while it runs.
    pub fn stats_handle(&self) -> NtpStatsHandle {
        NtpStatsHandle(self.server.clone())
    }

    /// Its counters so far.
    pub fn stats(&self) -> ServerStats {
        self.stats_handle().get()
    }

    /// Answers datagrams until `shutdown` fires; returns the final counters.
    pub async fn run(self, shutdown: Shutdown) -> ServerStats {
        // One byte more than the longest packet, so an over-long datagram is seen as such
        // instead of being silently truncated into a valid-looking one.
        let mut buf = vec![0u8; MAX_PACKET_LEN + 1];
        let start = Instant::now();
        let mut last_summary = start;
        let mut refused_since = 0u64;
        loop {
            let (n, from) = tokio::select! {
                () = shutdown.fired() => break,
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // ICMP errors from earlier replies surface here on some systems.
                        tracing::debug!("ntp: receive error: {e}");
                        continue;
                    }
                },
            };
            let rx = NtpTimestamp::from_unix_nanos(self.clock.now_unix_nanos());
            let mono = start.elapsed().as_secs_f64();
            let verdict = {
                let mut server = self.server.lock().unwrap_or_else(PoisonError::into_inner);
                let clock = &self.clock;
                server.respond(&buf[..n], from.ip(), rx, mono, || {
                    NtpTimestamp::from_unix_nanos(clock.now_unix_nanos())
                })
            };
            match verdict {
                Verdict::Reply { bytes, kiss } => {
                    if let Some(code) = kiss {
                        tracing::debug!("ntp: kiss-o'-death {code} to {from}");
                    }
                    if let Err(e) = self.socket.send_to(&bytes, from).await {
                        tracing::debug!("ntp: cannot reply to {from}: {e}");
                    }
                }
                Verdict::Drop(why) => {
                    tracing::debug!("ntp: dropped {n} bytes from {from}: {why}");
                    refused_since += 1;
                }
            }
            if refused_since > 0 && last_summary.elapsed() >= Duration::from_secs(10) {
                let s = self.stats();
                tracing::warn!(
                    "ntp: {refused_since} datagrams refused in the last {:.0} s (totals: {} malformed, {} not requests, {} failed authentication, {} rate-dropped)",
                    last_summary.elapsed().as_secs_f64(),
                    s.malformed,
                    s.not_requests,
                    s.auth_failures,
                    s.rate_dropped
                );
                last_summary = Instant::now();
                refused_since = 0;
            }
        }
        self.stats()
    }
}

/// Reads a running [`NtpService`]'s counters.
#[derive(Clone)]
pub struct NtpStatsHandle(Arc<Mutex<NtpServer>>);

impl NtpStatsHandle {
    /// The counters now.
    pub fn get(&self) -> ServerStats {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stats()
    }
}

/// How [`query`] samples a server.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// Exchanges per server.
    pub samples: usize,
    /// How long to wait for each reply.
    pub timeout: Duration,
    /// Pause between a server's exchanges.
    pub interval: Duration,
    /// Authenticate with this key id (it must be in `keys`).
    pub key_id: Option<u32>,
    /// The key file's keys.
    pub keys: Option<Arc<KeyRing>>,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            samples: 8,
            timeout: Duration::from_secs(1),
            interval: Duration::from_millis(100),
            key_id: None,
            keys: None,
        }
    }
}

/// Why one exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum ExchangeFailure {
    /// No reply within the timeout.
    Timeout,
    /// The reply was refused (Kiss-o'-Death, unsynchronised, authentication).
    Refused(String),
    /// The socket failed.
    Io(String),
}

/// What one server answered.
#[derive(Debug, Clone, Serialize)]
pub struct ServerQuery {
    /// The address asked.
    pub server: SocketAddr,
    /// Successful exchanges: local seconds since the query began, and the measurement.
    pub measurements: Vec<(f64, Measurement)>,
    /// Failed exchanges.
    pub failures: Vec<ExchangeFailure>,
    /// The clock filter's result over the measurements.
    pub estimate: Option<SourceEstimate>,
    /// Set when the server sent a Kiss-o'-Death (sampling stopped there).
    pub kiss: Option<String>,
}

impl ServerQuery {
    /// One line on why this server gave no time.
    pub fn failure_summary(&self) -> String {
        if let Some(k) = &self.kiss {
            return format!("kiss-o'-death {k}");
        }
        let timeouts = self
            .failures
            .iter()
            .filter(|f| **f == ExchangeFailure::Timeout)
            .count();
        let other = self.failures.iter().find_map(|f| match f {
            ExchangeFailure::Refused(s) | ExchangeFailure::Io(s) => Some(s.clone()),
            ExchangeFailure::Timeout => None,
        });
        match other {
            Some(reason) => reason,
            None => format!("no reply ({timeouts} timeouts)"),
        }
    }
}

/// Samples one server `options.samples` times, the host clock (through `clock`) timing each
/// exchange, and runs the clock filter.
pub async fn query(
    server: SocketAddr,
    options: &QueryOptions,
    clock: &dyn ClockSource,
) -> ServerQuery {
    let mut result = ServerQuery {
        server,
        measurements: Vec::new(),
        failures: Vec::new(),
        estimate: None,
        kiss: None,
    };
    let key = match (options.key_id, &options.keys) {
        (Some(id), Some(keys)) => keys.get(id).cloned(),
        _ => None,
    };
    let local: SocketAddr = if server.is_ipv4() {
        (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0).into()
    } else {
        (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0).into()
    };
    let socket = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => {
            result.failures.push(ExchangeFailure::Io(e.to_string()));
            return result;
        }
    };
    if let Err(e) = socket.connect(server).await {
        result.failures.push(ExchangeFailure::Io(e.to_string()));
        return result;
    }
    let start = Instant::now();
    let mut buf = vec![0u8; MAX_PACKET_LEN + 1];
    for i in 0..options.samples {
        if i > 0 {
            tokio::time::sleep(options.interval).await;
        }
        let request = ClientRequest::new(rand::thread_rng().gen(), 6, key.as_ref());
        let t1 = NtpTimestamp::from_unix_nanos(clock.now_unix_nanos());
        if let Err(e) = socket.send(request.bytes()).await {
            result.failures.push(ExchangeFailure::Io(e.to_string()));
            continue;
        }
        let deadline = Instant::now() + options.timeout;
        let outcome = loop {
            let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_) => break Err(ExchangeFailure::Timeout),
                // "Connection refused" from an earlier datagram: nobody listens there.
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    break Err(ExchangeFailure::Io("connection refused".into()))
                }
                Ok(Err(e)) => break Err(ExchangeFailure::Io(e.to_string())),
                Ok(Ok(n)) => n,
            };
            let t4 = NtpTimestamp::from_unix_nanos(clock.now_unix_nanos());
            match request.check(&buf[..n], t1, t4, options.keys.as_deref()) {
                Ok(m) => break Ok(m),
                // Not a reply to this request: keep listening until the deadline.
                Err(e) if e.keep_waiting() => continue,
                Err(ReplyError::Kiss(code)) => {
                    result.kiss = Some(code.to_string());
                    break Err(ExchangeFailure::Refused(format!("kiss-o'-death {code}")));
                }
                Err(e) => break Err(ExchangeFailure::Refused(e.to_string())),
            }
        };
        match outcome {
            Ok(m) => result.measurements.push((start.elapsed().as_secs_f64(), m)),
            Err(f) => {
                let stop = result.kiss.is_some()
                    || matches!(&f, ExchangeFailure::Io(s) if s == "connection refused");
                result.failures.push(f);
                // RFC 5905 §7.4: a kissed client stops (or slows down); a refused port will
                // not start answering within one query.
                if stop {
                    break;
                }
            }
        }
    }
    result.estimate = SourceEstimate::from_measurements(&result.measurements);
    result
}

#[cfg(test)]
mod tests {
    use chronoscope::sync::ntp::server::ServerConfig;

    use super::*;
    use crate::services::clock::{HostClock, InjectedClock};

    async fn start(
        server: NtpServer,
        skew: f64,
    ) -> (SocketAddr, Shutdown, tokio::task::JoinHandle<ServerStats>) {
        let clock = Arc::new(InjectedClock::new(HostClock, skew, 0.0));
        let svc = NtpService::bind("127.0.0.1:0".parse().unwrap(), server, clock)
            .await
            .unwrap();
        let addr = svc.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(svc.run(shutdown.clone()));
        (addr, shutdown, task)
    }

    #[tokio::test]
    async fn a_query_measures_the_injected_skew_within_its_error_bound() {
        let (addr, shutdown, task) =
            start(NtpServer::new(ServerConfig::default(), None), 0.250).await;
        let q = query(
            addr,
            &QueryOptions {
                samples: 4,
                interval: Duration::ZERO,
                ..QueryOptions::default()
            },
            &HostClock,
        )
        .await;
        let est = q.estimate.expect("an estimate");
        assert_eq!(est.samples, 4);
        assert!(
            (est.offset - 0.250).abs() <= est.root_distance(),
            "offset {} ± {}",
            est.offset,
            est.root_distance()
        );
        shutdown.trigger();
        assert_eq!(task.await.unwrap().served, 4);
    }

    #[tokio::test]
    async fn garbage_is_counted_and_the_server_keeps_serving() {
        let (addr, shutdown, task) =
            start(NtpServer::new(ServerConfig::default(), None), 0.0).await;
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for junk in [&b""[..], &[0u8; 3][..], &[0xFF; 48][..], &[0x1B; 2000][..]] {
            sock.send_to(junk, addr).await.unwrap();
        }
        // The query's own requests come after the junk on the same server socket, so once
        // they are answered, the junk has been judged.
        let q = query(
            addr,
            &QueryOptions {
                samples: 1,
                ..QueryOptions::default()
            },
            &HostClock,
        )
        .await;
        assert!(q.estimate.is_some());
        shutdown.trigger();
        let stats = task.await.unwrap();
        assert_eq!(stats.served, 1);
        // Empty, 3 bytes, version 7, 2000 bytes (truncated to the buffer, still too long).
        assert_eq!(stats.malformed, 4, "{stats:?}");
    }

    #[tokio::test]
    async fn nobody_listening_is_a_failure_not_a_hang() {
        // Bind and drop to get a port nobody listens on.
        let port = UdpSocket::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let q = query(
            port,
            &QueryOptions {
                samples: 2,
                timeout: Duration::from_millis(200),
                ..QueryOptions::default()
            },
            &HostClock,
        )
        .await;
        assert!(q.estimate.is_none());
        assert!(!q.failures.is_empty());
    }
}
