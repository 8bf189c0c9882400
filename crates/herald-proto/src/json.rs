//! JSON pieces shared by events, deliveries and dead letters: reading an
//! object's members without building a `serde_json::Value`, and writing
//! strings and integers straight into an output buffer.
//!
//! Reading borrows keys from the input when they have no escapes and
//! values as raw JSON text, so validating an event or reading a delivery
//! costs one pass of serde_json's scanner. Writing escapes only what JSON
//! requires, so `write_json_str` of a decoded key gives back the canonical
//! text that was stored.

use std::borrow::Cow;
use std::fmt;

use bytes::BufMut;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use smallvec::SmallVec;

/// Longest key quoted back in an error reason, in bytes.
const MAX_QUOTED_KEY_BYTES: usize = 64;

/// The members of a JSON object in the order sent: decoded key, raw value.
///
/// Inline up to [`INLINE_MEMBERS`]: an event has three or four, and one
/// allocation per `pub` less is measurable on the publish path.
pub(crate) struct Members<'de>(pub(crate) MemberList<'de>);

/// Members an object may have before [`Members`] allocates.
const INLINE_MEMBERS: usize = 8;

/// The list inside [`Members`].
pub(crate) type MemberList<'de> = SmallVec<[(Cow<'de, str>, &'de RawValue); INLINE_MEMBERS]>;

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                // serde_json gives no size hint; past the inline ones the
                // list grows as a `Vec` would.
                let mut members = MemberList::new();
                while let Some((Key(key), value)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}

/// An object key, borrowed from the input unless it had escapes.
///
/// serde's own `Cow<str>` impl always allocates, hence this type.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }

        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Appends one member as stored in event fields: `,"<key>":<raw value>`.
///
/// A borrowed key had no escapes, so its text between quotes is already
/// canonical JSON; an owned one is re-escaped.
// The `Cow` variant is the information: borrowed means "had no escapes".
#[allow(clippy::ptr_arg)]
pub(crate) fn write_member(out: &mut Vec<u8>, key: &Cow<'_, str>, raw: &str) {
    out.push(b',');
    match key {
        Cow::Borrowed(k) => {
            out.push(b'"');
            out.extend_from_slice(k.as_bytes());
            out.push(b'"');
        }
        Cow::Owned(k) => write_json_str(out, k),
    }
    out.push(b':');
    write_raw_value(out, raw);
}

/// Reads the text of a JSON string value: borrowed when it has no escapes.
/// `None` if `raw` is not a string.
pub(crate) fn str_value(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    if text.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        // Without escapes the text between the quotes is the string.
        text.get(1..text.len() - 1).map(Cow::Borrowed)
    }
}

/// Whether `raw` is a JSON integer literal: digits only (serde_json has
/// already refused leading zeros), so no sign, fraction or exponent.
pub(crate) fn is_digits(raw: &str) -> bool {
    !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn is_json_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// `key`, cut short enough to quote in a one-line reason.
pub(crate) fn quotable_key(key: &str) -> &str {
    if key.len() <= MAX_QUOTED_KEY_BYTES {
        return key;
    }
    let mut end = MAX_QUOTED_KEY_BYTES;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

/// Rejects a `\u` escape that is half a surrogate pair.
///
/// serde_json checks a raw value's grammar without decoding its strings, so
/// `"\ud800"` gets through; stored as is, it would make every strict reader
/// of the delivery (serde_json, and so `herald-client`) fail on it forever.
/// `raw` has passed the scanner, so every backslash starts a well-formed
/// escape inside a string and none of the indexing below can go wrong.
pub(crate) fn check_surrogates(raw: &str) -> Result<(), String> {
    const LONE: &str = "event is not valid JSON: lone surrogate in a \\u escape";
    let bytes = raw.as_bytes();
    let unit = |at: usize| -> Option<u16> {
        let escape = bytes.get(at..at + 6)?;
        if !escape.starts_with(b"\\u") {
            return None;
        }
        let hex = std::str::from_utf8(&escape[2..]).ok()?;
        u16::from_str_radix(hex, 16).ok()
    };
    let mut at = 0;
    while let Some(found) = memchr::memchr(b'\\', &bytes[at..]) {
        at += found;
        match unit(at) {
            Some(0xD800..=0xDBFF) => match unit(at + 6) {
                Some(0xDC00..=0xDFFF) => at += 12,
                _ => return Err(LONE.to_string()),
            },
            Some(0xDC00..=0xDFFF) => return Err(LONE.to_string()),
            Some(_) => at += 6,
            // `\\`, `\"`, `\n`...: two bytes, and the second must not be
            // taken for the start of another escape.
            None => at += 2,
        }
        if at >= bytes.len() {
            break;
        }
    }
    Ok(())
}

/// Copies a raw JSON value, turning CR and LF into spaces.
///
/// Inside a JSON string a raw control character is invalid, so any CR or LF
/// is whitespace between tokens and a space means the same. An LF would end
/// the delivery line early; a CR would too for clients that also split lines
/// on CR (Python's universal newlines, for one). The command parser never
/// passes an LF, but `EventInput::parse` is public.
pub(crate) fn write_raw_value(out: &mut Vec<u8>, raw: &str) {
    let raw = raw.as_bytes();
    if memchr::memchr2(b'\r', b'\n', raw).is_none() {
        out.extend_from_slice(raw);
    } else {
        out.extend(
            raw.iter()
                .map(|&b| if matches!(b, b'\r' | b'\n') { b' ' } else { b }),
        );
    }
}

/// Writes `s` as a JSON string, escaping only what JSON requires.
pub(crate) fn write_json_str(out: &mut impl BufMut, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put_u8(b'"');
    let bytes = s.as_bytes();
    // Topics and ids almost never need escaping: find that out with a scan
    // that has no early exit (so it vectorises) and copy them whole.
    if !bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    }) {
        out.put_slice(bytes);
        out.put_u8(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            _ => continue,
        };
        out.put_slice(&bytes[start..i]);
        out.put_slice(escape);
        start = i + 1;
    }
    out.put_slice(&bytes[start..]);
    out.put_u8(b'"');
}

/// Writes `n` in decimal.
///
/// `itoa` (already serde_json's) writes two digits per step: every delivery
/// writes its priority and a 13-digit timestamp.
pub(crate) fn write_u64(out: &mut impl BufMut, n: u64) {
    out.put_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_string_writer_escapes_controls() {
        let mut out = Vec::new();
        write_json_str(&mut out, "\u{0}\u{1f}\u{8}\u{c}é\"\\");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, r#""\u0000\u001f\b\fé\"\\""#);
        assert_eq!(
            serde_json::from_str::<String>(&text).unwrap(),
            "\u{0}\u{1f}\u{8}\u{c}é\"\\"
        );
    }

    #[test]
    fn u64_writer_writes_decimal() {
        for n in [0, 9, 10, 1650054011933, u64::MAX] {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[test]
    fn string_values_are_borrowed_unless_escaped() {
        let raw: &RawValue = serde_json::from_str(r#""abc""#).unwrap();
        assert!(matches!(str_value(raw), Some(Cow::Borrowed("abc"))));
        let raw: &RawValue = serde_json::from_str(r#""a\"b""#).unwrap();
        assert_eq!(str_value(raw).as_deref(), Some("a\"b"));
        let raw: &RawValue = serde_json::from_str("12").unwrap();
        assert_eq!(str_value(raw), None);
    }
}
