//! An NTP server's logic without sockets or clocks (RFC 5905 §9.2, the server half of the
//! on-wire protocol; rate limiting and Kiss-o'-Death per §7.4), in the shape of ntpd-rs'
//! `ntp-proto`: the caller receives a datagram, reads its clock, and asks [`NtpServer`] what to
//! send back.
//!
//! Guarantee: a reply echoes the request's transmit timestamp as its origin (so the client can
//! match it and measure T1…T4), carries the receive and transmit readings it was given, and is
//! never longer than the request (no amplification). With a key ring, a request whose MAC is
//! missing or wrong gets **no reply at all** (chrony's behaviour: no time, no oracle), and a
//! reply to an authenticated request is authenticated with the same key. A client over its
//! rate gets a Kiss-o'-Death `RATE` and, far over it, nothing. The rate limiter's memory is
//! bounded by [`RateLimit::max_clients`].

use std::{collections::BTreeMap, net::IpAddr};

use serde::{Deserialize, Serialize};

use super::{
    auth::KeyRing,
    packet::{
        KissCode, Leap, Mode, NtpShort, NtpTimestamp, Packet, PacketError, Parsed, ReferenceId,
        Trailer,
    },
};

/// Per-client-address rate limiting: a token bucket per address.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Tokens per second a client earns (its sustained request rate).
    pub per_second: f64,
    /// The bucket's size: requests a client may send at once after a quiet spell.
    pub burst: f64,
    /// At most this many addresses are tracked; past it, idle ones are forgotten, and if none
    /// is idle a new address is served untracked.
    pub max_clients: usize,
}

impl Default for RateLimit {
    /// 16 requests per second, bursts of 32, 4096 addresses.
    fn default() -> Self {
        RateLimit {
            per_second: 16.0,
            burst: 32.0,
            max_clients: 4096,
        }
    }
}

/// What the server announces about its clock.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServerConfig {
    /// Its stratum (1–15).
    pub stratum: u8,
    /// Its reference id.
    pub reference_id: ReferenceId,
    /// Its clock's precision, log2 seconds.
    pub precision: i8,
    /// Root delay to the primary source, seconds.
    pub root_delay: f64,
    /// Root dispersion, seconds.
    pub root_dispersion: f64,
    /// The leap indicator it announces.
    pub leap: Leap,
    /// Rate limiting; `None` serves every request (chrony's default).
    pub rate_limit: Option<RateLimit>,
}

impl Default for ServerConfig {
    /// Stratum 2 with chrony's local reference id, 2^-20 s precision.
    fn default() -> Self {
        ServerConfig {
            stratum: 2,
            reference_id: ReferenceId::LOCAL,
            precision: -20,
            root_delay: 0.0,
            root_dispersion: 0.001,
            leap: Leap::NoWarning,
            rate_limit: Some(RateLimit::default()),
        }
    }
}

/// Why a datagram got no time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not an NTP packet.
    #[error("malformed packet: {0}")]
    Malformed(#[from] PacketError),
    /// A mode this server does not answer (only client requests are served).
    #[error("not a client request (mode {0:?})")]
    NotARequest(Mode),
    /// The server requires authentication and the request has no MAC.
    #[error("unauthenticated request")]
    AuthMissing,
    /// The MAC names an unknown key or does not verify.
    #[error("request MAC failed with key {0}")]
    AuthFailed(u32),
    /// The client is far over its rate: not even a Kiss-o'-Death.
    #[error("rate limited")]
    RateLimited,
}

/// The server's answer to one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send these bytes back.
    Reply {
        /// The reply datagram.
        bytes: Vec<u8>,
        /// Set when the reply is a Kiss-o'-Death.
        kiss: Option<KissCode>,
    },
    /// Send nothing.
    Drop(Refusal),
}

/// Counters of what the server did, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStats {
    /// Replies with time.
    pub served: u64,
    /// Replies that were a Kiss-o'-Death.
    pub kiss_of_death: u64,
    /// Malformed datagrams.
    pub malformed: u64,
    /// Well-formed packets in another mode.
    pub not_requests: u64,
    /// Requests refused for a missing or wrong MAC.
    pub auth_failures: u64,
    /// Requests dropped by the rate limiter.
    pub rate_dropped: u64,
}

/// A client's token bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    /// Tokens at `at`; negative while the client is in debt (each Kiss-o'-Death costs one).
    tokens: f64,
    /// Monotonic seconds of the last update.
    at: f64,
}

/// An NTP server's state: its announced clock, its keys, its rate limiter, its counters.
#[derive(Debug, Clone)]
pub struct NtpServer {
    /// What it announces.
    config: ServerConfig,
    /// When present, every request must carry a valid MAC.
    keys: Option<KeyRing>,
    /// When its clock was last set (the reference timestamp it announces).
    reference_ts: NtpTimestamp,
    /// Rate limiter state by client address. Invariant: at most `max_clients` entries.
    buckets: BTreeMap<IpAddr, Bucket>,
    /// What it did.
    stats: ServerStats,
}

impl NtpServer {
    /// A server; with `keys`, only authenticated requests are answered.
    pub fn new(config: ServerConfig, keys: Option<KeyRing>) -> Self {
        NtpServer {
            config,
            keys,
            reference_ts: NtpTimestamp::ZERO,
            buckets: BTreeMap::new(),
            stats: ServerStats::default(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Its counters.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Sets the reference timestamp (when its clock was last set); until set, each reply
    /// announces its own receive time, as a server disciplined by its own clock does.
    pub fn set_reference(&mut self, reference: NtpTimestamp) {
        self.reference_ts = reference;
    }

    /// How many client addresses the rate limiter tracks.
    pub fn tracked_clients(&self) -> usize {
        self.buckets.len()
    }

    /// Answers one datagram from `client` that arrived at server time `rx` (and monotonic time
    /// `mono_secs`, for rate limiting). `transmit` reads the clock again just before the reply
    /// is sealed, so T3 is as late as possible.
    pub fn respond(
        &mut self,
        datagram: &[u8],
        client: IpAddr,
        rx: NtpTimestamp,
        mono_secs: f64,
        transmit: impl FnOnce() -> NtpTimestamp,
    ) -> Verdict {
        let verdict = self.judge(datagram, client, rx, mono_secs, transmit);
        let s = &mut self.stats;
        match &verdict {
            Verdict::Reply { kiss: None, .. } => s.served += 1,
            Verdict::Reply { kiss: Some(_), .. } => s.kiss_of_death += 1,
            Verdict::Drop(Refusal::Malformed(_)) => s.malformed += 1,
            Verdict::Drop(Refusal::NotARequest(_)) => s.not_requests += 1,
            Verdict::Drop(Refusal::AuthMissing | Refusal::AuthFailed(_)) => s.auth_failures += 1,
            Verdict::Drop(Refusal::RateLimited) => s.rate_dropped += 1,
        }
        verdict
    }

    fn judge(
        &mut self,
        datagram: &[u8],
        client: IpAddr,
        rx: NtpTimestamp,
        mono_secs: f64,
        transmit: impl FnOnce() -> NtpTimestamp,
    ) -> Verdict {
        let parsed = match Packet::parse(datagram) {
            Ok(p) => p,
            Err(e) => return Verdict::Drop(Refusal::Malformed(e)),
        };
        let request = parsed.packet;
        if request.mode != Mode::Client {
            return Verdict::Drop(Refusal::NotARequest(request.mode));
        }
        let key_id = match self.check_auth(datagram, &parsed) {
            Ok(k) => k,
            Err(r) => return Verdict::Drop(r),
        };
        let kiss = match self.admit(client, mono_secs) {
            Admission::Serve => None,
            Admission::Kiss => Some(KissCode::Rate),
            Admission::Drop => return Verdict::Drop(Refusal::RateLimited),
        };
        let c = &self.config;
        let mut reply = Packet {
            leap: c.leap,
            version: request.version,
            mode: Mode::Server,
            stratum: c.stratum,
            poll: request.poll.clamp(4, 17),
            precision: c.precision,
            root_delay: NtpShort::from_seconds(c.root_delay),
            root_dispersion: NtpShort::from_seconds(c.root_dispersion),
            reference_id: c.reference_id,
            reference_ts: if self.reference_ts.is_zero() {
                rx
            } else {
                self.reference_ts
            },
            origin_ts: request.transmit_ts,
            receive_ts: rx,
            transmit_ts: NtpTimestamp::ZERO,
        };
        if let Some(code) = kiss {
            // A Kiss-o'-Death tells no time: RFC 5905 §7.4.
            reply.leap = Leap::Unsynchronized;
            reply.stratum = 0;
            reply.reference_id = code.reference_id();
            reply.reference_ts = NtpTimestamp::ZERO;
            reply.receive_ts = request.transmit_ts;
            reply.transmit_ts = request.transmit_ts;
        } else {
            reply.transmit_ts = transmit();
        }
        let mut bytes = reply.encode().to_vec();
        if let (Some(id), Some(keys)) = (key_id, &self.keys) {
            if let Some(key) = keys.get(id) {
                bytes.extend_from_slice(&key.mac_field(&bytes, request.version));
            }
        }
        Verdict::Reply { bytes, kiss }
    }

    /// The key id to authenticate the reply with, or why the request is refused.
    fn check_auth(&self, datagram: &[u8], parsed: &Parsed<'_>) -> Result<Option<u32>, Refusal> {
        let Some(keys) = &self.keys else {
            // Without keys the server answers everyone, unauthenticated.
            return Ok(None);
        };
        match parsed.trailer {
            Trailer::None | Trailer::CryptoNak => Err(Refusal::AuthMissing),
            Trailer::Mac(mac) => {
                let covered = &datagram[..parsed.authenticated_len];
                if keys.verify(mac.key_id, covered, mac.digest, parsed.packet.version) {
                    Ok(Some(mac.key_id))
                } else {
                    Err(Refusal::AuthFailed(mac.key_id))
                }
            }
        }
    }

    fn admit(&mut self, client: IpAddr, now: f64) -> Admission {
        let Some(limit) = self.config.rate_limit else {
            return Admission::Serve;
        };
        if !self.buckets.contains_key(&client) && self.buckets.len() >= limit.max_clients {
            // A full bucket behaves exactly like a fresh one, so forgetting it loses nothing.
            self.buckets
                .retain(|_, b| refill(b, now, &limit) < limit.burst);
            if self.buckets.len() >= limit.max_clients {
                return Admission::Serve;
            }
        }
        let bucket = self.buckets.entry(client).or_insert(Bucket {
            tokens: limit.burst,
            at: now,
        });
        bucket.tokens = refill(bucket, now, &limit);
        bucket.at = bucket.at.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Admission::Serve
        } else if bucket.tokens > -limit.burst {
            // Each Kiss-o'-Death deepens the debt; a client that ignores them is dropped.
            bucket.tokens -= 1.0;
            Admission::Kiss
        } else {
            Admission::Drop
        }
    }
}

/// The bucket's tokens at `now` (time never runs backwards for it).
fn refill(b: &Bucket, now: f64, limit: &RateLimit) -> f64 {
    let elapsed = (now - b.at).max(0.0);
    (b.tokens + elapsed * limit.per_second).min(limit.burst)
}

enum Admission {
    Serve,
    Kiss,
    Drop,
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::sync::ntp::{auth::KeyRing, client::ClientRequest};

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn request_bytes(cookie: u64) -> Vec<u8> {
        ClientRequest::new(cookie, 6, None).bytes().to_vec()
    }

    fn limited(per_second: f64, burst: f64, max_clients: usize) -> NtpServer {
        let rate_limit = Some(RateLimit {
            per_second,
            burst,
            max_clients,
        });
        NtpServer::new(
            ServerConfig {
                rate_limit,
                ..ServerConfig::default()
            },
            None,
        )
    }

    fn reply_of(v: Verdict) -> (Packet, Vec<u8>) {
        match v {
            Verdict::Reply { bytes, .. } => (Packet::parse(&bytes).unwrap().packet, bytes),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn a_reply_echoes_the_origin_and_carries_the_readings() {
        let mut s = NtpServer::new(ServerConfig::default(), None);
        let rx = NtpTimestamp::from_bits(1000 << 32);
        let tx = NtpTimestamp::from_bits((1000 << 32) + 5);
        let (p, bytes) = reply_of(s.respond(&request_bytes(0xABCD), LOOPBACK, rx, 0.0, || tx));
        assert_eq!(bytes.len(), 48);
        assert_eq!(p.mode, Mode::Server);
        assert_eq!(p.origin_ts, NtpTimestamp::from_bits(0xABCD));
        assert_eq!((p.receive_ts, p.transmit_ts), (rx, tx));
        assert_eq!((p.stratum, p.version, p.poll), (2, 4, 6));
        assert_eq!(p.reference_id, ReferenceId::LOCAL);
        assert_eq!(s.stats().served, 1);
    }

    #[test]
    fn malformed_and_non_client_packets_are_dropped_and_counted() {
        let mut s = NtpServer::new(ServerConfig::default(), None);
        let t = NtpTimestamp::from_bits(1);
        assert!(matches!(
            s.respond(&[0xFF; 7], LOOPBACK, t, 0.0, || t),
            Verdict::Drop(Refusal::Malformed(PacketError::TooShort(7)))
        ));
        let mut server_mode = request_bytes(1);
        server_mode[0] = 0x24;
        assert_eq!(
            s.respond(&server_mode, LOOPBACK, t, 0.0, || t),
            Verdict::Drop(Refusal::NotARequest(Mode::Server))
        );
        let st = s.stats();
        assert_eq!((st.malformed, st.not_requests, st.served), (1, 1, 0));
    }

    #[test]
    fn with_keys_only_authenticated_requests_get_time() {
        let ring = KeyRing::parse(
            "1 SHA256 HEX:0011223344556677\n2 AES128 HEX:000102030405060708090A0B0C0D0E0F",
        )
        .unwrap();
        let mut s = NtpServer::new(ServerConfig::default(), Some(ring.clone()));
        let t = NtpTimestamp::from_bits(9 << 32);
        assert_eq!(
            s.respond(&request_bytes(1), LOOPBACK, t, 0.0, || t),
            Verdict::Drop(Refusal::AuthMissing)
        );
        let good = ClientRequest::new(2, 6, ring.get(1)).bytes().to_vec();
        let (_, bytes) = reply_of(s.respond(&good, LOOPBACK, t, 0.0, || t));
        // The reply is authenticated with the request's key.
        let parsed = Packet::parse(&bytes).unwrap();
        let Trailer::Mac(mac) = parsed.trailer else {
            panic!("no MAC")
        };
        assert_eq!(mac.key_id, 1);
        assert!(ring.verify(1, &bytes[..48], mac.digest, 4));
        let mut bad = good.clone();
        bad[47] ^= 1;
        assert_eq!(
            s.respond(&bad, LOOPBACK, t, 0.0, || t),
            Verdict::Drop(Refusal::AuthFailed(1))
        );
        // A valid MAC under a key the server does not hold.
        let other = KeyRing::parse("7 MD5 foo").unwrap();
        let foreign = ClientRequest::new(3, 6, other.get(7)).bytes().to_vec();
        assert_eq!(
            s.respond(&foreign, LOOPBACK, t, 0.0, || t),
            Verdict::Drop(Refusal::AuthFailed(7))
        );
        assert_eq!(s.stats().auth_failures, 3);
    }

    #[test]
    fn an_abusive_client_gets_rate_kisses_then_nothing_and_recovers() {
        let mut s = limited(2.0, 4.0, 16);
        let t = NtpTimestamp::from_bits(5 << 32);
        let mut kinds = Vec::new();
        for _ in 0..12 {
            kinds.push(
                match s.respond(&request_bytes(9), LOOPBACK, t, 10.0, || t) {
                    Verdict::Reply { kiss: None, .. } => 'T',
                    Verdict::Reply {
                        kiss: Some(KissCode::Rate),
                        bytes,
                    } => {
                        let p = Packet::parse(&bytes).unwrap().packet;
                        assert_eq!((p.stratum, p.leap), (0, Leap::Unsynchronized));
                        assert_eq!(p.kiss_code(), Some(KissCode::Rate));
                        assert_eq!(p.transmit_ts, NtpTimestamp::from_bits(9));
                        'K'
                    }
                    Verdict::Reply { .. } => 'k',
                    Verdict::Drop(_) => '.',
                },
            );
        }
        assert_eq!(kinds.iter().collect::<String>(), "TTTTKKKK....");
        // Another address is unaffected; after a quiet spell the first is served again.
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(matches!(
            s.respond(&request_bytes(9), other, t, 10.0, || t),
            Verdict::Reply { kiss: None, .. }
        ));
        assert!(matches!(
            s.respond(&request_bytes(9), LOOPBACK, t, 20.0, || t),
            Verdict::Reply { kiss: None, .. }
        ));
    }

    #[test]
    fn the_rate_limiter_forgets_idle_clients_and_stays_bounded() {
        let mut s = limited(1.0, 2.0, 8);
        let t = NtpTimestamp::from_bits(5 << 32);
        for i in 0..1000u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i));
            let v = s.respond(&request_bytes(1), ip, t, f64::from(i) * 0.01, || t);
            assert!(matches!(v, Verdict::Reply { kiss: None, .. }));
            assert!(s.tracked_clients() <= 8);
        }
    }
}
