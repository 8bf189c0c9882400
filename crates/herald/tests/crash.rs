//! Crash under load (`docs/protocol.md` section 10): a pipelined publisher and an
//! acking durable subscriber run while the broker is `kill -9`ed at a random
//! moment, several rounds on the same data directory. Afterwards nothing that
//! got `+OK published` is lost and nothing whose `+OK acked` was received
//! comes back.
mod common;

use common::*;
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SUB_PREFETCH: u16 = 50;

#[derive(Default, Debug)]
struct PublisherResult {
    /// Ids answered `+OK published`.
    ok: Vec<u64>,
    /// Ids sent with no reply before the connection died.
    unanswered: Vec<u64>,
    /// Replies that were neither.
    unexpected: Vec<String>,
}

#[derive(Default, Debug)]
struct SubscriberResult {
    /// (id, redelivered) in arrival order.
    delivered: Vec<(u64, bool)>,
    /// Ids whose `+OK acked` arrived.
    acked: Vec<u64>,
    /// Ids whose ack was sent with no reply before the connection died.
    ack_unanswered: Vec<u64>,
    /// Protocol violations seen on this connection.
    violations: Vec<String>,
}

fn parse_id(d: &Value) -> u64 {
    d["id"]
        .as_str()
        .and_then(|s| s.strip_prefix('n'))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unexpected delivery {d}"))
}

/// Publishes `n<id>` events with ids from `next_id` until the server dies.
fn publisher(
    addr: std::net::SocketAddr,
    next_id: Arc<AtomicU64>,
    seed: u64,
    window: usize,
    killed: Arc<AtomicBool>,
) -> PublisherResult {
    let conn = RawConn::connect(addr, Duration::from_millis(500));
    let RawConn {
        mut reader,
        mut writer,
    } = conn;
    let sent: Arc<Mutex<VecDeque<u64>>> = Arc::default();
    let (token_tx, token_rx) = sync_channel::<()>(window);
    for _ in 0..window {
        token_tx.send(()).unwrap();
    }
    let reader_done = Arc::new(AtomicBool::new(false));
    let reader_thread = {
        let sent = sent.clone();
        let killed = killed.clone();
        let reader_done = reader_done.clone();
        std::thread::spawn(move || {
            let mut res = PublisherResult::default();
            loop {
                match read_line(&mut reader) {
                    Ok(Some(line)) => {
                        let front = sent.lock().unwrap().pop_front();
                        match (line.strip_prefix("+OK published t n"), front) {
                            (Some(id), Some(f)) if id.parse::<u64>().ok() == Some(f) => {
                                res.ok.push(f)
                            }
                            _ => res
                                .unexpected
                                .push(format!("{line} (expected id {front:?})")),
                        }
                        let _ = token_tx.try_send(());
                    }
                    Ok(None) => break,
                    Err(()) => {
                        if killed.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                }
            }
            reader_done.store(true, Ordering::SeqCst);
            res
        })
    };
    let mut rng = Rng::new(seed);
    let pad = "x".repeat(40);
    loop {
        match token_rx.recv_timeout(Duration::from_millis(200)) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => {
                if reader_done.load(Ordering::SeqCst) || killed.load(Ordering::SeqCst) {
                    break;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if reader_done.load(Ordering::SeqCst) {
            break;
        }
        let id = next_id.fetch_add(1, Ordering::SeqCst);
        let priority = (rng.next_u64() % 4) as u8;
        let line = format!(
            "{}\n",
            pub_line(
                "t",
                &format!("n{id}"),
                priority,
                &format!("event {id} {pad}")
            )
        );
        sent.lock().unwrap().push_back(id);
        if std::io::Write::write_all(&mut writer, line.as_bytes()).is_err() {
            break;
        }
    }
    let mut res = reader_thread.join().expect("publisher reader");
    res.unanswered = sent.lock().unwrap().drain(..).collect();
    res
}

/// `name c`, `sub t 50`, then receive and ack until the server dies.
fn subscriber(
    addr: std::net::SocketAddr,
    first_round: bool,
    ready: std::sync::mpsc::Sender<()>,
    killed: Arc<AtomicBool>,
) -> SubscriberResult {
    let mut res = SubscriberResult::default();
    let mut conn = RawConn::connect(addr, Duration::from_millis(500));
    let expect = |conn: &mut RawConn, cmd: &str, reply: &str| {
        assert!(conn.send(cmd));
        let got = conn.line_within(LINE_TIMEOUT);
        assert_eq!(got.as_deref(), Some(reply), "reply to {cmd}");
    };
    if first_round {
        expect(&mut conn, "create t", "+OK created t");
    }
    expect(&mut conn, "name c", "+OK name c");
    // The publisher starts only once the subscription exists (in round 0,
    // events published before it would be accepted and dropped, as in the
    // seed). The reply comes before any delivery of the subscription.
    expect(
        &mut conn,
        &format!("sub t {SUB_PREFETCH}"),
        "+OK subscribed t",
    );
    ready.send(()).unwrap();
    let mut seen = HashSet::new();
    let mut awaiting: VecDeque<u64> = VecDeque::new();
    loop {
        let line = match conn.line() {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(()) => {
                if killed.load(Ordering::SeqCst) {
                    break;
                }
                continue;
            }
        };
        if line.starts_with('{') {
            let d: Value = serde_json::from_str(&line).expect("delivery JSON");
            let id = parse_id(&d);
            let redelivered = d.get("redelivered") == Some(&Value::Bool(true));
            if !seen.insert(id) {
                res.violations
                    .push(format!("n{id} delivered twice on one connection"));
            }
            res.delivered.push((id, redelivered));
            if !conn.send(&format!("ack t n{id}")) {
                break;
            }
            awaiting.push_back(id);
            continue;
        }
        match awaiting.pop_front() {
            Some(id) => {
                if line == format!("+OK acked t n{id}") {
                    res.acked.push(id);
                } else {
                    res.violations.push(format!("ack n{id} answered {line}"));
                }
            }
            None => res.violations.push(format!("unexpected line {line}")),
        }
    }
    res.ack_unanswered = awaiting.into_iter().collect();
    res
}

/// Everything observed over all rounds.
#[derive(Default)]
struct Ledger {
    published_ok: HashSet<u64>,
    publish_unanswered: HashSet<u64>,
    /// id -> round whose connection received its `+OK acked`.
    acked_ok: HashMap<u64, usize>,
    ack_unanswered: HashSet<u64>,
    /// Ids some subscriber connection received (any round).
    delivered_ever: HashSet<u64>,
    violations: Vec<String>,
    /// Ids seen delivered before a kill that came back without
    /// `"redelivered":true` (informational: `docs/protocol.md` section 8 promises the flag only
    /// "as far as the log recorded the delivery").
    missing_redelivered_flag: Vec<u64>,
    redeliveries: usize,
}

impl Ledger {
    /// Checks a connection's deliveries against what earlier connections saw.
    fn check_deliveries(&mut self, round: &str, delivered: &[(u64, bool)]) {
        for &(id, redelivered) in delivered {
            if let Some(r) = self.acked_ok.get(&id) {
                self.violations.push(format!(
                    "{round}: n{id} delivered again although its `+OK acked` was received in round {r}"
                ));
            }
            if !self.published_ok.contains(&id) && !self.publish_unanswered.contains(&id) {
                self.violations
                    .push(format!("{round}: n{id} delivered but never published"));
            }
            if self.delivered_ever.contains(&id) {
                self.redeliveries += 1;
                if !redelivered {
                    self.missing_redelivered_flag.push(id);
                }
            }
        }
        for &(id, _) in delivered {
            self.delivered_ever.insert(id);
        }
    }
}

/// `rounds` kills under load with `--fsync <fsync>` plus `flags`; the
/// publisher keeps up to `window` publishes unanswered.
fn crash_rounds(fsync: &str, flags: &[&str], rounds: usize, window: usize) {
    let mut extra = vec!["--fsync", fsync];
    extra.extend_from_slice(flags);
    let extra = &extra[..];
    let mut rng = Rng::from_env_or_time();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let next_id = Arc::new(AtomicU64::new(1));
    let mut ledger = Ledger::default();
    let mut server: Option<Server> = None;
    let (mut compactions, mut torn_tails) = (0, 0);

    for round in 0..rounds {
        let mut s = match server.take() {
            None => Server::start_on(&data, extra),
            Some(mut s) => {
                s.restart(extra);
                s
            }
        };
        let killed = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let sub = {
            let (addr, killed) = (s.addr, killed.clone());
            std::thread::spawn(move || subscriber(addr, round == 0, ready_tx, killed))
        };
        ready_rx
            .recv_timeout(LINE_TIMEOUT)
            .expect("subscriber ready");
        let publ = {
            let (addr, killed, next_id) = (s.addr, killed.clone(), next_id.clone());
            let seed = rng.next_u64();
            std::thread::spawn(move || publisher(addr, next_id, seed, window, killed))
        };
        let wait = rng.range(200, 800);
        std::thread::sleep(Duration::from_millis(wait));
        s.kill9();
        killed.store(true, Ordering::SeqCst);
        let logs = s.logs();
        compactions += logs.matches("log compacted").count();
        torn_tails += logs.matches("torn tail").count();
        let p = publ.join().expect("publisher thread");
        let c = sub.join().expect("subscriber thread");
        eprintln!(
            "round {round}: kill after {wait} ms: {} published ({} unanswered), {} delivered ({} redelivered flag), {} acked ({} unanswered)",
            p.ok.len(),
            p.unanswered.len(),
            c.delivered.len(),
            c.delivered.iter().filter(|d| d.1).count(),
            c.acked.len(),
            c.ack_unanswered.len()
        );
        assert!(
            p.unexpected.is_empty(),
            "round {round}: unexpected publisher replies: {:?}",
            &p.unexpected[..p.unexpected.len().min(5)]
        );
        ledger.published_ok.extend(&p.ok);
        ledger.publish_unanswered.extend(&p.unanswered);
        ledger.check_deliveries(&format!("round {round}"), &c.delivered);
        ledger
            .violations
            .extend(c.violations.iter().map(|v| format!("round {round}: {v}")));
        for id in c.acked {
            ledger.acked_ok.insert(id, round);
        }
        ledger.ack_unanswered.extend(&c.ack_unanswered);
        server = Some(s);
    }

    // Final drain.
    let mut s = server.take().unwrap();
    s.restart(extra);
    let drained = drain(&s);
    torn_tails += s.logs().matches("torn tail").count();
    ledger.check_deliveries("final drain", &drained.delivered);
    ledger.violations.extend(drained.violations.iter().cloned());
    assert_eq!(s.stop(), Some(0), "SIGTERM after the drain");

    let drained_ids: HashSet<u64> = drained.delivered.iter().map(|d| d.0).collect();
    let mut lost: Vec<u64> = ledger
        .published_ok
        .iter()
        .copied()
        .filter(|id| {
            !ledger.acked_ok.contains_key(id)
                && !ledger.ack_unanswered.contains(id)
                && !drained_ids.contains(id)
        })
        .collect();
    lost.sort_unstable();
    eprintln!(
        "crash test ({extra:?}, {rounds} rounds): {compactions} compactions, {torn_tails} torn tails truncated, {} published ok, {} unanswered publishes, {} acked ok, {} unanswered acks, {} drained at the end, {} redeliveries across connections, {} of them without the redelivered flag",
        ledger.published_ok.len(),
        ledger.publish_unanswered.len(),
        ledger.acked_ok.len(),
        ledger.ack_unanswered.len(),
        drained_ids.len(),
        ledger.redeliveries,
        ledger.missing_redelivered_flag.len()
    );
    assert!(
        ledger.published_ok.len() > 1000,
        "too little traffic to mean anything"
    );
    assert!(
        lost.is_empty(),
        "{} events that got `+OK published` were lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(
        ledger.violations.is_empty(),
        "{} violations, e.g.:\n{}",
        ledger.violations.len(),
        ledger.violations[..ledger.violations.len().min(10)].join("\n")
    );
    assert!(
        ledger.missing_redelivered_flag.is_empty(),
        "{} events seen delivered before a kill came back without \"redelivered\":true, e.g. {:?}",
        ledger.missing_redelivered_flag.len(),
        &ledger.missing_redelivered_flag[..ledger.missing_redelivered_flag.len().min(10)]
    );

    let data = data.to_str().unwrap();
    let check = run_herald(&["check", "--data", data], Duration::from_secs(60));
    assert_eq!(
        check.code,
        Some(0),
        "herald check after the rounds: {check:?}"
    );
}

struct Drained {
    delivered: Vec<(u64, bool)>,
    violations: Vec<String>,
}

/// `name c` + `sub t 1000`, ack everything until `stats t` shows nothing
/// pending or in flight.
fn drain(server: &Server) -> Drained {
    let mut conn = RawConn::connect(server.addr, Duration::from_millis(700));
    let mut out = Drained {
        delivered: Vec::new(),
        violations: Vec::new(),
    };
    assert!(conn.send("name c"));
    assert_eq!(
        conn.line_within(LINE_TIMEOUT).as_deref(),
        Some("+OK name c")
    );
    assert!(conn.send("sub t 1000"));
    let mut seen = HashSet::new();
    // What each awaited reply answers: Some(id) for an ack, None for stats/sub.
    let mut awaiting: VecDeque<Option<u64>> = VecDeque::from([None]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stats_pending = false;
    loop {
        assert!(Instant::now() < deadline, "final drain did not finish");
        let line = match conn.line() {
            Ok(Some(line)) => line,
            Ok(None) => panic!("server closed the drain connection"),
            Err(()) => {
                if !stats_pending {
                    assert!(conn.send("stats t"));
                    awaiting.push_back(None);
                    stats_pending = true;
                }
                continue;
            }
        };
        if line.starts_with('{') {
            let d: Value = serde_json::from_str(&line).expect("delivery JSON");
            let id = parse_id(&d);
            if !seen.insert(id) {
                out.violations
                    .push(format!("final drain: n{id} delivered twice"));
            }
            out.delivered
                .push((id, d.get("redelivered") == Some(&Value::Bool(true))));
            assert!(conn.send(&format!("ack t n{id}")));
            awaiting.push_back(Some(id));
            continue;
        }
        match awaiting.pop_front() {
            Some(Some(id)) => {
                if line != format!("+OK acked t n{id}") {
                    out.violations
                        .push(format!("final drain: ack n{id} answered {line}"));
                }
            }
            Some(None) if line.starts_with("+OK {") => {
                stats_pending = false;
                let v: Value = serde_json::from_str(&line[4..]).expect("stats JSON");
                let t = &v["topics"]["t"];
                if t["pending"] == 0 && t["in_flight"] == 0 && awaiting.is_empty() {
                    return out;
                }
            }
            Some(None) => assert_eq!(line, "+OK subscribed t"),
            None => panic!("unexpected line in the drain: {line}"),
        }
    }
}

#[test]
fn kill9_under_load_loses_nothing_fsync_always() {
    crash_rounds("always", &[], 5, 200);
}

#[test]
fn kill9_under_load_loses_nothing_fsync_interval() {
    crash_rounds("interval", &[], 3, 200);
}

/// Small segments and a publisher the subscriber can keep up with: kills
/// land during segment rotation and background compaction.
#[test]
fn kill9_during_rotation_and_compaction_loses_nothing() {
    crash_rounds("always", &["--segment-bytes", "262144"], 5, 8);
}
