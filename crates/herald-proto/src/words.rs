//! Splitting a line into words, shared by the command and reply parsers.
//!
//! A word is a run of bytes other than space and tab (`docs/protocol.md`
//! §2); nothing else separates words. Both ends of every word sit on an
//! ASCII byte or an end of the line, so slicing never splits a UTF-8
//! character.

use std::borrow::Cow;

/// Longest client-sent word quoted back in an error, in bytes.
pub(crate) const MAX_QUOTED_BYTES: usize = 64;

/// The words of a line, separated by runs of spaces and tabs.
#[derive(Debug, Clone)]
pub(crate) struct Words<'a>(&'a str);

impl<'a> Words<'a> {
    pub(crate) fn new(line: &'a str) -> Words<'a> {
        Words(line)
    }

    pub(crate) fn next(&mut self) -> Option<&'a str> {
        let bytes = self.0.as_bytes();
        let Some(start) = bytes.iter().position(|&b| !is_separator(b)) else {
            self.0 = "";
            return None;
        };
        let end = bytes[start..]
            .iter()
            .position(|&b| is_separator(b))
            .map_or(bytes.len(), |len| start + len);
        // Both ends are at an ASCII byte or the end, so on char boundaries.
        let word = &self.0[start..end];
        self.0 = &self.0[end..];
        Some(word)
    }

    /// Everything after the words taken so far, without surrounding blanks.
    pub(crate) fn rest(&self) -> &'a str {
        self.0.trim_matches([' ', '\t'])
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        Words::next(self)
    }
}

/// The first word of a line given as bytes, without checking the rest of
/// the line for UTF-8 (`None` for a blank line).
pub(crate) fn first_word(line: &[u8]) -> Option<&[u8]> {
    let start = line.iter().position(|&b| !is_separator(b))?;
    let end = line[start..]
        .iter()
        .position(|&b| is_separator(b))
        .map_or(line.len(), |len| start + len);
    Some(&line[start..end])
}

pub(crate) fn is_separator(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `word`, cut to a prefix short enough to quote back in a reply, so that a
/// megabyte-long bad word does not come back as a megabyte-long error.
pub(crate) fn quotable(word: &str) -> Cow<'_, str> {
    if word.len() <= MAX_QUOTED_BYTES {
        return Cow::Borrowed(word);
    }
    let mut end = MAX_QUOTED_BYTES;
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}...", &word[..end]))
}

/// Whether `word` is one or more ASCII digits: what every count and
/// duration on a command line must start as (`u64::from_str` alone would
/// also take a leading `+`).
pub(crate) fn is_digits(word: &str) -> bool {
    !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit())
}

/// `word` as a decimal integer in `min..=max`: digits only, leading zeros
/// allowed, no sign.
pub(crate) fn parse_count(word: &str, min: u64, max: u64) -> Option<u64> {
    if !is_digits(word) {
        return None;
    }
    word.parse::<u64>().ok().filter(|n| (min..=max).contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_on_runs_of_spaces_and_tabs_only() {
        let words: Vec<_> = Words::new(" a\t\tb  c\r ").collect();
        assert_eq!(words, ["a", "b", "c\r"]);
        let mut w = Words::new("pub t  {\"a\": 1} \t");
        assert_eq!((w.next(), w.next()), (Some("pub"), Some("t")));
        assert_eq!(w.rest(), "{\"a\": 1}");
    }

    #[test]
    fn first_word_of_bytes_ignores_the_rest() {
        assert_eq!(first_word(b"  PING x \xff"), Some(&b"PING"[..]));
        assert_eq!(first_word(b" \t "), None);
        assert_eq!(first_word(b""), None);
    }

    #[test]
    fn counts_are_plain_digits_in_range() {
        assert_eq!(parse_count("0010", 1, 1000), Some(10));
        assert_eq!(parse_count("0", 1, 1000), None);
        assert_eq!(parse_count("1001", 1, 1000), None);
        assert_eq!(parse_count("+5", 1, 1000), None);
        assert_eq!(parse_count("99999999999999999999999", 1, u64::MAX), None);
    }
}
