//! Herald's append-only log of opaque records: segment files, framing,
//! group commit support and recovery.
//!
//! The server's broker task owns one [`Log`]. While it processes a batch of
//! commands it [`append`](Log::append)s the payloads of the records they
//! produce to an in-memory buffer ([`append_with`](Log::append_with) lets
//! the caller encode straight into it), then calls [`write`](Log::write)
//! once (one `pwrite`). A separate fsync thread calls
//! [`SyncTarget::sync`] on the handle from [`sync_target`](Log::sync_target)
//! and so makes every batch written before it durable at once (group
//! commit). The log never fsyncs on the hot path. On restart [`Log::open`]
//! hands every payload back to a callback, in order.
//!
//! This crate stores bytes and knows nothing of what they mean: Herald's
//! payloads (`herald_core::record`) are encoded and decoded by the caller,
//! and a payload the caller's replay rejects is reported as corruption at
//! its file and offset. It never decides what to keep: compaction is the
//! caller's, which passes a snapshot to [`rotate`](Log::rotate) and later
//! calls [`delete_segments_before`](Log::delete_segments_before).
//!
//! # Layout
//!
//! | file | owns |
//! |---|---|
//! | `frame.rs` | a payload's frame: length, checksum (pure) |
//! | `segment.rs` | segment names, the header, creating a segment atomically |
//! | `recovery.rs` | reading segments back, the tail rule ([`scan_bytes`]) |
//! | `log.rs` | [`Log`]: buffer, write, rotate, delete; [`SyncTarget`] |
//! | `storage.rs` | every file operation that changes the disk (syncs included), [`FaultInjector`] |
//! | `lock.rs` | [`DirLock`] on `<dir>/LOCK` |
//! | `testing.rs` | `testing::PowerLoss`, a storage that loses power (feature `testing`) |
//!
//! # On-disk format, version 1
//!
//! A data directory holds `LOCK` (empty; `flock`ed by the running broker)
//! and segment files named by their id as 20 decimal digits:
//! `00000000000000000001.log`, `00000000000000000002.log`, ... Ids increase
//! by one per segment; replay reads them in id order; older segments are
//! deleted from the front, so the ids present are always contiguous.
//! `<id>.log.tmp` is a segment being created; one left by a crash is removed
//! at open. All integers are little-endian.
//!
//! ```text
//! Segment header (24 bytes, at offset 0)
//!   0   8  magic          "HRLDLOG\0"
//!   8   4  version        u32 = 1 (FORMAT_VERSION)
//!  12   4  reserved       u32 = 0, ignored by version 1 readers
//!  16   8  segment id     u64, equal to the id in the file name
//!
//! Records, back to back from offset 24
//!   0   4  len            u32, payload length, 1 ..= 64 MiB
//!   4   4  crc            u32, crc32c (Castagnoli) of the payload
//!   8 len  payload        the caller's bytes
//!
//! After the last record: zeros (the preallocated rest of the file), or the
//! end of the file. Eight zero bytes where a record would start end the
//! records.
//! ```
//!
//! The payloads of version 1 are Herald's records, documented byte by byte
//! in `herald_core::record` (a kind byte, then the fields of that kind).
//! The version in the header covers both: the frame here and the payloads
//! there. Every segment starts with the snapshot its creator passed to
//! [`rotate`](Log::rotate) (for Herald, topics and durable subscriptions),
//! so deleting older segments never loses metadata.
//!
//! ## When the format changes
//!
//! 1. Bump [`FORMAT_VERSION`] for any change an old reader would misread:
//!    a new frame layout, or a new payload kind or field. (Version 1
//!    readers report an unknown kind as [`Error::Corrupt`], which is the
//!    point: they must not guess.) The reserved header field may carry
//!    flags that old readers can ignore without a bump.
//! 2. Keep reading the old version: dispatch on the header's version in
//!    `segment.rs` (and hand the version to the payload decoder), or write a
//!    one-shot converter and say so in the release notes. A segment is never
//!    rewritten in place; new segments are written in the new version, and
//!    old ones disappear as compaction deletes them.
//! 3. Update the layout above, the golden-bytes tests (`frame.rs` here,
//!    `record.rs` in `herald-core`), and keep
//!    `crates/herald/tests/log_v1.rs` passing: it reads a data directory
//!    written by the version 1 release.
//!
//! # The tail rule
//!
//! Recovery reads every record of every segment. When the bytes at offset X
//! are not an intact frame (length zero with data after it, beyond the file
//! or above 64 MiB, or a checksum mismatch):
//!
//! - in the newest segment, if no intact frame starts at any byte offset
//!   after X, the segment has a **torn tail**: the last write was cut short
//!   by a crash. [`Log::open`] warns with the file and offset, truncates the
//!   file to X, preallocates it again, fsyncs, and appends from X.
//!   [`Log::scan`] reports it in [`RecoveryReport::torn_tail`] and changes
//!   nothing.
//! - otherwise it is [`Error::Corrupt`] with the segment and X. Nothing is
//!   silently dropped; an operator decides.
//!
//! An intact frame whose payload the replay callback rejects is
//! [`Error::Corrupt`] wherever it is: its checksum matched, so these are
//! the bytes that were written, and no crash explains them.
//!
//! Why this is safe: a record is acknowledged only after the write (and,
//! for `--fsync always`, the fdatasync) of its batch completed, and every
//! later write lands after it. A cut therefore only ever damages records no
//! client was told were durable, and it leaves no valid record behind the
//! damage. A bad record with valid records after it is not a cut: it is
//! damage to data that may have been acknowledged. The rule cannot tell a
//! power cut that persisted a later page of the last write but not an
//! earlier one from media damage; it reports both as corruption.
//!
//! # Durability
//!
//! - [`write`](Log::write) puts a batch in the page cache: it survives a
//!   process crash or `kill -9`. [`SyncTarget::sync`] on the
//!   [`sync_target`](Log::sync_target) makes everything written before it
//!   durable (an fdatasync through the log's [`Storage`]); the fsync thread
//!   reports the Lsn that came with the handle.
//! - [`rotate`](Log::rotate) writes out and fdatasyncs the old segment before
//!   the new one exists. So every segment but the newest is whole on disk,
//!   which is what lets the tail rule call a bad record in an older segment
//!   corruption, and the fsync thread only ever needs to sync one file.
//! - A new segment is written under a temporary name (header and snapshot),
//!   preallocated and fsynced, renamed into place, and then the directory is
//!   fsynced. A file's directory entry is durable only once its directory is
//!   synced: without that, a power cut could lose the whole new segment even
//!   though fdatasync had returned for records in it. Preallocation (with
//!   `fallocate`; `set_len` where unsupported) reserves the space, so a full
//!   disk shows up at rotation as [`Error::Full`], not in the middle of a
//!   batch, and the fdatasyncs of appends need not update the file size.
//! - [`delete_segments_before`](Log::delete_segments_before) removes the
//!   oldest segment first and fsyncs the directory after each removal, so
//!   the surviving ids stay contiguous and a hole means a lost segment.
//! - A failed fdatasync may have dropped the dirty pages it could not write
//!   (Linux marks them clean), so a later successful fsync proves nothing
//!   about them. A caller that sees an fsync error must not acknowledge the
//!   records it covered, and should stop and recover from the log rather
//!   than retry.
//!
//! An [`Lsn`] counts the bytes appended since this process opened the log.
//! It orders "appended", "written" and "durable" within one process and is
//! never stored.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod frame;
mod lock;
mod log;
mod recovery;
mod segment;
mod storage;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::Error;
pub use frame::{FRAME_HEADER_BYTES, FrameError, MAX_RECORD_BYTES, frame_len, read_frame};
pub use lock::{DirLock, LOCK_FILE};
pub use log::{Log, SyncTarget};
pub use recovery::{RecoveryReport, SegmentScan, scan_bytes};
pub use segment::{FORMAT_VERSION, HEADER_BYTES, MAGIC, SegmentInfo};
pub use storage::{FaultInjector, Op, StdStorage, Storage};

use std::fmt;
use std::path::PathBuf;

/// Default size of a segment file: 32 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 32 * 1024 * 1024;

/// A position in the log of this process: bytes appended since
/// [`Log::open`]. Monotonic; not stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A segment's id: its file name and its place in replay order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u64);

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where the log lives and how big its segments are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The data directory.
    pub dir: PathBuf,
    /// Preallocated size of a new segment; a segment is bigger only when a
    /// snapshot plus one batch does not fit.
    pub segment_bytes: u64,
}

impl LogConfig {
    /// A config for `dir` with [`DEFAULT_SEGMENT_BYTES`].
    pub fn new(dir: impl Into<PathBuf>) -> LogConfig {
        LogConfig {
            dir: dir.into(),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}
