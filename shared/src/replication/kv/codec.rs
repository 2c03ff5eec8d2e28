//! The causal context on the wire: `X-Causal-Context`, opaque to clients as Riak's
//! `X-Riak-Vclock` is. Base64url (no padding) of `[version 1] [scheme b'd' | b'v'] [n]
//! n × ([id] [counter])`, every number an unsigned LEB128 varint, ids strictly increasing,
//! counters ≥ 1. The same varint form measures metadata bytes.
//!
//! **Invariant:** [`decode_context`] never panics and refuses anything it did not write:
//! bounded length, bounded entries, canonical order, no trailing bytes (property-tested on
//! arbitrary input and on round trips).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::Scheme;
use crate::clocks::vector_clock::VectorClock;
use crate::NodeId;

/// The longest context accepted, in characters.
pub const MAX_CONTEXT_CHARS: usize = 4096;
/// The most entries a context may hold.
pub const MAX_CONTEXT_ENTRIES: usize = 1024;

/// Why a context header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// Longer than [`MAX_CONTEXT_CHARS`].
    #[error("causal context is {0} characters, more than the {MAX_CONTEXT_CHARS} accepted")]
    TooLong(usize),
    /// Not base64url.
    #[error("causal context is not base64url")]
    NotBase64,
    /// Not in this store's format.
    #[error("causal context is malformed: {0}")]
    Malformed(&'static str),
    /// Written by a store with the other clock scheme.
    #[error("causal context was issued by a {0} store; this one uses {1}")]
    WrongScheme(&'static str, &'static str),
}

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The length of `v` as a varint.
pub fn varint_len(v: u64) -> usize {
    (64 - v.max(1).leading_zeros() as usize).div_ceil(7)
}

fn get_varint(bytes: &[u8], at: &mut usize) -> Result<u64, ContextError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes
            .get(*at)
            .ok_or(ContextError::Malformed("truncated number"))?;
        *at += 1;
        let part = u64::from(b & 0x7f);
        if shift == 63 && part > 1 {
            return Err(ContextError::Malformed("number overflows 64 bits"));
        }
        v |= part << shift;
        if b & 0x80 == 0 {
            if b == 0 && shift > 0 {
                return Err(ContextError::Malformed("non-canonical number"));
            }
            return Ok(v);
        }
    }
    Err(ContextError::Malformed("number overflows 64 bits"))
}

/// The bytes of a version vector (`n`, then `(id, counter)` pairs).
pub fn clock_bytes(vc: &VectorClock) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + vc.len() * 3);
    put_varint(&mut out, vc.len() as u64);
    for (id, c) in vc.iter() {
        put_varint(&mut out, u64::from(id));
        put_varint(&mut out, c);
    }
    out
}

/// The encoded size of a version vector, bytes.
pub fn clock_len(vc: &VectorClock) -> usize {
    varint_len(vc.len() as u64)
        + vc.iter()
            .map(|(id, c)| varint_len(u64::from(id)) + varint_len(c))
            .sum::<usize>()
}

/// Encodes a read's context for the `X-Causal-Context` header.
pub fn encode_context(scheme: Scheme, vc: &VectorClock) -> String {
    let mut bytes = vec![1, scheme.tag()];
    bytes.extend(clock_bytes(vc));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes an `X-Causal-Context` header issued by a store of `scheme`.
pub fn decode_context(scheme: Scheme, text: &str) -> Result<VectorClock, ContextError> {
    let text = text.trim();
    if text.len() > MAX_CONTEXT_CHARS {
        return Err(ContextError::TooLong(text.len()));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| ContextError::NotBase64)?;
    if bytes.first() != Some(&1) {
        return Err(ContextError::Malformed("unknown version"));
    }
    match bytes.get(1) {
        Some(&t) if t == scheme.tag() => {}
        Some(&t) => {
            let other = Scheme::from_tag(t).ok_or(ContextError::Malformed("unknown scheme"))?;
            return Err(ContextError::WrongScheme(other.name(), scheme.name()));
        }
        None => return Err(ContextError::Malformed("no scheme")),
    }
    let mut at = 2;
    let n = get_varint(&bytes, &mut at)?;
    if n > MAX_CONTEXT_ENTRIES as u64 {
        return Err(ContextError::Malformed("too many entries"));
    }
    let mut vc = VectorClock::new();
    let mut last: Option<u64> = None;
    for _ in 0..n {
        let id = get_varint(&bytes, &mut at)?;
        let counter = get_varint(&bytes, &mut at)?;
        if id > u64::from(NodeId::MAX) {
            return Err(ContextError::Malformed("node id out of range"));
        }
        if last.is_some_and(|l| id <= l) {
            return Err(ContextError::Malformed("entries out of order"));
        }
        if counter == 0 {
            return Err(ContextError::Malformed("zero counter"));
        }
        last = Some(id);
        vc.set(id as NodeId, counter);
    }
    if at != bytes.len() {
        return Err(ContextError::Malformed("trailing bytes"));
    }
    Ok(vc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(pairs in proptest::collection::btree_map(0u32..5000, 1u64..u64::MAX, 0..40)) {
            let mut vc = VectorClock::new();
            for (&n, &c) in &pairs {
                vc.set(n, c);
            }
            for scheme in [Scheme::Dvv, Scheme::Vv] {
                let text = encode_context(scheme, &vc);
                prop_assert_eq!(decode_context(scheme, &text), Ok(vc.clone()));
                prop_assert_eq!(clock_len(&vc), clock_bytes(&vc).len());
            }
        }

        #[test]
        fn never_panics(text in "\\PC{0,200}", bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_context(Scheme::Dvv, &text);
            let _ = decode_context(Scheme::Vv, &URL_SAFE_NO_PAD.encode(&bytes));
        }
    }

    #[test]
    fn refusals_are_clear() {
        let vv = encode_context(Scheme::Vv, &VectorClock::new());
        assert_eq!(
            decode_context(Scheme::Dvv, &vv).unwrap_err().to_string(),
            "causal context was issued by a vv store; this one uses dvv"
        );
        assert_eq!(
            decode_context(Scheme::Dvv, "!!").unwrap_err(),
            ContextError::NotBase64
        );
        let long = "A".repeat(MAX_CONTEXT_CHARS + 1);
        assert!(matches!(
            decode_context(Scheme::Dvv, &long),
            Err(ContextError::TooLong(_))
        ));
        // Out of order, zero counter, trailing bytes.
        for raw in [
            vec![1, b'd', 2, 5, 1, 3, 1],
            vec![1, b'd', 1, 5, 0],
            vec![1, b'd', 0, 0],
        ] {
            let text = URL_SAFE_NO_PAD.encode(raw);
            assert!(matches!(
                decode_context(Scheme::Dvv, &text),
                Err(ContextError::Malformed(_))
            ));
        }
    }
}
