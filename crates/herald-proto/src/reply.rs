//! Replies (`+OK ...` / `-ERR code ...`) and the stable wire error codes.

use bytes::{BufMut, BytesMut};
use std::fmt;
use std::sync::Arc;

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
        }
    }

    /// Every code, for exhaustive tests and client mappings.
    pub const ALL: [ErrorCode; 12] = [
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
    /// `+OK subscribed <topic>`
    Subscribed(Arc<str>),
    /// `+OK unsubscribed <topic>`
    Unsubscribed(Arc<str>),
    /// `+OK acked <topic> <id>`
    Acked {
        /// Topic name.
        topic: Arc<str>,
        /// Event id.
        id: Arc<str>,
    },
    /// `+OK name <client-name>`
    Named(Arc<str>),
    /// `+OK created <topic>`
    Created(Arc<str>),
    /// `+OK <json>` for `topics` and `stats`: the JSON text, already encoded.
    Json(String),
    /// `+OK pong`
    Pong,
    /// `+OK bye`
    Bye,
    /// `-ERR <code> <text>`
    Error {
        /// Machine-readable code.
        code: ErrorCode,
        /// Human text; may change between versions.
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
            Reply::Published { topic, id } => two(out, "published", topic, id),
            Reply::Duplicate { topic, id } => two(out, "duplicate", topic, id),
            Reply::Acked { topic, id } => two(out, "acked", topic, id),
            Reply::Subscribed(t) => one(out, "subscribed", t),
            Reply::Unsubscribed(t) => one(out, "unsubscribed", t),
            Reply::Named(n) => one(out, "name", n),
            Reply::Created(t) => one(out, "created", t),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_the_wire_form() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::from_wire("nope"), None);
    }

    #[test]
    fn replies_are_single_crlf_terminated_lines() {
        let t: Arc<str> = "tweets".into();
        let id: Arc<str> = "1".into();
        let cases = [
            (
                Reply::Published {
                    topic: t.clone(),
                    id: id.clone(),
                },
                "+OK published tweets 1",
            ),
            (
                Reply::Duplicate {
                    topic: t.clone(),
                    id: id.clone(),
                },
                "+OK duplicate tweets 1",
            ),
            (
                Reply::Acked {
                    topic: t.clone(),
                    id,
                },
                "+OK acked tweets 1",
            ),
            (Reply::Subscribed(t.clone()), "+OK subscribed tweets"),
            (Reply::Unsubscribed(t.clone()), "+OK unsubscribed tweets"),
            (Reply::Named("bob".into()), "+OK name bob"),
            (Reply::Created(t), "+OK created tweets"),
            (Reply::Json("[\"a\"]".into()), "+OK [\"a\"]"),
            (Reply::Pong, "+OK pong"),
            (Reply::Bye, "+OK bye"),
            (
                Reply::error(ErrorCode::NoEvent, "no event 7\nin queue"),
                "-ERR no_event no event 7 in queue",
            ),
        ];
        for (reply, line) in cases {
            let mut out = BytesMut::new();
            reply.encode(&mut out);
            assert_eq!(&out[..], format!("{line}\r\n").as_bytes());
        }
    }
}
