//! Subscription options (`docs/protocol.md` §12.1) and the `key=value`
//! option syntax of §11.
//!
//! [`SubOptions`] records what a `sub` *gave*, each option an `Option`, so
//! that the `+OK subscribed` reply can echo exactly the options given and a
//! group can compare the options of a joining member with its own. The
//! defaults (no deadline, unlimited, `<topic>.dead`, `reject`) are applied
//! by the readers here ([`SubOptions::dead_topic`],
//! [`SubOptions::backoff_after`], [`SubOptions::overflow_or_default`]), not
//! stored.
//!
//! Three spellings of the same options exist, all written and read here:
//! the `sub` arguments (any order, keys and keywords in any case, durations
//! with units), the reply suffix ([`fmt::Display`]: table order, lower
//! case, milliseconds), and the JSON object of `stats` (serde, same keys
//! and values as the reply).
//!
//! Invariant of a parsed [`SubOptions`]: every value is in its range, names
//! follow the name rules, and a [`DeadTarget::Topic`] is never spelled
//! `none` in any case (that spelling is the keyword).

use crate::{duration, name, words::parse_count};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;

/// Most deliveries `max_deliveries` may allow.
pub const MAX_DELIVERIES_MAX: u16 = 1000;
/// Largest `limit` (events).
pub const LIMIT_MAX: u32 = 1 << 31;
/// Largest `limit_bytes`.
pub const LIMIT_BYTES_MAX: u64 = 1 << 40;
/// Added to a topic name to make its default dead topic.
pub const DEAD_SUFFIX: &str = ".dead";

/// What a `sub` gave beyond its topic and prefetch. `None` is "not given":
/// the option's default applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubOptions {
    /// `group=<name>`: join that competing-consumer group (§12.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `wait=<dur>`: ack deadline of each delivery, in ms (§12.3).
    #[serde(rename = "wait", default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// `backoff=<dur>[,<dur>...]`: delay before the k-th return is
    /// deliverable again, in ms; the last value repeats; never empty.
    #[serde(rename = "backoff", default, skip_serializing_if = "Option::is_none")]
    pub backoff_ms: Option<Vec<u64>>,
    /// `max_deliveries=<n>` (1 to 1000): dead-letter instead of a
    /// delivery number n+1 (§12.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deliveries: Option<u16>,
    /// `dead=<topic>|none`: where dead letters go (§12.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead: Option<DeadTarget>,
    /// `age=<dur>`: priority aging step, in ms (§13.3).
    #[serde(rename = "age", default, skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<u64>,
    /// `limit=<n>` (1 to 2^31): most events held (§13.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// `limit_bytes=<n>` (1 to 2^40): most `msg` bytes held (§13.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<u64>,
    /// `overflow=reject|drop`: what a full subscription does (§13.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overflow: Option<Overflow>,
}

/// Where dead letters go: `dead=<topic>` or `dead=none`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeadTarget {
    /// A topic (valid name, never `none` in any case).
    Topic(String),
    /// `none`: dead letters are dropped and counted.
    None,
}

/// `overflow=reject|drop` (§13.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overflow {
    /// Refuse the whole publish with `-ERR full` (the default).
    #[default]
    Reject,
    /// Accept it and evict the subscription's lowest queued events.
    Drop,
}

impl Overflow {
    /// The keyword, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            Overflow::Reject => "reject",
            Overflow::Drop => "drop",
        }
    }
}

impl DeadTarget {
    /// The option value: the topic, or `none`.
    pub fn as_str(&self) -> &str {
        match self {
            DeadTarget::Topic(topic) => topic,
            DeadTarget::None => "none",
        }
    }

    /// Reads an option value: `none` in any case, or a valid topic name.
    pub fn parse(value: &str) -> Option<DeadTarget> {
        if value.eq_ignore_ascii_case("none") {
            Some(DeadTarget::None)
        } else if name::is_valid(value) {
            Some(DeadTarget::Topic(value.to_string()))
        } else {
            None
        }
    }
}

impl Serialize for DeadTarget {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DeadTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Cow::<'de, str>::deserialize(deserializer)?;
        DeadTarget::parse(&value).ok_or_else(|| {
            serde::de::Error::custom(format!("dead must be a topic name or none, not {value:?}"))
        })
    }
}

/// The keys `sub` takes, in the order of the table of §12.1 (and of the
/// reply).
const KEYS: [&str; 9] = [
    "group",
    "wait",
    "backoff",
    "max_deliveries",
    "dead",
    "age",
    "limit",
    "limit_bytes",
    "overflow",
];

impl SubOptions {
    /// Whether no option was given (a plain `sub`).
    pub fn is_empty(&self) -> bool {
        *self == SubOptions::default()
    }

    /// Sets one option from a `key=value` token's parts (the key in any
    /// case).
    ///
    /// # Errors
    /// The `bad_args` text: an unknown key, a key already given, or a bad
    /// value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let Some(key) = KEYS.iter().find(|k| k.eq_ignore_ascii_case(key)) else {
            return Err(unknown_option(key, &KEYS));
        };
        let given = match *key {
            "group" => self.group.is_some(),
            "wait" => self.wait_ms.is_some(),
            "backoff" => self.backoff_ms.is_some(),
            "max_deliveries" => self.max_deliveries.is_some(),
            "dead" => self.dead.is_some(),
            "age" => self.age_ms.is_some(),
            "limit" => self.limit.is_some(),
            "limit_bytes" => self.limit_bytes.is_some(),
            _ => self.overflow.is_some(),
        };
        if given {
            return Err(repeated_option(key));
        }
        let bad = || bad_value(key, value);
        match *key {
            "group" => self.group = Some(parse_name(value).ok_or_else(bad)?),
            "wait" => self.wait_ms = Some(duration::parse(value, 1).ok_or_else(bad)?),
            "backoff" => {
                let steps = value
                    .split(',')
                    .map(|step| duration::parse(step, 0))
                    .collect::<Option<Vec<u64>>>()
                    .ok_or_else(bad)?;
                self.backoff_ms = Some(steps);
            }
            "max_deliveries" => {
                let n = parse_count(value, 1, u64::from(MAX_DELIVERIES_MAX)).ok_or_else(bad)?;
                // In 1..=1000, so it fits.
                self.max_deliveries = Some(n as u16);
            }
            "dead" => self.dead = Some(DeadTarget::parse(value).ok_or_else(bad)?),
            "age" => self.age_ms = Some(duration::parse(value, 1).ok_or_else(bad)?),
            "limit" => {
                let n = parse_count(value, 1, u64::from(LIMIT_MAX)).ok_or_else(bad)?;
                // In 1..=2^31, so it fits.
                self.limit = Some(n as u32);
            }
            "limit_bytes" => {
                self.limit_bytes = Some(parse_count(value, 1, LIMIT_BYTES_MAX).ok_or_else(bad)?);
            }
            _ => {
                self.overflow = Some(if value.eq_ignore_ascii_case("reject") {
                    Overflow::Reject
                } else if value.eq_ignore_ascii_case("drop") {
                    Overflow::Drop
                } else {
                    return Err(bad());
                })
            }
        }
        Ok(())
    }

    /// The dead topic of a subscription to `topic` (§12.6): the `dead=`
    /// topic, `None` for `dead=none`, and by default `<topic>.dead`, or
    /// `None` when that name would be longer than a name may be.
    pub fn dead_topic<'a>(&'a self, topic: &str) -> Option<Cow<'a, str>> {
        match &self.dead {
            Some(DeadTarget::Topic(dead)) => Some(Cow::Borrowed(dead)),
            Some(DeadTarget::None) => None,
            None => {
                let dead = format!("{topic}{DEAD_SUFFIX}");
                name::is_valid(&dead).then_some(Cow::Owned(dead))
            }
        }
    }

    /// How long the `k`-th return of an event (1 for the first) is held
    /// delayed, in ms (§12.3): the k-th `backoff` step, the last one
    /// repeating; 0 without `backoff` (deliverable at once).
    pub fn backoff_after(&self, k: u32) -> u64 {
        let Some(steps) = &self.backoff_ms else {
            return 0;
        };
        let at = (k.max(1) as usize - 1).min(steps.len().saturating_sub(1));
        steps.get(at).copied().unwrap_or(0)
    }

    /// `overflow`, or its default `reject`.
    pub fn overflow_or_default(&self) -> Overflow {
        self.overflow.unwrap_or_default()
    }
}

/// The reply suffix: ` key=value` for each option given, in the order of
/// §12.1, durations in ms, keywords lower case; empty for a plain `sub`.
///
/// ```
/// use herald_proto::SubOptions;
/// let mut options = SubOptions::default();
/// options.set("MAX_DELIVERIES", "5").unwrap();
/// options.set("wait", "30s").unwrap();
/// options.set("group", "workers").unwrap();
/// assert_eq!(options.to_string(), " group=workers wait=30000 max_deliveries=5");
/// ```
impl SubOptions {
    /// The options as the `sub` reply lists them, without the leading
    /// space: `wait=30000 backoff=1000,5000` (empty for a plain `sub`).
    /// `stats` and the log store them in this form.
    pub fn to_text(&self) -> String {
        let text = self.to_string();
        text.strip_prefix(' ').unwrap_or(&text).to_owned()
    }

    /// Reads [`to_text`](Self::to_text) back (any `key=value` words, with
    /// the rules of [`set`](Self::set)).
    ///
    /// # Errors
    /// The `bad_args` text of the first bad word.
    pub fn from_text(text: &str) -> Result<SubOptions, String> {
        let mut options = SubOptions::default();
        for word in text.split_whitespace() {
            let Some((key, value)) = word.split_once('=') else {
                return Err(format!("'{word}' is not key=value"));
            };
            options.set(key, value)?;
        }
        Ok(options)
    }
}

/// Serde as [`SubOptions::to_text`]: how `stats` gives a subscription's
/// options (`docs/protocol.md` 12.7, "as in the `sub` reply").
pub mod as_text {
    use super::SubOptions;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the options as text.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(options: &SubOptions, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&options.to_text())
    }

    /// Reads options written as text.
    ///
    /// # Errors
    /// A bad option word.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SubOptions, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        SubOptions::from_text(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for SubOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(group) = &self.group {
            write!(f, " group={group}")?;
        }
        if let Some(wait) = self.wait_ms {
            write!(f, " wait={wait}")?;
        }
        if let Some(steps) = &self.backoff_ms {
            f.write_str(" backoff=")?;
            for (i, step) in steps.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{step}")?;
            }
        }
        if let Some(n) = self.max_deliveries {
            write!(f, " max_deliveries={n}")?;
        }
        if let Some(dead) = &self.dead {
            write!(f, " dead={}", dead.as_str())?;
        }
        if let Some(age) = self.age_ms {
            write!(f, " age={age}")?;
        }
        if let Some(limit) = self.limit {
            write!(f, " limit={limit}")?;
        }
        if let Some(bytes) = self.limit_bytes {
            write!(f, " limit_bytes={bytes}")?;
        }
        if let Some(overflow) = self.overflow {
            write!(f, " overflow={}", overflow.as_str())?;
        }
        Ok(())
    }
}

/// Splits a `key=value` token; `None` for a token without `=` (a
/// positional argument).
pub(crate) fn split_option(token: &str) -> Option<(&str, &str)> {
    token.split_once('=')
}

pub(crate) fn parse_name(value: &str) -> Option<String> {
    name::is_valid(value).then(|| value.to_string())
}

pub(crate) fn unknown_option(key: &str, known: &[&str]) -> String {
    format!(
        "unknown option '{}' (options: {})",
        crate::words::quotable(key),
        known.join(", ")
    )
}

pub(crate) fn repeated_option(key: &str) -> String {
    format!("option '{key}' given twice")
}

pub(crate) fn bad_value(key: &str, value: &str) -> String {
    let rule = match key {
        "group" | "sub" => "a name: 1 to 128 of A-Z a-z 0-9 _ - . not starting with '.'",
        "wait" | "age" | "ttl" => "a duration from 1 ms to 30 days (1500, 1500ms, 30s, 2m, 1h)",
        "backoff" => "durations from 0 to 30 days separated by commas (0,1s,30s)",
        "max_deliveries" => "an integer from 1 to 1000",
        "dead" => "a topic name or none",
        "limit" => "an integer from 1 to 2147483648",
        "limit_bytes" => "an integer from 1 to 1099511627776",
        "overflow" => "reject or drop",
        _ => "see the usage",
    };
    format!(
        "bad value '{}' for {key}: {rule}",
        crate::words::quotable(value)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> Result<SubOptions, String> {
        let mut options = SubOptions::default();
        for (k, v) in pairs {
            options.set(k, v)?;
        }
        Ok(options)
    }

    #[test]
    fn every_option_with_its_range() {
        let o = options(&[
            ("overflow", "DROP"),
            ("limit_bytes", "1099511627776"),
            ("limit", "2147483648"),
            ("age", "1s"),
            ("dead", "jobs.failed"),
            ("max_deliveries", "1000"),
            ("backoff", "0,1s,2M"),
            ("wait", "30s"),
            ("group", "Workers"),
        ])
        .unwrap();
        assert_eq!(
            o,
            SubOptions {
                group: Some("Workers".into()),
                wait_ms: Some(30_000),
                backoff_ms: Some(vec![0, 1000, 120_000]),
                max_deliveries: Some(1000),
                dead: Some(DeadTarget::Topic("jobs.failed".into())),
                age_ms: Some(1000),
                limit: Some(1 << 31),
                limit_bytes: Some(1 << 40),
                overflow: Some(Overflow::Drop),
            }
        );
        assert_eq!(
            o.to_string(),
            " group=Workers wait=30000 backoff=0,1000,120000 max_deliveries=1000 \
             dead=jobs.failed age=1000 limit=2147483648 limit_bytes=1099511627776 overflow=drop"
        );
    }

    #[test]
    fn out_of_range_and_malformed_values_are_refused() {
        for (key, value) in [
            ("group", ""),
            ("group", ".x"),
            ("group", "a/b"),
            ("wait", "0"),
            ("wait", "721h"),
            ("wait", "-1"),
            ("backoff", ""),
            ("backoff", "1,,2"),
            ("backoff", "1,"),
            ("backoff", ",1"),
            ("backoff", "1 2"),
            ("backoff", "721h"),
            ("max_deliveries", "0"),
            ("max_deliveries", "1001"),
            ("dead", ""),
            ("dead", "a/b"),
            ("dead", ".x"),
            ("age", "0"),
            ("limit", "0"),
            ("limit", "2147483649"),
            ("limit_bytes", "0"),
            ("limit_bytes", "1099511627777"),
            ("overflow", "block"),
            ("overflow", ""),
        ] {
            let err = options(&[(key, value)]).unwrap_err();
            assert!(err.starts_with("bad value"), "{key}={value}: {err}");
        }
    }

    #[test]
    fn keys_are_case_insensitive_and_given_once() {
        assert_eq!(
            options(&[("WAIT", "1"), ("Max_Deliveries", "2")]).unwrap(),
            options(&[("wait", "1"), ("max_deliveries", "2")]).unwrap()
        );
        assert_eq!(
            options(&[("wait", "1"), ("Wait", "2")]),
            Err("option 'wait' given twice".into())
        );
        assert!(
            options(&[("prefetch", "1")])
                .unwrap_err()
                .starts_with("unknown option")
        );
        assert!(
            options(&[("", "1")])
                .unwrap_err()
                .starts_with("unknown option")
        );
    }

    #[test]
    fn none_in_any_case_is_the_keyword_and_names_keep_their_case() {
        for none in ["none", "NONE", "None"] {
            assert_eq!(DeadTarget::parse(none), Some(DeadTarget::None));
        }
        assert_eq!(
            DeadTarget::parse("Nonesuch"),
            Some(DeadTarget::Topic("Nonesuch".into()))
        );
    }

    #[test]
    fn defaults_are_read_not_stored() {
        let plain = SubOptions::default();
        assert!(plain.is_empty());
        assert_eq!(plain.to_string(), "");
        assert_eq!(plain.dead_topic("jobs").as_deref(), Some("jobs.dead"));
        // A 124-byte topic plus ".dead" is 129 bytes: no default.
        let long = "t".repeat(124);
        assert_eq!(plain.dead_topic(&long), None);
        assert!(plain.dead_topic(&"t".repeat(123)).is_some());
        assert_eq!(plain.backoff_after(1), 0);
        assert_eq!(plain.overflow_or_default(), Overflow::Reject);

        let o = options(&[("dead", "none"), ("backoff", "0,10,20")]).unwrap();
        assert_eq!(o.dead_topic("jobs"), None);
        let backoffs: Vec<u64> = (0..6).map(|k| o.backoff_after(k)).collect();
        assert_eq!(backoffs, [0, 0, 10, 20, 20, 20]);
        let o = options(&[("dead", "elsewhere")]).unwrap();
        assert_eq!(o.dead_topic("jobs").as_deref(), Some("elsewhere"));
    }

    #[test]
    fn json_uses_the_reply_keys_and_values() {
        let o = options(&[
            ("group", "w"),
            ("wait", "30s"),
            ("backoff", "1s,2s"),
            ("dead", "NONE"),
            ("overflow", "drop"),
        ])
        .unwrap();
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(
            json,
            r#"{"group":"w","wait":30000,"backoff":[1000,2000],"dead":"none","overflow":"drop"}"#
        );
        assert_eq!(serde_json::from_str::<SubOptions>(&json).unwrap(), o);
        assert_eq!(serde_json::to_string(&SubOptions::default()).unwrap(), "{}");
        // Unknown keys from a newer broker are ignored.
        let newer: SubOptions = serde_json::from_str(r#"{"wait":5,"shiny":true}"#).unwrap();
        assert_eq!(newer.wait_ms, Some(5));
    }
}
