//! Reading a data directory back: every record of every segment, in order,
//! with the tail rule deciding what a bad frame means.
//!
//! This module only reads. [`Log::open`](crate::Log::open) repairs a torn
//! tail afterwards; [`Log::scan`](crate::Log::scan) just reports it.
//! [`scan_bytes`] is the whole rule for one segment's contents, pure, so
//! that it can be tested and fuzzed without files; reading a file is
//! `std::fs::read` and then [`scan_bytes`].
//!
//! The tail rule (see the crate docs for why it is safe): a frame that
//! fails at offset X is a torn tail only if it is in the newest segment and
//! no intact frame starts anywhere after X in that segment; anything else is
//! [`Error::Corrupt`]. An intact frame whose payload the caller's replay
//! rejects is corruption wherever it is: its checksum says the bytes are the
//! ones written.

use crate::frame::{FRAME_HEADER_BYTES, is_frame_at, read_frame};
use crate::segment::{self, HEADER_BYTES, SegmentInfo};
use crate::{Error, SegmentId};
use std::fmt;
use std::path::{Path, PathBuf};

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files read.
    pub segments: usize,
    /// Records replayed.
    pub records: u64,
    /// Bytes of headers and valid records over all segments (not the
    /// preallocated size, not the torn tail).
    pub bytes: u64,
    /// The newest segment's torn tail, if it had one: its file and the offset
    /// of the first bad record, where appending resumes. `open` has removed
    /// it; `scan` has left it in place.
    pub torn_tail: Option<(PathBuf, u64)>,
}

/// Everything the log needs to continue after recovery.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    pub report: RecoveryReport,
    /// All segments, oldest first, `used_bytes` ending at the last valid
    /// record.
    pub segments: Vec<SegmentInfo>,
    /// Length of the newest segment's file (its preallocation, or more).
    pub newest_file_len: u64,
    /// Temporary files of interrupted segment creations.
    pub temp_files: Vec<PathBuf>,
}

/// The replay callback as recovery sees it: the caller's error already
/// turned into the reason of an [`Error::Corrupt`].
pub(crate) type Replay<'a> = dyn FnMut(&[u8]) -> Result<(), String> + 'a;

/// Adapts a caller's replay callback to [`Replay`].
pub(crate) fn replay_fn<E: fmt::Display>(
    mut replay: impl FnMut(&[u8]) -> Result<(), E>,
) -> impl FnMut(&[u8]) -> Result<(), String> {
    move |payload| replay(payload).map_err(|e| format!("record rejected by replay: {e}"))
}

/// Replays every record in `dir` through `replay`, oldest first.
///
/// # Errors
/// [`Error::Io`] if a file cannot be read, [`Error::Corrupt`] per the tail
/// rule, for a payload `replay` rejects, or for a missing segment, a bad
/// header or a segment id that does not match its file name. Records before
/// the corruption have been replayed by then; the caller discards what it
/// built.
pub(crate) fn recover(dir: &Path, replay: &mut Replay<'_>) -> Result<Recovered, Error> {
    let listing = segment::list(dir)?;
    let mut recovered = Recovered {
        temp_files: listing.temp_files,
        ..Recovered::default()
    };
    let count = listing.segments.len();
    for (i, (id, path)) in listing.segments.into_iter().enumerate() {
        if let Some(prev) = recovered.segments.last() {
            // Segments are deleted oldest first with a directory fsync after
            // each removal, so after any crash the ids left are contiguous.
            // A hole means a segment was lost, and with it possibly events.
            if prev.id.0.checked_add(1) != Some(id.0) {
                return Err(Error::Corrupt {
                    segment: path,
                    offset: 0,
                    reason: format!(
                        "segment {} is missing before it",
                        SegmentId(prev.id.0.saturating_add(1))
                    ),
                });
            }
        }
        let newest = i + 1 == count;
        let data = std::fs::read(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let scanned = scan_bytes_dyn(&path, id, &data, newest, replay)?;
        recovered.report.segments += 1;
        recovered.report.records += scanned.records;
        recovered.report.bytes += scanned.end;
        if let Some(offset) = scanned.torn_at {
            recovered.report.torn_tail = Some((path.clone(), offset));
        }
        if newest {
            recovered.newest_file_len = data.len() as u64;
        }
        recovered.segments.push(SegmentInfo {
            id,
            path,
            used_bytes: scanned.end,
        });
    }
    Ok(recovered)
}

/// What [`scan_bytes`] found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// Offset just past the last valid record (the header's end if none).
    pub end: u64,
    /// Records handed to the replay callback.
    pub records: u64,
    /// Offset of the torn tail, if there is one (then `end` equals it).
    pub torn_at: Option<u64>,
}

/// Applies the tail rule to `data`, the contents of segment `id` (read
/// from `path`, which only names it in errors), handing every payload to
/// `replay` in order. `newest` says whether it is the newest segment, the
/// only one that may end in a torn tail. This is what recovery runs on each
/// file, and nothing is written.
///
/// # Errors
/// [`Error::Corrupt`] naming `path` and an offset inside `data`: a bad
/// header (offset 0), a bad frame that is not a torn tail, or a payload
/// `replay` rejects (the offset of its frame). Records before it have been
/// replayed.
pub fn scan_bytes<E: fmt::Display>(
    path: &Path,
    id: SegmentId,
    data: &[u8],
    newest: bool,
    replay: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<SegmentScan, Error> {
    let mut replay = replay_fn(replay);
    scan_bytes_dyn(path, id, data, newest, &mut replay)
}

fn scan_bytes_dyn(
    path: &Path,
    id: SegmentId,
    data: &[u8],
    newest: bool,
    replay: &mut Replay<'_>,
) -> Result<SegmentScan, Error> {
    let corrupt = |offset: usize, reason: String| Error::Corrupt {
        segment: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    segment::check_header(data, id).map_err(|reason| corrupt(0, reason))?;
    let mut pos = HEADER_BYTES as usize;
    let mut records = 0;
    loop {
        let rest = &data[pos..];
        let err = match read_frame(rest) {
            Ok((payload, used)) => {
                replay(payload).map_err(|reason| corrupt(pos, reason))?;
                records += 1;
                pos += used;
                continue;
            }
            Err(err) => err,
        };
        // Preallocated space reads as zeros, so zeros up to the end of the
        // file (or no bytes at all) are the normal end of the records.
        let Some(nonzero) = rest.iter().position(|&b| b != 0) else {
            return Ok(SegmentScan {
                end: pos as u64,
                records,
                torn_at: None,
            });
        };
        let reason = if rest.len() >= FRAME_HEADER_BYTES && rest[..FRAME_HEADER_BYTES] == [0; 8] {
            // Zeros where a record should start, yet data further on: a
            // hole, such as a zeroed disk block. Same rule as a bad record.
            format!(
                "zeros at a record boundary, non-zero bytes at offset {}",
                pos + nonzero
            )
        } else {
            err.to_string()
        };
        if !newest {
            // Rotation fdatasyncs a segment before the next one receives a
            // record, so an older segment cannot have a torn tail.
            return Err(corrupt(
                pos,
                format!("{reason} (in a segment older than the newest, so not a torn tail)"),
            ));
        }
        if let Some(valid) = find_frame(data, pos + 1) {
            return Err(corrupt(
                pos,
                format!("{reason}; a valid record follows at offset {valid}"),
            ));
        }
        return Ok(SegmentScan {
            end: pos as u64,
            records,
            torn_at: Some(pos as u64),
        });
    }
}

/// The first offset at or after `from` where an intact frame starts.
///
/// Only offsets up to the last non-zero byte can start one (a frame's
/// length field is non-zero), which bounds the search by the garbage after a
/// torn write rather than by the preallocated size; most offsets are then
/// rejected by their length (zero, above the maximum, or past the end of
/// the file) before any checksum is computed.
fn find_frame(data: &[u8], from: usize) -> Option<usize> {
    let last_nonzero = data.iter().rposition(|&b| b != 0)?;
    (from..=last_nonzero).find(|&offset| is_frame_at(data, offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::append_with;

    #[test]
    fn finds_a_frame_after_garbage_and_none_in_zeros() {
        let mut data = vec![0xff; 13];
        let start = data.len();
        append_with(&mut data, |b| b.push(b'a'));
        data.extend_from_slice(&[0; 100]);
        assert_eq!(find_frame(&data, 0), Some(start));
        assert_eq!(find_frame(&data, start + 1), None);
        assert_eq!(find_frame(&[0; 64], 0), None);
    }
}
