//! `docs/protocol.md` section 8 while the broker keeps running: anonymous subscribers are
//! cleaned up on disconnect, durable (named) ones keep their queues.
mod common;
use common::*;

use std::time::Duration;

/// Connects and takes `name`, retrying while the previous holder's
/// disconnect is still being noticed by the server.
fn reconnect_as(server: &Server, name: &str) -> Client {
    let mut found = None;
    let ok = eventually(Duration::from_secs(5), || {
        let mut c = server.connect();
        let reply = c.cmd(&format!("name {name}"));
        if reply == format!("+OK name {name}") {
            found = Some(c);
            return true;
        }
        assert_eq!(err_code(&reply), "name_in_use", "{reply}");
        false
    });
    assert!(
        ok,
        "name {name} still in use 5 s after its connection closed"
    );
    found.unwrap()
}

#[test]
fn anonymous_subscriber_is_removed_when_it_disconnects() {
    let server = Server::start();
    let mut publisher = server.connect();
    assert_eq!(publisher.cmd("create t"), "+OK created t");
    let mut anon = server.connect();
    assert_eq!(anon.cmd("sub t 2"), "+OK subscribed t");
    let mut stays = server.connect();
    assert_eq!(stays.cmd("sub t 1"), "+OK subscribed t");
    for i in 0..5 {
        assert_eq!(
            publisher.cmd(&pub_line("t", &i.to_string(), 0, "m")),
            format!("+OK published t {i}")
        );
    }
    anon.delivery();
    anon.delivery();
    stays.delivery();
    let t = publisher.topic_stats("t");
    assert_eq!(t["subscribers"], 2, "{t}");
    assert_eq!(t["in_flight"], 3, "{t}");
    assert_eq!(t["pending"], 7, "{t}");
    drop(anon); // disconnect without quit
    let mut last = serde_json::Value::Null;
    let cleaned = eventually(Duration::from_secs(5), || {
        last = publisher.topic_stats("t");
        last["subscribers"] == 1
    });
    assert!(cleaned, "anonymous subscriber still there: {last}");
    assert_eq!(last["in_flight"], 1, "{last}");
    assert_eq!(last["pending"], 4, "{last}");
    // Its events are gone, not handed to anyone: ids are free for a new publish
    // only once `stays` acks them, so "0" is still a duplicate.
    assert_eq!(
        publisher.cmd(&pub_line("t", "0", 0, "m")),
        "+OK duplicate t 0"
    );

    // With `quit` too, down to zero.
    assert_eq!(stays.cmd("quit"), "+OK bye");
    stays.expect_eof();
    let cleaned = eventually(Duration::from_secs(5), || {
        last = publisher.topic_stats("t");
        last["subscribers"] == 0
    });
    assert!(cleaned, "anonymous subscriber still there: {last}");
    assert_eq!(last["pending"], 0, "{last}");
    assert_eq!(last["in_flight"], 0, "{last}");
    // Nothing pending any more: the same id is a new publish.
    assert_eq!(
        publisher.cmd(&pub_line("t", "0", 0, "m")),
        "+OK published t 0"
    );
}

#[test]
fn durable_subscriber_gets_missed_events_and_redelivery_after_reconnect() {
    let server = Server::start();
    let mut publisher = server.connect();
    assert_eq!(publisher.cmd("create t"), "+OK created t");
    let mut bob = server.connect();
    assert_eq!(bob.cmd("name bob"), "+OK name bob");
    assert_eq!(bob.cmd("sub t"), "+OK subscribed t");
    // name_in_use while bob's connection is alive.
    let mut impostor = server.connect();
    impostor.expect_err("name bob", "name_in_use");

    assert_eq!(
        publisher.cmd(&pub_line("t", "1", 0, "one")),
        "+OK published t 1"
    );
    let first = bob.delivery();
    assert_eq!(first["id"], "1");
    assert!(first.get("redelivered").is_none(), "{first}");
    drop(bob); // away without acking "1"

    assert_eq!(
        publisher.cmd(&pub_line("t", "2", 0, "two")),
        "+OK published t 2"
    );
    assert_eq!(
        publisher.cmd(&pub_line("t", "3", 0, "three")),
        "+OK published t 3"
    );
    // Still pending for bob while he is away: a retry is a duplicate.
    assert_eq!(
        publisher.cmd(&pub_line("t", "2", 0, "two")),
        "+OK duplicate t 2"
    );

    let mut bob = reconnect_as(&server, "bob");
    // bob's subscription survived; after the disconnect, "1" is back in the queue.
    let mut last = serde_json::Value::Null;
    let settled = eventually(Duration::from_secs(5), || {
        last = publisher.topic_stats("t");
        last["in_flight"] == 0
    });
    assert!(settled, "bob's in-flight event not returned: {last}");
    assert_eq!(last["subscribers"], 1, "{last}");
    assert_eq!(last["pending"], 3, "{last}");
    // Nothing is delivered until `sub`.
    bob.assert_quiet();
    assert_eq!(bob.cmd("sub t"), "+OK subscribed t");
    let again = bob.delivery();
    assert_eq!(again["id"], "1");
    assert_eq!(again["msg"], "one");
    assert_eq!(again["redelivered"], true, "{again}");
    assert_eq!(
        again["timestamp"], first["timestamp"],
        "a redelivery is the same event"
    );
    assert_eq!(again["priority"], first["priority"]);
    bob.assert_quiet();
    assert_eq!(bob.cmd("ack t 1"), "+OK acked t 1");
    let two = bob.delivery();
    assert_eq!(two["id"], "2");
    assert!(two.get("redelivered").is_none(), "{two}");
    assert_eq!(bob.cmd("ack t 2"), "+OK acked t 2");
    let three = bob.delivery();
    assert_eq!(three["id"], "3");
    assert!(three.get("redelivered").is_none(), "{three}");
    assert_eq!(bob.cmd("ack t 3"), "+OK acked t 3");
    bob.assert_quiet();
    // Nothing acknowledged comes back.
    let t = publisher.topic_stats("t");
    assert_eq!(
        (t["pending"].as_u64(), t["in_flight"].as_u64()),
        (Some(0), Some(0)),
        "{t}"
    );
}

#[test]
fn durable_subscription_is_only_resumed_topic_by_topic() {
    let server = Server::start();
    let mut publisher = server.connect();
    let mut ann = server.connect();
    assert_eq!(ann.cmd("name ann"), "+OK name ann");
    for topic in ["a", "b"] {
        assert_eq!(
            ann.cmd(&format!("create {topic}")),
            format!("+OK created {topic}")
        );
        assert_eq!(
            ann.cmd(&format!("sub {topic} 5")),
            format!("+OK subscribed {topic}")
        );
    }
    assert_eq!(ann.cmd("quit"), "+OK bye");
    ann.expect_eof();
    for topic in ["a", "b"] {
        assert_eq!(
            publisher.cmd(&pub_line(topic, "x", 0, "m")),
            format!("+OK published {topic} x")
        );
    }
    let mut ann = reconnect_as(&server, "ann");
    ann.assert_quiet();
    assert_eq!(ann.cmd("sub b"), "+OK subscribed b");
    let d = ann.delivery();
    assert_eq!(
        (d["topic"].as_str(), d["id"].as_str()),
        (Some("b"), Some("x"))
    );
    assert!(
        d.get("redelivered").is_none(),
        "never delivered before: {d}"
    );
    ann.assert_quiet();
    // `sub a` resumes the other one.
    assert_eq!(ann.cmd("sub a"), "+OK subscribed a");
    assert_eq!(ann.delivery()["topic"], "a");
}

#[test]
fn durable_unsub_discards_the_queue_for_good() {
    let server = Server::start();
    let mut publisher = server.connect();
    let mut cy = server.connect();
    assert_eq!(cy.cmd("name cy"), "+OK name cy");
    assert_eq!(cy.cmd("create t"), "+OK created t");
    assert_eq!(cy.cmd("sub t"), "+OK subscribed t");
    assert_eq!(
        publisher.cmd(&pub_line("t", "1", 0, "m")),
        "+OK published t 1"
    );
    assert_eq!(cy.delivery()["id"], "1");
    assert_eq!(cy.cmd("unsub t"), "+OK unsubscribed t");
    assert_eq!(cy.cmd("quit"), "+OK bye");
    cy.expect_eof();
    assert_eq!(
        publisher.cmd(&pub_line("t", "2", 0, "m")),
        "+OK published t 2"
    );
    let t = publisher.topic_stats("t");
    assert_eq!(t["subscribers"], 0, "{t}");
    assert_eq!(t["pending"], 0, "{t}");
    let mut cy = reconnect_as(&server, "cy");
    cy.expect_err("ack t 1", "not_subscribed");
    assert_eq!(cy.cmd("sub t"), "+OK subscribed t");
    cy.assert_quiet();
}

#[test]
fn redelivered_events_keep_their_place_in_priority_order() {
    let server = Server::start();
    let mut publisher = server.connect();
    let mut eve = server.connect();
    assert_eq!(eve.cmd("name eve"), "+OK name eve");
    assert_eq!(eve.cmd("create t"), "+OK created t");
    assert_eq!(eve.cmd("sub t 2"), "+OK subscribed t");
    for (id, priority) in [("a", 5), ("b", 5), ("c", 1), ("d", 5)] {
        assert_eq!(
            publisher.cmd(&pub_line("t", id, priority, "m")),
            format!("+OK published t {id}")
        );
    }
    // eve holds a and b; c and d are queued.
    assert_eq!(eve.delivery()["id"], "a");
    assert_eq!(eve.delivery()["id"], "b");
    eve.assert_quiet();
    drop(eve);
    assert_eq!(
        publisher.cmd(&pub_line("t", "e", 9, "m")),
        "+OK published t e"
    );
    assert_eq!(
        publisher.cmd(&pub_line("t", "f", 5, "m")),
        "+OK published t f"
    );
    let mut eve = reconnect_as(&server, "eve");
    // Published after `name` but before `sub`: queued, not delivered.
    assert_eq!(
        publisher.cmd(&pub_line("t", "g", 0, "m")),
        "+OK published t g"
    );
    eve.assert_quiet();
    // Default prefetch 1 now: one at a time, best first, equal priorities in
    // publish order (a and b were published before d and f).
    assert_eq!(eve.cmd("sub t"), "+OK subscribed t");
    let mut order = Vec::new();
    for _ in 0..7 {
        let d = eve.delivery();
        let id = d["id"].as_str().unwrap().to_string();
        let redelivered = d.get("redelivered").cloned();
        order.push((id.clone(), redelivered));
        eve.assert_quiet();
        assert_eq!(eve.cmd(&format!("ack t {id}")), format!("+OK acked t {id}"));
    }
    let t = Some(serde_json::Value::Bool(true));
    assert_eq!(
        order,
        [
            ("e".to_string(), None),
            ("a".to_string(), t.clone()),
            ("b".to_string(), t),
            ("d".to_string(), None),
            ("f".to_string(), None),
            ("c".to_string(), None),
            ("g".to_string(), None),
        ]
    );
    eve.assert_quiet();
}

#[test]
fn only_one_of_many_racing_connections_gets_a_name() {
    let server = Server::start();
    let addr = server.addr;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                barrier.wait();
                let reply = c.cmd("name racer");
                // Keep the connection open until every racer has its reply.
                (reply, c)
            })
        })
        .collect();
    let results: Vec<(String, Client)> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let winners = results
        .iter()
        .filter(|(r, _)| r == "+OK name racer")
        .count();
    assert_eq!(
        winners,
        1,
        "{:?}",
        results.iter().map(|(r, _)| r).collect::<Vec<_>>()
    );
    for (reply, _) in &results {
        if reply != "+OK name racer" {
            assert_eq!(err_code(reply), "name_in_use");
        }
    }
}

#[test]
fn anonymous_subscriber_leaving_frees_its_ids_on_every_topic() {
    let server = Server::start();
    let mut publisher = server.connect();
    let mut anon = server.connect();
    for topic in ["x", "y"] {
        assert_eq!(
            anon.cmd(&format!("create {topic}")),
            format!("+OK created {topic}")
        );
        assert_eq!(
            anon.cmd(&format!("sub {topic}")),
            format!("+OK subscribed {topic}")
        );
        for id in ["1", "2"] {
            assert_eq!(
                publisher.cmd(&pub_line(topic, id, 0, "m")),
                format!("+OK published {topic} {id}")
            );
        }
    }
    assert_eq!(anon.cmd("quit"), "+OK bye");
    let mut last = serde_json::Value::Null;
    assert!(
        eventually(Duration::from_secs(5), || {
            last = publisher.stats(None);
            ["x", "y"]
                .iter()
                .all(|t| last["topics"][t]["subscribers"] == 0)
        }),
        "{last}"
    );
    for topic in ["x", "y"] {
        let t = &last["topics"][topic];
        assert_eq!(
            (t["pending"].as_u64(), t["in_flight"].as_u64()),
            (Some(0), Some(0)),
            "{t}"
        );
        for id in ["1", "2"] {
            assert_eq!(
                publisher.cmd(&pub_line(topic, id, 0, "m")),
                format!("+OK published {topic} {id}")
            );
        }
    }
}

#[test]
fn acked_events_do_not_come_back_after_a_reconnect() {
    let server = Server::start();
    let mut publisher = server.connect();
    let mut fay = server.connect();
    assert_eq!(fay.cmd("name fay"), "+OK name fay");
    assert_eq!(fay.cmd("create t"), "+OK created t");
    assert_eq!(fay.cmd("sub t 3"), "+OK subscribed t");
    for id in ["1", "2", "3"] {
        assert_eq!(
            publisher.cmd(&pub_line("t", id, 0, "m")),
            format!("+OK published t {id}")
        );
    }
    for id in ["1", "2", "3"] {
        assert_eq!(fay.delivery()["id"], id);
    }
    assert_eq!(fay.cmd("ack t 2"), "+OK acked t 2");
    drop(fay);
    let mut fay = reconnect_as(&server, "fay");
    assert_eq!(fay.cmd("sub t 3"), "+OK subscribed t");
    for id in ["1", "3"] {
        let d = fay.delivery();
        assert_eq!(d["id"], id);
        assert_eq!(d["redelivered"], true, "{d}");
    }
    fay.assert_quiet();
}

#[test]
fn a_reconnected_durable_subscriber_can_ack_and_unsub_before_sub() {
    let server = Server::start();
    let mut publisher = server.connect();
    let mut gus = server.connect();
    assert_eq!(gus.cmd("name gus"), "+OK name gus");
    assert_eq!(gus.cmd("create t"), "+OK created t");
    assert_eq!(gus.cmd("sub t 5"), "+OK subscribed t");
    assert_eq!(gus.cmd("quit"), "+OK bye");
    gus.expect_eof();
    for id in ["1", "2", "3"] {
        assert_eq!(
            publisher.cmd(&pub_line("t", id, 0, "m")),
            format!("+OK published t {id}")
        );
    }
    let mut gus = reconnect_as(&server, "gus");
    // Its subscription exists: ack works on it without a new `sub`.
    assert_eq!(gus.cmd("ack t 1"), "+OK acked t 1");
    gus.expect_err("ack t 1", "no_event");
    assert_eq!(publisher.topic_stats("t")["pending"], 2);
    assert_eq!(gus.cmd("unsub t"), "+OK unsubscribed t");
    let t = publisher.topic_stats("t");
    assert_eq!(
        (t["subscribers"].as_u64(), t["pending"].as_u64()),
        (Some(0), Some(0)),
        "{t}"
    );
    assert_eq!(gus.cmd("sub t 5"), "+OK subscribed t");
    gus.assert_quiet();
    // Its old ids are free again.
    assert_eq!(
        publisher.cmd(&pub_line("t", "2", 0, "m")),
        "+OK published t 2"
    );
    assert_eq!(gus.delivery()["id"], "2");
}
