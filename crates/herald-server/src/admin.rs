//! [`Admin`]: how code beside the protocol listener (the HTTP API) reads
//! and changes broker state without sharing it.
//!
//! The broker task stays the only owner of the broker. An `Admin` reaches
//! it in two ways, both through the broker task's ordinary input channel:
//!
//! - **Reads** (`stats`, `peek`, the overview, the connection views, a
//!   metrics snapshot) are one [`Input::Admin`] message carrying a oneshot
//!   sender; the broker task answers it in the batch that takes it, from
//!   the same state a `stats` command reads. No lock, no copy kept around.
//! - **Changes** (`create`, `pub`, removing a subscription) are submitted on
//!   behalf of a *pseudo-connection*: a connection with no socket, made for
//!   one request. It sends `Connect`, its commands and `Eof`, exactly
//!   as a connection task does, and collects the reply lines the broker task
//!   releases to it. A publish is therefore answered by the same code, under
//!   the same durability rules, as `pub` on a socket: under
//!   `--fsync always` its `+OK published` is released only after the
//!   fdatasync that covers it. Pseudo-connections are numbered from
//!   [`PSEUDO_CONN_BASE`], are never in the connection table of
//!   [`Telemetry`], and never subscribe.
//!
//! An `Admin` exists before the broker does (the HTTP listener starts
//! before recovery, so that `/healthz` can say "not yet"); until
//! [`crate::run_with`] attaches the broker, and after it stops, every call
//! is [`AdminError::Unavailable`].

use crate::broker_task::Input;
use crate::config::FsyncMode;
use crate::outbox::Outbound;
use crate::telemetry::Telemetry;
use herald_core::broker::stats::ConnectionView;
use herald_core::{ConnId, TopicCounters, TopicStats};
use herald_proto::{Command, ErrorCode, Reply, ReplyMode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// Connection ids from here up are pseudo-connections (see the module
/// docs); the accept loop counts up from 1 and never gets near.
pub const PSEUDO_CONN_BASE: u64 = 1 << 62;

/// Why an admin call got no answer.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AdminError {
    /// The broker is recovering, stopping, or stopped.
    #[error("the broker is not serving (starting or stopping)")]
    Unavailable,
}

/// Where the server is in its life, for `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Recovering the log; nothing is served yet.
    Starting,
    /// Recovered, accepting connections.
    Serving,
    /// Shutting down (or stopped).
    Stopping,
}

/// A handle on a server's broker for the HTTP API; cheap to clone.
#[derive(Clone, Debug)]
pub struct Admin {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    broker: OnceLock<mpsc::Sender<Input>>,
    telemetry: Arc<Telemetry>,
    started: Instant,
    phase: watch::Sender<Phase>,
    next_pseudo: AtomicU64,
}

/// A request from an [`Admin`] to the broker task (see [`Input::Admin`]);
/// its contents are the server's business.
#[derive(Debug)]
pub struct AdminRequest(pub(crate) Request);

#[derive(Debug)]
pub(crate) enum Request {
    Overview(oneshot::Sender<BrokerOverview>),
    Stats {
        topic: Option<String>,
        reply: oneshot::Sender<Option<herald_proto::Stats>>,
    },
    Peek {
        topic: String,
        name: String,
        group: bool,
        n: usize,
        reply: oneshot::Sender<Option<String>>,
    },
    Connections {
        conns: Vec<ConnId>,
        reply: oneshot::Sender<Vec<Option<ConnectionView>>>,
    },
    Metrics(oneshot::Sender<MetricsSnapshot>),
    /// `create` for pseudo-connection `conn`, first telling whether the
    /// topic existed (in the same step, so two racing creates cannot both
    /// be told "new").
    Create {
        conn: ConnId,
        topic: String,
        ttl_ms: Option<u64>,
        existed: oneshot::Sender<bool>,
    },
    /// [`herald_core::Broker::remove_subscription`] for pseudo-connection
    /// `conn`.
    RemoveSubscription {
        conn: ConnId,
        topic: String,
        name: String,
    },
}

/// What the broker task knows for `GET /api/v1/overview`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerOverview {
    /// `--fsync`.
    pub fsync: FsyncMode,
    /// Number of topics.
    pub topics: usize,
    /// Every topic's counters added up.
    pub totals: TopicCounters,
}

/// Broker state for one metrics scrape, taken in one message.
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    /// Every topic, sorted by name.
    pub topics: Vec<(Arc<str>, TopicStats)>,
    /// Bytes of the log's segment files.
    pub log_bytes: u64,
}

/// One open protocol connection for `GET /api/v1/connections`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// Its id.
    pub id: u64,
    /// The client's address.
    pub peer: std::net::SocketAddr,
    /// The durable name it holds, if any.
    pub name: Option<String>,
    /// Topics it is subscribed to.
    pub subscriptions: Vec<String>,
    /// Events it holds in flight.
    pub in_flight: usize,
    /// Bytes read from it.
    pub bytes_in: u64,
    /// Bytes written to it.
    pub bytes_out: u64,
    /// When it opened, ms since the Unix epoch.
    pub since_ms: u64,
}

impl Default for Admin {
    fn default() -> Self {
        Self::new()
    }
}

impl Admin {
    /// A handle with no broker yet (every call is `Unavailable` until a
    /// server runs with it) and fresh [`Telemetry`].
    pub fn new() -> Self {
        Admin {
            shared: Arc::new(Shared {
                broker: OnceLock::new(),
                telemetry: Arc::new(Telemetry::new()),
                started: Instant::now(),
                phase: watch::Sender::new(Phase::Starting),
                next_pseudo: AtomicU64::new(0),
            }),
        }
    }

    /// The server's measurements.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.shared.telemetry
    }

    /// Time since this handle was made (the server's start).
    pub fn uptime(&self) -> Duration {
        self.shared.started.elapsed()
    }

    /// Where the server is in its life.
    pub fn phase(&self) -> Phase {
        *self.shared.phase.borrow()
    }

    pub(crate) fn attach(&self, broker: mpsc::Sender<Input>) {
        // A second server on the same handle is a programming error in the
        // caller; the first broker stays attached.
        let _ = self.shared.broker.set(broker);
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        self.shared.phase.send_replace(phase);
    }

    fn broker(&self) -> Result<&mpsc::Sender<Input>, AdminError> {
        if self.phase() != Phase::Serving {
            return Err(AdminError::Unavailable);
        }
        self.shared.broker.get().ok_or(AdminError::Unavailable)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, AdminError> {
        let (tx, rx) = oneshot::channel();
        self.broker()?
            .send(Input::Admin(AdminRequest(make(tx))))
            .await
            .map_err(|_| AdminError::Unavailable)?;
        rx.await.map_err(|_| AdminError::Unavailable)
    }

    /// Counts and settings for the overview.
    ///
    /// # Errors
    /// `Unavailable` unless the broker is serving.
    pub async fn overview(&self) -> Result<BrokerOverview, AdminError> {
        self.ask(Request::Overview).await
    }

    /// What `stats` (`topic` `None`) or `stats <topic>` answers; `None` for
    /// a topic that does not exist.
    ///
    /// # Errors
    /// `Unavailable` unless the broker is serving.
    pub async fn stats(
        &self,
        topic: Option<&str>,
    ) -> Result<Option<herald_proto::Stats>, AdminError> {
        let topic = topic.map(str::to_string);
        self.ask(|reply| Request::Stats { topic, reply }).await
    }

    /// What `peek <topic> <n> sub=<name>` (or `group=<name>` if `group`)
    /// answers, as its JSON array; `None` when there is no such
    /// subscription.
    ///
    /// # Errors
    /// `Unavailable` unless the broker is serving.
    pub async fn peek(
        &self,
        topic: &str,
        name: &str,
        group: bool,
        n: usize,
    ) -> Result<Option<String>, AdminError> {
        let (topic, name) = (topic.to_string(), name.to_string());
        self.ask(|reply| Request::Peek {
            topic,
            name,
            group,
            n,
            reply,
        })
        .await
    }

    /// The open protocol connections: what their tasks measured joined
    /// with what the broker knows of each.
    ///
    /// # Errors
    /// `Unavailable` unless the broker is serving.
    pub async fn connections(&self) -> Result<Vec<ConnectionInfo>, AdminError> {
        let meters = self.shared.telemetry.connections();
        let conns = meters.iter().map(|m| m.conn).collect();
        let views = self
            .ask(|reply| Request::Connections { conns, reply })
            .await?;
        Ok(meters
            .iter()
            .zip(views)
            .map(|(m, view)| {
                let view = view.unwrap_or_default();
                ConnectionInfo {
                    id: m.conn.0,
                    peer: m.peer,
                    name: view.name.map(|n| n.to_string()),
                    subscriptions: view.subscriptions.iter().map(|t| t.to_string()).collect(),
                    in_flight: view.in_flight,
                    bytes_in: m.bytes_in(),
                    bytes_out: m.bytes_out(),
                    since_ms: m.since_ms,
                }
            })
            .collect())
    }

    /// Broker state for a metrics scrape.
    ///
    /// # Errors
    /// `Unavailable` unless the broker is serving.
    pub async fn metrics(&self) -> Result<MetricsSnapshot, AdminError> {
        self.ask(Request::Metrics).await
    }

    /// Runs one protocol line (such as `pub <topic> <event>`) as a
    /// connection would: parsed, checked and applied by the same code, its
    /// errors counted alike, and returns its reply once the broker releases
    /// it (for `pub` under `--fsync always`: after the fdatasync).
    ///
    /// # Errors
    /// `Unavailable` unless the broker is serving.
    pub async fn command(&self, line: &str) -> Result<Reply, AdminError> {
        let parsed = match herald_proto::parse_line(line.as_bytes()) {
            Ok(Some(command)) => Ok(command),
            Ok(None) => return Ok(Reply::error(ErrorCode::BadArgs, "empty command")),
            Err(e) => Err(e),
        };
        self.on_pseudo_conn(|conn| Input::Commands {
            conn,
            commands: vec![parsed],
        })
        .await
    }

    /// `create <topic> [ttl=<ms>]` as a connection would; also says whether
    /// the topic existed before.
    ///
    /// # Errors
    /// `Unavailable` unless the broker is serving.
    pub async fn create(
        &self,
        topic: &str,
        ttl_ms: Option<u64>,
    ) -> Result<(bool, Reply), AdminError> {
        let (tx, rx) = oneshot::channel();
        let topic = topic.to_string();
        let reply = self
            .on_pseudo_conn(|conn| {
                Input::Admin(AdminRequest(Request::Create {
                    conn,
                    topic,
                    ttl_ms,
                    existed: tx,
                }))
            })
            .await?;
        let existed = rx.await.map_err(|_| AdminError::Unavailable)?;
        Ok((existed, reply))
    }

    /// Removes the idle durable or group subscription `name` of `topic`
    /// (see [`herald_core::Broker::remove_subscription`] for the replies).
    ///
    /// # Errors
    /// `Unavailable` unless the broker is serving.
    pub async fn remove_subscription(&self, topic: &str, name: &str) -> Result<Reply, AdminError> {
        let (topic, name) = (topic.to_string(), name.to_string());
        self.on_pseudo_conn(|conn| {
            Input::Admin(AdminRequest(Request::RemoveSubscription {
                conn,
                topic,
                name,
            }))
        })
        .await
    }

    /// Opens a pseudo-connection, sends `input` for it (made for its id),
    /// and returns the reply to it once released.
    async fn on_pseudo_conn(
        &self,
        input: impl FnOnce(ConnId) -> Input,
    ) -> Result<Reply, AdminError> {
        let broker = self.broker()?.clone();
        let n = self.shared.next_pseudo.fetch_add(1, Ordering::Relaxed);
        let conn = ConnId(PSEUDO_CONN_BASE + n);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let unavailable = |_| AdminError::Unavailable;
        broker
            .send(Input::Connect { conn, tx })
            .await
            .map_err(unavailable)?;
        // From here the broker knows the connection: it must hear that it
        // is gone, even if this future is dropped halfway (the HTTP client
        // hung up).
        let guard = Disconnect {
            broker: Some(broker.clone()),
            conn,
        };
        // `--replies errors` may be the default of new connections: this
        // one wants its reply, which is the second line it gets.
        let replies_all = Input::Commands {
            conn,
            commands: vec![Ok(Command::Replies {
                mode: ReplyMode::All,
            })],
        };
        for input in [replies_all, input(conn), Input::Eof { conn }] {
            broker.send(input).await.map_err(unavailable)?;
        }
        let mut bytes = Vec::new();
        while let Some(out) = rx.recv().await {
            match out {
                Outbound::Data(data) => bytes.extend_from_slice(&data),
                Outbound::Close => break,
            }
        }
        guard.now().await;
        let text = String::from_utf8_lossy(&bytes);
        text.split("\r\n")
            .filter(|line| !line.is_empty())
            .nth(1)
            .and_then(|line| Reply::parse(line).ok())
            .ok_or(AdminError::Unavailable)
    }
}

/// Tells the broker task that a pseudo-connection is gone, on drop if not
/// before.
struct Disconnect {
    broker: Option<mpsc::Sender<Input>>,
    conn: ConnId,
}

impl Disconnect {
    async fn now(mut self) {
        if let Some(broker) = self.broker.take() {
            let _ = broker.send(Input::Disconnect { conn: self.conn }).await;
        }
    }
}

impl Drop for Disconnect {
    fn drop(&mut self) {
        let Some(broker) = self.broker.take() else {
            return;
        };
        let conn = self.conn;
        if let Err(mpsc::error::TrySendError::Full(_)) = broker.try_send(Input::Disconnect { conn })
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = broker.send(Input::Disconnect { conn }).await;
            });
        }
    }
}
