//! Appending, writing, rotating, reopening, deleting, locking, and the
//! failure paths of each, on a temporary directory.

mod common;

use common::*;
use herald_log::{Error, HEADER_BYTES, Log, LogConfig, Lsn, Op, SegmentId};
use std::io::ErrorKind;

/// Runs each scenario once per backend.
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        mod std_storage {
            $(#[test] fn $scenario() { super::$scenario(super::Backend::Std) })*
        }
        mod fault_injector {
            $(#[test] fn $scenario() { super::$scenario(super::Backend::Faulty) })*
        }
    };
}

on_every_backend!(
    replay_yields_appended_records_across_rotations,
    written_but_unsynced_records_survive_reopen,
    reopen_appends_to_the_newest_segment,
    first_write_creates_the_first_segment,
    lsns_count_appended_and_written_bytes,
    oversized_batch_gets_a_bigger_segment,
    delete_segments_before_frees_older_segments,
    second_open_is_locked_until_drop,
);

fn replay_yields_appended_records_across_rotations(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, replayed, report) = open(backend, dir.path()).unwrap();
    assert!(replayed.is_empty());
    assert_eq!(report.segments, 0);
    let mut expected = Vec::new();
    append_range(&mut log, &mut expected, 0..300);
    log.sync().unwrap();
    let segments = log.segments();
    assert!(segments.len() >= 4, "only {} segments", segments.len());
    assert_eq!(log.current_segment(), Some(segments.last().unwrap().id));
    let total = log.total_bytes();
    drop(log);

    let (log, replayed, report) = open(backend, dir.path()).unwrap();
    assert_eq!(replayed, expected);
    assert_eq!(report.segments, segments.len());
    assert_eq!(report.records, expected.len() as u64);
    assert_eq!(report.bytes, total);
    assert_eq!(report.torn_tail, None);
    assert_eq!(log.segments(), segments);
}

fn written_but_unsynced_records_survive_reopen(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _, _) = open(backend, dir.path()).unwrap();
    let mut expected = Vec::new();
    append_range(&mut log, &mut expected, 0..100);
    // No sync: the page cache holds the last batches, as after `kill -9`.
    log.write().unwrap();
    drop(log);
    let (_, replayed, _) = open(backend, dir.path()).unwrap();
    assert_eq!(replayed, expected);
}

fn reopen_appends_to_the_newest_segment(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _, _) = open(backend, dir.path()).unwrap();
    let mut expected = Vec::new();
    append_range(&mut log, &mut expected, 0..60);
    log.sync().unwrap();
    let newest = log.current_segment();
    drop(log);

    let (mut log, replayed, _) = open(backend, dir.path()).unwrap();
    assert_eq!(replayed, expected);
    assert_eq!(log.current_segment(), newest);
    assert!(log.has_room(1));
    append_range(&mut log, &mut expected, 60..200);
    log.sync().unwrap();
    drop(log);

    let (_, replayed, report) = open(backend, dir.path()).unwrap();
    assert_eq!(replayed, expected);
    assert_eq!(report.torn_tail, None);
}

fn first_write_creates_the_first_segment(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _, _) = open(backend, dir.path()).unwrap();
    assert!(!log.has_room(0));
    assert_eq!(log.current_segment(), None);
    assert!(log.sync_target().is_none());
    assert_eq!(log.write().unwrap(), Lsn(0));
    assert!(segment_files(dir.path()).is_empty());

    log.append(&record(0));
    log.write().unwrap();
    assert_eq!(log.current_segment(), Some(SegmentId(1)));
    assert_eq!(
        log.segments()[0].path,
        dir.path().join("00000000000000000001.log")
    );
    drop(log);
    let (_, replayed, _) = open(backend, dir.path()).unwrap();
    assert_eq!(replayed, vec![record(0)]);
}

fn lsns_count_appended_and_written_bytes(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _, _) = open(backend, dir.path()).unwrap();
    let header = snapshot();
    log.rotate(&header, 0).unwrap();
    let header_bytes: u64 = header.iter().map(|r| len(r)).sum();
    assert_eq!(log.written(), Lsn(header_bytes));
    assert_eq!(log.appended(), Lsn(header_bytes));
    assert_eq!(log.total_bytes(), HEADER_BYTES + header_bytes);

    let a = log.append(&record(0));
    let b = log.append(&record(1));
    assert_eq!(a, Lsn(header_bytes + len(&record(0))));
    assert_eq!(b, Lsn(a.0 + len(&record(1))));
    assert_eq!(log.appended(), b);
    assert_eq!(log.written(), Lsn(header_bytes));
    assert_eq!(log.total_bytes(), HEADER_BYTES + b.0);

    assert_eq!(log.write().unwrap(), b);
    let target = log.sync_target().unwrap();
    assert_eq!(target.lsn(), b);
    assert_eq!(target.path(), log.segments().last().unwrap().path);
    // What the fsync thread does.
    target.sync().unwrap();
    assert_eq!(log.sync().unwrap(), b);
}

fn oversized_batch_gets_a_bigger_segment(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _, _) = open(backend, dir.path()).unwrap();
    let mut expected = Vec::new();
    append_range(&mut log, &mut expected, 0..10);
    let big: Vec<_> = (10..200).map(record).collect();
    let needed: u64 = big.iter().map(|r| len(r)).sum();
    assert!(needed > SEGMENT_BYTES);
    assert!(!log.has_room(needed));
    let header = snapshot();
    log.rotate(&header, needed).unwrap();
    expected.extend(header);
    assert!(log.has_room(needed));
    for c in big {
        log.append(&c);
        expected.push(c);
    }
    log.write().unwrap();
    let newest = segment_files(dir.path()).pop().unwrap();
    assert!(std::fs::metadata(&newest).unwrap().len() > SEGMENT_BYTES);
    drop(log);
    let (_, replayed, _) = open(backend, dir.path()).unwrap();
    assert_eq!(replayed, expected);
}

fn delete_segments_before_frees_older_segments(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _, _) = open(backend, dir.path()).unwrap();
    let mut expected = Vec::new();
    append_range(&mut log, &mut expected, 0..300);
    log.sync().unwrap();
    let segments = log.segments();
    assert!(segments.len() >= 4);
    let total = log.total_bytes();

    let keep_from = segments[2].id;
    let freed = log.delete_segments_before(keep_from).unwrap();
    assert_eq!(freed, segments[0].used_bytes + segments[1].used_bytes);
    assert_eq!(log.total_bytes(), total - freed);
    assert_eq!(log.segments(), segments[2..].to_vec());
    assert!(!segments[0].path.exists() && !segments[1].path.exists());

    // Even asked to, it never deletes the current segment.
    let current = log.current_segment().unwrap();
    log.delete_segments_before(SegmentId(u64::MAX)).unwrap();
    assert_eq!(log.segments().len(), 1);
    assert_eq!(log.current_segment(), Some(current));
    let remaining = log.segments()[0].used_bytes;
    assert_eq!(log.total_bytes(), remaining);
    drop(log);

    // The newest segment starts with the snapshot, then its own records.
    let (_, replayed, report) = open(backend, dir.path()).unwrap();
    assert_eq!(report.segments, 1);
    assert_eq!(&replayed[..3], &snapshot()[..]);
    assert!(expected.ends_with(&replayed));
}

fn second_open_is_locked_until_drop(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, _) = open(backend, dir.path()).unwrap();
    match open(backend, dir.path()) {
        Err(Error::Locked { dir: locked }) => assert_eq!(locked, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    let message = open(backend, dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("in use by another herald process"),
        "{message}"
    );
    drop(log);
    open(backend, dir.path()).unwrap();
}

#[test]
fn open_creates_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a/b/data");
    let (mut log, _) = Log::open(LogConfig::new(&data), |_| {
        Ok::<_, std::convert::Infallible>(())
    })
    .unwrap();
    assert_eq!(log.dir(), data);
    log.append(&record(0));
    log.sync().unwrap();
    // The default segment size is preallocated after the header (and the
    // snapshot, empty here).
    let file = segment_files(&data).pop().unwrap();
    assert_eq!(
        std::fs::metadata(file).unwrap().len(),
        herald_log::HEADER_BYTES + herald_log::DEFAULT_SEGMENT_BYTES
    );
}

#[test]
fn open_on_a_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    let err = open(Backend::Std, &file).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path == &file),
        "{err:?}"
    );
    assert!(err.to_string().contains("plain"));
}

#[test]
fn rotate_failures_leave_the_log_on_the_old_segment() {
    let failures = [
        (Op::Create, ErrorKind::StorageFull, true),
        (Op::Allocate, ErrorKind::StorageFull, true),
        (Op::Allocate, ErrorKind::QuotaExceeded, true),
        (Op::Write, ErrorKind::StorageFull, true),
        (Op::SyncAll, ErrorKind::Other, false),
        (Op::Rename, ErrorKind::PermissionDenied, false),
        (Op::SyncDir, ErrorKind::Other, false),
    ];
    for (op, kind, full) in failures {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, faults, _) = open_faulty(dir.path());
        let mut expected = Vec::new();
        append_range(&mut log, &mut expected, 0..20);
        log.write().unwrap();
        let before = log.segments();
        let files_before = file_names(dir.path());

        // Buffered records are written to the old segment before the
        // failure and stay there. (For `Write`, the failure must hit the
        // new segment's first write, so the buffer is written first.)
        log.append(&record(20));
        expected.push(record(20));
        if op == Op::Write {
            log.write().unwrap();
        }
        faults.fail(op, kind);
        let err = log.rotate(snapshot(), 100).unwrap_err();
        match (&err, full) {
            (Error::Full { needed }, true) => assert!(*needed >= SEGMENT_BYTES),
            (Error::Io { .. }, false) => {}
            _ => panic!("{op:?}/{kind:?}: unexpected {err:?}"),
        }
        assert_eq!(log.appended(), log.written(), "{op:?}");
        assert_eq!(log.current_segment(), before.last().map(|s| s.id));
        assert_eq!(file_names(dir.path()), files_before, "{op:?}: stray files");

        // The log keeps working on the old segment, and rotates once healed.
        faults.heal();
        append(&mut log, &mut expected, record(21));
        log.write().unwrap();
        let header = snapshot();
        log.rotate(&header, 0).unwrap();
        expected.extend(header);
        append_range(&mut log, &mut expected, 22..40);
        log.sync().unwrap();
        drop(log);
        let (_, replayed, _) = open(Backend::Std, dir.path()).unwrap();
        assert_eq!(replayed, expected, "{op:?}");
    }
}

#[test]
fn failed_write_keeps_the_buffer_for_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, faults, _) = open_faulty(dir.path());
    let mut expected = Vec::new();
    append_range(&mut log, &mut expected, 0..10);
    log.write().unwrap();
    let written = log.written();
    append(&mut log, &mut expected, record(10));
    faults.fail(Op::Write, ErrorKind::Other);
    assert!(matches!(log.write(), Err(Error::Io { .. })));
    assert_eq!(log.written(), written);
    assert!(log.appended() > written);
    faults.heal();
    assert_eq!(log.write().unwrap(), log.appended());
    drop(log);
    let (_, replayed, _) = open(Backend::Std, dir.path()).unwrap();
    assert_eq!(replayed, expected);
}

#[test]
fn failed_write_past_the_preallocation_on_a_full_disk_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, faults, _) = open_faulty(dir.path());
    log.append(&record(0));
    faults.fail(Op::Write, ErrorKind::StorageFull);
    assert!(matches!(log.write(), Err(Error::Full { .. })));
}

#[test]
fn failed_sync_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, faults, _) = open_faulty(dir.path());
    log.append(&record(0));
    faults.fail(Op::SyncData, ErrorKind::Other);
    let err = log.sync().unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path.ends_with("00000000000000000001.log")),
        "{err:?}"
    );
}

/// The group-commit sync goes through the log's storage, so a failing
/// disk reaches the fsync thread (which must then acknowledge nothing).
#[test]
fn sync_target_syncs_through_the_storage() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, faults, _) = open_faulty(dir.path());
    log.append(&record(0));
    log.write().unwrap();
    let target = log.sync_target().unwrap();
    target.sync().unwrap();
    faults.fail(Op::SyncData, ErrorKind::Other);
    let err = target.sync().unwrap_err();
    assert!(err.to_string().contains("injected SyncData"), "{err}");
    // The handle shares the log's storage: taken before the fault was
    // armed, it failed above; it works again once the storage does.
    let later = log.sync_target().unwrap();
    assert!(later.sync().is_err());
    faults.heal();
    target.sync().unwrap();
    later.sync().unwrap();
}

#[test]
fn failed_delete_keeps_the_segments_it_could_not_remove() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, faults, _) = open_faulty(dir.path());
    let mut expected = Vec::new();
    append_range(&mut log, &mut expected, 0..200);
    log.sync().unwrap();
    let segments = log.segments();
    faults.fail(Op::Remove, ErrorKind::PermissionDenied);
    assert!(log.delete_segments_before(segments[2].id).is_err());
    assert_eq!(log.segments(), segments);
    faults.heal();
    assert!(log.delete_segments_before(segments[2].id).unwrap() > 0);
    assert_eq!(log.segments(), segments[2..].to_vec());
}

#[test]
fn leftover_temporary_segment_is_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _, _) = open(Backend::Std, dir.path()).unwrap();
    let mut expected = Vec::new();
    append_range(&mut log, &mut expected, 0..20);
    log.sync().unwrap();
    drop(log);
    // What a crash between creating and renaming a segment leaves.
    let temp = dir.path().join("00000000000000000002.log.tmp");
    std::fs::write(&temp, b"HRLD").unwrap();

    let (replayed, _) = scan(dir.path()).unwrap();
    assert_eq!(replayed, expected);
    assert!(temp.exists(), "scan must not modify the directory");
    let (_, replayed, _) = open(Backend::Std, dir.path()).unwrap();
    assert_eq!(replayed, expected);
    assert!(!temp.exists());
}

#[test]
fn scan_of_a_missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    assert!(matches!(scan(&missing), Err(Error::Io { path, .. }) if path == missing));
}

#[test]
fn dir_lock_excludes_an_open_log() {
    let dir = tempfile::tempdir().unwrap();
    let lock = herald_log::DirLock::try_acquire(dir.path()).unwrap();
    assert!(matches!(
        open(Backend::Std, dir.path()),
        Err(Error::Locked { .. })
    ));
    drop(lock);
    let (_log, _, _) = open(Backend::Std, dir.path()).unwrap();
    assert!(matches!(
        herald_log::DirLock::try_acquire(dir.path()),
        Err(Error::Locked { .. })
    ));
}

#[test]
fn log_can_move_to_the_broker_thread() {
    fn is_send<T: Send>() {}
    is_send::<Log>();
}
