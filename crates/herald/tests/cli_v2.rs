//! The command line's version 2 flags as a user runs them, against a real
//! broker: `sub` with group and retry options, `peek`, `create --ttl`,
//! `pub --ttl/--delay/--not-before`, `serve --replies`, and the messages
//! of the common mistakes.
mod common;

use common::{Server, eventually};
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Longest a command may run before the test fails.
const COMMAND_LIMIT: Duration = Duration::from_secs(30);

/// Runs `herald <args>` against `server`; fails the test if it does not
/// finish in time (a `sub` waiting for an event that never comes).
fn herald(server: &Server, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env("HERALD_ADDR", server.addr.to_string())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herald");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + COMMAND_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("herald {args:?} still running after {COMMAND_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Runs and expects success; returns stdout.
fn ok(server: &Server, args: &[&str]) -> String {
    let out = herald(server, args);
    assert!(
        out.status.success(),
        "herald {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs and expects failure; returns stderr.
fn fails(server: &Server, args: &[&str]) -> String {
    let out = herald(server, args);
    assert!(!out.status.success(), "herald {args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn mistakes_say_what_to_do() {
    let server = Server::start();
    let err = fails(&server, &["sub", "tweets"]);
    assert_eq!(
        err.trim_end(),
        "herald: sub tweets: no_topic: topic 'tweets' does not exist; create it with \
         `herald create tweets`, or pass --create"
    );
    // The cause of a refused connection, once.
    let err = fails(&server, &["ping", "--addr", "127.0.0.1:1"]);
    assert_eq!(err.matches("refused").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let err = fails(&server, &["sub", "t", "--wait", "1d"]);
    assert!(err.contains("30s"), "{err}");
    let err = fails(&server, &["sub", "t", "--create", "--max-deliveries", "0"]);
    assert!(err.contains("max_deliveries"), "{err}");
    let err = fails(&server, &["peek", "t", "--group", "g"]);
    assert!(err.contains("not_subscribed"), "{err}");
    let err = fails(
        &server,
        &[
            "pub",
            "t",
            "--id",
            "1",
            "--msg",
            "x",
            "--delay",
            "1s",
            "--not-before",
            "1",
        ],
    );
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn help_explains_the_units() {
    let server = Server::start();
    let help = ok(&server, &["sub", "--help"]);
    for flag in [
        "--group",
        "--wait",
        "--backoff",
        "--max-deliveries",
        "--dead",
        "--age",
        "--limit",
        "--limit-bytes",
        "--overflow",
        "--create",
        "--ack-after",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    assert!(help.contains("1500 (ms), 1500ms, 30s, 2m or 1h"), "{help}");
    let help = ok(&server, &["pub", "--help"]);
    assert!(help.contains("RFC 3339"), "{help}");
}

#[test]
fn a_group_worker_sees_redeliveries_and_dead_letters_are_peeked() {
    let server = Server::start();
    // The dead topic needs a subscriber before anything dies.
    assert_eq!(ok(&server, &["create", "jobs"]), "created jobs\n");
    let out = ok(
        &server,
        &[
            "sub",
            "jobs.dead",
            "--create",
            "--group",
            "morgue",
            "--count",
            "0",
        ],
    );
    assert_eq!(out, "");
    let worker = [
        "sub",
        "jobs",
        "--group",
        "workers",
        "--wait",
        "200ms",
        "--max-deliveries",
        "2",
        "--count",
    ];
    // The group must exist before the publish (a topic without
    // subscriptions drops what is published to it).
    ok(&server, &[&worker[..], &["0"]].concat());
    ok(&server, &["pub", "jobs", "--id", "p1", "--msg", "poison"]);
    // Never acked: returned at each deadline, dead after 2 deliveries.
    let out = ok(&server, &[&worker[..], &["2", "--no-ack"]].concat());
    let got = json_lines(&out);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["id"], "p1");
    assert!(got[0].get("deliveries").is_none());
    assert_eq!(got[1]["redelivered"], true);
    assert_eq!(got[1]["deliveries"], 2);

    // The worker left with the event in flight: it went back to the group,
    // was delivered twice already, so it is dead-lettered.
    assert!(eventually(Duration::from_secs(10), || {
        let table = ok(&server, &["peek", "jobs.dead", "--group", "morgue"]);
        table.contains("workers/p1")
    }));
    let peeked = json_lines(&ok(
        &server,
        &["peek", "jobs.dead", "--group", "morgue", "--json"],
    ));
    assert_eq!(peeked.len(), 1);
    assert_eq!(peeked[0]["state"], "queued");
    let dead = &peeked[0]["event"]["dead"];
    assert_eq!(dead["reason"], "max_deliveries");
    assert_eq!(dead["subscription"], "workers");
    let table = ok(&server, &["peek", "jobs.dead", "--group", "morgue"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["STATE", "DELIVERIES", "TIME", "PRIORITY", "ID", "MSG"]
    );

    let stats = ok(&server, &["stats", "jobs"]);
    assert!(stats.contains("dead_lettered 1"), "{stats}");
    assert!(
        stats.contains("group=workers wait=200 max_deliveries=2"),
        "{stats}"
    );
}

#[test]
fn pub_time_flags_and_create_ttl() {
    let server = Server::start();
    assert_eq!(
        ok(&server, &["create", "mail", "--ttl", "1h"]),
        "created mail\n"
    );
    ok(&server, &["sub", "mail", "--group", "post", "--count", "0"]);
    let out = ok(
        &server,
        &[
            "pub", "mail", "--id", "d", "--msg", "later", "--delay", "1h",
        ],
    );
    assert_eq!(out, "published mail d\n");
    ok(
        &server,
        &[
            "pub",
            "mail",
            r#"{"id":"t","msg":"soon gone"}"#,
            "--ttl",
            "20s",
        ],
    );
    let in_an_hour = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 3_600_000;
    let at = in_an_hour.to_string();
    ok(
        &server,
        &[
            "pub",
            "mail",
            "--id",
            "nb",
            "--msg",
            "x",
            "--not-before",
            &at,
        ],
    );
    let err = fails(
        &server,
        &[
            "pub",
            "mail",
            "--id",
            "n2",
            "--msg",
            "x",
            "--not-before",
            "2099-01-01T00:00:00Z",
        ],
    );
    assert!(err.contains("at most 30 days ahead"), "{err}");
    let peeked = json_lines(&ok(&server, &["peek", "mail", "--group", "post", "--json"]));
    let states: Vec<(&str, &str)> = peeked
        .iter()
        .map(|p| {
            (
                p["state"].as_str().unwrap(),
                p["event"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    // Delayed ones by due time.
    assert_eq!(
        states,
        [("queued", "t"), ("delayed", "d"), ("delayed", "nb")]
    );
    assert_eq!(peeked[0]["event"]["ttl_ms"], 20_000);
    assert_eq!(peeked[1]["event"]["delay_ms"], 3_600_000);
    assert!(peeked[1]["due_ms"].as_u64().unwrap() > 3_500_000);
    assert_eq!(peeked[2]["event"]["not_before"], in_an_hour);

    let err = fails(
        &server,
        &[
            "pub",
            "mail",
            r#"{"id":"x","msg":1,"ttl_ms":5}"#,
            "--ttl",
            "1s",
        ],
    );
    assert!(err.contains("ttl_ms"), "{err}");
}

#[test]
fn serve_replies_errors_silences_publishes_of_new_connections() {
    let server = Server::start_with(&["--replies", "errors"]);
    let mut raw = server.connect();
    assert_eq!(raw.cmd("create t"), "+OK created t");
    raw.send(r#"pub t {"id":"1","msg":1}"#);
    raw.send(r#"pub t {"id":"2"}"#);
    assert!(raw.cmd("ping").starts_with("-ERR bad_event"));
    assert_eq!(raw.reply(), "+OK pong");
    // The command line still gets its answers.
    assert_eq!(
        ok(&server, &["pub", "t", "--id", "3", "--msg", "x"]),
        "published t 3\n"
    );
}

#[test]
fn a_worker_is_told_when_its_dead_letters_would_reach_nobody() {
    let server = Server::start();
    let worker = [
        "sub",
        "jobs",
        "--create",
        "--group",
        "w",
        "--max-deliveries",
        "2",
        "--count",
        "0",
    ];
    let out = herald(&server, &worker);
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("note: dead letters of 'jobs' go to 'jobs.dead', which has no subscriber")
            && err.contains("herald sub jobs.dead --create --group dead"),
        "{err}"
    );
    ok(
        &server,
        &[
            "sub",
            "jobs.dead",
            "--create",
            "--group",
            "dead",
            "--count",
            "0",
        ],
    );
    let out = herald(&server, &worker);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stderr).unwrap(), "");
    // No note without dead letters, or when they are dropped on purpose.
    for extra in [&["--max-deliveries", "2", "--dead", "none"][..], &[]] {
        let args = [&["sub", "other", "--create", "--count", "0"][..], extra].concat();
        let out = herald(&server, &args);
        assert!(out.status.success());
        assert_eq!(String::from_utf8(out.stderr).unwrap(), "", "{args:?}");
    }
}
