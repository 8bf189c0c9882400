//! Power cuts at random operations (`herald_log::testing::PowerLoss`):
//! random appends, writes, syncs, rotations and deletions, the power cut
//! at a random storage operation (sometimes with a prefix of the unsynced
//! bytes reaching the disk, which leaves a torn tail), then a reboot:
//! `Log::open` on the directory. Recovery must succeed, and yield, in
//! order, every record appended before a successful sync that covered it,
//! nothing that was never appended, and nothing out of place. The reboot
//! itself runs on a machine that loses power again, so a cut during
//! recovery's own repairs is covered too.

mod common;

use common::{Record, collect, config, len};
use herald_log::testing::PowerLoss;
use herald_log::{HEADER_BYTES, Log, SegmentId, read_frame};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone)]
enum Step {
    /// Append one record of `size` bytes (rotating first if it does not
    /// fit, as the server does).
    Append(u8),
    Write,
    Sync,
    /// What the fsync thread does: sync through a `SyncTarget`.
    SyncTarget,
    Rotate,
    /// Delete the older half of the segments.
    Delete,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => any::<u8>().prop_map(Step::Append),
        3 => Just(Step::Write),
        1 => Just(Step::Sync),
        1 => Just(Step::SyncTarget),
        1 => Just(Step::Rotate),
        1 => Just(Step::Delete),
    ]
}

#[derive(Debug, Clone)]
struct Round {
    steps: Vec<Step>,
    /// The storage operation that finds the power off.
    cut_at: u64,
    /// Unsynced bytes per file that reach the disk anyway.
    keep: u64,
}

fn round() -> impl Strategy<Value = Round> {
    (
        proptest::collection::vec(step(), 0..60),
        0u64..150,
        prop_oneof![Just(0u64), 0u64..400],
    )
        .prop_map(|(steps, cut_at, keep)| Round {
            steps,
            cut_at,
            keep,
        })
}

/// What the log must hold, as far as the test knows.
#[derive(Debug, Default)]
struct Model {
    /// Every record appended, in log order (snapshots included), each
    /// unique so that a replay can be located in it.
    expected: Vec<Record>,
    /// `expected[..durable]` was covered by a successful sync.
    durable: usize,
    /// `expected[..written]` was written to the OS.
    written: usize,
    /// Index in `expected` of each segment's first record.
    starts: BTreeMap<SegmentId, usize>,
    /// Replay may start at any segment from `min_start` to `max_start`: a
    /// deletion cut short may or may not have removed its segments.
    min_start: usize,
    max_start: usize,
    /// Counters that keep records unique across rounds.
    next: u64,
    rotations: u64,
}

impl Model {
    fn record(&mut self, size: u8) -> Record {
        self.next += 1;
        let mut r = format!("record {} ", self.next).into_bytes();
        r.extend((0..size).map(|k| k.wrapping_mul(31)));
        r
    }

    fn snapshot(&mut self) -> Vec<Record> {
        self.rotations += 1;
        (0..2)
            .map(|t| format!("snapshot {} {t}", self.rotations).into_bytes())
            .collect()
    }

    fn rotate(&mut self, log: &mut Log, needed: u64) -> bool {
        let snapshot = self.snapshot();
        if log.rotate(&snapshot, needed).is_err() {
            return false;
        }
        // Rotation wrote and synced everything before the new segment,
        // whose snapshot is synced with it.
        let id = log.current_segment().expect("rotated");
        self.starts.insert(id, self.expected.len());
        self.expected.extend(snapshot);
        self.written = self.expected.len();
        self.durable = self.expected.len();
        true
    }

    /// Runs `steps` until the power is off (every step after that fails).
    fn run(&mut self, log: &mut Log, power: &PowerLoss, steps: &[Step]) {
        let mut failed_delete = None;
        for step in steps {
            let ok = match step {
                Step::Append(size) => {
                    let record = self.record(*size);
                    let fits = log.has_room(len(&record)) || self.rotate(log, len(&record));
                    if fits {
                        log.append(&record);
                        self.expected.push(record);
                    }
                    fits
                }
                Step::Write => {
                    let had_segment = log.current_segment().is_some();
                    let ok = log.write().is_ok();
                    if ok {
                        if !had_segment && let Some(id) = log.current_segment() {
                            // The first write creates the first segment.
                            self.starts.insert(id, self.written);
                        }
                        self.written = self.expected.len();
                    }
                    ok
                }
                Step::Sync => {
                    let had_segment = log.current_segment().is_some();
                    let ok = log.sync().is_ok();
                    if ok {
                        if !had_segment && let Some(id) = log.current_segment() {
                            self.starts.insert(id, self.written);
                        }
                        self.written = self.expected.len();
                        self.durable = self.expected.len();
                    }
                    ok
                }
                Step::SyncTarget => match log.sync_target() {
                    Some(target) => {
                        let ok = target.sync().is_ok();
                        if ok {
                            self.durable = self.durable.max(self.written);
                        }
                        ok
                    }
                    None => true,
                },
                Step::Rotate => self.rotate(log, 0),
                Step::Delete => {
                    let segments = log.segments();
                    let before = segments[segments.len() / 2..]
                        .first()
                        .map_or(SegmentId(0), |s| s.id);
                    let ok = log.delete_segments_before(before).is_ok();
                    if !ok {
                        failed_delete = Some(before);
                    }
                    ok
                }
            };
            assert!(ok || power.is_cut(), "{step:?} failed with the power on");
        }
        let oldest = log.segments().first().map(|s| s.id);
        self.min_start = oldest.map_or(0, |id| self.starts[&id]);
        self.max_start = failed_delete.map_or(self.min_start, |id| self.starts[&id]);
    }

    /// Checks a replay after a cut against what was appended and synced.
    fn check(&self, replayed: &[Record]) {
        let Some(first) = replayed.first() else {
            assert_eq!(
                self.durable, 0,
                "nothing recovered, yet records were synced"
            );
            return;
        };
        let start = self
            .expected
            .iter()
            .position(|r| r == first)
            .unwrap_or_else(|| panic!("invented record {:?}", String::from_utf8_lossy(first)));
        assert!(
            self.starts.values().any(|&s| s == start),
            "replay starts at {start}, not at a segment"
        );
        assert!(
            (self.min_start..=self.max_start).contains(&start),
            "replay starts at {start}, expected {}..={}",
            self.min_start,
            self.max_start
        );
        let end = start + replayed.len();
        assert!(end <= self.expected.len(), "more records than appended");
        assert_eq!(replayed, &self.expected[start..end], "records out of place");
        assert!(
            end >= self.durable,
            "lost synced records: recovered up to {end}, synced up to {}",
            self.durable
        );
    }

    /// After a successful recovery the directory holds exactly `replayed`:
    /// that is the new starting point.
    fn recovered(&mut self, log: &Log, replayed: Vec<Record>) {
        self.starts.clear();
        let mut at = 0;
        for segment in log.segments() {
            self.starts.insert(segment.id, at);
            at += records_in(&segment.path, segment.used_bytes);
        }
        assert_eq!(at, replayed.len());
        self.durable = replayed.len();
        self.written = replayed.len();
        self.expected = replayed;
        self.min_start = 0;
        self.max_start = 0;
    }
}

/// Number of records in the first `used` bytes of a segment file.
fn records_in(path: &Path, used: u64) -> usize {
    let data = std::fs::read(path).unwrap();
    let mut at = HEADER_BYTES as usize;
    let mut n = 0;
    while (at as u64) < used {
        let (_, frame) = read_frame(&data[at..]).expect("a recovered record");
        at += frame;
        n += 1;
    }
    n
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn synced_records_survive_a_power_cut_at_any_operation(
        rounds in proptest::collection::vec(round(), 1..3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model::default();
        for round in &rounds {
            let power = PowerLoss::new();
            power.keep_unsynced_bytes(round.keep).cut_at_op(round.cut_at);
            let mut replayed = Vec::new();
            let opened = Log::open_with_storage(
                config(dir.path()),
                Arc::new(power.clone()),
                collect(&mut replayed),
            );
            match opened {
                Ok((mut log, _)) => {
                    model.check(&replayed);
                    model.recovered(&log, replayed);
                    model.run(&mut log, &power, &round.steps);
                }
                // Cut while recovering (repairing a torn tail, say): the
                // records are as they were.
                Err(e) => prop_assert!(power.is_cut(), "open failed with the power on: {e}"),
            }
            power.cut();
        }
        let mut replayed = Vec::new();
        Log::open(config(dir.path()), collect(&mut replayed)).expect("recovery after a power cut");
        model.check(&replayed);
    }
}
