//! Which reply waits for which sync (`docs/protocol.md` section 10, "What
//! each reply means"), observed from outside with storages that make the
//! fdatasync slow or hold it until the test lets it finish:
//! - a slow fdatasync never reorders replies;
//! - a reply that speaks for another connection's change (`+OK duplicate`,
//!   `+OK created` of an existing topic) waits for that change's sync;
//! - output that waits for no sync (an ack) leaves before the broker task
//!   blocks in an inline fdatasync.

mod common;

use common::{Client, Server};
use herald_log::{StdStorage, Storage};
use herald_server::{BrokerError, Config, Error};
use std::fs::File;
use std::io;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// A disk whose fdatasync takes a few milliseconds longer.
#[derive(Debug)]
struct SlowSync;

impl Storage for SlowSync {
    fn sync_data(&self, file: &File) -> io::Result<()> {
        std::thread::sleep(Duration::from_millis(3));
        StdStorage.sync_data(file)
    }
}

/// A disk whose next fdatasync, once armed, waits until the test decides
/// how it ends; it also remembers every byte written, so a test can wait
/// until the broker has written a given record.
#[derive(Debug, Clone, Default)]
struct HeldSync {
    state: Arc<(Mutex<HeldState>, Condvar)>,
}

#[derive(Debug, Default)]
struct HeldState {
    armed: bool,
    waiting: bool,
    verdict: Option<bool>,
    written: Vec<u8>,
}

/// Longest a held sync or a test waits on the other: a broken test fails
/// rather than hangs.
const HOLD_LIMIT: Duration = Duration::from_secs(20);

impl HeldSync {
    fn lock(&self) -> std::sync::MutexGuard<'_, HeldState> {
        self.state.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits (up to `HOLD_LIMIT`) until `done` holds.
    fn wait(&self, what: &str, done: impl Fn(&HeldState) -> bool) {
        let guard = self.lock();
        let (guard, timeout) = self
            .state
            .1
            .wait_timeout_while(guard, HOLD_LIMIT, |s| !done(s))
            .unwrap_or_else(PoisonError::into_inner);
        drop(guard);
        assert!(!timeout.timed_out(), "waited in vain for {what}");
    }

    /// The next fdatasync waits for [`finish`](Self::finish).
    fn hold_next(&self) {
        self.lock().armed = true;
    }

    /// Waits until the held fdatasync has started.
    fn wait_for_held_sync(&self) {
        self.wait("the held fdatasync", |s| s.waiting);
    }

    /// Waits until bytes containing `needle` were written.
    fn wait_for_write_of(&self, needle: &str) {
        let needle = needle.as_bytes();
        self.wait(needle.escape_ascii().to_string().as_str(), |s| {
            s.written.windows(needle.len()).any(|w| w == needle)
        });
    }

    /// Lets the held fdatasync finish, with success or an error.
    fn finish(&self, ok: bool) {
        self.lock().verdict = Some(ok);
        self.state.1.notify_all();
    }
}

impl Storage for HeldSync {
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        StdStorage.write_at(file, buf, offset)?;
        self.lock().written.extend_from_slice(buf);
        self.state.1.notify_all();
        Ok(())
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        let mut state = self.lock();
        if !std::mem::take(&mut state.armed) {
            drop(state);
            return StdStorage.sync_data(file);
        }
        state.waiting = true;
        self.state.1.notify_all();
        let (mut state, _) = self
            .state
            .1
            .wait_timeout_while(state, HOLD_LIMIT, |s| s.verdict.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        state.waiting = false;
        match state.verdict.take() {
            Some(false) => Err(io::Error::other("injected fdatasync failure")),
            _ => {
                drop(state);
                StdStorage.sync_data(file)
            }
        }
    }
}

fn event(id: &str, msg_bytes: usize) -> String {
    format!(r#"pub t {{"id":"{id}","msg":"{}"}}"#, "m".repeat(msg_bytes))
}

#[test]
fn a_slow_fsync_does_not_reorder_replies() {
    const ROUNDS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(Config::new(dir.path()), Arc::new(SlowSync));
    // The keeper keeps every event pending, so that a second copy is a
    // duplicate whatever the worker has acked.
    keeper_on_t(&server);
    let mut publisher = server.connect();
    let mut sub = server.connect();
    assert_eq!(sub.cmd("name worker"), "+OK name worker");
    assert_eq!(sub.cmd("sub t 4"), "+OK subscribed t");

    // The subscriber acks each delivery and pings, from its own thread,
    // while the publisher pipelines everything at once: replies that wait
    // for a sync (publishes, small and over the inline limit, a duplicate)
    // between replies that wait for none (pongs, errors, stats).
    let consumer = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut replies = Vec::new();
        while seen.len() < ROUNDS || replies.len() < 2 * ROUNDS {
            let line = sub.line().expect("subscriber connection closed");
            if line.starts_with('{') {
                let d: serde_json::Value = serde_json::from_str(&line).unwrap();
                let id = d["id"].as_str().unwrap().to_string();
                sub.send(&format!("ack t {id}\nping"));
                seen.push(id);
            } else {
                replies.push(line);
            }
        }
        (seen, replies)
    });
    let mut batch = String::new();
    let mut expected = Vec::new();
    for i in 0..ROUNDS {
        let id = format!("e{i}");
        batch.push_str(&event(&id, if i % 5 == 2 { 6000 } else { 20 }));
        batch.push('\n');
        expected.push(format!("+OK published t {id}"));
        match i % 4 {
            0 => {
                batch.push_str("ping\n");
                expected.push("+OK pong".into());
            }
            1 => {
                batch.push_str(&event(&id, 1));
                batch.push('\n');
                expected.push(format!("+OK duplicate t {id}"));
            }
            2 => {
                batch.push_str("sub nosuch\n");
                expected.push("-ERR no_topic".into());
            }
            _ => {
                batch.push_str("topics\n");
                expected.push(r#"+OK ["t"]"#.into());
            }
        }
    }
    publisher.send_raw(batch.as_bytes());
    for want in &expected {
        let got = publisher.reply();
        assert!(got.starts_with(want.as_str()), "got {got}, want {want}");
    }
    publisher.assert_quiet();

    let (seen, replies) = consumer.join().unwrap();
    let ids: Vec<String> = (0..ROUNDS).map(|i| format!("e{i}")).collect();
    assert_eq!(seen, ids, "deliveries in publish order");
    let want: Vec<String> = ids
        .iter()
        .flat_map(|id| [format!("+OK acked t {id}"), "+OK pong".to_string()])
        .collect();
    assert_eq!(replies, want);
}

/// Topic `t` with a durable subscriber that is away, so that its events
/// stay pending (and a second copy is a duplicate). Also gets the first
/// write, which creates the log's first segment with syncs of its own, done
/// before a test holds a sync.
fn keeper_on_t(server: &Server) {
    let mut keeper = server.connect();
    for (command, reply) in [
        ("name keeper", "+OK name keeper"),
        ("create t", "+OK created t"),
        ("sub t", "+OK subscribed t"),
        ("quit", "+OK bye"),
    ] {
        assert_eq!(keeper.cmd(command), reply);
    }
}

/// Connection A publishes `x` to `t` and creates topic `fresh`; the
/// fdatasync of that batch is held on the fsync thread (the batch is over
/// the inline limit), while connection B asks for `create fresh` and
/// publishes `x` again, whose replies speak for A's records.
fn b_speaks_for_a_while_a_waits(server: &Server, disk: &HeldSync) -> (Client, Client) {
    keeper_on_t(server);
    let mut a = server.connect();
    let mut b = server.connect();
    disk.hold_next();
    a.send(&event("x", 6000));
    a.send(r#"pub fresh {"id":"f","msg":1}"#);
    disk.wait_for_held_sync();
    b.send("create fresh");
    b.send(&event("x", 1));
    (a, b)
}

/// Regression test for "replies that speak for earlier changes wait for
/// their sync" (commit 7f10774): B's `+OK created` and `+OK duplicate` must
/// not overtake the sync of A's records, and never come if it fails.
#[test]
fn a_duplicate_or_created_never_overtakes_the_sync_it_speaks_for() {
    let dir = tempfile::tempdir().unwrap();
    let disk = HeldSync::default();
    let server = Server::start_on(Config::new(dir.path()), Arc::new(disk.clone()));
    let (mut a, mut b) = b_speaks_for_a_while_a_waits(&server, &disk);
    // B's own new event, to see when the broker has handled B's commands:
    // its record is written just before their output is handed over.
    b.send(&event("marker-y", 1));
    disk.wait_for_write_of("marker-y");
    disk.finish(false);

    // Nothing A's or B's replies speak for reached the disk: nothing may
    // have been answered.
    assert_eq!(a.line_or_end(), None);
    let mut answered = Vec::new();
    while let Some(line) = b.line_or_end() {
        answered.push(line);
    }
    assert_eq!(answered, Vec::<String>::new(), "answered before the sync");
    let err = server.stop().expect_err("the broker stops");
    assert!(
        matches!(err, Error::Broker(BrokerError::Sync(_))),
        "{err:?}"
    );
}

/// The same, with the sync succeeding: everything is answered, each
/// connection's replies in command order.
#[test]
fn a_duplicate_is_answered_once_the_copy_it_speaks_for_is_synced() {
    let dir = tempfile::tempdir().unwrap();
    let disk = HeldSync::default();
    let server = Server::start_on(Config::new(dir.path()), Arc::new(disk.clone()));
    let (mut a, mut b) = b_speaks_for_a_while_a_waits(&server, &disk);
    b.send("ping");
    disk.finish(true);
    assert_eq!(a.reply(), "+OK published t x");
    assert_eq!(a.reply(), "+OK published fresh f");
    assert_eq!(b.reply(), "+OK created fresh");
    assert_eq!(b.reply(), "+OK duplicate t x");
    assert_eq!(b.reply(), "+OK pong");
}

/// An ack needs only the write of its batch. When the batch also holds a
/// publish whose small tail is synced inline on the broker task, the ack's
/// reply leaves before that fdatasync blocks the task.
#[test]
fn an_ack_is_answered_before_an_inline_fsync_of_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let disk = HeldSync::default();
    let server = Server::start_on(Config::new(dir.path()), Arc::new(disk.clone()));
    let mut c = server.connect();
    assert_eq!(c.cmd("create t"), "+OK created t");
    assert_eq!(c.cmd("sub t 5"), "+OK subscribed t");
    assert_eq!(c.cmd(&event("1", 10)), "+OK published t 1");
    assert_eq!(c.delivery()["id"], "1");

    disk.hold_next();
    // One read, so one batch: the ack and a small publish.
    c.send_raw(format!("ack t 1\n{}\n", event("2", 10)).as_bytes());
    disk.wait_for_held_sync();
    // The broker task is blocked in the inline fdatasync now: the ack must
    // come anyway, well before the held sync would give up waiting (a read
    // that times out fails the test).
    c.set_read_timeout(HOLD_LIMIT / 4);
    let ack = c.line();
    disk.finish(true);
    c.set_read_timeout(common::LINE_TIMEOUT);
    assert_eq!(ack.as_deref(), Some("+OK acked t 1"));
    assert_eq!(c.reply(), "+OK published t 2");
    assert_eq!(c.delivery()["id"], "2");
}

#[test]
fn replies_of_one_connection_keep_their_order_across_a_held_sync() {
    let dir = tempfile::tempdir().unwrap();
    let disk = HeldSync::default();
    let server = Server::start_on(Config::new(dir.path()), Arc::new(disk.clone()));
    let mut c = Client::connect(server.addr);
    assert_eq!(c.cmd("create t"), "+OK created t");
    disk.hold_next();
    c.send(&event("big", 6000));
    disk.wait_for_held_sync();
    // Sent while the publish waits: answered after it, in order.
    c.send("ping");
    c.send("topics");
    c.send("bogus");
    disk.finish(true);
    assert_eq!(c.reply(), "+OK published t big");
    assert_eq!(c.reply(), "+OK pong");
    assert_eq!(c.reply(), r#"+OK ["t"]"#);
    assert!(c.reply().starts_with("-ERR unknown_command"));
}
