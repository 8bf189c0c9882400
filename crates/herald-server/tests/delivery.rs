//! `docs/protocol.md` sections 4, 5, 6 and 9: what a delivery looks like,
//! in which order events are delivered, prefetch, duplicates, fan-out and
//! unsub.
mod common;
use common::*;

use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A connection subscribed to `topic` (created) with `prefetch`.
fn subscriber(server: &Server, topic: &str, prefetch: u16) -> Client {
    let mut c = server.connect();
    assert_eq!(
        c.cmd(&format!("create {topic}")),
        format!("+OK created {topic}")
    );
    assert_eq!(
        c.cmd(&format!("sub {topic} {prefetch}")),
        format!("+OK subscribed {topic}")
    );
    c
}

fn publish(c: &mut Client, topic: &str, id: &str, priority: u8) {
    assert_eq!(
        c.cmd(&pub_line(topic, id, priority, &format!("msg {id}"))),
        format!("+OK published {topic} {id}")
    );
}

#[test]
fn integer_id_is_delivered_as_its_decimal_string() {
    let server = Server::start();
    let mut c = subscriber(&server, "t", 5);
    assert_eq!(c.cmd(r#"pub t {"id":42,"msg":"m"}"#), "+OK published t 42");
    let d = c.delivery();
    assert_eq!(d["id"], json!("42"));
    // The string "42" names the same event.
    assert_eq!(
        c.cmd(r#"pub t {"id":"42","msg":"m"}"#),
        "+OK duplicate t 42"
    );
    assert_eq!(
        c.cmd(r#"pub t {"id":18446744073709551615,"msg":"m"}"#),
        "+OK published t 18446744073709551615"
    );
    assert_eq!(c.delivery()["id"], json!("18446744073709551615"));
    assert_eq!(c.cmd("ack t 42"), "+OK acked t 42");
    assert_eq!(
        c.cmd("ack t 18446744073709551615"),
        "+OK acked t 18446744073709551615"
    );
    c.assert_quiet();
}

#[test]
fn delivery_is_the_event_with_topic_timestamp_and_default_priority() {
    let server = Server::start();
    let mut c = subscriber(&server, "tweets", 10);
    let before = now_ms();
    assert_eq!(
        c.cmd(r#"pub tweets {"id":"1","msg":"tweet 1"}"#),
        "+OK published tweets 1"
    );
    let after = now_ms();
    let d = c.delivery();
    let obj = d.as_object().expect("delivery is an object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["id", "msg", "priority", "timestamp", "topic"], "{d}");
    assert_eq!(d["topic"], "tweets");
    assert_eq!(d["id"], "1");
    assert_eq!(d["msg"], "tweet 1");
    assert_eq!(
        d["priority"],
        json!(0),
        "default priority must be present: {d}"
    );
    let ts = d["timestamp"].as_u64().expect("timestamp is an integer");
    // Milliseconds since the epoch when accepted (a few seconds of slack for clocks).
    assert!(
        ts + 5_000 >= before && ts <= after + 5_000,
        "timestamp {ts} not between {before} and {after}"
    );
    assert!(
        d.get("redelivered").is_none(),
        "first delivery flagged: {d}"
    );
}

#[test]
fn extra_fields_and_any_msg_value_are_delivered_unchanged() {
    let server = Server::start();
    let mut c = subscriber(&server, "t", 20);
    // Numbers are delivered as written, not rounded through a float.
    assert_eq!(
        c.cmd(r#"pub t {"id":"big","msg":12345678901234567890123,"x":1.0000000000000000000001}"#),
        "+OK published t big"
    );
    let mut raw = None;
    while raw.is_none() {
        let line = c.line().unwrap();
        if line.starts_with('{') {
            raw = Some(line);
        }
    }
    let raw = raw.unwrap();
    assert!(raw.contains("12345678901234567890123"), "{raw}");
    assert!(raw.contains("1.0000000000000000000001"), "{raw}");
    assert_eq!(c.cmd("ack t big"), "+OK acked t big");
    let events = [
        json!({"id":"obj","msg":{"nested":{"a":[1,2,{"b":null}]},"s":"x y"}}),
        json!({"id":"arr","msg":[1,"two",3.5,false,null]}),
        json!({"id":"null","msg":null}),
        json!({"id":"num","msg":-12.25}),
        json!({"id":"bool","msg":true}),
        json!({"id":"str","msg":"caf\u{e9} \u{1F600} \"quoted\" \\ back\tslash"}),
        json!({"id":"empty","msg":""}),
        json!({"id":"extra","msg":"m","priority":7,"user":"ann","tags":["a","b"],"meta":{"k":1},"n":1.5,"z":null}),
    ];
    for e in &events {
        assert_eq!(
            c.cmd(&format!("pub t {e}")),
            format!("+OK published t {}", e["id"].as_str().unwrap())
        );
    }
    let mut got = Vec::new();
    for _ in &events {
        got.push(c.delivery());
    }
    let mut ids: Vec<&str> = got.iter().map(|d| d["id"].as_str().unwrap()).collect();
    ids.sort();
    let mut want: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    want.sort();
    assert_eq!(ids, want);
    for d in &got {
        let e = events
            .iter()
            .find(|e| e["id"] == d["id"])
            .unwrap_or_else(|| panic!("unknown delivery {d}"));
        let d = d.as_object().unwrap();
        for (k, v) in e.as_object().unwrap() {
            assert_eq!(d.get(k), Some(v), "field {k} of {e}: got {d:?}");
        }
        let extra: Vec<&String> = d
            .keys()
            .filter(|k| !e.as_object().unwrap().contains_key(*k))
            .filter(|k| !["topic", "timestamp", "priority"].contains(&k.as_str()))
            .collect();
        assert!(extra.is_empty(), "unexpected fields {extra:?} in {d:?}");
        assert_eq!(d["topic"], "t");
        assert!(d.get("redelivered").is_none());
    }
}

#[test]
fn higher_priority_first_and_equal_priorities_in_publish_order() {
    let server = Server::start();
    let mut sub = subscriber(&server, "t", 1);
    let mut publisher = server.connect();
    publish(&mut publisher, "t", "first", 0);
    assert_eq!(sub.delivery()["id"], "first");
    // "first" is in flight; queue the rest behind it.
    for (id, priority) in [
        ("p1", 1),
        ("p5a", 5),
        ("p3", 3),
        ("p5b", 5),
        ("p0", 0),
        ("p255", 255),
    ] {
        publish(&mut publisher, "t", id, priority);
    }
    sub.assert_quiet();
    let mut order = Vec::new();
    let mut last = "first".to_string();
    for _ in 0..6 {
        assert_eq!(
            sub.cmd(&format!("ack t {last}")),
            format!("+OK acked t {last}")
        );
        let d = sub.delivery();
        last = d["id"].as_str().unwrap().to_string();
        order.push((last.clone(), d["priority"].as_u64().unwrap()));
    }
    assert_eq!(
        order,
        [
            ("p255".to_string(), 255),
            ("p5a".to_string(), 5),
            ("p5b".to_string(), 5),
            ("p3".to_string(), 3),
            ("p1".to_string(), 1),
            ("p0".to_string(), 0),
        ]
    );
    assert_eq!(sub.cmd("ack t p0"), "+OK acked t p0");
    sub.assert_quiet();
}

#[test]
fn priority_order_holds_with_a_larger_prefetch_when_subscribing_late() {
    // Events queued before `sub` (by a durable subscriber) come out in priority
    // order as soon as the window opens.
    let server = Server::start();
    let mut sub = server.connect();
    assert_eq!(sub.cmd("name dana"), "+OK name dana");
    assert_eq!(sub.cmd("create t"), "+OK created t");
    assert_eq!(sub.cmd("sub t 1"), "+OK subscribed t");
    let mut publisher = server.connect();
    publish(&mut publisher, "t", "x0", 0);
    assert_eq!(sub.delivery()["id"], "x0");
    for (i, priority) in [3, 9, 3, 1, 9, 0, 200].into_iter().enumerate() {
        publish(&mut publisher, "t", &format!("e{i}"), priority);
    }
    // Opening the window to 10 delivers all 7 queued events, best first.
    assert_eq!(sub.cmd("sub t 10"), "+OK subscribed t");
    let ids: Vec<String> = (0..7)
        .map(|_| sub.delivery()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["e6", "e1", "e4", "e0", "e2", "e3", "e5"]);
}

#[test]
fn sub_reply_precedes_the_first_delivery() {
    let server = Server::start();
    let mut publisher = server.connect();
    // A durable subscriber with queued events, reconnecting: the `sub` reply
    // comes before the deliveries it unblocks.
    let mut d = server.connect();
    assert_eq!(d.cmd("name zed"), "+OK name zed");
    assert_eq!(d.cmd("create t"), "+OK created t");
    assert_eq!(d.cmd("sub t 5"), "+OK subscribed t");
    assert_eq!(d.cmd("quit"), "+OK bye");
    d.expect_eof();
    for i in 0..3 {
        publish(&mut publisher, "t", &i.to_string(), 0);
    }
    let mut back = None;
    assert!(eventually(std::time::Duration::from_secs(5), || {
        let mut c = server.connect();
        let ok = c.cmd("name zed") == "+OK name zed";
        if ok {
            back = Some(c);
        }
        ok
    }));
    let mut back = back.unwrap();
    back.send("sub t 5");
    assert_eq!(
        back.line().as_deref(),
        Some("+OK subscribed t"),
        "reply first"
    );
    for i in 0..3 {
        let line = back.line().expect("delivery");
        let d: serde_json::Value = serde_json::from_str(&line).expect("delivery JSON");
        assert_eq!(d["id"], i.to_string());
    }
    back.assert_quiet();

    // Re-subscribing with a larger prefetch: reply, then the deliveries.
    let mut anon = subscriber(&server, "u", 1);
    for i in 0..3 {
        publish(&mut publisher, "u", &i.to_string(), 0);
    }
    assert!(anon.line().unwrap().starts_with('{'));
    anon.send("sub u 3");
    assert_eq!(
        anon.line().as_deref(),
        Some("+OK subscribed u"),
        "reply first"
    );
    for i in 1..3 {
        let d: serde_json::Value = serde_json::from_str(&anon.line().unwrap()).unwrap();
        assert_eq!(d["id"], i.to_string());
    }
}

#[test]
fn ack_reply_precedes_the_delivery_it_frees() {
    let server = Server::start();
    let mut sub = subscriber(&server, "t", 1);
    let mut publisher = server.connect();
    for i in 0..20 {
        publish(&mut publisher, "t", &i.to_string(), 0);
    }
    assert!(sub.line().expect("first delivery").starts_with('{'));
    for i in 0..19 {
        sub.send(&format!("ack t {i}"));
        assert_eq!(
            sub.line(),
            Some(format!("+OK acked t {i}")),
            "ack reply first"
        );
        let line = sub.line().expect("next delivery");
        let d: serde_json::Value = serde_json::from_str(&line).expect("a delivery after the ack");
        assert_eq!(d["id"], (i + 1).to_string());
    }
    // Pipelined acks: every reply in order, and no delivery of event k before
    // the reply to the ack that freed it (ack k-1) nor after its own ack.
    let mut sub2 = subscriber(&server, "u", 1);
    for i in 0..20 {
        publish(&mut publisher, "u", &i.to_string(), 0);
    }
    let first: serde_json::Value = serde_json::from_str(&sub2.line().unwrap()).unwrap();
    assert_eq!(first["id"], "0");
    let mut batch = String::new();
    for i in 0..20 {
        batch.push_str(&format!("ack u {i}\n"));
    }
    sub2.send_raw(batch.as_bytes());
    let mut acked = 0; // replies seen so far
    let mut last_delivered = 0;
    while acked < 20 {
        let line = sub2.line().expect("line");
        if line.starts_with('{') {
            let d: serde_json::Value = serde_json::from_str(&line).unwrap();
            let k: usize = d["id"].as_str().unwrap().parse().unwrap();
            assert!(k > last_delivered, "delivery {k} out of order");
            assert_eq!(acked, k, "delivery {k} after {acked} ack replies");
            last_delivered = k;
        } else {
            assert_eq!(line, format!("+OK acked u {acked}"));
            acked += 1;
        }
    }
    sub2.assert_quiet();
}

#[test]
fn prefetch_n_delivers_at_most_n_unacked() {
    let server = Server::start();
    let mut sub = subscriber(&server, "t", 3);
    let mut publisher = server.connect();
    for i in 0..6 {
        publish(&mut publisher, "t", &i.to_string(), 0);
    }
    for i in 0..3 {
        assert_eq!(sub.delivery()["id"], i.to_string());
    }
    sub.assert_quiet();
    let t = publisher.topic_stats("t");
    assert_eq!(
        (t["in_flight"].as_u64(), t["pending"].as_u64()),
        (Some(3), Some(3)),
        "{t}"
    );
    // Acking the second frees one slot: exactly one more.
    assert_eq!(sub.cmd("ack t 1"), "+OK acked t 1");
    assert_eq!(sub.delivery()["id"], "3");
    sub.assert_quiet();
    assert_eq!(sub.cmd("ack t 0"), "+OK acked t 0");
    assert_eq!(sub.cmd("ack t 2"), "+OK acked t 2");
    assert_eq!(sub.delivery()["id"], "4");
    assert_eq!(sub.delivery()["id"], "5");
    sub.assert_quiet();
}

#[test]
fn default_prefetch_is_one() {
    let server = Server::start();
    let mut sub = server.connect();
    assert_eq!(sub.cmd("create t"), "+OK created t");
    assert_eq!(sub.cmd("sub t"), "+OK subscribed t");
    let mut publisher = server.connect();
    for i in 0..3 {
        publish(&mut publisher, "t", &i.to_string(), 0);
    }
    assert_eq!(sub.delivery()["id"], "0");
    sub.assert_quiet();
    assert_eq!(sub.cmd("ack t 0"), "+OK acked t 0");
    assert_eq!(sub.delivery()["id"], "1");
    sub.assert_quiet();
}

#[test]
fn resubscribing_keeps_the_queue_and_applies_the_new_prefetch() {
    let server = Server::start();
    let mut sub = subscriber(&server, "t", 1);
    let mut publisher = server.connect();
    for i in 0..5 {
        publish(&mut publisher, "t", &i.to_string(), 0);
    }
    assert_eq!(sub.delivery()["id"], "0");
    sub.assert_quiet();
    assert_eq!(sub.cmd("sub t 3"), "+OK subscribed t");
    assert_eq!(sub.delivery()["id"], "1");
    assert_eq!(sub.delivery()["id"], "2");
    sub.assert_quiet();
    let t = publisher.topic_stats("t");
    assert_eq!(t["subscribers"], 1, "{t}");
    assert_eq!(t["in_flight"], 3, "{t}");
    assert_eq!(t["pending"], 2, "{t}");
    // Lowering the prefetch: nothing new until in-flight drops below it.
    assert_eq!(sub.cmd("sub t 2"), "+OK subscribed t");
    assert_eq!(sub.cmd("ack t 0"), "+OK acked t 0");
    sub.assert_quiet();
    assert_eq!(sub.cmd("ack t 1"), "+OK acked t 1");
    assert_eq!(sub.delivery()["id"], "3");
    sub.assert_quiet();
    assert_eq!(sub.cmd("ack t 2"), "+OK acked t 2");
    assert_eq!(sub.delivery()["id"], "4");
    // Re-subscribing did not redeliver anything in flight.
    assert_eq!(sub.cmd("sub t 2"), "+OK subscribed t");
    sub.assert_quiet();
}

#[test]
fn acking_a_queued_event_means_it_is_never_delivered() {
    let server = Server::start();
    let mut sub = subscriber(&server, "t", 1);
    let mut publisher = server.connect();
    for i in 1..=3 {
        publish(&mut publisher, "t", &i.to_string(), 0);
    }
    assert_eq!(sub.delivery()["id"], "1");
    assert_eq!(sub.cmd("ack t 2"), "+OK acked t 2");
    // Acking a queued event frees no slot.
    sub.assert_quiet();
    let t = publisher.topic_stats("t");
    assert_eq!(
        (t["in_flight"].as_u64(), t["pending"].as_u64()),
        (Some(1), Some(1)),
        "{t}"
    );
    assert_eq!(sub.cmd("ack t 1"), "+OK acked t 1");
    assert_eq!(sub.delivery()["id"], "3");
    assert_eq!(sub.cmd("ack t 3"), "+OK acked t 3");
    sub.assert_quiet();
    sub.expect_err("ack t 2", "no_event");
}

#[test]
fn same_id_while_pending_is_a_duplicate_and_changes_nothing() {
    let server = Server::start();
    let mut sub = subscriber(&server, "t", 1);
    let mut publisher = server.connect();
    assert_eq!(
        publisher.cmd(r#"pub t {"id":"a","msg":"original","priority":1}"#),
        "+OK published t a"
    );
    assert_eq!(
        publisher.cmd(r#"pub t {"id":"b","msg":"original","priority":1}"#),
        "+OK published t b"
    );
    // The topic's counts (its subscriptions' `oldest_ms` grows with time).
    let counts = |p: &mut Client| {
        let mut t = p.topic_stats("t");
        t.as_object_mut().unwrap().remove("subscriptions");
        t
    };
    let before = counts(&mut publisher);
    assert_eq!(before["published"], 2);
    // "a" is in flight, "b" queued: both duplicates, whatever the new content.
    assert_eq!(
        publisher.cmd(r#"pub t {"id":"a","msg":"changed","priority":9}"#),
        "+OK duplicate t a"
    );
    assert_eq!(
        publisher.cmd(r#"pub t {"id":"b","msg":"changed","priority":255}"#),
        "+OK duplicate t b"
    );
    assert_eq!(
        counts(&mut publisher),
        before,
        "a duplicate changed the stats"
    );
    let a = sub.delivery();
    assert_eq!(
        (a["id"].as_str(), a["msg"].as_str()),
        (Some("a"), Some("original"))
    );
    sub.assert_quiet();
    assert_eq!(sub.cmd("ack t a"), "+OK acked t a");
    let b = sub.delivery();
    assert_eq!(b["msg"], "original");
    assert_eq!(b["priority"], 1);
    assert_eq!(sub.cmd("ack t b"), "+OK acked t b");
    sub.assert_quiet();
    // Every subscriber acked: the id is free again and delivered anew.
    assert_eq!(
        publisher.cmd(r#"pub t {"id":"a","msg":"again"}"#),
        "+OK published t a"
    );
    let again = sub.delivery();
    assert_eq!(again["msg"], "again");
    assert!(again.get("redelivered").is_none(), "{again}");
    assert_eq!(publisher.topic_stats("t")["published"], 3);
}

#[test]
fn duplicate_while_pending_for_any_subscriber() {
    let server = Server::start();
    let mut fast = subscriber(&server, "t", 5);
    let mut slow = subscriber(&server, "t", 5);
    let mut publisher = server.connect();
    publish(&mut publisher, "t", "x", 0);
    assert_eq!(fast.delivery()["id"], "x");
    assert_eq!(fast.cmd("ack t x"), "+OK acked t x");
    // Still pending for `slow`.
    assert_eq!(
        publisher.cmd(&pub_line("t", "x", 0, "m")),
        "+OK duplicate t x"
    );
    fast.assert_quiet();
    assert_eq!(slow.delivery()["id"], "x");
    assert_eq!(slow.cmd("ack t x"), "+OK acked t x");
    assert_eq!(
        publisher.cmd(&pub_line("t", "x", 0, "m")),
        "+OK published t x"
    );
    assert_eq!(fast.delivery()["id"], "x");
    assert_eq!(slow.delivery()["id"], "x");
    assert_eq!(publisher.topic_stats("t")["published"], 2);
    // The same id on another topic is another event.
    assert_eq!(
        publisher.cmd(&pub_line("other", "x", 0, "m")),
        "+OK published other x"
    );
}

#[test]
fn publish_without_subscribers_is_accepted_and_dropped() {
    let server = Server::start();
    let mut publisher = server.connect();
    assert_eq!(
        publisher.cmd(&pub_line("lonely", "1", 0, "m")),
        "+OK published lonely 1"
    );
    assert_eq!(
        publisher.cmd(&pub_line("lonely", "1", 0, "m")),
        "+OK published lonely 1"
    );
    let t = publisher.topic_stats("lonely");
    assert_eq!(t["subscribers"], 0, "{t}");
    assert_eq!(t["pending"], 0, "{t}");
    assert_eq!(t["in_flight"], 0, "{t}");
    assert_eq!(t["published"], 2, "{t}");
    // A later subscriber does not get it.
    let mut late = server.connect();
    assert_eq!(late.cmd("sub lonely 10"), "+OK subscribed lonely");
    late.assert_quiet();
    late.expect_err("ack lonely 1", "no_event");
}

#[test]
fn every_subscriber_gets_every_event_and_acks_independently() {
    let server = Server::start();
    let mut subs: Vec<Client> = (0..3).map(|_| subscriber(&server, "fan", 1)).collect();
    let mut publisher = server.connect();
    for i in 0..3 {
        publish(&mut publisher, "fan", &i.to_string(), 0);
    }
    for s in subs.iter_mut() {
        assert_eq!(s.delivery()["id"], "0");
    }
    let t = publisher.topic_stats("fan");
    assert_eq!(t["subscribers"], 3, "{t}");
    assert_eq!(t["in_flight"], 3, "{t}");
    assert_eq!(t["pending"], 6, "{t}");
    assert_eq!(t["published"], 3, "{t}");
    // Subscriber 0 acks everything, 1 acks one, 2 nothing.
    for i in 0..3 {
        assert_eq!(
            subs[0].cmd(&format!("ack fan {i}")),
            format!("+OK acked fan {i}")
        );
        if i < 2 {
            assert_eq!(subs[0].delivery()["id"], (i + 1).to_string());
        }
    }
    assert_eq!(subs[1].cmd("ack fan 0"), "+OK acked fan 0");
    assert_eq!(subs[1].delivery()["id"], "1");
    subs[2].assert_quiet();
    let t = publisher.topic_stats("fan");
    assert_eq!(t["in_flight"], 2, "{t}");
    assert_eq!(t["pending"], 3, "{t}");
    subs[0].expect_err("ack fan 0", "no_event");
    assert_eq!(subs[2].cmd("ack fan 0"), "+OK acked fan 0");
    assert_eq!(subs[2].delivery()["id"], "1");
    for s in subs.iter_mut() {
        s.assert_quiet();
    }
}

#[test]
fn stats_sums_pending_and_in_flight_over_subscribers() {
    let server = Server::start();
    let mut a = subscriber(&server, "s", 2);
    let mut b = subscriber(&server, "s", 4);
    let mut c = subscriber(&server, "s", 1);
    let mut publisher = server.connect();
    for i in 0..5 {
        publish(&mut publisher, "s", &i.to_string(), 0);
    }
    for _ in 0..2 {
        a.delivery();
    }
    for _ in 0..4 {
        b.delivery();
    }
    c.delivery();
    let t = publisher.topic_stats("s");
    assert_eq!(t["subscribers"], 3, "{t}");
    assert_eq!(t["in_flight"], 2 + 4 + 1, "{t}");
    assert_eq!(t["pending"], 3 + 1 + 4, "{t}");
    assert_eq!(t["published"], 5, "{t}");
    // `stats s` adds its subscriptions; the counts are those of `stats`.
    let all = publisher.stats(None);
    let mut t = t;
    t.as_object_mut().unwrap().remove("subscriptions");
    assert_eq!(all["topics"]["s"], t);
}

#[test]
fn unsub_discards_the_queue() {
    let server = Server::start();
    let mut sub = subscriber(&server, "t", 1);
    let mut other = subscriber(&server, "t", 1);
    let mut publisher = server.connect();
    for i in 0..3 {
        publish(&mut publisher, "t", &i.to_string(), 0);
    }
    assert_eq!(sub.delivery()["id"], "0");
    assert_eq!(other.delivery()["id"], "0");
    let t = publisher.topic_stats("t");
    assert_eq!(
        (t["pending"].as_u64(), t["in_flight"].as_u64()),
        (Some(4), Some(2)),
        "{t}"
    );
    assert_eq!(sub.cmd("unsub t"), "+OK unsubscribed t");
    let t = publisher.topic_stats("t");
    assert_eq!(t["subscribers"], 1, "{t}");
    assert_eq!(t["pending"], 2, "{t}");
    assert_eq!(t["in_flight"], 1, "{t}");
    sub.expect_err("ack t 0", "not_subscribed");
    // No more deliveries to it, and a new subscription starts empty.
    publish(&mut publisher, "t", "3", 0);
    sub.assert_quiet();
    assert_eq!(sub.cmd("sub t 10"), "+OK subscribed t");
    sub.assert_quiet();
    publish(&mut publisher, "t", "4", 0);
    assert_eq!(sub.delivery()["id"], "4");
    sub.assert_quiet();
    // The other subscriber still has all of its events.
    assert_eq!(other.cmd("sub t 10"), "+OK subscribed t");
    let ids: Vec<String> = (0..4)
        .map(|_| other.delivery()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["1", "2", "3", "4"]);
    // Once nobody holds an id any more, it can be published again.
    for id in ["0", "1", "2", "3", "4"] {
        assert_eq!(
            other.cmd(&format!("ack t {id}")),
            format!("+OK acked t {id}")
        );
    }
    assert_eq!(sub.cmd("ack t 4"), "+OK acked t 4");
    assert_eq!(sub.cmd("unsub t"), "+OK unsubscribed t");
    assert_eq!(other.cmd("unsub t"), "+OK unsubscribed t");
    let t = publisher.topic_stats("t");
    assert_eq!(t["subscribers"], 0, "{t}");
}

#[test]
fn unsub_frees_the_ids_it_held() {
    let server = Server::start();
    let mut sub = subscriber(&server, "t", 1);
    let mut publisher = server.connect();
    publish(&mut publisher, "t", "held", 0);
    publish(&mut publisher, "t", "queued", 0);
    assert_eq!(sub.delivery()["id"], "held");
    assert_eq!(
        publisher.cmd(&pub_line("t", "queued", 0, "m")),
        "+OK duplicate t queued"
    );
    assert_eq!(sub.cmd("unsub t"), "+OK unsubscribed t");
    publish(&mut publisher, "t", "held", 0);
    publish(&mut publisher, "t", "queued", 0);
    sub.assert_quiet();
}

#[test]
fn escaped_field_names_are_read_as_what_they_mean() {
    let server = Server::start();
    let mut c = subscriber(&server, "t", 10);
    // Reserved names spelled with escapes are still reserved.
    for event in [
        r#"{"id":"1","msg":1,"topic":"x"}"#,
        r#"{"id":"1","msg":1,"timestamp":5}"#,
        r#"{"id":"1","msg":1,"redelivered":true}"#,
        r#"{"id":"1","msg":1,"priority":300}"#,
    ] {
        c.expect_err(&format!("pub t {event}"), "bad_event");
    }
    // Escaped `id`, `msg`, `priority` names and an escaped id value.
    assert_eq!(
        c.cmd(r#"pub t {"id":"ab","msg":"m","priority":9}"#),
        "+OK published t ab"
    );
    let d = c.delivery();
    assert_eq!(d["id"], "ab");
    assert_eq!(d["msg"], "m");
    assert_eq!(d["priority"], 9);
    let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 5, "{d}");
    assert_eq!(c.cmd("ack t ab"), "+OK acked t ab");
    // A field that only differs in case is an ordinary field.
    assert_eq!(
        c.cmd(r#"pub t {"id":"c","msg":1,"Topic":"kept"}"#),
        "+OK published t c"
    );
    let d = c.delivery();
    assert_eq!(
        (d["topic"].as_str(), d["Topic"].as_str()),
        (Some("t"), Some("kept"))
    );
}

#[test]
fn prefetch_and_queues_are_per_topic() {
    let server = Server::start();
    let mut sub = server.connect();
    for topic in ["a", "b"] {
        assert_eq!(
            sub.cmd(&format!("create {topic}")),
            format!("+OK created {topic}")
        );
        assert_eq!(
            sub.cmd(&format!("sub {topic} 1")),
            format!("+OK subscribed {topic}")
        );
    }
    let mut publisher = server.connect();
    for topic in ["a", "b"] {
        for id in ["1", "2"] {
            publish(&mut publisher, topic, &format!("{topic}{id}"), 0);
        }
    }
    // One in flight on each topic, not one in total.
    let mut got = vec![
        sub.delivery()["id"].as_str().unwrap().to_string(),
        sub.delivery()["id"].as_str().unwrap().to_string(),
    ];
    got.sort();
    assert_eq!(got, ["a1", "b1"]);
    sub.assert_quiet();
    // An id pending on one topic is unknown on the other.
    sub.expect_err("ack a b1", "no_event");
    sub.expect_err("ack b a2", "no_event");
    assert_eq!(sub.cmd("ack b b1"), "+OK acked b b1");
    assert_eq!(sub.delivery()["id"], "b2");
    sub.assert_quiet();
    assert_eq!(sub.cmd("unsub a"), "+OK unsubscribed a");
    let b = publisher.topic_stats("b");
    assert_eq!(
        (b["subscribers"].as_u64(), b["in_flight"].as_u64()),
        (Some(1), Some(1)),
        "{b}"
    );
}
