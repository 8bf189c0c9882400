//! Memory of pending events in the broker state machine.
//!
//! `cargo run --release -p herald-core --example memory -- [EVENTS] [SUBSCRIBERS] [ttl|delay]`
//! publishes EVENTS (default 1,000,000) events with a 100-byte `msg` to one
//! topic with SUBSCRIBERS (default 1) subscribers that never ack, then prints
//! the process's resident set size (VmRSS, from /proc/self/status) before and
//! after. This is the broker's share of a server's memory; the server adds
//! per-connection buffers and the log's write buffer.

use herald_core::{Broker, Command, ConnId, Effects};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let subscribers: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    // `ttl` or `delay`: every event carries a time to live (1 hour) or a
    // delay (1 hour), to measure what that bookkeeping costs.
    let time_field = match args.next().as_deref() {
        Some("ttl") => r#","ttl_ms":3600000"#,
        Some("delay") => r#","delay_ms":3600000"#,
        _ => "",
    };
    let before = rss_kib();
    let mut broker = Broker::new();
    let mut fx = Effects::new();
    broker.handle(
        ConnId(0),
        Command::Create {
            topic: "t".into(),
            ttl_ms: None,
        },
        0,
        &mut fx,
    );
    for s in 1..=subscribers {
        broker.handle(
            ConnId(s),
            Command::Sub {
                topic: "t".into(),
                prefetch: 1,
                options: Default::default(),
            },
            0,
            &mut fx,
        );
    }
    let msg = "x".repeat(100);
    for n in 0..events {
        let line = format!(
            r#"pub t {{"id":"{n}","priority":{},"msg":"{msg}"{time_field}}}"#,
            n % 10
        );
        let command = herald_proto::parse_line(line.as_bytes())
            .expect("valid line")
            .expect("not blank");
        broker.handle(ConnId(999_999), command, 1_764_000_000_000, &mut fx);
        // The log would take these; here they are dropped.
        fx.changes.clear();
        fx.outputs.clear();
    }
    let after = rss_kib();
    let stats = broker.topic_stats("t").expect("topic");
    println!(
        "events={events} subscribers={subscribers} pending={} rss_before={:.1}MiB rss_after={:.1}MiB delta={:.1}MiB bytes/event/subscriber={:.0}",
        stats.pending + stats.in_flight,
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after - before) as f64 / 1024.0,
        (after - before) as f64 * 1024.0 / events as f64 / subscribers as f64,
    );
}
