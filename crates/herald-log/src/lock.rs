//! The exclusive lock on a data directory.

use crate::Error;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// An exclusive advisory lock (`flock`) on `<dir>/LOCK`, held until dropped.
/// [`Log::open`](crate::Log::open) takes one for the log's lifetime; tools
/// that only read the directory (`herald dump`) can take one to refuse to
/// read the directory of a running broker.
///
/// The lock belongs to the open file, so it is released when the process
/// dies, even by `kill -9`: a stale `LOCK` file never blocks a restart.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    dir: PathBuf,
}

impl DirLock {
    /// Takes the lock on `dir` without waiting, creating `dir/LOCK` if needed.
    ///
    /// # Errors
    /// [`Error::Locked`] if another `DirLock` (in this or another process)
    /// holds it, [`Error::Io`] if the lock file cannot be opened.
    pub fn try_acquire(dir: &Path) -> Result<DirLock, Error> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock {
                _file: file,
                dir: dir.to_path_buf(),
            }),
            Err(TryLockError::WouldBlock) => Err(Error::Locked {
                dir: dir.to_path_buf(),
            }),
            Err(TryLockError::Error(source)) => Err(Error::Io { path, source }),
        }
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
