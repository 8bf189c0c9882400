//! A data directory written by the release of log format version 1 (see
//! `tests/fixtures/log-v1/README.md`) must stay readable: `herald dump`
//! prints what that release printed, and a broker started on it hands the
//! durable subscribers their pending events in order, flagged as
//! redeliveries where the old broker recorded a delivery.
mod common;

use common::{Client, Server, herald};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/log-v1")
}

/// A private copy of the fixture's data directory (the broker writes to it).
fn copy_of_fixture() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).expect("create data dir");
    for entry in std::fs::read_dir(fixture().join("data")).expect("fixture data") {
        let entry = entry.expect("dir entry");
        std::fs::copy(entry.path(), data.join(entry.file_name())).expect("copy segment");
    }
    (tmp, data)
}

#[test]
fn dump_of_a_v1_directory_prints_what_the_v1_release_printed() {
    let (_tmp, data) = copy_of_fixture();
    let out = herald()
        .args(["dump", "--data"])
        .arg(&data)
        .output()
        .expect("run herald dump");
    assert!(
        out.status.success(),
        "dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = std::fs::read_to_string(fixture().join("dump.json")).expect("dump.json");
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

/// The fields of a delivery a subscriber can check, timestamps aside.
fn without_timestamp(mut delivery: Value) -> Value {
    let object = delivery.as_object_mut().expect("delivery is an object");
    assert!(
        object.remove("timestamp").is_some_and(|t| t.is_u64()),
        "{delivery:?}"
    );
    delivery
}

/// The timestamp the v1 broker stamped on `id` of `topic`, from `dump.json`.
fn recorded_timestamp(topic: &str, subscriber: &str, id: &str) -> Value {
    let dump: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("dump.json")).unwrap())
            .unwrap();
    dump[topic][subscriber]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["id"] == id))
        .map(|e| e["timestamp"].clone())
        .unwrap_or_else(|| panic!("{id} not in dump.json"))
}

fn receive(client: &mut Client, topic: &str, subscriber: &str, want: &[Value]) {
    for expected in want {
        let delivery = client.delivery();
        let id = delivery["id"].as_str().expect("string id").to_owned();
        assert_eq!(
            delivery["timestamp"],
            recorded_timestamp(topic, subscriber, &id),
            "{delivery}"
        );
        assert_eq!(&without_timestamp(delivery), expected);
    }
}

#[test]
fn broker_on_a_v1_directory_delivers_every_pending_event() {
    let (_tmp, data) = copy_of_fixture();
    let server = Server::start_on(&data, &[]);
    let mut alice = server.connect();
    assert_eq!(alice.cmd("topics"), r#"+OK ["t","u"]"#);
    assert_eq!(alice.cmd("name alice"), "+OK name alice");
    assert_eq!(alice.cmd("sub t 10"), "+OK subscribed t");
    receive(
        &mut alice,
        "t",
        "alice",
        &[
            json!({"topic":"t","id":"é-ü","priority":9,"msg":"ünïcödé ✓ 日本","extra":{"k":[1,2]},"redelivered":true,"deliveries":2}),
            json!({"topic":"t","id":"4","priority":3,"msg":"four","tag":"x"}),
            json!({"topic":"t","id":"5","priority":1,"msg":{"nested":true}}),
            json!({"topic":"t","id":"42","priority":0,"msg":"an integer id","redelivered":true,"deliveries":2}),
        ],
    );
    // Acknowledged before the stop ("1"), and unsubscribed ("u").
    assert_eq!(alice.cmd("ack t 1").split(' ').nth(1), Some("no_event"));
    assert_eq!(
        alice.cmd("unsub u").split(' ').nth(1),
        Some("not_subscribed")
    );
    for id in ["é-ü", "4", "5", "42"] {
        assert_eq!(
            alice.cmd(&format!("ack t {id}")),
            format!("+OK acked t {id}")
        );
    }

    let mut bob = server.connect();
    assert_eq!(bob.cmd("name bob"), "+OK name bob");
    assert_eq!(bob.cmd("sub u 10"), "+OK subscribed u");
    receive(
        &mut bob,
        "u",
        "bob",
        &[
            json!({"topic":"u","id":"u1","priority":2,"msg":"for alice and bob","redelivered":true,"deliveries":2}),
            json!({"topic":"u","id":"u2","priority":0,"msg":"for bob"}),
        ],
    );
    assert_eq!(bob.cmd("ping"), "+OK pong");
    assert!(bob.deliveries.is_empty(), "{:?}", bob.deliveries);
    assert!(alice.deliveries.is_empty(), "{:?}", alice.deliveries);
}
