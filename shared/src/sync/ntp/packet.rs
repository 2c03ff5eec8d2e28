//! The NTPv4 packet on the wire: D. Mills et al., RFC 5905 §6 (timestamp formats) and §7.3
//! (the header), RFC 7822 (extension fields and where the MAC starts), RFC 5905 §7.4
//! (Kiss-o'-Death).
//!
//! Guarantee: [`Packet::parse`] accepts any byte string without panicking and returns either a
//! packet whose every field came from the bytes, or a [`PacketError`] saying what was wrong;
//! `parse(encode(p)) == p` for every packet (property-tested), and every timestamp
//! difference is computed modulo 2^64 (NTP era arithmetic), so an era roll-over does not break
//! offsets between clocks less than 68 years apart.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Length of the NTP header without extensions or MAC.
pub const HEADER_LEN: usize = 48;

/// Shortest MAC field: a 4-byte key id and a 16-byte digest (MD5 or AES-CMAC).
pub const MIN_MAC_LEN: usize = 4 + 16;

/// Longest MAC field in an NTPv4 packet: digests are truncated to 20 bytes so that a MAC can be
/// told apart from an extension field (RFC 7822 §7.5; chrony does the same).
pub const MAX_V4_MAC_LEN: usize = 4 + 20;

/// Longest MAC field of an older version: a 4-byte key id and a SHA-512 digest.
pub const MAX_MAC_LEN: usize = 4 + 64;

/// The longest datagram this codec accepts: a header, a kilobyte of extensions and a MAC.
pub const MAX_PACKET_LEN: usize = HEADER_LEN + 1024 + MAX_MAC_LEN;

/// Seconds from the NTP prime epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub const UNIX_EPOCH_NTP_SECONDS: u64 = 2_208_988_800;

/// An NTP timestamp (RFC 5905 §6): 32 bits of seconds since 1900 (modulo the era) and 32 bits
/// of fraction. Zero means "not set".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct NtpTimestamp(u64);

impl NtpTimestamp {
    /// The unset timestamp.
    pub const ZERO: NtpTimestamp = NtpTimestamp(0);

    /// A timestamp from its 64 wire bits.
    pub const fn from_bits(bits: u64) -> Self {
        NtpTimestamp(bits)
    }

    /// The 64 wire bits.
    pub const fn to_bits(self) -> u64 {
        self.0
    }

    /// Whether this is the unset timestamp.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The timestamp of a Unix time in nanoseconds (wrapping into the NTP era).
    pub fn from_unix_nanos(nanos: i128) -> Self {
        let since_1900 = nanos + i128::from(UNIX_EPOCH_NTP_SECONDS) * 1_000_000_000;
        let secs = since_1900.div_euclid(1_000_000_000);
        let sub = since_1900.rem_euclid(1_000_000_000);
        let frac = (sub << 32) / 1_000_000_000;
        NtpTimestamp((((secs as u128 & 0xFFFF_FFFF) << 32) | frac as u128) as u64)
    }

    /// The Unix time in nanoseconds this timestamp denotes, taking the era (a 136-year
    /// window) that puts it nearest to `pivot_unix_nanos` — as a client resolves a server's
    /// timestamp near its own clock.
    pub fn to_unix_nanos_near(self, pivot_unix_nanos: i128) -> i128 {
        let pivot = NtpTimestamp::from_unix_nanos(pivot_unix_nanos);
        let diff_nanos = (i128::from(self.since(pivot)) * 1_000_000_000) >> 32;
        pivot_unix_nanos + diff_nanos
    }

    /// `self − earlier` as signed 32.32 fixed point, modulo 2^64 (RFC 5905's era arithmetic:
    /// correct when the two are less than 68 years apart).
    pub fn since(self, earlier: NtpTimestamp) -> i64 {
        self.0.wrapping_sub(earlier.0) as i64
    }

    /// `self − earlier` in seconds (see [`since`](Self::since)).
    pub fn seconds_since(self, earlier: NtpTimestamp) -> f64 {
        self.since(earlier) as f64 / 4_294_967_296.0
    }

    /// This timestamp moved by `seconds` (wrapping at the era).
    pub fn add_seconds(self, seconds: f64) -> Self {
        let delta = (seconds * 4_294_967_296.0).round() as i64;
        NtpTimestamp(self.0.wrapping_add(delta as u64))
    }
}

/// NTP's short format (RFC 5905 §6): unsigned 16.16 fixed-point seconds, used for root delay
/// and root dispersion.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct NtpShort(u32);

impl NtpShort {
    /// From the 32 wire bits.
    pub const fn from_bits(bits: u32) -> Self {
        NtpShort(bits)
    }

    /// The 32 wire bits.
    pub const fn to_bits(self) -> u32 {
        self.0
    }

    /// From seconds, saturating at 0 and at 65536 s.
    pub fn from_seconds(seconds: f64) -> Self {
        let v = (seconds * 65_536.0).round();
        NtpShort(if v.is_nan() || v <= 0.0 {
            0
        } else if v >= u32::MAX as f64 {
            u32::MAX
        } else {
            v as u32
        })
    }

    /// In seconds.
    pub fn seconds(self) -> f64 {
        f64::from(self.0) / 65_536.0
    }
}

/// The leap indicator (RFC 5905 Figure 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Leap {
    /// No leap second pending.
    NoWarning,
    /// The last minute of the day has 61 seconds.
    AddSecond,
    /// The last minute of the day has 59 seconds.
    DeleteSecond,
    /// The clock is not synchronised (also set on every Kiss-o'-Death).
    Unsynchronized,
}

impl Leap {
    fn from_bits(bits: u8) -> Self {
        match bits & 3 {
            0 => Leap::NoWarning,
            1 => Leap::AddSecond,
            2 => Leap::DeleteSecond,
            _ => Leap::Unsynchronized,
        }
    }

    fn to_bits(self) -> u8 {
        match self {
            Leap::NoWarning => 0,
            Leap::AddSecond => 1,
            Leap::DeleteSecond => 2,
            Leap::Unsynchronized => 3,
        }
    }

    /// The name `chronyc tracking` uses.
    pub fn name(self) -> &'static str {
        match self {
            Leap::NoWarning => "normal",
            Leap::AddSecond => "insert second",
            Leap::DeleteSecond => "delete second",
            Leap::Unsynchronized => "not synchronised",
        }
    }
}

/// The association mode (RFC 5905 Figure 10); all eight values decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// 0.
    Reserved,
    /// 1.
    SymmetricActive,
    /// 2.
    SymmetricPassive,
    /// 3: a request.
    Client,
    /// 4: a reply.
    Server,
    /// 5.
    Broadcast,
    /// 6: ntpq's control messages.
    Control,
    /// 7: ntpdc's private messages (the amplification vector of 2014; never answered).
    Private,
}

impl Mode {
    fn from_bits(bits: u8) -> Self {
        match bits & 7 {
            0 => Mode::Reserved,
            1 => Mode::SymmetricActive,
            2 => Mode::SymmetricPassive,
            3 => Mode::Client,
            4 => Mode::Server,
            5 => Mode::Broadcast,
            6 => Mode::Control,
            _ => Mode::Private,
        }
    }

    fn to_bits(self) -> u8 {
        match self {
            Mode::Reserved => 0,
            Mode::SymmetricActive => 1,
            Mode::SymmetricPassive => 2,
            Mode::Client => 3,
            Mode::Server => 4,
            Mode::Broadcast => 5,
            Mode::Control => 6,
            Mode::Private => 7,
        }
    }
}

/// The reference id: for stratum 0 and 1 four ASCII characters (a Kiss code or a reference
/// clock's name), above that the IPv4 address of the server's own source (RFC 5905 §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct ReferenceId(pub [u8; 4]);

impl ReferenceId {
    /// chrony's reference id for its `local` clock, 127.127.1.1 ("LOCL" in older daemons):
    /// what a server without an upstream source announces.
    pub const LOCAL: ReferenceId = ReferenceId([127, 127, 1, 1]);

    /// Four ASCII characters, padded with NULs (longer strings are cut).
    pub fn ascii(code: &str) -> Self {
        let mut id = [0u8; 4];
        for (slot, b) in id.iter_mut().zip(code.bytes()) {
            *slot = b;
        }
        ReferenceId(id)
    }

    /// As a 32-bit number, network order.
    pub fn to_u32(self) -> u32 {
        u32::from_be_bytes(self.0)
    }

    /// As `chronyc sources` prints it for the given stratum: ASCII for 0 and 1, a dotted
    /// quad above.
    pub fn display(self, stratum: u8) -> String {
        let printable = self.0.iter().all(|&b| b == 0 || b.is_ascii_graphic());
        if stratum <= 1 && printable {
            self.0
                .iter()
                .take_while(|&&b| b != 0)
                .map(|&b| b as char)
                .collect()
        } else {
            let [a, b, c, d] = self.0;
            format!("{a}.{b}.{c}.{d}")
        }
    }
}

/// A Kiss-o'-Death code (RFC 5905 §7.4): stratum 0 with four ASCII characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum KissCode {
    /// Rate exceeded: the client must reduce its rate.
    Rate,
    /// Access denied: stop sending to this server.
    Deny,
    /// Access restricted: stop sending to this server.
    Rstr,
    /// A code this codec does not interpret (printed as received).
    Other([u8; 4]),
}

impl KissCode {
    /// The code of a stratum-0 reference id.
    pub fn from_reference_id(id: ReferenceId) -> Self {
        match &id.0 {
            b"RATE" => KissCode::Rate,
            b"DENY" => KissCode::Deny,
            b"RSTR" => KissCode::Rstr,
            other => KissCode::Other(*other),
        }
    }

    /// The reference id that carries it.
    pub fn reference_id(self) -> ReferenceId {
        match self {
            KissCode::Rate => ReferenceId(*b"RATE"),
            KissCode::Deny => ReferenceId(*b"DENY"),
            KissCode::Rstr => ReferenceId(*b"RSTR"),
            KissCode::Other(code) => ReferenceId(code),
        }
    }
}

impl fmt::Display for KissCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reference_id().display(0))
    }
}

/// The NTP header (RFC 5905 Figure 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet {
    /// Leap indicator.
    pub leap: Leap,
    /// Version number, 1–4.
    pub version: u8,
    /// Association mode.
    pub mode: Mode,
    /// 0 (unspecified or Kiss-o'-Death), 1 (primary), 2–15 (secondary), 16 (unsynchronised).
    pub stratum: u8,
    /// Poll interval, log2 seconds.
    pub poll: i8,
    /// Clock precision, log2 seconds.
    pub precision: i8,
    /// Round-trip delay to the primary source.
    pub root_delay: NtpShort,
    /// Error bound relative to the primary source.
    pub root_dispersion: NtpShort,
    /// The server's source (or a Kiss code).
    pub reference_id: ReferenceId,
    /// When the server's clock was last set or corrected.
    pub reference_ts: NtpTimestamp,
    /// T1: the request's transmit timestamp, echoed by the server.
    pub origin_ts: NtpTimestamp,
    /// T2: when the request arrived at the server.
    pub receive_ts: NtpTimestamp,
    /// T3 (in a reply) or the client's nonce (in a request): when the packet left.
    pub transmit_ts: NtpTimestamp,
}

/// The MAC field at the end of an authenticated packet (RFC 5905 §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacField<'a> {
    /// The symmetric key's id.
    pub key_id: u32,
    /// The digest (16–64 bytes).
    pub digest: &'a [u8],
}

/// What follows the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trailer<'a> {
    /// Nothing: an unauthenticated packet.
    None,
    /// A MAC over the header and extension fields.
    Mac(MacField<'a>),
    /// A crypto-NAK: a key id of 0 and no digest (the sender could not authenticate us).
    CryptoNak,
}

/// A parsed datagram: the header, what follows it, and how many bytes the MAC covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The header.
    pub packet: Packet,
    /// MAC, crypto-NAK or nothing.
    pub trailer: Trailer<'a>,
    /// Bytes from the start covered by a MAC: the header and any extension fields.
    pub authenticated_len: usize,
    /// How many RFC 7822 extension fields were skipped.
    pub extensions: usize,
}

/// Why a datagram is not an NTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than the 48-byte header.
    #[error("packet too short: {0} bytes, the header is 48")]
    TooShort(usize),
    /// Longer than [`MAX_PACKET_LEN`].
    #[error("packet too long: {0} bytes")]
    TooLong(usize),
    /// Not a whole number of 32-bit words.
    #[error("packet length {0} is not a multiple of 4")]
    Unaligned(usize),
    /// Version 0 or above 4.
    #[error("unsupported NTP version {0}")]
    Version(u8),
    /// The bytes after the header are neither extension fields nor a MAC.
    #[error("{0} bytes after the header are neither extension fields nor a MAC")]
    Trailer(usize),
}

impl Packet {
    /// Encodes the 48-byte header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = (self.leap.to_bits() << 6) | ((self.version & 7) << 3) | self.mode.to_bits();
        b[1] = self.stratum;
        b[2] = self.poll as u8;
        b[3] = self.precision as u8;
        b[4..8].copy_from_slice(&self.root_delay.to_bits().to_be_bytes());
        b[8..12].copy_from_slice(&self.root_dispersion.to_bits().to_be_bytes());
        b[12..16].copy_from_slice(&self.reference_id.0);
        b[16..24].copy_from_slice(&self.reference_ts.to_bits().to_be_bytes());
        b[24..32].copy_from_slice(&self.origin_ts.to_bits().to_be_bytes());
        b[32..40].copy_from_slice(&self.receive_ts.to_bits().to_be_bytes());
        b[40..48].copy_from_slice(&self.transmit_ts.to_bits().to_be_bytes());
        b
    }

    /// Parses a datagram: the header, then RFC 7822 extension fields (skipped, but covered by
    /// the MAC), then a MAC or a crypto-NAK. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<Parsed<'_>, PacketError> {
        let len = bytes.len();
        if len < HEADER_LEN {
            return Err(PacketError::TooShort(len));
        }
        if len > MAX_PACKET_LEN {
            return Err(PacketError::TooLong(len));
        }
        if !len.is_multiple_of(4) {
            return Err(PacketError::Unaligned(len));
        }
        let version = (bytes[0] >> 3) & 7;
        if !(1..=4).contains(&version) {
            return Err(PacketError::Version(version));
        }
        let u32_at =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let u64_at = |i: usize| (u64::from(u32_at(i)) << 32) | u64::from(u32_at(i + 4));
        let packet = Packet {
            leap: Leap::from_bits(bytes[0] >> 6),
            version,
            mode: Mode::from_bits(bytes[0]),
            stratum: bytes[1],
            poll: bytes[2] as i8,
            precision: bytes[3] as i8,
            root_delay: NtpShort::from_bits(u32_at(4)),
            root_dispersion: NtpShort::from_bits(u32_at(8)),
            reference_id: ReferenceId([bytes[12], bytes[13], bytes[14], bytes[15]]),
            reference_ts: NtpTimestamp::from_bits(u64_at(16)),
            origin_ts: NtpTimestamp::from_bits(u64_at(24)),
            receive_ts: NtpTimestamp::from_bits(u64_at(32)),
            transmit_ts: NtpTimestamp::from_bits(u64_at(40)),
        };
        // RFC 7822: in NTPv4, anything longer than the longest MAC starts with an extension
        // field (type, length ≥ 16, a multiple of 4).
        let mut at = HEADER_LEN;
        let mut extensions = 0;
        if version == 4 {
            while len - at > MAX_V4_MAC_LEN {
                let field_len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
                if field_len < 16 || !field_len.is_multiple_of(4) || field_len > len - at {
                    return Err(PacketError::Trailer(len - HEADER_LEN));
                }
                at += field_len;
                extensions += 1;
            }
        }
        let rest = len - at;
        let max_mac = if version == 4 {
            MAX_V4_MAC_LEN
        } else {
            MAX_MAC_LEN
        };
        let trailer = match rest {
            0 => Trailer::None,
            4 if u32_at(at) == 0 => Trailer::CryptoNak,
            n if (MIN_MAC_LEN..=max_mac).contains(&n) => Trailer::Mac(MacField {
                key_id: u32_at(at),
                digest: &bytes[at + 4..],
            }),
            _ => return Err(PacketError::Trailer(len - HEADER_LEN)),
        };
        Ok(Parsed {
            packet,
            trailer,
            authenticated_len: at,
            extensions,
        })
    }

    /// The Kiss code, if this is a Kiss-o'-Death (stratum 0 in a reply).
    pub fn kiss_code(&self) -> Option<KissCode> {
        (self.stratum == 0 && self.mode == Mode::Server)
            .then(|| KissCode::from_reference_id(self.reference_id))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample() -> Packet {
        Packet {
            leap: Leap::NoWarning,
            version: 4,
            mode: Mode::Server,
            stratum: 2,
            poll: 6,
            precision: -20,
            root_delay: NtpShort::from_seconds(0.0125),
            root_dispersion: NtpShort::from_seconds(0.0031),
            reference_id: ReferenceId::LOCAL,
            reference_ts: NtpTimestamp::from_bits(0xE8A1_0000_8000_0000),
            origin_ts: NtpTimestamp::from_bits(1),
            receive_ts: NtpTimestamp::from_bits(2),
            transmit_ts: NtpTimestamp::from_bits(3),
        }
    }

    #[test]
    fn the_header_layout_matches_rfc_5905_figure_8() {
        let b = sample().encode();
        // LI 0, VN 4, mode 4 → 0b00_100_100.
        assert_eq!(b[0], 0x24);
        assert_eq!(b[1], 2);
        assert_eq!(b[3] as i8, -20);
        assert_eq!(&b[12..16], &[127, 127, 1, 1]);
        assert_eq!(&b[16..20], &[0xE8, 0xA1, 0, 0]);
        assert_eq!(b[47], 3);
        let parsed = Packet::parse(&b).unwrap();
        assert_eq!(parsed.packet, sample());
        assert_eq!(parsed.trailer, Trailer::None);
    }

    #[test]
    fn unix_time_converts_with_the_1900_epoch() {
        // 2024-01-01T00:00:00Z is 1_704_067_200 Unix seconds.
        let t = NtpTimestamp::from_unix_nanos(1_704_067_200_500_000_000);
        assert_eq!(t.to_bits() >> 32, 1_704_067_200 + UNIX_EPOCH_NTP_SECONDS);
        assert_eq!(t.to_bits() & 0xFFFF_FFFF, 1 << 31);
        assert_eq!(
            t.to_unix_nanos_near(1_704_067_000_000_000_000),
            1_704_067_200_500_000_000
        );
        // Era 1 starts on 2036-02-07T06:28:16Z: a timestamp just past it wraps to a small
        // number, yet differences and era resolution still work.
        let era1 = (1i128 << 32) - i128::from(UNIX_EPOCH_NTP_SECONDS);
        let before = NtpTimestamp::from_unix_nanos((era1 - 1) * 1_000_000_000);
        let after = NtpTimestamp::from_unix_nanos((era1 + 1) * 1_000_000_000);
        assert!(after < before);
        assert_eq!(after.seconds_since(before), 2.0);
        assert_eq!(
            after.to_unix_nanos_near(era1 * 1_000_000_000),
            (era1 + 1) * 1_000_000_000
        );
    }

    #[test]
    fn macs_crypto_naks_and_extension_fields_are_told_apart() {
        let mut b = sample().encode().to_vec();
        b.extend_from_slice(&7u32.to_be_bytes());
        b.extend_from_slice(&[0xAB; 20]);
        let p = Packet::parse(&b).unwrap();
        assert_eq!(p.authenticated_len, 48);
        assert_eq!(
            p.trailer,
            Trailer::Mac(MacField {
                key_id: 7,
                digest: &[0xAB; 20]
            })
        );
        // An extension field (type 0x0104, 16 bytes) before the MAC is covered by it.
        let mut e = sample().encode().to_vec();
        e.extend_from_slice(&[0x01, 0x04, 0, 16]);
        e.extend_from_slice(&[0; 12]);
        e.extend_from_slice(&b[48..]);
        let p = Packet::parse(&e).unwrap();
        assert_eq!((p.authenticated_len, p.extensions), (64, 1));
        assert!(matches!(
            p.trailer,
            Trailer::Mac(MacField { key_id: 7, .. })
        ));
        let mut nak = sample().encode().to_vec();
        nak.extend_from_slice(&[0; 4]);
        assert_eq!(Packet::parse(&nak).unwrap().trailer, Trailer::CryptoNak);
        // Garbage after the header is refused, not misread.
        let mut bad = sample().encode().to_vec();
        bad.extend_from_slice(&[0xFF; 8]);
        assert_eq!(Packet::parse(&bad), Err(PacketError::Trailer(8)));
        let mut bad_ext = sample().encode().to_vec();
        bad_ext.extend_from_slice(&[0, 0, 0xFF, 0xF0]);
        bad_ext.extend_from_slice(&[0; 28]);
        assert_eq!(Packet::parse(&bad_ext), Err(PacketError::Trailer(32)));
    }

    #[test]
    fn malformed_lengths_and_versions_are_errors() {
        assert_eq!(Packet::parse(&[0; 47]), Err(PacketError::TooShort(47)));
        assert_eq!(Packet::parse(&[0x23; 49]), Err(PacketError::Unaligned(49)));
        assert_eq!(Packet::parse(&[0; 48]), Err(PacketError::Version(0)));
        assert_eq!(Packet::parse(&[0x3B; 48]), Err(PacketError::Version(7)));
        let long = vec![0x23; MAX_PACKET_LEN + 4];
        assert_eq!(
            Packet::parse(&long),
            Err(PacketError::TooLong(MAX_PACKET_LEN + 4))
        );
    }

    #[test]
    fn kiss_codes_are_stratum_zero_replies() {
        let mut p = sample();
        p.stratum = 0;
        p.reference_id = KissCode::Rate.reference_id();
        assert_eq!(p.kiss_code(), Some(KissCode::Rate));
        assert_eq!(KissCode::Rate.to_string(), "RATE");
        p.mode = Mode::Client;
        assert_eq!(p.kiss_code(), None);
        assert_eq!(ReferenceId::ascii("GPS").display(1), "GPS");
        assert_eq!(ReferenceId::LOCAL.display(8), "127.127.1.1");
    }

    proptest! {
        /// Encoding then parsing gives the packet back, for every field value.
        #[test]
        fn encode_then_parse_is_identity(
            li in 0u8..4, vn in 1u8..5, mode in 0u8..8, stratum: u8, poll: i8, precision: i8,
            rd: u32, rdisp: u32, refid: [u8; 4], ts: [u64; 4],
        ) {
            let p = Packet {
                leap: Leap::from_bits(li), version: vn, mode: Mode::from_bits(mode), stratum, poll,
                precision, root_delay: NtpShort::from_bits(rd), root_dispersion: NtpShort::from_bits(rdisp),
                reference_id: ReferenceId(refid), reference_ts: NtpTimestamp::from_bits(ts[0]),
                origin_ts: NtpTimestamp::from_bits(ts[1]), receive_ts: NtpTimestamp::from_bits(ts[2]),
                transmit_ts: NtpTimestamp::from_bits(ts[3]),
            };
            let bytes = p.encode();
            let parsed = Packet::parse(&bytes).unwrap();
            prop_assert_eq!(parsed.packet, p);
        }

        /// Timestamp differences survive the era wrap: a − b computed on the wire equals the
        /// difference of the Unix times.
        #[test]
        fn differences_are_era_safe(a in -4_000_000_000i64..8_000_000_000i64, d in -2_000_000_000i64..2_000_000_000i64) {
            let a_ns = i128::from(a) * 1_000_000_000;
            let b_ns = a_ns + i128::from(d) * 1_000_000_000;
            let ta = NtpTimestamp::from_unix_nanos(a_ns);
            let tb = NtpTimestamp::from_unix_nanos(b_ns);
            prop_assert_eq!(tb.seconds_since(ta), d as f64);
            prop_assert_eq!(tb.to_unix_nanos_near(a_ns), b_ns);
        }

        /// Any bytes parse or fail with an error; none panics, and a success reads the header
        /// the bytes hold.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(p) = Packet::parse(&bytes) {
                prop_assert_eq!(&p.packet.encode()[..], &bytes[..48]);
                prop_assert!(p.authenticated_len <= bytes.len());
            }
        }
    }
}
