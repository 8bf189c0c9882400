//! A named client that reconnects: after the broker restarts (or the
//! connection is cut) its subscriptions go on and it sees redeliveries.
//!
//! A restarted test broker listens on a new port, so the client talks to it
//! through a small TCP proxy on a fixed port that forwards to wherever the
//! broker is now; cutting the proxy's connections also simulates a network
//! drop while the broker keeps running.
mod common;

use common::Server;
use herald_client::{Client, ClientOptions, Delivery, Event, Publish, Subscription};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(20);

async fn next(sub: &mut Subscription) -> Delivery {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a delivery in time")
        .expect("the subscription is open")
}

/// Forwards every connection to the current upstream address.
struct Proxy {
    addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    /// Bumped to cut every open connection.
    cut: watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = Arc::new(Mutex::new(upstream));
        let (cut, _) = watch::channel(0u64);
        let target = upstream.clone();
        let cuts = cut.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let to = *target.lock().unwrap();
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    // Broker down: drop the client, which will retry.
                    let Ok(mut server) = TcpStream::connect(to).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            upstream,
            cut,
        }
    }

    fn point_to(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap() = upstream;
    }

    fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

fn durable(name: &str) -> ClientOptions {
    ClientOptions::new().name(name).reconnect(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_subscriber_gets_unacked_events_again_after_a_broker_restart() {
    let mut server = Server::start();
    let proxy = Proxy::start(server.addr).await;
    let bob = Client::connect_with(proxy.addr, durable("bob"))
        .await
        .unwrap();
    let publisher = Client::connect(server.addr).await.unwrap();
    publisher.create("tweets").await.unwrap();
    let mut tweets = bob.subscribe("tweets", 10).await.unwrap();
    for (id, priority) in [("1", 5), ("2", 3), ("3", 1)] {
        let event = Event::new(id, format!("tweet {id}")).priority(priority);
        publisher.publish("tweets", &event).await.unwrap();
    }
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(next(&mut tweets).await);
    }
    assert!(first.iter().all(|d| !d.redelivered));
    first[0].ack().await.unwrap();
    drop(publisher);

    server.stop();
    server.restart(&[]);
    proxy.point_to(server.addr);

    // Same Subscription: the unacknowledged two come back, marked.
    let again = [next(&mut tweets).await, next(&mut tweets).await];
    let ids: Vec<&str> = again.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["2", "3"]);
    assert!(again.iter().all(|d| d.redelivered), "{again:?}");
    // An ack from before the restart, of an event redelivered since.
    first[1].ack().await.unwrap();
    again[1].ack().await.unwrap();

    // And new events keep flowing to it.
    let publisher = Client::connect(server.addr).await.unwrap();
    publisher
        .publish("tweets", &Event::new("4", "tweet 4"))
        .await
        .unwrap();
    let fresh = next(&mut tweets).await;
    assert_eq!((fresh.id.as_str(), fresh.redelivered), ("4", false));
    fresh.ack().await.unwrap();
    let stats = publisher.stats(Some("tweets")).await.unwrap();
    assert_eq!(stats.topics["tweets"].pending, 0);
    assert_eq!(stats.topics["tweets"].in_flight, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_is_resumed_and_commands_sent_meanwhile_go_through() {
    let server = Server::start();
    let proxy = Proxy::start(server.addr).await;
    let alice = Client::connect_with(proxy.addr, durable("alice"))
        .await
        .unwrap();
    alice.create("users").await.unwrap();
    let mut users = alice.subscribe("users", 1).await.unwrap();
    assert_eq!(
        alice
            .publish("users", &Event::new("u1", "alice"))
            .await
            .unwrap(),
        Publish::Published
    );
    let u1 = next(&mut users).await;
    assert!(!u1.redelivered);

    proxy.cut_all();
    // Queued while the connection is down or coming back; sent after the
    // client has named itself and resubscribed.
    let publish = alice.publish("users", &Event::new("u2", "bob"));
    let again = next(&mut users).await;
    assert_eq!((again.id.as_str(), again.redelivered), ("u1", true));
    // `duplicate` when the first try reached the broker but its reply was
    // lost in the cut: stored either way.
    let outcome = publish.await.unwrap();
    assert!(matches!(outcome, Publish::Published | Publish::Duplicate));
    again.ack().await.unwrap();
    let u2 = next(&mut users).await;
    assert_eq!(u2.id, "u2");
    u2.ack().await.unwrap();
    alice.ping().await.unwrap();
}
