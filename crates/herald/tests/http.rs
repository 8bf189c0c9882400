//! PROTOCOL.md §16.1: the HTTP API of a running `herald serve`, every
//! endpoint with its shape and status codes, checked against what the
//! protocol itself answers.
mod common;
use common::*;

use serde_json::{Value, json};

fn put(addr: std::net::SocketAddr, path: &str, body: Option<&str>) -> HttpResponse {
    http_request(addr, "PUT", path, body.map(str::as_bytes))
}

fn post(addr: std::net::SocketAddr, path: &str, body: &str) -> HttpResponse {
    http_request(addr, "POST", path, Some(body.as_bytes()))
}

fn delete(addr: std::net::SocketAddr, path: &str) -> HttpResponse {
    http_request(addr, "DELETE", path, None)
}

#[test]
fn health_console_and_unknown_paths() {
    let server = Server::start();
    let http = server.http_addr();
    let r = http_get(http, "/healthz");
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    // The console: a page and its two files, revalidated on each load.
    for (path, content_type, needle) in [
        ("/", "text/html; charset=utf-8", "/console/app.js"),
        (
            "/console/app.js",
            "text/javascript; charset=utf-8",
            "/api/v1",
        ),
        (
            "/console/style.css",
            "text/css; charset=utf-8",
            "font-variant-numeric",
        ),
    ] {
        let r = http_get(http, path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(content_type), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{path}");
        assert!(
            r.header("etag").is_some_and(|t| t.starts_with('"')),
            "{r:?}"
        );
        assert!(r.body.contains(needle), "{path}: {}", r.body);
    }
    http_get(http, "/console/").assert_error(404, "not_found");
    http_get(http, "/console/nope.js").assert_error(404, "not_found");
    http_get(http, "/index.html").assert_error(404, "not_found");
    http_get(http, "/nope").assert_error(404, "not_found");
    http_get(http, "/api/v1/nope").assert_error(404, "not_found");
    http_get(http, "/api/v2/topics").assert_error(404, "not_found");
    let r = http_request(http, "POST", "/api/v1/overview", Some(b"{}"));
    r.assert_error(405, "method_not_allowed");
    assert!(
        r.header("allow").is_some_and(|a| a.contains("GET")),
        "{r:?}"
    );
    delete(http, "/api/v1/topics/t").assert_error(405, "method_not_allowed");
}

#[test]
fn overview_counts_since_start() {
    let server = Server::start();
    let http = server.http_addr();
    let mut sub = server.connect();
    sub.cmd("create t");
    sub.cmd("sub t 10");
    let mut publisher = server.connect();
    for i in 0..3 {
        assert!(
            publisher
                .cmd(&pub_line("t", &i.to_string(), 0, "m"))
                .starts_with("+OK published")
        );
    }
    for i in 0..3 {
        assert_eq!(sub.delivery()["id"], i.to_string());
    }
    sub.cmd("ack t 0");
    let o = http_get(http, "/api/v1/overview");
    assert_eq!(o.status, 200);
    let o = o.json();
    assert_eq!(o["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(o["fsync"], "always");
    assert!(o["uptime_ms"].as_u64().is_some());
    assert_eq!(o["connections"], 2);
    assert_eq!(o["topics"], 1);
    assert_eq!(
        (
            o["published"].as_u64(),
            o["delivered"].as_u64(),
            o["acked"].as_u64()
        ),
        (Some(3), Some(3), Some(1))
    );
    let keys: Vec<&str> = o.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 8, "{o}");
}

#[test]
fn topics_and_topic_detail_are_stats() {
    let server = Server::start();
    let http = server.http_addr();
    let mut c = server.connect();
    c.cmd("create a");
    c.cmd("create b");
    c.cmd("name worker");
    c.cmd("sub a 2 wait=30s");
    c.cmd(&pub_line("a", "1", 0, "x"));
    c.cmd(&pub_line("a", "2", 0, "x"));
    c.cmd(&pub_line("a", "3", 0, "x"));
    let _ = c.delivery();
    let r = http_get(http, "/api/v1/topics");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), c.stats(None));
    let r = http_get(http, "/api/v1/topics/a");
    assert_eq!(r.status, 200);
    let mut expected = c.topic_stats("a");
    expected["name"] = json!("a");
    let got = r.json();
    assert_eq!(got["subscriptions"][0]["name"], "worker");
    assert_eq!(got["subscriptions"][0]["options"], "wait=30000");
    // oldest_ms moves with the clock: compare everything else.
    let strip = |mut v: Value| {
        v["subscriptions"][0]["oldest_ms"] = json!(0);
        v
    };
    assert_eq!(strip(got), strip(expected));
    http_get(http, "/api/v1/topics/missing").assert_error(404, "no_topic");
    http_get(http, "/api/v1/topics/.bad").assert_error(400, "bad_topic");
    http_get(http, "/api/v1/topics/a%20b").assert_error(400, "bad_topic");
}

#[test]
fn put_creates_a_topic_201_then_200_with_an_optional_ttl() {
    let server = Server::start();
    let http = server.http_addr();
    let r = put(http, "/api/v1/topics/orders", None);
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json(), json!({"name": "orders", "created": true}));
    let r = put(http, "/api/v1/topics/orders", Some(r#"{"ttl_ms": 50}"#));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["created"], false);
    let mut c = server.connect();
    assert_eq!(c.topics(), vec!["orders"]);
    // The ttl applies to events published from then on (13.1): a queued
    // event for a durable subscriber that is away expires.
    c.cmd("name keeper");
    c.cmd("sub orders");
    c.cmd("quit");
    let mut p = server.connect();
    p.cmd(&pub_line("orders", "x", 0, "m"));
    assert!(
        eventually(std::time::Duration::from_secs(5), || p
            .topic_stats("orders")["expired"]
            == 1),
        "the topic's ttl did not expire the event: {}",
        p.topic_stats("orders")
    );
    put(http, "/api/v1/topics/orders", Some("[1]")).assert_error(400, "bad_request");
    put(http, "/api/v1/topics/orders", Some("{")).assert_error(400, "bad_request");
    put(http, "/api/v1/topics/orders", Some(r#"{"ttl_ms":0}"#)).assert_error(400, "bad_args");
    put(http, "/api/v1/topics/orders", Some(r#"{"ttl_ms":"1s"}"#)).assert_error(400, "bad_args");
    put(http, "/api/v1/topics/orders", Some(r#"{"color":1}"#)).assert_error(400, "bad_args");
    put(http, "/api/v1/topics/.x", None).assert_error(400, "bad_topic");
    assert_eq!(p.topics(), vec!["orders"]);
}

#[test]
fn post_publishes_like_pub() {
    let server = Server::start();
    let http = server.http_addr();
    let mut sub = server.connect();
    sub.cmd("create jobs");
    sub.cmd("name w");
    sub.cmd("sub jobs 10");
    // A pretty-printed body is one event, delivered on one line with its
    // fields as sent.
    let body = "{\n  \"id\": 7,\n  \"priority\": 3,\n  \"msg\": {\"text\": \"a  b\"},\n  \"extra\": [1, 2]\n}\n";
    let r = post(http, "/api/v1/topics/jobs/events", body);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"result": "published", "id": "7"}));
    let d = sub.delivery();
    assert_eq!(d["id"], "7");
    assert_eq!(d["priority"], 3);
    assert_eq!(d["msg"], json!({"text": "a  b"}));
    assert_eq!(d["extra"], json!([1, 2]));
    assert_eq!(d["topic"], "jobs");
    // Still pending for `w`: a duplicate, as `pub` would say.
    let r = post(
        http,
        "/api/v1/topics/jobs/events",
        r#"{"id":"7","msg":"again"}"#,
    );
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"result": "duplicate", "id": "7"}))
    );
    // Publishing creates the topic, as `pub` does.
    let r = post(
        http,
        "/api/v1/topics/fresh/events",
        r#"{"id":"1","msg":"x"}"#,
    );
    assert_eq!(r.status, 200);
    assert!(sub.topics().contains(&"fresh".to_string()));
    post(http, "/api/v1/topics/jobs/events", r#"{"msg":"no id"}"#).assert_error(400, "bad_event");
    post(
        http,
        "/api/v1/topics/jobs/events",
        r#"{"id":"1","msg":"x","topic":"t"}"#,
    )
    .assert_error(400, "bad_event");
    post(http, "/api/v1/topics/jobs/events", "not json").assert_error(400, "bad_event");
    post(http, "/api/v1/topics/jobs/events", "").assert_error(400, "bad_event");
    post(
        http,
        "/api/v1/topics/jobs/events",
        "{\"id\":\"1\",\"msg\":\"a\nb\"}",
    )
    .assert_error(400, "bad_event");
    post(
        http,
        "/api/v1/topics/.jobs/events",
        r#"{"id":"1","msg":"x"}"#,
    )
    .assert_error(400, "bad_topic");
    let r = http_request(
        http,
        "POST",
        "/api/v1/topics/jobs/events",
        Some(&[b'{', 0xff, b'}']),
    );
    r.assert_error(400, "bad_request");
    // Nothing refused reached the subscriber.
    sub.assert_silent(QUIET);
    assert_eq!(sub.topic_stats("jobs")["published"], 1);
}

#[test]
fn a_full_subscription_refuses_an_http_publish_with_507() {
    let server = Server::start();
    let http = server.http_addr();
    let mut sub = server.connect();
    sub.cmd("create q");
    sub.cmd("name w");
    assert!(sub.cmd("sub q limit=1").starts_with("+OK"));
    sub.cmd("quit");
    assert_eq!(
        post(http, "/api/v1/topics/q/events", r#"{"id":"1","msg":"x"}"#).status,
        200
    );
    post(http, "/api/v1/topics/q/events", r#"{"id":"2","msg":"x"}"#).assert_error(507, "full");
}

#[test]
fn an_http_publish_is_answered_in_replies_errors_mode_too() {
    let server = Server::start_with(&["--replies", "errors"]);
    let http = server.http_addr();
    let r = post(http, "/api/v1/topics/t/events", r#"{"id":"1","msg":"x"}"#);
    assert_eq!(
        (r.status, r.json()["result"].as_str()),
        (200, Some("published"))
    );
}

#[test]
fn an_acknowledged_http_publish_survives_kill_9() {
    let mut server = Server::start_with(&["--fsync", "always"]);
    let http = server.http_addr();
    let mut c = server.connect();
    c.cmd("create t");
    c.cmd("name keeper");
    c.cmd("sub t");
    c.cmd("quit");
    for i in 0..20 {
        let r = post(
            http,
            "/api/v1/topics/t/events",
            &format!(r#"{{"id":"{i}","msg":"x"}}"#),
        );
        assert_eq!(r.status, 200);
    }
    server.kill9();
    server.restart(&[]);
    let mut c = server.connect();
    assert_eq!(c.topic_stats("t")["pending"], 20);
}

#[test]
fn peek_by_subscriber_or_group_is_the_protocol_peek() {
    let server = Server::start();
    let http = server.http_addr();
    let mut c = server.connect();
    c.cmd("create t");
    c.cmd("name alice");
    c.cmd("sub t 1");
    let mut g = server.connect();
    g.cmd("sub t 1 group=workers");
    for i in 0..4 {
        c.cmd(&pub_line("t", &i.to_string(), i as u8, "m"));
    }
    let r = http_get(http, "/api/v1/topics/t/peek?sub=alice");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let mut other = server.connect();
    let protocol = other.cmd("peek t 10 sub=alice");
    assert_eq!(
        r.json(),
        serde_json::from_str::<Value>(protocol.strip_prefix("+OK ").unwrap()).unwrap()
    );
    assert_eq!(r.json().as_array().unwrap().len(), 4);
    let r = http_get(http, "/api/v1/topics/t/peek?group=workers&n=2");
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    assert_eq!(r.json()[0]["state"], "in_flight");
    http_get(http, "/api/v1/topics/t/peek").assert_error(400, "bad_args");
    http_get(http, "/api/v1/topics/t/peek?sub=alice&group=workers").assert_error(400, "bad_args");
    http_get(http, "/api/v1/topics/t/peek?sub=alice&n=0").assert_error(400, "bad_args");
    http_get(http, "/api/v1/topics/t/peek?sub=alice&n=1001").assert_error(400, "bad_args");
    http_get(http, "/api/v1/topics/t/peek?sub=alice&n=x").assert_error(400, "bad_args");
    assert_eq!(
        http_get(http, "/api/v1/topics/t/peek?sub=alice&n=1000").status,
        200
    );
    http_get(http, "/api/v1/topics/t/peek?sub=workers").assert_error(404, "not_subscribed");
    http_get(http, "/api/v1/topics/t/peek?group=alice").assert_error(404, "not_subscribed");
    http_get(http, "/api/v1/topics/nope/peek?sub=alice").assert_error(404, "not_subscribed");
}

#[test]
fn connections_list_protocol_connections_only() {
    let server = Server::start();
    let http = server.http_addr();
    let mut c = server.connect();
    c.cmd("create t");
    c.cmd("name alice");
    c.cmd("sub t 5");
    c.cmd(&pub_line("t", "1", 0, "m"));
    let _ = c.delivery();
    let mut idle = server.connect();
    idle.cmd("ping");
    // An HTTP publish's pseudo-connection is not a connection.
    assert_eq!(
        post(http, "/api/v1/topics/t/events", r#"{"id":"2","msg":"x"}"#).status,
        200
    );
    let r = http_get(http, "/api/v1/connections");
    assert_eq!(r.status, 200);
    let list = r.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let alice = list.iter().find(|c| c["name"] == "alice").expect("alice");
    assert_eq!(alice["subscriptions"], json!(["t"]));
    assert_eq!(alice["in_flight"], 2);
    assert!(alice["bytes_in"].as_u64().unwrap() > 40);
    assert!(alice["bytes_out"].as_u64().unwrap() > 60);
    assert!(alice["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let since = alice["since_ms"].as_u64().unwrap();
    assert!(since <= now && since > now - 60_000, "{since} vs {now}");
    let other = list
        .iter()
        .find(|c| c["name"].is_null())
        .expect("anonymous");
    assert_eq!(other["subscriptions"], json!([]));
    assert_ne!(other["id"], alice["id"]);
    for c in list {
        let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 8, "{c}");
    }
    drop(idle);
    assert!(eventually(LINE_TIMEOUT, || http_get(
        http,
        "/api/v1/connections"
    )
    .json()
    .as_array()
    .unwrap()
    .len()
        == 1));
}

#[test]
fn delete_removes_idle_durable_and_group_subscriptions() {
    let server = Server::start();
    let http = server.http_addr();
    let mut c = server.connect();
    c.cmd("create t");
    c.cmd("name alice");
    c.cmd("sub t");
    let mut g = server.connect();
    g.cmd("sub t group=workers");
    let mut p = server.connect();
    p.cmd(&pub_line("t", "1", 0, "m"));
    // Connected holders: 409.
    delete(http, "/api/v1/topics/t/subscriptions/alice").assert_error(409, "bad_state");
    delete(http, "/api/v1/topics/t/subscriptions/workers").assert_error(409, "bad_state");
    c.cmd("quit");
    g.cmd("quit");
    assert!(eventually(LINE_TIMEOUT, || {
        p.topic_stats("t")["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["members"] == 0)
    }));
    let r = delete(http, "/api/v1/topics/t/subscriptions/alice");
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    assert_eq!(
        delete(http, "/api/v1/topics/t/subscriptions/workers").status,
        204
    );
    let stats = p.topic_stats("t");
    assert_eq!(stats["subscribers"], 0, "{stats}");
    assert_eq!(stats["pending"], 0);
    delete(http, "/api/v1/topics/t/subscriptions/alice").assert_error(404, "not_subscribed");
    delete(http, "/api/v1/topics/nope/subscriptions/alice").assert_error(404, "not_subscribed");
    delete(http, "/api/v1/topics/t/subscriptions/.x").assert_error(400, "bad_args");
    // Alice comes back to nothing: her queue is gone.
    let mut a = server.connect();
    a.cmd("name alice");
    a.expect_err("ack t 1", "not_subscribed");
}
