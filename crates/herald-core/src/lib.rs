//! The Herald broker state machine, with no IO.
//!
//! - [`event`]: an accepted [`Event`] and its [`Seq`].
//! - [`queue`]: [`PendingQueue`], one subscription's queued, delayed and
//!   in-flight events on a topic.
//! - [`broker`]: [`Broker`], topics, subscriptions (anonymous, durable,
//!   groups) and time; commands in, [`Effects`] out.
//! - [`change`]: [`Change`], the state changes the log records and replays.
//! - [`record`]: a [`Change`] as the payload bytes of a log record, and back.
//!
//! No tokio, no clock, no files: the server passes time in and takes effects
//! out, which is what makes the broker unit- and property-testable.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod broker;
pub mod change;
pub mod conn;
pub mod event;
pub mod queue;
pub mod record;

pub use broker::stats::{SubscriptionStats, TopicStats};
pub use broker::{Broker, Effects, Output, TopicCounters};
pub use change::{Change, Holder, RemoveReason};
pub use conn::ConnId;
pub use event::{Event, Seq};
pub use herald_proto::Command;
pub use queue::PendingQueue;
pub use record::RecordError;
