//! What a publisher sends ([`Event`]) and what the broker answers ([`Publish`]).
//!
//! The client does not validate events beyond what framing needs (one line):
//! the broker is the judge of `id`, `priority`, `msg` and the time fields
//! and answers `-ERR bad_event` itself, so the rules live in one place
//! (`herald-proto`).

use serde::Serialize;
use std::time::{Duration, SystemTime};

/// An event in the shape of `docs/protocol.md` §4: `id`, optional
/// `priority`, `msg`, and the optional time fields of version 2
/// (`ttl_ms`, `delay_ms`, `not_before`, section 13).
///
/// Any other serializable value works with [`crate::Client::publish`] too
/// (a struct of your own, `serde_json::json!({...})`); this builder is for
/// the common case.
///
/// ```
/// use herald_client::Event;
/// use std::time::Duration;
/// let event = Event::new("1", "tweet 1").priority(3);
/// assert_eq!(
///     serde_json::to_string(&event).unwrap(),
///     r#"{"id":"1","priority":3,"msg":"tweet 1"}"#
/// );
/// let later = Event::new("2", "reminder")
///     .delay(Duration::from_secs(5))
///     .ttl(Duration::from_secs(60));
/// assert_eq!(
///     serde_json::to_string(&later).unwrap(),
///     r#"{"id":"2","priority":0,"msg":"reminder","ttl_ms":60000,"delay_ms":5000}"#
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
    /// Time to live in ms (1 ms to 30 days), counted from the broker's
    /// `timestamp`; a topic's default (`create_with_ttl`) may shorten it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// Not delivered before this many ms after it is accepted (0 to 30 days).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Not delivered before this time, in ms since the Unix epoch (at most
    /// 30 days ahead; a past time is due at once). Not with `delay_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<u64>,
}

impl Event {
    /// An event with priority 0 and no time fields.
    pub fn new(id: impl Into<String>, msg: impl Into<serde_json::Value>) -> Event {
        Event {
            id: id.into(),
            priority: 0,
            msg: msg.into(),
            ttl_ms: None,
            delay_ms: None,
            not_before: None,
        }
    }

    /// Sets the priority (0 to 255, higher first).
    pub fn priority(mut self, priority: u8) -> Event {
        self.priority = priority;
        self
    }

    /// Sets the time to live (`ttl_ms`, rounded up to a whole millisecond):
    /// once it has passed, the event is removed from every queue that holds
    /// it undelivered (section 13.1).
    pub fn ttl(mut self, ttl: Duration) -> Event {
        self.ttl_ms = Some(millis_ceil(ttl));
        self
    }

    /// Delays delivery (`delay_ms`, rounded up to a whole millisecond):
    /// the event is queued at once but not delivered before `delay` has
    /// passed (section 13.2). Replaces a [`not_before`](Self::not_before).
    pub fn delay(mut self, delay: Duration) -> Event {
        self.delay_ms = Some(millis_ceil(delay));
        self.not_before = None;
        self
    }

    /// Delays delivery until `time` (`not_before`, ms since the Unix
    /// epoch, rounded up). Replaces a [`delay`](Self::delay).
    pub fn not_before(mut self, time: SystemTime) -> Event {
        let since_epoch = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        self.not_before = Some(millis_ceil(since_epoch));
        self.delay_ms = None;
        self
    }
}

/// `d` in whole milliseconds, rounded up (so 0.5 ms is 1 ms, never 0) and
/// saturating; the broker judges the range.
pub(crate) fn millis_ceil(d: Duration) -> u64 {
    let ms = d.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// How the broker took a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Publish {
    /// `+OK published`: stored (durably, per the broker's `--fsync` mode).
    Published,
    /// `+OK duplicate`: an event with this id is still pending on the topic;
    /// nothing changed. Retrying a publish after a lost connection is safe.
    Duplicate,
    /// Sent in `replies errors` mode ([`crate::Client::replies`]): the
    /// broker answers only a refusal, which [`crate::Client::flush`]
    /// reports; once `flush` returns `Ok`, the event is stored.
    Unconfirmed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_whole_milliseconds() {
        assert_eq!(millis_ceil(Duration::ZERO), 0);
        assert_eq!(millis_ceil(Duration::from_micros(1)), 1);
        assert_eq!(millis_ceil(Duration::from_micros(1500)), 2);
        assert_eq!(millis_ceil(Duration::from_secs(30)), 30_000);
        assert_eq!(millis_ceil(Duration::MAX), u64::MAX);
    }

    #[test]
    fn delay_and_not_before_replace_each_other() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let e = Event::new("1", 1)
            .delay(Duration::from_secs(1))
            .not_before(at);
        assert_eq!((e.delay_ms, e.not_before), (None, Some(1_700_000_000_123)));
        let e = e.delay(Duration::from_millis(5));
        assert_eq!((e.delay_ms, e.not_before), (Some(5), None));
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"id":"1","priority":0,"msg":1,"delay_ms":5}"#
        );
    }
}
