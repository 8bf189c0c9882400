//! Dead letters (`docs/protocol.md` §12.6): the fields of the event the
//! broker publishes to a dead topic.
//!
//! A dead letter keeps `msg`, `priority` and the publisher's own fields,
//! drops the time fields (`ttl_ms`, `delay_ms`, `not_before`: they were
//! about the original event), gets the id `<subscription>/<id>` and a
//! `"dead":{…}` field saying where it came from and why. The broker picks
//! the timestamp, the topic and when; this module only shapes the bytes.
//!
//! Invariant: [`dead_letter_fields`] returns fields in the shape of
//! [`crate::EventInput::fields`] (members in order, no CR or LF, no
//! repeated key), so a dead letter is delivered like any event.

use serde::{Deserialize, Serialize};

use crate::event::TIME_FIELDS;
use crate::json::{Members, write_json_str, write_member, write_u64};

/// Why an event was dead-lettered (§12.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadReason {
    /// Returned after `max_deliveries` deliveries.
    MaxDeliveries,
    /// `nack … dead`.
    Rejected,
    /// Its time to live ran out (§13.1).
    Expired,
    /// Evicted by `overflow=drop` (§13.4).
    Overflow,
}

impl DeadReason {
    /// The wire word.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::MaxDeliveries => "max_deliveries",
            DeadReason::Rejected => "rejected",
            DeadReason::Expired => "expired",
            DeadReason::Overflow => "overflow",
        }
    }
}

/// The `dead` field of a dead letter: where the event came from and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadInfo {
    /// The original topic.
    pub topic: String,
    /// The original id.
    pub id: String,
    /// The subscription that gave it up (a durable name, a group, or `~<n>`).
    pub subscription: String,
    /// Why.
    pub reason: DeadReason,
    /// Times the subscription had been sent it.
    pub deliveries: u32,
    /// The original event's timestamp (when it was published).
    pub timestamp: u64,
}

impl DeadInfo {
    /// Appends `,"dead":{"topic":…,"id":…,"subscription":…,"reason":…,"deliveries":…,"timestamp":…}`.
    pub fn write_field(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b",\"dead\":{\"topic\":");
        write_json_str(out, &self.topic);
        out.extend_from_slice(b",\"id\":");
        write_json_str(out, &self.id);
        out.extend_from_slice(b",\"subscription\":");
        write_json_str(out, &self.subscription);
        out.extend_from_slice(b",\"reason\":\"");
        out.extend_from_slice(self.reason.as_str().as_bytes());
        out.extend_from_slice(b"\",\"deliveries\":");
        write_u64(out, u64::from(self.deliveries));
        out.extend_from_slice(b",\"timestamp\":");
        write_u64(out, self.timestamp);
        out.push(b'}');
    }

    /// The id of the dead letter: `<subscription>/<id>` (which may be longer
    /// than a published id may be).
    pub fn dead_letter_id(&self) -> String {
        format!("{}/{}", self.subscription, self.id)
    }
}

/// Stored fields that are not a member list (never the case for fields
/// made by [`crate::EventInput::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored event fields are not a JSON member list: {0}")]
pub struct FieldsError(String);

/// `fields` (as stored, [`crate::EventInput::fields`]) without `ttl_ms`,
/// `delay_ms` and `not_before`, every other field kept in order.
///
/// # Errors
/// [`FieldsError`] if `fields` is not `,"<key>":<value>` repeated.
pub fn strip_time_fields(fields: &[u8]) -> Result<Vec<u8>, FieldsError> {
    without(fields, &TIME_FIELDS)
}

/// The fields of the dead letter of an event stored with `fields`: without
/// the time fields, and with `dead` appended. A `dead` field already there
/// (a dead letter dead-lettered again) is replaced, so the object never
/// holds the key twice.
///
/// ```
/// use herald_proto::{DeadInfo, DeadReason, EventInput, dead_letter_fields};
/// let event = EventInput::parse(r#"{"id":"7","msg":"m","ttl_ms":5000,"lang":"en"}"#).unwrap();
/// let dead = DeadInfo {
///     topic: "jobs".into(),
///     id: "7".into(),
///     subscription: "workers".into(),
///     reason: DeadReason::MaxDeliveries,
///     deliveries: 5,
///     timestamp: 1650054011933,
/// };
/// let fields = dead_letter_fields(&event.fields, &dead).unwrap();
/// assert_eq!(
///     String::from_utf8(fields).unwrap(),
///     r#","msg":"m","lang":"en","dead":{"topic":"jobs","id":"7","subscription":"workers","reason":"max_deliveries","deliveries":5,"timestamp":1650054011933}"#
/// );
/// assert_eq!(dead.dead_letter_id(), "workers/7");
/// ```
///
/// # Errors
/// [`FieldsError`] if `fields` is not `,"<key>":<value>` repeated.
pub fn dead_letter_fields(fields: &[u8], dead: &DeadInfo) -> Result<Vec<u8>, FieldsError> {
    let mut out = without(fields, &["ttl_ms", "delay_ms", "not_before", "dead"])?;
    dead.write_field(&mut out);
    Ok(out)
}

fn without(fields: &[u8], drop: &[&str]) -> Result<Vec<u8>, FieldsError> {
    if fields.is_empty() {
        return Ok(Vec::new());
    }
    let text = std::str::from_utf8(fields).map_err(|e| FieldsError(e.to_string()))?;
    let Some(members) = text.strip_prefix(',') else {
        return Err(FieldsError("does not start with a comma".to_string()));
    };
    let object = format!("{{{members}}}");
    let Members(members) =
        serde_json::from_str::<Members<'_>>(&object).map_err(|e| FieldsError(e.to_string()))?;
    let mut out = Vec::with_capacity(fields.len() + 160);
    for (key, raw) in &members {
        if !drop.contains(&key.as_ref()) {
            write_member(&mut out, key, raw.get());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Delivery, EventInput, ParsedDelivery};

    fn info() -> DeadInfo {
        DeadInfo {
            topic: "jobs".into(),
            id: "a\"b".into(),
            subscription: "~3".into(),
            reason: DeadReason::Expired,
            deliveries: 0,
            timestamp: 9,
        }
    }

    #[test]
    fn time_fields_go_and_everything_else_stays_in_order() {
        let e = EventInput::parse(
            r#"{"delay_ms":0,"id":"1","x":{"ttl_ms":1},"msg":[1, 2],"\u00e9":true,"ttl_ms":9}"#,
        )
        .unwrap();
        let stripped = strip_time_fields(&e.fields).unwrap();
        assert_eq!(
            String::from_utf8(stripped).unwrap(),
            r#","x":{"ttl_ms":1},"msg":[1, 2],"é":true"#
        );
        let stripped = strip_time_fields(br#","not_before":5,"msg":1"#).unwrap();
        assert_eq!(stripped, br#","msg":1"#);
        assert_eq!(strip_time_fields(b"").unwrap(), b"");
    }

    #[test]
    fn the_dead_letter_is_an_event_like_any_other() {
        let e = EventInput::parse(r#"{"id":"a\"b","msg":"m","ttl_ms":50}"#).unwrap();
        let dead = info();
        let fields = dead_letter_fields(&e.fields, &dead).unwrap();
        let id = dead.dead_letter_id();
        let mut line = bytes::BytesMut::new();
        Delivery {
            topic: "jobs.dead",
            id: &id,
            priority: e.priority,
            fields: &fields,
            timestamp: 10,
            deliveries: 1,
        }
        .encode(&mut line);
        let text = std::str::from_utf8(&line).unwrap();
        let parsed = ParsedDelivery::parse(text).unwrap();
        assert_eq!(parsed.id, "~3/a\"b");
        assert_eq!(parsed.dead, Some(dead.clone()));
        let value: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(value["dead"]["reason"], "expired");
        assert!(value.get("ttl_ms").is_none());

        // Dead-lettered again: one `dead` field, the new one.
        let again = DeadInfo {
            reason: DeadReason::Rejected,
            ..dead
        };
        let twice = dead_letter_fields(&fields, &again).unwrap();
        let text = format!("{{\"id\":1{}}}", String::from_utf8(twice).unwrap());
        assert_eq!(text.matches("\"dead\"").count(), 1);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["dead"]["reason"], "rejected");
    }

    #[test]
    fn fields_that_are_not_a_member_list_are_an_error() {
        for fields in [&b"\"msg\":1"[..], b",\"msg\"", b",\xff", b",\"a\":1}"] {
            assert!(strip_time_fields(fields).is_err(), "{fields:?}");
        }
    }
}
