//! A full disk: publishes are refused with `-ERR unavailable` and nothing is
//! stored, nothing already confirmed is lost, and the broker takes changes
//! again by itself once space returns.
//!
//! The data directory lives on a small tmpfs mounted for the test (this
//! needs root, which the project's machines and CI have). Where mounting is
//! not allowed the test says so and does nothing (it cannot fake a disk),
//! except under `CI=true`, where it fails (`skip_unless_ci`).
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct Mount {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mount {
    fn tmpfs(size: &str) -> Option<Mount> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().join("fs");
        std::fs::create_dir(&path).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(Mount { path, _dir: dir })
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn fill(path: &Path, bytes: usize) {
    std::fs::write(path, vec![7u8; bytes]).expect("filler file fits");
}

#[test]
fn full_disk_refuses_publishes_then_recovers_when_space_returns() {
    let Some(mount) = Mount::tmpfs("6m") else {
        skip_unless_ci("disk_full: cannot mount a tmpfs here (not root?)");
        return;
    };
    let filler = mount.path.join("filler");
    fill(&filler, 3 * 1024 * 1024);
    let data = mount.path.join("data");
    let mut server = Server::start_on(&data, &["--segment-bytes", "524288"]);
    let mut sub = server.connect();
    assert_eq!(sub.cmd("create t"), "+OK created t");
    assert_eq!(sub.cmd("name keeper"), "+OK name keeper");
    assert_eq!(sub.cmd("sub t 1"), "+OK subscribed t");

    let mut publisher = server.connect();
    let msg = "x".repeat(900);
    let mut published = Vec::new();
    let mut refused = 0;
    for i in 0..20_000 {
        let reply = publisher.cmd(&pub_line("t", &i.to_string(), 0, &msg));
        if reply.starts_with("+OK published") {
            published.push(i);
        } else {
            assert_eq!(err_code(&reply), "unavailable", "{reply}");
            refused += 1;
            if refused == 3 {
                break;
            }
        }
    }
    assert!(refused > 0, "the disk never filled up");
    assert!(!published.is_empty());
    // The connection and the broker are still fine.
    assert_eq!(publisher.cmd("ping"), "+OK pong");
    assert!(eventually(Duration::from_secs(5), || server
        .logs()
        .contains("cannot start a new log segment")));

    // Space comes back: publishes are taken again without a restart, new
    // segments included.
    std::fs::remove_file(&filler).unwrap();
    let after: Vec<String> = (0..1500).map(|i| format!("after-{i}")).collect();
    for id in &after {
        let reply = publisher.cmd(&pub_line("t", id, 0, &msg));
        assert_eq!(reply, format!("+OK published t {id}"));
    }
    assert!(eventually(Duration::from_secs(5), || server
        .logs()
        .contains("log writable again")));

    // Everything confirmed is there after a restart, in order; nothing
    // refused is.
    assert_eq!(server.stop(), Some(0));
    server.restart(&["--segment-bytes", "524288"]);
    let mut sub = server.connect();
    assert_eq!(sub.cmd("name keeper"), "+OK name keeper");
    assert_eq!(sub.cmd("sub t 65535"), "+OK subscribed t");
    let mut got = Vec::new();
    for _ in 0..published.len() + after.len() {
        got.push(sub.delivery()["id"].as_str().unwrap().to_string());
    }
    let mut expected: Vec<String> = published.iter().map(|i| i.to_string()).collect();
    expected.extend(after);
    assert_eq!(got, expected);
    sub.assert_quiet();
}
