//! The canonical line of every command, the inverse of [`parse_line`].
//!
//! Canonical means: the short command word in lower case, one space
//! between words, every argument written (`sub t 1`, `peek t 10`),
//! durations in milliseconds, keywords in lower case, options in the order
//! of `docs/protocol.md` §12.1, and a `pub` event as
//! `{"id":…,"priority":…,<fields>}`. `parse_line` of the line gives the
//! command back, provided the command holds what `parse_line` could have
//! returned (valid names, values in range, ids without blanks).
//!
//! [`write_pub_line`] and [`write_ack_line`] are the borrowed fast paths
//! for the two commands clients send per event; [`Command::encode`] uses
//! them, so the round-trip property tests cover them.
//!
//! [`parse_line`]: super::parse_line

use super::{Command, NackAction, PeekTarget};
use crate::json::{write_json_str, write_u64};
use bytes::BufMut;
use std::fmt;

impl Command {
    /// Appends the canonical line, LF included, to `out`.
    ///
    /// ```
    /// use herald_proto::{Command, NackAction, parse_line};
    /// let nack = Command::Nack {
    ///     topic: "jobs".into(),
    ///     id: "7".into(),
    ///     action: NackAction::Delay(30_000),
    /// };
    /// let mut line = Vec::new();
    /// nack.encode(&mut line);
    /// assert_eq!(line, b"nack jobs 7 30000\n");
    /// assert_eq!(parse_line(&line[..line.len() - 1]), Ok(Some(nack)));
    /// ```
    pub fn encode(&self, out: &mut impl BufMut) {
        match self {
            Command::Pub { topic, event } => {
                // `fields` starts with a comma: the `msg` field at least.
                let mut json = Vec::with_capacity(event.id.len() + event.fields.len() + 32);
                json.put_slice(b"{\"id\":");
                write_json_str(&mut json, &event.id);
                json.put_slice(b",\"priority\":");
                write_u64(&mut json, u64::from(event.priority));
                json.put_slice(&event.fields);
                json.put_u8(b'}');
                write_pub_line(out, topic, &json);
                return;
            }
            Command::Ack { topic, id } => {
                write_ack_line(out, topic, id);
                return;
            }
            _ => {}
        }
        out.put_slice(self.verb().as_str().as_bytes());
        match self {
            Command::Pub { .. } | Command::Ack { .. } => {}
            Command::Sub {
                topic,
                prefetch,
                options,
            } => {
                word(out, topic);
                word(out, &prefetch.to_string());
                // The suffix starts with its own space.
                out.put_slice(options.to_string().as_bytes());
            }
            Command::Unsub { topic, group } => {
                word(out, topic);
                if let Some(group) = group {
                    word(out, &format!("group={group}"));
                }
            }
            Command::Nack { topic, id, action } => {
                word(out, topic);
                word(out, id);
                match action {
                    NackAction::Return => {}
                    NackAction::Delay(ms) => word(out, &ms.to_string()),
                    NackAction::Dead => word(out, "dead"),
                }
            }
            Command::Touch { topic, id, ms } => {
                word(out, topic);
                word(out, id);
                if let Some(ms) = ms {
                    word(out, &ms.to_string());
                }
            }
            Command::Peek { topic, n, target } => {
                word(out, topic);
                word(out, &n.to_string());
                match target {
                    PeekTarget::Own => {}
                    PeekTarget::Sub(name) => word(out, &format!("sub={name}")),
                    PeekTarget::Group(name) => word(out, &format!("group={name}")),
                }
            }
            Command::Name { name } => word(out, name),
            Command::Create { topic, ttl_ms } => {
                word(out, topic);
                if let Some(ttl) = ttl_ms {
                    word(out, &format!("ttl={ttl}"));
                }
            }
            Command::Stats { topic } => {
                if let Some(topic) = topic {
                    word(out, topic);
                }
            }
            Command::Replies { mode } => word(out, mode.as_str()),
            Command::Auth { user, password } => {
                word(out, user);
                word(out, password.as_str());
            }
            Command::Topics | Command::Cluster | Command::Ping | Command::Quit => {}
        }
        out.put_u8(b'\n');
    }

    /// The canonical line without its LF.
    ///
    /// An `auth` line holds the password in clear: log commands with
    /// `Debug`, which hides it.
    pub fn to_line(&self) -> String {
        let mut out = Vec::new();
        self.encode(&mut out);
        out.pop();
        // Every part written is UTF-8 (names, ids and the event come from
        // `String`s, the rest is ASCII), so this never replaces anything.
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The canonical line without its LF (see [`Command::to_line`]).
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_line())
    }
}

/// Appends a space and `w`.
fn word(out: &mut impl BufMut, w: &str) {
    out.put_u8(b' ');
    out.put_slice(w.as_bytes());
}

/// Appends `pub <topic> <json>` and an LF to `out`, with any CR or LF in
/// `json` turned into a space so that the event stays on one line (in
/// valid JSON they can only be whitespace between tokens).
///
/// This is the publishing fast path: the event is written as the caller
/// serialized it, not checked (the broker is the judge of events).
pub fn write_pub_line(out: &mut impl BufMut, topic: &str, json: &[u8]) {
    out.put_slice(b"pub ");
    out.put_slice(topic.as_bytes());
    out.put_u8(b' ');
    if memchr::memchr2(b'\r', b'\n', json).is_none() {
        out.put_slice(json);
    } else {
        for &b in json {
            out.put_u8(if matches!(b, b'\r' | b'\n') { b' ' } else { b });
        }
    }
    out.put_u8(b'\n');
}

/// Appends `ack <topic> <id>` and an LF to `out`: the acknowledging fast
/// path, without building a [`Command`].
pub fn write_ack_line(out: &mut impl BufMut, topic: &str, id: &str) {
    out.put_slice(b"ack ");
    out.put_slice(topic.as_bytes());
    out.put_u8(b' ');
    out.put_slice(id.as_bytes());
    out.put_u8(b'\n');
}
