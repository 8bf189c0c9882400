//! PROTOCOL.md §16.1 `GET /`: the web console in a real browser. Starts the
//! release binary on ephemeral ports with a temporary data directory, then
//! runs `tests/browser/console.mjs` under node, which drives Debian's
//! headless Chromium with playwright-core: it loads the console, sees a
//! topic created over TCP appear, publishes through the form and sees the
//! counts change (the script's steps say the rest). The test then checks,
//! over the protocol, that the form's publish really reached the broker.
//!
//! playwright-core comes from `tests/browser/package-lock.json`: `.ci/run`
//! runs `npm ci` there, and this test runs it too when the package is
//! missing. Without node, npm or `/usr/bin/chromium` (or `$CHROMIUM`) the
//! test says so and passes, unless `CI=true`: CI must run it, so there it
//! fails.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest the browser script may take (it takes about 15 s here).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Skips (prints why, passes) outside CI; fails in CI.
fn unavailable(why: &str) {
    assert!(
        !in_ci(),
        "the console's browser test cannot run in CI: {why}"
    );
    eprintln!(
        "console_browser: SKIPPED, {why} (install Debian's chromium and nodejs/npm; \
         under CI=true this fails)"
    );
}

fn works(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// playwright-core under `tests/browser/node_modules`, installed from the
/// lock file if it is not there yet.
fn playwright_ready() -> Result<(), String> {
    let dir = browser_dir();
    if dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return Ok(());
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("npm cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`npm ci` in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn console_in_chromium_shows_topics_publishes_and_counts() {
    if !works(Command::new("node").arg("--version")) {
        return unavailable("node is not installed");
    }
    if !works(Command::new(chromium()).arg("--version")) {
        return unavailable(&format!("{} does not run", chromium().display()));
    }
    if let Err(why) = playwright_ready() {
        return unavailable(&why);
    }

    let server = Server::start();
    let http = server.http_addr();
    let started = Instant::now();
    let mut node = Command::new("node");
    clear_herald_env(&mut node);
    let mut child = node
        .arg("console.mjs")
        .current_dir(browser_dir())
        .env("HERALD_HTTP", http.to_string())
        .env("HERALD_ADDR", server.addr.to_string())
        .env("CHROMIUM", chromium())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    // Read both pipes on threads so a chatty run cannot block on a full pipe.
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().expect("piped stdout")));
    let err = read(Box::new(child.stderr.take().expect("piped stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break child.wait().expect("reap node");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    assert!(
        status.success() && out.contains("step: done"),
        "the browser script failed ({status}, {:.1} s):\n{out}{err}\nserver log:\n{}",
        started.elapsed().as_secs_f64(),
        server.logs()
    );
    eprintln!(
        "console_browser: {} steps in {:.1} s",
        out.lines().filter(|l| l.starts_with("step: ")).count(),
        started.elapsed().as_secs_f64()
    );

    // What the form published is in the broker, as the protocol sees it.
    let mut client = server.connect();
    let stats = client.cmd("stats orders");
    assert!(stats.contains(r#""published":2"#), "{stats}");
    let peeked = client.cmd("peek orders 5 sub=billing");
    assert!(
        peeked.contains(r#""id":"from-the-console","priority":7,"msg":{"hello":"console"}"#),
        "{peeked}"
    );
}
