//! An fdatasync that fails is never acknowledged: the broker stops instead,
//! whether the sync ran inline on the broker task (small batches) or on the
//! fsync thread (big ones). Both reach the disk through the log's
//! `Storage`, which is how a test can make them fail.

mod common;

use common::{Client, Server};
use herald_log::{FaultInjector, Op};
use herald_server::{BrokerError, Config, Error};
use std::sync::Arc;

fn pub_line(id: &str, msg_bytes: usize) -> String {
    format!(r#"pub t {{"id":"{id}","msg":"{}"}}"#, "m".repeat(msg_bytes))
}

/// Publishes `id` with the fdatasync failing: the reply never comes, the
/// connection is closed, and the server stops with the sync's error.
fn publish_with_failing_sync(msg_bytes: usize) {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let server = Server::start(Config::new(dir.path()), Arc::new(faults.clone()));
    let mut client = Client::connect(server.addr);
    assert_eq!(client.cmd("create t").as_deref(), Some("+OK created t"));
    // The same size of batch is acknowledged while the disk works.
    assert_eq!(
        client.cmd(&pub_line("ok", msg_bytes)).as_deref(),
        Some("+OK published t ok")
    );

    faults.fail(Op::SyncData, std::io::ErrorKind::Other);
    client.send(&pub_line("lost", msg_bytes));
    // The connection is closed with nothing written.
    assert_eq!(client.line(), None, "answered after a failed fdatasync");
    // It stopped on its own: asking it to stop changes nothing.
    let err = server.stop().expect_err("the broker must stop");
    assert!(
        matches!(err, Error::Broker(BrokerError::Sync(_))),
        "{err:?}"
    );
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
