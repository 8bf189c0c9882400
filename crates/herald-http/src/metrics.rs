//! `GET /metrics`: every family of `docs/protocol.md` 16.2 in the
//! Prometheus text format, written by `prometheus-client`'s encoder.
//!
//! A scrape takes one [`MetricsSnapshot`] from the broker task (a pass
//! over the topics, no lock) and reads the server's [`Telemetry`] atomics;
//! the text is then written off the runtime's threads (`spawn_blocking`),
//! since 10,000 topics make some 100,000 lines and the broker may share
//! the runtime's only thread. Values are exposed through a
//! [`Collector`] built for the scrape rather than kept in registered
//! metric objects, so nothing is stored twice and the broker's hot paths
//! update no metric.
//!
//! Names start with `herald_`; the encoder appends `_total` to counters.
//! Labels: `topic`, `code`, `version` and the histogram's `le`, nothing
//! else. Every family is written from the start, with no samples (a
//! per-topic family before any topic) or zeros.

use crate::{AppState, VERSION};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use herald_core::TopicStats;
use herald_proto::ErrorCode;
use herald_server::admin::MetricsSnapshot;
use herald_server::telemetry::{HistogramSnapshot, Telemetry};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::registry::Registry;
use std::collections::HashMap;

pub(crate) async fn handler(State(state): State<AppState>) -> Result<Response, crate::ApiError> {
    let snapshot = state.admin.metrics().await?;
    let scrape = Scrape::new(snapshot, state.admin.telemetry());
    let text = tokio::task::spawn_blocking(move || encode(scrape))
        .await
        .map_err(|e| crate::ApiError::unavailable(format!("metrics encoding failed: {e}")))?
        .map_err(|_| crate::ApiError::unavailable("metrics encoding failed"))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        text,
    )
        .into_response())
}

/// Everything one scrape shows.
#[derive(Debug)]
pub struct Scrape {
    /// Broker state.
    pub snapshot: MetricsSnapshot,
    /// Open protocol connections.
    pub connections: usize,
    /// `-ERR` replies by code.
    pub command_errors: Vec<(ErrorCode, u64)>,
    /// fdatasync latency.
    pub fsync: HistogramSnapshot,
}

impl Scrape {
    /// A scrape of `telemetry` and `snapshot`.
    pub fn new(snapshot: MetricsSnapshot, telemetry: &Telemetry) -> Self {
        Scrape {
            snapshot,
            connections: telemetry.connection_count(),
            command_errors: telemetry.command_errors(),
            fsync: telemetry.fsync().snapshot(),
        }
    }
}

/// The Prometheus text (format 0.0.4) of one scrape.
///
/// # Errors
/// Only if formatting into a `String` fails, which it does not.
pub fn encode(scrape: Scrape) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
    Ok(text)
}

type Field = fn(&TopicStats) -> u64;

/// Per-topic gauges: name, help, value.
const TOPIC_GAUGES: [(&str, &str, Field); 4] = [
    (
        "herald_subscriptions",
        "Subscriptions of the topic (durable ones that are away and groups without members included).",
        |s| s.subscribers as u64,
    ),
    (
        "herald_pending_events",
        "Deliverable events queued and not in flight, summed over the topic's subscriptions.",
        |s| s.pending as u64,
    ),
    (
        "herald_in_flight_events",
        "Events delivered and not acknowledged, summed over the topic's subscriptions.",
        |s| s.in_flight as u64,
    ),
    (
        "herald_delayed_events",
        "Delayed events (not deliverable yet), summed over the topic's subscriptions.",
        |s| s.delayed as u64,
    ),
];

/// Per-topic counters (the encoder adds `_total`): name, help, value.
const TOPIC_COUNTERS: [(&str, &str, Field); 7] = [
    (
        "herald_published",
        "Events accepted since start (duplicates not counted).",
        |s| s.counters.published,
    ),
    (
        "herald_duplicates",
        "Publishes answered duplicate since start.",
        |s| s.counters.duplicates,
    ),
    (
        "herald_delivered",
        "Deliveries since start, redeliveries included.",
        |s| s.counters.delivered,
    ),
    ("herald_redelivered", "Redeliveries since start.", |s| {
        s.counters.redelivered
    }),
    ("herald_acked", "Acknowledgements since start.", |s| {
        s.counters.acked
    }),
    (
        "herald_dead_lettered",
        "Events dead-lettered since start, per subscription.",
        |s| s.counters.dead_lettered,
    ),
    (
        "herald_expired",
        "Events removed on expiry since start, per subscription.",
        |s| s.counters.expired,
    ),
];

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let topics = &self.snapshot.topics;
        gauge(
            &mut encoder,
            "herald_connections",
            "Open protocol connections.",
            self.connections as u64,
        )?;
        gauge(
            &mut encoder,
            "herald_topics",
            "Topics.",
            topics.len() as u64,
        )?;
        for (name, help, field) in TOPIC_GAUGES {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (topic, stats) in topics {
                family
                    .encode_family(&[("topic", topic.as_ref())])?
                    .encode_gauge(&field(stats))?;
            }
        }
        for (name, help, field) in TOPIC_COUNTERS {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (topic, stats) in topics {
                family
                    .encode_family(&[("topic", topic.as_ref())])?
                    .encode_counter::<NoLabelSet, _, u64>(&field(stats), None)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "herald_command_errors",
            "-ERR replies sent since start, by error code.",
            None,
            MetricType::Counter,
        )?;
        for (code, n) in &self.command_errors {
            family
                .encode_family(&[("code", code.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(n, None)?;
        }
        gauge(
            &mut encoder,
            "herald_log_bytes",
            "Bytes of the log's segment files.",
            self.snapshot.log_bytes,
        )?;
        let h = &self.fsync;
        encoder
            .encode_descriptor(
                "herald_log_fsync_seconds",
                "Duration of the log's fdatasync calls, in seconds.",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(
                h.sum_seconds,
                h.count,
                &h.buckets,
                None::<&HashMap<usize, Exemplar<NoLabelSet, f64>>>,
            )?;
        encoder
            .encode_descriptor(
                "herald_build_info",
                "Always 1; the label gives the version.",
                None,
                MetricType::Gauge,
            )?
            .encode_family(&[("version", VERSION)])?
            .encode_gauge(&1u64)?;
        Ok(())
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}
