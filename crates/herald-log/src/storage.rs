//! The file operations the log performs that change something on disk,
//! behind a small trait so that tests can make any of them fail.
//!
//! [`StdStorage`] is the real thing (std plus `fallocate` from rustix);
//! [`FaultInjector`] wraps it and fails chosen operations on demand, which is
//! how the tests (and the server's tests) reach the disk-full and IO-error
//! paths without a full disk. Reads are not behind the trait: recovery reads
//! each segment with `std::fs::read`, and a failed read is simply an error.
//!
//! Every operation that changes the disk goes through the trait, the
//! group-commit fdatasync included: the fsync thread calls it through the
//! [`SyncTarget`](crate::SyncTarget) the log hands out, which carries the
//! log's storage.

use rustix::fs::FallocateFlags;
use rustix::io::Errno;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

/// The mutating file operations of the log. Every method has the standard
/// behaviour as its default, so an implementation overrides only what it
/// wants to change.
pub trait Storage: fmt::Debug + Send + Sync {
    /// Creates `path`, which must not exist, open for reading and writing.
    ///
    /// # Errors
    /// Any error from the operating system.
    fn create(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }

    /// Opens the existing file `path` for reading and writing.
    ///
    /// # Errors
    /// Any error from the operating system.
    fn open(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(path)
    }

    /// Reserves disk blocks for the first `len` bytes of `file`, growing it
    /// to `len` if shorter (`fallocate`). Where the filesystem cannot
    /// preallocate, only sets the length (the file is then sparse).
    ///
    /// # Errors
    /// Any error from the operating system; `ENOSPC` when the disk is full.
    fn allocate(&self, file: &File, len: u64) -> io::Result<()> {
        match rustix::fs::fallocate(file, FallocateFlags::empty(), 0, len) {
            Ok(()) => Ok(()),
            Err(e) if e == Errno::OPNOTSUPP || e == Errno::NOSYS => {
                if file.metadata()?.len() < len {
                    file.set_len(len)?;
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Truncates or extends `file` to `len` bytes.
    ///
    /// # Errors
    /// Any error from the operating system.
    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        file.set_len(len)
    }

    /// Writes all of `buf` at `offset` (`pwrite`, repeated if short).
    ///
    /// # Errors
    /// Any error from the operating system. Part of `buf` may have been
    /// written.
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(buf, offset)
    }

    /// `fdatasync`.
    ///
    /// # Errors
    /// Any error from the operating system.
    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    /// `fsync`, metadata included.
    ///
    /// # Errors
    /// Any error from the operating system.
    fn sync_all(&self, file: &File) -> io::Result<()> {
        file.sync_all()
    }

    /// Renames `from` to `to`, replacing `to` if it exists.
    ///
    /// # Errors
    /// Any error from the operating system.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    /// Removes the file `path`.
    ///
    /// # Errors
    /// Any error from the operating system.
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    /// `fsync`s the directory `dir`, making the creations, renames and
    /// removals of entries in it durable.
    ///
    /// # Errors
    /// Any error from the operating system.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// The standard file operations. What [`Log::open`](crate::Log::open) uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdStorage;

impl Storage for StdStorage {}

/// A [`Storage`] operation, to choose which one a [`FaultInjector`] fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// [`Storage::create`].
    Create,
    /// [`Storage::open`].
    Open,
    /// [`Storage::allocate`].
    Allocate,
    /// [`Storage::set_len`].
    SetLen,
    /// [`Storage::write_at`].
    Write,
    /// [`Storage::sync_data`].
    SyncData,
    /// [`Storage::sync_all`].
    SyncAll,
    /// [`Storage::rename`].
    Rename,
    /// [`Storage::remove`].
    Remove,
    /// [`Storage::sync_dir`].
    SyncDir,
}

/// A [`Storage`] that behaves like [`StdStorage`] except for the operations
/// told to fail. Clones share their settings, so a test keeps one clone and
/// gives another to the log.
#[derive(Debug, Clone, Default)]
pub struct FaultInjector {
    faults: Arc<Mutex<Vec<(Op, io::ErrorKind)>>>,
}

impl FaultInjector {
    /// A storage that fails nothing until told to.
    pub fn new() -> FaultInjector {
        FaultInjector::default()
    }

    /// Makes every later call of `op` fail with `kind` (for a full disk,
    /// [`io::ErrorKind::StorageFull`]) until [`heal`](Self::heal).
    pub fn fail(&self, op: Op, kind: io::ErrorKind) {
        let mut faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        faults.retain(|(o, _)| *o != op);
        faults.push((op, kind));
    }

    /// Stops failing every operation.
    pub fn heal(&self) {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn check(&self, op: Op) -> io::Result<()> {
        let faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        match faults.iter().find(|(o, _)| *o == op) {
            Some((_, kind)) => Err(io::Error::new(*kind, format!("injected {op:?} failure"))),
            None => Ok(()),
        }
    }
}

impl Storage for FaultInjector {
    fn create(&self, path: &Path) -> io::Result<File> {
        self.check(Op::Create)?;
        StdStorage.create(path)
    }
    fn open(&self, path: &Path) -> io::Result<File> {
        self.check(Op::Open)?;
        StdStorage.open(path)
    }
    fn allocate(&self, file: &File, len: u64) -> io::Result<()> {
        self.check(Op::Allocate)?;
        StdStorage.allocate(file, len)
    }
    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        self.check(Op::SetLen)?;
        StdStorage.set_len(file, len)
    }
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check(Op::Write)?;
        StdStorage.write_at(file, buf, offset)
    }
    fn sync_data(&self, file: &File) -> io::Result<()> {
        self.check(Op::SyncData)?;
        StdStorage.sync_data(file)
    }
    fn sync_all(&self, file: &File) -> io::Result<()> {
        self.check(Op::SyncAll)?;
        StdStorage.sync_all(file)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(Op::Rename)?;
        StdStorage.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.check(Op::Remove)?;
        StdStorage.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(Op::SyncDir)?;
        StdStorage.sync_dir(dir)
    }
}

/// Whether `err` means the disk (or the user's quota) is full.
pub(crate) fn is_full(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}
