//! Units on the command line, shared by every subcommand: times (`250ms`, `+2s`, `1h`) and
//! rates (`50ppm`).

// The time notation is the labs' own, so a link and a command line read alike.
pub(crate) use chronoscope::labs::params::{parse_duration, parse_seconds};

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
