//! Helpers for integration tests: start the real `herald` binary on an
//! ephemeral port with a temporary data directory, and talk to it over TCP
//! the way a user's program would.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for any single line before failing.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `herald serve`.
pub struct Server {
    pub addr: SocketAddr,
    pub data: PathBuf,
    child: Option<Child>,
    logs: Arc<Mutex<Vec<String>>>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a broker on a fresh temporary data directory.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// Starts a broker on a fresh temporary data directory with extra flags.
    pub fn start_with(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let mut server = Self::start_on(&data, extra);
        server._tmp = Some(tmp);
        server
    }

    /// Starts a broker on `data` (kept after the server stops).
    pub fn start_on(data: &Path, extra: &[&str]) -> Server {
        Self::try_start_on(data, extra)
            .unwrap_or_else(|logs| panic!("herald did not start:\n{logs}"))
    }

    /// Starts a broker on `data`; on failure returns what it printed.
    pub fn try_start_on(data: &Path, extra: &[&str]) -> Result<Server, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(data)
            .args(extra)
            .env("HERALD_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn herald");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("listening")
                        && let Some(addr) = line
                            .split_whitespace()
                            .find_map(|w| w.strip_prefix("addr="))
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(addr.to_string());
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => Ok(Server {
                addr: addr.parse().expect("listen address"),
                data: data.to_path_buf(),
                child: Some(child),
                logs,
                _tmp: None,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                Err(logs.lock().unwrap().join("\n"))
            }
        }
    }

    /// Opens a client connection (greeting already read).
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// SIGTERM, then waits; returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        self.child.as_ref()?;
        self.stop_with("TERM")
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            let _ = child.wait();
        }
    }

    /// Restarts on the same data directory after a stop or kill.
    pub fn restart(&mut self, extra: &[&str]) {
        assert!(self.child.is_none(), "stop or kill the server first");
        let next = Server::start_on(&self.data, extra);
        self.addr = next.addr;
        self.logs = next.logs.clone();
        let mut next = next;
        self.child = next.child.take();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A line-oriented TCP client with timeouts.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// Deliveries read while looking for a reply.
    pub deliveries: std::collections::VecDeque<serde_json::Value>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(LINE_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let writer = stream.try_clone().unwrap();
        let mut client = Client {
            reader: BufReader::new(stream),
            writer,
            deliveries: Default::default(),
        };
        let greeting = client.line().expect("greeting");
        assert!(greeting.starts_with("+OK "), "greeting: {greeting}");
        client
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Sends one line (LF added).
    pub fn send(&mut self, line: &str) {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        self.send_raw(&bytes);
    }

    /// Next raw line from the server, without CRLF; None on EOF.
    /// Panics if a line does not end with CRLF.
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

    /// Asserts that nothing arrives within `wait`.
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

    /// Closes the write side (the server still answers what was sent).
    pub fn shutdown_write(&mut self) {
        let _ = self.writer.shutdown(std::net::Shutdown::Write);
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

// ---- Helpers added for the protocol test suite (tests/protocol.rs & co.) ----

impl Server {
    /// The process id of the running broker, if it is running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends `signal` (e.g. "INT", "TERM"), then waits up to 30 s for the
    /// broker to exit; returns its exit code (None if killed by a signal).
    pub fn stop_with(&mut self, signal: &str) -> Option<i32> {
        let mut child = self.child.take().expect("server running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("herald did not stop within 30 s of SIG{signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Client {
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

/// How long `assert_silent` waits to conclude nothing more is coming.
pub const QUIET: Duration = Duration::from_millis(300);
