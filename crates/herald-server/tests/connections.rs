//! Connections as a resource: `--max-connections` refuses the excess with
//! `-ERR unavailable` and a close, and the lazily allocated read and write
//! buffers (released when idle) still carry big lines both ways.
mod common;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Connects without expecting a greeting and returns the first line and
/// whether the server closed the connection after it.
fn first_line_and_close(addr: std::net::SocketAddr) -> (String, bool) {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("first line");
    let mut rest = String::new();
    let closed = reader.read_line(&mut rest).expect("end") == 0;
    (line, closed)
}

#[test]
fn connections_over_the_limit_get_unavailable_and_a_close() {
    let server = Server::with_config(|c| c.max_connections = 2);
    let mut a = server.connect();
    let mut b = server.connect();

    let (line, closed) = first_line_and_close(server.addr);
    assert!(
        line.starts_with("-ERR unavailable "),
        "refused connection's line: {line:?}"
    );
    assert!(line.ends_with("\r\n"), "{line:?}");
    assert!(closed, "the refused connection is closed after its line");

    // The two admitted connections are unaffected.
    assert_eq!(a.cmd("ping"), "+OK pong");
    assert_eq!(b.cmd("ping"), "+OK pong");

    // A connection that ends frees its slot: a new one is served (its slot
    // comes back when the connection task has finished, just after the
    // client sees the close, so retry until then).
    assert_eq!(a.cmd("quit"), "+OK bye");
    a.expect_eof();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        let stream = TcpStream::connect(server.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).expect("first line");
        if line.starts_with("+OK ") {
            break reader;
        }
        assert!(line.starts_with("-ERR unavailable "), "{line:?}");
        assert!(Instant::now() < deadline, "the slot never came back");
    };
    c.get_mut().write_all(b"ping\n").expect("write");
    let mut pong = String::new();
    c.read_line(&mut pong).expect("pong");
    assert_eq!(pong, "+OK pong\r\n");
    assert_eq!(b.cmd("ping"), "+OK pong");
}

#[test]
fn big_lines_pipelined_in_one_write_are_read_and_delivered_whole() {
    // Lines much longer than the first read buffer, and output much longer
    // than any one write, through buffers that are allocated per read and
    // dropped when empty.
    let server = Server::start();
    let mut publisher = server.connect();
    let mut subscriber = server.connect();
    assert_eq!(publisher.cmd("create big"), "+OK created big");
    assert_eq!(subscriber.cmd("sub big 100"), "+OK subscribed big");

    const EVENTS: usize = 24;
    let body = |i: usize| {
        let unit = char::from(b'a' + (i % 26) as u8).to_string();
        unit.repeat(200 * 1024 + i * 977)
    };
    let mut batch = Vec::new();
    for i in 0..EVENTS {
        batch.extend_from_slice(pub_line("big", &i.to_string(), 0, &body(i)).as_bytes());
        batch.push(b'\n');
        batch.extend_from_slice(b"ping\n");
    }
    let mut writer = publisher.clone_writer();
    let sender = std::thread::spawn(move || writer.write_all(&batch).expect("write"));
    for i in 0..EVENTS {
        assert_eq!(publisher.reply(), format!("+OK published big {i}"));
        assert_eq!(publisher.reply(), "+OK pong");
    }
    sender.join().expect("sender");

    for i in 0..EVENTS {
        let d = subscriber.delivery();
        assert_eq!(d["id"], i.to_string());
        assert_eq!(
            d["msg"].as_str().map(str::len),
            Some(body(i).len()),
            "event {i}"
        );
        assert_eq!(d["msg"], body(i), "event {i}");
    }
    assert_eq!(subscriber.cmd("ping"), "+OK pong");
}
