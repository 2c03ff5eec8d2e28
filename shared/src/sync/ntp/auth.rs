//! Symmetric-key authentication of NTP packets: RFC 5905 §7.3 (the MAC field), RFC 8573
//! (AES-CMAC for NTP), and the key file format of chrony (`keyfile` directive): one key per
//! line, `ID [TYPE] KEY`, where `TYPE` is a hash (`MD5`, the default, `SHA1`, `SHA256`,
//! `SHA384`, `SHA512`) or a cipher for CMAC (`AES128`, `AES256`), and `KEY` is ASCII or
//! `HEX:` followed by hex digits.
//!
//! A hash key's MAC is `H(key ‖ packet)`; a cipher key's is `CMAC(key, packet)`. In NTPv4 a
//! digest longer than 20 bytes is truncated to 20 so that a MAC is never mistaken for an
//! extension field (RFC 7822 §7.5) — chrony does the same, which is what makes SHA256 keys
//! interoperate.
//!
//! Guarantee: [`KeyRing::verify`] accepts a MAC only if it is the full (or, in NTPv4, the
//! 20-byte truncated) digest of the covered bytes under the named key; an unknown key id, a
//! short digest or one differing in any bit is refused, and the comparison takes the same
//! time whichever byte differs.

use std::{collections::BTreeMap, fmt};

/// A key's algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// MD5 (chrony's default when no type is given).
    Md5,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// AES-128-CMAC (RFC 8573); the key must be 16 bytes.
    Aes128,
    /// AES-256-CMAC; the key must be 32 bytes.
    Aes256,
}

impl KeyType {
    /// The name chrony's key file uses.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Md5 => "MD5",
            KeyType::Sha1 => "SHA1",
            KeyType::Sha256 => "SHA256",
            KeyType::Sha384 => "SHA384",
            KeyType::Sha512 => "SHA512",
            KeyType::Aes128 => "AES128",
            KeyType::Aes256 => "AES256",
        }
    }

    /// Parses a key file's type name (case-insensitive, as chrony).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            KeyType::Md5,
            KeyType::Sha1,
            KeyType::Sha256,
            KeyType::Sha384,
            KeyType::Sha512,
            KeyType::Aes128,
            KeyType::Aes256,
        ]
        .into_iter()
        .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The full digest length, bytes.
    pub fn digest_len(self) -> usize {
        match self {
            KeyType::Md5 | KeyType::Aes128 | KeyType::Aes256 => 16,
            KeyType::Sha1 => 20,
            KeyType::Sha256 => 32,
            KeyType::Sha384 => 48,
            KeyType::Sha512 => 64,
        }
    }
}

/// One symmetric key. Its secret is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SymmetricKey {
    /// The key id carried in the MAC field.
    pub id: u32,
    /// Algorithm.
    pub kind: KeyType,
    /// The secret bytes. Invariant: 16 bytes for AES128, 32 for AES256, at least 1 otherwise.
    secret: Vec<u8>,
}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SymmetricKey")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl SymmetricKey {
    /// A key; refused if the secret's length does not suit the algorithm.
    pub fn new(id: u32, kind: KeyType, secret: Vec<u8>) -> Result<Self, KeyError> {
        let ok = match kind {
            KeyType::Aes128 => secret.len() == 16,
            KeyType::Aes256 => secret.len() == 32,
            _ => !secret.is_empty(),
        };
        if !ok {
            return Err(KeyError::Length {
                kind: kind.name(),
                len: secret.len(),
            });
        }
        Ok(SymmetricKey { id, kind, secret })
    }

    /// The full digest of `data` under this key.
    pub fn digest(&self, data: &[u8]) -> Vec<u8> {
        fn hash<D: sha2::Digest>(key: &[u8], data: &[u8]) -> Vec<u8> {
            let mut h = D::new();
            h.update(key);
            h.update(data);
            h.finalize().to_vec()
        }
        fn cmac<C: cmac::Mac + cmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            // The key length was checked when the key was made.
            let mut m =
                <C as cmac::digest::KeyInit>::new_from_slice(key).expect("checked key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        let k = &self.secret;
        match self.kind {
            KeyType::Md5 => hash::<md5::Md5>(k, data),
            KeyType::Sha1 => hash::<sha1::Sha1>(k, data),
            KeyType::Sha256 => hash::<sha2::Sha256>(k, data),
            KeyType::Sha384 => hash::<sha2::Sha384>(k, data),
            KeyType::Sha512 => hash::<sha2::Sha512>(k, data),
            KeyType::Aes128 => cmac::<cmac::Cmac<aes::Aes128>>(k, data),
            KeyType::Aes256 => cmac::<cmac::Cmac<aes::Aes256>>(k, data),
        }
    }

    /// The MAC field (key id and digest) for a packet of the given NTP version whose covered
    /// bytes are `data`: NTPv4 digests are truncated to 20 bytes.
    pub fn mac_field(&self, data: &[u8], version: u8) -> Vec<u8> {
        let mut digest = self.digest(data);
        if version == 4 {
            digest.truncate(super::packet::MAX_V4_MAC_LEN - 4);
        }
        let mut field = Vec::with_capacity(4 + digest.len());
        field.extend_from_slice(&self.id.to_be_bytes());
        field.extend_from_slice(&digest);
        field
    }

    /// Whether `digest` is this key's MAC of `data` (see the module's guarantee).
    pub fn verify(&self, data: &[u8], digest: &[u8], version: u8) -> bool {
        let full = self.digest(data);
        let expected_len = if version == 4 {
            full.len().min(super::packet::MAX_V4_MAC_LEN - 4)
        } else {
            full.len()
        };
        // chrony also accepts the full digest in NTPv4 when it is no longer than 20 bytes.
        if digest.len() != expected_len {
            return false;
        }
        let diff = full
            .iter()
            .zip(digest)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0
    }
}

/// Why a key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The secret does not suit the algorithm.
    #[error("a {kind} key cannot be {len} bytes long")]
    Length {
        /// The algorithm's name.
        kind: &'static str,
        /// The secret's length.
        len: usize,
    },
}

/// A key file line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key file line {line}: {reason}")]
pub struct KeyFileError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// The keys of a key file, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRing {
    /// By key id.
    keys: BTreeMap<u32, SymmetricKey>,
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses chrony's key file format. Blank lines and lines starting with `#`, `!`, `;` or
    /// `%` are comments. Unlike chrony, which skips a bad line with a warning, a bad line is
    /// an error: a typo in a key should not silently leave the server unauthenticated.
    pub fn parse(text: &str) -> Result<Self, KeyFileError> {
        let mut ring = KeyRing::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with(['#', '!', ';', '%']) {
                continue;
            }
            let err = |reason: String| KeyFileError {
                line: i + 1,
                reason,
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (id, kind, value) = match fields.as_slice() {
                [id, value] => (*id, "MD5", *value),
                [id, kind, value] => (*id, *kind, *value),
                _ => return Err(err("expected `ID [TYPE] KEY`".into())),
            };
            let id: u32 = id
                .parse()
                .map_err(|_| err(format!("key id {id:?} is not a number")))?;
            let kind = KeyType::from_name(kind)
                .ok_or_else(|| err(format!("unknown key type {kind:?}")))?;
            let secret = decode_key(value).map_err(err)?;
            let key = SymmetricKey::new(id, kind, secret).map_err(|e| err(e.to_string()))?;
            if ring.keys.insert(id, key).is_some() {
                return Err(err(format!("key {id} is defined twice")));
            }
        }
        Ok(ring)
    }

    /// Adds (or replaces) a key.
    pub fn insert(&mut self, key: SymmetricKey) {
        self.keys.insert(key.id, key);
    }

    /// The key with this id.
    pub fn get(&self, id: u32) -> Option<&SymmetricKey> {
        self.keys.get(&id)
    }

    /// How many keys the ring holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `digest` is the MAC of `data` under key `key_id` (false for an unknown id).
    pub fn verify(&self, key_id: u32, data: &[u8], digest: &[u8], version: u8) -> bool {
        self.get(key_id)
            .is_some_and(|k| k.verify(data, digest, version))
    }
}

/// A key value: `HEX:` and hex digits, `ASCII:` and text, or text.
fn decode_key(value: &str) -> Result<Vec<u8>, String> {
    if let Some(hex) = value.strip_prefix("HEX:") {
        if hex.is_empty() || !hex.len().is_multiple_of(2) {
            return Err("a HEX: key needs an even, non-zero number of hex digits".into());
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(&hex[i..i + 2], 16)
                    .map_err(|_| format!("{:?} is not hex", &hex[i..i + 2]))
            })
            .collect()
    } else {
        let text = value.strip_prefix("ASCII:").unwrap_or(value);
        if text.is_empty() {
            return Err("empty key".into());
        }
        Ok(text.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# chrony key file
1 SHA256 HEX:00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF
2 AES128 HEX:000102030405060708090A0B0C0D0E0F
3 secret
! comment
4 sha1 ASCII:another
";

    #[test]
    fn parses_chrony_key_files() {
        let ring = KeyRing::parse(FILE).unwrap();
        assert_eq!(ring.len(), 4);
        assert_eq!(ring.get(1).unwrap().kind, KeyType::Sha256);
        assert_eq!(ring.get(2).unwrap().kind, KeyType::Aes128);
        assert_eq!(ring.get(3).unwrap().kind, KeyType::Md5);
        assert_eq!(ring.get(3).unwrap().secret, b"secret");
        assert_eq!(ring.get(4).unwrap().secret, b"another");
        assert!(!format!("{:?}", ring.get(3).unwrap()).contains("secret\""));
    }

    #[test]
    fn bad_lines_are_errors_with_their_number() {
        let e = KeyRing::parse("1 SHA256 HEX:0g").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.to_string().starts_with("key file line 1: "), "{e}");
        assert!(KeyRing::parse("\n2 FOO bar")
            .unwrap_err()
            .reason
            .contains("unknown key type"));
        assert!(KeyRing::parse("x MD5 bar").is_err());
        assert!(KeyRing::parse("1 AES128 HEX:00")
            .unwrap_err()
            .reason
            .contains("AES128"));
        assert!(KeyRing::parse("1 MD5 a\n1 MD5 b")
            .unwrap_err()
            .reason
            .contains("twice"));
    }

    #[test]
    fn known_answer_digests() {
        // RFC 4493 §4, example 2: AES-CMAC of the 16-byte message under the RFC's key.
        let key = SymmetricKey::new(
            1,
            KeyType::Aes128,
            decode_key("HEX:2b7e151628aed2a6abf7158809cf4f3c").unwrap(),
        )
        .unwrap();
        let msg = decode_key("HEX:6bc1bee22e409f96e93d7e117393172a").unwrap();
        assert_eq!(
            key.digest(&msg),
            decode_key("HEX:070a16b46b4d4144f79bdd9dd04a287c").unwrap()
        );
        // A hash key's MAC is H(key ‖ data): MD5("abc") with key "a" and data "bc".
        let md5 = SymmetricKey::new(2, KeyType::Md5, b"a".to_vec()).unwrap();
        assert_eq!(
            md5.digest(b"bc"),
            decode_key("HEX:900150983cd24fb0d6963f7d28e17f72").unwrap()
        );
    }

    #[test]
    fn ntpv4_truncates_long_digests_to_20_bytes() {
        let ring = KeyRing::parse(FILE).unwrap();
        let k = ring.get(1).unwrap();
        let field = k.mac_field(b"packet", 4);
        assert_eq!(field.len(), 24);
        assert_eq!(&field[..4], &1u32.to_be_bytes());
        assert!(ring.verify(1, b"packet", &field[4..], 4));
        // The full digest is the MAC for NTPv3.
        let v3 = k.mac_field(b"packet", 3);
        assert_eq!(v3.len(), 36);
        assert!(ring.verify(1, b"packet", &v3[4..], 3));
        assert!(!ring.verify(1, b"packet", &v3[4..], 4));
    }

    #[test]
    fn wrong_keys_data_or_digests_are_refused() {
        let ring = KeyRing::parse(FILE).unwrap();
        let field = ring.get(2).unwrap().mac_field(b"packet", 4);
        assert!(ring.verify(2, b"packet", &field[4..], 4));
        assert!(!ring.verify(1, b"packet", &field[4..], 4));
        assert!(!ring.verify(9, b"packet", &field[4..], 4));
        assert!(!ring.verify(2, b"packes", &field[4..], 4));
        assert!(!ring.verify(2, b"packet", &field[4..19], 4));
        for bit in 0..(field.len() - 4) * 8 {
            let mut bad = field[4..].to_vec();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(!ring.verify(2, b"packet", &bad, 4));
        }
    }
}
