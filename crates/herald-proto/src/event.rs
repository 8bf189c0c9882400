//! The JSON event of a `pub`: validation, and the delivery bytes built once.

use bytes::BytesMut;

/// A validated event, ready to be stamped and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInput {
    /// The id as a string (an integer id is kept as its decimal string).
    pub id: String,
    /// 0..=255, default 0.
    pub priority: u8,
    /// The delivery line without `timestamp` and without the closing brace:
    /// `{"topic":"<topic>","id":"<id>","priority":<p>,<the other fields as sent>`.
    pub body: Vec<u8>,
}

impl EventInput {
    /// Validates `json` (the rest of a `pub` line) as an event of `topic`.
    ///
    /// # Errors
    /// A human-readable reason, sent as `-ERR bad_event <reason>`.
    pub fn parse(topic: &str, json: &str) -> Result<EventInput, String> {
        let _ = (topic, json);
        todo!("helper implements")
    }

    /// Appends `,"timestamp":<ms>` and returns the stored body (still without
    /// the closing brace; see [`write_delivery`]).
    pub fn stamp(self, timestamp_ms: u64) -> Vec<u8> {
        let _ = timestamp_ms;
        todo!("helper implements")
    }
}

/// Appends a delivery line to `out`: the stamped body, `,"redelivered":true`
/// when `redelivered`, then `}` and CRLF.
pub fn write_delivery(stamped_body: &[u8], redelivered: bool, out: &mut BytesMut) {
    let _ = (stamped_body, redelivered, out);
    todo!("helper implements")
}
