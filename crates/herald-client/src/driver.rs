//! The connection task: the only owner of the socket.
//!
//! Callers hand it [`Request`]s through an unbounded channel (a [`Handle`]);
//! it appends each request's line to one output buffer and its reply slot to
//! the `pending` queue in the same step, so the queue order is the order the
//! broker sees the commands. Every reply line (`+OK`/`-ERR`) then resolves
//! the front of the queue: the protocol answers every command exactly once
//! and in order, so FIFO matching is exact. Lines starting with `{` are
//! deliveries, routed by their `topic` field to the subscription's channel.
//! Lines are read with `herald_proto::ServerLine` and command lines written
//! with `herald_proto::Command`, the definitions the broker uses.
//!
//! Reading and writing share one `select!` with a non-blocking partial write
//! (`write_buf`), never a blocking `write_all`: a caller may pipeline
//! thousands of commands, and a task stuck writing while the broker waits
//! for us to read its replies would deadlock both sides.
//!
//! Reconnecting (named durable subscribers, `docs/protocol.md` §8): when the
//! connection drops, every command sent but unanswered and every command
//! queued since is kept; after a new connection has sent `name` (and got
//! `+OK`), the task resubscribes every live subscription, then resends the
//! kept commands in their original order. Subscriptions keep their channels,
//! so the application simply sees the redelivered events.
//!
//! A group member (`docs/protocol.md` §12.2) reconnects the same way: the
//! route keeps the subscription's options, so the resubscription joins the
//! same group with the same options, and the group (which kept queueing
//! while the member was away) delivers to it again.
//!
//! Reply modes (§11): the handshake states the client's mode
//! (`replies all` by default), so a broker started with `--replies errors`
//! does not silence replies this client waits for. In `errors` mode the
//! broker sends no `+OK` to `pub`, `ack`, `nack` and `touch`: such a
//! request is *quiet*, answered to its caller when it is written, and kept
//! in `pending` (for resending after a drop) until a reply that comes after
//! it. Before the next command that does get a reply, the task writes a
//! `ping` (unless that command is a `ping` itself or `quit`), so an `-ERR`
//! read while quiet requests head the queue can only be theirs: it is kept
//! in `deferred` for [`Kind::Flush`], and every other reply still answers
//! its own command.
//!
//! Invariant: a subscription's route is installed when its `+OK subscribed`
//! is read, which is before any of its deliveries (the broker writes the
//! reply first), and removed when `+OK unsubscribed` is read.

use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::options::SubscribeOptions;
use bytes::BytesMut;
use herald_proto::{
    Command, ErrorCode, Frame, LineDecoder, Reply, ReplyMode, ReplyParseError, ServerLine,
    ServerLineError,
};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// Longest line accepted from the broker. A delivery is at most the
/// broker's line limit (1 MiB by default) plus the fields it adds; this
/// leaves room for brokers configured with a larger limit.
const MAX_REPLY_LINE_BYTES: usize = 64 * 1024 * 1024;
/// Output buffered before the task stops taking new requests.
const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// Read buffer growth step.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// First pause before reconnecting; doubles up to [`BACKOFF_MAX_MS`].
const BACKOFF_MIN_MS: u64 = 50;
/// Longest pause between reconnection attempts.
const BACKOFF_MAX_MS: u64 = 2000;
/// Quiet requests in a row before the task closes the run with a `ping`,
/// so a publisher that never waits for anything does not keep every line
/// it sent.
const QUIET_RUN_MAX: usize = 4096;
/// Refusals of quiet requests kept for [`Kind::Flush`]; later ones are
/// only logged.
const DEFERRED_MAX: usize = 1024;

/// What a request does to the task's state once the broker says `+OK`.
#[derive(Debug)]
pub(crate) enum Kind {
    /// `pub`: resent after a reconnect (the broker answers `duplicate` if
    /// it had been stored).
    Pub,
    /// `ack`: resent after a reconnect; `no_event` then means it had been
    /// applied before the drop, and counts as the `+OK acked` it got then.
    Ack { topic: Arc<str>, id: Arc<str> },
    /// `nack`: as `ack` (a drop returns the event anyway).
    Nack { topic: Arc<str>, id: Arc<str> },
    /// `touch`, with the duration asked for (`None`: the subscription's
    /// `wait`), for the answer of a quiet touch.
    Touch {
        topic: Arc<str>,
        id: Arc<str>,
        ms: Option<u64>,
    },
    /// `sub`: installs the route.
    Sub {
        topic: String,
        options: SubscribeOptions,
        tx: mpsc::UnboundedSender<Delivery>,
    },
    /// `unsub`: removes the route (with a group: the route of that group).
    Unsub {
        topic: String,
        group: Option<String>,
    },
    /// `name`: remembered for reconnecting.
    Name(String),
    /// `replies <mode>`: the mode of the commands written after it; `prev`
    /// is set when written, to go back to if the broker refuses.
    Replies { mode: ReplyMode, prev: ReplyMode },
    /// A `ping` that also reports the refusals of quiet requests.
    Flush,
    /// `quit`: the connection ends without reconnecting.
    Quit,
    /// Anything read-only or idempotent (`create`, `topics`, `stats`, `ping`).
    Other,
    /// A `sub` the task itself sends after reconnecting.
    Resub { topic: String },
    /// A `ping` the task itself sends to end a run of quiet requests.
    Sync,
}

impl Kind {
    /// Whether the broker leaves out this command's `+OK` in `errors` mode.
    fn silenced_in_errors_mode(&self) -> bool {
        matches!(
            self,
            Kind::Pub | Kind::Ack { .. } | Kind::Nack { .. } | Kind::Touch { .. }
        )
    }
}

/// What a caller gets: the `+OK` reply, `None` for a request the broker
/// does not answer (quiet, in `errors` mode), or the error.
pub(crate) type Answer = Result<Option<Reply>>;

/// One command for the connection task.
#[derive(Debug)]
pub(crate) struct Request {
    /// The command line, LF included.
    pub line: Vec<u8>,
    pub kind: Kind,
    /// Where the answer goes.
    pub reply: Option<oneshot::Sender<Answer>>,
    /// Sent again after a reconnect.
    pub retried: bool,
    /// Written in `errors` mode, so no `+OK` will come for it.
    pub quiet: bool,
}

/// A cheap, cloneable way to send requests. The task ends once every
/// handle is dropped (clients, subscriptions and deliveries all hold one).
#[derive(Debug, Clone)]
pub(crate) struct Handle {
    tx: mpsc::UnboundedSender<Request>,
}

impl Handle {
    /// Queues `line` now; the future resolves with the reply.
    pub(crate) fn call(
        &self,
        line: Vec<u8>,
        kind: Kind,
    ) -> impl Future<Output = Result<Reply>> + Send + 'static + use<> {
        let answer = self.call_quiet(line, kind);
        async move {
            answer.await?.ok_or_else(|| {
                Error::Protocol("a command that needs a reply was sent in errors mode".into())
            })
        }
    }

    /// Queues `line` now; the future resolves with the reply, or `None` if
    /// it was written in `errors` mode and the broker will not answer.
    pub(crate) fn call_quiet(
        &self,
        line: Vec<u8>,
        kind: Kind,
    ) -> impl Future<Output = Answer> + Send + 'static + use<> {
        let (reply, rx) = oneshot::channel();
        let sent = self
            .tx
            .send(Request {
                line,
                kind,
                reply: Some(reply),
                retried: false,
                quiet: false,
            })
            .is_ok();
        async move {
            if !sent {
                return Err(Error::Closed);
            }
            rx.await.unwrap_or(Err(Error::Closed))
        }
    }
}

/// Connection settings the task keeps for reconnecting.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub addrs: Vec<SocketAddr>,
    pub name: Option<String>,
    pub reconnect: bool,
    /// The reply mode the broker confirmed last (set again on reconnect).
    pub mode: ReplyMode,
    /// `auth` on every connection.
    pub credentials: Option<crate::Credentials>,
    /// TLS on every connection.
    pub tls: Option<crate::TlsOptions>,
}

/// A connection's byte stream: TCP, or TLS over TCP.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

struct Route {
    tx: mpsc::UnboundedSender<Delivery>,
    options: SubscribeOptions,
}

/// An open connection with its buffers.
struct Conn {
    stream: Box<dyn Stream>,
    inbuf: BytesMut,
    decoder: LineDecoder,
    out: BytesMut,
}

impl Conn {
    /// The next line from the broker, during the handshake only.
    async fn read_line(&mut self) -> Result<String> {
        loop {
            match self.decoder.decode(&mut self.inbuf) {
                Some(Frame::Line(line)) => {
                    return String::from_utf8(line.to_vec())
                        .map_err(|_| Error::Protocol("line is not UTF-8".into()));
                }
                Some(Frame::TooLong) => return Err(Error::Protocol("line too long".into())),
                None => {}
            }
            self.inbuf.reserve(READ_CHUNK_BYTES);
            if self.stream.read_buf(&mut self.inbuf).await? == 0 {
                return Err(Error::Closed);
            }
        }
    }
}

/// Connects, reads the greeting, sets the reply mode and, with a name,
/// names the connection.
async fn open(settings: &Settings) -> Result<Conn> {
    let tcp = TcpStream::connect(&settings.addrs[..]).await?;
    tcp.set_nodelay(true)?;
    let stream: Box<dyn Stream> = match &settings.tls {
        None => Box::new(tcp),
        Some(tls) => Box::new(tls.connect(tcp).await?),
    };
    let mut conn = Conn {
        stream,
        inbuf: BytesMut::with_capacity(READ_CHUNK_BYTES),
        decoder: LineDecoder::new(MAX_REPLY_LINE_BYTES),
        out: BytesMut::new(),
    };
    let greeting = conn.read_line().await?;
    match Reply::parse(&greeting) {
        Ok(reply) => {
            // A broker that refuses the connection says why.
            if let Some(refused) = Error::from_reply(&reply) {
                return Err(refused);
            }
        }
        // The contract promises only that the greeting is a `+OK` line:
        // any wording is fine.
        Err(ReplyParseError::UnknownReply(_)) => {}
        Err(_) => return Err(Error::Protocol(format!("unexpected greeting: {greeting}"))),
    }
    // Logged in first: with users, nothing else is answered before.
    if let Some(c) = &settings.credentials {
        let mut line = Vec::new();
        Command::Auth {
            user: c.user.clone(),
            password: herald_proto::Password::new(c.password.clone()),
        }
        .encode(&mut line);
        conn.stream.write_all(&line).await?;
        let reply = conn.read_line().await?;
        match reply_result(Reply::parse(&reply).map_err(Into::into)) {
            Ok(Reply::Auth(_)) => {}
            Ok(other) => return Err(Error::unexpected(&other, "auth")),
            Err(e) => return Err(e),
        }
    }
    // The mode is stated even when it is the default `all`: a broker
    // started with `--replies errors` would otherwise leave out replies
    // this client waits for. Named before anything else is pipelined: a
    // `sub` sent behind a refused `name` would subscribe an anonymous
    // subscriber.
    let mut lines = Vec::new();
    Command::Replies {
        mode: settings.mode,
    }
    .encode(&mut lines);
    if let Some(name) = &settings.name {
        Command::Name { name: name.clone() }.encode(&mut lines);
    }
    conn.stream.write_all(&lines).await?;
    let reply = conn.read_line().await?;
    match reply_result(Reply::parse(&reply).map_err(Into::into)) {
        Ok(Reply::Replies(_)) => {}
        // A version 1 broker has no reply modes: every reply comes. A
        // broker with users answers nothing but `auth_required` before
        // `auth`; a client without credentials may still `ping`.
        Err(e)
            if matches!(
                e.code(),
                Some(ErrorCode::UnknownCommand | ErrorCode::AuthRequired)
            ) && settings.mode == ReplyMode::All => {}
        Ok(other) => return Err(Error::unexpected(&other, "replies")),
        Err(e) => return Err(e),
    }
    if settings.name.is_some() {
        let reply = conn.read_line().await?;
        match reply_result(Reply::parse(&reply).map_err(Into::into)) {
            Ok(Reply::Named(_)) => {}
            Ok(other) => return Err(Error::unexpected(&other, "name")),
            Err(e) => return Err(e),
        }
    }
    Ok(conn)
}

/// The outcome of a reply line for the command it answers: `-ERR` becomes
/// [`Error::Server`], a line that is no reply [`Error::Protocol`].
fn reply_result(reply: Result<Reply, ServerLineError>) -> Result<Reply> {
    match reply {
        Ok(reply) => match Error::from_reply(&reply) {
            Some(err) => Err(err),
            None => Ok(reply),
        },
        Err(e) => Err(Error::Protocol(e.to_string())),
    }
}

/// Connects and starts the task.
pub(crate) async fn start(settings: Settings) -> Result<Handle> {
    let conn = open(&settings).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let driver = Driver {
        weak: tx.downgrade(),
        rx,
        rx_open: true,
        mode: settings.mode,
        settings,
        pending: VecDeque::new(),
        queued: VecDeque::new(),
        routes: HashMap::new(),
        quitting: false,
        quiet_run: 0,
        deferred: Vec::new(),
    };
    tokio::spawn(driver.run(conn));
    Ok(Handle { tx })
}

/// Why a connection ended.
enum End {
    /// Every handle is gone and everything was written.
    Done,
    /// The connection dropped (EOF, IO error, or after `quit`).
    Dropped(String),
}

struct Driver {
    /// For the handles deliveries carry; weak so the task can see when
    /// every other handle is gone.
    weak: mpsc::WeakUnboundedSender<Request>,
    rx: mpsc::UnboundedReceiver<Request>,
    rx_open: bool,
    settings: Settings,
    /// Sent (or in the output buffer), reply not read yet; in send order.
    pending: VecDeque<Request>,
    /// Waiting for a connection, in order (only while reconnecting).
    queued: VecDeque<Request>,
    routes: HashMap<String, Route>,
    /// `quit` was sent: no reconnecting.
    quitting: bool,
    /// The reply mode of the next command written.
    mode: ReplyMode,
    /// Quiet requests written since the last command that gets a reply.
    quiet_run: usize,
    /// Refusals of quiet requests, for the next [`Kind::Flush`].
    deferred: Vec<Error>,
}

impl Driver {
    async fn run(mut self, mut conn: Conn) {
        loop {
            let reason = match self.serve(&mut conn).await {
                End::Done => break,
                End::Dropped(reason) => reason,
            };
            if !self.settings.reconnect || self.quitting {
                debug!(%reason, "connection closed");
                break;
            }
            warn!(%reason, "connection to the broker lost; reconnecting");
            self.keep_for_retry();
            match self.reconnect().await {
                Some(next) => conn = next,
                None => break,
            }
        }
        self.fail_everything();
    }

    /// Serves one connection until it drops or every handle is gone.
    async fn serve(&mut self, conn: &mut Conn) -> End {
        let Conn {
            stream,
            inbuf,
            decoder,
            out,
        } = conn;
        let (mut reader, mut writer) = tokio::io::split(stream);
        // Deliveries and replies that arrived with the handshake.
        self.on_input(decoder, inbuf);
        loop {
            if !self.rx_open && out.is_empty() {
                // Whatever was sent (acks not awaited, say) still reaches
                // the broker, which answers a half-closed client.
                let _ = writer.shutdown().await;
                return End::Done;
            }
            let take_requests = self.rx_open && out.len() < MAX_OUTPUT_BYTES;
            tokio::select! {
                biased;
                res = reader.read_buf(inbuf) => match res {
                    Ok(0) => return End::Dropped("closed by the broker".into()),
                    Ok(_) => {
                        self.on_input(decoder, inbuf);
                        if inbuf.capacity() - inbuf.len() < 4096 {
                            inbuf.reserve(READ_CHUNK_BYTES);
                        }
                    }
                    Err(e) => return End::Dropped(e.to_string()),
                },
                res = writer.write_buf(out), if !out.is_empty() => {
                    if let Err(e) = res {
                        return End::Dropped(e.to_string());
                    }
                }
                req = self.rx.recv(), if take_requests => match req {
                    Some(req) => {
                        self.send(out, req);
                        // Batch whatever else is waiting into one write.
                        while out.len() < MAX_OUTPUT_BYTES {
                            match self.rx.try_recv() {
                                Ok(req) => self.send(out, req),
                                Err(_) => break,
                            }
                        }
                    }
                    None => self.rx_open = false,
                },
            }
        }
    }

    fn send(&mut self, out: &mut BytesMut, mut req: Request) {
        match &mut req.kind {
            Kind::Quit => self.quitting = true,
            Kind::Replies { mode, prev } => {
                *prev = self.mode;
                self.mode = *mode;
            }
            _ => {}
        }
        req.quiet = self.mode == ReplyMode::Errors && req.kind.silenced_in_errors_mode();
        if req.quiet {
            // Nothing will answer it: its caller learns now that it is
            // written, and a refusal goes to the next flush.
            let answer = match &req.kind {
                Kind::Touch { topic, id, ms } => {
                    let ms = ms
                        .or_else(|| {
                            let route = self.routes.get(&**topic)?;
                            route.options.sub_options().wait_ms
                        })
                        .unwrap_or(0);
                    Some(Reply::Touched {
                        topic: topic.clone(),
                        id: id.clone(),
                        ms,
                    })
                }
                _ => None,
            };
            if let Some(reply) = req.reply.take() {
                let _ = reply.send(Ok(answer));
            }
            self.quiet_run += 1;
            out.extend_from_slice(&req.line);
            self.pending.push_back(req);
            if self.quiet_run >= QUIET_RUN_MAX {
                self.send_sync(out);
            }
            return;
        }
        // A reply is coming: a run of quiet requests before it is closed
        // by a ping first, so that an error read while they head the
        // queue is theirs. A ping or a quit cannot be refused, so it can
        // close the run itself.
        if self.quiet_run > 0 && !matches!(req.kind, Kind::Flush | Kind::Sync | Kind::Quit) {
            self.send_sync(out);
        }
        self.quiet_run = 0;
        out.extend_from_slice(&req.line);
        self.pending.push_back(req);
    }

    /// Writes a `ping` of the task's own.
    fn send_sync(&mut self, out: &mut BytesMut) {
        let mut line = Vec::with_capacity(5);
        Command::Ping.encode(&mut line);
        self.quiet_run = 0;
        out.extend_from_slice(&line);
        self.pending.push_back(Request {
            line,
            kind: Kind::Sync,
            reply: None,
            retried: false,
            quiet: false,
        });
    }

    /// Handles every complete line in `inbuf`.
    fn on_input(&mut self, decoder: &mut LineDecoder, inbuf: &mut BytesMut) {
        while let Some(frame) = decoder.decode(inbuf) {
            let line = match frame {
                Frame::Line(line) => line,
                Frame::TooLong => {
                    warn!(
                        "discarded a line longer than {MAX_REPLY_LINE_BYTES} bytes from the broker"
                    );
                    continue;
                }
            };
            let Ok(line) = std::str::from_utf8(&line) else {
                self.resolve(Err(Error::Protocol(
                    "the broker sent a line that is not UTF-8".into(),
                )));
                continue;
            };
            if herald_proto::is_blank(line.as_bytes()) {
                continue;
            }
            match ServerLine::parse(line) {
                Ok(ServerLine::Delivery(parsed)) => match Delivery::from_parsed(&parsed, line) {
                    Ok(delivery) => self.deliver(delivery),
                    Err(e) => warn!(cause = %e, "ignored a malformed delivery"),
                },
                Err(ServerLineError::Delivery(e)) => {
                    warn!(cause = %e, "ignored a malformed delivery");
                }
                Ok(ServerLine::Reply(reply)) => self.resolve(reply_result(Ok(reply))),
                Err(e) => self.resolve(reply_result(Err(e))),
            }
        }
    }

    fn deliver(&mut self, delivery: Delivery) {
        let Some(route) = self.routes.get(&delivery.topic) else {
            debug!(topic = %delivery.topic, "delivery for a topic with no subscription");
            return;
        };
        let Some(tx) = self.weak.upgrade() else {
            return;
        };
        let topic = delivery.topic.clone();
        if route.tx.send(delivery.with_handle(Handle { tx })).is_err() {
            debug!(%topic, "subscription dropped; its deliveries are discarded");
            self.routes.remove(&topic);
        }
    }

    /// Answers the oldest pending request.
    fn resolve(&mut self, result: Result<Reply>) {
        if self.pending.front().is_some_and(|req| req.quiet) {
            match &result {
                Err(e) => {
                    // A refusal of one of the quiet requests ahead (a ping
                    // separates them from the next command that is
                    // answered). A resent ack or nack the broker had
                    // applied before the drop is no refusal.
                    let retried = self
                        .pending
                        .iter()
                        .take_while(|req| req.quiet)
                        .any(|req| req.retried);
                    let applied_before = retried && e.code() == Some(ErrorCode::NoEvent);
                    if !applied_before {
                        self.defer(result.unwrap_err());
                    }
                    return;
                }
                // The broker answered a quiet request after all: it was
                // written while a switch to `errors` was on its way, or
                // the switch was refused.
                Ok(
                    Reply::Published { .. }
                    | Reply::Duplicate { .. }
                    | Reply::Acked { .. }
                    | Reply::Nacked { .. }
                    | Reply::Touched { .. },
                ) => {
                    self.pending.pop_front();
                    return;
                }
                // The reply of the command after the quiet run: every
                // quiet request before it was stored.
                Ok(_) => {
                    while self.pending.front().is_some_and(|req| req.quiet) {
                        self.pending.pop_front();
                    }
                }
            }
        }
        let Some(req) = self.pending.pop_front() else {
            warn!(reply = ?result, "the broker sent a reply to no command");
            return;
        };
        let result = match (result, &req.kind) {
            // A resent ack, nack or unsub that the broker had applied
            // before the connection dropped: the reply it got then.
            (Err(e), Kind::Ack { topic, id })
                if req.retried && e.code() == Some(ErrorCode::NoEvent) =>
            {
                Ok(Reply::Acked {
                    topic: topic.clone(),
                    id: id.clone(),
                })
            }
            (Err(e), Kind::Nack { topic, id })
                if req.retried && e.code() == Some(ErrorCode::NoEvent) =>
            {
                Ok(Reply::Nacked {
                    topic: topic.clone(),
                    id: id.clone(),
                })
            }
            (Err(e), Kind::Unsub { topic, .. })
                if req.retried && e.code() == Some(ErrorCode::NotSubscribed) =>
            {
                Ok(Reply::Unsubscribed(topic.as_str().into()))
            }
            (Ok(_), Kind::Flush) if !self.deferred.is_empty() => {
                let mut deferred = std::mem::take(&mut self.deferred).into_iter();
                let first = deferred.next();
                for later in deferred {
                    warn!(cause = %later, "a quiet command was refused");
                }
                Err(first.unwrap_or(Error::Closed))
            }
            (result, _) => result,
        };
        match (&result, req.kind) {
            (Ok(_), Kind::Sub { topic, options, tx }) => {
                self.routes.insert(topic, Route { tx, options });
            }
            (Ok(_), Kind::Unsub { topic, group }) => {
                let ours = self.routes.get(&topic).is_some_and(|route| {
                    group.is_none() || route.options.group_name() == group.as_deref()
                });
                if ours {
                    self.routes.remove(&topic);
                }
            }
            (Ok(_), Kind::Name(name)) => self.settings.name = Some(name),
            (Ok(_), Kind::Replies { mode, .. }) => self.settings.mode = mode,
            // Refused: the commands after it keep the mode before it
            // (unless another switch followed).
            (Err(_), Kind::Replies { mode, prev }) if self.mode == mode => self.mode = prev,
            (Err(e), Kind::Resub { topic }) => {
                warn!(%topic, cause = %e, "resubscribing failed; the subscription ends");
                self.routes.remove(&topic);
            }
            _ => {}
        }
        if let Some(reply) = req.reply {
            let _ = reply.send(result.map(Some));
        }
    }

    /// Keeps the refusal of a quiet request for the next flush.
    fn defer(&mut self, e: Error) {
        if self.deferred.len() < DEFERRED_MAX {
            self.deferred.push(e);
        } else {
            warn!(cause = %e, "a quiet command was refused (too many to keep for flush)");
        }
    }

    /// After a drop: everything unanswered goes first in the queue.
    fn keep_for_retry(&mut self) {
        let mut kept = VecDeque::with_capacity(self.pending.len() + self.queued.len());
        for mut req in self.pending.drain(..) {
            match &req.kind {
                // The new connection resubscribes from the routes, and
                // closes quiet runs with pings of its own.
                Kind::Resub { .. } | Kind::Sync => continue,
                // The new connection is named during the handshake.
                Kind::Name(name) if self.settings.name.as_ref() == Some(name) => {
                    if let Some(reply) = req.reply.take() {
                        let _ = reply.send(Ok(Some(Reply::Named(name.as_str().into()))));
                    }
                    continue;
                }
                _ => {}
            }
            req.retried = true;
            kept.push_back(req);
        }
        kept.append(&mut self.queued);
        self.queued = kept;
    }

    /// Connects again with backoff; `None` if every handle went away.
    async fn reconnect(&mut self) -> Option<Conn> {
        let mut delay = Duration::from_millis(BACKOFF_MIN_MS);
        loop {
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    req = self.rx.recv(), if self.rx_open => match req {
                        Some(req) => self.queued.push_back(req),
                        None => self.rx_open = false,
                    },
                }
            }
            if !self.rx_open {
                return None;
            }
            match open(&self.settings).await {
                Ok(mut conn) => {
                    info!(
                        subscriptions = self.routes.len(),
                        resent = self.queued.len(),
                        "reconnected"
                    );
                    self.resume(&mut conn);
                    return Some(conn);
                }
                Err(e) => {
                    debug!(cause = %e, ?delay, "reconnect failed");
                    delay = (delay * 2).min(Duration::from_millis(BACKOFF_MAX_MS));
                }
            }
        }
    }

    /// Queues the resubscriptions, then the kept commands, on a new connection.
    fn resume(&mut self, conn: &mut Conn) {
        // The handshake set the mode the broker had confirmed last; the
        // kept commands replay any switch after it in order.
        self.mode = self.settings.mode;
        self.quiet_run = 0;
        let subs: Vec<(String, Vec<u8>)> = self
            .routes
            .iter()
            .map(|(topic, route)| (topic.clone(), sub_line(topic, &route.options)))
            .collect();
        for (topic, line) in subs {
            self.send(
                &mut conn.out,
                Request {
                    line,
                    kind: Kind::Resub { topic },
                    reply: None,
                    retried: false,
                    quiet: false,
                },
            );
        }
        while let Some(req) = self.queued.pop_front() {
            self.send(&mut conn.out, req);
        }
    }

    /// The task is ending: every waiting caller gets [`Error::Closed`] and
    /// every subscription ends (its sender is dropped with the routes).
    fn fail_everything(&mut self) {
        self.rx.close();
        let waiting = self.pending.drain(..).chain(self.queued.drain(..));
        for req in waiting.collect::<Vec<_>>() {
            let ok_anyway = matches!(req.kind, Kind::Quit);
            if let Some(reply) = req.reply {
                let _ = reply.send(if ok_anyway {
                    Ok(Some(Reply::Bye))
                } else {
                    Err(Error::Closed)
                });
            }
        }
        while let Ok(req) = self.rx.try_recv() {
            if let Some(reply) = req.reply {
                let _ = reply.send(Err(Error::Closed));
            }
        }
        self.routes.clear();
    }
}

/// The `sub` line of a subscription with `options`.
pub(crate) fn sub_line(topic: &str, options: &SubscribeOptions) -> Vec<u8> {
    let mut line = Vec::new();
    Command::Sub {
        topic: topic.to_string(),
        prefetch: options.prefetch_value(),
        options: options.sub_options().clone(),
    }
    .encode(&mut line);
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(line: &str) -> Result<Reply> {
        reply_result(Reply::parse(line).map_err(Into::into))
    }

    #[test]
    fn replies_resolve_to_their_outcome() {
        assert!(matches!(result("+OK pong"), Ok(Reply::Pong)));
        assert_eq!(
            result("-ERR no_event nope").unwrap_err().code(),
            Some(ErrorCode::NoEvent)
        );
        // A code this client does not know, or a line that is no reply.
        for line in ["-ERR whatever happened", "+OK shiny new reply", "hello"] {
            assert!(matches!(result(line), Err(Error::Protocol(_))), "{line}");
        }
    }
}
