//! [`Broker`]: topics, subscribers and their queues; commands in, effects out.
//!
//! The broker is a plain state machine: it does no IO, reads no clock (the
//! caller passes `now`) and never blocks. Each call appends to an
//! [`Effects`]: replies and deliveries for connections ([`Output`]), and the
//! [`Change`]s the log must record. The server owns the only `Broker` and
//! feeds it from one thread, so there is no lock around this state.
//!
//! Durability gate: an event may sit in queues before it is durable, but it
//! is delivered only once the server reports (through [`Broker::set_durable`])
//! that every event up to its `Seq` is on disk under the chosen fsync mode.
//! Queues whose best event is not durable yet wait in `waiting` and are
//! retried on the next `set_durable`.
//!
//! Invariants: a subscription never has more than `prefetch` events in
//! flight (a lowered prefetch only stops new deliveries); an id is pending at
//! most once per topic (`Topic::events`); an acknowledged event is never
//! delivered again.

use crate::change::{Change, Holder};
use crate::event::{Event, Seq};
use crate::queue::{EntryState, PendingQueue, Pop};
use hashbrown::HashTable;
use herald_proto::{Command, ErrorCode, EventInput, Reply};
use rustc_hash::{FxHashMap, FxHasher};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A client connection, as numbered by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A durable subscriber's name and its pending events in delivery order.
pub type SubscriberQueue = (Arc<str>, Vec<Arc<Event>>);

type TopicId = usize;
type SubId = usize;

/// Something to write to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The reply to a command of `conn`.
    Reply {
        /// Connection.
        conn: ConnId,
        /// Reply.
        reply: Reply,
    },
    /// An event for a subscriber on `conn`.
    Deliver {
        /// Connection.
        conn: ConnId,
        /// Topic of the event.
        topic: Arc<str>,
        /// The event.
        event: Arc<Event>,
        /// Delivered before (adds `"redelivered":true`).
        redelivered: bool,
    },
}

/// What a broker call produced, in order.
#[derive(Debug, Default)]
pub struct Effects {
    /// Replies and deliveries, in the order they must be written.
    pub outputs: Vec<Output>,
    /// Changes to record in the log, in order.
    pub changes: Vec<Change>,
}

impl Effects {
    /// Empty effects.
    pub fn new() -> Self {
        Self::default()
    }

    fn reply(&mut self, conn: ConnId, reply: Reply) {
        self.outputs.push(Output::Reply { conn, reply });
    }

    fn error(&mut self, conn: ConnId, code: ErrorCode, text: impl Into<String>) {
        self.reply(conn, Reply::error(code, text));
    }
}

/// Per-topic counters for `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicStats {
    /// Subscriptions on the topic (durable ones that are away included).
    pub subscribers: usize,
    /// Events queued and not in flight, summed over subscriptions.
    pub pending: usize,
    /// Events delivered and not acknowledged, summed over subscriptions.
    pub in_flight: usize,
    /// Events accepted since the broker started (duplicates not counted).
    pub published: u64,
}

/// A pending event of a topic and how many queues hold it.
#[derive(Debug)]
struct Slot {
    /// `hash_id(event.id())`, kept so that probing and growing the table
    /// never touch the event itself (a cache miss each).
    hash: u64,
    event: Arc<Event>,
    holders: u32,
    durable_holders: u32,
}

#[derive(Debug)]
struct Subscription {
    subscriber: SubId,
    prefetch: u16,
    /// Attached to a live connection that sent `sub` for this topic.
    active: bool,
    /// Listed in `Broker::waiting`.
    waiting: bool,
    queue: PendingQueue,
}

#[derive(Debug)]
struct Topic {
    name: Arc<str>,
    subscriptions: Vec<Subscription>,
    /// Pending events by id, for duplicates and ack. The table stores no
    /// key: the id lives in the event, so it is not copied.
    events: HashTable<Slot>,
    published: u64,
}

impl Topic {
    fn subscription(&self, sub: SubId) -> Option<usize> {
        self.subscriptions.iter().position(|s| s.subscriber == sub)
    }

    fn slot(&self, id: &str) -> Option<&Slot> {
        let hash = hash_id(id);
        self.events
            .find(hash, |s| s.hash == hash && s.event.id() == id)
    }
}

fn hash_id(id: &str) -> u64 {
    let mut h = FxHasher::default();
    id.hash(&mut h);
    h.finish()
}

#[derive(Debug)]
struct Subscriber {
    /// `Some` for a durable (named) subscriber.
    name: Option<Arc<str>>,
    conn: Option<ConnId>,
    /// Topics this subscriber has a subscription on.
    topics: Vec<TopicId>,
}

#[derive(Debug, Default)]
struct Conn {
    subscriber: Option<SubId>,
    named: bool,
    subscribed: bool,
}

/// The broker state machine.
#[derive(Debug, Default)]
pub struct Broker {
    topics: Vec<Topic>,
    topic_ids: FxHashMap<Arc<str>, TopicId>,
    subscribers: Vec<Option<Subscriber>>,
    free_subscribers: Vec<SubId>,
    names: FxHashMap<Arc<str>, SubId>,
    conns: FxHashMap<ConnId, Conn>,
    next_seq: u64,
    durable: Seq,
    waiting: Vec<(TopicId, SubId)>,
    /// Bytes of events that some durable subscriber still holds: what the
    /// log must keep, which drives compaction.
    durable_bytes: u64,
    durable_events: u64,
    /// During replay only: events by `Seq`, since ack records name events
    /// by `Seq` and queues find events by id. Emptied by `finish_replay`.
    replay_events: FxHashMap<Seq, Arc<Event>>,
}

impl Broker {
    /// An empty broker.
    pub fn new() -> Self {
        Broker {
            next_seq: 1,
            ..Default::default()
        }
    }

    /// Registers a new connection.
    pub fn connect(&mut self, conn: ConnId) {
        self.conns.insert(conn, Conn::default());
    }

    /// Handles one command of `conn` at wall-clock time `now_ms`.
    pub fn handle(&mut self, conn: ConnId, command: Command, now_ms: u64, fx: &mut Effects) {
        if !self.conns.contains_key(&conn) {
            self.connect(conn);
        }
        match command {
            Command::Pub { topic, event } => self.publish(conn, &topic, event, now_ms, fx),
            Command::Sub {
                topic,
                prefetch,
                options,
            } if options.is_empty() => self.subscribe(conn, &topic, prefetch, fx),
            Command::Unsub { topic, group: None } => self.unsubscribe(conn, &topic, fx),
            Command::Ack { topic, id } => self.ack(conn, &topic, &id, fx),
            Command::Name { name } => self.name(conn, &name, fx),
            Command::Create {
                topic,
                ttl_ms: None,
            } => {
                let tid = self.topic_or_create(&topic, fx);
                let name = self.topics[tid].name.clone();
                fx.reply(conn, Reply::Created(name));
            }
            Command::Topics => fx.reply(conn, Reply::Json(self.topics_json())),
            Command::Stats { topic } => match topic {
                Some(t) if !self.topic_ids.contains_key(t.as_str()) => {
                    fx.error(conn, ErrorCode::NoTopic, format!("no topic '{t}'"));
                }
                _ => fx.reply(conn, Reply::Json(self.stats_json(topic.as_deref()))),
            },
            Command::Ping => fx.reply(conn, Reply::Pong),
            Command::Quit => fx.reply(conn, Reply::Bye),
            // v2: not implemented yet
            Command::Sub { .. }
            | Command::Unsub { .. }
            | Command::Create { .. }
            | Command::Nack { .. }
            | Command::Touch { .. }
            | Command::Peek { .. }
            | Command::Replies { .. }
            | Command::Auth { .. }
            | Command::Cluster => {
                fx.error(conn, ErrorCode::UnknownCommand, "not implemented yet");
            }
        }
    }

    /// Forgets `conn`: an anonymous subscriber's subscriptions and queues go;
    /// a durable subscriber's in-flight events go back to its queues. Nothing
    /// to record or send: neither survives a restart differently for it.
    pub fn disconnect(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        let Some(sid) = c.subscriber else { return };
        let Some(sub) = self.subscribers[sid].as_mut() else {
            return;
        };
        sub.conn = None;
        let durable = sub.name.is_some();
        let topics = sub.topics.clone();
        for tid in topics {
            if durable {
                let topic = &mut self.topics[tid];
                if let Some(i) = topic.subscription(sid) {
                    let s = &mut topic.subscriptions[i];
                    s.active = false;
                    s.queue.return_in_flight();
                }
            } else {
                self.remove_subscription(tid, sid);
            }
        }
        if !durable {
            self.subscribers[sid] = None;
            self.free_subscribers.push(sid);
        }
    }

    /// Every event up to `seq` is now durable: deliver what was waiting for it.
    pub fn set_durable(&mut self, seq: Seq, fx: &mut Effects) {
        if seq <= self.durable {
            return;
        }
        self.durable = seq;
        let waiting = std::mem::take(&mut self.waiting);
        for (tid, sid) in waiting {
            if let Some(i) = self.topics[tid].subscription(sid) {
                self.topics[tid].subscriptions[i].waiting = false;
                self.deliver(tid, sid, fx);
            }
        }
    }

    /// The highest `Seq` handed out so far (0 when none).
    pub fn last_seq(&self) -> Seq {
        Seq(self.next_seq - 1)
    }

    /// Bytes of the events some durable subscriber still holds.
    pub fn durable_bytes(&self) -> u64 {
        self.durable_bytes
    }

    /// Number of events some durable subscriber still holds.
    pub fn durable_events(&self) -> u64 {
        self.durable_events
    }

    /// An upper bound on the log bytes `command` may append, so the server
    /// can make room before applying it (and refuse it if it cannot).
    /// `frame_bytes` is what the log adds to each payload (its frame
    /// header); payload sizes come from [`record`](crate::record).
    pub fn record_bound(&self, command: &Command, frame_bytes: u64) -> u64 {
        use crate::record;
        // Durable subscriber names are valid client names.
        const NAME: usize = herald_proto::name::MAX_NAME_BYTES;
        let framed = |payload: usize| frame_bytes + payload as u64;
        match command {
            Command::Pub { topic, event } => {
                let holders = self
                    .topic_ids
                    .get(topic.as_str())
                    .map(|&tid| self.topics[tid].subscriptions.len())
                    .unwrap_or(0);
                // A new topic also writes TopicCreated.
                framed(record::topic_created_len(topic.len()))
                    + framed(record::published_len(
                        topic.len(),
                        event.id.len(),
                        event.fields.len(),
                        holders,
                        holders * NAME,
                    ))
            }
            // One metadata or ack record, at most an `Acked` with two
            // maximal names. Delivery records are not counted: they are
            // best-effort and the server drops them when the segment is full.
            _ => framed(record::acked_len(NAME, NAME).max(record::subscribed_len(NAME, NAME))),
        }
    }

    /// Whether `command` may change state (and so needs room in the log).
    pub fn is_mutating(command: &Command) -> bool {
        matches!(
            command,
            Command::Pub { .. }
                | Command::Sub { .. }
                | Command::Unsub { .. }
                | Command::Ack { .. }
                | Command::Create { .. }
        )
    }

    // ---- commands -----------------------------------------------------

    fn publish(
        &mut self,
        conn: ConnId,
        topic: &str,
        input: EventInput,
        now_ms: u64,
        fx: &mut Effects,
    ) {
        let tid = self.topic_or_create(topic, fx);
        let t = &self.topics[tid];
        let topic_name = t.name.clone();
        if t.slot(&input.id).is_some() {
            let id: Arc<str> = input.id.into();
            fx.reply(
                conn,
                Reply::Duplicate {
                    topic: topic_name,
                    id,
                },
            );
            return;
        }
        let seq = Seq(self.next_seq);
        self.next_seq += 1;
        let id: Arc<str> = input.id.as_str().into();
        let priority = input.priority;
        let event = Arc::new(Event::new(seq, priority, now_ms, &id, &input.fields));
        let mut holders = Vec::new();
        let t = &mut self.topics[tid];
        t.published += 1;
        let count = t.subscriptions.len() as u32;
        for s in &mut t.subscriptions {
            s.queue.push(event.clone(), false);
            if let Some(Some(sub)) = self.subscribers.get(s.subscriber)
                && let Some(name) = &sub.name
            {
                holders.push(Holder {
                    subscriber: name.clone(),
                    delivered: false,
                });
            }
        }
        let durable_count = holders.len() as u32;
        fx.changes.push(Change::Published {
            topic: topic_name.clone(),
            event: event.clone(),
            holders,
        });
        if count > 0 {
            self.insert_slot(tid, event, count, durable_count);
        }
        fx.reply(
            conn,
            Reply::Published {
                topic: topic_name,
                id,
            },
        );
        // Not durable yet: queues with room wait for `set_durable`.
        let subs: Vec<SubId> = self.topics[tid]
            .subscriptions
            .iter()
            .filter(|s| s.active && !s.waiting && s.queue.in_flight() < s.prefetch as usize)
            .map(|s| s.subscriber)
            .collect();
        for sid in subs {
            self.deliver(tid, sid, fx);
        }
    }

    fn subscribe(&mut self, conn: ConnId, topic: &str, prefetch: u16, fx: &mut Effects) {
        let Some(&tid) = self.topic_ids.get(topic) else {
            fx.error(conn, ErrorCode::NoTopic, format!("no topic '{topic}'"));
            return;
        };
        let sid = match self.conns.get(&conn).and_then(|c| c.subscriber) {
            Some(sid) => sid,
            None => {
                let sid = self.new_subscriber(None, Some(conn));
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.subscriber = Some(sid);
                }
                sid
            }
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.subscribed = true;
        }
        let name = self.durable_name(sid);
        let topic_name = self.topics[tid].name.clone();
        let changed = match self.topics[tid].subscription(sid) {
            Some(i) => {
                let s = &mut self.topics[tid].subscriptions[i];
                s.active = true;
                let changed = s.prefetch != prefetch;
                s.prefetch = prefetch;
                changed
            }
            None => {
                self.add_subscription(tid, sid, prefetch, true);
                true
            }
        };
        if changed && let Some(name) = name {
            fx.changes.push(Change::Subscribed {
                subscriber: name,
                topic: topic_name.clone(),
                prefetch,
            });
        }
        fx.reply(conn, Reply::subscribed(topic_name));
        self.deliver(tid, sid, fx);
    }

    fn unsubscribe(&mut self, conn: ConnId, topic: &str, fx: &mut Effects) {
        let Some((tid, sid, _)) = self.find_subscription(conn, topic) else {
            fx.error(
                conn,
                ErrorCode::NotSubscribed,
                format!("not subscribed to '{topic}'"),
            );
            return;
        };
        let topic_name = self.topics[tid].name.clone();
        if let Some(name) = self.durable_name(sid) {
            fx.changes.push(Change::Unsubscribed {
                subscriber: name,
                topic: topic_name.clone(),
            });
        }
        self.remove_subscription(tid, sid);
        fx.reply(conn, Reply::Unsubscribed(topic_name));
    }

    fn ack(&mut self, conn: ConnId, topic: &str, id: &str, fx: &mut Effects) {
        let Some((tid, sid, i)) = self.find_subscription(conn, topic) else {
            fx.error(
                conn,
                ErrorCode::NotSubscribed,
                format!("not subscribed to '{topic}'"),
            );
            return;
        };
        let t = &mut self.topics[tid];
        let removed = match t.slot(id) {
            Some(slot) => {
                let event = slot.event.clone();
                t.subscriptions[i]
                    .queue
                    .remove(event.seq)
                    .map(|state| (event, state))
            }
            None => None,
        };
        let Some((event, state)) = removed else {
            fx.error(
                conn,
                ErrorCode::NoEvent,
                format!("no event '{id}' pending on '{topic}'"),
            );
            return;
        };
        let topic_name = t.name.clone();
        let name = self.durable_name(sid);
        let durable = name.is_some();
        if let Some(name) = name {
            fx.changes.push(Change::Acked {
                subscriber: name,
                topic: topic_name.clone(),
                seq: event.seq,
            });
        }
        self.release(tid, &event, durable);
        fx.reply(
            conn,
            Reply::Acked {
                topic: topic_name,
                id: id.into(),
            },
        );
        if state == EntryState::InFlight {
            self.deliver(tid, sid, fx);
        }
    }

    fn name(&mut self, conn: ConnId, name: &str, fx: &mut Effects) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.named {
            fx.error(
                conn,
                ErrorCode::BadState,
                "this connection is already named",
            );
            return;
        }
        if c.subscribed {
            fx.error(
                conn,
                ErrorCode::BadState,
                "name must come before the first sub on a connection",
            );
            return;
        }
        let sid = match self.names.get(name) {
            Some(&sid) => {
                if self.subscribers[sid]
                    .as_ref()
                    .and_then(|s| s.conn)
                    .is_some()
                {
                    fx.error(
                        conn,
                        ErrorCode::NameInUse,
                        format!("'{name}' is held by another connection"),
                    );
                    return;
                }
                if let Some(s) = self.subscribers[sid].as_mut() {
                    s.conn = Some(conn);
                }
                sid
            }
            None => self.durable_subscriber(name),
        };
        if let Some(s) = self.subscribers[sid].as_mut() {
            s.conn = Some(conn);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.named = true;
            c.subscriber = Some(sid);
        }
        let name = self.durable_name(sid).unwrap_or_else(|| name.into());
        fx.reply(conn, Reply::Named(name));
    }

    // ---- helpers ------------------------------------------------------

    /// Delivers from one subscription while it has room and durable events.
    fn deliver(&mut self, tid: TopicId, sid: SubId, fx: &mut Effects) {
        let Some(conn) = self.subscribers.get(sid).and_then(|s| s.as_ref()?.conn) else {
            return;
        };
        let name = self.durable_name(sid);
        let t = &mut self.topics[tid];
        let Some(i) = t.subscription(sid) else { return };
        let s = &mut t.subscriptions[i];
        if !s.active {
            return;
        }
        while s.queue.in_flight() < s.prefetch as usize {
            match s.queue.pop(self.durable) {
                Pop::Event { event, redelivered } => {
                    if let Some(name) = &name {
                        fx.changes.push(Change::Delivered {
                            subscriber: name.clone(),
                            topic: t.name.clone(),
                            seq: event.seq,
                        });
                    }
                    fx.outputs.push(Output::Deliver {
                        conn,
                        topic: t.name.clone(),
                        event,
                        redelivered,
                    });
                }
                Pop::NotDurable => {
                    if !s.waiting {
                        s.waiting = true;
                        self.waiting.push((tid, sid));
                    }
                    return;
                }
                Pop::Empty => return,
            }
        }
    }

    fn find_subscription(&self, conn: ConnId, topic: &str) -> Option<(TopicId, SubId, usize)> {
        let sid = self.conns.get(&conn)?.subscriber?;
        let tid = *self.topic_ids.get(topic)?;
        let i = self.topics[tid].subscription(sid)?;
        Some((tid, sid, i))
    }

    fn topic_or_create(&mut self, name: &str, fx: &mut Effects) -> TopicId {
        if let Some(&tid) = self.topic_ids.get(name) {
            return tid;
        }
        let name: Arc<str> = name.into();
        let tid = self.topics.len();
        self.topics.push(Topic {
            name: name.clone(),
            subscriptions: Vec::new(),
            events: HashTable::new(),
            published: 0,
        });
        self.topic_ids.insert(name.clone(), tid);
        fx.changes.push(Change::TopicCreated { topic: name });
        tid
    }

    fn new_subscriber(&mut self, name: Option<Arc<str>>, conn: Option<ConnId>) -> SubId {
        let sub = Subscriber {
            name,
            conn,
            topics: Vec::new(),
        };
        match self.free_subscribers.pop() {
            Some(sid) => {
                self.subscribers[sid] = Some(sub);
                sid
            }
            None => {
                self.subscribers.push(Some(sub));
                self.subscribers.len() - 1
            }
        }
    }

    fn durable_subscriber(&mut self, name: &str) -> SubId {
        if let Some(&sid) = self.names.get(name) {
            return sid;
        }
        let name: Arc<str> = name.into();
        let sid = self.new_subscriber(Some(name.clone()), None);
        self.names.insert(name, sid);
        sid
    }

    fn durable_name(&self, sid: SubId) -> Option<Arc<str>> {
        self.subscribers.get(sid)?.as_ref()?.name.clone()
    }

    fn add_subscription(&mut self, tid: TopicId, sid: SubId, prefetch: u16, active: bool) {
        self.topics[tid].subscriptions.push(Subscription {
            subscriber: sid,
            prefetch,
            active,
            waiting: false,
            queue: PendingQueue::new(),
        });
        if let Some(Some(s)) = self.subscribers.get_mut(sid) {
            s.topics.push(tid);
        }
    }

    fn remove_subscription(&mut self, tid: TopicId, sid: SubId) {
        let durable = self.durable_name(sid).is_some();
        let t = &mut self.topics[tid];
        let Some(i) = t.subscription(sid) else { return };
        let mut s = t.subscriptions.swap_remove(i);
        for event in s.queue.drain() {
            self.release(tid, &event, durable);
        }
        if let Some(Some(sub)) = self.subscribers.get_mut(sid) {
            sub.topics.retain(|&t| t != tid);
        }
        // A stale `waiting` entry is harmless: set_durable skips it.
    }

    fn insert_slot(&mut self, tid: TopicId, event: Arc<Event>, holders: u32, durable: u32) {
        if durable > 0 {
            self.durable_bytes += event.size() as u64;
            self.durable_events += 1;
        }
        let hash = hash_id(event.id());
        self.topics[tid].events.insert_unique(
            hash,
            Slot {
                hash,
                event,
                holders,
                durable_holders: durable,
            },
            |s| s.hash,
        );
    }

    /// One queue let go of `event`; forget it when no queue holds it.
    fn release(&mut self, tid: TopicId, event: &Arc<Event>, durable: bool) {
        let t = &mut self.topics[tid];
        let hash = hash_id(event.id());
        let Ok(mut entry) = t
            .events
            .find_entry(hash, |s| s.hash == hash && s.event.seq == event.seq)
        else {
            return;
        };
        let slot = entry.get_mut();
        slot.holders = slot.holders.saturating_sub(1);
        if durable && slot.durable_holders > 0 {
            slot.durable_holders -= 1;
            if slot.durable_holders == 0 {
                self.durable_bytes = self.durable_bytes.saturating_sub(event.size() as u64);
                self.durable_events = self.durable_events.saturating_sub(1);
            }
        }
        if slot.holders == 0 {
            entry.remove();
        }
    }
}

mod persistence;
mod stats;
#[cfg(test)]
mod tests;
