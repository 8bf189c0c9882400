//! Runs the worker-pool example (`crates/herald-client/examples/worker_pool.rs`)
//! against a broker it starts, and checks the story it tells: every job is
//! done, the job of the killed worker by another worker on its second
//! delivery, and the poison job is dead-lettered after `max_deliveries`.
//!
//! The example's code is compiled into this test (its `main` is a thin
//! wrapper around `run`), so the test needs no nested `cargo run`.
mod common;

#[path = "../../herald-client/examples/worker_pool.rs"]
mod worker_pool;

use common::Server;
use herald_client::DeadReason;
use std::sync::{Arc, Mutex};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_pool_example_tells_its_story() {
    let server = Server::start();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let said = lines.clone();
    let report = worker_pool::run(&server.addr.to_string(), 9, move |line| {
        said.lock().unwrap().push(line)
    })
    .await
    .unwrap_or_else(|e| panic!("the example failed: {e}"));
    let lines = lines.lock().unwrap().join("\n");

    assert_eq!(report.completed.len(), 9, "{lines}");
    let killed = report.killed_on.as_ref().expect("a worker was killed");
    let (worker, deliveries) = report.completed[killed];
    assert_ne!(worker, 2, "the killed worker cannot complete it:\n{lines}");
    assert_eq!(deliveries, 2, "{lines}");
    assert!(
        !report.completed.contains_key(&report.poison),
        "the poison job never completes:\n{lines}"
    );
    assert_eq!(
        report.dead_letter,
        Some((
            DeadReason::MaxDeliveries,
            worker_pool::MAX_DELIVERIES.into()
        )),
        "{lines}"
    );
    assert!(lines.contains("killed before it acks"), "{lines}");

    // The broker agrees: nothing left in the group, one dead letter.
    let mut c = server.connect();
    let jobs = c.topic_stats("jobs");
    assert_eq!(
        (jobs["pending"].as_u64(), jobs["in_flight"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(jobs["dead_lettered"], 1);
    assert_eq!(c.cmd("peek jobs group=workers"), "+OK []");
}
