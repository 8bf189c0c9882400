//! What a publisher sends ([`Event`]) and what the broker answers ([`Publish`]).
//!
//! The client does not validate events beyond what framing needs (one line):
//! the broker is the judge of `id`, `priority` and `msg` and answers
//! `-ERR bad_event` itself, so the rules live in one place (`herald-proto`).

use serde::Serialize;

/// An event in the shape of `docs/protocol.md` §4: `id`, optional `priority`, `msg`.
///
/// Any other serializable value works with [`crate::Client::publish`] too
/// (a struct of your own, `serde_json::json!({...})`); this builder is for
/// the common case.
///
/// ```
/// use herald_client::Event;
/// let event = Event::new("1", "tweet 1").priority(3);
/// assert_eq!(
///     serde_json::to_string(&event).unwrap(),
///     r#"{"id":"1","priority":3,"msg":"tweet 1"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Names the event within its topic: 1 to 256 bytes, no whitespace.
    pub id: String,
    /// 0 to 255; higher is delivered first.
    pub priority: u8,
    /// The payload: any JSON value.
    pub msg: serde_json::Value,
}

impl Event {
    /// An event with priority 0.
    pub fn new(id: impl Into<String>, msg: impl Into<serde_json::Value>) -> Event {
        Event {
            id: id.into(),
            priority: 0,
            msg: msg.into(),
        }
    }

    /// Sets the priority (0 to 255, higher first).
    pub fn priority(mut self, priority: u8) -> Event {
        self.priority = priority;
        self
    }
}

/// How the broker took a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Publish {
    /// `+OK published`: stored (durably, per the broker's `--fsync` mode).
    Published,
    /// `+OK duplicate`: an event with this id is still pending on the topic;
    /// nothing changed. Retrying a publish after a lost connection is safe.
    Duplicate,
}
