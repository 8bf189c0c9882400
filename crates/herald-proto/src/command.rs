//! Parsing one line into a [`Command`].
//!
//! This module owns the command grammar of PROTOCOL.md §1, §4 and §8: how a
//! line splits into words, the command words and their long forms, argument
//! counts, and which error wins when several apply (§2: the shape of the
//! command, then the topic, then the event). It knows nothing of broker
//! state: whether a topic exists or a name is taken is `herald-core`'s call.
//!
//! Invariants: a returned [`Command`] holds only valid topic and client names
//! and a validated event; no input makes the parser panic, and an error never
//! quotes more than a short prefix of what the client sent.

use std::borrow::Cow;

use crate::event::EventInput;
use crate::name;
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
    let line = std::str::from_utf8(line).map_err(|_| ParseError::BadRequest)?;
    let mut words = Words(line);
    let Some(word) = words.next() else {
        return Ok(None);
    };
    let Some(verb) = Verb::from_word(word) else {
        return Err(ParseError::UnknownCommand(quotable(word).to_string()));
    };
    let usage = verb.usage();
    let command = match verb {
        Verb::Pub => {
            let (Some(topic), event) = (words.next(), words.rest()) else {
                return Err(bad_args(usage));
            };
            if event.is_empty() {
                return Err(bad_args(usage));
            }
            let topic = topic_name(topic)?;
            let event = EventInput::parse(event).map_err(ParseError::BadEvent)?;
            Command::Pub { topic, event }
        }
        Verb::Sub => {
            let [topic, prefetch] = words.up_to::<2>(1, usage)?;
            let prefetch = match prefetch {
                None => DEFAULT_PREFETCH,
                Some(p) => parse_prefetch(p)?,
            };
            Command::Sub {
                // `up_to` with a minimum of 1 made `topic` a `Some`.
                topic: topic_name(topic.unwrap_or_default())?,
                prefetch,
            }
        }
        Verb::Unsub => {
            let [topic] = words.exactly(usage)?;
            Command::Unsub {
                topic: topic_name(topic)?,
            }
        }
        Verb::Ack => {
            let [topic, id] = words.exactly(usage)?;
            Command::Ack {
                topic: topic_name(topic)?,
                id: id.to_string(),
            }
        }
        Verb::Name => {
            let [name] = words.exactly(usage)?;
            if !name::is_valid(name) {
                return Err(ParseError::BadArgs(format!(
                    "invalid client name '{}': {NAME_RULES}",
                    quotable(name)
                )));
            }
            Command::Name {
                name: name.to_string(),
            }
        }
        Verb::Create => {
            let [topic] = words.exactly(usage)?;
            Command::Create {
                topic: topic_name(topic)?,
            }
        }
        Verb::Topics => {
            words.exactly::<0>(usage)?;
            Command::Topics
        }
        Verb::Stats => {
            let [topic] = words.up_to::<1>(0, usage)?;
            Command::Stats {
                topic: topic.map(topic_name).transpose()?,
            }
        }
        Verb::Ping => {
            words.exactly::<0>(usage)?;
            Command::Ping
        }
        Verb::Quit => {
            words.exactly::<0>(usage)?;
            Command::Quit
        }
    };
    Ok(Some(command))
}

/// Prefetch when `sub` does not give one: one event in flight, as in the seed.
const DEFAULT_PREFETCH: u16 = 1;

/// Longest client-sent word quoted back in an error, in bytes.
const MAX_QUOTED_BYTES: usize = 64;

const NAME_RULES: &str = "use 1 to 128 of A-Z a-z 0-9 _ - . not starting with '.'";

/// The command words, before their arguments are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Pub,
    Sub,
    Unsub,
    Ack,
    Name,
    Create,
    Topics,
    Stats,
    Ping,
    Quit,
}

impl Verb {
    /// Every spelling, short and long; matched ignoring ASCII case.
    const WORDS: [(&'static str, Verb); 14] = [
        ("pub", Verb::Pub),
        ("sub", Verb::Sub),
        ("ack", Verb::Ack),
        ("unsub", Verb::Unsub),
        ("publish", Verb::Pub),
        ("subscribe", Verb::Sub),
        ("unsubscribe", Verb::Unsub),
        ("acknowledge", Verb::Ack),
        ("name", Verb::Name),
        ("create", Verb::Create),
        ("topics", Verb::Topics),
        ("stats", Verb::Stats),
        ("ping", Verb::Ping),
        ("quit", Verb::Quit),
    ];

    fn from_word(word: &str) -> Option<Verb> {
        Verb::WORDS
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))
            .map(|&(_, verb)| verb)
    }

    fn usage(self) -> &'static str {
        match self {
            Verb::Pub => "usage: pub <topic> <event-json>",
            Verb::Sub => "usage: sub <topic> [prefetch]",
            Verb::Unsub => "usage: unsub <topic>",
            Verb::Ack => "usage: ack <topic> <id>",
            Verb::Name => "usage: name <client-name>",
            Verb::Create => "usage: create <topic>",
            Verb::Topics => "usage: topics",
            Verb::Stats => "usage: stats [<topic>]",
            Verb::Ping => "usage: ping",
            Verb::Quit => "usage: quit",
        }
    }
}

/// The words of a line, separated by runs of spaces and tabs.
struct Words<'a>(&'a str);

impl<'a> Words<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.0.as_bytes();
        let Some(start) = bytes.iter().position(|&b| !is_separator(b)) else {
            self.0 = "";
            return None;
        };
        let end = bytes[start..]
            .iter()
            .position(|&b| is_separator(b))
            .map_or(bytes.len(), |len| start + len);
        // Both ends are at an ASCII byte or the end, so on char boundaries.
        let word = &self.0[start..end];
        self.0 = &self.0[end..];
        Some(word)
    }

    /// Everything after the words taken so far, without surrounding blanks.
    fn rest(&self) -> &'a str {
        self.0.trim_matches([' ', '\t'])
    }

    /// Exactly `N` more words, or `bad_args` with `usage`.
    fn exactly<const N: usize>(&mut self, usage: &str) -> Result<[&'a str; N], ParseError> {
        let mut out = [""; N];
        for slot in &mut out {
            *slot = self.next().ok_or_else(|| bad_args(usage))?;
        }
        self.end(usage)?;
        Ok(out)
    }

    /// At least `min` and at most `N` more words, or `bad_args` with `usage`.
    fn up_to<const N: usize>(
        &mut self,
        min: usize,
        usage: &str,
    ) -> Result<[Option<&'a str>; N], ParseError> {
        let mut out = [None; N];
        for slot in &mut out {
            *slot = self.next();
        }
        if out.iter().take(min).any(Option::is_none) {
            return Err(bad_args(usage));
        }
        self.end(usage)?;
        Ok(out)
    }

    fn end(&mut self, usage: &str) -> Result<(), ParseError> {
        match self.next() {
            Some(_) => Err(bad_args(usage)),
            None => Ok(()),
        }
    }
}

fn is_separator(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn bad_args(usage: &str) -> ParseError {
    ParseError::BadArgs(usage.to_string())
}

fn topic_name(topic: &str) -> Result<String, ParseError> {
    if name::is_valid(topic) {
        Ok(topic.to_string())
    } else {
        Err(ParseError::BadTopic(quotable(topic).to_string()))
    }
}

fn parse_prefetch(word: &str) -> Result<u16, ParseError> {
    // Digits first: `u16::from_str` would also take a leading `+`.
    let value = if word.bytes().all(|b| b.is_ascii_digit()) {
        word.parse::<u16>().ok()
    } else {
        None
    };
    match value {
        Some(n) if n >= 1 => Ok(n),
        _ => Err(ParseError::BadArgs(
            "prefetch must be an integer from 1 to 65535".to_string(),
        )),
    }
}

/// `word`, cut to a prefix short enough to quote back in a reply, so that a
/// megabyte-long bad word does not come back as a megabyte-long error.
fn quotable(word: &str) -> Cow<'_, str> {
    if word.len() <= MAX_QUOTED_BYTES {
        return Cow::Borrowed(word);
    }
    let mut end = MAX_QUOTED_BYTES;
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}...", &word[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(line: &str) -> Result<Option<Command>, ParseError> {
        parse_line(line.as_bytes())
    }

    fn ok(line: &str) -> Command {
        match parse(line) {
            Ok(Some(command)) => command,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn code(line: &str) -> ErrorCode {
        match parse(line) {
            Err(e) => e.code(),
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn event(json: &str) -> EventInput {
        EventInput::parse(json).unwrap()
    }

    #[test]
    fn empty_and_blank_lines_are_ignored() {
        for line in ["", " ", "\t", " \t  \t"] {
            assert_eq!(parse(line), Ok(None), "{line:?}");
        }
    }

    #[test]
    fn invalid_utf8_is_bad_request_before_anything_else() {
        assert_eq!(parse_line(b"pub t \xff"), Err(ParseError::BadRequest));
        assert_eq!(parse_line(b"\xc3"), Err(ParseError::BadRequest));
        assert_eq!(ParseError::BadRequest.code(), ErrorCode::BadRequest);
    }

    #[test]
    fn pub_takes_the_rest_of_the_line_as_the_event() {
        let json = "{\"id\":\"1\", \"msg\":\"a  b\\tc\",\t\"priority\":3}";
        let expected = Command::Pub {
            topic: "tweets".into(),
            event: event(json),
        };
        assert_eq!(ok(&format!("pub tweets {json}")), expected);
        assert_eq!(ok(&format!(" \tPUBLISH\t tweets  \t{json} \t")), expected);
    }

    #[test]
    fn pub_event_keeps_its_inner_spacing() {
        let Command::Pub { event, .. } = ok(r#"pub t {"id":1,"msg":[1,  2],"x": "a b"}"#) else {
            panic!("not a pub");
        };
        assert!(event.fields.ends_with(br#","msg":[1,  2],"x":"a b""#));
    }

    #[test]
    fn sub_with_and_without_prefetch() {
        let sub = |prefetch| Command::Sub {
            topic: "tweets".into(),
            prefetch,
        };
        assert_eq!(ok("sub tweets"), sub(1));
        assert_eq!(ok("SUBSCRIBE tweets 10"), sub(10));
        assert_eq!(ok("sub tweets 65535"), sub(65535));
        assert_eq!(ok("sub tweets 0001"), sub(1));
    }

    #[test]
    fn bad_prefetch_is_bad_args() {
        for p in ["0", "65536", "-1", "+1", "1.0", "x", "99999999999999999999"] {
            assert_eq!(
                parse(&format!("sub tweets {p}")),
                Err(ParseError::BadArgs(
                    "prefetch must be an integer from 1 to 65535".into()
                )),
                "prefetch {p}"
            );
        }
    }

    #[test]
    fn unsub_ack_name_create() {
        let topic = || "tweets".to_string();
        assert_eq!(ok("unsub tweets"), Command::Unsub { topic: topic() });
        assert_eq!(ok("Unsubscribe tweets"), Command::Unsub { topic: topic() });
        let ack = Command::Ack {
            topic: topic(),
            id: "a\"b{}".into(),
        };
        assert_eq!(ok("ack tweets a\"b{}"), ack);
        assert_eq!(ok("ACKNOWLEDGE tweets a\"b{}"), ack);
        assert_eq!(
            ok("name bob-1"),
            Command::Name {
                name: "bob-1".into()
            }
        );
        assert_eq!(
            ok("NAME bob-1"),
            Command::Name {
                name: "bob-1".into()
            }
        );
        assert_eq!(ok("create tweets"), Command::Create { topic: topic() });
        assert_eq!(ok("CREATE tweets"), Command::Create { topic: topic() });
    }

    #[test]
    fn commands_without_arguments() {
        assert_eq!(ok("topics"), Command::Topics);
        assert_eq!(ok("Topics"), Command::Topics);
        assert_eq!(ok("ping"), Command::Ping);
        assert_eq!(ok("PING"), Command::Ping);
        assert_eq!(ok("quit"), Command::Quit);
        assert_eq!(ok(" Quit\t"), Command::Quit);
        assert_eq!(ok("stats"), Command::Stats { topic: None });
        assert_eq!(
            ok("STATS tweets"),
            Command::Stats {
                topic: Some("tweets".into())
            }
        );
    }

    #[test]
    fn command_word_is_case_insensitive_but_names_are_not() {
        assert_eq!(
            ok("pUbLiSh T.x {\"id\":\"I\",\"msg\":1}"),
            ok("pub T.x {\"id\":\"I\",\"msg\":1}")
        );
        assert_eq!(
            ok("sUb Tweets"),
            Command::Sub {
                topic: "Tweets".into(),
                prefetch: 1
            }
        );
        assert_ne!(ok("sub Tweets"), ok("sub tweets"));
    }

    #[test]
    fn unknown_word_is_unknown_command() {
        assert_eq!(
            parse("hello"),
            Err(ParseError::UnknownCommand("hello".into()))
        );
        assert_eq!(
            parse("pubx t"),
            Err(ParseError::UnknownCommand("pubx".into()))
        );
        assert_eq!(
            parse("{\"id\":1}"),
            Err(ParseError::UnknownCommand("{\"id\":1}".into()))
        );
        // Unknown wins over everything about the arguments.
        assert_eq!(code("nope bad/topic 0 x"), ErrorCode::UnknownCommand);
    }

    #[test]
    fn long_words_are_quoted_short() {
        let word = "é".repeat(1000);
        let Err(ParseError::UnknownCommand(quoted)) = parse(&word) else {
            panic!("expected unknown_command");
        };
        assert!(quoted.len() <= MAX_QUOTED_BYTES + 3);
        assert!(quoted.ends_with("..."));
        let Err(ParseError::BadTopic(quoted)) = parse(&format!("sub {word}")) else {
            panic!("expected bad_topic");
        };
        assert!(quoted.len() <= MAX_QUOTED_BYTES + 3);
    }

    #[test]
    fn missing_or_extra_arguments_are_bad_args() {
        for line in [
            "pub",
            "pub tweets",
            "pub tweets   \t",
            "sub",
            "sub tweets 1 2",
            "unsub",
            "unsub tweets x",
            "ack",
            "ack tweets",
            "ack tweets 1 2",
            "name",
            "name a b",
            "create",
            "create a b",
            "topics x",
            "stats a b",
            "ping x",
            "quit now",
        ] {
            assert_eq!(code(line), ErrorCode::BadArgs, "{line:?}");
        }
    }

    #[test]
    fn usage_text_names_the_command() {
        assert_eq!(
            parse("sub"),
            Err(ParseError::BadArgs("usage: sub <topic> [prefetch]".into()))
        );
        assert_eq!(
            parse("SUBSCRIBE").unwrap_err().to_reply().to_line(),
            "-ERR bad_args usage: sub <topic> [prefetch]"
        );
    }

    #[test]
    fn bad_client_name_is_bad_args_not_bad_topic() {
        for name in [".x", "a/b", "é", &"n".repeat(129)] {
            assert_eq!(code(&format!("name {name}")), ErrorCode::BadArgs, "{name}");
        }
    }

    #[test]
    fn bad_topic_names_are_bad_topic() {
        for line in [
            "pub .x {\"id\":1,\"msg\":1}",
            "sub a/b",
            "sub a/b 5",
            "unsub a*b",
            "ack é 1",
            "create .hidden",
            "stats a:b",
        ] {
            assert_eq!(code(line), ErrorCode::BadTopic, "{line:?}");
        }
        assert_eq!(parse("sub a/b"), Err(ParseError::BadTopic("a/b".into())));
    }

    #[test]
    fn bad_events_are_bad_event() {
        for line in [
            "pub t notjson",
            "pub t []",
            "pub t {\"msg\":1}",
            "pub t {\"id\":\"1\",\"msg\":1} extra",
            "pub t {\"id\":\"1\",\"msg\":1,\"topic\":\"x\"}",
            "pub t {\"id\":\"1\",\"priority\":256,\"msg\":1}",
        ] {
            assert_eq!(code(line), ErrorCode::BadEvent, "{line:?}");
        }
        assert_eq!(
            parse("pub t {\"msg\":1}"),
            Err(ParseError::BadEvent("missing field 'id'".into()))
        );
    }

    #[test]
    fn shape_beats_topic_beats_event() {
        // A bad prefetch or an extra argument beats a bad topic.
        assert_eq!(code("sub bad/topic 0"), ErrorCode::BadArgs);
        assert_eq!(code("sub bad/topic 1 2"), ErrorCode::BadArgs);
        assert_eq!(code("ack bad/topic"), ErrorCode::BadArgs);
        assert_eq!(code("stats bad/topic x"), ErrorCode::BadArgs);
        // A missing event beats a bad topic.
        assert_eq!(code("pub bad/topic"), ErrorCode::BadArgs);
        // A bad topic beats a bad event.
        assert_eq!(code("pub bad/topic notjson"), ErrorCode::BadTopic);
    }

    #[test]
    fn every_parse_error_maps_to_its_wire_code() {
        let cases = [
            (ParseError::UnknownCommand("x".into()), "unknown_command"),
            (ParseError::BadArgs("x".into()), "bad_args"),
            (ParseError::BadTopic("x".into()), "bad_topic"),
            (ParseError::BadEvent("x".into()), "bad_event"),
            (ParseError::BadRequest, "bad_request"),
            (ParseError::LineTooLong, "line_too_long"),
        ];
        for (error, wire) in cases {
            assert_eq!(error.code().as_str(), wire);
            assert!(
                error
                    .to_reply()
                    .to_line()
                    .starts_with(&format!("-ERR {wire} "))
            );
        }
    }

    /// A command and one way a client may type it.
    fn typed_command() -> impl Strategy<Value = (Command, String)> {
        let topic = "[A-Za-z0-9_-][A-Za-z0-9_.-]{0,20}";
        let ws = "[ \t]{1,3}";
        let word = |short: &'static str, long: &'static str| {
            (
                prop_oneof![Just(short), Just(long)],
                prop::collection::vec(any::<bool>(), 11),
            )
                .prop_map(|(w, upper)| {
                    w.chars()
                        .zip(upper)
                        .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
                        .collect::<String>()
                })
        };
        prop_oneof![
            (
                word("pub", "publish"),
                topic,
                ws,
                "[!-~]{1,20}",
                prop::option::of(0u8..=255),
                "[ -~]{0,30}"
            )
                .prop_map(|(w, t, s, id, p, msg)| {
                    let mut json = serde_json::json!({"id": id, "msg": msg});
                    if let Some(p) = p {
                        json["priority"] = p.into();
                    }
                    let json = json.to_string();
                    let event = EventInput::parse(&json).unwrap();
                    (
                        Command::Pub {
                            topic: t.clone(),
                            event,
                        },
                        format!("{w}{s}{t}{s}{json}"),
                    )
                }),
            (
                word("sub", "subscribe"),
                topic,
                ws,
                prop::option::of(1u16..)
            )
                .prop_map(|(w, t, s, p)| {
                    let line = match p {
                        Some(p) => format!("{s}{w}{s}{t}{s}{p}{s}"),
                        None => format!("{w}{s}{t}"),
                    };
                    (
                        Command::Sub {
                            topic: t,
                            prefetch: p.unwrap_or(1),
                        },
                        line,
                    )
                }),
            (word("unsub", "unsubscribe"), topic, ws)
                .prop_map(|(w, t, s)| (Command::Unsub { topic: t.clone() }, format!("{w}{s}{t}"))),
            (word("ack", "acknowledge"), topic, ws, "[!-~]{1,20}").prop_map(|(w, t, s, id)| (
                Command::Ack {
                    topic: t.clone(),
                    id: id.clone()
                },
                format!("{w}{s}{t}{s}{id}")
            )),
            (word("name", "name"), topic, ws)
                .prop_map(|(w, n, s)| (Command::Name { name: n.clone() }, format!("{w}{s}{n}"))),
            (word("create", "create"), topic, ws)
                .prop_map(|(w, t, s)| (Command::Create { topic: t.clone() }, format!("{w}{s}{t}"))),
            (word("stats", "stats"), prop::option::of(topic), ws).prop_map(|(w, t, s)| {
                let line = match &t {
                    Some(t) => format!("{w}{s}{t}"),
                    None => w,
                };
                (Command::Stats { topic: t }, line)
            }),
            word("topics", "topics").prop_map(|w| (Command::Topics, w)),
            word("ping", "ping").prop_map(|w| (Command::Ping, w)),
            word("quit", "quit").prop_map(|w| (Command::Quit, w)),
        ]
    }

    proptest! {
        #[test]
        fn typed_commands_parse_back((command, line) in typed_command()) {
            prop_assert_eq!(parse(&line), Ok(Some(command)));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_line(&bytes);
        }

        #[test]
        fn arbitrary_text_after_a_command_word_never_panics(
            word in prop_oneof![
                Just("pub"), Just("sub"), Just("unsub"), Just("ack"), Just("name"),
                Just("create"), Just("topics"), Just("stats"), Just("ping"), Just("quit"),
            ],
            rest in "\\PC{0,200}",
            json_ish in "[{}\\[\\]\":,0-9a-z \\\\.e+-]{0,100}",
        ) {
            let _ = parse(&format!("{word} {rest}"));
            let _ = parse(&format!("{word} t {json_ish}"));
        }
    }
}
