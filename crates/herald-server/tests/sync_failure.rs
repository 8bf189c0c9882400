//! An fdatasync that fails is never acknowledged: the broker stops instead,
//! whether the sync ran inline on the broker task (small batches) or on the
//! fsync thread (big ones). Both reach the disk through the log's
//! `Storage`, which is how a test can make them fail.

use herald_log::{FaultInjector, Op};
use herald_server::{Config, run_with_storage};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

struct Server {
    addr: SocketAddr,
    thread: std::thread::JoinHandle<Result<(), herald_server::Error>>,
}

fn start(dir: &Path, faults: &FaultInjector) -> Server {
    let config = Config::new(dir);
    let storage = Arc::new(faults.clone());
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            addr_tx
                .send(listener.local_addr().expect("address"))
                .unwrap();
            // Runs until the broker stops on its own.
            run_with_storage(listener, config, storage, std::future::pending()).await
        })
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server started");
    Server { addr, thread }
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let writer = stream.try_clone().unwrap();
        let mut client = Client {
            reader: BufReader::new(stream),
            writer,
        };
        assert!(client.line().expect("greeting").starts_with("+OK "));
        client
    }

    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line.trim_end().to_owned()),
            // The broker may close with unread input: a reset is an end too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("read: {e}"),
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        writeln!(self.writer, "{line}").unwrap();
        self.line().expect("reply")
    }
}

fn pub_line(id: &str, msg_bytes: usize) -> String {
    format!(r#"pub t {{"id":"{id}","msg":"{}"}}"#, "m".repeat(msg_bytes))
}

/// Publishes `id` with the fdatasync failing: the reply never comes, the
/// connection is closed, and the server stops with the sync's error.
fn publish_with_failing_sync(msg_bytes: usize) {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let server = start(dir.path(), &faults);
    let mut client = Client::connect(server.addr);
    assert_eq!(client.cmd("create t"), "+OK created t");
    // The same size of batch is acknowledged while the disk works.
    assert_eq!(client.cmd(&pub_line("ok", msg_bytes)), "+OK published t ok");

    faults.fail(Op::SyncData, std::io::ErrorKind::Other);
    writeln!(client.writer, "{}", pub_line("lost", msg_bytes)).unwrap();
    // The connection is closed with nothing written.
    assert_eq!(client.line(), None, "answered after a failed fdatasync");
    let stopped = server.thread.join().expect("server thread");
    let err = stopped.expect_err("the broker must stop");
    assert!(err.to_string().contains("fdatasync failed"), "{err}");
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
