//! [`PendingQueue`]: one subscriber's unacknowledged events on one topic.
//!
//! Why this shape: priorities are a byte, so the queue is one FIFO per
//! priority level that has events, kept in a dense `Vec` ordered from the
//! highest level down, plus a 256-bit map of the levels present. The rank of a
//! level in the `Vec` is the number of present levels above it (a popcount),
//! so push, pop and finding the best level are O(1) whatever the number of
//! pending events, and a subscription with few priorities costs a few deques,
//! not 256.
//!
//! Ack by id must not scan: membership lives in a hash set of [`Seq`]s with
//! the entry's state in two spare bits, 8 bytes an entry, so a pending event
//! costs a subscriber about 25 bytes (set slot plus deque slot), whatever
//! the event's size: the event itself is shared by every queue. An event
//! acknowledged before it was delivered stays in its level's deque as a
//! tombstone (its `Seq` is no longer in the set) and is skipped when it
//! reaches the front, which keeps ack O(1). In-flight events, at most
//! `prefetch` of them, sit in a small map of their own.
//!
//! Invariant: within a level, the live sequence numbers are increasing from
//! front to back (FIFO among equal priorities). In-flight events are out of
//! the deques; [`PendingQueue::return_in_flight`] puts them back at the front
//! in order, which keeps the invariant because they were popped from there.

use crate::event::{Event, Seq};
use hashbrown::HashTable;
use rustc_hash::{FxHashMap, FxHasher};
use std::collections::VecDeque;
use std::hash::Hasher;
use std::sync::Arc;

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// Waiting for delivery; `delivered_before` sets the redelivery flag.
    Queued {
        /// Delivered once already (before a disconnect or a restart).
        delivered_before: bool,
    },
    /// Delivered and not yet acknowledged.
    InFlight,
}

/// Set-entry bits: the low 62 are the `Seq`, the top two the state.
const IN_FLIGHT_BIT: u64 = 1 << 63;
const DELIVERED_BIT: u64 = 1 << 62;
const SEQ_MASK: u64 = DELIVERED_BIT - 1;

fn entry_of(seq: Seq, state: EntryState) -> u64 {
    seq.0
        | match state {
            EntryState::InFlight => IN_FLIGHT_BIT,
            EntryState::Queued {
                delivered_before: true,
            } => DELIVERED_BIT,
            EntryState::Queued {
                delivered_before: false,
            } => 0,
        }
}

fn state_of(entry: u64) -> EntryState {
    if entry & IN_FLIGHT_BIT != 0 {
        EntryState::InFlight
    } else {
        EntryState::Queued {
            delivered_before: entry & DELIVERED_BIT != 0,
        }
    }
}

fn hash_seq(seq: u64) -> u64 {
    let mut h = FxHasher::default();
    h.write_u64(seq);
    h.finish()
}

/// What [`PendingQueue::pop`] found.
#[derive(Debug)]
pub enum Pop {
    /// The next event to deliver, now in flight.
    Event {
        /// The event.
        event: Arc<Event>,
        /// It was delivered before.
        redelivered: bool,
    },
    /// The best event is not durable yet; nothing may be delivered before it.
    NotDurable,
    /// Nothing is queued.
    Empty,
}

/// One subscriber's queue of unacknowledged events on one topic.
#[derive(Debug, Default)]
pub struct PendingQueue {
    /// Present levels, highest priority first.
    levels: Vec<Level>,
    /// Bit `p` set when priority `p` has a level in `levels`.
    present: [u64; 4],
    /// Every queued or in-flight `Seq`, with its state bits.
    entries: HashTable<u64>,
    in_flight: FxHashMap<Seq, Arc<Event>>,
    queued: usize,
    /// A push went out of sequence order (replay of compacted records).
    unsorted: bool,
}

#[derive(Debug)]
struct Level {
    priority: u8,
    events: VecDeque<Arc<Event>>,
}

impl PendingQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Events queued and not in flight.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Events delivered and not acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether `seq` is queued or in flight here.
    pub fn contains(&self, seq: Seq) -> bool {
        self.state(seq).is_some()
    }

    /// The state of `seq`, if it is here.
    pub fn state(&self, seq: Seq) -> Option<EntryState> {
        self.entries
            .find(hash_seq(seq.0), |&e| e & SEQ_MASK == seq.0)
            .map(|&e| state_of(e))
    }

    fn set_state(&mut self, seq: Seq, state: EntryState) {
        if let Some(e) = self
            .entries
            .find_mut(hash_seq(seq.0), |&e| e & SEQ_MASK == seq.0)
        {
            *e = entry_of(seq, state);
        }
    }

    /// Queues `event`. Returns false (and changes nothing) if its `Seq` is
    /// already here.
    pub fn push(&mut self, event: Arc<Event>, delivered_before: bool) -> bool {
        let seq = event.seq;
        if self.contains(seq) {
            return false;
        }
        self.entries.insert_unique(
            hash_seq(seq.0),
            entry_of(seq, EntryState::Queued { delivered_before }),
            |&e| hash_seq(e & SEQ_MASK),
        );
        let level = self.level_mut(event.priority);
        if level.events.back().is_some_and(|last| last.seq > seq) {
            self.unsorted = true;
        }
        let level = self.level_mut(event.priority);
        level.events.push_back(event);
        self.queued += 1;
        true
    }

    /// Takes the next event to deliver, if it is durable (`seq <= durable`).
    /// Order: highest priority, then lowest `Seq`.
    pub fn pop(&mut self, durable: Seq) -> Pop {
        while let Some(level) = self.levels.first_mut() {
            let Some(event) = level.events.front() else {
                let priority = level.priority;
                self.remove_level(priority);
                continue;
            };
            let seq = event.seq;
            let hash = hash_seq(seq.0);
            let Some(entry) = self.entries.find_mut(hash, |&e| e & SEQ_MASK == seq.0) else {
                // Tombstone of an event acknowledged while queued.
                level.events.pop_front();
                continue;
            };
            if seq > durable {
                return Pop::NotDurable;
            }
            let redelivered = match state_of(*entry) {
                EntryState::Queued { delivered_before } => delivered_before,
                // In-flight entries are never in a deque.
                EntryState::InFlight => true,
            };
            *entry = entry_of(seq, EntryState::InFlight);
            let Some(event) = level.events.pop_front() else {
                return Pop::Empty;
            };
            self.queued -= 1;
            self.in_flight.insert(seq, event.clone());
            return Pop::Event { event, redelivered };
        }
        Pop::Empty
    }

    /// Removes `seq` (acknowledged, queued or in flight). Returns the state
    /// it was in, or `None` if it is not here.
    pub fn remove(&mut self, seq: Seq) -> Option<EntryState> {
        let entry = self
            .entries
            .find_entry(hash_seq(seq.0), |&e| e & SEQ_MASK == seq.0)
            .ok()?;
        let (e, _) = entry.remove();
        let state = state_of(e);
        match state {
            EntryState::InFlight => {
                self.in_flight.remove(&seq);
            }
            EntryState::Queued { .. } => self.queued -= 1,
        }
        Some(state)
    }

    /// Marks a queued event as delivered before (replay of a delivery record).
    pub fn mark_delivered(&mut self, seq: Seq) {
        if let Some(EntryState::Queued { .. }) = self.state(seq) {
            self.set_state(
                seq,
                EntryState::Queued {
                    delivered_before: true,
                },
            );
        }
    }

    /// Puts every in-flight event back in the queue, flagged as delivered
    /// before (the subscriber's connection is gone).
    pub fn return_in_flight(&mut self) {
        if self.in_flight.is_empty() {
            return;
        }
        let mut back: Vec<Arc<Event>> = self.in_flight.drain().map(|(_, e)| e).collect();
        // Highest seq first, so that pushing each to the front leaves the
        // lowest at the front of its level.
        back.sort_unstable_by_key(|e| std::cmp::Reverse(e.seq));
        self.queued += back.len();
        for event in back {
            let seq = event.seq;
            self.set_state(
                seq,
                EntryState::Queued {
                    delivered_before: true,
                },
            );
            self.level_mut(event.priority).events.push_front(event);
        }
    }

    /// Restores FIFO order inside every level after out-of-order pushes
    /// (replay of records that compaction rewrote).
    pub fn sort_if_needed(&mut self) {
        if !self.unsorted {
            return;
        }
        for level in &mut self.levels {
            level
                .events
                .make_contiguous()
                .sort_unstable_by_key(|e| e.seq);
        }
        self.unsorted = false;
    }

    /// Empties the queue (unsubscribe, anonymous disconnect), returning every
    /// event it held.
    pub fn drain(&mut self) -> Vec<Arc<Event>> {
        let mut out: Vec<Arc<Event>> = self.in_flight.drain().map(|(_, e)| e).collect();
        for level in self.levels.drain(..) {
            for event in level.events {
                let seq = event.seq.0;
                // Tombstones are no longer entries; every live event is taken
                // once because its entry goes with it.
                if let Ok(entry) = self
                    .entries
                    .find_entry(hash_seq(seq), |&e| e & SEQ_MASK == seq)
                {
                    entry.remove();
                    out.push(event);
                }
            }
        }
        self.entries.clear();
        self.present = [0; 4];
        self.queued = 0;
        out
    }

    /// Every live entry (queued in delivery order, then in flight).
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<Event>, EntryState)> + '_ {
        let queued = self
            .levels
            .iter()
            .flat_map(|l| l.events.iter())
            .filter_map(|e| self.state(e.seq).map(|s| (e, s)));
        queued.chain(self.in_flight.values().map(|e| (e, EntryState::InFlight)))
    }

    /// The level for `priority`, created if absent.
    fn level_mut(&mut self, priority: u8) -> &mut Level {
        let rank = self.rank(priority);
        let (word, bit) = (priority as usize / 64, priority as usize % 64);
        if self.present[word] & (1 << bit) == 0 {
            self.present[word] |= 1 << bit;
            self.levels.insert(
                rank,
                Level {
                    priority,
                    events: VecDeque::new(),
                },
            );
        }
        &mut self.levels[rank]
    }

    fn remove_level(&mut self, priority: u8) {
        let rank = self.rank(priority);
        let (word, bit) = (priority as usize / 64, priority as usize % 64);
        if self.present[word] & (1 << bit) != 0 {
            self.present[word] &= !(1 << bit);
            self.levels.remove(rank);
        }
    }

    /// Number of present levels with a priority above `priority`.
    fn rank(&self, priority: u8) -> usize {
        let (word, bit) = (priority as usize / 64, priority as usize % 64);
        let mut above = 0;
        for w in word + 1..4 {
            above += self.present[w].count_ones() as usize;
        }
        let higher_bits = if bit == 63 {
            0
        } else {
            self.present[word] >> (bit + 1)
        };
        above + higher_bits.count_ones() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(seq: u64, priority: u8) -> Arc<Event> {
        Arc::new(Event::new(Seq(seq), priority, 0, &seq.to_string(), b"{}"))
    }

    fn pop_seq(q: &mut PendingQueue) -> Option<u64> {
        match q.pop(Seq(u64::MAX)) {
            Pop::Event { event, .. } => Some(event.seq.0),
            _ => None,
        }
    }

    #[test]
    fn higher_priority_first_then_publish_order() {
        let mut q = PendingQueue::new();
        for (seq, p) in [(1, 0), (2, 5), (3, 4), (4, 5), (5, 255), (6, 0)] {
            q.push(ev(seq, p), false);
        }
        let order: Vec<u64> = std::iter::from_fn(|| pop_seq(&mut q)).collect();
        assert_eq!(order, vec![5, 2, 4, 3, 1, 6]);
        assert_eq!(q.in_flight(), 6);
        assert_eq!(q.queued(), 0);
    }

    #[test]
    fn acked_while_queued_is_never_delivered() {
        let mut q = PendingQueue::new();
        q.push(ev(1, 1), false);
        q.push(ev(2, 1), false);
        assert!(q.remove(Seq(1)).is_some());
        assert_eq!(pop_seq(&mut q), Some(2));
        assert_eq!(pop_seq(&mut q), None);
    }

    #[test]
    fn a_non_durable_head_blocks_lower_priorities() {
        let mut q = PendingQueue::new();
        q.push(ev(1, 0), false);
        q.push(ev(2, 9), false);
        assert!(matches!(q.pop(Seq(1)), Pop::NotDurable));
        assert_eq!(pop_seq(&mut q), Some(2));
    }

    #[test]
    fn returned_in_flight_events_come_first_and_flagged() {
        let mut q = PendingQueue::new();
        for seq in 1..=4 {
            q.push(ev(seq, 3), false);
        }
        assert_eq!(pop_seq(&mut q), Some(1));
        assert_eq!(pop_seq(&mut q), Some(2));
        q.return_in_flight();
        assert_eq!(q.in_flight(), 0);
        assert_eq!(q.queued(), 4);
        match q.pop(Seq(u64::MAX)) {
            Pop::Event { event, redelivered } => {
                assert_eq!(event.seq, Seq(1));
                assert!(redelivered);
            }
            other => panic!("expected an event, got {other:?}"),
        }
        assert_eq!(pop_seq(&mut q), Some(2));
        match q.pop(Seq(u64::MAX)) {
            Pop::Event { event, redelivered } => {
                assert_eq!(event.seq, Seq(3));
                assert!(!redelivered);
            }
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[test]
    fn out_of_order_pushes_are_sorted_on_request() {
        let mut q = PendingQueue::new();
        q.push(ev(5, 1), false);
        q.push(ev(2, 1), false);
        q.sort_if_needed();
        assert_eq!(pop_seq(&mut q), Some(2));
        assert_eq!(pop_seq(&mut q), Some(5));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(u8),
        Pop,
        Ack(usize),
        Return,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..6).prop_map(Op::Push),
            3 => Just(Op::Pop),
            2 => (0usize..64).prop_map(Op::Ack),
            1 => Just(Op::Return),
        ]
    }

    proptest! {
        /// Against a model (a Vec of queued (priority, seq) kept sorted, and a
        /// set of in-flight seqs): no loss, no duplicate, priority then FIFO.
        #[test]
        fn behaves_like_a_sorted_vec(ops in proptest::collection::vec(op(), 1..200)) {
            let mut q = PendingQueue::new();
            let mut queued: Vec<(u8, u64)> = Vec::new();
            let mut in_flight: Vec<(u8, u64)> = Vec::new();
            let mut next = 1u64;
            for op in ops {
                match op {
                    Op::Push(p) => {
                        q.push(ev(next, p), false);
                        queued.push((p, next));
                        next += 1;
                    }
                    Op::Pop => {
                        // Highest priority, then lowest seq.
                        queued.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                        let expected = if queued.is_empty() { None } else { Some(queued.remove(0)) };
                        let got = pop_seq(&mut q);
                        prop_assert_eq!(got, expected.map(|e| e.1));
                        if let Some(e) = expected { in_flight.push(e); }
                    }
                    Op::Ack(i) => {
                        let all: Vec<(u8, u64)> = queued.iter().chain(in_flight.iter()).copied().collect();
                        if all.is_empty() {
                            prop_assert!(q.remove(Seq(next + 1)).is_none());
                        } else {
                            let target = all[i % all.len()];
                            prop_assert!(q.remove(Seq(target.1)).is_some());
                            queued.retain(|e| *e != target);
                            in_flight.retain(|e| *e != target);
                            prop_assert!(q.remove(Seq(target.1)).is_none());
                        }
                    }
                    Op::Return => {
                        q.return_in_flight();
                        queued.append(&mut in_flight);
                    }
                }
                prop_assert_eq!(q.queued(), queued.len());
                prop_assert_eq!(q.in_flight(), in_flight.len());
            }
        }
    }
}
