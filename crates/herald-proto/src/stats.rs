//! The JSON of `stats` (`docs/protocol.md` §6 "stats", §12.7): what the
//! broker fills in, the server sends and clients read.
//!
//! Counters are always written; optional parts (a topic's
//! `subscriptions`, only given by `stats <topic>`; a subscription's `name`
//! or `group`, `prefetch`) are left out when absent. Reading tolerates
//! fields it does not know (a newer broker) and missing ones (a version 1
//! broker has none of the version 2 counters: they read as 0).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::options::SubOptions;

/// The reply to `stats`: `{"topics":{"<topic>":{…},…}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Per topic, by name.
    #[serde(default)]
    pub topics: BTreeMap<String, TopicStats>,
}

/// `stats` of one topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TopicStats {
    /// Subscriptions of the topic, durable ones that are away included.
    pub subscribers: u64,
    /// Deliverable events queued and not in flight, summed over the
    /// subscriptions (delayed ones not counted).
    pub pending: u64,
    /// Events delivered and not acknowledged, summed likewise.
    pub in_flight: u64,
    /// Events accepted since the broker started (duplicates not counted).
    pub published: u64,
    /// Delayed events (§13.2), summed over the subscriptions.
    pub delayed: u64,
    /// Redeliveries since start, counted per subscription.
    pub redelivered: u64,
    /// Events dead-lettered to a dead topic since start.
    pub dead_lettered: u64,
    /// Events dropped by `dead=none` since start.
    pub dead_dropped: u64,
    /// Events removed on expiry since start, counted per subscription.
    pub expired: u64,
    /// Events evicted by `overflow=drop` since start.
    pub evicted: u64,
    /// One entry per subscription: only in `stats <topic>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions: Option<Vec<SubscriptionStats>>,
}

/// One subscription in `stats <topic>` (§12.7).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubscriptionStats {
    /// A durable subscriber's name, or `~<n>` for an anonymous connection
    /// (absent for a group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The group's name (absent for a subscriber of its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Connected members (0 or 1 for a subscriber of its own).
    pub members: u64,
    /// The subscriber's prefetch (absent for a group: it is per member).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefetch: Option<u16>,
    /// Deliverable events queued and not in flight.
    pub pending: u64,
    /// Events delivered and not acknowledged.
    pub in_flight: u64,
    /// Delayed events.
    pub delayed: u64,
    /// The options the `sub` gave, as the `sub` reply lists them
    /// (`"group=w wait=30000 backoff=1000,2000"`; `""` for none).
    #[serde(with = "crate::options::as_text")]
    pub options: SubOptions,
    /// Now minus the timestamp of the oldest deliverable queued event, in
    /// ms; 0 when none.
    pub oldest_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_stats_read_with_zero_for_the_new_counters() {
        let stats: Stats = serde_json::from_str(
            r#"{"topics":{"t":{"in_flight":1,"pending":5,"published":40,"subscribers":2,"bytes":9}},"uptime":3}"#,
        )
        .unwrap();
        let t = &stats.topics["t"];
        assert_eq!(
            (t.subscribers, t.pending, t.in_flight, t.published),
            (2, 5, 1, 40)
        );
        assert_eq!((t.delayed, t.expired), (0, 0));
        assert_eq!(t.subscriptions, None);
    }

    #[test]
    fn absent_parts_are_left_out_and_everything_round_trips() {
        let mut options = SubOptions::default();
        options.set("group", "w").unwrap();
        options.set("wait", "30s").unwrap();
        options.set("dead", "none").unwrap();
        let stats = Stats {
            topics: BTreeMap::from([(
                "jobs".to_string(),
                TopicStats {
                    subscribers: 2,
                    published: 7,
                    subscriptions: Some(vec![
                        SubscriptionStats {
                            group: Some("w".into()),
                            members: 3,
                            pending: 4,
                            options,
                            oldest_ms: 1200,
                            ..SubscriptionStats::default()
                        },
                        SubscriptionStats {
                            name: Some("~3".into()),
                            members: 1,
                            prefetch: Some(1),
                            ..SubscriptionStats::default()
                        },
                    ]),
                    ..TopicStats::default()
                },
            )]),
        };
        let json = serde_json::to_string(&stats).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"topics":{"jobs":{"subscribers":2,"pending":0,"in_flight":0,"published":7,"#,
                r#""delayed":0,"redelivered":0,"dead_lettered":0,"dead_dropped":0,"expired":0,"evicted":0,"#,
                r#""subscriptions":[{"group":"w","members":3,"pending":4,"in_flight":0,"delayed":0,"#,
                r#""options":"group=w wait=30000 dead=none","oldest_ms":1200},"#,
                r#"{"name":"~3","members":1,"prefetch":1,"pending":0,"in_flight":0,"delayed":0,"options":"","oldest_ms":0}]}}}"#
            )
        );
        assert_eq!(serde_json::from_str::<Stats>(&json).unwrap(), stats);
        let all = Stats {
            topics: BTreeMap::from([("t".to_string(), TopicStats::default())]),
        };
        assert!(
            !serde_json::to_string(&all)
                .unwrap()
                .contains("subscriptions")
        );
    }
}
