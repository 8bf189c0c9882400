//! The Herald server: a thin tokio layer around the broker state machine
//! (`herald-core`) and the log (`herald-log`).
//!
//! - [`server::run`]: recovery, the accept loop, graceful shutdown.
//! - [`connection`]: one task per connection; parses lines, writes output.
//! - [`broker_thread`]: the single owner of broker state and log; batches,
//!   group commit, reply ordering, compaction.
//! - [`sync`]: the fsync thread.
//! - [`config`]: the settings.
//!
//! Tasks and channels: connection tasks → (bounded mpsc) → broker thread →
//! (one unbounded mpsc per connection) → connection tasks; broker thread →
//! (std mpsc) → fsync thread → (the same bounded mpsc) → broker thread.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod broker_thread;
pub mod config;
pub mod connection;
pub mod server;
pub mod sync;

pub use config::{Config, FsyncMode};
pub use server::{Error, run};
