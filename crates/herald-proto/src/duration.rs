//! Durations on a command line (`docs/protocol.md` §11): `1500`, `1500ms`,
//! `30s`, `2m`, `1h`.
//!
//! A duration is one or more ASCII digits, optionally followed by a unit
//! (`ms`, `s`, `m`, `h`, any case); digits alone are milliseconds. No sign,
//! no spaces, no fractions. Every duration comes out in milliseconds, and
//! every reply, canonical command line and JSON document gives durations
//! as plain milliseconds.
//!
//! The range depends on where the duration appears: at least 1 ms and at
//! most [`MAX_MS`] (30 days) unless its section says otherwise (a `backoff`
//! step may be 0). Callers pass the lower bound.

/// Longest duration anywhere in the protocol: 30 days, in milliseconds.
pub const MAX_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// Parses `word` as a duration in milliseconds, from `min_ms` to [`MAX_MS`].
///
/// `None` when it is not a duration or is out of range (the caller answers
/// `bad_args`).
pub fn parse(word: &str, min_ms: u64) -> Option<u64> {
    let digits_end = word
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(word.len());
    if digits_end == 0 {
        return None;
    }
    let (digits, unit) = word.split_at(digits_end);
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "ms" => 1,
        "s" => 1000,
        "m" => 60 * 1000,
        "h" => 60 * 60 * 1000,
        _ => return None,
    };
    // A number too long for u64 is out of range whatever its unit.
    let ms = digits.parse::<u64>().ok()?.checked_mul(scale)?;
    (min_ms..=MAX_MS).contains(&ms).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_scale_to_milliseconds() {
        assert_eq!(parse("1500", 1), Some(1500));
        assert_eq!(parse("1500ms", 1), Some(1500));
        assert_eq!(parse("30s", 1), Some(30_000));
        assert_eq!(parse("2m", 1), Some(120_000));
        assert_eq!(parse("1h", 1), Some(3_600_000));
        assert_eq!(parse("007s", 1), Some(7000));
    }

    #[test]
    fn units_are_case_insensitive() {
        assert_eq!(parse("30S", 1), Some(30_000));
        assert_eq!(parse("5MS", 1), Some(5));
        assert_eq!(parse("5mS", 1), Some(5));
        assert_eq!(parse("1H", 1), Some(3_600_000));
    }

    #[test]
    fn thirty_days_is_the_most() {
        assert_eq!(parse("720h", 1), Some(MAX_MS));
        assert_eq!(parse("43200m", 1), Some(MAX_MS));
        assert_eq!(parse(&MAX_MS.to_string(), 1), Some(MAX_MS));
        assert_eq!(parse("721h", 1), None);
        assert_eq!(parse(&(MAX_MS + 1).to_string(), 1), None);
        assert_eq!(parse("99999999999999999999h", 1), None);
        assert_eq!(parse("18446744073709551615h", 1), None);
    }

    #[test]
    fn zero_only_where_allowed() {
        assert_eq!(parse("0", 1), None);
        assert_eq!(parse("0s", 1), None);
        assert_eq!(parse("0", 0), Some(0));
        assert_eq!(parse("0h", 0), Some(0));
    }

    #[test]
    fn everything_else_is_refused() {
        for word in [
            "", "s", "ms", "-1", "+1", "1.5s", "1 s", "1d", "1sec", "1msx", "1e3", "１",
        ] {
            assert_eq!(parse(word, 0), None, "{word:?}");
        }
    }
}
