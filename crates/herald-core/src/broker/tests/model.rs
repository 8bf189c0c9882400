//! Random command sequences over groups, deadlines, nack, dead letters,
//! TTL, delays and limits, with a clock that jumps: the invariants of the
//! module docs hold after every step, and a replay of what was logged
//! rebuilds the same durable state.

use super::*;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone)]
enum Op {
    Pub {
        id: u8,
        priority: u8,
        ttl: Option<u64>,
        delay: Option<u64>,
    },
    Sub {
        conn: u64,
        prefetch: u16,
        options: String,
    },
    Name {
        conn: u64,
    },
    Unsub {
        conn: u64,
    },
    DeleteGroup,
    Ack {
        conn: u64,
        id: u8,
    },
    Nack {
        conn: u64,
        id: u8,
        how: u8,
    },
    Touch {
        conn: u64,
        id: u8,
    },
    Disconnect {
        conn: u64,
    },
    Advance(u64),
}

fn options() -> impl Strategy<Value = String> {
    (
        prop::option::of(Just("group=g")),
        prop::option::of(prop_oneof![Just("wait=30"), Just("wait=100")]),
        prop::option::of(prop_oneof![Just("backoff=0,20"), Just("backoff=50")]),
        prop::option::of(prop_oneof![
            Just("max_deliveries=1"),
            Just("max_deliveries=3")
        ]),
        prop::option::of(prop_oneof![Just("dead=none"), Just("dead=spill")]),
        prop::option::of(Just("age=10")),
        prop::option::of(prop_oneof![Just("limit=3 overflow=drop"), Just("limit=4")]),
    )
        .prop_map(|parts| {
            let (a, b, c, d, e, f, g) = parts;
            [a, b, c, d, e, f, g]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
        })
}

fn op() -> impl Strategy<Value = Op> {
    let conn = 1u64..5;
    prop_oneof![
        6 => (0u8..10, 0u8..4, prop::option::weighted(0.2, 1u64..300), prop::option::weighted(0.2, 0u64..200))
            .prop_map(|(id, priority, ttl, delay)| Op::Pub { id, priority, ttl, delay }),
        2 => (conn.clone(), 1u16..4, options()).prop_map(|(conn, prefetch, options)| Op::Sub { conn, prefetch, options }),
        1 => conn.clone().prop_map(|conn| Op::Name { conn }),
        1 => conn.clone().prop_map(|conn| Op::Unsub { conn }),
        1 => Just(Op::DeleteGroup),
        4 => (conn.clone(), 0u8..10).prop_map(|(conn, id)| Op::Ack { conn, id }),
        2 => (conn.clone(), 0u8..10, 0u8..3).prop_map(|(conn, id, how)| Op::Nack { conn, id, how }),
        1 => (conn.clone(), 0u8..10).prop_map(|(conn, id)| Op::Touch { conn, id }),
        1 => conn.clone().prop_map(|conn| Op::Disconnect { conn }),
        3 => (0u64..150).prop_map(Op::Advance),
    ]
}

/// Nothing expired is delivered, nor anything before its due time.
fn check_deliveries(
    out: &[Output],
    now: u64,
    due: &HashMap<u64, u64>,
) -> Result<(), TestCaseError> {
    for o in out {
        let Output::Deliver { event, .. } = o else {
            continue;
        };
        prop_assert!(
            !event.is_expired(now),
            "expired event {} delivered at {}",
            event.id(),
            now
        );
        if let Some(&d) = due.get(&event.seq.0) {
            prop_assert!(
                now >= d,
                "{} delivered at {} before its due time {}",
                event.id(),
                now,
                d
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_the_invariants(ops in proptest::collection::vec(op(), 1..150)) {
        let mut w = World::new();
        w.run(100, "create t");
        w.run(100, "create spill");
        // Connection numbers change on reconnect (generation), so that a
        // delivery can be traced to the subscription it came from.
        let mut generation = [0u64; 5];
        let conn_of = |c: u64, g: &[u64; 5]| c * 1000 + g[c as usize];
        // The subscription name each live connection receives `t` through.
        let mut member_of: HashMap<u64, String> = HashMap::new();
        let mut named: HashSet<u64> = HashSet::new();
        // What each subscription acknowledged, and the last delivery count
        // it saw per event.
        let mut acked: HashMap<String, HashSet<u64>> = HashMap::new();
        let mut counts: HashMap<(String, u64), u32> = HashMap::new();
        // Due time of each event published delayed.
        let mut due: HashMap<u64, u64> = HashMap::new();
        for op in ops {
            let now = w.now;
            let (out, sub_name) = match &op {
                Op::Pub { id, priority, ttl, delay } => {
                    let mut json = serde_json::json!({"id": id.to_string(), "priority": priority, "msg": "m"});
                    if let Some(t) = ttl { json["ttl_ms"] = (*t).into(); }
                    if let Some(d) = delay { json["delay_ms"] = (*d).into(); }
                    let out = w.run(50, &format!("pub t {json}"));
                    if replies(&out)[0].starts_with("+OK published") && let Some(d) = delay {
                        due.insert(w.broker.last_seq().0, now + d);
                    }
                    (out, None)
                }
                Op::Sub { conn, prefetch, options } => {
                    let c = conn_of(*conn, &generation);
                    let out = w.run(c, &format!("sub t {prefetch} {options}"));
                    let name = if options.contains("group=g") {
                        "g".to_string()
                    } else if named.contains(&c) {
                        format!("n{conn}")
                    } else {
                        format!("~{c}")
                    };
                    (out, Some((c, name)))
                }
                Op::Name { conn } => {
                    let c = conn_of(*conn, &generation);
                    let out = w.run(c, &format!("name n{conn}"));
                    if replies(&out)[0].starts_with("+OK") { named.insert(c); }
                    (out, None)
                }
                Op::Unsub { conn } => {
                    let c = conn_of(*conn, &generation);
                    let out = w.run(c, "unsub t");
                    if replies(&out)[0].starts_with("+OK") { member_of.remove(&c); }
                    (out, None)
                }
                Op::DeleteGroup => {
                    let out = w.run(100, "unsub t group=g");
                    if replies(&out)[0].starts_with("+OK") {
                        member_of.retain(|_, s| s != "g");
                        acked.remove("g");
                    }
                    (out, None)
                }
                Op::Ack { conn, id } => {
                    let c = conn_of(*conn, &generation);
                    let seq = w.broker.topic_ids.get("t").and_then(|&tid| w.broker.topics[tid].slot(&id.to_string())).map(|s| s.event.seq.0);
                    let out = w.run(c, &format!("ack t {id}"));
                    if replies(&out)[0].starts_with("+OK") && let Some(name) = member_of.get(&c) {
                        acked.entry(name.clone()).or_default().insert(seq.expect("acked a pending event"));
                    }
                    (out, None)
                }
                Op::Nack { conn, id, how } => {
                    let c = conn_of(*conn, &generation);
                    let arg = ["", " 40", " dead"][*how as usize];
                    (w.run(c, &format!("nack t {id}{arg}")), None)
                }
                Op::Touch { conn, id } => {
                    let c = conn_of(*conn, &generation);
                    (w.run(c, &format!("touch t {id} 60")), None)
                }
                Op::Disconnect { conn } => {
                    let c = conn_of(*conn, &generation);
                    member_of.remove(&c);
                    named.remove(&c);
                    generation[*conn as usize] += 1;
                    (w.disconnect(c), None)
                }
                Op::Advance(ms) => {
                    // One wake-up at a time, so that each delivery is
                    // checked against the time it was made at.
                    let target = w.now + ms;
                    let mut out = Vec::new();
                    while let Some(at) = w.broker.next_wakeup().filter(|&at| at <= target) {
                        let step = w.advance(at.saturating_sub(w.now));
                        check_deliveries(&step, w.now, &due)?;
                        out.extend(step);
                    }
                    w.advance(target - w.now);
                    (out, None)
                }
            };
            if let Some((c, name)) = sub_name && replies(&out)[0].starts_with("+OK subscribed") {
                if member_of.get(&c) != Some(&name) {
                    // A new subscription starts with a clean slate (an
                    // anonymous one is new; a durable one keeps its history).
                    if name.starts_with('~') { acked.remove(&name); }
                }
                member_of.insert(c, name);
            }
            w.broker.check_invariants().map_err(|e| TestCaseError::fail(format!("after {op:?}: {e}")))?;
            if !matches!(op, Op::Advance(_)) {
                check_deliveries(&out, w.now, &due)?;
            }
            for o in &out {
                let Output::Deliver { conn, topic, event, deliveries } = o else { continue };
                let seq = event.seq.0;
                if &**topic != "t" { continue; }
                let name = member_of.get(&conn.0).cloned();
                prop_assert!(name.is_some(), "delivery to {} which is not a member", conn.0);
                let name = name.unwrap_or_default();
                prop_assert!(!acked.get(&name).is_some_and(|a| a.contains(&seq)), "acked {} delivered again to {}", seq, name);
                let last = counts.insert((name.clone(), seq), *deliveries).unwrap_or(0);
                prop_assert!(*deliveries > last, "deliveries went from {} to {}", last, deliveries);
                let tid = w.broker.topic_ids["t"];
                let key = w.broker.conns[conn].sub_on(tid).unwrap();
                let m = *w.broker.sub(key).unwrap().member(*conn).unwrap();
                prop_assert!(m.in_flight <= u32::from(m.prefetch), "member holds {} > prefetch {}", m.in_flight, m.prefetch);
            }
            // After a publish, overflow=drop subscriptions are within their
            // limits, unless only in-flight events are left. (A `sub` that
            // lowers a limit removes nothing at once: 13.4.)
            let published = matches!(op, Op::Pub { .. })
                && replies(&out).first().is_some_and(|r| r.starts_with("+OK published"));
            for s in w.broker.subs.iter().flatten().filter(|_| published) {
                if s.drops_on_overflow() && s.is_over_limit() {
                    prop_assert_eq!(s.queue.queued() + s.queue.delayed(), 0, "over its limit with evictable events");
                }
            }
        }
        // A clean stop returns what is in flight; the log then rebuilds the
        // same durable state.
        let conns: Vec<u64> = w.broker.conns.keys().map(|c| c.0).collect();
        for c in conns { w.disconnect(c); }
        let b = replayed_at(&w.log, w.now);
        prop_assert_eq!(view(&b), view(&w.broker));
    }
}
