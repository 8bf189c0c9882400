//! Compaction: keeps the log's size following the live data.
//!
//! When the records after the segment snapshots are more than twice the live
//! events (plus a segment), the broker task rotates to a fresh segment and
//! copies every live event forward with its current holders, a bounded
//! number per batch so that publishing is never held up for more than a
//! batch. Once the copies are synced, every older segment is deleted. A crash
//! at any point leaves either the originals or both; replay keeps the first
//! record of an event, so both are fine.

use super::BrokerTask;
use herald_core::{Seq, record};
use std::time::Instant;
use tracing::{debug, info, warn};

/// Events copied forward per batch while compacting, so compaction never
/// delays publishing by more than a batch.
const COMPACTION_COPIES_PER_BATCH: usize = 2048;

/// A compaction in progress.
pub(super) struct Compaction {
    /// Every segment before this one is replaced by the copies.
    boundary: herald_log::SegmentId,
    work: Vec<(std::sync::Arc<str>, std::sync::Arc<herald_core::Event>)>,
    next: usize,
    copied: u64,
    started: Instant,
}

impl BrokerTask {
    /// Copies the next bounded share of live events forward; after the last
    /// one, syncs the copies and deletes the segments they replace.
    ///
    /// # Errors
    /// If the copies cannot be written or synced.
    pub(super) fn compact_step(&mut self) -> Result<(), crate::error::BrokerError> {
        let Some(mut job) = self.compaction.take() else {
            return Ok(());
        };
        let end = (job.next + COMPACTION_COPIES_PER_BATCH).min(job.work.len());
        while job.next < end {
            let (topic, event) = &job.work[job.next];
            if let Some(change) = self.broker.rewrite_record(topic, event) {
                if self.make_room(event.size() as u64 + 4096).is_err() {
                    // Out of space: give up, old segments stay; retried later.
                    return Ok(());
                }
                self.log.append_with(|buf| record::encode(&change, buf));
                job.copied += 1;
            }
            job.next += 1;
        }
        if job.next < job.work.len() {
            self.compaction = Some(job);
            return Ok(());
        }
        // The copies must be on disk before the originals go.
        self.sync_inline()?;
        match self.log.delete_segments_before(job.boundary) {
            Ok(freed) => info!(
                copied = job.copied,
                freed_bytes = freed,
                ms = job.started.elapsed().as_millis() as u64,
                "log compacted"
            ),
            Err(e) => warn!(cause = %e, "deleting compacted segments failed"),
        }
        Ok(())
    }

    pub(super) fn maybe_start_compaction(&mut self) {
        let segments = self.log.segments();
        if segments.len() < 3 {
            return;
        }
        let total = self.log.total_bytes();
        let live = self.broker.durable_bytes() + self.broker.durable_events() * 64;
        if total < 2 * live + self.config.segment_bytes {
            return;
        }
        // Every segment starts with a snapshot of topics and subscriptions,
        // which compaction cannot shrink: count only what follows them.
        let metadata = self.broker.metadata();
        let snapshot: u64 = metadata
            .iter()
            .map(|c| herald_log::frame_len(record::payload_len(c)))
            .sum();
        let records = total.saturating_sub(snapshot * segments.len() as u64);
        if records < 2 * live + self.config.segment_bytes {
            return;
        }
        // Everything before a fresh segment gets replaced by copies written
        // from here on; the fresh segment starts with the metadata snapshot.
        if let Err(e) = self.log.rotate(metadata.iter().map(record::to_vec), 0) {
            debug!(cause = %e, "compaction postponed: cannot rotate");
            return;
        }
        let Some(boundary) = self.log.current_segment() else {
            return;
        };
        let work = self
            .broker
            .durable_events_before(Seq(self.broker.last_seq().0 + 1));
        debug!(
            segments = segments.len(),
            total_bytes = total,
            live_bytes = live,
            events = work.len(),
            "compaction started"
        );
        self.compaction = Some(Compaction {
            boundary,
            work,
            next: 0,
            copied: 0,
            started: Instant::now(),
        });
    }
}
