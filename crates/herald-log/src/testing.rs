//! Storage for tests: [`PowerLoss`], a [`Storage`] that can lose power.
//!
//! A power cut loses what the operating system had not written to the
//! disk: every byte written to a file since its last fdatasync or fsync,
//! and every directory entry created or renamed since its directory's last
//! fsync. [`PowerLoss`] wraps [`StdStorage`], remembers what each file
//! held when it was last synced (an undo record of the old bytes of every
//! write and length change since then) and which directory entries are not
//! durable yet, and on a cut puts the files back to that state. Jepsen's
//! LazyFS does the same below a real filesystem; this does it above one, so
//! it needs no mount and runs in any test.
//!
//! After the cut the machine is off: every later operation fails with an
//! IO error, so the code under test cannot write anything more, and a test
//! then recovers the directory with a fresh [`Log::open`](crate::Log::open),
//! as after a reboot.
//!
//! Simplifications, each chosen because the log does not depend on the
//! difference:
//! - Removals are durable at once (the log fsyncs the directory right after
//!   each one, and a removed segment coming back is harmless to recovery
//!   only if it is the oldest, which is what the log removes).
//! - A rename over an existing file is undone as if the target had not
//!   existed (the log only renames to fresh names).
//! - Lengths set by `set_len` and `allocate` are undone like data, whether
//!   fdatasync would have kept them or not: both syncs count as full syncs.
//! - A file seen for the first time (opened, not created, through this
//!   storage) is durable as it is: the test starts from a synced state.
//! - Writes are lost whole, newest first, except for the
//!   [`keep_unsynced_bytes`](PowerLoss::keep_unsynced_bytes) first bytes
//!   written to each file since its last sync, which survive: an ordered
//!   write-back cut short, the shape of a torn tail. (A disk that writes
//!   pages out of order can persist a later page without an earlier one;
//!   the tail rule reports that as corruption on purpose, so it is not
//!   modelled here.)
//! - Operations are serialised by one lock, so a cut never races a write.

use crate::storage::{StdStorage, Storage};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A [`Storage`] that loses power on demand (see the module docs). Clones
/// share one machine, so a test keeps a clone to cut the power of the one
/// it gave to the log.
#[derive(Debug, Clone, Default)]
pub struct PowerLoss {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// Operations started so far, the failed ones included.
    ops: u64,
    /// The operation (counted from 0) that finds the power off.
    cut_at: Option<u64>,
    /// Bytes of each file's unsynced writes that survive a cut.
    keep_bytes: u64,
    off: bool,
    /// Files seen, by device and inode.
    files: HashMap<(u64, u64), Tracked>,
    /// Directory entries created or renamed since their directory's last
    /// sync, oldest first.
    entries: Vec<EntryChange>,
}

#[derive(Debug)]
struct Tracked {
    /// A handle of our own, so the file can be restored whatever its name.
    handle: File,
    /// What to undo to get back to the last sync, oldest first.
    undo: Vec<Undo>,
}

#[derive(Debug)]
enum Undo {
    /// `len` bytes were written at `offset`; `old` held the bytes they
    /// replaced (only those below `len_before`, the file's length then).
    Write {
        offset: u64,
        len: u64,
        old: Vec<u8>,
        len_before: u64,
    },
    /// The length changed from `len_before`; `cut` holds the bytes a
    /// shrink removed.
    Len { len_before: u64, cut: Vec<u8> },
}

#[derive(Debug)]
enum EntryChange {
    Created(PathBuf),
    Renamed { from: PathBuf, to: PathBuf },
}

impl EntryChange {
    fn dir(&self) -> Option<&Path> {
        match self {
            EntryChange::Created(path) | EntryChange::Renamed { to: path, .. } => path.parent(),
        }
    }
}

fn off_error() -> io::Error {
    io::Error::other("power cut: the machine is off")
}

fn key(file: &File) -> io::Result<(u64, u64)> {
    let meta = file.metadata()?;
    Ok((meta.dev(), meta.ino()))
}

impl PowerLoss {
    /// A machine with power, whose files are durable as they are now.
    pub fn new() -> PowerLoss {
        PowerLoss::default()
    }

    /// Cuts the power when operation `n` (counted from 0 over every call
    /// of a [`Storage`] method) starts: operations `0..n` happen, `n` and
    /// every later one fail. Deterministic, so a test can pick `n` at
    /// random and replay a failure.
    pub fn cut_at_op(&self, n: u64) -> &PowerLoss {
        let mut state = self.lock();
        state.cut_at = Some(n);
        if state.ops >= n && !state.off {
            state.cut();
        }
        drop(state);
        self
    }

    /// At the cut, the first `bytes` bytes written to each file since its
    /// last sync survive (the last of them may end inside a record): a
    /// write-back that got that far. 0 (the default) loses every unsynced
    /// byte.
    pub fn keep_unsynced_bytes(&self, bytes: u64) -> &PowerLoss {
        self.lock().keep_bytes = bytes;
        self
    }

    /// Cuts the power now (if it is still on).
    pub fn cut(&self) {
        let mut state = self.lock();
        if !state.off {
            state.cut();
        }
    }

    /// Whether the power is off.
    pub fn is_cut(&self) -> bool {
        self.lock().off
    }

    /// Operations started so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in a test thread must not hide the state from the others.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an operation, cutting the power if this is the one; `Err`
    /// once the power is off.
    fn start(&self) -> io::Result<MutexGuard<'_, State>> {
        let mut state = self.lock();
        let n = state.ops;
        state.ops += 1;
        if !state.off && state.cut_at.is_some_and(|at| n >= at) {
            state.cut();
        }
        if state.off {
            return Err(off_error());
        }
        Ok(state)
    }
}

impl State {
    fn track(&mut self, file: &File) -> io::Result<&mut Tracked> {
        match self.files.entry(key(file)?) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => Ok(entry.insert(Tracked {
                handle: file.try_clone()?,
                undo: Vec::new(),
            })),
        }
    }

    /// Puts every file and directory entry back as of its last sync, and
    /// turns the machine off. Best effort: the test's checks will notice
    /// if a restore failed.
    fn cut(&mut self) {
        self.off = true;
        let keep = self.keep_bytes;
        for tracked in self.files.values_mut() {
            if let Err(e) = tracked.restore(keep) {
                tracing::error!(cause = %e, "power cut: could not restore a file");
            }
        }
        self.files.clear();
        while let Some(change) = self.entries.pop() {
            let undone = match &change {
                EntryChange::Created(path) => match std::fs::remove_file(path) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    other => other,
                },
                EntryChange::Renamed { from, to } => std::fs::rename(to, from),
            };
            if let Err(e) = undone {
                tracing::error!(cause = %e, ?change, "power cut: could not undo an entry");
            }
        }
    }
}

impl Tracked {
    /// Reverts every change since the last sync, except the first
    /// `keep` bytes written.
    fn restore(&mut self, keep: u64) -> io::Result<()> {
        // How much of each write survives: writes reach the disk in order.
        let mut budget = keep;
        let mut kept = Vec::with_capacity(self.undo.len());
        for undo in &self.undo {
            kept.push(match undo {
                Undo::Write { len, .. } => {
                    let k = budget.min(*len);
                    budget -= k;
                    k
                }
                Undo::Len { .. } => 0,
            });
        }
        for (undo, kept) in self.undo.iter().zip(kept).rev() {
            match undo {
                Undo::Write {
                    offset,
                    len,
                    old,
                    len_before,
                } => {
                    if kept == *len {
                        continue;
                    }
                    // Bytes [offset + kept, offset + len) go back to what
                    // they were, or away if the write had grown the file.
                    if let Some(old_rest) = old.get(kept as usize..) {
                        self.handle.write_all_at(old_rest, offset + kept)?;
                    }
                    if offset + len > *len_before {
                        self.handle.set_len((*len_before).max(offset + kept))?;
                    }
                }
                Undo::Len { len_before, cut } => {
                    self.handle.set_len(*len_before)?;
                    if !cut.is_empty() {
                        self.handle
                            .write_all_at(cut, len_before - cut.len() as u64)?;
                    }
                }
            }
        }
        self.undo.clear();
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.handle.metadata()?.len())
    }

    /// Remembers the bytes `[from, to)` (within the file) before they change.
    fn read(&self, from: u64, to: u64) -> io::Result<Vec<u8>> {
        let mut old = vec![0; to.saturating_sub(from) as usize];
        self.handle.read_exact_at(&mut old, from)?;
        Ok(old)
    }

    /// Records the undo of a length change to `new_len`.
    fn before_set_len(&mut self, new_len: u64) -> io::Result<()> {
        let len_before = self.len()?;
        let cut = self.read(new_len.min(len_before), len_before)?;
        self.undo.push(Undo::Len { len_before, cut });
        Ok(())
    }
}

impl Storage for PowerLoss {
    fn create(&self, path: &Path) -> io::Result<File> {
        let mut state = self.start()?;
        let file = StdStorage.create(path)?;
        state.track(&file)?;
        state.entries.push(EntryChange::Created(path.to_path_buf()));
        Ok(file)
    }

    fn open(&self, path: &Path) -> io::Result<File> {
        let mut state = self.start()?;
        let file = StdStorage.open(path)?;
        state.track(&file)?;
        Ok(file)
    }

    fn allocate(&self, file: &File, len: u64) -> io::Result<()> {
        let mut state = self.start()?;
        let tracked = state.track(file)?;
        if tracked.len()? < len {
            tracked.before_set_len(len)?;
        }
        StdStorage.allocate(file, len)
    }

    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        let mut state = self.start()?;
        state.track(file)?.before_set_len(len)?;
        StdStorage.set_len(file, len)
    }

    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut state = self.start()?;
        let tracked = state.track(file)?;
        let len_before = tracked.len()?;
        let len = buf.len() as u64;
        let old = tracked.read(offset.min(len_before), (offset + len).min(len_before))?;
        tracked.undo.push(Undo::Write {
            offset,
            len,
            old,
            len_before,
        });
        StdStorage.write_at(file, buf, offset)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        let mut state = self.start()?;
        StdStorage.sync_data(file)?;
        state.track(file)?.undo.clear();
        Ok(())
    }

    fn sync_all(&self, file: &File) -> io::Result<()> {
        let mut state = self.start()?;
        StdStorage.sync_all(file)?;
        state.track(file)?.undo.clear();
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.start()?;
        StdStorage.rename(from, to)?;
        state.entries.push(EntryChange::Renamed {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        });
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let _state = self.start()?;
        StdStorage.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.start()?;
        StdStorage.sync_dir(dir)?;
        state.entries.retain(|change| change.dir() != Some(dir));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage_in(dir: &Path) -> (PowerLoss, PathBuf) {
        (PowerLoss::new(), dir.join("f"))
    }

    #[test]
    fn unsynced_writes_and_lengths_are_lost_synced_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (power, path) = storage_in(dir.path());
        let file = power.create(&path).unwrap();
        power.sync_dir(dir.path()).unwrap();
        power.write_at(&file, b"hello", 0).unwrap();
        power.sync_data(&file).unwrap();
        power.write_at(&file, b"J", 0).unwrap();
        power.write_at(&file, b", world", 5).unwrap();
        power.allocate(&file, 100).unwrap();
        power.write_at(&file, b"!", 50).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 100);
        power.cut();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
    }

    #[test]
    fn a_shrink_since_the_last_sync_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let (power, path) = storage_in(dir.path());
        std::fs::write(&path, b"0123456789").unwrap();
        let file = power.open(&path).unwrap();
        power.set_len(&file, 4).unwrap();
        power.allocate(&file, 8).unwrap();
        power.write_at(&file, b"ab", 4).unwrap();
        power.cut();
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456789");
    }

    #[test]
    fn the_first_unsynced_bytes_can_survive() {
        let dir = tempfile::tempdir().unwrap();
        let (power, path) = storage_in(dir.path());
        std::fs::write(&path, [0; 8]).unwrap();
        let file = power.open(&path).unwrap();
        power.keep_unsynced_bytes(3);
        power.write_at(&file, b"ab", 0).unwrap();
        power.write_at(&file, b"cd", 2).unwrap();
        power.write_at(&file, b"efgh", 6).unwrap();
        power.cut();
        assert_eq!(std::fs::read(&path).unwrap(), b"abc\0\0\0\0\0");
    }

    #[test]
    fn entries_need_a_directory_sync() {
        let dir = tempfile::tempdir().unwrap();
        let power = PowerLoss::new();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        let file = power.create(&a).unwrap();
        power.write_at(&file, b"x", 0).unwrap();
        power.sync_all(&file).unwrap();
        power.sync_dir(dir.path()).unwrap();
        power.rename(&a, &b).unwrap();
        power.create(&c).unwrap();
        power.cut();
        assert_eq!(std::fs::read(&a).unwrap(), b"x");
        assert!(!b.exists() && !c.exists());
    }

    #[test]
    fn after_the_cut_every_operation_fails() {
        let dir = tempfile::tempdir().unwrap();
        let (power, path) = storage_in(dir.path());
        let file = power.create(&path).unwrap();
        power.cut_at_op(3);
        power.write_at(&file, b"a", 0).unwrap();
        power.sync_data(&file).unwrap();
        assert!(!power.is_cut());
        assert!(power.write_at(&file, b"b", 1).is_err());
        assert!(power.is_cut());
        assert!(power.sync_data(&file).is_err());
        assert!(power.open(&path).is_err());
        assert!(power.sync_dir(dir.path()).is_err());
        assert_eq!(power.ops(), 7);
        // Created but its directory never synced: the file is gone.
        assert!(!path.exists());
    }
}
