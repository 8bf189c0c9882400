//! A subscription: one queue of a topic and the connections it delivers to.
//!
//! Three kinds share one shape (`docs/protocol.md` 12.1-12.2): an anonymous
//! connection's own subscription (named `~<n>`, gone with the connection),
//! a durable subscriber's (named after it, one member at most: its
//! connection while it is subscribed), and a group's (named after the
//! group, any number of members, each with its own prefetch). Members are
//! connections; the next event goes to the member with the fewest events
//! in flight and a free slot, ties taken in turn.

use super::TopicId;
use crate::conn::ConnId;
use crate::queue::PendingQueue;
use std::sync::Arc;

pub use herald_proto::SubOptions;
use herald_proto::{DeadTarget, Overflow};

/// What kind of subscription, and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubKind {
    /// An anonymous connection's own subscription.
    Anonymous(ConnId),
    /// A durable (named) subscriber's subscription.
    Durable(Arc<str>),
    /// A competing-consumer group.
    Group(Arc<str>),
}

impl SubKind {
    /// The durable or group name; `None` for an anonymous subscription.
    pub fn name(&self) -> Option<&str> {
        match self {
            SubKind::Anonymous(_) => None,
            SubKind::Durable(n) | SubKind::Group(n) => Some(n),
        }
    }

    /// The name records use: durable and group subscriptions only.
    pub fn durable_name(&self) -> Option<&Arc<str>> {
        match self {
            SubKind::Anonymous(_) => None,
            SubKind::Durable(n) | SubKind::Group(n) => Some(n),
        }
    }

    /// Whether it survives its connections and restarts.
    pub fn is_durable(&self) -> bool {
        !matches!(self, SubKind::Anonymous(_))
    }

    /// The subscription's name as replies, stats and dead letters give it:
    /// the durable or group name, or `~<n>`.
    pub fn display_name(&self) -> String {
        match self {
            SubKind::Anonymous(conn) => format!("~{}", conn.0),
            SubKind::Durable(n) | SubKind::Group(n) => n.to_string(),
        }
    }
}

/// A connection receiving from a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member {
    pub conn: ConnId,
    pub prefetch: u16,
    pub in_flight: u32,
}

/// One subscription of a topic.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub topic: TopicId,
    pub kind: SubKind,
    /// The options the last `sub` gave (12.1: a `sub` states the whole
    /// subscription), the `group` option included for groups.
    pub options: Arc<SubOptions>,
    /// The prefetch the last `sub` gave, for the log snapshot and `stats`
    /// (a group's members each have their own; see [`Member`]).
    pub prefetch: u16,
    pub members: Vec<Member>,
    /// Where the next tie between members starts (ties are taken in turn).
    pub turn: usize,
    pub queue: PendingQueue,
    /// Listed in `Broker::waiting` (its head is not durable yet).
    pub waiting: bool,
    /// The earliest time it is in the broker's timer heap for.
    pub scheduled: u64,
}

impl Subscription {
    pub fn new(topic: TopicId, kind: SubKind, options: SubOptions, prefetch: u16) -> Self {
        Subscription {
            topic,
            kind,
            options: Arc::new(options),
            prefetch,
            members: Vec::new(),
            turn: 0,
            queue: PendingQueue::new(),
            waiting: false,
            scheduled: u64::MAX,
        }
    }

    pub fn member(&self, conn: ConnId) -> Option<&Member> {
        self.members.iter().find(|m| m.conn == conn)
    }

    pub fn member_mut(&mut self, conn: ConnId) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.conn == conn)
    }

    /// The member the next event goes to: a free slot, the fewest in
    /// flight, ties taken in turn from `turn`. Does not advance the turn.
    pub fn next_member(&self) -> Option<usize> {
        let n = self.members.len();
        let mut best: Option<(u32, usize)> = None;
        for offset in 0..n {
            let i = (self.turn + offset) % n;
            let m = &self.members[i];
            if m.in_flight >= u32::from(m.prefetch) {
                continue;
            }
            if best.is_none_or(|(count, _)| m.in_flight < count) {
                best = Some((m.in_flight, i));
            }
        }
        best.map(|(_, i)| i)
    }

    /// Ack deadline of a delivery at `now`.
    pub fn deadline(&self, now: u64) -> Option<u64> {
        self.options.wait_ms.map(|w| now.saturating_add(w))
    }

    /// How long the `k`-th return of an event (k ≥ 1) holds it delayed
    /// (12.3): `backoff` by return number, the last value repeating.
    pub fn backoff_ms(&self, k: u32) -> Option<u64> {
        let backoff = self.options.backoff_ms.as_ref()?;
        let i = (k.max(1) as usize - 1).min(backoff.len().checked_sub(1)?);
        backoff.get(i).copied().filter(|&d| d > 0)
    }

    /// Whether an event returned after `deliveries` deliveries is
    /// dead-lettered rather than queued (12.6).
    pub fn is_exhausted(&self, deliveries: u32) -> bool {
        self.options
            .max_deliveries
            .is_some_and(|max| deliveries >= u32::from(max))
    }

    /// Whether adding `count` events of `bytes` msg bytes would take the
    /// subscription over a limit (13.4).
    pub fn would_exceed(&self, count: usize, bytes: u64) -> bool {
        let over_count = self
            .options
            .limit
            .is_some_and(|limit| self.queue.len() + count > limit as usize);
        let over_bytes = self
            .options
            .limit_bytes
            .is_some_and(|limit| self.queue.bytes() + bytes > limit);
        over_count || over_bytes
    }

    /// Whether it holds more than its limits allow.
    pub fn is_over_limit(&self) -> bool {
        self.would_exceed(0, 0)
    }

    /// `overflow=drop` (default `reject`).
    pub fn drops_on_overflow(&self) -> bool {
        matches!(self.options.overflow, Some(Overflow::Drop))
    }

    /// Where dead letters go for `reason` (12.6, 13.1, 13.4): `Some(topic)`,
    /// or `None` to drop. Retries that ran out and rejections use the
    /// default `<topic>.dead`; expiry and overflow only an explicit `dead=`.
    pub fn dead_topic(&self, topic: &str, explicit_only: bool) -> Option<String> {
        match &self.options.dead {
            Some(DeadTarget::Topic(t)) => Some(t.clone()),
            Some(DeadTarget::None) => None,
            None if explicit_only => None,
            None => {
                let name = format!("{topic}.dead");
                herald_proto::name::is_valid(&name).then_some(name)
            }
        }
    }
}
