//! What the log needs from the broker: replaying changes at startup, the
//! snapshot of topics and durable subscriptions that heads every segment,
//! the live events compaction copies forward, and the seed's JSON view for
//! `herald dump`. Kept apart from the command handlers because none of it
//! runs per command.

use super::*;

impl Broker {
    /// The changes that recreate every topic and durable subscription (not
    /// the events): written at the start of each log segment, so that
    /// deleting older segments never loses them.
    pub fn metadata(&self) -> Vec<Change> {
        let mut out = Vec::new();
        for t in &self.topics {
            out.push(Change::TopicCreated {
                topic: t.name.clone(),
            });
        }
        for t in &self.topics {
            for s in &t.subscriptions {
                if let Some(name) = self.durable_name(s.subscriber) {
                    out.push(Change::Subscribed {
                        subscriber: name,
                        topic: t.name.clone(),
                        prefetch: s.prefetch,
                    });
                }
            }
        }
        out
    }

    /// Every event with `seq < before` that some durable subscriber holds,
    /// with its topic: the work list of a compaction.
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

    /// A `Published` change for `event` with the durable subscribers that
    /// hold it now, or `None` if none does (compaction copies it forward).
    pub fn rewrite_record(&self, topic: &str, event: &Arc<Event>) -> Option<Change> {
        let tid = *self.topic_ids.get(topic)?;
        let t = &self.topics[tid];
        let slot = t.slot(event.id())?;
        if slot.event.seq != event.seq || slot.durable_holders == 0 {
            return None;
        }
        let holders = self.durable_holders(t, event.seq);
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
        match change {
            Change::TopicCreated { topic } => {
                self.topic_or_create(&topic, &mut fx);
            }
            Change::Subscribed {
                subscriber,
                topic,
                prefetch,
            } => {
                let sid = self.durable_subscriber(&subscriber);
                let tid = self.topic_or_create(&topic, &mut fx);
                match self.topics[tid].subscription(sid) {
                    Some(i) => self.topics[tid].subscriptions[i].prefetch = prefetch,
                    None => self.add_subscription(tid, sid, prefetch, false),
                }
            }
            Change::Unsubscribed { subscriber, topic } => {
                if let (Some(&sid), Some(&tid)) = (
                    self.names.get(subscriber.as_ref()),
                    self.topic_ids.get(topic.as_ref()),
                ) {
                    self.remove_subscription(tid, sid);
                }
            }
            Change::Published {
                topic,
                event,
                holders,
            } => {
                let tid = self.topic_or_create(&topic, &mut fx);
                self.next_seq = self.next_seq.max(event.seq.0 + 1);
                if self.topics[tid].slot(event.id()).is_some() {
                    // A copy written by compaction of an event we hold.
                    return;
                }
                let mut count = 0;
                for h in &holders {
                    let Some(&sid) = self.names.get(h.subscriber.as_ref()) else {
                        continue;
                    };
                    let t = &mut self.topics[tid];
                    if let Some(i) = t.subscription(sid)
                        && t.subscriptions[i].queue.push(event.clone(), h.delivered)
                    {
                        count += 1;
                    }
                }
                if count > 0 {
                    self.replay_events.insert(event.seq, event.clone());
                    self.insert_slot(tid, event, count, count);
                }
            }
            Change::Acked {
                subscriber,
                topic,
                seq,
            } => {
                if let Some((tid, i)) = self.durable_subscription(&subscriber, &topic)
                    && let Some(event) = self.replay_events.get(&seq).cloned()
                    && self.topics[tid].subscriptions[i]
                        .queue
                        .remove(seq)
                        .is_some()
                {
                    self.release(tid, &event, true);
                }
            }
            Change::Delivered {
                subscriber,
                topic,
                seq,
            } => {
                if let Some((tid, i)) = self.durable_subscription(&subscriber, &topic) {
                    self.topics[tid].subscriptions[i].queue.mark_delivered(seq);
                }
            }
        }
    }

    /// Ends a replay: restores queue order and marks every replayed event durable.
    pub fn finish_replay(&mut self) {
        self.replay_events = FxHashMap::default();
        for t in &mut self.topics {
            for s in &mut t.subscriptions {
                s.queue.sort_if_needed();
            }
        }
        self.durable = self.last_seq();
    }

    /// The seed's JSON view of one topic: subscriber name → its pending
    /// events in delivery order, as `(event, delivered_before)`. Durable
    /// subscribers only.
    pub fn pending_by_subscriber(&self, topic: &str) -> Option<Vec<SubscriberQueue>> {
        let tid = *self.topic_ids.get(topic)?;
        let t = &self.topics[tid];
        let mut out = Vec::new();
        for s in &t.subscriptions {
            let Some(name) = self.durable_name(s.subscriber) else {
                continue;
            };
            let mut events: Vec<Arc<Event>> = s.queue.iter().map(|(e, _)| e.clone()).collect();
            events.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.seq.cmp(&b.seq)));
            out.push((name, events));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Some(out)
    }

    /// A durable subscriber's subscription, by names (replay).
    fn durable_subscription(&self, subscriber: &str, topic: &str) -> Option<(TopicId, usize)> {
        let sid = *self.names.get(subscriber)?;
        let tid = *self.topic_ids.get(topic)?;
        Some((tid, self.topics[tid].subscription(sid)?))
    }

    fn durable_holders(&self, t: &Topic, seq: Seq) -> Vec<Holder> {
        let mut holders = Vec::new();
        for s in &t.subscriptions {
            let Some(name) = self.durable_name(s.subscriber) else {
                continue;
            };
            if let Some(state) = s.queue.state(seq) {
                let delivered = match state {
                    EntryState::InFlight => true,
                    EntryState::Queued { delivered_before } => delivered_before,
                };
                holders.push(Holder {
                    subscriber: name,
                    delivered,
                });
            }
        }
        holders
    }
}
