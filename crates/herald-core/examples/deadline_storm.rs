//! A deadline storm: 1,000,000 events in flight at a group of 16 members
//! (prefetch 65535 each, `wait=30s`), all past their deadline at once.
//! Times the `tick` that returns them (at their place, counted, and
//! delivered again to the freed members), in the broker state machine.
//!
//! `cargo run --release -p herald-core --example deadline_storm -- [EVENTS]`

use herald_core::{Broker, ConnId, Effects, Output};
use std::time::Instant;

fn run(broker: &mut Broker, conn: u64, line: &str, now: u64) -> Effects {
    let mut fx = Effects::new();
    let command = herald_proto::parse_line(line.as_bytes())
        .expect("valid")
        .expect("not blank");
    broker.handle(ConnId(conn), command, now, &mut fx);
    fx
}

fn main() {
    let events: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let now = 1_700_000_000_000u64;
    let mut broker = Broker::new();
    run(&mut broker, 1000, "create jobs", now);
    let members = events.div_ceil(65_535).max(1);
    for m in 0..members {
        run(
            &mut broker,
            m + 1,
            "sub jobs 65535 group=workers wait=30s",
            now,
        );
    }
    let started = Instant::now();
    for i in 0..events {
        let line = format!(
            r#"pub jobs {{"id":"{i}","priority":{},"msg":"job {i}"}}"#,
            i % 10
        );
        run(&mut broker, 1000, &line, now);
    }
    let mut fx = Effects::new();
    broker.set_durable(broker.last_seq(), now, &mut fx);
    let delivered = fx
        .outputs
        .iter()
        .filter(|o| matches!(o, Output::Deliver { .. }))
        .count();
    println!(
        "{events} published and {delivered} delivered to {members} members in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    drop(fx);
    let deadline = broker.next_wakeup().expect("deadlines are scheduled");
    // As the server does: tick while something is due, writing out (here:
    // counting and dropping) what each tick produced.
    let storm = Instant::now();
    let mut redelivered = 0;
    let mut ticks = 0;
    while broker.next_wakeup().is_some_and(|at| at <= deadline) {
        let mut fx = Effects::new();
        broker.tick(deadline, &mut fx);
        ticks += 1;
        redelivered += fx
            .outputs
            .iter()
            .filter(|o| matches!(o, Output::Deliver { deliveries: 2, .. }))
            .count();
    }
    let took = storm.elapsed();
    println!("{ticks} ticks");
    println!(
        "deadline storm: {redelivered} returned and delivered again in {:.3} s ({:.0} ns each)",
        took.as_secs_f64(),
        took.as_nanos() as f64 / redelivered.max(1) as f64
    );
}
