//! The Herald server: a thin tokio layer around the broker state machine
//! (`herald-core`) and the log (`herald-log`).
//!
//! - [`server::run`]: recovery, the accept loop, graceful shutdown
//!   ([`server::run_with_storage`] with the log's file operations swapped,
//!   for tests).
//! - [`connection`]: one task per connection; parses lines, writes output.
//! - [`broker_task`]: the single owner of broker state and log; batches,
//!   group commit, reply ordering, compaction.
//! - [`sync`]: the fsync thread.
//! - [`config`]: the settings.
//!
//! Tasks and channels: connection tasks → (bounded mpsc) → broker task →
//! (one unbounded mpsc per connection) → connection tasks; broker task →
//! (std mpsc) → fsync thread → (the same bounded mpsc) → broker task.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod broker_task;
mod config;
mod connection;
mod durability;
mod error;
mod outbox;
mod server;
mod sync;

pub use config::{Config, FsyncMode, ParseFsyncModeError};
pub use error::{BrokerError, Error};
pub use server::{run, run_with_storage};
