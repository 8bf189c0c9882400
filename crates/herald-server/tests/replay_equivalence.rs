//! Random command sequences through a live broker, recorded in a real log
//! (small segments, so rotations and their snapshots happen), then recovered
//! into a fresh broker: the recovered state is the live broker's durable
//! state (topics, durable subscriptions, pending events in delivery order).

use herald_core::{Broker, Command, ConnId, Effects, RecordError, record};
use herald_log::{Log, LogConfig};
use proptest::prelude::*;

const NOW: u64 = 1_764_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    Pub { topic: u8, id: u8, priority: u8 },
    Sub { conn: u8, topic: u8, prefetch: u16 },
    Unsub { conn: u8, topic: u8 },
    Ack { conn: u8, topic: u8, id: u8 },
    Name { conn: u8 },
    Create { topic: u8 },
    Disconnect { conn: u8 },
    Durable,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u8..2, 0u8..10, 0u8..4).prop_map(|(topic, id, priority)| Op::Pub { topic, id, priority }),
        2 => (0u8..3, 0u8..2, 1u16..4).prop_map(|(conn, topic, prefetch)| Op::Sub { conn, topic, prefetch }),
        1 => (0u8..3, 0u8..2).prop_map(|(conn, topic)| Op::Unsub { conn, topic }),
        4 => (0u8..3, 0u8..2, 0u8..10).prop_map(|(conn, topic, id)| Op::Ack { conn, topic, id }),
        1 => (0u8..3).prop_map(|conn| Op::Name { conn }),
        1 => (0u8..2).prop_map(|topic| Op::Create { topic }),
        1 => (0u8..3).prop_map(|conn| Op::Disconnect { conn }),
        2 => Just(Op::Durable),
    ]
}

/// Topic → durable subscriber → (id, priority) in delivery order.
type View = Vec<(String, Vec<(String, Vec<(String, u8)>)>)>;

fn view(b: &Broker) -> View {
    b.topic_names()
        .iter()
        .map(|t| {
            let subs = b
                .pending_by_subscriber(t)
                .unwrap_or_default()
                .into_iter()
                .map(|(name, events)| {
                    let ids = events
                        .iter()
                        .map(|e| (e.id().to_string(), e.priority))
                        .collect();
                    (name.to_string(), ids)
                })
                .collect();
            (t.to_string(), subs)
        })
        .collect()
}

fn topic(t: u8) -> String {
    format!("t{t}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn recovered_state_equals_the_live_durable_state(ops in proptest::collection::vec(op(), 1..150)) {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { dir: dir.path().to_path_buf(), segment_bytes: 2048 };
        let (mut log, _) = Log::open(config.clone(), |_| Ok::<_, RecordError>(())).unwrap();
        let mut live = Broker::new();
        // Connection generation per client slot, so a reconnect is a new ConnId.
        let mut generation = [0u64; 3];
        let conn = |c: u8, g: &[u64; 3]| ConnId(c as u64 * 1000 + g[c as usize]);
        for op in ops {
            let mut fx = Effects::new();
            let command = match op {
                Op::Pub { topic: t, id, priority } => {
                    let line = format!(r#"pub {} {{"id":"{id}","priority":{priority},"msg":"m"}}"#, topic(t));
                    Some((ConnId(99), herald_proto::parse_line(line.as_bytes()).unwrap().unwrap()))
                }
                Op::Sub { conn: c, topic: t, prefetch } => Some((conn(c, &generation), Command::Sub { topic: topic(t), prefetch, options: Default::default() })),
                Op::Unsub { conn: c, topic: t } => Some((conn(c, &generation), Command::Unsub { topic: topic(t), group: None })),
                Op::Ack { conn: c, topic: t, id } => Some((conn(c, &generation), Command::Ack { topic: topic(t), id: id.to_string() })),
                Op::Name { conn: c } => Some((conn(c, &generation), Command::Name { name: format!("n{c}") })),
                Op::Create { topic: t } => Some((ConnId(98), Command::Create { topic: topic(t), ttl_ms: None })),
                Op::Disconnect { conn: c } => {
                    live.disconnect(conn(c, &generation));
                    generation[c as usize] += 1;
                    None
                }
                Op::Durable => {
                    let last = live.last_seq();
                    live.set_durable(last, &mut fx);
                    None
                }
            };
            if let Some((c, command)) = command {
                let bound = live.record_bound(&command, herald_log::FRAME_HEADER_BYTES as u64);
                if !log.has_room(bound) {
                    log.rotate(live.metadata().iter().map(record::to_vec), bound).unwrap();
                }
                live.handle(c, command, NOW, &mut fx);
            }
            for change in fx.changes.drain(..) {
                log.append_with(|buf| record::encode(&change, buf));
            }
            log.write().unwrap();
        }
        drop(log);

        let mut recovered = Broker::new();
        let mut decoder = record::Decoder::new();
        let (_, report) = Log::open(config, |payload| {
            recovered.replay(decoder.decode(payload)?);
            Ok::<_, RecordError>(())
        })
        .unwrap();
        recovered.finish_replay();
        prop_assert!(report.torn_tail.is_none());
        prop_assert_eq!(view(&recovered), view(&live));
        for t in live.topic_names() {
            let (a, b) = (live.topic_stats(&t).unwrap(), recovered.topic_stats(&t).unwrap());
            // Anonymous subscribers do not survive; durable ones keep their
            // whole queue, in flight or not.
            let durable_subs = live.pending_by_subscriber(&t).unwrap().len();
            prop_assert_eq!(b.subscribers, durable_subs);
            prop_assert!(b.pending + b.in_flight <= a.pending + a.in_flight);
        }
    }
}
