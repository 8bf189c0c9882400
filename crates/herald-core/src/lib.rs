//! The Herald broker state machine, with no IO.
//!
//! - [`event`]: an accepted [`Event`] and its [`Seq`].
//! - [`queue`]: [`PendingQueue`], one subscriber's unacknowledged events on a topic.
//! - [`broker`]: [`Broker`], topics and subscribers; commands in, [`Effects`] out.
//! - [`change`]: [`Change`], the state changes the log records and replays.
//! - [`record`]: a [`Change`] as the payload bytes of a log record, and back.
//!
//! No tokio, no clock, no files: the server passes time in and takes effects
//! out, which is what makes the broker unit- and property-testable.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod broker;
pub mod change;
pub mod event;
pub mod queue;
pub mod record;

pub use broker::{Broker, ConnId, Effects, Output, TopicStats};
pub use change::{Change, Holder};
pub use event::{Event, Seq};
pub use herald_proto::Command;
pub use queue::PendingQueue;
pub use record::RecordError;
