//! `docs/protocol.md` section 7 (and the line limit of section 2): every
//! error code the server can produce, which one wins when several apply,
//! and that the connection stays usable.
mod common;
use common::*;

use std::io::Write;

const MIB: usize = 1024 * 1024;

#[test]
fn unknown_command_words_are_unknown_command() {
    let server = Server::start();
    let mut c = server.connect();
    for line in [
        "foo",
        "pubx t {}",
        "publishe t {}",
        "subscriber t",
        "ackk t 1",
        "names bob",
        "quitt",
        "pong",
        "+OK",
        "{\"id\":1}",
        "pub-t",
    ] {
        c.expect_err(line, "unknown_command");
    }
    assert_eq!(c.cmd("ping"), "+OK pong");
}

#[test]
fn error_replies_carry_a_code_and_a_human_text() {
    let server = Server::start();
    let mut c = server.connect();
    for line in [
        "foo",
        "sub",
        "sub a/b",
        "pub t x",
        "sub nosuch",
        "unsub nosuch",
    ] {
        let reply = c.cmd(line);
        let mut parts = reply.splitn(3, ' ');
        assert_eq!(parts.next(), Some("-ERR"), "{reply}");
        let code = parts.next().unwrap_or("");
        assert!(
            !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "code of {reply:?}"
        );
        assert!(
            parts.next().is_some_and(|text| !text.trim().is_empty()),
            "no human text in {reply:?}"
        );
    }
}

#[test]
fn missing_or_extra_arguments_are_bad_args() {
    let server = Server::start();
    let mut c = server.connect();
    assert_eq!(c.cmd("create t"), "+OK created t");
    for line in [
        "pub",
        "pub t",
        "PUBLISH t",
        "sub",
        "sub t 1 2",
        "unsub",
        "unsub t x",
        "ack",
        "ack t",
        "ack t 1 2",
        "create",
        "create a b",
        "topics x",
        "stats t u",
        "ping x",
        "quit now",
        "name",
        "name a b",
    ] {
        c.expect_err(line, "bad_args");
    }
    // None of them did anything: still not subscribed, quit did not quit,
    // `create a b` created nothing.
    c.expect_err("unsub t", "not_subscribed");
    assert_eq!(c.topics(), ["t"]);
    assert_eq!(c.cmd("ping"), "+OK pong");
}

#[test]
fn bad_prefetch_is_bad_args() {
    let server = Server::start();
    let mut c = server.connect();
    assert_eq!(c.cmd("create t"), "+OK created t");
    for prefetch in [
        "0",
        "65536",
        "abc",
        "-1",
        "1.5",
        "1e2",
        "99999999999999999999",
        "0x10",
    ] {
        c.expect_err(&format!("sub t {prefetch}"), "bad_args");
    }
    c.expect_err("unsub t", "not_subscribed");
    assert_eq!(c.cmd("sub t 1"), "+OK subscribed t");
    assert_eq!(c.cmd("sub t 65535"), "+OK subscribed t");
}

#[test]
fn bad_client_name_is_bad_args() {
    let server = Server::start();
    let mut c = server.connect();
    let long = "n".repeat(129);
    for name in [
        "bad/name",
        ".hidden",
        "a*b",
        "caf\u{e9}",
        "a:b",
        "\"q\"",
        long.as_str(),
    ] {
        c.expect_err(&format!("name {name}"), "bad_args");
    }
    // A failed `name` does not count: the connection can still name itself.
    let max = "n".repeat(128);
    assert_eq!(c.cmd(&format!("name {max}")), format!("+OK name {max}"));
}

#[test]
fn bad_topic_names_are_bad_topic_in_every_command() {
    let server = Server::start();
    let mut c = server.connect();
    let long = "t".repeat(129);
    let bad = [
        "bad/topic",
        ".starts-with-dot",
        ".",
        "a*b",
        "a:b",
        "a@b",
        "a,b",
        "caf\u{e9}",
        "{x}",
        long.as_str(),
    ];
    for topic in bad {
        c.expect_err(&format!("create {topic}"), "bad_topic");
        c.expect_err(&format!("sub {topic}"), "bad_topic");
        c.expect_err(&format!("sub {topic} 5"), "bad_topic");
        c.expect_err(&format!("unsub {topic}"), "bad_topic");
        c.expect_err(&format!("ack {topic} 1"), "bad_topic");
        c.expect_err(&format!("stats {topic}"), "bad_topic");
        c.expect_err(
            &format!(r#"pub {topic} {{"id":"1","msg":"m"}}"#),
            "bad_topic",
        );
    }
    assert_eq!(c.topics(), Vec::<String>::new(), "a bad topic was created");
}

#[test]
fn topic_names_at_the_limits_are_accepted() {
    let server = Server::start();
    let mut c = server.connect();
    let max = "T".repeat(128);
    let good = [max.as_str(), "a", "0", "_", "-", "a.", "a..b", "-x.y_Z-9"];
    for topic in good {
        assert_eq!(
            c.cmd(&format!("create {topic}")),
            format!("+OK created {topic}")
        );
    }
    assert_eq!(
        c.cmd(&format!("sub {max} 3")),
        format!("+OK subscribed {max}")
    );
    assert_eq!(
        c.cmd(&format!(r#"pub {max} {{"id":"1","msg":"m"}}"#)),
        format!("+OK published {max} 1")
    );
    assert_eq!(c.delivery()["topic"], max.as_str());
    assert_eq!(c.cmd(&format!("ack {max} 1")), format!("+OK acked {max} 1"));
    let mut topics = c.topics();
    topics.sort();
    let mut expected: Vec<String> = good.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(topics, expected);
}

#[test]
fn malformed_events_are_bad_event_and_store_nothing() {
    let server = Server::start();
    let mut c = server.connect();
    let mut sub = server.connect();
    assert_eq!(c.cmd("create t"), "+OK created t");
    assert_eq!(sub.cmd("sub t 100"), "+OK subscribed t");
    let id257 = "i".repeat(257);
    let events = [
        // not JSON
        "notjson".to_string(),
        r#"{"id":"1","msg":"m""#.to_string(),
        r#"{"id":"1","msg":"m"} trailing"#.to_string(),
        r#"{"id":"1","msg":"m"}{}"#.to_string(),
        r#"{'id':'1','msg':'m'}"#.to_string(),
        // not an object
        r#"[{"id":"1","msg":"m"}]"#.to_string(),
        r#""{\"id\":\"1\",\"msg\":\"m\"}""#.to_string(),
        "42".to_string(),
        "null".to_string(),
        "true".to_string(),
        // missing id or msg
        r#"{"msg":"m"}"#.to_string(),
        r#"{"id":"1"}"#.to_string(),
        "{}".to_string(),
        // bad ids
        r#"{"id":"","msg":"m"}"#.to_string(),
        format!(r#"{{"id":"{id257}","msg":"m"}}"#),
        r#"{"id":"a b","msg":"m"}"#.to_string(),
        r#"{"id":"a\tb","msg":"m"}"#.to_string(),
        r#"{"id":"a\nb","msg":"m"}"#.to_string(),
        r#"{"id":"a\u00a0b","msg":"m"}"#.to_string(),
        r#"{"id":"a\u2028b","msg":"m"}"#.to_string(),
        // 258 bytes of UTF-8 (129 two-byte characters), literal or escaped
        format!(r#"{{"id":"{}","msg":"m"}}"#, "\u{e9}".repeat(129)),
        format!(r#"{{"id":"{}","msg":"m"}}"#, r"\u00e9".repeat(129)),
        format!(r#"{{"id":"{}","msg":"m"}}"#, r"\u0041".repeat(257)),
        r#"{"id":007,"msg":"m"}"#.to_string(),
        r#"{"id":" ","msg":"m"}"#.to_string(),
        r#"{"id":-1,"msg":"m"}"#.to_string(),
        r#"{"id":1.5,"msg":"m"}"#.to_string(),
        r#"{"id":1.0,"msg":"m"}"#.to_string(),
        r#"{"id":1e3,"msg":"m"}"#.to_string(),
        r#"{"id":18446744073709551616,"msg":"m"}"#.to_string(),
        r#"{"id":true,"msg":"m"}"#.to_string(),
        r#"{"id":null,"msg":"m"}"#.to_string(),
        r#"{"id":["1"],"msg":"m"}"#.to_string(),
        r#"{"id":{"a":1},"msg":"m"}"#.to_string(),
        // bad priorities
        r#"{"id":"1","msg":"m","priority":256}"#.to_string(),
        r#"{"id":"1","msg":"m","priority":-1}"#.to_string(),
        r#"{"id":"1","msg":"m","priority":3.0}"#.to_string(),
        r#"{"id":"1","msg":"m","priority":1e2}"#.to_string(),
        r#"{"id":"1","msg":"m","priority":"3"}"#.to_string(),
        r#"{"id":"1","msg":"m","priority":true}"#.to_string(),
        r#"{"id":"1","msg":"m","priority":[3]}"#.to_string(),
        r#"{"id":"1","msg":"m","priority":99999999999999999999}"#.to_string(),
        // reserved fields
        r#"{"id":"1","msg":"m","topic":"t"}"#.to_string(),
        r#"{"id":"1","msg":"m","timestamp":1650054011933}"#.to_string(),
        r#"{"id":"1","msg":"m","redelivered":true}"#.to_string(),
        r#"{"id":"1","msg":"m","redelivered":false}"#.to_string(),
    ];
    for event in &events {
        c.expect_err(&format!("pub t {event}"), "bad_event");
    }
    // On a topic that does not exist yet: bad_event, and the topic is not created.
    c.expect_err(r#"pub newtopic {"id":"1"}"#, "bad_event");
    assert_eq!(c.topics(), ["t"]);
    // Nothing was stored or delivered.
    let t = c.topic_stats("t");
    assert_eq!(t["published"], 0, "{t}");
    assert_eq!(t["pending"], 0, "{t}");
    assert_eq!(t["in_flight"], 0, "{t}");
    sub.assert_quiet();
    // And none of those ids is now taken: "1" is a fresh publish.
    assert_eq!(c.cmd(r#"pub t {"id":"1","msg":"m"}"#), "+OK published t 1");
    assert_eq!(sub.delivery()["id"], "1");
}

#[test]
fn ids_and_priorities_at_the_limits_are_accepted() {
    let server = Server::start();
    let mut c = server.connect();
    assert_eq!(c.cmd("create t"), "+OK created t");
    assert_eq!(c.cmd("sub t 100"), "+OK subscribed t");
    let id256 = "i".repeat(256);
    let cases = [
        (format!(r#"{{"id":"{id256}","msg":1}}"#), id256.clone()),
        (
            r#"{"id":18446744073709551615,"msg":1}"#.to_string(),
            "18446744073709551615".to_string(),
        ),
        (r#"{"id":0,"msg":1}"#.to_string(), "0".to_string()),
        (
            r#"{"id":"\u00e9\u00e8","msg":1}"#.to_string(),
            "\u{e9}\u{e8}".to_string(),
        ),
        (
            r#"{"id":"p0","msg":1,"priority":0}"#.to_string(),
            "p0".to_string(),
        ),
        (
            r#"{"id":"p255","msg":1,"priority":255}"#.to_string(),
            "p255".to_string(),
        ),
        // 256 bytes counted after unescaping, in UTF-8
        (
            format!(r#"{{"id":"{}","msg":1}}"#, "\u{e9}".repeat(128)),
            "\u{e9}".repeat(128),
        ),
        (
            format!(r#"{{"id":"{}","msg":1}}"#, r"\u00e8".repeat(128)),
            "\u{e8}".repeat(128),
        ),
        (
            format!(r#"{{"id":"{}","msg":1}}"#, r"\u0041".repeat(256)),
            "A".repeat(256),
        ),
        (
            r#"{"id":"\ud83d\ude00","msg":1}"#.to_string(),
            "\u{1F600}".to_string(),
        ),
    ];
    for (event, id) in &cases {
        assert_eq!(
            c.cmd(&format!("pub t {event}")),
            format!("+OK published t {id}")
        );
    }
    let mut got: Vec<String> = (0..cases.len())
        .map(|_| c.delivery()["id"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    let mut expected: Vec<String> = cases.iter().map(|(_, id)| id.clone()).collect();
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn invalid_utf8_is_bad_request_and_the_connection_stays_usable() {
    let server = Server::start();
    let mut c = server.connect();
    assert_eq!(c.cmd("create t"), "+OK created t");
    assert_eq!(c.cmd("sub t 10"), "+OK subscribed t");
    let lines: [&[u8]; 6] = [
        b"ping \xff\xfe\n",
        b"\xff\n",
        b"\xc0\x80\n",
        b"create t\xed\xa0\x80\n",
        b"pub t {\"id\":\"1\",\"msg\":\"\xe9\"}\r\n",
        b"p\xc3ng\n",
    ];
    for line in lines {
        c.send_raw(line);
        let reply = c.reply();
        assert_eq!(
            err_code(&reply),
            "bad_request",
            "for {:?}",
            String::from_utf8_lossy(line)
        );
        assert_eq!(c.cmd("ping"), "+OK pong");
    }
    // The pub with invalid UTF-8 stored nothing.
    assert_eq!(c.topic_stats("t")["published"], 0);
    assert_eq!(c.topics(), ["t"]);
    c.assert_quiet();
}

#[test]
fn sub_and_stats_of_a_missing_topic_are_no_topic() {
    let server = Server::start();
    let mut c = server.connect();
    c.expect_err("sub nosuch", "no_topic");
    c.expect_err("sub nosuch 5", "no_topic");
    c.expect_err("stats nosuch", "no_topic");
    assert_eq!(
        c.topics(),
        Vec::<String>::new(),
        "sub or stats created a topic"
    );
    // A failed sub is not a subscription.
    c.expect_err("unsub nosuch", "not_subscribed");
    assert_eq!(c.cmd("create nosuch"), "+OK created nosuch");
    assert_eq!(c.cmd("sub nosuch"), "+OK subscribed nosuch");
}

#[test]
fn unsub_and_ack_without_subscription_are_not_subscribed() {
    let server = Server::start();
    let mut c = server.connect();
    let mut other = server.connect();
    // Topic that does not exist.
    c.expect_err("unsub ghost", "not_subscribed");
    c.expect_err("ack ghost 1", "not_subscribed");
    assert_eq!(c.topics(), Vec::<String>::new());
    // Topic that exists, another connection subscribed and holding event 1.
    assert_eq!(other.cmd("create t"), "+OK created t");
    assert_eq!(other.cmd("sub t"), "+OK subscribed t");
    assert_eq!(
        other.cmd(r#"pub t {"id":"1","msg":"m"}"#),
        "+OK published t 1"
    );
    c.expect_err("unsub t", "not_subscribed");
    c.expect_err("ack t 1", "not_subscribed");
    c.expect_err("ack t never", "not_subscribed");
    // The other subscriber's event is untouched.
    assert_eq!(other.delivery()["id"], "1");
    assert_eq!(other.cmd("ack t 1"), "+OK acked t 1");
    // After unsub, ack is not_subscribed again.
    assert_eq!(other.cmd("unsub t"), "+OK unsubscribed t");
    other.expect_err("unsub t", "not_subscribed");
    other.expect_err("ack t 1", "not_subscribed");
}

#[test]
fn ack_of_unknown_or_already_acked_id_is_no_event() {
    let server = Server::start();
    let mut c = server.connect();
    let mut late = server.connect();
    assert_eq!(c.cmd("create t"), "+OK created t");
    assert_eq!(c.cmd("sub t"), "+OK subscribed t");
    c.expect_err("ack t never-published", "no_event");
    assert_eq!(c.cmd(r#"pub t {"id":"1","msg":"m"}"#), "+OK published t 1");
    assert_eq!(c.delivery()["id"], "1");
    c.expect_err("ack t 2", "no_event");
    // Ids are exact strings.
    c.expect_err("ack t 01", "no_event");
    assert_eq!(c.cmd("ack t 1"), "+OK acked t 1");
    c.expect_err("ack t 1", "no_event");
    // An event published before `late` subscribed is not in its queue.
    assert_eq!(c.cmd("unsub t"), "+OK unsubscribed t");
    assert_eq!(c.cmd("sub t"), "+OK subscribed t");
    assert_eq!(c.cmd(r#"pub t {"id":"2","msg":"m"}"#), "+OK published t 2");
    assert_eq!(late.cmd("sub t"), "+OK subscribed t");
    late.expect_err("ack t 2", "no_event");
    assert_eq!(c.delivery()["id"], "2");
    assert_eq!(c.cmd("ack t 2"), "+OK acked t 2");
    late.assert_quiet();
}

#[test]
fn name_taken_by_a_live_connection_is_name_in_use() {
    let server = Server::start();
    let mut first = server.connect();
    assert_eq!(first.cmd("name bob"), "+OK name bob");
    let mut second = server.connect();
    second.expect_err("name bob", "name_in_use");
    // Names are case-sensitive: "Bob" is another subscriber.
    assert_eq!(second.cmd("name Bob"), "+OK name Bob");
    assert_eq!(first.cmd("quit"), "+OK bye");
    first.expect_eof();
    // Once the holder is gone the name is free again.
    let freed = eventually(std::time::Duration::from_secs(5), || {
        server.connect().cmd("name bob") == "+OK name bob"
    });
    assert!(freed, "name bob still in use after its connection quit");
}

#[test]
fn name_after_sub_or_twice_is_bad_state() {
    let server = Server::start();
    let mut c = server.connect();
    assert_eq!(c.cmd("create t"), "+OK created t");
    assert_eq!(c.cmd("sub t"), "+OK subscribed t");
    c.expect_err("name alice", "bad_state");
    // Still bad_state after the subscription ended.
    assert_eq!(c.cmd("unsub t"), "+OK unsubscribed t");
    c.expect_err("name alice", "bad_state");

    let mut twice = server.connect();
    assert_eq!(twice.cmd("name carol"), "+OK name carol");
    twice.expect_err("name carol", "bad_state");
    twice.expect_err("name dave", "bad_state");

    // A failed sub does not count as the first successful one.
    let mut failed = server.connect();
    failed.expect_err("sub nosuch", "no_topic");
    assert_eq!(failed.cmd("name erin"), "+OK name erin");
    // and a failed name (bad_state) does not rename: erin is still held.
    let mut other = server.connect();
    other.expect_err("name erin", "name_in_use");
    assert_eq!(
        other.cmd("name alice"),
        "+OK name alice",
        "alice was taken by a failed name"
    );
}

#[test]
fn a_line_over_one_mib_is_line_too_long_in_its_place() {
    let server = Server::start();
    let mut c = server.connect();
    let mut bytes = b"ping\n".to_vec();
    bytes.extend(std::iter::repeat_n(b'x', MIB + 1));
    bytes.extend_from_slice(b"\nping\n");
    c.send_raw(&bytes);
    assert_eq!(c.line().as_deref(), Some("+OK pong"));
    let reply = c.line().expect("a reply");
    assert_eq!(err_code(&reply), "line_too_long");
    assert_eq!(c.line().as_deref(), Some("+OK pong"));
    // A too-long pub stores nothing.
    assert_eq!(c.cmd("create t"), "+OK created t");
    let pad = "p".repeat(MIB);
    c.expect_err(
        &format!(r#"pub t {{"id":"big","msg":"{pad}"}}"#),
        "line_too_long",
    );
    assert_eq!(c.topic_stats("t")["published"], 0);
    assert_eq!(c.cmd("ping"), "+OK pong");
}

#[test]
fn a_line_of_exactly_one_mib_is_accepted() {
    let server = Server::start();
    let mut c = server.connect();
    assert_eq!(c.cmd("create t"), "+OK created t");
    assert_eq!(c.cmd("sub t"), "+OK subscribed t");
    let head = r#"pub t {"id":"big","msg":""#;
    let tail = r#""}"#;
    let pad = "p".repeat(MIB - head.len() - tail.len());
    let line = format!("{head}{pad}{tail}");
    assert_eq!(line.len(), MIB);
    assert_eq!(c.cmd(&line), "+OK published t big");
    let d = c.delivery();
    assert_eq!(d["msg"].as_str().map(str::len), Some(pad.len()));
    assert_eq!(c.cmd("ack t big"), "+OK acked t big");
}

#[test]
fn the_cr_of_a_crlf_counts_toward_the_line_limit() {
    // "counting every byte before the LF": MIB bytes + CR is MIB + 1 bytes.
    let server = Server::start();
    let mut c = server.connect();
    let mut bytes = b"ping".to_vec();
    bytes.extend(std::iter::repeat_n(b' ', MIB - 4));
    bytes.extend_from_slice(b"\r\n");
    c.send_raw(&bytes);
    assert_eq!(err_code(&c.reply()), "line_too_long");
    let mut bytes = b"ping".to_vec();
    bytes.extend(std::iter::repeat_n(b' ', MIB - 5));
    bytes.extend_from_slice(b"\r\n");
    c.send_raw(&bytes);
    assert_eq!(c.reply(), "+OK pong");
}

#[test]
fn several_long_lines_sent_in_pieces_are_each_rejected() {
    let server = Server::start();
    let mut c = server.connect();
    let mut w = c.clone_writer();
    let sender = std::thread::spawn(move || {
        for _ in 0..3 {
            // 3 MiB, written 64 KiB at a time.
            let chunk = vec![b'z'; 64 * 1024];
            for _ in 0..48 {
                w.write_all(&chunk).unwrap();
            }
            w.write_all(b"\nping\n").unwrap();
        }
    });
    for _ in 0..3 {
        assert_eq!(err_code(&c.reply()), "line_too_long");
        assert_eq!(c.reply(), "+OK pong");
    }
    sender.join().unwrap();
}

#[test]
fn max_line_bytes_is_configurable() {
    let server = Server::with_config(|c| c.max_line_bytes = 100);
    let mut c = server.connect();
    let ok = format!("ping{}", " ".repeat(96));
    assert_eq!(ok.len(), 100);
    assert_eq!(c.cmd(&ok), "+OK pong");
    let long = format!("ping{}", " ".repeat(97));
    c.expect_err(&long, "line_too_long");
    assert_eq!(c.cmd("ping"), "+OK pong");
}

#[test]
fn shape_errors_win_over_state_errors() {
    let server = Server::start();
    let mut c = server.connect();
    // The examples of "Which error wins" (section 7).
    c.expect_err("sub bad/topic 0", "bad_args");
    c.expect_err("pub bad/topic notjson", "bad_topic");
    // More: unknown word first, then args, then topic, then event, then state.
    c.expect_err("bogus bad/topic", "unknown_command");
    c.expect_err("sub nosuch 0", "bad_args");
    c.expect_err("sub nosuch abc", "bad_args");
    c.expect_err("sub bad/topic", "bad_topic");
    c.expect_err("ack bad/topic", "bad_args");
    c.expect_err("ack bad/topic 1", "bad_topic");
    c.expect_err("unsub bad/topic", "bad_topic");
    c.expect_err("unsub bad/topic extra", "bad_args");
    c.expect_err("stats bad/topic", "bad_topic");
    c.expect_err("pub nosuch notjson", "bad_event");
    c.expect_err("pub bad/topic", "bad_args");
    assert_eq!(c.topics(), Vec::<String>::new());
    // State errors among themselves.
    assert_eq!(c.cmd("create t"), "+OK created t");
    c.expect_err("ack t never", "not_subscribed");
    assert_eq!(c.cmd("sub t"), "+OK subscribed t");
    c.expect_err("name bad/name", "bad_args");
    c.expect_err("name", "bad_args");
    c.expect_err("name fine", "bad_state");
}
