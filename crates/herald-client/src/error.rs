//! The client's error type: one variant per way a command can fail.

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
    /// Connecting, reading or writing failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The broker sent a line that does not fit the protocol here (an
    /// unknown error code, a reply of the wrong shape, a bad greeting).
    #[error("protocol error: {0}")]
    Protocol(String),
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
            _ => None,
        }
    }

    pub(crate) fn invalid(code: ErrorCode, message: impl Into<String>) -> Error {
        Error::Invalid {
            code,
            message: message.into(),
        }
    }

    /// The error of a reply line: [`Error::Server`] for `-ERR`, `None` for
    /// any other reply.
    pub(crate) fn from_reply(reply: &Reply) -> Option<Error> {
        match reply {
            Reply::Error { code, text } => Some(Error::Server {
                code: *code,
                message: text.clone(),
            }),
            _ => None,
        }
    }

    /// A reply that is not the one the command calls for.
    pub(crate) fn unexpected(reply: &Reply, expected: &str) -> Error {
        Error::Protocol(format!(
            "expected '+OK {expected} ...', got '{}'",
            reply.to_line()
        ))
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
            assert!(
                matches!(&err, Error::Server { code: c, message } if *c == code && message == "some text"),
                "{err:?}"
            );
            assert_eq!(err.code(), Some(code));
        }
    }

    #[test]
    fn a_code_without_text_is_still_a_server_error() {
        let err = Error::from_reply(&Reply::parse("-ERR no_topic").unwrap()).unwrap();
        assert_eq!(err.code(), Some(ErrorCode::NoTopic));
        assert!(Error::from_reply(&Reply::Pong).is_none());
    }
}
