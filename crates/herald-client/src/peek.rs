//! [`Peeked`]: one event of a `peek` reply (`docs/protocol.md` §12.7),
//! typed.
//!
//! The broker's JSON is read with `herald_proto::PeekEntry` (the type the
//! broker writes with); the `event` in it is a delivery line, read like any
//! delivery.

use crate::delivery::Delivery;
use crate::error::Result;
use herald_proto::{PeekEntry, PeekState};
use std::time::Duration;

/// An event of a subscription, as `peek` shows it.
#[derive(Debug, Clone)]
pub struct Peeked {
    /// In flight, queued (deliverable) or delayed.
    pub state: PeekState,
    /// The times the subscription has been sent it so far (0 if never).
    pub deliveries: u32,
    /// In flight with a `wait`: the time left before it is returned.
    pub deadline: Option<Duration>,
    /// Delayed: the time left before it is deliverable.
    pub due: Option<Duration>,
    /// The event as it would be delivered next (so
    /// [`Delivery::deliveries`] is one more than [`Peeked::deliveries`]).
    /// It is not bound to a connection: acknowledging it through
    /// [`Delivery::ack`] fails with [`crate::Error::Closed`]; use
    /// [`crate::Client::ack`] on a connection that holds it.
    pub event: Delivery,
}

impl Peeked {
    /// Reads one entry of the broker's reply.
    pub(crate) fn from_entry(entry: &PeekEntry) -> Result<Peeked> {
        Ok(Peeked {
            state: entry.state,
            deliveries: entry.deliveries,
            deadline: entry.deadline_ms.map(Duration::from_millis),
            due: entry.due_ms.map(Duration::from_millis),
            event: Delivery::parse(entry.event.get())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_as_the_broker_writes_them() {
        let json = concat!(
            r#"[{"state":"in_flight","deliveries":1,"deadline_ms":2500,"event":{"topic":"jobs","id":"7","priority":2,"msg":"m","timestamp":5,"redelivered":true,"deliveries":2}},"#,
            r#"{"state":"delayed","deliveries":0,"due_ms":100,"event":{"topic":"jobs","id":"8","priority":0,"msg":{"a":1},"timestamp":6}}]"#
        );
        let entries: Vec<PeekEntry> = serde_json::from_str(json).unwrap();
        let peeked: Vec<Peeked> = entries
            .iter()
            .map(Peeked::from_entry)
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(peeked[0].state, PeekState::InFlight);
        assert_eq!(peeked[0].deadline, Some(Duration::from_millis(2500)));
        assert_eq!((peeked[0].deliveries, peeked[0].event.deliveries()), (1, 2));
        assert_eq!(peeked[1].state, PeekState::Delayed);
        assert_eq!(peeked[1].due, Some(Duration::from_millis(100)));
        assert_eq!(peeked[1].event.id, "8");
        assert_eq!(peeked[1].event.msg["a"], 1);
        assert!(!peeked[1].event.redelivered());
    }
}
