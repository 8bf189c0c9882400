//! Compaction (`docs/protocol.md` section 10): disk use follows the unacknowledged
//! data, not the total ever published. 1000 events stay pending in the
//! oldest segment while 200,000 more are published and acknowledged through
//! 1 MiB segments.
mod common;

use common::*;
use serde_json::Value;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEEP: usize = 1000;
const CHURN: usize = 200_000;
const WINDOW: usize = 1000;

fn keep_priority(i: usize) -> u8 {
    [0u8, 4, 9, 4, 1, 250, 0, 7, 3][i % 9]
}

#[test]
fn log_size_follows_pending_data_not_total_published() {
    let extra = ["--segment-bytes", "1048576", "--fsync", "interval"];
    let mut server = Server::start_with(&extra);
    let data = server.data.clone();
    let mut keeper = RawConn::connect(server.addr, LINE_TIMEOUT);
    let cmd = |c: &mut RawConn, line: &str| {
        assert!(c.send(line));
        c.line().expect("reply in time").expect("reply")
    };
    assert_eq!(cmd(&mut keeper, "create t"), "+OK created t");
    assert_eq!(cmd(&mut keeper, "name keeper"), "+OK name keeper");
    // Prefetch 1000: the 1000 kept events fill it, so the churn events are
    // never delivered to `keeper`; it acknowledges them while they are
    // queued (`docs/protocol.md` section 6, ack, allows that), by id, as they are published.
    assert_eq!(cmd(&mut keeper, "sub t 1000"), "+OK subscribed t");

    let mut publisher = RawConn::connect(server.addr, LINE_TIMEOUT);
    let pad = "k".repeat(80);
    let mut keep = Vec::new();
    let mut batch = String::new();
    for i in 0..KEEP {
        let id = format!("keep-{i}");
        batch.push_str(&pub_line(
            "t",
            &id,
            keep_priority(i),
            &format!("{i:05} {pad}"),
        ));
        batch.push('\n');
        keep.push((i, keep_priority(i), id));
    }
    std::io::Write::write_all(&mut publisher.writer, batch.as_bytes()).unwrap();
    for (_, _, id) in &keep {
        let line = publisher.line().unwrap().unwrap();
        assert_eq!(line, format!("+OK published t {id}"));
    }
    let mut kept_timestamps = std::collections::HashMap::new();
    for _ in 0..KEEP {
        let line = keeper.line().expect("delivery in time").expect("delivery");
        let d: Value = serde_json::from_str(&line).expect("delivery JSON");
        kept_timestamps.insert(
            d["id"].as_str().unwrap().to_string(),
            d["timestamp"].clone(),
        );
    }
    assert_eq!(kept_timestamps.len(), KEEP);

    // Watch the directory while the churn runs.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (data, done) = (data.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut max_files, mut max_bytes) = (0usize, 0u64);
            while !done.load(Ordering::SeqCst) {
                max_files = max_files.max(segment_files(&data).len());
                max_bytes = max_bytes.max(log_bytes(&data));
                std::thread::sleep(Duration::from_millis(50));
            }
            (max_files, max_bytes)
        })
    };
    let pid = serve_pid(&data);
    let io_before = pid.map(|p| (proc_io(p, "write_bytes"), proc_io(p, "wchar")));

    // Publisher: pipelined churn events with a window; each `+OK published`
    // id goes to the acker.
    let started = Instant::now();
    let published_bytes = Arc::new(AtomicU64::new(0));
    let (ack_tx, ack_rx) = std::sync::mpsc::channel::<usize>();
    let in_window = Arc::new((Mutex::new(0usize), std::sync::Condvar::new()));
    let pub_reader = {
        let mut reader = publisher.reader;
        let in_window = in_window.clone();
        std::thread::spawn(move || {
            for i in 0..CHURN {
                let line = read_line(&mut reader)
                    .expect("publisher reply within the timeout")
                    .expect("publisher connection closed");
                assert_eq!(line, format!("+OK published t x-{i}"));
                let _ = ack_tx.send(i);
                let (lock, cv) = &*in_window;
                *lock.lock().unwrap() -= 1;
                cv.notify_one();
            }
        })
    };
    let pub_writer = {
        let mut writer = publisher.writer;
        let published_bytes = published_bytes.clone();
        let in_window = in_window.clone();
        std::thread::spawn(move || {
            let body = "c".repeat(100);
            let mut buf = String::new();
            let mut i = 0;
            while i < CHURN {
                {
                    let (lock, cv) = &*in_window;
                    let mut n = lock.lock().unwrap();
                    while *n >= WINDOW {
                        n = cv.wait_timeout(n, LINE_TIMEOUT).unwrap().0;
                    }
                    let room = (WINDOW - *n).min(CHURN - i).min(100);
                    *n += room;
                    buf.clear();
                    for j in i..i + room {
                        let event = serde_json::json!({"id": format!("x-{j}"), "priority": j % 3, "msg": body});
                        let event = event.to_string();
                        published_bytes.fetch_add(event.len() as u64, Ordering::Relaxed);
                        buf.push_str("pub t ");
                        buf.push_str(&event);
                        buf.push('\n');
                    }
                    i += room;
                }
                std::io::Write::write_all(&mut writer, buf.as_bytes()).expect("publish");
            }
        })
    };
    // Acker: `ack t x-i` on keeper's connection for every published churn id.
    let acked = Arc::new(AtomicUsize::new(0));
    let keeper_reader = {
        let mut reader = keeper.reader;
        let acked = acked.clone();
        std::thread::spawn(move || {
            let mut unexpected = Vec::new();
            while acked.load(Ordering::SeqCst) < CHURN {
                let line = read_line(&mut reader)
                    .expect("ack reply within the timeout")
                    .expect("keeper connection closed");
                if line.starts_with("+OK acked t x-") {
                    acked.fetch_add(1, Ordering::SeqCst);
                } else {
                    unexpected.push(line);
                }
            }
            unexpected
        })
    };
    let mut ack_writer = keeper.writer;
    let mut pending: VecDeque<usize> = VecDeque::new();
    let mut sent_acks = 0;
    while sent_acks < CHURN {
        let first = ack_rx.recv_timeout(LINE_TIMEOUT).expect("published ids");
        pending.push_back(first);
        while let Ok(i) = ack_rx.try_recv() {
            pending.push_back(i);
        }
        let mut buf = String::new();
        for i in pending.drain(..) {
            buf.push_str(&format!("ack t x-{i}\n"));
            sent_acks += 1;
        }
        std::io::Write::write_all(&mut ack_writer, buf.as_bytes()).expect("ack");
    }
    pub_writer.join().expect("publisher writer");
    pub_reader.join().expect("publisher reader");
    let unexpected = keeper_reader.join().expect("keeper reader");
    assert!(
        unexpected.is_empty(),
        "keeper got {:?}",
        &unexpected[..unexpected.len().min(5)]
    );
    let churn_secs = started.elapsed().as_secs_f64();

    // Compaction runs in the background; give it a generous bound.
    let deadline = Instant::now() + Duration::from_secs(30);
    while segment_files(&data).len() > 6 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    done.store(true, Ordering::SeqCst);
    let (max_files, max_bytes) = watcher.join().unwrap();
    let files = segment_files(&data).len();
    let on_disk = log_bytes(&data);
    let published = published_bytes.load(Ordering::Relaxed);
    let io_after = pid.map(|p| (proc_io(p, "write_bytes"), proc_io(p, "wchar")));
    let compactions = server.logs().matches("log compacted").count();
    eprintln!(
        "compaction: {} events ({published} bytes of event JSON) published and acked in {churn_secs:.1}s \
         while {KEEP} stayed pending; {compactions} compactions; now {files} segment files, \
         {on_disk} bytes on disk (ratio published/on-disk {:.1}); during the run at most \
         {max_files} files and {max_bytes} bytes",
        CHURN,
        published as f64 / on_disk as f64
    );
    if let (Some((Some(wb0), Some(wc0))), Some((Some(wb1), Some(wc1)))) = (io_before, io_after) {
        eprintln!(
            "compaction: broker process during the churn: write_bytes {} ({:.2}x the event bytes), \
             wchar {} (includes socket writes)",
            wb1 - wb0,
            (wb1 - wb0) as f64 / published as f64,
            wc1 - wc0
        );
    }
    assert!(
        files <= 6,
        "{files} segment files after compaction (at most 6 expected)"
    );
    assert!(
        on_disk * 4 < published,
        "log holds {on_disk} bytes for {published} bytes published"
    );
    let mut admin = server.connect();
    let stats = admin.cmd("stats t");
    assert!(
        stats.contains("\"pending\":0") && stats.contains("\"in_flight\":1000"),
        "{stats}"
    );
    drop(ack_writer);
    assert_eq!(server.stop(), Some(0));

    // Restart: exactly the 1000 kept events, in delivery order, redelivered.
    server.restart(&extra);
    let logs = server.logs();
    let mut admin = server.connect();
    let stats = admin.cmd("stats t");
    assert!(
        stats.contains(&format!("\"pending\":{KEEP}")),
        "{stats}\n{logs}"
    );
    let mut keeper = server.connect();
    assert_eq!(keeper.cmd("name keeper"), "+OK name keeper");
    assert_eq!(keeper.cmd("sub t 1000"), "+OK subscribed t");
    let expected = delivery_order(keep);
    let mut seen = HashSet::new();
    for want in &expected {
        let d: Value = keeper.delivery();
        let id = d["id"].as_str().unwrap().to_string();
        assert_eq!(&id, want, "order after compaction and restart");
        assert_eq!(d["redelivered"], true, "{d}");
        assert_eq!(d["timestamp"], kept_timestamps[&id], "{d}");
        assert!(d["msg"].as_str().unwrap().ends_with(&pad), "{d}");
        assert!(seen.insert(id));
    }
    keeper.assert_quiet();
    assert_eq!(server.stop(), Some(0));
    let check = run_herald(
        &["check", "--data", data.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert_eq!(check.code, Some(0), "{check:?}");
    eprintln!(
        "compaction: herald check after restart: {}",
        check.stdout.trim()
    );
}

/// The id in a segment file's name.
fn segment_id(p: &std::path::Path) -> u64 {
    p.file_name().unwrap().to_str().unwrap()[..20]
        .parse()
        .unwrap()
}

/// Every segment starts with a snapshot of the topics and durable
/// subscriptions. When that snapshot is bigger than `--segment-bytes`, a new
/// segment must still have room for more than one command, and compaction
/// must settle once the log is small.
#[test]

fn metadata_snapshot_larger_than_a_segment_settles() {
    let mut server = Server::start_with(&["--segment-bytes", "65536"]);
    let data = server.data.clone();
    let mut c = server.connect();
    const TOPICS: usize = 2000;
    for i in 0..TOPICS {
        c.send(&format!("create topic-{i:05}"));
    }
    for i in 0..TOPICS {
        assert_eq!(c.reply(), format!("+OK created topic-{i:05}"));
    }
    assert_eq!(c.cmd("name s"), "+OK name s");
    // ~100 KB of snapshot (2000 TopicCreated + 2000 Subscribed records).
    for i in 0..TOPICS {
        c.send(&format!("sub topic-{i:05} 1"));
    }
    for i in 0..TOPICS {
        assert_eq!(c.reply(), format!("+OK subscribed topic-{i:05}"));
    }
    let mut p = server.connect();
    for i in 0..20 {
        assert_eq!(
            p.cmd(&pub_line("topic-00001", &format!("e{i}"), 0, "small")),
            format!("+OK published topic-00001 e{i}")
        );
    }
    let newest = |data: &std::path::Path| {
        segment_files(data)
            .last()
            .map(|p| segment_id(p))
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while segment_files(&data).len() > 6 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = newest(&data);
    // Idle for a second: five of the ticks (200 ms) that may start a
    // compaction. What runs on a timer, only waiting can show.
    std::thread::sleep(Duration::from_millis(1000));
    let after = newest(&data);
    let files = segment_files(&data).len();
    eprintln!(
        "snapshot > segment: {} segments created for {TOPICS} subscriptions and 20 publishes; \
         {} more while idle for 1 s; {files} files, {} bytes now",
        before,
        after - before,
        log_bytes(&data)
    );
    assert_eq!(after, before, "an idle broker kept creating segments");
    assert!(files <= 6, "{files} segment files");
    assert!(before < 100, "{before} segments created for 2020 commands");
    assert_eq!(server.stop(), Some(0));
}
