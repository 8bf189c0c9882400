//! The record frame: an opaque payload with its length and checksum, and
//! back. Pure, no IO.
//!
//! A frame is `len: u32 LE`, `crc: u32 LE` (crc32c of the payload), then
//! `len` payload bytes (the crate docs give the layout). What a payload
//! means is the caller's business (Herald's is `herald_core::record`). This
//! module knows nothing about files or offsets: [`read_frame`] looks at the
//! start of a slice and says how many bytes the frame took, and the recovery
//! module decides what a failure means at that place in a segment.
//!
//! Invariants: a payload framed by [`Log::append`](crate::Log::append) reads
//! back as the same bytes, in [`frame_len`] bytes; a payload is never empty
//! (eight zero bytes where a frame would start mark the end of the records).

/// Bytes before the payload of every record: `len` and `crc`.
pub const FRAME_HEADER_BYTES: usize = 8;

/// Largest payload a record may have. Anything longer is garbage (a torn or
/// corrupt length), which keeps a flipped bit in `len` from making recovery
/// checksum hundreds of megabytes. Herald's events are limited to 1 MiB.
pub const MAX_RECORD_BYTES: u32 = 64 * 1024 * 1024;

/// Bytes a payload of `payload_len` bytes takes in the log, frame included:
/// what to ask [`Log::has_room`](crate::Log::has_room) for.
pub const fn frame_len(payload_len: usize) -> u64 {
    (FRAME_HEADER_BYTES + payload_len) as u64
}

/// Why the bytes at some offset are not an intact frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
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
}

/// Appends a frame to `out` whose payload `encode` writes straight into
/// `out` (no copy), and returns the payload's length.
///
/// # Panics
/// If `encode` appends nothing (an empty payload would read back as the end
/// of the records) or more than [`MAX_RECORD_BYTES`]: writing a record that
/// recovery would misread is worse than stopping.
pub(crate) fn append_with(out: &mut Vec<u8>, encode: impl FnOnce(&mut Vec<u8>)) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    encode(out);
    let payload = out.get(start + FRAME_HEADER_BYTES..).unwrap_or_default();
    let payload_len = payload.len();
    let len = u32::try_from(payload_len).unwrap_or(u32::MAX);
    assert!(
        (1..=MAX_RECORD_BYTES).contains(&len),
        "a log record payload must be 1 to {MAX_RECORD_BYTES} bytes, not {payload_len}"
    );
    let crc = crc32c::crc32c(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    payload_len
}

/// Checks the frame at the start of `data` and returns its payload and the
/// bytes the frame takes (header included). Bytes after it are ignored.
///
/// # Errors
/// A [`FrameError`] saying why the bytes at the start of `data` are not a
/// whole, intact frame.
pub fn read_frame(data: &[u8]) -> Result<(&[u8], usize), FrameError> {
    let Some(header) = data.first_chunk::<FRAME_HEADER_BYTES>() else {
        if data.len() >= 4 && data[..4] == [0; 4] {
            return Err(FrameError::ZeroLength);
        }
        return Err(FrameError::Truncated {
            needed: FRAME_HEADER_BYTES,
            available: data.len(),
        });
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let stored = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 {
        return Err(FrameError::ZeroLength);
    }
    if len > MAX_RECORD_BYTES {
        return Err(FrameError::TooLong(len));
    }
    let end = FRAME_HEADER_BYTES + len as usize;
    let Some(payload) = data.get(FRAME_HEADER_BYTES..end) else {
        return Err(FrameError::Truncated {
            needed: end,
            available: data.len(),
        });
    };
    let computed = crc32c::crc32c(payload);
    if computed != stored {
        return Err(FrameError::Checksum { stored, computed });
    }
    Ok((payload, end))
}

/// Whether an intact frame (sane length, matching checksum) starts at
/// `offset` in `data`. Cheap for most offsets: the length is checked
/// against the bytes left before any checksum is computed.
pub(crate) fn is_frame_at(data: &[u8], offset: usize) -> bool {
    data.get(offset..)
        .is_some_and(|rest| read_frame(rest).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            append_with(&mut out, |b| b.extend_from_slice(p));
        }
        out
    }

    proptest! {
        #[test]
        fn frames_read_back_as_their_payloads(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 1..8),
        ) {
            let bytes = framed(&payloads);
            let mut at = 0;
            for p in &payloads {
                prop_assert!(is_frame_at(&bytes, at));
                let (payload, used) = read_frame(&bytes[at..]).unwrap();
                prop_assert_eq!(payload, &p[..]);
                prop_assert_eq!(used as u64, frame_len(p.len()));
                at += used;
            }
            prop_assert_eq!(at, bytes.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = read_frame(&bytes);
            for offset in 0..=bytes.len() + 1 {
                let _ = is_frame_at(&bytes, offset);
            }
        }

        #[test]
        fn any_flipped_bit_is_detected(
            payload in proptest::collection::vec(any::<u8>(), 1..100),
            bit in any::<prop::sample::Index>(),
        ) {
            let mut bytes = framed(&[payload]);
            let bit = bit.index(bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(read_frame(&bytes).is_err());
        }
    }

    /// Pins the frame: if this test fails, the on-disk format changed, and
    /// the steps in the crate docs ("When the format changes") apply. The
    /// payload is a version 1 `TopicCreated` record for topic `t`.
    #[test]
    fn golden_bytes_of_a_frame() {
        let bytes = framed(&[vec![0x01, 0x01, 0x00, 0x74]]);
        let got: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, "0400000013b0618601010074");
    }

    #[test]
    fn zero_length_is_its_own_error() {
        assert_eq!(read_frame(&[0; 8]), Err(FrameError::ZeroLength));
        assert_eq!(read_frame(&[0; 5]), Err(FrameError::ZeroLength));
    }

    #[test]
    #[should_panic(expected = "must be 1 to")]
    fn an_empty_payload_is_refused() {
        framed(&[Vec::new()]);
    }
}
