//! Parsing one line into a [`Command`].

use crate::event::EventInput;
use crate::reply::{ErrorCode, Reply};

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
    /// `sub <topic> [prefetch]` / `SUBSCRIBE`
    Sub {
        /// Topic name (validated).
        topic: String,
        /// 1..=65535, default 1.
        prefetch: u16,
    },
    /// `unsub <topic>` / `UNSUBSCRIBE`
    Unsub {
        /// Topic name (validated).
        topic: String,
    },
    /// `ack <topic> <id>` / `ACKNOWLEDGE`
    Ack {
        /// Topic name (validated).
        topic: String,
        /// Event id, as sent (not validated beyond being one token).
        id: String,
    },
    /// `name <client-name>` / `NAME`
    Name {
        /// Client name (validated, same rules as a topic).
        name: String,
    },
    /// `create <topic>`
    Create {
        /// Topic name (validated).
        topic: String,
    },
    /// `topics`
    Topics,
    /// `stats [<topic>]`
    Stats {
        /// Only this topic, when given (validated).
        topic: Option<String>,
    },
    /// `ping`
    Ping,
    /// `quit`
    Quit,
}

/// Why a line is not a valid command. Each variant maps to one wire code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The first word is not a command.
    #[error("unknown command '{0}'")]
    UnknownCommand(String),
    /// Missing or extra argument, bad prefetch, bad client name.
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

/// Parses one line (without its LF and trailing CR).
///
/// Returns `Ok(None)` for an empty or all-whitespace line, which gets no reply.
///
/// # Errors
/// A [`ParseError`] whose [`code`](ParseError::code) is the reply to send.
pub fn parse_line(line: &[u8]) -> Result<Option<Command>, ParseError> {
    let _ = line;
    todo!("helper implements")
}
