//! [`SubscribeOptions`]: what a `sub` asks for, as a builder.
//!
//! The builder holds a prefetch and a `herald_proto::SubOptions` (the same
//! type the broker parses a `sub` into, which writes the `key=value` words
//! of the command line), so the option names, ranges and spellings live in
//! one place. Setters do not fail; [`SubscribeOptions::check`] (called by
//! [`crate::Client::subscribe_with`] before anything is sent) reads the
//! options back with the broker's own rules and refuses what the broker
//! would refuse.

use crate::error::{Error, Result};
use crate::event::millis_ceil;
use herald_proto::{DeadTarget, ErrorCode, Overflow, SubOptions};
use std::time::Duration;

/// How to subscribe: prefetch and the options of `docs/protocol.md` §12.1.
///
/// ```
/// use herald_client::SubscribeOptions;
/// use std::time::Duration;
///
/// let options = SubscribeOptions::new()
///     .prefetch(10)
///     .group("workers")
///     .wait(Duration::from_secs(30))
///     .backoff([Duration::from_secs(1), Duration::from_secs(5)])
///     .max_deliveries(5)
///     .dead("jobs.failed");
/// assert_eq!(
///     options.to_string(),
///     "10 group=workers wait=30000 backoff=1000,5000 max_deliveries=5 dead=jobs.failed"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOptions {
    prefetch: u16,
    options: SubOptions,
}

impl Default for SubscribeOptions {
    fn default() -> SubscribeOptions {
        SubscribeOptions::new()
    }
}

impl SubscribeOptions {
    /// Prefetch 1 and no option: a plain `sub <topic>`.
    pub fn new() -> SubscribeOptions {
        SubscribeOptions {
            prefetch: herald_proto::command::DEFAULT_PREFETCH,
            options: SubOptions::default(),
        }
    }

    /// Most deliveries held unacknowledged at once (1 to 65535; default 1).
    /// In a group, per member.
    pub fn prefetch(mut self, prefetch: u16) -> SubscribeOptions {
        self.prefetch = prefetch;
        self
    }

    /// Joins the competing-consumer group `name` (§12.2): one queue shared
    /// by every member, each event delivered to one of them. A group keeps
    /// its queue while no member is connected, and across restarts.
    pub fn group(mut self, name: impl Into<String>) -> SubscribeOptions {
        self.options.group = Some(name.into());
        self
    }

    /// Ack deadline (§12.3; 1 ms to 30 days, rounded up to a whole ms): a
    /// delivery not acknowledged (or touched) within `wait` goes back to
    /// the queue and is delivered again, to this or another member.
    pub fn wait(mut self, wait: Duration) -> SubscribeOptions {
        self.options.wait_ms = Some(millis_ceil(wait));
        self
    }

    /// How long a returned event waits before it is delivered again, by
    /// return number (the last step repeats; each 0 to 30 days). Needs at
    /// least one step.
    pub fn backoff(mut self, steps: impl IntoIterator<Item = Duration>) -> SubscribeOptions {
        self.options.backoff_ms = Some(steps.into_iter().map(millis_ceil).collect());
        self
    }

    /// Dead-letters an event instead of delivering it a `n`+1-th time
    /// (§12.6; 1 to 1000).
    pub fn max_deliveries(mut self, n: u16) -> SubscribeOptions {
        self.options.max_deliveries = Some(n);
        self
    }

    /// Where dead letters go (default `<topic>.dead`). A dead topic is an
    /// ordinary topic: subscribe a group or a durable subscriber to it
    /// first, or its dead letters reach nobody.
    pub fn dead(mut self, topic: impl Into<String>) -> SubscribeOptions {
        self.options.dead = Some(DeadTarget::Topic(topic.into()));
        self
    }

    /// `dead=none`: dead letters are dropped (and counted in `stats` as
    /// `dead_dropped`).
    pub fn drop_dead_letters(mut self) -> SubscribeOptions {
        self.options.dead = Some(DeadTarget::None);
        self
    }

    /// Priority aging (§13.3; 1 ms to 30 days): deliverable events go by
    /// `ready - priority × age`, so a low-priority event that has waited
    /// long enough goes before a fresh high-priority one.
    pub fn age(mut self, age: Duration) -> SubscribeOptions {
        self.options.age_ms = Some(millis_ceil(age));
        self
    }

    /// Most events the subscription holds, queued, in flight and delayed
    /// (§13.4; 1 to 2^31).
    pub fn limit(mut self, events: u32) -> SubscribeOptions {
        self.options.limit = Some(events);
        self
    }

    /// Most bytes of `msg` the subscription holds (§13.4; 1 to 2^40).
    pub fn limit_bytes(mut self, bytes: u64) -> SubscribeOptions {
        self.options.limit_bytes = Some(bytes);
        self
    }

    /// What a full subscription does (§13.4): refuse the publish
    /// ([`Overflow::Reject`], the default: [`Error::Full`] for the
    /// publisher) or evict its lowest queued event ([`Overflow::Drop`]).
    pub fn overflow(mut self, overflow: Overflow) -> SubscribeOptions {
        self.options.overflow = Some(overflow);
        self
    }

    /// The prefetch asked for.
    pub fn prefetch_value(&self) -> u16 {
        self.prefetch
    }

    /// The options asked for, as the wire type.
    pub fn sub_options(&self) -> &SubOptions {
        &self.options
    }

    /// The group asked for, if any.
    pub fn group_name(&self) -> Option<&str> {
        self.options.group.as_deref()
    }

    /// Checks every value with the broker's rules, so that a bad value is
    /// refused here, before anything is sent.
    ///
    /// # Errors
    /// [`Error::Invalid`] with `bad_args` (the broker's code for a bad
    /// option), saying which value is wrong.
    pub fn check(&self) -> Result<()> {
        if self.prefetch == 0 {
            return Err(Error::invalid(
                ErrorCode::BadArgs,
                "prefetch must be 1 to 65535",
            ));
        }
        // Reading the options' own words back applies every range and name
        // rule of the parser the broker uses.
        let text = self.options.to_text();
        match SubOptions::from_text(&text) {
            Ok(read) if read == self.options => Ok(()),
            Ok(_) => Err(Error::invalid(
                ErrorCode::BadArgs,
                "a topic named 'none' cannot be a dead topic (dead=none drops dead letters)",
            )),
            Err(message) => Err(Error::invalid(ErrorCode::BadArgs, message)),
        }
    }
}

/// The arguments after the topic on the `sub` line: the prefetch, then the
/// options (`10 group=workers wait=30000`).
impl std::fmt::Display for SubscribeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.prefetch, self.options)
    }
}

impl From<u16> for SubscribeOptions {
    /// Just a prefetch.
    fn from(prefetch: u16) -> SubscribeOptions {
        SubscribeOptions::new().prefetch(prefetch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setter_writes_its_option() {
        let o = SubscribeOptions::new()
            .overflow(Overflow::Drop)
            .limit_bytes(1 << 20)
            .limit(100)
            .age(Duration::from_secs(1))
            .drop_dead_letters()
            .max_deliveries(3)
            .backoff([Duration::ZERO, Duration::from_millis(1500)])
            .wait(Duration::from_secs(30))
            .group("w");
        assert!(o.check().is_ok());
        assert_eq!(
            o.to_string(),
            "1 group=w wait=30000 backoff=0,1500 max_deliveries=3 dead=none age=1000 \
             limit=100 limit_bytes=1048576 overflow=drop"
        );
        assert_eq!(o.group_name(), Some("w"));
        assert_eq!(SubscribeOptions::from(7).to_string(), "7");
    }

    #[test]
    fn what_the_broker_would_refuse_is_refused_before_sending() {
        let refused = [
            SubscribeOptions::new().prefetch(0),
            SubscribeOptions::new().wait(Duration::ZERO),
            SubscribeOptions::new().wait(Duration::from_secs(31 * 24 * 3600)),
            SubscribeOptions::new().backoff([]),
            SubscribeOptions::new().max_deliveries(0),
            SubscribeOptions::new().max_deliveries(1001),
            SubscribeOptions::new().group("a b"),
            SubscribeOptions::new().group(""),
            SubscribeOptions::new().dead(".x"),
            SubscribeOptions::new().dead("None"),
            SubscribeOptions::new().limit(0),
            SubscribeOptions::new().limit_bytes((1 << 40) + 1),
        ];
        for o in refused {
            let err = o.check().unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Invalid {
                        code: ErrorCode::BadArgs,
                        ..
                    }
                ),
                "{o}: {err:?}"
            );
        }
        // Sub-millisecond durations round up instead of becoming 0.
        assert!(
            SubscribeOptions::new()
                .wait(Duration::from_micros(10))
                .check()
                .is_ok()
        );
    }
}
