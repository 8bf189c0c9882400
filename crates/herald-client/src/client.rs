//! [`Client`]: one connection to a broker, shared by any number of tasks.
//!
//! Each method checks what framing needs (names and ids must be single
//! tokens, so that no argument can smuggle a second command onto the line),
//! builds its command line with `herald_proto` (a [`Command`], or the `pub`
//! and `ack` fast paths) and hands the line to the connection task in
//! `driver`; the reply comes back as a `herald_proto::Reply`. Methods that return `impl Future` queue their command at the
//! call, before the first poll: calling `publish` ten thousand times and
//! then awaiting the futures pipelines ten thousand commands.

use crate::delivery::Subscription;
use crate::driver::{self, Handle, Kind, Settings, sub_line};
use crate::error::{Error, Result};
use crate::event::{Publish, millis_ceil};
use crate::options::SubscribeOptions;
use crate::peek::Peeked;
use herald_proto::{
    Command, ErrorCode, NackAction, PeekEntry, PeekTarget, Reply, ReplyMode, name, write_ack_line,
    write_pub_line,
};
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio::net::ToSocketAddrs;
use tokio::sync::mpsc;

pub use herald_proto::{Stats, SubscriptionStats, TopicStats};

/// Longest event id, in bytes (`docs/protocol.md` §4).
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
    /// the durable subscriber of that name (`docs/protocol.md` §8).
    pub name: Option<String>,
    /// After the connection drops, connect again (pausing 50 ms, doubling
    /// up to 2 s between attempts, for as long as the client is in use),
    /// name it again, resubscribe every subscription with its options and
    /// resend every command that had not been answered. Subscriptions keep
    /// going: a durable subscriber gets its unacknowledged events again,
    /// marked `redelivered`, and a group member rejoins its group (which
    /// kept queueing meanwhile; what the member had in flight went back to
    /// the group, to it or another member). A resent `pub` may be answered
    /// `duplicate`; a resent `ack` or `nack` that the broker had already
    /// applied counts as success. Durable subscribers and group members
    /// want this on (`herald sub --name/--group` turn it on).
    pub reconnect: bool,
    /// Sends `auth <user> <password>` right after the greeting (and again
    /// after each reconnect), for a broker with users
    /// (`docs/protocol.md` §15).
    pub credentials: Option<Credentials>,
    /// Speaks TLS to the broker (see [`crate::tls`]).
    pub tls: Option<crate::TlsOptions>,
}

/// A user and its password for `auth`; `Debug` does not show the
/// password.
#[derive(Clone)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password (one word: no spaces or tabs).
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
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

    /// Logs in as `user` on every connection.
    pub fn credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> ClientOptions {
        self.credentials = Some(Credentials {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Connects over TLS.
    pub fn tls(mut self, tls: crate::TlsOptions) -> ClientOptions {
        self.tls = Some(tls);
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

/// The canonical line of `command`, LF included.
fn line(command: &Command) -> Vec<u8> {
    let mut line = Vec::new();
    command.encode(&mut line);
    line
}

/// The JSON payload of a `+OK <json>` reply.
fn parse_json<T: serde::de::DeserializeOwned>(reply: Reply) -> Result<T> {
    let Reply::Json(text) = reply else {
        return Err(Error::unexpected(&reply, "<json>"));
    };
    serde_json::from_str(&text)
        .map_err(|e| Error::Protocol(format!("bad JSON in reply '+OK {text}': {e}")))
}

impl Handle {
    pub(crate) fn ack(
        &self,
        topic: &str,
        id: &str,
    ) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        let call = check_topic(topic).and_then(|()| check_id(id)).map(|()| {
            let mut line = Vec::with_capacity(topic.len() + id.len() + 6);
            write_ack_line(&mut line, topic, id);
            let kind = Kind::Ack {
                topic: topic.into(),
                id: id.into(),
            };
            self.call_quiet(line, kind)
        });
        async move {
            match call?.await? {
                Some(Reply::Acked { .. }) | None => Ok(()),
                Some(other) => Err(Error::unexpected(&other, "acked")),
            }
        }
    }

    pub(crate) fn nack(
        &self,
        topic: &str,
        id: &str,
        action: NackAction,
    ) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        let call = check_topic(topic)
            .and_then(|()| check_id(id))
            .and_then(|()| check_duration_arg(action_ms(action)))
            .map(|()| {
                let command = Command::Nack {
                    topic: topic.to_string(),
                    id: id.to_string(),
                    action,
                };
                let kind = Kind::Nack {
                    topic: topic.into(),
                    id: id.into(),
                };
                self.call_quiet(line(&command), kind)
            });
        async move {
            match call?.await? {
                Some(Reply::Nacked { .. }) | None => Ok(()),
                Some(other) => Err(Error::unexpected(&other, "nacked")),
            }
        }
    }

    pub(crate) fn touch(
        &self,
        topic: &str,
        id: &str,
        ms: Option<u64>,
    ) -> impl Future<Output = Result<Duration>> + Send + 'static + use<> {
        let call = check_topic(topic)
            .and_then(|()| check_id(id))
            .and_then(|()| check_duration_arg(ms))
            .map(|()| {
                let command = Command::Touch {
                    topic: topic.to_string(),
                    id: id.to_string(),
                    ms,
                };
                let kind = Kind::Touch {
                    topic: topic.into(),
                    id: id.into(),
                    ms,
                };
                self.call_quiet(line(&command), kind)
            });
        async move {
            match call?.await? {
                Some(Reply::Touched { ms, .. }) => Ok(Duration::from_millis(ms)),
                Some(other) => Err(Error::unexpected(&other, "touched")),
                // The driver answers a quiet touch itself, with a `Touched`.
                None => Err(Error::Protocol("touch got no answer".into())),
            }
        }
    }

    pub(crate) fn unsubscribe(
        &self,
        topic: &str,
        group: Option<&str>,
    ) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        let call = check_topic(topic)
            .and_then(|()| group.map_or(Ok(()), |g| check_name("group", g)))
            .map(|()| {
                let command = Command::Unsub {
                    topic: topic.to_string(),
                    group: group.map(str::to_string),
                };
                self.call(
                    line(&command),
                    Kind::Unsub {
                        topic: topic.to_string(),
                        group: group.map(str::to_string),
                    },
                )
            });
        async move {
            match call?.await? {
                Reply::Unsubscribed(_) => Ok(()),
                other => Err(Error::unexpected(&other, "unsubscribed")),
            }
        }
    }

    fn publish_line(
        &self,
        topic: &str,
        json: Result<Vec<u8>>,
    ) -> impl Future<Output = Result<Publish>> + Send + 'static + use<> {
        let call = check_topic(topic).and(json).map(|json| {
            let mut line = Vec::with_capacity(topic.len() + json.len() + 6);
            write_pub_line(&mut line, topic, &json);
            self.call_quiet(line, Kind::Pub)
        });
        async move {
            match call?.await? {
                Some(Reply::Published { .. }) => Ok(Publish::Published),
                Some(Reply::Duplicate { .. }) => Ok(Publish::Duplicate),
                None => Ok(Publish::Unconfirmed),
                Some(other) => Err(Error::unexpected(&other, "published' or '+OK duplicate")),
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
            check_name("client", name)?;
        }
        if let Some(c) = &options.credentials
            && (c.user.is_empty()
                || c.password.is_empty()
                || c.user.contains([' ', '\t', '\r', '\n'])
                || c.password.contains([' ', '\t', '\r', '\n']))
        {
            return Err(Error::invalid(
                ErrorCode::BadArgs,
                "a user and a password are one non-empty word each",
            ));
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
            mode: ReplyMode::All,
            credentials: options.credentials,
            tls: options.tls,
        })
        .await?;
        Ok(Client { handle })
    }

    /// Makes this connection the durable subscriber `name`
    /// (`docs/protocol.md` §8). Must come before the first `subscribe`.
    ///
    /// # Errors
    /// [`Error::Server`] with `bad_state` (after a subscribe, or named
    /// twice) or `name_in_use`; [`Error::Invalid`] for a bad name.
    pub async fn name(&self, name: &str) -> Result<()> {
        check_name("client", name)?;
        let command = Command::Name {
            name: name.to_string(),
        };
        match self
            .handle
            .call(line(&command), Kind::Name(name.to_string()))
            .await?
        {
            Reply::Named(_) => Ok(()),
            other => Err(Error::unexpected(&other, "name")),
        }
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
    /// on one line; in valid JSON they can only be whitespace between tokens
    /// (`herald_proto::write_pub_line`).
    ///
    /// # Errors
    /// As [`Client::publish`].
    pub fn publish_json(
        &self,
        topic: &str,
        json: &str,
    ) -> impl Future<Output = Result<Publish>> + Send + 'static + use<> {
        self.handle
            .publish_line(topic, Ok(json.as_bytes().to_vec()))
    }

    /// Subscribes to an existing `topic`, holding at most `prefetch`
    /// (1 to 65535) deliveries unacknowledged. Subscribing again to the
    /// same topic sets the new prefetch; the earlier [`Subscription`] ends
    /// and the new one gets the deliveries. Same as
    /// [`subscribe_with`](Self::subscribe_with) and
    /// `SubscribeOptions::new().prefetch(prefetch)`.
    ///
    /// # Errors
    /// [`Error::Server`] with `no_topic` if the topic does not exist
    /// (see [`Client::create`]); [`Error::Invalid`] for a bad topic name or
    /// a prefetch of 0.
    pub async fn subscribe(&self, topic: &str, prefetch: u16) -> Result<Subscription> {
        self.subscribe_with(topic, SubscribeOptions::from(prefetch))
            .await
    }

    /// Subscribes to an existing `topic` with options (`docs/protocol.md`
    /// §12.1): a group, an ack deadline, retries and dead letters, limits.
    /// A `sub` states the whole subscription: options not given go back to
    /// their defaults.
    ///
    /// ```no_run
    /// use herald_client::{Client, ClientOptions, SubscribeOptions};
    /// use std::time::Duration;
    ///
    /// # async fn demo() -> Result<(), herald_client::Error> {
    /// // Group members reconnect like durable subscribers.
    /// let client =
    ///     Client::connect_with("127.0.0.1:8000", ClientOptions::new().reconnect(true)).await?;
    /// let options = SubscribeOptions::new()
    ///     .prefetch(10)
    ///     .group("workers")
    ///     .wait(Duration::from_secs(30))
    ///     .max_deliveries(5)
    ///     .dead("jobs.dead");
    /// let mut jobs = client.subscribe_with("jobs", options).await?;
    /// while let Some(job) = jobs.next().await {
    ///     match job.msg.as_str() {
    ///         Some("poison") => job.nack().await?, // again, up to 5 deliveries
    ///         _ => job.ack().await?,
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Server`] with `no_topic` if the topic does not exist,
    /// `bad_state` if the group exists with other options while members
    /// are connected, or if this connection is already subscribed to the
    /// topic another way (unsubscribe first); [`Error::Invalid`] for a bad
    /// topic name or an option out of range
    /// ([`SubscribeOptions::check`]).
    pub async fn subscribe_with(
        &self,
        topic: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription> {
        check_topic(topic)?;
        options.check()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let line = sub_line(topic, &options);
        let kind = Kind::Sub {
            topic: topic.to_string(),
            options: options.clone(),
            tx,
        };
        match self.handle.call(line, kind).await? {
            Reply::Subscribed { .. } => {}
            other => return Err(Error::unexpected(&other, "subscribed")),
        }
        Ok(Subscription::new(
            topic.to_string(),
            options,
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

    /// Gives back event `id` of `topic`, in flight at this connection
    /// (`docs/protocol.md` §12.5; see [`crate::Delivery::nack`]).
    ///
    /// # Errors
    /// [`Error::Server`] with `not_subscribed` or `no_event` (not in
    /// flight here); [`Error::Invalid`] for a delay out of range.
    pub fn nack(
        &self,
        topic: &str,
        id: &str,
        action: NackAction,
    ) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        self.handle.nack(topic, id, action)
    }

    /// Restarts the ack deadline of event `id` of `topic`, in flight at
    /// this connection: it now expires `duration` from now (`None`: the
    /// subscription's `wait`). Returns the time left (§12.4; see
    /// [`crate::Delivery::touch`]).
    ///
    /// # Errors
    /// [`Error::Server`] with `not_subscribed`, `bad_state` (the
    /// subscription has no `wait`) or `no_event`.
    pub fn touch(
        &self,
        topic: &str,
        id: &str,
        duration: Option<Duration>,
    ) -> impl Future<Output = Result<Duration>> + Send + 'static + use<> {
        self.handle.touch(topic, id, duration.map(millis_ceil))
    }

    /// Ends the subscription to `topic`; its [`Subscription`] ends. A
    /// durable subscriber's queue is discarded; a group member leaves its
    /// group, whose queue stays (what the member had in flight goes back
    /// to it).
    ///
    /// # Errors
    /// [`Error::Server`] with `not_subscribed`.
    pub async fn unsubscribe(&self, topic: &str) -> Result<()> {
        self.handle.unsubscribe(topic, None).await
    }

    /// Deletes the group `group` of `topic` and its queue
    /// (`unsub <topic> group=<group>`, §12.2). Any connection may; the
    /// members stop receiving (a subscription of this client to that group
    /// ends).
    ///
    /// # Errors
    /// [`Error::Server`] with `not_subscribed` if there is no such group.
    pub async fn delete_group(&self, topic: &str, group: &str) -> Result<()> {
        self.handle.unsubscribe(topic, Some(group)).await
    }

    /// Shows, without changing anything, up to `n` (1 to 1000) events of a
    /// subscription of `topic`: in flight first, then queued in delivery
    /// order, then delayed by due time (§12.7).
    ///
    /// ```no_run
    /// use herald_client::{Client, PeekTarget};
    ///
    /// # async fn demo(client: Client) -> Result<(), herald_client::Error> {
    /// for peeked in client.peek("jobs", PeekTarget::Group("workers".into()), 10).await? {
    ///     println!("{:?} {} ({} deliveries)", peeked.state, peeked.event.id, peeked.deliveries);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Server`] with `not_subscribed` if there is no such
    /// subscription (a missing topic included); [`Error::Invalid`] for `n`
    /// out of range or a bad name.
    pub async fn peek(&self, topic: &str, target: PeekTarget, n: u16) -> Result<Vec<Peeked>> {
        check_topic(topic)?;
        match &target {
            PeekTarget::Own => {}
            PeekTarget::Sub(name) => check_name("client", name)?,
            PeekTarget::Group(name) => check_name("group", name)?,
        }
        if n == 0 || n > herald_proto::command::MAX_PEEK {
            return Err(Error::invalid(
                ErrorCode::BadArgs,
                "n must be an integer from 1 to 1000",
            ));
        }
        let command = Command::Peek {
            topic: topic.to_string(),
            n,
            target,
        };
        let entries: Vec<PeekEntry> =
            parse_json(self.handle.call(line(&command), Kind::Other).await?)?;
        entries.iter().map(Peeked::from_entry).collect()
    }

    /// Creates `topic` (no error if it exists), so subscribers can start
    /// before any publisher. An existing topic keeps its default time to
    /// live.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad topic name.
    pub async fn create(&self, topic: &str) -> Result<()> {
        self.create_topic(topic, None).await
    }

    /// Creates `topic` (no error if it exists) and sets its default time to
    /// live for events published from now on (§13.1): an event expires
    /// after the smaller of `ttl` and its own `ttl_ms`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad topic name or a `ttl` out of range
    /// (1 ms to 30 days).
    pub async fn create_with_ttl(&self, topic: &str, ttl: Duration) -> Result<()> {
        let ms = millis_ceil(ttl);
        check_duration_arg(Some(ms))?;
        self.create_topic(topic, Some(ms)).await
    }

    async fn create_topic(&self, topic: &str, ttl_ms: Option<u64>) -> Result<()> {
        check_topic(topic)?;
        let command = Command::Create {
            topic: topic.to_string(),
            ttl_ms,
        };
        match self.handle.call(line(&command), Kind::Other).await? {
            Reply::Created(_) => Ok(()),
            other => Err(Error::unexpected(&other, "created")),
        }
    }

    /// Sets this connection's reply mode (§11). In [`ReplyMode::Errors`]
    /// the broker sends no `+OK` for `pub`, `ack`, `nack` and `touch`:
    /// [`publish`](Self::publish) returns [`Publish::Unconfirmed`] as soon
    /// as the event is written, acks and nacks return at once, `touch`
    /// returns the duration asked for (or the subscription's `wait`), and a
    /// refusal of any of them is reported by the next
    /// [`flush`](Self::flush). For publishers that send much and wait
    /// rarely. Kept across reconnects.
    ///
    /// # Errors
    /// [`Error::Server`] from a broker without reply modes
    /// (`unknown_command`).
    pub async fn replies(&self, mode: ReplyMode) -> Result<()> {
        let command = Command::Replies { mode };
        let kind = Kind::Replies { mode, prev: mode };
        match self.handle.call(line(&command), kind).await? {
            Reply::Replies(_) => Ok(()),
            other => Err(Error::unexpected(&other, "replies")),
        }
    }

    /// Waits until the broker has answered everything sent before, and
    /// reports the first refusal of a command sent in
    /// [`ReplyMode::Errors`] since the last flush (later ones are logged).
    /// `Ok` means every such command was applied, and every publish stored
    /// as the broker's `--fsync` mode says.
    ///
    /// # Errors
    /// The first refusal, as the command would have returned it;
    /// [`Error::Closed`] if the connection is gone.
    pub async fn flush(&self) -> Result<()> {
        match self.handle.call(line(&Command::Ping), Kind::Flush).await? {
            Reply::Pong => Ok(()),
            other => Err(Error::unexpected(&other, "pong")),
        }
    }

    /// The names of every topic.
    ///
    /// # Errors
    /// [`Error::Closed`] or [`Error::Protocol`].
    pub async fn topics(&self) -> Result<Vec<String>> {
        parse_json(
            self.handle
                .call(line(&Command::Topics), Kind::Other)
                .await?,
        )
    }

    /// Counters of every topic, or of one.
    ///
    /// # Errors
    /// [`Error::Server`] with `no_topic` for a topic that does not exist.
    pub async fn stats(&self, topic: Option<&str>) -> Result<Stats> {
        parse_json(self.stats_reply(topic).await?)
    }

    /// Like [`Client::stats`], as the broker's JSON (with any field a newer
    /// broker adds).
    ///
    /// # Errors
    /// As [`Client::stats`].
    pub async fn stats_json(&self, topic: Option<&str>) -> Result<serde_json::Value> {
        parse_json(self.stats_reply(topic).await?)
    }

    async fn stats_reply(&self, topic: Option<&str>) -> Result<Reply> {
        if let Some(topic) = topic {
            check_topic(topic)?;
        }
        let command = Command::Stats {
            topic: topic.map(str::to_string),
        };
        self.handle.call(line(&command), Kind::Other).await
    }

    /// Sends `ping` and returns the round-trip time.
    ///
    /// # Errors
    /// [`Error::Closed`] or [`Error::Protocol`].
    pub async fn ping(&self) -> Result<Duration> {
        let start = Instant::now();
        match self.handle.call(line(&Command::Ping), Kind::Other).await? {
            Reply::Pong => Ok(start.elapsed()),
            other => Err(Error::unexpected(&other, "pong")),
        }
    }

    /// Sends `quit` and waits for the broker to close the connection; no
    /// reconnecting after it. Commands queued after it fail with
    /// [`Error::Closed`].
    ///
    /// # Errors
    /// [`Error::Protocol`] if the broker does not answer `+OK bye`.
    pub async fn close(&self) -> Result<()> {
        match self.handle.call(line(&Command::Quit), Kind::Quit).await? {
            Reply::Bye => Ok(()),
            other => Err(Error::unexpected(&other, "bye")),
        }
    }
}

/// Checks a client or group name (`what` says which, for the message).
fn check_name(what: &str, name: &str) -> Result<()> {
    if name::is_valid(name) {
        Ok(())
    } else {
        Err(Error::invalid(
            ErrorCode::BadArgs,
            format!(
                "{what} name {name:?} must be 1 to 128 bytes of A-Z a-z 0-9 _ - . and not start with '.'"
            ),
        ))
    }
}

/// The duration of a `nack`, if it has one.
fn action_ms(action: NackAction) -> Option<u64> {
    match action {
        NackAction::Delay(ms) => Some(ms),
        NackAction::Return | NackAction::Dead => None,
    }
}

/// Checks a duration argument of `nack`, `touch` or `create ttl=`: 1 ms to
/// 30 days (§11).
fn check_duration_arg(ms: Option<u64>) -> Result<()> {
    match ms {
        Some(ms) if !(1..=herald_proto::duration::MAX_MS).contains(&ms) => Err(Error::invalid(
            ErrorCode::BadArgs,
            format!("a duration must be from 1 ms to 30 days, not {ms} ms"),
        )),
        _ => Ok(()),
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
            check_name("client", "bob\n").unwrap_err().code(),
            Some(ErrorCode::BadArgs)
        );
    }

    #[test]
    fn durations_out_of_range_are_refused_before_sending() {
        assert!(check_duration_arg(None).is_ok());
        assert!(check_duration_arg(Some(1)).is_ok());
        assert!(check_duration_arg(Some(herald_proto::duration::MAX_MS)).is_ok());
        for ms in [0, herald_proto::duration::MAX_MS + 1] {
            assert_eq!(
                check_duration_arg(Some(ms)).unwrap_err().code(),
                Some(ErrorCode::BadArgs)
            );
        }
    }

    #[test]
    fn command_lines_end_with_lf() {
        let ack = Command::Ack {
            topic: "t".into(),
            id: "1".into(),
        };
        assert_eq!(line(&ack), b"ack t 1\n");
        assert_eq!(line(&Command::Topics), b"topics\n");
    }

    #[test]
    fn stats_read_a_newer_broker() {
        let reply = Reply::parse(
            r#"+OK {"topics":{"t":{"subscribers":2,"pending":5,"in_flight":1,"published":40,"bytes":9}},"uptime":3}"#,
        )
        .unwrap();
        let stats: Stats = parse_json(reply).unwrap();
        let t = &stats.topics["t"];
        assert_eq!(
            (t.subscribers, t.pending, t.in_flight, t.published),
            (2, 5, 1, 40)
        );
    }

    #[test]
    fn a_reply_of_the_wrong_kind_is_a_protocol_error() {
        let err = parse_json::<Stats>(Reply::Pong).unwrap_err();
        assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    }
}
