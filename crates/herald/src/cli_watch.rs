//! `herald stats --watch`: a live view of a running broker, refreshed every
//! `--interval` (1 s), like `nats top` or `redis-cli --stat`.
//!
//! Each refresh takes one `stats` over the protocol (per-topic counts, and
//! published per second from the change in each topic's `published`) and,
//! when the HTTP API answers, `GET /api/v1/overview` for the totals the
//! protocol does not carry (delivered and acked, connections). Rates are
//! differences between successive refreshes divided by the time between
//! them, so the first block has none; a counter that went down (the broker
//! restarted) shows `-` for one refresh.
//!
//! On a terminal each block replaces the last (cursor home, clear screen);
//! otherwise blocks are printed one after another, separated by a blank
//! line, so the output can be logged or piped. Ctrl-C ends the view with
//! exit code 0; `--count N` ends it after N blocks.

use crate::cli_client::print_line;
use crate::cli_table::{Align, render};
use anyhow::{Context, Result, bail};
use herald_client::{Client, Stats};
use std::io::IsTerminal;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest a refresh waits for the HTTP API before showing no totals.
const HTTP_TIMEOUT: Duration = Duration::from_secs(2);

/// How `--watch` runs.
pub struct Options {
    /// The broker's protocol address (shown in the header).
    pub addr: String,
    /// Only this topic.
    pub topic: Option<String>,
    /// Time between refreshes.
    pub interval: Duration,
    /// Stop after this many blocks.
    pub count: Option<u64>,
    /// The HTTP API, for delivered and acked totals; `None`: not asked.
    pub http: Option<String>,
}

/// The broker's totals from `/api/v1/overview`.
#[derive(Clone, Copy)]
struct Totals {
    published: u64,
    delivered: u64,
    acked: u64,
    connections: u64,
}

/// One refresh's readings.
struct Sample {
    at: Instant,
    stats: Stats,
    totals: Option<Totals>,
}

/// The default HTTP address for a protocol address: same host, port + 1,
/// as `herald serve` chooses it.
pub fn default_http(addr: &str) -> Option<String> {
    let (host, port) = addr.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    Some(format!("{host}:{}", port.checked_add(1)?))
}

/// Runs the view until Ctrl-C or `--count` blocks.
///
/// # Errors
/// If `stats` fails (the broker went away) or stdout cannot be written.
pub async fn watch(client: &Client, options: &Options) -> Result<()> {
    tokio::select! {
        result = refresh_loop(client, options) => result,
        signal = tokio::signal::ctrl_c() => {
            signal.context("waiting for Ctrl-C")?;
            // The terminal echoed `^C`: end its line.
            if std::io::stdout().is_terminal() {
                print_line("")?;
            }
            Ok(())
        }
    }
}

async fn refresh_loop(client: &Client, options: &Options) -> Result<()> {
    let tty = std::io::stdout().is_terminal();
    let mut ticker = tokio::time::interval(options.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous: Option<Sample> = None;
    let mut shown = 0u64;
    loop {
        ticker.tick().await;
        let stats = client
            .stats(options.topic.as_deref())
            .await
            .context("stats")?;
        let totals = match &options.http {
            Some(http) => overview(http).await.ok(),
            None => None,
        };
        let sample = Sample {
            at: Instant::now(),
            stats,
            totals,
        };
        let block = render_block(options, previous.as_ref(), &sample);
        if tty {
            // Cursor home and clear: the block replaces the last one.
            print_line(&format!("\x1b[H\x1b[2J{}", block.trim_end()))?;
        } else {
            print_line(&block)?;
        }
        previous = Some(sample);
        shown += 1;
        if options.count.is_some_and(|n| shown >= n) {
            return Ok(());
        }
    }
}

/// Per second between two readings of a counter; `None` without a previous
/// reading or if the counter went down.
fn per_second(previous: Option<u64>, now: u64, seconds: f64) -> Option<f64> {
    let delta = now.checked_sub(previous?)?;
    (seconds > 0.0).then(|| delta as f64 / seconds)
}

fn show_rate(rate: Option<f64>) -> String {
    match rate {
        Some(r) if r >= 100.0 => format!("{r:.0}"),
        Some(r) => format!("{r:.1}"),
        None => "-".to_string(),
    }
}

fn render_block(options: &Options, previous: Option<&Sample>, now: &Sample) -> String {
    let seconds = previous.map_or(0.0, |p| (now.at - p.at).as_secs_f64());
    let published_sum = |s: &Stats| s.topics.values().map(|t| t.published).sum::<u64>();
    let published = per_second(
        previous.map(|p| published_sum(&p.stats)),
        published_sum(&now.stats),
        seconds,
    );
    let total = |pick: fn(&Totals) -> u64| {
        let now = now.totals.as_ref().map(pick)?;
        per_second(
            previous.and_then(|p| p.totals.as_ref().map(pick)),
            now,
            seconds,
        )
    };
    let delivered = total(|t| t.delivered);
    let acked = total(|t| t.acked);

    let mut out = format!(
        "herald {}  topics {}  connections {}  (every {} ms; Ctrl-C quits)\n",
        options.addr,
        now.stats.topics.len(),
        now.totals
            .map_or_else(|| "-".to_string(), |t| t.connections.to_string()),
        options.interval.as_millis(),
    );
    out.push_str(&format!(
        "published/s {:>9}  delivered/s {:>9}  acked/s {:>9}\n",
        show_rate(published),
        show_rate(delivered),
        show_rate(acked),
    ));
    if let (Some(http), None) = (&options.http, now.totals) {
        out.push_str(&format!(
            "(delivered and acked come from the HTTP API, which does not answer at {http})\n"
        ));
    }
    if let Some(t) = now.totals {
        out.push_str(&format!(
            "totals: published {}  delivered {}  acked {}\n",
            t.published, t.delivered, t.acked
        ));
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = now
        .stats
        .topics
        .iter()
        .map(|(name, t)| {
            // A topic new since the last refresh counts from zero.
            let before = previous.map(|p| p.stats.topics.get(name).map_or(0, |t| t.published));
            vec![
                name.clone(),
                show_rate(per_second(before, t.published, seconds)),
                t.subscribers.to_string(),
                t.pending.to_string(),
                t.in_flight.to_string(),
                t.delayed.to_string(),
                t.published.to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("(no topics)\n");
    } else {
        use Align::{Left, Right};
        out.push_str(&render(
            &[
                "TOPIC",
                "PUB/S",
                "SUBSCRIBERS",
                "PENDING",
                "IN_FLIGHT",
                "DELAYED",
                "PUBLISHED",
            ],
            &[Left, Right, Right, Right, Right, Right, Right],
            &rows,
        ));
    }
    out
}

/// `GET /api/v1/overview` over a plain HTTP/1.1 connection: one request
/// a second needs no HTTP client library.
async fn overview(http: &str) -> Result<Totals> {
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(http).await?;
        let request =
            format!("GET /api/v1/overview HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(HTTP_TIMEOUT, fetch)
        .await
        .context("timed out")??;
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("not an HTTP response");
    };
    if !head.starts_with("HTTP/1.1 200") {
        bail!("{}", head.lines().next().unwrap_or_default());
    }
    let json: serde_json::Value = serde_json::from_str(body).context("overview JSON")?;
    let field = |k: &str| json[k].as_u64().with_context(|| format!("no '{k}'"));
    Ok(Totals {
        published: field("published")?,
        delivered: field("delivered")?,
        acked: field("acked")?,
        connections: field("connections")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_http_address_is_the_next_port() {
        assert_eq!(
            default_http("127.0.0.1:8000").as_deref(),
            Some("127.0.0.1:8001")
        );
        assert_eq!(default_http("[::1]:9000").as_deref(), Some("[::1]:9001"));
        assert_eq!(default_http("localhost:65535"), None);
        assert_eq!(default_http("localhost"), None);
    }

    #[test]
    fn rates_need_two_readings_and_a_counter_that_grew() {
        assert_eq!(per_second(None, 10, 1.0), None);
        assert_eq!(per_second(Some(10), 30, 2.0), Some(10.0));
        assert_eq!(per_second(Some(30), 10, 1.0), None);
        assert_eq!(show_rate(Some(2.26)), "2.3");
        assert_eq!(show_rate(Some(1234.4)), "1234");
        assert_eq!(show_rate(None), "-");
    }
}
