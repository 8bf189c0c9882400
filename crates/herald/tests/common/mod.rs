//! Helpers for the binary's tests: the one launcher of `herald` child
//! processes ([`herald`], which clears every `HERALD_*` variable of the
//! environment the tests run in), a running `herald serve` ([`Server`]) with
//! `kill -9` and restarts, finished runs of `dump`/`check` ([`run_herald`]),
//! reading segment files the way `docs/storage.md` describes them, and
//! tests that need root or `/proc` ([`skip_unless_ci`]).
//!
//! The line client and the seeded RNG are the server tests' own
//! (`crates/herald-server/tests/common/`), included by path: both suites
//! talk to a broker the same way.
#![allow(dead_code)]

#[path = "../../../herald-server/tests/common/client.rs"]
mod client;
#[path = "../../../herald-server/tests/common/rng.rs"]
mod rng;
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use rng::Rng;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `herald` command for a child process: the environment of the test run
/// minus every `HERALD_*` variable (a developer's `HERALD_FSYNC` or
/// `HERALD_ADDR` must not change what a test sees), plus `HERALD_LOG=info`
/// (tests read the log lines) and `NO_COLOR`, with stdin closed. A test sets
/// what it needs on top.
pub fn herald() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
    clear_herald_env(&mut cmd);
    cmd.env("HERALD_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

/// Removes every `HERALD_*` variable from `cmd`'s environment (for child
/// processes that start `herald` themselves, like the Python tests).
pub fn clear_herald_env(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HERALD_") {
            cmd.env_remove(name);
        }
    }
}

/// Whether the tests run in CI (`CI=true` or `CI=1`), where a test must not
/// skip what it cannot do.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// For a test that needs what this machine may lack (root for `mount`,
/// Linux's `/proc`): outside CI it prints why it does nothing and the test
/// returns; under `CI=true` it fails, so CI never passes silently.
#[track_caller]
pub fn skip_unless_ci(why: &str) {
    assert!(
        !in_ci(),
        "this test cannot run here, and CI must run it: {why}"
    );
    eprintln!("skipped: {why} (under CI=true this fails)");
}

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
        let mut child = herald()
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(data)
            .args(extra)
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

/// Size of a segment header (docs of `herald-log`).
pub const HEADER_BYTES: usize = 24;

/// What a finished `herald` run printed.
#[derive(Debug)]
pub struct Finished {
    /// Exit code (None if killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `herald <args>` to completion (killed and failed after `timeout`).
pub fn run_herald(args: &[&str], timeout: Duration) -> Finished {
    let mut child = herald()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn herald");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "herald {args:?} still running after {timeout:?}; stderr so far:\n{}",
                err_t.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Finished {
        code: status.code(),
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// `herald serve` on `data` that is expected to exit by itself (refusal).
pub fn serve_expecting_exit(data: &Path, extra: &[&str]) -> Finished {
    let data = data.to_str().expect("utf-8 path");
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--data", data];
    args.extend_from_slice(extra);
    run_herald(&args, Duration::from_secs(60))
}

/// The segment files of a data directory, oldest first.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read data dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() == 24 && n.ends_with(".log"))
        })
        .collect();
    files.sort();
    files
}

/// Total size in bytes of the segment files.
pub fn log_bytes(dir: &Path) -> u64 {
    segment_files(dir)
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// A record's place in a segment: start offset of its frame and payload length.
#[derive(Debug, Clone, Copy)]
pub struct RecordPos {
    pub start: usize,
    pub len: usize,
}

impl RecordPos {
    /// Offset just past this record.
    pub fn end(&self) -> usize {
        self.start + 8 + self.len
    }
}

/// Walks the records of one segment's bytes: from offset 24, `len + 8` per
/// record, until a zero length or the end of the data.
pub fn walk_records(bytes: &[u8]) -> Vec<RecordPos> {
    assert!(
        bytes.len() >= HEADER_BYTES,
        "segment shorter than its header"
    );
    assert_eq!(&bytes[..8], b"HRLDLOG\0", "segment magic");
    let mut out = Vec::new();
    let mut pos = HEADER_BYTES;
    while pos + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        assert!(
            pos + 8 + len <= bytes.len(),
            "record at {pos} runs past the file"
        );
        out.push(RecordPos { start: pos, len });
        pos += 8 + len;
    }
    out
}

/// The payload kind byte of a record.
pub fn record_kind(bytes: &[u8], r: RecordPos) -> u8 {
    bytes[r.start + 8]
}

/// Copies a data directory's files (not the lock state: a copy is unlocked).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("file type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy file");
        }
    }
}

/// A raw line connection that returns `None` when the server goes away
/// (for tests that kill the server under it).
pub struct RawConn {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl RawConn {
    /// Connects and reads the greeting.
    pub fn connect(addr: SocketAddr, read_timeout: Duration) -> RawConn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(read_timeout)).unwrap();
        stream.set_nodelay(true).unwrap();
        let writer = stream.try_clone().unwrap();
        let mut conn = RawConn {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = conn
            .line_within(Duration::from_secs(20))
            .expect("greeting before EOF");
        assert!(greeting.starts_with("+OK "), "greeting: {greeting}");
        conn
    }

    /// Next line without CRLF. `Ok(None)`: EOF or reset (server gone).
    /// `Err(())`: read timeout.
    pub fn line(&mut self) -> Result<Option<String>, ()> {
        read_line(&mut self.reader)
    }

    /// Next line, waiting through read timeouts up to `limit` (panics
    /// after it); `None` on EOF.
    pub fn line_within(&mut self, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            match self.line() {
                Ok(line) => return line,
                Err(()) => assert!(Instant::now() < deadline, "no line within {limit:?}"),
            }
        }
    }

    /// Sends one line; false if the server is gone.
    pub fn send(&mut self, line: &str) -> bool {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.writer.write_all(&bytes).is_ok()
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.reader.get_ref().set_read_timeout(Some(t)).unwrap();
    }
}

/// Next line without CRLF from a server connection. `Ok(None)`: EOF or
/// reset (server gone). `Err(())`: read timeout (the server was quiet).
pub fn read_line(reader: &mut BufReader<TcpStream>) -> Result<Option<String>, ()> {
    let mut buf = Vec::new();
    loop {
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(_) => {
                if !buf.ends_with(b"\r\n") {
                    // Cut mid-line by the server dying.
                    return Ok(None);
                }
                buf.truncate(buf.len() - 2);
                return Ok(Some(String::from_utf8(buf).expect("server wrote UTF-8")));
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                // `read_until` keeps what it read in `buf`: a line begun
                // is finished (or cut by EOF) on the next read.
                if buf.is_empty() {
                    return Err(());
                }
            }
            Err(_) => return Ok(None),
        }
    }
}

/// Sorts `(publish_index, priority, id)` into delivery order: priority
/// descending, then publish order.
pub fn delivery_order(mut events: Vec<(usize, u8, String)>) -> Vec<String> {
    events.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    events.into_iter().map(|e| e.2).collect()
}

/// The pid of the running `herald serve` whose command line names `data`.
pub fn serve_pid(data: &Path) -> Option<u32> {
    let needle = data.to_str()?.as_bytes().to_vec();
    for entry in std::fs::read_dir("/proc").ok()? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.contains(&&b"serve"[..]) && args.contains(&needle.as_slice()) {
            return Some(pid);
        }
    }
    None
}

/// A field of `/proc/<pid>/io` (e.g. `write_bytes`), if readable.
pub fn proc_io(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

/// A connection that holds durable name `name` (retrying while the
/// broker still sees the previous connection that used it).
pub fn hold_name(server: &Server, name: &str) -> Client {
    let deadline = Instant::now() + LINE_TIMEOUT;
    loop {
        let mut c = server.connect();
        let reply = c.cmd(&format!("name {name}"));
        if reply == format!("+OK name {name}") {
            return c;
        }
        assert_eq!(err_code(&reply), "name_in_use");
        assert!(Instant::now() < deadline, "{name} stays in use");
        std::thread::sleep(Duration::from_millis(10));
    }
}

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
