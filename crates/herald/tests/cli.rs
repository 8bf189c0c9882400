//! `herald pub/sub/topics/stats/ping` as a user runs them, against a real broker.
mod common;

use common::{Server, err_code};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `herald <args>` talking to `server`.
fn herald(server: &Server, args: &[&str]) -> Command {
    let mut cmd = common::herald();
    cmd.args(args).env("HERALD_ADDR", server.addr.to_string());
    cmd
}

fn run(server: &Server, args: &[&str]) -> Output {
    herald(server, args).output().expect("run herald")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs and expects success; returns stdout.
fn ok(server: &Server, args: &[&str]) -> String {
    let out = run(server, args);
    assert!(
        out.status.success(),
        "herald {args:?} failed: {}",
        stderr(&out)
    );
    stdout(&out)
}

/// Runs and expects one line on stderr and a non-zero exit; returns the line.
fn fails(server: &Server, args: &[&str]) -> String {
    let out = run(server, args);
    assert!(!out.status.success(), "herald {args:?} succeeded");
    let err = stderr(&out);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    err
}

/// Waits until `topic` has `n` subscribers (a started `herald sub` is ready).
fn wait_subscribers(server: &Server, topic: &str, n: u64) {
    let mut client = server.connect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = client.cmd(&format!("stats {topic}"));
        let json: serde_json::Value =
            serde_json::from_str(reply.trim_start_matches("+OK ")).expect("stats JSON");
        if json["topics"][topic]["subscribers"] == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no subscriber on {topic}: {reply}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sub_prints_deliveries_as_they_come_and_acks_them() {
    let server = Server::start();
    assert_eq!(server.connect().cmd("create tweets"), "+OK created tweets");
    let mut sub = herald(&server, &["sub", "tweets", "--count", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_subscribers(&server, "tweets", 1);
    assert_eq!(
        ok(
            &server,
            &[
                "pub",
                "tweets",
                "--id",
                "1",
                "--priority",
                "3",
                "--msg",
                "hi"
            ]
        ),
        "published tweets 1\n"
    );
    let mut lines = BufReader::new(sub.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["id"], "1");
    assert_eq!(first["priority"], 3);
    assert_eq!(first["msg"], "hi");
    assert_eq!(first["topic"], "tweets");
    assert!(first["timestamp"].as_u64().is_some());
    assert!(first.get("redelivered").is_none());

    ok(
        &server,
        &["pub", "tweets", r#"{"id":"2","priority":1,"msg":"low"}"#],
    );
    let second: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(second["id"], "2");
    assert!(lines.next().is_none());
    assert!(sub.wait().unwrap().success(), "sub exits after --count");

    let stats = ok(&server, &["stats", "tweets", "--json"]);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["topics"]["tweets"]["published"], 2);
    assert_eq!(stats["topics"]["tweets"]["pending"], 0);
    assert_eq!(stats["topics"]["tweets"]["in_flight"], 0);
}

#[test]
fn a_durable_sub_gets_what_was_queued_by_priority() {
    let server = Server::start();
    server.connect().cmd("create tweets");
    // Registers the durable subscriber, which then queues while away.
    ok(
        &server,
        &["sub", "tweets", "--name", "reader", "--count", "0"],
    );
    ok(
        &server,
        &[
            "pub",
            "tweets",
            "--id",
            "1",
            "--priority",
            "3",
            "--msg",
            "mid",
        ],
    );
    ok(
        &server,
        &["pub", "tweets", r#"{"id":"2","priority":1,"msg":"low"}"#],
    );
    ok(
        &server,
        &[
            "pub",
            "tweets",
            "--id",
            "3",
            "--priority",
            "9",
            "--msg",
            r#"{"k":1}"#,
            "--msg-json",
        ],
    );
    let out = ok(
        &server,
        &[
            "sub",
            "tweets",
            "--name",
            "reader",
            "--count",
            "3",
            "--prefetch",
            "2",
        ],
    );
    let got: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = got.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["3", "1", "2"]);
    assert_eq!(got[0]["msg"]["k"], 1);
    let stats = ok(&server, &["stats", "tweets", "--json"]);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["topics"]["tweets"]["pending"], 0);
    assert_eq!(stats["topics"]["tweets"]["in_flight"], 0);
}

#[test]
fn pub_says_duplicate_while_the_id_is_pending() {
    let server = Server::start();
    let mut holder = server.connect();
    holder.cmd("create t");
    assert_eq!(holder.cmd("sub t 1"), "+OK subscribed t");
    let event = r#"{"id":7,"msg":"x"}"#;
    assert_eq!(ok(&server, &["pub", "t", event]), "published t 7\n");
    assert_eq!(ok(&server, &["pub", "t", event]), "duplicate t 7\n");
}

#[test]
fn pub_reads_stdin_and_prints_a_summary() {
    let server = Server::start();
    let mut holder = server.connect();
    holder.cmd("create t");
    holder.cmd("sub t 1");
    let mut child = herald(&server, &["pub", "t"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for i in 0..500 {
        input.push_str(&format!(
            "{{\"id\":\"{i}\",\"priority\":{},\"msg\":\"m{i}\"}}\n",
            i % 7
        ));
    }
    input.push_str("\nnot json\n{\"id\":\"0\",\"msg\":\"again\"}\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "published 500, duplicates 1, errors 1\n");
    assert!(
        !out.status.success(),
        "a refused line makes the exit non-zero"
    );
    let err = stderr(&out);
    assert!(
        err.contains("line 502") && err.contains("bad_event"),
        "{err}"
    );

    let mut all_good = herald(&server, &["pub", "t"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    all_good
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"id\":\"x\",\"msg\":1}\n")
        .unwrap();
    let out = all_good.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out), "published 1, duplicates 0, errors 0\n");
}

#[test]
fn errors_are_one_line_on_stderr_with_a_non_zero_exit() {
    let server = Server::start();
    assert!(fails(&server, &["sub", "missing"]).contains("no_topic"));
    assert!(fails(&server, &["stats", "missing"]).contains("no_topic"));
    assert!(fails(&server, &["pub", "t", "{}"]).contains("bad_event"));
    assert!(fails(&server, &["pub", "bad topic", "--id", "1", "--msg", "x"]).contains("bad_topic"));
    let refused = fails(&server, &["ping", "--addr", "127.0.0.1:1"]);
    assert!(
        refused.contains("cannot connect to 127.0.0.1:1"),
        "{refused}"
    );
}

#[test]
fn topics_stats_and_ping() {
    let server = Server::start();
    let mut c = server.connect();
    c.cmd("create users");
    c.cmd("create tweets");
    c.cmd("sub tweets 2");
    assert_eq!(err_code(&c.cmd("sub nope")), "no_topic");
    ok(&server, &["pub", "tweets", "--id", "1", "--msg", "a"]);
    ok(&server, &["pub", "tweets", "--id", "2", "--msg", "b"]);
    ok(&server, &["pub", "tweets", "--id", "3", "--msg", "c"]);

    let mut topics: Vec<String> = ok(&server, &["topics"]).lines().map(String::from).collect();
    topics.sort();
    assert_eq!(topics, ["tweets", "users"]);

    let table = ok(&server, &["stats"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["TOPIC", "SUBSCRIBERS", "PENDING", "IN_FLIGHT", "PUBLISHED"]
    );
    assert!(
        rows.contains(&vec!["tweets", "1", "1", "2", "3"]),
        "{table}"
    );
    assert!(rows.contains(&vec!["users", "0", "0", "0", "0"]), "{table}");

    let pong = ok(&server, &["ping", "--addr", &server.addr.to_string()]);
    assert!(
        pong.starts_with("pong ") && pong.trim_end().ends_with(" ms"),
        "{pong}"
    );
}

#[test]
fn a_named_sub_without_ack_leaves_the_event_queued() {
    let server = Server::start();
    let mut c = server.connect();
    c.cmd("create jobs");
    ok(
        &server,
        &["sub", "jobs", "--name", "worker", "--count", "0"],
    );
    ok(&server, &["pub", "jobs", "--id", "j1", "--msg", "do it"]);
    let out = ok(
        &server,
        &[
            "sub",
            "jobs",
            "--name",
            "worker",
            "--no-ack",
            "--count",
            "1",
            "--prefetch",
            "5",
        ],
    );
    assert!(out.contains("\"id\":\"j1\""), "{out}");
    // Back in the durable queue once the connection closed, and redelivered.
    let out = ok(
        &server,
        &["sub", "jobs", "--name", "worker", "--count", "1"],
    );
    let again: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
    assert_eq!(again["id"], "j1");
    assert_eq!(again["redelivered"], true);
}

#[test]
fn bench_spawns_a_broker_and_reports_json() {
    let out = common::herald()
        .args(["bench", "--spawn", "--fsync", "interval", "--json"])
        .args([
            "--messages",
            "300",
            "--publishers",
            "2",
            "--subscribers",
            "3",
        ])
        .args(["--topics", "2", "--prefetch", "8", "--window", "50"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["published"], 600);
    assert_eq!(report["errors"], 0);
    // Subscribers 0 and 2 read topic 0 (publisher 0), subscriber 1 topic 1.
    assert_eq!(report["acked"], 900);
    assert_eq!(report["e2e_latency"]["count"], 900);
    assert_eq!(report["confirm_latency"]["count"], 600);
    assert!(report["broker_peak_rss_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn bench_against_a_running_broker_prints_a_table() {
    let server = Server::start();
    let out = ok(&server, &["bench", "--messages", "200", "--prefetch", "4"]);
    assert!(out.contains("published          200"), "{out}");
    assert!(out.contains("acked              200"), "{out}");
    assert!(out.contains("end-to-end"), "{out}");
    assert!(
        !out.contains("RSS"),
        "no RSS for a broker it did not start: {out}"
    );
}
