//! Segment files: their names, their 24-byte header, listing them, and
//! creating one so that it appears on disk whole or not at all.
//!
//! Invariant: a file named `<id>.log` always starts with a complete, synced
//! header, because it is written under a temporary name and renamed into
//! place (see [`create`]). Recovery can therefore treat a bad header as
//! corruption rather than as a torn creation.

use crate::storage::Storage;
use crate::{Error, SegmentId};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// First eight bytes of every segment.
pub const MAGIC: [u8; 8] = *b"HRLDLOG\0";

/// The format version this code writes and reads. See "When the format
/// changes" in the crate docs before touching it.
pub const FORMAT_VERSION: u32 = 1;

/// Size of the segment header: magic, version, reserved, segment id.
pub const HEADER_BYTES: u64 = 24;

const EXTENSION: &str = ".log";
const TEMP_EXTENSION: &str = ".log.tmp";
const ID_DIGITS: usize = 20;

/// A segment as [`Log::segments`](crate::Log::segments) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The segment's id, which orders segments.
    pub id: SegmentId,
    /// Its file.
    pub path: PathBuf,
    /// Header plus records, written or buffered; not the preallocated size.
    pub used_bytes: u64,
}

/// `<dir>/<id as 20 digits>.log`.
pub fn path(dir: &Path, id: SegmentId) -> PathBuf {
    dir.join(format!("{:0width$}{EXTENSION}", id.0, width = ID_DIGITS))
}

fn temp_path(dir: &Path, id: SegmentId) -> PathBuf {
    dir.join(format!(
        "{:0width$}{TEMP_EXTENSION}",
        id.0,
        width = ID_DIGITS
    ))
}

/// The header of segment `id`.
pub fn header(id: SegmentId) -> [u8; HEADER_BYTES as usize] {
    let mut h = [0; HEADER_BYTES as usize];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    // h[12..16]: reserved, zero.
    h[16..24].copy_from_slice(&id.0.to_le_bytes());
    h
}

/// Checks the header at the start of `data`, the contents of segment `id`.
/// The reserved field is not checked, so that a later version may use it
/// for a flag that version 1 readers can ignore.
///
/// # Errors
/// A human-readable reason (the caller makes it an [`Error::Corrupt`] at
/// offset 0).
pub fn check_header(data: &[u8], id: SegmentId) -> Result<(), String> {
    let Some(h) = data.first_chunk::<{ HEADER_BYTES as usize }>() else {
        return Err(format!(
            "file is {} bytes, shorter than the {HEADER_BYTES}-byte header",
            data.len()
        ));
    };
    if h[..8] != MAGIC {
        return Err("bad magic: not a herald log segment".to_owned());
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, this herald reads version {FORMAT_VERSION}"
        ));
    }
    let stored = u64::from_le_bytes([h[16], h[17], h[18], h[19], h[20], h[21], h[22], h[23]]);
    if stored != id.0 {
        return Err(format!(
            "header names segment {stored}, file name says {id}"
        ));
    }
    Ok(())
}

/// What is in a data directory.
#[derive(Debug, Default)]
pub struct Listing {
    /// Segments, oldest first.
    pub segments: Vec<(SegmentId, PathBuf)>,
    /// Leftovers of segment creations interrupted by a crash.
    pub temp_files: Vec<PathBuf>,
}

/// Lists the segment files in `dir`. Other files are ignored.
///
/// # Errors
/// [`Error::Io`] if `dir` cannot be read.
pub fn list(dir: &Path) -> Result<Listing, Error> {
    let io_err = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut listing = Listing::default();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(id) = parse_name(name, EXTENSION) {
            listing.segments.push((id, entry.path()));
        } else if parse_name(name, TEMP_EXTENSION).is_some() {
            listing.temp_files.push(entry.path());
        }
    }
    listing.segments.sort();
    Ok(listing)
}

fn parse_name(name: &str, extension: &str) -> Option<SegmentId> {
    let digits = name.strip_suffix(extension)?;
    if digits.len() != ID_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(SegmentId)
}

/// A freshly created segment.
#[derive(Debug)]
pub struct Created {
    /// Its file, open for writing.
    pub file: File,
    /// Its path.
    pub path: PathBuf,
    /// Its preallocated length.
    pub capacity: u64,
}

/// Creates segment `id` in `dir`, preallocated to `capacity` bytes and
/// starting with `contents` (its header and the snapshot records).
///
/// Ensures: when this returns `Ok`, `<id>.log` exists with `contents`
/// durably on disk and its directory entry durable; when it returns `Err`,
/// no `<id>.log` was left behind (as far as cleanup could manage; a leftover
/// temporary file is removed at the next open). The steps:
/// 1. create `<id>.log.tmp`, preallocate, write `contents`, `fsync`: the
///    data and the file size are on disk before the file has its real name;
/// 2. rename it to `<id>.log` and `fsync` the directory: a new directory
///    entry is durable only once its directory is synced, and records that
///    the fsync thread later declares durable must not vanish with it.
///
/// # Errors
/// [`Error::Full`] if the disk is full, [`Error::Io`] otherwise.
pub fn create(
    storage: &dyn Storage,
    dir: &Path,
    id: SegmentId,
    contents: &[u8],
    capacity: u64,
) -> Result<Created, Error> {
    let temp = temp_path(dir, id);
    let path = path(dir, id);
    // A stale temporary file from a failed attempt in this process would
    // make `create` fail; it holds nothing of value.
    match storage.remove(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(temp, e, capacity)),
    }
    let file = storage
        .create(&temp)
        .map_err(|e| Error::io(&temp, e, capacity))?;
    let prepared = (|| {
        storage.allocate(&file, capacity)?;
        storage.write_at(&file, contents, 0)?;
        storage.sync_all(&file)
    })();
    if let Err(e) = prepared {
        // Best effort: the error that matters is the one being returned.
        let _ = storage.remove(&temp);
        return Err(Error::io(&temp, e, capacity));
    }
    if let Err(e) = storage.rename(&temp, &path) {
        let _ = storage.remove(&temp);
        return Err(Error::io(&path, e, capacity));
    }
    if let Err(e) = storage.sync_dir(dir) {
        // The rename may or may not be durable; remove the segment so that
        // the log, which stays on the old segment, matches the directory.
        let _ = storage.remove(&path);
        return Err(Error::io(dir, e, capacity));
    }
    Ok(Created {
        file,
        path,
        capacity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_id_and_round_trip() {
        let p = path(Path::new("/d"), SegmentId(42));
        assert_eq!(p, Path::new("/d/00000000000000000042.log"));
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_name(name, EXTENSION), Some(SegmentId(42)));
        assert_eq!(parse_name("42.log", EXTENSION), None);
        assert_eq!(parse_name("0000000000000000004x.log", EXTENSION), None);
        let max = path(Path::new(""), SegmentId(u64::MAX));
        let name = max.to_str().unwrap();
        assert_eq!(parse_name(name, EXTENSION), Some(SegmentId(u64::MAX)));
    }

    #[test]
    fn header_checks() {
        let id = SegmentId(3);
        let h = header(id);
        assert_eq!(&h[..8], b"HRLDLOG\0");
        assert_eq!(check_header(&h, id), Ok(()));
        assert!(check_header(&h, SegmentId(4)).is_err());
        assert!(check_header(&h[..23], id).is_err());
        let mut bad = h;
        bad[0] = b'X';
        assert!(check_header(&bad, id).unwrap_err().contains("magic"));
        let mut bad = h;
        bad[8] = 2;
        assert!(check_header(&bad, id).unwrap_err().contains("version 2"));
    }
}
