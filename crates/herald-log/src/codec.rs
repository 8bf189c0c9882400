//! The record codec: [`Change`] to framed bytes and back. Pure, no IO.
//!
//! A frame is `len: u32 LE`, `crc: u32 LE` (crc32c of the payload), then
//! `len` payload bytes; the crate docs give the payload of every kind byte by
//! byte. This module knows nothing about files or offsets: [`decode`] looks
//! at the start of a slice and says how many bytes the record took, and the
//! recovery module decides what a failure means at that place in a segment.
//!
//! Invariants: `encode` followed by `decode` is the identity, and
//! [`encoded_len`] is exactly what [`encode`] appends.

use herald_core::{Change, Event, Holder, Seq};
use std::collections::HashSet;
use std::sync::Arc;

/// Bytes before the payload of every record: `len` and `crc`.
pub const FRAME_HEADER_BYTES: usize = 8;

/// Largest payload a record may have. Anything longer is garbage (a torn or
/// corrupt length), which keeps a flipped bit in `len` from making recovery
/// checksum hundreds of megabytes. Events are limited to 1 MiB by the protocol.
pub const MAX_RECORD_BYTES: u32 = 64 * 1024 * 1024;

const KIND_TOPIC_CREATED: u8 = 1;
const KIND_SUBSCRIBED: u8 = 2;
const KIND_UNSUBSCRIBED: u8 = 3;
const KIND_PUBLISHED: u8 = 4;
const KIND_ACKED: u8 = 5;
const KIND_DELIVERED: u8 = 6;

/// Whether `kind` is a record kind this version knows. Recovery uses it to
/// reject most candidate offsets before computing a checksum.
pub(crate) fn is_known_kind(kind: u8) -> bool {
    (KIND_TOPIC_CREATED..=KIND_DELIVERED).contains(&kind)
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The slice ends before the frame header or before the payload ends.
    #[error("record is truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes the slice has.
        available: usize,
    },
    /// `len` is zero: not a record. In a segment, eight zero bytes at a
    /// record boundary mark the end of the records.
    #[error("zero record length")]
    ZeroLength,
    /// `len` is larger than [`MAX_RECORD_BYTES`].
    #[error("record length {0} exceeds the maximum of {MAX_RECORD_BYTES}")]
    TooLong(u32),
    /// The payload does not match its checksum.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// `crc` as stored in the frame.
        stored: u32,
        /// crc32c of the payload as read.
        computed: u32,
    },
    /// The checksum matched but the payload is not a valid record of this
    /// format version (unknown kind, short field, invalid UTF-8, ...).
    #[error("undecodable payload: {0}")]
    Payload(String),
}

/// Bytes [`encode`] appends for `change`, frame header included. Lets the
/// caller ask [`Log::has_room`](crate::Log::has_room) before appending.
pub fn encoded_len(change: &Change) -> u64 {
    let s = |s: &str| 2 + s.len();
    let payload = 1 + match change {
        Change::TopicCreated { topic } => s(topic),
        Change::Subscribed {
            subscriber, topic, ..
        } => s(subscriber) + s(topic) + 2,
        Change::Unsubscribed { subscriber, topic } => s(subscriber) + s(topic),
        Change::Published {
            topic,
            event,
            holders,
        } => {
            s(topic)
                + 8
                + 8
                + 1
                + s(event.id())
                + 4
                + event.fields().len()
                + 4
                + holders.iter().map(|h| s(&h.subscriber) + 1).sum::<usize>()
        }
        Change::Acked {
            subscriber, topic, ..
        }
        | Change::Delivered {
            subscriber, topic, ..
        } => s(subscriber) + s(topic) + 8,
    };
    (FRAME_HEADER_BYTES + payload) as u64
}

/// Appends one framed record for `change` to `out`.
///
/// # Panics
/// If a name or id is longer than 65535 bytes, or the payload longer than
/// [`MAX_RECORD_BYTES`]. The protocol limits names to 128 bytes, ids to 256
/// and events to 1 MiB, so this is a bug in the caller, and writing a record
/// that recovery would reject is worse than stopping.
pub fn encode(change: &Change, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
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
            let body = event.fields();
            out.extend_from_slice(&len_u32(body.len()).to_le_bytes());
            out.extend_from_slice(body);
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
    let payload = &out[start + FRAME_HEADER_BYTES..];
    let len = len_u32(payload.len());
    assert!(
        len <= MAX_RECORD_BYTES,
        "log record of {len} bytes is too long"
    );
    let crc = crc32c::crc32c(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // See `encode` "# Panics": the protocol keeps names and ids far shorter.
    let len = u16::try_from(s.len()).expect("names and ids are at most 65535 bytes");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn len_u32(len: usize) -> u32 {
    // See `encode` "# Panics": records are capped far below 4 GiB.
    u32::try_from(len).expect("log records are shorter than 4 GiB")
}

/// Decodes the record at the start of `frame`, returning it and the number
/// of bytes it took (frame header included). Bytes after it are ignored.
///
/// # Errors
/// A [`DecodeError`] saying why the bytes at the start of `frame` are not a
/// whole, intact record.
pub fn decode(frame: &[u8]) -> Result<(Change, usize), DecodeError> {
    Decoder::default().decode(frame)
}

/// Checks the frame header and checksum of the record at the start of
/// `frame` and returns its payload, without decoding it.
fn check_frame(frame: &[u8]) -> Result<&[u8], DecodeError> {
    let Some(header) = frame.first_chunk::<FRAME_HEADER_BYTES>() else {
        if frame.len() >= 4 && frame[..4] == [0; 4] {
            return Err(DecodeError::ZeroLength);
        }
        return Err(DecodeError::Truncated {
            needed: FRAME_HEADER_BYTES,
            available: frame.len(),
        });
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let stored = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 {
        return Err(DecodeError::ZeroLength);
    }
    if len > MAX_RECORD_BYTES {
        return Err(DecodeError::TooLong(len));
    }
    let end = FRAME_HEADER_BYTES + len as usize;
    let Some(payload) = frame.get(FRAME_HEADER_BYTES..end) else {
        return Err(DecodeError::Truncated {
            needed: end,
            available: frame.len(),
        });
    };
    let computed = crc32c::crc32c(payload);
    if computed != stored {
        return Err(DecodeError::Checksum { stored, computed });
    }
    Ok(payload)
}

/// A decoder that shares one `Arc<str>` among equal topic and subscriber
/// names, so that a replay of a million events for one topic keeps one copy
/// of its name. Event ids are not shared: they are unique by design.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    names: HashSet<Arc<str>>,
}

/// Past this many distinct names the cache is cleared rather than grown: it
/// is an optimisation, and a log with many one-off subscriber names should
/// not pin them all in memory.
const MAX_SHARED_NAMES: usize = 4096;

impl Decoder {
    /// See [`decode`].
    pub(crate) fn decode(&mut self, frame: &[u8]) -> Result<(Change, usize), DecodeError> {
        let payload = check_frame(frame)?;
        let change = self.decode_payload(payload)?;
        Ok((change, FRAME_HEADER_BYTES + payload.len()))
    }

    fn decode_payload(&mut self, payload: &[u8]) -> Result<Change, DecodeError> {
        let mut r = Reader { rest: payload };
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
            KIND_PUBLISHED => {
                let topic = self.name(&mut r)?;
                let seq = Seq(u64::from_le_bytes(r.array()?));
                let timestamp = u64::from_le_bytes(r.array()?);
                let priority = r.u8()?;
                let id = r.str()?;
                let body_len = u32::from_le_bytes(r.array()?);
                let body = r.take(body_len as usize)?;
                let event = Arc::new(Event::new(seq, priority, timestamp, id, body));
                let count = u32::from_le_bytes(r.array()?);
                // Each holder takes at least 3 bytes, so a corrupt count
                // cannot make us reserve more than the payload could hold.
                let mut holders = Vec::with_capacity((count as usize).min(r.rest.len() / 3));
                for _ in 0..count {
                    let subscriber = self.name(&mut r)?;
                    let delivered = match r.u8()? {
                        0 => false,
                        1 => true,
                        other => return Err(payload_error(format!("delivered flag {other}"))),
                    };
                    holders.push(Holder {
                        subscriber,
                        delivered,
                    });
                }
                Change::Published {
                    topic,
                    event,
                    holders,
                }
            }
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
            other => return Err(payload_error(format!("unknown record kind {other}"))),
        };
        if !r.rest.is_empty() {
            return Err(payload_error(format!(
                "{} trailing bytes after the record",
                r.rest.len()
            )));
        }
        Ok(change)
    }

    fn name(&mut self, r: &mut Reader<'_>) -> Result<Arc<str>, DecodeError> {
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

fn payload_error(reason: String) -> DecodeError {
    DecodeError::Payload(reason)
}

/// A cursor over a payload whose every read fails cleanly at its end.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(payload_error(format!(
                "field of {n} bytes runs past the end of the payload"
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = u16::from_le_bytes(self.array()?);
        let bytes = self.take(usize::from(len))?;
        std::str::from_utf8(bytes).map_err(|_| payload_error("string is not UTF-8".to_owned()))
    }
}

/// Whether a valid record (sane length, matching checksum, decodable
/// payload) starts at `offset` in `data`. Cheap for most offsets: the length
/// and kind byte are checked before the checksum is computed.
pub(crate) fn is_valid_record_at(data: &[u8], offset: usize) -> bool {
    let Some(frame) = data.get(offset..) else {
        return false;
    };
    let Some(header) = frame.first_chunk::<FRAME_HEADER_BYTES>() else {
        return false;
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if len == 0 || len > MAX_RECORD_BYTES || frame.len() - FRAME_HEADER_BYTES < len as usize {
        return false;
    }
    if !is_known_kind(frame[FRAME_HEADER_BYTES]) {
        return false;
    }
    match check_frame(frame) {
        Ok(payload) => Decoder::default().decode_payload(payload).is_ok(),
        Err(_) => false,
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
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(seq, priority, timestamp, id, body)| {
                Arc::new(Event::new(Seq(seq), priority, timestamp, &id, &body))
            })
    }

    pub(crate) fn change() -> impl Strategy<Value = Change> {
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

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(changes in proptest::collection::vec(change(), 1..8)) {
            let mut bytes = Vec::new();
            for c in &changes {
                let before = bytes.len();
                encode(c, &mut bytes);
                prop_assert_eq!((bytes.len() - before) as u64, encoded_len(c));
            }
            let mut decoder = Decoder::default();
            let mut at = 0;
            for c in &changes {
                prop_assert!(is_valid_record_at(&bytes, at));
                let (decoded, used) = decoder.decode(&bytes[at..]).unwrap();
                prop_assert_eq!(&decoded, c);
                at += used;
            }
            prop_assert_eq!(at, bytes.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
            for offset in 0..bytes.len() {
                let _ = is_valid_record_at(&bytes, offset);
            }
        }

        #[test]
        fn any_flipped_bit_is_detected(c in change(), bit in any::<prop::sample::Index>()) {
            let mut bytes = Vec::new();
            encode(&c, &mut bytes);
            let bit = bit.index(bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode(&bytes).is_err());
        }
    }

    /// Pins the format: if this test fails, the on-disk format changed, and
    /// the steps in the crate docs ("When the format changes") apply.
    #[test]
    fn golden_bytes_of_each_kind() {
        let ab: Arc<str> = Arc::from("ab");
        let t: Arc<str> = Arc::from("t");
        let cases: Vec<(Change, &str)> = vec![
            (
                Change::TopicCreated { topic: t.clone() },
                "04000000 13b06186 01 0100 74",
            ),
            (
                Change::Subscribed {
                    subscriber: ab.clone(),
                    topic: t.clone(),
                    prefetch: 258,
                },
                "0a000000 0790fdc7 02 0200 6162 0100 74 0201",
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
                "27000000 258e0a76 04 0100 74 0700000000000000 0201000000000000 09 \
                 0100 69 02000000 7b78 01000000 0200 6162 01",
            ),
            (
                Change::Acked {
                    subscriber: ab.clone(),
                    topic: t.clone(),
                    seq: Seq(1),
                },
                "10000000 210b8ef9 05 0200 6162 0100 74 0100000000000000",
            ),
        ];
        for (change, hex) in cases {
            let mut bytes = Vec::new();
            encode(&change, &mut bytes);
            let got: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let want: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
            assert_eq!(got, want, "{change:?}");
        }
    }

    #[test]
    fn zero_length_is_its_own_error() {
        assert_eq!(decode(&[0; 8]), Err(DecodeError::ZeroLength));
        assert_eq!(decode(&[0; 5]), Err(DecodeError::ZeroLength));
    }

    #[test]
    fn trailing_payload_bytes_are_rejected() {
        let payload = [KIND_TOPIC_CREATED, 1, 0, b't', 0];
        let mut frame = Vec::new();
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        assert!(matches!(decode(&frame), Err(DecodeError::Payload(_))));
    }

    #[test]
    fn equal_names_share_one_allocation() {
        let mut bytes = Vec::new();
        for _ in 0..2 {
            encode(
                &Change::TopicCreated {
                    topic: Arc::from("shared"),
                },
                &mut bytes,
            );
        }
        let mut decoder = Decoder::default();
        let (a, used) = decoder.decode(&bytes).unwrap();
        let (b, _) = decoder.decode(&bytes[used..]).unwrap();
        let (Change::TopicCreated { topic: a }, Change::TopicCreated { topic: b }) = (a, b) else {
            panic!("wrong kinds");
        };
        assert!(Arc::ptr_eq(&a, &b));
    }
}
