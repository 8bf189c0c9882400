//! Bounded subscriptions (`docs/protocol.md` 13.4).

use super::*;

#[test]
fn overflow_reject_refuses_the_whole_publish() {
    let mut w = World::new();
    w.run(100, "create t");
    w.run(1, "sub t limit=2");
    w.run(2, "sub t");
    w.run(9, &pub_line("t", "a", 0));
    w.run(9, &pub_line("t", "b", 0));
    assert_eq!(w.reply(9, &pub_line("t", "c", 0)), "-ERR full t ~1");
    // Nothing stored for anyone, and not counted.
    let s = w.stats("t");
    assert_eq!(
        (
            s["pending"].as_u64(),
            s["in_flight"].as_u64(),
            s["published"].as_u64()
        ),
        (Some(2), Some(2), Some(2))
    );
    // A duplicate is never full.
    assert_eq!(w.reply(9, &pub_line("t", "a", 0)), "+OK duplicate t a");
    // An ack makes room.
    w.run(1, "ack t a");
    assert_eq!(w.reply(9, &pub_line("t", "c", 0)), "+OK published t c");
}

#[test]
fn limit_bytes_counts_the_msg_text() {
    let mut w = World::new();
    w.run(100, "create t");
    w.run(1, "name n");
    w.run(1, "sub t limit_bytes=10 overflow=reject");
    // "12345" is 7 bytes of JSON text with its quotes.
    assert!(
        w.reply(9, r#"pub t {"id":"a","msg":"12345"}"#)
            .starts_with("+OK published")
    );
    assert_eq!(
        w.reply(9, r#"pub t {"id":"b","msg":"12"}"#),
        "-ERR full t n"
    );
    assert!(
        w.reply(9, r#"pub t {"id":"c","msg":1}"#)
            .starts_with("+OK published")
    );
}

#[test]
fn overflow_drop_evicts_the_lowest_priority_oldest_never_in_flight() {
    let mut w = World::new();
    w.run(100, "create t");
    w.run(1, "sub t 1 limit=3 overflow=drop");
    w.run(9, &pub_line("t", "flying", 0));
    w.run(9, &pub_line("t", "low1", 1));
    w.run(9, &pub_line("t", "high", 5));
    // Over the limit: low1 (lowest priority queued; flying is in flight).
    w.run(9, &pub_line("t", "low2", 1));
    let peek = w.peek(1, "t");
    let ids: Vec<&str> = peek
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["flying", "high", "low2"]);
    // The new event itself can be the one to go.
    w.run(9, &pub_line("t", "lowest", 0));
    let peek = w.peek(1, "t");
    let ids: Vec<&str> = peek
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["flying", "high", "low2"]);
    assert_eq!(w.stats("t")["evicted"], 2);
    // Published counts every accepted event.
    assert_eq!(w.stats("t")["published"], 5);
}

#[test]
fn evictions_are_dead_lettered_only_with_an_explicit_dead_topic() {
    let mut w = World::new();
    w.run(100, "create t");
    w.run(2, "create spill");
    w.run(2, "sub spill 10");
    w.run(1, "sub t 1 limit=1 overflow=drop dead=spill");
    w.run(9, &pub_line("t", "a", 0));
    let out = w.run(9, &pub_line("t", "b", 0));
    // a (in flight) and b: 2 > 1, and b is the only queued one: evicted.
    let letter = delivery_json(&out);
    assert_eq!(letter["id"], "~1/b");
    assert_eq!(letter["dead"]["reason"], "overflow");
    w.run(3, "sub t 1 limit=1 overflow=drop");
    w.run(9, &pub_line("t", "c", 0));
    w.run(9, &pub_line("t", "d", 0));
    // c and d are evicted from ~1 (to spill) and d from ~3 (dropped).
    assert_eq!(w.stats("spill")["published"], 3);
    assert_eq!(w.stats("t")["evicted"], 4);
}

#[test]
fn lowering_a_limit_removes_nothing_at_once() {
    let mut w = World::new();
    w.run(100, "create t");
    w.run(1, "name n");
    w.run(1, "sub t 1");
    for id in ["a", "b", "c"] {
        w.run(9, &pub_line("t", id, 0));
    }
    w.run(1, "sub t 1 limit=1");
    assert_eq!(w.stats("t")["pending"], 2);
    assert_eq!(w.reply(9, &pub_line("t", "d", 0)), "-ERR full t n");
    // Returns never fail on a limit.
    assert_eq!(w.reply(1, "nack t a"), "+OK nacked t a");
    w.run(1, "sub t 1 limit=1 overflow=drop");
    w.run(9, &pub_line("t", "e", 0));
    let s = w.stats("t");
    assert_eq!(
        s["pending"].as_u64().unwrap() + s["in_flight"].as_u64().unwrap(),
        1
    );
}
