//! Helpers shared by the log test binaries: a deterministic mix of records,
//! a writer that rotates like the server does, and backends to open with.
#![allow(dead_code)]

use herald_log::{
    Error, FaultInjector, HEADER_BYTES, Log, LogConfig, RecoveryReport, frame_len, read_frame,
};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A record as the log sees it: its payload.
pub type Record = Vec<u8>;

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

/// A replay callback that collects the payloads into `into`.
pub fn collect(into: &mut Vec<Record>) -> impl FnMut(&[u8]) -> Result<(), Infallible> + '_ {
    |payload| {
        into.push(payload.to_vec());
        Ok(())
    }
}

/// Opens `dir`, collecting the replayed records.
pub fn open(backend: Backend, dir: &Path) -> Result<(Log, Vec<Record>, RecoveryReport), Error> {
    let mut replayed = Vec::new();
    let (log, report) = match backend {
        Backend::Std => Log::open(config(dir), collect(&mut replayed))?,
        Backend::Faulty => Log::open_with_storage(
            config(dir),
            Arc::new(FaultInjector::new()),
            collect(&mut replayed),
        )?,
    };
    Ok((log, replayed, report))
}

/// Opens `dir` with a fault injector, returning a handle to arm it.
pub fn open_faulty(dir: &Path) -> (Log, FaultInjector, Vec<Record>) {
    let faults = FaultInjector::new();
    let mut replayed = Vec::new();
    let (log, _) = Log::open_with_storage(
        config(dir),
        Arc::new(faults.clone()),
        collect(&mut replayed),
    )
    .expect("open with fault injector");
    (log, faults, replayed)
}

/// Scans `dir`, collecting the replayed records.
pub fn scan(dir: &Path) -> Result<(Vec<Record>, RecoveryReport), Error> {
    let mut replayed = Vec::new();
    let report = Log::scan(dir, collect(&mut replayed))?;
    Ok((replayed, report))
}

/// The `i`th record of a deterministic mix of sizes (9 to 100 bytes) and
/// contents: its number (whose high bytes are zeros, so records may end in
/// zeros), then a pattern.
pub fn record(i: u64) -> Record {
    let mut payload = vec![(i % 251) as u8 + 1];
    payload.extend((0..(i * 7) % 60).map(|k| (i + k) as u8 | 0x20));
    payload.extend_from_slice(&i.to_le_bytes());
    if i.is_multiple_of(5) {
        payload.extend_from_slice(&[0; 31]);
    }
    payload
}

/// What a rotation carries: a stand-in for the server's snapshot.
pub fn snapshot() -> Vec<Record> {
    (0..3)
        .map(|t| format!("snapshot {t}").into_bytes())
        .collect()
}

/// Bytes a record takes in the log.
pub fn len(record: &[u8]) -> u64 {
    frame_len(record.len())
}

/// Appends like the server: rotate when the record does not fit. Records
/// in `expected` what replay must yield.
pub fn append(log: &mut Log, expected: &mut Vec<Record>, record: Record) {
    let needed = len(&record);
    if !log.has_room(needed) {
        let header = snapshot();
        log.rotate(&header, needed).expect("rotate");
        expected.extend(header);
    }
    log.append(&record);
    expected.push(record);
}

/// Appends records `range`, writing every 7.
pub fn append_range(log: &mut Log, expected: &mut Vec<Record>, range: std::ops::Range<u64>) {
    for i in range {
        append(log, expected, record(i));
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
    while let Ok((_, used)) = read_frame(&data[at..]) {
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
