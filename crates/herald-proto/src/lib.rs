//! The Herald wire protocol (see `docs/protocol.md`), with no IO.
//!
//! - [`decoder`]: splits a byte stream into lines, resuming after partial
//!   reads, enforcing the line limit and discarding the rest of an overlong line.
//! - [`command`]: parses one line into a [`Command`] or a [`ParseError`].
//! - [`event`]: validates the JSON event of a `pub`, keeps only the fields the
//!   publisher chose, and writes delivery lines around them.
//! - [`reply`]: the `+OK` / `-ERR` replies and the wire error codes.
//! - [`name`]: the character rules shared by topic and client names.
//!
//! Everything here is `&[u8]` in, values out: the server and the client share it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod command;
pub mod decoder;
pub mod event;
pub mod name;
pub mod reply;

pub use command::{Command, ParseError, parse_line};
pub use decoder::{Frame, LineDecoder};
pub use event::{Delivery, EventInput};
pub use reply::{ErrorCode, Reply};

/// Default maximum line length in bytes (1 MiB), counting every byte before the LF.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Default TCP port, as in the seed.
pub const DEFAULT_PORT: u16 = 8000;

/// The greeting line a server sends on connect (without CRLF).
pub fn greeting() -> String {
    format!("+OK herald {} ready", env!("CARGO_PKG_VERSION"))
}
