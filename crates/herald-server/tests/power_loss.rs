//! Power cuts under load (`herald_log::testing::PowerLoss`): a pipelining
//! publisher and an acking durable subscriber run against the server, the
//! power goes off at a random storage operation (segment creation, a batch
//! write, an inline or threaded fdatasync, a rotation, or after the run),
//! and a fresh recovery of the directory must hold (`docs/protocol.md`
//! section 10, "Power loss with `--fsync always`"):
//! - every event answered `+OK published` is there, unless the subscriber
//!   acked it;
//! - an event whose `+OK acked` was received comes back only if no file
//!   sync started after that reply (the ack was not synced at the cut: the
//!   at-least-once window). The test counts those and checks each one;
//! - no event is there that was never published.
//!
//! `HERALD_POWER_LOSS_CUTS` (default 100) and `HERALD_POWER_LOSS_EVENTS`
//! (default 24 per cut) make longer runs: `scripts/power-loss.sh`.
//! `HERALD_TEST_SEED` replays one.

mod common;

use common::{Client, Rng, Server};
use herald_core::{Broker, RecordError, record};
use herald_log::testing::PowerLoss;
use herald_log::{Log, LogConfig, Storage};
use herald_server::Config;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Small segments, so that rotations (and their syncs) happen in a run.
const SEGMENT_BYTES: u64 = 8192;
const TOPIC: &str = "t";
const SUBSCRIBER: &str = "worker";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// [`PowerLoss`] that also counts file syncs: `started` is the number of
/// syncs begun so far, `newest_done` the number of the newest one that
/// succeeded. A record written before a sync that began later is durable
/// once that sync succeeds (rotation syncs the old segment before a newer
/// one exists, so a sync of a newer segment says the same).
#[derive(Debug, Clone, Default)]
struct CountedPower {
    power: PowerLoss,
    started: Arc<AtomicU64>,
    newest_done: Arc<AtomicU64>,
}

impl CountedPower {
    fn synced(&self, sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        let n = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        sync()?;
        self.newest_done.fetch_max(n, Ordering::SeqCst);
        Ok(())
    }
}

/// Every operation goes to the `PowerLoss` (the defaults would bypass it).
impl Storage for CountedPower {
    fn create(&self, path: &Path) -> io::Result<File> {
        self.power.create(path)
    }
    fn open(&self, path: &Path) -> io::Result<File> {
        self.power.open(path)
    }
    fn allocate(&self, file: &File, len: u64) -> io::Result<()> {
        self.power.allocate(file, len)
    }
    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        self.power.set_len(file, len)
    }
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        self.power.write_at(file, buf, offset)
    }
    fn sync_data(&self, file: &File) -> io::Result<()> {
        self.synced(|| self.power.sync_data(file))
    }
    fn sync_all(&self, file: &File) -> io::Result<()> {
        self.synced(|| self.power.sync_all(file))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.power.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.power.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.power.sync_dir(dir)
    }
}

/// What the clients were told in one run.
#[derive(Debug, Default)]
struct Run {
    /// Ids the publisher sent.
    sent: BTreeSet<String>,
    /// Ids answered `+OK published`.
    published: BTreeSet<String>,
    /// Ids the subscriber sent an ack for.
    acks_sent: BTreeSet<String>,
    /// Ids answered `+OK acked`, with the syncs started when the reply
    /// was read.
    acked: BTreeMap<String, u64>,
}

fn event_line(i: usize) -> (String, String) {
    let id = format!("e{i}");
    // Mostly small events, every seventh over the inline-sync limit
    // (4 KiB), so both sync paths run, and rotations (8 KiB segments).
    let msg = "m".repeat(if i % 7 == 3 { 5000 } else { (i * 97) % 600 });
    let line = format!(r#"pub {TOPIC} {{"id":"{id}","msg":"{msg}"}}"#);
    (id, line)
}

/// Runs the clients against `server` until it stops answering or every
/// published event is acked; then `cut` cuts the power, the server is
/// stopped, and the subscriber reads until the server closes.
fn drive(server: Server, disk: &CountedPower, events: usize, cut: impl FnOnce()) -> Run {
    let mut run = Run::default();
    let addr = server.addr;
    // The power is off: the broker stops at its next write or sync (or
    // already has); how it ended is not the point.
    let end = move || {
        cut();
        let _ = server.stop();
    };
    let Some(mut sub) = Client::try_connect(addr) else {
        end();
        return run;
    };
    for (command, want) in [
        (
            format!("name {SUBSCRIBER}"),
            format!("+OK name {SUBSCRIBER}"),
        ),
        (format!("create {TOPIC}"), format!("+OK created {TOPIC}")),
        (format!("sub {TOPIC} 4"), format!("+OK subscribed {TOPIC}")),
    ] {
        match sub.try_cmd(&command) {
            Some(reply) if reply == want => {}
            // The cut came first: the server refuses or stops. (A client
            // left open would make the stopping server linger for it.)
            Some(reply) if reply.starts_with("-ERR unavailable") => {
                drop(sub);
                end();
                return run;
            }
            None => {
                drop(sub);
                end();
                return run;
            }
            Some(reply) => panic!("{command}: {reply}"),
        }
    }
    let started = disk.started.clone();
    // Acks answered so far, and whether one was refused (a rotation the cut
    // broke: the broker refuses changes but keeps running, so the run is
    // over).
    let acked_count = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicBool::new(false));
    let (count, refusal) = (acked_count.clone(), refused.clone());
    let consumer = std::thread::spawn(move || {
        let (mut acks_sent, mut acked) = (BTreeSet::new(), BTreeMap::new());
        let ack_prefix = format!("+OK acked {TOPIC} ");
        while let Some(line) = sub.line_or_end() {
            if line.starts_with('{') {
                let d: serde_json::Value = serde_json::from_str(&line).expect("delivery JSON");
                let id = d["id"].as_str().expect("id").to_string();
                // Counted as sent before it is: an ack that reaches the
                // broker may remove the event even if its reply never comes.
                acks_sent.insert(id.clone());
                if !sub.try_send(&format!("ack {TOPIC} {id}")) {
                    break;
                }
            } else if let Some(id) = line.strip_prefix(&ack_prefix) {
                acked.insert(id.to_string(), started.load(Ordering::SeqCst));
                count.fetch_add(1, Ordering::SeqCst);
            } else {
                assert!(
                    line.starts_with("-ERR unavailable"),
                    "subscriber got {line}"
                );
                refusal.store(true, Ordering::SeqCst);
            }
        }
        (acks_sent, acked)
    });

    if let Some(mut publisher) = Client::try_connect(addr) {
        publish(&mut publisher, events, &mut run);
    }
    // Let the subscriber ack what it was sent, unless the cut came: then
    // the server stops (and the subscriber's thread ends) or refuses.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked_count.load(Ordering::SeqCst) < run.published.len() as u64
        && !consumer.is_finished()
        && !refused.load(Ordering::SeqCst)
    {
        assert!(Instant::now() < deadline, "the subscriber got stuck");
        std::thread::sleep(Duration::from_millis(1));
    }
    end();
    let (acks_sent, acked) = consumer.join().expect("consumer thread");
    run.acks_sent = acks_sent;
    run.acked = acked;
    run
}

/// Publishes `events` events, pipelined in chunks (so that the subscriber
/// acks while the publisher goes on), until done or the server stops.
fn publish(publisher: &mut Client, events: usize, run: &mut Run) {
    const CHUNK: usize = 4;
    let prefix = format!("+OK published {TOPIC} ");
    for start in (0..events).step_by(CHUNK) {
        let end = (start + CHUNK).min(events);
        let mut batch = String::new();
        for i in start..end {
            let (id, line) = event_line(i);
            run.sent.insert(id);
            batch.push_str(&line);
            batch.push('\n');
        }
        // A chunk is small enough for the socket buffers: no reader needed
        // while writing it.
        if publisher
            .clone_writer()
            .write_all(batch.as_bytes())
            .is_err()
        {
            return;
        }
        for _ in start..end {
            let Some(reply) = publisher.line_or_end() else {
                return;
            };
            match reply.strip_prefix(&prefix) {
                Some(id) => {
                    run.published.insert(id.to_string());
                }
                // A rotation the cut broke: refused, not stored, not fatal.
                None if reply.starts_with("-ERR unavailable") => {}
                None => panic!("publisher got {reply}"),
            }
        }
    }
}

/// The ids the durable subscriber holds after recovering `dir`, as after
/// a reboot.
fn recovered_ids(dir: &Path) -> BTreeSet<String> {
    let mut broker = Broker::new();
    let mut decoder = record::Decoder::new();
    let config = LogConfig {
        dir: dir.to_path_buf(),
        segment_bytes: SEGMENT_BYTES,
    };
    Log::open(config, |payload| {
        broker.replay(decoder.decode(payload)?);
        Ok::<_, RecordError>(())
    })
    .expect("recovery after a power cut");
    broker.finish_replay(u64::MAX / 2);
    let holders = broker.pending_by_subscriber(TOPIC).unwrap_or_default();
    assert!(
        holders.iter().all(|(name, _)| &**name == SUBSCRIBER),
        "unknown subscribers recovered"
    );
    holders
        .into_iter()
        .flat_map(|(_, events)| events.into_iter().map(|e| e.id().to_owned()))
        .collect()
}

/// What one cut showed.
#[derive(Debug, Default)]
struct Outcome {
    /// Storage operations the run took before the cut.
    ops: u64,
    /// The cut came during the run, not after it.
    during: bool,
    published: usize,
    acked: usize,
    /// Acked events that came back after the cut.
    came_back: usize,
    /// Acks whose reply no successful sync followed.
    unsynced: usize,
}

/// One run with the power cut at operation `cut_at` (or at the end), then
/// recovery and the checks.
fn cut_once(cut_at: u64, keep: u64, events: usize, context: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let disk = CountedPower::default();
    disk.power.keep_unsynced_bytes(keep).cut_at_op(cut_at);
    let mut config = Config::new(dir.path());
    config.segment_bytes = SEGMENT_BYTES;
    let server = Server::start_on(config, Arc::new(disk.clone()));
    let (mut ops, mut during) = (0, false);
    let run = drive(server, &disk, events, || {
        ops = disk.power.ops();
        during = disk.power.is_cut();
        disk.power.cut();
    });
    let newest_done = disk.newest_done.load(Ordering::SeqCst);

    let recovered = recovered_ids(dir.path());
    let never_sent: Vec<_> = recovered.difference(&run.sent).collect();
    assert!(
        never_sent.is_empty(),
        "{context}: never published: {never_sent:?}"
    );
    let lost: Vec<_> = run
        .published
        .iter()
        .filter(|id| !recovered.contains(*id) && !run.acks_sent.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{context}: published, never acked, lost: {lost:?}"
    );
    // An ack is synced once a file sync that began after its reply
    // succeeded; only the others may come back.
    let unsynced: BTreeSet<&String> = run
        .acked
        .iter()
        .filter(|(_, started)| **started >= newest_done)
        .map(|(id, _)| id)
        .collect();
    let came_back: Vec<&String> = run
        .acked
        .keys()
        .filter(|id| recovered.contains(*id))
        .collect();
    let beyond: Vec<_> = came_back
        .iter()
        .filter(|id| !unsynced.contains(**id))
        .collect();
    assert!(
        beyond.is_empty(),
        "{context}: acked, synced, yet back after the cut: {beyond:?}"
    );
    Outcome {
        ops,
        during,
        published: run.published.len(),
        acked: run.acked.len(),
        came_back: came_back.len(),
        unsynced: unsynced.len(),
    }
}

#[test]
fn every_acknowledged_event_survives_random_power_cuts() {
    let cuts = env_or("HERALD_POWER_LOSS_CUTS", 100);
    let events = env_or("HERALD_POWER_LOSS_EVENTS", 24) as usize;
    let mut rng = Rng::from_env_or_time();
    // A run without a cut tells how many operations a run takes.
    let whole = cut_once(u64::MAX, 0, events, "no cut");
    assert!(!whole.during, "{whole:?}");
    assert_eq!(
        (whole.published, whole.acked),
        (events, events),
        "{whole:?}"
    );
    let full = whole.ops;
    let mut total = Outcome::default();
    let mut hit = 0;
    for i in 0..cuts {
        // Some cuts after the run's last operation: a cut while idle.
        let cut_at = rng.range(0, full + full / 10 + 1);
        let keep = [0, 0, 100, 777, 3000, 5000][rng.range(0, 6) as usize];
        let context = format!("cut {i} at op {cut_at} of ~{full}, keep {keep}");
        let outcome = cut_once(cut_at, keep, events, &context);
        hit += usize::from(outcome.during);
        total.published += outcome.published;
        total.acked += outcome.acked;
        total.came_back += outcome.came_back;
        total.unsynced += outcome.unsynced;
    }
    eprintln!(
        "{cuts} cuts of runs of ~{full} storage operations, {hit} during a run: \
         {} events published, {} acked; {} acked events came back, of {} acks \
         unsynced at their cut",
        total.published, total.acked, total.came_back, total.unsynced
    );
    assert!(
        hit as u64 >= cuts * 3 / 4,
        "only {hit} of {cuts} cuts hit a run"
    );
}
