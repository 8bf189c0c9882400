//! When the log fails (`docs/protocol.md` section 10, "When the log
//! fails"): a failed fdatasync or write is never acknowledged. The broker
//! stops instead, sends none of the replies that waited for the disk, and
//! `run` returns the failure; the next start recovers everything that was
//! acknowledged. The disk fails through the log's `Storage`
//! (`FaultInjector`), which is how the syncs of the fsync thread and the
//! inline ones of the broker task both reach it.

mod common;

use common::Server;
use herald_log::{FaultInjector, Op, StdStorage};
use herald_server::{BrokerError, Config, Error};
use std::path::Path;
use std::sync::Arc;

fn pub_line(id: &str, msg_bytes: usize) -> String {
    format!(r#"pub t {{"id":"{id}","msg":"{}"}}"#, "m".repeat(msg_bytes))
}

/// The ids a durable subscriber `keeper` of topic `t` is handed after a
/// restart on `dir`, in order.
fn recovered(dir: &Path) -> Vec<String> {
    let server = Server::start_on(Config::new(dir), Arc::new(StdStorage));
    let mut keeper = server.connect();
    assert_eq!(keeper.cmd("name keeper"), "+OK name keeper");
    assert_eq!(keeper.cmd("sub t 1000"), "+OK subscribed t");
    let pending = keeper.topic_stats("t")["in_flight"].as_u64().unwrap();
    let ids = (0..pending)
        .map(|_| keeper.delivery()["id"].as_str().unwrap().to_string())
        .collect();
    keeper.assert_quiet();
    ids
}

/// A server on `dir` whose disk fails on demand, with topic `t` and a
/// durable subscriber `keeper` that keeps every event.
fn start_failing(dir: &Path) -> (Server, FaultInjector) {
    let faults = FaultInjector::new();
    let server = Server::start_on(Config::new(dir), Arc::new(faults.clone()));
    let mut setup = server.connect();
    assert_eq!(setup.cmd("name keeper"), "+OK name keeper");
    assert_eq!(setup.cmd("create t"), "+OK created t");
    assert_eq!(setup.cmd("sub t 1"), "+OK subscribed t");
    assert_eq!(setup.cmd("quit"), "+OK bye");
    setup.expect_eof();
    (server, faults)
}

/// Publishes with the fdatasync failing: no reply comes, the connection is
/// closed, a subscriber is not handed the event, and the server stops with
/// the sync's error. `msg_bytes` decides where the sync runs.
fn publish_with_failing_sync(msg_bytes: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (server, faults) = start_failing(dir.path());
    let mut client = server.connect();
    let mut watcher = server.connect();
    assert_eq!(watcher.cmd("sub t 100"), "+OK subscribed t");
    // The same size of batch is acknowledged while the disk works.
    assert_eq!(client.cmd(&pub_line("ok", msg_bytes)), "+OK published t ok");
    assert_eq!(watcher.delivery()["id"], "ok");

    faults.fail(Op::SyncData, std::io::ErrorKind::Other);
    // One write, so that the events share batches: none is answered.
    let batch: String = (0..5)
        .map(|i| pub_line(&format!("lost{i}"), msg_bytes) + "\n")
        .collect();
    client.send_raw(batch.as_bytes());
    assert_eq!(
        client.line_or_end(),
        None,
        "answered after a failed fdatasync"
    );
    assert_eq!(watcher.line_or_end(), None, "delivered an unsynced event");
    // It stopped on its own: asking it to stop changes nothing.
    let err = server.stop().expect_err("the broker must stop");
    assert!(
        matches!(err, Error::Broker(BrokerError::Sync(_))),
        "{err:?}"
    );
    // What was acknowledged is there after a restart; the rest may be.
    let ids = recovered(dir.path());
    assert_eq!(ids.first().map(String::as_str), Some("ok"), "{ids:?}");
}

/// A batch of one small event is synced inline by the broker task.
#[test]
fn failed_inline_sync_is_never_acknowledged() {
    publish_with_failing_sync(10);
}

/// A batch bigger than the inline limit (4 KiB) goes to the fsync thread.
#[test]
fn failed_sync_on_the_fsync_thread_is_never_acknowledged() {
    publish_with_failing_sync(16 * 1024);
}

#[test]
fn failed_write_is_never_acknowledged_not_even_an_ack() {
    let dir = tempfile::tempdir().unwrap();
    let (server, faults) = start_failing(dir.path());
    let mut publisher = server.connect();
    for id in ["a", "b"] {
        assert_eq!(
            publisher.cmd(&pub_line(id, 10)),
            format!("+OK published t {id}")
        );
    }
    let mut keeper = server.connect();
    assert_eq!(keeper.cmd("name keeper"), "+OK name keeper");
    assert_eq!(keeper.cmd("sub t 1"), "+OK subscribed t");
    assert_eq!(keeper.delivery()["id"], "a");

    faults.fail(Op::Write, std::io::ErrorKind::Other);
    // An ack promises only the write of its record, so it waits for that.
    keeper.send("ack t a");
    assert_eq!(keeper.line_or_end(), None, "an unwritten ack was answered");
    assert_eq!(
        publisher.try_cmd(&pub_line("c", 10)),
        None,
        "an unwritten event was answered"
    );
    let err = server.stop().expect_err("the broker must stop");
    assert!(
        matches!(err, Error::Broker(BrokerError::Write(_))),
        "{err:?}"
    );
    // The ack was not stored: `a` comes back, before `b`.
    assert_eq!(recovered(dir.path()), ["a", "b"]);
}
