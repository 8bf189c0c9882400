//! `docs/protocol.md` sections 2, 3 and 6: framing and the exact text of
//! every reply.
mod common;
use common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// Reads raw lines (with their line ends) from `stream` until `done` says
/// stop or the server closes the connection.
fn raw_lines(
    reader: &mut BufReader<TcpStream>,
    mut done: impl FnMut(&[Vec<u8>]) -> bool,
) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    while !done(&lines) {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).expect("read") == 0 {
            break;
        }
        lines.push(line);
    }
    lines
}

#[test]
fn greeting_comes_first_and_every_line_ends_in_crlf() {
    let server = Server::start();
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream.set_read_timeout(Some(LINE_TIMEOUT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    stream
        .write_all(b"create t\nsub t 5\npub t {\"id\":\"1\",\"msg\":\"m\"}\n")
        .unwrap();
    // Greeting, 3 replies, 1 delivery.
    let mut lines = raw_lines(&mut reader, |l| l.len() == 5);
    stream
        .write_all(b"bogus\nsub nosuch\nstats\ntopics\nack t 1\nping\nquit\n")
        .unwrap();
    lines.extend(raw_lines(&mut reader, |_| false));
    let text: Vec<String> = lines
        .iter()
        .map(|l| String::from_utf8(l.clone()).expect("server writes UTF-8"))
        .collect();
    for line in &text {
        assert!(
            line.ends_with("\r\n"),
            "line without CRLF: {line:?} in {text:?}"
        );
        assert_eq!(line.matches('\r').count(), 1, "stray CR in {line:?}");
    }
    let lines: Vec<&str> = text.iter().map(|l| l.trim_end_matches("\r\n")).collect();
    assert!(lines[0].starts_with("+OK "), "greeting first: {lines:?}");
    // Nothing after `+OK bye`: the server closed the connection.
    assert_eq!(lines.len(), 12, "{lines:?}");
    assert_eq!(
        &lines[1..4],
        ["+OK created t", "+OK subscribed t", "+OK published t 1"]
    );
    assert!(lines[4].starts_with('{'), "delivery: {}", lines[4]);
    assert_eq!(err_code(lines[5]), "unknown_command");
    assert_eq!(err_code(lines[6]), "no_topic");
    assert!(lines[7].starts_with("+OK {"), "{}", lines[7]);
    assert_eq!(lines[8], r#"+OK ["t"]"#);
    assert_eq!(lines[9], "+OK acked t 1");
    assert_eq!(lines[10], "+OK pong");
    assert_eq!(lines[11], "+OK bye");
}

#[test]
fn greeting_is_sent_before_the_client_says_anything() {
    let server = Server::start();
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream.set_read_timeout(Some(LINE_TIMEOUT)).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\n") {
        let n = stream.read(&mut byte).expect("greeting arrives unprompted");
        assert_eq!(n, 1, "connection closed during the greeting");
        got.push(byte[0]);
    }
    assert!(
        got.starts_with(b"+OK "),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        got.ends_with(b"\r\n"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn lf_and_crlf_line_endings_both_work() {
    let server = Server::start();
    let mut c = server.connect();
    c.send_raw(b"ping\r\n");
    assert_eq!(c.reply(), "+OK pong");
    c.send_raw(b"ping\n");
    assert_eq!(c.reply(), "+OK pong");
    // The CR is dropped, not kept as part of the last token.
    c.send_raw(b"create crlf\r\n");
    assert_eq!(c.reply(), "+OK created crlf");
    c.send_raw(b"create lf\n");
    assert_eq!(c.reply(), "+OK created lf");
    let mut topics = c.topics();
    topics.sort();
    assert_eq!(topics, ["crlf", "lf"]);
    c.send_raw(b"sub crlf\r\n");
    assert_eq!(c.reply(), "+OK subscribed crlf");
    c.send_raw(b"pub crlf {\"id\":\"x\",\"msg\":\"m\"}\r\n");
    assert_eq!(c.reply(), "+OK published crlf x");
    assert_eq!(c.delivery()["id"], "x");
    c.send_raw(b"ack crlf x\r\n");
    assert_eq!(c.reply(), "+OK acked crlf x");
}

#[test]
fn empty_and_whitespace_only_lines_get_no_reply() {
    let server = Server::start();
    let mut c = server.connect();
    c.send_raw(b"\n  \t\nping\n");
    assert_eq!(c.line().as_deref(), Some("+OK pong"));
    c.send_raw(b"\r\n \r\n\t\t\r\n\n\nping\r\n");
    assert_eq!(c.line().as_deref(), Some("+OK pong"));
    c.send_raw(b"\n\n \n");
    c.assert_quiet();
    assert_eq!(c.cmd("ping"), "+OK pong");
}

#[test]
fn command_words_are_case_insensitive_in_short_and_long_forms() {
    let server = Server::start();
    let mut c = server.connect();
    assert_eq!(c.cmd("NAME alice"), "+OK name alice");
    assert_eq!(c.cmd("CREATE t"), "+OK created t");
    assert_eq!(c.cmd("Create t"), "+OK created t");
    assert_eq!(c.cmd("SUBSCRIBE t 10"), "+OK subscribed t");
    assert_eq!(c.cmd("Subscribe t 10"), "+OK subscribed t");
    assert_eq!(c.cmd("SUB t 10"), "+OK subscribed t");
    assert_eq!(c.cmd(r#"pub t {"id":"1","msg":"a"}"#), "+OK published t 1");
    assert_eq!(c.cmd(r#"PUB t {"id":"2","msg":"a"}"#), "+OK published t 2");
    assert_eq!(
        c.cmd(r#"Publish t {"id":"3","msg":"a"}"#),
        "+OK published t 3"
    );
    assert_eq!(
        c.cmd(r#"PUBLISH t {"id":"4","msg":"a"}"#),
        "+OK published t 4"
    );
    assert_eq!(
        c.cmd(r#"publish t {"id":"5","msg":"a"}"#),
        "+OK published t 5"
    );
    for id in 1..=5 {
        assert_eq!(c.delivery()["id"], id.to_string());
    }
    assert_eq!(c.cmd("ACK t 1"), "+OK acked t 1");
    assert_eq!(c.cmd("ACKNOWLEDGE t 2"), "+OK acked t 2");
    assert_eq!(c.cmd("Acknowledge t 3"), "+OK acked t 3");
    assert_eq!(c.cmd("acknowledge t 4"), "+OK acked t 4");
    assert_eq!(c.cmd("aCk t 5"), "+OK acked t 5");
    assert_eq!(c.cmd("PING"), "+OK pong");
    assert_eq!(c.cmd("Ping"), "+OK pong");
    assert_eq!(c.cmd("TOPICS"), r#"+OK ["t"]"#);
    assert!(c.cmd("STATS").starts_with("+OK {"));
    assert!(c.cmd("Stats t").starts_with("+OK {"));
    assert_eq!(c.cmd("UNSUBSCRIBE t"), "+OK unsubscribed t");
    assert_eq!(c.cmd("sub t"), "+OK subscribed t");
    assert_eq!(c.cmd("Unsubscribe t"), "+OK unsubscribed t");
    assert_eq!(c.cmd("sub t"), "+OK subscribed t");
    assert_eq!(c.cmd("UNSUB t"), "+OK unsubscribed t");
    assert_eq!(c.cmd("QUIT"), "+OK bye");
    c.expect_eof();

    let mut c = server.connect();
    assert_eq!(c.cmd("name bob"), "+OK name bob");
    let mut c = server.connect();
    assert_eq!(c.cmd("Name carol"), "+OK name carol");
    assert_eq!(c.cmd("Quit"), "+OK bye");
    c.expect_eof();
}

#[test]
fn tokens_may_be_separated_by_tabs_and_several_spaces() {
    let server = Server::start();
    let mut c = server.connect();
    assert_eq!(c.cmd("create \t  t"), "+OK created t");
    assert_eq!(c.cmd("sub\t\tt  \t 2"), "+OK subscribed t");
    assert_eq!(
        c.cmd("pub  \t t\t \t{\"id\":\"1\", \"msg\" : \"a  b\"}"),
        "+OK published t 1"
    );
    let d = c.delivery();
    assert_eq!(d["id"], "1");
    assert_eq!(d["msg"], "a  b");
    assert_eq!(c.cmd("ack\tt\t1"), "+OK acked t 1");
    assert_eq!(c.cmd("stats \t t")[..4], *"+OK ");
    assert_eq!(c.cmd("unsub \t t"), "+OK unsubscribed t");
    // The prefetch of the tab-separated `sub` was 2, not something else:
    assert_eq!(c.cmd("sub t\t2"), "+OK subscribed t");
    for id in ["a", "b", "c"] {
        assert_eq!(
            c.cmd(&format!(r#"pub t {{"id":"{id}","msg":0}}"#)),
            format!("+OK published t {id}")
        );
    }
    assert_eq!(c.delivery()["id"], "a");
    assert_eq!(c.delivery()["id"], "b");
    c.assert_quiet();
}

#[test]
fn topic_names_and_ids_are_case_sensitive() {
    let server = Server::start();
    let mut c = server.connect();
    assert_eq!(c.cmd("create Tweets"), "+OK created Tweets");
    c.expect_err("sub tweets", "no_topic");
    c.expect_err("stats tweets", "no_topic");
    assert_eq!(c.topics(), ["Tweets"]);
    assert_eq!(c.cmd("create tweets"), "+OK created tweets");
    let mut topics = c.topics();
    topics.sort();
    assert_eq!(topics, ["Tweets", "tweets"]);

    assert_eq!(c.cmd("sub Tweets 10"), "+OK subscribed Tweets");
    assert_eq!(
        c.cmd(r#"pub tweets {"id":"x","msg":1}"#),
        "+OK published tweets x"
    );
    assert_eq!(
        c.cmd(r#"pub Tweets {"id":"A","msg":1}"#),
        "+OK published Tweets A"
    );
    // A different id, not a duplicate of "A".
    assert_eq!(
        c.cmd(r#"pub Tweets {"id":"a","msg":2}"#),
        "+OK published Tweets a"
    );
    let first = c.delivery();
    assert_eq!(
        (first["topic"].as_str(), first["id"].as_str()),
        (Some("Tweets"), Some("A"))
    );
    let second = c.delivery();
    assert_eq!(second["id"], "a");
    assert_eq!(second["msg"], 2);
    c.expect_err("ack tweets A", "not_subscribed");
    c.expect_err("ack TWEETS A", "not_subscribed");
    assert_eq!(c.cmd("ack Tweets a"), "+OK acked Tweets a");
    c.expect_err("ack Tweets a", "no_event");
    assert_eq!(c.cmd("ack Tweets A"), "+OK acked Tweets A");
}

#[test]
fn core_command_replies_are_exactly_as_specified() {
    let server = Server::start();
    let mut c = server.connect();
    assert_eq!(c.cmd("create news.eu-west_1"), "+OK created news.eu-west_1");
    assert_eq!(
        c.cmd("sub news.eu-west_1 3"),
        "+OK subscribed news.eu-west_1"
    );
    assert_eq!(
        c.cmd(r#"pub news.eu-west_1 {"id":"ev-1","msg":"hello"}"#),
        "+OK published news.eu-west_1 ev-1"
    );
    assert_eq!(
        c.cmd(r#"pub news.eu-west_1 {"id":"ev-1","msg":"hello again"}"#),
        "+OK duplicate news.eu-west_1 ev-1"
    );
    assert_eq!(c.delivery()["id"], "ev-1");
    assert_eq!(
        c.cmd("ack news.eu-west_1 ev-1"),
        "+OK acked news.eu-west_1 ev-1"
    );
    assert_eq!(
        c.cmd("unsub news.eu-west_1"),
        "+OK unsubscribed news.eu-west_1"
    );
    // pub creates the topic.
    assert_eq!(
        c.cmd(r#"pub fresh {"id":7,"msg":null}"#),
        "+OK published fresh 7"
    );
    let mut topics = c.topics();
    topics.sort();
    assert_eq!(topics, ["fresh", "news.eu-west_1"]);
}

#[test]
fn name_create_topics_ping_replies_are_exactly_as_specified() {
    let server = Server::start();
    let mut c = server.connect();
    assert_eq!(c.cmd("topics"), "+OK []");
    assert_eq!(c.cmd("name worker-1.a_B"), "+OK name worker-1.a_B");
    assert_eq!(c.cmd("create users"), "+OK created users");
    // Also when it exists.
    assert_eq!(c.cmd("create users"), "+OK created users");
    assert_eq!(c.cmd("create tweets"), "+OK created tweets");
    let reply = c.cmd("topics");
    let json = reply.strip_prefix("+OK ").expect(&reply);
    let mut topics: Vec<String> = serde_json::from_str(json).expect("a JSON array of strings");
    topics.sort();
    assert_eq!(topics, ["tweets", "users"]);
    assert_eq!(c.cmd("ping"), "+OK pong");
}

#[test]
fn stats_reports_subscribers_pending_in_flight_and_published() {
    let server = Server::start();
    let mut c = server.connect();
    let mut other = server.connect();
    assert_eq!(c.stats(None), serde_json::json!({"topics": {}}));
    assert_eq!(c.cmd("create tweets"), "+OK created tweets");
    assert_eq!(c.cmd("create users"), "+OK created users");
    let empty = serde_json::json!({"subscribers":0,"pending":0,"in_flight":0,"published":0});
    let all = c.stats(None);
    let topics = all["topics"].as_object().expect("topics object");
    assert_eq!(topics.len(), 2, "{all}");
    for name in ["tweets", "users"] {
        for (field, value) in empty.as_object().unwrap() {
            assert_eq!(&topics[name][field], value, "{name}.{field} in {all}");
        }
    }

    assert_eq!(c.cmd("sub tweets 2"), "+OK subscribed tweets");
    assert_eq!(other.cmd("sub tweets"), "+OK subscribed tweets");
    for i in 1..=5 {
        assert_eq!(
            c.cmd(&format!(r#"pub tweets {{"id":"{i}","msg":"m"}}"#)),
            format!("+OK published tweets {i}")
        );
    }
    assert_eq!(
        c.cmd(r#"pub tweets {"id":"1","msg":"m"}"#),
        "+OK duplicate tweets 1"
    );
    // c holds 2 in flight and 3 queued; `other` 1 in flight and 4 queued.
    c.delivery();
    c.delivery();
    other.delivery();
    let only = c.stats(Some("tweets"));
    let topics = only["topics"].as_object().expect("topics object");
    assert_eq!(topics.keys().collect::<Vec<_>>(), ["tweets"], "{only}");
    let t = &topics["tweets"];
    assert_eq!(t["subscribers"], 2, "{only}");
    assert_eq!(t["pending"], 7, "{only}");
    assert_eq!(t["in_flight"], 3, "{only}");
    assert_eq!(t["published"], 5, "{only}");
    let u = c.topic_stats("users");
    assert_eq!(u["subscribers"], 0);
    assert_eq!(u["published"], 0);
}

#[test]
fn quit_says_bye_closes_and_ignores_what_follows() {
    let server = Server::start();
    let mut c = server.connect();
    c.send_raw(b"ping\nquit\nping\ncreate after_quit\n");
    assert_eq!(c.line().as_deref(), Some("+OK pong"));
    assert_eq!(c.line().as_deref(), Some("+OK bye"));
    c.expect_eof();
    let mut other = server.connect();
    assert_eq!(
        other.topics(),
        Vec::<String>::new(),
        "`create` after quit ran"
    );
    // Replies that wait for the disk still come before `+OK bye`.
    let mut c = server.connect();
    c.send_raw(b"pub q {\"id\":\"1\",\"msg\":1}\npub q {\"id\":\"2\",\"msg\":1}\nquit\npub q {\"id\":\"3\",\"msg\":1}\n");
    assert_eq!(c.line().as_deref(), Some("+OK published q 1"));
    assert_eq!(c.line().as_deref(), Some("+OK published q 2"));
    assert_eq!(c.line().as_deref(), Some("+OK bye"));
    c.expect_eof();
    assert_eq!(other.topic_stats("q")["published"], 2);
}

#[test]
fn a_cr_inside_the_event_json_does_not_end_up_inside_a_delivery_line() {
    // CR is JSON whitespace; the delivery must still be one CRLF-terminated
    // line with no other CR (Client::line checks the ending).
    let server = Server::start();
    let mut c = server.connect();
    assert_eq!(c.cmd("create t"), "+OK created t");
    assert_eq!(c.cmd("sub t 5"), "+OK subscribed t");
    c.send_raw(b"pub t {\"id\":\"1\",\r\"msg\":{\"a\":\r[1,\r2]},\"x\":\r1}\n");
    assert_eq!(c.line().as_deref(), Some("+OK published t 1"));
    let line = c.line().expect("delivery");
    assert!(!line.contains('\r'), "CR inside a delivery: {line:?}");
    let d: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(d["msg"], serde_json::json!({"a":[1,2]}));
    assert_eq!(d["x"], 1);
}

#[test]
fn half_closed_connection_still_gets_every_reply_then_eof() {
    let server = Server::start();
    let mut c = server.connect();
    c.send_raw(
        b"create t\nping\npub t {\"id\":\"1\",\"msg\":\"m\"}\nbogus\nack t 1\ntopics\nstats t\n",
    );
    c.shutdown_write();
    assert_eq!(c.reply(), "+OK created t");
    assert_eq!(c.reply(), "+OK pong");
    assert_eq!(c.reply(), "+OK published t 1");
    assert_eq!(err_code(&c.reply()), "unknown_command");
    assert_eq!(err_code(&c.reply()), "not_subscribed");
    assert_eq!(c.reply(), r#"+OK ["t"]"#);
    assert!(c.reply().starts_with("+OK {"));
    c.expect_eof();
}

#[test]
fn half_close_of_a_large_pipelined_batch_answers_all_of_it() {
    let server = Server::start();
    let mut c = server.connect();
    let mut batch = Vec::new();
    for i in 0..2000 {
        batch.extend_from_slice(format!("pub h {{\"id\":{i},\"msg\":\"m\"}}\nping\n").as_bytes());
    }
    let mut writer = c.clone_writer();
    let sender = std::thread::spawn(move || {
        writer.write_all(&batch).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    for i in 0..2000 {
        assert_eq!(c.reply(), format!("+OK published h {i}"));
        assert_eq!(c.reply(), "+OK pong");
    }
    sender.join().unwrap();
    c.expect_eof();
}
