//! An async (tokio) client for the Herald message broker.
//!
//! ```no_run
//! use herald_client::{Client, Event};
//!
//! # async fn demo() -> Result<(), herald_client::Error> {
//! let client = Client::connect("127.0.0.1:8000").await?;
//! client.create("tweets").await?;
//! let mut tweets = client.subscribe("tweets", 1).await?;
//! client.publish("tweets", &Event::new("1", "tweet 1").priority(3)).await?;
//! let delivery = tweets.next().await.expect("subscribed");
//! assert_eq!(delivery.msg, "tweet 1");
//! delivery.ack().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`client`]: [`Client`] and [`ClientOptions`]; builds command lines and
//!   interprets replies.
//! - [`options`]: [`SubscribeOptions`], the builder of a `sub` (groups,
//!   deadlines, retries, dead letters, limits).
//! - `driver` (private): the one task per connection that owns the socket,
//!   pipelines commands, matches replies first-in-first-out, routes
//!   deliveries by topic and reconnects durable subscribers.
//! - [`delivery`]: [`Delivery`] (ack, nack, touch) and [`Subscription`].
//! - [`event`]: the [`Event`] builder (with its time fields) and the
//!   [`Publish`] outcome.
//! - [`peek`]: [`Peeked`], one event of a `peek`.
//! - [`error`]: [`Error`], whose [`Error::code`] gives the wire code of any
//!   rejection.
//!
//! The wire format itself (framing, command lines, replies, deliveries,
//! error codes, `stats` JSON, name rules) comes from `herald-proto`, shared
//! with the server: this crate writes and reads no protocol text by hand.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod delivery;
mod driver;
pub mod error;
pub mod event;
pub mod options;
pub mod peek;
pub mod tls;

pub use client::{Client, ClientOptions, Credentials, Stats, SubscriptionStats, TopicStats};
pub use delivery::{Delivery, Subscription};
pub use error::{Error, Result};
pub use event::{Event, Publish};
pub use herald_proto::{
    DeadInfo, DeadReason, ErrorCode, NackAction, Overflow, PeekState, PeekTarget, ReplyMode,
};
pub use options::SubscribeOptions;
pub use peek::Peeked;
/// The TLS library, to build a [`TlsOptions`] configuration by hand.
pub use rustls;
pub use tls::TlsOptions;
