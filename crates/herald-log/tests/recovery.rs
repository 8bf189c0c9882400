//! Crash and corruption tests: torn tails at every byte offset, flipped
//! bytes, bad headers, missing segments (raft-engine's recovery tests).

mod common;

use common::*;
use herald_log::{Error, SegmentId};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Writes 300 records over several segments, synced, and returns what
/// replay must yield and the newest segment file.
fn populated(dir: &Path) -> (Vec<Record>, PathBuf) {
    let (mut log, _, _) = open(Backend::Std, dir).unwrap();
    let mut expected = Vec::new();
    append_range(&mut log, &mut expected, 0..300);
    log.sync().unwrap();
    assert!(log.segments().len() >= 4);
    let newest = log.segments().pop().unwrap().path;
    (expected, newest)
}

/// How a crash damaged the end of the newest segment.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// The file ends at the cut (as on a filesystem without preallocation).
    Truncate,
    /// Zeros from the cut on (a preallocated file whose last pages were not
    /// written back).
    Zero,
    /// Garbage from the cut to the end of the written records.
    Garbage,
}

fn damage(path: &Path, cut: Cut, at: u64, used_end: u64) {
    let mut data = std::fs::read(path).unwrap();
    match cut {
        Cut::Truncate => data.truncate(at as usize),
        Cut::Zero => data[at as usize..].fill(0),
        Cut::Garbage => data[at as usize..used_end as usize].fill(0xa5),
    }
    std::fs::write(path, data).unwrap();
}

#[test]
fn torn_tail_at_every_offset_recovers_the_intact_prefix() {
    let original = tempfile::tempdir().unwrap();
    let (expected, newest) = populated(original.path());
    let records = record_offsets(&newest);
    assert!(records.len() >= 6);
    let in_newest = records.len();
    let before_newest = expected.len() - in_newest;
    let tail = &records[in_newest - 4..];
    let used_end = tail.last().unwrap().1;
    let name = newest.file_name().unwrap();
    let bytes = std::fs::read(&newest).unwrap();

    for cut in [Cut::Truncate, Cut::Zero, Cut::Garbage] {
        for at in tail[0].0..=used_end {
            let dir = tempfile::tempdir().unwrap();
            copy_segments(original.path(), dir.path());
            let path = dir.path().join(name);
            damage(&path, cut, at, used_end);

            // Records that end at or before the cut are intact (and with
            // `Zero`, one whose bytes after the cut were zeros already, like
            // the high bytes of a small seq); the first other one is where
            // a torn tail starts.
            let unchanged = |r: &(u64, u64)| {
                matches!(cut, Cut::Zero) && bytes[at as usize..r.1 as usize].iter().all(|&b| b == 0)
            };
            let intact = records.iter().filter(|r| r.1 <= at || unchanged(r)).count();
            let first_damaged = records.get(intact).map(|r| r.0);
            let want = &expected[..before_newest + intact];

            let (replayed, report) = scan(dir.path()).unwrap();
            assert_eq!(
                replayed.len(),
                want.len(),
                "{cut:?} at {at}: scan {records:?}"
            );
            assert_eq!(replayed, want, "{cut:?} at {at}: scan");
            let (mut log, replayed, report_open) =
                open(Backend::Std, dir.path()).unwrap_or_else(|e| panic!("{cut:?} at {at}: {e}"));
            assert_eq!(replayed, want, "{cut:?} at {at}");
            assert_eq!(report, report_open, "{cut:?} at {at}");
            let inside_record = first_damaged.is_some_and(|start| start < at);
            let garbage_at_boundary = matches!(cut, Cut::Garbage) && at < used_end;
            if inside_record || garbage_at_boundary {
                assert_eq!(
                    report.torn_tail,
                    Some((path.clone(), first_damaged.unwrap())),
                    "{cut:?} at {at}"
                );
            } else {
                assert_eq!(report.torn_tail, None, "{cut:?} at {at}");
            }

            // Appending resumes right after the intact prefix.
            let mut want = want.to_vec();
            append(&mut log, &mut want, record(1000));
            log.sync().unwrap();
            drop(log);
            let (_, replayed, report) = open(Backend::Std, dir.path()).unwrap();
            assert_eq!(replayed, want, "{cut:?} at {at}: after append");
            assert_eq!(report.torn_tail, None, "{cut:?} at {at}: after append");
        }
    }
}

#[test]
fn scan_reports_a_torn_tail_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_, newest) = populated(dir.path());
    let last = *record_offsets(&newest).last().unwrap();
    // The frame header reached the disk, the payload (whose first byte is
    // never zero) did not.
    damage(&newest, Cut::Zero, last.0 + 8, last.1);
    std::fs::remove_file(dir.path().join(herald_log::LOCK_FILE)).unwrap();
    let before = std::fs::read(&newest).unwrap();
    let (_, report) = scan(dir.path()).unwrap();
    assert_eq!(report.torn_tail, Some((newest.clone(), last.0)));
    assert_eq!(std::fs::read(&newest).unwrap(), before);
    assert_eq!(
        file_names(dir.path()).len(),
        segment_files(dir.path()).len()
    );
}

fn assert_corrupt(result: Result<impl std::fmt::Debug, Error>, segment: &Path, offset: u64) {
    match result {
        Err(Error::Corrupt {
            segment: s,
            offset: o,
            reason,
        }) => {
            assert_eq!((s.as_path(), o), (segment, offset), "{reason}");
        }
        other => panic!(
            "expected Corrupt at {} {offset}, got {other:?}",
            segment.display()
        ),
    }
}

/// Flips a byte in an early record of the newest segment at each position
/// of the record (length, checksum, kind, fields): open and scan both stop
/// with `Corrupt` at that record, because valid records follow it.
#[test]
fn flipped_byte_mid_log_is_corrupt() {
    let original = tempfile::tempdir().unwrap();
    let (_, newest) = populated(original.path());
    let records = record_offsets(&newest);
    let (start, end) = records[1];
    for at in start..end {
        let dir = tempfile::tempdir().unwrap();
        copy_segments(original.path(), dir.path());
        let path = dir.path().join(newest.file_name().unwrap());
        flip_byte(&path, at);
        assert_corrupt(scan(dir.path()), &path, start);
        assert_corrupt(open(Backend::Std, dir.path()), &path, start);
    }
}

#[test]
fn flipped_byte_in_an_older_segment_is_corrupt_even_in_its_last_record() {
    let original = tempfile::tempdir().unwrap();
    populated(original.path());
    let oldest = segment_files(original.path())[0].clone();
    let records = record_offsets(&oldest);
    for (start, end) in [records[2], *records.last().unwrap()] {
        let dir = tempfile::tempdir().unwrap();
        copy_segments(original.path(), dir.path());
        let path = dir.path().join(oldest.file_name().unwrap());
        flip_byte(&path, (start + end) / 2);
        assert_corrupt(scan(dir.path()), &path, start);
        let err = open(Backend::Std, dir.path()).unwrap_err();
        assert!(err.to_string().contains("not a torn tail"), "{err}");
        assert_corrupt(Err::<(), _>(err), &path, start);
    }
}

#[test]
fn truncated_older_segment_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path());
    let oldest = segment_files(dir.path())[0].clone();
    let last = *record_offsets(&oldest).last().unwrap();
    damage(&oldest, Cut::Truncate, last.1 - 1, last.1);
    assert_corrupt(open(Backend::Std, dir.path()), &oldest, last.0);
}

/// A zeroed block in the middle of the records (a disk losing a sector)
/// looks like the normal end of the records, except that data follows.
#[test]
fn zeroed_block_mid_log_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (_, newest) = populated(dir.path());
    let records = record_offsets(&newest);
    let mut data = std::fs::read(&newest).unwrap();
    data[records[1].0 as usize..records[2].1 as usize].fill(0);
    std::fs::write(&newest, data).unwrap();
    assert_corrupt(open(Backend::Std, dir.path()), &newest, records[1].0);
}

#[test]
fn bad_header_is_corrupt_at_offset_zero() {
    for (at, value, reason) in [
        (0, b'X', "magic"),
        (8, 2, "version 2"),
        (16, 9, "names segment"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (_, newest) = populated(dir.path());
        let mut data = std::fs::read(&newest).unwrap();
        data[at] = value;
        std::fs::write(&newest, data).unwrap();
        let err = open(Backend::Std, dir.path()).unwrap_err();
        assert!(err.to_string().contains(reason), "{err}");
        assert_corrupt(Err::<(), _>(err), &newest, 0);
    }
}

#[test]
fn short_segment_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (_, newest) = populated(dir.path());
    std::fs::write(&newest, b"HRLDLOG\0").unwrap();
    assert_corrupt(open(Backend::Std, dir.path()), &newest, 0);
}

#[test]
fn missing_segment_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path());
    let files = segment_files(dir.path());
    std::fs::remove_file(&files[1]).unwrap();
    let err = open(Backend::Std, dir.path()).unwrap_err();
    assert!(err.to_string().contains("segment 2 is missing"), "{err}");
    assert_corrupt(Err::<(), _>(err), &files[2], 0);

    // Deleting from the front, as compaction does, is fine.
    std::fs::remove_file(&files[0]).unwrap();
    let (log, _, report) = open(Backend::Std, dir.path()).unwrap();
    assert_eq!(report.segments, files.len() - 2);
    assert_eq!(log.segments()[0].id, SegmentId(3));
}

#[test]
fn other_files_in_the_directory_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (expected, _) = populated(dir.path());
    std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    std::fs::write(dir.path().join("1.log"), b"not twenty digits").unwrap();
    let (_, replayed, _) = open(Backend::Std, dir.path()).unwrap();
    assert_eq!(replayed, expected);
}

#[test]
fn torn_tail_warning_names_the_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (_, newest) = populated(dir.path());
    let last = *record_offsets(&newest).last().unwrap();
    damage(&newest, Cut::Truncate, last.1 - 1, last.1);

    let output = Arc::new(Mutex::new(Vec::new()));
    let writer = Arc::clone(&output);
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || Capture(Arc::clone(&writer)))
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        // Another test thread may have registered the warning's callsite
        // while no subscriber listened, caching "never"; ask again.
        tracing::callsite::rebuild_interest_cache();
        open(Backend::Std, dir.path()).unwrap()
    });
    let output = String::from_utf8(output.lock().unwrap().clone()).unwrap();
    assert!(output.contains("WARN"), "{output}");
    assert!(output.contains(&newest.display().to_string()), "{output}");
    assert!(output.contains(&format!("offset={}", last.0)), "{output}");
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The replay callback decides what a payload means: an error from it stops
/// recovery with `Corrupt` at that record's file and offset, even for the
/// last record of the newest segment (its checksum matched, so no crash
/// explains it), after replaying every record before it.
#[test]
fn payload_rejected_by_replay_is_corrupt_at_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let (expected, newest) = populated(dir.path());
    let records = record_offsets(&newest);
    // The last record, and the first after the segment's snapshot (whose
    // records repeat in every segment).
    let first = expected.len() - records.len();
    for (nth, reject) in [(records.len() - 1, expected.len() - 1), (3, first + 3)] {
        let bad = expected[reject].clone();
        let mut replayed = Vec::new();
        let result = herald_log::Log::scan(dir.path(), |payload| {
            if payload == bad.as_slice() {
                return Err(format!("no such kind {}", payload[0]));
            }
            replayed.push(payload.to_vec());
            Ok(())
        });
        let err = result.unwrap_err();
        assert!(err.to_string().contains("no such kind"), "{err}");
        assert_corrupt(Err::<(), _>(err), &newest, records[nth].0);
        assert_eq!(replayed, expected[..reject]);
    }
    let err = herald_log::Log::open(config(dir.path()), |_| Err("nope")).unwrap_err();
    assert_corrupt(
        Err::<(), _>(err),
        &segment_files(dir.path())[0],
        herald_log::HEADER_BYTES,
    );
}

/// The tail rule checks frames only: the log stores any non-empty bytes,
/// whatever their first byte (there is no record kind at this level).
#[test]
fn any_payload_bytes_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _, _) = open(Backend::Std, dir.path()).unwrap();
    let payloads: Vec<Record> = vec![
        vec![0],
        vec![0xff; 3],
        vec![0, 0, 0, 0, 0, 0, 0, 0, 1],
        (0..=255).collect(),
    ];
    let mut expected = Vec::new();
    for p in &payloads {
        append(&mut log, &mut expected, p.clone());
    }
    // The encode-in-place variant frames exactly like `append`.
    let lsn = log.append_with(|buf| buf.extend_from_slice(b"in place"));
    expected.push(b"in place".to_vec());
    assert_eq!(lsn, log.appended());
    log.sync().unwrap();
    drop(log);
    let (_, replayed, report) = open(Backend::Std, dir.path()).unwrap();
    assert_eq!(replayed, expected);
    assert_eq!(report.torn_tail, None);
}

/// `scan_bytes` is the file scanner without the file: on a segment's
/// contents it finds what `Log::scan` finds in the file.
#[test]
fn scan_bytes_agrees_with_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (expected, newest) = populated(dir.path());
    let last = *record_offsets(&newest).last().unwrap();
    damage(&newest, Cut::Truncate, last.1 - 1, last.1);
    let (replayed, report) = scan(dir.path()).unwrap();
    assert_eq!(replayed, expected[..expected.len() - 1]);

    let data = std::fs::read(&newest).unwrap();
    let id = SegmentId(segment_files(dir.path()).len() as u64);
    let mut in_newest = Vec::new();
    let scanned =
        herald_log::scan_bytes(&newest, id, &data, true, collect(&mut in_newest)).unwrap();
    assert_eq!(scanned.torn_at, Some(last.0));
    assert_eq!(report.torn_tail, Some((newest.clone(), last.0)));
    assert_eq!(scanned.end, last.0);
    assert!(replayed.ends_with(&in_newest));
    assert_eq!(scanned.records, in_newest.len() as u64);
    // The same bytes in an older segment are corruption, not a torn tail.
    assert_corrupt(
        herald_log::scan_bytes(&newest, id, &data, false, collect(&mut Vec::new())),
        &newest,
        last.0,
    );
    // And with the wrong id, a bad header.
    assert_corrupt(
        herald_log::scan_bytes(
            &newest,
            SegmentId(id.0 + 1),
            &data,
            true,
            collect(&mut Vec::new()),
        ),
        &newest,
        0,
    );
}
