//! Internal consistency checks, for tests and fuzzing: they walk the whole
//! state, so they are not compiled into the broker otherwise.

use super::*;

impl Broker {
    /// Internal consistency: member counts match the queues, every pending
    /// event's holder count matches the queues holding it, connections and
    /// members agree, and every queue keeps its own invariants.
    ///
    /// # Errors
    /// The first invariant found broken.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (key, s) in self.subs.iter().enumerate() {
            let Some(s) = s else { continue };
            s.queue.check().map_err(|e| format!("sub {key}: {e}"))?;
            let members: u32 = s.members.iter().map(|m| m.in_flight).sum();
            if members as usize != s.queue.in_flight() {
                return Err(format!(
                    "sub {key}: members hold {members}, queue {}",
                    s.queue.in_flight()
                ));
            }
            for m in &s.members {
                let held = s.queue.in_flight_at(m.conn).len();
                if held != m.in_flight as usize {
                    return Err(format!(
                        "member {} counts {} holds {held}",
                        m.conn, m.in_flight
                    ));
                }
                let listed = self.conns.get(&m.conn).and_then(|c| c.sub_on(s.topic));
                if listed != Some(key) {
                    return Err(format!("member {} not listed on its connection", m.conn));
                }
            }
            if !self.topics[s.topic].subs.contains(&key) {
                return Err(format!("sub {key} not in its topic"));
            }
        }
        for (conn, c) in &self.conns {
            for &(tid, key) in &c.subs {
                let s = self
                    .sub(key)
                    .ok_or("connection lists a gone subscription")?;
                if s.topic != tid || s.member(*conn).is_none() {
                    return Err(format!(
                        "connection {conn} lists a subscription it is not in"
                    ));
                }
            }
        }
        for t in &self.topics {
            for slot in t.events.iter() {
                let holding = t
                    .subs
                    .iter()
                    .filter(|&&k| {
                        self.sub(k)
                            .is_some_and(|s| s.queue.contains(slot.event.seq))
                    })
                    .count();
                if holding as u32 != slot.holders {
                    return Err(format!(
                        "{}: {} holders counted, {holding} hold it",
                        slot.event.id(),
                        slot.holders
                    ));
                }
            }
            for &k in &t.subs {
                let Some(s) = self.sub(k) else { continue };
                for e in s.queue.entries() {
                    if t.slot(e.event.id())
                        .is_none_or(|slot| slot.event.seq != e.event.seq)
                    {
                        return Err(format!("{} held without a slot", e.event.id()));
                    }
                }
            }
        }
        Ok(())
    }
}
