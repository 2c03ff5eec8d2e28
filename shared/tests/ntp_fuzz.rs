//! Seeded fuzzing of the NTP codec, server and client, run in the normal suite (the
//! diamond-types habit: `fuzz(seed, n)` with fixed seeds). Each round takes a valid request or
//! reply — unauthenticated, MD5, SHA256 or AES-CMAC, NTPv3 or v4, with or without an
//! extension field — mutates it (bit flips, byte writes, truncation, extension, splices) and
//! feeds it to the parser, the server and the client.
//!
//! Oracles:
//! - nothing panics;
//! - a reply is never longer than the request it answers (no amplification);
//! - with keys, the server gives time only to a request whose authenticated bytes and MAC are
//!   exactly those of a validly signed request (a mutation of a signed request gets no time);
//! - the client accepts a reply only if it is byte-for-byte a valid signed reply to its own
//!   request (for authenticated requests), and never with an origin other than its cookie.

use std::net::{IpAddr, Ipv4Addr};

use chronoscope::sync::ntp::{
    auth::KeyRing,
    client::ClientRequest,
    packet::{NtpTimestamp, Packet},
    server::{NtpServer, ServerConfig, Verdict},
};
use rand::{rngs::StdRng, Rng, SeedableRng};

const KEYS: &str = "\
1 MD5 HEX:6162636465666768
2 SHA256 HEX:00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF
3 AES128 HEX:000102030405060708090A0B0C0D0E0F
";

fn mutate(rng: &mut StdRng, bytes: &mut Vec<u8>) {
    for _ in 0..rng.gen_range(1..4) {
        match rng.gen_range(0..6) {
            0 if !bytes.is_empty() => {
                let i = rng.gen_range(0..bytes.len());
                bytes[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if !bytes.is_empty() => {
                let i = rng.gen_range(0..bytes.len());
                bytes[i] = rng.gen();
            }
            2 => {
                let keep = rng.gen_range(0..=bytes.len());
                bytes.truncate(keep);
            }
            3 => {
                let n = rng.gen_range(1..80);
                bytes.extend((0..n).map(|_| rng.gen::<u8>()));
            }
            4 if bytes.len() >= 52 => {
                // A plausible extension-field header at a word boundary.
                let at = 48 + 4 * rng.gen_range(0..(bytes.len() - 48) / 4);
                let len: u16 = [0, 4, 16, 20, 24, 28, 0xFFFC][rng.gen_range(0..7)];
                bytes[at..at + 4].copy_from_slice(&[0x01, 0x04, (len >> 8) as u8, len as u8]);
            }
            5 if !bytes.is_empty() => {
                // A first byte of another version or mode.
                bytes[0] = [0u8, 3, 4, 0x23, 0x24, 0x1B, 0xE3][rng.gen_range(0..7)];
            }
            _ => {}
        }
    }
}

fn fuzz(seed: u64, rounds: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let ring = KeyRing::parse(KEYS).unwrap();
    let client: IpAddr = Ipv4Addr::LOCALHOST.into();
    let mut open = NtpServer::new(ServerConfig::default(), None);
    let mut keyed = NtpServer::new(ServerConfig::default(), Some(ring.clone()));
    let t = |s: u64| NtpTimestamp::from_bits((3_900_000_000 + s) << 32);
    for round in 0..rounds {
        let key = match rng.gen_range(0..4) {
            0 => None,
            k => ring.get(k),
        };
        let request = ClientRequest::new(rng.gen(), 6, key);
        let mut original = request.bytes().to_vec();
        if rng.gen_bool(0.2) {
            // NTPv3 carries untruncated digests.
            original[0] = (original[0] & !0x38) | (3 << 3);
            if let Some(k) = key {
                original.truncate(48);
                let mac = k.mac_field(&original, 3);
                original.extend_from_slice(&mac);
            }
        }
        let mut bytes = original.clone();
        mutate(&mut rng, &mut bytes);
        let _ = Packet::parse(&bytes);
        let now = round as f64;
        for (server, authenticating) in [(&mut open, false), (&mut keyed, true)] {
            match server.respond(&bytes, client, t(1), now, || t(2)) {
                Verdict::Reply { bytes: reply, kiss } => {
                    assert!(
                        reply.len() <= bytes.len().max(48),
                        "round {round}: amplification"
                    );
                    if authenticating && kiss.is_none() {
                        // Only the exact signed bytes (or a mutation that left header and MAC
                        // identical) may get time.
                        let p = Packet::parse(&bytes).unwrap();
                        let o = Packet::parse(&original).unwrap();
                        assert_eq!(
                            &bytes[..p.authenticated_len],
                            &original[..o.authenticated_len],
                            "round {round}: a mutated request got time"
                        );
                        assert_eq!(p.trailer, o.trailer, "round {round}");
                    }
                    // The client checks the (possibly mutated) reply.
                    let mut reply = reply;
                    let pristine = reply.clone();
                    if rng.gen_bool(0.5) {
                        mutate(&mut rng, &mut reply);
                    }
                    if let Ok(m) = request.check(&reply, t(0), t(3), Some(&ring)) {
                        let p = Packet::parse(&reply).unwrap().packet;
                        assert_eq!(
                            p.origin_ts,
                            Packet::parse(request.bytes()).unwrap().packet.transmit_ts
                        );
                        assert!(m.delay >= 0.0 && m.offset.is_finite());
                        if key.is_some() {
                            assert_eq!(
                                reply, pristine,
                                "round {round}: a mutated signed reply was accepted"
                            );
                        }
                    }
                }
                Verdict::Drop(_) => {}
            }
        }
    }
}

#[test]
fn seeded_codec_fuzz() {
    for seed in 0..8 {
        fuzz(seed, 2_000);
    }
}
