//! The client library's version 2 API against the real broker: groups and
//! their options, ack deadlines, `nack`, `touch`, dead letters, `peek`,
//! time to live, delayed events, limits, reply modes, and a group member
//! that reconnects.
mod common;

use common::Server;
use herald_client::{
    Client, ClientOptions, DeadReason, Delivery, Error, ErrorCode, Event, NackAction, Overflow,
    PeekState, PeekTarget, Publish, ReplyMode, SubscribeOptions, Subscription,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

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

/// Nothing is waiting on `sub` once the broker has answered a ping (which
/// it writes after any delivery a command before it made possible).
async fn assert_nothing_for(client: &Client, sub: &mut Subscription) {
    client.ping().await.unwrap();
    if let Some(d) = sub.try_next() {
        panic!("unexpected delivery {}", d.raw);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_shares_one_queue_and_keeps_its_options() {
    let server = Server::start();
    let a = Client::connect(server.addr).await.unwrap();
    let b = Client::connect(server.addr).await.unwrap();
    a.create("jobs").await.unwrap();
    let options = SubscribeOptions::new()
        .prefetch(5)
        .group("workers")
        .wait(Duration::from_secs(30))
        .max_deliveries(5)
        .dead("jobs.failed");
    let mut sa = a.subscribe_with("jobs", options.clone()).await.unwrap();
    let mut sb = b.subscribe_with("jobs", options.clone()).await.unwrap();
    assert_eq!(sa.group(), Some("workers"));
    assert_eq!(sb.options(), &options);

    for i in 0..6 {
        a.publish("jobs", &Event::new(i.to_string(), i))
            .await
            .unwrap();
    }
    // Each event goes to one member; the fewest in flight gets the next.
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(next(&mut sa).await.id);
        ids.push(next(&mut sb).await.id);
    }
    ids.sort();
    assert_eq!(ids, ["0", "1", "2", "3", "4", "5"]);
    assert_nothing_for(&a, &mut sa).await;
    assert_nothing_for(&b, &mut sb).await;

    let stats = a.stats(Some("jobs")).await.unwrap();
    let subs = stats.topics["jobs"].subscriptions.clone().unwrap();
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert_eq!(subs[0].group.as_deref(), Some("workers"));
    assert_eq!((subs[0].members, subs[0].in_flight), (2, 6));
    assert_eq!(subs[0].options, *options.sub_options());

    // Another member with other options is refused while these are here.
    let c = Client::connect(server.addr).await.unwrap();
    let other = SubscribeOptions::new().group("workers");
    assert_eq!(
        code(c.subscribe_with("jobs", other).await),
        ErrorCode::BadState
    );
    // Options out of range never reach the broker.
    let bad = SubscribeOptions::new().group("workers").max_deliveries(0);
    assert!(matches!(
        c.subscribe_with("jobs", bad).await,
        Err(Error::Invalid {
            code: ErrorCode::BadArgs,
            ..
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_deadline_redelivers_and_touch_holds_it() {
    let server = Server::start();
    let client = Client::connect(server.addr).await.unwrap();
    client.create("jobs").await.unwrap();
    let wait = Duration::from_millis(300);
    let mut jobs = client
        .subscribe_with("jobs", SubscribeOptions::new().group("w").wait(wait))
        .await
        .unwrap();
    client
        .publish("jobs", &Event::new("j1", "slow"))
        .await
        .unwrap();
    let first = next(&mut jobs).await;
    assert_eq!((first.deliveries(), first.redelivered()), (1, false));
    let started = Instant::now();

    // Touching restarts the deadline: the event is not back before it.
    let left = first.touch_for(Duration::from_secs(1)).await.unwrap();
    assert!(left > Duration::from_millis(900) && left <= Duration::from_secs(1));
    let left = first.touch().await.unwrap();
    assert_eq!(left, wait);
    let again = next(&mut jobs).await;
    assert!(started.elapsed() >= wait, "{:?}", started.elapsed());
    assert_eq!(again.id, "j1");
    assert_eq!((again.deliveries(), again.redelivered()), (2, true));
    assert!(again.redelivered);
    again.ack().await.unwrap();
    // Acks go by id: the first delivery's event is gone now.
    assert_eq!(code(first.ack().await), ErrorCode::NoEvent);

    // Without `wait`, there is no deadline to touch.
    client.create("plain").await.unwrap();
    let mut plain = client.subscribe("plain", 1).await.unwrap();
    client.publish("plain", &Event::new("p", 1)).await.unwrap();
    let p = next(&mut plain).await;
    assert_eq!(code(p.touch().await), ErrorCode::BadState);
    assert!(matches!(
        p.touch_for(Duration::ZERO).await,
        Err(Error::Invalid { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_returns_delays_or_dead_letters() {
    let server = Server::start();
    let client = Client::connect(server.addr).await.unwrap();
    client.create("jobs").await.unwrap();
    client.create("jobs.dead").await.unwrap();
    let morgue = Client::connect(server.addr).await.unwrap();
    let mut dead = morgue
        .subscribe_with("jobs.dead", SubscribeOptions::new().group("morgue"))
        .await
        .unwrap();
    let mut jobs = client
        .subscribe_with("jobs", SubscribeOptions::new().group("w").max_deliveries(3))
        .await
        .unwrap();
    client
        .publish("jobs", &Event::new("a", "retry me"))
        .await
        .unwrap();

    // Plain nack: back at once.
    next(&mut jobs).await.nack().await.unwrap();
    let d = next(&mut jobs).await;
    assert_eq!(d.deliveries(), 2);

    // Nack with a delay: delayed (peek shows it), then back.
    let delay = Duration::from_millis(300);
    let nacked = Instant::now();
    d.nack_after(delay).await.unwrap();
    let peeked = client
        .peek("jobs", PeekTarget::Group("w".into()), 10)
        .await
        .unwrap();
    assert_eq!(peeked.len(), 1);
    assert_eq!(peeked[0].state, PeekState::Delayed);
    assert_eq!(peeked[0].deliveries, 2);
    assert!(peeked[0].due.unwrap() <= delay);
    assert_nothing_for(&client, &mut jobs).await;
    let d = next(&mut jobs).await;
    assert!(nacked.elapsed() >= delay);
    assert_eq!(d.deliveries(), 3);

    // The third delivery was the last allowed: a return dead-letters it.
    d.nack().await.unwrap();
    let letter = next(&mut dead).await;
    assert_eq!(letter.id, "w/a");
    assert_eq!(letter.msg, "retry me");
    let info = letter.dead().expect("a dead letter");
    assert_eq!((info.topic.as_str(), info.id.as_str()), ("jobs", "a"));
    assert_eq!(info.subscription, "w");
    assert_eq!(info.reason, DeadReason::MaxDeliveries);
    assert_eq!(info.deliveries, 3);
    letter.ack().await.unwrap();

    // nack_dead: at once, reason rejected.
    client
        .publish("jobs", &Event::new("b", "bad input"))
        .await
        .unwrap();
    next(&mut jobs).await.nack_dead().await.unwrap();
    let letter = next(&mut dead).await;
    assert_eq!(letter.dead().unwrap().reason, DeadReason::Rejected);
    assert_eq!(letter.dead().unwrap().deliveries, 1);

    let stats = client.stats(Some("jobs")).await.unwrap();
    assert_eq!(stats.topics["jobs"].dead_lettered, 2);
    // A nack of an event not in flight here is no_event.
    assert_eq!(
        code(client.nack("jobs", "b", NackAction::Return).await),
        ErrorCode::NoEvent
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peek_shows_in_flight_queued_and_delayed() {
    let server = Server::start();
    let client = Client::connect(server.addr).await.unwrap();
    client.create("jobs").await.unwrap();
    let mut jobs = client
        .subscribe_with(
            "jobs",
            SubscribeOptions::new()
                .group("w")
                .wait(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    client
        .publish("jobs", &Event::new("1", "now"))
        .await
        .unwrap();
    client
        .publish("jobs", &Event::new("2", "queued").priority(1))
        .await
        .unwrap();
    client
        .publish(
            "jobs",
            &Event::new("3", "later").delay(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let first = next(&mut jobs).await;
    assert_eq!(first.id, "1");

    let peeked = client.peek("jobs", PeekTarget::Own, 10).await.unwrap();
    let view: Vec<(PeekState, &str, u32)> = peeked
        .iter()
        .map(|p| (p.state, p.event.id.as_str(), p.deliveries))
        .collect();
    assert_eq!(
        view,
        [
            (PeekState::InFlight, "1", 1),
            (PeekState::Queued, "2", 0),
            (PeekState::Delayed, "3", 0)
        ]
    );
    assert!(peeked[0].deadline.unwrap() <= Duration::from_secs(60));
    assert_eq!((peeked[1].deadline, peeked[1].due), (None, None));
    assert!(peeked[2].due.unwrap() > Duration::from_secs(50));
    // `event` is the delivery as it would be sent next.
    assert_eq!(peeked[0].event.deliveries(), 2);
    assert_eq!(peeked[1].event.msg, "queued");
    // Limited to n; another connection names the group.
    let other = Client::connect(server.addr).await.unwrap();
    let two = other
        .peek("jobs", PeekTarget::Group("w".into()), 2)
        .await
        .unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(
        code(other.peek("jobs", PeekTarget::Own, 10).await),
        ErrorCode::NotSubscribed
    );
    assert_eq!(
        code(
            other
                .peek("jobs", PeekTarget::Sub("nobody".into()), 10)
                .await
        ),
        ErrorCode::NotSubscribed
    );
    assert!(matches!(
        other.peek("jobs", PeekTarget::Own, 0).await,
        Err(Error::Invalid { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_events_wait_and_expired_ones_go() {
    let server = Server::start();
    let client = Client::connect(server.addr).await.unwrap();
    client.create("mail").await.unwrap();
    let mut mail = client
        .subscribe_with("mail", SubscribeOptions::new().group("post"))
        .await
        .unwrap();

    // Delayed: not deliverable at once, delivered after the delay.
    let delay = Duration::from_millis(300);
    let sent = Instant::now();
    client
        .publish("mail", &Event::new("d", "later").delay(delay))
        .await
        .unwrap();
    assert_nothing_for(&client, &mut mail).await;
    assert_eq!(
        client.stats(Some("mail")).await.unwrap().topics["mail"].delayed,
        1
    );
    let d = next(&mut mail).await;
    assert!(sent.elapsed() >= delay);
    assert_eq!(d.id, "d");
    d.ack().await.unwrap();

    // not_before in the past: due at once.
    let past = SystemTime::now() - Duration::from_secs(60);
    client
        .publish("mail", &Event::new("nb", "now").not_before(past))
        .await
        .unwrap();
    next(&mut mail).await.ack().await.unwrap();

    // A topic's default ttl removes what sits undelivered too long. The
    // group holds one event in flight (prefetch 1), so the others wait.
    client
        .create_with_ttl("mail", Duration::from_millis(200))
        .await
        .unwrap();
    client
        .publish("mail", &Event::new("hold", "in flight"))
        .await
        .unwrap();
    client
        .publish("mail", &Event::new("x1", "expires"))
        .await
        .unwrap();
    client
        .publish(
            "mail",
            &Event::new("x2", "expires sooner").ttl(Duration::from_millis(50)),
        )
        .await
        .unwrap();
    let hold = next(&mut mail).await;
    assert_eq!(hold.id, "hold");
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = client.stats(Some("mail")).await.unwrap();
        if stats.topics["mail"].expired == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "nothing expired: {stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // In flight is not taken back; once acked, nothing else comes.
    hold.ack().await.unwrap();
    assert_nothing_for(&client, &mut mail).await;
    let peeked = client.peek("mail", PeekTarget::Own, 10).await.unwrap();
    assert!(peeked.is_empty(), "{peeked:?}");
    assert!(matches!(
        client.create_with_ttl("mail", Duration::ZERO).await,
        Err(Error::Invalid { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_subscription_refuses_with_its_name() {
    let server = Server::start();
    let client = Client::connect(server.addr).await.unwrap();
    client.create("t").await.unwrap();
    let _sub = client
        .subscribe_with(
            "t",
            SubscribeOptions::new()
                .group("small")
                .limit(1)
                .overflow(Overflow::Reject),
        )
        .await
        .unwrap();
    client.publish("t", &Event::new("1", "a")).await.unwrap();
    let err = client
        .publish("t", &Event::new("2", "b"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Full { topic, subscription } if topic == "t" && subscription == "small"),
        "{err:?}"
    );
    assert_eq!(err.code(), Some(ErrorCode::Full));
    // A duplicate is never full.
    assert_eq!(
        client.publish("t", &Event::new("1", "a")).await.unwrap(),
        Publish::Duplicate
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_mode_publishes_without_replies_and_flush_reports() {
    let server = Server::start();
    let client = Client::connect(server.addr).await.unwrap();
    client.create("t").await.unwrap();
    let mut sub = client.subscribe("t", 100).await.unwrap();
    client.replies(ReplyMode::Errors).await.unwrap();
    let confirms: Vec<_> = (0..50)
        .map(|i| client.publish("t", &Event::new(i.to_string(), i)))
        .collect();
    for confirm in confirms {
        assert_eq!(confirm.await.unwrap(), Publish::Unconfirmed);
    }
    client.flush().await.unwrap();
    // A refused publish is reported by the next flush, and only once;
    // commands that get replies still match them.
    assert_eq!(
        client.publish_json("t", r#"{"id":"bad"}"#).await.unwrap(),
        Publish::Unconfirmed
    );
    assert_eq!(client.topics().await.unwrap(), ["t"]);
    assert_eq!(code(client.flush().await), ErrorCode::BadEvent);
    client.flush().await.unwrap();
    // Acks go without replies too; every event was stored and delivered.
    for _ in 0..50 {
        next(&mut sub).await.ack().await.unwrap();
    }
    client.flush().await.unwrap();
    assert_eq!(
        client.stats(Some("t")).await.unwrap().topics["t"].in_flight,
        0
    );
    client.replies(ReplyMode::All).await.unwrap();
    assert_eq!(
        client.publish("t", &Event::new("z", 1)).await.unwrap(),
        Publish::Published
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_silences_replies_by_default_still_answers_this_client() {
    let server = Server::start_with(&["--replies", "errors"]);
    let client = Client::connect(server.addr).await.unwrap();
    client.create("t").await.unwrap();
    assert_eq!(
        client.publish("t", &Event::new("1", 1)).await.unwrap(),
        Publish::Published
    );
    // A raw connection gets the server's default.
    let mut raw = server.connect();
    raw.send(r#"pub t {"id":"2","msg":2}"#);
    assert_eq!(raw.cmd("ping"), "+OK pong");
}

/// Forwards connections to `upstream` and can cut them all, to drop a
/// client's connection while the broker runs.
async fn cutting_proxy(upstream: SocketAddr) -> (SocketAddr, watch::Sender<u64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (cut, _) = watch::channel(0u64);
    let cuts = cut.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let mut cut = cuts.subscribe();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    _ = cut.changed() => {}
                }
            });
        }
    });
    (addr, cut)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_member_reconnects_and_gets_its_job_back() {
    let server = Server::start();
    let (proxy, cut) = cutting_proxy(server.addr).await;
    let worker = Client::connect_with(proxy, ClientOptions::new().reconnect(true))
        .await
        .unwrap();
    let publisher = Client::connect(server.addr).await.unwrap();
    publisher.create("jobs").await.unwrap();
    let options = SubscribeOptions::new()
        .group("workers")
        .wait(Duration::from_secs(60))
        .max_deliveries(5);
    let mut jobs = worker
        .subscribe_with("jobs", options.clone())
        .await
        .unwrap();
    publisher
        .publish("jobs", &Event::new("j1", "work"))
        .await
        .unwrap();
    let first = next(&mut jobs).await;
    assert_eq!(first.deliveries(), 1);

    // The connection drops mid-job: the job goes back to the group, the
    // member reconnects, joins with the same options and gets it again.
    cut.send_modify(|n| *n += 1);
    let again = next(&mut jobs).await;
    assert_eq!(again.id, "j1");
    assert_eq!((again.deliveries(), again.redelivered()), (2, true));
    again.ack().await.unwrap();
    let stats = publisher.stats(Some("jobs")).await.unwrap();
    let subs = stats.topics["jobs"].subscriptions.clone().unwrap();
    assert_eq!(subs[0].options, *options.sub_options(), "{subs:?}");
    assert_eq!(
        (subs[0].members, subs[0].in_flight, subs[0].pending),
        (1, 0, 0)
    );

    // Leaving the group keeps it; deleting it ends the subscription.
    publisher.delete_group("jobs", "workers").await.unwrap();
    assert_eq!(
        code(publisher.delete_group("jobs", "workers").await),
        ErrorCode::NotSubscribed
    );
}
