//! The broker task's side of [`crate::admin`]: answers reads from the
//! state it owns, and runs operator changes for pseudo-connections through
//! the same path as commands (room in the log, effects, held replies).

use super::*;
use crate::admin::{BrokerOverview, MetricsSnapshot, Request};

/// Room asked of the log before removing a subscription: its record holds
/// two names, each at most a few hundred bytes.
const REMOVE_RECORD_BOUND_BYTES: u64 = 1024;

impl BrokerTask {
    pub(super) fn on_admin(&mut self, request: Request, now: u64) {
        match request {
            Request::Overview(reply) => {
                let _ = reply.send(BrokerOverview {
                    fsync: self.config.fsync,
                    topics: self.broker.topic_names().len(),
                    totals: self.broker.totals(),
                });
            }
            Request::Stats { topic, reply } => {
                let answer = match topic.as_deref() {
                    Some(t) if !self.broker.has_topic(t) => None,
                    only => Some(self.broker.stats(only, now)),
                };
                let _ = reply.send(answer);
            }
            Request::Peek {
                topic,
                name,
                group,
                n,
                reply,
            } => {
                let answer = self
                    .broker
                    .peek_named(&topic, &name, group, n)
                    .map(|view| herald_core::broker::stats::peek_json(&view, now));
                let _ = reply.send(answer);
            }
            Request::Connections { conns, reply } => {
                let views = conns
                    .iter()
                    .map(|&c| self.broker.connection_view(c))
                    .collect();
                let _ = reply.send(views);
            }
            Request::Metrics(reply) => {
                let mut topics = self.broker.all_topic_stats();
                topics.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                let _ = reply.send(MetricsSnapshot {
                    topics,
                    log_bytes: self.log.total_bytes(),
                });
            }
            Request::Create {
                conn,
                topic,
                ttl_ms,
                existed,
            } => {
                let _ = existed.send(self.broker.has_topic(&topic));
                self.on_command(conn, Ok(Command::Create { topic, ttl_ms }), now);
            }
            Request::RemoveSubscription { conn, topic, name } => {
                if !self.outbox.is_accepting(conn) {
                    return;
                }
                let bound = REMOVE_RECORD_BOUND_BYTES + (topic.len() + name.len()) as u64;
                if let Err(reason) = self.make_room(bound) {
                    let reply = Reply::error(
                        ErrorCode::Unavailable,
                        format!("cannot store the change: {reason}"),
                    );
                    self.reply(conn, &reply, None);
                    return;
                }
                self.broker
                    .remove_subscription(conn, &topic, &name, &mut self.fx);
                // Like any command that changes state, its reply waits for
                // every earlier change's sync.
                self.apply_effects(Some((conn, Scope::Earlier)));
            }
        }
    }
}
