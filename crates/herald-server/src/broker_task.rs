//! The broker task: the single owner of the [`Broker`] state and the [`Log`],
//! and the loop that drives them.
//!
//! Connection tasks send it parsed commands through one bounded channel; it
//! answers through one unbounded channel per connection (what it writes there
//! is bounded by the commands a connection sent and by prefetch).
//!
//! One loop iteration is one batch: take every input waiting (up to a cap),
//! apply each command to the broker, append its changes to the log buffer,
//! run the broker's timers (`Broker::tick` when `next_wakeup` is due),
//! `write` the buffer once, then send what may leave. Two types keep the
//! rules this loop only wires together:
//! - [`Durability`] tracks the log's positions and decides which reply
//!   waits for which sync (`docs/protocol.md` 10) and how the next sync runs
//!   (on the fsync thread, or inline for a small tail);
//! - [`Outbox`] keeps each connection's output in order, holding chunks
//!   until their sync and closing connections after their last reply.
//!
//! Events are delivered only once durable: the broker's own gate, advanced
//! with `set_durable` when the tracker reports an event's record synced
//! (interval mode: written).
//!
//! It is a tokio task beside the connection tasks. Its file IO is blocking:
//! usually one `pwrite` into the page cache per batch, which is short. On
//! the default single-threaded runtime that beats a thread of its own: a
//! command and its reply cross no thread, so a round trip per event
//! (prefetch 1) costs no wake-ups. The fdatasync of a big batch runs on the
//! fsync thread; a small one runs here, after the output that waits for no
//! sync has left. The other synchronous ones (the old segment at a
//! rotation, the end of a compaction, a graceful stop) are rare.

use crate::admin::AdminRequest;
use crate::config::Config;
use crate::durability::{Durability, Scope, SyncPlan};
use crate::error::BrokerError;
use crate::outbox::{Outbound, Outbox};
use crate::sync::SyncRequest;
use crate::telemetry::Telemetry;
use crate::users::User;
use herald_core::{Broker, Change, ConnId, Effects, Output, record};
use herald_log::{Log, Lsn};
use herald_proto::{Command, Delivery, ErrorCode, ParseError, Reply};
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// What connection tasks and helpers send to the broker task.
pub(crate) enum Input {
    /// A new connection and the channel to write to it.
    Connect {
        conn: ConnId,
        tx: mpsc::UnboundedSender<Outbound>,
    },
    /// Commands read from a connection, in order (parse errors included, so
    /// that their replies keep their place).
    Commands {
        conn: ConnId,
        commands: Vec<Result<Command, ParseError>>,
    },
    /// A reply the connection task decided itself (`auth_required`,
    /// `forbidden`, `auth_failed`: see [`crate::auth`]), in its place;
    /// `close`: close the connection after it.
    Answer {
        conn: ConnId,
        reply: Reply,
        close: bool,
    },
    /// The connection authenticated as `user`: reply `+OK auth <user>`;
    /// its `topics` and `stats` show only what `user` may subscribe to.
    Login { conn: ConnId, user: Arc<User> },
    /// The client sent nothing more (EOF): answer what it sent, then close.
    Eof { conn: ConnId },
    /// The connection is gone.
    Disconnect { conn: ConnId },
    /// The fsync thread made everything before `lsn` durable.
    Synced { lsn: Lsn },
    /// The fsync thread failed: nothing after the last sync may be
    /// acknowledged.
    SyncFailed { error: std::io::Error },
    /// Periodic wake-up: interval syncs, compaction.
    Tick,
    /// A read or an operator change from the HTTP API ([`crate::admin`]).
    Admin(AdminRequest),
    /// Answer what was received, sync, and stop.
    Shutdown,
}

/// Most inputs taken in one batch, so that one busy connection cannot delay
/// the replies of a batch forever.
const MAX_INPUTS_PER_BATCH: usize = 1024;

/// The broker task's state.
pub(crate) struct BrokerTask {
    broker: Broker,
    log: Log,
    config: Config,
    outbox: Outbox,
    durability: Durability,
    sync_tx: std_mpsc::Sender<SyncRequest>,
    compaction: Option<Compaction>,
    unavailable_since: Option<Instant>,
    fx: Effects,
    /// `-ERR` counts and fdatasync latency, for metrics.
    telemetry: Arc<Telemetry>,
    /// The user of each authenticated connection.
    users: FxHashMap<ConnId, Arc<User>>,
}

/// A short, one-line account of a command for debug logs.
fn describe(command: &Command) -> String {
    match command {
        Command::Pub { topic, event } => format!(
            "pub {topic} id={} priority={} ({} bytes)",
            event.id,
            event.priority,
            event.fields.len()
        ),
        // Never log a password.
        Command::Auth { user, .. } => format!("auth {user} ***"),
        other => other.to_line(),
    }
}

/// Wall-clock milliseconds since the Unix epoch: the broker's `now`.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl BrokerTask {
    /// A broker task over a recovered broker and its open log.
    pub(crate) fn new(
        broker: Broker,
        log: Log,
        config: Config,
        sync_tx: std_mpsc::Sender<SyncRequest>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        // What recovery read back counts as durable.
        let durability = Durability::new(config.fsync, log.written(), Instant::now());
        BrokerTask {
            broker,
            log,
            config,
            outbox: Outbox::new(),
            durability,
            sync_tx,
            compaction: None,
            unavailable_since: None,
            fx: Effects::new(),
            telemetry,
            users: FxHashMap::default(),
        }
    }

    /// Runs until `Shutdown` or until every sender is gone, then syncs the
    /// log and sends the replies that waited for it.
    ///
    /// # Errors
    /// If the log could not be written or synced: the broker stops rather
    /// than acknowledge what it could not store, and every connection is
    /// closed without the replies that waited for the disk.
    pub(crate) async fn run(mut self, rx: mpsc::Receiver<Input>) -> Result<(), BrokerError> {
        // `rx` lives until the end: connection tasks still sending must not
        // see the broker gone before their last replies are handed over.
        let mut rx = rx;
        let result = match self.serve(&mut rx).await {
            Ok(()) => self.stop(),
            Err(e) => Err(e),
        };
        self.outbox.close_all();
        result
    }

    async fn serve(&mut self, rx: &mut mpsc::Receiver<Input>) -> Result<(), BrokerError> {
        let mut inputs = Vec::with_capacity(MAX_INPUTS_PER_BATCH);
        let mut stopping = false;
        while !stopping {
            // Sleep until the next input, or until the broker has something
            // timed to do (a deadline, a due time, an expiry).
            let first = match self.broker.next_wakeup() {
                Some(at) => {
                    let wait = Duration::from_millis(at.saturating_sub(now_ms()));
                    tokio::select! {
                        biased;
                        input = rx.recv() => match input {
                            Some(input) => Some(input),
                            None => return Ok(()),
                        },
                        () = tokio::time::sleep(wait) => None,
                    }
                }
                None => match rx.recv().await {
                    Some(input) => Some(input),
                    None => return Ok(()),
                },
            };
            inputs.extend(first);
            while inputs.len() < MAX_INPUTS_PER_BATCH {
                match rx.try_recv() {
                    Ok(input) => inputs.push(input),
                    Err(_) => break,
                }
            }
            let now = now_ms();
            self.outbox.start_batch();
            for input in inputs.drain(..) {
                match input {
                    Input::Shutdown => stopping = true,
                    other => self.on_input(other, now)?,
                }
            }
            if self.broker.next_wakeup().is_some_and(|at| at <= now) {
                self.broker.tick(now, &mut self.fx);
                self.apply_effects(None);
            }
            if self.compaction.is_some() {
                self.compact_step()?;
            }
            let released = self.outbox.has_released();
            if self.end_batch()? == SyncPlan::Inline {
                // The output that waits for no sync (acks, pongs, deliveries
                // of durable events) left with `end_batch`; let the
                // connection tasks write it before this task blocks in
                // fdatasync.
                if released {
                    tokio::task::yield_now().await;
                }
                self.sync_inline()?;
            }
        }
        Ok(())
    }

    /// Graceful stop: everything written is synced, so every held reply may
    /// go out before the connections close.
    fn stop(&mut self) -> Result<(), BrokerError> {
        self.sync_inline()?;
        // Releasing held output can deliver events, whose delivery records
        // must reach the disk too.
        self.sync_inline()?;
        info!(
            "log synced ({} bytes in {} segments)",
            self.log.total_bytes(),
            self.log.segments().len()
        );
        Ok(())
    }

    fn on_input(&mut self, input: Input, now: u64) -> Result<(), BrokerError> {
        match input {
            Input::Connect { conn, tx } => {
                self.broker.connect(conn);
                self.outbox.open(conn, tx, self.config.replies);
            }
            Input::Commands { conn, commands } => {
                for command in commands {
                    self.on_command(conn, command, now);
                }
            }
            Input::Answer { conn, reply, close } => {
                if self.outbox.is_accepting(conn) {
                    self.reply(conn, &reply, None);
                    if close {
                        self.outbox.close_after_output(conn);
                        self.detach_closing();
                    }
                }
            }
            Input::Login { conn, user } => {
                if self.outbox.is_accepting(conn) {
                    self.reply(conn, &Reply::Auth(user.name.as_str().into()), None);
                    self.users.insert(conn, user);
                }
            }
            Input::Eof { conn } => {
                self.outbox.close_after_output(conn);
                self.detach_closing();
            }
            Input::Disconnect { conn } => {
                self.users.remove(&conn);
                self.broker.disconnect(conn, now, &mut self.fx);
                self.outbox.remove(conn);
                self.apply_effects(None);
            }
            Input::Synced { lsn } => {
                self.durability.sync_returned();
                self.on_synced(lsn);
            }
            Input::SyncFailed { error } => {
                self.durability.sync_returned();
                return Err(BrokerError::Sync(error));
            }
            Input::Tick => {
                if self.compaction.is_none() {
                    self.maybe_start_compaction();
                }
            }
            Input::Admin(AdminRequest(request)) => self.on_admin(request, now),
            Input::Shutdown => {}
        }
        Ok(())
    }

    fn on_command(&mut self, conn: ConnId, command: Result<Command, ParseError>, now: u64) {
        if !self.outbox.is_accepting(conn) {
            return;
        }
        let command = match command {
            Ok(c) => c,
            Err(e) => {
                debug!(conn = conn.0, code = %e.code(), "rejected line");
                self.reply(conn, &e.to_reply(), None);
                return;
            }
        };
        debug!(conn = conn.0, command = %describe(&command), "command");
        // Connection-level commands (docs/protocol.md 11, 15, 17).
        let answer = match &command {
            Command::Replies { mode } => {
                self.outbox.set_reply_mode(conn, *mode);
                Some(Reply::Replies(*mode))
            }
            Command::Auth { .. } => {
                Some(Reply::error(ErrorCode::BadState, "no users are configured"))
            }
            Command::Topics | Command::Stats { topic: None } => self
                .users
                .get(&conn)
                .map(|user| self.visible(user, &command, now)),
            Command::Cluster => Some(Reply::error(
                ErrorCode::BadState,
                "this broker is a single node, not part of a cluster",
            )),
            _ => None,
        };
        if let Some(reply) = answer {
            self.reply(conn, &reply, None);
            return;
        }
        if Broker::is_mutating(&command) {
            let bound = self
                .broker
                .record_bound(&command, herald_log::FRAME_HEADER_BYTES as u64);
            if let Err(reason) = self.make_room(bound) {
                let reply = Reply::error(
                    ErrorCode::Unavailable,
                    format!("cannot store the change: {reason}"),
                );
                self.reply(conn, &reply, None);
                return;
            }
        }
        let scope = Scope::of(&command);
        self.broker.handle(conn, command, now, &mut self.fx);
        self.apply_effects(Some((conn, scope)));
        self.detach_closing();
    }

    /// `topics` or `stats` of every topic, for a user: only the topics
    /// it may subscribe to (`docs/protocol.md` 15).
    fn visible(&self, user: &User, command: &Command, now: u64) -> Reply {
        let allowed = |topic: &str| crate::auth::may_subscribe(user, topic);
        if matches!(command, Command::Topics) {
            let names = self.broker.topic_names();
            let names: Vec<&str> = names
                .iter()
                .map(|n| n.as_ref())
                .filter(|n| allowed(n))
                .collect();
            Reply::json(&names)
        } else {
            let mut stats = self.broker.stats(None, now);
            stats.topics.retain(|name, _| allowed(name));
            Reply::json(&stats)
        }
    }

    /// Queues `reply` for `conn` (held until `hold` is synced), counting
    /// errors for metrics.
    fn reply(&mut self, conn: ConnId, reply: &Reply, hold: Option<Lsn>) {
        self.telemetry.count_reply(reply);
        self.outbox.reply(conn, reply, hold);
    }

    /// Makes sure the current segment can take `bound` more bytes.
    fn make_room(&mut self, bound: u64) -> Result<(), herald_log::Error> {
        if self.log.has_room(bound) {
            return Ok(());
        }
        let metadata = self.broker.metadata();
        match self.log.rotate(metadata.iter().map(record::to_vec), bound) {
            Ok(()) => {
                if let Some(since) = self.unavailable_since.take() {
                    info!(
                        "log writable again after {:.1}s",
                        since.elapsed().as_secs_f64()
                    );
                }
                Ok(())
            }
            Err(e) => {
                if self.unavailable_since.is_none() {
                    warn!(cause = %e, "cannot start a new log segment; refusing changes until it can");
                    self.unavailable_since = Some(Instant::now());
                }
                Err(e)
            }
        }
    }

    /// Appends the changes in `self.fx` to the log and routes its outputs.
    /// `origin` is the connection whose command produced them, and what its
    /// reply speaks for: the durability tracker says which sync it waits
    /// for.
    fn apply_effects(&mut self, origin: Option<(ConnId, Scope)>) {
        let mut gate = origin
            .map(|(_, scope)| self.durability.gate(scope))
            .unwrap_or_default();
        for change in self.fx.changes.drain(..) {
            // Delivery records only keep the delivery count across a
            // restart: never worth growing a full segment (or failing a
            // write on a full disk) for.
            if matches!(change, Change::Delivered { .. })
                && !self
                    .log
                    .has_room(herald_log::frame_len(record::payload_len(&change)))
            {
                continue;
            }
            let lsn = self.log.append_with(|buf| record::encode(&change, buf));
            self.durability.appended(&change, lsn, &mut gate);
        }
        let hold = self.durability.hold_until(gate);
        let origin = origin.map(|(conn, _)| conn);
        for output in self.fx.outputs.drain(..) {
            match output {
                Output::Reply { conn, reply } => {
                    let hold = if Some(conn) == origin { hold } else { None };
                    self.telemetry.count_reply(&reply);
                    self.outbox.reply(conn, &reply, hold);
                }
                Output::Deliver {
                    conn,
                    topic,
                    event,
                    deliveries,
                } => self.outbox.deliver(
                    conn,
                    &Delivery {
                        topic: &topic,
                        id: event.id(),
                        priority: event.priority,
                        fields: event.fields(),
                        timestamp: event.timestamp,
                        deliveries,
                    },
                ),
            }
        }
    }

    /// A closing connection gets no more deliveries: the broker forgets it
    /// now (a durable subscriber's in-flight events go back to its queue)
    /// rather than when the socket finally closes.
    fn detach_closing(&mut self) {
        while let Some(conn) = self.outbox.next_closing() {
            self.broker.disconnect(conn, now_ms(), &mut self.fx);
            self.apply_effects(None);
        }
    }

    /// The log is synced up to `lsn`.
    fn on_synced(&mut self, lsn: Lsn) {
        let durable = self.durability.synced(lsn, Instant::now());
        // Held replies first: a publisher that also subscribes sees `+OK
        // published` before its own delivery.
        self.outbox.release(self.durability.synced_lsn());
        if let Some(seq) = durable {
            self.broker.set_durable(seq, now_ms(), &mut self.fx);
            self.apply_effects(None);
        }
    }

    /// Writes what is appended. Under `--fsync interval` the write makes
    /// events deliverable, whose delivery records are written too.
    fn write(&mut self) -> Result<(), BrokerError> {
        loop {
            let written = self.log.write().map_err(BrokerError::Write)?;
            let Some(seq) = self.durability.written(written) else {
                return Ok(());
            };
            self.broker.set_durable(seq, now_ms(), &mut self.fx);
            self.apply_effects(None);
        }
    }

    /// Ends the batch: write, send the released output, hand a big sync to
    /// the fsync thread. Returns the sync plan, for the caller to run an
    /// inline sync.
    fn end_batch(&mut self) -> Result<SyncPlan, BrokerError> {
        self.write()?;
        let plan = self.durability.plan(Instant::now());
        if plan == SyncPlan::Thread
            && let Some(target) = self.log.sync_target()
        {
            self.sync_tx
                .send(SyncRequest { target })
                .map_err(|_| BrokerError::SyncThreadGone)?;
            self.durability.sync_sent();
        }
        self.outbox.flush();
        Ok(plan)
    }

    /// Writes and fdatasyncs on this task, then sends what that released
    /// (and the delivery records it made are written first).
    fn sync_inline(&mut self) -> Result<(), BrokerError> {
        self.write()?;
        if let Some(target) = self.log.sync_target() {
            self.telemetry
                .fsync()
                .time(|| target.sync())
                .map_err(BrokerError::Sync)?;
            self.on_synced(target.lsn());
            self.write()?;
        }
        self.outbox.flush();
        Ok(())
    }
}

mod admin;
mod compaction;
use compaction::Compaction;
