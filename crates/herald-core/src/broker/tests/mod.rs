//! Broker behaviour, driven through parsed protocol lines as a client
//! would, with a clock the test moves (`World::advance`).

use super::*;
use herald_proto::parse_line;

mod admin;
mod groups;
mod limits;
mod model;
mod replay;
mod time;
mod v1;

pub(super) const NOW: u64 = 1_650_054_011_933;

pub(super) struct World {
    pub broker: Broker,
    pub log: Vec<Change>,
    pub now: u64,
}

impl World {
    pub fn new() -> Self {
        World {
            broker: Broker::new(),
            log: Vec::new(),
            now: NOW,
        }
    }

    /// Runs one line for `conn` and makes everything durable, like a server
    /// whose disk is instant. Returns the outputs.
    pub fn run(&mut self, conn: u64, line: &str) -> Vec<Output> {
        let command = parse_line(line.as_bytes())
            .unwrap_or_else(|e| panic!("{line:?}: {e}"))
            .expect("not blank");
        self.command(conn, command)
    }

    pub fn command(&mut self, conn: u64, command: Command) -> Vec<Output> {
        let mut fx = Effects::new();
        self.broker.handle(ConnId(conn), command, self.now, &mut fx);
        self.settle(fx)
    }

    /// Makes everything durable and records the changes.
    fn settle(&mut self, mut fx: Effects) -> Vec<Output> {
        let last = self.broker.last_seq();
        self.broker.set_durable(last, self.now, &mut fx);
        self.log.append(&mut fx.changes);
        fx.outputs
    }

    pub fn reply(&mut self, conn: u64, line: &str) -> String {
        let outputs = self.run(conn, line);
        replies(&outputs).join("|")
    }

    pub fn disconnect(&mut self, conn: u64) -> Vec<Output> {
        let mut fx = Effects::new();
        self.broker.disconnect(ConnId(conn), self.now, &mut fx);
        self.settle(fx)
    }

    /// Moves the clock by `ms` and runs every timer due by then, as the
    /// server does when it wakes up (each wake-up at its due time).
    pub fn advance(&mut self, ms: u64) -> Vec<Output> {
        let target = self.now + ms;
        let mut out = Vec::new();
        while let Some(at) = self.broker.next_wakeup() {
            if at > target {
                break;
            }
            self.now = self.now.max(at);
            let mut fx = Effects::new();
            self.broker.tick(self.now, &mut fx);
            out.extend(self.settle(fx));
        }
        self.now = target;
        out
    }

    pub fn stats(&mut self, topic: &str) -> serde_json::Value {
        let line = self.reply(999, &format!("stats {topic}"));
        let json: serde_json::Value =
            serde_json::from_str(line.strip_prefix("+OK ").expect("stats reply")).unwrap();
        json["topics"][topic].clone()
    }

    pub fn peek(&mut self, conn: u64, args: &str) -> serde_json::Value {
        let line = self.reply(conn, &format!("peek {args}"));
        serde_json::from_str(
            line.strip_prefix("+OK ")
                .unwrap_or_else(|| panic!("peek {args}: {line}")),
        )
        .unwrap()
    }
}

pub(super) fn replies(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Reply { reply, .. } => Some(reply.to_line()),
            _ => None,
        })
        .collect()
}

/// Deliveries as (connection, id, deliveries).
pub(super) fn delivered(outputs: &[Output]) -> Vec<(u64, String, u32)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Deliver {
                conn,
                event,
                deliveries,
                ..
            } => Some((conn.0, event.id().to_string(), *deliveries)),
            _ => None,
        })
        .collect()
}

pub(super) fn ids(outputs: &[Output]) -> Vec<String> {
    delivered(outputs).into_iter().map(|d| d.1).collect()
}

/// The delivery line of the first delivery in `outputs`, as JSON.
pub(super) fn delivery_json(outputs: &[Output]) -> serde_json::Value {
    for o in outputs {
        if let Output::Deliver {
            topic,
            event,
            deliveries,
            ..
        } = o
        {
            let mut line = bytes::BytesMut::new();
            herald_proto::Delivery {
                topic,
                id: event.id(),
                priority: event.priority,
                fields: event.fields(),
                timestamp: event.timestamp,
                deliveries: *deliveries,
            }
            .encode(&mut line);
            return serde_json::from_slice(&line).unwrap();
        }
    }
    panic!("no delivery in {outputs:?}");
}

pub(super) fn pub_line(topic: &str, id: &str, priority: u8) -> String {
    format!(r#"pub {topic} {{"id":"{id}","priority":{priority},"msg":"m{id}"}}"#)
}

/// Replays `changes` into a fresh broker that recovers at `now`.
pub(super) fn replayed_at(changes: &[Change], now: u64) -> Broker {
    let mut b = Broker::new();
    for c in changes {
        b.replay(c.clone());
    }
    b.finish_replay(now);
    b
}

pub(super) fn replayed(changes: &[Change]) -> Broker {
    replayed_at(changes, NOW)
}

/// Topic → durable subscription → pending ids in delivery order.
pub(super) type View = Vec<(String, Vec<(String, Vec<String>)>)>;

pub(super) fn view(b: &Broker) -> View {
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
