//! The version-1 behaviours (`docs/protocol.md` 4-8), unchanged by v2.

use super::*;

#[test]
fn publish_without_subscribers_is_accepted_and_dropped() {
    let mut w = World::new();
    assert_eq!(w.reply(1, &pub_line("t", "1", 0)), "+OK published t 1");
    assert_eq!(w.reply(1, &pub_line("t", "1", 0)), "+OK published t 1");
    let s = w.broker.topic_stats("t").unwrap();
    assert_eq!((s.counters.published, s.pending), (2, 0));
}

#[test]
fn sub_to_a_missing_topic_is_no_topic() {
    let mut w = World::new();
    assert!(w.reply(1, "sub nope").starts_with("-ERR no_topic"));
    assert!(w.reply(1, "stats nope").starts_with("-ERR no_topic"));
}

#[test]
fn reply_to_sub_comes_before_its_first_delivery() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(2, &pub_line("t", "a", 0));
    // Nobody was subscribed: dropped.
    let out = w.run(1, "sub t");
    assert_eq!(replies(&out), vec!["+OK subscribed t"]);
    assert!(ids(&out).is_empty());
    assert_eq!(ids(&w.run(2, &pub_line("t", "b", 0))), vec!["b"]);
    assert!(ids(&w.run(2, &pub_line("t", "c", 0))).is_empty());
    // Raising the prefetch frees a slot: the reply comes first.
    let out = w.run(1, "sub t 5");
    assert!(matches!(out[0], Output::Reply { .. }));
    assert_eq!(ids(&out), vec!["c"]);
}

#[test]
fn nothing_is_delivered_before_it_is_durable() {
    let mut b = Broker::new();
    let mut fx = Effects::new();
    for line in ["create t", "sub t 10"] {
        let cmd = parse_line(line.as_bytes()).unwrap().unwrap();
        b.handle(ConnId(1), cmd, NOW, &mut fx);
    }
    let cmd = parse_line(pub_line("t", "x", 0).as_bytes())
        .unwrap()
        .unwrap();
    fx.outputs.clear();
    b.handle(ConnId(2), cmd, NOW, &mut fx);
    assert!(ids(&fx.outputs).is_empty(), "delivered before durable");
    let seq = b.last_seq();
    b.set_durable(seq, NOW, &mut fx);
    assert_eq!(ids(&fx.outputs), vec!["x"]);
}

#[test]
fn highest_priority_first_then_publish_order() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(1, "name alice");
    w.run(1, "sub t 1");
    for (id, p) in [("a", 1), ("b", 5), ("c", 3), ("d", 5), ("e", 0)] {
        w.run(2, &pub_line("t", id, p));
    }
    // "a" went out first (it was alone); the rest wait in priority order.
    let mut order = vec![];
    let mut next = "a".to_string();
    for _ in 0..5 {
        order.push(next.clone());
        let out = w.run(1, &format!("ack t {next}"));
        if let Some(id) = ids(&out).first() {
            next = id.clone();
        }
    }
    assert_eq!(order, vec!["a", "b", "d", "c", "e"]);
}

#[test]
fn prefetch_bounds_in_flight_and_ack_releases_the_next_after_its_reply() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(1, "sub t 2");
    let mut got = vec![];
    for i in 0..5 {
        got.extend(ids(&w.run(2, &pub_line("t", &i.to_string(), 0))));
    }
    assert_eq!(got, vec!["0", "1"]);
    let stats = w.broker.topic_stats("t").unwrap();
    assert_eq!((stats.in_flight, stats.pending), (2, 3));
    let out = w.run(1, "ack t 0");
    assert!(matches!(
        &out[0],
        Output::Reply {
            reply: Reply::Acked { .. },
            ..
        }
    ));
    assert_eq!(ids(&out), vec!["2"]);
}

#[test]
fn ack_of_a_queued_event_means_it_is_never_delivered() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(1, "sub t");
    w.run(2, &pub_line("t", "1", 0));
    w.run(2, &pub_line("t", "2", 0));
    assert_eq!(w.reply(1, "ack t 2"), "+OK acked t 2");
    let out = w.run(1, "ack t 1");
    assert!(ids(&out).is_empty());
}

#[test]
fn ack_errors() {
    let mut w = World::new();
    w.run(1, "create t");
    assert!(w.reply(1, "ack t 1").starts_with("-ERR not_subscribed"));
    assert!(w.reply(1, "ack nope 1").starts_with("-ERR not_subscribed"));
    assert!(w.reply(1, "unsub nope").starts_with("-ERR not_subscribed"));
    w.run(1, "sub t");
    assert!(w.reply(1, "ack t 1").starts_with("-ERR no_event"));
}

#[test]
fn a_pending_id_is_a_duplicate_until_every_subscriber_acked_it() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(1, "sub t");
    w.run(2, "sub t");
    assert_eq!(w.reply(3, &pub_line("t", "7", 0)), "+OK published t 7");
    assert_eq!(w.reply(3, &pub_line("t", "7", 9)), "+OK duplicate t 7");
    w.run(1, "ack t 7");
    assert_eq!(w.reply(3, &pub_line("t", "7", 0)), "+OK duplicate t 7");
    w.run(2, "ack t 7");
    assert_eq!(w.reply(3, &pub_line("t", "7", 0)), "+OK published t 7");
    assert_eq!(w.broker.topic_stats("t").unwrap().counters.published, 2);
}

#[test]
fn fan_out_gives_every_subscriber_its_own_copy() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(1, "sub t");
    w.run(2, "sub t");
    let out = w.run(3, &pub_line("t", "x", 0));
    let mut conns: Vec<u64> = delivered(&out).iter().map(|d| d.0).collect();
    conns.sort();
    assert_eq!(conns, vec![1, 2]);
}

#[test]
fn unsub_discards_the_queue() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(1, "sub t");
    w.run(2, &pub_line("t", "1", 0));
    w.run(2, &pub_line("t", "2", 0));
    assert_eq!(w.reply(1, "unsub t"), "+OK unsubscribed t");
    let s = w.broker.topic_stats("t").unwrap();
    assert_eq!((s.pending, s.subscribers), (0, 0));
    assert!(w.reply(1, "ack t 1").starts_with("-ERR not_subscribed"));
    // The ids are free again.
    assert_eq!(w.reply(2, &pub_line("t", "1", 0)), "+OK published t 1");
}

#[test]
fn an_anonymous_subscriber_is_removed_on_disconnect() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(1, "sub t");
    w.run(2, &pub_line("t", "1", 0));
    w.disconnect(1);
    let s = w.broker.topic_stats("t").unwrap();
    assert_eq!((s.subscribers, s.pending, s.in_flight), (0, 0, 0));
}

#[test]
fn a_durable_subscriber_gets_in_flight_events_again_flagged() {
    let mut w = World::new();
    w.run(1, "create t");
    assert_eq!(w.reply(1, "name bob"), "+OK name bob");
    w.run(1, "sub t");
    let out = w.run(2, &pub_line("t", "1", 0));
    assert_eq!(delivered(&out), vec![(1, "1".into(), 1)]);
    w.run(2, &pub_line("t", "2", 0));
    w.disconnect(1);
    // Published while away: queued for bob.
    w.run(2, &pub_line("t", "3", 0));
    assert_eq!(w.broker.topic_stats("t").unwrap().pending, 3);
    assert_eq!(w.reply(3, "name bob"), "+OK name bob");
    // Nothing until sub; then the returned event first, flagged.
    let out = w.run(3, "sub t");
    assert_eq!(delivered(&out), vec![(3, "1".into(), 2)]);
    let json = delivery_json(&out);
    assert_eq!(json["redelivered"], true);
    assert_eq!(json["deliveries"], 2);
    let out = w.run(3, "ack t 1");
    assert_eq!(delivered(&out), vec![(3, "2".into(), 1)]);
    // A first delivery has neither field, exactly as in version 1.
    let json = delivery_json(&out);
    assert!(json.get("redelivered").is_none() && json.get("deliveries").is_none());
}

#[test]
fn name_rules() {
    let mut w = World::new();
    w.run(1, "create t");
    assert_eq!(w.reply(1, "name bob"), "+OK name bob");
    assert!(w.reply(1, "name bob").starts_with("-ERR bad_state"));
    assert!(w.reply(2, "name bob").starts_with("-ERR name_in_use"));
    w.run(3, "sub t");
    assert!(w.reply(3, "name carol").starts_with("-ERR bad_state"));
    // A failed sub does not count.
    w.run(4, "sub nope");
    assert_eq!(w.reply(4, "name carol"), "+OK name carol");
    // Once bob's connection is gone, the name is free to take over.
    w.disconnect(1);
    assert_eq!(w.reply(2, "name bob"), "+OK name bob");
}

#[test]
fn topics_and_stats_are_json() {
    let mut w = World::new();
    w.run(1, "create b");
    w.run(1, "create a");
    assert_eq!(w.reply(1, "topics"), r#"+OK ["a","b"]"#);
    w.run(1, "sub a");
    w.run(2, &pub_line("a", "1", 0));
    w.run(2, &pub_line("a", "2", 0));
    let all = w.reply(1, "stats");
    let json: serde_json::Value = serde_json::from_str(all.strip_prefix("+OK ").unwrap()).unwrap();
    let a = &json["topics"]["a"];
    for (key, value) in [
        ("subscribers", 1),
        ("pending", 1),
        ("in_flight", 1),
        ("published", 2),
        ("delayed", 0),
        ("redelivered", 0),
        ("dead_lettered", 0),
        ("dead_dropped", 0),
        ("expired", 0),
        ("evicted", 0),
    ] {
        assert_eq!(a[key], value, "{key} in {a}");
    }
    // Without a topic, no subscription lists.
    assert!(a.get("subscriptions").is_none());
    assert!(json["topics"].get("b").is_some());
}
