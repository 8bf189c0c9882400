//! `topics` and `stats`: read-only views of the broker's counters.

use super::*;

impl Broker {
    /// Counters of one topic.
    pub fn topic_stats(&self, topic: &str) -> Option<TopicStats> {
        let tid = *self.topic_ids.get(topic)?;
        let t = &self.topics[tid];
        let mut stats = TopicStats {
            subscribers: t.subscriptions.len(),
            published: t.published,
            ..Default::default()
        };
        for s in &t.subscriptions {
            stats.pending += s.queue.queued();
            stats.in_flight += s.queue.in_flight();
        }
        Some(stats)
    }

    /// Topic names, sorted.
    pub fn topic_names(&self) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = self.topics.iter().map(|t| t.name.clone()).collect();
        names.sort();
        names
    }

    pub(super) fn topics_json(&self) -> String {
        let names: Vec<&str> = {
            let mut v: Vec<&str> = self.topics.iter().map(|t| t.name.as_ref()).collect();
            v.sort_unstable();
            v
        };
        serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
    }

    pub(super) fn stats_json(&self, only: Option<&str>) -> String {
        let mut topics = serde_json::Map::new();
        for name in self.topic_names() {
            if only.is_some_and(|o| o != name.as_ref()) {
                continue;
            }
            if let Some(s) = self.topic_stats(&name) {
                topics.insert(
                    name.to_string(),
                    serde_json::json!({
                        "subscribers": s.subscribers,
                        "pending": s.pending,
                        "in_flight": s.in_flight,
                        "published": s.published,
                    }),
                );
            }
        }
        serde_json::json!({ "topics": topics }).to_string()
    }
}
