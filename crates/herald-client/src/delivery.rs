//! What a subscriber receives: [`Delivery`] values through a [`Subscription`].
//!
//! The connection task reads each delivery line once (with
//! `herald_proto::ParsedDelivery`, the same definition the broker writes
//! with), routes it by its `topic` field to the subscription's channel, and
//! gives it a handle to the connection so that [`Delivery::ack`],
//! [`Delivery::nack`] and [`Delivery::touch`] need nothing else.

use crate::driver::Handle;
use crate::error::{Error, Result};
use crate::event::millis_ceil;
use crate::options::SubscribeOptions;
use herald_proto::{DeadInfo, NackAction, ParsedDelivery};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// One event delivered to a subscription (`docs/protocol.md` §5).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The topic it was published to.
    pub topic: String,
    /// Its id (an integer id comes as its decimal string).
    pub id: String,
    /// 0 to 255.
    pub priority: u8,
    /// The payload as published.
    pub msg: serde_json::Value,
    /// When the broker accepted it, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// `true` when it was delivered before (before a disconnect, a
    /// broker restart, a missed deadline or a `nack`) and not
    /// acknowledged. Same as [`Delivery::redelivered()`].
    pub redelivered: bool,
    /// The delivery line exactly as the broker sent it (one JSON object),
    /// with every field the publisher added.
    pub raw: String,
    deliveries: u32,
    dead: Option<DeadInfo>,
    handle: Option<Handle>,
}

impl Delivery {
    /// Parses a delivery line (with or without its CRLF).
    ///
    /// # Errors
    /// [`Error::Protocol`] if the line is not a delivery object.
    pub fn parse(line: &str) -> Result<Delivery> {
        let parsed = ParsedDelivery::parse(line).map_err(|e| Error::Protocol(e.to_string()))?;
        Delivery::from_parsed(&parsed, line)
    }

    /// The delivery of `parsed`, read from `line`.
    pub(crate) fn from_parsed(parsed: &ParsedDelivery<'_>, line: &str) -> Result<Delivery> {
        let msg = match parsed.msg {
            Some(raw) => serde_json::from_str(raw)
                .map_err(|e| Error::Protocol(format!("bad msg in a delivery: {e}")))?,
            None => serde_json::Value::Null,
        };
        Ok(Delivery {
            topic: parsed.topic.to_string(),
            id: parsed.id.to_string(),
            priority: parsed.priority,
            msg,
            timestamp: parsed.timestamp,
            redelivered: parsed.redelivered,
            raw: line.trim_end_matches(['\r', '\n']).to_string(),
            deliveries: parsed.deliveries,
            dead: parsed.dead.clone(),
            handle: None,
        })
    }

    /// The times this subscription has been sent this event, this time
    /// included: 1 for a first delivery, 2 or more for a redelivery (a
    /// version 1 broker does not count: its redeliveries read as 2).
    pub fn deliveries(&self) -> u32 {
        self.deliveries
    }

    /// For a dead letter (an event of a dead topic, `docs/protocol.md`
    /// §12.6): where it came from and why it died.
    pub fn dead(&self) -> Option<&DeadInfo> {
        self.dead.as_ref()
    }

    /// Whether the subscription had it before: a disconnect, a restart, a
    /// missed deadline or a `nack` gave it back (`deliveries() >= 2`).
    pub fn redelivered(&self) -> bool {
        self.redelivered
    }

    pub(crate) fn with_handle(mut self, handle: Handle) -> Delivery {
        self.handle = Some(handle);
        self
    }

    /// Acknowledges this delivery (`ack <topic> <id>`), so the broker
    /// removes it and sends the next one.
    ///
    /// The command is queued for sending when `ack` is called; awaiting the
    /// future waits for the broker's `+OK acked`. Dropping the future
    /// without awaiting it still acknowledges (see [`Delivery::send_ack`]).
    ///
    /// # Errors
    /// [`Error::Server`] with `no_event` if it was already acknowledged,
    /// `not_subscribed` after an unsubscribe; [`Error::Closed`] if the
    /// connection is gone.
    pub fn ack(&self) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        let call = match &self.handle {
            Some(handle) => Ok(handle.ack(&self.topic, &self.id)),
            None => Err(Error::Closed),
        };
        async move { call?.await }
    }

    /// Acknowledges without waiting for the broker's reply: the command is
    /// queued and this returns at once. A failure (the event was already
    /// acknowledged, the connection is gone) is not reported; the event is
    /// then redelivered or was already gone, which is what at-least-once
    /// consumers expect.
    pub fn send_ack(&self) {
        // The command is queued by `ack` itself; the future only waits for
        // the reply, so dropping it costs nothing but the answer.
        drop(self.ack());
    }

    /// Gives the delivery back (`nack <topic> <id>`, `docs/protocol.md`
    /// §12.5): it goes back to the subscription's queue, at its place by
    /// priority, after the subscription's `backoff` if it has one, and is
    /// delivered again (in a group, maybe to another member). With
    /// `max_deliveries`, a nack of the last allowed delivery dead-letters
    /// it. Queued when called, like [`Delivery::ack`].
    ///
    /// # Errors
    /// [`Error::Server`] with `no_event` if it is no longer in flight here
    /// (acknowledged, or returned after its deadline), `not_subscribed`
    /// after an unsubscribe; [`Error::Closed`].
    pub fn nack(&self) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        self.nack_with(NackAction::Return)
    }

    /// Gives the delivery back to be delivered again after `delay` (1 ms
    /// to 30 days, rounded up to a whole ms), whatever the subscription's
    /// `backoff`. The delay survives a broker restart.
    ///
    /// # Errors
    /// As [`Delivery::nack`]; [`Error::Invalid`] for a delay out of range.
    pub fn nack_after(
        &self,
        delay: Duration,
    ) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        self.nack_with(NackAction::Delay(millis_ceil(delay)))
    }

    /// Rejects the delivery: it is dead-lettered at once with reason
    /// `rejected` (to the subscription's dead topic, `<topic>.dead` by
    /// default).
    ///
    /// # Errors
    /// As [`Delivery::nack`].
    pub fn nack_dead(&self) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        self.nack_with(NackAction::Dead)
    }

    fn nack_with(
        &self,
        action: NackAction,
    ) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        let call = match &self.handle {
            Some(handle) => Ok(handle.nack(&self.topic, &self.id, action)),
            None => Err(Error::Closed),
        };
        async move { call?.await }
    }

    /// Restarts the ack deadline (`touch`, §12.4) for another `wait` of the
    /// subscription; returns the time left. For work that takes longer than
    /// `wait`: touch before the deadline, and the event is not returned.
    ///
    /// # Errors
    /// [`Error::Server`] with `bad_state` if the subscription has no
    /// `wait`, `no_event` if it is no longer in flight here;
    /// [`Error::Closed`].
    pub fn touch(&self) -> impl Future<Output = Result<Duration>> + Send + 'static + use<> {
        self.touch_with(None)
    }

    /// Restarts the ack deadline: it now expires `duration` from now (1 ms
    /// to 30 days, rounded up to a whole ms), whatever the subscription's
    /// `wait`. Returns the time left.
    ///
    /// # Errors
    /// As [`Delivery::touch`]; [`Error::Invalid`] for a duration out of
    /// range.
    pub fn touch_for(
        &self,
        duration: Duration,
    ) -> impl Future<Output = Result<Duration>> + Send + 'static + use<> {
        self.touch_with(Some(millis_ceil(duration)))
    }

    fn touch_with(
        &self,
        ms: Option<u64>,
    ) -> impl Future<Output = Result<Duration>> + Send + 'static + use<> {
        let call = match &self.handle {
            Some(handle) => Ok(handle.touch(&self.topic, &self.id, ms)),
            None => Err(Error::Closed),
        };
        async move { call?.await }
    }

    /// The whole delivery as a JSON value (every field, including those
    /// the publisher added beyond `id`, `priority` and `msg`).
    ///
    /// # Errors
    /// Never for a line the broker sent; [`Error::Protocol`] otherwise.
    pub fn to_value(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.raw).map_err(|e| Error::Protocol(e.to_string()))
    }
}

/// The deliveries of one topic to this client, in the broker's order
/// (highest priority first, then oldest first; a group's order is kept
/// across its members).
///
/// Read it with [`Subscription::next`] or as a [`futures_core::Stream`].
/// It ends (`None`) when the subscription ends: after
/// [`Subscription::unsubscribe`], after the connection closes for good, or
/// if the same topic is subscribed again on this client (the newer
/// subscription gets the deliveries). With reconnecting on
/// ([`crate::ClientOptions::reconnect`]) it survives a dropped connection.
///
/// Dropping it does not unsubscribe (a durable subscriber keeps its queue
/// on the broker); deliveries that arrive for it afterwards are discarded
/// by the client and stay unacknowledged.
#[derive(Debug)]
pub struct Subscription {
    topic: String,
    options: SubscribeOptions,
    rx: mpsc::UnboundedReceiver<Delivery>,
    handle: Handle,
}

impl Subscription {
    pub(crate) fn new(
        topic: String,
        options: SubscribeOptions,
        rx: mpsc::UnboundedReceiver<Delivery>,
        handle: Handle,
    ) -> Subscription {
        Subscription {
            topic,
            options,
            rx,
            handle,
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The prefetch and options it was subscribed with.
    pub fn options(&self) -> &SubscribeOptions {
        &self.options
    }

    /// The group it is a member of, if any.
    pub fn group(&self) -> Option<&str> {
        self.options.group_name()
    }

    /// The next delivery; `None` once the subscription has ended.
    pub async fn next(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }

    /// A delivery that has already arrived, without waiting.
    pub fn try_next(&mut self) -> Option<Delivery> {
        self.rx.try_recv().ok()
    }

    /// Ends the subscription (`unsub <topic>`): the broker discards this
    /// subscriber's queue for the topic, or, for a group member, takes the
    /// member out of the group (the group and its queue stay).
    ///
    /// # Errors
    /// As [`crate::Client::unsubscribe`].
    pub async fn unsubscribe(self) -> Result<()> {
        self.handle.unsubscribe(&self.topic, None).await
    }
}

impl futures_core::Stream for Subscription {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_first_delivery() {
        let line = r#"{"topic":"tweets","id":"1","priority":3,"msg":"tweet 1","lang":"en","timestamp":1650054011933}"#;
        let d = Delivery::parse(line).unwrap();
        assert_eq!(d.topic, "tweets");
        assert_eq!(d.id, "1");
        assert_eq!(d.priority, 3);
        assert_eq!(d.msg, "tweet 1");
        assert_eq!(d.timestamp, 1650054011933);
        assert!(!d.redelivered);
        assert_eq!(d.deliveries(), 1);
        assert_eq!(d.raw, line);
        assert_eq!(d.to_value().unwrap()["lang"], "en");
    }

    #[test]
    fn parses_a_redelivery_with_an_integer_id() {
        let line =
            r#"{"topic":"t","id":7,"priority":0,"msg":{"a":1},"timestamp":1,"redelivered":true}"#;
        let d = Delivery::parse(line).unwrap();
        assert_eq!(d.id, "7");
        assert!(d.redelivered);
        assert_eq!(d.msg["a"], 1);
        assert_eq!(d.deliveries(), 2);
    }

    #[test]
    fn parses_a_counted_redelivery() {
        let line = r#"{"topic":"t","id":"7","priority":0,"msg":1,"timestamp":1,"redelivered":true,"deliveries":5}"#;
        let d = Delivery::parse(&format!("{line}\r\n")).unwrap();
        assert!(d.redelivered);
        assert_eq!(d.deliveries(), 5);
        assert_eq!(d.raw, line);
    }

    #[test]
    fn a_dead_letter_says_where_it_came_from() {
        let line = concat!(
            r#"{"topic":"jobs.dead","id":"workers/p1","priority":0,"msg":"poison","#,
            r#""dead":{"topic":"jobs","id":"p1","subscription":"workers","reason":"max_deliveries","deliveries":3,"timestamp":7},"timestamp":9}"#
        );
        let d = Delivery::parse(line).unwrap();
        let dead = d.dead().unwrap();
        assert_eq!((dead.topic.as_str(), dead.id.as_str()), ("jobs", "p1"));
        assert_eq!(dead.reason, herald_proto::DeadReason::MaxDeliveries);
        assert_eq!((dead.deliveries, dead.timestamp), (3, 7));
        assert!(
            Delivery::parse(r#"{"topic":"t","id":"1","msg":0}"#)
                .unwrap()
                .dead()
                .is_none()
        );
    }

    #[test]
    fn a_line_that_is_not_a_delivery_is_a_protocol_error() {
        for line in ["{", "{}", r#"{"topic":1,"id":"x"}"#, "[1]"] {
            assert!(
                matches!(Delivery::parse(line), Err(Error::Protocol(_))),
                "{line}"
            );
        }
    }

    #[tokio::test]
    async fn ack_nack_touch_without_a_connection_are_closed() {
        let d = Delivery::parse(r#"{"topic":"t","id":"1","msg":0}"#).unwrap();
        assert!(matches!(d.ack().await, Err(Error::Closed)));
        assert!(matches!(d.nack().await, Err(Error::Closed)));
        assert!(matches!(d.nack_dead().await, Err(Error::Closed)));
        assert!(matches!(
            d.nack_after(Duration::from_secs(1)).await,
            Err(Error::Closed)
        ));
        assert!(matches!(d.touch().await, Err(Error::Closed)));
        assert!(matches!(
            d.touch_for(Duration::from_secs(1)).await,
            Err(Error::Closed)
        ));
    }
}
