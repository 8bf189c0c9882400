//! [`Broker`]: topics, subscriptions and their queues; commands in, effects out.
//!
//! The broker is a plain state machine: it does no IO, reads no clock (the
//! caller passes `now`, in ms since the epoch) and never blocks. Each call
//! appends to an [`Effects`]: replies and deliveries for connections
//! ([`Output`]), and the [`Change`]s the log must record. The server owns the
//! only `Broker` and feeds it from one task, so there is no lock around it.
//!
//! Time: deadlines, due times and expiries are kept in per-subscription and
//! per-topic heaps; a broker-level heap of *owners* (a subscription or a
//! topic with something timed) says when the next one is due. The server
//! asks [`Broker::next_wakeup`] and calls [`Broker::tick`] then; nothing here
//! scans a queue on a timer.
//!
//! Durability gate: an event may sit in queues before it is durable, but it
//! is delivered only once the server reports (through [`Broker::set_durable`])
//! that every event up to its `Seq` is on disk under the chosen fsync mode.
//! Subscriptions whose best event is not durable yet wait in `waiting` and
//! are retried on the next `set_durable`.
//!
//! Layout: `subscribe.rs` (sub, unsub, name, groups), `publish.rs` (pub,
//! limits, dead letters), `consume.rs` (delivery, ack, nack, touch,
//! returns), `timers.rs` (tick), `persistence.rs` (replay, snapshots,
//! compaction), `stats.rs` (topics, stats, peek).
//!
//! Invariants: no member holds more than its prefetch in flight (a lowered
//! prefetch only stops new deliveries); an event is in flight at one member
//! at most; an id is pending at most once per topic (`Topic::events`); an
//! acknowledged event is never delivered again; `deliveries` only grows.

use crate::change::{Change, Holder, RemoveReason};
use crate::conn::ConnId;
use crate::event::{Event, Seq};
use crate::queue::EntryState;
use hashbrown::HashTable;
use herald_proto::{Command, ErrorCode, Reply};
use rustc_hash::{FxHashMap, FxHasher};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Weak};

pub use subscription::{SubKind, SubOptions};

/// A durable subscriber's or group's name and its pending events in
/// delivery order (`herald dump`).
pub type SubscriberQueue = (Arc<str>, Vec<Arc<Event>>);

pub(crate) type TopicId = usize;
pub(crate) type SubKey = usize;

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
    /// An event for a subscription member on `conn`.
    Deliver {
        /// Connection.
        conn: ConnId,
        /// Topic of the event.
        topic: Arc<str>,
        /// The event.
        event: Arc<Event>,
        /// Times the subscription has been sent it, this one included
        /// (2 or more adds `"redelivered":true,"deliveries":n`).
        deliveries: u32,
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

/// Counters of a topic since the broker started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicCounters {
    /// Events accepted (duplicates not counted).
    pub published: u64,
    /// Publishes answered `duplicate`.
    pub duplicates: u64,
    /// Deliveries, redeliveries included.
    pub delivered: u64,
    /// Deliveries with `deliveries >= 2`.
    pub redelivered: u64,
    /// Acknowledgements.
    pub acked: u64,
    /// Events moved to a dead topic (per subscription).
    pub dead_lettered: u64,
    /// Events that should have been dead-lettered but `dead=none` (or no
    /// possible dead topic) dropped them.
    pub dead_dropped: u64,
    /// Events removed because their time to live ran out (per subscription).
    pub expired: u64,
    /// Events evicted by `overflow=drop` (per subscription).
    pub evicted: u64,
}

/// A pending event of a topic and how many subscriptions hold it.
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
struct Topic {
    name: Arc<str>,
    subs: Vec<SubKey>,
    /// Pending events by id, for duplicates and ack. The table stores no
    /// key: the id lives in the event, so it is not copied.
    events: HashTable<Slot>,
    /// Default time to live of events published from now on (13.1).
    ttl_ms: Option<u64>,
    /// Expiry times of pending events with a time to live. `Weak` so that an
    /// acknowledged event is not kept alive until its expiry; 16 bytes an
    /// event, and only events with a time to live pay it.
    expiry: BinaryHeap<Reverse<Expiry>>,
    /// The earliest time this topic is in the broker's timer heap for.
    scheduled: u64,
    counters: TopicCounters,
}

#[derive(Debug)]
struct Expiry {
    at: u64,
    event: Weak<Event>,
}

impl PartialEq for Expiry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Expiry {}
impl PartialOrd for Expiry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Expiry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

impl Topic {
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

/// A connection as the broker sees it.
#[derive(Debug, Default)]
struct ConnState {
    /// The durable name it holds (`name`).
    name: Option<Arc<str>>,
    /// It sent a successful `sub` (so `name` is no longer allowed).
    subscribed: bool,
    /// The subscription it is a member of, per topic (at most one).
    subs: Vec<(TopicId, SubKey)>,
}

impl ConnState {
    fn sub_on(&self, tid: TopicId) -> Option<SubKey> {
        self.subs.iter().find(|(t, _)| *t == tid).map(|(_, k)| *k)
    }
}

/// What owns a timer in the broker-level heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    Topic(TopicId),
    Sub(SubKey),
}

/// The broker state machine.
#[derive(Debug)]
pub struct Broker {
    topics: Vec<Topic>,
    topic_ids: FxHashMap<Arc<str>, TopicId>,
    subs: Vec<Option<subscription::Subscription>>,
    free_subs: Vec<SubKey>,
    /// Durable names ever used, and the connection holding each now.
    names: FxHashMap<Arc<str>, Option<ConnId>>,
    conns: FxHashMap<ConnId, ConnState>,
    /// The broker-wide counter behind [`Seq`] and join order.
    next_seq: u64,
    durable: Seq,
    waiting: Vec<SubKey>,
    timers: BinaryHeap<Reverse<(u64, Owner)>>,
    /// Bytes of events that some durable subscription still holds: what the
    /// log must keep, which drives compaction.
    durable_bytes: u64,
    durable_events: u64,
    /// During replay only.
    replay: Option<persistence::ReplayState>,
    /// The subscriptions a publish went to, kept between publishes so that
    /// each does not allocate a list of its own.
    publish_subs: Vec<SubKey>,
}

impl Default for Broker {
    fn default() -> Self {
        Broker::new()
    }
}

impl Broker {
    /// An empty broker.
    pub fn new() -> Self {
        Broker {
            topics: Vec::new(),
            topic_ids: FxHashMap::default(),
            subs: Vec::new(),
            free_subs: Vec::new(),
            names: FxHashMap::default(),
            conns: FxHashMap::default(),
            next_seq: 1,
            durable: Seq(0),
            waiting: Vec::new(),
            timers: BinaryHeap::new(),
            durable_bytes: 0,
            durable_events: 0,
            replay: None,
            publish_subs: Vec::new(),
        }
    }

    /// Registers a new connection.
    pub fn connect(&mut self, conn: ConnId) {
        self.conns.entry(conn).or_default();
    }

    /// Handles one command of `conn` at wall-clock time `now` (ms since the
    /// epoch). Connection-level commands (`replies`, `auth`, `cluster`) are
    /// the server's; given here they are answered `bad_state`.
    pub fn handle(&mut self, conn: ConnId, command: Command, now: u64, fx: &mut Effects) {
        self.connect(conn);
        match command {
            Command::Pub { topic, event } => self.publish(conn, &topic, event, now, fx),
            Command::Sub {
                topic,
                prefetch,
                options,
            } => self.subscribe(conn, &topic, prefetch, options, now, fx),
            Command::Unsub { topic, group } => self.unsubscribe(conn, &topic, group, now, fx),
            Command::Ack { topic, id } => self.ack(conn, &topic, &id, now, fx),
            Command::Nack { topic, id, action } => self.nack(conn, &topic, &id, action, now, fx),
            Command::Touch { topic, id, ms } => self.touch(conn, &topic, &id, ms, now, fx),
            Command::Peek { topic, n, target } => self.peek(conn, &topic, n, target, now, fx),
            Command::Name { name } => self.name(conn, &name, fx),
            Command::Create { topic, ttl_ms } => self.create(conn, &topic, ttl_ms, fx),
            Command::Topics => fx.reply(conn, Reply::Json(self.topics_json())),
            Command::Stats { topic } => match topic {
                Some(t) if !self.topic_ids.contains_key(t.as_str()) => {
                    fx.error(conn, ErrorCode::NoTopic, format!("no topic '{t}'"));
                }
                _ => fx.reply(conn, Reply::Json(self.stats_json(topic.as_deref(), now))),
            },
            Command::Ping => fx.reply(conn, Reply::Pong),
            Command::Quit => fx.reply(conn, Reply::Bye),
            // `replies`, `auth` and `cluster` belong to the connection and
            // the cluster, which the server owns.
            _ => fx.error(conn, ErrorCode::BadState, "not available here"),
        }
    }

    /// Forgets `conn`: an anonymous subscription goes with its queue; the
    /// events a durable subscriber or group member had in flight are
    /// returned (12.3), which may deliver them to other members, delay them
    /// or dead-letter them.
    pub fn disconnect(&mut self, conn: ConnId, now: u64, fx: &mut Effects) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(name) = &c.name {
            self.names.insert(name.clone(), None);
        }
        for (_, key) in c.subs {
            self.leave(key, conn, now, fx);
        }
    }

    /// Every event up to `seq` is now durable: deliver what was waiting for it.
    pub fn set_durable(&mut self, seq: Seq, now: u64, fx: &mut Effects) {
        if seq <= self.durable {
            return;
        }
        self.durable = seq;
        let waiting = std::mem::take(&mut self.waiting);
        for key in waiting {
            if let Some(s) = self.sub_mut(key) {
                s.waiting = false;
                self.deliver(key, now, fx);
            }
        }
    }

    /// The sequence number of the newest event (0 if none).
    pub fn last_seq(&self) -> Seq {
        Seq(self.next_seq - 1)
    }

    /// Bytes of events some durable subscription holds (drives compaction).
    pub fn durable_bytes(&self) -> u64 {
        self.durable_bytes
    }

    /// Number of events some durable subscription holds.
    pub fn durable_events(&self) -> u64 {
        self.durable_events
    }

    /// Whether `command` may change what the log holds (and so needs room
    /// in it before it runs).
    pub fn is_mutating(command: &Command) -> bool {
        matches!(
            command,
            Command::Pub { .. }
                | Command::Sub { .. }
                | Command::Unsub { .. }
                | Command::Ack { .. }
                | Command::Nack { .. }
                | Command::Create { .. }
        )
    }

    // ---- shared helpers -------------------------------------------------

    fn sub(&self, key: SubKey) -> Option<&subscription::Subscription> {
        self.subs.get(key)?.as_ref()
    }

    fn sub_mut(&mut self, key: SubKey) -> Option<&mut subscription::Subscription> {
        self.subs.get_mut(key)?.as_mut()
    }

    /// The subscription `conn` is a member of on `topic`, or, for a named
    /// connection that has not sent `sub` for it yet, its durable
    /// subscription (version 1: a reconnected subscriber may `ack` or
    /// `unsub` before `sub`).
    fn conn_sub(&self, conn: ConnId, topic: &str) -> Option<(TopicId, SubKey)> {
        let tid = *self.topic_ids.get(topic)?;
        let c = self.conns.get(&conn)?;
        if let Some(key) = c.sub_on(tid) {
            return Some((tid, key));
        }
        let key = self.named_sub(tid, c.name.as_deref()?)?;
        matches!(self.sub(key)?.kind, subscription::SubKind::Durable(_)).then_some((tid, key))
    }

    /// The durable or group subscription called `name` on `tid`.
    fn named_sub(&self, tid: TopicId, name: &str) -> Option<SubKey> {
        self.topics[tid]
            .subs
            .iter()
            .copied()
            .find(|&k| self.sub(k).and_then(|s| s.kind.name()) == Some(name))
    }

    fn topic_or_create(&mut self, name: &str, fx: &mut Effects) -> TopicId {
        if let Some(&tid) = self.topic_ids.get(name) {
            return tid;
        }
        let name: Arc<str> = name.into();
        let tid = self.topics.len();
        self.topics.push(Topic {
            name: name.clone(),
            subs: Vec::new(),
            events: HashTable::new(),
            ttl_ms: None,
            expiry: BinaryHeap::new(),
            scheduled: u64::MAX,
            counters: TopicCounters::default(),
        });
        self.topic_ids.insert(name.clone(), tid);
        fx.changes.push(Change::TopicCreated { topic: name });
        tid
    }

    fn create(&mut self, conn: ConnId, topic: &str, ttl_ms: Option<u64>, fx: &mut Effects) {
        let tid = self.topic_or_create(topic, fx);
        let t = &mut self.topics[tid];
        if ttl_ms.is_some() && t.ttl_ms != ttl_ms {
            t.ttl_ms = ttl_ms;
            fx.changes.push(Change::TopicConfigured {
                topic: t.name.clone(),
                ttl_ms,
            });
        }
        fx.reply(conn, Reply::Created(t.name.clone()));
    }

    fn new_sub(&mut self, sub: subscription::Subscription) -> SubKey {
        let tid = sub.topic;
        let key = match self.free_subs.pop() {
            Some(key) => {
                self.subs[key] = Some(sub);
                key
            }
            None => {
                self.subs.push(Some(sub));
                self.subs.len() - 1
            }
        };
        self.topics[tid].subs.push(key);
        key
    }

    /// Removes a subscription with its queue (unsubscribe, group deletion,
    /// anonymous disconnect). Members are detached; nothing is logged here.
    fn drop_sub(&mut self, key: SubKey) {
        let Some(mut s) = self.subs.get_mut(key).and_then(Option::take) else {
            return;
        };
        self.free_subs.push(key);
        let tid = s.topic;
        self.topics[tid].subs.retain(|&k| k != key);
        for m in &s.members {
            if let Some(c) = self.conns.get_mut(&m.conn) {
                c.subs.retain(|&(t, k)| !(t == tid && k == key));
            }
        }
        let durable = s.kind.is_durable();
        for event in s.queue.drain() {
            self.release(tid, &event, durable);
        }
        // A stale `waiting` or timer entry is harmless: both skip a
        // subscription that is gone.
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

    /// One subscription let go of `event`; forget it when none holds it.
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

    /// Puts `owner` in the timer heap for `at`, unless it is already there
    /// for an earlier time.
    fn schedule(&mut self, owner: Owner, at: Option<u64>) {
        let Some(at) = at else { return };
        let scheduled = match owner {
            Owner::Topic(tid) => &mut self.topics[tid].scheduled,
            Owner::Sub(key) => match self.subs.get_mut(key).and_then(Option::as_mut) {
                Some(s) => &mut s.scheduled,
                None => return,
            },
        };
        if at < *scheduled {
            *scheduled = at;
            self.timers.push(Reverse((at, owner)));
        }
    }
}

/// The holders record of a publish: durable and group subscriptions.
fn holder(name: &Arc<str>, deliveries: u32, due: Option<u64>) -> Holder {
    Holder {
        subscriber: name.clone(),
        deliveries,
        due,
    }
}

mod consume;
#[cfg(any(test, feature = "invariants"))]
mod invariants;
mod persistence;
mod publish;
pub mod stats;
mod subscribe;
pub mod subscription;
#[cfg(test)]
mod tests;
mod timers;

pub use stats::PeekView;
