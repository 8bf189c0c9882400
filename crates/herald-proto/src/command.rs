//! Commands: one line in, one [`Command`] out, and back.
//!
//! This module owns the command grammar of `docs/protocol.md` §2 and §6
//! (version 1) and §11, §12, §13.1, §15 and §17 (version 2): how a line
//! splits into words, the command words and their long forms, argument
//! counts, options (`key=value` after the positional arguments, §11),
//! durations, and which error wins when several apply (§7 "Which error
//! wins": unknown command, then the shape of the command, options
//! included, then the topic, then the event). It knows nothing of broker
//! state: whether a topic exists or a name is taken is `herald-core`'s call.
//!
//! - `parse`: [`parse_line`].
//! - `encode`: the canonical line of a command ([`Command::encode`],
//!   [`fmt::Display`]) and the two borrowed fast paths clients use on hot
//!   paths ([`write_pub_line`], [`write_ack_line`]).
//!
//! Invariants: a returned [`Command`] holds only valid topic, client and
//! group names, values in their ranges and a validated event; no input
//! makes the parser panic; an error never quotes more than a short prefix
//! of what the client sent; and `parse_line(encode(c)) == c` for every
//! command the parser can return.

use std::fmt;

use crate::event::EventInput;
use crate::options::SubOptions;
use crate::reply::{ErrorCode, Reply};
use crate::verb::Verb;

mod encode;
mod parse;
#[cfg(test)]
mod tests;

pub use encode::{write_ack_line, write_pub_line};
pub use parse::parse_line;

/// Prefetch when `sub` does not give one: one event in flight, as in the seed.
pub const DEFAULT_PREFETCH: u16 = 1;
/// Events `peek` shows when it does not say.
pub const DEFAULT_PEEK: u16 = 10;
/// Most events one `peek` shows.
pub const MAX_PEEK: u16 = 1000;

/// A command, as a client sent it. Names follow the protocol words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `pub <topic> <event-json>` / `PUBLISH`
    Pub {
        /// Topic name (validated).
        topic: String,
        /// The validated event.
        event: EventInput,
    },
    /// `sub <topic> [prefetch] [option=value ...]` / `SUBSCRIBE`
    Sub {
        /// Topic name (validated).
        topic: String,
        /// 1..=65535, default 1.
        prefetch: u16,
        /// The options given (§12.1).
        options: SubOptions,
    },
    /// `unsub <topic> [group=<name>]` / `UNSUBSCRIBE`
    Unsub {
        /// Topic name (validated).
        topic: String,
        /// `group=<name>`: delete that group and its queue (§12.2).
        group: Option<String>,
    },
    /// `ack <topic> <id>` / `ACKNOWLEDGE`
    Ack {
        /// Topic name (validated).
        topic: String,
        /// Event id, as sent (not validated beyond being one token).
        id: String,
    },
    /// `nack <topic> <id> [<duration>|dead]` (§12.5)
    Nack {
        /// Topic name (validated).
        topic: String,
        /// Event id, as sent.
        id: String,
        /// What to do with the event.
        action: NackAction,
    },
    /// `touch <topic> <id> [<duration>]` (§12.4)
    Touch {
        /// Topic name (validated).
        topic: String,
        /// Event id, as sent.
        id: String,
        /// The new deadline from now, in ms (1 ms to 30 days); `None`: the
        /// subscription's `wait`.
        ms: Option<u64>,
    },
    /// `peek <topic> [n] [sub=<name>|group=<name>]` (§12.7)
    Peek {
        /// Topic name (validated).
        topic: String,
        /// Most events shown: 1..=1000, default 10.
        n: u16,
        /// Whose subscription.
        target: PeekTarget,
    },
    /// `name <client-name>` / `NAME`
    Name {
        /// Client name (validated, same rules as a topic).
        name: String,
    },
    /// `create <topic> [ttl=<duration>]`
    Create {
        /// Topic name (validated).
        topic: String,
        /// `ttl=`: the topic's default time to live, in ms (§13.1); `None`
        /// leaves the topic's default as it is.
        ttl_ms: Option<u64>,
    },
    /// `topics`
    Topics,
    /// `stats [<topic>]`
    Stats {
        /// Only this topic, when given (validated).
        topic: Option<String>,
    },
    /// `replies all|errors` (§11)
    Replies {
        /// The connection's new reply mode.
        mode: ReplyMode,
    },
    /// `auth <user> <password>` (§15)
    Auth {
        /// The user name, as sent (one word).
        user: String,
        /// The password, as sent (one word); hidden from `Debug`.
        password: Password,
    },
    /// `cluster` (§17)
    Cluster,
    /// `ping`
    Ping,
    /// `quit`
    Quit,
}

/// What `nack` does with the event (§12.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NackAction {
    /// No argument: return it (the subscription's backoff applies).
    Return,
    /// A duration: return it, held delayed this many ms (1 ms to 30 days).
    Delay(u64),
    /// `dead`: dead-letter it now with reason `rejected`.
    Dead,
}

/// Whose events `peek` shows (§12.7).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeekTarget {
    /// This connection's own subscription (a group member's is its group's).
    Own,
    /// `sub=<name>`: the durable subscriber's.
    Sub(String),
    /// `group=<name>`: the group's.
    Group(String),
}

/// A connection's reply mode (§11).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ReplyMode {
    /// Every command gets its reply (the default).
    #[default]
    All,
    /// No `+OK` for `pub`, `ack`, `nack` and `touch`; errors still sent.
    Errors,
}

impl ReplyMode {
    /// The keyword, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyMode::All => "all",
            ReplyMode::Errors => "errors",
        }
    }

    /// Reads the keyword, in any case.
    pub fn parse(word: &str) -> Option<ReplyMode> {
        if word.eq_ignore_ascii_case("all") {
            Some(ReplyMode::All)
        } else if word.eq_ignore_ascii_case("errors") {
            Some(ReplyMode::Errors)
        } else {
            None
        }
    }
}

impl fmt::Display for ReplyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A password from an `auth` line. `Debug` does not show it, so logging a
/// command cannot leak it; [`Password::as_str`] does.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Password {
        Password(password.into())
    }

    /// The password itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(\"***\")")
    }
}

impl Command {
    /// The command word.
    pub fn verb(&self) -> Verb {
        match self {
            Command::Pub { .. } => Verb::Pub,
            Command::Sub { .. } => Verb::Sub,
            Command::Unsub { .. } => Verb::Unsub,
            Command::Ack { .. } => Verb::Ack,
            Command::Nack { .. } => Verb::Nack,
            Command::Touch { .. } => Verb::Touch,
            Command::Peek { .. } => Verb::Peek,
            Command::Name { .. } => Verb::Name,
            Command::Create { .. } => Verb::Create,
            Command::Topics => Verb::Topics,
            Command::Stats { .. } => Verb::Stats,
            Command::Replies { .. } => Verb::Replies,
            Command::Auth { .. } => Verb::Auth,
            Command::Cluster => Verb::Cluster,
            Command::Ping => Verb::Ping,
            Command::Quit => Verb::Quit,
        }
    }

    /// The topic the command acts on, if it names one (`stats <topic>`
    /// included), for permission checks.
    pub fn topic(&self) -> Option<&str> {
        match self {
            Command::Pub { topic, .. }
            | Command::Sub { topic, .. }
            | Command::Unsub { topic, .. }
            | Command::Ack { topic, .. }
            | Command::Nack { topic, .. }
            | Command::Touch { topic, .. }
            | Command::Peek { topic, .. }
            | Command::Create { topic, .. } => Some(topic),
            Command::Stats { topic } => topic.as_deref(),
            Command::Name { .. }
            | Command::Topics
            | Command::Replies { .. }
            | Command::Auth { .. }
            | Command::Cluster
            | Command::Ping
            | Command::Quit => None,
        }
    }
}

/// Why a line is not a valid command. Each variant maps to one wire code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The first word is not a command.
    #[error("unknown command '{0}'")]
    UnknownCommand(String),
    /// Missing or extra argument, bad prefetch, bad client name, bad
    /// option (unknown, repeated or out of range).
    #[error("{0}")]
    BadArgs(String),
    /// The topic name breaks the naming rules.
    #[error("invalid topic name '{0}'")]
    BadTopic(String),
    /// The event JSON is not acceptable.
    #[error("{0}")]
    BadEvent(String),
    /// The line is not valid UTF-8.
    #[error("line is not valid UTF-8")]
    BadRequest,
    /// The line was longer than the limit.
    #[error("line longer than the limit was discarded")]
    LineTooLong,
}

impl ParseError {
    /// The wire code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ParseError::UnknownCommand(_) => ErrorCode::UnknownCommand,
            ParseError::BadArgs(_) => ErrorCode::BadArgs,
            ParseError::BadTopic(_) => ErrorCode::BadTopic,
            ParseError::BadEvent(_) => ErrorCode::BadEvent,
            ParseError::BadRequest => ErrorCode::BadRequest,
            ParseError::LineTooLong => ErrorCode::LineTooLong,
        }
    }

    /// The `-ERR` reply for this error.
    pub fn to_reply(&self) -> Reply {
        Reply::error(self.code(), self.to_string())
    }
}
