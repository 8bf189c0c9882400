//! The JSON event of a `pub`: validation, and what is stored of it.
//!
//! This module owns the event rules of `docs/protocol.md` §4 (§3 of the
//! contract) and the publisher's time fields of §13.1-§13.2. It does not
//! know topics exist beyond their name, nor queues, clocks or storage:
//! whether a `not_before` is at most 30 days ahead needs a clock, so that
//! check is the broker's.
//!
//! What is stored per event is only what the publisher chose: the id, the
//! priority and [`EventInput::fields`], the other fields as JSON text. The
//! parts every event has (`topic`, `id`, `priority`, `timestamp`) are written
//! around them at delivery time ([`crate::Delivery::encode`]), which keeps a
//! pending event about 60 bytes smaller than storing the whole delivery line.
//!
//! Invariants of [`EventInput::fields`]:
//! - it is a sequence of `,"<key>":<value>` for every field but `id` and
//!   `priority`, in the order the publisher sent them, values byte for byte
//!   but for CR and LF, keys escaped only where JSON requires;
//! - it holds no CR or LF, so a delivery is one line whatever clients split on
//!   (a raw value's CR or LF can only be whitespace between tokens, and
//!   becomes a space);
//! - it holds none of the names the broker adds ([`RESERVED_FIELDS`]), so
//!   adding them cannot create a duplicate key;
//! - the time fields (`ttl_ms`, `delay_ms`, `not_before`) stay in it, as
//!   sent: they are delivered unchanged, and also read into
//!   [`EventInput::ttl_ms`] and friends.
//!
//! Parsing never builds a `serde_json::Value`: keys are borrowed from the
//! line when they have no escapes and values are borrowed as raw JSON text,
//! so validating an event costs one pass of the JSON scanner and three
//! allocations (the field list, the id and the body).

use std::collections::HashSet;

use serde_json::value::RawValue;

use crate::duration;
use crate::json::{
    Members, check_surrogates, is_digits, is_json_whitespace, quotable_key, write_member,
};

/// Longest string id, in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// Field names the broker sets; a published event may not carry them.
pub const RESERVED_FIELDS: [&str; 5] = ["topic", "timestamp", "redelivered", "deliveries", "dead"];

/// Field names a publisher may set to ask for time-based handling
/// (§13.1-§13.2); each must be a JSON integer literal in its range.
pub const TIME_FIELDS: [&str; 3] = ["ttl_ms", "delay_ms", "not_before"];

/// Up to this many fields, duplicate keys are found by comparing every pair,
/// which beats hashing for the usual three or four fields; above it a set
/// keeps a field-stuffed 1 MiB line from costing quadratic time.
const PAIRWISE_DUPLICATE_CHECK_MAX: usize = 16;

const BAD_ID: &str = "field 'id' must be a string of 1 to 256 bytes without whitespace \
                      or control characters, or a non-negative integer that fits in 64 bits";
const BAD_PRIORITY: &str = "field 'priority' must be an integer literal from 0 to 255";
const BAD_TTL: &str =
    "field 'ttl_ms' must be an integer literal from 1 to 2592000000 (30 days in ms)";
const BAD_DELAY: &str =
    "field 'delay_ms' must be an integer literal from 0 to 2592000000 (30 days in ms)";
const BAD_NOT_BEFORE: &str =
    "field 'not_before' must be a non-negative integer literal (ms since the Unix epoch)";
const DELAY_AND_NOT_BEFORE: &str = "give 'delay_ms' or 'not_before', not both";

/// A validated event, ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInput {
    /// The id as a string (an integer id is kept as its decimal string).
    pub id: String,
    /// 0..=255, default 0.
    pub priority: u8,
    /// `ttl_ms`: time to live from the event's timestamp, 1 ms to 30 days
    /// (§13.1). Also in `fields`.
    pub ttl_ms: Option<u64>,
    /// `delay_ms`: not deliverable before this many ms after it is
    /// accepted, 0 to 30 days (§13.2). Also in `fields`.
    pub delay_ms: Option<u64>,
    /// `not_before`: not deliverable before this time, in ms since the
    /// Unix epoch (§13.2; the broker checks it is at most 30 days ahead).
    /// Never together with `delay_ms`. Also in `fields`.
    pub not_before: Option<u64>,
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
        let Members(fields) = serde_json::from_str::<Members<'_>>(json)
            .map_err(|e| format!("event is not valid JSON: {e}"))?;
        check_duplicates(&fields)?;

        let mut id = None;
        let mut priority = None;
        let mut has_msg = false;
        let (mut ttl_ms, mut delay_ms, mut not_before) = (None, None, None);
        // Exact unless a key or the topic needs escaping.
        let mut extra_bytes = 0;
        for (key, value) in &fields {
            match key.as_ref() {
                "id" => {
                    id = Some(*value);
                    continue;
                }
                "priority" => {
                    priority = Some(*value);
                    continue;
                }
                k if RESERVED_FIELDS.contains(&k) => {
                    return Err(format!(
                        "field {:?} is reserved: the broker sets it",
                        quotable_key(k)
                    ));
                }
                "ttl_ms" => ttl_ms = Some(time_field(value, 1, duration::MAX_MS, BAD_TTL)?),
                "delay_ms" => delay_ms = Some(time_field(value, 0, duration::MAX_MS, BAD_DELAY)?),
                "not_before" => not_before = Some(time_field(value, 0, u64::MAX, BAD_NOT_BEFORE)?),
                k => {
                    check_surrogates(value.get())?;
                    has_msg |= k == "msg";
                }
            }
            extra_bytes += key.len() + value.get().len() + 4;
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
        if delay_ms.is_some() && not_before.is_some() {
            return Err(DELAY_AND_NOT_BEFORE.to_string());
        }

        let mut fields_out = Vec::with_capacity(extra_bytes);
        for (key, value) in &fields {
            if !matches!(key.as_ref(), "id" | "priority") {
                write_member(&mut fields_out, key, value.get());
            }
        }
        Ok(EventInput {
            id,
            priority,
            ttl_ms,
            delay_ms,
            not_before,
            fields: fields_out,
        })
    }
}

fn check_duplicates(fields: &[(std::borrow::Cow<'_, str>, &RawValue)]) -> Result<(), String> {
    let duplicate = |key: &str| Err(format!("duplicate field {:?}", quotable_key(key)));
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

/// A time field: an integer literal (like `priority`: no `1e3`, `1.0`,
/// `"5"` or sign) from `min` to `max`.
fn time_field(raw: &RawValue, min: u64, max: u64, rule: &str) -> Result<u64, String> {
    let raw = raw.get();
    is_digits(raw)
        .then(|| raw.parse::<u64>().ok())
        .flatten()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| rule.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Delivery;
    use bytes::BytesMut;
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    fn parse(json: &str) -> Result<EventInput, String> {
        EventInput::parse(json)
    }

    /// A first delivery, or a second one when `redelivered`.
    fn write_delivery(event: &EventInput, ts: u64, redelivered: bool, out: &mut BytesMut) {
        Delivery {
            topic: "tweets",
            id: &event.id,
            priority: event.priority,
            fields: &event.fields,
            timestamp: ts,
            deliveries: if redelivered { 2 } else { 1 },
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
        // Version 2 (§12.3): a redelivery also carries its delivery count.
        assert_eq!(
            delivered(e, 7, true),
            json!({"topic":"tweets","id":"1","priority":0,"msg":{"a":null},"timestamp":7,"redelivered":true,"deliveries":2})
        );
    }

    #[test]
    fn delivery_is_exact_bytes() {
        let e = parse(r#"{"id":"1","msg":"m"}"#).unwrap();
        let mut out = BytesMut::new();
        write_delivery(&e, 5, true, &mut out);
        assert_eq!(
            &out[..],
            b"{\"topic\":\"tweets\",\"id\":\"1\",\"priority\":0,\"msg\":\"m\",\"timestamp\":5,\"redelivered\":true,\"deliveries\":2}\r\n"
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
            deliveries: 1,
        }
        .encode(&mut out);
        let v: Value = serde_json::from_slice(&out[..out.len() - 2]).unwrap();
        assert_eq!(v["topic"], json!("a\"b"));
    }

    #[test]
    fn version_2_reserved_fields_are_rejected() {
        for name in ["deliveries", "dead"] {
            let err = parse(&format!(r#"{{"id":"1","msg":1,"{name}":2}}"#)).unwrap_err();
            assert!(err.contains("reserved"), "{err}");
        }
    }

    #[test]
    fn time_fields_are_read_and_kept() {
        let e = parse(r#"{"id":"1","ttl_ms":5000,"msg":1,"delay_ms":0}"#).unwrap();
        assert_eq!(
            (e.ttl_ms, e.delay_ms, e.not_before),
            (Some(5000), Some(0), None)
        );
        assert_eq!(
            std::str::from_utf8(&e.fields).unwrap(),
            r#","ttl_ms":5000,"msg":1,"delay_ms":0"#
        );
        let e = parse(r#"{"id":"1","msg":1,"not_before":18446744073709551615}"#).unwrap();
        assert_eq!(e.not_before, Some(u64::MAX));
        assert_eq!(
            delivered(e, 1, false)["not_before"],
            json!(18446744073709551615u64)
        );
        let e = parse(r#"{"id":"1","msg":1}"#).unwrap();
        assert_eq!((e.ttl_ms, e.delay_ms, e.not_before), (None, None, None));
    }

    #[test]
    fn time_field_edges() {
        let max = crate::duration::MAX_MS;
        let field =
            |name: &str, value: &str| parse(&format!(r#"{{"id":"1","msg":1,"{name}":{value}}}"#));
        assert_eq!(field("ttl_ms", "1").unwrap().ttl_ms, Some(1));
        assert_eq!(field("ttl_ms", &max.to_string()).unwrap().ttl_ms, Some(max));
        assert_eq!(field("delay_ms", "0").unwrap().delay_ms, Some(0));
        assert_eq!(
            field("delay_ms", &max.to_string()).unwrap().delay_ms,
            Some(max)
        );
        assert_eq!(field("not_before", "0").unwrap().not_before, Some(0));
        for (name, bad, rule) in [
            ("ttl_ms", "0", BAD_TTL),
            ("delay_ms", "-1", BAD_DELAY),
            ("not_before", "-0", BAD_NOT_BEFORE),
            ("not_before", "18446744073709551616", BAD_NOT_BEFORE),
        ] {
            assert_eq!(field(name, bad), Err(rule.to_string()), "{name} {bad}");
        }
        for name in TIME_FIELDS {
            let over = (max + 1).to_string();
            for bad in ["1e3", "1.0", "\"5\"", "-5", "null", "true", "[1]", &over] {
                if name == "not_before" && bad == over {
                    continue;
                }
                let err = field(name, bad).unwrap_err();
                assert!(
                    err.starts_with(&format!("field '{name}'")),
                    "{name} {bad}: {err}"
                );
            }
        }
    }

    #[test]
    fn delay_and_not_before_together_are_rejected() {
        assert_eq!(
            parse(r#"{"id":"1","msg":1,"delay_ms":5,"not_before":5}"#),
            Err(DELAY_AND_NOT_BEFORE.to_string())
        );
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
                if !matches!(k.as_str(), "id" | "priority" | "msg" | "topic" | "timestamp" | "redelivered" | "deliveries" | "dead" | "ttl_ms" | "delay_ms" | "not_before") {
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
                expected["deliveries"] = 2.into();
            }
            prop_assert_eq!(delivered(parsed, ts, redelivered), expected);
        }

        #[test]
        fn arbitrary_text_never_panics(json in "\\PC{0,200}") {
            let _ = parse(&json);
        }
    }
}
