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

// ---- Helpers for the HTTP API, metrics and configuration tests ----

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The body as JSON; panics if it is not.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the status and the `{"error":code,"message":…}` shape.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "status of {self:?}");
        let json = self.json();
        assert_eq!(json["error"], code, "{}", self.body);
        assert!(json["message"].is_string(), "{}", self.body);
        assert_eq!(json.as_object().map(|o| o.len()), Some(2), "{}", self.body);
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`), the
/// way `curl` would send it; reads the whole response.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).expect("connect to HTTP");
    stream.set_read_timeout(Some(LINE_TIMEOUT)).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: herald-tests\r\n"
    )
    .into_bytes();
    if let Some(body) = body {
        request.extend_from_slice(
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            )
            .as_bytes(),
        );
    }
    request.extend_from_slice(b"\r\n");
    if let Some(body) = body {
        request.extend_from_slice(body);
    }
    stream.write_all(&request).expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8(raw[..split].to_vec()).expect("UTF-8 headers");
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body: String::from_utf8(body).expect("UTF-8 body"),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

/// `GET path`.
pub fn http_get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_request(addr, "GET", path, None)
}

impl Server {
    /// The HTTP API's address, from the `http bound http_addr=...` log line.
    pub fn http_addr(&self) -> SocketAddr {
        let mut found = None;
        let ok = eventually(LINE_TIMEOUT, || {
            found = self
                .logs()
                .lines()
                .find(|l| l.contains("http bound"))
                .and_then(|l| {
                    l.split_whitespace()
                        .find_map(|w| w.strip_prefix("http_addr="))
                        .map(str::to_string)
                });
            found.is_some()
        });
        assert!(ok, "no 'http bound' line in:\n{}", self.logs());
        found.unwrap().parse().expect("http address")
    }
}

/// A `herald` process started with exactly the given arguments, its stderr
/// collected line by line; killed on drop.
pub struct Herald {
    child: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Herald {
    /// Starts `herald args...` with `envs` (the HERALD_* variables of the
    /// test's own environment removed) in `cwd`.
    pub fn spawn(args: &[&str], envs: &[(&str, &str)], cwd: &Path) -> Herald {
        let mut child = herald_command(args, envs, cwd)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn herald");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Herald {
            child: Some(child),
            lines,
        }
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits up to 20 s for a log line containing every one of `words`.
    #[track_caller]
    pub fn wait_for(&self, words: &[&str]) -> String {
        let mut found = None;
        let ok = eventually(LINE_TIMEOUT, || {
            found = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| words.iter().all(|w| l.contains(w)))
                .cloned();
            found.is_some()
        });
        assert!(ok, "no line with {words:?} in:\n{}", self.logs());
        found.unwrap()
    }

    /// The `addr=` (or `http_addr=`) field of the first line containing
    /// every one of `words`.
    #[track_caller]
    pub fn addr_of(&self, words: &[&str]) -> SocketAddr {
        let line = self.wait_for(words);
        line.split_whitespace()
            .find_map(|w| {
                w.strip_prefix("addr=")
                    .or_else(|| w.strip_prefix("http_addr="))
            })
            .unwrap_or_else(|| panic!("no addr= in {line}"))
            .parse()
            .expect("address")
    }

    /// Waits up to 30 s for it to exit by itself; its exit code.
    #[track_caller]
    pub fn wait_exit(&mut self) -> Option<i32> {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "herald did not exit:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Herald {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn herald_command(args: &[&str], envs: &[(&str, &str)], cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
    for (key, _) in std::env::vars() {
        if key.starts_with("HERALD_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(args)
        .envs(envs.iter().copied())
        .env("HERALD_LOG", "info")
        .env("NO_COLOR", "1")
        .current_dir(cwd)
        .stdin(Stdio::null());
    cmd
}

/// Runs `herald args...`, which must exit by itself within 30 s:
/// (exit code, stdout, stderr).
pub fn herald_run(
    args: &[&str],
    envs: &[(&str, &str)],
    cwd: &Path,
) -> (Option<i32>, String, String) {
    let mut child = herald_command(args, envs, cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn herald");
    let read = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().expect("stdout")));
    let err = read(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "herald {args:?} still running after 30 s: {}",
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        code,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    )
}
