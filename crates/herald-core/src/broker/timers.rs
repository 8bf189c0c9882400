//! Time: ack deadlines, due times and expiry (`docs/protocol.md` 12.3,
//! 13.1, 13.2), driven by the server through [`Broker::tick`].
//!
//! Each subscription keeps its deadlines and due times in heaps of its own,
//! each topic the expiry times of its events; the broker keeps one heap of
//! *owners* keyed by the earliest time each one needs attention. An owner
//! is pushed again only when something earlier than what it is scheduled
//! for arrives, so the heap holds about one entry per owner with timers,
//! and a tick costs O(log owners) plus the events that are actually due.
//! A stale entry (the owner was served earlier, or is gone) only causes a
//! look that finds nothing due.

use super::*;

/// Most returns and due-time joins one subscription does per `tick`; the
/// rest is scheduled again at once. A storm of a million deadlines then
/// runs as many short ticks, so the server writes what each one produced
/// (and serves other connections) in between, and no tick's effects grow
/// to a million entries.
const MAX_TIMED_PER_TICK: usize = 8192;

impl Broker {
    /// When [`tick`](Self::tick) next has something to do (ms since epoch).
    pub fn next_wakeup(&self) -> Option<u64> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Does everything due at `now`: returns events whose ack deadline
    /// passed, makes delayed events deliverable, removes expired events,
    /// and delivers what that frees.
    pub fn tick(&mut self, now: u64, fx: &mut Effects) {
        // Each owner due now is served once per call; one with more to do
        // than a call allows is in the heap again for `now`, and the next
        // call (the server's next batch) goes on with it.
        let mut due = Vec::new();
        while let Some(&Reverse((at, owner))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            due.push(owner);
        }
        due.sort_unstable();
        due.dedup();
        for owner in due {
            match owner {
                Owner::Topic(tid) => {
                    self.topics[tid].scheduled = u64::MAX;
                    self.expire_topic(tid, now, fx);
                    let next = self.topics[tid].expiry.peek().map(|Reverse(e)| e.at);
                    self.schedule(owner, next);
                }
                Owner::Sub(key) => {
                    let Some(s) = self.subs.get_mut(key).and_then(Option::as_mut) else {
                        continue;
                    };
                    s.scheduled = u64::MAX;
                    self.sub_timers(key, now, fx);
                    let next = self.sub_mut(key).and_then(|s| {
                        match (s.queue.next_deadline(), s.queue.next_due()) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        }
                    });
                    self.schedule(owner, next);
                }
            }
        }
    }

    fn sub_timers(&mut self, key: SubKey, now: u64, fx: &mut Effects) {
        let mut done = 0;
        while done < MAX_TIMED_PER_TICK {
            let Some(s) = self.subs[key].as_mut() else {
                return;
            };
            let Some(seq) = s.queue.expired_deadline(now) else {
                break;
            };
            self.return_event(key, seq, None, now, fx);
            done += 1;
        }
        let Some(s) = self.subs[key].as_mut() else {
            return;
        };
        while done < MAX_TIMED_PER_TICK && s.queue.join_due(now, &mut self.next_seq).is_some() {
            done += 1;
        }
        self.deliver(key, now, fx);
    }

    /// Removes every event of `tid` whose time to live ran out from every
    /// subscription that holds it queued or delayed (13.1). In-flight
    /// copies stay; they are removed when returned.
    fn expire_topic(&mut self, tid: TopicId, now: u64, fx: &mut Effects) {
        for _ in 0..MAX_TIMED_PER_TICK {
            let t = &mut self.topics[tid];
            let Some(Reverse(top)) = t.expiry.peek() else {
                return;
            };
            if top.at > now {
                return;
            }
            let Some(Reverse(expiry)) = t.expiry.pop() else {
                return;
            };
            let Some(event) = expiry.event.upgrade() else {
                continue;
            };
            let subs = t.subs.clone();
            for key in subs {
                let waiting = self
                    .sub(key)
                    .and_then(|s| s.queue.state(event.seq))
                    .is_some_and(|(state, _)| state != EntryState::InFlight);
                if waiting {
                    self.expire_from(key, &event, now, fx);
                }
            }
        }
    }
}
