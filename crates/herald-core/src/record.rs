//! The log record of a [`Change`]: its payload bytes, their size, and the
//! way back. Pure, no IO.
//!
//! The log (`herald-log`) stores opaque payloads: it frames each one with a
//! length and a checksum, and on recovery hands the payloads back in order.
//! What a payload means is decided here, beside [`Change`], so that the log
//! never learns what an event is and the broker never learns what a file is.
//! The server joins the two: `log.append_with(|buf| record::encode(&change,
//! buf))` on the hot path, a [`Decoder`] in the replay callback.
//!
//! # Payloads, format version 2
//!
//! All integers are little-endian.
//!
//! ```text
//! Field types
//!   str   u16 length, then that many UTF-8 bytes (names <= 128, ids <= 256,
//!         dead-letter ids <= 4096)
//!   blob  u32 length, then that many bytes
//!   u8 / u16 / u32 / u64 as named; a time is ms since the epoch, 0 = none
//!
//!   event     seq: u64, timestamp: u64, priority: u8, ttl_ms: u32,
//!             msg_len: u32 (bytes of the `msg` value), id: str,
//!             fields: blob (the event's other fields as `,"key":value`
//!             JSON text, `msg` included; UTF-8)
//!   holders   u32 count, then per holder:
//!             subscriber: str, deliveries: u32, due: u64
//!
//! Payloads: kind (u8), then the fields of that kind
//!   1 TopicCreated     topic: str
//!   3 Unsubscribed     subscriber: str, topic: str
//!   5 Acked            subscriber: str, topic: str, seq: u64
//!   6 Delivered        subscriber: str, topic: str, seq: u64
//!   7 TopicConfigured  topic: str, ttl_ms: u64
//!   8 Subscribed       subscriber: str, topic: str, group: u8 (0 or 1),
//!                      prefetch: u16, options: str (the `sub` reply's
//!                      options, e.g. "wait=30000 backoff=1000,5000", read
//!                      back with herald-proto's option rules)
//!   9 Published        topic: str, event, holders
//!  10 Delayed          subscriber: str, topic: str, seq: u64, due: u64
//!  11 Removed          subscriber: str, topic: str, seq: u64, reason: u8
//!  12 DeadLettered     subscriber: str (empty: an anonymous subscription),
//!                      topic: str, seq: u64, reason: u8, dead_topic: str,
//!                      event (the dead letter), holders
//!
//! reason: 1 max_deliveries, 2 rejected, 3 expired, 4 overflow
//!
//! Version 1 kinds, still read (logs written before version 2):
//!   2 Subscribed       subscriber: str, topic: str, prefetch: u16
//!                      (a named subscriber without options)
//!   4 Published        topic: str, seq: u64, timestamp: u64, priority: u8,
//!                      id: str, fields: blob, holders: u32 count, then per
//!                      holder: subscriber: str, delivered: u8 (0 or 1)
//!                      (no time to live, no due times; `delivered` is one
//!                      delivery)
//! ```
//!
//! The frame around a payload (length, checksum), the segment header that
//! carries the format version, and the steps to follow when the format
//! changes are in `herald-log`'s crate docs. A new kind or field is a format
//! change: the decoder must keep reading every older kind.
//!
//! Invariants:
//! - `decode(encode(c)) == c`, and [`payload_len`] is exactly the number of
//!   bytes [`encode`] appends (every size is computed by the `*_len`
//!   functions here, which [`Broker::record_bound`](crate::Broker::record_bound)
//!   uses too);
//! - a payload decodes only if it is consumed exactly, and anything of a
//!   current kind that decodes encodes back to the same bytes (one encoding
//!   per change: flags are 0 or 1, text is UTF-8). A version 1 kind decodes
//!   to the change it meant and encodes as the current kind.

use crate::change::{Change, Holder, RemoveReason};
use crate::event::{Event, Seq};
use herald_proto::SubOptions;
use std::collections::HashSet;
use std::sync::Arc;

const KIND_TOPIC_CREATED: u8 = 1;
const KIND_SUBSCRIBED_V1: u8 = 2;
const KIND_UNSUBSCRIBED: u8 = 3;
const KIND_PUBLISHED_V1: u8 = 4;
const KIND_ACKED: u8 = 5;
const KIND_DELIVERED: u8 = 6;
const KIND_TOPIC_CONFIGURED: u8 = 7;
const KIND_SUBSCRIBED: u8 = 8;
const KIND_PUBLISHED: u8 = 9;
const KIND_DELAYED: u8 = 10;
const KIND_REMOVED: u8 = 11;
const KIND_DEAD_LETTERED: u8 = 12;

/// Whether `kind` is a version 1 kind that decodes but encodes as its
/// version 2 successor (so its bytes do not round-trip).
pub fn is_legacy_kind(kind: u8) -> bool {
    matches!(kind, KIND_SUBSCRIBED_V1 | KIND_PUBLISHED_V1)
}

/// Why a payload is not a record this version reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The first byte names no kind this version knows.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// A field runs past the end of the payload.
    #[error("field of {needed} bytes at payload offset {offset} runs past the end of the payload")]
    Truncated {
        /// Where the field starts in the payload.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
    },
    /// A name, id or the event's fields are not UTF-8.
    #[error("text at payload offset {offset} is not UTF-8")]
    NotUtf8 {
        /// Where the text starts in the payload.
        offset: usize,
    },
    /// A flag byte is neither 0 nor 1, or a reason byte names no reason.
    #[error("flag {flag} at payload offset {offset} is out of range")]
    BadFlag {
        /// Where the flag is in the payload.
        offset: usize,
        /// Its value.
        flag: u8,
    },
    /// A subscription's options do not read back.
    #[error("subscription options at payload offset {offset} do not parse: {reason}")]
    BadOptions {
        /// Where the options start in the payload.
        offset: usize,
        /// Why.
        reason: String,
    },
    /// A number is outside what the broker ever writes.
    #[error("{what} at payload offset {offset} is out of range")]
    OutOfRange {
        /// Where the number is in the payload.
        offset: usize,
        /// Which field.
        what: &'static str,
    },
    /// Bytes are left after the last field of the kind.
    #[error("{0} trailing bytes after the record")]
    TrailingBytes(usize),
}

/// Bytes of a `str` field of `len` bytes.
const fn str_len(len: usize) -> usize {
    2 + len
}

/// Bytes of an `event` of these id and fields lengths.
const fn event_len(id: usize, fields: usize) -> usize {
    8 + 8 + 1 + 4 + 4 + str_len(id) + 4 + fields
}

/// Bytes of `holders`: `count` holders whose names total `name_bytes`.
const fn holders_len(count: usize, name_bytes: usize) -> usize {
    4 + count * (2 + 4 + 8) + name_bytes
}

/// Payload bytes of a `TopicCreated` record whose topic has `topic` bytes.
pub const fn topic_created_len(topic: usize) -> usize {
    1 + str_len(topic)
}

/// Payload bytes of a `TopicConfigured` record.
pub const fn topic_configured_len(topic: usize) -> usize {
    1 + str_len(topic) + 8
}

/// Payload bytes of a `Subscribed` record with `options` bytes of options.
pub const fn subscribed_len(subscriber: usize, topic: usize, options: usize) -> usize {
    1 + str_len(subscriber) + str_len(topic) + 1 + 2 + str_len(options)
}

/// Longest options text a `sub` can give (every option at its longest):
/// bounds [`subscribed_len`] before the command runs.
pub const MAX_OPTIONS_BYTES: usize = 1024;

/// Payload bytes of an `Unsubscribed` record.
pub const fn unsubscribed_len(subscriber: usize, topic: usize) -> usize {
    1 + str_len(subscriber) + str_len(topic)
}

/// Payload bytes of a `Published` record: `topic`, `id` and `fields` are
/// byte lengths, `holders` the number of holders and `holder_name_bytes`
/// the sum of their names' lengths.
pub const fn published_len(
    topic: usize,
    id: usize,
    fields: usize,
    holders: usize,
    holder_name_bytes: usize,
) -> usize {
    1 + str_len(topic) + event_len(id, fields) + holders_len(holders, holder_name_bytes)
}

/// Payload bytes of an `Acked` or `Delivered` record.
pub const fn acked_len(subscriber: usize, topic: usize) -> usize {
    1 + str_len(subscriber) + str_len(topic) + 8
}

/// Payload bytes of a `Delayed` record.
pub const fn delayed_len(subscriber: usize, topic: usize) -> usize {
    acked_len(subscriber, topic) + 8
}

/// Payload bytes of a `Removed` record.
pub const fn removed_len(subscriber: usize, topic: usize) -> usize {
    acked_len(subscriber, topic) + 1
}

/// Payload bytes of a `DeadLettered` record (`subscriber` is 0 for an
/// anonymous subscription; `id` and `fields` are the dead letter's).
pub const fn dead_lettered_len(
    subscriber: usize,
    topic: usize,
    dead_topic: usize,
    id: usize,
    fields: usize,
    holders: usize,
    holder_name_bytes: usize,
) -> usize {
    1 + str_len(subscriber)
        + str_len(topic)
        + 8
        + 1
        + str_len(dead_topic)
        + event_len(id, fields)
        + holders_len(holders, holder_name_bytes)
}

fn names_len(holders: &[Holder]) -> usize {
    holders.iter().map(|h| h.subscriber.len()).sum()
}

/// Bytes [`encode`] appends for `change`: its payload, without the log's
/// frame.
pub fn payload_len(change: &Change) -> usize {
    match change {
        Change::TopicCreated { topic } => topic_created_len(topic.len()),
        Change::TopicConfigured { topic, .. } => topic_configured_len(topic.len()),
        Change::Subscribed {
            subscriber,
            topic,
            options,
            ..
        } => subscribed_len(subscriber.len(), topic.len(), options_text(options).len()),
        Change::Unsubscribed { subscriber, topic } => {
            unsubscribed_len(subscriber.len(), topic.len())
        }
        Change::Published {
            topic,
            event,
            holders,
        } => published_len(
            topic.len(),
            event.id().len(),
            event.fields().len(),
            holders.len(),
            names_len(holders),
        ),
        Change::Acked {
            subscriber, topic, ..
        }
        | Change::Delivered {
            subscriber, topic, ..
        } => acked_len(subscriber.len(), topic.len()),
        Change::Delayed {
            subscriber, topic, ..
        } => delayed_len(subscriber.len(), topic.len()),
        Change::Removed {
            subscriber, topic, ..
        } => removed_len(subscriber.len(), topic.len()),
        Change::DeadLettered {
            subscriber,
            topic,
            dead_topic,
            event,
            holders,
            ..
        } => dead_lettered_len(
            subscriber.as_ref().map_or(0, |s| s.len()),
            topic.len(),
            dead_topic.len(),
            event.id().len(),
            event.fields().len(),
            holders.len(),
            names_len(holders),
        ),
    }
}

/// The options as a record stores them: the `sub` reply's list.
fn options_text(options: &SubOptions) -> String {
    options.to_text()
}

/// Appends the payload of `change` to `out` ([`payload_len`] bytes).
///
/// # Panics
/// If a name is longer than 65535 bytes, or the event's fields or its
/// holders number more than `u32::MAX`. The protocol limits names to 128
/// bytes and events to 1 MiB, so this is a bug in the caller, and writing a
/// record that recovery would misread is worse than stopping.
pub fn encode(change: &Change, out: &mut Vec<u8>) {
    out.reserve(payload_len(change));
    match change {
        Change::TopicCreated { topic } => {
            out.push(KIND_TOPIC_CREATED);
            put_str(out, topic);
        }
        Change::TopicConfigured { topic, ttl_ms } => {
            out.push(KIND_TOPIC_CONFIGURED);
            put_str(out, topic);
            put_u64(out, ttl_ms.unwrap_or(0));
        }
        Change::Subscribed {
            subscriber,
            topic,
            group,
            prefetch,
            options,
        } => {
            out.push(KIND_SUBSCRIBED);
            put_str(out, subscriber);
            put_str(out, topic);
            out.push(u8::from(*group));
            out.extend_from_slice(&prefetch.to_le_bytes());
            put_str(out, &options_text(options));
        }
        Change::Unsubscribed { subscriber, topic } => {
            out.push(KIND_UNSUBSCRIBED);
            put_str(out, subscriber);
            put_str(out, topic);
        }
        Change::Published {
            topic,
            event,
            holders,
        } => {
            out.push(KIND_PUBLISHED);
            put_str(out, topic);
            put_event(out, event);
            put_holders(out, holders);
        }
        Change::Acked {
            subscriber,
            topic,
            seq,
        } => put_seq_record(out, KIND_ACKED, subscriber, topic, *seq),
        Change::Delivered {
            subscriber,
            topic,
            seq,
        } => put_seq_record(out, KIND_DELIVERED, subscriber, topic, *seq),
        Change::Delayed {
            subscriber,
            topic,
            seq,
            due,
        } => {
            put_seq_record(out, KIND_DELAYED, subscriber, topic, *seq);
            put_u64(out, *due);
        }
        Change::Removed {
            subscriber,
            topic,
            seq,
            reason,
        } => {
            put_seq_record(out, KIND_REMOVED, subscriber, topic, *seq);
            out.push(reason_byte(*reason));
        }
        Change::DeadLettered {
            subscriber,
            topic,
            seq,
            reason,
            dead_topic,
            event,
            holders,
        } => {
            out.push(KIND_DEAD_LETTERED);
            put_str(out, subscriber.as_deref().unwrap_or(""));
            put_str(out, topic);
            put_u64(out, seq.0);
            out.push(reason_byte(*reason));
            put_str(out, dead_topic);
            put_event(out, event);
            put_holders(out, holders);
        }
    }
}

/// The payload of `change` in a vector of its own (for snapshots, which
/// are rare; the hot path encodes into the log's buffer with [`encode`]).
///
/// # Panics
/// As [`encode`].
pub fn to_vec(change: &Change) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_len(change));
    encode(change, &mut out);
    out
}

fn put_seq_record(out: &mut Vec<u8>, kind: u8, subscriber: &str, topic: &str, seq: Seq) {
    out.push(kind);
    put_str(out, subscriber);
    put_str(out, topic);
    put_u64(out, seq.0);
}

fn put_event(out: &mut Vec<u8>, event: &Event) {
    put_u64(out, event.seq.0);
    put_u64(out, event.timestamp);
    out.push(event.priority);
    put_u32(out, event.ttl_ms().unwrap_or(0) as u32);
    put_u32(out, u32::try_from(event.msg_len()).unwrap_or(u32::MAX));
    put_str(out, event.id());
    let fields = event.fields();
    put_u32(out, len_u32(fields.len()));
    out.extend_from_slice(fields);
}

fn put_holders(out: &mut Vec<u8>, holders: &[Holder]) {
    put_u32(out, len_u32(holders.len()));
    for holder in holders {
        put_str(out, &holder.subscriber);
        put_u32(out, holder.deliveries);
        put_u64(out, holder.due.unwrap_or(0));
    }
}

fn reason_byte(reason: RemoveReason) -> u8 {
    match reason {
        RemoveReason::MaxDeliveries => 1,
        RemoveReason::Rejected => 2,
        RemoveReason::Expired => 3,
        RemoveReason::Overflow => 4,
    }
}

fn put_u32(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // See `encode` "# Panics": the protocol keeps names and ids far shorter.
    let len = u16::try_from(s.len()).expect("names and ids are at most 65535 bytes");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn len_u32(len: usize) -> u32 {
    // See `encode` "# Panics": events are capped far below 4 GiB.
    u32::try_from(len).expect("event fields and holders are fewer than 2^32")
}

/// Decodes one payload, which must hold exactly one record.
///
/// # Errors
/// A [`RecordError`] saying why `payload` is not a record this version reads.
pub fn decode(payload: &[u8]) -> Result<Change, RecordError> {
    Decoder::new().decode(payload)
}

/// A decoder that shares one `Arc<str>` among equal topic and subscriber
/// names, so that a replay of a million events for one topic keeps one copy
/// of its name. Event ids are not shared: they are unique by design. Use
/// one per replay.
#[derive(Debug, Default)]
pub struct Decoder {
    names: HashSet<Arc<str>>,
}

/// Past this many distinct names the cache is cleared rather than grown: it
/// is an optimisation, and a log with many one-off subscriber names should
/// not pin them all in memory.
const MAX_SHARED_NAMES: usize = 4096;

impl Decoder {
    /// A decoder with no names seen yet.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// See [`decode`].
    ///
    /// # Errors
    /// As [`decode`].
    pub fn decode(&mut self, payload: &[u8]) -> Result<Change, RecordError> {
        let mut r = Reader { payload, pos: 0 };
        let kind = r.u8()?;
        let change = match kind {
            KIND_TOPIC_CREATED => Change::TopicCreated {
                topic: self.name(&mut r)?,
            },
            KIND_TOPIC_CONFIGURED => Change::TopicConfigured {
                topic: self.name(&mut r)?,
                ttl_ms: nonzero(r.u64()?),
            },
            KIND_SUBSCRIBED_V1 => Change::Subscribed {
                subscriber: self.name(&mut r)?,
                topic: self.name(&mut r)?,
                group: false,
                prefetch: u16::from_le_bytes(r.array()?),
                options: SubOptions::default(),
            },
            KIND_SUBSCRIBED => {
                let subscriber = self.name(&mut r)?;
                let topic = self.name(&mut r)?;
                let group = r.flag()?;
                let prefetch = u16::from_le_bytes(r.array()?);
                let offset = r.pos;
                let options = SubOptions::from_text(r.str()?)
                    .map_err(|reason| RecordError::BadOptions { offset, reason })?;
                Change::Subscribed {
                    subscriber,
                    topic,
                    group,
                    prefetch,
                    options,
                }
            }
            KIND_UNSUBSCRIBED => Change::Unsubscribed {
                subscriber: self.name(&mut r)?,
                topic: self.name(&mut r)?,
            },
            KIND_PUBLISHED_V1 => self.published_v1(&mut r)?,
            KIND_PUBLISHED => Change::Published {
                topic: self.name(&mut r)?,
                event: event(&mut r)?,
                holders: self.holders(&mut r)?,
            },
            KIND_ACKED | KIND_DELIVERED | KIND_DELAYED | KIND_REMOVED => {
                let subscriber = self.name(&mut r)?;
                let topic = self.name(&mut r)?;
                let seq = Seq(r.u64()?);
                match kind {
                    KIND_ACKED => Change::Acked {
                        subscriber,
                        topic,
                        seq,
                    },
                    KIND_DELIVERED => Change::Delivered {
                        subscriber,
                        topic,
                        seq,
                    },
                    KIND_DELAYED => Change::Delayed {
                        subscriber,
                        topic,
                        seq,
                        due: r.u64()?,
                    },
                    _ => Change::Removed {
                        subscriber,
                        topic,
                        seq,
                        reason: r.reason()?,
                    },
                }
            }
            KIND_DEAD_LETTERED => {
                let subscriber = self.name(&mut r)?;
                let subscriber = (!subscriber.is_empty()).then_some(subscriber);
                let topic = self.name(&mut r)?;
                let seq = Seq(r.u64()?);
                let reason = r.reason()?;
                let dead_topic = self.name(&mut r)?;
                let event = event(&mut r)?;
                let holders = self.holders(&mut r)?;
                Change::DeadLettered {
                    subscriber,
                    topic,
                    seq,
                    reason,
                    dead_topic,
                    event,
                    holders,
                }
            }
            other => return Err(RecordError::UnknownKind(other)),
        };
        let rest = payload.len() - r.pos;
        if rest > 0 {
            return Err(RecordError::TrailingBytes(rest));
        }
        Ok(change)
    }

    fn published_v1(&mut self, r: &mut Reader<'_>) -> Result<Change, RecordError> {
        let topic = self.name(r)?;
        let seq = Seq(r.u64()?);
        let timestamp = r.u64()?;
        let priority = r.u8()?;
        let id = r.str()?;
        let fields = r.fields()?;
        let event = Arc::new(Event::new(seq, priority, timestamp, id, fields.as_bytes()));
        let count = r.u32()?;
        // Each holder takes at least 3 bytes, so a corrupt count cannot make
        // us reserve more than the payload could hold.
        let mut holders = Vec::with_capacity((count as usize).min(r.remaining() / 3));
        for _ in 0..count {
            let subscriber = self.name(r)?;
            let delivered = r.flag()?;
            holders.push(Holder {
                subscriber,
                deliveries: u32::from(delivered),
                due: None,
            });
        }
        Ok(Change::Published {
            topic,
            event,
            holders,
        })
    }

    fn holders(&mut self, r: &mut Reader<'_>) -> Result<Vec<Holder>, RecordError> {
        let count = r.u32()?;
        // Each holder takes at least 14 bytes, so a corrupt count cannot
        // make us reserve more than the payload could hold.
        let mut holders = Vec::with_capacity((count as usize).min(r.remaining() / 14));
        for _ in 0..count {
            holders.push(Holder {
                subscriber: self.name(r)?,
                deliveries: r.u32()?,
                due: nonzero(r.u64()?),
            });
        }
        Ok(holders)
    }

    fn name(&mut self, r: &mut Reader<'_>) -> Result<Arc<str>, RecordError> {
        let name = r.str()?;
        if let Some(shared) = self.names.get(name) {
            return Ok(Arc::clone(shared));
        }
        if self.names.len() >= MAX_SHARED_NAMES {
            self.names.clear();
        }
        let shared: Arc<str> = Arc::from(name);
        self.names.insert(Arc::clone(&shared));
        Ok(shared)
    }
}

fn event(r: &mut Reader<'_>) -> Result<Arc<Event>, RecordError> {
    let seq = Seq(r.u64()?);
    let timestamp = r.u64()?;
    let priority = r.u8()?;
    let ttl_at = r.pos;
    let ttl_ms = r.u32()?;
    if u64::from(ttl_ms) > crate::event::MAX_TIME_MS {
        return Err(RecordError::OutOfRange {
            offset: ttl_at,
            what: "ttl_ms",
        });
    }
    let msg_len = r.u32()?;
    let id = r.str()?;
    let fields = r.fields()?;
    Ok(Arc::new(Event::with_meta(
        seq,
        priority,
        timestamp,
        id,
        fields.as_bytes(),
        u64::from(ttl_ms),
        msg_len as usize,
    )))
}

fn nonzero(n: u64) -> Option<u64> {
    (n != 0).then_some(n)
}

/// A cursor over a payload whose every read fails cleanly at its end.
struct Reader<'a> {
    payload: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.payload.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let Some(bytes) = self.payload.get(self.pos..).and_then(|rest| rest.get(..n)) else {
            return Err(RecordError::Truncated {
                offset: self.pos,
                needed: n,
            });
        };
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn flag(&mut self) -> Result<bool, RecordError> {
        let offset = self.pos;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            flag => Err(RecordError::BadFlag { offset, flag }),
        }
    }

    fn reason(&mut self) -> Result<RemoveReason, RecordError> {
        let offset = self.pos;
        match self.u8()? {
            1 => Ok(RemoveReason::MaxDeliveries),
            2 => Ok(RemoveReason::Rejected),
            3 => Ok(RemoveReason::Expired),
            4 => Ok(RemoveReason::Overflow),
            flag => Err(RecordError::BadFlag { offset, flag }),
        }
    }

    fn str(&mut self) -> Result<&'a str, RecordError> {
        let len = u16::from_le_bytes(self.array()?);
        let offset = self.pos;
        let bytes = self.take(usize::from(len))?;
        std::str::from_utf8(bytes).map_err(|_| RecordError::NotUtf8 { offset })
    }

    /// An event's fields: a blob that must be UTF-8. `Event` keeps its
    /// fields as text; checking here (rather than letting it replace bad
    /// bytes) keeps decoding exact: what decodes encodes back to the same
    /// bytes.
    fn fields(&mut self) -> Result<&'a str, RecordError> {
        let len = self.u32()?;
        let offset = self.pos;
        let bytes = self.take(len as usize)?;
        std::str::from_utf8(bytes).map_err(|_| RecordError::NotUtf8 { offset })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = Arc<str>> {
        "\\PC{0,40}".prop_map(|s| Arc::from(s.as_str()))
    }

    fn event() -> impl Strategy<Value = Arc<Event>> {
        (
            any::<u64>(),
            any::<u8>(),
            any::<u64>(),
            0u64..=crate::event::MAX_TIME_MS,
            any::<u32>(),
            "\\PC{0,60}",
            "\\PC{0,100}",
        )
            .prop_map(|(seq, priority, timestamp, ttl, msg_len, id, fields)| {
                Arc::new(Event::with_meta(
                    Seq(seq),
                    priority,
                    timestamp,
                    &id,
                    fields.as_bytes(),
                    ttl,
                    msg_len as usize,
                ))
            })
    }

    fn holders() -> impl Strategy<Value = Vec<Holder>> {
        proptest::collection::vec(
            (name(), any::<u32>(), prop::option::of(1u64..)).prop_map(
                |(subscriber, deliveries, due)| Holder {
                    subscriber,
                    deliveries,
                    due,
                },
            ),
            0..5,
        )
    }

    fn options() -> impl Strategy<Value = SubOptions> {
        proptest::collection::vec(
            prop_oneof![
                Just(("group", "workers")),
                Just(("wait", "30s")),
                Just(("backoff", "0,1s,5m")),
                Just(("max_deliveries", "1000")),
                Just(("dead", "none")),
                Just(("dead", "jobs.dead")),
                Just(("age", "2h")),
                Just(("limit", "2147483648")),
                Just(("limit_bytes", "1099511627776")),
                Just(("overflow", "drop")),
            ],
            0..6,
        )
        .prop_map(|pairs| {
            let mut options = SubOptions::default();
            for (key, value) in pairs {
                let _ = options.set(key, value);
            }
            options
        })
    }

    fn reason() -> impl Strategy<Value = RemoveReason> {
        prop_oneof![
            Just(RemoveReason::MaxDeliveries),
            Just(RemoveReason::Rejected),
            Just(RemoveReason::Expired),
            Just(RemoveReason::Overflow),
        ]
    }

    fn change() -> impl Strategy<Value = Change> {
        let seq = any::<u64>().prop_map(Seq);
        prop_oneof![
            name().prop_map(|topic| Change::TopicCreated { topic }),
            (name(), prop::option::of(1u64..))
                .prop_map(|(topic, ttl_ms)| Change::TopicConfigured { topic, ttl_ms }),
            (name(), name(), any::<bool>(), any::<u16>(), options()).prop_map(
                |(subscriber, topic, group, prefetch, options)| Change::Subscribed {
                    subscriber,
                    topic,
                    group,
                    prefetch,
                    options,
                }
            ),
            (name(), name())
                .prop_map(|(subscriber, topic)| Change::Unsubscribed { subscriber, topic }),
            (name(), event(), holders()).prop_map(|(topic, event, holders)| Change::Published {
                topic,
                event,
                holders,
            }),
            (name(), name(), seq.clone()).prop_map(|(subscriber, topic, seq)| Change::Acked {
                subscriber,
                topic,
                seq
            }),
            (name(), name(), seq.clone()).prop_map(|(subscriber, topic, seq)| {
                Change::Delivered {
                    subscriber,
                    topic,
                    seq,
                }
            }),
            (name(), name(), seq.clone(), any::<u64>()).prop_map(
                |(subscriber, topic, seq, due)| {
                    Change::Delayed {
                        subscriber,
                        topic,
                        seq,
                        due,
                    }
                }
            ),
            (name(), name(), seq.clone(), reason()).prop_map(|(subscriber, topic, seq, reason)| {
                Change::Removed {
                    subscriber,
                    topic,
                    seq,
                    reason,
                }
            }),
            (
                prop::option::of("\\PC{1,40}".prop_map(|s| Arc::from(s.as_str()))),
                name(),
                seq,
                reason(),
                name(),
                event(),
                holders()
            )
                .prop_map(
                    |(subscriber, topic, seq, reason, dead_topic, event, holders)| {
                        Change::DeadLettered {
                            subscriber,
                            topic,
                            seq,
                            reason,
                            dead_topic,
                            event,
                            holders,
                        }
                    }
                ),
        ]
    }

    fn encoded(change: &Change) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode(change, &mut bytes);
        bytes
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(text: &str) -> Vec<u8> {
        let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
            .collect()
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(changes in proptest::collection::vec(change(), 1..8)) {
            let mut decoder = Decoder::new();
            for c in &changes {
                let mut bytes = vec![0xee; 3];
                encode(c, &mut bytes);
                prop_assert_eq!(bytes.len() - 3, payload_len(c));
                prop_assert_eq!(&decoder.decode(&bytes[3..]).unwrap(), c);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_decode_exactly(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            if let Ok(change) = decode(&bytes) && !is_legacy_kind(bytes[0]) {
                prop_assert_eq!(encoded(&change), bytes);
            }
        }

        /// Near-valid payloads reach deeper than random bytes do.
        #[test]
        fn mutated_payloads_decode_exactly_or_not_at_all(
            c in change(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = encoded(&c);
            let at = at.index(bytes.len());
            bytes[at] = byte;
            let cut = cut.index(bytes.len() + 1);
            for payload in [&bytes[..], &bytes[..cut]] {
                if let Ok(change) = decode(payload) && !is_legacy_kind(payload[0]) {
                    prop_assert_eq!(encoded(&change), payload);
                }
            }
        }
    }

    /// Pins the format: if this test fails, the on-disk format changed, and
    /// the steps in `herald-log`'s crate docs ("When the format changes")
    /// apply. (The log frame, length and checksum, is not part of these
    /// bytes.)
    #[test]
    fn golden_bytes_of_each_kind() {
        let ab: Arc<str> = Arc::from("ab");
        let t: Arc<str> = Arc::from("t");
        let event = || Arc::new(Event::with_meta(Seq(7), 9, 0x0102, "i", b",x", 5, 3));
        let holder = || Holder {
            subscriber: ab.clone(),
            deliveries: 2,
            due: Some(0x10),
        };
        let mut options = SubOptions::default();
        options.set("wait", "1s").unwrap();
        let cases: Vec<(Change, &str)> = vec![
            (Change::TopicCreated { topic: t.clone() }, "01 0100 74"),
            (
                Change::TopicConfigured {
                    topic: t.clone(),
                    ttl_ms: Some(0x0201),
                },
                "07 0100 74 0102000000000000",
            ),
            (
                Change::Subscribed {
                    subscriber: ab.clone(),
                    topic: t.clone(),
                    group: true,
                    prefetch: 258,
                    options,
                },
                // "wait=1000"
                "08 0200 6162 0100 74 01 0201 0900 776169743d31303030",
            ),
            (
                Change::Unsubscribed {
                    subscriber: ab.clone(),
                    topic: t.clone(),
                },
                "03 0200 6162 0100 74",
            ),
            (
                Change::Published {
                    topic: t.clone(),
                    event: event(),
                    holders: vec![holder()],
                },
                "09 0100 74 0700000000000000 0201000000000000 09 05000000 03000000 \
                 0100 69 02000000 2c78 01000000 0200 6162 02000000 1000000000000000",
            ),
            (
                Change::Acked {
                    subscriber: ab.clone(),
                    topic: t.clone(),
                    seq: Seq(1),
                },
                "05 0200 6162 0100 74 0100000000000000",
            ),
            (
                Change::Delivered {
                    subscriber: ab.clone(),
                    topic: t.clone(),
                    seq: Seq(0x0203),
                },
                "06 0200 6162 0100 74 0302000000000000",
            ),
            (
                Change::Delayed {
                    subscriber: ab.clone(),
                    topic: t.clone(),
                    seq: Seq(1),
                    due: 2,
                },
                "0a 0200 6162 0100 74 0100000000000000 0200000000000000",
            ),
            (
                Change::Removed {
                    subscriber: ab.clone(),
                    topic: t.clone(),
                    seq: Seq(1),
                    reason: RemoveReason::Overflow,
                },
                "0b 0200 6162 0100 74 0100000000000000 04",
            ),
            (
                Change::DeadLettered {
                    subscriber: None,
                    topic: t.clone(),
                    seq: Seq(1),
                    reason: RemoveReason::Rejected,
                    dead_topic: ab.clone(),
                    event: event(),
                    holders: vec![],
                },
                "0c 0000 0100 74 0100000000000000 02 0200 6162 \
                 0700000000000000 0201000000000000 09 05000000 03000000 \
                 0100 69 02000000 2c78 00000000",
            ),
        ];
        for (change, want) in cases {
            assert_eq!(hex(&encoded(&change)), hex(&unhex(want)), "{change:?}");
            assert_eq!(decode(&encoded(&change)), Ok(change));
        }
    }

    /// Logs written by version 1 keep reading: the bytes of its release.
    #[test]
    fn version_1_kinds_decode_to_what_they_meant() {
        let ab: Arc<str> = Arc::from("ab");
        let t: Arc<str> = Arc::from("t");
        assert_eq!(
            decode(&unhex("02 0200 6162 0100 74 0201")),
            Ok(Change::Subscribed {
                subscriber: ab.clone(),
                topic: t.clone(),
                group: false,
                prefetch: 258,
                options: SubOptions::default(),
            })
        );
        let published = decode(&unhex(
            "04 0100 74 0700000000000000 0201000000000000 09 \
             0100 69 0a000000 2c226d7367223a2268 22 01000000 0200 6162 01",
        ))
        .unwrap();
        let Change::Published {
            topic,
            event,
            holders,
        } = published
        else {
            panic!("not a publish");
        };
        assert_eq!(topic, t);
        assert_eq!(
            (event.seq, event.priority, event.timestamp),
            (Seq(7), 9, 0x0102)
        );
        assert_eq!((event.id(), event.fields()), ("i", &br#","msg":"h""#[..]));
        assert_eq!((event.ttl_ms(), event.msg_len()), (None, 3));
        assert_eq!(
            holders,
            vec![Holder {
                subscriber: ab,
                deliveries: 1,
                due: None
            }]
        );
    }

    #[test]
    fn errors_name_what_is_wrong_and_where() {
        assert_eq!(
            decode(&[]),
            Err(RecordError::Truncated {
                offset: 0,
                needed: 1
            })
        );
        assert_eq!(decode(&[13]), Err(RecordError::UnknownKind(13)));
        assert_eq!(
            decode(&[KIND_TOPIC_CREATED, 2, 0, b't']),
            Err(RecordError::Truncated {
                offset: 3,
                needed: 2
            })
        );
        assert_eq!(
            decode(&[KIND_TOPIC_CREATED, 1, 0, b't', 0]),
            Err(RecordError::TrailingBytes(1))
        );
        assert_eq!(
            decode(&[KIND_TOPIC_CREATED, 1, 0, 0xff]),
            Err(RecordError::NotUtf8 { offset: 3 })
        );
        let mut removed = encoded(&Change::Removed {
            subscriber: Arc::from("a"),
            topic: Arc::from("t"),
            seq: Seq(1),
            reason: RemoveReason::Expired,
        });
        let at = removed.len() - 1;
        removed[at] = 9;
        assert_eq!(
            decode(&removed),
            Err(RecordError::BadFlag {
                offset: at,
                flag: 9
            })
        );
        let mut subscribed = encoded(&Change::Subscribed {
            subscriber: Arc::from("a"),
            topic: Arc::from("t"),
            group: false,
            prefetch: 1,
            options: SubOptions::default(),
        });
        subscribed.truncate(subscribed.len() - 2);
        subscribed.extend_from_slice(&[5, 0]);
        subscribed.extend_from_slice(b"nope!");
        assert!(matches!(
            decode(&subscribed),
            Err(RecordError::BadOptions { .. })
        ));
    }

    /// `Event` caps a time to live at 30 days; a record with more would not
    /// encode back to its bytes, so it does not decode (found by proptest).
    #[test]
    fn a_time_to_live_beyond_30_days_is_out_of_range() {
        let mut bytes = encoded(&Change::Published {
            topic: Arc::from("t"),
            event: Arc::new(Event::with_meta(Seq(1), 0, 0, "i", b",\"msg\":1", 5, 1)),
            holders: Vec::new(),
        });
        // kind, topic (2 + 1), seq, timestamp, priority: ttl_ms next.
        let at = 1 + 3 + 8 + 8 + 1;
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode(&bytes),
            Err(RecordError::OutOfRange {
                offset: at,
                what: "ttl_ms"
            })
        );
    }

    /// `Event::new` would replace invalid UTF-8 in the fields; decoding
    /// rejects it instead, so that a decoded record encodes to the bytes it
    /// came from.
    #[test]
    fn event_fields_that_are_not_utf8_are_rejected() {
        let mut bytes = encoded(&Change::Published {
            topic: Arc::from("t"),
            event: Arc::new(Event::new(Seq(1), 0, 0, "i", b",\"msg\":\"ab\"")),
            holders: Vec::new(),
        });
        let at = bytes.iter().position(|&b| b == b'a').unwrap();
        bytes[at] = 0xc3;
        let fields_at = at - ",\"msg\":\"".len();
        assert_eq!(
            decode(&bytes),
            Err(RecordError::NotUtf8 { offset: fields_at })
        );
    }

    /// `Broker::record_bound` must cover every record a command appends
    /// (delivery records aside: the server drops them when there is no
    /// room), here with maximal names, a new topic, options and a dead
    /// letter.
    #[test]
    fn record_bound_covers_the_records_of_each_command() {
        use crate::{Broker, ConnId, Effects};
        const FRAME: u64 = 8;
        let topic = "t".repeat(123);
        let id = "i".repeat(256);
        let mut broker = Broker::new();
        let lines = [
            (1, format!("create {topic} ttl=1h")),
            (1, format!("name {}", "a".repeat(128))),
            (
                1,
                format!(
                    "sub {topic} 2 wait=30s backoff=1s,2s,3s,4s,5s,6s,7s,8s max_deliveries=1000 \
                     age=2h limit=2147483648 limit_bytes=1099511627776 overflow=drop"
                ),
            ),
            (2, format!("name {}", "b".repeat(128))),
            (2, format!("sub {topic}")),
            (
                3,
                format!(r#"pub {topic} {{"id":"{id}","priority":5,"msg":"m","x":[1]}}"#),
            ),
            (
                3,
                r#"pub new-topic {"id":1,"msg":"first of its topic"}"#.to_owned(),
            ),
            (1, format!("nack {topic} {id} dead")),
            (2, format!("ack {topic} {id}")),
            (2, format!("unsub {topic}")),
        ];
        for (conn, line) in lines {
            let command = herald_proto::parse_line(line.as_bytes()).unwrap().unwrap();
            let bound = broker.record_bound(&command, FRAME);
            let mut fx = Effects::new();
            broker.handle(ConnId(conn), command, 0, &mut fx);
            broker.set_durable(broker.last_seq(), 0, &mut fx);
            assert!(fx.outputs.iter().all(|o| !matches!(o, crate::Output::Reply { reply, .. } if reply.to_line().starts_with("-ERR"))), "{line}: {:?}", fx.outputs);
            let used: u64 = fx
                .changes
                .iter()
                .filter(|c| !matches!(c, Change::Delivered { .. }))
                .map(|c| FRAME + payload_len(c) as u64)
                .sum();
            assert!(used <= bound, "{line}: {used} > {bound}");
            assert_eq!(used == 0, line.starts_with("name"), "{line}");
        }
    }

    #[test]
    fn equal_names_share_one_allocation() {
        let bytes = encoded(&Change::TopicCreated {
            topic: Arc::from("shared"),
        });
        let mut decoder = Decoder::new();
        let (Ok(Change::TopicCreated { topic: a }), Ok(Change::TopicCreated { topic: b })) =
            (decoder.decode(&bytes), decoder.decode(&bytes))
        else {
            panic!("wrong kinds");
        };
        assert!(Arc::ptr_eq(&a, &b));
    }
}
