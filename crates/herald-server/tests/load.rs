//! `docs/protocol.md` sections 2, 3 and 9 under load: deep pipelining, a
//! subscriber that does not read, concurrent publishers, many connections.
mod common;
use common::*;

use std::collections::HashSet;
use std::io::Write;

#[test]
fn ten_thousand_pipelined_commands_in_one_write_get_replies_in_order() {
    let server = Server::start();
    let mut sub = server.connect();
    assert_eq!(sub.cmd("create p"), "+OK created p");
    assert_eq!(sub.cmd("sub p 1"), "+OK subscribed p");
    // The subscriber does not read for now.

    let mut publisher = server.connect();
    let mut expected = Vec::with_capacity(10_000);
    let mut buf = Vec::new();
    for i in 0..10_000u32 {
        if i % 4 == 3 {
            buf.extend_from_slice(b"ping\n");
            expected.push("+OK pong".to_string());
        } else {
            buf.extend_from_slice(
                format!(
                    "pub p {{\"id\":{i},\"priority\":{},\"msg\":\"event {i}\"}}\n",
                    i % 7
                )
                .as_bytes(),
            );
            expected.push(format!("+OK published p {i}"));
        }
    }
    let mut writer = publisher.clone_writer();
    // One write of the whole buffer, from another thread so that this one can
    // read replies meanwhile (the replies may not fit in the socket buffers).
    let sender = std::thread::spawn(move || writer.write_all(&buf).expect("write batch"));
    let mut replies = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        replies.push(publisher.reply());
    }
    sender.join().unwrap();
    assert_eq!(replies[0], "+OK published p 0");
    assert_eq!(replies[3], "+OK pong");
    assert_eq!(replies[4_998], "+OK published p 4998");
    assert_eq!(replies[9_999], "+OK pong");
    for (i, (got, want)) in replies.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "reply {i}");
    }
    assert!(publisher.deliveries.is_empty(), "publisher got deliveries");
    assert_eq!(publisher.cmd("ping"), "+OK pong", "exactly 10,000 replies");

    let t = publisher.topic_stats("p");
    assert_eq!(t["published"], 7_500, "{t}");
    assert_eq!(t["in_flight"], 1, "{t}");
    assert_eq!(t["pending"], 7_499, "{t}");
    // The subscriber's window of one holds one event; after its ack the next
    // is the highest priority, first published, of those left.
    let first = sub.delivery();
    let first: u32 = first["id"].as_str().unwrap().parse().unwrap();
    assert!(first % 4 != 3 && first < 10_000, "{first}");
    assert_eq!(
        sub.cmd(&format!("ack p {first}")),
        format!("+OK acked p {first}")
    );
    let next = (0..10_000u32)
        .filter(|i| i % 4 != 3 && *i != first)
        .max_by_key(|i| (i % 7, std::cmp::Reverse(*i)))
        .unwrap();
    assert_eq!(sub.delivery()["id"], next.to_string());
}

#[test]
fn slow_subscriber_does_not_block_publishers_or_other_connections() {
    const N: usize = 20_000;
    const CHUNK: usize = 1_000;
    let server = Server::start();
    let mut slow = server.connect();
    assert_eq!(slow.cmd("create slow"), "+OK created slow");
    assert_eq!(slow.cmd("sub slow 10"), "+OK subscribed slow");
    let mut publisher = server.connect();
    let mut bystander = server.connect();
    let body = "x".repeat(100);
    for chunk in 0..N / CHUNK {
        let mut buf = String::new();
        for i in chunk * CHUNK..(chunk + 1) * CHUNK {
            buf.push_str(&format!("pub slow {{\"id\":{i},\"msg\":\"{body}\"}}\n"));
        }
        publisher.send_raw(buf.as_bytes());
        for i in chunk * CHUNK..(chunk + 1) * CHUNK {
            assert_eq!(publisher.reply(), format!("+OK published slow {i}"));
        }
        assert_eq!(bystander.cmd("ping"), "+OK pong");
    }
    assert_eq!(server.connect().cmd("ping"), "+OK pong");
    let t = bystander.topic_stats("slow");
    assert_eq!(t["published"], N as u64, "{t}");
    assert_eq!(t["in_flight"], 10, "{t}");
    assert_eq!(t["pending"], (N - 10) as u64, "{t}");

    // Now the subscriber reads and acks everything, keeping its window full.
    let mut seen = Vec::with_capacity(N);
    let mut acks = 0;
    while seen.len() < N || acks < N {
        let line = slow.line().expect("connection closed");
        if line.starts_with('{') {
            let d: serde_json::Value = serde_json::from_str(&line).expect("delivery JSON");
            let id = d["id"].as_str().expect("id").to_string();
            assert!(d.get("redelivered").is_none(), "{d}");
            slow.send(&format!("ack slow {id}"));
            seen.push(id);
        } else {
            assert_eq!(line, format!("+OK acked slow {}", seen[acks]));
            acks += 1;
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), N, "an event was delivered twice");
    for (i, id) in seen.iter().enumerate() {
        assert_eq!(*id, i.to_string(), "delivery {i} out of publish order");
    }
    slow.assert_quiet();
    let t = bystander.topic_stats("slow");
    assert_eq!(
        (t["pending"].as_u64(), t["in_flight"].as_u64()),
        (Some(0), Some(0)),
        "{t}"
    );
}

#[test]
fn concurrent_publishers_and_subscribers_lose_and_repeat_nothing() {
    const PUBLISHERS: usize = 4;
    const EACH: usize = 2_000;
    let server = Server::start();
    let mut admin = server.connect();
    assert_eq!(admin.cmd("create c"), "+OK created c");
    let mut subs = Vec::new();
    for prefetch in [1, 64] {
        let mut s = server.connect();
        assert_eq!(s.cmd(&format!("sub c {prefetch}")), "+OK subscribed c");
        subs.push(s);
    }
    let addr = server.addr;
    let consumers: Vec<_> = subs
        .into_iter()
        .map(|mut s| {
            std::thread::spawn(move || {
                let mut seen: Vec<(usize, usize)> = Vec::new();
                let mut acks = 0;
                while seen.len() < PUBLISHERS * EACH || acks < PUBLISHERS * EACH {
                    let line = s.line().expect("connection closed");
                    if line.starts_with('{') {
                        let d: serde_json::Value = serde_json::from_str(&line).unwrap();
                        let id = d["id"].as_str().unwrap().to_string();
                        s.send(&format!("ack c {id}"));
                        let (p, i) = id.split_once('-').unwrap();
                        seen.push((p.parse().unwrap(), i.parse().unwrap()));
                    } else {
                        assert!(line.starts_with("+OK acked c "), "{line}");
                        acks += 1;
                    }
                }
                seen
            })
        })
        .collect();
    let producers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for batch in 0..EACH / 100 {
                    let mut buf = String::new();
                    for i in batch * 100..(batch + 1) * 100 {
                        buf.push_str(&format!("pub c {{\"id\":\"{p}-{i}\",\"msg\":{i}}}\n"));
                    }
                    c.send_raw(buf.as_bytes());
                    for i in batch * 100..(batch + 1) * 100 {
                        assert_eq!(c.reply(), format!("+OK published c {p}-{i}"));
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    for consumer in consumers {
        let seen = consumer.join().unwrap();
        assert_eq!(seen.len(), PUBLISHERS * EACH);
        let unique: HashSet<&(usize, usize)> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "duplicate deliveries");
        // Equal priorities: each publisher's events arrive in its publish order.
        let mut next = [0usize; PUBLISHERS];
        for &(p, i) in &seen {
            assert_eq!(i, next[p], "publisher {p} out of order");
            next[p] += 1;
        }
    }
    let t = admin.topic_stats("c");
    assert_eq!(t["published"], (PUBLISHERS * EACH) as u64, "{t}");
    assert_eq!(
        (t["pending"].as_u64(), t["in_flight"].as_u64()),
        (Some(0), Some(0)),
        "{t}"
    );
}

#[test]
fn many_simultaneous_connections_are_all_served() {
    let server = Server::start();
    let mut admin = server.connect();
    assert_eq!(admin.cmd("create many"), "+OK created many");
    let mut clients: Vec<Client> = (0..200).map(|_| server.connect()).collect();
    for c in clients.iter_mut() {
        c.send("sub many 1");
    }
    for c in clients.iter_mut() {
        assert_eq!(c.reply(), "+OK subscribed many");
    }
    assert_eq!(
        admin.cmd(&pub_line("many", "1", 0, "m")),
        "+OK published many 1"
    );
    for c in clients.iter_mut() {
        assert_eq!(c.delivery()["id"], "1");
        c.send("ack many 1");
    }
    for c in clients.iter_mut() {
        assert_eq!(c.reply(), "+OK acked many 1");
    }
    let t = admin.topic_stats("many");
    assert_eq!(t["subscribers"], 200, "{t}");
    assert_eq!(
        (t["pending"].as_u64(), t["in_flight"].as_u64()),
        (Some(0), Some(0)),
        "{t}"
    );
}
