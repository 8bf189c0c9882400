//! Replies (`+OK ...` / `-ERR code ...`) and the stable wire error codes.
//!
//! This module owns the reply lines of `docs/protocol.md` §3, §6, §7 and
//! their version 2 additions (§11, §12, §15, §17): how each is written
//! ([`Reply::encode`]) and read back ([`Reply::parse`], in `parse`), so the
//! server and the client share one definition. The JSON payloads of `+OK`
//! replies have their own types ([`crate::stats`], [`crate::peek`],
//! [`crate::cluster`]); here they are text ([`Reply::Json`]).
//!
//! Invariants: every encoded reply is one line ending in CRLF, with no CR
//! or LF inside (error texts have theirs replaced by spaces); and
//! `Reply::parse(encode(r)) == r` for every reply whose parts hold what
//! the server sends (names and ids without blanks, error text without CR
//! or LF, JSON starting with `[` or `{`).

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

use crate::command::ReplyMode;
use crate::options::SubOptions;

mod parse;
#[cfg(test)]
mod tests;

pub use parse::ReplyParseError;

/// The machine-readable word after `-ERR`. Stable across versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The command word is not one Herald knows.
    UnknownCommand,
    /// A missing or extra argument, a bad prefetch or a bad client name.
    BadArgs,
    /// A topic name breaks the naming rules.
    BadTopic,
    /// The event of a `pub` is not acceptable.
    BadEvent,
    /// The line is not valid UTF-8.
    BadRequest,
    /// `sub` or `stats` on a topic that does not exist.
    NoTopic,
    /// `unsub` or `ack` on a topic this subscriber is not subscribed to.
    NotSubscribed,
    /// `ack` of an id that is not in this subscriber's queue.
    NoEvent,
    /// `name` with a name another live connection holds.
    NameInUse,
    /// The command is not allowed in the connection's current state.
    BadState,
    /// The line was longer than the limit and was discarded.
    LineTooLong,
    /// The broker could not store the change (for example the disk is full).
    Unavailable,
    /// `-ERR full <topic> <subscription>`: a subscription with
    /// `overflow=reject` is at its limit (§13.4).
    Full,
    /// Users are configured and this connection has not sent `auth` (§15).
    AuthRequired,
    /// `auth` with a wrong user or password (§15).
    AuthFailed,
    /// The user may not do this on this topic or name (§15).
    Forbidden,
    /// `-ERR not_leader <HOST:PORT> ...`: this cluster node is not the
    /// leader, which is at that address (§17).
    NotLeader,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::BadArgs => "bad_args",
            ErrorCode::BadTopic => "bad_topic",
            ErrorCode::BadEvent => "bad_event",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NoTopic => "no_topic",
            ErrorCode::NotSubscribed => "not_subscribed",
            ErrorCode::NoEvent => "no_event",
            ErrorCode::NameInUse => "name_in_use",
            ErrorCode::BadState => "bad_state",
            ErrorCode::LineTooLong => "line_too_long",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Full => "full",
            ErrorCode::AuthRequired => "auth_required",
            ErrorCode::AuthFailed => "auth_failed",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotLeader => "not_leader",
        }
    }

    /// Every code, for exhaustive tests and client mappings.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::UnknownCommand,
        ErrorCode::BadArgs,
        ErrorCode::BadTopic,
        ErrorCode::BadEvent,
        ErrorCode::BadRequest,
        ErrorCode::NoTopic,
        ErrorCode::NotSubscribed,
        ErrorCode::NoEvent,
        ErrorCode::NameInUse,
        ErrorCode::BadState,
        ErrorCode::LineTooLong,
        ErrorCode::Unavailable,
        ErrorCode::Full,
        ErrorCode::AuthRequired,
        ErrorCode::AuthFailed,
        ErrorCode::Forbidden,
        ErrorCode::NotLeader,
    ];

    /// Parses a wire code back into the enum (used by clients).
    pub fn from_wire(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reply line. Topic and id are shared strings so that building a reply
/// does not copy them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK herald <version> ready`: the greeting, sent on connect before
    /// any command (§3). It answers no command.
    Greeting {
        /// The server's version.
        version: String,
    },
    /// `+OK published <topic> <id>`
    Published {
        /// Topic name.
        topic: Arc<str>,
        /// Event id.
        id: Arc<str>,
    },
    /// `+OK duplicate <topic> <id>`
    Duplicate {
        /// Topic name.
        topic: Arc<str>,
        /// Event id.
        id: Arc<str>,
    },
    /// `+OK subscribed <topic>[ key=value ...]`: the options the `sub` gave,
    /// in the order of §12.1 (none: exactly the version 1 reply).
    Subscribed {
        /// Topic name.
        topic: Arc<str>,
        /// The options given, shared with the subscription that keeps them.
        options: Arc<SubOptions>,
    },
    /// `+OK unsubscribed <topic>`
    Unsubscribed(Arc<str>),
    /// `+OK acked <topic> <id>`
    Acked {
        /// Topic name.
        topic: Arc<str>,
        /// Event id.
        id: Arc<str>,
    },
    /// `+OK nacked <topic> <id>` (§12.5)
    Nacked {
        /// Topic name.
        topic: Arc<str>,
        /// Event id.
        id: Arc<str>,
    },
    /// `+OK touched <topic> <id> <ms>` (§12.4)
    Touched {
        /// Topic name.
        topic: Arc<str>,
        /// Event id.
        id: Arc<str>,
        /// Milliseconds left until the new deadline.
        ms: u64,
    },
    /// `+OK name <client-name>`
    Named(Arc<str>),
    /// `+OK created <topic>`
    Created(Arc<str>),
    /// `+OK replies all|errors` (§11)
    Replies(ReplyMode),
    /// `+OK auth <user>` (§15)
    Auth(Arc<str>),
    /// `+OK <json>` for `topics`, `stats`, `peek` and `cluster`: the JSON
    /// text, already encoded (see [`Reply::json`]).
    Json(String),
    /// `+OK pong`
    Pong,
    /// `+OK bye`
    Bye,
    /// `-ERR <code> <text>`
    Error {
        /// Machine-readable code.
        code: ErrorCode,
        /// Human text; may change between versions, except where a code
        /// gives it words to read: see [`Reply::full`] and
        /// [`Reply::not_leader`].
        text: String,
    },
}

impl Reply {
    /// Shorthand for an error reply.
    pub fn error(code: ErrorCode, text: impl Into<String>) -> Reply {
        Reply::Error {
            code,
            text: text.into(),
        }
    }

    /// `+OK subscribed <topic>` for a `sub` without options.
    pub fn subscribed(topic: Arc<str>) -> Reply {
        Reply::Subscribed {
            topic,
            options: Arc::default(),
        }
    }

    /// `+OK <json>` of any payload (a [`crate::Stats`], a list of
    /// [`crate::PeekEntry`], a [`crate::ClusterStatus`], topic names).
    pub fn json(payload: &impl Serialize) -> Reply {
        // The payload types of this crate are maps with string keys, lists
        // and numbers, which serde_json always writes; a failing custom
        // type still gets a well-formed (if empty) reply.
        Reply::Json(serde_json::to_string(payload).unwrap_or_else(|_| "null".to_string()))
    }

    /// `-ERR full <topic> <subscription>` (§13.4), naming the subscription
    /// that is full.
    pub fn full(topic: &str, subscription: &str) -> Reply {
        Reply::error(ErrorCode::Full, format!("{topic} {subscription}"))
    }

    /// `-ERR not_leader <HOST:PORT> ...` (§17): the first word of the text
    /// is the leader's client address.
    pub fn not_leader(leader: &str) -> Reply {
        Reply::error(ErrorCode::NotLeader, format!("{leader} is the leader"))
    }

    /// For `-ERR full <topic> <subscription>`: the topic and subscription.
    pub fn full_subscription(&self) -> Option<(&str, &str)> {
        match self {
            Reply::Error {
                code: ErrorCode::Full,
                text,
            } => {
                let mut words = crate::words::Words::new(text);
                Some((words.next()?, words.next()?))
            }
            _ => None,
        }
    }

    /// For `-ERR not_leader <HOST:PORT> ...`: the leader's address.
    pub fn leader(&self) -> Option<&str> {
        match self {
            Reply::Error {
                code: ErrorCode::NotLeader,
                text,
            } => crate::words::Words::new(text).next(),
            _ => None,
        }
    }

    /// Appends the reply line, CRLF included, to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        fn two(out: &mut BytesMut, word: &str, a: &str, b: &str) {
            out.reserve(word.len() + a.len() + b.len() + 8);
            out.put_slice(b"+OK ");
            out.put_slice(word.as_bytes());
            out.put_u8(b' ');
            out.put_slice(a.as_bytes());
            out.put_u8(b' ');
            out.put_slice(b.as_bytes());
            out.put_slice(b"\r\n");
        }
        fn one(out: &mut BytesMut, word: &str, a: &str) {
            out.reserve(word.len() + a.len() + 8);
            out.put_slice(b"+OK ");
            out.put_slice(word.as_bytes());
            if !a.is_empty() {
                out.put_u8(b' ');
                out.put_slice(a.as_bytes());
            }
            out.put_slice(b"\r\n");
        }
        match self {
            Reply::Greeting { version } => {
                one(out, "herald", &format!("{version} ready"));
            }
            Reply::Published { topic, id } => two(out, "published", topic, id),
            Reply::Duplicate { topic, id } => two(out, "duplicate", topic, id),
            Reply::Acked { topic, id } => two(out, "acked", topic, id),
            Reply::Nacked { topic, id } => two(out, "nacked", topic, id),
            Reply::Touched { topic, id, ms } => {
                two(out, "touched", topic, &format!("{id} {ms}"));
            }
            Reply::Subscribed { topic, options } => {
                if options.is_empty() {
                    one(out, "subscribed", topic);
                } else {
                    // The suffix starts with its own space.
                    one(out, "subscribed", &format!("{topic}{options}"));
                }
            }
            Reply::Unsubscribed(t) => one(out, "unsubscribed", t),
            Reply::Named(n) => one(out, "name", n),
            Reply::Created(t) => one(out, "created", t),
            Reply::Replies(mode) => one(out, "replies", mode.as_str()),
            Reply::Auth(user) => one(out, "auth", user),
            Reply::Json(j) => one(out, j, ""),
            Reply::Pong => one(out, "pong", ""),
            Reply::Bye => one(out, "bye", ""),
            Reply::Error { code, text } => {
                out.reserve(text.len() + 24);
                out.put_slice(b"-ERR ");
                out.put_slice(code.as_str().as_bytes());
                if !text.is_empty() {
                    out.put_u8(b' ');
                    // A reply is one line whatever the text says.
                    for &b in text.as_bytes() {
                        out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
                    }
                }
                out.put_slice(b"\r\n");
            }
        }
    }

    /// The reply line without CRLF, for logs and tests.
    pub fn to_line(&self) -> String {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        let text = String::from_utf8_lossy(&out);
        text.trim_end_matches("\r\n").to_string()
    }
}
