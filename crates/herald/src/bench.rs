//! `herald bench`: drive a broker with P publishers and S acking
//! subscribers and report throughput and latency.
//!
//! The bench speaks the protocol over raw TCP rather than through
//! `herald-client`: each connection is one task that builds its commands
//! into one buffer and writes them with one call, so that the broker, not
//! the bench, is what gets measured. Lines are still written and read with
//! `herald-proto` (the `pub` and `ack` fast paths, `Reply::parse`,
//! `ParsedDelivery`), the definitions the broker uses.
//!
//! - A publisher keeps at most `--window` publishes unconfirmed. Each event's
//!   `msg` starts with its send time (20 decimal digits of nanoseconds since
//!   the bench started; all connections share one clock), so a subscriber can
//!   compute publish-to-delivery latency. Replies are matched FIFO with the
//!   send times to get publish-confirm latency.
//! - A subscriber acknowledges every delivery, batching the acks of one read
//!   into one write; it is done when it has its share acknowledged.
//! - Publisher `i` and subscriber `j` use topic `i mod T` and `j mod T`; every
//!   subscriber of a topic gets every event of that topic. Topic names are
//!   fresh per run, so runs against a long-lived broker do not interfere.

mod load;
mod spawn;

use crate::cli_client::Addr;
use anyhow::{Context, Result, bail};
use clap::Args;
use hdrhistogram::Histogram;
use herald_proto::Command;
use herald_proto::SubOptions;
use herald_server::FsyncMode;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use load::{Conn, PubSpec, STAMP_DIGITS};
use spawn::Spawned;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Highest latency the histograms hold: 1 hour, in nanoseconds.
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;
/// Progress bar refresh period.
const PROGRESS_TICK_MS: u64 = 200;

/// `herald bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    #[command(flatten)]
    conn: Addr,
    /// Start a temporary broker (this binary's `serve` on 127.0.0.1:0 with a
    /// temporary data directory), bench it, report its peak RSS, stop it.
    /// Without it, the broker at --addr is used.
    #[arg(long)]
    spawn: bool,
    /// With --spawn: the broker's --fsync mode (always|interval).
    #[arg(long, default_value = "always", requires = "spawn")]
    fsync: FsyncMode,
    /// Publisher connections.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    publishers: u32,
    /// Subscriber connections; each acknowledges every delivery.
    #[arg(long, default_value_t = 1)]
    subscribers: u32,
    /// Deliveries each subscriber may hold unacknowledged (1 to 65535).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    prefetch: u16,
    /// Events EACH publisher sends (the total is publishers × messages).
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Size of each event's `msg` in bytes (at least 20: it starts with the
    /// send time).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Priorities are drawn uniformly from 0..K (1 to 256).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    priorities: u16,
    /// Topics: publisher i publishes to topic i mod T, subscriber j reads
    /// topic j mod T.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    topics: u32,
    /// Most publishes each publisher has sent and not yet seen confirmed.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    window: u32,
    /// Pace each publisher to this many events per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Print the results as one JSON object.
    #[arg(long)]
    json: bool,
    /// Worker threads of the bench's own runtime (its connections are
    /// tasks on it). The broker needs the cores more: keep this small.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Options of every subscriber's `sub`, as the protocol writes them
    /// (`"wait=30s age=1s"`). With `group=<name>` the subscribers of a
    /// topic are one competing-consumer group and share its events, instead
    /// of each getting all of them.
    #[arg(long, default_value = "", value_parser = parse_sub_options)]
    sub_options: SubOptions,
}

fn parse_sub_options(text: &str) -> Result<SubOptions, String> {
    SubOptions::from_text(text)
}

/// Counters shared with the progress bar.
#[derive(Default)]
struct Progress {
    confirmed: AtomicU64,
    acked: AtomicU64,
}

/// What one publisher measured.
struct PubResult {
    confirm: Histogram<u64>,
    published: u64,
    duplicates: u64,
    errors: u64,
    first_error: Option<String>,
    /// Nanoseconds since the bench clock started.
    last_confirm_ns: u64,
}

/// What one subscriber measured.
struct SubResult {
    e2e: Histogram<u64>,
    acked: u64,
    redelivered: u64,
    last_ack_ns: u64,
}

fn histogram() -> Histogram<u64> {
    // Cannot fail: the bounds are constants that hdrhistogram accepts
    // (low >= 1, high >= 2 * low, 3 significant figures).
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds")
}

/// `herald bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    if args.size < STAMP_DIGITS {
        bail!("--size must be at least {STAMP_DIGITS} (the msg starts with the send time)");
    }
    if args.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        bail!("--rate must be a positive number of events per second");
    }
    anyhow::ensure!(
        args.conn.user.is_none(),
        "herald bench does not log in yet (--user): bench a broker without users"
    );
    let tls = args.conn.tls || args.conn.tls_ca.is_some();
    let (spawned, addr, ca) = if args.spawn {
        let (s, a, ca) = Spawned::start(args.fsync, tls)?;
        (Some(s), a.to_string(), ca)
    } else {
        (None, args.conn.addr.clone(), None)
    };
    let tls = if tls {
        Some(tls_setup(&args.conn, ca.as_deref())?)
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.threads))
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let report = runtime.block_on(drive(&args, &addr, tls.as_ref()))?;
    let peak_rss = spawned.as_ref().and_then(Spawned::peak_rss);
    drop(spawned);
    print_report(&args, &addr, &report, peak_rss);
    if report.errors > 0 {
        bail!(
            "{} publish(es) were refused; first: {}",
            report.errors,
            report.first_error.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

struct Report {
    published: u64,
    duplicates: u64,
    errors: u64,
    first_error: Option<String>,
    acked: u64,
    redelivered: u64,
    publish_secs: f64,
    deliver_secs: f64,
    confirm: Histogram<u64>,
    e2e: Histogram<u64>,
}

/// The TLS client settings: trusting the spawned broker's own CA (`ca`),
/// or `--tls-ca`, or the system's roots.
fn tls_setup(conn: &Addr, ca: Option<&str>) -> Result<load::Tls> {
    use herald_server::rustls;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = match (ca, &conn.tls_ca) {
        (Some(pem), _) => CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .context("the spawned broker's CA")?,
        (None, Some(path)) => herald_server::tls::load_certs(path)?,
        (None, None) => Vec::new(),
    };
    if certs.is_empty() {
        bail!("herald bench --tls needs --spawn or --tls-ca");
    }
    for cert in certs {
        roots.add(cert).context("a CA certificate")?;
    }
    let config = rustls::ClientConfig::builder_with_provider(herald_server::tls::provider())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let host = if ca.is_some() {
        "localhost".to_string()
    } else {
        conn.addr
            .rsplit_once(':')
            .map_or(conn.addr.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string()
    };
    Ok(load::Tls {
        connector: herald_server::tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)),
        name: rustls::pki_types::ServerName::try_from(host).context("the broker's name")?,
    })
}

async fn drive(args: &BenchArgs, addr: &str, tls: Option<&load::Tls>) -> Result<Report> {
    let base = Instant::now();
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let topic_names: Arc<Vec<String>> = Arc::new(
        (0..args.topics)
            .map(|t| format!("bench-{run_id}-{t}"))
            .collect(),
    );
    let addr: SocketAddr = tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to nothing"))?;

    // Topics first, so subscribers can subscribe before anything is published.
    let mut control = Conn::open(addr, tls).await?;
    for topic in topic_names.iter() {
        control
            .command(&Command::Create {
                topic: topic.clone(),
                ttl_ms: None,
            })
            .await?;
    }

    let publishers_on = |topic: u32| {
        (0..args.publishers)
            .filter(|i| i % args.topics == topic)
            .count() as u64
    };
    let progress = Arc::new(Progress::default());
    let mut subscribers = Vec::new();
    let mut expected_deliveries = 0;
    // One share per topic: a group's members together ack every event of
    // their topic once; other subscribers each ack all of them.
    let grouped = args.sub_options.group.is_some();
    let shares: Vec<Arc<load::Share>> = (0..args.topics)
        .map(|t| Arc::new(load::Share::new(publishers_on(t) * args.messages)))
        .collect();
    for j in 0..args.subscribers {
        let t = j % args.topics;
        let expected = publishers_on(t) * args.messages;
        if !grouped || j < args.topics {
            expected_deliveries += expected;
        }
        let mut conn = Conn::open(addr, tls).await?;
        let topic = topic_names[t as usize].clone();
        conn.command(&Command::Sub {
            topic: topic.clone(),
            prefetch: args.prefetch,
            options: args.sub_options.clone(),
        })
        .await?;
        let share = if grouped {
            shares[t as usize].clone()
        } else {
            Arc::new(load::Share::new(expected))
        };
        let progress = progress.clone();
        subscribers.push(tokio::spawn(load::subscriber(
            conn, topic, share, base, progress,
        )));
    }

    let total_published = u64::from(args.publishers) * args.messages;
    let bar = progress_bar(args, total_published, expected_deliveries);
    let ticker = {
        let bar = bar.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(PROGRESS_TICK_MS));
            loop {
                every.tick().await;
                let confirmed = progress.confirmed.load(Ordering::Relaxed);
                let acked = progress.acked.load(Ordering::Relaxed);
                if expected_deliveries > 0 {
                    bar.set_position(acked);
                    bar.set_message(format!("published {confirmed}/{total_published}"));
                } else {
                    bar.set_position(confirmed);
                }
            }
        })
    };

    let start_ns = base.elapsed().as_nanos() as u64;
    let mut publishers = Vec::new();
    for i in 0..args.publishers {
        let conn = Conn::open(addr, tls).await?;
        let topic = topic_names[(i % args.topics) as usize].clone();
        let spec = PubSpec {
            index: i,
            topic,
            messages: args.messages,
            size: args.size,
            priorities: args.priorities,
            window: args.window as usize,
            rate: args.rate,
        };
        publishers.push(tokio::spawn(load::publisher(
            conn,
            spec,
            base,
            progress.clone(),
        )));
    }

    let work = async {
        let mut pubs = Vec::new();
        for p in publishers {
            pubs.push(p.await.context("publisher task")??);
        }
        let mut subs = Vec::new();
        for s in subscribers {
            subs.push(s.await.context("subscriber task")??);
        }
        Ok::<_, anyhow::Error>((pubs, subs))
    };
    let outcome = tokio::time::timeout(Duration::from_secs(args.timeout), work).await;
    ticker.abort();
    bar.finish_and_clear();
    let (pubs, subs) = outcome
        .map_err(|_| anyhow::anyhow!("timed out after {} s (--timeout)", args.timeout))??;

    let mut report = Report {
        published: 0,
        duplicates: 0,
        errors: 0,
        first_error: None,
        acked: 0,
        redelivered: 0,
        publish_secs: 0.0,
        deliver_secs: 0.0,
        confirm: histogram(),
        e2e: histogram(),
    };
    let secs = |end_ns: u64| end_ns.saturating_sub(start_ns) as f64 / 1e9;
    for p in pubs {
        report.published += p.published;
        report.duplicates += p.duplicates;
        report.errors += p.errors;
        if report.first_error.is_none() {
            report.first_error = p.first_error;
        }
        report.publish_secs = report.publish_secs.max(secs(p.last_confirm_ns));
        let _ = report.confirm.add(&p.confirm);
    }
    for s in subs {
        report.acked += s.acked;
        report.redelivered += s.redelivered;
        report.deliver_secs = report.deliver_secs.max(secs(s.last_ack_ns));
        let _ = report.e2e.add(&s.e2e);
    }
    let _ = control.command(&Command::Quit).await;
    Ok(report)
}

fn progress_bar(args: &BenchArgs, published: u64, deliveries: u64) -> ProgressBar {
    let target = if args.json || !std::io::stderr().is_terminal() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let (len, what) = if deliveries > 0 {
        (deliveries, "acked")
    } else {
        (published, "published")
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    let template = format!(
        "{{elapsed_precise}} [{{bar:40}}] {{human_pos}}/{{human_len}} {what} ({{per_sec}}) {{msg}}"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

const QUANTILES: [(&str, f64); 4] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)];

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn latency_json(h: &Histogram<u64>) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (name, q) in QUANTILES {
        map.insert(format!("{name}_ms"), ms(h.value_at_quantile(q)).into());
    }
    map.insert("max_ms".into(), ms(h.max()).into());
    map.insert("count".into(), h.len().into());
    map.into()
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

fn print_report(args: &BenchArgs, addr: &str, r: &Report, peak_rss: Option<u64>) {
    let broker = if args.spawn {
        format!("spawned on {addr}, --fsync {}", args.fsync)
    } else {
        addr.to_string()
    };
    if args.json {
        let json = serde_json::json!({
            "broker": broker,
            "spawned": args.spawn,
            "fsync": args.spawn.then(|| args.fsync.to_string()),
            "publishers": args.publishers,
            "subscribers": args.subscribers,
            "prefetch": args.prefetch,
            "messages_per_publisher": args.messages,
            "size": args.size,
            "priorities": args.priorities,
            "topics": args.topics,
            "window": args.window,
            "rate": args.rate,
            "published": r.published,
            "duplicates": r.duplicates,
            "errors": r.errors,
            "publish_secs": r.publish_secs,
            "published_per_sec": rate(r.published, r.publish_secs),
            "acked": r.acked,
            "redelivered": r.redelivered,
            "deliver_secs": r.deliver_secs,
            "acked_per_sec": rate(r.acked, r.deliver_secs),
            "confirm_latency": latency_json(&r.confirm),
            "e2e_latency": latency_json(&r.e2e),
            "broker_peak_rss_bytes": peak_rss,
        });
        println!("{json}");
        return;
    }
    println!(
        "herald bench: {} publisher(s) x {} events of {} B, {} subscriber(s) with prefetch {}, \
         {} topic(s), {} priorities, window {}{}; broker {broker}",
        args.publishers,
        args.messages,
        args.size,
        args.subscribers,
        args.prefetch,
        args.topics,
        args.priorities,
        args.window,
        args.rate
            .map(|r| format!(", paced at {r} events/s per publisher"))
            .unwrap_or_default(),
    );
    println!(
        "published   {:>10} in {:>7.2} s = {:>10.0} events/s{}",
        r.published,
        r.publish_secs,
        rate(r.published, r.publish_secs),
        if r.duplicates + r.errors > 0 {
            format!(" ({} duplicates, {} errors)", r.duplicates, r.errors)
        } else {
            String::new()
        }
    );
    if args.subscribers > 0 {
        println!(
            "acked       {:>10} in {:>7.2} s = {:>10.0} deliveries/s (delivered and acknowledged)",
            r.acked,
            r.deliver_secs,
            rate(r.acked, r.deliver_secs),
        );
    }
    println!(
        "latency ms  {:>10} {:>9} {:>9} {:>9} {:>9}",
        "p50", "p90", "p99", "p99.9", "max"
    );
    let row = |name: &str, h: &Histogram<u64>| {
        let q: Vec<String> = QUANTILES
            .iter()
            .map(|(_, q)| format!("{:>9.3}", ms(h.value_at_quantile(*q))))
            .collect();
        println!(
            "{name:<11} {:>10} {} {} {} {:>9.3}",
            q[0],
            q[1],
            q[2],
            q[3],
            ms(h.max())
        );
    };
    row("confirm", &r.confirm);
    if args.subscribers > 0 {
        row("end-to-end", &r.e2e);
    }
    if let Some(rss) = peak_rss {
        println!("broker peak RSS {:.1} MiB", rss as f64 / (1024.0 * 1024.0));
    }
}
