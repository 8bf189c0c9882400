//! Arbitrary command sequences through the broker state machine, with a
//! clock that jumps and durability that lags: the broker never panics, its
//! internal invariants hold after every step (`Broker::check_invariants`),
//! every command gets exactly one reply, nothing expired or not yet due is
//! delivered, and replaying what it recorded (through the record codec)
//! rebuilds the same durable state.

use herald_core::{Broker, Change, ConnId, Effects, Output, record};
use std::collections::HashMap;

/// Options a `sub` may give, chosen by a byte.
const OPTIONS: [&str; 12] = [
    "",
    "group=g",
    "wait=20",
    "group=g wait=20 max_deliveries=2",
    "backoff=0,15",
    "max_deliveries=1 dead=none",
    "dead=spill",
    "age=7",
    "limit=3 overflow=drop",
    "limit=2",
    "limit_bytes=20 overflow=drop dead=spill",
    "group=h wait=50 backoff=30 age=3",
];

struct World {
    broker: Broker,
    log: Vec<Change>,
    now: u64,
    /// Due time of events published delayed, by seq.
    due: HashMap<u64, u64>,
}

impl World {
    fn settle(&mut self, fx: Effects) {
        for o in &fx.outputs {
            if let Output::Deliver { event, .. } = o {
                assert!(
                    !event.is_expired(self.now),
                    "expired {} delivered",
                    event.id()
                );
                if let Some(&due) = self.due.get(&event.seq.0) {
                    assert!(
                        self.now >= due,
                        "{} delivered before its due time",
                        event.id()
                    );
                }
            }
        }
        self.log.extend(fx.changes);
        if let Err(e) = self.broker.check_invariants() {
            panic!("invariant broken: {e}");
        }
    }

    fn line(&mut self, conn: u64, line: &str) {
        let Ok(Some(command)) = herald_proto::parse_line(line.as_bytes()) else {
            return;
        };
        let mut fx = Effects::new();
        self.broker.handle(ConnId(conn), command, self.now, &mut fx);
        let replies = fx
            .outputs
            .iter()
            .filter(|o| matches!(o, Output::Reply { conn: c, .. } if c.0 == conn))
            .count();
        assert_eq!(replies, 1, "{line:?} got {replies} replies");
        if line.starts_with("pub")
            && let Some(Output::Reply { reply, .. }) = fx.outputs.first()
            && reply.to_line().starts_with("+OK published")
            && let Some(delay) = line.split("\"delay_ms\":").nth(1)
        {
            let ms: u64 = delay.trim_end_matches('}').parse().unwrap_or(0);
            self.due.insert(self.broker.last_seq().0, self.now + ms);
        }
        self.settle(fx);
    }

    fn advance(&mut self, ms: u64) {
        let target = self.now + ms;
        while let Some(at) = self.broker.next_wakeup().filter(|&at| at <= target) {
            self.now = self.now.max(at);
            let mut fx = Effects::new();
            self.broker.tick(self.now, &mut fx);
            self.settle(fx);
        }
        self.now = target;
    }
}

/// Each topic's subscribers and the ids pending for each, in order.
type View = Vec<(String, Vec<(String, Vec<String>)>)>;

fn view(b: &Broker) -> View {
    b.topic_names()
        .iter()
        .map(|t| {
            let subs = b
                .pending_by_subscriber(t)
                .unwrap_or_default()
                .into_iter()
                .map(|(n, events)| {
                    (
                        n.to_string(),
                        events.iter().map(|e| e.id().to_string()).collect(),
                    )
                })
                .collect();
            (t.to_string(), subs)
        })
        .collect()
}

/// One fuzz input through the checks above; panics on a finding.
pub fn run(data: &[u8]) {
    let mut w = World {
        broker: Broker::new(),
        log: Vec::new(),
        now: 1_000_000,
        due: HashMap::new(),
    };
    let mut generation = [0u64; 4];
    let conn = |c: u8, g: &[u64; 4]| u64::from(c % 4) * 1000 + g[usize::from(c % 4)] + 1;
    for op in data.chunks(3) {
        let [kind, a, b] = [op[0], *op.get(1).unwrap_or(&0), *op.get(2).unwrap_or(&0)];
        let topic = if a & 0x80 == 0 { "t" } else { "u" };
        let id = a % 8;
        match kind % 16 {
            0..=3 => {
                let mut json = format!(
                    r#"{{"id":"{id}","priority":{},"msg":"{}""#,
                    b % 4,
                    "m".repeat(usize::from(b % 7))
                );
                match b >> 5 {
                    1 => json.push_str(&format!(r#","ttl_ms":{}"#, 1 + u64::from(b % 40))),
                    2 => json.push_str(&format!(r#","delay_ms":{}"#, u64::from(b % 30))),
                    _ => {}
                }
                json.push('}');
                w.line(900, &format!("pub {topic} {json}"));
            }
            4 => {
                let options = OPTIONS[usize::from(b) % OPTIONS.len()];
                w.line(
                    conn(a, &generation),
                    &format!("sub {topic} {} {options}", 1 + b % 3),
                );
            }
            5 => w.line(conn(a, &generation), &format!("name n{}", a % 4)),
            6 => {
                if b % 4 == 0 {
                    w.line(conn(a, &generation), &format!("unsub {topic} group=g"));
                } else {
                    w.line(conn(a, &generation), &format!("unsub {topic}"));
                }
            }
            7 => w.line(conn(b, &generation), &format!("ack {topic} {id}")),
            8 => {
                let action = ["", " 25", " dead"][usize::from(b % 3)];
                w.line(conn(b, &generation), &format!("nack {topic} {id}{action}"));
            }
            9 => w.line(conn(b, &generation), &format!("touch {topic} {id} 40")),
            10 => {
                let target = ["", " sub=n1", " group=g"][usize::from(b % 3)];
                w.line(conn(b, &generation), &format!("peek {topic} 5{target}"));
            }
            11 => w.line(
                conn(b, &generation),
                if b % 2 == 0 { "stats" } else { "stats t" },
            ),
            12 => {
                let c = conn(a, &generation);
                let mut fx = Effects::new();
                w.broker.disconnect(ConnId(c), w.now, &mut fx);
                generation[usize::from(a % 4)] += 10;
                w.settle(fx);
            }
            13 => w.advance(u64::from(a) % 64),
            14 => {
                let mut fx = Effects::new();
                let last = w.broker.last_seq();
                w.broker.set_durable(last, w.now, &mut fx);
                w.settle(fx);
            }
            _ => w.line(
                900,
                &format!("create {topic} ttl={}", 1 + u64::from(b % 50)),
            ),
        }
    }
    // A clean stop (everything durable, every connection gone), then a
    // replay of what was recorded, through the codec, rebuilds the same.
    let mut fx = Effects::new();
    let last = w.broker.last_seq();
    w.broker.set_durable(last, w.now, &mut fx);
    w.settle(fx);
    for g in 0..4u8 {
        let mut fx = Effects::new();
        w.broker
            .disconnect(ConnId(conn(g, &generation)), w.now, &mut fx);
        w.settle(fx);
    }
    let mut recovered = Broker::new();
    let mut decoder = record::Decoder::new();
    for change in &w.log {
        let bytes = record::to_vec(change);
        recovered.replay(decoder.decode(&bytes).expect("a recorded change decodes"));
    }
    recovered.finish_replay(w.now);
    assert_eq!(view(&recovered), view(&w.broker));
}
