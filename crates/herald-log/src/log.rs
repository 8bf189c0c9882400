//! [`Log`]: the open log of one data directory, owned by the broker task.
//!
//! It frames and buffers records ([`Log::append`], [`Log::append_with`]),
//! writes the buffer with one positioned write per batch ([`Log::write`]),
//! and leaves fdatasync to whoever holds a [`SyncTarget`] from
//! [`Log::sync_target`], so that one fsync covers every batch written before
//! it (group commit). Every file operation that changes the disk, those
//! syncs included, goes through the log's [`Storage`], so that a test can
//! make any of them fail. Rotation and deletion of segments happen here,
//! synchronously, because they are rare. What a record means is the
//! caller's: the log stores and returns payload bytes.
//!
//! Invariants:
//! - every segment but the current one is fully written and fdatasynced;
//! - `current.offset` is where the buffer will be written, and the file
//!   holds valid records up to it (zeros or nothing after);
//! - `appended() == written() + buf.len()`.

use crate::frame;
use crate::lock::DirLock;
use crate::recovery::{self, RecoveryReport};
use crate::segment::{self, HEADER_BYTES, SegmentInfo};
use crate::storage::{StdStorage, Storage};
use crate::{Error, LogConfig, Lsn, SegmentId};
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Above this capacity an emptied buffer is shrunk, so that one huge batch
/// does not pin its memory for the life of the process.
const MAX_IDLE_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// The log of one data directory. See the crate docs for the format and the
/// durability argument.
pub struct Log {
    config: LogConfig,
    storage: Arc<dyn Storage>,
    _lock: DirLock,
    /// Segments older than the current one, oldest first.
    older: Vec<SegmentInfo>,
    current: Option<Current>,
    /// Framed records appended and not yet written.
    buf: Vec<u8>,
    /// Bytes written to the OS since open.
    written: u64,
}

/// The segment being appended to.
struct Current {
    id: SegmentId,
    path: PathBuf,
    file: Arc<File>,
    /// File offset where the buffer goes: header plus records written.
    offset: u64,
    /// Preallocated length; `has_room` keeps records within it.
    capacity: u64,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.config.dir)
            .field("segments", &self.segments())
            .field("buffered", &self.buf.len())
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl Log {
    /// Opens (creating if needed) the log in `config.dir`: takes the
    /// directory lock, hands the payload of every record to `replay`, in
    /// order, removes a torn tail (with a warning naming the file and
    /// offset), and returns a log that appends to the newest segment. With no segment yet, call
    /// [`rotate`](Self::rotate) before the first write (or let
    /// [`write`](Self::write) create the first segment).
    ///
    /// # Errors
    /// [`Error::Locked`] if another process (or another `Log` in this one)
    /// has the directory open, [`Error::Corrupt`] per the tail rule or when
    /// `replay` returns an error (naming the record's file and offset; the
    /// error's text is the reason), [`Error::Io`] if a file operation fails.
    pub fn open<E: fmt::Display>(
        config: LogConfig,
        replay: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(Log, RecoveryReport), Error> {
        Log::open_with_storage(config, Arc::new(StdStorage), replay)
    }

    /// [`open`](Self::open) with every file operation that changes the
    /// disk done by `storage`, the syncs of [`SyncTarget`] included (for
    /// tests: [`FaultInjector`](crate::FaultInjector), and `PowerLoss` in
    /// `herald_log::testing`).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with_storage<E: fmt::Display>(
        config: LogConfig,
        storage: Arc<dyn Storage>,
        replay: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(Log, RecoveryReport), Error> {
        std::fs::create_dir_all(&config.dir).map_err(|source| Error::Io {
            path: config.dir.clone(),
            source,
        })?;
        let lock = DirLock::try_acquire(&config.dir)?;
        let mut recovered = recovery::recover(&config.dir, &mut recovery::replay_fn(replay))?;
        for temp in &recovered.temp_files {
            // An interrupted segment creation: the segment never existed.
            tracing::info!(file = %temp.display(), "removing unfinished segment file");
            storage
                .remove(temp)
                .map_err(|e| Error::io(temp.clone(), e, 0))?;
        }
        let current = match recovered.segments.pop() {
            None => None,
            Some(newest) => Some(open_newest(
                &*storage,
                newest,
                recovered.newest_file_len,
                recovered.report.torn_tail.is_some(),
            )?),
        };
        let log = Log {
            config,
            storage,
            _lock: lock,
            older: recovered.segments,
            current,
            buf: Vec::new(),
            written: 0,
        };
        Ok((log, recovered.report))
    }

    /// Replays `dir` like [`open`](Self::open) without modifying anything
    /// and without taking the lock (take a [`DirLock`] first to refuse a
    /// running broker's directory). A torn tail is reported, not removed.
    ///
    /// # Errors
    /// As [`open`](Self::open), except `Locked`; [`Error::Io`] if `dir` does
    /// not exist.
    pub fn scan<E: fmt::Display>(
        dir: &Path,
        replay: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<RecoveryReport, Error> {
        Ok(recovery::recover(dir, &mut recovery::replay_fn(replay))?.report)
    }

    /// Whether the current segment can take `bytes` more (buffered and
    /// written included) within its preallocation. False when there is no
    /// current segment yet. [`frame_len`](crate::frame_len) gives the bytes
    /// of a record.
    pub fn has_room(&self, bytes: u64) -> bool {
        self.current.as_ref().is_some_and(|c| {
            c.offset
                .saturating_add(self.buf.len() as u64)
                .saturating_add(bytes)
                <= c.capacity
        })
    }

    /// Makes a new segment current: writes out the buffer, fdatasyncs the
    /// current segment, creates the next one preallocated to
    /// `max(segment_bytes, header + snapshot + needed)`, with the payloads
    /// of `snapshot` (for Herald, the topics and durable subscriptions) as
    /// its first records, and fsyncs the directory. The snapshot records are
    /// written and synced as part of the creation, so they count in both
    /// [`appended`](Self::appended) and [`written`](Self::written).
    ///
    /// # Errors
    /// [`Error::Full`] if the disk is full, [`Error::Io`] for other
    /// failures. Either way the log stays on the old segment, whole, and the
    /// call can be retried. (If the failure was the old segment's fdatasync,
    /// see the crate docs on fsync errors.)
    ///
    /// # Panics
    /// As [`append`](Self::append), for an empty or oversized payload.
    pub fn rotate<P: AsRef<[u8]>>(
        &mut self,
        snapshot: impl IntoIterator<Item = P>,
        needed: u64,
    ) -> Result<(), Error> {
        let next = match &self.current {
            Some(current) => SegmentId(current.id.0 + 1),
            None => SegmentId(1),
        };
        if self.current.is_some() {
            self.write()?;
        }
        if let Some(current) = &self.current {
            // Only the newest segment may have a torn tail (recovery treats
            // a bad record anywhere else as corruption), so the old segment
            // must be whole on disk before the new one can hold a record.
            self.storage
                .sync_data(&current.file)
                .map_err(|e| Error::io(&current.path, e, 0))?;
        }
        let mut contents = segment::header(next).to_vec();
        for payload in snapshot {
            frame::append_with(&mut contents, |b| b.extend_from_slice(payload.as_ref()));
        }
        // Room for a whole segment of records after the snapshot, however
        // large the snapshot grows: otherwise a snapshot bigger than a
        // segment would make every command rotate.
        let capacity =
            (contents.len() as u64).saturating_add(self.config.segment_bytes.max(needed));
        let created = segment::create(&*self.storage, &self.config.dir, next, &contents, capacity)?;
        tracing::debug!(segment = %created.path.display(), capacity, "log segment created");
        let snapshot_bytes = contents.len() as u64 - HEADER_BYTES;
        self.written += snapshot_bytes;
        let new = Current {
            id: next,
            path: created.path,
            file: Arc::new(created.file),
            offset: contents.len() as u64,
            capacity: created.capacity,
        };
        if let Some(old) = self.current.replace(new) {
            self.older.push(SegmentInfo {
                id: old.id,
                path: old.path,
                used_bytes: old.offset,
            });
        }
        Ok(())
    }

    /// Frames `payload` into the buffer and returns the Lsn just past it.
    /// The caller checks [`has_room`](Self::has_room) first (for
    /// [`frame_len`](crate::frame_len)`(payload.len())`) and rotates if
    /// needed; if it does not, the record is still taken and the segment
    /// grows past its preallocation.
    ///
    /// # Panics
    /// If `payload` is empty (it would read back as the end of the records)
    /// or longer than [`MAX_RECORD_BYTES`](crate::MAX_RECORD_BYTES).
    pub fn append(&mut self, payload: &[u8]) -> Lsn {
        self.append_with(|buf| buf.extend_from_slice(payload))
    }

    /// [`append`](Self::append) of the payload that `encode` appends to the
    /// buffer it is given, which is the log's own buffer: no copy, and no
    /// allocation once the buffer has grown. `encode` must only append.
    ///
    /// # Panics
    /// As [`append`](Self::append), if `encode` appends nothing or too much.
    pub fn append_with(&mut self, encode: impl FnOnce(&mut Vec<u8>)) -> Lsn {
        frame::append_with(&mut self.buf, encode);
        self.appended()
    }

    /// Writes the whole buffer to the current segment with one positioned
    /// write, and returns the Lsn now written to the operating system (safe
    /// from a process crash, not yet from a power cut). With no segment yet,
    /// first creates one with an empty snapshot, which is correct because
    /// then everything ever logged is in the buffer.
    ///
    /// # Errors
    /// [`Error::Io`] (or [`Error::Full`] when writing past the
    /// preallocation on a full disk). The buffer is kept, and a retry writes
    /// it again at the same offset, so a partial write is overwritten.
    pub fn write(&mut self) -> Result<Lsn, Error> {
        if self.buf.is_empty() {
            return Ok(self.written());
        }
        if self.current.is_none() {
            self.rotate(std::iter::empty::<&[u8]>(), self.buf.len() as u64)?;
        }
        let Some(current) = &mut self.current else {
            // `rotate` returned Ok, so it set `current`.
            unreachable!("rotate leaves a current segment");
        };
        self.storage
            .write_at(&current.file, &self.buf, current.offset)
            .map_err(|e| Error::io(&current.path, e, self.buf.len() as u64))?;
        current.offset += self.buf.len() as u64;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        if self.buf.capacity() > MAX_IDLE_BUFFER_BYTES {
            self.buf.shrink_to(MAX_IDLE_BUFFER_BYTES);
        }
        Ok(self.written())
    }

    /// Lsn just past the last byte written to the operating system.
    pub fn written(&self) -> Lsn {
        Lsn(self.written)
    }

    /// Lsn just past the last byte appended, buffered ones included.
    pub fn appended(&self) -> Lsn {
        Lsn(self.written + self.buf.len() as u64)
    }

    /// What makes everything written so far durable: a handle whose
    /// [`sync`](SyncTarget::sync) fdatasyncs the current segment through the
    /// log's [`Storage`], with the Lsn that makes durable. Older segments
    /// need no sync: rotation synced them. `None` before the first segment
    /// exists.
    pub fn sync_target(&self) -> Option<SyncTarget> {
        self.current.as_ref().map(|c| SyncTarget {
            storage: Arc::clone(&self.storage),
            file: Arc::clone(&c.file),
            path: c.path.clone(),
            lsn: self.written(),
        })
    }

    /// [`write`](Self::write), then fdatasync, synchronously (shutdown,
    /// tests). Returns the Lsn now durable.
    ///
    /// # Errors
    /// As [`write`](Self::write), or [`Error::Io`] if the fdatasync fails.
    pub fn sync(&mut self) -> Result<Lsn, Error> {
        let written = self.write()?;
        if let Some(current) = &self.current {
            self.storage
                .sync_data(&current.file)
                .map_err(|e| Error::io(&current.path, e, 0))?;
        }
        Ok(written)
    }

    /// Every segment, oldest first, the current one last.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let mut all = self.older.clone();
        if let Some(c) = &self.current {
            all.push(SegmentInfo {
                id: c.id,
                path: c.path.clone(),
                used_bytes: c.offset + self.buf.len() as u64,
            });
        }
        all
    }

    /// The segment being appended to, if any.
    pub fn current_segment(&self) -> Option<SegmentId> {
        self.current.as_ref().map(|c| c.id)
    }

    /// Used bytes over all segments (headers and records, buffered ones
    /// included; not the preallocated size).
    pub fn total_bytes(&self) -> u64 {
        let older: u64 = self.older.iter().map(|s| s.used_bytes).sum();
        let current = self
            .current
            .as_ref()
            .map_or(0, |c| c.offset + self.buf.len() as u64);
        older + current
    }

    /// Deletes every segment older than `id`, oldest first, never the
    /// current one, and returns their used bytes (what
    /// [`total_bytes`](Self::total_bytes) drops by; the disk space freed is
    /// their preallocated size).
    ///
    /// # Errors
    /// [`Error::Io`] if a removal or directory fsync fails; segments removed
    /// before the failure stay removed, and [`segments`](Self::segments)
    /// reflects that.
    pub fn delete_segments_before(&mut self, id: SegmentId) -> Result<u64, Error> {
        let mut freed = 0;
        while let Some(oldest) = self.older.first() {
            if oldest.id >= id {
                break;
            }
            match self.storage.remove(&oldest.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&oldest.path, e, 0)),
            }
            // One directory fsync per removal keeps the surviving ids
            // contiguous after any crash, which lets recovery treat a hole
            // as a lost segment. Deletion is rare, so the cost is small.
            self.storage
                .sync_dir(&self.config.dir)
                .map_err(|e| Error::io(&self.config.dir, e, 0))?;
            freed += oldest.used_bytes;
            tracing::debug!(segment = %oldest.path.display(), "log segment deleted");
            self.older.remove(0);
        }
        Ok(freed)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }
}

/// The current segment and the Lsn written to it when it was taken from
/// [`Log::sync_target`]: what the fsync thread syncs while the log goes on
/// writing (group commit). It keeps the file open, so a rotation meanwhile
/// does no harm: rotation syncs the old segment itself.
#[derive(Clone)]
pub struct SyncTarget {
    storage: Arc<dyn Storage>,
    file: Arc<File>,
    path: PathBuf,
    lsn: Lsn,
}

impl fmt::Debug for SyncTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncTarget")
            .field("path", &self.path)
            .field("lsn", &self.lsn)
            .finish_non_exhaustive()
    }
}

impl SyncTarget {
    /// Everything appended before this Lsn is durable once
    /// [`sync`](Self::sync) returns `Ok`.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// The segment file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// fdatasyncs the segment ([`Storage::sync_data`]).
    ///
    /// # Errors
    /// The storage's error. Then nothing after the last successful sync may
    /// be acknowledged (see "Durability" in the crate docs).
    pub fn sync(&self) -> io::Result<()> {
        self.storage.sync_data(&self.file)
    }
}

/// Opens the newest segment for appending, removing its torn tail if it has
/// one.
fn open_newest(
    storage: &dyn Storage,
    newest: SegmentInfo,
    file_len: u64,
    torn: bool,
) -> Result<Current, Error> {
    let path = newest.path;
    let end = newest.used_bytes;
    let file = storage.open(&path).map_err(|e| Error::io(&path, e, 0))?;
    let mut capacity = file_len;
    if torn {
        tracing::warn!(
            segment = %path.display(),
            offset = end,
            "torn tail in the newest log segment (a write cut short by a crash); \
             removing it and appending from there"
        );
        // Truncating removes every garbage byte at once; re-preallocating
        // restores the zeros that mark the end of the records.
        storage
            .set_len(&file, end)
            .map_err(|e| Error::io(&path, e, 0))?;
        if let Err(e) = storage.allocate(&file, file_len) {
            // Not fatal: the segment then grows as it is written.
            tracing::warn!(segment = %path.display(), cause = %e, "could not re-preallocate");
            capacity = end;
        }
        // The truncation must be durable before anything is appended at
        // `end`, or a crash could resurrect garbage after the new records.
        storage
            .sync_all(&file)
            .map_err(|e| Error::io(&path, e, 0))?;
    }
    Ok(Current {
        id: newest.id,
        path,
        file: Arc::new(file),
        offset: end,
        capacity,
    })
}
