//! The tables `herald stats` and `herald peek` print for people (`--json`
//! prints the broker's JSON instead).
//!
//! One renderer: columns separated by two spaces, numbers right-aligned,
//! text left-aligned, no trailing spaces.

use herald_client::{Peeked, Stats, SubscriptionStats};
use std::time::Duration;

/// How a column is aligned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

use Align::{Left, Right};

/// Renders `rows` under `headers`, one line each, newline-terminated.
pub(crate) fn render(headers: &[&str], align: &[Align], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push = |cells: &mut dyn Iterator<Item = &str>| {
        let mut line = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let w = widths[i];
            match align[i] {
                Left => line.push_str(&format!("{cell:<w$}")),
                Right => line.push_str(&format!("{cell:>w$}")),
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push(&mut headers.iter().copied());
    for row in rows {
        push(&mut row.iter().map(String::as_str));
    }
    out
}

/// One row per topic: the counters of version 1.
pub fn stats(stats: &Stats) -> String {
    let rows: Vec<Vec<String>> = stats
        .topics
        .iter()
        .map(|(name, t)| {
            vec![
                name.clone(),
                t.subscribers.to_string(),
                t.pending.to_string(),
                t.in_flight.to_string(),
                t.published.to_string(),
            ]
        })
        .collect();
    render(
        &["TOPIC", "SUBSCRIBERS", "PENDING", "IN_FLIGHT", "PUBLISHED"],
        &[Left, Right, Right, Right, Right],
        &rows,
    )
}

/// One topic: its row, its version 2 counters, and one row per
/// subscription.
pub fn topic_stats(all: &Stats, topic: &str) -> String {
    let mut out = stats(all);
    let Some(t) = all.topics.get(topic) else {
        return out;
    };
    out.push_str(&format!(
        "delayed {}, redelivered {}, dead_lettered {}, dead_dropped {}, expired {}, evicted {}\n",
        t.delayed, t.redelivered, t.dead_lettered, t.dead_dropped, t.expired, t.evicted
    ));
    if let Some(subs) = t.subscriptions.as_deref().filter(|s| !s.is_empty()) {
        out.push('\n');
        out.push_str(&subscriptions(subs));
    }
    out
}

fn subscriptions(subs: &[SubscriptionStats]) -> String {
    let rows: Vec<Vec<String>> = subs
        .iter()
        .map(|s| {
            let name = match (&s.group, &s.name) {
                (Some(group), _) => format!("{group} (group)"),
                (None, Some(name)) => name.clone(),
                (None, None) => "?".to_string(),
            };
            vec![
                name,
                s.members.to_string(),
                s.prefetch.map_or("-".to_string(), |p| p.to_string()),
                s.pending.to_string(),
                s.in_flight.to_string(),
                s.delayed.to_string(),
                s.oldest_ms.to_string(),
                s.options.to_text(),
            ]
        })
        .collect();
    render(
        &[
            "SUBSCRIPTION",
            "MEMBERS",
            "PREFETCH",
            "PENDING",
            "IN_FLIGHT",
            "DELAYED",
            "OLDEST_MS",
            "OPTIONS",
        ],
        &[Left, Right, Right, Right, Right, Right, Right, Left],
        &rows,
    )
}

/// Longest `msg` shown in a peek table, in characters.
const PEEK_MSG_CHARS: usize = 60;

/// One row per peeked event.
pub fn peek(entries: &[Peeked]) -> String {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|p| {
            let left = match (p.deadline, p.due) {
                (Some(deadline), _) => format!("{} to deadline", seconds(deadline)),
                (None, Some(due)) => format!("due in {}", seconds(due)),
                (None, None) => "-".to_string(),
            };
            let state = serde_json::to_value(p.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            vec![
                state,
                p.deliveries.to_string(),
                left,
                p.event.priority.to_string(),
                p.event.id.clone(),
                shorten(&p.event.msg.to_string(), PEEK_MSG_CHARS),
            ]
        })
        .collect();
    render(
        &["STATE", "DELIVERIES", "TIME", "PRIORITY", "ID", "MSG"],
        &[Left, Right, Right, Right, Left, Left],
        &rows,
    )
}

fn seconds(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max - 3).collect();
        format!("{cut}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_aligns_columns() {
        let stats: Stats = serde_json::from_str(
            r#"{"topics":{"tweets":{"subscribers":2,"pending":5,"in_flight":1,"published":40}}}"#,
        )
        .unwrap();
        assert_eq!(
            super::stats(&stats),
            "TOPIC   SUBSCRIBERS  PENDING  IN_FLIGHT  PUBLISHED\n\
             tweets            2        5          1         40\n"
        );
    }

    #[test]
    fn one_topic_lists_its_subscriptions() {
        let stats: Stats = serde_json::from_str(concat!(
            r#"{"topics":{"jobs":{"subscribers":2,"pending":1,"in_flight":2,"published":9,"delayed":1,"redelivered":3,"dead_lettered":1,"#,
            r#""subscriptions":[{"group":"workers","members":3,"pending":1,"in_flight":2,"delayed":1,"options":"group=workers wait=5000","oldest_ms":40},"#,
            r#"{"name":"~4","members":1,"prefetch":1,"pending":0,"in_flight":0,"delayed":0,"options":"","oldest_ms":0}]}}}"#
        ))
        .unwrap();
        assert_eq!(
            topic_stats(&stats, "jobs"),
            "TOPIC  SUBSCRIBERS  PENDING  IN_FLIGHT  PUBLISHED\n\
             jobs             2        1          2          9\n\
             delayed 1, redelivered 3, dead_lettered 1, dead_dropped 0, expired 0, evicted 0\n\
             \n\
             SUBSCRIPTION     MEMBERS  PREFETCH  PENDING  IN_FLIGHT  DELAYED  OLDEST_MS  OPTIONS\n\
             workers (group)        3         -        1          2        1         40  group=workers wait=5000\n\
             ~4                     1         1        0          0        0          0\n"
        );
    }

    #[test]
    fn peek_shows_state_time_and_a_short_msg() {
        let entries: Vec<herald_proto::PeekEntry> = serde_json::from_str(concat!(
            r#"[{"state":"in_flight","deliveries":1,"deadline_ms":2500,"event":{"topic":"jobs","id":"7","priority":2,"msg":"m","timestamp":5,"redelivered":true,"deliveries":2}},"#,
            r#"{"state":"delayed","deliveries":0,"due_ms":100,"event":{"topic":"jobs","id":"8","priority":0,"msg":{"long":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},"timestamp":6}}]"#
        ))
        .unwrap();
        let peeked: Vec<Peeked> = entries
            .iter()
            .map(|e| {
                let event = herald_client::Delivery::parse(e.event.get()).unwrap();
                Peeked {
                    state: e.state,
                    deliveries: e.deliveries,
                    deadline: e.deadline_ms.map(Duration::from_millis),
                    due: e.due_ms.map(Duration::from_millis),
                    event,
                }
            })
            .collect();
        assert_eq!(
            peek(&peeked),
            "STATE      DELIVERIES                TIME  PRIORITY  ID  MSG\n\
             in_flight           1  2.500s to deadline         2  7   \"m\"\n\
             delayed             0       due in 0.100s         0  8   {\"long\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\n"
        );
    }
}
