//! `chronoscope hlc now` — hybrid logical clock timestamps from the system clock, printed as the
//! lab notebook's `hlc_gen` prints them, optionally persisted in a state file so that they stay
//! strictly increasing across runs even when the system clock is set back
//! ([`chronoscope::clocks::hlc`]).
//!
//! The state file holds the last timestamp issued, as JSON (`{"l": ms, "c": counter}`); it is
//! written (to a temporary file, then renamed over the old one) before any timestamp is
//! printed, so a crash never lets a later run issue a timestamp already shown.

use std::{
    fmt::Write as _,
    io,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use chronoscope::clocks::hlc::{Hlc, HlcError, HlcTimestamp};
use clap::{Args, Subcommand};

use super::units::parse_duration;
use crate::services::clock::{ClockSource, HostClock};

/// `chronoscope hlc …`.
#[derive(Debug, Args)]
pub struct HlcArgs {
    #[command(subcommand)]
    command: HlcCommand,
}

#[derive(Debug, Subcommand)]
enum HlcCommand {
    /// Issue timestamps from the system clock.
    Now(NowArgs),
}

/// Options of `chronoscope hlc now`.
#[derive(Debug, Args)]
pub struct NowArgs {
    /// Keep the last timestamp here, so the next run continues after it.
    #[arg(long)]
    state: Option<PathBuf>,
    /// How many timestamps to issue.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    count: u32,
    /// Merge a remote timestamp (`l.c`, as printed in brackets) before issuing, as on a
    /// message receipt; refused if it is more than `--max-offset` ahead of the system clock.
    #[arg(long)]
    receive: Option<HlcTimestamp>,
    /// How far ahead of the physical clock a remote timestamp may be.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    max_offset: Duration,
}

/// Why `hlc now` failed.
#[derive(Debug, thiserror::Error)]
pub enum HlcCliError {
    /// The state file cannot be read or written.
    #[error("state file {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: io::Error,
    },
    /// The state file does not hold a timestamp.
    #[error("state file {path} does not hold an HLC timestamp: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The remote timestamp was refused.
    #[error(transparent)]
    Clock(#[from] HlcError),
}

/// Issues `count` timestamps from `clock` (after merging `receive`), continuing after the state
/// file's timestamp and leaving the last one in it.
pub fn issue(
    clock: &dyn ClockSource,
    state: Option<&Path>,
    count: u32,
    receive: Option<HlcTimestamp>,
    max_offset: Duration,
) -> Result<Vec<HlcTimestamp>, HlcCliError> {
    let physical = || (clock.now_unix_nanos() / 1_000_000).max(0) as u64;
    let max_offset_ms = max_offset.as_millis().min(u128::from(u64::MAX)) as u64;
    let mut hlc = match state.map(read_state).transpose()?.flatten() {
        Some(last) => Hlc::resume(physical, max_offset_ms, last),
        None => Hlc::new(physical, max_offset_ms),
    };
    let mut issued = Vec::with_capacity(count as usize);
    if let Some(remote) = receive {
        issued.push(hlc.receive(remote)?);
    }
    while issued.len() < count as usize {
        issued.push(hlc.now());
    }
    if let Some(path) = state {
        write_state(path, hlc.last())?;
    }
    Ok(issued)
}

fn read_state(path: &Path) -> Result<Option<HlcTimestamp>, HlcCliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(HlcCliError::State {
                path: path.to_owned(),
                source,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| HlcCliError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

fn write_state(path: &Path, last: HlcTimestamp) -> Result<(), HlcCliError> {
    let err = |source| HlcCliError::State {
        path: path.to_owned(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let json = serde_json::to_string(&last).map_err(|e| err(io::Error::other(e)))?;
    std::fs::write(&tmp, json + "\n").map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// `TS: 12:00:00.001:001 (Physical: 12:00:00.001, Logical: 1) [1700000000001.1]` — the lab
/// notebook's form with milliseconds (UTC), and the `l.c` form `--receive` takes.
pub fn hlc_gen_line(t: HlcTimestamp) -> String {
    let ms = t.physical_ms();
    let day_ms = ms % 86_400_000;
    let (h, m, s, milli) = (
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000,
    );
    let wall = format!("{h:02}:{m:02}:{s:02}.{milli:03}");
    format!(
        "TS: {wall}:{:03} (Physical: {wall}, Logical: {}) [{t}]",
        t.logical(),
        t.logical()
    )
}

/// Runs `chronoscope hlc now`.
pub fn run(args: HlcArgs) -> ExitCode {
    let HlcCommand::Now(args) = args.command;
    match issue(
        &HostClock,
        args.state.as_deref(),
        args.count,
        args.receive,
        args.max_offset,
    ) {
        Ok(issued) => {
            let mut out = String::new();
            for t in issued {
                let _ = writeln!(out, "{}", hlc_gen_line(t));
            }
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    };

    use super::*;

    /// A clock the test sets: the "system clock" an operator moves.
    #[derive(Default)]
    struct Settable(AtomicI64);
    impl ClockSource for Settable {
        fn now_unix_nanos(&self) -> i128 {
            i128::from(self.0.load(Ordering::SeqCst))
        }
    }

    /// An instant in November 2023.
    const NOON_NS: i64 = 1_700_006_400_000_000_000;

    #[test]
    fn a_state_file_keeps_timestamps_increasing_when_the_clock_jumps_back_ten_minutes() {
        let dir = std::env::temp_dir().join(format!("chronoscope-hlc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("hlc.json");
        let _ = std::fs::remove_file(&state);
        let clock = Arc::new(Settable(AtomicI64::new(NOON_NS)));
        let first = issue(&*clock, Some(&state), 3, None, Duration::from_millis(500)).unwrap();
        assert!(first.windows(2).all(|w| w[0] < w[1]));
        // The operator sets the system clock back ten minutes; the next run continues.
        clock.0.fetch_sub(600 * 1_000_000_000, Ordering::SeqCst);
        let second = issue(&*clock, Some(&state), 2, None, Duration::from_millis(500)).unwrap();
        assert!(second[0] > first[2], "{} after {}", second[0], first[2]);
        assert_eq!(second[0].physical_ms(), first[2].physical_ms());
        assert_eq!(second[1].logical(), first[2].logical() + 2);
        // Without the state file, the same jump would go backwards: the file is what helps.
        let stateless = issue(&*clock, None, 1, None, Duration::from_millis(500)).unwrap();
        assert!(stateless[0] < first[2]);
        // A remote timestamp beyond the maximum offset is refused, and the state is unchanged.
        let now_ms = (clock.now_unix_nanos() / 1_000_000) as u64;
        let remote = HlcTimestamp::new(now_ms + 60_000, 0).unwrap();
        let err = issue(
            &*clock,
            Some(&state),
            1,
            Some(remote),
            Duration::from_millis(500),
        )
        .unwrap_err();
        assert!(
            matches!(err, HlcCliError::Clock(HlcError::OffsetExceeded { .. })),
            "{err}"
        );
        let third = issue(&*clock, Some(&state), 1, None, Duration::from_millis(500)).unwrap();
        assert!(third[0] > second[1]);
        std::fs::write(&state, "garbage").unwrap();
        assert!(matches!(
            issue(&*clock, Some(&state), 1, None, Duration::from_millis(500)),
            Err(HlcCliError::Corrupt { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_line_has_the_notebooks_shape() {
        let t = HlcTimestamp::new(12 * 3_600_000 + 1, 1).unwrap();
        assert_eq!(
            hlc_gen_line(t),
            "TS: 12:00:00.001:001 (Physical: 12:00:00.001, Logical: 1) [43200001.1]"
        );
    }
}
