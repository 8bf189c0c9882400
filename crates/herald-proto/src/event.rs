//! The JSON event of a `pub`: validation, and the delivery line.
//!
//! This module owns the event rules of PROTOCOL.md §3 and the delivery shape
//! of §5. It does not know topics exist beyond their name, nor queues, clocks
//! or storage.
//!
//! What is stored per event is only what the publisher chose: the id, the
//! priority and [`EventInput::fields`], the other fields as JSON text. The
//! parts every event has (`topic`, `id`, `priority`, `timestamp`) are written
//! around them at delivery time ([`Delivery::encode`]), which keeps a pending
//! event about 60 bytes smaller than storing the whole delivery line.
//!
//! Invariants of [`EventInput::fields`]:
//! - it is a sequence of `,"<key>":<value>` for every field but `id` and
//!   `priority`, in the order the publisher sent them, values byte for byte
//!   but for CR and LF;
//! - it holds no CR or LF, so a delivery is one line whatever clients split on
//!   (a raw value's CR or LF can only be whitespace between tokens, and
//!   becomes a space);
//! - it holds none of the names the broker adds (`topic`, `timestamp`,
//!   `redelivered`), so adding them cannot create a duplicate key.
//!
//! Parsing never builds a `serde_json::Value`: keys are borrowed from the
//! line when they have no escapes and values are borrowed as raw JSON text,
//! so validating an event costs one pass of the JSON scanner and three
//! allocations (the field list, the id and the body).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Longest string id, in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// Field names the broker sets; a published event may not carry them.
pub const RESERVED_FIELDS: [&str; 3] = ["topic", "timestamp", "redelivered"];

/// Up to this many fields, duplicate keys are found by comparing every pair,
/// which beats hashing for the usual three or four fields; above it a set
/// keeps a field-stuffed 1 MiB line from costing quadratic time.
const PAIRWISE_DUPLICATE_CHECK_MAX: usize = 16;

/// Longest key quoted back in an error reason, in bytes.
const MAX_QUOTED_KEY_BYTES: usize = 64;

const BAD_ID: &str = "field 'id' must be a string of 1 to 256 bytes without whitespace \
                      or control characters, or a non-negative integer that fits in 64 bits";
const BAD_PRIORITY: &str = "field 'priority' must be an integer literal from 0 to 255";

/// A validated event, ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInput {
    /// The id as a string (an integer id is kept as its decimal string).
    pub id: String,
    /// 0..=255, default 0.
    pub priority: u8,
    /// Every other field as sent, each as `,"<key>":<value>` (`msg` included).
    pub fields: Vec<u8>,
}

impl EventInput {
    /// Validates `json` (the rest of a `pub` line) as an event.
    ///
    /// # Errors
    /// A human-readable reason, sent as `-ERR bad_event <reason>`.
    pub fn parse(json: &str) -> Result<EventInput, String> {
        // serde_json would report a non-object as "invalid type ... expected
        // a JSON object at line 1 column 1"; say it plainly instead.
        if !json.trim_start_matches(is_json_whitespace).starts_with('{') {
            return Err("event must be a JSON object".to_string());
        }
        let Fields(fields) = serde_json::from_str::<Fields<'_>>(json)
            .map_err(|e| format!("event is not valid JSON: {e}"))?;
        check_duplicates(&fields)?;

        let mut id = None;
        let mut priority = None;
        let mut has_msg = false;
        // Exact unless a key or the topic needs escaping.
        let mut extra_bytes = 0;
        for (key, value) in &fields {
            match key.as_ref() {
                "id" => id = Some(*value),
                "priority" => priority = Some(*value),
                k if RESERVED_FIELDS.contains(&k) => {
                    return Err(format!(
                        "field {:?} is reserved: the broker sets it",
                        quotable(k)
                    ));
                }
                k => {
                    check_surrogates(value.get())?;
                    has_msg |= k == "msg";
                    extra_bytes += k.len() + value.get().len() + 4;
                }
            }
        }
        let Some(id) = id else {
            return Err("missing field 'id'".to_string());
        };
        let id = parse_id(id.get())?;
        let priority = match priority {
            None => 0,
            Some(raw) => parse_priority(raw.get())?,
        };
        if !has_msg {
            return Err("missing field 'msg'".to_string());
        }

        let mut fields_out = Vec::with_capacity(extra_bytes);
        for (key, value) in &fields {
            if matches!(key.as_ref(), "id" | "priority") {
                continue;
            }
            fields_out.push(b',');
            match key {
                // A key with no escapes is its own JSON text.
                Cow::Borrowed(k) => {
                    fields_out.push(b'"');
                    fields_out.extend_from_slice(k.as_bytes());
                    fields_out.push(b'"');
                }
                Cow::Owned(k) => write_json_str(&mut fields_out, k),
            }
            fields_out.push(b':');
            write_raw_value(&mut fields_out, value.get());
        }
        Ok(EventInput {
            id,
            priority,
            fields: fields_out,
        })
    }
}

/// One delivery line, assembled from the stored parts of an event.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// Topic name (valid names need no JSON escaping).
    pub topic: &'a str,
    /// Event id, written as a JSON string.
    pub id: &'a str,
    /// Priority, always written.
    pub priority: u8,
    /// [`EventInput::fields`] as stored.
    pub fields: &'a [u8],
    /// Milliseconds since the Unix epoch when the broker accepted it.
    pub timestamp: u64,
    /// Adds `"redelivered":true`.
    pub redelivered: bool,
}

impl Delivery<'_> {
    /// Appends the delivery line, CRLF included, to `out`:
    /// `{"topic":..,"id":..,"priority":..,<fields>,"timestamp":..[,"redelivered":true]}`.
    pub fn encode(&self, out: &mut BytesMut) {
        // Escaping can at most sextuple the id; topics never need it.
        out.reserve(80 + self.topic.len() + 6 * self.id.len() + self.fields.len());
        out.put_slice(b"{\"topic\":");
        write_json_str(out, self.topic);
        out.put_slice(b",\"id\":");
        write_json_str(out, self.id);
        out.put_slice(b",\"priority\":");
        write_u64(out, u64::from(self.priority));
        out.put_slice(self.fields);
        out.put_slice(b",\"timestamp\":");
        write_u64(out, self.timestamp);
        if self.redelivered {
            out.put_slice(b",\"redelivered\":true");
        }
        out.put_slice(b"}\r\n");
    }
}

/// The fields of an event object in the order sent: decoded key, raw value.
struct Fields<'de>(Vec<(Cow<'de, str>, &'de RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                // Four covers `id`, `priority`, `msg` and one extra without
                // regrowing; serde_json gives no size hint.
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(4).min(64));
                while let Some((Key(key), value)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    fields.push((key, value));
                }
                Ok(Fields(fields))
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// An object key, borrowed from the input unless it had escapes.
///
/// serde's own `Cow<str>` impl always allocates, hence this type.
struct Key<'de>(Cow<'de, str>);

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

fn check_duplicates(fields: &[(Cow<'_, str>, &RawValue)]) -> Result<(), String> {
    let duplicate = |key: &str| Err(format!("duplicate field {:?}", quotable(key)));
    if fields.len() <= PAIRWISE_DUPLICATE_CHECK_MAX {
        for (i, (key, _)) in fields.iter().enumerate() {
            if fields[..i].iter().any(|(earlier, _)| earlier == key) {
                return duplicate(key);
            }
        }
    } else {
        let mut seen = HashSet::with_capacity(fields.len());
        for (key, _) in fields {
            if !seen.insert(key.as_ref()) {
                return duplicate(key);
            }
        }
    }
    Ok(())
}

/// Returns the id as a string (an integer kept as its decimal text).
fn parse_id(raw: &str) -> Result<String, String> {
    if raw.starts_with('"') {
        let id = if raw.contains('\\') {
            // The raw text already passed serde_json's scanner, so this only
            // fails if that invariant breaks; report it as a bad id anyway.
            serde_json::from_str::<String>(raw).map_err(|_| BAD_ID.to_string())?
        } else {
            // Without escapes the text between the quotes is the id.
            raw.get(1..raw.len() - 1).unwrap_or_default().to_owned()
        };
        // Control characters are refused too: an id must be something a person
        // can type back in an `ack`, and replies carry it raw.
        if id.is_empty()
            || id.len() > MAX_ID_BYTES
            || id.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(BAD_ID.to_string());
        }
        Ok(id)
    } else if is_digits(raw) && raw.parse::<u64>().is_ok() {
        // serde_json refuses leading zeros, so the digits are already the
        // canonical decimal form.
        Ok(raw.to_owned())
    } else {
        Err(BAD_ID.to_string())
    }
}

fn parse_priority(raw: &str) -> Result<u8, String> {
    // Digits first: `u8::from_str` would also take a leading `+`.
    if is_digits(raw) {
        raw.parse().map_err(|_| BAD_PRIORITY.to_string())
    } else {
        Err(BAD_PRIORITY.to_string())
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_json_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// `key`, cut short enough to quote in a one-line reason.
fn quotable(key: &str) -> &str {
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
fn check_surrogates(raw: &str) -> Result<(), String> {
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
/// passes an LF, but [`EventInput::parse`] is public.
fn write_raw_value(out: &mut Vec<u8>, raw: &str) {
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
fn write_json_str(out: &mut impl BufMut, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put_u8(b'"');
    let bytes = s.as_bytes();
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

fn write_u64(out: &mut impl BufMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    fn parse(json: &str) -> Result<EventInput, String> {
        EventInput::parse(json)
    }

    fn write_delivery(event: &EventInput, ts: u64, redelivered: bool, out: &mut BytesMut) {
        Delivery {
            topic: "tweets",
            id: &event.id,
            priority: event.priority,
            fields: &event.fields,
            timestamp: ts,
            redelivered,
        }
        .encode(out);
    }

    /// The delivery line, parsed back as JSON.
    fn delivered(event: EventInput, ts: u64, redelivered: bool) -> Value {
        let mut out = BytesMut::new();
        write_delivery(&event, ts, redelivered, &mut out);
        let line = out.strip_suffix(b"\r\n").expect("ends with CRLF");
        assert!(!line.contains(&b'\n') && !line.contains(&b'\r'));
        serde_json::from_slice(line).expect("delivery is valid JSON")
    }

    #[test]
    fn fields_keep_everything_but_id_and_priority_in_order() {
        let e = parse(r#"{"msg":"hi","priority":3,"x":[1, 2],"id":"a1"}"#).unwrap();
        assert_eq!(e.id, "a1");
        assert_eq!(e.priority, 3);
        assert_eq!(
            std::str::from_utf8(&e.fields).unwrap(),
            r#","msg":"hi","x":[1, 2]"#
        );
    }

    #[test]
    fn an_id_with_a_control_character_is_rejected() {
        assert!(parse(r#"{"id":"a\u0001b","msg":1}"#).is_err());
        assert!(parse(r#"{"id":"a\u007fb","msg":1}"#).is_err());
    }

    #[test]
    fn an_id_with_quotes_is_escaped_in_the_delivery() {
        let e = parse(r#"{"id":"a\"b\\c","msg":1}"#).unwrap();
        assert_eq!(e.id, "a\"b\\c");
        assert_eq!(delivered(e, 1, false)["id"], json!("a\"b\\c"));
    }

    #[test]
    fn delivery_parses_back_to_the_event() {
        let e = parse(r#"{"id":"1","priority":3,"msg":"tweet 1"}"#).unwrap();
        assert_eq!(
            delivered(e, 1650054011933, false),
            json!({"topic":"tweets","id":"1","priority":3,"msg":"tweet 1","timestamp":1650054011933u64})
        );
    }

    #[test]
    fn redelivery_carries_redelivered_true() {
        let e = parse(r#"{"id":"1","msg":{"a":null}}"#).unwrap();
        assert_eq!(
            delivered(e, 7, true),
            json!({"topic":"tweets","id":"1","priority":0,"msg":{"a":null},"timestamp":7,"redelivered":true})
        );
    }

    #[test]
    fn delivery_is_exact_bytes() {
        let e = parse(r#"{"id":"1","msg":"m"}"#).unwrap();
        let mut out = BytesMut::new();
        write_delivery(&e, 5, true, &mut out);
        assert_eq!(
            &out[..],
            b"{\"topic\":\"tweets\",\"id\":\"1\",\"priority\":0,\"msg\":\"m\",\"timestamp\":5,\"redelivered\":true}\r\n"
        );
    }

    #[test]
    fn extra_fields_are_delivered_unchanged() {
        let e = parse(
            r#"{"id":"1","msg":"m","n":1.50,"big":123456789012345678901234567890,"o":{"k":[true,null]},"s":"\u00e9\n"}"#,
        )
        .unwrap();
        let body = std::str::from_utf8(&e.fields).unwrap();
        // Raw text, not a re-serialisation: 1.50 and the huge integer survive.
        assert!(body.ends_with(
            r#","n":1.50,"big":123456789012345678901234567890,"o":{"k":[true,null]},"s":"\u00e9\n""#
        ));
        let v = delivered(e, 1, false);
        assert_eq!(v["o"], json!({"k":[true,null]}));
        assert_eq!(v["s"], json!("é\n"));
    }

    #[test]
    fn msg_may_be_any_json_value() {
        for msg in ["null", "true", "1", "\"s\"", "[]", "{}", "[{\"a\":[1]}]"] {
            let e = parse(&format!(r#"{{"id":"1","msg":{msg}}}"#)).unwrap();
            let expected: Value = serde_json::from_str(msg).unwrap();
            assert_eq!(delivered(e, 1, false)["msg"], expected);
        }
    }

    #[test]
    fn integer_id_becomes_its_decimal_string() {
        let e = parse(r#"{"id":42,"msg":"m"}"#).unwrap();
        assert_eq!(e.id, "42");
        assert_eq!(delivered(e, 1, false)["id"], json!("42"));
        let e = parse(r#"{"id":18446744073709551615,"msg":"m"}"#).unwrap();
        assert_eq!(e.id, "18446744073709551615");
        assert_eq!(parse(r#"{"id":0,"msg":"m"}"#).unwrap().id, "0");
    }

    #[test]
    fn id_of_256_bytes_is_accepted_and_257_rejected() {
        let ok = "x".repeat(MAX_ID_BYTES);
        assert_eq!(
            parse(&format!(r#"{{"id":"{ok}","msg":1}}"#)).unwrap().id,
            ok
        );
        let long = "x".repeat(MAX_ID_BYTES + 1);
        assert_eq!(
            parse(&format!(r#"{{"id":"{long}","msg":1}}"#)),
            Err(BAD_ID.to_string())
        );
        // The limit is in bytes, not characters.
        let wide = "é".repeat(129);
        assert!(parse(&format!(r#"{{"id":"{wide}","msg":1}}"#)).is_err());
    }

    #[test]
    fn bad_ids_are_rejected() {
        for id in [
            r#""""#,
            r#""a b""#,
            r#""a\tb""#,
            r#""a\u0020b""#,
            "\"a\u{a0}b\"",
            r#""\ud800""#,
            "-1",
            "1.5",
            "1e3",
            "1.0",
            "18446744073709551616",
            "null",
            "true",
            "[1]",
            "{}",
        ] {
            assert_eq!(
                parse(&format!(r#"{{"id":{id},"msg":1}}"#)),
                Err(BAD_ID.to_string()),
                "id {id}"
            );
        }
    }

    #[test]
    fn escaped_id_is_decoded_and_re_escaped() {
        let e = parse(r#"{"id":"a\"b\\c\u0041\u00e9","msg":1}"#).unwrap();
        assert_eq!(e.id, "a\"b\\cAé");
        assert_eq!(delivered(e, 1, false)["id"], json!("a\"b\\cAé"));
    }

    #[test]
    fn priority_edges() {
        assert_eq!(parse(r#"{"id":"1","msg":1}"#).unwrap().priority, 0);
        assert_eq!(
            parse(r#"{"id":"1","priority":0,"msg":1}"#)
                .unwrap()
                .priority,
            0
        );
        assert_eq!(
            parse(r#"{"id":"1","priority":255,"msg":1}"#)
                .unwrap()
                .priority,
            255
        );
        for p in ["256", "3.0", "1e2", "\"3\"", "-1", "-0", "null", "1000"] {
            assert_eq!(
                parse(&format!(r#"{{"id":"1","priority":{p},"msg":1}}"#)),
                Err(BAD_PRIORITY.to_string()),
                "priority {p}"
            );
        }
    }

    #[test]
    fn reserved_fields_are_rejected() {
        for name in RESERVED_FIELDS {
            let err = parse(&format!(r#"{{"id":"1","msg":1,"{name}":1}}"#)).unwrap_err();
            assert!(err.contains("reserved"), "{err}");
        }
        // Escapes do not hide a reserved name.
        assert!(parse(r#"{"id":"1","msg":1,"\u0074opic":"x"}"#).is_err());
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        for json in [
            r#"{"id":"1","id":"2","msg":1}"#,
            r#"{"id":"1","msg":1,"msg":2}"#,
            r#"{"id":"1","msg":1,"a":1,"\u0061":2}"#,
        ] {
            let err = parse(json).unwrap_err();
            assert!(err.starts_with("duplicate field"), "{err}");
        }
    }

    #[test]
    fn duplicate_among_many_fields_is_found() {
        let mut json = String::from(r#"{"id":"1","msg":1"#);
        for i in 0..100 {
            json.push_str(&format!(r#","f{i}":{i}"#));
        }
        assert!(parse(&format!("{json}}}")).is_ok());
        assert_eq!(
            parse(&format!(r#"{json},"f57":0}}"#)),
            Err("duplicate field \"f57\"".to_string())
        );
    }

    #[test]
    fn missing_id_or_msg_is_rejected() {
        assert_eq!(parse(r#"{"msg":1}"#), Err("missing field 'id'".to_string()));
        assert_eq!(
            parse(r#"{"id":"1"}"#),
            Err("missing field 'msg'".to_string())
        );
        assert!(parse("{}").is_err());
    }

    #[test]
    fn not_an_object_is_rejected() {
        for json in ["[]", "1", "\"s\"", "null", "notjson", ""] {
            assert_eq!(
                parse(json),
                Err("event must be a JSON object".to_string()),
                "{json}"
            );
        }
    }

    #[test]
    fn invalid_json_is_rejected() {
        for json in [
            "{",
            r#"{"id":"1","msg":1"#,
            r#"{"id":"1","msg":1}x"#,
            r#"{"id":"1","msg":1,}"#,
            r#"{"id":"1","msg":01}"#,
            r#"{"id":"1","msg":"\ud800"}"#,
            r#"{"id":"1","msg":"\udc00x"}"#,
            r#"{"id":"1","msg":["\ud800\u0041"]}"#,
            r#"{"id":"1","msg":1,"x":{"k":"\\\ud83d"}}"#,
            r#"{"id":"1","msg":1,"\ud800":1}"#,
            "{\"id\":\"1\",\"msg\":\"a\tb\"}",
        ] {
            let err = parse(json).unwrap_err();
            assert!(err.starts_with("event is not valid JSON"), "{json}: {err}");
        }
    }

    #[test]
    fn surrogate_pairs_and_escaped_backslashes_are_accepted() {
        let e = parse(r#"{"id":"1","msg":"\ud83d\ude00 \\ud800 \\\\","x":"\u00e9"}"#).unwrap();
        let v = delivered(e, 1, false);
        assert_eq!(v["msg"], json!("\u{1f600} \\ud800 \\\\"));
        assert_eq!(v["x"], json!("é"));
    }

    #[test]
    fn escaped_keys_are_re_escaped() {
        let e = parse(r#"{"id":"1","msg":1,"a\"b\u00e9":2}"#).unwrap();
        assert!(e.fields.ends_with(r#","a\"bé":2"#.as_bytes()));
        assert_eq!(delivered(e, 1, false)["a\"bé"], json!(2));
    }

    #[test]
    fn whitespace_around_and_inside_is_accepted_and_line_breaks_removed() {
        let e = parse(" {\t\"id\" : \"1\" ,\r\"msg\":[1,\r2,\n3] } \r\n").unwrap();
        assert!(!e.fields.contains(&b'\r') && !e.fields.contains(&b'\n'));
        assert_eq!(delivered(e, 1, false)["msg"], json!([1, 2, 3]));
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let deep = format!(
            r#"{{"id":"1","msg":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(parse(&deep).is_ok());
    }

    #[test]
    fn topic_is_escaped_even_if_not_validated() {
        let e = parse(r#"{"id":"1","msg":1}"#).unwrap();
        let mut out = BytesMut::new();
        Delivery {
            topic: "a\"b",
            id: &e.id,
            priority: 0,
            fields: &e.fields,
            timestamp: 1,
            redelivered: false,
        }
        .encode(&mut out);
        let v: Value = serde_json::from_slice(&out[..out.len() - 2]).unwrap();
        assert_eq!(v["topic"], json!("a\"b"));
    }

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

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn delivery_round_trips_any_event(
            id in prop_oneof![
                "[!-~\u{a1}-\u{2ff}]{1,40}".prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
            ],
            priority in prop::option::of(any::<u8>()),
            msg in any_json(),
            extras in prop::collection::btree_map(any::<String>(), any_json(), 0..6),
            pretty in any::<bool>(),
            ts in any::<u64>(),
            redelivered in any::<bool>(),
        ) {
            let mut event = Map::new();
            for (k, v) in extras {
                if !matches!(k.as_str(), "id" | "priority" | "msg" | "topic" | "timestamp" | "redelivered") {
                    event.insert(k, v);
                }
            }
            event.insert("id".into(), id.clone());
            event.insert("msg".into(), msg);
            if let Some(p) = priority {
                event.insert("priority".into(), p.into());
            }
            let event = Value::Object(event);
            // Pretty printing puts LFs between tokens, which must vanish.
            let json = if pretty {
                serde_json::to_string_pretty(&event).unwrap()
            } else {
                event.to_string()
            };
            let parsed = parse(&json).unwrap();
            let id = match id {
                Value::String(s) => s,
                other => other.to_string(),
            };
            prop_assert_eq!(&parsed.id, &id);
            prop_assert_eq!(parsed.priority, priority.unwrap_or(0));

            // Re-read rather than reuse `event`: serde_json's float parsing
            // does not round-trip every f64, and the delivery carries the
            // publisher's text, so both sides must be read the same way.
            let mut expected: Value = serde_json::from_str(&json).unwrap();
            expected["id"] = id.into();
            expected["priority"] = priority.unwrap_or(0).into();
            expected["topic"] = "tweets".into();
            expected["timestamp"] = ts.into();
            if redelivered {
                expected["redelivered"] = true.into();
            }
            prop_assert_eq!(delivered(parsed, ts, redelivered), expected);
        }

        #[test]
        fn arbitrary_text_never_panics(json in "\\PC{0,200}") {
            let _ = parse(&json);
        }
    }
}
