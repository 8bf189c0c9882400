//! Helpers shared by the log test binaries: a deterministic mix of changes,
//! a writer that rotates like the server does, and backends to open with.
#![allow(dead_code)]

use herald_core::{Change, Event, Holder, Seq};
use herald_log::{Error, FaultInjector, HEADER_BYTES, Log, LogConfig, RecoveryReport, encoded_len};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Small segments, so that a few hundred records span several of them.
pub const SEGMENT_BYTES: u64 = 4096;

/// Which file backend a scenario runs on (okaywal's tests run each scenario
/// on every backend). `Faulty` is a [`FaultInjector`] with no fault armed,
/// which checks that the trait plumbing changes nothing.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Std,
    Faulty,
}

pub fn config(dir: &Path) -> LogConfig {
    LogConfig {
        dir: dir.to_path_buf(),
        segment_bytes: SEGMENT_BYTES,
    }
}

/// Opens `dir`, collecting the replayed changes.
pub fn open(backend: Backend, dir: &Path) -> Result<(Log, Vec<Change>, RecoveryReport), Error> {
    let mut replayed = Vec::new();
    let (log, report) = match backend {
        Backend::Std => Log::open(config(dir), |c| replayed.push(c))?,
        Backend::Faulty => {
            Log::open_with_storage(config(dir), FaultInjector::new(), |c| replayed.push(c))?
        }
    };
    Ok((log, replayed, report))
}

/// Opens `dir` with a fault injector, returning a handle to arm it.
pub fn open_faulty(dir: &Path) -> (Log, FaultInjector, Vec<Change>) {
    let faults = FaultInjector::new();
    let mut replayed = Vec::new();
    let (log, _) = Log::open_with_storage(config(dir), faults.clone(), |c| replayed.push(c))
        .expect("open with fault injector");
    (log, faults, replayed)
}

/// Scans `dir`, collecting the replayed changes.
pub fn scan(dir: &Path) -> Result<(Vec<Change>, RecoveryReport), Error> {
    let mut replayed = Vec::new();
    let report = Log::scan(dir, |c| replayed.push(c))?;
    Ok((replayed, report))
}

fn name(s: String) -> Arc<str> {
    Arc::from(s.as_str())
}

/// The `i`th change of a deterministic mix of every kind and various sizes.
pub fn change(i: u64) -> Change {
    let topic = name(format!("topic-{}", i % 3));
    let subscriber = name(format!("sub-{}", i % 4));
    match i % 6 {
        0 | 1 => Change::Published {
            topic,
            event: Arc::new(Event::new(
                Seq(i),
                (i % 7) as u8,
                1_700_000_000_000 + i,
                &format!("id-{i}"),
                format!("{{\"msg\":\"{}\"", "x".repeat((i % 40) as usize)).as_bytes(),
            )),
            holders: (0..i % 3)
                .map(|h| Holder {
                    subscriber: name(format!("sub-{h}")),
                    delivered: (i + h).is_multiple_of(2),
                })
                .collect(),
        },
        2 => Change::Acked {
            subscriber,
            topic,
            seq: Seq(i - 2),
        },
        3 => Change::Delivered {
            subscriber,
            topic,
            seq: Seq(i - 3),
        },
        4 => Change::Subscribed {
            subscriber,
            topic,
            prefetch: (i % 10 + 1) as u16,
        },
        _ => Change::TopicCreated { topic },
    }
}

/// What a rotation carries: a stand-in for the server's snapshot.
pub fn snapshot() -> Vec<Change> {
    (0..3)
        .map(|t| Change::TopicCreated {
            topic: name(format!("topic-{t}")),
        })
        .collect()
}

/// Appends like the server: rotate when the change does not fit, write
/// every `batch` appends. Records in `expected` what replay must yield.
pub fn append(log: &mut Log, expected: &mut Vec<Change>, change: Change) {
    let needed = encoded_len(&change);
    if !log.has_room(needed) {
        let header = snapshot();
        log.rotate(&header, needed).expect("rotate");
        expected.extend(header);
    }
    log.append(&change);
    expected.push(change);
}

/// Appends changes `range`, writing every 7.
pub fn append_range(log: &mut Log, expected: &mut Vec<Change>, range: std::ops::Range<u64>) {
    for i in range {
        append(log, expected, change(i));
        if i % 7 == 6 {
            log.write().expect("write");
        }
    }
}

/// Start and end offsets of the records of the segment file `path`.
pub fn record_offsets(path: &Path) -> Vec<(u64, u64)> {
    let data = std::fs::read(path).expect("read segment");
    let mut at = HEADER_BYTES as usize;
    let mut records = Vec::new();
    while let Ok((_, used)) = herald_log::decode(&data[at..]) {
        records.push((at as u64, (at + used) as u64));
        at += used;
    }
    records
}

/// The segment files in `dir`, oldest first.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Every file name in `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Flips every bit of the byte at `offset` of `path`.
pub fn flip_byte(path: &Path, offset: u64) {
    let mut data = std::fs::read(path).expect("read");
    data[offset as usize] ^= 0xff;
    std::fs::write(path, data).expect("write");
}

/// Copies the segment files of `from` into the empty directory `to`.
pub fn copy_segments(from: &Path, to: &Path) {
    for file in segment_files(from) {
        let name = file.file_name().expect("file name");
        std::fs::copy(&file, to.join(name)).expect("copy");
    }
}
