//! [`PendingQueue`]: one subscription's unacknowledged events on one topic,
//! in three states (`docs/protocol.md` 12.7): **queued** (deliverable),
//! **delayed** (not before a due time) and **in flight** (delivered to a
//! member, not acknowledged).
//!
//! Why this shape:
//! - Priorities are a byte, so queued events sit in one *level* per priority
//!   present, kept in a dense `Vec` from the highest priority down, with a
//!   256-bit map of the levels present. The rank of a level is a popcount, so
//!   finding the best level is O(1) and a subscription with few priorities
//!   costs a few levels, not 256.
//! - Within a level, events are delivered in the order they *joined* it
//!   (12.3): their `ready_seq`, drawn from the broker's sequence counter
//!   (publish order for new events, a fresh number for an event that joins
//!   at its due time). New arrivals always carry the highest number so far,
//!   so they go to the back of a FIFO in O(1). An event *returned* without
//!   delay keeps its number and must go back to its place, which is anywhere
//!   in the level: returns go to a min-heap beside the FIFO, and the head of
//!   a level is the smaller of the two fronts. The common path (publish,
//!   deliver, ack) never touches the heap; a storm of a million returns
//!   costs O(log n) each, never a shift of the FIFO.
//! - Priority aging (13.3) orders levels by `ready_ms - priority * age`:
//!   only the heads of the levels are compared, since within a level that
//!   key grows with `ready_seq`.
//! - Ack by id must not scan: membership and state live in a hash table
//!   keyed by [`Seq`] (16 bytes an entry). An event acknowledged (or expired)
//!   while queued or delayed stays in its FIFO or heap as a *tombstone*,
//!   recognised because its entry is gone or no longer in that state, and is
//!   dropped when it reaches the front. This is sound because a `Seq` leaves
//!   a structure only by being taken from its front (delivery, due time,
//!   eviction) or by leaving the queue for good (ack, expiry, dead letter):
//!   no stale copy can alias a live one.
//! - Delayed events sit in a min-heap by due time; ack deadlines in a
//!   min-heap of `(deadline, seq)` checked against the in-flight record, so
//!   `touch` just pushes a new deadline and the old one goes stale. Both are
//!   O(log n) per event, and nothing here ever scans what is in flight.
//!
//! Invariants: every live entry is in exactly one place (a level, the
//! delayed heap, or the in-flight map); each FIFO is sorted by `ready_seq`;
//! `queued + delayed + in_flight` is the number of entries; `bytes` is the
//! sum of their `msg` lengths.

use crate::conn::ConnId;
use crate::event::{Event, Seq};
use hashbrown::HashTable;
use min_queue::MinQueue;
use rustc_hash::{FxHashMap, FxHasher};
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::hash::Hasher;
use std::sync::Arc;

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// Deliverable.
    Queued,
    /// Not deliverable before its due time.
    Delayed,
    /// Delivered and not yet acknowledged.
    InFlight,
}

/// What [`PendingQueue::pop`] found.
#[derive(Debug)]
pub enum Pop {
    /// The next event to deliver, now in flight.
    Event {
        /// The event.
        event: Arc<Event>,
        /// Times this subscription has been sent it, this time included.
        deliveries: u32,
    },
    /// The best event is not durable yet; nothing may be delivered before it.
    NotDurable,
    /// Nothing is deliverable.
    Empty,
}

/// An event in flight at a member.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// The event.
    pub event: Arc<Event>,
    /// The connection it was delivered to.
    pub member: ConnId,
    /// When it is returned unless acknowledged or touched (ms since epoch).
    pub deadline: Option<u64>,
    ready_seq: u64,
    ready_ms: u64,
}

/// One entry as [`PendingQueue::entries`] and [`PendingQueue::peek`] show it.
#[derive(Debug, Clone)]
pub struct EntryView {
    /// The event.
    pub event: Arc<Event>,
    /// Its state.
    pub state: EntryState,
    /// Times this subscription has been sent it.
    pub deliveries: u32,
    /// In flight with a deadline: when it expires.
    pub deadline: Option<u64>,
    /// Delayed: when it becomes deliverable.
    pub due: Option<u64>,
    /// Queued or in flight: its place in its level (join order).
    pub ready_seq: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u64,
    deliveries: u32,
    state: EntryState,
}

/// A queued event's place: it joined its level as number `ready_seq` at
/// `ready_ms` (for aging).
#[derive(Debug, Clone)]
struct QItem {
    ready_seq: u64,
    ready_ms: u64,
    event: Arc<Event>,
}

impl PartialEq for QItem {
    fn eq(&self, other: &Self) -> bool {
        self.ready_seq == other.ready_seq
    }
}
impl Eq for QItem {}
impl PartialOrd for QItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for QItem {
    fn cmp(&self, other: &Self) -> Ordering {
        self.ready_seq.cmp(&other.ready_seq)
    }
}

#[derive(Debug, Clone)]
struct DelayedItem {
    due: u64,
    event: Arc<Event>,
}

impl PartialEq for DelayedItem {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for DelayedItem {}
impl PartialOrd for DelayedItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for DelayedItem {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.event.seq).cmp(&(other.due, other.event.seq))
    }
}

#[derive(Debug)]
struct Level {
    priority: u8,
    /// Arrivals, in `ready_seq` order.
    fifo: VecDeque<QItem>,
    /// Returned events, back at their place.
    returned: MinQueue<QItem>,
}

impl Level {
    fn is_physically_empty(&self) -> bool {
        self.fifo.is_empty() && self.returned.is_empty()
    }
}

/// Which front of a level holds its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Front {
    Fifo,
    Returned,
}

fn hash_seq(seq: u64) -> u64 {
    let mut h = FxHasher::default();
    h.write_u64(seq);
    h.finish()
}

/// Past this many stale heap entries beyond the live ones, a heap is
/// rebuilt, so that touches and acks of delayed events cannot grow it
/// without bound.
const STALE_SLACK: usize = 64;

/// One subscription's queue of unacknowledged events on one topic.
#[derive(Debug, Default)]
pub struct PendingQueue {
    /// Present levels, highest priority first.
    levels: Vec<Level>,
    /// Bit `p` set when priority `p` has a level in `levels`.
    present: [u64; 4],
    entries: HashTable<Entry>,
    in_flight: FxHashMap<Seq, InFlight>,
    delayed: MinQueue<DelayedItem>,
    deadlines: MinQueue<(u64, u64)>,
    /// Due time of each delayed entry, by seq: what `peek` and compaction
    /// ask of one event (the heap answers only "which is next").
    due: FxHashMap<u64, u64>,
    queued: usize,
    delayed_count: usize,
    bytes: u64,
}

impl PendingQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Deliverable events.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Events waiting for their due time.
    pub fn delayed(&self) -> usize {
        self.delayed_count
    }

    /// Events delivered and not acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Every event held, whatever its state.
    pub fn len(&self) -> usize {
        self.queued + self.delayed_count + self.in_flight.len()
    }

    /// Whether the queue holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the `msg` of every event held (`limit_bytes`).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The state of `seq` and its delivery count, if it is here.
    pub fn state(&self, seq: Seq) -> Option<(EntryState, u32)> {
        self.entry(seq.0).map(|e| (e.state, e.deliveries))
    }

    /// Whether `seq` is here, in any state.
    pub fn contains(&self, seq: Seq) -> bool {
        self.entry(seq.0).is_some()
    }

    /// The due time of `seq`, if it is delayed.
    pub fn due(&self, seq: Seq) -> Option<u64> {
        self.due.get(&seq.0).copied()
    }

    /// The in-flight record of `seq` and its delivery count, if it is in
    /// flight.
    pub fn in_flight_with_deliveries(&self, seq: Seq) -> Option<(&InFlight, u32)> {
        let flight = self.in_flight.get(&seq)?;
        Some((flight, self.entry(seq.0).map_or(0, |e| e.deliveries)))
    }

    /// The in-flight record of `seq`, if it is in flight.
    pub fn in_flight_entry(&self, seq: Seq) -> Option<&InFlight> {
        self.in_flight.get(&seq)
    }

    /// Adds a newly published event: queued at the back of its level, or
    /// delayed until `due`. Returns false (and changes nothing) if its `Seq`
    /// is already here.
    pub fn push(&mut self, event: Arc<Event>, due: Option<u64>) -> bool {
        let ready = (event.seq.0, event.timestamp);
        match due {
            Some(due) => self.push_delayed(event, 0, due),
            None => self.push_ready(event, 0, ready.0, ready.1),
        }
    }

    /// Adds `event` as queued with the given place. The caller guarantees
    /// `ready_seq` is above every `ready_seq` already in its level (it comes
    /// from the broker's counter), which keeps the FIFO sorted.
    pub fn push_ready(
        &mut self,
        event: Arc<Event>,
        deliveries: u32,
        ready_seq: u64,
        ready_ms: u64,
    ) -> bool {
        if !self.insert_entry(event.seq.0, deliveries, EntryState::Queued) {
            return false;
        }
        self.bytes += event.msg_len();
        self.queued += 1;
        let level = self.level_mut(event.priority);
        debug_assert!(level.fifo.back().is_none_or(|b| b.ready_seq < ready_seq));
        level.fifo.push_back(QItem {
            ready_seq,
            ready_ms,
            event,
        });
        true
    }

    /// Adds `event` as delayed until `due`.
    pub fn push_delayed(&mut self, event: Arc<Event>, deliveries: u32, due: u64) -> bool {
        if !self.insert_entry(event.seq.0, deliveries, EntryState::Delayed) {
            return false;
        }
        self.bytes += event.msg_len();
        self.delayed_count += 1;
        self.due.insert(event.seq.0, due);
        self.delayed.push(DelayedItem { due, event });
        true
    }

    /// Takes the next event to deliver, if it is durable (`seq <= durable`),
    /// and puts it in flight at `member` with `deadline`. Order: highest
    /// priority, then join order; with `age_ms`, smallest
    /// `ready_ms - priority * age` first, ties to the higher priority.
    pub fn pop(
        &mut self,
        durable: Seq,
        age_ms: Option<u64>,
        member: ConnId,
        deadline: Option<u64>,
    ) -> Pop {
        let Some((index, front)) = self.best_level(age_ms) else {
            return Pop::Empty;
        };
        let level = &mut self.levels[index];
        let head = match front {
            Front::Fifo => level.fifo.front().map(|q| q.event.seq),
            Front::Returned => level.returned.peek().map(|q| q.event.seq),
        };
        if head.is_some_and(|seq| seq > durable) {
            return Pop::NotDurable;
        }
        let item = match front {
            Front::Fifo => level.fifo.pop_front(),
            Front::Returned => level.returned.pop(),
        };
        let Some(item) = item else {
            return Pop::Empty;
        };
        if level.is_physically_empty() {
            let priority = level.priority;
            self.remove_level(priority);
        }
        let seq = item.event.seq;
        let deliveries = match self.entry_mut(seq.0) {
            Some(entry) => {
                entry.state = EntryState::InFlight;
                entry.deliveries = entry.deliveries.saturating_add(1);
                entry.deliveries
            }
            // `best_level` only returns live heads.
            None => return Pop::Empty,
        };
        self.queued -= 1;
        if let Some(deadline) = deadline {
            self.deadlines.push((deadline, seq.0));
        }
        self.in_flight.insert(
            seq,
            InFlight {
                event: item.event.clone(),
                member,
                deadline,
                ready_seq: item.ready_seq,
                ready_ms: item.ready_ms,
            },
        );
        Pop::Event {
            event: item.event,
            deliveries,
        }
    }

    /// Removes `event` (acknowledged, expired, evicted or dead-lettered),
    /// whatever its state. Returns the state it was in, or `None` if it is
    /// not here. Queued and delayed copies become tombstones.
    pub fn remove(&mut self, event: &Event) -> Option<EntryState> {
        let seq = event.seq.0;
        let entry = self
            .entries
            .find_entry(hash_seq(seq), |e| e.seq == seq)
            .ok()?;
        let (e, _) = entry.remove();
        match e.state {
            EntryState::InFlight => {
                self.in_flight.remove(&event.seq);
            }
            EntryState::Queued => self.queued -= 1,
            EntryState::Delayed => {
                self.delayed_count -= 1;
                self.due.remove(&seq);
                if self.delayed.len() > 2 * self.delayed_count + STALE_SLACK {
                    self.prune_delayed();
                }
            }
        }
        self.bytes = self.bytes.saturating_sub(event.msg_len());
        Some(e.state)
    }

    /// Puts an in-flight event back: queued at its place (before every
    /// event of its level that joined after it), or delayed until `due`.
    /// Returns false if `seq` is not in flight.
    pub fn requeue(&mut self, seq: Seq, due: Option<u64>) -> bool {
        let Some(flight) = self.in_flight.remove(&seq) else {
            return false;
        };
        let state = if due.is_some() {
            EntryState::Delayed
        } else {
            EntryState::Queued
        };
        if let Some(entry) = self.entry_mut(seq.0) {
            entry.state = state;
        }
        match due {
            Some(due) => {
                self.delayed_count += 1;
                self.due.insert(seq.0, due);
                self.delayed.push(DelayedItem {
                    due,
                    event: flight.event,
                });
            }
            None => {
                self.queued += 1;
                let level = self.level_mut(flight.event.priority);
                level.returned.push(QItem {
                    ready_seq: flight.ready_seq,
                    ready_ms: flight.ready_ms,
                    event: flight.event,
                });
            }
        }
        if self.deadlines.len() > 2 * self.in_flight.len() + STALE_SLACK {
            self.prune_deadlines();
        }
        true
    }

    /// Restarts the deadline of an in-flight event. False if not in flight.
    pub fn touch(&mut self, seq: Seq, deadline: u64) -> bool {
        let Some(flight) = self.in_flight.get_mut(&seq) else {
            return false;
        };
        flight.deadline = Some(deadline);
        self.deadlines.push((deadline, seq.0));
        if self.deadlines.len() > 2 * self.in_flight.len() + STALE_SLACK {
            self.prune_deadlines();
        }
        true
    }

    /// The in-flight events of `member`, in delivery order of their places.
    pub fn in_flight_at(&self, member: ConnId) -> Vec<Seq> {
        let mut out: Vec<(u8, u64, Seq)> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.member == member)
            .map(|(&seq, f)| (f.event.priority, f.ready_seq, seq))
            .collect();
        out.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        out.into_iter().map(|(_, _, seq)| seq).collect()
    }

    /// The earliest live ack deadline.
    pub fn next_deadline(&mut self) -> Option<u64> {
        while let Some(&(deadline, seq)) = self.deadlines.peek() {
            if self.deadline_is_live(deadline, seq) {
                return Some(deadline);
            }
            self.deadlines.pop();
        }
        None
    }

    /// Takes one in-flight event whose deadline is at or before `now`.
    /// The caller returns it (or dead-letters it).
    pub fn expired_deadline(&mut self, now: u64) -> Option<Seq> {
        while let Some(&(deadline, seq)) = self.deadlines.peek() {
            if deadline > now {
                return None;
            }
            self.deadlines.pop();
            if self.deadline_is_live(deadline, seq) {
                return Some(Seq(seq));
            }
        }
        None
    }

    /// The earliest due time of a delayed event.
    pub fn next_due(&mut self) -> Option<u64> {
        while let Some(item) = self.delayed.peek() {
            if self.is_in(item.event.seq.0, EntryState::Delayed) {
                return Some(item.due);
            }
            self.delayed.pop();
        }
        None
    }

    /// Moves one delayed event whose due time is at or before `now` into
    /// its level, behind the events already there (it takes the next number
    /// of `counter`, and joins at its due time for aging). Returns it.
    pub fn join_due(&mut self, now: u64, counter: &mut u64) -> Option<Arc<Event>> {
        loop {
            let item = self.delayed.peek()?;
            if !self.is_in(item.event.seq.0, EntryState::Delayed) {
                self.delayed.pop();
                continue;
            }
            if item.due > now {
                return None;
            }
            let item = self.delayed.pop()?;
            if let Some(entry) = self.entry_mut(item.event.seq.0) {
                entry.state = EntryState::Queued;
            }
            self.due.remove(&item.event.seq.0);
            self.delayed_count -= 1;
            self.queued += 1;
            let ready_seq = *counter;
            *counter += 1;
            let event = item.event.clone();
            self.level_mut(event.priority).fifo.push_back(QItem {
                ready_seq,
                ready_ms: item.due,
                event: item.event,
            });
            return Some(event);
        }
    }

    /// Evicts the lowest-priority queued event, the oldest among equals
    /// (13.4); when nothing is queued, the lowest-priority delayed event,
    /// the earliest published among equals; never one in flight. Returns it.
    ///
    /// Evicting a delayed event scans the delayed ones: it only happens when
    /// every event held is delayed or in flight.
    pub fn evict_lowest(&mut self) -> Option<Arc<Event>> {
        while let Some(index) = self.levels.len().checked_sub(1) {
            let Some(front) = clean_head(&mut self.levels[index], &self.entries) else {
                let priority = self.levels[index].priority;
                self.remove_level(priority);
                continue;
            };
            let level = &mut self.levels[index];
            let item = match front {
                Front::Fifo => level.fifo.pop_front(),
                Front::Returned => level.returned.pop(),
            }?;
            if level.is_physically_empty() {
                let priority = level.priority;
                self.remove_level(priority);
            }
            self.remove(&item.event);
            return Some(item.event);
        }
        let victim = self
            .delayed
            .iter()
            .map(|d| &d.event)
            .filter(|e| self.is_in(e.seq.0, EntryState::Delayed))
            .min_by_key(|e| (e.priority, e.seq))
            .cloned()?;
        self.remove(&victim);
        Some(victim)
    }

    /// Increments the delivery count of `seq` (replay of a delivery record).
    pub fn count_delivery(&mut self, seq: Seq) {
        if let Some(entry) = self.entry_mut(seq.0) {
            entry.deliveries = entry.deliveries.saturating_add(1);
        }
    }

    /// Empties the queue (unsubscribe, anonymous disconnect), returning every
    /// event it held.
    pub fn drain(&mut self) -> Vec<Arc<Event>> {
        let mut out: Vec<Arc<Event>> = self.in_flight.drain().map(|(_, f)| f.event).collect();
        for level in self.levels.drain(..) {
            let items = level
                .fifo
                .into_iter()
                .chain(level.returned.into_iter_unordered());
            for item in items {
                if is_in(&self.entries, item.event.seq.0, EntryState::Queued) {
                    out.push(item.event);
                }
            }
        }
        for item in self.delayed.drain() {
            if is_in(&self.entries, item.event.seq.0, EntryState::Delayed) {
                out.push(item.event);
            }
        }
        // An event is in one place only, but be safe against a bug turning
        // into a double release.
        out.sort_unstable_by_key(|e| e.seq);
        out.dedup_by_key(|e| e.seq);
        *self = PendingQueue::new();
        out
    }

    /// Every live entry: in flight, queued (in no particular order) and
    /// delayed (with its due time).
    pub fn entries(&self) -> Vec<EntryView> {
        let mut out = Vec::with_capacity(self.len());
        for f in self.in_flight.values() {
            let mut view = self.view(&f.event, EntryState::InFlight, f.deadline, None);
            view.ready_seq = Some(f.ready_seq);
            out.push(view);
        }
        for level in &self.levels {
            let items = level.fifo.iter().chain(level.returned.iter());
            for item in items {
                if self.is_in(item.event.seq.0, EntryState::Queued) {
                    let mut view = self.view(&item.event, EntryState::Queued, None, None);
                    view.ready_seq = Some(item.ready_seq);
                    out.push(view);
                }
            }
        }
        for item in self.delayed.iter() {
            if self.is_in(item.event.seq.0, EntryState::Delayed) {
                out.push(self.view(&item.event, EntryState::Delayed, None, Some(item.due)));
            }
        }
        out
    }

    /// Up to `n` entries as `peek` shows them (12.7): in flight first, then
    /// queued in delivery order (with `age_ms` as `pop` would), then delayed
    /// by due time.
    pub fn peek(&self, n: usize, age_ms: Option<u64>) -> Vec<EntryView> {
        let mut out = Vec::with_capacity(n.min(self.len()));
        let mut flying: Vec<&InFlight> = self.in_flight.values().collect();
        flying.sort_unstable_by(|a, b| {
            b.event
                .priority
                .cmp(&a.event.priority)
                .then(a.ready_seq.cmp(&b.ready_seq))
        });
        for f in flying.into_iter().take(n) {
            out.push(self.view(&f.event, EntryState::InFlight, f.deadline, None));
        }
        if out.len() < n {
            let want = n - out.len();
            for item in self.queued_in_order(want, age_ms) {
                out.push(self.view(&item.event, EntryState::Queued, None, None));
            }
        }
        if out.len() < n {
            let mut delayed: Vec<&DelayedItem> = self
                .delayed
                .iter()
                .filter(|d| self.is_in(d.event.seq.0, EntryState::Delayed))
                .collect();
            delayed.sort_unstable();
            for d in delayed.into_iter().take(n - out.len()) {
                out.push(self.view(&d.event, EntryState::Delayed, None, Some(d.due)));
            }
        }
        out
    }

    /// The timestamp of the oldest queued event, looking at the heads of
    /// the levels (an event that joined at its due time and sits behind a
    /// newer one is not seen; `oldest_ms` is a health signal, and this keeps
    /// it O(levels)).
    pub fn oldest_queued_timestamp(&self) -> Option<u64> {
        let mut oldest: Option<u64> = None;
        for level in &self.levels {
            let fifo = level
                .fifo
                .iter()
                .find(|q| self.is_in(q.event.seq.0, EntryState::Queued));
            let returned = level.returned.peek();
            for item in fifo.into_iter().chain(returned) {
                if self.is_in(item.event.seq.0, EntryState::Queued) {
                    let t = item.event.timestamp;
                    oldest = Some(oldest.map_or(t, |o| o.min(t)));
                }
            }
        }
        oldest
    }

    // ---- internals ----------------------------------------------------

    fn view(
        &self,
        event: &Arc<Event>,
        state: EntryState,
        deadline: Option<u64>,
        due: Option<u64>,
    ) -> EntryView {
        EntryView {
            event: event.clone(),
            state,
            deliveries: self.entry(event.seq.0).map_or(0, |e| e.deliveries),
            deadline,
            due,
            ready_seq: None,
        }
    }

    /// Up to `n` live queued items in delivery order.
    fn queued_in_order(&self, n: usize, age_ms: Option<u64>) -> Vec<QItem> {
        // Each level's live items in join order, at most `n` of them.
        let mut per_level: Vec<(u8, VecDeque<QItem>)> = Vec::with_capacity(self.levels.len());
        for level in &self.levels {
            let mut returned: Vec<&QItem> = level
                .returned
                .iter()
                .filter(|q| self.is_in(q.event.seq.0, EntryState::Queued))
                .collect();
            returned.sort_unstable();
            let fifo = level
                .fifo
                .iter()
                .filter(|q| self.is_in(q.event.seq.0, EntryState::Queued));
            let mut merged = VecDeque::new();
            let (mut a, mut b) = (fifo.peekable(), returned.into_iter().peekable());
            while merged.len() < n {
                let take_a = match (a.peek(), b.peek()) {
                    (Some(x), Some(y)) => x.ready_seq < y.ready_seq,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (None, None) => break,
                };
                let next = if take_a { a.next() } else { b.next() };
                if let Some(q) = next {
                    merged.push_back(q.clone());
                }
            }
            per_level.push((level.priority, merged));
        }
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let mut best: Option<(usize, i128)> = None;
            for (i, (priority, items)) in per_level.iter().enumerate() {
                let Some(head) = items.front() else { continue };
                let key = aging_key(head, *priority, age_ms);
                // Levels are in priority order, so a strict `<` keeps ties
                // with the higher priority.
                if best.is_none_or(|(_, k)| key < k) {
                    best = Some((i, key));
                }
            }
            let Some((i, _)) = best else { break };
            if let Some(item) = per_level[i].1.pop_front() {
                out.push(item);
            }
        }
        out
    }

    /// The level holding the next event to deliver, and which of its fronts
    /// holds it. Drops tombstones and empty levels on the way.
    fn best_level(&mut self, age_ms: Option<u64>) -> Option<(usize, Front)> {
        match age_ms {
            None => loop {
                let level = self.levels.first_mut()?;
                match clean_head(level, &self.entries) {
                    Some(front) => return Some((0, front)),
                    None => {
                        let priority = level.priority;
                        self.remove_level(priority);
                    }
                }
            },
            Some(_) => {
                let mut best: Option<(usize, Front, i128)> = None;
                let mut i = 0;
                while i < self.levels.len() {
                    let Some(front) = clean_head(&mut self.levels[i], &self.entries) else {
                        let priority = self.levels[i].priority;
                        self.remove_level(priority);
                        continue;
                    };
                    let level = &self.levels[i];
                    let head = match front {
                        Front::Fifo => level.fifo.front(),
                        Front::Returned => level.returned.peek(),
                    };
                    if let Some(head) = head {
                        let key = aging_key(head, level.priority, age_ms);
                        if best.is_none_or(|(_, _, k)| key < k) {
                            best = Some((i, front, key));
                        }
                    }
                    i += 1;
                }
                best.map(|(i, front, _)| (i, front))
            }
        }
    }

    fn entry(&self, seq: u64) -> Option<&Entry> {
        self.entries.find(hash_seq(seq), |e| e.seq == seq)
    }

    fn entry_mut(&mut self, seq: u64) -> Option<&mut Entry> {
        self.entries.find_mut(hash_seq(seq), |e| e.seq == seq)
    }

    fn is_in(&self, seq: u64, state: EntryState) -> bool {
        is_in(&self.entries, seq, state)
    }

    fn insert_entry(&mut self, seq: u64, deliveries: u32, state: EntryState) -> bool {
        if self.entry(seq).is_some() {
            return false;
        }
        self.entries.insert_unique(
            hash_seq(seq),
            Entry {
                seq,
                deliveries,
                state,
            },
            |e| hash_seq(e.seq),
        );
        true
    }

    fn deadline_is_live(&self, deadline: u64, seq: u64) -> bool {
        self.in_flight
            .get(&Seq(seq))
            .is_some_and(|f| f.deadline == Some(deadline))
    }

    fn prune_deadlines(&mut self) {
        let in_flight = &self.in_flight;
        self.deadlines.retain(|&(deadline, seq)| {
            in_flight
                .get(&Seq(seq))
                .is_some_and(|f| f.deadline == Some(deadline))
        });
    }

    fn prune_delayed(&mut self) {
        let entries = &self.entries;
        self.delayed
            .retain(|d| is_in(entries, d.event.seq.0, EntryState::Delayed));
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
                    fifo: VecDeque::new(),
                    returned: MinQueue::default(),
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

#[cfg(any(test, feature = "invariants"))]
impl PendingQueue {
    /// Checks the invariants of the module docs (tests and fuzzing only:
    /// it walks everything).
    ///
    /// # Errors
    /// The first invariant found broken.
    pub fn check(&self) -> Result<(), String> {
        let count = |state| self.entries.iter().filter(|e| e.state == state).count();
        if count(EntryState::Queued) != self.queued {
            return Err(format!(
                "queued {} but {} entries",
                self.queued,
                count(EntryState::Queued)
            ));
        }
        if count(EntryState::Delayed) != self.delayed_count || self.due.len() != self.delayed_count
        {
            return Err("delayed count".into());
        }
        if count(EntryState::InFlight) != self.in_flight.len() {
            return Err("in-flight count".into());
        }
        let mut live = std::collections::HashSet::new();
        for level in &self.levels {
            let mut last = 0;
            for q in &level.fifo {
                if q.ready_seq <= last {
                    return Err("fifo out of order".into());
                }
                last = q.ready_seq;
            }
            let items = level.fifo.iter().chain(level.returned.iter());
            for q in items {
                if q.event.priority != level.priority {
                    return Err("event in the wrong level".into());
                }
                if self.is_in(q.event.seq.0, EntryState::Queued) && !live.insert(q.event.seq) {
                    return Err(format!("{} queued twice", q.event.seq));
                }
            }
        }
        if live.len() != self.queued {
            return Err(format!(
                "{} live queued items, {} queued",
                live.len(),
                self.queued
            ));
        }
        Ok(())
    }
}

fn is_in(entries: &HashTable<Entry>, seq: u64, state: EntryState) -> bool {
    entries
        .find(hash_seq(seq), |e| e.seq == seq)
        .is_some_and(|e| e.state == state)
}

/// Drops tombstones from both fronts of `level` and says which front holds
/// its head (the smaller `ready_seq`), or `None` if it holds nothing live.
fn clean_head(level: &mut Level, entries: &HashTable<Entry>) -> Option<Front> {
    while let Some(front) = level.fifo.front() {
        if is_in(entries, front.event.seq.0, EntryState::Queued) {
            break;
        }
        level.fifo.pop_front();
    }
    while let Some(top) = level.returned.peek() {
        if is_in(entries, top.event.seq.0, EntryState::Queued) {
            break;
        }
        level.returned.pop();
    }
    match (level.fifo.front(), level.returned.peek()) {
        (Some(a), Some(b)) if b.ready_seq < a.ready_seq => Some(Front::Returned),
        (Some(_), _) => Some(Front::Fifo),
        (None, Some(_)) => Some(Front::Returned),
        (None, None) => None,
    }
}

/// The aging order key of 13.3: `ready − priority × age`, smallest first.
/// Without aging, priority first: the key is minus the priority, scaled so
/// that no `ready_ms` can reorder levels.
fn aging_key(item: &QItem, priority: u8, age_ms: Option<u64>) -> i128 {
    match age_ms {
        Some(age) => i128::from(item.ready_ms) - i128::from(priority) * i128::from(age),
        None => -i128::from(priority),
    }
}

mod min_queue;
#[cfg(test)]
mod tests;
