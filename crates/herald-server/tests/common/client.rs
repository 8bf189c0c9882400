//! A line-oriented test client over plain TCP, the way a user's program (or
//! telnet) talks to the broker, with timeouts so that a hung test fails.
//!
//! Shared by the server's tests (`crates/herald-server/tests`) and the
//! binary's (`crates/herald/tests`, which include this file by path): both
//! speak to a broker the same way, in-process or a child process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a test waits for any single line before failing.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(20);

/// How long [`Client::assert_silent`] waits to conclude nothing more is
/// coming (prefer [`Client::assert_quiet`], which needs no wait).
pub const QUIET: Duration = Duration::from_millis(300);

/// A line-oriented TCP client with timeouts.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// Deliveries read while looking for a reply.
    pub deliveries: std::collections::VecDeque<serde_json::Value>,
}

impl Client {
    /// Connects and reads the greeting.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        let mut client = Client::over(stream);
        let greeting = client.line().expect("greeting");
        assert!(greeting.starts_with("+OK "), "greeting: {greeting}");
        client
    }

    /// Connects and reads the greeting; `None` if the server is not (or no
    /// longer) there.
    pub fn try_connect(addr: SocketAddr) -> Option<Client> {
        let mut client = Client::over(TcpStream::connect(addr).ok()?);
        let greeting = client.line_or_end()?;
        assert!(greeting.starts_with("+OK "), "greeting: {greeting}");
        Some(client)
    }

    fn over(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(LINE_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let writer = stream.try_clone().unwrap();
        Client {
            reader: BufReader::new(stream),
            writer,
            deliveries: Default::default(),
        }
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Sends one line (LF added).
    pub fn send(&mut self, line: &str) {
        assert!(self.try_send(line), "write failed");
    }

    /// Sends one line (LF added); false if the server is gone (tests that
    /// stop or break the server under a client).
    pub fn try_send(&mut self, line: &str) -> bool {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.writer.write_all(&bytes).is_ok()
    }

    /// Next raw line from the server, without CRLF; None on EOF.
    /// Panics if a line does not end with CRLF, or on a read error (a reset
    /// included: the server closes politely).
    pub fn line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        let n = self.reader.read_until(b'\n', &mut buf).expect("read line");
        if n == 0 {
            return None;
        }
        assert!(
            buf.ends_with(b"\r\n"),
            "line not ending in CRLF: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.truncate(buf.len() - 2);
        Some(String::from_utf8(buf).expect("server wrote UTF-8"))
    }

    /// Next line, or `None` once the server closed the connection in any
    /// way (EOF or a reset): for tests that stop the server under a client.
    pub fn line_or_end(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) if buf.ends_with(b"\r\n") => {
                buf.truncate(buf.len() - 2);
                Some(String::from_utf8(buf).expect("server wrote UTF-8"))
            }
            // A line cut short: the server went away mid-line.
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Sends a command and returns the next line, or `None` if the server
    /// is gone (tests that stop or break the server under a client).
    pub fn try_cmd(&mut self, line: &str) -> Option<String> {
        if !self.try_send(line) {
            return None;
        }
        self.line_or_end()
    }

    /// Next reply, keeping deliveries that come first in `self.deliveries`.
    pub fn reply(&mut self) -> String {
        loop {
            let line = self
                .line()
                .expect("connection closed while waiting for a reply");
            if line.starts_with('{') {
                self.deliveries
                    .push_back(serde_json::from_str(&line).expect("delivery is JSON"));
            } else {
                return line;
            }
        }
    }

    /// Sends a command and returns its reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.reply()
    }

    /// Next delivery (buffered or read); panics if a reply comes instead.
    pub fn delivery(&mut self) -> serde_json::Value {
        if let Some(d) = self.deliveries.pop_front() {
            return d;
        }
        let line = self
            .line()
            .expect("connection closed while waiting for a delivery");
        assert!(line.starts_with('{'), "expected a delivery, got {line}");
        serde_json::from_str(&line).expect("delivery is JSON")
    }

    /// Asserts that nothing is on its way to this connection, with one
    /// round trip: the broker answers `ping` after everything it queued
    /// for the connection before, so the pong must be the very next line.
    /// (Events that become deliverable later, by a timer or a publish still
    /// waiting for its sync, are not covered: wait for their cause first.)
    #[track_caller]
    pub fn assert_quiet(&mut self) {
        assert!(
            self.deliveries.is_empty(),
            "unexpected deliveries: {:?}",
            self.deliveries
        );
        self.send("ping");
        let line = self.line().expect("connection closed");
        assert_eq!(line, "+OK pong", "expected nothing before the pong");
    }

    /// Asserts that nothing arrives within `wait`. Only for what a round
    /// trip cannot prove (a connection that may not send, a timer); else
    /// use [`assert_quiet`](Self::assert_quiet).
    pub fn assert_silent(&mut self, wait: Duration) {
        assert!(
            self.deliveries.is_empty(),
            "unexpected deliveries: {:?}",
            self.deliveries
        );
        self.reader.get_ref().set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 1];
        let got = if !self.reader.buffer().is_empty() {
            Ok(1)
        } else {
            self.reader.get_mut().read(&mut buf)
        };
        self.reader
            .get_ref()
            .set_read_timeout(Some(LINE_TIMEOUT))
            .unwrap();
        match got {
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Ok(0) => panic!("connection closed"),
            Ok(_) => {
                let rest = self.line().unwrap_or_default();
                panic!(
                    "expected silence, got {}{rest}",
                    String::from_utf8_lossy(&buf)
                )
            }
            Err(e) => panic!("read error: {e}"),
        }
    }

    /// How long a read waits before it fails ([`LINE_TIMEOUT`] by default).
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout))
            .unwrap();
    }

    /// Closes the write side (the server still answers what was sent).
    pub fn shutdown_write(&mut self) {
        let _ = self.writer.shutdown(std::net::Shutdown::Write);
    }

    /// Another handle on the socket, to write from another thread while this
    /// client reads (pipelining far more than the socket buffers hold).
    pub fn clone_writer(&self) -> TcpStream {
        self.writer.try_clone().expect("clone socket")
    }

    /// Asserts that the server closes the connection (EOF) with no further line.
    pub fn expect_eof(&mut self) {
        assert!(
            self.deliveries.is_empty(),
            "unexpected deliveries before EOF: {:?}",
            self.deliveries
        );
        if let Some(line) = self.line() {
            panic!("expected EOF, got {line}");
        }
    }

    /// Sends a command and asserts its `-ERR` code.
    #[track_caller]
    pub fn expect_err(&mut self, line: &str, code: &str) {
        let reply = self.cmd(line);
        assert!(
            reply.starts_with("-ERR ") && reply.split_whitespace().nth(1) == Some(code),
            "`{}` should be -ERR {code}, got {reply}",
            shorten(line)
        );
    }

    /// `stats [topic]`, parsed (the JSON after `+OK `).
    pub fn stats(&mut self, topic: Option<&str>) -> serde_json::Value {
        let reply = match topic {
            Some(t) => self.cmd(&format!("stats {t}")),
            None => self.cmd("stats"),
        };
        let json = reply
            .strip_prefix("+OK ")
            .unwrap_or_else(|| panic!("stats failed: {reply}"));
        serde_json::from_str(json).unwrap_or_else(|e| panic!("stats is not JSON ({e}): {json}"))
    }

    /// The counters of one topic from `stats <topic>`.
    pub fn topic_stats(&mut self, topic: &str) -> serde_json::Value {
        let stats = self.stats(Some(topic));
        stats["topics"][topic].clone()
    }

    /// `topics`, parsed into a list of names.
    pub fn topics(&mut self) -> Vec<String> {
        let reply = self.cmd("topics");
        let json = reply
            .strip_prefix("+OK ")
            .unwrap_or_else(|| panic!("topics failed: {reply}"));
        serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("topics is not a JSON array of strings ({e}): {json}"))
    }
}

/// The code word of a `-ERR` reply.
pub fn err_code(reply: &str) -> &str {
    assert!(reply.starts_with("-ERR "), "expected an error, got {reply}");
    reply.split_whitespace().nth(1).unwrap_or("")
}

/// A pub line for a simple event.
pub fn pub_line(topic: &str, id: &str, priority: u8, msg: &str) -> String {
    format!(
        "pub {topic} {}",
        serde_json::json!({"id": id, "priority": priority, "msg": msg})
    )
}

/// A long line cut for an assertion message.
pub fn shorten(line: &str) -> String {
    if line.len() > 120 {
        let mut end = 100;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &line[..end], line.len())
    } else {
        line.to_string()
    }
}

/// Polls `check` every 20 ms until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
