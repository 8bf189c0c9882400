//! Server settings.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// Default of [`Config::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// When a batch of log writes is forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncMode {
    /// `+OK published` only after the batch holding the event is fdatasync'ed.
    #[default]
    Always,
    /// Replies once written to the OS; fdatasync about once a second.
    Interval,
}

/// A `--fsync` value that is neither `always` nor `interval`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fsync mode '{0}' (expected 'always' or 'interval')")]
pub struct ParseFsyncModeError(String);

impl FromStr for FsyncMode {
    type Err = ParseFsyncModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Ok(FsyncMode::Always),
            "interval" => Ok(FsyncMode::Interval),
            _ => Err(ParseFsyncModeError(s.to_string())),
        }
    }
}

impl std::fmt::Display for FsyncMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FsyncMode::Always => "always",
            FsyncMode::Interval => "interval",
        })
    }
}

/// Everything `run` needs besides the listener.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory of the log.
    pub data_dir: PathBuf,
    /// When batches are fdatasync'ed.
    pub fsync: FsyncMode,
    /// Longest accepted line, in bytes before the LF.
    pub max_line_bytes: usize,
    /// Size of a log segment file.
    pub segment_bytes: u64,
    /// Reply mode of new connections (`--replies`, docs/protocol.md 11).
    pub replies: herald_proto::ReplyMode,
    /// Users from the configuration file (`[[users]]`), checked; empty:
    /// no authentication (docs/protocol.md 15).
    pub users: Vec<crate::users::User>,
    /// TLS on the listener (`--tls-cert`, `--tls-key`, `--tls-client-ca`;
    /// see [`crate::tls::server_config`]); `None`: plain TCP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Most protocol connections open at once (`--max-connections`); one
    /// more is answered `-ERR unavailable` and closed.
    pub max_connections: usize,
}

impl Config {
    /// Defaults with the given data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            data_dir: data_dir.into(),
            fsync: FsyncMode::Always,
            max_line_bytes: herald_proto::MAX_LINE_BYTES,
            segment_bytes: herald_log::DEFAULT_SEGMENT_BYTES,
            replies: herald_proto::ReplyMode::All,
            users: Vec::new(),
            tls: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}
