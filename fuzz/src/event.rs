//! Arbitrary text through `EventInput::parse`.
//!
//! Checks: nothing panics; an accepted event's delivery line is one line
//! and parses back (`ParsedDelivery`) with the same id, priority, fields
//! and delivery count; its dead letter does too, without the time fields.

use bytes::BytesMut;
use herald_proto::{
    DeadInfo, DeadReason, Delivery, EventInput, ParsedDelivery, dead_letter_fields,
    strip_time_fields,
};

fn line_of(d: &Delivery<'_>) -> String {
    let mut out = BytesMut::new();
    d.encode(&mut out);
    let text = String::from_utf8(out.to_vec()).expect("a delivery is UTF-8");
    let body = text.strip_suffix("\r\n").expect("ends with CRLF");
    assert!(!body.contains(['\r', '\n']), "one line: {body:?}");
    text
}

/// One fuzz input through the checks above; panics on a finding.
pub fn run(data: &[u8]) {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(event) = EventInput::parse(json) else {
        return;
    };
    // The delivery count comes from the input too, so both shapes occur.
    let deliveries = u32::from(data.len() as u8 % 4);
    let delivery = Delivery {
        topic: "t",
        id: &event.id,
        priority: event.priority,
        fields: &event.fields,
        timestamp: 1_650_054_011_933,
        deliveries,
    };
    let text = line_of(&delivery);
    let parsed = ParsedDelivery::parse(&text).expect("a delivery parses back");
    assert_eq!(parsed.id, event.id);
    assert_eq!(parsed.priority, event.priority);
    assert_eq!(parsed.fields, event.fields);
    assert_eq!(parsed.deliveries, deliveries.max(1));
    assert_eq!(parsed.redelivered, deliveries >= 2);

    let stripped = strip_time_fields(&event.fields).expect("stored fields are a member list");
    let dead = DeadInfo {
        topic: "t".into(),
        id: event.id.clone(),
        subscription: "~1".into(),
        reason: DeadReason::MaxDeliveries,
        deliveries,
        timestamp: 1,
    };
    let fields = dead_letter_fields(&event.fields, &dead).expect("stored fields are a member list");
    assert!(fields.starts_with(&stripped));
    let id = dead.dead_letter_id();
    let letter = Delivery {
        topic: "t.dead",
        id: &id,
        priority: event.priority,
        fields: &fields,
        timestamp: 2,
        deliveries: 1,
    };
    let text = line_of(&letter);
    let parsed = ParsedDelivery::parse(&text).expect("a dead letter parses back");
    assert_eq!(parsed.dead.as_ref(), Some(&dead));
    assert_eq!(parsed.fields, fields);
    // As an event again: still valid, and without its time fields.
    let again = format!(
        "{{\"id\":\"x\"{}}}",
        std::str::from_utf8(&stripped).expect("fields are UTF-8")
    );
    let again = EventInput::parse(&again).expect("stripped fields still make an event");
    assert_eq!(
        (again.ttl_ms, again.delay_ms, again.not_before),
        (None, None, None)
    );
}
