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
//! # Payloads, format version 1
//!
//! All integers are little-endian.
//!
//! ```text
//! Field types
//!   str   u16 length, then that many UTF-8 bytes (names <= 128, ids <= 256)
//!   blob  u32 length, then that many bytes
//!   u8 / u16 / u64 as named
//!
//! Payloads: kind (u8), then the fields of that kind
//!   1 TopicCreated   topic: str
//!   2 Subscribed     subscriber: str, topic: str, prefetch: u16
//!   3 Unsubscribed   subscriber: str, topic: str
//!   4 Published      topic: str, seq: u64, timestamp: u64 (ms since epoch),
//!                    priority: u8, id: str, fields: blob (the event's other
//!                    fields as `,"key":value` JSON text, `msg` included;
//!                    UTF-8), holders: u32 count, then per holder:
//!                      subscriber: str, delivered: u8 (0 or 1)
//!   5 Acked          subscriber: str, topic: str, seq: u64
//!   6 Delivered      subscriber: str, topic: str, seq: u64
//! ```
//!
//! The frame around a payload (length, checksum), the segment header that
//! carries the format version, and the steps to follow when the format
//! changes are in `herald-log`'s crate docs. A new kind or field is a format
//! change: the version 1 decoder must keep reading version 1 payloads.
//!
//! Invariants:
//! - `decode(encode(c)) == c`, and [`payload_len`] is exactly the number of
//!   bytes [`encode`] appends (every size is computed by the `*_len`
//!   functions here, which [`Broker::record_bound`](crate::Broker::record_bound)
//!   uses too);
//! - a payload decodes only if it is consumed exactly, and anything that
//!   decodes encodes back to the same bytes (there is one encoding per
//!   change: flags are 0 or 1, text is UTF-8).

use crate::change::{Change, Holder};
use crate::event::{Event, Seq};
use std::collections::HashSet;
use std::sync::Arc;

const KIND_TOPIC_CREATED: u8 = 1;
const KIND_SUBSCRIBED: u8 = 2;
const KIND_UNSUBSCRIBED: u8 = 3;
const KIND_PUBLISHED: u8 = 4;
const KIND_ACKED: u8 = 5;
const KIND_DELIVERED: u8 = 6;

/// Why a payload is not a record of this format version.
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
    /// A holder's `delivered` byte is neither 0 nor 1.
    #[error("delivered flag {flag} at payload offset {offset} is neither 0 nor 1")]
    BadFlag {
        /// Where the flag is in the payload.
        offset: usize,
        /// Its value.
        flag: u8,
    },
    /// Bytes are left after the last field of the kind.
    #[error("{0} trailing bytes after the record")]
    TrailingBytes(usize),
}

/// Bytes of a `str` field of `len` bytes.
const fn str_len(len: usize) -> usize {
    2 + len
}

/// Payload bytes of a `TopicCreated` record whose topic has `topic` bytes.
pub const fn topic_created_len(topic: usize) -> usize {
    1 + str_len(topic)
}

/// Payload bytes of a `Subscribed` record.
pub const fn subscribed_len(subscriber: usize, topic: usize) -> usize {
    1 + str_len(subscriber) + str_len(topic) + 2
}

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
    // kind, topic, seq, timestamp, priority, id, fields, holder count, then
    // per holder a str and the delivered flag.
    1 + str_len(topic) + 8 + 8 + 1 + str_len(id) + 4 + fields + 4 + holders * 3 + holder_name_bytes
}

/// Payload bytes of an `Acked` or `Delivered` record.
pub const fn acked_len(subscriber: usize, topic: usize) -> usize {
    1 + str_len(subscriber) + str_len(topic) + 8
}

/// Bytes [`encode`] appends for `change`: its payload, without the log's
/// frame.
pub fn payload_len(change: &Change) -> usize {
    match change {
        Change::TopicCreated { topic } => topic_created_len(topic.len()),
        Change::Subscribed {
            subscriber, topic, ..
        } => subscribed_len(subscriber.len(), topic.len()),
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
            holders.iter().map(|h| h.subscriber.len()).sum(),
        ),
        Change::Acked {
            subscriber, topic, ..
        }
        | Change::Delivered {
            subscriber, topic, ..
        } => acked_len(subscriber.len(), topic.len()),
    }
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
        Change::Subscribed {
            subscriber,
            topic,
            prefetch,
        } => {
            out.push(KIND_SUBSCRIBED);
            put_str(out, subscriber);
            put_str(out, topic);
            out.extend_from_slice(&prefetch.to_le_bytes());
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
            out.extend_from_slice(&event.seq.0.to_le_bytes());
            out.extend_from_slice(&event.timestamp.to_le_bytes());
            out.push(event.priority);
            put_str(out, event.id());
            let fields = event.fields();
            out.extend_from_slice(&len_u32(fields.len()).to_le_bytes());
            out.extend_from_slice(fields);
            out.extend_from_slice(&len_u32(holders.len()).to_le_bytes());
            for holder in holders {
                put_str(out, &holder.subscriber);
                out.push(u8::from(holder.delivered));
            }
        }
        Change::Acked {
            subscriber,
            topic,
            seq,
        } => {
            out.push(KIND_ACKED);
            put_str(out, subscriber);
            put_str(out, topic);
            out.extend_from_slice(&seq.0.to_le_bytes());
        }
        Change::Delivered {
            subscriber,
            topic,
            seq,
        } => {
            out.push(KIND_DELIVERED);
            put_str(out, subscriber);
            put_str(out, topic);
            out.extend_from_slice(&seq.0.to_le_bytes());
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
/// A [`RecordError`] saying why `payload` is not a record of this version.
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
            KIND_SUBSCRIBED => Change::Subscribed {
                subscriber: self.name(&mut r)?,
                topic: self.name(&mut r)?,
                prefetch: u16::from_le_bytes(r.array()?),
            },
            KIND_UNSUBSCRIBED => Change::Unsubscribed {
                subscriber: self.name(&mut r)?,
                topic: self.name(&mut r)?,
            },
            KIND_PUBLISHED => self.published(&mut r)?,
            KIND_ACKED | KIND_DELIVERED => {
                let subscriber = self.name(&mut r)?;
                let topic = self.name(&mut r)?;
                let seq = Seq(u64::from_le_bytes(r.array()?));
                if kind == KIND_ACKED {
                    Change::Acked {
                        subscriber,
                        topic,
                        seq,
                    }
                } else {
                    Change::Delivered {
                        subscriber,
                        topic,
                        seq,
                    }
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

    fn published(&mut self, r: &mut Reader<'_>) -> Result<Change, RecordError> {
        let topic = self.name(r)?;
        let seq = Seq(u64::from_le_bytes(r.array()?));
        let timestamp = u64::from_le_bytes(r.array()?);
        let priority = r.u8()?;
        let id = r.str()?;
        let fields_len = u32::from_le_bytes(r.array()?);
        let fields_at = r.pos;
        let fields = r.take(fields_len as usize)?;
        // `Event` keeps its fields as text; checking here (rather than
        // letting it replace bad bytes) keeps decoding exact: what decodes
        // encodes back to the same bytes.
        if std::str::from_utf8(fields).is_err() {
            return Err(RecordError::NotUtf8 { offset: fields_at });
        }
        let event = Arc::new(Event::new(seq, priority, timestamp, id, fields));
        let count = u32::from_le_bytes(r.array()?);
        // Each holder takes at least 3 bytes, so a corrupt count cannot make
        // us reserve more than the payload could hold.
        let mut holders = Vec::with_capacity((count as usize).min(r.remaining() / 3));
        for _ in 0..count {
            let subscriber = self.name(r)?;
            let offset = r.pos;
            let delivered = match r.u8()? {
                0 => false,
                1 => true,
                flag => return Err(RecordError::BadFlag { offset, flag }),
            };
            holders.push(Holder {
                subscriber,
                delivered,
            });
        }
        Ok(Change::Published {
            topic,
            event,
            holders,
        })
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

    fn str(&mut self) -> Result<&'a str, RecordError> {
        let len = u16::from_le_bytes(self.array()?);
        let offset = self.pos;
        let bytes = self.take(usize::from(len))?;
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
            "\\PC{0,60}",
            "\\PC{0,100}",
        )
            .prop_map(|(seq, priority, timestamp, id, fields)| {
                Arc::new(Event::new(
                    Seq(seq),
                    priority,
                    timestamp,
                    &id,
                    fields.as_bytes(),
                ))
            })
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            name().prop_map(|topic| Change::TopicCreated { topic }),
            (name(), name(), any::<u16>()).prop_map(|(subscriber, topic, prefetch)| {
                Change::Subscribed {
                    subscriber,
                    topic,
                    prefetch,
                }
            }),
            (name(), name())
                .prop_map(|(subscriber, topic)| Change::Unsubscribed { subscriber, topic }),
            (
                name(),
                event(),
                proptest::collection::vec((name(), any::<bool>()), 0..5)
            )
                .prop_map(|(topic, event, holders)| Change::Published {
                    topic,
                    event,
                    holders: holders
                        .into_iter()
                        .map(|(subscriber, delivered)| Holder {
                            subscriber,
                            delivered
                        })
                        .collect(),
                }),
            (name(), name(), any::<u64>()).prop_map(|(subscriber, topic, seq)| Change::Acked {
                subscriber,
                topic,
                seq: Seq(seq)
            }),
            (name(), name(), any::<u64>()).prop_map(|(subscriber, topic, seq)| {
                Change::Delivered {
                    subscriber,
                    topic,
                    seq: Seq(seq),
                }
            }),
        ]
    }

    fn encoded(change: &Change) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode(change, &mut bytes);
        bytes
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
            if let Ok(change) = decode(&bytes) {
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
                if let Ok(change) = decode(payload) {
                    prop_assert_eq!(encoded(&change), payload);
                }
            }
        }
    }

    /// Pins the format: if this test fails, the on-disk format changed, and
    /// the steps in `herald-log`'s crate docs ("When the format changes")
    /// apply. The bytes are those of the version 1 release (the log frame,
    /// length and checksum, is not part of them).
    #[test]
    fn golden_bytes_of_each_kind() {
        let ab: Arc<str> = Arc::from("ab");
        let t: Arc<str> = Arc::from("t");
        let cases: Vec<(Change, &str)> = vec![
            (Change::TopicCreated { topic: t.clone() }, "01 0100 74"),
            (
                Change::Subscribed {
                    subscriber: ab.clone(),
                    topic: t.clone(),
                    prefetch: 258,
                },
                "02 0200 6162 0100 74 0201",
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
                    event: Arc::new(Event::new(Seq(7), 9, 0x0102, "i", b"{x")),
                    holders: vec![Holder {
                        subscriber: ab.clone(),
                        delivered: true,
                    }],
                },
                "04 0100 74 0700000000000000 0201000000000000 09 \
                 0100 69 02000000 7b78 01000000 0200 6162 01",
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
        ];
        for (change, hex) in cases {
            let got: String = encoded(&change)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let want: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
            assert_eq!(got, want, "{change:?}");
            assert_eq!(decode(&encoded(&change)), Ok(change));
        }
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
        assert_eq!(decode(&[7]), Err(RecordError::UnknownKind(7)));
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
    }

    #[test]
    fn holder_flag_other_than_0_or_1_is_rejected() {
        let mut bytes = encoded(&Change::Published {
            topic: Arc::from("t"),
            event: Arc::new(Event::new(Seq(1), 0, 0, "i", b",\"msg\":1")),
            holders: vec![Holder {
                subscriber: Arc::from("a"),
                delivered: false,
            }],
        });
        let flag_at = bytes.len() - 1;
        bytes[flag_at] = 2;
        assert_eq!(
            decode(&bytes),
            Err(RecordError::BadFlag {
                offset: flag_at,
                flag: 2
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
    /// room), here with maximal names and a new topic.
    #[test]
    fn record_bound_covers_the_records_of_each_command() {
        use crate::{Broker, ConnId, Effects};
        const FRAME: u64 = 8;
        let topic = "t".repeat(128);
        let mut broker = Broker::new();
        for conn in 1..=3 {
            broker.connect(ConnId(conn));
        }
        let lines = [
            (1, format!("create {topic}")),
            (1, format!("name {}", "a".repeat(128))),
            (1, format!("sub {topic} 2")),
            (2, format!("name {}", "b".repeat(128))),
            (2, format!("sub {topic}")),
            (
                3,
                format!(
                    r#"pub {topic} {{"id":"{}","priority":5,"msg":"m","x":[1]}}"#,
                    "i".repeat(256)
                ),
            ),
            (
                3,
                r#"pub new-topic {"id":1,"msg":"first of its topic"}"#.to_owned(),
            ),
            (1, format!("ack {topic} {}", "i".repeat(256))),
            (2, format!("unsub {topic}")),
        ];
        for (conn, line) in lines {
            let command = herald_proto::parse_line(line.as_bytes()).unwrap().unwrap();
            let bound = broker.record_bound(&command, FRAME);
            let mut fx = Effects::new();
            broker.handle(ConnId(conn), command, 0, &mut fx);
            broker.set_durable(broker.last_seq(), &mut fx);
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
