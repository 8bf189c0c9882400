//! Proptest strategies shared by the command and reply tests: valid
//! names, ids, durations and options, and the many ways a person may type
//! them.

use crate::duration::MAX_MS;
use crate::options::SubOptions;
use crate::options::{DeadTarget, LIMIT_BYTES_MAX, LIMIT_MAX, MAX_DELIVERIES_MAX, Overflow};
use proptest::prelude::*;

/// A valid topic, client or group name.
pub(crate) fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-][A-Za-z0-9_.-]{0,20}"
}

/// A valid topic name that is not the keyword `none` in any case.
pub(crate) fn dead_topic() -> impl Strategy<Value = String> {
    name().prop_filter("none is the keyword", |t| !t.eq_ignore_ascii_case("none"))
}

/// An id as `ack` takes it: one word of printable ASCII.
pub(crate) fn id() -> impl Strategy<Value = String> {
    "[!-~]{1,20}"
}

/// A duration from `min` ms to 30 days, biased towards round values.
pub(crate) fn duration_ms(min: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        min..=MAX_MS,
        (min.max(1)..=720u64).prop_map(|h| h * 3_600_000),
        (min.max(1)..=600u64).prop_map(|s| s * 1000),
        Just(min),
        Just(MAX_MS),
    ]
}

/// Every way to write `ms` as a duration word: plain digits, with a unit,
/// any case, leading zeros.
pub(crate) fn duration_word(ms: u64) -> impl Strategy<Value = String> {
    let mut spellings = vec![
        ms.to_string(),
        format!("{ms}ms"),
        format!("{ms}MS"),
        format!("00{ms}"),
    ];
    for (unit, scale) in [("s", 1000), ("m", 60_000), ("h", 3_600_000)] {
        if ms.is_multiple_of(scale) {
            spellings.push(format!("{}{unit}", ms / scale));
            spellings.push(format!("{}{}", ms / scale, unit.to_ascii_uppercase()));
        }
    }
    proptest::sample::select(spellings)
}

/// Any set of subscription options the parser can return.
pub(crate) fn sub_options() -> impl Strategy<Value = SubOptions> {
    (
        (
            prop::option::of(name()),
            prop::option::of(duration_ms(1)),
            prop::option::of(prop::collection::vec(duration_ms(0), 1..4)),
            prop::option::of(1..=MAX_DELIVERIES_MAX),
            prop::option::of(prop_oneof![
                Just(DeadTarget::None),
                dead_topic().prop_map(DeadTarget::Topic),
            ]),
        ),
        (
            prop::option::of(duration_ms(1)),
            prop::option::of(1..=LIMIT_MAX),
            prop::option::of(1..=LIMIT_BYTES_MAX),
            prop::option::of(prop_oneof![Just(Overflow::Reject), Just(Overflow::Drop)]),
        ),
    )
        .prop_map(
            |(
                (group, wait_ms, backoff_ms, max_deliveries, dead),
                (age_ms, limit, limit_bytes, overflow),
            )| {
                SubOptions {
                    group,
                    wait_ms,
                    backoff_ms,
                    max_deliveries,
                    dead,
                    age_ms,
                    limit,
                    limit_bytes,
                    overflow,
                }
            },
        )
}

/// `word` with each ASCII letter in a random case.
pub(crate) fn any_case(word: String) -> impl Strategy<Value = String> {
    let len = word.len();
    prop::collection::vec(any::<bool>(), len).prop_map(move |upper| {
        word.chars()
            .zip(upper)
            .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

/// The `key=value` words a person may type for `options`, shuffled, keys
/// and keywords in any case, durations in any unit.
pub(crate) fn typed_options(options: SubOptions) -> impl Strategy<Value = Vec<String>> {
    let mut parts: Vec<BoxedStrategy<String>> = Vec::new();
    let keyed = |key: &'static str, value: BoxedStrategy<String>| {
        (any_case(key.to_string()), value)
            .prop_map(|(k, v)| format!("{k}={v}"))
            .boxed()
    };
    if let Some(group) = options.group {
        parts.push(keyed("group", Just(group).boxed()));
    }
    if let Some(wait) = options.wait_ms {
        parts.push(keyed("wait", duration_word(wait).boxed()));
    }
    if let Some(steps) = options.backoff_ms {
        let words: Vec<BoxedStrategy<String>> = steps
            .into_iter()
            .map(|ms| duration_word(ms).boxed())
            .collect();
        parts.push(keyed("backoff", words.prop_map(|w| w.join(",")).boxed()));
    }
    if let Some(n) = options.max_deliveries {
        parts.push(keyed("max_deliveries", Just(n.to_string()).boxed()));
    }
    if let Some(dead) = options.dead {
        let value = match dead {
            DeadTarget::None => any_case("none".to_string()).boxed(),
            DeadTarget::Topic(t) => Just(t).boxed(),
        };
        parts.push(keyed("dead", value));
    }
    if let Some(age) = options.age_ms {
        parts.push(keyed("age", duration_word(age).boxed()));
    }
    if let Some(limit) = options.limit {
        parts.push(keyed("limit", Just(limit.to_string()).boxed()));
    }
    if let Some(bytes) = options.limit_bytes {
        parts.push(keyed("limit_bytes", Just(bytes.to_string()).boxed()));
    }
    if let Some(overflow) = options.overflow {
        parts.push(keyed(
            "overflow",
            any_case(overflow.as_str().to_string()).boxed(),
        ));
    }
    parts.prop_shuffle()
}
