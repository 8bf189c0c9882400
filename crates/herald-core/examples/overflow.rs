//! What `overflow=drop` costs a publisher (issue "time and limits": a
//! subscription at its limit sustains the unlimited publish rate within
//! 10%).
//!
//! `cargo run --release -p herald-core --example overflow -- [EVENTS] [ROUNDS]`
//! publishes EVENTS (default 1,000,000) 100-byte events at 10 priorities to
//! a topic whose one subscriber never acks, in the broker state machine
//! (parse included, log left out), once with the subscription unlimited and
//! once with `limit=1000 overflow=drop` (full after the first 1,000: every
//! later publish evicts one event). Rounds alternate the two; it prints each
//! run and the medians' ratio.

use herald_core::{Broker, ConnId, Effects};
use std::time::Instant;

fn run(sub_line: &str, events: u64) -> f64 {
    let mut broker = Broker::new();
    let mut fx = Effects::new();
    let now = 1_764_000_000_000;
    for line in ["create t", sub_line] {
        let command = herald_proto::parse_line(line.as_bytes())
            .expect("valid line")
            .expect("not blank");
        broker.handle(ConnId(1), command, now, &mut fx);
    }
    let msg = "x".repeat(100);
    let lines: Vec<String> = (0..events)
        .map(|n| {
            format!(
                r#"pub t {{"id":"{n}","priority":{},"msg":"{msg}"}}"#,
                n % 10
            )
        })
        .collect();
    let started = Instant::now();
    for line in &lines {
        let command = herald_proto::parse_line(line.as_bytes())
            .expect("valid line")
            .expect("not blank");
        broker.handle(ConnId(2), command, now, &mut fx);
        // The log would take these; here they are dropped.
        fx.changes.clear();
        fx.outputs.clear();
    }
    let ns = started.elapsed().as_nanos() as f64 / events as f64;
    let stats = broker.topic_stats("t").expect("topic");
    assert!(
        stats.pending + stats.in_flight > 0,
        "the subscription holds events"
    );
    ns
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let (mut plain, mut drop) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let p = run("sub t 1", events);
        let d = run("sub t 1 limit=1000 overflow=drop", events);
        println!(
            "round {round}: unlimited {p:.0} ns/publish, limit=1000 overflow=drop {d:.0} ns/publish"
        );
        plain.push(p);
        drop.push(d);
    }
    let (p, d) = (median(plain), median(drop));
    println!(
        "median: unlimited {p:.0} ns/publish ({:.0}/s), at the limit with overflow=drop {d:.0} ns/publish ({:.0}/s), ratio {:.3}",
        1e9 / p,
        1e9 / d,
        p / d
    );
}
