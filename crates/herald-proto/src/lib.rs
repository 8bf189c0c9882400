//! The Herald wire protocol (see `docs/protocol.md`), with no IO: every
//! line a client or a server writes is defined here once, written and read
//! by the same code on both sides.
//!
//! - [`decoder`]: splits a byte stream into lines, resuming after partial
//!   reads, enforcing the line limit and discarding the rest of an overlong line.
//! - [`verb`]: the command words, for decisions that come before the
//!   arguments (`auth_required`, `not_leader`, `replies errors`).
//! - [`command`]: one line into a [`Command`] or a [`ParseError`], and the
//!   canonical line of a [`Command`] back.
//! - [`options`]: the `key=value` options of `sub` ([`SubOptions`]).
//! - [`duration`]: `1500`, `30s`, `2m`, `1h`.
//! - [`event`]: validates the JSON event of a `pub` and keeps only the
//!   fields the publisher chose.
//! - [`delivery`]: writes delivery lines around them, and reads them back.
//! - [`dead`]: the fields of a dead letter.
//! - [`reply`]: the `+OK` / `-ERR` replies and the wire error codes,
//!   written and read.
//! - [`server_line`]: any line a server writes, reply or delivery.
//! - [`stats`], [`peek`], [`cluster`]: the JSON payloads of `+OK` replies.
//! - [`name`]: the character rules shared by topic and client names.
//!
//! Everything here is `&[u8]` or `&str` in, values out: the server, the
//! client and the bench share it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cluster;
pub mod command;
pub mod dead;
pub mod decoder;
pub mod delivery;
pub mod duration;
pub mod event;
mod json;
pub mod name;
pub mod options;
pub mod peek;
pub mod reply;
pub mod server_line;
pub mod stats;
#[cfg(test)]
mod testing;
pub mod verb;
mod words;

pub use cluster::{ClusterNode, ClusterStatus};
pub use command::{
    Command, NackAction, ParseError, Password, PeekTarget, ReplyMode, parse_line, write_ack_line,
    write_pub_line,
};
pub use dead::{DeadInfo, DeadReason, FieldsError, dead_letter_fields, strip_time_fields};
pub use decoder::{Frame, LineDecoder};
pub use delivery::{Delivery, DeliveryParseError, ParsedDelivery};
pub use event::EventInput;
pub use options::{DeadTarget, Overflow, SubOptions};
pub use peek::{PeekEntry, PeekState};
pub use reply::{ErrorCode, Reply, ReplyParseError};
pub use server_line::{ServerLine, ServerLineError};
pub use stats::{Stats, SubscriptionStats, TopicStats};
pub use verb::{Permission, Verb};

/// Default maximum line length in bytes (1 MiB), counting every byte before the LF.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Default TCP port, as in the seed.
pub const DEFAULT_PORT: u16 = 8000;

/// The greeting line a server sends on connect (without CRLF):
/// `+OK herald <version> ready` ([`Reply::Greeting`]).
pub fn greeting() -> String {
    Reply::Greeting {
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
    .to_line()
}

/// Whether a line holds nothing but spaces and tabs: such a line is not a
/// command and gets no reply (`docs/protocol.md` §2), whatever state the
/// connection is in.
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|&b| b == b' ' || b == b'\t')
}
