//! The JSON of `peek` (`docs/protocol.md` §12.7): `+OK [{…},…]`, one
//! [`PeekEntry`] per event shown.
//!
//! `event` is the delivery line as it would be sent next, kept as raw
//! JSON text so that publisher fields (big numbers included) come through
//! byte for byte; [`PeekEntry::new`] writes it from a [`Delivery`].

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::delivery::Delivery;

/// Where a peeked event is in its subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeekState {
    /// Delivered and not acknowledged.
    InFlight,
    /// Deliverable, waiting for a free slot.
    Queued,
    /// Not deliverable before its due time (§13.2, a backoff or a `nack`).
    Delayed,
}

/// One event in a `peek` reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeekEntry {
    /// In flight, queued or delayed.
    pub state: PeekState,
    /// The times the subscription has been sent it so far (0 if never).
    pub deliveries: u32,
    /// In flight with a `wait`: ms left before it is returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Delayed: ms left before it is deliverable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_ms: Option<u64>,
    /// The delivery as it would be sent next, as raw JSON.
    pub event: Box<RawValue>,
}

impl PeekEntry {
    /// An entry for `delivery` (whose `deliveries` should be the count of
    /// the next send: `deliveries + 1`).
    pub fn new(
        state: PeekState,
        deliveries: u32,
        deadline_ms: Option<u64>,
        due_ms: Option<u64>,
        delivery: &Delivery<'_>,
    ) -> PeekEntry {
        // A delivery object is valid JSON by construction (its fields come
        // from a validated event), so this cannot fail; fall back to null
        // rather than panic if that invariant ever breaks.
        let event =
            RawValue::from_string(delivery.to_json()).unwrap_or_else(|_| RawValue::NULL.to_owned());
        PeekEntry {
            state,
            deliveries,
            deadline_ms,
            due_ms,
            event,
        }
    }
}

impl PartialEq for PeekEntry {
    fn eq(&self, other: &PeekEntry) -> bool {
        self.state == other.state
            && self.deliveries == other.deliveries
            && self.deadline_ms == other.deadline_ms
            && self.due_ms == other.due_ms
            && self.event.get() == other.event.get()
    }
}

impl Eq for PeekEntry {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventInput, ParsedDelivery, Reply};

    #[test]
    fn entries_encode_as_the_contract_shows_and_read_back() {
        let e = EventInput::parse(r#"{"id":"7","msg":"m","big":123456789012345678901234567890}"#)
            .unwrap();
        let delivery = Delivery {
            topic: "jobs",
            id: &e.id,
            priority: 2,
            fields: &e.fields,
            timestamp: 5,
            deliveries: 2,
        };
        let entries = vec![
            PeekEntry::new(PeekState::InFlight, 1, Some(2500), None, &delivery),
            PeekEntry::new(
                PeekState::Delayed,
                0,
                None,
                Some(100),
                &Delivery {
                    deliveries: 1,
                    ..delivery
                },
            ),
        ];
        let Reply::Json(json) = Reply::json(&entries) else {
            panic!("a JSON reply");
        };
        assert_eq!(
            json,
            concat!(
                r#"[{"state":"in_flight","deliveries":1,"deadline_ms":2500,"event":{"topic":"jobs","id":"7","priority":2,"msg":"m","big":123456789012345678901234567890,"timestamp":5,"redelivered":true,"deliveries":2}},"#,
                r#"{"state":"delayed","deliveries":0,"due_ms":100,"event":{"topic":"jobs","id":"7","priority":2,"msg":"m","big":123456789012345678901234567890,"timestamp":5}}]"#
            )
        );
        let back: Vec<PeekEntry> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, entries);
        let event = ParsedDelivery::parse(back[0].event.get()).unwrap();
        assert_eq!((&*event.id, event.deliveries), ("7", 2));
    }
}
