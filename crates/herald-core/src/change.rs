//! State changes that must survive a restart, as values.
//!
//! The broker returns them from every command; the server hands them to the
//! log, and recovery feeds them back through [`Broker::replay`](crate::Broker::replay).
//! Only durable (named) subscribers appear here: anonymous ones die with their
//! connection, so nothing of theirs is worth a disk write. Events are always
//! recorded, so `+OK published` means the same thing for every topic.

use crate::event::{Event, Seq};
use std::sync::Arc;

/// A durable subscriber holding an event in its queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Subscriber name.
    pub subscriber: Arc<str>,
    /// Whether it was delivered to this subscriber before (redelivery flag).
    pub delivered: bool,
}

/// One persisted state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A topic came into existence (by `pub` or `create`).
    TopicCreated {
        /// Topic name.
        topic: Arc<str>,
    },
    /// A durable subscriber subscribed, or changed its prefetch.
    Subscribed {
        /// Subscriber name.
        subscriber: Arc<str>,
        /// Topic name.
        topic: Arc<str>,
        /// Prefetch, 1..=65535.
        prefetch: u16,
    },
    /// A durable subscriber unsubscribed; its queue for the topic is gone.
    Unsubscribed {
        /// Subscriber name.
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
        /// Durable subscribers whose queues hold it.
        holders: Vec<Holder>,
    },
    /// A durable subscriber acknowledged an event.
    Acked {
        /// Subscriber name.
        subscriber: Arc<str>,
        /// Topic name.
        topic: Arc<str>,
        /// The event.
        seq: Seq,
    },
    /// An event was delivered to a durable subscriber (only sets the
    /// `redelivered` flag after a restart, so it is written best-effort).
    Delivered {
        /// Subscriber name.
        subscriber: Arc<str>,
        /// Topic name.
        topic: Arc<str>,
        /// The event.
        seq: Seq,
    },
}

impl Change {
    /// Whether a reply that depends on this change must wait for fdatasync
    /// under `--fsync always`. Acks and deliveries only wait for the write:
    /// losing one to a power cut costs a redelivery, never a loss.
    pub fn needs_sync(&self) -> bool {
        !matches!(self, Change::Acked { .. } | Change::Delivered { .. })
    }
}
