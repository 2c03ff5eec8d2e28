//! A strict reader of the compact JSON this crate's own serializers write (serde_json's
//! `to_string`: no whitespace, integers in canonical form), for the hot decode paths — the
//! relay's `op` frames and the editor's payloads, parsed once per message in every tab.
//!
//! **Contract:** a reader accepts a *subset* of what serde_json accepts, and for that subset
//! yields exactly what serde_json would. On anything else — whitespace, a number in another
//! form, a string with an escape it does not handle, an unexpected key order — it gives up
//! (`None`) and the caller decodes the same text with serde_json, which also produces every
//! error message. So the fast path can only ever be a shortcut, never a second opinion
//! (property-tested by each user against serde_json on valid and mutated input).

use std::borrow::Cow;

/// Deepest nesting [`Reader::skip_value`] follows (serde_json's own limit is 128).
const MAX_DEPTH: usize = 64;

/// A cursor over JSON text.
pub(crate) struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(text: &'a str) -> Reader<'a> {
        Reader { text, at: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The byte offset of the cursor.
    pub(crate) fn offset(&self) -> usize {
        self.at
    }

    /// The text between two offsets (both at ASCII bytes the reader stopped at).
    pub(crate) fn slice(&self, from: usize, to: usize) -> &'a str {
        &self.text[from..to]
    }

    /// Whether the whole text has been read.
    pub(crate) fn at_end(&self) -> bool {
        self.at == self.text.len()
    }

    /// The next byte, not consumed.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    /// Consumes `b` if it is next.
    pub(crate) fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// Consumes `lit` if it comes next.
    pub(crate) fn lit(&mut self, lit: &str) -> Option<()> {
        self.bytes()[self.at..]
            .starts_with(lit.as_bytes())
            .then(|| self.at += lit.len())
    }

    /// A non-negative integer in canonical form (`0`, or no leading zero), not followed by a
    /// fraction or exponent (serde_json would read those as floats).
    pub(crate) fn u64(&mut self) -> Option<u64> {
        let b = self.bytes();
        let start = self.at;
        let mut v: u64 = 0;
        while let Some(&d) = b.get(self.at).filter(|d| d.is_ascii_digit()) {
            v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        if digits == 0 || (digits > 1 && b[start] == b'0') {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(v)
    }

    /// [`Reader::u64`] that fits a `u32`.
    pub(crate) fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.u64()?).ok()
    }

    /// A string: borrowed when it has no escape; one with escapes is decoded by serde_json
    /// (so every escape rule is serde_json's own).
    pub(crate) fn str(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let b = self.bytes();
        let start = self.at;
        let mut escaped = false;
        loop {
            match *b.get(self.at)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.at += 2;
                }
                c if c < 0x20 => return None,
                _ => self.at += 1,
            }
        }
        let body = self.text.get(start..self.at)?;
        self.at += 1;
        if escaped {
            serde_json::from_str::<String>(self.text.get(start - 1..self.at)?)
                .ok()
                .map(Cow::Owned)
        } else {
            Some(Cow::Borrowed(body))
        }
    }

    /// Skips one JSON value, checking it is one: objects, arrays, strings without `\u`
    /// escapes, numbers, `true`, `false`, `null`, no whitespace, nesting up to [`MAX_DEPTH`].
    /// Anything else is given up on, valid or not.
    pub(crate) fn skip_value(&mut self) -> Option<()> {
        self.skip(0)
    }

    fn skip(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => {
                if depth == MAX_DEPTH {
                    return None;
                }
                self.at += 1;
                if self.eat(b'}').is_some() {
                    return Some(());
                }
                loop {
                    self.skip_str()?;
                    self.eat(b':')?;
                    self.skip(depth + 1)?;
                    match self.peek()? {
                        b',' => self.at += 1,
                        b'}' => {
                            self.at += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                if depth == MAX_DEPTH {
                    return None;
                }
                self.at += 1;
                if self.eat(b']').is_some() {
                    return Some(());
                }
                loop {
                    self.skip(depth + 1)?;
                    match self.peek()? {
                        b',' => self.at += 1,
                        b']' => {
                            self.at += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => self.skip_str(),
            b't' => self.lit("true"),
            b'f' => self.lit("false"),
            b'n' => self.lit("null"),
            _ => self.skip_number(),
        }
    }

    fn skip_str(&mut self) -> Option<()> {
        self.eat(b'"')?;
        let b = self.bytes();
        loop {
            match *b.get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                b'\\' => {
                    match *b.get(self.at + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        _ => return None, // `\u` (surrogate rules) and anything invalid
                    }
                    self.at += 2;
                }
                c if c < 0x20 => return None,
                _ => self.at += 1,
            }
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn skip_number(&mut self) -> Option<()> {
        let b = self.bytes();
        let digits = |at: &mut usize| {
            let start = *at;
            while b.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at - start
        };
        let mut at = self.at;
        if b.get(at) == Some(&b'-') {
            at += 1;
        }
        let first = *b.get(at)?;
        let n = digits(&mut at);
        if n == 0 || (n > 1 && first == b'0') {
            return None;
        }
        if b.get(at) == Some(&b'.') {
            at += 1;
            if digits(&mut at) == 0 {
                return None;
            }
        }
        if matches!(b.get(at), Some(b'e' | b'E')) {
            at += 1;
            if matches!(b.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            if digits(&mut at) == 0 {
                return None;
            }
        }
        self.at = at;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Whether the reader skips `text` as exactly one value.
    fn skips(text: &str) -> bool {
        let mut r = Reader::new(text);
        r.skip_value().is_some() && r.at_end()
    }

    /// Whether `text` holds a `\u` escape: a backslash that is not itself escaped, then `u`.
    /// (`"\\u"` is an escaped backslash followed by a plain `u`, not an escape.)
    fn has_u_escape(text: &str) -> bool {
        let mut bytes = text.bytes();
        while let Some(b) = bytes.next() {
            if b == b'\\' && bytes.next() == Some(b'u') {
                return true;
            }
        }
        false
    }

    #[test]
    fn an_escaped_backslash_before_u_is_no_u_escape() {
        assert!(!has_u_escape(r#"["\\u"]"#));
        assert!(skips(r#"["\\u"]"#));
        assert!(has_u_escape(r#"["\u0001"]"#));
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            (-1e6f64..1e6).prop_map(serde_json::Value::from),
            ".{0,8}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                prop::collection::btree_map(".{0,4}", inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// What serde_json writes is skipped whole, unless it holds a `\u` escape.
        #[test]
        fn skips_what_serde_json_writes(v in arb_json()) {
            let text = serde_json::to_string(&v).unwrap();
            prop_assert_eq!(skips(&text), !has_u_escape(&text), "{}", text);
        }

        /// Never accepts what serde_json refuses: any edit of valid JSON that the reader still
        /// skips whole is valid JSON.
        #[test]
        fn never_accepts_invalid_json(v in arb_json(), at in any::<prop::sample::Index>(), edit in 0u8..4, byte in prop::sample::select(b"{}[]\",:-.0123456789eEtrufalsn \\\x01".to_vec())) {
            let mut text = serde_json::to_string(&v).unwrap().into_bytes();
            let i = at.index(text.len() + 1);
            match edit {
                0 if i < text.len() => { text.remove(i); }
                1 if i < text.len() => text[i] = byte,
                _ => text.insert(i, byte),
            }
            let Ok(text) = String::from_utf8(text) else { return Ok(()) };
            if skips(&text) {
                prop_assert!(serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok(), "{}", text);
            }
        }

        /// Integers and strings read as serde_json reads them, or not at all.
        #[test]
        fn numbers_and_strings_agree_with_serde_json(text in "[-0-9.eE]{1,22}|\"([^\"\\\\]|\\\\[\"\\\\/bfnrtu]){0,6}\"") {
            let mut r = Reader::new(&text);
            if let Some(v) = r.u64().filter(|_| r.at_end()) {
                prop_assert_eq!(serde_json::from_str::<u64>(&text).ok(), Some(v));
            }
            let mut r = Reader::new(&text);
            if let Some(s) = r.str() {
                prop_assert!(r.at_end());
                prop_assert_eq!(serde_json::from_str::<String>(&text).ok(), Some(s.into_owned()));
            }
        }
    }

    #[test]
    fn canonical_integers_only() {
        for (text, want) in [
            ("0", Some(0)),
            ("42", Some(42)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("01", None),
            ("-1", None),
            ("1.0", None),
            ("1e3", None),
            ("", None),
        ] {
            assert_eq!(Reader::new(text).u64(), want, "{text}");
        }
        assert_eq!(Reader::new("4294967296").u32(), None);
        let mut r = Reader::new(r#""a\nb"x"#);
        assert_eq!(r.str().as_deref(), Some("a\nb"));
        assert_eq!(r.peek(), Some(b'x'));
        assert!(!skips("[1, 2]"), "whitespace is given up on");
        assert!(skips(r#"{"a":[1,-2.5e-3,true,null,"\t"]}"#));
        assert!(!skips("[01]") && !skips("[1.]") && !skips("{\"a\"}") && !skips("[1,]"));
    }
}
