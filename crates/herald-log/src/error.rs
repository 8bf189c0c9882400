//! The errors of the log, shaped for callers to branch on.

use crate::storage::is_full;
use std::io;
use std::path::PathBuf;

/// What went wrong in the log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory operated on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A segment holds bytes that are not a valid record and are not a torn
    /// tail (see the tail rule in the crate docs). Nothing is dropped
    /// silently: the operator decides.
    #[error("corrupt log segment {} at offset {offset}: {reason}", segment.display())]
    Corrupt {
        /// The segment file.
        segment: PathBuf,
        /// Byte offset of the bad record (0 for a bad header).
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// Another process holds the lock on the data directory.
    #[error("data directory {} is in use by another herald process", dir.display())]
    Locked {
        /// The data directory.
        dir: PathBuf,
    },
    /// The disk (or quota) is full: a new segment could not be allocated, or
    /// a write past the preallocated end of a segment failed.
    #[error("log disk is full: could not allocate {needed} bytes")]
    Full {
        /// Bytes the failed operation tried to allocate or write.
        needed: u64,
    },
}

impl Error {
    /// `Io` for `path`, or `Full` if `source` says the disk is full.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error, needed: u64) -> Error {
        if is_full(&source) {
            Error::Full { needed }
        } else {
            Error::Io {
                path: path.into(),
                source,
            }
        }
    }
}
