//! PROTOCOL.md §16.2: `GET /metrics`, parsed strictly as the Prometheus
//! text format: every family of the list with its HELP and TYPE, from the
//! start; names, suffixes and labels as promised; values that move with
//! what clients do.
mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};

/// Every family of §16.2 (single node) and its type.
const FAMILIES: [(&str, &str); 17] = [
    ("herald_connections", "gauge"),
    ("herald_topics", "gauge"),
    ("herald_subscriptions", "gauge"),
    ("herald_pending_events", "gauge"),
    ("herald_in_flight_events", "gauge"),
    ("herald_delayed_events", "gauge"),
    ("herald_published_total", "counter"),
    ("herald_duplicates_total", "counter"),
    ("herald_delivered_total", "counter"),
    ("herald_redelivered_total", "counter"),
    ("herald_acked_total", "counter"),
    ("herald_dead_lettered_total", "counter"),
    ("herald_expired_total", "counter"),
    ("herald_command_errors_total", "counter"),
    ("herald_log_bytes", "gauge"),
    ("herald_log_fsync_seconds", "histogram"),
    ("herald_build_info", "gauge"),
];

const LABELS: [&str; 4] = ["topic", "code", "version", "le"];

#[derive(Debug, Default)]
struct Metrics {
    /// family -> (help, type)
    families: BTreeMap<String, (String, String)>,
    /// (name, sorted labels) -> value
    samples: BTreeMap<(String, Vec<(String, String)>), f64>,
}

impl Metrics {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.sort();
        self.samples.get(&(name.to_string(), labels)).copied()
    }

    #[track_caller]
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
    }
}

/// Parses the text format strictly, panicking on anything off.
fn parse(text: &str) -> Metrics {
    let mut m = Metrics::default();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(!help.trim().is_empty(), "empty help: {line}");
            assert!(!m.families.contains_key(name), "family {name} given twice");
            m.families
                .insert(name.to_string(), (help.to_string(), String::new()));
            current = Some(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert_eq!(
                current.as_deref(),
                Some(name),
                "TYPE without its HELP just before: {line}"
            );
            assert!(matches!(kind, "gauge" | "counter" | "histogram"), "{line}");
            m.families.get_mut(name).unwrap().1 = kind.to_string();
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        if line.is_empty() {
            continue;
        }
        let family = current.as_deref().expect("sample before any family");
        let (series, value) = line.rsplit_once(' ').expect("sample value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect("closing brace");
                let mut labels = Vec::new();
                for pair in inner.split(',') {
                    let (k, v) = pair.split_once('=').expect("label=value");
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .expect("quoted label value");
                    assert!(LABELS.contains(&k), "label {k} is not allowed: {line}");
                    labels.push((k.to_string(), v.to_string()));
                }
                labels.sort();
                (name, labels)
            }
        };
        let kind = &m.families[family].1;
        let allowed: Vec<String> = match kind.as_str() {
            "histogram" => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{family}{s}"))
                .collect(),
            _ => vec![family.to_string()],
        };
        assert!(
            allowed.iter().any(|a| a == name),
            "sample {name} does not belong to family {family}"
        );
        assert!(
            m.samples
                .insert((name.to_string(), labels), value)
                .is_none(),
            "sample given twice: {line}"
        );
    }
    for (name, (_, kind)) in &m.families {
        assert!(name.starts_with("herald_"), "{name}");
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "{name} is a {kind}: counters and only counters end in _total"
        );
    }
    m
}

fn scrape(http: std::net::SocketAddr) -> Metrics {
    let r = http_get(http, "/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type").unwrap().starts_with("text/plain"),
        "{r:?}"
    );
    parse(&r.body)
}

#[test]
fn every_family_is_there_from_the_start() {
    let server = Server::start();
    let m = scrape(server.http_addr());
    let got: BTreeSet<(&str, &str)> = m
        .families
        .iter()
        .map(|(n, (_, k))| (n.as_str(), k.as_str()))
        .collect();
    let want: BTreeSet<(&str, &str)> = FAMILIES.into_iter().collect();
    assert_eq!(got, want);
    assert_eq!(m.value("herald_connections", &[]), 0.0);
    assert_eq!(m.value("herald_topics", &[]), 0.0);
    assert_eq!(
        m.value(
            "herald_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(
        m.value("herald_command_errors_total", &[("code", "no_topic")]),
        0.0
    );
    assert_eq!(m.value("herald_log_fsync_seconds_count", &[]), 0.0);
    assert_eq!(
        m.value("herald_log_fsync_seconds_bucket", &[("le", "+Inf")]),
        0.0
    );
}

#[test]
fn values_follow_publishes_acks_and_errors() {
    let server = Server::start_with(&["--fsync", "always"]);
    let http = server.http_addr();
    let mut sub = server.connect();
    sub.cmd("create t");
    sub.cmd("name w");
    sub.cmd("sub t 2");
    let mut p = server.connect();
    for i in 0..5 {
        p.cmd(&pub_line("t", &i.to_string(), 0, "m"));
    }
    p.cmd(&pub_line("t", "4", 0, "m"));
    let a = sub.delivery();
    let _ = sub.delivery();
    assert_eq!(
        sub.cmd(&format!("ack t {}", a["id"].as_str().unwrap())),
        "+OK acked t 0"
    );
    p.expect_err("sub nope", "no_topic");
    p.expect_err("ack t 99", "not_subscribed");
    p.expect_err("frobnicate", "unknown_command");
    sub.cmd("ping");
    let m = scrape(http);
    let t = [("topic", "t")];
    assert_eq!(m.value("herald_connections", &[]), 2.0);
    assert_eq!(m.value("herald_topics", &[]), 1.0);
    assert_eq!(m.value("herald_subscriptions", &t), 1.0);
    assert_eq!(m.value("herald_published_total", &t), 5.0);
    assert_eq!(m.value("herald_duplicates_total", &t), 1.0);
    assert_eq!(m.value("herald_delivered_total", &t), 3.0);
    assert_eq!(m.value("herald_acked_total", &t), 1.0);
    assert_eq!(m.value("herald_in_flight_events", &t), 2.0);
    assert_eq!(m.value("herald_pending_events", &t), 2.0);
    assert_eq!(m.value("herald_delayed_events", &t), 0.0);
    assert_eq!(m.value("herald_redelivered_total", &t), 0.0);
    for code in ["no_topic", "not_subscribed", "unknown_command"] {
        assert_eq!(
            m.value("herald_command_errors_total", &[("code", code)]),
            1.0,
            "{code}"
        );
    }
    assert!(m.value("herald_log_bytes", &[]) > 0.0);
    // Every publish waited for an fdatasync, inline or on the fsync thread.
    let syncs = m.value("herald_log_fsync_seconds_count", &[]);
    assert!(syncs >= 1.0);
    assert_eq!(
        m.value("herald_log_fsync_seconds_bucket", &[("le", "+Inf")]),
        syncs
    );
    assert!(m.value("herald_log_fsync_seconds_sum", &[]) > 0.0);

    // A redelivery after the durable subscriber drops its connection.
    drop(sub);
    let mut again = server.connect();
    again.cmd("name w");
    again.cmd("sub t 1");
    let d = again.delivery();
    assert_eq!(d["redelivered"], true);
    let m2 = scrape(http);
    assert_eq!(m2.value("herald_redelivered_total", &t), 1.0);
    assert!(m2.value("herald_delivered_total", &t) >= 4.0);
    assert_eq!(m2.value("herald_connections", &[]), 2.0);
}

#[test]
fn a_histogram_le_series_is_cumulative() {
    let server = Server::start();
    let http = server.http_addr();
    let mut p = server.connect();
    for i in 0..20 {
        p.cmd(&pub_line("t", &i.to_string(), 0, "m"));
    }
    let m = scrape(http);
    let mut buckets: Vec<(f64, f64)> = m
        .samples
        .iter()
        .filter(|(k, _)| k.0 == "herald_log_fsync_seconds_bucket")
        .map(|(k, v)| {
            let le = &k.1[0].1;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (le, *v)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    assert!(buckets.len() >= 10);
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    assert_eq!(buckets.last().unwrap().0, f64::INFINITY);
    assert!(buckets.last().unwrap().1 >= 1.0);
}
