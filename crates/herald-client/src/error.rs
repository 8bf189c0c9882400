//! The client's error type: one variant per way a command can fail.
//!
//! Every `-ERR <code>` of the broker is an [`Error::Server`] with its
//! [`ErrorCode`], except the two codes whose text carries data a program
//! needs: `full` ([`Error::Full`]: which subscription is full) and
//! `not_leader` ([`Error::NotLeader`]: where the leader is). The
//! authentication codes (`auth_required`, `auth_failed`, `forbidden`) are
//! [`Error::Server`] with their code; [`Error::code`] gives the code of any
//! rejection, whatever the variant.

use herald_proto::{ErrorCode, Reply};

/// Why a client call failed.
///
/// Branch on [`Error::code`] to handle a broker rejection (`-ERR <code>`)
/// whatever the variant; the others say the connection itself is unusable
/// or misbehaved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The broker answered `-ERR <code> <message>`.
    #[error("{code}: {message}")]
    Server {
        /// The stable, machine-readable code.
        code: ErrorCode,
        /// The human text after the code (may change between versions).
        message: String,
    },
    /// `-ERR full <topic> <subscription>` (`docs/protocol.md` §13.4): a
    /// subscription with `overflow=reject` is at its limit, and the publish
    /// was refused whole (nothing was stored for anyone).
    #[error("full: subscription '{subscription}' of '{topic}' is at its limit")]
    Full {
        /// The topic published to.
        topic: String,
        /// The subscription that is full: a durable name, a group, or `~<n>`.
        subscription: String,
    },
    /// `-ERR not_leader <HOST:PORT> ...` (§17): this cluster node is not the
    /// leader; send the command to `leader` instead.
    #[error("not_leader: the leader is {leader}")]
    NotLeader {
        /// The leader's client address, `HOST:PORT`.
        leader: String,
        /// The whole text after the code.
        message: String,
    },
    /// The client refused to send the command because the broker would have
    /// rejected it with `code` (for example a topic name with a space, which
    /// would otherwise split the line). Nothing was sent.
    #[error("{code}: {message}")]
    Invalid {
        /// The code the broker would have answered.
        code: ErrorCode,
        /// What is wrong.
        message: String,
    },
    /// Connecting, reading or writing failed. The IO error is in the
    /// message and not also given as [`std::error::Error::source`], so
    /// that a report of the chain (`anyhow`'s `{:#}`) says it once.
    #[error("i/o error: {0}")]
    Io(std::io::Error),
    /// The broker sent a line that does not fit the protocol here (an
    /// unknown error code, a reply of the wrong shape, a bad greeting).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The client's own settings cannot be used (a TLS CA file that cannot
    /// be read, a bad server name). Nothing was sent.
    #[error("settings: {0}")]
    Settings(String),
    /// The connection is closed: the client was closed, or the connection
    /// dropped and reconnecting is off. A command that was in flight when
    /// the connection dropped may or may not have been applied.
    #[error("connection closed")]
    Closed,
}

impl Error {
    /// The wire error code, for a rejection by the broker or by the
    /// client's own checks; `None` for connection and protocol failures.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } | Error::Invalid { code, .. } => Some(*code),
            Error::Full { .. } => Some(ErrorCode::Full),
            Error::NotLeader { .. } => Some(ErrorCode::NotLeader),
            Error::Io(_) | Error::Protocol(_) | Error::Settings(_) | Error::Closed => None,
        }
    }

    pub(crate) fn invalid(code: ErrorCode, message: impl Into<String>) -> Error {
        Error::Invalid {
            code,
            message: message.into(),
        }
    }

    /// For [`Error::NotLeader`]: the leader's address.
    pub fn leader(&self) -> Option<&str> {
        match self {
            Error::NotLeader { leader, .. } => Some(leader),
            _ => None,
        }
    }

    /// The error of a reply line, `None` for a reply that is not `-ERR`:
    /// [`Error::Full`] and [`Error::NotLeader`] when their text has the
    /// words they promise, [`Error::Server`] otherwise.
    pub(crate) fn from_reply(reply: &Reply) -> Option<Error> {
        let Reply::Error { code, text } = reply else {
            return None;
        };
        if let Some((topic, subscription)) = reply.full_subscription() {
            return Some(Error::Full {
                topic: topic.to_string(),
                subscription: subscription.to_string(),
            });
        }
        if let Some(leader) = reply.leader() {
            return Some(Error::NotLeader {
                leader: leader.to_string(),
                message: text.clone(),
            });
        }
        Some(Error::Server {
            code: *code,
            message: text.clone(),
        })
    }

    /// A reply that is not the one the command calls for.
    pub(crate) fn unexpected(reply: &Reply, expected: &str) -> Error {
        Error::Protocol(format!(
            "expected '+OK {expected} ...', got '{}'",
            reply.to_line()
        ))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e)
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_code_maps_to_its_variant() {
        for code in ErrorCode::ALL {
            let reply = Reply::parse(&format!("-ERR {} some text", code.as_str())).unwrap();
            let err = Error::from_reply(&reply).unwrap();
            match code {
                ErrorCode::Full => assert!(
                    matches!(&err, Error::Full { topic, subscription } if topic == "some" && subscription == "text"),
                    "{err:?}"
                ),
                ErrorCode::NotLeader => assert!(
                    matches!(&err, Error::NotLeader { leader, message } if leader == "some" && message == "some text"),
                    "{err:?}"
                ),
                _ => assert!(
                    matches!(&err, Error::Server { code: c, message } if *c == code && message == "some text"),
                    "{err:?}"
                ),
            }
            assert_eq!(err.code(), Some(code));
        }
    }

    #[test]
    fn full_and_not_leader_carry_their_words() {
        let err = Error::from_reply(&Reply::full("jobs", "workers")).unwrap();
        assert!(
            matches!(&err, Error::Full { topic, subscription } if topic == "jobs" && subscription == "workers"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "full: subscription 'workers' of 'jobs' is at its limit"
        );
        let err = Error::from_reply(&Reply::not_leader("10.0.0.2:8000")).unwrap();
        assert_eq!(err.leader(), Some("10.0.0.2:8000"));
        assert_eq!(err.code(), Some(ErrorCode::NotLeader));
        // Without the words they promise, they are plain server errors.
        for line in ["-ERR full", "-ERR not_leader"] {
            let err = Error::from_reply(&Reply::parse(line).unwrap()).unwrap();
            assert!(matches!(err, Error::Server { .. }), "{err:?}");
        }
        let err = Error::from_reply(&Reply::parse("-ERR forbidden no").unwrap()).unwrap();
        assert_eq!(err.code(), Some(ErrorCode::Forbidden));
    }

    #[test]
    fn an_io_error_is_reported_once_in_a_chain() {
        use std::error::Error as _;
        let err = Error::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        ));
        assert_eq!(err.to_string(), "i/o error: Connection refused");
        assert!(err.source().is_none());
    }

    #[test]
    fn a_code_without_text_is_still_a_server_error() {
        let err = Error::from_reply(&Reply::parse("-ERR no_topic").unwrap()).unwrap();
        assert_eq!(err.code(), Some(ErrorCode::NoTopic));
        assert!(Error::from_reply(&Reply::Pong).is_none());
    }
}
