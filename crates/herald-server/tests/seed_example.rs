//! The seed's telnet session (`docs/protocol.md` section 1), replayed
//! against the broker.
mod common;
use common::*;

#[test]
fn seed_session_publish_subscribe_ack() {
    let server = Server::start();
    let mut publisher = server.connect();
    let mut subscriber = server.connect();

    assert_eq!(publisher.cmd("create tweets"), "+OK created tweets");
    assert_eq!(subscriber.cmd("sub tweets"), "+OK subscribed tweets");
    assert_eq!(
        publisher.cmd(r#"pub tweets {"id":"1", "priority": 3, "msg":"tweet 1"}"#),
        "+OK published tweets 1"
    );
    let d = subscriber.delivery();
    assert_eq!(d["topic"], "tweets");
    assert_eq!(d["id"], "1");
    assert_eq!(d["priority"], 3);
    assert_eq!(d["msg"], "tweet 1");
    assert!(d["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    assert!(d.get("redelivered").is_none());
    assert_eq!(subscriber.cmd("ack tweets 1"), "+OK acked tweets 1");
    assert_eq!(
        subscriber.cmd("ack tweets 1").split_whitespace().nth(1),
        Some("no_event")
    );
}
