//! Damage written into a copy of a real log (`docs/protocol.md` section 10, the tail
//! rule of `herald-log`): a torn tail is truncated with a warning and loses
//! nothing acknowledged; damage before the tail stops the broker with the
//! file and offset, and `herald check` / `herald dump` report it too.
mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const N: usize = 40;

fn priority_for(i: usize) -> u8 {
    [2u8, 0, 7, 2, 9, 0, 1][i % 7]
}

/// A stopped broker's data directory: durable subscriber `s` on `t` (not
/// connected) holding `N` events. Returns the directory's temp owner, its
/// path and the events as `(index, priority, id)`.
fn make_log() -> (tempfile::TempDir, PathBuf, Vec<(usize, u8, String)>) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Server::start_on(&data, &[]);
    let mut s = server.connect();
    assert_eq!(s.cmd("create t"), "+OK created t");
    assert_eq!(s.cmd("name s"), "+OK name s");
    assert_eq!(s.cmd("sub t 1"), "+OK subscribed t");
    assert_eq!(s.cmd("quit"), "+OK bye");
    // Publish only once the broker has seen `s` go (see the quit-race test
    // in durability.rs); holding the name without `sub` delivers nothing.
    let holder = hold_name(&server, "s");
    let mut p = server.connect();
    let mut events = Vec::new();
    for i in 0..N {
        let id = format!("ev-{i}");
        let line = pub_line("t", &id, priority_for(i), &format!("payload number {i}"));
        assert_eq!(p.cmd(&line), format!("+OK published t {id}"));
        events.push((i, priority_for(i), id));
    }
    drop(holder);
    assert_eq!(server.stop(), Some(0));
    (tmp, data, events)
}

/// Copies `data` to a fresh directory under `tmp`.
fn copy_of(tmp: &tempfile::TempDir, data: &Path, name: &str) -> PathBuf {
    let copy = tmp.path().join(name);
    copy_dir(data, &copy);
    copy
}

/// `s` reconnects and must get exactly `expected` (in order, first deliveries).
fn assert_delivers_exactly(server: &Server, expected: &[String]) {
    let mut s = server.connect();
    assert_eq!(s.cmd("name s"), "+OK name s");
    assert_eq!(s.cmd("sub t 1000"), "+OK subscribed t");
    for want in expected {
        let d = s.delivery();
        assert_eq!(d["id"].as_str(), Some(want.as_str()), "{d}");
        assert!(d.get("redelivered").is_none(), "{d}");
    }
    s.assert_quiet();
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_str().unwrap().to_string()
}

fn write_at(path: &Path, offset: usize, bytes: &[u8]) {
    let mut data = std::fs::read(path).unwrap();
    assert!(offset + bytes.len() <= data.len(), "write past the file");
    data[offset..offset + bytes.len()].copy_from_slice(bytes);
    std::fs::write(path, data).unwrap();
}

#[test]
fn torn_tail_is_truncated_with_a_warning_and_nothing_is_lost() {
    let (tmp, data, events) = make_log();
    let expected = delivery_order(events);
    let segments = segment_files(&data);
    let newest = segments.last().expect("a segment").clone();
    let bytes = std::fs::read(&newest).unwrap();
    let records = walk_records(&bytes);
    let last = *records.last().expect("records");
    let used_end = last.end();
    assert!(
        bytes[used_end..].len() >= 8 + last.len && bytes[used_end..].iter().all(|&b| b == 0),
        "expected preallocated zeros after the last record"
    );
    let frame = &bytes[last.start..last.end()];

    // Cut points of the last write: inside the length field, after half the
    // record, and just before its last non-zero byte (a cut that only drops
    // trailing zeros would leave the record whole, as the zeros are there).
    let last_nonzero = frame.iter().rposition(|&b| b != 0).unwrap();
    let cuts = [3, frame.len() / 2, last_nonzero];
    for (k, &cut) in cuts.iter().enumerate() {
        let copy = copy_of(&tmp, &data, &format!("torn-{k}"));
        let seg = copy.join(file_name(&newest));
        write_at(&seg, used_end, &frame[..cut]);
        let copy_str = copy.to_str().unwrap();

        let check = run_herald(&["check", "--data", copy_str], Duration::from_secs(30));
        assert_eq!(
            check.code,
            Some(0),
            "check on a torn tail (cut {cut}): {check:?}"
        );
        let all = format!("{}{}", check.stdout, check.stderr);
        assert!(
            all.contains("unfinished write")
                && all.contains(&file_name(&newest))
                && all.contains(&format!("offset {used_end}")),
            "check (cut {cut}) should name the unfinished write, file and offset {used_end}: {all}"
        );

        // `dump` reads past the torn tail too (and changes nothing).
        let dump = run_herald(&["dump", "--data", copy_str, "t"], Duration::from_secs(30));
        assert_eq!(dump.code, Some(0), "dump on a torn tail: {dump:?}");
        let view: serde_json::Value = serde_json::from_str(&dump.stdout).expect("dump JSON");
        let ids: Vec<&str> = view["s"]
            .as_array()
            .expect("s's events")
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, expected, "dump of a log with a torn tail");

        let mut server = Server::try_start_on(&copy, &[])
            .unwrap_or_else(|logs| panic!("did not start on a torn tail (cut {cut}):\n{logs}"));
        let logs = server.logs();
        let warning = logs
            .lines()
            .find(|l| l.contains("torn tail"))
            .unwrap_or_else(|| panic!("no torn-tail warning (cut {cut}):\n{logs}"));
        assert!(
            warning.contains("WARN")
                && warning.contains(&file_name(&newest))
                && warning.contains(&used_end.to_string()),
            "warning should name file and offset {used_end}: {warning}"
        );
        let mut admin = server.connect();
        let stats = admin.cmd("stats t");
        assert!(stats.contains(&format!("\"pending\":{N}")), "{stats}");
        assert_delivers_exactly(&server, &expected);

        // Appending resumes where the torn write was: a new event survives
        // another restart and the log checks clean.
        assert_eq!(
            admin.cmd(&pub_line("t", "after", 255, "after the repair")),
            "+OK published t after"
        );
        assert_eq!(server.stop(), Some(0));
        let check = run_herald(&["check", "--data", copy_str], Duration::from_secs(30));
        assert_eq!(check.code, Some(0), "{check:?}");
        assert!(
            !check.stdout.contains("unfinished"),
            "repaired log still torn: {}",
            check.stdout
        );
        server.restart(&[]);
        assert!(!server.logs().contains("torn tail"), "{}", server.logs());
        let mut s = server.connect();
        assert_eq!(s.cmd("name s"), "+OK name s");
        assert_eq!(s.cmd("sub t 1000"), "+OK subscribed t");
        let first = s.delivery();
        assert_eq!(first["id"], "after");
        assert!(
            first.get("redelivered").is_none(),
            "never delivered: {first}"
        );
        for want in &expected {
            let d = s.delivery();
            assert_eq!(d["id"].as_str(), Some(want.as_str()), "{d}");
            assert_eq!(d["redelivered"], true, "{d}");
        }
        s.assert_quiet();
        drop(server);
    }
}

/// Damage applied to a copy of the log, and the offset it must be reported at.
struct Damage {
    name: &'static str,
    /// (byte offset in the first segment, new bytes).
    write: Vec<(usize, Vec<u8>)>,
    offset: usize,
}

fn damages(bytes: &[u8]) -> Vec<Damage> {
    let records = walk_records(bytes);
    assert!(records.len() > 10, "too few records: {}", records.len());
    // An early `Published` record with records after it.
    let (i, r) = records
        .iter()
        .enumerate()
        .find(|(_, r)| {
            let payload = &bytes[r.start + 8..r.start + 8 + r.len];
            matches!(
                herald_core::record::decode(payload),
                Ok(herald_core::Change::Published { .. })
            )
        })
        .map(|(i, r)| (i, *r))
        .expect("a Published record");
    assert!(i + 5 < records.len());
    let mid = r.start + 8 + r.len / 2;
    let next = records[i + 1];
    vec![
        Damage {
            name: "payload byte flipped",
            write: vec![(mid, vec![bytes[mid] ^ 0x20])],
            offset: r.start,
        },
        Damage {
            name: "checksum byte flipped",
            write: vec![(next.start + 5, vec![bytes[next.start + 5] ^ 0x01])],
            offset: next.start,
        },
        Damage {
            name: "segment magic damaged",
            write: vec![(2, vec![b'X'])],
            offset: 0,
        },
        Damage {
            name: "record zeroed (a hole)",
            write: vec![(next.start, vec![0; next.len + 8])],
            offset: next.start,
        },
    ]
}

#[test]
fn mid_log_corruption_is_refused_with_file_and_offset() {
    let (tmp, data, _events) = make_log();
    let segments = segment_files(&data);
    assert_eq!(segments.len(), 1, "expected one segment");
    let seg_name = file_name(&segments[0]);
    let bytes = std::fs::read(&segments[0]).unwrap();
    for (k, damage) in damages(&bytes).into_iter().enumerate() {
        let copy = copy_of(&tmp, &data, &format!("bad-{k}"));
        for (at, new) in &damage.write {
            write_at(&copy.join(&seg_name), *at, new);
        }
        let copy_str = copy.to_str().unwrap();
        let names_it = |text: &str| {
            text.contains(&seg_name) && text.contains(&format!("offset {}", damage.offset))
        };

        let serve = serve_expecting_exit(&copy, &[]);
        assert!(
            serve.code.is_some_and(|c| c != 0),
            "{}: serve must refuse to start: {serve:?}",
            damage.name
        );
        assert!(
            names_it(&serve.stderr) && serve.stderr.contains("corrupt"),
            "{}: serve's error should name {seg_name} and offset {}: {}",
            damage.name,
            damage.offset,
            serve.stderr
        );
        assert!(
            !serve.stderr.contains("listening"),
            "{}: {}",
            damage.name,
            serve.stderr
        );

        let check = run_herald(&["check", "--data", copy_str], Duration::from_secs(30));
        assert!(
            check.code.is_some_and(|c| c != 0),
            "{}: check must fail: {check:?}",
            damage.name
        );
        assert!(
            names_it(&format!("{}{}", check.stdout, check.stderr)),
            "{}: check should name file and offset {}: {check:?}",
            damage.name,
            damage.offset
        );

        let dump = run_herald(&["dump", "--data", copy_str], Duration::from_secs(30));
        assert!(
            dump.code.is_some_and(|c| c != 0),
            "{}: dump must fail: {dump:?}",
            damage.name
        );
        assert!(
            names_it(&dump.stderr),
            "{}: dump should name file and offset: {}",
            damage.name,
            dump.stderr
        );
        assert!(
            dump.stdout.is_empty(),
            "dump printed partial data: {}",
            dump.stdout
        );

        // Nothing was changed by the refusals: the bytes are still there for
        // an operator to look at.
        let after = std::fs::read(copy.join(&seg_name)).unwrap();
        for (at, new) in &damage.write {
            assert_eq!(&after[*at..*at + new.len()], &new[..], "{}", damage.name);
        }
    }
}

#[test]
fn damage_in_an_older_segment_is_never_a_torn_tail() {
    // Several segments: a bad last record of an older one is corruption.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Server::start_on(&data, &["--segment-bytes", "65536"]);
    let mut s = server.connect();
    assert_eq!(s.cmd("create t"), "+OK created t");
    assert_eq!(s.cmd("name s"), "+OK name s");
    assert_eq!(s.cmd("sub t 1"), "+OK subscribed t");
    assert_eq!(s.cmd("quit"), "+OK bye");
    let mut p = server.connect();
    let body = "y".repeat(400);
    let mut i = 0;
    while segment_files(&data).len() < 3 {
        assert_eq!(
            p.cmd(&pub_line("t", &format!("k{i}"), 0, &body)),
            format!("+OK published t k{i}")
        );
        i += 1;
        assert!(i < 10_000, "segments never rotated");
    }
    assert_eq!(server.stop(), Some(0));
    let segments = segment_files(&data);
    let older = &segments[segments.len() - 2];
    let bytes = std::fs::read(older).unwrap();
    let last = *walk_records(&bytes).last().unwrap();
    let copy = tmp.path().join("copy");
    copy_dir(&data, &copy);
    let target = copy.join(file_name(older));
    let at = last.start + 8 + last.len / 2;
    write_at(&target, at, &[bytes[at] ^ 0xff]);

    let serve = serve_expecting_exit(&copy, &[]);
    assert!(serve.code.is_some_and(|c| c != 0), "{serve:?}");
    assert!(
        serve.stderr.contains(&file_name(older))
            && serve.stderr.contains(&format!("offset {}", last.start)),
        "{}",
        serve.stderr
    );
    let check = run_herald(
        &["check", "--data", copy.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(check.code.is_some_and(|c| c != 0), "{check:?}");

    // A missing middle segment is refused too (a hole in the ids).
    let copy2 = tmp.path().join("copy2");
    copy_dir(&data, &copy2);
    std::fs::remove_file(copy2.join(file_name(&segments[1]))).unwrap();
    let serve = serve_expecting_exit(&copy2, &[]);
    assert!(serve.code.is_some_and(|c| c != 0), "{serve:?}");
    assert!(serve.stderr.contains("missing"), "{}", serve.stderr);
}

#[test]
fn leftover_temporary_segment_from_a_crash_is_removed() {
    let (tmp, data, events) = make_log();
    let copy = copy_of(&tmp, &data, "with-tmp");
    // A segment creation interrupted by a crash: header only, never renamed.
    let leftover = copy.join("00000000000000000002.log.tmp");
    let bytes = std::fs::read(&segment_files(&data)[0]).unwrap();
    std::fs::write(&leftover, &bytes[..HEADER_BYTES]).unwrap();
    let check = run_herald(
        &["check", "--data", copy.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert_eq!(check.code, Some(0), "{check:?}");
    let server = Server::try_start_on(&copy, &[])
        .unwrap_or_else(|logs| panic!("did not start with a leftover .tmp:\n{logs}"));
    assert!(!leftover.exists(), "leftover temporary segment not removed");
    assert_delivers_exactly(&server, &delivery_order(events));
}
