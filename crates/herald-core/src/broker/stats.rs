//! `topics`, `stats` and `peek`: read-only views (`docs/protocol.md` 8, 12.7).

use super::subscription::SubKind;
use super::*;
use crate::queue::EntryView;
use herald_proto::stats as wire;
use herald_proto::{PeekEntry, PeekState, PeekTarget};

/// Counts of one topic now, and its counters since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicStats {
    /// Subscriptions on the topic (durable ones that are away and groups
    /// without members included).
    pub subscribers: usize,
    /// Deliverable queued events, summed over subscriptions.
    pub pending: usize,
    /// Delivered and not acknowledged, summed likewise.
    pub in_flight: usize,
    /// Delayed, summed likewise.
    pub delayed: usize,
    /// Counters since the broker started.
    pub counters: TopicCounters,
}

/// One subscription, as `stats <topic>` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionStats {
    /// Its kind and name.
    pub kind: SubKind,
    /// Connected members.
    pub members: usize,
    /// Prefetch (not for a group: its members each have their own).
    pub prefetch: Option<u16>,
    /// Deliverable queued events.
    pub pending: usize,
    /// In flight.
    pub in_flight: usize,
    /// Delayed.
    pub delayed: usize,
    /// The options of the last `sub`.
    pub options: SubOptions,
    /// Now minus the timestamp of the oldest deliverable queued event.
    pub oldest_ms: u64,
}

/// One connection as the broker sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionView {
    /// The durable name it holds, if any.
    pub name: Option<Arc<str>>,
    /// The topics it is subscribed to.
    pub subscriptions: Vec<Arc<str>>,
    /// Events it holds in flight, over all its subscriptions.
    pub in_flight: usize,
}

/// What `peek` found (each entry as [`EntryView`]), with the topic name.
#[derive(Debug, Clone)]
pub struct PeekView {
    /// Topic name.
    pub topic: Arc<str>,
    /// The entries, in `peek` order.
    pub entries: Vec<EntryView>,
}

impl Broker {
    /// Counters of one topic.
    pub fn topic_stats(&self, topic: &str) -> Option<TopicStats> {
        let tid = *self.topic_ids.get(topic)?;
        Some(self.stats_of(&self.topics[tid]))
    }

    fn stats_of(&self, t: &Topic) -> TopicStats {
        let mut stats = TopicStats {
            subscribers: t.subs.len(),
            counters: t.counters,
            ..Default::default()
        };
        for s in t.subs.iter().filter_map(|&k| self.sub(k)) {
            stats.pending += s.queue.queued();
            stats.in_flight += s.queue.in_flight();
            stats.delayed += s.queue.delayed();
        }
        stats
    }

    /// Whether `topic` exists.
    pub fn has_topic(&self, topic: &str) -> bool {
        self.topic_ids.contains_key(topic)
    }

    /// Every topic with its [`TopicStats`], in no particular order: one
    /// pass over the topics, for a metrics scrape of many topics.
    pub fn all_topic_stats(&self) -> Vec<(Arc<str>, TopicStats)> {
        self.topics
            .iter()
            .map(|t| (t.name.clone(), self.stats_of(t)))
            .collect()
    }

    /// The counters of every topic added up: the broker's totals since start.
    pub fn totals(&self) -> TopicCounters {
        let mut total = TopicCounters::default();
        for t in &self.topics {
            let c = &t.counters;
            total.published += c.published;
            total.duplicates += c.duplicates;
            total.delivered += c.delivered;
            total.redelivered += c.redelivered;
            total.acked += c.acked;
            total.dead_lettered += c.dead_lettered;
            total.dead_dropped += c.dead_dropped;
            total.expired += c.expired;
            total.evicted += c.evicted;
        }
        total
    }

    /// The subscriptions of one topic, as `stats <topic>` lists them.
    pub fn subscription_stats(&self, topic: &str, now: u64) -> Option<Vec<SubscriptionStats>> {
        let tid = *self.topic_ids.get(topic)?;
        let mut out = Vec::new();
        for s in self.topics[tid].subs.iter().filter_map(|&k| self.sub(k)) {
            out.push(SubscriptionStats {
                kind: s.kind.clone(),
                members: s.members.len(),
                prefetch: match s.kind {
                    SubKind::Group(_) => None,
                    _ => Some(s.prefetch),
                },
                pending: s.queue.queued(),
                in_flight: s.queue.in_flight(),
                delayed: s.queue.delayed(),
                options: (*s.options).clone(),
                oldest_ms: s
                    .queue
                    .oldest_queued_timestamp()
                    .map_or(0, |t| now.saturating_sub(t)),
            });
        }
        out.sort_by_key(|s| s.kind.display_name());
        Some(out)
    }

    /// Topic names, sorted.
    pub fn topic_names(&self) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = self.topics.iter().map(|t| t.name.clone()).collect();
        names.sort();
        names
    }

    /// What the broker knows of one connection (for the HTTP API).
    pub fn connection_view(&self, conn: ConnId) -> Option<ConnectionView> {
        let c = self.conns.get(&conn)?;
        let mut view = ConnectionView {
            name: c.name.clone(),
            ..Default::default()
        };
        for &(tid, key) in &c.subs {
            view.subscriptions.push(self.topics[tid].name.clone());
            if let Some(m) = self.sub(key).and_then(|s| s.member(conn)) {
                view.in_flight += m.in_flight as usize;
            }
        }
        Some(view)
    }

    pub(super) fn topics_json(&self) -> String {
        let names: Vec<&str> = {
            let mut v: Vec<&str> = self.topics.iter().map(|t| t.name.as_ref()).collect();
            v.sort_unstable();
            v
        };
        serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
    }

    /// The `stats` reply: every topic, or only `only` with its
    /// subscriptions (the wire shape is herald-proto's [`wire::Stats`]).
    pub fn stats(&self, only: Option<&str>, now: u64) -> wire::Stats {
        let mut out = wire::Stats::default();
        for name in self.topic_names() {
            if only.is_some_and(|o| o != name.as_ref()) {
                continue;
            }
            let Some(s) = self.topic_stats(&name) else {
                continue;
            };
            let mut topic = wire_topic_stats(&s);
            if only.is_some() {
                topic.subscriptions = self
                    .subscription_stats(&name, now)
                    .map(|subs| subs.iter().map(wire_subscription_stats).collect());
            }
            out.topics.insert(name.to_string(), topic);
        }
        out
    }

    pub(super) fn stats_json(&self, only: Option<&str>, now: u64) -> String {
        serde_json::to_string(&self.stats(only, now)).unwrap_or_else(|_| "{}".into())
    }

    pub(super) fn peek(
        &mut self,
        conn: ConnId,
        topic: &str,
        n: u16,
        target: PeekTarget,
        now: u64,
        fx: &mut Effects,
    ) {
        let key = self.topic_ids.get(topic).and_then(|&tid| match &target {
            PeekTarget::Own => self.conns.get(&conn)?.sub_on(tid),
            PeekTarget::Sub(name) => self
                .named_sub(tid, name)
                .filter(|&k| matches!(self.sub(k).map(|s| &s.kind), Some(SubKind::Durable(_)))),
            PeekTarget::Group(name) => self
                .named_sub(tid, name)
                .filter(|&k| matches!(self.sub(k).map(|s| &s.kind), Some(SubKind::Group(_)))),
        });
        let Some(view) = key.and_then(|k| self.peek_view(k, usize::from(n))) else {
            fx.error(
                conn,
                ErrorCode::NotSubscribed,
                format!("no such subscription on '{topic}'"),
            );
            return;
        };
        fx.reply(conn, Reply::Json(peek_json(&view, now)));
    }

    /// Up to `n` entries of subscription `key` as `peek` shows them.
    fn peek_view(&self, key: SubKey, n: usize) -> Option<PeekView> {
        let s = self.sub(key)?;
        Some(PeekView {
            topic: self.topics[s.topic].name.clone(),
            entries: s.queue.peek(n, s.options.age_ms),
        })
    }

    /// `peek` of a durable subscriber's (`group` false) or a group's
    /// subscription by name, for the HTTP API.
    pub fn peek_named(&self, topic: &str, name: &str, group: bool, n: usize) -> Option<PeekView> {
        let tid = *self.topic_ids.get(topic)?;
        let key = self.named_sub(tid, name)?;
        let is_group = matches!(self.sub(key)?.kind, SubKind::Group(_));
        if is_group != group {
            return None;
        }
        self.peek_view(key, n)
    }
}

fn wire_topic_stats(s: &TopicStats) -> wire::TopicStats {
    let c = &s.counters;
    wire::TopicStats {
        subscribers: s.subscribers as u64,
        pending: s.pending as u64,
        in_flight: s.in_flight as u64,
        published: c.published,
        delayed: s.delayed as u64,
        redelivered: c.redelivered,
        dead_lettered: c.dead_lettered,
        dead_dropped: c.dead_dropped,
        expired: c.expired,
        evicted: c.evicted,
        subscriptions: None,
    }
}

fn wire_subscription_stats(s: &SubscriptionStats) -> wire::SubscriptionStats {
    let (name, group) = match &s.kind {
        SubKind::Group(group) => (None, Some(group.to_string())),
        other => (Some(other.display_name()), None),
    };
    wire::SubscriptionStats {
        name,
        group,
        members: s.members as u64,
        prefetch: s.prefetch,
        pending: s.pending as u64,
        in_flight: s.in_flight as u64,
        delayed: s.delayed as u64,
        options: s.options.clone(),
        oldest_ms: s.oldest_ms,
    }
}

/// The `peek` reply: the entries as herald-proto's [`PeekEntry`], each
/// event as the delivery it would be sent as next.
pub fn peek_json(view: &PeekView, now: u64) -> String {
    let entries: Vec<PeekEntry> = view
        .entries
        .iter()
        .map(|e| {
            let state = match e.state {
                EntryState::InFlight => PeekState::InFlight,
                EntryState::Queued => PeekState::Queued,
                EntryState::Delayed => PeekState::Delayed,
            };
            let delivery = herald_proto::Delivery {
                topic: &view.topic,
                id: e.event.id(),
                priority: e.event.priority,
                fields: e.event.fields(),
                timestamp: e.event.timestamp,
                deliveries: e.deliveries + 1,
            };
            PeekEntry::new(
                state,
                e.deliveries,
                e.deadline.map(|d| d.saturating_sub(now)),
                e.due.map(|d| d.saturating_sub(now)),
                &delivery,
            )
        })
        .collect();
    serde_json::to_string(&entries).unwrap_or_else(|_| "[]".into())
}
