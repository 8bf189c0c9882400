//! Measures time-driven work on a running broker (issue "time and limits"):
//!
//! - `expiry N`: publishes N events whose TTLs are spread evenly over 10 s
//!   (10 s to 20 s after publishing) to a topic held by a parked durable
//!   subscriber, then samples `stats` every 5 ms and reports how late the
//!   `expired` count follows the expected one (the k-th expiry is due at the
//!   k-th smallest publish time + TTL), and the broker's CPU use meanwhile.
//! - `delay N`: publishes N events whose delays are spread evenly over 10 s
//!   to a subscriber with prefetch 65535 that acks everything, and reports
//!   delivery lateness (receive time minus due time) percentiles.
//!
//! `cargo run --release -p herald --example time_bench -- expiry 1000000 ADDR PID`
//! (PID: the broker's, for its CPU time; 0 to skip).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SPREAD_MS: u64 = 10_000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).ok();
        let mut conn = Conn {
            writer: stream.try_clone().expect("clone"),
            reader: BufReader::new(stream),
        };
        conn.line();
        conn
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read");
        line.trim_end().to_string()
    }

    fn cmd(&mut self, command: &str) -> String {
        writeln!(self.writer, "{command}").expect("write");
        loop {
            let line = self.line();
            if !line.starts_with('{') {
                return line;
            }
        }
    }
}

/// CPU seconds (user + system) of process `pid` so far.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    ticks as f64 / 100.0
}

/// Events per chunk: each chunk is sent, then a `ping` answers once all of
/// it is accepted, which brackets the broker's timestamps of its events.
const CHUNK: u64 = 2_000;

/// Publishes `n` events built by `event(i)` in `errors` mode, a chunk at a
/// time. Returns, per event, the time (ms) before its chunk was sent: no
/// event's timestamp is earlier.
fn publish_all(addr: &str, topic: &str, n: u64, event: impl Fn(u64) -> String) -> Vec<u64> {
    let mut c = Conn::open(addr);
    assert_eq!(c.cmd("replies errors"), "+OK replies errors");
    let mut sent_at = Vec::with_capacity(n as usize);
    let mut batch = String::with_capacity(1 << 20);
    let mut i = 0;
    while i < n {
        let start = now_ms();
        let end = (i + CHUNK).min(n);
        for j in i..end {
            batch.push_str(&format!("pub {topic} {}\n", event(j)));
            sent_at.push(start);
        }
        batch.push_str("ping\n");
        c.writer.write_all(batch.as_bytes()).expect("write");
        batch.clear();
        loop {
            let line = c.line();
            assert!(!line.starts_with("-ERR"), "{line}");
            if line == "+OK pong" {
                break;
            }
        }
        i = end;
    }
    sent_at
}

fn expiry(addr: &str, n: u64, pid: u32) {
    let mut admin = Conn::open(addr);
    admin.cmd("create expiring");
    {
        let mut parked = Conn::open(addr);
        parked.cmd("name parked");
        parked.cmd("sub expiring");
    }
    let t0 = Instant::now();
    let sent_at = publish_all(addr, "expiring", n, |i| {
        let ttl = SPREAD_MS + i * SPREAD_MS / n;
        format!(r#"{{"id":"{i}","msg":"x","ttl_ms":{ttl}}}"#)
    });
    let publish_ms = t0.elapsed().as_millis() as u64;
    // The earliest each event can expire: no timestamp is before its
    // chunk was sent. Sorted, the k-th of these bounds the k-th expiry.
    let mut earliest: Vec<u64> = (0..n)
        .map(|i| sent_at[i as usize] + SPREAD_MS + i * SPREAD_MS / n)
        .collect();
    earliest.sort_unstable();
    let cpu_before = cpu_seconds(pid);
    let wall_before = Instant::now();
    // An upper bound of lateness: at a sample taken at `at` with `expired`
    // events gone, the next one could have expired as early as
    // `earliest[expired]`.
    let mut worst_late: i64 = 0;
    let mut samples = 0;
    loop {
        let asked = now_ms();
        let reply = admin.cmd("stats expiring");
        let json: serde_json::Value =
            serde_json::from_str(reply.strip_prefix("+OK ").expect("stats")).expect("json");
        let expired = json["topics"]["expiring"]["expired"].as_u64().unwrap_or(0);
        if expired < n {
            worst_late = worst_late.max(asked as i64 - earliest[expired as usize] as i64);
        }
        samples += 1;
        if expired >= n {
            break;
        }
        if asked > earliest[n as usize - 1] + 2 * SPREAD_MS {
            println!("gave up: {expired} of {n} expired");
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let cpu = cpu_seconds(pid) - cpu_before;
    let wall = wall_before.elapsed().as_secs_f64();
    println!(
        "expiry n={n} publish_ms={publish_ms} worst_lateness_ms<={worst_late} samples={samples} broker_cpu_s={cpu:.2} wall_s={wall:.2} cores={:.2}",
        cpu / wall
    );
}

fn delay(addr: &str, n: u64) {
    let mut admin = Conn::open(addr);
    admin.cmd("create delayed");
    let mut sub = Conn::open(addr);
    assert!(sub.cmd("sub delayed 65535").starts_with("+OK subscribed"));
    // Due times start once publishing is surely over (about 200,000 events
    // a second), so that deliveries are not measured against the flood.
    let start = now_ms() + 2_000 + n / 100;
    publish_all(addr, "delayed", n, |i| {
        let due = start + i * SPREAD_MS / n;
        format!(r#"{{"id":"{i}","msg":{due},"not_before":{due}}}"#)
    });
    let mut late: Vec<i64> = Vec::with_capacity(n as usize);
    let mut acks = String::new();
    while (late.len() as u64) < n {
        let line = sub.line();
        if !line.starts_with('{') {
            continue;
        }
        let at = now_ms() as i64;
        let json: serde_json::Value = serde_json::from_str(&line).expect("delivery");
        let due = json["msg"].as_i64().expect("due");
        late.push(at - due);
        acks.push_str(&format!(
            "ack delayed {}\n",
            json["id"].as_str().unwrap_or("")
        ));
        if acks.len() > 64 * 1024 || late.len() as u64 == n {
            sub.writer.write_all(acks.as_bytes()).expect("ack");
            acks.clear();
        }
    }
    late.sort_unstable();
    let pct = |p: f64| late[((late.len() as f64 * p) as usize).min(late.len() - 1)];
    println!(
        "delay n={n} lateness_ms p50={} p99={} max={} early={}",
        pct(0.50),
        pct(0.99),
        late[late.len() - 1],
        late.iter().filter(|&&l| l < 0).count()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("expiry");
    let n: u64 = args
        .get(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let addr = args.get(3).map(String::as_str).unwrap_or("127.0.0.1:8000");
    let pid: u32 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(0);
    match mode {
        "expiry" => expiry(addr, n, pid),
        "delay" => delay(addr, n),
        other => eprintln!("unknown mode {other}: expiry | delay"),
    }
}
