//! Any line a server writes, read without context (`docs/protocol.md` §3):
//! a delivery starts with `{`, everything else is a reply (`+OK` or
//! `-ERR`, the greeting included).

use crate::delivery::{DeliveryParseError, ParsedDelivery};
use crate::reply::{Reply, ReplyParseError};

/// One line from a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLine<'a> {
    /// A reply (or the greeting).
    Reply(Reply),
    /// A delivery to one of this connection's subscriptions.
    Delivery(ParsedDelivery<'a>),
}

/// A server line that is neither a known reply nor a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerLineError {
    /// Not a reply this version knows.
    #[error(transparent)]
    Reply(#[from] ReplyParseError),
    /// Starts with `{` but is not a delivery.
    #[error(transparent)]
    Delivery(#[from] DeliveryParseError),
}

impl<'a> ServerLine<'a> {
    /// Reads one line, with or without its CRLF.
    ///
    /// ```
    /// use herald_proto::{Reply, ServerLine};
    /// assert_eq!(ServerLine::parse("+OK pong\r\n"), Ok(ServerLine::Reply(Reply::Pong)));
    /// let Ok(ServerLine::Delivery(d)) =
    ///     ServerLine::parse(r#"{"topic":"t","id":"1","priority":0,"msg":1,"timestamp":2}"#)
    /// else {
    ///     panic!("a delivery")
    /// };
    /// assert_eq!(d.id, "1");
    /// ```
    ///
    /// # Errors
    /// [`ServerLineError`] saying which reader refused it.
    pub fn parse(line: &'a str) -> Result<ServerLine<'a>, ServerLineError> {
        if line.starts_with('{') {
            Ok(ServerLine::Delivery(ParsedDelivery::parse(line)?))
        } else {
            Ok(ServerLine::Reply(Reply::parse(line)?))
        }
    }
}
