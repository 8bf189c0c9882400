//! Delivery lines (`docs/protocol.md` §5, §12.3): writing one from the
//! stored parts of an event ([`Delivery`]), and reading one back
//! ([`ParsedDelivery`]).
//!
//! The layout written is fixed:
//! `{"topic":…,"id":…,"priority":…<fields>,"timestamp":…[,"redelivered":true,"deliveries":N]}`
//! with `redelivered` and `deliveries` only from the second delivery on, so
//! a first delivery is byte for byte what version 1 sent. The reader does
//! not depend on that order (the contract says field order is not
//! significant) and accepts version 1 lines, where a redelivery has no
//! count.
//!
//! Invariant: for a [`Delivery`] whose `fields` came from
//! [`crate::EventInput::fields`] (or a dead letter built from them), parsing
//! its line gives back the same topic, id, priority, timestamp, delivery
//! count and fields bytes.

use std::borrow::Cow;

use bytes::{BufMut, BytesMut};

use crate::dead::DeadInfo;
use crate::json::{Members, is_digits, str_value, write_json_str, write_member, write_u64};

/// One delivery line, assembled from the stored parts of an event.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// Topic name (valid names need no JSON escaping).
    pub topic: &'a str,
    /// Event id, written as a JSON string.
    pub id: &'a str,
    /// Priority, always written.
    pub priority: u8,
    /// [`crate::EventInput::fields`] as stored.
    pub fields: &'a [u8],
    /// Milliseconds since the Unix epoch when the broker accepted it.
    pub timestamp: u64,
    /// The times this subscription has been sent the event, this time
    /// included: 1 for a first delivery (0 is taken as 1). From 2 on, the
    /// line carries `"redelivered":true,"deliveries":N`.
    pub deliveries: u32,
}

impl Delivery<'_> {
    /// Appends the delivery line, CRLF included, to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        // Escaping can at most sextuple the id; topics never need it.
        out.reserve(112 + self.topic.len() + 6 * self.id.len() + self.fields.len());
        self.write_object(out);
        out.put_slice(b"\r\n");
    }

    /// The delivery as a JSON object, without CRLF: the `event` of a
    /// `peek` entry (§12.7).
    pub fn to_json(&self) -> String {
        let mut out = BytesMut::with_capacity(112 + self.id.len() + self.fields.len());
        self.write_object(&mut out);
        // Every part is UTF-8: `fields` came from a `&str`, the rest is
        // written from `&str`s and digits.
        String::from_utf8_lossy(&out).into_owned()
    }

    #[inline]
    fn write_object(&self, out: &mut BytesMut) {
        out.put_slice(b"{\"topic\":");
        write_json_str(out, self.topic);
        out.put_slice(b",\"id\":");
        write_json_str(out, self.id);
        out.put_slice(b",\"priority\":");
        write_u64(out, u64::from(self.priority));
        out.put_slice(self.fields);
        out.put_slice(b",\"timestamp\":");
        write_u64(out, self.timestamp);
        if self.deliveries >= 2 {
            out.put_slice(b",\"redelivered\":true,\"deliveries\":");
            write_u64(out, u64::from(self.deliveries));
        }
        out.put_u8(b'}');
    }
}

/// A delivery line read back, borrowing from the line where it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDelivery<'a> {
    /// The topic it was published to.
    pub topic: Cow<'a, str>,
    /// Its id (an integer id is read as its decimal string).
    pub id: Cow<'a, str>,
    /// 0 to 255 (0 when absent).
    pub priority: u8,
    /// When the broker accepted it, ms since the Unix epoch (0 when absent).
    pub timestamp: u64,
    /// `"redelivered":true`, or a delivery count of 2 or more.
    pub redelivered: bool,
    /// The times this subscription has been sent it, this time included:
    /// the `deliveries` field; without one, 2 for a redelivery (a version 1
    /// broker does not count) and 1 otherwise.
    pub deliveries: u32,
    /// The raw JSON text of `msg`, if present (it is also in `fields`).
    pub msg: Option<&'a str>,
    /// The `dead` field of a dead letter (§12.6), when it reads as one (it
    /// is also in `fields`).
    pub dead: Option<DeadInfo>,
    /// Every other member, `msg` and `dead` included, in the order of the
    /// line, as `,"<key>":<value>` (the shape of
    /// [`crate::EventInput::fields`]).
    pub fields: Vec<u8>,
}

/// A line that is not a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad delivery line: {0}")]
pub struct DeliveryParseError(String);

impl<'a> ParsedDelivery<'a> {
    /// Reads a delivery line, with or without its CRLF.
    ///
    /// ```
    /// use herald_proto::ParsedDelivery;
    /// let d = ParsedDelivery::parse(
    ///     r#"{"topic":"t","id":"1","priority":3,"msg":"hi","timestamp":5,"redelivered":true,"deliveries":4}"#,
    /// )
    /// .unwrap();
    /// assert_eq!((&*d.topic, &*d.id, d.priority, d.deliveries), ("t", "1", 3, 4));
    /// assert_eq!(d.msg, Some(r#""hi""#));
    /// assert_eq!(d.fields, br#","msg":"hi""#);
    /// ```
    ///
    /// # Errors
    /// A [`DeliveryParseError`] for a line that is not a JSON object with
    /// a string `topic` and a string or integer `id`, or whose `priority`,
    /// `timestamp`, `redelivered` or `deliveries` has the wrong type, or
    /// that repeats one of those.
    pub fn parse(line: &'a str) -> Result<ParsedDelivery<'a>, DeliveryParseError> {
        let line = line
            .strip_suffix('\n')
            .map_or(line, |l| l.strip_suffix('\r').unwrap_or(l));
        let bad = |what: &str| DeliveryParseError(what.to_string());
        let Members(members) = serde_json::from_str::<Members<'a>>(line)
            .map_err(|e| DeliveryParseError(format!("not a JSON object: {e}")))?;
        let mut topic = None;
        let mut id = None;
        let mut priority = None;
        let mut timestamp = None;
        let mut redelivered = None;
        let mut deliveries = None;
        let mut msg = None;
        let mut dead = None;
        let mut fields = Vec::with_capacity(line.len());
        for (key, value) in &members {
            let raw = value.get();
            let slot_was_set = match key.as_ref() {
                "topic" => topic
                    .replace(str_value(value).ok_or_else(|| bad("'topic' must be a string"))?)
                    .is_some(),
                "id" => {
                    let text = match str_value(value) {
                        Some(s) => s,
                        None if is_digits(raw) && raw.parse::<u64>().is_ok() => Cow::Borrowed(raw),
                        None => return Err(bad("'id' must be a string or an integer")),
                    };
                    id.replace(text).is_some()
                }
                "priority" => priority
                    .replace(number(raw).ok_or_else(|| bad("'priority' must be 0 to 255"))?)
                    .is_some(),
                "timestamp" => timestamp
                    .replace(number(raw).ok_or_else(|| bad("'timestamp' must be an integer"))?)
                    .is_some(),
                "redelivered" => {
                    let flag = match raw {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad("'redelivered' must be true or false")),
                    };
                    redelivered.replace(flag).is_some()
                }
                "deliveries" => deliveries
                    .replace(number(raw).ok_or_else(|| bad("'deliveries' must be an integer"))?)
                    .is_some(),
                other => {
                    if other == "msg" {
                        msg = Some(raw);
                    } else if other == "dead" {
                        // Informational: a dead field from a newer broker
                        // that does not read as one stays in `fields` only.
                        dead = serde_json::from_str::<DeadInfo>(raw).ok();
                    }
                    write_member(&mut fields, key, raw);
                    false
                }
            };
            if slot_was_set {
                return Err(DeliveryParseError(format!("repeated field '{key}'")));
            }
        }
        let redelivered_flag = redelivered.unwrap_or(false);
        let deliveries = deliveries.unwrap_or(if redelivered_flag { 2 } else { 1 });
        Ok(ParsedDelivery {
            topic: topic.ok_or_else(|| bad("missing 'topic'"))?,
            id: id.ok_or_else(|| bad("missing 'id'"))?,
            priority: priority.unwrap_or(0),
            timestamp: timestamp.unwrap_or(0),
            redelivered: redelivered_flag || deliveries >= 2,
            deliveries,
            msg,
            dead,
            fields,
        })
    }

    /// The same delivery, ready to encode again.
    pub fn to_delivery(&self) -> Delivery<'_> {
        Delivery {
            topic: &self.topic,
            id: &self.id,
            priority: self.priority,
            fields: &self.fields,
            timestamp: self.timestamp,
            deliveries: self.deliveries,
        }
    }
}

/// A JSON integer literal that fits `T`.
fn number<T: std::str::FromStr>(raw: &str) -> Option<T> {
    if is_digits(raw) {
        raw.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventInput;
    use proptest::prelude::*;

    fn line(d: &Delivery<'_>) -> String {
        let mut out = BytesMut::new();
        d.encode(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn a_first_delivery_has_the_version_1_bytes() {
        let e = EventInput::parse(r#"{"id":"1","priority":3,"msg":"tweet 1"}"#).unwrap();
        let d = Delivery {
            topic: "tweets",
            id: &e.id,
            priority: e.priority,
            fields: &e.fields,
            timestamp: 1650054011933,
            deliveries: 1,
        };
        assert_eq!(
            line(&d),
            "{\"topic\":\"tweets\",\"id\":\"1\",\"priority\":3,\"msg\":\"tweet 1\",\"timestamp\":1650054011933}\r\n"
        );
        assert_eq!(line(&Delivery { deliveries: 0, ..d }), line(&d));
        assert_eq!(
            line(&Delivery { deliveries: 3, ..d }),
            "{\"topic\":\"tweets\",\"id\":\"1\",\"priority\":3,\"msg\":\"tweet 1\",\"timestamp\":1650054011933,\"redelivered\":true,\"deliveries\":3}\r\n"
        );
        assert_eq!(
            d.to_json(),
            line(&d).trim_end_matches("\r\n"),
            "to_json is the line without CRLF"
        );
    }

    #[test]
    fn a_version_1_redelivery_counts_as_a_second_delivery() {
        let d = ParsedDelivery::parse(
            r#"{"topic":"t","id":7,"priority":0,"msg":{"a":1},"timestamp":1,"redelivered":true}"#,
        )
        .unwrap();
        assert_eq!(d.id, "7");
        assert!(d.redelivered);
        assert_eq!(d.deliveries, 2);
        assert_eq!(d.msg, Some(r#"{"a":1}"#));
    }

    #[test]
    fn order_does_not_matter_and_defaults_fill_in() {
        let d = ParsedDelivery::parse(r#"{"msg":0,"x":[1, 2],"id":"a","topic":"t"}"#).unwrap();
        assert_eq!((d.priority, d.timestamp, d.deliveries), (0, 0, 1));
        assert!(!d.redelivered);
        assert_eq!(d.fields, br#","msg":0,"x":[1, 2]"#);
    }

    #[test]
    fn lines_that_are_not_deliveries_are_refused() {
        for line in [
            "",
            "{",
            "{}",
            "[1]",
            "+OK pong",
            r#"{"topic":1,"id":"x"}"#,
            r#"{"topic":"t"}"#,
            r#"{"id":"x"}"#,
            r#"{"topic":"t","id":-1}"#,
            r#"{"topic":"t","id":"x","priority":256}"#,
            r#"{"topic":"t","id":"x","priority":1.0}"#,
            r#"{"topic":"t","id":"x","timestamp":"1"}"#,
            r#"{"topic":"t","id":"x","redelivered":1}"#,
            r#"{"topic":"t","id":"x","deliveries":-2}"#,
            r#"{"topic":"t","id":"x","topic":"u"}"#,
        ] {
            assert!(ParsedDelivery::parse(line).is_err(), "{line}");
        }
    }

    #[test]
    fn crlf_is_optional() {
        let a = ParsedDelivery::parse("{\"topic\":\"t\",\"id\":\"1\",\"msg\":1}\r\n").unwrap();
        let b = ParsedDelivery::parse("{\"topic\":\"t\",\"id\":\"1\",\"msg\":1}").unwrap();
        assert_eq!(a, b);
    }

    proptest! {
        #[test]
        fn encode_then_parse_is_the_identity(
            topic in "[A-Za-z0-9_-][A-Za-z0-9_.-]{0,20}",
            id in prop_oneof![
                "[!-~\u{a1}-\u{2ff}]{1,40}",
                any::<u64>().prop_map(|n| n.to_string()),
            ],
            priority in any::<u8>(),
            extras in prop::collection::btree_map("[a-z\"\\\\\u{1}é]{1,6}", "[ -~]{0,10}", 0..4),
            msg in "\\PC{0,30}",
            timestamp in any::<u64>(),
            deliveries in 1u32..,
        ) {
            let mut json = serde_json::json!({"id": id, "priority": priority, "msg": msg});
            for (k, v) in extras {
                if !["id", "priority", "msg"].contains(&k.as_str()) && !crate::event::RESERVED_FIELDS.contains(&k.as_str()) {
                    json[k] = v.into();
                }
            }
            let event = EventInput::parse(&json.to_string()).unwrap();
            let d = Delivery {
                topic: &topic,
                id: &event.id,
                priority: event.priority,
                fields: &event.fields,
                timestamp,
                deliveries,
            };
            let text = line(&d);
            let parsed = ParsedDelivery::parse(&text).unwrap();
            prop_assert_eq!(&parsed.topic, &topic);
            prop_assert_eq!(&parsed.id, &event.id);
            prop_assert_eq!(parsed.priority, event.priority);
            prop_assert_eq!(parsed.timestamp, timestamp);
            prop_assert_eq!(parsed.deliveries, deliveries);
            prop_assert_eq!(parsed.redelivered, deliveries >= 2);
            prop_assert_eq!(&parsed.fields, &event.fields);
            prop_assert_eq!(line(&parsed.to_delivery()), text);
        }
    }
}
