//! The seed's world: a producer publishes a stream of tweet-like and
//! user-like events to `tweets` and `users` with varied priorities, and a
//! subscriber acknowledges each delivery as it arrives (the seed's demo
//! subscriber).
//!
//! Start a broker (`herald serve`), then:
//!
//! ```text
//! cargo run -p herald-client --example seed_world -- --events 50
//! cargo run -p herald-client --example seed_world -- --addr 127.0.0.1:8000 --events 1000 --quiet
//! ```
//!
//! The address comes from `--addr`, else `HERALD_ADDR`, else
//! `127.0.0.1:8000`. The program stops once the subscriber has acknowledged
//! every event the producer published.

use herald_client::{Client, Delivery, Event};
use serde_json::json;
use std::time::Instant;
use tokio::sync::oneshot;

/// Events published before waiting for their confirmations.
const BURST: u64 = 10;

struct Options {
    addr: String,
    events: u64,
    quiet: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        addr: std::env::var("HERALD_ADDR").unwrap_or_else(|_| "127.0.0.1:8000".into()),
        events: 100,
        quiet: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => options.addr = args.next().ok_or("--addr needs a value")?,
            "--events" => {
                options.events = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--events needs a number")?;
            }
            "--quiet" => options.quiet = true,
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: seed_world [--addr ADDR] [--events N] [--quiet]"
                ));
            }
        }
    }
    Ok(options)
}

/// The i-th event of the world: two tweets for every user, priorities 0 to 9.
fn event(run: u128, i: u64) -> (&'static str, Event) {
    let priority = ((i * 7) % 10) as u8;
    if i.is_multiple_of(3) {
        let user = json!({"name": format!("user{i}"), "followers": i * 13 % 1000});
        (
            "users",
            Event::new(format!("user-{run}-{i}"), user).priority(priority),
        )
    } else {
        let text = format!("tweet {i}: hello from the seed's world");
        (
            "tweets",
            Event::new(format!("tweet-{run}-{i}"), text).priority(priority),
        )
    }
}

/// The seed's demo subscriber: print, then acknowledge, every delivery,
/// until `expected` have been acknowledged.
async fn subscriber(
    client: Client,
    expected: u64,
    quiet: bool,
    ready: oneshot::Sender<()>,
) -> Result<u64, herald_client::Error> {
    let mut tweets = client.subscribe("tweets", 1).await?;
    let mut users = client.subscribe("users", 1).await?;
    let _ = ready.send(());
    let mut received = 0;
    while received < expected {
        let delivery: Delivery = tokio::select! {
            Some(d) = tweets.next() => d,
            Some(d) = users.next() => d,
            else => return Err(herald_client::Error::Closed),
        };
        if !quiet {
            println!(
                "<- {:<6} {:<22} priority {} {}",
                delivery.topic, delivery.id, delivery.priority, delivery.msg
            );
        }
        delivery.ack().await?;
        received += 1;
    }
    Ok(received)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    let started = Instant::now();
    let producer = Client::connect(&options.addr).await?;
    producer.create("tweets").await?;
    producer.create("users").await?;

    // Subscribed before anything is published, so it sees every event.
    let consumer = Client::connect(&options.addr).await?;
    let (ready, subscribed) = oneshot::channel();
    let subscriber = tokio::spawn(subscriber(consumer, options.events, options.quiet, ready));
    subscribed.await?;

    // Ids are unique per run: an id still pending from an earlier run
    // would be a duplicate, and the subscriber would wait for it forever.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    // Published in pipelined bursts: while the subscriber works through a
    // burst, the broker hands it the highest priorities first.
    let mut next = 0;
    while next < options.events {
        let burst = next..(next + BURST).min(options.events);
        next = burst.end;
        let confirms: Vec<_> = burst
            .map(|i| {
                let (topic, event) = event(run, i);
                let confirm = producer.publish(topic, &event);
                (topic, event, confirm)
            })
            .collect();
        for (topic, event, confirm) in confirms {
            let outcome = confirm.await?;
            if !options.quiet {
                println!(
                    "-> {topic:<6} {:<22} priority {} {outcome:?}",
                    event.id, event.priority
                );
            }
        }
    }
    let received = subscriber.await??;
    println!(
        "published {} events, received and acknowledged {received} in {:.2} s",
        options.events,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
