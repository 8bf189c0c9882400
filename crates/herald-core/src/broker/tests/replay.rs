//! Replay of the changes a broker recorded (`docs/protocol.md` 10):
//! what a restart rebuilds.

use super::*;

#[test]
fn replay_rebuilds_durable_state_and_drops_anonymous() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(1, "name bob");
    w.run(1, "sub t 3");
    w.run(2, "sub t");
    for (id, p) in [("1", 0), ("2", 9), ("3", 4), ("4", 4)] {
        w.run(3, &pub_line("t", id, p));
    }
    w.run(1, "ack t 1");
    let mut b = replayed(&w.log);
    assert_eq!(view(&b), view(&w.broker));
    assert_eq!(b.topic_stats("t").unwrap().subscribers, 1);
    // Delivered before the "restart": flagged, with their counts.
    let mut fx = Effects::new();
    for line in ["name bob", "sub t 3"] {
        let cmd = parse_line(line.as_bytes()).unwrap().unwrap();
        b.handle(ConnId(9), cmd, NOW, &mut fx);
    }
    let got = delivered(&fx.outputs);
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|d| d.2 == 2),
        "all were delivered before: {got:?}"
    );
}

#[test]
fn replay_ignores_a_compaction_copy_of_an_event_it_holds() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(1, "name bob");
    w.run(1, "sub t");
    w.run(3, &pub_line("t", "1", 0));
    w.run(3, &pub_line("t", "2", 0));
    let copies: Vec<Change> = w
        .broker
        .durable_events_before(Seq(u64::MAX))
        .iter()
        .filter_map(|(t, e)| w.broker.rewrite_record(t, e))
        .collect();
    assert_eq!(copies.len(), 2);
    let mut log = w.log.clone();
    log.extend(copies.iter().cloned());
    assert_eq!(view(&replayed(&log)), view(&w.broker));
    // Only metadata and copies (the old segments deleted): same state.
    let mut compacted = w.broker.metadata();
    compacted.extend(copies);
    assert_eq!(view(&replayed(&compacted)), view(&w.broker));
}

#[test]
fn groups_options_and_topic_ttl_survive() {
    let mut w = World::new();
    w.run(1, "create t ttl=1h");
    w.run(1, "sub t 4 group=g wait=30s backoff=1s,5s max_deliveries=3 dead=none age=2s limit=100 limit_bytes=4096 overflow=drop");
    w.run(2, "name alice");
    w.run(2, "sub t 7 wait=1s");
    let b = replayed(&w.log);
    let mut w2 = World {
        broker: b,
        log: vec![],
        now: NOW,
    };
    let s = w2.stats("t");
    let subs = s["subscriptions"].as_array().unwrap();
    let g = subs.iter().find(|s| s["group"] == "g").unwrap();
    assert_eq!(
        g["options"],
        "group=g wait=30000 backoff=1000,5000 max_deliveries=3 dead=none age=2000 limit=100 limit_bytes=4096 overflow=drop"
    );
    assert_eq!(g["members"], 0);
    let alice = subs.iter().find(|s| s["name"] == "alice").unwrap();
    assert_eq!(alice["prefetch"], 7);
    // The snapshot carries the same.
    let b3 = replayed_at(&w.broker.metadata(), NOW);
    assert_eq!(b3.metadata(), w.broker.metadata());
    // The topic's TTL applies to events published after the restart.
    w2.run(5, r#"pub t {"id":"x","msg":1}"#);
    w2.advance(3_600_000);
    assert_eq!(w2.stats("t")["expired"], 2);
}

#[test]
fn a_nacked_delay_and_a_publish_delay_survive_with_their_due_times() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(1, "name n");
    w.run(1, "sub t 1");
    w.run(9, &pub_line("t", "a", 0));
    w.run(9, r#"pub t {"id":"b","msg":1,"delay_ms":5000}"#);
    w.run(1, "nack t a 2s");
    assert!(
        w.log
            .iter()
            .any(|c| matches!(c, Change::Delayed { due, .. } if *due == NOW + 2000))
    );
    let b = replayed_at(&w.log, NOW + 1000);
    let mut w2 = World {
        broker: b,
        log: vec![],
        now: NOW + 1000,
    };
    w2.run(1, "name n");
    assert!(
        w2.run(1, "sub t 5")
            .iter()
            .all(|o| !matches!(o, Output::Deliver { .. }))
    );
    assert_eq!(w2.stats("t")["delayed"], 2);
    assert!(w2.advance(999).is_empty());
    assert_eq!(delivered(&w2.advance(1)), vec![(1, "a".into(), 2)]);
    assert!(w2.advance(2_999).is_empty());
    assert_eq!(delivered(&w2.advance(1)), vec![(1, "b".into(), 1)]);
}

#[test]
fn events_that_expired_while_stopped_are_gone() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(1, "name n");
    w.run(1, "sub t 1");
    w.run(9, &pub_line("t", "keep", 0));
    w.run(9, r#"pub t {"id":"short","msg":1,"ttl_ms":1000}"#);
    let b = replayed_at(&w.log, NOW + 1000);
    assert_eq!(
        view(&b),
        vec![("t".into(), vec![("n".into(), vec!["keep".into()])])]
    );
    // The id is free.
    let mut w2 = World {
        broker: b,
        log: vec![],
        now: NOW + 1000,
    };
    assert_eq!(
        w2.reply(9, r#"pub t {"id":"short","msg":1}"#),
        "+OK published t short"
    );
}

#[test]
fn after_a_crash_an_event_may_be_delivered_once_more_than_max_deliveries() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(1, "name n");
    w.run(1, "sub t 1 max_deliveries=2");
    w.run(9, &pub_line("t", "a", 0));
    w.run(1, "nack t a");
    // a is in flight for the 2nd time when the broker "crashes": the log
    // cannot tell, so recovery queues it with its count (12.3).
    let b = replayed_at(&w.log, NOW);
    let mut w2 = World {
        broker: b,
        log: vec![],
        now: NOW,
    };
    w2.run(1, "name n");
    assert_eq!(
        delivered(&w2.run(1, "sub t 1 max_deliveries=2")),
        vec![(1, "a".into(), 3)]
    );
    // Its next return dead-letters it.
    w2.run(1, "nack t a");
    assert_eq!(w2.stats("t")["dead_lettered"], 1);
    assert_eq!(w2.stats("t.dead")["published"], 1);
}

#[test]
fn what_expired_while_stopped_is_gone_without_dead_letters() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(1, "name n");
    w.run(1, "sub t 1 dead=graveyard");
    w.run(9, &pub_line("t", "busy", 0));
    w.run(9, r#"pub t {"id":"short","msg":1,"ttl_ms":1000}"#);
    let b = replayed_at(&w.log, NOW + 5000);
    assert_eq!(
        view(&b),
        vec![("t".into(), vec![("n".into(), vec!["busy".into()])])]
    );
}

#[test]
fn a_dead_letter_is_in_exactly_one_place_after_replay() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(2, "name d");
    w.run(2, "create t.dead");
    w.run(2, "sub t.dead");
    w.run(1, "name n");
    w.run(1, "sub t 1");
    w.run(9, &pub_line("t", "a", 0));
    w.run(1, "nack t a dead");
    let b = replayed(&w.log);
    assert_eq!(view(&b), view(&w.broker));
    assert_eq!(
        view(&b),
        vec![
            ("t".into(), vec![("n".into(), vec![])]),
            ("t.dead".into(), vec![("d".into(), vec!["n/a".into()])]),
        ]
    );
}

#[test]
fn delivery_counts_survive() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(1, "name n");
    w.run(1, "sub t 1");
    w.run(9, &pub_line("t", "a", 0));
    w.run(1, "nack t a");
    w.run(1, "nack t a");
    let b = replayed(&w.log);
    let mut w2 = World {
        broker: b,
        log: vec![],
        now: NOW,
    };
    w2.run(1, "name n");
    assert_eq!(delivered(&w2.run(1, "sub t")), vec![(1, "a".into(), 4)]);
}
