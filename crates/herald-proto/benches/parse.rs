//! Hot-path costs of the protocol: parsing a typical `pub` line,
//! splitting a read buffer into lines, and writing a delivery line.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use herald_proto::{Command, Delivery, Frame, LineDecoder, MAX_LINE_BYTES, parse_line};

/// A `pub` line of about 100 bytes, the size of a small real event.
fn pub_line() -> String {
    let head = r#"pub tweets {"id":"12345","priority":3,"msg":""#;
    let filler = "x".repeat(100 - head.len() - 2);
    let line = format!("{head}{filler}\"}}");
    assert_eq!(line.len(), 100);
    line
}

fn parse(c: &mut Criterion) {
    let line = pub_line();
    assert!(matches!(parse_line(line.as_bytes()), Ok(Some(_))));
    let mut group = c.benchmark_group("parse_line");
    group.throughput(Throughput::Bytes(line.len() as u64));
    group.bench_function("pub_100_bytes", |b| {
        b.iter(|| parse_line(black_box(line.as_bytes())))
    });
    group.bench_function("ping", |b| b.iter(|| parse_line(black_box(b"ping"))));
    group.finish();
}

fn decode(c: &mut Criterion) {
    const LINES: usize = 1000;
    let mut stream = Vec::new();
    for _ in 0..LINES {
        stream.extend_from_slice(pub_line().as_bytes());
        stream.extend_from_slice(b"\r\n");
    }
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(LINES as u64));
    group.bench_function("1000_pub_lines", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&stream[..]),
            |buf| {
                let mut decoder = LineDecoder::new(MAX_LINE_BYTES);
                let mut n = 0;
                while let Some(frame) = decoder.decode(buf) {
                    if let Frame::Line(line) = frame {
                        n += line.len();
                    }
                }
                n
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("1000_pub_lines_and_parse", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&stream[..]),
            |buf| {
                let mut decoder = LineDecoder::new(MAX_LINE_BYTES);
                let mut n = 0;
                while let Some(Frame::Line(line)) = decoder.decode(buf) {
                    n += usize::from(matches!(parse_line(&line), Ok(Some(_))));
                }
                n
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let Ok(Some(Command::Pub { topic, event })) = parse_line(pub_line().as_bytes()) else {
        panic!("the bench line is a pub");
    };
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(1));
    let mut out = BytesMut::with_capacity(4096);
    for (name, deliveries) in [("delivery_first", 1), ("delivery_again", 2)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                Delivery {
                    topic: black_box(&topic),
                    id: black_box(&event.id),
                    priority: event.priority,
                    fields: black_box(&event.fields),
                    timestamp: 1_650_054_011_933,
                    deliveries,
                }
                .encode(&mut out);
                out.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse, decode, encode);
criterion_main!(benches);
