//! The outbox: what each connection is sent, and when.
//!
//! Owns every connection's output between the broker and its connection
//! task: the bytes released for this batch (`out`), the chunks held until
//! the log is synced up to an LSN (`held`), the reply mode (`replies
//! all|errors`, `docs/protocol.md` 11) and closing. It knows nothing of the
//! log or of which reply needs which sync: the durability tracker decides
//! that and passes it in as `hold: Option<Lsn>`; the outbox only keeps order.
//!
//! Invariants:
//! - Per connection, output leaves in the order it was given (replies in
//!   command order, docs/protocol.md 3). Once something is held, everything
//!   after it (replies that need no sync, deliveries, pongs) is held behind
//!   it, in the same or a later chunk.
//! - A held chunk is released only when the synced LSN reaches its gate, and
//!   chunks are released front to back, so a later chunk never overtakes an
//!   earlier one even when its gate is lower.
//! - Held output of one batch joins one chunk (its gate raised to the
//!   highest): every LSN of a batch is written by one write and synced by
//!   the same fdatasync, so a pipelining publisher costs one chunk per batch.
//! - A reply left out by `replies errors` still takes its place: it is
//!   written nowhere, but its gate holds what follows.
//! - Once closing (`+OK bye` queued or the client's EOF), nothing more is
//!   accepted for the connection, and `Outbound::Close` follows the last
//!   held chunk.

use bytes::{Bytes, BytesMut};
use herald_core::ConnId;
use herald_log::Lsn;
use herald_proto::{Delivery, Reply, ReplyMode};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use tokio::sync::mpsc;

/// What the broker task sends a connection task.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Bytes to write.
    Data(Bytes),
    /// Close after writing everything before this.
    Close,
}

/// Every connection's pending output.
#[derive(Default)]
pub(crate) struct Outbox {
    conns: FxHashMap<ConnId, ConnOutput>,
    /// Connections with released output to send at the next flush.
    dirty: Vec<ConnId>,
    /// Connections with held output.
    holding: Vec<ConnId>,
    /// Connections to close at the next flush (their held output is gone).
    to_close: Vec<ConnId>,
    /// Connections that started closing, for the broker to forget.
    closing: Vec<ConnId>,
    /// Number of the current batch, to join held chunks of one batch.
    batch: u64,
}

struct ConnOutput {
    tx: mpsc::UnboundedSender<Outbound>,
    /// Output released in this batch.
    out: BytesMut,
    /// Output waiting for the log to be synced up to an LSN, in order.
    held: VecDeque<Held>,
    /// `+OK bye` was queued or the client sent EOF.
    closing: bool,
    close_sent: bool,
    reply_mode: ReplyMode,
}

/// Output held until the log is synced up to `gate`: a reply that waits for
/// the disk, and everything queued behind it.
struct Held {
    gate: Lsn,
    /// The batch that started this chunk.
    batch: u64,
    bytes: BytesMut,
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

impl Outbox {
    /// An outbox with no connections.
    pub(crate) fn new() -> Self {
        Outbox::default()
    }

    /// A new connection whose output goes to `tx`.
    pub(crate) fn open(
        &mut self,
        conn: ConnId,
        tx: mpsc::UnboundedSender<Outbound>,
        reply_mode: ReplyMode,
    ) {
        self.conns.insert(
            conn,
            ConnOutput {
                tx,
                out: BytesMut::new(),
                held: VecDeque::new(),
                closing: false,
                close_sent: false,
                reply_mode,
            },
        );
    }

    /// The connection is gone: its output, held or not, with it.
    pub(crate) fn remove(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    /// Whether `conn` is open and not closing (its commands still count).
    pub(crate) fn is_accepting(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| !c.closing)
    }

    /// `replies all|errors` for `conn` from now on.
    pub(crate) fn set_reply_mode(&mut self, conn: ConnId, mode: ReplyMode) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.reply_mode = mode;
        }
    }

    /// A new batch starts: held output from now on starts new chunks.
    pub(crate) fn start_batch(&mut self) {
        self.batch += 1;
    }

    /// Queues `reply` for `conn`, held until the log is synced up to `hold`
    /// if given (and in any case behind anything held before it). `+OK bye`
    /// closes the connection after it.
    pub(crate) fn reply(&mut self, conn: ConnId, reply: &Reply, hold: Option<Lsn>) {
        let suppressed = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.reply_mode == ReplyMode::Errors && is_suppressible(reply));
        // A suppressed reply still asks for its buffer: that is what holds
        // later output behind its gate.
        if let Some(buf) = self.buffer(conn, hold)
            && !suppressed
        {
            reply.encode(buf);
        }
        if *reply == Reply::Bye {
            self.close_after_output(conn);
        }
    }

    /// Queues a delivery for `conn`. The event is durable already (the
    /// broker's gate), so it waits only for what is held before it.
    pub(crate) fn deliver(&mut self, conn: ConnId, delivery: &Delivery<'_>) {
        if let Some(buf) = self.buffer(conn, None) {
            delivery.encode(buf);
        }
    }

    /// Nothing more is queued for `conn`; it is closed once what is queued
    /// has been sent.
    pub(crate) fn close_after_output(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn)
            && !c.closing
        {
            c.closing = true;
            if c.held.is_empty() {
                self.to_close.push(conn);
            }
            self.closing.push(conn);
        }
    }

    /// A connection that started closing since the last call, to be
    /// forgotten by the broker.
    pub(crate) fn next_closing(&mut self) -> Option<ConnId> {
        self.closing.pop()
    }

    /// Where the next output for `conn` goes: its released buffer, or the
    /// held chunk it must wait in. `None` once the connection is closing or
    /// gone.
    fn buffer(&mut self, conn: ConnId, hold: Option<Lsn>) -> Option<&mut BytesMut> {
        let batch = self.batch;
        let c = self.conns.get_mut(&conn)?;
        if c.closing {
            return None;
        }
        if let Some(gate) = hold {
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

    /// The log is synced up to `synced`: held chunks whose gate it reached
    /// are released, front to back.
    pub(crate) fn release(&mut self, synced: Lsn) {
        let holding = std::mem::take(&mut self.holding);
        for conn in holding {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            while c.held.front().is_some_and(|h| h.gate <= synced) {
                let Some(held) = c.held.pop_front() else {
                    break;
                };
                if c.out.is_empty() {
                    self.dirty.push(conn);
                    // Most often the whole output: take it without a copy.
                    c.out = held.bytes;
                } else {
                    c.out.extend_from_slice(&held.bytes);
                }
            }
            if !c.held.is_empty() {
                self.holding.push(conn);
            } else if c.closing {
                self.to_close.push(conn);
            }
        }
    }

    /// Whether some connection has released output not yet sent.
    pub(crate) fn has_released(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Hands every connection its released output, then closes those that
    /// are done.
    pub(crate) fn flush(&mut self) {
        for conn in self.dirty.drain(..) {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if c.out.is_empty() {
                continue;
            }
            // The whole buffer, not `split()`: the connection frees it
            // once written, and an idle connection keeps no capacity here.
            let data = std::mem::take(&mut c.out).freeze();
            // A connection task that is gone reports `Disconnect` soon.
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

    /// Closes every connection; held output is dropped (the broker stops
    /// without acknowledging what the log did not store).
    pub(crate) fn close_all(&mut self) {
        for (_, c) in self.conns.drain() {
            let _ = c.tx.send(Outbound::Close);
        }
        self.dirty.clear();
        self.holding.clear();
        self.to_close.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const A: ConnId = ConnId(1);
    const B: ConnId = ConnId(2);

    struct Fixture {
        outbox: Outbox,
        rx: FxHashMap<ConnId, mpsc::UnboundedReceiver<Outbound>>,
    }

    impl Fixture {
        fn new(conns: &[(ConnId, ReplyMode)]) -> Fixture {
            let mut outbox = Outbox::new();
            let mut rx = FxHashMap::default();
            for &(conn, mode) in conns {
                let (tx, r) = mpsc::unbounded_channel();
                outbox.open(conn, tx, mode);
                rx.insert(conn, r);
            }
            outbox.start_batch();
            Fixture { outbox, rx }
        }

        /// Flushes, then returns what `conn` was sent: the text, and
        /// whether a close followed.
        fn sent(&mut self, conn: ConnId) -> (String, bool) {
            self.outbox.flush();
            let rx = self.rx.get_mut(&conn).expect("connection");
            let (mut text, mut closed) = (String::new(), false);
            while let Ok(msg) = rx.try_recv() {
                match msg {
                    Outbound::Data(data) => {
                        assert!(!closed, "data after close");
                        text.push_str(std::str::from_utf8(&data).expect("utf-8"));
                    }
                    Outbound::Close => closed = true,
                }
            }
            (text, closed)
        }

        fn text(&mut self, conn: ConnId) -> String {
            self.sent(conn).0
        }
    }

    fn published(id: &str) -> Reply {
        Reply::Published {
            topic: Arc::from("t"),
            id: Arc::from(id),
        }
    }

    fn delivery(id: &str) -> Delivery<'_> {
        Delivery {
            topic: "t",
            id,
            priority: 0,
            fields: b"",
            timestamp: 1,
            deliveries: 1,
        }
    }

    #[test]
    fn output_without_a_gate_is_released_at_the_next_flush() {
        let mut f = Fixture::new(&[(A, ReplyMode::All)]);
        f.outbox.reply(A, &Reply::Pong, None);
        f.outbox.deliver(A, &delivery("1"));
        assert!(f.outbox.has_released());
        assert_eq!(
            f.text(A),
            "+OK pong\r\n{\"topic\":\"t\",\"id\":\"1\",\"priority\":0,\"timestamp\":1}\r\n"
        );
        assert!(!f.outbox.has_released());
    }

    #[test]
    fn a_held_reply_holds_back_a_later_pong() {
        let mut f = Fixture::new(&[(A, ReplyMode::All)]);
        f.outbox.reply(A, &published("1"), Some(Lsn(100)));
        f.outbox.start_batch();
        f.outbox.reply(A, &Reply::Pong, None);
        assert_eq!(f.text(A), "");
        f.outbox.release(Lsn(99));
        assert_eq!(f.text(A), "");
        f.outbox.release(Lsn(100));
        assert_eq!(f.text(A), "+OK published t 1\r\n+OK pong\r\n");
    }

    #[test]
    fn a_held_reply_holds_back_a_later_delivery() {
        let mut f = Fixture::new(&[(A, ReplyMode::All)]);
        f.outbox
            .reply(A, &Reply::subscribed(Arc::from("t")), Some(Lsn(10)));
        f.outbox.deliver(A, &delivery("1"));
        assert_eq!(f.text(A), "");
        f.outbox.release(Lsn(10));
        let text = f.text(A);
        assert!(text.starts_with("+OK subscribed t\r\n{"), "{text}");
    }

    #[test]
    fn a_suppressed_reply_still_holds_a_later_pong() {
        let mut f = Fixture::new(&[(A, ReplyMode::Errors)]);
        f.outbox.reply(A, &published("1"), Some(Lsn(100)));
        f.outbox.reply(A, &Reply::Pong, None);
        assert_eq!(f.text(A), "");
        f.outbox.release(Lsn(100));
        assert_eq!(f.text(A), "+OK pong\r\n");
    }

    #[test]
    fn reply_mode_changes_apply_to_later_replies_only() {
        let mut f = Fixture::new(&[(A, ReplyMode::All)]);
        f.outbox.reply(A, &published("1"), None);
        f.outbox.set_reply_mode(A, ReplyMode::Errors);
        f.outbox.reply(A, &published("2"), None);
        f.outbox.reply(
            A,
            &Reply::error(herald_proto::ErrorCode::NoTopic, "x"),
            None,
        );
        assert_eq!(f.text(A), "+OK published t 1\r\n-ERR no_topic x\r\n");
    }

    #[test]
    fn held_replies_of_one_batch_share_a_chunk_and_its_highest_gate() {
        let mut f = Fixture::new(&[(A, ReplyMode::All)]);
        f.outbox.reply(A, &published("1"), Some(Lsn(10)));
        f.outbox.reply(A, &published("2"), Some(Lsn(20)));
        // One fdatasync covers the whole batch: a sync that reached only the
        // first LSN was not the batch's sync, and releases nothing.
        f.outbox.release(Lsn(10));
        assert_eq!(f.text(A), "");
        f.outbox.release(Lsn(20));
        assert_eq!(f.text(A), "+OK published t 1\r\n+OK published t 2\r\n");
    }

    #[test]
    fn chunks_of_later_batches_are_released_in_order() {
        let mut f = Fixture::new(&[(A, ReplyMode::All)]);
        f.outbox.reply(A, &published("1"), Some(Lsn(10)));
        f.outbox.start_batch();
        f.outbox.reply(A, &published("2"), Some(Lsn(20)));
        f.outbox.start_batch();
        f.outbox.reply(A, &Reply::Pong, None);
        f.outbox.release(Lsn(10));
        assert_eq!(f.text(A), "+OK published t 1\r\n");
        f.outbox.release(Lsn(20));
        assert_eq!(f.text(A), "+OK published t 2\r\n+OK pong\r\n");
    }

    #[test]
    fn a_later_chunk_with_a_lower_gate_waits_for_the_earlier_one() {
        let mut f = Fixture::new(&[(A, ReplyMode::All)]);
        f.outbox.reply(A, &published("1"), Some(Lsn(20)));
        f.outbox.start_batch();
        f.outbox.reply(
            A,
            &Reply::Duplicate {
                topic: Arc::from("t"),
                id: Arc::from("0"),
            },
            Some(Lsn(5)),
        );
        f.outbox.release(Lsn(10));
        assert_eq!(f.text(A), "");
        f.outbox.release(Lsn(20));
        assert_eq!(f.text(A), "+OK published t 1\r\n+OK duplicate t 0\r\n");
    }

    #[test]
    fn one_connection_waiting_does_not_hold_back_another() {
        let mut f = Fixture::new(&[(A, ReplyMode::All), (B, ReplyMode::All)]);
        f.outbox.reply(A, &published("1"), Some(Lsn(10)));
        f.outbox.reply(B, &Reply::Pong, None);
        f.outbox.deliver(B, &delivery("0"));
        assert_eq!(f.text(A), "");
        assert!(f.text(B).starts_with("+OK pong\r\n{"));
    }

    #[test]
    fn bye_closes_after_the_held_output_is_released() {
        let mut f = Fixture::new(&[(A, ReplyMode::All)]);
        f.outbox.reply(A, &published("1"), Some(Lsn(10)));
        f.outbox.reply(A, &Reply::Bye, None);
        assert_eq!(f.outbox.next_closing(), Some(A));
        assert!(!f.outbox.is_accepting(A));
        // Nothing is queued after `+OK bye`.
        f.outbox.reply(A, &Reply::Pong, None);
        f.outbox.deliver(A, &delivery("2"));
        assert_eq!(f.sent(A), (String::new(), false));
        f.outbox.release(Lsn(10));
        assert_eq!(
            f.sent(A),
            ("+OK published t 1\r\n+OK bye\r\n".to_string(), true)
        );
    }

    #[test]
    fn end_of_input_closes_after_what_is_queued() {
        let mut f = Fixture::new(&[(A, ReplyMode::All)]);
        f.outbox.reply(A, &Reply::Pong, None);
        f.outbox.close_after_output(A);
        f.outbox.close_after_output(A);
        assert_eq!(f.outbox.next_closing(), Some(A));
        assert_eq!(f.outbox.next_closing(), None);
        assert_eq!(f.sent(A), ("+OK pong\r\n".to_string(), true));
    }

    #[test]
    fn close_all_drops_held_output() {
        let mut f = Fixture::new(&[(A, ReplyMode::All)]);
        f.outbox.reply(A, &published("1"), Some(Lsn(10)));
        f.outbox.close_all();
        assert_eq!(f.sent(A), (String::new(), true));
    }
}
