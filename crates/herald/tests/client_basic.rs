//! The client library against the real broker: publishing, subscribing,
//! acknowledging, typed errors, pipelining.
mod common;

use common::Server;
use herald_client::{Client, Delivery, Error, ErrorCode, Event, Publish, Subscription};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Longest a test waits for one delivery.
const WAIT: Duration = Duration::from_secs(20);

async fn next(sub: &mut Subscription) -> Delivery {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a delivery in time")
        .expect("the subscription is open")
}

fn code(result: Result<impl std::fmt::Debug, Error>) -> ErrorCode {
    match result {
        Err(e) => e.code().unwrap_or_else(|| panic!("no code in {e:?}")),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_duplicate_while_pending() {
    let server = Server::start();
    let client = Client::connect(server.addr).await.unwrap();
    client.create("tweets").await.unwrap();
    let _sub = client.subscribe("tweets", 1).await.unwrap();
    let event = Event::new("1", "tweet 1").priority(3);
    assert_eq!(
        client.publish("tweets", &event).await.unwrap(),
        Publish::Published
    );
    assert_eq!(
        client.publish("tweets", &event).await.unwrap(),
        Publish::Duplicate
    );
    let raw = client
        .publish_json("tweets", "{\"id\":\"2\",\n\"msg\":\"two\"}")
        .await;
    assert_eq!(raw.unwrap(), Publish::Published);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_come_by_priority_and_each_ack_frees_the_next() {
    let server = Server::start();
    let publisher = Client::connect(server.addr).await.unwrap();
    let subscriber = Client::connect(server.addr).await.unwrap();
    publisher.create("tweets").await.unwrap();
    let mut sub = subscriber.subscribe("tweets", 1).await.unwrap();
    assert_eq!(sub.topic(), "tweets");

    // "1" goes out at once (nothing in flight); the others queue behind it.
    publisher
        .publish("tweets", &Event::new("1", "first").priority(1))
        .await
        .unwrap();
    let first = next(&mut sub).await;
    for (id, priority) in [("2", 4), ("3", 9), ("4", 4)] {
        let event =
            serde_json::json!({"id": id, "priority": priority, "msg": {"n": id}, "lang": "en"});
        publisher.publish("tweets", &event).await.unwrap();
    }
    assert_eq!(first.id, "1");
    assert_eq!(first.priority, 1);
    assert_eq!(first.msg, "first");
    assert!(first.timestamp > 1_600_000_000_000);
    assert!(!first.redelivered);
    assert!(sub.try_next().is_none(), "prefetch 1 holds the rest back");
    first.ack().await.unwrap();

    let mut order = Vec::new();
    for _ in 0..3 {
        let d = next(&mut sub).await;
        assert_eq!(d.topic, "tweets");
        assert_eq!(d.msg["n"], d.id.as_str());
        assert_eq!(d.to_value().unwrap()["lang"], "en");
        order.push(d.id.clone());
        subscriber.ack("tweets", &d.id).await.unwrap();
    }
    assert_eq!(order, ["3", "2", "4"], "priority first, then oldest first");
    assert_eq!(code(first.ack().await), ErrorCode::NoEvent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_map_to_typed_codes() {
    let server = Server::start();
    let client = Client::connect(server.addr).await.unwrap();
    assert_eq!(
        code(client.subscribe("missing", 1).await),
        ErrorCode::NoTopic
    );
    assert_eq!(
        code(client.stats(Some("missing")).await),
        ErrorCode::NoTopic
    );
    assert_eq!(
        code(client.ack("missing", "1").await),
        ErrorCode::NotSubscribed
    );
    client.create("t").await.unwrap();
    assert_eq!(
        code(client.unsubscribe("t").await),
        ErrorCode::NotSubscribed
    );
    assert_eq!(
        code(client.publish_json("t", "{}").await),
        ErrorCode::BadEvent
    );
    assert_eq!(
        code(client.publish_json("t", "not json").await),
        ErrorCode::BadEvent
    );
    let reserved = serde_json::json!({"id": 1, "msg": "x", "topic": "t"});
    assert_eq!(
        code(client.publish("t", &reserved).await),
        ErrorCode::BadEvent
    );
    let _sub = client.subscribe("t", 4).await.unwrap();
    assert_eq!(code(client.ack("t", "nope").await), ErrorCode::NoEvent);
    assert_eq!(code(client.name("late").await), ErrorCode::BadState);

    // Refused by the client before sending, with the broker's code.
    let bad_topic = client.publish("a b", &Event::new("1", "x")).await;
    assert!(matches!(bad_topic, Err(Error::Invalid { .. })));
    assert_eq!(code(bad_topic), ErrorCode::BadTopic);
    assert_eq!(code(client.subscribe("t", 0).await), ErrorCode::BadArgs);
    assert_eq!(code(client.ack("t", "two words").await), ErrorCode::BadArgs);

    // The connection is still in step after all that.
    client.ping().await.unwrap();

    let holder = Client::connect(server.addr).await.unwrap();
    holder.name("bob").await.unwrap();
    let taken = herald_client::ClientOptions::new().name("bob");
    assert_eq!(
        code(Client::connect_with(server.addr, taken).await),
        ErrorCode::NameInUse
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_publishes_in_flight_are_all_confirmed() {
    const N: usize = 10_000;
    let server = Server::start();
    let client = Client::connect(server.addr).await.unwrap();
    client.create("bulk").await.unwrap();
    let mut sub = client.subscribe("bulk", 100).await.unwrap();
    let confirms: Vec<_> = (0..N)
        .map(|i| client.publish("bulk", &Event::new(i.to_string(), i)))
        .collect();
    for confirm in confirms {
        assert_eq!(confirm.await.unwrap(), Publish::Published);
    }
    let stats = client.stats(Some("bulk")).await.unwrap();
    assert_eq!(stats.topics["bulk"].published, N as u64);
    // Deliveries interleave with the replies on the same connection.
    let mut seen = 0;
    while seen < N {
        let d = next(&mut sub).await;
        d.send_ack();
        seen += 1;
    }
    let stats = client.stats(Some("bulk")).await.unwrap();
    assert_eq!(
        stats.topics["bulk"].pending + stats.topics["bulk"].in_flight,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_stats_ping_and_unsubscribe() {
    let server = Server::start();
    let client = Client::connect(server.addr).await.unwrap();
    assert!(client.ping().await.unwrap() < WAIT);
    client.create("tweets").await.unwrap();
    client.create("users").await.unwrap();
    client.create("users").await.unwrap();
    let mut topics = client.topics().await.unwrap();
    topics.sort();
    assert_eq!(topics, ["tweets", "users"]);

    let mut tweets = client.subscribe("tweets", 2).await.unwrap();
    let mut users = client.subscribe("users", 2).await.unwrap();
    client
        .publish("users", &Event::new("u1", "alice"))
        .await
        .unwrap();
    client
        .publish("tweets", &Event::new("t1", "hello"))
        .await
        .unwrap();
    assert_eq!(next(&mut users).await.id, "u1");
    assert_eq!(next(&mut tweets).await.id, "t1");

    let stats = client.stats(None).await.unwrap();
    assert_eq!(stats.topics["tweets"].subscribers, 1);
    assert_eq!(stats.topics["tweets"].in_flight, 1);
    assert_eq!(stats.topics["tweets"].published, 1);
    let json = client.stats_json(Some("users")).await.unwrap();
    assert_eq!(json["topics"]["users"]["in_flight"], 1);

    users.unsubscribe().await.unwrap();
    client.unsubscribe("tweets").await.unwrap();
    assert!(tweets.next().await.is_none(), "the subscription ended");
    let stats = client.stats(None).await.unwrap();
    assert_eq!(stats.topics["users"].subscribers, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_reconnect_a_lost_connection_ends_everything() {
    let mut server = Server::start();
    let client = Client::connect(server.addr).await.unwrap();
    client.create("t").await.unwrap();
    let mut sub = client.subscribe("t", 1).await.unwrap();
    server.stop();
    let end = tokio::time::timeout(WAIT, sub.next()).await.unwrap();
    assert!(end.is_none());
    assert!(matches!(client.ping().await, Err(Error::Closed)));
    assert!(matches!(
        client.publish("t", &Event::new("1", "x")).await,
        Err(Error::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_says_quit_and_later_calls_are_closed() {
    let server = Server::start();
    let client = Client::connect(server.addr).await.unwrap();
    client.close().await.unwrap();
    assert!(matches!(client.ping().await, Err(Error::Closed)));
}

/// A fake broker that answers with lines a real one never sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_lines_are_protocol_errors_not_panics() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (reader, mut writer) = socket.into_split();
        let mut lines = BufReader::new(reader).lines();
        writer.write_all(b"+OK fake ready\r\n").await.unwrap();
        // The client states its reply mode when it connects.
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "replies all");
        writer.write_all(b"+OK replies all\r\n").await.unwrap();
        let answers: [&[u8]; 5] = [
            b"hello there\r\n",
            b"+OK subscribed elsewhere\r\n",
            b"-ERR made_up_code what\r\n",
            b"{not json}\r\n\xff\xfe\r\n",
            b"+OK pong\r\n",
        ];
        for answer in answers {
            lines.next_line().await.unwrap();
            writer.write_all(answer).await.unwrap();
        }
        // Keep the socket open until the client is done.
        let _ = lines.next_line().await;
    });
    let client = Client::connect(addr).await.unwrap();
    let protocol = |r: Result<_, Error>| matches!(r, Err(Error::Protocol(_)));
    assert!(protocol(client.ping().await.map(drop)));
    assert!(protocol(
        client.publish("t", &Event::new("1", "x")).await.map(drop)
    ));
    assert!(protocol(client.create("t").await));
    // A malformed delivery is skipped; the non-UTF-8 line is this reply.
    assert!(protocol(client.topics().await.map(drop)));
    client.ping().await.unwrap();
    drop(client);
    fake.await.unwrap();
}
