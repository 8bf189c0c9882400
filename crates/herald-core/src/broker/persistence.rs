//! What the log needs from the broker: replaying changes at startup, the
//! snapshot of topics and durable subscriptions that heads every segment,
//! the live events compaction copies forward, and the seed's JSON view for
//! `herald dump`. Kept apart from the command handlers because none of it
//! runs per command.
//!
//! Replay collects each durable subscription's events with their delivery
//! counts and due times, then [`Broker::finish_replay`] builds the queues in
//! one go: events join their level in the order they joined it before
//! (publish time, or due time for an event that was delayed), and what was
//! in flight is queued again (`docs/protocol.md` 12.3). The log does not
//! say which events were in flight (returns are not recorded), so
//! `max_deliveries` applies at an event's next return: after a crash an
//! event may be delivered once more than `max_deliveries`, as 12.3 allows.
//! What expired while the broker was stopped is gone (13.1), dropped
//! without dead letters: a drop by expiry is not recorded, so recovery
//! could not tell an event that expired while stopped from one whose
//! removal was decided under options that have changed since.

use super::subscription::{SubKind, Subscription};
use super::*;

/// Replay-only state: each durable subscription's events, by seq.
#[derive(Debug, Default)]
pub(super) struct ReplayState {
    items: FxHashMap<SubKey, FxHashMap<Seq, ReplayItem>>,
}

#[derive(Debug)]
struct ReplayItem {
    event: Arc<Event>,
    deliveries: u32,
    due: Option<u64>,
}

impl Broker {
    /// An upper bound on the log bytes `command` may append, so the server
    /// can make room before applying it (and refuse it if it cannot).
    /// `frame_bytes` is what the log adds to each payload (its frame
    /// header); payload sizes come from [`record`](crate::record).
    ///
    /// Not counted: delivery records (best-effort: the server drops them
    /// when the segment is full), and what a `pub` may cause beyond one
    /// eviction per `overflow=drop` subscription (a segment only grows past
    /// its preallocation then). Timers and disconnects are not commands; the
    /// server writes what they record without asking first.
    pub fn record_bound(&self, command: &Command, frame_bytes: u64) -> u64 {
        use crate::record;
        // Durable subscriber, group and topic names are valid names.
        const NAME: usize = herald_proto::name::MAX_NAME_BYTES;
        const DEAD_ID: usize = 4096;
        let framed = |payload: usize| frame_bytes + payload as u64;
        // A dead letter of an event with `fields` bytes, to a dead topic
        // that may be new.
        let dead_letter = |fields: usize, holders: usize| {
            framed(record::topic_created_len(NAME))
                + framed(record::dead_lettered_len(
                    NAME,
                    NAME,
                    NAME,
                    DEAD_ID,
                    fields + 512,
                    holders,
                    holders * NAME,
                ))
        };
        // Borrowed, not cloned: this runs before every publish.
        let subs_of = |topic: &str| -> &[SubKey] {
            self.topic_ids
                .get(topic)
                .map_or(&[], |&tid| self.topics[tid].subs.as_slice())
        };
        match command {
            Command::Pub { topic, event } => {
                let subs = subs_of(topic);
                let drops = subs
                    .iter()
                    .filter(|&&k| self.sub(k).is_some_and(|s| s.drops_on_overflow()))
                    .count() as u64;
                framed(record::topic_created_len(topic.len()))
                    + framed(record::published_len(
                        topic.len(),
                        event.id.len(),
                        event.fields.len(),
                        subs.len(),
                        subs.len() * NAME,
                    ))
                    + drops * dead_letter(event.fields.len(), 16)
            }
            Command::Nack { topic, id, .. } => {
                let fields = self
                    .topic_ids
                    .get(topic.as_str())
                    .and_then(|&tid| self.topics[tid].slot(id))
                    .map_or(0, |slot| slot.event.fields().len());
                dead_letter(fields, 16).max(framed(record::delayed_len(NAME, NAME)))
            }
            Command::Sub { .. } => framed(record::subscribed_len(
                NAME,
                NAME,
                record::MAX_OPTIONS_BYTES,
            )),
            Command::Create { topic, .. } => {
                framed(record::topic_created_len(topic.len()))
                    + framed(record::topic_configured_len(topic.len()))
            }
            // One `Acked` or `Unsubscribed` with maximal names.
            _ => framed(record::acked_len(NAME, NAME).max(record::removed_len(NAME, NAME))),
        }
    }

    /// The changes that recreate every topic and durable subscription (not
    /// the events): written at the start of each log segment, so that
    /// deleting older segments never loses them.
    pub fn metadata(&self) -> Vec<Change> {
        let mut out = Vec::new();
        for t in &self.topics {
            out.push(Change::TopicCreated {
                topic: t.name.clone(),
            });
            if t.ttl_ms.is_some() {
                out.push(Change::TopicConfigured {
                    topic: t.name.clone(),
                    ttl_ms: t.ttl_ms,
                });
            }
        }
        for t in &self.topics {
            for &key in &t.subs {
                let Some(s) = self.sub(key) else { continue };
                if let Some(name) = s.kind.durable_name() {
                    out.push(Change::Subscribed {
                        subscriber: name.clone(),
                        topic: t.name.clone(),
                        group: matches!(s.kind, SubKind::Group(_)),
                        prefetch: s.prefetch.max(1),
                        options: (*s.options).clone(),
                    });
                }
            }
        }
        out
    }

    /// Every event with `seq < before` that some durable subscription
    /// holds, with its topic: the work list of a compaction.
    pub fn durable_events_before(&self, before: Seq) -> Vec<(Arc<str>, Arc<Event>)> {
        let mut out = Vec::new();
        for t in &self.topics {
            for slot in t.events.iter() {
                if slot.durable_holders > 0 && slot.event.seq < before {
                    out.push((t.name.clone(), slot.event.clone()));
                }
            }
        }
        out.sort_unstable_by_key(|(_, e)| e.seq);
        out
    }

    /// A `Published` change for `event` with the durable subscriptions that
    /// hold it now (delivery counts and due times included), or `None` if
    /// none does (compaction copies it forward).
    pub fn rewrite_record(&self, topic: &str, event: &Arc<Event>) -> Option<Change> {
        let tid = *self.topic_ids.get(topic)?;
        let t = &self.topics[tid];
        let slot = t.slot(event.id())?;
        if slot.event.seq != event.seq || slot.durable_holders == 0 {
            return None;
        }
        let mut holders = Vec::new();
        for &key in &t.subs {
            let Some(s) = self.sub(key) else { continue };
            let Some(name) = s.kind.durable_name() else {
                continue;
            };
            if let Some((_, deliveries)) = s.queue.state(event.seq) {
                holders.push(holder(name, deliveries, s.queue.due(event.seq)));
            }
        }
        Some(Change::Published {
            topic: t.name.clone(),
            event: slot.event.clone(),
            holders,
        })
    }

    /// Applies a change read back from the log. Tolerant by design: a change
    /// that refers to something already gone (compaction dropped it) is
    /// ignored. Call [`Broker::finish_replay`] after the last one.
    pub fn replay(&mut self, change: Change) {
        let mut fx = Effects::new();
        if self.replay.is_none() {
            self.replay = Some(ReplayState::default());
        }
        match change {
            Change::TopicCreated { topic } => {
                self.topic_or_create(&topic, &mut fx);
            }
            Change::TopicConfigured { topic, ttl_ms } => {
                let tid = self.topic_or_create(&topic, &mut fx);
                self.topics[tid].ttl_ms = ttl_ms;
            }
            Change::Subscribed {
                subscriber,
                topic,
                group,
                prefetch,
                options,
            } => {
                let tid = self.topic_or_create(&topic, &mut fx);
                if !group {
                    self.names.entry(subscriber.clone()).or_insert(None);
                }
                match self.named_sub(tid, &subscriber) {
                    Some(key) => {
                        if let Some(s) = self.sub_mut(key) {
                            s.options = Arc::new(options);
                            s.prefetch = prefetch;
                        }
                    }
                    None => {
                        let kind = if group {
                            SubKind::Group(subscriber)
                        } else {
                            SubKind::Durable(subscriber)
                        };
                        self.new_sub(Subscription::new(tid, kind, options, prefetch));
                    }
                }
            }
            Change::Unsubscribed { subscriber, topic } => {
                if let Some(key) = self.replay_sub(&subscriber, &topic) {
                    let tid = self.topic_of(key);
                    let items = self
                        .replay_items(key)
                        .map(std::mem::take)
                        .unwrap_or_default();
                    for (_, item) in items {
                        self.release(tid, &item.event, true);
                    }
                    self.drop_sub(key);
                }
            }
            Change::Published {
                topic,
                event,
                holders,
            } => self.replay_publish(&topic, event, &holders),
            Change::Acked {
                subscriber,
                topic,
                seq,
            }
            | Change::Removed {
                subscriber,
                topic,
                seq,
                ..
            } => self.replay_remove(&subscriber, &topic, seq),
            Change::Delivered {
                subscriber,
                topic,
                seq,
            } => {
                if let Some(item) = self.replay_item(&subscriber, &topic, seq) {
                    item.deliveries = item.deliveries.saturating_add(1);
                }
            }
            Change::Delayed {
                subscriber,
                topic,
                seq,
                due,
            } => {
                if let Some(item) = self.replay_item(&subscriber, &topic, seq) {
                    item.due = Some(due);
                }
            }
            Change::DeadLettered {
                subscriber,
                topic,
                seq,
                dead_topic,
                event,
                holders,
                ..
            } => {
                if let Some(subscriber) = subscriber {
                    self.replay_remove(&subscriber, &topic, seq);
                }
                self.replay_publish(&dead_topic, event, &holders);
            }
        }
    }

    fn replay_sub(&self, subscriber: &str, topic: &str) -> Option<SubKey> {
        let tid = *self.topic_ids.get(topic)?;
        self.named_sub(tid, subscriber)
    }

    fn replay_items(&mut self, key: SubKey) -> Option<&mut FxHashMap<Seq, ReplayItem>> {
        Some(self.replay.as_mut()?.items.entry(key).or_default())
    }

    fn replay_item(&mut self, subscriber: &str, topic: &str, seq: Seq) -> Option<&mut ReplayItem> {
        let key = self.replay_sub(subscriber, topic)?;
        self.replay_items(key)?.get_mut(&seq)
    }

    fn replay_publish(&mut self, topic: &str, event: Arc<Event>, holders: &[Holder]) {
        let mut fx = Effects::new();
        let tid = self.topic_or_create(topic, &mut fx);
        self.next_seq = self.next_seq.max(event.seq.0 + 1);
        if let Some(held) = self.topics[tid].slot(event.id()).map(|s| s.event.clone()) {
            if held.seq == event.seq {
                // A copy written by compaction of an event we hold.
                return;
            }
            // The broker accepts an id only once no queue holds it, so the
            // event held under this id left every queue in a way the log
            // does not record (it expired).
            let subs = self.topics[tid].subs.clone();
            for key in subs {
                if let Some(items) = self.replay_items(key)
                    && items.remove(&held.seq).is_some()
                {
                    self.release(tid, &held, true);
                }
            }
        }
        let mut count = 0;
        for h in holders {
            let Some(key) = self.named_sub(tid, &h.subscriber) else {
                continue;
            };
            let Some(items) = self.replay_items(key) else {
                continue;
            };
            if items.contains_key(&event.seq) {
                continue;
            }
            items.insert(
                event.seq,
                ReplayItem {
                    event: event.clone(),
                    deliveries: h.deliveries,
                    due: h.due,
                },
            );
            count += 1;
        }
        if count > 0 {
            self.insert_slot(tid, event, count, count);
        }
    }

    fn replay_remove(&mut self, subscriber: &str, topic: &str, seq: Seq) {
        let Some(key) = self.replay_sub(subscriber, topic) else {
            return;
        };
        let tid = self.topic_of(key);
        if let Some(item) = self.replay_items(key).and_then(|items| items.remove(&seq)) {
            self.release(tid, &item.event, true);
        }
    }

    /// Ends a replay at `now`: builds every queue, drops what expired, and
    /// marks every replayed event durable. Writes nothing.
    pub fn finish_replay(&mut self, now: u64) {
        let replay = self.replay.take().unwrap_or_default();
        for (key, items) in replay.items {
            let mut items: Vec<ReplayItem> = items.into_values().collect();
            // Join order (12.3): publish time, or due time for an event that
            // was delayed and is due by now; ties in publish order.
            items.sort_unstable_by_key(|i| {
                let joined = i.due.filter(|&d| d <= now).unwrap_or(i.event.timestamp);
                (joined, i.event.seq)
            });
            for item in items {
                let Some(s) = self.subs[key].as_mut() else {
                    break;
                };
                if item.event.is_expired(now) {
                    let tid = s.topic;
                    self.release(tid, &item.event, true);
                    continue;
                }
                match item.due.filter(|&d| d > now) {
                    Some(due) => {
                        s.queue
                            .push_delayed(item.event.clone(), item.deliveries, due);
                    }
                    None => {
                        let ready_ms = item.due.unwrap_or(item.event.timestamp);
                        s.queue.push_ready(
                            item.event.clone(),
                            item.deliveries,
                            self.next_seq,
                            ready_ms,
                        );
                        self.next_seq += 1;
                    }
                }
            }
            let next = self.sub_mut(key).and_then(|s| s.queue.next_due());
            self.schedule(Owner::Sub(key), next);
        }
        for tid in 0..self.topics.len() {
            let t = &mut self.topics[tid];
            for slot in t.events.iter() {
                if let Some(at) = slot.event.expires_at() {
                    t.expiry.push(Reverse(Expiry {
                        at,
                        event: Arc::downgrade(&slot.event),
                    }));
                }
            }
            let next = t.expiry.peek().map(|Reverse(e)| e.at);
            self.schedule(Owner::Topic(tid), next);
        }
        self.durable = self.last_seq();
    }

    /// The seed's JSON view of one topic: subscriber or group name → its
    /// pending events in delivery order (in-flight events at their place,
    /// as a restart would put them; delayed ones last, by due time; aging
    /// aside). Durable subscriptions only.
    pub fn pending_by_subscriber(&self, topic: &str) -> Option<Vec<SubscriberQueue>> {
        let tid = *self.topic_ids.get(topic)?;
        let t = &self.topics[tid];
        let mut out = Vec::new();
        for &key in &t.subs {
            let Some(s) = self.sub(key) else { continue };
            let Some(name) = s.kind.durable_name() else {
                continue;
            };
            let mut entries = s.queue.entries();
            entries.sort_by_key(|e| match e.due {
                Some(due) => (1, 0, due, e.event.seq.0),
                None => (0, 255 - e.event.priority, e.ready_seq.unwrap_or(0), 0),
            });
            let events = entries.into_iter().map(|e| e.event).collect();
            out.push((name.clone(), events));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Some(out)
    }
}
