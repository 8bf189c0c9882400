//! [`Reply::parse`]: reading any line a server writes that is not a
//! delivery, without knowing which command it answers.
//!
//! Every `+OK` reply starts with a word of its own (`published`, `acked`,
//! ...) or with the `[` / `{` of a JSON payload, so no context is needed.
//! The reader is exact about the shape (the right number of words, numbers
//! where numbers go) and does not re-check what the server decided (name
//! rules, id rules): a client trusts its server for those.

use super::{ErrorCode, Reply};
use crate::command::ReplyMode;
use crate::options::{SubOptions, split_option};
use crate::words::{Words, is_digits, quotable};
use std::sync::Arc;

/// A line that is not a reply this version knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyParseError {
    /// It starts with neither `+OK` nor `-ERR` (a delivery starts with `{`).
    #[error("not a reply: '{0}'")]
    NotAReply(String),
    /// `-ERR` with a code this version does not know.
    #[error("unknown error code '{0}'")]
    UnknownCode(String),
    /// `+OK` followed by a word this version does not know (a newer
    /// server's reply, or a greeting worded differently).
    #[error("unknown reply '+OK {0}'")]
    UnknownReply(String),
    /// A known reply with the wrong words after it.
    #[error("malformed reply '{0}'")]
    Malformed(String),
}

impl Reply {
    /// Reads one reply line, with or without its CRLF.
    ///
    /// ```
    /// use herald_proto::{ErrorCode, Reply};
    /// assert_eq!(Reply::parse("+OK pong\r\n"), Ok(Reply::Pong));
    /// let full = Reply::parse("-ERR full jobs workers").unwrap();
    /// assert_eq!(full.full_subscription(), Some(("jobs", "workers")));
    /// let moved = Reply::parse("-ERR not_leader 10.0.0.2:8000 ask there").unwrap();
    /// assert_eq!(moved.leader(), Some("10.0.0.2:8000"));
    /// ```
    ///
    /// # Errors
    /// A [`ReplyParseError`] saying why the line is not a known reply.
    pub fn parse(line: &str) -> Result<Reply, ReplyParseError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(rest) = after_marker(line, "-ERR") {
            let rest = rest.trim_start_matches([' ', '\t']);
            let (code, text) = match rest.find([' ', '\t']) {
                // One separator after the code; the text keeps the rest as is.
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, ""),
            };
            let code = ErrorCode::from_wire(code)
                .ok_or_else(|| ReplyParseError::UnknownCode(quotable(code).into_owned()))?;
            return Ok(Reply::error(code, text));
        }
        let Some(text) = after_marker(line, "+OK") else {
            return Err(ReplyParseError::NotAReply(quotable(line).into_owned()));
        };
        let text = text.strip_prefix(' ').unwrap_or(text);
        if text.starts_with(['[', '{']) {
            return Ok(Reply::Json(text.to_string()));
        }
        let malformed = || ReplyParseError::Malformed(quotable(line).into_owned());
        let mut words = Words::new(text);
        let word = words.next().unwrap_or_default();
        let shared = |s: &str| -> Arc<str> { Arc::from(s) };
        let reply = match word {
            "published" | "duplicate" | "acked" | "nacked" => {
                let [topic, id] = exactly(words).ok_or_else(malformed)?;
                let (topic, id) = (shared(topic), shared(id));
                match word {
                    "published" => Reply::Published { topic, id },
                    "duplicate" => Reply::Duplicate { topic, id },
                    "acked" => Reply::Acked { topic, id },
                    _ => Reply::Nacked { topic, id },
                }
            }
            "touched" => {
                let [topic, id, ms] = exactly(words).ok_or_else(malformed)?;
                let ms = is_digits(ms)
                    .then(|| ms.parse().ok())
                    .flatten()
                    .ok_or_else(malformed)?;
                Reply::Touched {
                    topic: shared(topic),
                    id: shared(id),
                    ms,
                }
            }
            "subscribed" => {
                let topic = words.next().ok_or_else(malformed)?;
                let mut options = SubOptions::default();
                for option in words {
                    let (key, value) = split_option(option).ok_or_else(malformed)?;
                    options.set(key, value).map_err(|_| malformed())?;
                }
                Reply::Subscribed {
                    topic: shared(topic),
                    options: Arc::new(options),
                }
            }
            "unsubscribed" | "name" | "created" | "auth" => {
                let [name] = exactly(words).ok_or_else(malformed)?;
                let name = shared(name);
                match word {
                    "unsubscribed" => Reply::Unsubscribed(name),
                    "name" => Reply::Named(name),
                    "created" => Reply::Created(name),
                    _ => Reply::Auth(name),
                }
            }
            "replies" => {
                let [mode] = exactly(words).ok_or_else(malformed)?;
                Reply::Replies(ReplyMode::parse(mode).ok_or_else(malformed)?)
            }
            "pong" | "bye" => {
                exactly::<0>(words).ok_or_else(malformed)?;
                if word == "pong" {
                    Reply::Pong
                } else {
                    Reply::Bye
                }
            }
            "herald" => match exactly(words) {
                Some([version, "ready"]) => Reply::Greeting {
                    version: version.to_string(),
                },
                _ => return Err(ReplyParseError::UnknownReply(quotable(text).into_owned())),
            },
            _ => return Err(ReplyParseError::UnknownReply(quotable(text).into_owned())),
        };
        Ok(reply)
    }
}

/// The rest of `line` after `marker`, if the marker is a whole word.
fn after_marker<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(marker)?;
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(rest)
}

/// Exactly `N` more words.
fn exactly<const N: usize>(mut words: Words<'_>) -> Option<[&str; N]> {
    let mut out = [""; N];
    for slot in &mut out {
        *slot = words.next()?;
    }
    words.next().is_none().then_some(out)
}
