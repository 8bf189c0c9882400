//! An overlong line is discarded as it arrives, not buffered whole
//! (`docs/protocol.md` section 2): the broker's peak memory, read from
//! `/proc` for the `herald serve` process, stays flat while a client sends a
//! 128 MiB line. Needs Linux's `/proc`: elsewhere it says so and passes,
//! except under `CI=true`, where it fails (`skip_unless_ci`).
mod common;
use common::*;

use std::io::Write;

/// Peak resident memory of a process, in KiB (Linux).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[test]
fn an_overlong_line_is_discarded_as_it_arrives_not_buffered_whole() {
    let server = Server::start();
    let pid = server.pid().expect("running");
    let Some(before) = peak_rss_kib(pid) else {
        skip_unless_ci("no /proc to read the broker's peak memory from");
        return;
    };
    let mut c = server.connect();
    let mut w = c.clone_writer();
    const LINE_MIB: usize = 128;
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'y'; 1024 * 1024];
        for _ in 0..LINE_MIB {
            w.write_all(&chunk).unwrap();
        }
        w.write_all(b"\nping\n").unwrap();
    });
    assert_eq!(err_code(&c.reply()), "line_too_long");
    assert_eq!(c.reply(), "+OK pong");
    sender.join().unwrap();
    let after = peak_rss_kib(pid).unwrap();
    assert!(
        after < before + 32 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB for a {LINE_MIB} MiB line"
    );
}
