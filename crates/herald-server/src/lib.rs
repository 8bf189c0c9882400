//! The Herald server: a thin tokio layer around the broker state machine
//! (`herald-core`) and the log (`herald-log`).
//!
//! The API is [`run`] (recover, serve a bound listener until the shutdown
//! future resolves, stop cleanly), [`run_with_storage`] (the same with the
//! log's file operations swapped, for tests that fail the disk or cut the
//! power), [`Config`] and the errors [`Error`] and [`BrokerError`].
//!
//! Layout (all private):
//! - `server`: recovery, the accept loop, graceful shutdown.
//! - `connection`: one task per connection; parses lines, writes output.
//! - `broker_task`: the single owner of broker state and log; the batch
//!   loop, timers, compaction.
//! - `durability`: sync positions; which reply waits for which sync; inline
//!   or thread sync.
//! - `outbox`: each connection's output in order, held chunks, reply modes,
//!   closing.
//! - `sync`: the fsync thread.
//! - `config`, `error`: settings, and why the server stops.
//! - [`admin`]: [`Admin`], the HTTP API's way to the broker task (reads
//!   through a request message, changes through pseudo-connections).
//! - [`users`]: `[[users]]` of the configuration file, checked;
//!   [`pattern`]: the topic patterns of their permissions.
//! - [`auth`]: password verification ([`auth::Authenticator`]) and each
//!   connection's login state and permission checks.
//! - [`tls`]: the certificate, key and client CA, read into a rustls
//!   configuration.
//! - [`telemetry`]: `-ERR` counts, fdatasync latency, the open connections.
//!
//! Tasks and channels: connection tasks → (bounded mpsc) → broker task →
//! (one unbounded mpsc per connection) → connection tasks; broker task →
//! (std mpsc) → fsync thread → (the same bounded mpsc) → broker task.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod auth;
mod broker_task;
mod config;
mod connection;
mod durability;
mod error;
mod outbox;
pub mod pattern;
mod server;
mod sync;
pub mod telemetry;
pub mod tls;
pub mod users;

pub use admin::{Admin, AdminError, Phase};

pub use config::{Config, DEFAULT_MAX_CONNECTIONS, FsyncMode, ParseFsyncModeError};
pub use error::{BrokerError, Error};
pub use server::{run, run_with, run_with_storage};
pub use telemetry::Telemetry;
/// The TLS libraries, so that callers build configurations with the same versions.
pub use {rustls, tokio_rustls};
