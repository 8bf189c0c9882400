//! `pub`, and the events the broker publishes itself: dead letters
//! (`docs/protocol.md` 4, 12.6, 13.1, 13.2, 13.4).
//!
//! A publish is checked whole before anything is stored: a duplicate id
//! (anywhere pending in the topic) is `+OK duplicate` and changes nothing; a
//! subscription with `overflow=reject` that the event would take over its
//! limit refuses it (`-ERR full`). Then the event is queued (or delayed)
//! for every subscription present, recorded with its holders, answered,
//! and subscriptions with `overflow=drop` evict down to their limits.
//!
//! Dead-lettering removes an event from one subscription and publishes a
//! new event to the dead topic in **one** record ([`Change::DeadLettered`]),
//! so that after any crash the dead letter is in exactly one of the two
//! places.

use super::*;
use crate::event::MAX_TIME_MS;
use herald_proto::EventInput;

/// Longest id a dead letter may get (`<subscription>/<id>`, repeated when a
/// dead letter dies again); past it the dead letter is dropped, so that a
/// topic that is its own dead topic cannot grow ids without bound.
const MAX_DEAD_LETTER_ID_BYTES: usize = 4096;

impl Broker {
    pub(super) fn publish(
        &mut self,
        conn: ConnId,
        topic: &str,
        input: EventInput,
        now: u64,
        fx: &mut Effects,
    ) {
        // Shape first (2): a due time too far ahead is a bad event, refused
        // before the topic is created.
        if input
            .not_before
            .is_some_and(|at| at > now.saturating_add(MAX_TIME_MS))
        {
            fx.error(
                conn,
                ErrorCode::BadEvent,
                "field 'not_before' must be at most 30 days ahead",
            );
            return;
        }
        let tid = self.topic_or_create(topic, fx);
        let t = &self.topics[tid];
        let topic_name = t.name.clone();
        if t.slot(&input.id).is_some() {
            self.topics[tid].counters.duplicates += 1;
            fx.reply(
                conn,
                Reply::Duplicate {
                    topic: topic_name,
                    id: input.id.into(),
                },
            );
            return;
        }
        let msg_len = input.msg_len as u64;
        if let Some(full) = t.subs.iter().find_map(|&k| {
            let s = self.sub(k)?;
            (!s.drops_on_overflow() && s.would_exceed(1, msg_len)).then(|| s.kind.display_name())
        }) {
            fx.error(conn, ErrorCode::Full, format!("{topic_name} {full}"));
            return;
        }
        let ttl = match (input.ttl_ms, t.ttl_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let due = match (input.delay_ms, input.not_before) {
            (Some(delay), _) => Some(now.saturating_add(delay)),
            (None, Some(at)) => Some(at),
            (None, None) => None,
        }
        .filter(|&due| due > now);
        let seq = self.take_seq();
        let id: Arc<str> = input.id.as_str().into();
        let event = Arc::new(Event::with_meta(
            seq,
            input.priority,
            now,
            &id,
            &input.fields,
            ttl.unwrap_or(0),
            input.msg_len,
        ));
        // A buffer kept in the broker, not a new `Vec` per publish; a dead
        // letter published from inside this one takes a fresh one.
        let mut subs = std::mem::take(&mut self.publish_subs);
        self.enqueue(tid, &event, due, &mut subs);
        let holders = self.holders_of(&subs, 0, due);
        fx.changes.push(Change::Published {
            topic: topic_name.clone(),
            event: event.clone(),
            holders,
        });
        self.topics[tid].counters.published += 1;
        fx.reply(
            conn,
            Reply::Published {
                topic: topic_name,
                id,
            },
        );
        self.evict_overflow(&subs, now, fx);
        for &key in &subs {
            self.deliver(key, now, fx);
        }
        self.publish_subs = subs;
    }

    pub(super) fn take_seq(&mut self) -> Seq {
        let seq = Seq(self.next_seq);
        self.next_seq += 1;
        seq
    }

    /// Queues (or delays until `due`) a new event for every subscription of
    /// `tid`, registers it for duplicates and expiry, and leaves in `subs`
    /// (cleared first) the subscriptions it went to.
    fn enqueue(
        &mut self,
        tid: TopicId,
        event: &Arc<Event>,
        due: Option<u64>,
        subs: &mut Vec<SubKey>,
    ) {
        subs.clear();
        subs.extend_from_slice(&self.topics[tid].subs);
        let mut durable = 0;
        for &key in subs.iter() {
            if let Some(s) = self.subs[key].as_mut() {
                s.queue.push(event.clone(), due);
                durable += u32::from(s.kind.is_durable());
            }
            self.schedule(Owner::Sub(key), due);
        }
        if !subs.is_empty() {
            self.insert_slot(tid, event.clone(), subs.len() as u32, durable);
            if let Some(at) = event.expires_at() {
                self.topics[tid].expiry.push(Reverse(Expiry {
                    at,
                    event: Arc::downgrade(event),
                }));
                self.schedule(Owner::Topic(tid), Some(at));
            }
        }
    }

    /// The record's holders: the durable and group subscriptions among `subs`.
    fn holders_of(&self, subs: &[SubKey], deliveries: u32, due: Option<u64>) -> Vec<Holder> {
        subs.iter()
            .filter_map(|&k| self.sub(k)?.kind.durable_name())
            .map(|name| holder(name, deliveries, due))
            .collect()
    }

    /// `overflow=drop` (13.4): each subscription over its limits evicts its
    /// lowest-priority queued events, oldest first, until it is within them.
    fn evict_overflow(&mut self, subs: &[SubKey], now: u64, fx: &mut Effects) {
        for &key in subs {
            while let Some(s) = self.subs[key].as_mut() {
                if !s.drops_on_overflow() || !s.is_over_limit() {
                    break;
                }
                // Take it back from the queue first so that the dead letter
                // and the eviction record see it gone.
                let Some(event) = s.queue.evict_lowest() else {
                    break;
                };
                let tid = s.topic;
                let durable = s.kind.is_durable();
                let explicit_dead = s.dead_topic(&self.topics[tid].name, true);
                let subscriber = s.kind.durable_name().cloned();
                let name = s.kind.display_name();
                self.topics[tid].counters.evicted += 1;
                self.release(tid, &event, durable);
                match explicit_dead {
                    Some(dead) => self.send_dead_letter(
                        tid,
                        subscriber,
                        &name,
                        &event,
                        0,
                        RemoveReason::Overflow,
                        &dead,
                        now,
                        fx,
                    ),
                    None => {
                        if let Some(subscriber) = subscriber {
                            fx.changes.push(Change::Removed {
                                subscriber,
                                topic: self.topics[tid].name.clone(),
                                seq: event.seq,
                                reason: RemoveReason::Overflow,
                            });
                        }
                    }
                }
            }
        }
    }

    /// Dead-letters `event` from subscription `key` (12.6): removes it and
    /// publishes the dead letter, or drops it (counted in `dead_dropped`)
    /// when there is no dead topic. Expiry and overflow go only to an
    /// explicit `dead=<topic>`; callers count those themselves.
    pub(super) fn dead_letter(
        &mut self,
        key: SubKey,
        event: &Arc<Event>,
        reason: RemoveReason,
        now: u64,
        fx: &mut Effects,
    ) {
        let Some(s) = self.subs[key].as_mut() else {
            return;
        };
        let tid = s.topic;
        let deliveries = s.queue.state(event.seq).map_or(0, |(_, d)| d);
        if s.queue.remove(event).is_none() {
            return;
        }
        let durable = s.kind.is_durable();
        let subscriber = s.kind.durable_name().cloned();
        let name = s.kind.display_name();
        let explicit_only = matches!(reason, RemoveReason::Expired | RemoveReason::Overflow);
        let target = s.dead_topic(&self.topics[tid].name, explicit_only);
        self.release(tid, event, durable);
        match target {
            Some(dead) => self.send_dead_letter(
                tid, subscriber, &name, event, deliveries, reason, &dead, now, fx,
            ),
            None => {
                if !explicit_only {
                    self.topics[tid].counters.dead_dropped += 1;
                }
                if let Some(subscriber) = subscriber {
                    fx.changes.push(Change::Removed {
                        subscriber,
                        topic: self.topics[tid].name.clone(),
                        seq: event.seq,
                        reason,
                    });
                }
            }
        }
    }

    /// Publishes the dead letter of `event`, already removed from the
    /// subscription named `name` on `tid`, to `dead`, recording the removal
    /// and the publish in one record.
    #[allow(clippy::too_many_arguments)]
    fn send_dead_letter(
        &mut self,
        tid: TopicId,
        subscriber: Option<Arc<str>>,
        name: &str,
        event: &Arc<Event>,
        deliveries: u32,
        reason: RemoveReason,
        dead: &str,
        now: u64,
        fx: &mut Effects,
    ) {
        let topic = self.topics[tid].name.clone();
        let id = format!("{name}/{}", event.id());
        let removed = |fx: &mut Effects| {
            if let Some(subscriber) = subscriber.clone() {
                fx.changes.push(Change::Removed {
                    subscriber,
                    topic: topic.clone(),
                    seq: event.seq,
                    reason,
                });
            }
        };
        if id.len() > MAX_DEAD_LETTER_ID_BYTES {
            self.topics[tid].counters.dead_dropped += 1;
            removed(fx);
            return;
        }
        let dead_tid = self.topic_or_create(dead, fx);
        self.topics[tid].counters.dead_lettered += 1;
        if self.topics[dead_tid].slot(&id).is_some() {
            // Already pending there: a duplicate, only counted (12.6).
            self.topics[dead_tid].counters.duplicates += 1;
            removed(fx);
            return;
        }
        let info = herald_proto::dead::DeadInfo {
            topic: topic.to_string(),
            id: event.id().to_string(),
            subscription: name.to_string(),
            reason,
            deliveries,
            timestamp: event.timestamp,
        };
        // Stored fields always parse; should they not, the dead letter keeps
        // them whole rather than be lost.
        let fields =
            herald_proto::dead::dead_letter_fields(event.fields(), &info).unwrap_or_else(|_| {
                let mut fields = event.fields().to_vec();
                info.write_field(&mut fields);
                fields
            });
        let msg_len = event.msg_len() as usize;
        let ttl = self.topics[dead_tid].ttl_ms.unwrap_or(0);
        let seq = self.take_seq();
        let letter = Arc::new(Event::with_meta(
            seq,
            event.priority,
            now,
            &id,
            &fields,
            ttl,
            msg_len,
        ));
        let mut subs = Vec::new();
        self.enqueue(dead_tid, &letter, None, &mut subs);
        let holders = self.holders_of(&subs, 0, None);
        self.topics[dead_tid].counters.published += 1;
        fx.changes.push(Change::DeadLettered {
            subscriber,
            topic,
            seq: event.seq,
            reason,
            dead_topic: self.topics[dead_tid].name.clone(),
            event: letter,
            holders,
        });
        // A dead topic's own overflow evicts without dead-lettering again.
        for &key in &subs {
            self.trim_without_dead_letters(key, fx);
        }
        for key in subs {
            self.deliver(key, now, fx);
        }
    }

    fn trim_without_dead_letters(&mut self, key: SubKey, fx: &mut Effects) {
        loop {
            let Some(s) = self.subs[key].as_mut() else {
                return;
            };
            if !s.drops_on_overflow() || !s.is_over_limit() {
                return;
            }
            let Some(event) = s.queue.evict_lowest() else {
                return;
            };
            let tid = s.topic;
            let durable = s.kind.is_durable();
            let subscriber = s.kind.durable_name().cloned();
            self.topics[tid].counters.evicted += 1;
            self.release(tid, &event, durable);
            if let Some(subscriber) = subscriber {
                fx.changes.push(Change::Removed {
                    subscriber,
                    topic: self.topics[tid].name.clone(),
                    seq: event.seq,
                    reason: RemoveReason::Overflow,
                });
            }
        }
    }
}
