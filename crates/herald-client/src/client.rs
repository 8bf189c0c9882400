//! [`Client`]: one connection to a broker, shared by any number of tasks.
//!
//! Each method builds its command line, checks what framing needs (names
//! and ids must be single tokens, so that no argument can smuggle a second
//! command onto the line) and hands the line to the connection task in
//! `driver`. Methods that return `impl Future` queue their command at the
//! call, before the first poll: calling `publish` ten thousand times and
//! then awaiting the futures pipelines ten thousand commands.

use crate::delivery::Subscription;
use crate::driver::{self, Handle, Kind, Settings};
use crate::error::{Error, Result};
use crate::event::Publish;
use herald_proto::{ErrorCode, name};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::net::ToSocketAddrs;
use tokio::sync::mpsc;

/// Longest event id, in bytes (PROTOCOL.md §3).
const MAX_ID_BYTES: usize = 256;

/// How to connect: as a durable subscriber, and whether to reconnect.
///
/// ```
/// use herald_client::ClientOptions;
/// let options = ClientOptions::new().name("bob").reconnect(true);
/// assert_eq!(options.name.as_deref(), Some("bob"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Sends `name <name>` right after the greeting, making the connection
    /// the durable subscriber of that name (PROTOCOL.md §6).
    pub name: Option<String>,
    /// After the connection drops, connect again (pausing 50 ms, doubling
    /// up to 2 s between attempts, for as long as the client is in use),
    /// name it again, resubscribe every subscription and resend every
    /// command that had not been answered. Subscriptions keep going, and a
    /// durable subscriber gets its unacknowledged events again, marked
    /// `redelivered`. A resent `pub` may be answered `duplicate`; a resent
    /// `ack` that the broker had already applied counts as success.
    pub reconnect: bool,
}

impl ClientOptions {
    /// Anonymous, no reconnecting.
    pub fn new() -> ClientOptions {
        ClientOptions::default()
    }

    /// Sets the durable subscriber name.
    pub fn name(mut self, name: impl Into<String>) -> ClientOptions {
        self.name = Some(name.into());
        self
    }

    /// Turns reconnecting on or off.
    pub fn reconnect(mut self, on: bool) -> ClientOptions {
        self.reconnect = on;
        self
    }
}

/// A connection to a Herald broker.
///
/// Cheap to clone: clones share the connection, and commands from every
/// clone are pipelined on it. The connection closes when the client, its
/// clones, its [`Subscription`]s and their deliveries are all dropped, or
/// at [`Client::close`].
///
/// ```no_run
/// use herald_client::{Client, Event, Publish};
///
/// # async fn demo() -> Result<(), herald_client::Error> {
/// let client = Client::connect("127.0.0.1:8000").await?;
/// client.create("tweets").await?;
/// let mut tweets = client.subscribe("tweets", 1).await?;
///
/// let outcome = client.publish("tweets", &Event::new("1", "tweet 1").priority(3)).await?;
/// assert_eq!(outcome, Publish::Published);
///
/// while let Some(delivery) = tweets.next().await {
///     println!("{} {}: {}", delivery.topic, delivery.id, delivery.msg);
///     delivery.ack().await?;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    handle: Handle,
}

/// `stats` of one topic (PROTOCOL.md §8).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct TopicStats {
    /// Subscribers of the topic, durable ones that are away included.
    #[serde(default)]
    pub subscribers: u64,
    /// Events queued and not in flight, summed over the subscribers.
    #[serde(default)]
    pub pending: u64,
    /// Events delivered and not acknowledged, summed over the subscribers.
    #[serde(default)]
    pub in_flight: u64,
    /// Events accepted since the broker started (duplicates not counted).
    #[serde(default)]
    pub published: u64,
    /// Fields added by newer brokers.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The reply to `stats`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Stats {
    /// Per topic, by name.
    #[serde(default)]
    pub topics: BTreeMap<String, TopicStats>,
    /// Fields added by newer brokers.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

fn check_topic(topic: &str) -> Result<()> {
    if name::is_valid(topic) {
        Ok(())
    } else {
        Err(Error::invalid(
            ErrorCode::BadTopic,
            format!(
                "topic name {topic:?} must be 1 to 128 bytes of A-Z a-z 0-9 _ - . and not start with '.'"
            ),
        ))
    }
}

fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_BYTES || id.chars().any(char::is_whitespace) {
        Err(Error::invalid(
            ErrorCode::BadArgs,
            format!("event id {id:?} must be 1 to 256 bytes without whitespace"),
        ))
    } else {
        Ok(())
    }
}

fn line(parts: &[&str]) -> Vec<u8> {
    let mut line = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            line.push(b' ');
        }
        line.extend_from_slice(part.as_bytes());
    }
    line.push(b'\n');
    line
}

/// Checks that a `+OK` reply starts with `word`.
fn expect_word(text: String, word: &str) -> Result<String> {
    if text.split_whitespace().next() == Some(word) {
        Ok(text)
    } else {
        Err(Error::Protocol(format!(
            "expected '+OK {word} ...', got '+OK {text}'"
        )))
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::Protocol(format!("bad JSON in reply '+OK {text}': {e}")))
}

impl Handle {
    pub(crate) fn ack(
        &self,
        topic: &str,
        id: &str,
    ) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        let call = check_topic(topic)
            .and_then(|()| check_id(id))
            .map(|()| self.call(line(&["ack", topic, id]), Kind::Ack));
        async move { expect_word(call?.await?, "acked").map(drop) }
    }

    pub(crate) fn unsubscribe(
        &self,
        topic: &str,
    ) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        let call = check_topic(topic).map(|()| {
            self.call(
                line(&["unsub", topic]),
                Kind::Unsub {
                    topic: topic.to_string(),
                },
            )
        });
        async move { expect_word(call?.await?, "unsubscribed").map(drop) }
    }

    fn publish_line(
        &self,
        topic: &str,
        json: Result<Vec<u8>>,
    ) -> impl Future<Output = Result<Publish>> + Send + 'static + use<> {
        let call = check_topic(topic).and(json).map(|json| {
            let mut cmd = Vec::with_capacity(topic.len() + json.len() + 6);
            cmd.extend_from_slice(b"pub ");
            cmd.extend_from_slice(topic.as_bytes());
            cmd.push(b' ');
            cmd.extend_from_slice(&json);
            cmd.push(b'\n');
            self.call(cmd, Kind::Pub)
        });
        async move {
            let text = call?.await?;
            match text.split_whitespace().next() {
                Some("published") => Ok(Publish::Published),
                Some("duplicate") => Ok(Publish::Duplicate),
                _ => Err(Error::Protocol(format!(
                    "expected '+OK published' or '+OK duplicate', got '+OK {text}'"
                ))),
            }
        }
    }
}

impl Client {
    /// Connects to a broker and reads its greeting.
    ///
    /// # Errors
    /// [`Error::Io`] if the address does not resolve or nobody listens;
    /// [`Error::Protocol`] if the greeting is not `+OK ...`.
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<Client> {
        Client::connect_with(addr, ClientOptions::default()).await
    }

    /// Connects with options: a durable name, reconnecting.
    ///
    /// ```no_run
    /// use herald_client::{Client, ClientOptions};
    ///
    /// # async fn demo() -> Result<(), herald_client::Error> {
    /// let options = ClientOptions::new().name("audit").reconnect(true);
    /// let client = Client::connect_with("127.0.0.1:8000", options).await?;
    /// let mut users = client.subscribe("users", 16).await?;
    /// // Survives broker restarts: unacknowledged events come back
    /// // with `redelivered == true`.
    /// while let Some(delivery) = users.next().await {
    ///     if delivery.redelivered {
    ///         println!("again: {}", delivery.id);
    ///     }
    ///     delivery.send_ack(); // no round trip per event
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Client::connect`]; with a name, [`Error::Server`] with
    /// `name_in_use` if a live connection holds it, [`Error::Invalid`] if
    /// the name breaks the naming rules.
    pub async fn connect_with(addr: impl ToSocketAddrs, options: ClientOptions) -> Result<Client> {
        if let Some(name) = &options.name {
            check_name(name)?;
        }
        let addrs: Vec<_> = tokio::net::lookup_host(addr).await?.collect();
        if addrs.is_empty() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "address resolved to nothing",
            )));
        }
        let handle = driver::start(Settings {
            addrs,
            name: options.name,
            reconnect: options.reconnect,
        })
        .await?;
        Ok(Client { handle })
    }

    /// Makes this connection the durable subscriber `name`
    /// (PROTOCOL.md §6). Must come before the first `subscribe`.
    ///
    /// # Errors
    /// [`Error::Server`] with `bad_state` (after a subscribe, or named
    /// twice) or `name_in_use`; [`Error::Invalid`] for a bad name.
    pub async fn name(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let text = self
            .handle
            .call(line(&["name", name]), Kind::Name(name.to_string()))
            .await?;
        expect_word(text, "name").map(drop)
    }

    /// Publishes `event` (serialized as JSON: an [`crate::Event`], a
    /// `serde_json::Value`, or any `Serialize` type with `id` and `msg`).
    ///
    /// The command is queued when `publish` is called; the future resolves
    /// when the broker has answered, which with `--fsync always` means the
    /// event is on disk. Any number of publishes may be in flight.
    ///
    /// ```no_run
    /// use herald_client::{Client, Event};
    ///
    /// # async fn demo(client: Client) -> Result<(), herald_client::Error> {
    /// // Pipelined: all 1000 are sent before the first reply is awaited.
    /// let confirms: Vec<_> = (0..1000)
    ///     .map(|i| client.publish("tweets", &Event::new(i.to_string(), "hi")))
    ///     .collect();
    /// for confirm in confirms {
    ///     confirm.await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Server`] with `bad_event` for an event the broker refuses,
    /// [`Error::Invalid`] for a bad topic name or an event that does not
    /// serialize; [`Error::Closed`] if the connection is gone.
    pub fn publish<E: Serialize + ?Sized>(
        &self,
        topic: &str,
        event: &E,
    ) -> impl Future<Output = Result<Publish>> + Send + 'static + use<E> {
        let json = serde_json::to_vec(event)
            .map_err(|e| Error::invalid(ErrorCode::BadEvent, format!("cannot serialize: {e}")));
        self.handle.publish_line(topic, json)
    }

    /// Publishes an event given as JSON text, sent as is (the broker
    /// validates it). CR and LF are turned into spaces, so the event stays
    /// on one line; in valid JSON they can only be whitespace between tokens.
    ///
    /// # Errors
    /// As [`Client::publish`].
    pub fn publish_json(
        &self,
        topic: &str,
        json: &str,
    ) -> impl Future<Output = Result<Publish>> + Send + 'static + use<> {
        let json = json
            .bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        self.handle.publish_line(topic, Ok(json))
    }

    /// Subscribes to an existing `topic`, holding at most `prefetch`
    /// (1 to 65535) deliveries unacknowledged. Subscribing again to the
    /// same topic sets the new prefetch; the earlier [`Subscription`] ends
    /// and the new one gets the deliveries.
    ///
    /// # Errors
    /// [`Error::Server`] with `no_topic` if the topic does not exist
    /// (see [`Client::create`]); [`Error::Invalid`] for a bad topic name or
    /// a prefetch of 0.
    pub async fn subscribe(&self, topic: &str, prefetch: u16) -> Result<Subscription> {
        check_topic(topic)?;
        if prefetch == 0 {
            return Err(Error::invalid(
                ErrorCode::BadArgs,
                "prefetch must be 1 to 65535",
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let kind = Kind::Sub {
            topic: topic.to_string(),
            prefetch,
            tx,
        };
        let text = self
            .handle
            .call(line(&["sub", topic, &prefetch.to_string()]), kind)
            .await?;
        expect_word(text, "subscribed")?;
        Ok(Subscription::new(
            topic.to_string(),
            rx,
            self.handle.clone(),
        ))
    }

    /// Acknowledges event `id` of `topic` (see [`crate::Delivery::ack`]).
    ///
    /// # Errors
    /// [`Error::Server`] with `not_subscribed` or `no_event`.
    pub fn ack(
        &self,
        topic: &str,
        id: &str,
    ) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        self.handle.ack(topic, id)
    }

    /// Ends the subscription to `topic`; its [`Subscription`] ends.
    ///
    /// # Errors
    /// [`Error::Server`] with `not_subscribed`.
    pub async fn unsubscribe(&self, topic: &str) -> Result<()> {
        self.handle.unsubscribe(topic).await
    }

    /// Creates `topic` (no error if it exists), so subscribers can start
    /// before any publisher.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad topic name.
    pub async fn create(&self, topic: &str) -> Result<()> {
        check_topic(topic)?;
        let text = self
            .handle
            .call(line(&["create", topic]), Kind::Other)
            .await?;
        expect_word(text, "created").map(drop)
    }

    /// The names of every topic.
    ///
    /// # Errors
    /// [`Error::Closed`] or [`Error::Protocol`].
    pub async fn topics(&self) -> Result<Vec<String>> {
        let text = self.handle.call(line(&["topics"]), Kind::Other).await?;
        parse_json(&text)
    }

    /// Counters of every topic, or of one.
    ///
    /// # Errors
    /// [`Error::Server`] with `no_topic` for a topic that does not exist.
    pub async fn stats(&self, topic: Option<&str>) -> Result<Stats> {
        let text = self.stats_text(topic).await?;
        parse_json(&text)
    }

    /// Like [`Client::stats`], as the broker's JSON (with any field a newer
    /// broker adds).
    ///
    /// # Errors
    /// As [`Client::stats`].
    pub async fn stats_json(&self, topic: Option<&str>) -> Result<serde_json::Value> {
        let text = self.stats_text(topic).await?;
        parse_json(&text)
    }

    async fn stats_text(&self, topic: Option<&str>) -> Result<String> {
        let cmd = match topic {
            Some(topic) => {
                check_topic(topic)?;
                line(&["stats", topic])
            }
            None => line(&["stats"]),
        };
        self.handle.call(cmd, Kind::Other).await
    }

    /// Sends `ping` and returns the round-trip time.
    ///
    /// # Errors
    /// [`Error::Closed`] or [`Error::Protocol`].
    pub async fn ping(&self) -> Result<Duration> {
        let start = Instant::now();
        let text = self.handle.call(line(&["ping"]), Kind::Other).await?;
        expect_word(text, "pong")?;
        Ok(start.elapsed())
    }

    /// Sends `quit` and waits for the broker to close the connection; no
    /// reconnecting after it. Commands queued after it fail with
    /// [`Error::Closed`].
    ///
    /// # Errors
    /// [`Error::Protocol`] if the broker does not answer `+OK bye`.
    pub async fn close(&self) -> Result<()> {
        let text = self.handle.call(line(&["quit"]), Kind::Quit).await?;
        expect_word(text, "bye").map(drop)
    }
}

fn check_name(name: &str) -> Result<()> {
    if name::is_valid(name) {
        Ok(())
    } else {
        Err(Error::invalid(
            ErrorCode::BadArgs,
            format!(
                "client name {name:?} must be 1 to 128 bytes of A-Z a-z 0-9 _ - . and not start with '.'"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_that_would_break_the_line_are_refused() {
        assert_eq!(
            check_topic("a b").unwrap_err().code(),
            Some(ErrorCode::BadTopic)
        );
        assert_eq!(
            check_topic("a\nping").unwrap_err().code(),
            Some(ErrorCode::BadTopic)
        );
        assert!(check_topic("tweets").is_ok());
        assert_eq!(
            check_id("1 2").unwrap_err().code(),
            Some(ErrorCode::BadArgs)
        );
        assert_eq!(check_id("").unwrap_err().code(), Some(ErrorCode::BadArgs));
        assert!(check_id("a-1").is_ok());
        assert_eq!(
            check_name("bob\n").unwrap_err().code(),
            Some(ErrorCode::BadArgs)
        );
    }

    #[test]
    fn command_lines_end_with_lf() {
        assert_eq!(line(&["ack", "t", "1"]), b"ack t 1\n");
        assert_eq!(line(&["topics"]), b"topics\n");
    }

    #[test]
    fn stats_keep_unknown_fields() {
        let stats: Stats = parse_json(
            r#"{"topics":{"t":{"subscribers":2,"pending":5,"in_flight":1,"published":40,"bytes":9}},"uptime":3}"#,
        )
        .unwrap();
        let t = &stats.topics["t"];
        assert_eq!(
            (t.subscribers, t.pending, t.in_flight, t.published),
            (2, 5, 1, 40)
        );
        assert_eq!(t.other["bytes"], 9);
        assert_eq!(stats.other["uptime"], 3);
    }
}
