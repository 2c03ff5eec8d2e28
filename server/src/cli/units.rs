//! Units on the command line, shared by every subcommand: times (`250ms`, `+2s`, `1h`) and
//! rates (`50ppm`).

use std::time::Duration;

/// Seconds from `20`, `20s`, `15ms`, `2m`, `1h`, `1d`, `250us` (fractions allowed).
pub(crate) fn parse_seconds(s: &str) -> Result<f64, String> {
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

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let v = parse_seconds(s)?;
    if !(0.0..=400.0 * 86_400.0).contains(&v) {
        return Err(format!(
            "expected a positive time up to 400 days, got {s:?}"
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

/// A signed rate in ppm from `50ppm`, `-20ppm` or `50` (|rate| ≤ 100000 ppm).
pub(crate) fn parse_signed_ppm(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .trim_end_matches("ppm")
        .trim()
        .parse()
        .map_err(|_| format!("expected a rate like 50ppm or -20ppm, got {s:?}"))?;
    if v.is_finite() && v.abs() <= 100_000.0 {
        Ok(v)
    } else {
        Err(format!("a rate must be within ±100000 ppm, got {s:?}"))
    }
}

/// A signed offset in seconds from `+250ms`, `-80ms`, `1.5s` (within ±1 day).
pub(crate) fn parse_offset(s: &str) -> Result<f64, String> {
    let v = parse_seconds(s)?;
    if v.abs() <= 86_400.0 {
        Ok(v)
    } else {
        Err(format!("an offset must be within ±1 day, got {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_offsets_and_rates() {
        assert_eq!(parse_offset("+250ms"), Ok(0.25));
        assert_eq!(parse_offset("-80ms"), Ok(-0.08));
        assert!(parse_offset("2d").is_err());
        assert_eq!(parse_signed_ppm("-20ppm"), Ok(-20.0));
        assert!(parse_signed_ppm("fast").is_err());
    }
}
