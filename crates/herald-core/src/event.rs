//! An accepted event, shared by every queue it sits in.

use std::fmt;

/// Broker-wide sequence number. Every accepted event takes the next one
/// (publish order, the key acks and log records use to name an event); so
/// does every event that joins a priority level at its due time, which is
/// what orders a level by when events *joined* it (`docs/protocol.md` 12.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Longest time to live and longest delay, in ms: 30 days
/// (`docs/protocol.md` 11). Both fit a `u32`, which keeps them inside the
/// padding of [`Event`].
pub const MAX_TIME_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// An accepted event. Its bytes are stored once (the id and the other fields
/// in one allocation) and shared through `Arc` by every subscription queue.
#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    /// Publish order.
    pub seq: Seq,
    /// Milliseconds since the Unix epoch when the broker accepted it.
    pub timestamp: u64,
    /// The id, then the other fields as sent (`herald_proto::EventInput::fields`).
    /// A `str` so that reading the id back needs no UTF-8 check.
    data: Box<str>,
    /// Time to live from `timestamp`, in ms; 0 for none. A `u32` because
    /// lifetimes are at most [`MAX_TIME_MS`].
    ttl_ms: u32,
    /// Bytes of the `msg` value as published (what `limit_bytes` counts).
    msg_len: u32,
    id_len: u16,
    /// 0..=255, higher delivered first.
    pub priority: u8,
}

impl Event {
    /// Builds an event from its parts; `fields` is
    /// `herald_proto::EventInput::fields`. The `msg` length is found by
    /// scanning `fields`; [`Event::with_meta`] takes it ready-made.
    ///
    /// # Panics
    /// If `id` is longer than 65535 bytes (the protocol allows 256; dead
    /// letters prefix a subscription name, which the broker bounds).
    pub fn new(seq: Seq, priority: u8, timestamp: u64, id: &str, fields: &[u8]) -> Event {
        let msg_len = msg_len(fields).unwrap_or(0);
        Event::with_meta(seq, priority, timestamp, id, fields, 0, msg_len)
    }

    /// Builds an event with its time to live (ms, 0 for none, capped at
    /// [`MAX_TIME_MS`]) and the length of its `msg`.
    ///
    /// # Panics
    /// As [`Event::new`].
    pub fn with_meta(
        seq: Seq,
        priority: u8,
        timestamp: u64,
        id: &str,
        fields: &[u8],
        ttl_ms: u64,
        msg_len: usize,
    ) -> Event {
        let id_len = u16::try_from(id.len()).expect("event ids are at most 65535 bytes");
        // Fields are cut from validated UTF-8 lines, so this is checked once
        // here and never again; anything else is replaced, not trusted.
        // `from_utf8` first: its ASCII fast path is several times cheaper
        // than the chunk-by-chunk scan of `from_utf8_lossy` (a profile of
        // the publish path showed that scan at ~5% of the broker's work).
        let fields = match std::str::from_utf8(fields) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(fields),
        };
        let mut data = String::with_capacity(id.len() + fields.len());
        data.push_str(id);
        data.push_str(&fields);
        Event {
            seq,
            priority,
            timestamp,
            id_len,
            ttl_ms: ttl_ms.min(MAX_TIME_MS) as u32,
            msg_len: u32::try_from(msg_len).unwrap_or(u32::MAX),
            data: data.into_boxed_str(),
        }
    }

    /// The event id.
    pub fn id(&self) -> &str {
        // `id_len` is the length of the `&str` copied first in `with_meta`,
        // so this is a char boundary.
        self.data.get(..self.id_len as usize).unwrap_or("")
    }

    /// The fields other than id and priority, as `,"key":value` JSON text.
    pub fn fields(&self) -> &[u8] {
        &self.data.as_bytes()[self.id_len as usize..]
    }

    /// Time to live in ms, if the event has one.
    pub fn ttl_ms(&self) -> Option<u64> {
        (self.ttl_ms > 0).then_some(u64::from(self.ttl_ms))
    }

    /// When the event expires (ms since the epoch), if it has a time to live.
    pub fn expires_at(&self) -> Option<u64> {
        self.ttl_ms().map(|ttl| self.timestamp.saturating_add(ttl))
    }

    /// Whether the event has expired at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at().is_some_and(|at| at <= now_ms)
    }

    /// Bytes of the `msg` value as published.
    pub fn msg_len(&self) -> u64 {
        u64::from(self.msg_len)
    }

    /// Bytes this event takes in memory and, roughly, in the log.
    pub fn size(&self) -> usize {
        self.data.len() + 40
    }
}

/// The length of the `msg` value in stored `fields` (`,"key":value...`),
/// found by parsing them: for events read back from records that predate
/// the stored length, never on the publish path.
fn msg_len(fields: &[u8]) -> Option<usize> {
    use serde_json::value::RawValue;
    let inner = fields.strip_prefix(b",")?;
    let mut object = Vec::with_capacity(inner.len() + 2);
    object.push(b'{');
    object.extend_from_slice(inner);
    object.push(b'}');
    let map: std::collections::HashMap<String, &RawValue> = serde_json::from_slice(&object).ok()?;
    map.get("msg").map(|raw| raw.get().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_and_ttl_is_counted_from_the_timestamp() {
        let e = Event::with_meta(Seq(3), 7, 1_000, "a-1", br#","msg":"hi""#, 500, 4);
        assert_eq!(e.id(), "a-1");
        assert_eq!(e.fields(), br#","msg":"hi""#);
        assert_eq!(e.ttl_ms(), Some(500));
        assert_eq!(e.expires_at(), Some(1_500));
        assert!(!e.is_expired(1_499));
        assert!(e.is_expired(1_500));
        assert_eq!(e.msg_len(), 4);
        let forever = Event::new(Seq(4), 0, 1_000, "b", br#","msg":[1,2]"#);
        assert_eq!(forever.ttl_ms(), None);
        assert!(!forever.is_expired(u64::MAX));
        assert_eq!(forever.msg_len(), 5);
    }

    #[test]
    fn an_event_is_no_bigger_than_its_fields_need() {
        // Time to live and msg length live in what would be padding.
        assert!(std::mem::size_of::<Event>() <= 48);
    }
}
