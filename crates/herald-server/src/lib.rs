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
//! - [`admin`]: [`Admin`], the HTTP API's way to the broker task (reads
//!   through a request message, changes through pseudo-connections).
//! - [`users`]: `[[users]]` of the configuration file, checked.
//! - [`telemetry`]: `-ERR` counts, fdatasync latency, the open connections.
//!
//! Tasks and channels: connection tasks → (bounded mpsc) → broker task →
//! (one unbounded mpsc per connection) → connection tasks; broker task →
//! (std mpsc) → fsync thread → (the same bounded mpsc) → broker task.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod broker_task;
pub mod config;
pub mod connection;
pub mod server;
pub mod sync;
pub mod telemetry;
pub mod users;

pub use admin::{Admin, AdminError, Phase};
pub use config::{Config, FsyncMode};
pub use server::{Error, run, run_with, run_with_storage};
pub use telemetry::Telemetry;
