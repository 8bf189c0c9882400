//! Measurements the server takes outside the broker state, for metrics and
//! the HTTP API: `-ERR` replies by code, fdatasync latency, and the open
//! protocol connections with their peer and byte counts.
//!
//! Several threads write here (the broker task, the fsync thread, every
//! connection task), so everything is an atomic, updated with `Relaxed`
//! ordering: a scrape reads each value on its own and needs no consistency
//! between them. The connection table takes a lock only when a connection
//! opens or closes, and when the HTTP API lists connections; its byte
//! counters are atomics the connection task bumps after each read or write.
//! Broker state (topics, queues, counters) is not here: it is read through
//! the broker task ([`crate::admin`]).

use herald_core::ConnId;
use herald_proto::{ErrorCode, Reply};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Upper bounds of the fdatasync latency histogram's buckets, in seconds
/// (from 100 µs, a fast NVMe drive, to 2.5 s, a disk in trouble).
pub const FSYNC_BUCKETS_SECONDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The server's measurements; one per server, shared by reference count.
#[derive(Debug, Default)]
pub struct Telemetry {
    errors: [AtomicU64; ErrorCode::ALL.len()],
    fsync: FsyncHistogram,
    conns: Mutex<HashMap<ConnId, Arc<ConnMeter>>>,
}

impl Telemetry {
    /// Fresh, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `reply` if it is an `-ERR`.
    pub fn count_reply(&self, reply: &Reply) {
        if let Reply::Error { code, .. } = reply
            && let Some(i) = ErrorCode::ALL.iter().position(|c| c == code)
        {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `-ERR` replies sent since start, for every code (zeros included).
    pub fn command_errors(&self) -> Vec<(ErrorCode, u64)> {
        ErrorCode::ALL
            .iter()
            .zip(&self.errors)
            .map(|(code, n)| (*code, n.load(Ordering::Relaxed)))
            .collect()
    }

    /// The fdatasync latency histogram.
    pub fn fsync(&self) -> &FsyncHistogram {
        &self.fsync
    }

    /// Records a protocol connection that just opened; the returned meter
    /// counts its bytes. Call [`Telemetry::close_connection`] when it ends.
    pub fn open_connection(&self, conn: ConnId, peer: SocketAddr, since_ms: u64) -> Arc<ConnMeter> {
        let meter = Arc::new(ConnMeter {
            conn,
            peer,
            since_ms,
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        });
        self.lock_conns().insert(conn, meter.clone());
        meter
    }

    /// Forgets a connection that ended.
    pub fn close_connection(&self, conn: ConnId) {
        self.lock_conns().remove(&conn);
    }

    /// The open protocol connections, by id.
    pub fn connections(&self) -> Vec<Arc<ConnMeter>> {
        let mut all: Vec<_> = self.lock_conns().values().cloned().collect();
        all.sort_by_key(|m| m.conn.0);
        all
    }

    /// How many protocol connections are open.
    pub fn connection_count(&self) -> usize {
        self.lock_conns().len()
    }

    fn lock_conns(&self) -> std::sync::MutexGuard<'_, HashMap<ConnId, Arc<ConnMeter>>> {
        // A panic while holding this lock leaves a plain map behind, still
        // consistent: carry on with it.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One open protocol connection, as its task measures it.
#[derive(Debug)]
pub struct ConnMeter {
    /// Its id.
    pub conn: ConnId,
    /// The client's address.
    pub peer: SocketAddr,
    /// When it opened, in ms since the Unix epoch.
    pub since_ms: u64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl ConnMeter {
    /// Counts bytes read from the client.
    pub fn read(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts bytes written to the client.
    pub fn wrote(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Bytes read from the client so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    /// Bytes written to the client so far.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }
}

/// A histogram of fdatasync durations with the fixed buckets of
/// [`FSYNC_BUCKETS_SECONDS`]; observing costs two clock reads and two
/// atomic adds, nothing next to the fdatasync it measures.
#[derive(Debug, Default)]
pub struct FsyncHistogram {
    /// Non-cumulative counts, one per bucket, then one for `+Inf`.
    buckets: [AtomicU64; FSYNC_BUCKETS_SECONDS.len() + 1],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

/// A histogram as a scrape reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Sum of the observed values, in seconds.
    pub sum_seconds: f64,
    /// Number of observations.
    pub count: u64,
    /// (upper bound in seconds, observations in this bucket alone), `+Inf`
    /// last: not cumulative, as `prometheus-client`'s encoder takes them
    /// (it adds them up as it writes the `le` series).
    pub buckets: Vec<(f64, u64)>,
}

impl FsyncHistogram {
    /// Runs `sync` (an fdatasync) and records how long it took.
    pub fn time<T>(&self, sync: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let result = sync();
        self.observe(start.elapsed());
        result
    }

    /// Records one fdatasync that took `took`.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let i = FSYNC_BUCKETS_SECONDS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(FSYNC_BUCKETS_SECONDS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// The counts so far, per bucket.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut count = 0;
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for (i, n) in self.buckets.iter().enumerate() {
            let n = n.load(Ordering::Relaxed);
            count += n;
            let le = FSYNC_BUCKETS_SECONDS
                .get(i)
                .copied()
                .unwrap_or(f64::INFINITY);
            buckets.push((le, n));
        }
        HistogramSnapshot {
            sum_seconds: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
            // Counted from the buckets, so that count and `+Inf` agree even
            // when a scrape races an observation.
            count,
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_buckets_count_each_observation_once_and_end_with_inf() {
        let h = FsyncHistogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(5));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets.first(), Some(&(0.0001, 1)));
        assert_eq!(s.buckets.iter().find(|b| b.0 == 0.005), Some(&(0.005, 1)));
        assert_eq!(s.buckets.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(s.buckets.iter().map(|b| b.1).sum::<u64>(), 3);
        assert!((s.sum_seconds - 5.00305).abs() < 1e-9);
    }

    #[test]
    fn only_error_replies_are_counted_by_code() {
        let t = Telemetry::new();
        t.count_reply(&Reply::Pong);
        t.count_reply(&Reply::error(ErrorCode::NoTopic, "x"));
        t.count_reply(&Reply::error(ErrorCode::NoTopic, "y"));
        let errors = t.command_errors();
        assert_eq!(errors.len(), ErrorCode::ALL.len());
        assert!(errors.contains(&(ErrorCode::NoTopic, 2)));
        assert_eq!(errors.iter().map(|e| e.1).sum::<u64>(), 2);
    }
}
