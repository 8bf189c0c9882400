//! The durability tracker: how far the log is written and synced, which
//! sync each reply waits for, which published events that makes
//! deliverable, and how the next sync runs.
//!
//! It owns the positions (LSNs) only; the broker task does the IO and tells
//! it what happened (`appended`, `written`, `synced`). This is the one place
//! that decides which reply waits for which sync (`docs/protocol.md` 10,
//! "What each reply means"):
//! - `--fsync always`: a reply waits until its command's changes that need a
//!   sync ([`Change::needs_sync`]) are synced. A reply that speaks for what
//!   another connection may have just changed ([`Scope::Earlier`]: `+OK
//!   duplicate`, `+OK created` of an existing topic, an unchanged `+OK
//!   subscribed`) also waits for every earlier change that needs a sync.
//!   Acks and nacks wait for nothing more than the write of their batch.
//! - `--fsync interval`: no reply waits; the write of the batch is the
//!   durability this mode promises.
//!
//! Invariants: `synced <= written`; the LSNs of `unsynced_events` increase;
//! an event is reported durable (its `Seq` returned) once, after the LSN of
//! its record is synced (interval mode: written), and never before an
//! earlier event.

use crate::config::FsyncMode;
use herald_core::{Broker, Change, Command, Seq};
use herald_log::Lsn;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Largest unsynced tail synced on the broker task itself rather than the
/// fsync thread: at low load, handing it to the thread and back costs two
/// thread wake-ups, more than the fdatasync, and nothing else is waiting to
/// overlap with it. Bigger batches go to the thread, so that the next batch
/// is built while the disk works (group commit).
pub(crate) const INLINE_SYNC_MAX_BYTES: u64 = 4096;
/// Interval between fsyncs in `--fsync interval` mode.
const SYNC_INTERVAL_MS: u64 = 1000;

/// What a reply speaks for, which decides the changes it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Only the changes its own command made.
    Own,
    /// Its own changes and every earlier change that needs a sync: the
    /// reply may speak for a record another connection just appended.
    Earlier,
}

impl Scope {
    /// The scope of the reply to `command`.
    pub(crate) fn of(command: &Command) -> Scope {
        match command {
            // What a consumer says back promises less: an ack lost to a
            // power cut costs a redelivery, never an event.
            Command::Ack { .. } | Command::Nack { .. } => Scope::Own,
            c if Broker::is_mutating(c) => Scope::Earlier,
            _ => Scope::Own,
        }
    }
}

/// The LSN a reply must see synced before it may leave; built while its
/// command's changes are appended ([`Durability::gate`],
/// [`Durability::appended`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Gate(Lsn);

/// How the broker task should make the written log durable now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncPlan {
    /// Nothing to sync, a sync is running, or it is not time yet.
    Wait,
    /// fdatasync on the broker task, now.
    Inline,
    /// Hand it to the fsync thread.
    Thread,
}

/// Sync positions and the events waiting for them.
#[derive(Debug)]
pub(crate) struct Durability {
    mode: FsyncMode,
    /// Everything before this is written to the OS.
    written: Lsn,
    /// Everything before this is on disk.
    synced: Lsn,
    /// The newest appended change that needs a sync (`--fsync always`).
    last_needing_sync: Lsn,
    /// (LSN just past a published event's record, its Seq), oldest first.
    unsynced_events: VecDeque<(Lsn, Seq)>,
    /// The fsync thread is working on a request.
    sync_in_flight: bool,
    last_sync: Instant,
}

impl Durability {
    /// A tracker for a log that is durable up to `durable` (what recovery
    /// read back) at `now`.
    pub(crate) fn new(mode: FsyncMode, durable: Lsn, now: Instant) -> Self {
        Durability {
            mode,
            written: durable,
            synced: durable,
            last_needing_sync: Lsn::default(),
            unsynced_events: VecDeque::new(),
            sync_in_flight: false,
            last_sync: now,
        }
    }

    /// The gate of a reply in `scope`, before its command's changes.
    pub(crate) fn gate(&self, scope: Scope) -> Gate {
        match (self.mode, scope) {
            (FsyncMode::Always, Scope::Earlier) => Gate(self.last_needing_sync),
            _ => Gate::default(),
        }
    }

    /// `change` was appended to the log, its record ending at `lsn`; the
    /// reply of the command that made it waits behind `gate`.
    pub(crate) fn appended(&mut self, change: &Change, lsn: Lsn, gate: &mut Gate) {
        if let Some(seq) = change.published_seq() {
            self.unsynced_events.push_back((lsn, seq));
        }
        if self.mode == FsyncMode::Always && change.needs_sync() {
            self.last_needing_sync = lsn;
            gate.0 = gate.0.max(lsn);
        }
    }

    /// The LSN a reply behind `gate` is held for, or `None` if it may leave
    /// with its batch (after the batch's write).
    pub(crate) fn hold_until(&self, gate: Gate) -> Option<Lsn> {
        (gate.0 > self.synced).then_some(gate.0)
    }

    /// The log is written to the OS up to `lsn`. Under `--fsync interval`
    /// that makes events durable: returns the newest, if any.
    pub(crate) fn written(&mut self, lsn: Lsn) -> Option<Seq> {
        self.written = self.written.max(lsn);
        match self.mode {
            FsyncMode::Interval => self.pop_events(self.written),
            FsyncMode::Always => None,
        }
    }

    /// The log is synced up to `lsn` (at `now`): returns the newest event
    /// that became durable, if any.
    pub(crate) fn synced(&mut self, lsn: Lsn, now: Instant) -> Option<Seq> {
        self.synced = self.synced.max(lsn);
        self.written = self.written.max(self.synced);
        self.last_sync = now;
        self.pop_events(self.synced)
    }

    /// Everything before this LSN is on disk.
    pub(crate) fn synced_lsn(&self) -> Lsn {
        self.synced
    }

    fn pop_events(&mut self, durable: Lsn) -> Option<Seq> {
        let mut newest = None;
        while let Some(&(lsn, seq)) = self.unsynced_events.front() {
            if lsn > durable {
                break;
            }
            newest = Some(seq);
            self.unsynced_events.pop_front();
        }
        newest
    }

    /// How to sync what is written, at `now`.
    pub(crate) fn plan(&self, now: Instant) -> SyncPlan {
        if self.sync_in_flight || self.written <= self.synced {
            return SyncPlan::Wait;
        }
        match self.mode {
            FsyncMode::Always if self.written.0 - self.synced.0 <= INLINE_SYNC_MAX_BYTES => {
                SyncPlan::Inline
            }
            FsyncMode::Always => SyncPlan::Thread,
            FsyncMode::Interval
                if now.duration_since(self.last_sync) < Duration::from_millis(SYNC_INTERVAL_MS) =>
            {
                SyncPlan::Wait
            }
            FsyncMode::Interval => SyncPlan::Thread,
        }
    }

    /// A request went to the fsync thread: no other until it answers.
    pub(crate) fn sync_sent(&mut self) {
        self.sync_in_flight = true;
    }

    /// The fsync thread answered (then `synced` follows, if it succeeded).
    pub(crate) fn sync_returned(&mut self) {
        self.sync_in_flight = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::Event;
    use std::sync::Arc;

    fn published(seq: u64) -> Change {
        Change::Published {
            topic: Arc::from("t"),
            event: Arc::new(Event::new(Seq(seq), 0, 1, &seq.to_string(), b"")),
            holders: Vec::new(),
        }
    }

    fn acked(seq: u64) -> Change {
        Change::Acked {
            subscriber: Arc::from("s"),
            topic: Arc::from("t"),
            seq: Seq(seq),
        }
    }

    fn created() -> Change {
        Change::TopicCreated {
            topic: Arc::from("t"),
        }
    }

    fn always() -> (Durability, Instant) {
        let now = Instant::now();
        (Durability::new(FsyncMode::Always, Lsn(0), now), now)
    }

    /// The changes of one command, then the LSN its reply is held for.
    fn command(d: &mut Durability, scope: Scope, changes: &[(Change, u64)]) -> Option<Lsn> {
        let mut gate = d.gate(scope);
        for (change, lsn) in changes {
            d.appended(change, Lsn(*lsn), &mut gate);
        }
        d.hold_until(gate)
    }

    fn scope_of(line: &str) -> Scope {
        let parsed = herald_proto::parse_line(line.as_bytes());
        let command = parsed.unwrap_or_else(|e| panic!("{line}: {e:?}"));
        Scope::of(&command.unwrap_or_else(|| panic!("{line}: empty")))
    }

    #[test]
    fn replies_to_changes_speak_for_earlier_ones_except_acks_and_nacks() {
        for line in [
            r#"pub t {"id":"1","msg":1}"#,
            "create t",
            "sub t",
            "unsub t",
        ] {
            assert_eq!(scope_of(line), Scope::Earlier, "{line}");
        }
        for line in [
            "ack t 1",
            "nack t 1",
            "ping",
            "stats",
            "touch t 1",
            "name n",
        ] {
            assert_eq!(scope_of(line), Scope::Own, "{line}");
        }
    }

    #[test]
    fn a_publish_waits_for_the_sync_of_its_record() {
        let (mut d, now) = always();
        assert_eq!(
            command(&mut d, Scope::Earlier, &[(published(1), 100)]),
            Some(Lsn(100))
        );
        d.written(Lsn(100));
        assert_eq!(d.synced(Lsn(100), now), Some(Seq(1)));
        assert_eq!(command(&mut d, Scope::Own, &[]), None);
    }

    #[test]
    fn a_duplicate_waits_for_an_earlier_sync() {
        let (mut d, now) = always();
        // Connection A publishes; connection B's `+OK duplicate` (a command
        // with no change) speaks for A's record.
        command(&mut d, Scope::Earlier, &[(published(1), 100)]);
        assert_eq!(command(&mut d, Scope::Earlier, &[]), Some(Lsn(100)));
        // So does `+OK created` of the topic A's publish created.
        assert_eq!(command(&mut d, Scope::Earlier, &[]), Some(Lsn(100)));
        d.synced(Lsn(100), now);
        assert_eq!(command(&mut d, Scope::Earlier, &[]), None);
    }

    #[test]
    fn an_ack_waits_for_no_earlier_sync_and_needs_none_itself() {
        let (mut d, _) = always();
        command(
            &mut d,
            Scope::Earlier,
            &[(created(), 40), (published(1), 100)],
        );
        assert_eq!(command(&mut d, Scope::Own, &[(acked(1), 130)]), None);
        // A pong is no promise about the log at all.
        assert_eq!(command(&mut d, Scope::Own, &[]), None);
    }

    #[test]
    fn an_ack_does_not_raise_what_later_replies_wait_for() {
        let (mut d, now) = always();
        command(&mut d, Scope::Earlier, &[(published(1), 100)]);
        command(&mut d, Scope::Own, &[(acked(1), 130)]);
        d.synced(Lsn(100), now);
        assert_eq!(command(&mut d, Scope::Earlier, &[]), None);
    }

    #[test]
    fn interval_mode_releases_on_write() {
        let now = Instant::now();
        let mut d = Durability::new(FsyncMode::Interval, Lsn(0), now);
        assert_eq!(
            command(&mut d, Scope::Earlier, &[(published(1), 100)]),
            None
        );
        assert_eq!(
            command(&mut d, Scope::Earlier, &[(published(2), 200)]),
            None
        );
        assert_eq!(command(&mut d, Scope::Earlier, &[]), None);
        // Written is durable in this mode: both events may be delivered.
        assert_eq!(d.written(Lsn(200)), Some(Seq(2)));
        assert_eq!(d.written(Lsn(200)), None);
    }

    #[test]
    fn events_become_durable_in_order_as_syncs_cover_them() {
        let (mut d, now) = always();
        command(&mut d, Scope::Earlier, &[(published(1), 100)]);
        command(&mut d, Scope::Earlier, &[(published(2), 200)]);
        command(&mut d, Scope::Earlier, &[(published(3), 300)]);
        assert_eq!(
            d.written(Lsn(300)),
            None,
            "always mode: written is not durable"
        );
        assert_eq!(d.synced(Lsn(99), now), None);
        assert_eq!(d.synced(Lsn(250), now), Some(Seq(2)));
        // A sync report older than the newest changes nothing.
        assert_eq!(d.synced(Lsn(200), now), None);
        assert_eq!(d.synced_lsn(), Lsn(250));
        assert_eq!(d.synced(Lsn(300), now), Some(Seq(3)));
    }

    #[test]
    fn a_small_unsynced_tail_is_synced_inline_and_a_big_one_on_the_thread() {
        let (mut d, now) = always();
        assert_eq!(d.plan(now), SyncPlan::Wait, "nothing written");
        d.written(Lsn(INLINE_SYNC_MAX_BYTES));
        assert_eq!(d.plan(now), SyncPlan::Inline);
        d.written(Lsn(INLINE_SYNC_MAX_BYTES + 1));
        assert_eq!(d.plan(now), SyncPlan::Thread);
        d.sync_sent();
        d.written(Lsn(INLINE_SYNC_MAX_BYTES + 2));
        assert_eq!(d.plan(now), SyncPlan::Wait, "one sync at a time");
        d.sync_returned();
        d.synced(Lsn(INLINE_SYNC_MAX_BYTES + 1), now);
        assert_eq!(d.plan(now), SyncPlan::Inline, "one byte left");
    }

    #[test]
    fn interval_mode_syncs_on_the_thread_once_a_second() {
        let start = Instant::now();
        let mut d = Durability::new(FsyncMode::Interval, Lsn(0), start);
        d.written(Lsn(10));
        assert_eq!(d.plan(start), SyncPlan::Wait);
        let later = start + Duration::from_millis(SYNC_INTERVAL_MS);
        assert_eq!(d.plan(later), SyncPlan::Thread);
        d.synced(Lsn(10), later);
        d.written(Lsn(20));
        assert_eq!(d.plan(later + Duration::from_millis(10)), SyncPlan::Wait);
    }

    #[test]
    fn a_recovered_log_starts_durable() {
        let now = Instant::now();
        let mut d = Durability::new(FsyncMode::Always, Lsn(5000), now);
        assert_eq!(d.plan(now), SyncPlan::Wait);
        assert_eq!(
            command(&mut d, Scope::Earlier, &[(created(), 5040)]),
            Some(Lsn(5040))
        );
    }
}
