//! A lab's parameters as they travel in a link: `#/lamport?exp=4&seed=7`.
//!
//! [`Params`] is the ordered list of `key=value` pairs of a URL query; a lab declares what its
//! keys mean with [`ParamSpec`]s and reads typed values through them, so the frame can draw a
//! control for each parameter and a link reproduces exactly the run it was copied from.
//!
//! **Invariant (round trip).** For every lab, `build(params).params()` is the *canonical* form
//! of the run: building the lab again from it gives the same run, and its query text parses
//! back to equal [`Params`] (`Params::parse(p.to_query()) == p`, property-tested). Values equal
//! to their default are left out of the canonical form, except the seed, which every link
//! carries.

use std::fmt;
use std::time::Duration;

/// What a parameter holds, and the control the frame draws for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamKind {
    /// A whole number within `min..=max` (a number field).
    Integer {
        /// The smallest value.
        min: i64,
        /// The largest value.
        max: i64,
    },
    /// A real number within `min..=max` (a slider with its value beside it).
    Number {
        /// The smallest value.
        min: f64,
        /// The largest value.
        max: f64,
        /// The slider's step.
        step: f64,
        /// The unit shown after the value (`"ppm"`, `"ms"`, `"%"`).
        unit: &'static str,
    },
    /// One of a fixed list: `(value, label)` pairs (a select).
    Choice(&'static [(&'static str, &'static str)]),
    /// On or off, spelled `1` / `0` (a checkbox).
    Flag,
    /// Free text in the lab's own notation, checked by the lab (a text field), e.g. the drift
    /// lab's jumps `B:+1@30`.
    Text,
}

/// One parameter of a lab.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamSpec {
    /// Its key in the URL (`exp`, `seed`).
    pub key: &'static str,
    /// The control's label.
    pub label: &'static str,
    /// One line saying what it changes (the control's tooltip and description).
    pub help: &'static str,
    /// What it holds.
    pub kind: ParamKind,
    /// Its value when the URL does not name it.
    pub default: &'static str,
    /// One value per node, comma-separated (`drift=-50,0,50`): the frame shows it as a column
    /// of the per-node table, one control per node.
    pub per_node: bool,
    /// Keys that go back to their defaults when this one changes (choosing another experiment
    /// resets its rates; another node count resets the per-node values).
    pub resets: &'static [&'static str],
}

/// A number parameter (`ParamKind::Number`) in one call: `(min, max, step)` and its unit.
pub const fn number(
    key: &'static str,
    label: &'static str,
    help: &'static str,
    (min, max, step): (f64, f64, f64),
    unit: &'static str,
    default: &'static str,
) -> ParamSpec {
    ParamSpec::new(
        key,
        label,
        help,
        ParamKind::Number {
            min,
            max,
            step,
            unit,
        },
        default,
    )
}

impl ParamSpec {
    /// A parameter with no reset keys, one value (not per node).
    pub const fn new(
        key: &'static str,
        label: &'static str,
        help: &'static str,
        kind: ParamKind,
        default: &'static str,
    ) -> Self {
        ParamSpec {
            key,
            label,
            help,
            kind,
            default,
            per_node: false,
            resets: &[],
        }
    }

    /// The same parameter with one value per node.
    pub const fn per_node(mut self) -> Self {
        self.per_node = true;
        self
    }

    /// The same parameter, resetting `keys` when it changes.
    pub const fn resets(mut self, keys: &'static [&'static str]) -> Self {
        self.resets = keys;
        self
    }

    /// Checks one (single, not per-node) value against the kind.
    pub fn check(&self, value: &str) -> Result<(), ParamError> {
        let bad = |message: String| ParamError {
            key: self.key.to_owned(),
            message,
        };
        match self.kind {
            ParamKind::Integer { min, max } => match value.trim().parse::<i64>() {
                Ok(v) if (min..=max).contains(&v) => Ok(()),
                Ok(v) => Err(bad(format!("{v} is outside {min}–{max}"))),
                Err(_) => Err(bad(format!("expected a whole number, got {value:?}"))),
            },
            ParamKind::Number { min, max, .. } => match value.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v >= min && v <= max => Ok(()),
                Ok(v) if v.is_finite() => Err(bad(format!("{v} is outside {min}–{max}"))),
                _ => Err(bad(format!("expected a number, got {value:?}"))),
            },
            ParamKind::Choice(options) => {
                if options.iter().any(|(v, _)| *v == value) {
                    Ok(())
                } else {
                    let names: Vec<&str> = options.iter().map(|(v, _)| *v).collect();
                    Err(bad(format!(
                        "expected one of {}, got {value:?}",
                        names.join(", ")
                    )))
                }
            }
            ParamKind::Flag => match value {
                "0" | "1" => Ok(()),
                _ => Err(bad(format!("expected 0 or 1, got {value:?}"))),
            },
            ParamKind::Text => Ok(()),
        }
    }
}

/// The seed every lab carries: the one parameter the frame draws in its control bar.
pub const SEED: ParamSpec = ParamSpec::new(
    "seed",
    "seed",
    "the seed of every random choice: the same seed and parameters give the same run",
    ParamKind::Integer {
        min: 0,
        max: i64::MAX,
    },
    "1",
);

/// A parameter that cannot be used, in one line: `rates: 9 is outside 1–6`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ParamError {
    /// The parameter's key.
    pub key: String,
    /// What is wrong with its value.
    pub message: String,
}

impl ParamError {
    /// An error about `key`.
    pub fn new(key: &str, message: impl fmt::Display) -> Self {
        ParamError {
            key: key.to_owned(),
            message: message.to_string(),
        }
    }
}

/// The ordered `key=value` pairs of a lab's URL query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// No parameters: every lab's defaults (and seed 1).
    pub fn new() -> Self {
        Params::default()
    }

    /// Reads a query (`exp=4&seed=7`, with or without a leading `?`), percent-decoding keys
    /// and values. A key given twice keeps its last value; empty pieces are ignored.
    pub fn parse(query: &str) -> Self {
        let mut p = Params::new();
        for piece in query.trim_start_matches('?').split('&') {
            if piece.is_empty() {
                continue;
            }
            let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
            p.set(&decode(k), &decode(v));
        }
        p
    }

    /// The query text, percent-encoding what a URL fragment cannot carry (`&`, `=`, `#`, `%`,
    /// spaces, non-ASCII); empty when there are no parameters.
    pub fn to_query(&self) -> String {
        let mut s = String::new();
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                s.push('&');
            }
            encode_into(&mut s, k);
            s.push('=');
            encode_into(&mut s, v);
        }
        s
    }

    /// The value of `key`, if given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` (keeping its place if it was given, else at the end).
    pub fn set(&mut self, key: &str, value: &str) {
        match self.pairs.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.to_owned(),
            None => self.pairs.push((key.to_owned(), value.to_owned())),
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.pairs.retain(|(k, _)| k != key);
    }

    /// The pairs, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether no parameter is given.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// These parameters after the user changed `key` to `value` through its control: the keys
    /// `key` resets are dropped, and `key` is dropped too when `value` is its default.
    pub fn with_change(&self, specs: &[ParamSpec], key: &str, value: &str) -> Params {
        let mut p = self.clone();
        if let Some(spec) = specs.iter().chain([&SEED]).find(|s| s.key == key) {
            for r in spec.resets {
                p.remove(r);
            }
            if value == spec.default && key != SEED.key {
                p.remove(key);
                return p;
            }
        }
        p.set(key, value);
        p
    }

    /// Keys given that no spec (nor the seed) names, as errors.
    pub fn unknown(&self, specs: &[ParamSpec]) -> Vec<ParamError> {
        self.pairs
            .iter()
            .filter(|(k, _)| k != SEED.key && !specs.iter().any(|s| s.key == k))
            .map(|(k, _)| ParamError::new(k, "no such parameter in this lab"))
            .collect()
    }

    /// The raw value of `spec`'s key, checked against its kind; the default when absent.
    pub fn value(&self, spec: &ParamSpec) -> Result<String, ParamError> {
        let v = self.get(spec.key).unwrap_or(spec.default);
        if spec.per_node {
            for item in v.split(',').filter(|s| !s.is_empty()) {
                spec.check(item)?;
            }
        } else {
            spec.check(v)?;
        }
        Ok(v.to_owned())
    }

    /// `spec`'s value as a whole number.
    pub fn integer(&self, spec: &ParamSpec) -> Result<i64, ParamError> {
        let v = self.value(spec)?;
        v.trim()
            .parse()
            .map_err(|_| ParamError::new(spec.key, format!("expected a whole number, got {v:?}")))
    }

    /// `spec`'s value as a real number.
    pub fn number(&self, spec: &ParamSpec) -> Result<f64, ParamError> {
        let v = self.value(spec)?;
        v.trim()
            .parse()
            .map_err(|_| ParamError::new(spec.key, format!("expected a number, got {v:?}")))
    }

    /// `spec`'s value as a flag.
    pub fn flag(&self, spec: &ParamSpec) -> Result<bool, ParamError> {
        Ok(self.value(spec)? == "1")
    }

    /// The seed (the `seed` key, default 1).
    pub fn seed(&self) -> Result<u64, ParamError> {
        let v = self.get(SEED.key).unwrap_or(SEED.default);
        v.trim().parse().map_err(|_| {
            ParamError::new(SEED.key, format!("expected a whole number ≥ 0, got {v:?}"))
        })
    }

    /// A per-node parameter as `n` numbers: missing items take the default's item (or its
    /// last), so a list given for fewer nodes still builds.
    pub fn per_node_numbers(&self, spec: &ParamSpec, n: usize) -> Result<Vec<f64>, ParamError> {
        let given = self.value(spec)?;
        let defaults: Vec<&str> = spec.default.split(',').collect();
        let items: Vec<&str> = given.split(',').filter(|s| !s.is_empty()).collect();
        if items.len() > n {
            return Err(ParamError::new(
                spec.key,
                format!("{} values for {n} nodes", items.len()),
            ));
        }
        (0..n)
            .map(|i| {
                let item = items
                    .get(i)
                    .or_else(|| defaults.get(i))
                    .or(defaults.last())
                    .copied()
                    .unwrap_or("0");
                item.trim().parse::<f64>().map_err(|_| {
                    ParamError::new(spec.key, format!("expected numbers, got {item:?}"))
                })
            })
            .collect()
    }
}

/// Builds a lab's canonical [`Params`]: values equal to their spec's default are left out.
#[derive(Debug, Default)]
pub struct Canonical {
    params: Params,
}

impl Canonical {
    /// Starts with the seed, which every link carries.
    pub fn new(seed: u64) -> Self {
        let mut params = Params::new();
        params.set(SEED.key, &seed.to_string());
        Canonical { params }
    }

    /// Adds `spec` with `value`, unless it is the default.
    pub fn put(mut self, spec: &ParamSpec, value: impl fmt::Display) -> Self {
        let v = value.to_string();
        if v != spec.default {
            self.params.set(spec.key, &v);
        }
        self
    }

    /// Adds `spec` with `value` always.
    pub fn put_always(mut self, spec: &ParamSpec, value: impl fmt::Display) -> Self {
        self.params.set(spec.key, &value.to_string());
        self
    }

    /// The parameters.
    pub fn done(self) -> Params {
        self.params
    }
}

/// A number as a parameter value: no trailing zeros (`0.5`, `20`, `-12.25`).
pub fn fmt_number(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Seconds from `20`, `20s`, `15ms`, `2m`, `1h`, `1d`, `250us` (fractions allowed).
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("expected a time like 20s or 15ms, got {s:?}"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        other => return Err(format!("unknown time unit {other:?} in {s:?}")),
    };
    let v = v * scale;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("time out of range: {s:?}"))
    }
}

/// A duration from [`parse_seconds`]' notation, 0 to 400 days.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let v = parse_seconds(s)?;
    if !(0.0..=400.0 * 86_400.0).contains(&v) {
        return Err(format!(
            "expected a positive time up to 400 days, got {s:?}"
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'&' | b'=' | b'#' | b'%' | b'?' | b' ' | 0..=0x1f | 0x7f..=0xff => {
                out.push_str(&format!("%{b:02X}"));
            }
            _ => out.push(b as char),
        }
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RATE: ParamSpec = ParamSpec::new(
        "rate",
        "rate",
        "",
        ParamKind::Integer { min: 1, max: 6 },
        "3",
    );
    const DRIFT: ParamSpec = ParamSpec::new(
        "drift",
        "drift",
        "",
        ParamKind::Number {
            min: -500.0,
            max: 500.0,
            step: 5.0,
            unit: "ppm",
        },
        "-50,0,50",
    )
    .per_node();
    const EXP: ParamSpec = ParamSpec::new(
        "exp",
        "experiment",
        "",
        ParamKind::Integer { min: 1, max: 11 },
        "1",
    )
    .resets(&["rate"]);

    #[test]
    fn typed_values_and_defaults() {
        let p = Params::parse("?rate=5&drift=10,20&seed=7");
        assert_eq!(p.integer(&RATE), Ok(5));
        assert_eq!(p.seed(), Ok(7));
        assert_eq!(p.per_node_numbers(&DRIFT, 3), Ok(vec![10.0, 20.0, 50.0]));
        assert_eq!(Params::new().integer(&RATE), Ok(3));
        assert_eq!(Params::new().seed(), Ok(1));
        let e = Params::parse("rate=9").integer(&RATE).unwrap_err();
        assert_eq!(e.to_string(), "rate: 9 is outside 1–6");
        assert!(Params::parse("drift=1,2,3,4")
            .per_node_numbers(&DRIFT, 3)
            .is_err());
        assert_eq!(
            Params::parse("x=1").unknown(&[RATE]),
            vec![ParamError::new("x", "no such parameter in this lab")]
        );
    }

    #[test]
    fn a_change_drops_what_it_resets_and_defaults() {
        let p = Params::parse("exp=4&rate=5&seed=2");
        let q = p.with_change(&[EXP, RATE], "exp", "5");
        assert_eq!(q.to_query(), "exp=5&seed=2");
        let q = q.with_change(&[EXP, RATE], "exp", "1");
        assert_eq!(q.to_query(), "seed=2");
        assert_eq!(
            Canonical::new(3)
                .put(&RATE, 3)
                .put(&EXP, 4)
                .done()
                .to_query(),
            "seed=3&exp=4"
        );
    }

    #[test]
    fn numbers_print_short() {
        assert_eq!(fmt_number(20.0), "20");
        assert_eq!(fmt_number(0.5), "0.5");
        assert_eq!(fmt_number(-12.25), "-12.25");
    }

    proptest! {
        #[test]
        fn queries_round_trip(pairs in proptest::collection::vec(("[a-z]{1,6}", "\\PC{0,12}"), 0..6)) {
            let mut p = Params::new();
            for (k, v) in &pairs {
                p.set(k, v);
            }
            prop_assert_eq!(Params::parse(&p.to_query()), p);
        }
    }
}
