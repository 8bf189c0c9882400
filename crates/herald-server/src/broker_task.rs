//! The broker task: the single owner of the [`Broker`] state and the [`Log`].
//!
//! Connection tasks send it parsed commands through one bounded channel; it
//! answers through one unbounded channel per connection (what it writes there
//! is bounded by the commands a connection sent and by prefetch).
//!
//! One loop iteration is one batch: take every input waiting (up to a cap),
//! apply each command to the broker, append its changes to the log buffer,
//! `write` the buffer once, then release replies. Durability decides when a
//! reply may go out (PROTOCOL.md section 7):
//! - `--fsync always`: a reply whose command recorded a change other than an
//!   ack or delivery waits until the fsync thread reports its LSN synced;
//!   acks only wait for the write, which happened before any release.
//! - `--fsync interval`: every reply goes out after the batch is written.
//!
//! Replies stay in command order per connection: once one reply of a
//! connection is held, everything after it (replies and deliveries) is held
//! behind it. Events are delivered only once durable (the broker's gate,
//! advanced with `set_durable`).
//!
//! It is a tokio task beside the connection tasks. Its file IO is blocking:
//! usually one `pwrite` into the page cache per batch (a second one in
//! interval mode for delivery records), which is short. On the default
//! single-threaded runtime that beats a thread of its own: a command and its
//! reply cross no thread, so a round trip per event (prefetch 1) costs no
//! wake-ups. The fdatasync of every batch runs on the fsync thread; the rare
//! synchronous ones (the old segment at a rotation, the end of a compaction,
//! a graceful stop) pause all connections for one fdatasync each.

use crate::admin::AdminRequest;
use crate::config::{Config, FsyncMode};
use crate::sync::SyncRequest;
use crate::telemetry::Telemetry;
use bytes::{Bytes, BytesMut};
use herald_core::{Broker, Change, ConnId, Effects, Output, Seq, record};
use herald_log::{Log, Lsn};
use herald_proto::{Command, Delivery, ErrorCode, ParseError, Reply, ReplyMode};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

/// What connection tasks and helpers send to the broker task.
pub enum Input {
    /// A new connection and the channel to write to it.
    Connect {
        /// Its id.
        conn: ConnId,
        /// Where its output goes.
        tx: mpsc::UnboundedSender<Outbound>,
    },
    /// Commands read from a connection, in order (parse errors included, so
    /// that their replies keep their place).
    Commands {
        /// The connection.
        conn: ConnId,
        /// Parsed lines.
        commands: Vec<Result<Command, ParseError>>,
    },
    /// The client sent nothing more (EOF): answer what it sent, then close.
    EndOfInput {
        /// The connection.
        conn: ConnId,
    },
    /// The connection is gone.
    Disconnect {
        /// The connection.
        conn: ConnId,
    },
    /// The fsync thread made everything up to `lsn` durable.
    Synced {
        /// Durable up to here.
        lsn: Lsn,
    },
    /// The fsync thread failed: nothing after the last sync may be acknowledged.
    SyncFailed {
        /// The error.
        error: std::io::Error,
    },
    /// Periodic wake-up: interval syncs, compaction, retries.
    Tick,
    /// A read or an operator change from the HTTP API ([`crate::admin`]).
    Admin(AdminRequest),
    /// Flush, sync and stop.
    Shutdown {
        /// Signalled when the log is synced.
        done: oneshot::Sender<()>,
    },
}

/// What the broker task sends a connection task.
#[derive(Debug)]
pub enum Outbound {
    /// Bytes to write.
    Data(Bytes),
    /// Close after writing everything before this.
    Close,
}

/// Most inputs taken in one batch, so that one busy connection cannot delay
/// the replies of a batch forever.
const MAX_INPUTS_PER_BATCH: usize = 1024;
/// Events copied forward per batch while compacting, so compaction never
/// delays publishing by more than a batch.
const COMPACTION_COPIES_PER_BATCH: usize = 2048;
/// Largest unsynced batch synced on the broker task itself rather than the
/// fsync thread (see `request_sync`).
const INLINE_SYNC_MAX_BYTES: u64 = 4096;
/// Interval between fsyncs in `--fsync interval` mode.
const SYNC_INTERVAL_MS: u64 = 1000;

struct ConnState {
    tx: mpsc::UnboundedSender<Outbound>,
    /// Output released in this batch.
    out: BytesMut,
    /// Output waiting for the log to be synced up to an LSN, in order.
    held: VecDeque<Held>,
    /// `quit` was answered or the client sent EOF: nothing more is written
    /// after what is already queued.
    closing: bool,
    /// `replies all|errors` (docs/protocol.md 11).
    reply_mode: ReplyMode,
    close_sent: bool,
}

/// Output held until the log is synced up to `gate`: a reply that waits for
/// the disk, and everything queued behind it.
struct Held {
    gate: Lsn,
    /// The batch that started this chunk. Later replies of the same batch
    /// join it (their LSNs are written by the same write and synced by the
    /// same fsync), so a pipelining publisher costs one chunk per batch.
    batch: u64,
    bytes: BytesMut,
}

/// The broker task's state.
pub struct BrokerTask {
    broker: Broker,
    log: Log,
    config: Config,
    conns: rustc_hash_map::Map<ConnState>,
    /// Connections with output to send at the end of the batch.
    dirty: Vec<ConnId>,
    /// Connections with held output.
    holding: Vec<ConnId>,
    /// Connections to close once their output is sent.
    to_close: Vec<ConnId>,
    /// Connections that quit or sent EOF, to detach from the broker.
    detaching: Vec<ConnId>,
    /// (LSN of a published event's record, its Seq), oldest first.
    unsynced_events: VecDeque<(Lsn, Seq)>,
    synced: Lsn,
    /// The newest appended change that needs a sync under `--fsync always`.
    last_sync_needed: Lsn,
    sync_in_flight: bool,
    sync_tx: std_mpsc::Sender<SyncRequest>,
    last_sync: Instant,
    compaction: Option<Compaction>,
    unavailable_since: Option<Instant>,
    fatal: Option<String>,
    fx: Effects,
    /// Number of the current batch.
    batch: u64,
    /// `-ERR` counts and fdatasync latency, for metrics.
    telemetry: Arc<Telemetry>,
}

mod rustc_hash_map {
    //! A `ConnId`-keyed map; connection ids are small counters, so the
    //! default SipHash would only cost time.
    use herald_core::ConnId;
    use std::collections::HashMap;
    use std::hash::BuildHasherDefault;

    #[derive(Default)]
    pub struct IdHasher(u64);
    impl std::hash::Hasher for IdHasher {
        fn finish(&self) -> u64 {
            self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        }
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.0 = (self.0 << 8) | b as u64;
            }
        }
        fn write_u64(&mut self, n: u64) {
            self.0 = n;
        }
    }
    pub type Map<V> = HashMap<ConnId, V, BuildHasherDefault<IdHasher>>;
}

/// Replies that `replies errors` leaves out (docs/protocol.md 11).
fn is_suppressible(reply: &Reply) -> bool {
    matches!(
        reply,
        Reply::Published { .. }
            | Reply::Duplicate { .. }
            | Reply::Acked { .. }
            | Reply::Nacked { .. }
            | Reply::Touched { .. }
    )
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

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl BrokerTask {
    /// A broker task over a recovered broker and its open log.
    pub fn new(
        broker: Broker,
        log: Log,
        config: Config,
        sync_tx: std_mpsc::Sender<SyncRequest>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        let synced = log.written();
        BrokerTask {
            broker,
            log,
            config,
            conns: Default::default(),
            dirty: Vec::new(),
            holding: Vec::new(),
            to_close: Vec::new(),
            detaching: Vec::new(),
            unsynced_events: VecDeque::new(),
            synced,
            last_sync_needed: Lsn::default(),
            sync_in_flight: false,
            sync_tx,
            last_sync: Instant::now(),
            compaction: None,
            unavailable_since: None,
            fatal: None,
            fx: Effects::new(),
            batch: 0,
            telemetry,
        }
    }

    /// Runs until `Shutdown` or until every sender is gone. Returns an error
    /// if the log failed (the broker stops rather than acknowledge what it
    /// could not store).
    pub async fn run(mut self, mut rx: mpsc::Receiver<Input>) -> Result<(), String> {
        let mut inputs = Vec::with_capacity(MAX_INPUTS_PER_BATCH);
        let mut shutdown: Option<oneshot::Sender<()>> = None;
        loop {
            // Sleep until the next input, or until the broker has something
            // timed to do (a deadline, a due time, an expiry).
            let first = match self.broker.next_wakeup() {
                Some(at) => {
                    let wait = Duration::from_millis(at.saturating_sub(now_ms()));
                    tokio::select! {
                        biased;
                        input = rx.recv() => match input {
                            Some(input) => Some(input),
                            None => break,
                        },
                        () = tokio::time::sleep(wait) => None,
                    }
                }
                None => match rx.recv().await {
                    Some(input) => Some(input),
                    None => break,
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
            self.batch += 1;
            for input in inputs.drain(..) {
                match input {
                    Input::Shutdown { done } => shutdown = Some(done),
                    other => self.on_input(other, now),
                }
            }
            if self.broker.next_wakeup().is_some_and(|at| at <= now) {
                self.broker.tick(now, &mut self.fx);
                self.apply_effects(None, false);
            }
            if self.compaction.is_some() {
                self.compact_step();
            }
            self.end_batch();
            if let Some(reason) = self.fatal.take() {
                self.close_all();
                return Err(reason);
            }
            if shutdown.is_some() {
                break;
            }
        }
        // Graceful stop: everything written is synced, so every held reply
        // may go out before the connections close.
        match self.log.sync() {
            Ok(lsn) => self.on_synced(lsn),
            Err(e) => error!(cause = %e, "final log sync failed"),
        }
        // Releasing held output can deliver events, whose delivery records
        // (the redelivered flag after the restart) must reach the disk too.
        if let Err(e) = self.log.sync() {
            error!(cause = %e, "final log sync failed");
        }
        self.flush_outputs();
        self.close_all();
        info!(
            "log synced ({} bytes in {} segments)",
            self.log.total_bytes(),
            self.log.segments().len()
        );
        if let Some(done) = shutdown {
            let _ = done.send(());
        }
        Ok(())
    }

    fn on_input(&mut self, input: Input, now: u64) {
        match input {
            Input::Connect { conn, tx } => {
                self.broker.connect(conn);
                self.conns.insert(
                    conn,
                    ConnState {
                        tx,
                        out: BytesMut::new(),
                        held: VecDeque::new(),
                        closing: false,
                        close_sent: false,
                        reply_mode: self.config.replies,
                    },
                );
            }
            Input::Commands { conn, commands } => {
                for command in commands {
                    self.on_command(conn, command, now);
                }
            }
            Input::EndOfInput { conn } => {
                self.close_after_output(conn);
                self.detach_closing();
            }
            Input::Disconnect { conn } => {
                self.broker.disconnect(conn, now, &mut self.fx);
                self.conns.remove(&conn);
                self.apply_effects(None, false);
            }
            Input::Synced { lsn } => {
                self.sync_in_flight = false;
                self.last_sync = Instant::now();
                self.on_synced(lsn);
            }
            Input::SyncFailed { error } => {
                self.sync_in_flight = false;
                error!(cause = %error, "fdatasync of the log failed; stopping without acknowledging unsynced changes");
                self.fatal = Some(format!("fdatasync failed: {error}"));
            }
            Input::Tick => {
                if self.compaction.is_none() {
                    self.maybe_start_compaction();
                }
            }
            Input::Admin(AdminRequest(request)) => self.on_admin(request, now),
            Input::Shutdown { .. } => {}
        }
    }

    fn on_command(&mut self, conn: ConnId, command: Result<Command, ParseError>, now: u64) {
        if self.conns.get(&conn).is_none_or(|c| c.closing) {
            return;
        }
        let command = match command {
            Ok(c) => c,
            Err(e) => {
                debug!(conn = conn.0, code = %e.code(), "rejected line");
                self.push_reply(conn, &e.to_reply(), Lsn::default());
                return;
            }
        };
        debug!(conn = conn.0, command = %describe(&command), "command");
        // Connection-level commands (docs/protocol.md 11, 15, 17).
        match &command {
            Command::Replies { mode } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.reply_mode = *mode;
                }
                self.push_reply(conn, &Reply::Replies(*mode), Lsn::default());
                return;
            }
            Command::Auth { .. } => {
                let reply = Reply::error(ErrorCode::BadState, "no users are configured");
                self.push_reply(conn, &reply, Lsn::default());
                return;
            }
            Command::Cluster => {
                let reply = Reply::error(
                    ErrorCode::BadState,
                    "this broker is a single node, not part of a cluster",
                );
                self.push_reply(conn, &reply, Lsn::default());
                return;
            }
            _ => {}
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
                self.push_reply(conn, &reply, Lsn::default());
                return;
            }
        }
        // Acks promise less (section 7): they never wait for fdatasync.
        let waits_for_earlier = Broker::is_mutating(&command)
            && !matches!(command, Command::Ack { .. } | Command::Nack { .. });
        self.broker.handle(conn, command, now, &mut self.fx);
        self.apply_effects(Some(conn), waits_for_earlier);
        self.detach_closing();
    }

    /// Makes sure the current segment can take `bound` more bytes.
    fn make_room(&mut self, bound: u64) -> Result<(), String> {
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
                Err(e.to_string())
            }
        }
    }

    /// Logs the changes in `self.fx` and routes its outputs. `origin` is the
    /// connection whose command produced them: its reply waits for the
    /// changes to be durable, and, if `waits_for_earlier`, for every earlier
    /// change that needs a sync (a `+OK duplicate` or `+OK created` speaks
    /// for a record another connection may have just appended).
    fn apply_effects(&mut self, origin: Option<ConnId>, waits_for_earlier: bool) {
        let always = self.config.fsync == FsyncMode::Always;
        let mut gate = if always && waits_for_earlier {
            self.last_sync_needed
        } else {
            Lsn::default()
        };
        for change in self.fx.changes.drain(..) {
            // Delivery records only keep the `redelivered` flag across a
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
            if let Some(seq) = change.published_seq() {
                self.unsynced_events.push_back((lsn, seq));
            }
            if always && change.needs_sync() {
                gate = lsn;
                self.last_sync_needed = lsn;
            }
        }
        let outputs = std::mem::take(&mut self.fx.outputs);
        for output in &outputs {
            match output {
                Output::Reply { conn, reply } => {
                    let gate = if Some(*conn) == origin {
                        gate
                    } else {
                        Lsn::default()
                    };
                    self.push_reply(*conn, reply, gate);
                }
                Output::Deliver {
                    conn,
                    topic,
                    event,
                    deliveries,
                } => {
                    if let Some(buf) = self.output_buffer(*conn, Lsn::default()) {
                        Delivery {
                            topic,
                            id: event.id(),
                            priority: event.priority,
                            fields: event.fields(),
                            timestamp: event.timestamp,
                            // v2: the core does not count deliveries yet;
                            // a redelivery is at least the second.
                            deliveries: *deliveries,
                        }
                        .encode(buf);
                    }
                }
            }
        }
        // Keep the vector's capacity for the next command.
        self.fx.outputs = outputs;
        self.fx.outputs.clear();
    }

    fn push_reply(&mut self, conn: ConnId, reply: &Reply, gate: Lsn) {
        self.telemetry.count_reply(reply);
        // In `replies errors` mode a suppressed reply still keeps its place:
        // asking for the buffer holds later output behind its gate.
        let suppressed = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.reply_mode == ReplyMode::Errors && is_suppressible(reply));
        if let Some(buf) = self.output_buffer(conn, gate)
            && !suppressed
        {
            reply.encode(buf);
        }
        if *reply == Reply::Bye {
            self.close_after_output(conn);
        }
    }

    /// Nothing more is written to `conn` after what is already queued; it
    /// is closed once that is sent.
    fn close_after_output(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn)
            && !c.closing
        {
            c.closing = true;
            if c.held.is_empty() {
                self.to_close.push(conn);
            }
            self.detaching.push(conn);
        }
    }

    /// A closing connection gets no more deliveries: the broker forgets it
    /// now (a durable subscriber's in-flight events go back to its queue,
    /// unsent ones unflagged) rather than when the socket finally closes.
    fn detach_closing(&mut self) {
        while let Some(conn) = self.detaching.pop() {
            self.broker.disconnect(conn, now_ms(), &mut self.fx);
            self.apply_effects(None, false);
        }
    }

    /// Where the next output for `conn` goes: its released buffer, or the
    /// held chunk it must wait in (behind `gate`, or behind anything already
    /// held for it). `None` once the connection is closing or gone.
    fn output_buffer(&mut self, conn: ConnId, gate: Lsn) -> Option<&mut BytesMut> {
        let (synced, batch) = (self.synced, self.batch);
        let c = self.conns.get_mut(&conn)?;
        if c.closing {
            return None;
        }
        if gate > synced {
            let joins_last = c.held.back().is_some_and(|h| h.batch == batch);
            if !joins_last {
                if c.held.is_empty() {
                    self.holding.push(conn);
                }
                c.held.push_back(Held {
                    gate,
                    batch,
                    bytes: BytesMut::new(),
                });
            }
            let last = c.held.back_mut()?;
            last.gate = last.gate.max(gate);
            return Some(&mut last.bytes);
        }
        if let Some(last) = c.held.back_mut() {
            return Some(&mut last.bytes);
        }
        if c.out.is_empty() {
            self.dirty.push(conn);
        }
        Some(&mut c.out)
    }

    fn on_synced(&mut self, lsn: Lsn) {
        if lsn > self.synced {
            self.synced = lsn;
        }
        let mut durable = None;
        while let Some(&(event_lsn, seq)) = self.unsynced_events.front() {
            if event_lsn > self.synced {
                break;
            }
            durable = Some(seq);
            self.unsynced_events.pop_front();
        }
        if let Some(seq) = durable {
            self.release_held();
            self.broker.set_durable(seq, now_ms(), &mut self.fx);
            self.apply_effects(None, false);
        } else {
            self.release_held();
        }
    }

    fn release_held(&mut self) {
        let synced = self.synced;
        let holding = std::mem::take(&mut self.holding);
        for conn in holding {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            while let Some(held) = c.held.front() {
                if held.gate > synced {
                    break;
                }
                if let Some(held) = c.held.pop_front() {
                    if c.out.is_empty() {
                        self.dirty.push(conn);
                        // Most often the whole output: take it without a copy.
                        c.out = held.bytes;
                    } else {
                        c.out.extend_from_slice(&held.bytes);
                    }
                }
            }
            if !c.held.is_empty() {
                self.holding.push(conn);
            } else if c.closing {
                self.to_close.push(conn);
            }
        }
    }

    /// Write the batch, advance durability, send output, ask for a sync.
    fn end_batch(&mut self) {
        if let Err(e) = self.log.write() {
            error!(cause = %e, "log write failed; stopping without acknowledging unwritten changes");
            self.fatal = Some(format!("log write failed: {e}"));
            return;
        }
        if self.config.fsync == FsyncMode::Interval {
            // Written to the OS is the durability this mode promises.
            self.on_written_interval();
        }
        self.request_sync();
        // An inline sync may have delivered events: their delivery records
        // are written before the deliveries leave, as for every batch.
        if self.log.appended() > self.log.written()
            && let Err(e) = self.log.write()
        {
            error!(cause = %e, "log write failed; stopping without acknowledging unwritten changes");
            self.fatal = Some(format!("log write failed: {e}"));
            return;
        }
        self.flush_outputs();
    }

    fn on_written_interval(&mut self) {
        if let Some(&(_, seq)) = self.unsynced_events.back() {
            self.unsynced_events.clear();
            self.broker.set_durable(seq, now_ms(), &mut self.fx);
            self.apply_effects(None, false);
        }
        // Delivery records made just now go out with this batch too.
        if let Err(e) = self.log.write() {
            error!(cause = %e, "log write failed");
            self.fatal = Some(format!("log write failed: {e}"));
        }
    }

    fn request_sync(&mut self) {
        if self.sync_in_flight {
            return;
        }
        let written = self.log.written();
        if written <= self.synced {
            return;
        }
        if self.config.fsync == FsyncMode::Interval
            && self.last_sync.elapsed() < Duration::from_millis(SYNC_INTERVAL_MS)
        {
            return;
        }
        if let Some(target) = self.log.sync_target() {
            let lsn = target.lsn();
            // A small batch at low load is synced right here: handing it to
            // the fsync thread and back costs two thread wake-ups, more than
            // the fdatasync itself, and nothing else is waiting to overlap.
            // Big batches go to the thread so that the next batch is built
            // while the disk works (group commit).
            let unsynced = lsn.0.saturating_sub(self.synced.0);
            if self.config.fsync == FsyncMode::Always && unsynced <= INLINE_SYNC_MAX_BYTES {
                match self.telemetry.fsync().time(|| target.sync()) {
                    Ok(()) => {
                        self.last_sync = Instant::now();
                        self.on_synced(lsn);
                    }
                    Err(error) => {
                        error!(cause = %error, "fdatasync of the log failed; stopping without acknowledging unsynced changes");
                        self.fatal = Some(format!("fdatasync failed: {error}"));
                    }
                }
                return;
            }
            if self.sync_tx.send(SyncRequest { target }).is_ok() {
                self.sync_in_flight = true;
            } else {
                self.fatal = Some("the fsync thread is gone".into());
            }
        }
    }

    fn flush_outputs(&mut self) {
        for conn in self.dirty.drain(..) {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if c.out.is_empty() {
                continue;
            }
            let data = c.out.split().freeze();
            let _ = c.tx.send(Outbound::Data(data));
        }
        for conn in self.to_close.drain(..) {
            if let Some(c) = self.conns.get_mut(&conn)
                && !c.close_sent
            {
                c.close_sent = true;
                let _ = c.tx.send(Outbound::Close);
            }
        }
    }

    fn close_all(&mut self) {
        for (_, c) in self.conns.drain() {
            let _ = c.tx.send(Outbound::Close);
        }
    }
}

mod admin;
mod compaction;
use compaction::Compaction;
