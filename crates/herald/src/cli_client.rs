//! `herald pub`, `sub`, `topics`, `stats`, `ping`: the client library at a
//! shell prompt.
//!
//! Each command connects once, does its work, and maps any failure to one
//! line on stderr and exit code 1 (through `main`). Output meant for
//! scripts (deliveries, `--json`) goes to stdout, one JSON object a line.

use anyhow::{Context, Result, bail};
use clap::Args;
use herald_client::{Client, ClientOptions, ErrorCode, Event, Publish, Stats};
use std::collections::VecDeque;
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

/// First pause before asking again for a name that is in use.
const NAME_RETRY_FIRST_MS: u64 = 20;
/// How long a name in use is retried before giving up.
const NAME_RETRY_TOTAL_MS: u64 = 2000;

/// The broker to talk to.
#[derive(Args, Debug, Clone)]
pub struct Addr {
    /// Address of the broker.
    #[arg(long, env = "HERALD_ADDR", default_value = "127.0.0.1:8000")]
    pub addr: String,
}

/// `herald pub`.
#[derive(Args, Debug)]
pub struct PubArgs {
    #[command(flatten)]
    conn: Addr,
    /// Topic to publish to (created if it does not exist).
    topic: String,
    /// The event as JSON, e.g. '{"id":"1","priority":3,"msg":"hi"}'. With
    /// neither this nor --id, events are read from stdin, one JSON object a
    /// line, pipelined, and a summary is printed.
    #[arg(conflicts_with_all = ["id", "priority", "msg"])]
    event: Option<String>,
    /// Id of the event to build (with --msg).
    #[arg(long, requires = "msg")]
    id: Option<String>,
    /// Priority of the event to build, 0 to 255 (higher first).
    #[arg(long, requires = "id", default_value_t = 0)]
    priority: u8,
    /// Message of the event to build, sent as a JSON string (see --msg-json).
    #[arg(long, requires = "id")]
    msg: Option<String>,
    /// Parse --msg as JSON instead of sending it as a string.
    #[arg(long, requires = "msg")]
    msg_json: bool,
    /// Reading stdin: most events sent and not yet confirmed.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    window: u32,
}

/// `herald sub`.
#[derive(Args, Debug)]
pub struct SubArgs {
    #[command(flatten)]
    conn: Addr,
    /// Topic to subscribe to (must exist; see `herald pub` or `create`).
    topic: String,
    /// Subscribe as this durable subscriber: its queue outlives the
    /// connection, and the command reconnects if the connection drops.
    #[arg(long)]
    name: Option<String>,
    /// Most deliveries held unacknowledged (1 to 65535).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    prefetch: u16,
    /// Print deliveries without acknowledging them.
    #[arg(long)]
    no_ack: bool,
    /// Exit after this many deliveries.
    #[arg(long)]
    count: Option<u64>,
}

/// `herald stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    conn: Addr,
    /// Only this topic.
    topic: Option<String>,
    /// Print the broker's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

async fn connect(addr: &str, options: ClientOptions) -> Result<Client> {
    Client::connect_with(addr, options)
        .await
        .with_context(|| format!("cannot connect to {addr}"))
}

/// Writes one line to stdout and flushes it. A closed stdout (`| head`)
/// ends the program quietly, as other Unix tools do.
fn print_line(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let written = writeln!(out, "{line}").and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => other.context("writing to stdout"),
    }
}

/// `herald pub`.
pub fn publish(args: PubArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let client = connect(&args.conn.addr, ClientOptions::new()).await?;
        let topic = args.topic.as_str();
        let (outcome, id) = if let Some(id) = args.id {
            let msg = match (args.msg, args.msg_json) {
                (Some(m), true) => serde_json::from_str(&m).context("--msg is not valid JSON")?,
                (Some(m), false) => serde_json::Value::String(m),
                (None, _) => bail!("--id needs --msg"),
            };
            let event = Event {
                id: id.clone(),
                priority: args.priority,
                msg,
            };
            (client.publish(topic, &event).await, id)
        } else if let Some(json) = args.event {
            let id = event_id(&json);
            (client.publish_json(topic, &json).await, id)
        } else {
            return publish_stdin(&client, topic, args.window as usize).await;
        };
        let word = match outcome.with_context(|| format!("pub {topic}"))? {
            Publish::Published => "published",
            Publish::Duplicate => "duplicate",
        };
        print_line(&format!("{word} {topic} {id}"))
    })
}

/// The `id` of an event given as JSON, as the broker prints it.
fn event_id(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| v.get("id").cloned())
    {
        Some(serde_json::Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => "?".to_string(),
    }
}

/// Publishes every line of stdin with up to `window` in flight.
async fn publish_stdin(client: &Client, topic: &str, window: usize) -> Result<()> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut in_flight = VecDeque::with_capacity(window);
    let (mut published, mut duplicates, mut errors) = (0u64, 0u64, 0u64);
    let mut line_no = 0u64;
    let mut tally = |line: u64, outcome: herald_client::Result<Publish>| -> Result<()> {
        match outcome {
            Ok(Publish::Published) => published += 1,
            Ok(Publish::Duplicate) => duplicates += 1,
            Err(e) if e.code().is_some() => {
                errors += 1;
                eprintln!("herald: line {line}: {e}");
            }
            // The connection is gone: nothing further can succeed.
            Err(e) => return Err(e).with_context(|| format!("pub {topic}, line {line}")),
        }
        Ok(())
    };
    while let Some(line) = lines.next_line().await.context("reading stdin")? {
        line_no += 1;
        if line.trim().is_empty() {
            continue;
        }
        if in_flight.len() >= window
            && let Some((n, confirm)) = in_flight.pop_front()
        {
            tally(n, confirm.await)?;
        }
        in_flight.push_back((line_no, client.publish_json(topic, &line)));
    }
    while let Some((n, confirm)) = in_flight.pop_front() {
        tally(n, confirm.await)?;
    }
    print_line(&format!(
        "published {published}, duplicates {duplicates}, errors {errors}"
    ))?;
    if errors > 0 {
        bail!("{errors} event(s) were refused");
    }
    Ok(())
}

/// `herald sub`.
pub fn subscribe(args: SubArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let client = match &args.name {
            Some(name) => connect_named(&args.conn.addr, name).await?,
            None => connect(&args.conn.addr, ClientOptions::new()).await?,
        };
        let topic = args.topic.as_str();
        let mut sub = client
            .subscribe(topic, args.prefetch)
            .await
            .with_context(|| format!("sub {topic}"))?;
        let mut seen = 0u64;
        while args.count.is_none_or(|count| seen < count) {
            let Some(delivery) = sub.next().await else {
                bail!("the broker closed the connection");
            };
            print_line(&delivery.raw)?;
            seen += 1;
            if !args.no_ack {
                delivery
                    .ack()
                    .await
                    .with_context(|| format!("ack {topic} {}", delivery.id))?;
            }
        }
        // Leaves only once the broker has let go of the connection, so a
        // `herald sub --name` started right after finds the name free.
        client.close().await.context("quit")
    })
}

/// Connects as a reconnecting durable subscriber. A name still held by a
/// connection that is closing (a previous `herald sub --name` that just
/// exited) is retried for a moment before giving up.
async fn connect_named(addr: &str, name: &str) -> Result<Client> {
    let options = ClientOptions::new().name(name).reconnect(true);
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

/// `herald topics`.
pub fn topics(conn: Addr) -> Result<()> {
    runtime()?.block_on(async move {
        let client = connect(&conn.addr, ClientOptions::new()).await?;
        for topic in client.topics().await.context("topics")? {
            print_line(&topic)?;
        }
        Ok(())
    })
}

/// `herald stats`.
pub fn stats(args: StatsArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let client = connect(&args.conn.addr, ClientOptions::new()).await?;
        let topic = args.topic.as_deref();
        let what = || format!("stats {}", topic.unwrap_or_default());
        if args.json {
            let json = client.stats_json(topic).await.with_context(what)?;
            print_line(&json.to_string())
        } else {
            let stats = client.stats(topic).await.with_context(what)?;
            print_line(stats_table(&stats).trim_end())
        }
    })
}

/// A table with one row per topic.
fn stats_table(stats: &Stats) -> String {
    let headers = ["TOPIC", "SUBSCRIBERS", "PENDING", "IN_FLIGHT", "PUBLISHED"];
    let rows: Vec<[String; 5]> = stats
        .topics
        .iter()
        .map(|(name, t)| {
            [
                name.clone(),
                t.subscribers.to_string(),
                t.pending.to_string(),
                t.in_flight.to_string(),
                t.published.to_string(),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut table = String::new();
    let mut push_row = |cells: &[&str]| {
        for (i, cell) in cells.iter().enumerate() {
            if i == 0 {
                table.push_str(&format!("{cell:<w$}", w = widths[0]));
            } else {
                table.push_str(&format!("  {cell:>w$}", w = widths[i]));
            }
        }
        table.push('\n');
    };
    push_row(&headers);
    for row in &rows {
        push_row(&row.each_ref().map(String::as_str));
    }
    table
}

/// `herald ping`.
pub fn ping(conn: Addr) -> Result<()> {
    runtime()?.block_on(async move {
        let client = connect(&conn.addr, ClientOptions::new()).await?;
        let rtt = client.ping().await.context("ping")?;
        print_line(&format!("pong {:.3} ms", rtt.as_secs_f64() * 1000.0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_reads_string_and_integer_ids() {
        assert_eq!(event_id(r#"{"id":"a1","msg":1}"#), "a1");
        assert_eq!(event_id(r#"{"id":7,"msg":1}"#), "7");
        assert_eq!(event_id("nope"), "?");
    }

    #[test]
    fn stats_table_aligns_columns() {
        let stats: Stats = serde_json::from_str(
            r#"{"topics":{"tweets":{"subscribers":2,"pending":5,"in_flight":1,"published":40}}}"#,
        )
        .unwrap();
        assert_eq!(
            stats_table(&stats),
            "TOPIC   SUBSCRIBERS  PENDING  IN_FLIGHT  PUBLISHED\n\
             tweets            2        5          1         40\n"
        );
    }
}
