//! An accepted event, shared by every queue it sits in.

use std::fmt;

/// Broker-wide publish sequence number: queue order among equal priorities,
/// and the key acks and log records use to name an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An accepted event. Its bytes are stored once (the id and the other fields
/// in one allocation) and shared through `Arc` by every subscriber queue.
#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    /// Publish order.
    pub seq: Seq,
    /// 0..=255, higher delivered first.
    pub priority: u8,
    /// Milliseconds since the Unix epoch when the broker accepted it.
    pub timestamp: u64,
    id_len: u16,
    /// The id, then the other fields as sent (`herald_proto::EventInput::fields`).
    /// A `str` so that reading the id back needs no UTF-8 check.
    data: Box<str>,
}

impl Event {
    /// Builds an event from its parts; `fields` is
    /// `herald_proto::EventInput::fields`.
    ///
    /// # Panics
    /// If `id` is longer than 65535 bytes (the protocol allows 256).
    pub fn new(seq: Seq, priority: u8, timestamp: u64, id: &str, fields: &[u8]) -> Event {
        let id_len = u16::try_from(id.len()).expect("event ids are at most 256 bytes");
        // Fields are cut from validated UTF-8 lines, so this is checked once
        // here and never again; anything else is replaced, not trusted.
        let fields = String::from_utf8_lossy(fields);
        let mut data = String::with_capacity(id.len() + fields.len());
        data.push_str(id);
        data.push_str(&fields);
        Event {
            seq,
            priority,
            timestamp,
            id_len,
            data: data.into_boxed_str(),
        }
    }

    /// The event id.
    pub fn id(&self) -> &str {
        // `id_len` is the length of the `&str` copied first in `new`, so
        // this is a char boundary.
        self.data.get(..self.id_len as usize).unwrap_or("")
    }

    /// The fields other than id and priority, as `,"key":value` JSON text.
    pub fn fields(&self) -> &[u8] {
        &self.data.as_bytes()[self.id_len as usize..]
    }

    /// Bytes this event takes in memory and, roughly, in the log.
    pub fn size(&self) -> usize {
        self.data.len() + 32
    }
}
