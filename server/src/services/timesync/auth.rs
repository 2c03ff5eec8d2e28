//! Authentication of time service RPCs: every `GetTime` carries a bearer token minted with the
//! caller's own key, and the server refuses a missing, malformed, wrong or expired one with
//! `UNAUTHENTICATED` (a tonic interceptor, before the handler runs).
//!
//! A token is `v1.<node id>.<expiry, Unix seconds>.<HMAC-SHA256 (RFC 2104) of
//! "v1.<id>.<expiry>" under the node's key, hex>`. The keys are per node, in a file every node
//! of a cluster shares: one line per node, `ID HEX:<hex digits>` (at least 16 bytes), `#`
//! comments — the shape of chrony's key file. A token names its node, so the server knows the
//! caller without trusting any other header; it is short-lived (the caller mints one per
//! request, valid [`TOKEN_LIFETIME`]) and expiry is judged by the host clock, not by the
//! node's simulated one.
//!
//! Guarantee: a request passes only with a token whose MAC, recomputed under the named node's
//! key, equals the one it carries (compared in constant time) and whose expiry is in the
//! future and not further than [`MAX_TOKEN_AHEAD`] away.

use std::{collections::BTreeMap, fmt, path::Path, time::Duration};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tonic::{metadata::MetadataValue, Request, Status};

use super::valid_id;

/// How long a minted token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(30);

/// Tokens expiring further ahead than this are refused (a stolen long-lived token is no use).
pub const MAX_TOKEN_AHEAD: Duration = Duration::from_secs(300);

/// The shortest key accepted, bytes.
pub const MIN_KEY_BYTES: usize = 16;

/// The longest token looked at, bytes.
const MAX_TOKEN_LEN: usize = 160;

/// The nodes' keys.
#[derive(Clone, Default)]
pub struct NodeKeys {
    /// Secret per node id.
    keys: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secrets.
        f.debug_struct("NodeKeys")
            .field("nodes", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a key file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct KeyFileError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Why a token is refused — the message the caller gets with `UNAUTHENTICATED`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `authorization` metadata.
    #[error("missing token")]
    Missing,
    /// Not `Bearer v1.<id>.<expiry>.<mac>`.
    #[error("malformed token")]
    Malformed,
    /// The node id has no key here.
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    /// The MAC does not match.
    #[error("wrong token for node {0:?}")]
    BadMac(String),
    /// The expiry has passed.
    #[error("token expired")]
    Expired,
    /// The expiry is too far ahead.
    #[error("token expiry too far ahead")]
    TooLong,
}

impl NodeKeys {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a node's key.
    pub fn insert(&mut self, id: &str, secret: Vec<u8>) {
        self.keys.insert(id.to_owned(), secret);
    }

    /// How many nodes have keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `id` has a key.
    pub fn contains(&self, id: &str) -> bool {
        self.keys.contains_key(id)
    }

    /// Parses a key file: `ID HEX:<hex>` per line, `#` comments, blank lines.
    pub fn parse(text: &str) -> Result<Self, KeyFileError> {
        let mut keys = NodeKeys::new();
        for (i, line) in text.lines().enumerate() {
            let err = |message: String| KeyFileError {
                line: i + 1,
                message,
            };
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(id), Some(secret), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(err("expected `ID HEX:<hex digits>`".into()));
            };
            if !valid_id(id) {
                return Err(err(format!("bad node id {id:?}")));
            }
            let hex = secret
                .strip_prefix("HEX:")
                .ok_or_else(|| err("the key must be written HEX:<hex digits>".into()))?;
            let bytes = decode_hex(hex).ok_or_else(|| err("the key is not hex".into()))?;
            if bytes.len() < MIN_KEY_BYTES {
                return Err(err(format!(
                    "the key must be at least {MIN_KEY_BYTES} bytes, got {}",
                    bytes.len()
                )));
            }
            if keys.contains(id) {
                return Err(err(format!("node {id:?} has two keys")));
            }
            keys.insert(id, bytes);
        }
        Ok(keys)
    }

    /// Reads and parses a key file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The key file text for these keys.
    pub fn to_file(&self) -> String {
        let mut out = String::from("# timesync node keys: ID HEX:<secret>\n");
        for (id, secret) in &self.keys {
            out.push_str(id);
            out.push_str(" HEX:");
            out.push_str(&encode_hex(secret));
            out.push('\n');
        }
        out
    }

    /// A token for `id` expiring at `expiry` (Unix seconds), or `None` if `id` has no key.
    pub fn mint(&self, id: &str, expiry: u64) -> Option<String> {
        let secret = self.keys.get(id)?;
        let claim = format!("v1.{id}.{expiry}");
        let mac = encode_hex(&mac(secret, &claim).finalize().into_bytes());
        Some(format!("{claim}.{mac}"))
    }

    /// Checks a token at host time `now` (Unix seconds); returns the node it names.
    pub fn verify(&self, token: &str, now: u64) -> Result<String, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (claim, mac_hex) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let mut parts = claim.split('.');
        let (Some("v1"), Some(id), Some(expiry), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        if !valid_id(id) {
            return Err(TokenError::Malformed);
        }
        let expiry: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
        let given = decode_hex(mac_hex).ok_or(TokenError::Malformed)?;
        let secret = self
            .keys
            .get(id)
            .ok_or_else(|| TokenError::UnknownNode(id.to_owned()))?;
        mac(secret, claim)
            .verify_slice(&given)
            .map_err(|_| TokenError::BadMac(id.to_owned()))?;
        if expiry <= now {
            return Err(TokenError::Expired);
        }
        if expiry - now > MAX_TOKEN_AHEAD.as_secs() {
            return Err(TokenError::TooLong);
        }
        Ok(id.to_owned())
    }

    /// Adds a fresh token for `id` to a request, valid [`TOKEN_LIFETIME`] from host time `now`.
    pub fn authorize<T>(&self, request: &mut Request<T>, id: &str, now: u64) {
        if let Some(token) = self.mint(id, now + TOKEN_LIFETIME.as_secs()) {
            if let Ok(v) = MetadataValue::try_from(format!("Bearer {token}")) {
                request.metadata_mut().insert("authorization", v);
            }
        }
    }

    /// The interceptor's check: the caller's node id from the request's bearer token.
    pub fn check<T>(&self, request: &Request<T>, now: u64) -> Result<String, TokenError> {
        let value = request
            .metadata()
            .get("authorization")
            .ok_or(TokenError::Missing)?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(TokenError::Malformed)?;
        self.verify(token.trim(), now)
    }
}

impl From<TokenError> for Status {
    fn from(e: TokenError) -> Self {
        Status::unauthenticated(e.to_string())
    }
}

/// The authenticated caller, put into the request's extensions by the interceptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

fn mac(secret: &[u8], claim: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(claim.as_bytes());
    m
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> NodeKeys {
        NodeKeys::parse(
            "# cluster keys\nA HEX:000102030405060708090a0b0c0d0e0f\n\nB HEX:ffeeddccbbaa99887766554433221100 # b\n",
        )
        .unwrap()
    }

    #[test]
    fn a_minted_token_verifies_and_names_its_node() {
        let k = keys();
        let t = k.mint("A", 1_000).unwrap();
        assert!(t.starts_with("v1.A.1000."));
        assert_eq!(k.verify(&t, 990), Ok("A".to_owned()));
        assert_eq!(k.mint("Z", 1_000), None);
    }

    #[test]
    fn wrong_expired_and_malformed_tokens_are_refused() {
        let k = keys();
        let t = k.mint("A", 1_000).unwrap();
        assert_eq!(k.verify(&t, 1_000), Err(TokenError::Expired));
        assert_eq!(k.verify(&t, 100), Err(TokenError::TooLong));
        // B's key does not make A's token, and no bit of the MAC may differ.
        let forged = t.replace("v1.A.", "v1.B.");
        assert_eq!(k.verify(&forged, 990), Err(TokenError::BadMac("B".into())));
        let mut flipped = t.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            k.verify(std::str::from_utf8(&flipped).unwrap(), 990),
            Err(TokenError::BadMac("A".into()))
        );
        // Another cluster's key for the same id is wrong too.
        let mut other = NodeKeys::new();
        other.insert("A", vec![7; 16]);
        assert_eq!(other.verify(&t, 990), Err(TokenError::BadMac("A".into())));
        for bad in [
            "",
            "v1.A.1000",
            "v2.A.1000.00",
            "v1.A.x.00",
            "v1.A.1000.zz",
            "v1.a b.1.00",
        ] {
            assert_eq!(k.verify(bad, 990), Err(TokenError::Malformed), "{bad:?}");
        }
        assert_eq!(
            k.verify(&"v1.A.1.".repeat(40), 0),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            k.verify(&NodeKeys::new().mint("A", 1).unwrap_or_default(), 0),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn key_files_are_checked_and_round_trip() {
        let k = keys();
        assert_eq!(k.len(), 2);
        let again = NodeKeys::parse(&k.to_file()).unwrap();
        let t = k.mint("B", 50).unwrap();
        assert_eq!(again.verify(&t, 1), Ok("B".to_owned()));
        for (text, msg) in [
            ("A", "expected"),
            ("A 0011", "HEX:"),
            ("A HEX:0g", "not hex"),
            ("A HEX:0011", "at least 16"),
            ("a/b HEX:000102030405060708090a0b0c0d0e0f", "bad node id"),
            (
                "A HEX:000102030405060708090a0b0c0d0e0f\nA HEX:000102030405060708090a0b0c0d0e0f",
                "two keys",
            ),
        ] {
            let e = NodeKeys::parse(text).unwrap_err();
            assert!(e.to_string().contains(msg), "{text:?}: {e}");
        }
        assert!(!format!("{k:?}").contains("0001"));
    }
}
