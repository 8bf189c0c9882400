//! Queue and broker micro-benchmarks.
//!
//! - `queue/push_pop_ack_with_1m_pending`: one event pushed, popped and
//!   acknowledged on a `PendingQueue` that already holds 1,000,000 events
//!   (the issue's bound: 150 ns).
//! - `broker/pub_deliver_ack`: one `pub` line through `Broker::handle` to a
//!   subscriber with prefetch 1, its delivery, and its `ack`.

use criterion::{Criterion, criterion_group, criterion_main};
use herald_core::queue::{PendingQueue, Pop};
use herald_core::{Broker, Command, ConnId, Effects, Event, Seq};
use std::hint::black_box;
use std::sync::Arc;

fn event(seq: u64, priority: u8) -> Arc<Event> {
    Arc::new(Event::new(
        Seq(seq),
        priority,
        0,
        &seq.to_string(),
        &[b'x'; 100],
    ))
}

fn queue(c: &mut Criterion) {
    let mut q = PendingQueue::new();
    const PENDING: u64 = 1_000_000;
    for seq in 0..PENDING {
        q.push(event(seq, (seq % 10) as u8), false);
    }
    // The measured event has the top priority so pop finds it first, as a
    // fresh urgent event would be; the million others stay pending. Events
    // come from a small ring, hot in cache like a just-parsed event: what is
    // measured is the queue, not the allocator.
    let ring: Vec<Arc<Event>> = (0..1024).map(|i| event(PENDING + i, 255)).collect();
    let mut i = 0usize;
    c.bench_function("queue/push_pop_ack_with_1m_pending", |b| {
        b.iter(|| {
            let e = ring[i % ring.len()].clone();
            i += 1;
            q.push(e, false);
            match q.pop(Seq(u64::MAX)) {
                Pop::Event { event, .. } => {
                    black_box(q.remove(event.seq));
                }
                _ => unreachable!("the pushed event is the best one"),
            }
        })
    });
}

fn broker(c: &mut Criterion) {
    let mut broker = Broker::new();
    let mut fx = Effects::new();
    broker.handle(
        ConnId(1),
        Command::Create {
            topic: "t".into(),
            ttl_ms: None,
        },
        0,
        &mut fx,
    );
    broker.handle(
        ConnId(1),
        Command::Sub {
            topic: "t".into(),
            prefetch: 1,
            options: Default::default(),
        },
        0,
        &mut fx,
    );
    let mut n = 0u64;
    c.bench_function("broker/pub_deliver_ack", |b| {
        b.iter(|| {
            n += 1;
            let line = format!(
                r#"pub t {{"id":"{n}","priority":3,"msg":"{}"}}"#,
                "x".repeat(60)
            );
            let command = herald_proto::parse_line(line.as_bytes()).unwrap().unwrap();
            fx.outputs.clear();
            fx.changes.clear();
            broker.handle(ConnId(2), command, 0, &mut fx);
            let last = broker.last_seq();
            broker.set_durable(last, &mut fx);
            broker.handle(
                ConnId(1),
                Command::Ack {
                    topic: "t".into(),
                    id: n.to_string(),
                },
                0,
                &mut fx,
            );
            black_box(fx.outputs.len());
        })
    });
}

criterion_group!(benches, queue, broker);
criterion_main!(benches);
