//! Work queues and time under `kill -9` (PROTOCOL.md section 14), with the
//! real binary:
//!
//! - a group of three members with `wait=` and `max_deliveries=`, a
//!   pipelining publisher, members that ack most events, forget a few
//!   (their deadline returns them) and nack a poison subset: after several
//!   rounds of `kill -9` and restart, nothing published is lost, nothing
//!   acknowledged comes back, and every dead letter is in exactly one place
//!   (the dead topic or, not yet dead, the source);
//! - delayed events (`delay_ms`, and `nack` with a duration) are neither
//!   lost nor delivered early across kills;
//! - expired events do not come back after a kill.
//!
//! Small counts by default (each test well under 20 s);
//! `HERALD_CRASH_ROUNDS` and `HERALD_CRASH_EVENTS` (events per round) make
//! the first one longer, `HERALD_TEST_SEED` replays its kill times.
mod common;

use common::*;
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The members' subscription (every member sends the same options).
const MEMBER_SUB: &str = "sub jobs 32 group=workers wait=500 max_deliveries=3";
const MEMBER_SUBSCRIBED: &str = "+OK subscribed jobs group=workers wait=500 max_deliveries=3";
const MORGUE_SUB: &str = "sub jobs.dead 50 group=morgue";
const MORGUE_SUBSCRIBED: &str = "+OK subscribed jobs.dead group=morgue";
const MEMBERS: usize = 3;

/// Poison events: always nacked, so dead after `max_deliveries`.
fn is_poison(id: u64) -> bool {
    id.is_multiple_of(10)
}

/// Events whose first delivery the member neither acks nor nacks: the
/// deadline returns them. (Each holds a prefetch slot until then.)
fn is_forgotten(id: u64) -> bool {
    id.is_multiple_of(29)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `n<id>` (or `workers/n<id>` in the dead topic) -> id.
fn parse_id(id: &str) -> u64 {
    id.rsplit('/')
        .next()
        .and_then(|s| s.strip_prefix('n'))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unexpected id {id}"))
}

fn delivery_id(d: &Value) -> u64 {
    parse_id(d["id"].as_str().unwrap_or_else(|| panic!("no id in {d}")))
}

fn deliveries(d: &Value) -> u64 {
    d["deliveries"].as_u64().unwrap_or(1)
}

/// Sends `line` and expects `reply` within the line timeout.
fn expect(conn: &mut RawConn, line: &str, reply: &str) {
    assert!(conn.send(line), "server gone before {line}");
    assert_eq!(
        conn.line_within(LINE_TIMEOUT).as_deref(),
        Some(reply),
        "reply to {line}"
    );
}

#[derive(Default, Debug)]
struct Published {
    ok: Vec<u64>,
    unanswered: Vec<u64>,
    unexpected: Vec<String>,
}

/// Publishes up to `count` events `n<id>` to `jobs`, `window` unanswered
/// at most, until done or the server dies.
fn publisher(
    addr: SocketAddr,
    next_id: Arc<AtomicU64>,
    count: usize,
    window: usize,
    killed: Arc<AtomicBool>,
) -> Published {
    let RawConn { reader, mut writer } = RawConn::connect(addr, Duration::from_millis(300));
    let sent: Arc<Mutex<VecDeque<u64>>> = Arc::default();
    let (tokens, token) = sync_channel::<()>(window);
    for _ in 0..window {
        tokens.send(()).unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (sent, killed, done) = (sent.clone(), killed.clone(), done.clone());
        let mut reader = reader;
        std::thread::spawn(move || {
            let mut res = Published::default();
            loop {
                match read_line(&mut reader) {
                    Ok(Some(line)) => {
                        let front = sent.lock().unwrap().pop_front();
                        match (line.strip_prefix("+OK published jobs n"), front) {
                            (Some(id), Some(f)) if id.parse::<u64>().ok() == Some(f) => {
                                res.ok.push(f)
                            }
                            _ => res.unexpected.push(format!("{line} (for {front:?})")),
                        }
                        let _ = tokens.try_send(());
                    }
                    Ok(None) => break,
                    Err(()) if killed.load(Ordering::SeqCst) => break,
                    Err(()) => {}
                }
            }
            done.store(true, Ordering::SeqCst);
            res
        })
    };
    let pad = "x".repeat(32);
    for _ in 0..count {
        loop {
            match token.recv_timeout(Duration::from_millis(100)) {
                Ok(()) => break,
                Err(RecvTimeoutError::Timeout) if !done.load(Ordering::SeqCst) => {}
                Err(_) => break,
            }
        }
        if done.load(Ordering::SeqCst) {
            break;
        }
        let id = next_id.fetch_add(1, Ordering::SeqCst);
        sent.lock().unwrap().push_back(id);
        let line = format!(
            "{}\n",
            pub_line("jobs", &format!("n{id}"), (id % 3) as u8, &pad)
        );
        if std::io::Write::write_all(&mut writer, line.as_bytes()).is_err() {
            break;
        }
        // Paced (about 3000 a second), so that kills land while it runs.
        if id.is_multiple_of(4) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let mut res = reader.join().expect("publisher reader");
    res.unanswered = sent.lock().unwrap().drain(..).collect();
    res
}

#[derive(Default, Debug)]
struct Member {
    /// (id, deliveries) in arrival order.
    delivered: Vec<(u64, u64)>,
    /// (id, deliveries of the delivery acked) whose `+OK acked` arrived.
    acked: Vec<(u64, u64)>,
    /// Ids whose ack got no reply before the kill.
    ack_unanswered: Vec<u64>,
    violations: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum Sent {
    Ack(u64, u64),
    Nack(u64),
}

/// A group member: acks, nacks the poison, forgets some first deliveries.
fn member(addr: SocketAddr, ready: std::sync::mpsc::Sender<()>, killed: Arc<AtomicBool>) -> Member {
    let mut res = Member::default();
    let mut conn = RawConn::connect(addr, Duration::from_millis(300));
    expect(&mut conn, MEMBER_SUB, MEMBER_SUBSCRIBED);
    ready.send(()).unwrap();
    let mut awaiting: VecDeque<Sent> = VecDeque::new();
    loop {
        let line = match conn.line() {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(()) if killed.load(Ordering::SeqCst) => break,
            Err(()) => continue,
        };
        if line.starts_with('{') {
            let d: Value = serde_json::from_str(&line).expect("delivery JSON");
            let (id, n) = (delivery_id(&d), deliveries(&d));
            res.delivered.push((id, n));
            let sent = if is_poison(id) {
                Sent::Nack(id)
            } else if is_forgotten(id) && n == 1 {
                continue;
            } else {
                Sent::Ack(id, n)
            };
            let line = match sent {
                Sent::Ack(..) => format!("ack jobs n{id}"),
                Sent::Nack(_) => format!("nack jobs n{id}"),
            };
            if !conn.send(&line) {
                break;
            }
            awaiting.push_back(sent);
            continue;
        }
        let Some(sent) = awaiting.pop_front() else {
            res.violations
                .push(format!("member: unexpected line {line}"));
            continue;
        };
        // A no_event answers an ack or nack that came after the deadline
        // had returned the event (and maybe sent it to another member).
        match sent {
            Sent::Ack(id, n) if line == format!("+OK acked jobs n{id}") => res.acked.push((id, n)),
            Sent::Nack(id) if line == format!("+OK nacked jobs n{id}") => {}
            _ if line.starts_with("-ERR no_event") => {}
            _ => res
                .violations
                .push(format!("member: {sent:?} answered {line}")),
        }
    }
    res.ack_unanswered = awaiting
        .into_iter()
        .filter_map(|s| match s {
            Sent::Ack(id, _) => Some(id),
            Sent::Nack(_) => None,
        })
        .collect();
    res
}

#[derive(Default, Debug)]
struct Morgue {
    /// (original id, deliveries it had when it died, reason).
    letters: Vec<(u64, u64, String)>,
    violations: Vec<String>,
}

/// The dead topic's group: records and acks every dead letter.
fn morgue(addr: SocketAddr, ready: std::sync::mpsc::Sender<()>, killed: Arc<AtomicBool>) -> Morgue {
    let mut res = Morgue::default();
    let mut conn = RawConn::connect(addr, Duration::from_millis(300));
    expect(&mut conn, MORGUE_SUB, MORGUE_SUBSCRIBED);
    ready.send(()).unwrap();
    let mut awaiting = VecDeque::new();
    loop {
        let line = match conn.line() {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(()) if killed.load(Ordering::SeqCst) => break,
            Err(()) => continue,
        };
        if line.starts_with('{') {
            let d: Value = serde_json::from_str(&line).expect("dead letter JSON");
            let letter = d["id"].as_str().unwrap().to_string();
            let dead = &d["dead"];
            if dead["subscription"] != "workers" || dead["topic"] != "jobs" {
                res.violations.push(format!("odd dead letter {line}"));
            }
            res.letters.push((
                parse_id(&letter),
                dead["deliveries"].as_u64().unwrap_or(0),
                dead["reason"].as_str().unwrap_or("").to_string(),
            ));
            if !conn.send(&format!("ack jobs.dead {letter}")) {
                break;
            }
            awaiting.push_back(letter);
            continue;
        }
        match awaiting.pop_front() {
            Some(letter) if line == format!("+OK acked jobs.dead {letter}") => {}
            other => res
                .violations
                .push(format!("morgue: {other:?} answered {line}")),
        }
    }
    res
}

/// Everything seen over all rounds.
#[derive(Default)]
struct Ledger {
    published_ok: HashSet<u64>,
    publish_unanswered: HashSet<u64>,
    /// id -> (round, deliveries of the acked delivery).
    acked: HashMap<u64, (usize, u64)>,
    ack_unanswered: HashSet<u64>,
    /// id -> (round, deliveries when it died), from the dead topic.
    dead: HashMap<u64, (usize, u64)>,
    dead_reasons: HashMap<String, usize>,
    deliveries: usize,
    violations: Vec<String>,
}

impl Ledger {
    /// A source delivery must not follow an ack or a death of its event.
    fn check_delivery(&mut self, round: usize, id: u64, n: u64) {
        self.deliveries += 1;
        if !self.published_ok.contains(&id) && !self.publish_unanswered.contains(&id) {
            self.violations
                .push(format!("round {round}: n{id} delivered, never published"));
        }
        // Within a round, counts order the deliveries of an event; across
        // a kill, any later delivery is after.
        if let Some(&(r, acked_n)) = self.acked.get(&id)
            && (round > r || n > acked_n)
        {
            self.violations.push(format!(
                "round {round}: n{id} delivered (deliveries {n}) after its +OK acked in round {r}"
            ));
        }
        if let Some(&(r, dead_n)) = self.dead.get(&id)
            && (round > r || n > dead_n)
        {
            self.violations.push(format!(
                "round {round}: n{id} delivered (deliveries {n}) after it was dead-lettered in round {r}"
            ));
        }
    }
}

#[test]
fn kill9_under_group_load_loses_nothing_and_dead_letters_once() {
    let rounds = env_or("HERALD_CRASH_ROUNDS", 3);
    let per_round = env_or("HERALD_CRASH_EVENTS", 1500);
    let started = Instant::now();
    let mut rng = Rng::from_env_or_time();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let next_id = Arc::new(AtomicU64::new(1));
    let mut ledger = Ledger::default();
    let mut server = Server::start_on(&data, &[]);
    {
        let mut c = server.connect();
        assert_eq!(c.cmd("create jobs"), "+OK created jobs");
        assert_eq!(c.cmd("create jobs.dead"), "+OK created jobs.dead");
    }

    for round in 0..rounds {
        if round > 0 {
            server.restart(&[]);
        }
        let killed = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let morgue_thread = {
            let (addr, killed, ready) = (server.addr, killed.clone(), ready_tx.clone());
            std::thread::spawn(move || morgue(addr, ready, killed))
        };
        let members: Vec<_> = (0..MEMBERS)
            .map(|_| {
                let (addr, killed, ready) = (server.addr, killed.clone(), ready_tx.clone());
                std::thread::spawn(move || member(addr, ready, killed))
            })
            .collect();
        for _ in 0..=MEMBERS {
            ready_rx
                .recv_timeout(LINE_TIMEOUT)
                .expect("subscriber ready");
        }
        let publisher = {
            let (addr, killed, next_id) = (server.addr, killed.clone(), next_id.clone());
            std::thread::spawn(move || publisher(addr, next_id, per_round, 50, killed))
        };
        let wait = rng.range(200, 900);
        std::thread::sleep(Duration::from_millis(wait));
        server.kill9();
        killed.store(true, Ordering::SeqCst);

        let p = publisher.join().expect("publisher");
        assert!(p.unexpected.is_empty(), "round {round}: {:?}", p.unexpected);
        ledger.published_ok.extend(&p.ok);
        ledger.publish_unanswered.extend(&p.unanswered);
        let m = morgue_thread.join().expect("morgue");
        for &(id, n, ref reason) in &m.letters {
            ledger.dead.entry(id).or_insert((round, n));
            *ledger.dead_reasons.entry(reason.clone()).or_default() += 1;
        }
        ledger.violations.extend(m.violations);
        let mut delivered = 0;
        for member in members {
            let member = member.join().expect("member");
            delivered += member.delivered.len();
            for &(id, n) in &member.delivered {
                ledger.check_delivery(round, id, n);
            }
            for (id, n) in member.acked {
                if ledger.acked.insert(id, (round, n)).is_some() {
                    ledger
                        .violations
                        .push(format!("round {round}: n{id} acked twice"));
                }
            }
            ledger.ack_unanswered.extend(member.ack_unanswered);
            ledger.violations.extend(member.violations);
        }
        eprintln!(
            "round {round}: kill after {wait} ms: {} published ({} unanswered), {delivered} delivered, {} dead letters",
            p.ok.len(),
            p.unanswered.len(),
            m.letters.len()
        );
    }

    // After the last restart: what the broker says it holds...
    server.restart(&[]);
    let mut c = server.connect();
    let group = subscription(&mut c, "jobs", "workers");
    assert_eq!(
        group["in_flight"], 0,
        "nothing is in flight after recovery: {group}"
    );
    let held = group["pending"].as_u64().unwrap() + group["delayed"].as_u64().unwrap();
    let source_peek = peek_ids(&mut c, "peek jobs 1000 group=workers");
    let dead_peek = peek_ids(&mut c, "peek jobs.dead 1000 group=morgue");
    if held <= 1000 {
        assert_eq!(source_peek.len() as u64, held, "peek and stats agree");
    }
    // ...then every event it holds, drained.
    let drained_source = drain(&server, MEMBER_SUB, MEMBER_SUBSCRIBED, "jobs");
    let drained_dead = drain(&server, MORGUE_SUB, MORGUE_SUBSCRIBED, "jobs.dead");
    assert_eq!(server.stop(), Some(0), "SIGTERM after the drain");

    for &(id, n) in &drained_source {
        ledger.check_delivery(rounds, id, n);
    }
    let source_end: HashSet<u64> = drained_source.iter().map(|d| d.0).collect();
    if held <= 1000 {
        assert_eq!(
            source_peek.iter().copied().collect::<HashSet<_>>(),
            source_end,
            "peek shows what the drain got"
        );
    }
    for &(id, _) in &drained_dead {
        ledger.dead.entry(id).or_insert((rounds, u64::MAX));
    }
    for id in &dead_peek {
        assert!(
            drained_dead.iter().any(|d| d.0 == *id),
            "n{id} peeked in jobs.dead, not drained"
        );
    }

    let mut lost = Vec::new();
    for &id in &ledger.published_ok {
        let acked = ledger.acked.contains_key(&id) || ledger.ack_unanswered.contains(&id);
        let dead = ledger.dead.contains_key(&id);
        let pending = source_end.contains(&id);
        if dead && pending {
            ledger
                .violations
                .push(format!("n{id} is both dead-lettered and still in jobs"));
        }
        if dead && ledger.acked.contains_key(&id) {
            ledger
                .violations
                .push(format!("n{id} was acked and dead-lettered"));
        }
        if is_poison(id) && ledger.acked.contains_key(&id) {
            ledger
                .violations
                .push(format!("poison n{id} acked by a member"));
        }
        if !acked && !dead && !pending {
            lost.push(id);
        }
    }
    lost.sort_unstable();
    let poison = ledger
        .published_ok
        .iter()
        .filter(|&&id| is_poison(id))
        .count();
    eprintln!(
        "{rounds} rounds in {:.1} s: {} published ok ({} poison), {} unanswered publishes, {} acked, {} deliveries, {} dead-lettered {:?}, {} drained from jobs, {} from jobs.dead",
        started.elapsed().as_secs_f64(),
        ledger.published_ok.len(),
        poison,
        ledger.publish_unanswered.len(),
        ledger.acked.len(),
        ledger.deliveries,
        ledger.dead.len(),
        ledger.dead_reasons,
        source_end.len(),
        drained_dead.len(),
    );
    assert!(
        lost.is_empty(),
        "{} events that got +OK published are lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(
        ledger.violations.is_empty(),
        "{} violations, e.g.:\n{}",
        ledger.violations.len(),
        ledger.violations[..ledger.violations.len().min(10)].join("\n")
    );
    assert!(ledger.published_ok.len() >= 500, "too little traffic");
    assert!(!ledger.dead.is_empty(), "no poison event died");

    let data = data.to_str().unwrap();
    let check = run_herald(&["check", "--data", data], Duration::from_secs(60));
    assert_eq!(check.code, Some(0), "herald check: {check:?}");
}

/// The `stats <topic>` entry of subscription `group`.
fn subscription(c: &mut Client, topic: &str, group: &str) -> Value {
    let stats = c.topic_stats(topic);
    stats["subscriptions"]
        .as_array()
        .and_then(|subs| subs.iter().find(|s| s["group"] == group).cloned())
        .unwrap_or_else(|| panic!("no group {group} in {stats}"))
}

/// The ids a `peek` shows.
fn peek_ids(c: &mut Client, line: &str) -> Vec<u64> {
    let reply = c.cmd(line);
    let json = reply
        .strip_prefix("+OK ")
        .unwrap_or_else(|| panic!("{line}: {reply}"));
    let entries: Vec<Value> = serde_json::from_str(json).expect("peek JSON");
    entries
        .iter()
        .map(|e| parse_id(e["event"]["id"].as_str().unwrap()))
        .collect()
}

/// Subscribes with `sub_line` and acks everything until `stats <topic>`
/// shows nothing pending, in flight or delayed; returns (id, deliveries).
fn drain(server: &Server, sub_line: &str, subscribed: &str, topic: &str) -> Vec<(u64, u64)> {
    let mut conn = RawConn::connect(server.addr, Duration::from_millis(300));
    expect(&mut conn, sub_line, subscribed);
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    // What each awaited reply answers: an ack's id, or None for stats.
    let mut awaiting: VecDeque<Option<String>> = VecDeque::new();
    let mut stats_pending = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "draining {topic} did not finish");
        let line = match conn.line() {
            Ok(Some(line)) => line,
            Ok(None) => panic!("server closed the drain of {topic}"),
            Err(()) => {
                if !stats_pending {
                    assert!(conn.send(&format!("stats {topic}")));
                    awaiting.push_back(None);
                    stats_pending = true;
                }
                continue;
            }
        };
        if line.starts_with('{') {
            let d: Value = serde_json::from_str(&line).expect("delivery JSON");
            let id = d["id"].as_str().unwrap().to_string();
            assert!(seen.insert(id.clone()), "{id} drained twice from {topic}");
            out.push((parse_id(&id), deliveries(&d)));
            assert!(conn.send(&format!("ack {topic} {id}")));
            awaiting.push_back(Some(id));
            continue;
        }
        match awaiting.pop_front() {
            Some(Some(id)) => assert_eq!(line, format!("+OK acked {topic} {id}")),
            Some(None) => {
                stats_pending = false;
                let v: Value = serde_json::from_str(&line[4..]).expect("stats JSON");
                let t = &v["topics"][topic];
                if t["pending"] == 0
                    && t["in_flight"] == 0
                    && t["delayed"] == 0
                    && awaiting.is_empty()
                {
                    return out;
                }
            }
            None => panic!("unexpected line draining {topic}: {line}"),
        }
    }
}

/// A member that records when each delivery arrives.
fn timed_deliveries(conn: &mut RawConn, want: usize, limit: Duration) -> Vec<(Value, u64)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    while got.len() < want {
        assert!(
            Instant::now() < deadline,
            "only {} of {want} deliveries within {limit:?}",
            got.len()
        );
        match conn.line() {
            Ok(Some(line)) => {
                assert!(line.starts_with('{'), "expected a delivery, got {line}");
                got.push((serde_json::from_str(&line).unwrap(), now_ms()));
            }
            Ok(None) => panic!("connection closed"),
            Err(()) => {}
        }
    }
    got
}

#[test]
fn kill9_keeps_delayed_events_delayed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Server::start_on(&data, &[]);
    let sub = "sub mail 100 group=post wait=30000";
    let subscribed = "+OK subscribed mail group=post wait=30000";
    // id -> the earliest time it may be delivered (ms since the epoch).
    let mut due: HashMap<String, u64> = HashMap::new();
    {
        let mut c = server.connect();
        assert_eq!(c.cmd("create mail"), "+OK created mail");
        let mut member = RawConn::connect(server.addr, Duration::from_millis(200));
        expect(&mut member, sub, subscribed);
        // Ten to nack with a delay, ten published delayed.
        for i in 0..10 {
            assert_eq!(
                c.cmd(&format!(r#"pub mail {{"id":"now{i}","msg":{i}}}"#)),
                format!("+OK published mail now{i}")
            );
        }
        for (d, _) in timed_deliveries(&mut member, 10, LINE_TIMEOUT) {
            let id = d["id"].as_str().unwrap().to_string();
            let delay = 1500 + 100 * id[3..].parse::<u64>().unwrap();
            let before = now_ms();
            expect(
                &mut member,
                &format!("nack mail {id} {delay}"),
                &format!("+OK nacked mail {id}"),
            );
            due.insert(id, before + delay);
        }
        for i in 0..10u64 {
            let delay = 1200 + 150 * i;
            let reply = c.cmd(&format!(
                r#"pub mail {{"id":"later{i}","msg":{i},"delay_ms":{delay}}}"#
            ));
            assert_eq!(reply, format!("+OK published mail later{i}"));
            // Replaced by the broker's timestamp + delay after the first
            // restart; a placeholder until then.
            due.insert(format!("later{i}"), 0);
        }
        // Due times are in the log: every one of them delayed now.
        let group = subscription(&mut c, "mail", "post");
        assert_eq!(
            (group["delayed"].as_u64(), group["pending"].as_u64()),
            (Some(20), Some(0))
        );
    }
    server.kill9();
    server.restart(&[]);
    {
        let mut c = server.connect();
        let reply = c.cmd("peek mail 100 group=post");
        let entries: Vec<Value> = serde_json::from_str(&reply[4..]).unwrap();
        assert_eq!(entries.len(), 20, "every delayed event survived: {reply}");
        for e in &entries {
            assert_eq!(e["state"], "delayed", "{e}");
            let id = e["event"]["id"].as_str().unwrap();
            if let Some(delay) = e["event"]["delay_ms"].as_u64() {
                let published = e["event"]["timestamp"].as_u64().unwrap();
                due.insert(id.to_string(), published + delay);
            }
        }
    }
    // A second kill while some are due and some not.
    std::thread::sleep(Duration::from_millis(900));
    server.kill9();
    server.restart(&[]);
    let mut member = RawConn::connect(server.addr, Duration::from_millis(200));
    expect(&mut member, sub, subscribed);
    let got = timed_deliveries(&mut member, 20, Duration::from_secs(15));
    let mut ids = HashSet::new();
    for (d, at) in &got {
        let id = d["id"].as_str().unwrap();
        assert!(ids.insert(id.to_string()), "{id} delivered twice");
        let due = due[id];
        assert!(*at >= due, "{id} delivered {} ms early", due - at);
        assert!(
            d["redelivered"] == true || id.starts_with("later"),
            "a nacked event comes back as a redelivery: {d}"
        );
        assert!(conn_ack(&mut member, id));
    }
    assert_eq!(ids.len(), 20);
    let mut c = server.connect();
    let group = subscription(&mut c, "mail", "post");
    assert_eq!(
        (group["delayed"].as_u64(), group["pending"].as_u64()),
        (Some(0), Some(0))
    );
}

/// Acks `id` on `mail`; false if refused.
fn conn_ack(conn: &mut RawConn, id: &str) -> bool {
    assert!(conn.send(&format!("ack mail {id}")));
    conn.line_within(LINE_TIMEOUT).as_deref() == Some(&*format!("+OK acked mail {id}"))
}

#[test]
fn kill9_does_not_bring_back_expired_events() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Server::start_on(&data, &[]);
    let mut c = server.connect();
    assert_eq!(c.cmd("create t"), "+OK created t");
    // The group holds one in flight; the rest wait queued.
    let mut member = RawConn::connect(server.addr, Duration::from_millis(200));
    expect(&mut member, "sub t 1 group=g", "+OK subscribed t group=g");
    let publish = |c: &mut Client, id: &str, ttl: Option<u64>| {
        let ttl = ttl.map(|t| format!(r#","ttl_ms":{t}"#)).unwrap_or_default();
        assert_eq!(
            c.cmd(&format!(r#"pub t {{"id":"{id}","msg":1{ttl}}}"#)),
            format!("+OK published t {id}")
        );
    };
    // In flight when it expires: returned at recovery, then removed.
    publish(&mut c, "flight", Some(300));
    let d = timed_deliveries(&mut member, 1, LINE_TIMEOUT);
    assert_eq!(d[0].0["id"], "flight");
    // Expire while the broker runs.
    for i in 0..5 {
        publish(&mut c, &format!("gone{i}"), Some(200));
    }
    // Expire while the broker is down.
    for i in 0..5 {
        publish(&mut c, &format!("down{i}"), Some(1000));
    }
    // Never expire.
    for i in 0..5 {
        publish(&mut c, &format!("keep{i}"), None);
    }
    assert!(
        eventually(Duration::from_secs(10), || c.topic_stats("t")["expired"]
            == 5),
        "the short-lived events expire: {}",
        c.topic_stats("t")
    );
    assert_eq!(peek_count(&mut c), 1 + 5 + 5, "flight, down*, keep*");
    // "flight" is still in flight at the kill.
    server.kill9();
    drop(member);
    std::thread::sleep(Duration::from_millis(1100));
    server.restart(&[]);

    let mut c = server.connect();
    let reply = c.cmd("peek t 100 group=g");
    let entries: Vec<Value> = serde_json::from_str(&reply[4..]).unwrap();
    let ids: Vec<&str> = entries
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["keep0", "keep1", "keep2", "keep3", "keep4"],
        "{reply}"
    );
    let mut member = RawConn::connect(server.addr, Duration::from_millis(200));
    expect(&mut member, "sub t 10 group=g", "+OK subscribed t group=g");
    let got = timed_deliveries(&mut member, 5, LINE_TIMEOUT);
    for (d, _) in &got {
        assert!(d["id"].as_str().unwrap().starts_with("keep"), "{d}");
    }
    expect(&mut member, "ping", "+OK pong");
}

fn peek_count(c: &mut Client) -> usize {
    let reply = c.cmd("peek t 100 group=g");
    serde_json::from_str::<Vec<Value>>(&reply[4..])
        .unwrap()
        .len()
}
