//! The fsync thread: group commit's second half.
//!
//! The broker task writes each batch to the OS itself (one `pwrite`), then
//! asks this thread to `fdatasync` the segment (through the log's storage,
//! [`SyncTarget::sync`]). While a sync runs, the broker keeps serving and
//! writing, so the next sync covers every batch written meanwhile: one
//! fdatasync per round, however many events it holds.

use crate::broker_task::Input;
use crate::telemetry::Telemetry;
use herald_log::SyncTarget;
use std::sync::{Arc, mpsc};
use tokio::sync::mpsc as tokio_mpsc;

/// A request to make everything up to `target.lsn()` durable.
pub(crate) struct SyncRequest {
    /// The segment that holds the newest written bytes, and that Lsn.
    pub(crate) target: SyncTarget,
}

/// Starts the thread. It ends when the request sender is dropped, or when
/// the broker task is gone. Each fdatasync's duration goes to `telemetry`.
pub(crate) fn spawn(
    broker: tokio_mpsc::Sender<Input>,
    telemetry: Arc<Telemetry>,
) -> std::io::Result<(mpsc::Sender<SyncRequest>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<SyncRequest>();
    let handle = std::thread::Builder::new()
        .name("herald-fsync".into())
        .spawn(move || {
            while let Ok(mut req) = rx.recv() {
                // Requests that queued up meanwhile are covered by the newest.
                while let Ok(newer) = rx.try_recv() {
                    req = newer;
                }
                let reply = match telemetry.fsync().time(|| req.target.sync()) {
                    Ok(()) => Input::Synced {
                        lsn: req.target.lsn(),
                    },
                    Err(error) => Input::SyncFailed { error },
                };
                if broker.blocking_send(reply).is_err() {
                    return;
                }
            }
        })?;
    Ok((tx, handle))
}
