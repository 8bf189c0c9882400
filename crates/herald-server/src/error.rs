//! Why the server could not run, or stopped.
//!
//! Nothing here is logged where it is made: the broker task returns a
//! [`BrokerError`], [`run`](crate::run) returns it inside [`Error`], and
//! the caller (the `herald` binary prints it on exit) reports it once.

use std::io;

/// Why [`run`](crate::run) could not serve, or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening or recovering the log failed (locked, corrupt, unreadable).
    #[error(transparent)]
    Log(#[from] herald_log::Error),
    /// Recovery did not finish: its task panicked or was cancelled.
    #[error("recovery did not finish")]
    Recovery(#[source] tokio::task::JoinError),
    /// The fsync thread could not be started.
    #[error("cannot start the fsync thread")]
    Thread(#[source] io::Error),
    /// The broker stopped serving: it acknowledges nothing it could not store.
    #[error("broker stopped")]
    Broker(#[from] BrokerError),
}

/// Why the broker task stopped. After any of these, replies that were
/// waiting for the disk are never sent and every connection is closed
/// (`docs/protocol.md` 10, "When the log fails").
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Writing a batch to the log failed.
    #[error("writing the log failed")]
    Write(#[source] herald_log::Error),
    /// An fdatasync of the log failed (on the fsync thread, inline, or at
    /// the end of a compaction): the page cache can no longer be trusted.
    #[error("fdatasync of the log failed")]
    Sync(#[source] io::Error),
    /// The fsync thread is gone, so nothing could become durable again.
    #[error("the fsync thread stopped")]
    SyncThreadGone,
    /// The broker task panicked.
    #[error("the broker task panicked")]
    Panicked,
}
