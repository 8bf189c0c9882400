//! `herald sub`: a subscriber at a shell prompt, with every option of a
//! `sub` (`docs/protocol.md` §12.1) as a flag.
//!
//! It prints each delivery as the broker sent it (one JSON line; a
//! redelivery carries `"redelivered":true,"deliveries":N`) and acknowledges
//! it, at once or after `--ack-after`. A durable subscriber (`--name`) and
//! a group member (`--group`) reconnect when the connection drops.

use crate::cli_client::{Addr, connect, print_line, runtime};
use crate::cli_time;
use anyhow::{Context, Result, bail};
use clap::Args;
use herald_client::{Client, ClientOptions, ErrorCode, Overflow, SubscribeOptions};
use herald_proto::{DeadTarget, SubOptions};
use std::time::{Duration, Instant};

/// First pause before asking again for a name that is in use.
const NAME_RETRY_FIRST_MS: u64 = 20;
/// How long a name in use is retried before giving up.
const NAME_RETRY_TOTAL_MS: u64 = 2000;

/// `herald sub`.
#[derive(Args, Debug)]
pub struct SubArgs {
    #[command(flatten)]
    conn: Addr,
    /// Topic to subscribe to (must exist: create it with `herald create`,
    /// or pass --create).
    topic: String,
    /// Create the topic first if it does not exist.
    #[arg(long)]
    create: bool,
    /// Subscribe as this durable subscriber: its queue outlives the
    /// connection, and the command reconnects if the connection drops.
    #[arg(long)]
    name: Option<String>,
    /// Join this competing-consumer group: each event goes to one member.
    /// The group keeps its queue while no member runs; the command
    /// reconnects if the connection drops.
    #[arg(long)]
    group: Option<String>,
    /// Most deliveries held unacknowledged (1 to 65535; in a group, per member).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    prefetch: u16,
    /// Ack deadline: a delivery not acknowledged within this time goes back
    /// to the queue (to this or another member). A duration: 1500 (ms),
    /// 1500ms, 30s, 2m or 1h; at most 30 days.
    #[arg(long, value_name = "DURATION", value_parser = cli_time::duration)]
    wait: Option<Duration>,
    /// How long a returned event waits before it is delivered again, by
    /// return: 1s,5s,30s waits 1 s after the first return, 5 s after the
    /// second and 30 s after each later one (durations, comma-separated, 0
    /// allowed).
    #[arg(long, value_name = "DURATIONS", value_parser = cli_time::backoff)]
    backoff: Option<cli_time::Backoff>,
    /// Dead-letter an event instead of delivering it more than N times
    /// (1 to 1000).
    #[arg(long, value_name = "N")]
    max_deliveries: Option<u16>,
    /// Topic the dead letters go to (default: TOPIC.dead), or `none` to
    /// drop them. A dead letter reaches only the subscribers the dead topic
    /// has: subscribe to it first.
    #[arg(long, value_name = "TOPIC")]
    dead: Option<String>,
    /// Priority aging: a queued event counts one priority level higher for
    /// each DURATION it has waited (1500 (ms), 30s, 2m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = cli_time::duration)]
    age: Option<Duration>,
    /// Most events the subscription holds: queued, in flight and delayed
    /// (1 to 2147483648).
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
    /// Most bytes of "msg" the subscription holds (1 to 1099511627776).
    #[arg(long, value_name = "BYTES")]
    limit_bytes: Option<u64>,
    /// What a full subscription does: `reject` refuses the publish (the
    /// publisher gets -ERR full), `drop` evicts its lowest-priority queued
    /// event. Default: reject.
    #[arg(long, value_name = "reject|drop", value_parser = parse_overflow)]
    overflow: Option<Overflow>,
    /// Print deliveries without acknowledging them.
    #[arg(long)]
    no_ack: bool,
    /// Wait this long before acknowledging each delivery, as if working on
    /// it (to watch deadlines, or a worker that dies mid-job). A duration:
    /// 1500 (ms), 30s, 2m, 1h.
    #[arg(long, value_name = "DURATION", value_parser = cli_time::duration, conflicts_with = "no_ack")]
    ack_after: Option<Duration>,
    /// Exit after this many deliveries.
    #[arg(long)]
    count: Option<u64>,
}

fn parse_overflow(word: &str) -> Result<Overflow, String> {
    match word.to_ascii_lowercase().as_str() {
        "reject" => Ok(Overflow::Reject),
        "drop" => Ok(Overflow::Drop),
        _ => Err(format!("'{word}' is neither reject nor drop")),
    }
}

impl SubArgs {
    /// The `sub` this command sends.
    fn options(&self) -> Result<SubscribeOptions> {
        let mut options = SubscribeOptions::new().prefetch(self.prefetch);
        if let Some(group) = &self.group {
            options = options.group(group);
        }
        if let Some(wait) = self.wait {
            options = options.wait(wait);
        }
        if let Some(cli_time::Backoff(steps)) = &self.backoff {
            options = options.backoff(steps.iter().copied());
        }
        if let Some(n) = self.max_deliveries {
            options = options.max_deliveries(n);
        }
        match self.dead.as_deref() {
            Some(none) if none.eq_ignore_ascii_case("none") => {
                options = options.drop_dead_letters();
            }
            Some(topic) => options = options.dead(topic),
            None => {}
        }
        if let Some(age) = self.age {
            options = options.age(age);
        }
        if let Some(n) = self.limit {
            options = options.limit(n);
        }
        if let Some(n) = self.limit_bytes {
            options = options.limit_bytes(n);
        }
        if let Some(overflow) = self.overflow {
            options = options.overflow(overflow);
        }
        options.check()?;
        Ok(options)
    }
}

/// `herald sub`.
pub fn subscribe(args: SubArgs) -> Result<()> {
    let options = args.options()?;
    runtime()?.block_on(async move {
        let client = match &args.name {
            Some(name) => connect_named(&args.conn, name).await?,
            // A group member comes back to its group after a dropped
            // connection, as a durable subscriber does.
            None => {
                let options = ClientOptions::new().reconnect(args.group.is_some());
                connect(&args.conn, options).await?
            }
        };
        let topic = args.topic.as_str();
        if args.create {
            client
                .create(topic)
                .await
                .with_context(|| format!("create {topic}"))?;
        }
        let mut sub = match client.subscribe_with(topic, options).await {
            Err(e) if e.code() == Some(ErrorCode::NoTopic) => bail!(
                "sub {topic}: no_topic: topic '{topic}' does not exist; create it with \
                 `herald create {topic}`, or pass --create"
            ),
            other => other.with_context(|| format!("sub {topic}"))?,
        };
        warn_if_dead_letters_go_nowhere(&client, topic, sub.options().sub_options()).await;
        let mut seen = 0u64;
        while args.count.is_none_or(|count| seen < count) {
            let Some(delivery) = sub.next().await else {
                bail!("the broker closed the connection");
            };
            print_line(&delivery.raw)?;
            seen += 1;
            if args.no_ack {
                continue;
            }
            if let Some(work) = args.ack_after {
                tokio::time::sleep(work).await;
            }
            match delivery.ack().await {
                Ok(()) => {}
                // Held past its deadline: the broker took it back and
                // delivers it again (maybe to another member). A worker
                // goes on.
                Err(e) if e.code() == Some(ErrorCode::NoEvent) && args.wait.is_some() => {
                    eprintln!(
                        "herald: ack {topic} {}: too late, the deadline passed and the event was given back",
                        delivery.id
                    );
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("ack {topic} {}", delivery.id));
                }
            }
        }
        // Leaves only once the broker has let go of the connection, so a
        // `herald sub --name` started right after finds the name free.
        client.close().await.context("quit")
    })
}

/// A dead letter reaches only the subscriptions its dead topic has when it
/// is published (`docs/protocol.md` §12.6). A worker that sets
/// `--max-deliveries` while nobody subscribes to the dead topic would see
/// its failed events vanish: say so, and how to keep them.
async fn warn_if_dead_letters_go_nowhere(client: &Client, topic: &str, options: &SubOptions) {
    let dead_named = matches!(options.dead, Some(DeadTarget::Topic(_)));
    if options.max_deliveries.is_none() && !dead_named {
        return;
    }
    // `None` for dead=none: dropped on purpose.
    let Some(dead) = options.dead_topic(topic) else {
        return;
    };
    let dead = dead.into_owned();
    let subscribed = match client.stats(Some(&dead)).await {
        Ok(stats) => stats.topics.get(&dead).is_some_and(|t| t.subscribers > 0),
        Err(e) if e.code() == Some(ErrorCode::NoTopic) => false,
        // Not worth failing the subscription over.
        Err(_) => true,
    };
    if !subscribed {
        eprintln!(
            "herald: note: dead letters of '{topic}' go to '{dead}', which has no subscriber, so \
             they would be dropped; keep them with `herald sub {dead} --create --group dead` \
             (run it first, then `herald peek {dead} --group dead` shows them)"
        );
    }
}

/// Connects as a reconnecting durable subscriber. A name still held by a
/// connection that is closing (a previous `herald sub --name` that just
/// exited) is retried for a moment before giving up.
async fn connect_named(conn: &Addr, name: &str) -> Result<Client> {
    let addr = conn.addr.as_str();
    let options = conn.secure(ClientOptions::new().name(name).reconnect(true))?;
    let mut delay = Duration::from_millis(NAME_RETRY_FIRST_MS);
    let deadline = Instant::now() + Duration::from_millis(NAME_RETRY_TOTAL_MS);
    loop {
        match Client::connect_with(addr, options.clone()).await {
            Err(e) if e.code() == Some(ErrorCode::NameInUse) && Instant::now() < deadline => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other.with_context(|| format!("cannot connect to {addr} as {name}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sub: SubArgs,
    }

    #[test]
    fn flags_become_sub_options() {
        let cli = Cli::parse_from([
            "sub",
            "jobs",
            "--group",
            "workers",
            "--wait",
            "30s",
            "--backoff",
            "1s,5s",
            "--max-deliveries",
            "5",
            "--dead",
            "NONE",
            "--age",
            "1s",
            "--limit",
            "10000",
            "--limit-bytes",
            "1048576",
            "--overflow",
            "drop",
            "--prefetch",
            "4",
        ]);
        assert_eq!(
            cli.sub.options().unwrap().to_string(),
            "4 group=workers wait=30000 backoff=1000,5000 max_deliveries=5 dead=none age=1000 \
             limit=10000 limit_bytes=1048576 overflow=drop"
        );
        let plain = Cli::parse_from(["sub", "jobs"]);
        assert_eq!(plain.sub.options().unwrap().to_string(), "1");
    }

    #[test]
    fn bad_values_are_refused_with_the_rule() {
        let cli = Cli::parse_from(["sub", "jobs", "--max-deliveries", "0"]);
        let err = cli.sub.options().unwrap_err().to_string();
        assert!(err.contains("max_deliveries"), "{err}");
        assert!(Cli::try_parse_from(["sub", "jobs", "--wait", "1d"]).is_err());
        assert!(Cli::try_parse_from(["sub", "jobs", "--overflow", "block"]).is_err());
        assert!(Cli::try_parse_from(["sub", "jobs", "--no-ack", "--ack-after", "1s"]).is_err());
    }
}
