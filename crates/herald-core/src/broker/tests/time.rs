//! Deadlines, nack, touch, dead letters, TTL, delays and aging
//! (`docs/protocol.md` 12.3-12.6, 13.1-13.3), with a clock the test moves.

use super::*;

fn setup(w: &mut World, sub: &str) {
    w.run(100, "create t");
    let reply = w.reply(1, sub);
    assert!(reply.starts_with("+OK subscribed"), "{reply}");
}

#[test]
fn a_missed_deadline_returns_the_event_to_its_place() {
    let mut w = World::new();
    setup(&mut w, "sub t 1 wait=100");
    for id in ["a", "b", "c"] {
        w.run(9, &pub_line("t", id, 0));
    }
    assert_eq!(w.broker.next_wakeup(), Some(NOW + 100));
    assert!(w.advance(99).is_empty());
    // a comes back before b and c (its place), as a redelivery.
    let out = w.advance(1);
    assert_eq!(delivered(&out), vec![(1, "a".into(), 2)]);
    let json = delivery_json(&out);
    assert_eq!(
        (json["redelivered"].clone(), json["deliveries"].clone()),
        (true.into(), 2.into())
    );
    assert_eq!(w.broker.topic_stats("t").unwrap().counters.redelivered, 1);
    // A higher priority that arrived meanwhile goes first.
    w.run(9, &pub_line("t", "urgent", 7));
    let out = w.advance(100);
    assert_eq!(delivered(&out), vec![(1, "urgent".into(), 1)]);
    // The connection is never closed for a missed deadline.
    assert_eq!(w.reply(1, "ack t urgent"), "+OK acked t urgent");
}

#[test]
fn backoff_holds_returns_delayed_by_return_number() {
    let mut w = World::new();
    setup(&mut w, "sub t 1 wait=10 backoff=50,200");
    w.run(9, &pub_line("t", "a", 0));
    // 1st return: delayed 50 ms.
    assert!(w.advance(10).is_empty());
    assert_eq!(w.stats("t")["delayed"], 1);
    let peek = w.peek(1, "t");
    assert_eq!(peek[0]["state"], "delayed");
    assert_eq!(peek[0]["due_ms"], 50);
    assert_eq!(peek[0]["deliveries"], 1);
    assert_eq!(delivered(&w.advance(50)), vec![(1, "a".into(), 2)]);
    // 2nd return: 200 ms; 3rd: the last value repeats.
    w.advance(10);
    assert!(w.advance(199).is_empty());
    assert_eq!(delivered(&w.advance(1)), vec![(1, "a".into(), 3)]);
    w.advance(10);
    assert!(w.advance(199).is_empty());
    assert_eq!(delivered(&w.advance(1)), vec![(1, "a".into(), 4)]);
}

#[test]
fn touch_restarts_the_deadline() {
    let mut w = World::new();
    setup(&mut w, "sub t 1 wait=100");
    w.run(9, &pub_line("t", "a", 0));
    w.advance(80);
    assert_eq!(w.reply(1, "touch t a"), "+OK touched t a 100");
    assert!(w.advance(99).is_empty());
    assert_eq!(w.reply(1, "touch t a 5s"), "+OK touched t a 5000");
    assert!(w.advance(4_999).is_empty());
    assert_eq!(ids(&w.advance(1)), vec!["a"]);
}

#[test]
fn touch_errors_come_in_order() {
    let mut w = World::new();
    w.run(100, "create t");
    assert!(w.reply(1, "touch t a").starts_with("-ERR not_subscribed"));
    assert!(
        w.reply(1, "touch nope a")
            .starts_with("-ERR not_subscribed")
    );
    w.run(1, "sub t");
    assert!(w.reply(1, "touch t a").starts_with("-ERR bad_state"));
    w.run(2, "sub t wait=1s");
    assert!(w.reply(2, "touch t a").starts_with("-ERR no_event"));
    w.run(9, &pub_line("t", "a", 0));
    w.run(9, &pub_line("t", "b", 0));
    // b is queued, not in flight: no_event.
    assert!(w.reply(2, "touch t b").starts_with("-ERR no_event"));
    assert!(w.reply(2, "nack t b").starts_with("-ERR no_event"));
}

#[test]
fn nack_returns_at_once_or_delayed() {
    let mut w = World::new();
    setup(&mut w, "sub t 1");
    w.run(9, &pub_line("t", "a", 0));
    w.run(9, &pub_line("t", "b", 0));
    let out = w.run(1, "nack t a");
    assert_eq!(replies(&out), vec!["+OK nacked t a"]);
    assert!(matches!(out[0], Output::Reply { .. }));
    assert_eq!(delivered(&out), vec![(1, "a".into(), 2)]);
    let out = w.run(1, "nack t a 1s");
    assert_eq!(delivered(&out), vec![(1, "b".into(), 1)]);
    w.run(1, "ack t b");
    assert!(w.advance(999).is_empty());
    assert_eq!(delivered(&w.advance(1)), vec![(1, "a".into(), 3)]);
}

#[test]
fn max_deliveries_dead_letters_with_the_exact_shape() {
    let mut w = World::new();
    w.run(100, "create t");
    w.run(2, "create t.dead");
    w.run(2, "sub t.dead");
    w.run(1, "name worker");
    w.run(1, "sub t 1 wait=10 max_deliveries=2");
    w.run(
        9,
        r#"pub t {"id":"j1","priority":4,"msg":{"n":1},"ttl_ms":600000,"delay_ms":0,"x":"y"}"#,
    );
    assert_eq!(ids(&w.advance(10)), vec!["j1"]);
    // Second return: dead-lettered, delivered to the dead topic's subscriber.
    let out = w.advance(10);
    let letters = delivered(&out);
    assert_eq!(letters, vec![(2, "worker/j1".into(), 1)]);
    let json = delivery_json(&out);
    assert_eq!(json["topic"], "t.dead");
    assert_eq!(json["priority"], 4);
    assert_eq!(json["msg"], serde_json::json!({"n":1}));
    assert_eq!(json["x"], "y");
    assert!(json.get("ttl_ms").is_none() && json.get("delay_ms").is_none());
    assert_eq!(json["timestamp"], w.now);
    assert_eq!(
        json["dead"],
        serde_json::json!({
            "topic": "t",
            "id": "j1",
            "subscription": "worker",
            "reason": "max_deliveries",
            "deliveries": 2,
            "timestamp": NOW,
        })
    );
    let s = w.stats("t");
    assert_eq!(
        (
            s["dead_lettered"].as_u64(),
            s["pending"].as_u64(),
            s["in_flight"].as_u64()
        ),
        (Some(1), Some(0), Some(0))
    );
    // One record moves it: a crash leaves it in exactly one place.
    let moved: Vec<&Change> = w
        .log
        .iter()
        .filter(|c| matches!(c, Change::DeadLettered { .. }))
        .collect();
    assert_eq!(moved.len(), 1);
}

#[test]
fn nack_dead_and_dead_none() {
    let mut w = World::new();
    w.run(100, "create t");
    // The default dead topic is created when missing; a dead letter only
    // reaches the subscriptions the dead topic has at that moment.
    w.run(1, "sub t");
    w.run(9, &pub_line("t", "a", 0));
    assert_eq!(w.reply(1, "nack t a dead"), "+OK nacked t a");
    assert_eq!(w.reply(1, "topics"), r#"+OK ["t","t.dead"]"#);
    assert_eq!(w.stats("t")["dead_lettered"], 1);
    assert_eq!(w.stats("t.dead")["published"], 1);
    // dead=none drops, and counts.
    w.run(2, "sub t dead=none");
    w.run(9, &pub_line("t", "b", 0));
    assert_eq!(w.reply(2, "nack t b dead"), "+OK nacked t b");
    assert_eq!(w.stats("t")["dead_dropped"], 1);
    // dead=<topic> sends there; the id names the subscription.
    w.run(3, "sub t dead=graveyard");
    w.run(4, "create graveyard");
    w.run(4, "sub graveyard");
    w.run(9, &pub_line("t", "c", 0));
    let out = w.run(3, "nack t c dead");
    let letter = delivery_json(&out);
    assert_eq!(letter["id"], "~3/c");
    assert_eq!(letter["dead"]["reason"], "rejected");
    assert_eq!(letter["dead"]["subscription"], "~3");
}

#[test]
fn ttl_expires_events_anywhere_in_the_queue() {
    let mut w = World::new();
    setup(&mut w, "sub t 1");
    w.run(9, &pub_line("t", "head", 9));
    w.run(9, r#"pub t {"id":"short","msg":1,"ttl_ms":100}"#);
    w.run(9, &pub_line("t", "tail", 0));
    // "short" sits behind the in-flight head; it goes anyway.
    assert!(w.advance(100).is_empty());
    let s = w.stats("t");
    assert_eq!(
        (s["pending"].as_u64(), s["expired"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(ids(&w.run(1, "ack t head")), vec!["tail"]);
    // Its id is free again.
    assert_eq!(
        w.reply(9, r#"pub t {"id":"short","msg":1}"#),
        "+OK published t short"
    );
}

#[test]
fn the_smaller_of_event_and_topic_ttl_applies() {
    let mut w = World::new();
    w.run(100, "create t ttl=1s");
    assert_eq!(w.reply(100, "create t ttl=200"), "+OK created t");
    // A plain create leaves it.
    assert_eq!(w.reply(100, "create t"), "+OK created t");
    w.run(1, "sub t 1");
    w.run(9, &pub_line("t", "busy", 9));
    w.run(9, r#"pub t {"id":"a","msg":1,"ttl_ms":50}"#);
    w.run(9, r#"pub t {"id":"b","msg":1,"ttl_ms":5000}"#);
    w.run(9, r#"pub t {"id":"c","msg":1}"#);
    w.advance(50);
    assert_eq!(w.stats("t")["expired"], 1);
    w.advance(150);
    assert_eq!(w.stats("t")["expired"], 3);
    assert_eq!(w.stats("t")["pending"], 0);
}

#[test]
fn an_in_flight_event_is_not_taken_back_but_goes_when_returned_expired() {
    let mut w = World::new();
    setup(&mut w, "sub t 1 dead=graveyard");
    w.run(2, "create graveyard");
    w.run(2, "sub graveyard");
    w.run(9, r#"pub t {"id":"a","msg":1,"ttl_ms":100}"#);
    w.advance(200);
    let s = w.stats("t");
    assert_eq!(
        (s["in_flight"].as_u64(), s["expired"].as_u64()),
        (Some(1), Some(0))
    );
    // Returned after it expired: removed, and dead-lettered (explicit dead=).
    let out = w.run(1, "nack t a");
    let letter = delivery_json(&out);
    assert_eq!(letter["id"], "~1/a");
    assert_eq!(letter["dead"]["reason"], "expired");
    assert_eq!(w.stats("t")["expired"], 1);
    assert_eq!(w.stats("t")["in_flight"], 0);
}

#[test]
fn expiry_without_an_explicit_dead_topic_just_drops() {
    let mut w = World::new();
    setup(&mut w, "sub t");
    w.run(9, &pub_line("t", "busy", 0));
    w.run(9, r#"pub t {"id":"a","msg":1,"ttl_ms":10}"#);
    w.advance(10);
    assert_eq!(w.reply(1, "topics"), r#"+OK ["t"]"#);
    assert_eq!(w.stats("t")["dead_lettered"], 0);
}

#[test]
fn delayed_events_wait_use_no_slot_and_join_behind_their_level() {
    let mut w = World::new();
    setup(&mut w, "sub t 1");
    w.run(9, r#"pub t {"id":"later","msg":1,"delay_ms":500}"#);
    assert_eq!(w.stats("t")["delayed"], 1);
    assert_eq!(w.stats("t")["pending"], 0);
    // No prefetch slot used: the next event goes out at once.
    assert_eq!(ids(&w.run(9, &pub_line("t", "now", 0))), vec!["now"]);
    // A duplicate while delayed.
    assert_eq!(
        w.reply(9, r#"pub t {"id":"later","msg":1}"#),
        "+OK duplicate t later"
    );
    w.run(9, &pub_line("t", "second", 0));
    assert!(w.advance(499).is_empty());
    w.advance(1);
    // Due: it joins behind "second", which was already there.
    assert_eq!(ids(&w.run(1, "ack t now")), vec!["second"]);
    assert_eq!(ids(&w.run(1, "ack t second")), vec!["later"]);
}

#[test]
fn not_before_in_the_past_is_due_at_once_and_a_delayed_event_can_be_acked() {
    let mut w = World::new();
    setup(&mut w, "sub t 5");
    let out = w.run(
        9,
        &format!(r#"pub t {{"id":"a","msg":1,"not_before":{}}}"#, NOW - 1),
    );
    assert_eq!(ids(&out), vec!["a"]);
    w.run(
        9,
        &format!(r#"pub t {{"id":"b","msg":1,"not_before":{}}}"#, NOW + 1000),
    );
    assert_eq!(w.reply(1, "ack t b"), "+OK acked t b");
    assert!(w.advance(2000).is_empty());
    let far = NOW + 31 * 24 * 3600 * 1000;
    assert!(
        w.reply(
            9,
            &format!(r#"pub t {{"id":"c","msg":1,"not_before":{far}}}"#)
        )
        .starts_with("-ERR bad_event")
    );
}

#[test]
fn aging_orders_by_ready_minus_priority_times_age() {
    let mut w = World::new();
    w.run(100, "create t");
    w.run(1, "name w");
    w.run(1, "sub t 1 age=1s");
    w.run(9, &pub_line("t", "busy", 0));
    w.run(9, &pub_line("t", "old-low", 0));
    w.advance(5_000);
    w.run(9, &pub_line("t", "new-high", 4));
    // 0 − 0 < 5000 − 4000: the old low-priority event first.
    assert_eq!(ids(&w.run(1, "ack t busy")), vec!["old-low"]);
    assert_eq!(ids(&w.run(1, "ack t old-low")), vec!["new-high"]);
}

#[test]
fn peek_shows_states_without_changing_anything() {
    let mut w = World::new();
    w.run(100, "create t");
    w.run(1, "name alice");
    w.run(1, "sub t 1 wait=30s");
    w.run(9, &pub_line("t", "a", 1));
    w.run(9, &pub_line("t", "b", 5));
    w.run(9, r#"pub t {"id":"c","msg":1,"delay_ms":1000}"#);
    w.advance(10);
    let peek = w.peek(1, "t");
    let states: Vec<(&str, &str)> = peek
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"]["id"].as_str().unwrap(),
                e["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![("a", "in_flight"), ("b", "queued"), ("c", "delayed")]
    );
    assert_eq!(peek[0]["deadline_ms"], 29_990);
    assert_eq!(peek[0]["deliveries"], 1);
    assert_eq!(peek[0]["event"]["redelivered"], true);
    assert!(peek[1].get("deadline_ms").is_none() && peek[1].get("due_ms").is_none());
    assert_eq!(peek[2]["due_ms"], 990);
    assert_eq!(w.peek(1, "t 1").as_array().unwrap().len(), 1);
    // By name, from another connection; and the errors.
    assert_eq!(w.peek(5, "t sub=alice").as_array().unwrap().len(), 3);
    assert!(w.reply(5, "peek t").starts_with("-ERR not_subscribed"));
    assert!(
        w.reply(5, "peek t group=alice")
            .starts_with("-ERR not_subscribed")
    );
    assert!(
        w.reply(5, "peek nope sub=alice")
            .starts_with("-ERR not_subscribed")
    );
    // Nothing changed.
    assert_eq!(w.stats("t")["in_flight"], 1);
}

#[test]
fn stats_of_a_topic_lists_its_subscriptions() {
    let mut w = World::new();
    w.run(100, "create t");
    w.run(1, "name alice");
    w.run(
        1,
        "sub t 3 wait=30s backoff=1s,5s max_deliveries=5 dead=none",
    );
    w.run(2, "sub t group=g");
    w.run(9, &pub_line("t", "a", 0));
    w.advance(250);
    let s = w.stats("t");
    let subs = s["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 2);
    let alice = subs.iter().find(|s| s["name"] == "alice").unwrap();
    assert_eq!(alice["prefetch"], 3);
    assert_eq!(alice["members"], 1);
    assert_eq!(
        alice["options"],
        "wait=30000 backoff=1000,5000 max_deliveries=5 dead=none"
    );
    let g = subs.iter().find(|s| s["group"] == "g").unwrap();
    assert_eq!(g["in_flight"], 1);
    assert_eq!(g["oldest_ms"], 0);
    w.run(9, &pub_line("t", "b", 0));
    w.advance(100);
    let s = w.stats("t");
    let g = s["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["group"] == "g")
        .unwrap()
        .clone();
    assert_eq!(g["oldest_ms"], 100);
}
