//! The command words, before their arguments are looked at.
//!
//! [`Verb`] is what the server needs to decide things that come before the
//! shape of a command: before `auth` every command but `ping`, `quit` and
//! `auth` is answered `auth_required` whatever its arguments
//! (`docs/protocol.md` §15), a cluster follower serves only some commands
//! itself (§17), and `replies errors` silences only some replies (§11).
//! Those lists are protocol facts, so they live here beside the words.

use crate::words::first_word;
use std::fmt;

/// A command word. Every spelling of a word (short, long, any ASCII case)
/// maps to the same verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// `pub` / `PUBLISH`
    Pub,
    /// `sub` / `SUBSCRIBE`
    Sub,
    /// `unsub` / `UNSUBSCRIBE`
    Unsub,
    /// `ack` / `ACKNOWLEDGE`
    Ack,
    /// `nack`
    Nack,
    /// `touch`
    Touch,
    /// `peek`
    Peek,
    /// `name`
    Name,
    /// `create`
    Create,
    /// `topics`
    Topics,
    /// `stats`
    Stats,
    /// `replies`
    Replies,
    /// `auth`
    Auth,
    /// `cluster`
    Cluster,
    /// `ping`
    Ping,
    /// `quit`
    Quit,
}

/// What a command needs the user to be allowed on its topic
/// (`docs/protocol.md` §15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// `pub` and `create`.
    Publish,
    /// `sub`, `unsub`, `ack`, `nack`, `touch` and `peek`.
    Subscribe,
}

impl Verb {
    /// Every verb, for exhaustive tests.
    pub const ALL: [Verb; 16] = [
        Verb::Pub,
        Verb::Sub,
        Verb::Unsub,
        Verb::Ack,
        Verb::Nack,
        Verb::Touch,
        Verb::Peek,
        Verb::Name,
        Verb::Create,
        Verb::Topics,
        Verb::Stats,
        Verb::Replies,
        Verb::Auth,
        Verb::Cluster,
        Verb::Ping,
        Verb::Quit,
    ];

    /// The verb of a word, in any of its spellings and any ASCII case.
    pub fn from_word(word: &str) -> Option<Verb> {
        Verb::from_bytes(word.as_bytes())
    }

    /// The verb of a line's first word, without parsing (or even checking
    /// the UTF-8 of) the rest of the line. `None` for a blank line or a
    /// word that is not a command.
    ///
    /// ```
    /// use herald_proto::Verb;
    /// assert_eq!(Verb::of_line(b"  SUB bad/topic 0 x=\xff"), Some(Verb::Sub));
    /// assert_eq!(Verb::of_line(b"hello"), None);
    /// assert_eq!(Verb::of_line(b" \t"), None);
    /// ```
    pub fn of_line(line: &[u8]) -> Option<Verb> {
        Verb::from_bytes(first_word(line)?)
    }

    /// Every spelling, short and long, ignoring ASCII case. One `match` on
    /// the lower-cased word rather than a scan of a table: this runs for
    /// every line, and the compiler turns it into a few comparisons.
    fn from_bytes(word: &[u8]) -> Option<Verb> {
        // The longest spellings, `unsubscribe` and `acknowledge`, have 11 bytes.
        let mut lower = [0u8; 11];
        let lower = lower.get_mut(..word.len())?;
        for (l, b) in lower.iter_mut().zip(word) {
            *l = b.to_ascii_lowercase();
        }
        Some(match &*lower {
            b"pub" | b"publish" => Verb::Pub,
            b"sub" | b"subscribe" => Verb::Sub,
            b"unsub" | b"unsubscribe" => Verb::Unsub,
            b"ack" | b"acknowledge" => Verb::Ack,
            b"nack" => Verb::Nack,
            b"touch" => Verb::Touch,
            b"peek" => Verb::Peek,
            b"name" => Verb::Name,
            b"create" => Verb::Create,
            b"topics" => Verb::Topics,
            b"stats" => Verb::Stats,
            b"replies" => Verb::Replies,
            b"auth" => Verb::Auth,
            b"cluster" => Verb::Cluster,
            b"ping" => Verb::Ping,
            b"quit" => Verb::Quit,
            _ => return None,
        })
    }

    /// The short, lower-case word, as canonical command lines spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Pub => "pub",
            Verb::Sub => "sub",
            Verb::Unsub => "unsub",
            Verb::Ack => "ack",
            Verb::Nack => "nack",
            Verb::Touch => "touch",
            Verb::Peek => "peek",
            Verb::Name => "name",
            Verb::Create => "create",
            Verb::Topics => "topics",
            Verb::Stats => "stats",
            Verb::Replies => "replies",
            Verb::Auth => "auth",
            Verb::Cluster => "cluster",
            Verb::Ping => "ping",
            Verb::Quit => "quit",
        }
    }

    /// The usage text sent with `bad_args` when the arguments do not fit.
    pub fn usage(self) -> &'static str {
        match self {
            Verb::Pub => "usage: pub <topic> <event-json>",
            // The version 1 text, which tests and people already know; the
            // options are named in the errors about them.
            Verb::Sub => "usage: sub <topic> [prefetch]",
            Verb::Unsub => "usage: unsub <topic> [group=<name>]",
            Verb::Ack => "usage: ack <topic> <id>",
            Verb::Nack => "usage: nack <topic> <id> [<duration>|dead]",
            Verb::Touch => "usage: touch <topic> <id> [<duration>]",
            Verb::Peek => "usage: peek <topic> [n] [sub=<name>|group=<name>]",
            Verb::Name => "usage: name <client-name>",
            Verb::Create => "usage: create <topic> [ttl=<duration>]",
            Verb::Topics => "usage: topics",
            Verb::Stats => "usage: stats [<topic>]",
            Verb::Replies => "usage: replies all|errors",
            Verb::Auth => "usage: auth <user> <password>",
            Verb::Cluster => "usage: cluster",
            Verb::Ping => "usage: ping",
            Verb::Quit => "usage: quit",
        }
    }

    /// Whether a connection that has not authenticated may use it: `ping`,
    /// `quit` and `auth` (`docs/protocol.md` §15). Every other line gets
    /// `-ERR auth_required` whatever its shape.
    pub fn allowed_before_auth(self) -> bool {
        matches!(self, Verb::Ping | Verb::Quit | Verb::Auth)
    }

    /// The permission its topic needs when users are configured
    /// (`docs/protocol.md` §15); `None` for commands that need none.
    pub fn permission(self) -> Option<Permission> {
        match self {
            Verb::Pub | Verb::Create => Some(Permission::Publish),
            Verb::Sub | Verb::Unsub | Verb::Ack | Verb::Nack | Verb::Touch | Verb::Peek => {
                Some(Permission::Subscribe)
            }
            _ => None,
        }
    }

    /// Whether its `+OK` reply is left out in `replies errors` mode: `pub`,
    /// `ack`, `nack` and `touch` (`docs/protocol.md` §11). Errors are
    /// always sent.
    pub fn silent_in_errors_mode(self) -> bool {
        matches!(self, Verb::Pub | Verb::Ack | Verb::Nack | Verb::Touch)
    }

    /// Whether a cluster node that is not the leader serves it itself
    /// (`docs/protocol.md` §17); every other command is answered
    /// `-ERR not_leader <leader>` there.
    pub fn served_by_follower(self) -> bool {
        matches!(
            self,
            Verb::Ping
                | Verb::Quit
                | Verb::Auth
                | Verb::Replies
                | Verb::Topics
                | Verb::Stats
                | Verb::Cluster
        )
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_is_found_by_its_word_in_any_case() {
        for verb in Verb::ALL {
            assert_eq!(Verb::from_word(verb.as_str()), Some(verb));
            assert_eq!(
                Verb::from_word(&verb.as_str().to_ascii_uppercase()),
                Some(verb)
            );
            assert!(verb.usage().starts_with(&format!("usage: {verb}")));
        }
        assert_eq!(Verb::from_word("Acknowledge"), Some(Verb::Ack));
        assert_eq!(Verb::from_word("UNSUBSCRIBE"), Some(Verb::Unsub));
        assert_eq!(Verb::from_word("nacks"), None);
        assert_eq!(Verb::from_word("PUBLISH"), Some(Verb::Pub));
        assert_eq!(Verb::from_word("subScribe"), Some(Verb::Sub));
        assert_eq!(Verb::from_word("acknowledges"), None);
        assert_eq!(Verb::from_word(""), None);
        assert_eq!(Verb::from_word("pubé"), None);
    }

    #[test]
    fn of_line_reads_only_the_first_word() {
        assert_eq!(Verb::of_line(b"\tpublish \xff\xfe"), Some(Verb::Pub));
        assert_eq!(Verb::of_line(b"auth"), Some(Verb::Auth));
        assert_eq!(Verb::of_line(b"\xffping"), None);
        assert_eq!(Verb::of_line(b""), None);
    }

    #[test]
    fn the_lists_of_the_contract() {
        let before_auth: Vec<_> = Verb::ALL
            .into_iter()
            .filter(|v| v.allowed_before_auth())
            .collect();
        assert_eq!(before_auth, [Verb::Auth, Verb::Ping, Verb::Quit]);
        let silent: Vec<_> = Verb::ALL
            .into_iter()
            .filter(|v| v.silent_in_errors_mode())
            .collect();
        assert_eq!(silent, [Verb::Pub, Verb::Ack, Verb::Nack, Verb::Touch]);
        let follower: Vec<_> = Verb::ALL
            .into_iter()
            .filter(|v| v.served_by_follower())
            .collect();
        assert_eq!(
            follower,
            [
                Verb::Topics,
                Verb::Stats,
                Verb::Replies,
                Verb::Auth,
                Verb::Cluster,
                Verb::Ping,
                Verb::Quit
            ]
        );
        assert_eq!(Verb::Create.permission(), Some(Permission::Publish));
        assert_eq!(Verb::Peek.permission(), Some(Permission::Subscribe));
        assert_eq!(Verb::Name.permission(), None);
        assert_eq!(Verb::Stats.permission(), None);
    }
}
