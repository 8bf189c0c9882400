//! Durations and times on the command line: `--wait 30s`, `--backoff
//! 1s,5s`, `--not-before 2026-01-01T09:00:00Z`.
//!
//! Durations are read by `herald_proto::duration`, so a flag takes exactly
//! what the protocol takes (`1500`, `1500ms`, `30s`, `2m`, `1h`; 1 ms to
//! 30 days). Times are epoch milliseconds or RFC 3339 (UTC `Z` or an
//! offset), converted here without a date library: the one conversion
//! needed is days since the epoch of a civil date.

use herald_proto::duration;
use std::time::{Duration, SystemTime};

const DURATION_HELP: &str = "a duration: 1500 (ms), 1500ms, 30s, 2m or 1h, at most 30 days";

/// A duration of at least 1 ms (`--wait`, `--ttl`, `--age`).
pub fn duration(word: &str) -> Result<Duration, String> {
    duration::parse(word, 1)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("'{word}' is not {DURATION_HELP}, of at least 1 ms"))
}

/// A duration that may be 0 (`--delay`).
pub fn duration_or_zero(word: &str) -> Result<Duration, String> {
    duration::parse(word, 0)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("'{word}' is not {DURATION_HELP}"))
}

/// The steps of `--backoff`: one value to clap (a bare `Vec` would be
/// taken as a flag given several times).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff(pub Vec<Duration>);

/// Backoff steps, comma-separated durations that may be 0 (`--backoff`).
pub fn backoff(word: &str) -> Result<Backoff, String> {
    word.split(',')
        .map(|step| {
            duration::parse(step, 0)
                .map(Duration::from_millis)
                .ok_or_else(|| format!("'{step}' in '{word}' is not {DURATION_HELP}"))
        })
        .collect::<Result<_, _>>()
        .map(Backoff)
}

/// A point in time: milliseconds since the Unix epoch, or RFC 3339
/// (`2026-01-01T09:00:00Z`, `2026-01-01 10:00:00.250+01:00`).
pub fn time(word: &str) -> Result<SystemTime, String> {
    let ms = if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) {
        word.parse::<u64>().ok()
    } else {
        rfc3339_ms(word)
    };
    ms.map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
        .ok_or_else(|| {
            format!(
                "'{word}' is not a time: ms since the Unix epoch, or RFC 3339 like 2026-01-01T09:00:00Z"
            )
        })
}

/// Milliseconds since the epoch of an RFC 3339 date-time (at or after the
/// epoch).
fn rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0i64;
    if b[at] == b'.' {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        // Milliseconds: the first three digits, padded.
        let frac = &s[at + 1..at + 1 + digits.min(3)];
        millis = format!("{frac:0<3}").parse().ok()?;
        at += 1 + digits;
    }
    let offset_minutes = match s.get(at..)? {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && matches!(zone.as_bytes()[0], b'+' | b'-') => {
            if zone.as_bytes()[3] != b':' {
                return None;
            }
            let (h, m) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if zone.starts_with('-') {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    u64::try_from(seconds * 1000 + millis).ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian; Howard
/// Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: SystemTime) -> u128 {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    }

    #[test]
    fn durations_are_the_protocols() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("1500"), Ok(Duration::from_millis(1500)));
        assert!(duration("0").is_err());
        assert!(duration("1d").unwrap_err().contains("30s"));
        assert_eq!(duration_or_zero("0"), Ok(Duration::ZERO));
        assert_eq!(
            backoff("0,1s,2m"),
            Ok(Backoff(vec![
                Duration::ZERO,
                Duration::from_secs(1),
                Duration::from_secs(120)
            ]))
        );
        assert!(backoff("1s,,2s").is_err());
    }

    #[test]
    fn times_in_epoch_ms_and_rfc3339() {
        assert_eq!(ms(time("1700000000123").unwrap()), 1_700_000_000_123);
        assert_eq!(ms(time("1970-01-01T00:00:00Z").unwrap()), 0);
        assert_eq!(
            ms(time("2023-11-14T22:13:20.123Z").unwrap()),
            1_700_000_000_123
        );
        assert_eq!(
            ms(time("2023-11-14 23:13:20.1+01:00").unwrap()),
            1_700_000_000_100
        );
        assert_eq!(
            ms(time("2023-11-14T17:13:20-05:00").unwrap()),
            1_700_000_000_000
        );
        assert_eq!(ms(time("2024-02-29T00:00:00Z").unwrap()), 1_709_164_800_000);
        for bad in [
            "",
            "tomorrow",
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20+0100",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:13:20.Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(time(bad).is_err(), "{bad}");
        }
    }
}
