//! [`parse_line`]: the grammar of every command.
//!
//! Checks run in the order of `docs/protocol.md` §7 "Which error wins":
//! UTF-8, the command word, then the shape (argument counts, numbers,
//! options: an option error is a shape error, so it beats a bad topic),
//! then topic names, then the event.

use super::{Command, DEFAULT_PEEK, DEFAULT_PREFETCH, MAX_PEEK, NackAction, ParseError, Password};
use super::{PeekTarget, ReplyMode};
use crate::duration;
use crate::event::EventInput;
use crate::name;
use crate::options::unknown_option;
use crate::options::{SubOptions, bad_value, parse_name, repeated_option, split_option};
use crate::verb::Verb;
use crate::words::{Words, parse_count, quotable};

const NAME_RULES: &str = "use 1 to 128 of A-Z a-z 0-9 _ - . not starting with '.'";

/// Parses one line (without its LF and trailing CR).
///
/// Returns `Ok(None)` for an empty or all-whitespace line, which gets no reply.
///
/// ```
/// use herald_proto::{Command, parse_line};
/// let Ok(Some(Command::Sub { topic, prefetch, options })) =
///     parse_line(b"SUB jobs 5 wait=30s group=workers")
/// else {
///     panic!("a sub")
/// };
/// assert_eq!((topic.as_str(), prefetch), ("jobs", 5));
/// assert_eq!(options.to_string(), " group=workers wait=30000");
/// ```
///
/// # Errors
/// A [`ParseError`] whose [`code`](ParseError::code) is the reply to send.
pub fn parse_line(line: &[u8]) -> Result<Option<Command>, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::BadRequest)?;
    let mut words = Words::new(line);
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
            let args = Args::split(words, true, usage)?;
            let prefetch = match args.extra {
                None => DEFAULT_PREFETCH,
                Some(p) => parse_prefetch(p)?,
            };
            let mut options = SubOptions::default();
            for &(key, value) in &args.options {
                options.set(key, value).map_err(ParseError::BadArgs)?;
            }
            Command::Sub {
                topic: topic_name(args.topic)?,
                prefetch,
                options,
            }
        }
        Verb::Unsub => {
            let args = Args::split(words, false, usage)?;
            let [group] = args.options(["group"])?;
            let group = group
                .map(|g| parse_name(g).ok_or_else(|| bad_option("group", g)))
                .transpose()?;
            Command::Unsub {
                topic: topic_name(args.topic)?,
                group,
            }
        }
        Verb::Ack => {
            let [topic, id] = exactly(&mut words, usage)?;
            Command::Ack {
                topic: topic_name(topic)?,
                id: id.to_string(),
            }
        }
        Verb::Nack => {
            let (topic, id, how) = two_and_maybe_one(&mut words, usage)?;
            let action = match how {
                None => NackAction::Return,
                Some(word) if word.eq_ignore_ascii_case("dead") => NackAction::Dead,
                Some(word) => NackAction::Delay(duration::parse(word, 1).ok_or_else(|| {
                    ParseError::BadArgs(format!(
                        "'{}' is neither dead nor a duration from 1 ms to 30 days (1500, 30s, 2m, 1h)",
                        quotable(word)
                    ))
                })?),
            };
            Command::Nack {
                topic: topic_name(topic)?,
                id: id.to_string(),
                action,
            }
        }
        Verb::Touch => {
            let (topic, id, ms) = two_and_maybe_one(&mut words, usage)?;
            let ms = ms
                .map(|word| {
                    duration::parse(word, 1).ok_or_else(|| {
                        ParseError::BadArgs(format!(
                            "'{}' is not a duration from 1 ms to 30 days (1500, 30s, 2m, 1h)",
                            quotable(word)
                        ))
                    })
                })
                .transpose()?;
            Command::Touch {
                topic: topic_name(topic)?,
                id: id.to_string(),
                ms,
            }
        }
        Verb::Peek => {
            let args = Args::split(words, true, usage)?;
            let n = match args.extra {
                None => DEFAULT_PEEK,
                Some(word) => parse_count(word, 1, u64::from(MAX_PEEK))
                    // In 1..=1000, so it fits.
                    .map(|n| n as u16)
                    .ok_or_else(|| {
                        ParseError::BadArgs("n must be an integer from 1 to 1000".to_string())
                    })?,
            };
            let target = match args.options(["sub", "group"])? {
                [None, None] => PeekTarget::Own,
                [Some(sub), None] => {
                    PeekTarget::Sub(parse_name(sub).ok_or_else(|| bad_option("sub", sub))?)
                }
                [None, Some(group)] => {
                    PeekTarget::Group(parse_name(group).ok_or_else(|| bad_option("group", group))?)
                }
                [Some(_), Some(_)] => {
                    return Err(ParseError::BadArgs(
                        "give sub=<name> or group=<name>, not both".to_string(),
                    ));
                }
            };
            Command::Peek {
                topic: topic_name(args.topic)?,
                n,
                target,
            }
        }
        Verb::Name => {
            let [name] = exactly(&mut words, usage)?;
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
            let args = Args::split(words, false, usage)?;
            let [ttl] = args.options(["ttl"])?;
            let ttl_ms = ttl
                .map(|t| duration::parse(t, 1).ok_or_else(|| bad_option("ttl", t)))
                .transpose()?;
            Command::Create {
                topic: topic_name(args.topic)?,
                ttl_ms,
            }
        }
        Verb::Topics => {
            exactly::<0>(&mut words, usage)?;
            Command::Topics
        }
        Verb::Stats => {
            let [topic] = up_to::<1>(&mut words, 0, usage)?;
            Command::Stats {
                topic: topic.map(topic_name).transpose()?,
            }
        }
        Verb::Replies => {
            let [mode] = exactly(&mut words, usage)?;
            Command::Replies {
                mode: ReplyMode::parse(mode).ok_or_else(|| bad_args(usage))?,
            }
        }
        Verb::Auth => {
            let [user, password] = exactly(&mut words, usage)?;
            Command::Auth {
                user: user.to_string(),
                password: Password::new(password),
            }
        }
        Verb::Cluster => {
            exactly::<0>(&mut words, usage)?;
            Command::Cluster
        }
        Verb::Ping => {
            exactly::<0>(&mut words, usage)?;
            Command::Ping
        }
        Verb::Quit => {
            exactly::<0>(&mut words, usage)?;
            Command::Quit
        }
    };
    Ok(Some(command))
}

/// The arguments of a command that takes options (§11): its topic, at
/// most one optional positional argument, then `key=value` words.
struct Args<'a> {
    topic: &'a str,
    extra: Option<&'a str>,
    options: Vec<(&'a str, &'a str)>,
}

impl<'a> Args<'a> {
    /// Splits the remaining words. The topic is taken whatever it holds (so
    /// `sub a=b` is a bad topic, as in version 1); then, if `takes_extra`,
    /// one positional argument up to the first `key=value` word; then
    /// options. A word without `=` after an option is a positional argument
    /// out of place, and a missing topic or an extra positional argument is
    /// `bad_args`.
    fn split(mut words: Words<'a>, takes_extra: bool, usage: &str) -> Result<Args<'a>, ParseError> {
        let topic = words.next().ok_or_else(|| bad_args(usage))?;
        let mut args = Args {
            topic,
            extra: None,
            options: Vec::new(),
        };
        for word in words {
            match split_option(word) {
                Some(option) => args.options.push(option),
                None if !args.options.is_empty() => {
                    return Err(ParseError::BadArgs(format!(
                        "'{}' comes after an option; options go last ({usage})",
                        quotable(word)
                    )));
                }
                None if takes_extra && args.extra.is_none() => args.extra = Some(word),
                None => return Err(bad_args(usage)),
            }
        }
        Ok(args)
    }

    /// The values of the options a command other than `sub` takes, by key
    /// (keys compared ignoring ASCII case); an unknown or repeated key is
    /// `bad_args`.
    fn options<const N: usize>(
        &self,
        keys: [&'static str; N],
    ) -> Result<[Option<&'a str>; N], ParseError> {
        let mut out = [None; N];
        for &(key, value) in &self.options {
            let Some(at) = keys.iter().position(|k| k.eq_ignore_ascii_case(key)) else {
                return Err(ParseError::BadArgs(unknown_option(key, &keys)));
            };
            if out[at].is_some() {
                return Err(ParseError::BadArgs(repeated_option(keys[at])));
            }
            out[at] = Some(value);
        }
        Ok(out)
    }
}

/// Exactly `N` more words, or `bad_args` with `usage`.
fn exactly<'a, const N: usize>(
    words: &mut Words<'a>,
    usage: &str,
) -> Result<[&'a str; N], ParseError> {
    let mut out = [""; N];
    for slot in &mut out {
        *slot = words.next().ok_or_else(|| bad_args(usage))?;
    }
    end(words, usage)?;
    Ok(out)
}

/// Two words and maybe a third (`nack`, `touch`), or `bad_args` with `usage`.
fn two_and_maybe_one<'a>(
    words: &mut Words<'a>,
    usage: &str,
) -> Result<(&'a str, &'a str, Option<&'a str>), ParseError> {
    let (Some(first), Some(second), third) = (words.next(), words.next(), words.next()) else {
        return Err(bad_args(usage));
    };
    end(words, usage)?;
    Ok((first, second, third))
}

/// At least `min` and at most `N` more words, or `bad_args` with `usage`.
fn up_to<'a, const N: usize>(
    words: &mut Words<'a>,
    min: usize,
    usage: &str,
) -> Result<[Option<&'a str>; N], ParseError> {
    let mut out = [None; N];
    for slot in &mut out {
        *slot = words.next();
    }
    if out.iter().take(min).any(Option::is_none) {
        return Err(bad_args(usage));
    }
    end(words, usage)?;
    Ok(out)
}

fn end(words: &mut Words<'_>, usage: &str) -> Result<(), ParseError> {
    match words.next() {
        Some(_) => Err(bad_args(usage)),
        None => Ok(()),
    }
}

fn bad_args(usage: &str) -> ParseError {
    ParseError::BadArgs(usage.to_string())
}

fn bad_option(key: &str, value: &str) -> ParseError {
    ParseError::BadArgs(bad_value(key, value))
}

fn topic_name(topic: &str) -> Result<String, ParseError> {
    if name::is_valid(topic) {
        Ok(topic.to_string())
    } else {
        Err(ParseError::BadTopic(quotable(topic).to_string()))
    }
}

fn parse_prefetch(word: &str) -> Result<u16, ParseError> {
    match parse_count(word, 1, u64::from(u16::MAX)) {
        // In 1..=65535, so it fits.
        Some(n) => Ok(n as u16),
        None => Err(ParseError::BadArgs(
            "prefetch must be an integer from 1 to 65535".to_string(),
        )),
    }
}
