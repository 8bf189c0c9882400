//! The record frame: a [`Change`]'s payload (see
//! [`herald_core::record`]) with its length and checksum, and back. Pure,
//! no IO.
//!
//! A frame is `len: u32 LE`, `crc: u32 LE` (crc32c of the payload), then
//! `len` payload bytes; the crate docs give the frame byte by byte, and
//! `herald_core::record` the payload of every kind. This module knows
//! nothing about files or offsets: [`decode`] looks at the start of a slice
//! and says how many bytes the record took, and the recovery module decides
//! what a failure means at that place in a segment.
//!
//! Invariants: `encode` followed by `decode` is the identity, and
//! [`encoded_len`] is exactly what [`encode`] appends.

use herald_core::Change;
use herald_core::record::{self, RecordError};

/// Bytes before the payload of every record: `len` and `crc`.
pub const FRAME_HEADER_BYTES: usize = 8;

/// Largest payload a record may have. Anything longer is garbage (a torn or
/// corrupt length), which keeps a flipped bit in `len` from making recovery
/// checksum hundreds of megabytes. Events are limited to 1 MiB by the protocol.
pub const MAX_RECORD_BYTES: u32 = 64 * 1024 * 1024;

/// Whether `kind` is a record kind this version knows. Recovery uses it to
/// reject most candidate offsets before computing a checksum.
pub(crate) fn is_known_kind(kind: u8) -> bool {
    (1..=6).contains(&kind)
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
    Payload(#[from] RecordError),
}

/// Bytes [`encode`] appends for `change`, frame header included. Lets the
/// caller ask [`Log::has_room`](crate::Log::has_room) before appending.
pub fn encoded_len(change: &Change) -> u64 {
    (FRAME_HEADER_BYTES + record::payload_len(change)) as u64
}

/// Appends one framed record for `change` to `out`.
///
/// # Panics
/// As [`herald_core::record::encode`], or if the payload is longer than
/// [`MAX_RECORD_BYTES`] (the protocol limits events to 1 MiB, so this is a
/// bug in the caller, and writing a record that recovery would reject is
/// worse than stopping).
pub fn encode(change: &Change, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    record::encode(change, out);
    let payload = &out[start + FRAME_HEADER_BYTES..];
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    assert!(
        len <= MAX_RECORD_BYTES,
        "log record of {len} bytes is too long"
    );
    let crc = crc32c::crc32c(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
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

/// Decodes frames with one [`record::Decoder`], which shares names over a
/// whole replay.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    records: record::Decoder,
}

impl Decoder {
    /// See [`decode`].
    pub(crate) fn decode(&mut self, frame: &[u8]) -> Result<(Change, usize), DecodeError> {
        let payload = check_frame(frame)?;
        let change = self.records.decode(payload)?;
        Ok((change, FRAME_HEADER_BYTES + payload.len()))
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
        Ok(payload) => record::decode(payload).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::{Event, Holder, Seq};
    use proptest::prelude::*;
    use std::sync::Arc;

    fn change(i: u64, size: usize) -> Change {
        Change::Published {
            topic: Arc::from("t"),
            event: Arc::new(Event::new(
                Seq(i),
                1,
                2,
                &i.to_string(),
                "x".repeat(size).as_bytes(),
            )),
            holders: vec![Holder {
                subscriber: Arc::from("a"),
                delivered: i.is_multiple_of(2),
            }],
        }
    }

    proptest! {
        #[test]
        fn frames_decode_back_and_take_encoded_len(sizes in proptest::collection::vec(0usize..300, 1..8)) {
            let mut bytes = Vec::new();
            for (i, &size) in sizes.iter().enumerate() {
                let before = bytes.len();
                encode(&change(i as u64, size), &mut bytes);
                prop_assert_eq!((bytes.len() - before) as u64, encoded_len(&change(i as u64, size)));
            }
            let mut decoder = Decoder::default();
            let mut at = 0;
            for (i, &size) in sizes.iter().enumerate() {
                prop_assert!(is_valid_record_at(&bytes, at));
                let (decoded, used) = decoder.decode(&bytes[at..]).unwrap();
                prop_assert_eq!(decoded, change(i as u64, size));
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
        fn any_flipped_bit_is_detected(size in 0usize..100, bit in any::<prop::sample::Index>()) {
            let mut bytes = Vec::new();
            encode(&change(7, size), &mut bytes);
            let bit = bit.index(bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode(&bytes).is_err());
        }
    }

    /// Pins the frame: if this test fails, the on-disk format changed, and
    /// the steps in the crate docs ("When the format changes") apply.
    #[test]
    fn golden_bytes_of_a_frame() {
        let mut bytes = Vec::new();
        encode(
            &Change::TopicCreated {
                topic: Arc::from("t"),
            },
            &mut bytes,
        );
        let got: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, "04000000 13b06186 01 0100 74".replace(" ", ""));
    }

    #[test]
    fn zero_length_is_its_own_error() {
        assert_eq!(decode(&[0; 8]), Err(DecodeError::ZeroLength));
        assert_eq!(decode(&[0; 5]), Err(DecodeError::ZeroLength));
    }

    #[test]
    fn undecodable_payload_is_a_payload_error() {
        let payload = [1, 1, 0, b't', 0];
        let mut frame = Vec::new();
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        assert_eq!(
            decode(&frame),
            Err(DecodeError::Payload(RecordError::TrailingBytes(1)))
        );
    }
}
