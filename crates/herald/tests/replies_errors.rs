//! `replies errors` (docs/protocol.md 11): a fire-and-forget publisher that
//! never reads its socket must never block, and a `ping` still tells it
//! that everything before it is stored.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Publishes this many events without reading a byte. In `all` mode the
/// unread `+OK published` replies (about 30 bytes each) fill the TCP
/// buffers and the server's output allowance after about 560,000 of them,
/// and the publisher blocks for good; in `errors` mode nothing is sent back.
const EVENTS: usize = 1_000_000;

fn publish_without_reading(server: &Server, setup: &str) -> Vec<String> {
    let socket = TcpStream::connect(server.addr).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    // A blocked writer fails the test instead of hanging it.
    socket
        .set_write_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut writer = socket.try_clone().unwrap();
    let mut lines = String::with_capacity(EVENTS * 64);
    lines.push_str(setup);
    for i in 0..EVENTS {
        lines.push_str(&format!(
            "pub fire {{\"id\":\"{i}\",\"msg\":\"event {i}\"}}\n"
        ));
    }
    // One bad line, in its place: errors still come back, in order.
    lines.push_str("pub fire not-json\n");
    lines.push_str("ping\nstats fire\n");
    // The whole stream is written before anything is read: a server that
    // answered every pub would block this write for good.
    let write = std::thread::spawn(move || writer.write_all(lines.as_bytes()).map(|_| ()));
    write
        .join()
        .expect("writer thread")
        .expect("the publisher was never blocked");
    let mut reader = BufReader::new(socket);
    let mut replies = Vec::new();
    for _ in 0..4 + usize::from(!setup.is_empty()) {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a reply");
        replies.push(line.trim_end().to_string());
    }
    replies
}

#[test]
fn a_publisher_that_never_reads_is_never_blocked_with_replies_errors() {
    let server = Server::start_with(&["--replies", "errors", "--fsync", "interval"]);
    let replies = publish_without_reading(&server, "");
    assert!(replies[0].starts_with("+OK herald"), "{replies:?}");
    assert!(replies[1].starts_with("-ERR bad_event"), "{replies:?}");
    assert_eq!(replies[2], "+OK pong");
    let stats: serde_json::Value =
        serde_json::from_str(replies[3].strip_prefix("+OK ").expect("stats")).unwrap();
    assert_eq!(stats["topics"]["fire"]["published"], EVENTS as u64);
}

#[test]
fn a_connection_switches_itself_to_replies_errors() {
    let server = Server::start_with(&["--fsync", "interval"]);
    let replies = publish_without_reading(&server, "replies errors\n");
    assert_eq!(replies[1], "+OK replies errors");
    assert!(replies[2].starts_with("-ERR bad_event"), "{replies:?}");
    assert_eq!(replies[3], "+OK pong");
    // Back to all: every command answered again.
    let mut c = server.connect();
    assert_eq!(c.cmd("replies ERRORS"), "+OK replies errors");
    assert_eq!(c.cmd("replies all"), "+OK replies all");
    assert_eq!(
        c.cmd(r#"pub fire {"id":"x","msg":1}"#),
        "+OK published fire x"
    );
    assert!(c.cmd("replies none").starts_with("-ERR bad_args"));
}
