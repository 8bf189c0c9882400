//! Reply encoding and parsing: exact lines, and parse(encode(r)) == r.

use super::*;

#[test]
fn codes_round_trip_through_the_wire_form() {
    for code in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
    }
    assert_eq!(ErrorCode::from_wire("nope"), None);
}

#[test]
fn replies_are_single_crlf_terminated_lines() {
    let t: Arc<str> = "tweets".into();
    let id: Arc<str> = "1".into();
    let cases = [
        (
            Reply::Published {
                topic: t.clone(),
                id: id.clone(),
            },
            "+OK published tweets 1",
        ),
        (
            Reply::Duplicate {
                topic: t.clone(),
                id: id.clone(),
            },
            "+OK duplicate tweets 1",
        ),
        (
            Reply::Acked {
                topic: t.clone(),
                id,
            },
            "+OK acked tweets 1",
        ),
        (Reply::subscribed(t.clone()), "+OK subscribed tweets"),
        (Reply::Unsubscribed(t.clone()), "+OK unsubscribed tweets"),
        (Reply::Named("bob".into()), "+OK name bob"),
        (Reply::Created(t), "+OK created tweets"),
        (Reply::Json("[\"a\"]".into()), "+OK [\"a\"]"),
        (Reply::Pong, "+OK pong"),
        (Reply::Bye, "+OK bye"),
        (
            Reply::error(ErrorCode::NoEvent, "no event 7\nin queue"),
            "-ERR no_event no event 7 in queue",
        ),
    ];
    for (reply, line) in cases {
        let mut out = BytesMut::new();
        reply.encode(&mut out);
        assert_eq!(&out[..], format!("{line}\r\n").as_bytes());
    }
}

// ---- version 2 and parsing -----------------------------------------

use crate::testing::{id, name, sub_options};
use proptest::prelude::*;

#[test]
fn version_2_replies_are_exact() {
    let t: Arc<str> = "jobs".into();
    let id: Arc<str> = "7".into();
    let mut options = SubOptions::default();
    options.set("max_deliveries", "5").unwrap();
    options.set("wait", "30s").unwrap();
    options.set("group", "workers").unwrap();
    let cases = [
        (
            Reply::Subscribed {
                topic: t.clone(),
                options: Arc::new(options),
            },
            "+OK subscribed jobs group=workers wait=30000 max_deliveries=5",
        ),
        (
            Reply::Nacked {
                topic: t.clone(),
                id: id.clone(),
            },
            "+OK nacked jobs 7",
        ),
        (
            Reply::Touched {
                topic: t.clone(),
                id,
                ms: 30000,
            },
            "+OK touched jobs 7 30000",
        ),
        (Reply::Replies(ReplyMode::Errors), "+OK replies errors"),
        (Reply::Auth("alice".into()), "+OK auth alice"),
        (Reply::full("jobs", "workers"), "-ERR full jobs workers"),
        (
            Reply::not_leader("10.0.0.2:8000"),
            "-ERR not_leader 10.0.0.2:8000 is the leader",
        ),
        (
            Reply::Greeting {
                version: "0.1.0".into(),
            },
            "+OK herald 0.1.0 ready",
        ),
    ];
    for (reply, line) in cases {
        assert_eq!(reply.to_line(), line);
        assert_eq!(Reply::parse(line), Ok(reply.clone()), "{line}");
        assert_eq!(Reply::parse(&format!("{line}\r\n")), Ok(reply), "{line}");
    }
    assert_eq!(
        crate::greeting(),
        format!("+OK herald {} ready", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_plain_sub_reply_is_the_version_1_reply() {
    assert_eq!(
        Reply::subscribed("tweets".into()).to_line(),
        "+OK subscribed tweets"
    );
}

#[test]
fn error_data_is_typed() {
    let full = Reply::parse("-ERR full jobs workers").unwrap();
    assert_eq!(full.full_subscription(), Some(("jobs", "workers")));
    assert_eq!(full.leader(), None);
    let moved = Reply::parse("-ERR not_leader 10.0.0.2:8000").unwrap();
    assert_eq!(moved.leader(), Some("10.0.0.2:8000"));
    assert_eq!(
        Reply::parse("-ERR unavailable no leader").unwrap(),
        Reply::error(ErrorCode::Unavailable, "no leader")
    );
    assert_eq!(Reply::parse("-ERR full").unwrap().full_subscription(), None);
    assert_eq!(Reply::Pong.leader(), None);
}

#[test]
fn error_lines_keep_their_text_as_is() {
    assert_eq!(
        Reply::parse("-ERR no_event no event '9' pending on 'tweets'\r\n"),
        Ok(Reply::error(
            ErrorCode::NoEvent,
            "no event '9' pending on 'tweets'"
        ))
    );
    assert_eq!(
        Reply::parse("-ERR no_topic"),
        Ok(Reply::error(ErrorCode::NoTopic, ""))
    );
    for code in ErrorCode::ALL {
        let line = format!("-ERR {code} some  text ");
        assert_eq!(Reply::parse(&line), Ok(Reply::error(code, "some  text ")));
    }
}

#[test]
fn json_replies_are_kept_as_text() {
    assert_eq!(
        Reply::parse("+OK [\"a\",\"b\"]"),
        Ok(Reply::Json("[\"a\",\"b\"]".into()))
    );
    assert_eq!(
        Reply::parse("+OK {\"topics\":{}}\r\n"),
        Ok(Reply::Json("{\"topics\":{}}".into()))
    );
    let stats = crate::Stats::default();
    assert_eq!(Reply::json(&stats).to_line(), "+OK {\"topics\":{}}");
}

#[test]
fn lines_that_are_not_known_replies_are_errors() {
    fn kind(e: &ReplyParseError) -> &'static str {
        match e {
            ReplyParseError::NotAReply(_) => "not a reply",
            ReplyParseError::UnknownCode(_) => "unknown code",
            ReplyParseError::UnknownReply(_) => "unknown reply",
            ReplyParseError::Malformed(_) => "malformed",
        }
    }
    for (line, expected) in [
        ("", "not a reply"),
        ("{\"topic\":\"t\"}", "not a reply"),
        ("+OKAY", "not a reply"),
        ("-ERRno", "not a reply"),
        ("-ERR whatever happened", "unknown code"),
        ("-ERR", "unknown code"),
        ("+OK", "unknown reply"),
        ("+OK welcome to a broker", "unknown reply"),
        ("+OK herald 1.0 starting", "unknown reply"),
        ("+OK published t", "malformed"),
        ("+OK touched t 1 soon", "malformed"),
        ("+OK subscribed t wait=0", "malformed"),
        ("+OK pong pong", "malformed"),
    ] {
        let err = Reply::parse(line).unwrap_err();
        assert_eq!(kind(&err), expected, "{line:?} gave {err:?}");
    }
}

fn shared() -> impl Strategy<Value = Arc<str>> {
    name().prop_map(Arc::from)
}

fn shared_id() -> impl Strategy<Value = Arc<str>> {
    id().prop_map(Arc::from)
}

fn any_reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        "[0-9a-z.+-]{1,12}".prop_map(|version| Reply::Greeting { version }),
        (shared(), shared_id()).prop_map(|(topic, id)| Reply::Published { topic, id }),
        (shared(), shared_id()).prop_map(|(topic, id)| Reply::Duplicate { topic, id }),
        (shared(), sub_options()).prop_map(|(topic, o)| Reply::Subscribed {
            topic,
            options: Arc::new(o)
        }),
        shared().prop_map(Reply::Unsubscribed),
        (shared(), shared_id()).prop_map(|(topic, id)| Reply::Acked { topic, id }),
        (shared(), shared_id()).prop_map(|(topic, id)| Reply::Nacked { topic, id }),
        (shared(), shared_id(), any::<u64>()).prop_map(|(topic, id, ms)| Reply::Touched {
            topic,
            id,
            ms
        }),
        shared().prop_map(Reply::Named),
        shared().prop_map(Reply::Created),
        prop_oneof![Just(ReplyMode::All), Just(ReplyMode::Errors)].prop_map(Reply::Replies),
        shared_id().prop_map(Reply::Auth),
        prop::collection::vec("\\PC{0,8}", 0..4).prop_map(|names| Reply::json(&names)),
        prop::collection::btree_map("\\PC{0,8}", any::<u64>(), 0..4)
            .prop_map(|map| Reply::json(&map)),
        Just(Reply::Pong),
        Just(Reply::Bye),
        (
            proptest::sample::select(ErrorCode::ALL.to_vec()),
            "[^\r\n]{0,40}"
        )
            .prop_map(|(code, text)| Reply::error(code, text)),
    ]
}

proptest! {
    #[test]
    fn parse_of_encode_is_the_identity(reply in any_reply()) {
        let mut out = BytesMut::new();
        reply.encode(&mut out);
        let line = std::str::from_utf8(&out).unwrap();
        prop_assert!(line.ends_with("\r\n"));
        prop_assert!(!line[..line.len() - 2].contains(['\r', '\n']));
        prop_assert_eq!(Reply::parse(line), Ok(reply.clone()));
        prop_assert_eq!(Reply::parse(&reply.to_line()), Ok(reply));
    }

    #[test]
    fn arbitrary_lines_never_panic(line in "\\PC{0,100}") {
        let _ = Reply::parse(&line);
        let _ = Reply::parse(&format!("+OK {line}"));
        let _ = Reply::parse(&format!("-ERR {line}"));
        let _ = Reply::parse(&format!("+OK subscribed t {line}"));
    }
}
