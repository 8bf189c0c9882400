//! State changes that must survive a restart, as values.
//!
//! The broker returns them from every command; the server encodes them
//! (the record module) and hands the bytes to the log, and recovery feeds
//! them back through [`Broker::replay`](crate::Broker::replay). Only durable
//! subscriptions (named subscribers and groups) appear by name: anonymous
//! ones die with their connection, so nothing of theirs is worth a disk
//! write. Events are always recorded, so `+OK published` means the same
//! thing for every topic.
//!
//! Not recorded, on purpose: group membership, which member holds what,
//! ack deadlines (recovery returns what was in flight, `docs/protocol.md`
//! 12.3), and expiry removals (recovery drops what has expired by then).

use crate::event::{Event, Seq};
use herald_proto::SubOptions;
use std::sync::Arc;

/// A durable subscription holding an event in its queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Subscriber or group name.
    pub subscriber: Arc<str>,
    /// Times this subscription has been sent the event.
    pub deliveries: u32,
    /// Not deliverable before this time (ms since epoch), if delayed.
    pub due: Option<u64>,
}

/// Why an event left a subscription other than by `ack` (12.6): the
/// `dead.reason` of its dead letter, defined once in herald-proto.
pub type RemoveReason = herald_proto::dead::DeadReason;

/// One persisted state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A topic came into existence (by `pub`, `create` or a dead letter).
    TopicCreated {
        /// Topic name.
        topic: Arc<str>,
    },
    /// `create <topic> ttl=<dur>` set the topic's default time to live.
    TopicConfigured {
        /// Topic name.
        topic: Arc<str>,
        /// Default time to live of events published from now on.
        ttl_ms: Option<u64>,
    },
    /// A durable subscriber or a group subscribed, or changed its options.
    Subscribed {
        /// Subscriber or group name.
        subscriber: Arc<str>,
        /// Topic name.
        topic: Arc<str>,
        /// A group (`group=`), not a named subscriber.
        group: bool,
        /// Prefetch of a named subscriber, 1..=65535 (groups: unused).
        prefetch: u16,
        /// The options the `sub` gave.
        options: SubOptions,
    },
    /// A durable subscription ended (`unsub`, group deletion); its queue
    /// for the topic is gone.
    Unsubscribed {
        /// Subscriber or group name.
        subscriber: Arc<str>,
        /// Topic name.
        topic: Arc<str>,
    },
    /// An event was accepted and entered these durable queues. Compaction
    /// writes it again with the holders left at that moment; replay ignores
    /// a second record for an event it already holds (same topic and id).
    Published {
        /// Topic name.
        topic: Arc<str>,
        /// The event.
        event: Arc<Event>,
        /// Durable subscriptions whose queues hold it.
        holders: Vec<Holder>,
    },
    /// A durable subscription acknowledged an event.
    Acked {
        /// Subscriber or group name.
        subscriber: Arc<str>,
        /// Topic name.
        topic: Arc<str>,
        /// The event.
        seq: Seq,
    },
    /// An event was delivered to a durable subscription: one more to its
    /// delivery count. Written best-effort (a lost one costs an undercount).
    Delivered {
        /// Subscriber or group name.
        subscriber: Arc<str>,
        /// Topic name.
        topic: Arc<str>,
        /// The event.
        seq: Seq,
    },
    /// An event of a durable subscription was returned delayed (`nack`
    /// with a duration, backoff): not deliverable before `due`.
    Delayed {
        /// Subscriber or group name.
        subscriber: Arc<str>,
        /// Topic name.
        topic: Arc<str>,
        /// The event.
        seq: Seq,
        /// Due time, ms since epoch.
        due: u64,
    },
    /// An event left a durable subscription without a dead letter
    /// (`dead=none`, an eviction, a duplicate dead letter).
    Removed {
        /// Subscriber or group name.
        subscriber: Arc<str>,
        /// Topic name.
        topic: Arc<str>,
        /// The event.
        seq: Seq,
        /// Why.
        reason: RemoveReason,
    },
    /// An event left a subscription and its dead letter was published to
    /// `dead_topic`: one record, so a crash leaves it in exactly one place.
    DeadLettered {
        /// The subscription it left, if durable (an anonymous one is not
        /// named in the log).
        subscriber: Option<Arc<str>>,
        /// Topic it left.
        topic: Arc<str>,
        /// The event that left.
        seq: Seq,
        /// Why.
        reason: RemoveReason,
        /// Where the dead letter went.
        dead_topic: Arc<str>,
        /// The dead letter.
        event: Arc<Event>,
        /// Durable subscriptions of the dead topic whose queues hold it.
        holders: Vec<Holder>,
    },
}

impl Change {
    /// Whether a reply that depends on this change must wait for fdatasync
    /// under `--fsync always`. What consumers say back (acks, deliveries,
    /// nacks and what they cause) only waits for the write: losing one to a
    /// power cut costs a redelivery, never a loss (`docs/protocol.md` 10).
    pub fn needs_sync(&self) -> bool {
        !matches!(
            self,
            Change::Acked { .. }
                | Change::Delivered { .. }
                | Change::Delayed { .. }
                | Change::Removed { .. }
                | Change::DeadLettered { .. }
        )
    }

    /// The new event this change publishes, if any: it may be delivered only
    /// once the record is durable.
    pub fn published_seq(&self) -> Option<Seq> {
        match self {
            Change::Published { event, .. } | Change::DeadLettered { event, .. } => Some(event.seq),
            _ => None,
        }
    }
}
