//! Broker behaviour, driven through parsed protocol lines as a client would.

use super::*;
use herald_proto::parse_line;
use proptest::prelude::*;

const NOW: u64 = 1_650_054_011_933;

struct World {
    broker: Broker,
    log: Vec<Change>,
}

impl World {
    fn new() -> Self {
        World {
            broker: Broker::new(),
            log: Vec::new(),
        }
    }

    /// Runs one line for `conn` and makes everything durable, like a server
    /// whose disk is instant. Returns the outputs.
    fn run(&mut self, conn: u64, line: &str) -> Vec<Output> {
        let mut fx = Effects::new();
        let command = parse_line(line.as_bytes())
            .expect("valid line")
            .expect("not blank");
        self.broker.handle(ConnId(conn), command, NOW, &mut fx);
        let last = self.broker.last_seq();
        self.broker.set_durable(last, &mut fx);
        self.log.append(&mut fx.changes);
        fx.outputs
    }

    fn reply(&mut self, conn: u64, line: &str) -> String {
        let outputs = self.run(conn, line);
        replies(&outputs).join("|")
    }

    fn disconnect(&mut self, conn: u64) {
        self.broker.disconnect(ConnId(conn));
    }
}

fn replies(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Reply { reply, .. } => Some(reply.to_line()),
            _ => None,
        })
        .collect()
}

fn delivered(outputs: &[Output]) -> Vec<(u64, String, bool)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Deliver {
                conn,
                event,
                redelivered,
                ..
            } => Some((conn.0, event.id().to_string(), *redelivered)),
            _ => None,
        })
        .collect()
}

fn ids(outputs: &[Output]) -> Vec<String> {
    delivered(outputs).into_iter().map(|d| d.1).collect()
}

fn pub_line(topic: &str, id: &str, priority: u8) -> String {
    format!(r#"pub {topic} {{"id":"{id}","priority":{priority},"msg":"m{id}"}}"#)
}

#[test]
fn publish_without_subscribers_is_accepted_and_dropped() {
    let mut w = World::new();
    assert_eq!(w.reply(1, &pub_line("t", "1", 0)), "+OK published t 1");
    assert_eq!(w.reply(1, &pub_line("t", "1", 0)), "+OK published t 1");
    assert_eq!(w.broker.topic_stats("t").unwrap().published, 2);
    assert_eq!(w.broker.topic_stats("t").unwrap().pending, 0);
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
    b.handle(
        ConnId(1),
        Command::Create {
            topic: "t".into(),
            ttl_ms: None,
        },
        NOW,
        &mut fx,
    );
    b.handle(
        ConnId(1),
        Command::Sub {
            topic: "t".into(),
            prefetch: 10,
            options: Default::default(),
        },
        NOW,
        &mut fx,
    );
    let cmd = parse_line(pub_line("t", "x", 0).as_bytes())
        .unwrap()
        .unwrap();
    fx.outputs.clear();
    b.handle(ConnId(2), cmd, NOW, &mut fx);
    assert!(ids(&fx.outputs).is_empty(), "delivered before durable");
    let seq = b.last_seq();
    b.set_durable(seq, &mut fx);
    assert_eq!(ids(&fx.outputs), vec!["x"]);
}

#[test]
fn highest_priority_first_then_publish_order() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(1, "sub t 100");
    // Hold delivery until all are published, by publishing while the only
    // subscriber has no room: use a second subscriber with prefetch 1 that
    // acks nothing, and check the first subscriber's order after a resub.
    let mut w2 = World::new();
    w2.run(1, "create t");
    w2.run(1, "name alice");
    w2.run(1, "sub t 1");
    for (id, p) in [("a", 1), ("b", 5), ("c", 3), ("d", 5), ("e", 0)] {
        w2.run(2, &pub_line("t", id, p));
    }
    // "a" went out first (it was alone); the rest wait in priority order.
    let mut order = vec![];
    let mut next = "a".to_string();
    for _ in 0..5 {
        order.push(next.clone());
        let out = w2.run(1, &format!("ack t {next}"));
        if let Some(id) = ids(&out).first() {
            next = id.clone();
        }
    }
    assert_eq!(order, vec!["a", "b", "d", "c", "e"]);
    let _ = w;
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
    assert_eq!(w.broker.topic_stats("t").unwrap().published, 2);
}

#[test]
fn fan_out_gives_every_subscriber_its_own_copy() {
    let mut w = World::new();
    w.run(1, "create t");
    w.run(2, "create t");
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
    assert_eq!(w.broker.topic_stats("t").unwrap().pending, 0);
    assert_eq!(w.broker.topic_stats("t").unwrap().subscribers, 0);
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
    assert_eq!(delivered(&out), vec![(1, "1".into(), false)]);
    w.run(2, &pub_line("t", "2", 0));
    w.disconnect(1);
    // Published while away: queued for bob.
    w.run(2, &pub_line("t", "3", 0));
    assert_eq!(w.broker.topic_stats("t").unwrap().pending, 3);
    assert_eq!(w.reply(3, "name bob"), "+OK name bob");
    // Nothing until sub.
    let out = w.run(3, "sub t");
    assert_eq!(delivered(&out), vec![(3, "1".into(), true)]);
    let out = w.run(3, "ack t 1");
    assert_eq!(delivered(&out), vec![(3, "2".into(), false)]);
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
    let stats = w.reply(1, "stats a");
    let json: serde_json::Value =
        serde_json::from_str(stats.strip_prefix("+OK ").unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"topics":{"a":{"subscribers":1,"pending":1,"in_flight":1,"published":2}}})
    );
    let all = w.reply(1, "stats");
    assert!(all.contains(r#""b":"#));
}

/// Replays `changes` into a fresh broker.
fn replayed(changes: &[Change]) -> Broker {
    let mut b = Broker::new();
    for c in changes {
        b.replay(c.clone());
    }
    b.finish_replay();
    b
}

/// Topic → durable subscriber → pending ids in delivery order.
type View = Vec<(String, Vec<(String, Vec<String>)>)>;

fn view(b: &Broker) -> View {
    b.topic_names()
        .iter()
        .map(|t| {
            let subs = b
                .pending_by_subscriber(t)
                .unwrap()
                .into_iter()
                .map(|(name, events)| {
                    (
                        name.to_string(),
                        events.iter().map(|e| e.id().to_string()).collect(),
                    )
                })
                .collect();
            (t.to_string(), subs)
        })
        .collect()
}

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
    let b = replayed(&w.log);
    assert_eq!(view(&b), view(&w.broker));
    assert_eq!(b.topic_stats("t").unwrap().subscribers, 1);
    // Delivered before the "restart": flagged.
    let mut b = b;
    let mut fx = Effects::new();
    b.connect(ConnId(9));
    b.handle(
        ConnId(9),
        Command::Name { name: "bob".into() },
        NOW,
        &mut fx,
    );
    b.handle(
        ConnId(9),
        Command::Sub {
            topic: "t".into(),
            prefetch: 3,
            options: Default::default(),
        },
        NOW,
        &mut fx,
    );
    let got = delivered(&fx.outputs);
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|d| d.2),
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

#[derive(Debug, Clone)]
enum Op {
    Pub { conn: u64, id: u8, priority: u8 },
    Sub { conn: u64, prefetch: u16 },
    Unsub { conn: u64 },
    AckDelivered { conn: u64, pick: usize },
    AckAny { conn: u64, id: u8 },
    Name { conn: u64 },
    Disconnect { conn: u64 },
    Durable,
}

fn op() -> impl Strategy<Value = Op> {
    let conn = 1u64..4;
    prop_oneof![
        4 => (conn.clone(), 0u8..12, 0u8..4).prop_map(|(conn, id, priority)| Op::Pub { conn, id, priority }),
        2 => (conn.clone(), 1u16..4).prop_map(|(conn, prefetch)| Op::Sub { conn, prefetch }),
        1 => conn.clone().prop_map(|conn| Op::Unsub { conn }),
        4 => (conn.clone(), 0usize..8).prop_map(|(conn, pick)| Op::AckDelivered { conn, pick }),
        1 => (conn.clone(), 0u8..12).prop_map(|(conn, id)| Op::AckAny { conn, id }),
        1 => conn.clone().prop_map(|conn| Op::Name { conn }),
        1 => conn.prop_map(|conn| Op::Disconnect { conn }),
        2 => Just(Op::Durable),
    ]
}

proptest! {
    /// Random command sequences keep the invariants: never more than
    /// prefetch in flight per connection, an acknowledged event is never
    /// delivered again to that subscriber, and replaying the changes gives
    /// the same durable state.
    #[test]
    fn random_sequences_keep_the_invariants(ops in proptest::collection::vec(op(), 1..120)) {
        let mut b = Broker::new();
        let mut log: Vec<Change> = Vec::new();
        let mut created = Effects::new();
        b.handle(ConnId(100), Command::Create { topic: "t".into(), ttl_ms: None }, NOW, &mut created);
        log.append(&mut created.changes);
        // Per connection generation: (prefetch, in-flight ids, acked ids).
        let mut generation = [0u64; 4];
        let mut prefetch = [0usize; 4];
        // Per connection: in-flight (id, seq), and the seqs it acknowledged.
        let mut in_flight: Vec<Vec<(String, u64)>> = vec![vec![]; 4];
        let mut acked: Vec<std::collections::HashSet<u64>> = vec![Default::default(); 4];
        let seq_of = |b: &Broker, id: &str| b.topics[0].slot(id).map(|s| s.event.seq.0);
        let conn_id = |c: u64, generation: &[u64; 4]| ConnId(c * 1000 + generation[c as usize]);
        for op in ops {
            let mut fx = Effects::new();
            match op {
                Op::Pub { conn, id, priority } => {
                    let line = pub_line("t", &id.to_string(), priority);
                    let cmd = parse_line(line.as_bytes()).unwrap().unwrap();
                    b.handle(ConnId(50 + conn), cmd, NOW, &mut fx);
                }
                Op::Sub { conn, prefetch: p } => {
                    b.handle(conn_id(conn, &generation), Command::Sub { topic: "t".into(), prefetch: p, options: Default::default() }, NOW, &mut fx);
                    prefetch[conn as usize] = p as usize;
                }
                Op::Unsub { conn } => {
                    b.handle(conn_id(conn, &generation), Command::Unsub { topic: "t".into(), group: None }, NOW, &mut fx);
                    if replies(&fx.outputs).iter().any(|r| r.starts_with("+OK")) {
                        in_flight[conn as usize].clear();
                        acked[conn as usize].clear();
                    }
                }
                Op::AckDelivered { conn, pick } => {
                    let list = &in_flight[conn as usize];
                    if !list.is_empty() {
                        let (id, seq) = list[pick % list.len()].clone();
                        b.handle(conn_id(conn, &generation), Command::Ack { topic: "t".into(), id: id.clone() }, NOW, &mut fx);
                        prop_assert_eq!(replies(&fx.outputs)[0].clone(), format!("+OK acked t {id}"));
                        in_flight[conn as usize].retain(|x| x.1 != seq);
                        acked[conn as usize].insert(seq);
                    }
                }
                Op::AckAny { conn, id } => {
                    let id = id.to_string();
                    let seq = seq_of(&b, &id);
                    b.handle(conn_id(conn, &generation), Command::Ack { topic: "t".into(), id: id.clone() }, NOW, &mut fx);
                    if replies(&fx.outputs)[0].starts_with("+OK") {
                        let seq = seq.expect("an acked id was pending");
                        in_flight[conn as usize].retain(|x| x.1 != seq);
                        acked[conn as usize].insert(seq);
                    }
                }
                Op::Name { conn } => {
                    b.handle(conn_id(conn, &generation), Command::Name { name: format!("n{conn}") }, NOW, &mut fx);
                }
                Op::Disconnect { conn } => {
                    b.disconnect(conn_id(conn, &generation));
                    generation[conn as usize] += 1;
                    in_flight[conn as usize].clear();
                    // A reconnecting durable subscriber may legitimately see
                    // redeliveries, and a new anonymous one is a new subscriber.
                    acked[conn as usize].clear();
                }
                Op::Durable => {
                    let last = b.last_seq();
                    b.set_durable(last, &mut fx);
                }
            }
            for o in &fx.outputs {
                if let Output::Deliver { conn, event, .. } = o {
                    let c = (conn.0 / 1000) as usize;
                    prop_assert_eq!(conn.0 % 1000, generation[c], "delivery to a closed connection");
                    let seq = event.seq.0;
                    prop_assert!(!acked[c].contains(&seq), "acked event {} delivered again", seq);
                    prop_assert!(!in_flight[c].iter().any(|x| x.1 == seq), "event {} delivered twice", seq);
                    in_flight[c].push((event.id().to_string(), seq));
                    prop_assert!(in_flight[c].len() <= prefetch[c].max(1) || prefetch[c] == 0,
                        "in flight {} > prefetch {}", in_flight[c].len(), prefetch[c]);
                }
            }
            log.append(&mut fx.changes);
        }
        prop_assert_eq!(view(&replayed(&log)), view(&b));
    }
}
