//! The README's "Running the broker": `herald serve` on the command line, its flags and
//! environment variables, and a clean exit on SIGINT / SIGTERM.
mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Runs a command that must finish by itself within 30 s.
fn run(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn herald");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "herald still running after 30 s; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// A `herald serve` started with exactly `args` and `envs`.
struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `herald serve args` with `envs`; waits for its "listening" log line.
fn serve(args: &[&str], envs: &[(&str, &str)]) -> Serve {
    let mut cmd = herald();
    cmd.arg("serve")
        .args(args)
        .env("HERALD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn herald");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut logs = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let addr = line
                    .contains("listening")
                    .then(|| {
                        line.split_whitespace()
                            .find_map(|w| w.strip_prefix("addr="))
                    })
                    .flatten()
                    .map(|a| a.parse().expect("address"));
                logs.push(line);
                if let Some(addr) = addr {
                    return Serve { child, addr };
                }
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                panic!(
                    "herald serve did not start ({status}):\n{}",
                    logs.join("\n")
                );
            }
        }
    }
}

#[test]
fn help_exits_zero_and_serve_help_documents_the_flags() {
    let out = run(herald().arg("--help"));
    assert!(out.status.success(), "herald --help: {:?}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("serve"),
        "herald --help does not mention serve:\n{text}"
    );

    let out = run(herald().args(["serve", "--help"]));
    assert!(
        out.status.success(),
        "herald serve --help: {:?}",
        out.status
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["--listen", "--data", "--fsync", "always", "interval"] {
        assert!(text.contains(word), "serve --help lacks {word}:\n{text}");
    }
    for var in ["HERALD_LISTEN", "HERALD_DATA", "HERALD_FSYNC"] {
        assert!(text.contains(var), "serve --help lacks {var}:\n{text}");
    }
    let out = run(herald().args(["help", "serve"]));
    assert!(out.status.success());
}

#[test]
fn version_flag_prints_the_version() {
    let out = run(herald().arg("--version"));
    assert!(out.status.success(), "{:?}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
}

#[test]
fn unknown_flags_and_commands_exit_non_zero() {
    for args in [
        &["--bogus"][..],
        &["serve", "--bogus"],
        &["serve", "--listen"],
        &["no-such-command"],
    ] {
        let out = run(herald().args(args));
        assert!(
            !out.status.success(),
            "herald {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!out.stderr.is_empty(), "herald {args:?} failed silently");
    }
}

#[test]
fn bad_fsync_mode_fails_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();
    let from_env = run(herald()
        .args(["serve", "--listen", "127.0.0.1:0", "--data", data])
        .env("HERALD_FSYNC", "bogus"));
    let from_flag = run(herald().args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        data,
        "--fsync",
        "bogus",
    ]));
    for out in [from_env, from_flag] {
        assert!(!out.status.success(), "serve with fsync=bogus started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("bogus") && err.to_lowercase().contains("fsync"),
            "message does not say what is wrong: {err}"
        );
    }
}

#[test]
fn environment_variables_configure_serve_and_flags_win() {
    let tmp = tempfile::tempdir().unwrap();
    let env_data = tmp.path().join("env-data");
    // Everything from the environment.
    let s = serve(
        &[],
        &[
            ("HERALD_LISTEN", "127.0.0.1:0"),
            ("HERALD_DATA", env_data.to_str().unwrap()),
            ("HERALD_FSYNC", "interval"),
        ],
    );
    assert!(s.addr.ip().is_loopback(), "{}", s.addr);
    let mut c = Client::connect(s.addr);
    assert_eq!(c.cmd(&pub_line("t", "1", 0, "m")), "+OK published t 1");
    assert!(env_data.is_dir(), "HERALD_DATA not used");
    drop(c);
    drop(s);

    // Flags win over bad variables.
    let flag_data = tmp.path().join("flag-data");
    let s = serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data",
            flag_data.to_str().unwrap(),
            "--fsync",
            "always",
        ],
        &[
            ("HERALD_LISTEN", "not-an-address"),
            ("HERALD_DATA", "/proc/no/such/dir"),
            ("HERALD_FSYNC", "bogus"),
        ],
    );
    let mut c = Client::connect(s.addr);
    assert_eq!(c.cmd(&pub_line("t", "1", 0, "m")), "+OK published t 1");
    assert!(flag_data.is_dir(), "--data not used");
}

#[test]
fn serve_on_a_busy_port_exits_non_zero_naming_the_address() {
    let busy = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let addr = busy.addr.to_string();
    let out = run(herald().args([
        "serve",
        "--listen",
        addr.as_str(),
        "--data",
        tmp.path().join("data").to_str().unwrap(),
    ]));
    assert!(!out.status.success(), "second broker on {addr} started");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr), "message does not name {addr}: {err}");
    // The first broker is unaffected.
    assert_eq!(busy.connect().cmd("ping"), "+OK pong");
}

#[test]
fn listen_accepts_a_host_name() {
    let tmp = tempfile::tempdir().unwrap();
    let s = serve(
        &[
            "--listen",
            "localhost:0",
            "--data",
            tmp.path().join("data").to_str().unwrap(),
        ],
        &[],
    );
    assert!(s.addr.ip().is_loopback(), "{}", s.addr);
    assert_eq!(Client::connect(s.addr).cmd("ping"), "+OK pong");
}

#[test]
fn fsync_interval_serves_the_protocol() {
    let server = Server::start_with(&["--fsync", "interval"]);
    let mut c = server.connect();
    assert_eq!(c.cmd("create t"), "+OK created t");
    assert_eq!(c.cmd("sub t"), "+OK subscribed t");
    assert_eq!(c.cmd(&pub_line("t", "1", 0, "m")), "+OK published t 1");
    assert_eq!(c.delivery()["id"], "1");
    assert_eq!(c.cmd("ack t 1"), "+OK acked t 1");
}

#[test]
fn sigterm_and_sigint_exit_zero() {
    for signal in ["TERM", "INT"] {
        let mut server = Server::start();
        let mut c = server.connect();
        assert_eq!(c.cmd(&pub_line("t", "1", 0, "m")), "+OK published t 1");
        assert_eq!(
            server.stop_with(signal),
            Some(0),
            "exit code after SIG{signal}"
        );
        // The connection is closed by the exit.
        let line = c.line();
        assert!(line.is_none(), "after SIG{signal}: {line:?}");
    }
}
