//! An NTP client's logic without sockets or clocks (RFC 5905 §8 and §9.1, the client half of
//! the on-wire protocol, and §11 for choosing among servers), in the shape of ntpd-rs'
//! `ntp-proto`: the caller sends [`ClientRequest::bytes`], reads its clock at send (T1) and at
//! receive (T4), and hands the reply to [`ClientRequest::check`].
//!
//! Guarantee: a [`Measurement`] is produced only from a reply in server mode whose origin
//! timestamp equals the request's random transmit cookie (so an off-path attacker must guess
//! 64 bits, and a late duplicate of an earlier reply is ignored), with non-zero receive and
//! transmit timestamps, from a synchronised server (not a Kiss-o'-Death, stratum 1–15, leap
//! not "unsynchronised"), and — when the request was authenticated — with a valid MAC under
//! the same key. Its offset and delay are RFC 5905's θ and δ, computed by era-safe timestamp
//! differences.

use serde::{Deserialize, Serialize};

use super::{
    auth::{KeyRing, SymmetricKey},
    combine,
    packet::{
        KissCode, Leap, Mode, NtpShort, NtpTimestamp, Packet, PacketError, ReferenceId, Trailer,
    },
    ClockFilter, Exchange, Sample, PHI,
};
use crate::sync::marzullo::{self, Chimer, Interval, MarzulloError};

/// A request in flight: what was sent and what a reply must echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    /// The transmit timestamp sent: a random cookie, not the time (as ntpd-rs does), so the
    /// request tells an observer nothing about the client's clock.
    cookie: NtpTimestamp,
    /// The key the request was authenticated with.
    key_id: Option<u32>,
    /// The datagram.
    bytes: Vec<u8>,
}

/// Why a reply gave no measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// Not an NTP packet.
    #[error("malformed reply: {0}")]
    Malformed(#[from] PacketError),
    /// Not in server mode.
    #[error("reply in mode {0:?}, not server")]
    NotAReply(Mode),
    /// Its origin timestamp is not our cookie: a stray, late or forged packet. Keep waiting.
    #[error("reply does not answer this request")]
    NotOurs,
    /// Kiss-o'-Death.
    #[error("kiss-o'-death {0}")]
    Kiss(KissCode),
    /// The server says it is not synchronised.
    #[error("server is not synchronised (stratum {stratum}, leap {leap:?})")]
    Unsynchronized {
        /// Its stratum.
        stratum: u8,
        /// Its leap indicator.
        leap: Leap,
    },
    /// A receive or transmit timestamp is zero.
    #[error("reply has a zero timestamp")]
    ZeroTimestamp,
    /// The request was authenticated; the reply is not.
    #[error("reply is not authenticated")]
    AuthMissing,
    /// The reply's MAC does not verify, or names another key.
    #[error("reply MAC failed with key {0}")]
    AuthFailed(u32),
}

impl ReplyError {
    /// Whether the caller should keep waiting for another datagram (the reply was not for us)
    /// rather than count this exchange as failed.
    pub fn keep_waiting(&self) -> bool {
        matches!(
            self,
            ReplyError::NotOurs | ReplyError::Malformed(_) | ReplyError::NotAReply(_)
        )
    }
}

impl ClientRequest {
    /// A client-mode NTPv4 request whose transmit timestamp is `cookie` (give it 64 random
    /// bits), authenticated with `key` if given.
    pub fn new(cookie: u64, poll: i8, key: Option<&SymmetricKey>) -> Self {
        let cookie = NtpTimestamp::from_bits(cookie.max(1));
        let packet = Packet {
            leap: Leap::Unsynchronized,
            version: 4,
            mode: Mode::Client,
            stratum: 0,
            poll,
            precision: 0,
            root_delay: NtpShort::default(),
            root_dispersion: NtpShort::default(),
            reference_id: ReferenceId::default(),
            reference_ts: NtpTimestamp::ZERO,
            origin_ts: NtpTimestamp::ZERO,
            receive_ts: NtpTimestamp::ZERO,
            transmit_ts: cookie,
        };
        let mut bytes = packet.encode().to_vec();
        if let Some(key) = key {
            bytes.extend_from_slice(&key.mac_field(&bytes, 4));
        }
        ClientRequest {
            cookie,
            key_id: key.map(|k| k.id),
            bytes,
        }
    }

    /// The datagram to send.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Checks a reply and measures: `t1` and `t4` are the client's clock when the request left
    /// and when this reply arrived; `keys` must hold the request's key if it had one.
    pub fn check(
        &self,
        reply: &[u8],
        t1: NtpTimestamp,
        t4: NtpTimestamp,
        keys: Option<&KeyRing>,
    ) -> Result<Measurement, ReplyError> {
        let parsed = Packet::parse(reply)?;
        let p = parsed.packet;
        if p.mode != Mode::Server {
            return Err(ReplyError::NotAReply(p.mode));
        }
        if p.origin_ts != self.cookie {
            return Err(ReplyError::NotOurs);
        }
        if let Some(id) = self.key_id {
            match parsed.trailer {
                Trailer::Mac(mac)
                    if mac.key_id == id
                        && keys.is_some_and(|k| {
                            k.verify(
                                id,
                                &reply[..parsed.authenticated_len],
                                mac.digest,
                                p.version,
                            )
                        }) => {}
                Trailer::Mac(mac) => return Err(ReplyError::AuthFailed(mac.key_id)),
                Trailer::None | Trailer::CryptoNak => return Err(ReplyError::AuthMissing),
            }
        }
        if let Some(code) = p.kiss_code() {
            return Err(ReplyError::Kiss(code));
        }
        if p.leap == Leap::Unsynchronized || p.stratum >= 16 {
            return Err(ReplyError::Unsynchronized {
                stratum: p.stratum,
                leap: p.leap,
            });
        }
        if p.receive_ts.is_zero() || p.transmit_ts.is_zero() {
            return Err(ReplyError::ZeroTimestamp);
        }
        // Every timestamp relative to T1, so the f64 arithmetic keeps nanoseconds.
        let exchange = Exchange {
            t1: 0.0,
            t2: p.receive_ts.since(t1) as f64 / 4_294_967_296.0,
            t3: p.transmit_ts.since(t1) as f64 / 4_294_967_296.0,
            t4: t4.seconds_since(t1),
        };
        Ok(Measurement {
            offset: exchange.offset(),
            delay: exchange.delay(),
            server_time: p.transmit_ts,
            t4,
            stratum: p.stratum,
            reference_id: p.reference_id,
            leap: p.leap,
            poll: p.poll,
            precision: p.precision,
            root_delay: p.root_delay.seconds(),
            root_dispersion: p.root_dispersion.seconds(),
        })
    }
}

/// One successful exchange with a server.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// θ: server minus client, seconds.
    pub offset: f64,
    /// δ: round trip without the server's processing, seconds.
    pub delay: f64,
    /// T3, the server's transmit timestamp.
    pub server_time: NtpTimestamp,
    /// T4, the client's receive time.
    pub t4: NtpTimestamp,
    /// The server's stratum.
    pub stratum: u8,
    /// The server's reference id.
    pub reference_id: ReferenceId,
    /// The server's leap indicator.
    pub leap: Leap,
    /// The poll exponent in the reply.
    pub poll: i8,
    /// The server's precision, log2 s.
    pub precision: i8,
    /// The server's root delay, seconds.
    pub root_delay: f64,
    /// The server's root dispersion, seconds.
    pub root_dispersion: f64,
}

impl Measurement {
    /// The server's precision in seconds.
    pub fn precision_secs(&self) -> f64 {
        2f64.powi(i32::from(self.precision))
    }

    /// The clock-filter sample, at local time `at` seconds: its dispersion is the server's
    /// precision plus φ·δ (RFC 5905 §8).
    pub fn sample(&self, at: f64) -> Sample {
        Sample {
            offset: self.offset,
            delay: self.delay,
            dispersion: self.precision_secs() + PHI * self.delay,
            at,
        }
    }
}

/// What the samples of one server add up to, as `chronyd -Q` or ntpdate report it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SourceEstimate {
    /// The clock filter's pick (minimum delay) offset, seconds.
    pub offset: f64,
    /// Its delay, seconds.
    pub delay: f64,
    /// Its dispersion aged to the last sample, seconds.
    pub dispersion: f64,
    /// RMS of the samples' offsets around the pick, seconds.
    pub jitter: f64,
    /// The server's stratum.
    pub stratum: u8,
    /// The server's reference id.
    pub reference_id: ReferenceId,
    /// The server's leap indicator.
    pub leap: Leap,
    /// The server's root delay, seconds.
    pub root_delay: f64,
    /// The server's root dispersion, seconds.
    pub root_dispersion: f64,
    /// How many samples it is built from.
    pub samples: usize,
}

impl SourceEstimate {
    /// Runs the clock filter over one server's measurements, each taken at the given local
    /// time (seconds); `None` without any.
    pub fn from_measurements(measurements: &[(f64, Measurement)]) -> Option<Self> {
        let mut filter = ClockFilter::new();
        for (at, m) in measurements {
            filter.push(m.sample(*at));
        }
        let best = filter.best()?;
        let last_at = measurements
            .iter()
            .map(|(at, _)| *at)
            .fold(f64::MIN, f64::max);
        // The measurement the filter picked: the newest of the minimum delay.
        let (_, m) = measurements
            .iter()
            .rev()
            .find(|(at, m)| *at == best.at && m.delay == best.delay)?;
        Some(SourceEstimate {
            offset: best.offset,
            delay: best.delay,
            dispersion: best.dispersion_at(last_at),
            jitter: filter.jitter(),
            stratum: m.stratum,
            reference_id: m.reference_id,
            leap: m.leap,
            root_delay: m.root_delay,
            root_dispersion: m.root_dispersion,
            samples: measurements.len(),
        })
    }

    /// The root distance λ = (δ + root delay)/2 + ε + root dispersion + jitter (RFC 5905
    /// §11.2): the half-width of the interval that must hold the true offset.
    pub fn root_distance(&self) -> f64 {
        (self.delay + self.root_delay) / 2.0 + self.dispersion + self.root_dispersion + self.jitter
    }

    /// The correctness interval, Marzullo's input.
    pub fn interval(&self) -> Interval {
        Interval::around(self.offset, self.root_distance())
    }
}

/// The combined result of several servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Combined {
    /// The weighted offset of the truechimers, seconds.
    pub offset: f64,
    /// Marzullo's intersection.
    pub interval: Interval,
    /// The verdict on each source, in input order.
    pub verdicts: Vec<Chimer>,
}

/// Selects among the sources with Marzullo's algorithm and combines the truechimers' offsets
/// weighted by inverse root distance (RFC 5905 §11.2.1 and §11.2.3).
pub fn select_and_combine(sources: &[SourceEstimate]) -> Result<Combined, MarzulloError> {
    let intervals: Vec<Interval> = sources.iter().map(SourceEstimate::interval).collect();
    let selection = marzullo::select(&intervals)?;
    let survivors: Vec<(f64, f64)> = sources
        .iter()
        .zip(&selection.verdicts)
        .filter(|(_, v)| **v == Chimer::Truechimer)
        .map(|(s, _)| (s.offset, s.root_distance()))
        .collect();
    let offset = combine(&survivors).ok_or(MarzulloError::NoSources)?;
    Ok(Combined {
        offset,
        interval: selection.interval,
        verdicts: selection.verdicts,
    })
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::sync::ntp::server::{NtpServer, ServerConfig, Verdict};

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// One exchange between a client reading `client_s` and a server whose clock is
    /// `offset` ahead, with the given one-way delays.
    fn exchange(
        server: &mut NtpServer,
        req: &ClientRequest,
        client_s: f64,
        offset: f64,
        up: f64,
    ) -> Vec<u8> {
        let base = NtpTimestamp::from_unix_nanos(1_700_000_000_000_000_000);
        let rx = base.add_seconds(client_s + up + offset);
        let tx = base.add_seconds(client_s + up + offset + 0.0001);
        match server.respond(req.bytes(), LOOPBACK, rx, client_s, || tx) {
            Verdict::Reply { bytes, .. } => bytes,
            Verdict::Drop(r) => panic!("dropped: {r}"),
        }
    }

    fn t(client_s: f64) -> NtpTimestamp {
        NtpTimestamp::from_unix_nanos(1_700_000_000_000_000_000).add_seconds(client_s)
    }

    #[test]
    fn measures_offset_and_delay_through_the_server() {
        let mut server = NtpServer::new(ServerConfig::default(), None);
        let req = ClientRequest::new(0x1234_5678_9ABC_DEF0, 6, None);
        // Server 250 ms ahead; 2 ms up, 2 ms down, 0.1 ms processing.
        let reply = exchange(&mut server, &req, 10.0, 0.250, 0.002);
        let m = req.check(&reply, t(10.0), t(10.0041), None).unwrap();
        assert!((m.offset - 0.250).abs() < 1e-6, "offset {}", m.offset);
        assert!((m.delay - 0.004).abs() < 1e-6, "delay {}", m.delay);
        assert_eq!(m.stratum, 2);
        // Asymmetry biases by half of it (2 ms up, 10 ms down: 4 ms).
        let req2 = ClientRequest::new(7, 6, None);
        let reply = exchange(&mut server, &req2, 20.0, 0.250, 0.002);
        let m = req2.check(&reply, t(20.0), t(20.0121), None).unwrap();
        assert!((m.offset - 0.246).abs() < 1e-6, "offset {}", m.offset);
    }

    #[test]
    fn stray_kiss_and_unauthenticated_replies_give_no_measurement() {
        let ring = KeyRing::parse("1 SHA256 HEX:0011223344556677").unwrap();
        let mut server = NtpServer::new(ServerConfig::default(), None);
        let req = ClientRequest::new(99, 6, None);
        let other = ClientRequest::new(100, 6, None);
        let reply = exchange(&mut server, &other, 1.0, 0.0, 0.001);
        let err = req.check(&reply, t(1.0), t(1.002), None).unwrap_err();
        assert_eq!(err, ReplyError::NotOurs);
        assert!(err.keep_waiting());
        // A reply to an authenticated request must carry the key's MAC.
        let authed = ClientRequest::new(5, 6, ring.get(1));
        let plain = exchange(&mut server, &authed, 1.0, 0.0, 0.001);
        assert_eq!(
            authed.check(&plain, t(1.0), t(1.002), Some(&ring)),
            Err(ReplyError::AuthMissing)
        );
        let mut keyed = NtpServer::new(ServerConfig::default(), Some(ring.clone()));
        let signed = exchange(&mut keyed, &authed, 1.0, 0.0, 0.001);
        assert!(authed.check(&signed, t(1.0), t(1.002), Some(&ring)).is_ok());
        let mut tampered = signed.clone();
        tampered[40] ^= 0x80;
        assert_eq!(
            authed.check(&tampered, t(1.0), t(1.002), Some(&ring)),
            Err(ReplyError::AuthFailed(1))
        );
        // Kiss-o'-Death.
        let mut kod = Packet::parse(&plain).unwrap().packet;
        kod.stratum = 0;
        kod.reference_id = KissCode::Deny.reference_id();
        kod.origin_ts = NtpTimestamp::from_bits(99);
        assert_eq!(
            req.check(&kod.encode(), t(1.0), t(1.002), None),
            Err(ReplyError::Kiss(KissCode::Deny))
        );
        kod.stratum = 16;
        assert!(matches!(
            req.check(&kod.encode(), t(1.0), t(1.002), None),
            Err(ReplyError::Unsynchronized { stratum: 16, .. })
        ));
    }

    #[test]
    fn the_filter_picks_the_minimum_delay_and_marzullo_rejects_a_liar() {
        let mut server = NtpServer::new(ServerConfig::default(), None);
        let mut per_server = Vec::new();
        for (offset, skew) in [(0.010, 0.0), (0.012, 0.0), (0.500, 0.0)] {
            let mut ms = Vec::new();
            for (k, up) in [0.004, 0.001, 0.003].into_iter().enumerate() {
                let at = k as f64;
                let req = ClientRequest::new(k as u64 + 1, 6, None);
                let reply = exchange(&mut server, &req, at, offset + skew, up);
                let m = req
                    .check(&reply, t(at), t(at + 2.0 * up + 0.0001), None)
                    .unwrap();
                ms.push((at, m));
            }
            let est = SourceEstimate::from_measurements(&ms).unwrap();
            assert!((est.delay - 0.002).abs() < 1e-6);
            per_server.push(est);
        }
        let c = select_and_combine(&per_server).unwrap();
        assert_eq!(
            c.verdicts,
            [Chimer::Truechimer, Chimer::Truechimer, Chimer::Falseticker]
        );
        assert!(c.offset > 0.010 && c.offset < 0.012, "{}", c.offset);
    }
}
