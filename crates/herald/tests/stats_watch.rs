//! `herald stats --watch`: a live view of rates and per-topic counts, one
//! block per refresh when stdout is not a terminal, ended by `--count` or
//! Ctrl-C.
mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The number in the `published/s` header of a block, if it has one.
fn published_rate(block: &str) -> Option<f64> {
    let line = block.lines().find(|l| l.starts_with("published/s"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn blocks_show_rates_from_successive_stats_and_counts_per_topic() {
    let server = Server::start();
    let http = server.http_addr().to_string();
    let addr = server.addr.to_string();
    let mut c = server.connect();
    c.cmd("create quiet");
    // A publisher that keeps going while the view refreshes, so the rates
    // between refreshes cannot be zero.
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let stop = stop.clone();
        let mut p = server.connect();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let reply = p.cmd(&pub_line("busy", &n.to_string(), 0, "m"));
                assert!(reply.starts_with("+OK published"), "{reply}");
            }
            n
        })
    };
    let out = run_herald(
        &[
            "stats",
            "--watch",
            "--addr",
            &addr,
            "--http",
            &http,
            "--interval",
            "300ms",
            "--count",
            "3",
        ],
        Duration::from_secs(30),
    );
    stop.store(true, Ordering::Relaxed);
    let published = publisher.join().unwrap();
    assert_eq!(out.code, Some(0), "{out:?}");
    // Not a terminal: no escape codes, one block per refresh.
    assert!(!out.stdout.contains('\x1b'), "{:?}", out.stdout);
    let blocks: Vec<&str> = out
        .stdout
        .split("herald ")
        .filter(|b| !b.is_empty())
        .collect();
    assert_eq!(blocks.len(), 3, "{}", out.stdout);
    // The first block has nothing to compute a rate from.
    assert!(blocks[0].contains("published/s         -"), "{}", blocks[0]);
    for block in &blocks[1..] {
        assert!(published_rate(block).is_some_and(|r| r > 0.0), "{block}");
        let busy = block
            .lines()
            .find(|l| l.starts_with("busy "))
            .unwrap_or_else(|| panic!("no busy row: {block}"));
        let cells: Vec<&str> = busy.split_whitespace().collect();
        assert!(cells[1].parse::<f64>().is_ok_and(|r| r > 0.0), "{busy}");
        let quiet = block.lines().find(|l| l.starts_with("quiet ")).unwrap();
        assert_eq!(quiet.split_whitespace().nth(1), Some("0.0"), "{quiet}");
        // The HTTP API answered: totals, and delivered/acked rates.
        assert!(block.contains("totals: published "), "{block}");
        assert!(block.contains("delivered/s       0.0"), "{block}");
    }
    // Counts are the broker's: the last block's `published` of busy is at
    // most what the publisher sent.
    let last = blocks[2].lines().find(|l| l.starts_with("busy ")).unwrap();
    let count: u64 = last.split_whitespace().last().unwrap().parse().unwrap();
    assert!(count > 0 && count <= published, "{last} vs {published}");
}

#[test]
fn without_the_http_api_it_says_so_and_shows_the_protocol_counts() {
    let server = Server::start();
    let mut c = server.connect();
    c.cmd("create t");
    // A port nothing listens on: bind one, note it, close it.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let addr = server.addr.to_string();
    let out = run_herald(
        &[
            "stats", "--watch", "--addr", &addr, "--http", &dead_addr, "--count", "1",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains("delivered and acked come from the HTTP API"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("connections -"), "{}", out.stdout);
    let row = out.stdout.lines().find(|l| l.starts_with("t ")).unwrap();
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["t", "-", "0", "0", "0", "0", "0"]
    );
    // `--http off` does not ask.
    let out = run_herald(
        &[
            "stats", "--watch", "--addr", &addr, "--http", "off", "--count", "1",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!out.stdout.contains("HTTP API"), "{}", out.stdout);
}

#[test]
fn ctrl_c_ends_the_view_cleanly() {
    let server = Server::start();
    let mut child = herald()
        .args(["stats", "--watch", "--http", "off", "--interval", "200ms"])
        .args(["--addr", &server.addr.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn herald");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Two refreshes seen: the view is running.
    let mut headers = 0;
    while headers < 2 {
        let line = lines.next().expect("a line").expect("UTF-8");
        if line.starts_with("herald ") {
            headers += 1;
        }
    }
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn watch_options_need_watch_and_json_excludes_it() {
    let out = run_herald(&["stats", "--count", "2"], Duration::from_secs(10));
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("--watch"), "{}", out.stderr);
    let out = run_herald(&["stats", "--watch", "--json"], Duration::from_secs(10));
    assert_eq!(out.code, Some(2), "{out:?}");
}
