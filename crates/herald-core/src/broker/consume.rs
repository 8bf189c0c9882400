//! Delivery and what consumers say back: `ack`, `nack`, `touch`, and
//! returns (`docs/protocol.md` 4, 5, 12.2-12.5).
//!
//! A *return* puts an in-flight event back: at once at its place, delayed
//! by the backoff or a `nack` duration, removed if it expired meanwhile, or
//! dead-lettered once it has been delivered `max_deliveries` times. Every
//! way an event leaves a member (deadline, `nack`, disconnect, `unsub` from
//! a group, recovery) goes through [`Broker::return_event`], so those rules
//! live in one place.

use super::*;
use crate::queue::Pop;
use herald_proto::NackAction;

impl Broker {
    /// Delivers from one subscription while a member has a free slot and a
    /// durable event is deliverable.
    pub(super) fn deliver(&mut self, key: SubKey, now: u64, fx: &mut Effects) {
        let durable = self.durable;
        let Some(s) = self.subs.get_mut(key).and_then(Option::as_mut) else {
            return;
        };
        let t = &mut self.topics[s.topic];
        let mut next_deadline = None;
        while let Some(i) = s.next_member() {
            let member = s.members[i].conn;
            let deadline = s.deadline(now);
            match s.queue.pop(durable, s.options.age_ms, member, deadline) {
                Pop::Event { event, deliveries } => {
                    s.members[i].in_flight += 1;
                    s.turn = i + 1;
                    t.counters.delivered += 1;
                    if deliveries >= 2 {
                        t.counters.redelivered += 1;
                    }
                    if let Some(name) = s.kind.durable_name() {
                        fx.changes.push(Change::Delivered {
                            subscriber: name.clone(),
                            topic: t.name.clone(),
                            seq: event.seq,
                        });
                    }
                    fx.outputs.push(Output::Deliver {
                        conn: member,
                        topic: t.name.clone(),
                        event,
                        deliveries,
                    });
                    next_deadline = next_deadline.or(deadline);
                }
                Pop::NotDurable => {
                    if !s.waiting {
                        s.waiting = true;
                        self.waiting.push(key);
                    }
                    break;
                }
                Pop::Empty => break,
            }
        }
        self.schedule(Owner::Sub(key), next_deadline);
    }

    pub(super) fn ack(&mut self, conn: ConnId, topic: &str, id: &str, now: u64, fx: &mut Effects) {
        let Some((tid, key)) = self.conn_sub(conn, topic) else {
            return not_subscribed(conn, topic, fx);
        };
        let Some(event) = self.topics[tid].slot(id).map(|s| s.event.clone()) else {
            return no_event(conn, topic, id, fx);
        };
        let Some(s) = self.subs.get_mut(key).and_then(Option::as_mut) else {
            return not_subscribed(conn, topic, fx);
        };
        // A member may ack what is in flight at itself, or queued or
        // delayed in its subscription; not what another member holds.
        let member = match s.queue.state(event.seq) {
            None => return no_event(conn, topic, id, fx),
            Some((EntryState::InFlight, _)) => {
                let holder = s.queue.in_flight_entry(event.seq).map(|f| f.member);
                if holder != Some(conn) {
                    return no_event(conn, topic, id, fx);
                }
                holder
            }
            Some(_) => None,
        };
        s.queue.remove(&event);
        if let Some(m) = member.and_then(|m| s.member_mut(m)) {
            m.in_flight = m.in_flight.saturating_sub(1);
        }
        let durable_name = s.kind.durable_name().cloned();
        let t = &mut self.topics[tid];
        t.counters.acked += 1;
        let topic_name = t.name.clone();
        if let Some(name) = &durable_name {
            fx.changes.push(Change::Acked {
                subscriber: name.clone(),
                topic: topic_name.clone(),
                seq: event.seq,
            });
        }
        self.release(tid, &event, durable_name.is_some());
        fx.reply(
            conn,
            Reply::Acked {
                topic: topic_name,
                id: id.into(),
            },
        );
        if member.is_some() {
            self.deliver(key, now, fx);
        }
    }

    pub(super) fn nack(
        &mut self,
        conn: ConnId,
        topic: &str,
        id: &str,
        action: NackAction,
        now: u64,
        fx: &mut Effects,
    ) {
        let Some((key, event)) = self.in_flight_here(conn, topic, id, fx) else {
            return;
        };
        let topic_name = self.topics[self.topic_of(key)].name.clone();
        // The reply goes before anything the nack makes possible, such as
        // the redelivery, or a dead letter delivered to this connection.
        fx.reply(
            conn,
            Reply::Nacked {
                topic: topic_name,
                id: id.into(),
            },
        );
        match action {
            NackAction::Return => self.return_event(key, event.seq, None, now, fx),
            NackAction::Delay(ms) => self.return_event(key, event.seq, Some(ms), now, fx),
            NackAction::Dead => {
                self.unassign(key, event.seq);
                self.dead_letter(key, &event, RemoveReason::Rejected, now, fx);
            }
        }
        self.deliver(key, now, fx);
    }

    pub(super) fn touch(
        &mut self,
        conn: ConnId,
        topic: &str,
        id: &str,
        ms: Option<u64>,
        now: u64,
        fx: &mut Effects,
    ) {
        // Errors in the order of 12.4: not subscribed, no `wait`, not in
        // flight here.
        let Some((_, key)) = self.conn_sub(conn, topic) else {
            return not_subscribed(conn, topic, fx);
        };
        let Some(wait) = self.sub(key).and_then(|s| s.options.wait_ms) else {
            fx.error(
                conn,
                ErrorCode::BadState,
                format!("the subscription to '{topic}' has no ack deadline (subscribe with wait=)"),
            );
            return;
        };
        let Some((key, event)) = self.in_flight_here(conn, topic, id, fx) else {
            return;
        };
        let ms = ms.unwrap_or(wait);
        let deadline = now.saturating_add(ms);
        if let Some(s) = self.sub_mut(key) {
            s.queue.touch(event.seq, deadline);
        }
        self.schedule(Owner::Sub(key), Some(deadline));
        let topic_name = self.topics[self.topic_of(key)].name.clone();
        fx.reply(
            conn,
            Reply::Touched {
                topic: topic_name,
                id: id.into(),
                ms,
            },
        );
    }

    /// The subscription and event for a `nack` or `touch`: the event must be
    /// in flight at `conn`. Replies the error otherwise.
    fn in_flight_here(
        &self,
        conn: ConnId,
        topic: &str,
        id: &str,
        fx: &mut Effects,
    ) -> Option<(SubKey, Arc<Event>)> {
        let Some((tid, key)) = self.conn_sub(conn, topic) else {
            not_subscribed(conn, topic, fx);
            return None;
        };
        let event = self.topics[tid].slot(id).map(|s| s.event.clone());
        let here = event.filter(|e| {
            self.sub(key)
                .and_then(|s| s.queue.in_flight_entry(e.seq))
                .is_some_and(|f| f.member == conn)
        });
        if here.is_none() {
            fx.error(
                conn,
                ErrorCode::NoEvent,
                format!("no event '{id}' in flight at this connection on '{topic}'"),
            );
        }
        here.map(|e| (key, e))
    }

    pub(super) fn topic_of(&self, key: SubKey) -> TopicId {
        self.sub(key).map_or(0, |s| s.topic)
    }

    /// Frees the member slot an in-flight event holds (it is about to leave
    /// the member), without moving the event.
    fn unassign(&mut self, key: SubKey, seq: Seq) {
        let Some(s) = self.sub_mut(key) else { return };
        if let Some(member) = s.queue.in_flight_entry(seq).map(|f| f.member)
            && let Some(m) = s.member_mut(member)
        {
            m.in_flight = m.in_flight.saturating_sub(1);
        }
    }

    /// Returns an in-flight event (12.3): removed if it expired meanwhile
    /// (13.1), dead-lettered if it has had its `max_deliveries` (12.6),
    /// otherwise queued at its place or delayed by `delay` (a `nack`
    /// duration) or the backoff. Does not deliver: callers do, once.
    pub(super) fn return_event(
        &mut self,
        key: SubKey,
        seq: Seq,
        delay: Option<u64>,
        now: u64,
        fx: &mut Effects,
    ) {
        let Some(s) = self.subs.get_mut(key).and_then(Option::as_mut) else {
            return;
        };
        let Some((flight, deliveries)) = s.queue.in_flight_with_deliveries(seq) else {
            return;
        };
        let (event, member) = (flight.event.clone(), flight.member);
        if let Some(m) = s.member_mut(member) {
            m.in_flight = m.in_flight.saturating_sub(1);
        }
        let exhausted = s.is_exhausted(deliveries);
        let delay = delay
            .or_else(|| s.backoff_ms(deliveries))
            .filter(|&d| d > 0);
        if event.is_expired(now) {
            self.expire_from(key, &event, now, fx);
            return;
        }
        if exhausted {
            self.dead_letter(key, &event, RemoveReason::MaxDeliveries, now, fx);
            return;
        }
        let due = delay.map(|d| now.saturating_add(d));
        let Some(s) = self.subs[key].as_mut() else {
            return;
        };
        s.queue.requeue(seq, due);
        if let Some(due) = due {
            if let Some(name) = s.kind.durable_name().cloned() {
                let topic = self.topics[s.topic].name.clone();
                fx.changes.push(Change::Delayed {
                    subscriber: name,
                    topic,
                    seq,
                    due,
                });
            }
            self.schedule(Owner::Sub(key), Some(due));
        }
    }

    /// Removes an expired event from one subscription (13.1): dropped, or
    /// dead-lettered with reason `expired` where `dead=<topic>` was given.
    pub(super) fn expire_from(
        &mut self,
        key: SubKey,
        event: &Arc<Event>,
        now: u64,
        fx: &mut Effects,
    ) {
        let Some(s) = self.sub(key) else { return };
        let tid = s.topic;
        let explicit_dead = s.dead_topic(&self.topics[tid].name, true).is_some();
        self.topics[tid].counters.expired += 1;
        if explicit_dead {
            self.dead_letter(key, event, RemoveReason::Expired, now, fx);
            return;
        }
        let Some(s) = self.sub_mut(key) else { return };
        let durable = s.kind.is_durable();
        // Not logged: recovery drops whatever has expired by then.
        if s.queue.remove(event).is_some() {
            self.release(tid, event, durable);
        }
    }
}

fn not_subscribed(conn: ConnId, topic: &str, fx: &mut Effects) {
    fx.error(
        conn,
        ErrorCode::NotSubscribed,
        format!("not subscribed to '{topic}'"),
    );
}

fn no_event(conn: ConnId, topic: &str, id: &str, fx: &mut Effects) {
    fx.error(
        conn,
        ErrorCode::NoEvent,
        format!("no event '{id}' pending on '{topic}'"),
    );
}
