//! `sub`, `unsub` and `name`: who receives what (`docs/protocol.md` 4, 6,
//! 12.1, 12.2).
//!
//! Decisions made here: which subscription a `sub` joins (the connection's
//! own, its durable name's, or a group's), the name namespace shared by
//! durable subscribers and groups on a topic, the one-subscription-per-topic
//! rule for a connection, and the group option-mismatch rule. What a
//! member's leaving returns is `consume.rs`'s.

use super::subscription::{Member, SubKind, Subscription};
use super::*;
use herald_proto::SubOptions;

impl Broker {
    pub(super) fn subscribe(
        &mut self,
        conn: ConnId,
        topic: &str,
        prefetch: u16,
        options: SubOptions,
        now: u64,
        fx: &mut Effects,
    ) {
        let Some(&tid) = self.topic_ids.get(topic) else {
            fx.error(conn, ErrorCode::NoTopic, no_topic_text(topic));
            return;
        };
        let current = self.conns.get(&conn).and_then(|c| c.sub_on(tid));
        let key = match &options.group {
            Some(group) => match self.group_to_join(conn, tid, current, group, &options) {
                Ok(key) => key,
                Err(text) => return fx.error(conn, ErrorCode::BadState, text),
            },
            None => match self.own_sub(conn, tid, current) {
                Ok(key) => key,
                Err(text) => return fx.error(conn, ErrorCode::BadState, text),
            },
        };
        let key = match key {
            Some(key) => key,
            None => {
                let kind = match (&options.group, self.conn_name(conn)) {
                    (Some(group), _) => SubKind::Group(group.as_str().into()),
                    (None, Some(name)) => SubKind::Durable(name),
                    (None, None) => SubKind::Anonymous(conn),
                };
                self.new_sub(Subscription::new(tid, kind, SubOptions::default(), 0))
            }
        };
        let topic_name = self.topics[tid].name.clone();
        let Some(s) = self.subs[key].as_mut() else {
            return;
        };
        // A `sub` states the whole subscription (12.1); a group's prefetch
        // is its members' own.
        let is_group = matches!(s.kind, SubKind::Group(_));
        let changed = *s.options != options || (!is_group && s.prefetch != prefetch);
        let options = Arc::new(options);
        s.options = options.clone();
        if !is_group {
            s.prefetch = prefetch;
        }
        match s.member_mut(conn) {
            Some(m) => m.prefetch = prefetch,
            None => s.members.push(Member {
                conn,
                prefetch,
                in_flight: 0,
            }),
        }
        if changed && let Some(name) = s.kind.durable_name() {
            fx.changes.push(Change::Subscribed {
                subscriber: name.clone(),
                topic: topic_name.clone(),
                group: is_group,
                prefetch: s.prefetch,
                options: (*options).clone(),
            });
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.subscribed = true;
            if c.sub_on(tid).is_none() {
                c.subs.push((tid, key));
            }
        }
        fx.reply(
            conn,
            Reply::Subscribed {
                topic: topic_name,
                options,
            },
        );
        self.deliver(key, now, fx);
    }

    /// The group subscription a `sub ... group=<group>` joins: `Ok(Some)`
    /// for an existing one, `Ok(None)` to create it, `Err` for `bad_state`.
    fn group_to_join(
        &self,
        conn: ConnId,
        tid: TopicId,
        current: Option<SubKey>,
        group: &str,
        options: &SubOptions,
    ) -> Result<Option<SubKey>, String> {
        let topic = &self.topics[tid].name;
        let existing = self.named_sub(tid, group);
        if let Some(current) = current
            && Some(current) != existing
        {
            return Err(format!(
                "already subscribed to '{topic}' outside group '{group}'; unsub first"
            ));
        }
        let Some(key) = existing else {
            return Ok(None);
        };
        let Some(s) = self.sub(key) else {
            return Ok(None);
        };
        if matches!(s.kind, SubKind::Durable(_)) {
            return Err(format!(
                "'{group}' is a durable subscriber of '{topic}'; durable and group names share one namespace"
            ));
        }
        let others_connected = s.members.iter().any(|m| m.conn != conn);
        if others_connected && !same_group_options(&s.options, options) {
            return Err(format!(
                "group '{group}' on '{topic}' has other options while members are connected"
            ));
        }
        Ok(Some(key))
    }

    /// The subscription a plain `sub` (no group) uses: the connection's own
    /// on this topic, its durable name's, or a new one (`Ok(None)`).
    fn own_sub(
        &self,
        conn: ConnId,
        tid: TopicId,
        current: Option<SubKey>,
    ) -> Result<Option<SubKey>, String> {
        let topic = &self.topics[tid].name;
        if let Some(key) = current {
            if let Some(SubKind::Group(group)) = self.sub(key).map(|s| &s.kind) {
                return Err(format!(
                    "this connection is in group '{group}' on '{topic}'; unsub first"
                ));
            }
            return Ok(Some(key));
        }
        let Some(name) = self.conn_name(conn) else {
            return Ok(None);
        };
        match self.named_sub(tid, &name) {
            Some(key) if matches!(self.sub(key).map(|s| &s.kind), Some(SubKind::Group(_))) => {
                Err(format!(
                    "'{name}' is a group on '{topic}'; durable and group names share one namespace"
                ))
            }
            found => Ok(found),
        }
    }

    fn conn_name(&self, conn: ConnId) -> Option<Arc<str>> {
        self.conns.get(&conn)?.name.clone()
    }

    pub(super) fn unsubscribe(
        &mut self,
        conn: ConnId,
        topic: &str,
        group: Option<String>,
        now: u64,
        fx: &mut Effects,
    ) {
        let not_subscribed = |fx: &mut Effects, text: String| {
            fx.error(conn, ErrorCode::NotSubscribed, text);
        };
        if let Some(group) = group {
            // Deleting a group: any connection may (12.2).
            let key = self.topic_ids.get(topic).and_then(|&tid| {
                let key = self.named_sub(tid, &group)?;
                matches!(self.sub(key)?.kind, SubKind::Group(_)).then_some(key)
            });
            let Some(key) = key else {
                return not_subscribed(fx, format!("no group '{group}' on '{topic}'"));
            };
            let topic_name = self.topics[self.subs[key].as_ref().map_or(0, |s| s.topic)]
                .name
                .clone();
            fx.changes.push(Change::Unsubscribed {
                subscriber: group.as_str().into(),
                topic: topic_name.clone(),
            });
            self.drop_sub(key);
            fx.reply(conn, Reply::Unsubscribed(topic_name));
            return;
        }
        let Some((tid, key)) = self.conn_sub(conn, topic) else {
            return not_subscribed(fx, format!("not subscribed to '{topic}'"));
        };
        let topic_name = self.topics[tid].name.clone();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.subs.retain(|&(t, _)| t != tid);
        }
        let kind = self.sub(key).map(|s| s.kind.clone());
        match kind {
            Some(SubKind::Group(_)) => {
                fx.reply(conn, Reply::Unsubscribed(topic_name));
                self.leave(key, conn, now, fx);
            }
            Some(SubKind::Durable(name)) => {
                fx.changes.push(Change::Unsubscribed {
                    subscriber: name,
                    topic: topic_name.clone(),
                });
                self.drop_sub(key);
                fx.reply(conn, Reply::Unsubscribed(topic_name));
            }
            _ => {
                self.drop_sub(key);
                fx.reply(conn, Reply::Unsubscribed(topic_name));
            }
        }
    }

    /// Removes the durable subscriber's or group's subscription `name` on
    /// `topic` with its queue, on behalf of `conn` (an operator: the HTTP
    /// API's `DELETE`, not one of its members). Replies to `conn`
    /// `+OK unsubscribed <topic>`; `-ERR not_subscribed` when there is no
    /// such subscription (a missing topic included, as for `unsub`);
    /// `-ERR bad_state` while a connection holds it (a connected group
    /// member, or the durable subscriber's connection): that one would
    /// have its queue pulled from under it.
    pub fn remove_subscription(&mut self, conn: ConnId, topic: &str, name: &str, fx: &mut Effects) {
        let found = self.topic_ids.get(topic).and_then(|&tid| {
            let key = self.named_sub(tid, name)?;
            Some((tid, key))
        });
        let Some((tid, key)) = found else {
            fx.error(
                conn,
                ErrorCode::NotSubscribed,
                format!("no subscription '{name}' on '{topic}'"),
            );
            return;
        };
        let Some(s) = self.sub(key) else {
            return;
        };
        let held = !s.members.is_empty()
            || matches!(&s.kind, SubKind::Durable(n) if matches!(self.names.get(n), Some(Some(_))));
        if held {
            fx.error(
                conn,
                ErrorCode::BadState,
                format!("'{name}' on '{topic}' is held by a connected subscriber"),
            );
            return;
        }
        let topic_name = self.topics[tid].name.clone();
        fx.changes.push(Change::Unsubscribed {
            subscriber: name.into(),
            topic: topic_name.clone(),
        });
        self.drop_sub(key);
        fx.reply(conn, Reply::Unsubscribed(topic_name));
    }

    /// `conn` stops being a member of `key` (disconnect, or `unsub` from a
    /// group): an anonymous subscription goes; otherwise its in-flight
    /// events are returned and, for a group, go to the other members.
    pub(super) fn leave(&mut self, key: SubKey, conn: ConnId, now: u64, fx: &mut Effects) {
        let Some(s) = self.subs.get_mut(key).and_then(Option::as_mut) else {
            return;
        };
        if matches!(s.kind, SubKind::Anonymous(_)) {
            self.drop_sub(key);
            return;
        }
        let returning = s.queue.in_flight_at(conn);
        for seq in returning {
            self.return_event(key, seq, None, now, fx);
        }
        if let Some(s) = self.subs.get_mut(key).and_then(Option::as_mut) {
            s.members.retain(|m| m.conn != conn);
            s.turn = 0;
        }
        self.deliver(key, now, fx);
    }

    pub(super) fn name(&mut self, conn: ConnId, name: &str, fx: &mut Effects) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.name.is_some() {
            fx.error(
                conn,
                ErrorCode::BadState,
                "this connection is already named",
            );
            return;
        }
        if c.subscribed {
            fx.error(
                conn,
                ErrorCode::BadState,
                "name must come before the first sub on a connection",
            );
            return;
        }
        if let Some(Some(_)) = self.names.get(name) {
            fx.error(
                conn,
                ErrorCode::NameInUse,
                format!("'{name}' is held by another connection"),
            );
            return;
        }
        let name: Arc<str> = match self.names.get_key_value(name) {
            Some((existing, _)) => existing.clone(),
            None => name.into(),
        };
        self.names.insert(name.clone(), Some(conn));
        if let Some(c) = self.conns.get_mut(&conn) {
            c.name = Some(name.clone());
        }
        fx.reply(conn, Reply::Named(name));
    }
}

/// Whether two group `sub`s agree on everything but prefetch (12.2).
fn same_group_options(a: &SubOptions, b: &SubOptions) -> bool {
    a == b
}

fn no_topic_text(topic: &str) -> String {
    format!("no topic '{topic}' (create it first, or publish to it)")
}
