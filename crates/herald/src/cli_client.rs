//! `herald pub`, `create`, `peek`, `topics`, `stats`, `ping`: the client
//! library at a shell prompt (`herald sub` is in `cli_sub`).
//!
//! Each command connects once, does its work, and maps any failure to one
//! line on stderr and exit code 1 (through `main`). Output meant for
//! scripts (deliveries, `--json`) goes to stdout, one JSON object a line;
//! the tables for people are in `cli_table`.

use crate::{cli_table, cli_time, cli_watch};
use anyhow::{Context, Result, anyhow, bail};
use clap::{ArgGroup, Args};
use herald_client::{Client, ClientOptions, ErrorCode, Event, PeekTarget, Publish};
use std::collections::VecDeque;
use std::io::Write;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncBufReadExt;

/// The broker to talk to.
#[derive(Args, Debug, Clone)]
pub struct Addr {
    /// Address of the broker.
    #[arg(long, env = "HERALD_ADDR", default_value = "127.0.0.1:8000")]
    pub addr: String,
    /// Log in as this user (a broker with users); the password comes from
    /// HERALD_PASSWORD, or a prompt on a terminal.
    #[arg(long, env = "HERALD_USER")]
    pub user: Option<String>,
    /// Speak TLS to the broker, checking its certificate against the
    /// system's roots (or --tls-ca).
    #[arg(long, env = "HERALD_TLS")]
    pub tls: bool,
    /// PEM file of the CA that signed the broker's certificate (implies
    /// --tls).
    #[arg(long, env = "HERALD_TLS_CA")]
    pub tls_ca: Option<std::path::PathBuf>,
}

impl Addr {
    /// `options` with this connection's login and TLS settings.
    pub fn secure(&self, mut options: ClientOptions) -> Result<ClientOptions> {
        if let Some(user) = &self.user {
            let password = match std::env::var("HERALD_PASSWORD") {
                Ok(p) => p,
                Err(_) => rpassword::prompt_password(format!("Password for {user}: "))
                    .context("reading the password (or set HERALD_PASSWORD)")?,
            };
            options = options.credentials(user.clone(), password);
        }
        if self.tls || self.tls_ca.is_some() {
            // The certificate is checked for the host part of --addr.
            let host = self
                .addr
                .rsplit_once(':')
                .map_or(self.addr.as_str(), |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']');
            let tls = herald_client::TlsOptions::new(host, self.tls_ca.as_deref())
                .context("TLS settings (--tls, --tls-ca)")?;
            options = options.tls(tls);
        }
        Ok(options)
    }
}

/// `herald pub`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("when").args(["delay", "not_before"])))]
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
    /// Time to live of the event(s): once it has passed, an event not yet
    /// delivered is removed (sets "ttl_ms"). A duration: 1500 (ms), 1500ms,
    /// 30s, 2m or 1h; at most 30 days.
    #[arg(long, value_name = "DURATION", value_parser = cli_time::duration)]
    ttl: Option<Duration>,
    /// Deliver the event(s) no sooner than this long after publishing (sets
    /// "delay_ms"). A duration: 0, 1500 (ms), 30s, 2m or 1h; at most 30 days.
    #[arg(long, value_name = "DURATION", value_parser = cli_time::duration_or_zero)]
    delay: Option<Duration>,
    /// Deliver the event(s) no sooner than this time (sets "not_before"):
    /// ms since the Unix epoch, or RFC 3339 such as 2026-01-01T09:00:00Z;
    /// at most 30 days ahead.
    #[arg(long, value_name = "TIME", value_parser = cli_time::time)]
    not_before: Option<SystemTime>,
    /// Reading stdin: most events sent and not yet confirmed.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    window: u32,
}

/// The time fields `herald pub` adds to each event.
#[derive(Debug, Clone, Copy, Default)]
struct TimeFields {
    ttl: Option<Duration>,
    delay: Option<Duration>,
    not_before: Option<SystemTime>,
}

impl TimeFields {
    fn is_empty(&self) -> bool {
        self.ttl.is_none() && self.delay.is_none() && self.not_before.is_none()
    }

    fn apply(&self, mut event: Event) -> Event {
        if let Some(ttl) = self.ttl {
            event = event.ttl(ttl);
        }
        if let Some(delay) = self.delay {
            event = event.delay(delay);
        }
        if let Some(at) = self.not_before {
            event = event.not_before(at);
        }
        event
    }

    /// Adds the fields to an event given as JSON text, as text: the rest
    /// of the event goes as typed (field order, number spellings). An
    /// event that sets one of them itself is refused rather than silently
    /// overridden.
    fn add_to_json(&self, json: &str) -> Result<String> {
        if self.is_empty() {
            return Ok(json.to_string());
        }
        let value: serde_json::Value =
            serde_json::from_str(json).context("the event is not valid JSON")?;
        let object = value
            .as_object()
            .ok_or_else(|| anyhow!("the event is not a JSON object"))?;
        let mut added = String::new();
        let fields = serde_json::to_value(self.apply(Event::new("", 0)))?;
        for key in herald_proto::event::TIME_FIELDS {
            if let Some(v) = fields.get(key) {
                if object.contains_key(key) {
                    bail!("the event sets \"{key}\" and a flag sets it too");
                }
                added.push_str(&format!(",\"{key}\":{v}"));
            }
        }
        // A JSON object ends with its `}`.
        let body = json.trim_end().strip_suffix('}').unwrap_or(json);
        if object.is_empty() {
            added.remove(0);
        }
        Ok(format!("{body}{added}}}"))
    }
}

/// `herald create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    conn: Addr,
    /// Topic to create (no error if it exists).
    topic: String,
    /// Default time to live of the events published to the topic from now
    /// on (an event's own "ttl_ms" wins if smaller). A duration: 1500 (ms),
    /// 30s, 2m or 1h; at most 30 days. Without it, an existing topic keeps
    /// its default.
    #[arg(long, value_name = "DURATION", value_parser = cli_time::duration)]
    ttl: Option<Duration>,
}

/// `herald peek`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("whose").args(["sub", "group"]).required(true)))]
pub struct PeekArgs {
    #[command(flatten)]
    conn: Addr,
    /// Topic whose subscription to show.
    topic: String,
    /// The durable subscriber whose queue to show.
    #[arg(long, value_name = "NAME")]
    sub: Option<String>,
    /// The group whose queue to show.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// Most events shown (1 to 1000): in flight first, then queued in
    /// delivery order, then delayed by due time.
    #[arg(short = 'n', default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    n: u16,
    /// Print the broker's JSON, one event a line, instead of a table.
    #[arg(long)]
    json: bool,
}

/// `herald stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    conn: Addr,
    /// Only this topic.
    topic: Option<String>,
    /// Print the broker's JSON instead of a table.
    #[arg(long, conflicts_with = "watch")]
    json: bool,
    /// Keep showing rates (published, delivered, acked per second) and
    /// per-topic counts, refreshed every --interval, until Ctrl-C. On a
    /// terminal each refresh replaces the last; piped, one block per refresh.
    #[arg(long)]
    watch: bool,
    /// With --watch: time between refreshes. A duration: 1500 (ms), 1s, 2m.
    #[arg(long, value_name = "DURATION", value_parser = cli_time::duration,
          default_value = "1s", requires = "watch")]
    interval: Duration,
    /// With --watch: stop after this many refreshes.
    #[arg(long, value_name = "N", requires = "watch")]
    count: Option<u64>,
    /// With --watch: the broker's HTTP API, where delivered and acked totals
    /// come from (`stats` has no such counts); `off` to not ask. Default: the
    /// --addr host, port + 1, as `herald serve` chooses it.
    #[arg(long, value_name = "ADDR", requires = "watch")]
    http: Option<String>,
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

pub(crate) async fn connect(conn: &Addr, options: ClientOptions) -> Result<Client> {
    let addr = &conn.addr;
    Client::connect_with(addr.as_str(), conn.secure(options)?)
        .await
        .with_context(|| format!("cannot connect to {addr}"))
}

/// Writes one line to stdout and flushes it. A closed stdout (`| head`)
/// ends the program quietly, as other Unix tools do.
pub(crate) fn print_line(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let written = writeln!(out, "{line}").and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => other.context("writing to stdout"),
    }
}

/// `herald pub`.
pub fn publish(args: PubArgs) -> Result<()> {
    let time = TimeFields {
        ttl: args.ttl,
        delay: args.delay,
        not_before: args.not_before,
    };
    runtime()?.block_on(async move {
        let client = connect(&args.conn, ClientOptions::new()).await?;
        let topic = args.topic.as_str();
        let (outcome, id) = if let Some(id) = args.id {
            let msg = match (args.msg, args.msg_json) {
                (Some(m), true) => serde_json::from_str(&m).context("--msg is not valid JSON")?,
                (Some(m), false) => serde_json::Value::String(m),
                (None, _) => bail!("--id needs --msg"),
            };
            let event = time.apply(Event::new(id.clone(), msg).priority(args.priority));
            (client.publish(topic, &event).await, id)
        } else if let Some(json) = args.event {
            let id = event_id(&json);
            let json = time.add_to_json(&json)?;
            (client.publish_json(topic, &json).await, id)
        } else {
            return publish_stdin(&client, topic, args.window as usize, time).await;
        };
        let word = match outcome.with_context(|| format!("pub {topic}"))? {
            Publish::Published => "published",
            Publish::Duplicate => "duplicate",
            // Only in `replies errors` mode, which this command never uses.
            Publish::Unconfirmed => "sent",
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
async fn publish_stdin(
    client: &Client,
    topic: &str,
    window: usize,
    time: TimeFields,
) -> Result<()> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut in_flight = VecDeque::with_capacity(window);
    let (mut published, mut duplicates, mut errors) = (0u64, 0u64, 0u64);
    let mut line_no = 0u64;
    // Lines refused before sending (a time flag and a bad event).
    let mut unsent = 0u64;
    let mut tally = |line: u64, outcome: herald_client::Result<Publish>| -> Result<()> {
        match outcome {
            Ok(Publish::Published | Publish::Unconfirmed) => published += 1,
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
        let line = match time.add_to_json(&line) {
            Ok(line) => line,
            Err(e) => {
                unsent += 1;
                eprintln!("herald: line {line_no}: {e:#}");
                continue;
            }
        };
        in_flight.push_back((line_no, client.publish_json(topic, &line)));
    }
    while let Some((n, confirm)) = in_flight.pop_front() {
        tally(n, confirm.await)?;
    }
    let errors = errors + unsent;
    print_line(&format!(
        "published {published}, duplicates {duplicates}, errors {errors}"
    ))?;
    if errors > 0 {
        bail!("{errors} event(s) were refused");
    }
    Ok(())
}

/// `herald topics`.
pub fn topics(conn: Addr) -> Result<()> {
    runtime()?.block_on(async move {
        let client = connect(&conn, ClientOptions::new()).await?;
        for topic in client.topics().await.context("topics")? {
            print_line(&topic)?;
        }
        Ok(())
    })
}

/// `herald stats`.
pub fn stats(args: StatsArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let client = connect(&args.conn, ClientOptions::new()).await?;
        if args.watch {
            let http = match args.http.as_deref() {
                Some("off") => None,
                Some(addr) => Some(addr.to_string()),
                None => cli_watch::default_http(&args.conn.addr),
            };
            let options = cli_watch::Options {
                addr: args.conn.addr.clone(),
                topic: args.topic.clone(),
                interval: args.interval,
                count: args.count,
                http,
            };
            return cli_watch::watch(&client, &options).await;
        }
        let topic = args.topic.as_deref();
        let what = || format!("stats {}", topic.unwrap_or_default());
        if args.json {
            let json = client.stats_json(topic).await.with_context(what)?;
            print_line(&json.to_string())
        } else {
            let stats = client.stats(topic).await.with_context(what)?;
            let table = match topic {
                Some(topic) => cli_table::topic_stats(&stats, topic),
                None => cli_table::stats(&stats),
            };
            print_line(table.trim_end())
        }
    })
}

/// `herald create`.
pub fn create(args: CreateArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let client = connect(&args.conn, ClientOptions::new()).await?;
        let topic = args.topic.as_str();
        match args.ttl {
            Some(ttl) => client.create_with_ttl(topic, ttl).await,
            None => client.create(topic).await,
        }
        .with_context(|| format!("create {topic}"))?;
        print_line(&format!("created {topic}"))
    })
}

/// `herald peek`.
pub fn peek(args: PeekArgs) -> Result<()> {
    let (target, whose) = match (args.sub, args.group) {
        (Some(name), _) => (
            PeekTarget::Sub(name.clone()),
            format!("subscriber '{name}'"),
        ),
        (None, Some(group)) => (PeekTarget::Group(group.clone()), format!("group '{group}'")),
        (None, None) => bail!("give --sub NAME or --group GROUP"),
    };
    runtime()?.block_on(async move {
        let client = connect(&args.conn, ClientOptions::new()).await?;
        let topic = args.topic.as_str();
        let entries = match client.peek(topic, target, args.n).await {
            Err(e) if e.code() == Some(ErrorCode::NotSubscribed) => {
                bail!("peek {topic}: not_subscribed: {whose} has no subscription to '{topic}'")
            }
            other => other.with_context(|| format!("peek {topic}"))?,
        };
        if !args.json {
            return print_line(cli_table::peek(&entries).trim_end());
        }
        // One entry a line, in the broker's shape, the event as it sent it.
        for entry in &entries {
            let state = serde_json::to_string(&entry.state)?;
            let mut line = format!("{{\"state\":{state},\"deliveries\":{}", entry.deliveries);
            if let Some(deadline) = entry.deadline {
                line.push_str(&format!(",\"deadline_ms\":{}", millis(deadline)));
            }
            if let Some(due) = entry.due {
                line.push_str(&format!(",\"due_ms\":{}", millis(due)));
            }
            line.push_str(&format!(",\"event\":{}}}", entry.event.raw));
            print_line(&line)?;
        }
        Ok(())
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `herald ping`.
pub fn ping(conn: Addr) -> Result<()> {
    runtime()?.block_on(async move {
        let client = connect(&conn, ClientOptions::new()).await?;
        let rtt = client.ping().await.context("ping")?;
        print_line(&format!("pong {:.3} ms", rtt.as_secs_f64() * 1000.0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_flags_are_added_to_json_events() {
        let time = TimeFields {
            ttl: Some(Duration::from_secs(10)),
            delay: Some(Duration::from_secs(5)),
            not_before: None,
        };
        assert_eq!(
            time.add_to_json(r#"{"id":"1","msg":"x"}"#).unwrap(),
            r#"{"id":"1","msg":"x","ttl_ms":10000,"delay_ms":5000}"#
        );
        assert_eq!(
            time.add_to_json("{ \"msg\": 1e2, \"id\": 1 }\n").unwrap(),
            r#"{ "msg": 1e2, "id": 1 ,"ttl_ms":10000,"delay_ms":5000}"#
        );
        assert_eq!(
            time.add_to_json("{}").unwrap(),
            r#"{"ttl_ms":10000,"delay_ms":5000}"#
        );
        let err = time
            .add_to_json(r#"{"id":"1","msg":"x","ttl_ms":5}"#)
            .unwrap_err();
        assert!(err.to_string().contains("ttl_ms"), "{err}");
        assert!(time.add_to_json("[1]").is_err());
        // Without flags the event goes as typed; the broker judges it.
        assert_eq!(
            TimeFields::default().add_to_json("not json").unwrap(),
            "not json"
        );
    }

    #[test]
    fn event_id_reads_string_and_integer_ids() {
        assert_eq!(event_id(r#"{"id":"a1","msg":1}"#), "a1");
        assert_eq!(event_id(r#"{"id":7,"msg":1}"#), "7");
        assert_eq!(event_id("nope"), "?");
    }
}
