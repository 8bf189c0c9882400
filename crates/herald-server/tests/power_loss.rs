//! A power cut under a running server (`herald_log::testing::PowerLoss`):
//! whatever storage operation the cut hits (segment creation, a batch
//! write, an inline or threaded fdatasync, a rotation), every event that
//! got `+OK published` is in the log after the reboot.

mod common;

use common::{Client, Server};
use herald_core::{Broker, RecordError, record};
use herald_log::testing::PowerLoss;
use herald_log::{Log, LogConfig};
use herald_server::Config;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

const SEGMENT_BYTES: u64 = 8192;
const EVENTS: usize = 24;

/// Ids of the events a publisher was told are stored, publishing until the
/// server closes the connection or every event is answered.
fn publish(server: &Server) -> BTreeSet<String> {
    let mut setup = Client::connect(server.addr);
    for (command, reply) in [
        ("create t", "+OK created t"),
        ("name keeper", "+OK name keeper"),
        ("sub t", "+OK subscribed t"),
    ] {
        if setup.cmd(command).as_deref() != Some(reply) {
            return BTreeSet::new();
        }
    }
    // The durable subscriber goes away: its queue keeps every event.
    setup.send("quit");
    while setup.line().is_some() {}

    // One event per round trip, so that each is a batch of its own and the
    // cut lands between acknowledgements, not only inside one big batch.
    let mut publisher = Client::connect(server.addr);
    let mut acked = BTreeSet::new();
    for i in 0..EVENTS {
        // Mostly small events, every seventh over the inline-sync limit
        // (4 KiB), so both sync paths run, and rotations (8 KiB segments).
        let msg = "m".repeat(if i % 7 == 3 { 5000 } else { (i * 97) % 600 });
        let Some(reply) = publisher.cmd(&format!(r#"pub t {{"id":"e{i}","msg":"{msg}"}}"#)) else {
            break;
        };
        match reply.strip_prefix("+OK published t ") {
            Some(id) => acked.insert(id.to_owned()),
            // The cut hit a rotation: refused, not stored, not fatal.
            None if reply.starts_with("-ERR unavailable") => continue,
            None => panic!("unexpected reply {reply}"),
        };
    }
    acked
}

/// The events the durable subscriber holds after recovering `dir`.
fn recovered_ids(dir: &Path) -> BTreeSet<String> {
    let mut broker = Broker::new();
    let mut decoder = record::Decoder::new();
    let config = LogConfig {
        dir: dir.to_path_buf(),
        segment_bytes: SEGMENT_BYTES,
    };
    Log::open(config, |payload| {
        broker.replay(decoder.decode(payload)?);
        Ok::<_, RecordError>(())
    })
    .expect("recovery after a power cut");
    broker.finish_replay();
    broker
        .pending_by_subscriber("t")
        .unwrap_or_default()
        .into_iter()
        .flat_map(|(_, events)| events.into_iter().map(|e| e.id().to_owned()))
        .collect()
}

#[test]
fn every_acknowledged_event_survives_a_power_cut() {
    // Operation counts spread over the whole run (a run without a cut takes
    // about 80), with and without unsynced bytes reaching the disk.
    let mut cuts_during_the_run = 0;
    for (cut_at, keep) in [
        (0, 0),
        (4, 0),
        (9, 100),
        (13, 0),
        (17, 5000),
        (24, 0),
        (31, 777),
        (40, 0),
        (52, 3000),
        (66, 0),
        (u64::MAX, 0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let power = PowerLoss::new();
        power.keep_unsynced_bytes(keep).cut_at_op(cut_at);
        let mut config = Config::new(dir.path());
        config.segment_bytes = SEGMENT_BYTES;
        let server = Server::start(config, Arc::new(power.clone()));
        let acked = publish(&server);
        let ops = power.ops();
        power.cut();
        // The power is off: the broker stops at its next write or sync.
        let _ = server.stop();

        let recovered = recovered_ids(dir.path());
        let lost: Vec<_> = acked.difference(&recovered).collect();
        assert!(
            lost.is_empty(),
            "cut at op {cut_at} (keep {keep}): acknowledged yet lost: {lost:?}"
        );
        if ops > cut_at {
            // The cut came before the end: the broker stopped storing.
            assert!(acked.len() < EVENTS, "cut at op {cut_at} of {ops}");
            cuts_during_the_run += 1;
        } else {
            assert_eq!(acked.len(), EVENTS, "without a cut every event is stored");
        }
    }
    assert!(
        cuts_during_the_run >= 8,
        "only {cuts_during_the_run} cuts hit the run"
    );
}
