//! A pool of workers sharing a work queue (`docs/protocol.md` §12): three
//! workers join the group `workers` on `jobs` with an ack deadline and
//! `max_deliveries`. One worker is killed in the middle of a job (its
//! connection drops with the job unacknowledged): the job goes back to the
//! group and another worker completes it. A poison job fails every time
//! (the worker `nack`s it) and, after `max_deliveries` deliveries, ends in
//! the dead topic `jobs.dead`, where a `morgue` group receives it.
//!
//! Start a broker (`herald serve`), then:
//!
//! ```text
//! cargo run -p herald-client --example worker_pool
//! cargo run -p herald-client --example worker_pool -- --addr 127.0.0.1:8000 --jobs 12
//! ```
//!
//! The address comes from `--addr`, else `HERALD_ADDR`, else
//! `127.0.0.1:8000`. It prints what happens and exits 0 once every job is
//! done and the poison job is dead-lettered (1 if that takes more than
//! 30 s). `crates/herald/tests/worker_pool_example.rs` runs it against a
//! broker it starts.

use herald_client::{Client, DeadReason, Delivery, Event, SubscribeOptions, Subscription};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

/// Workers in the pool.
pub const WORKERS: usize = 3;
/// Deliveries a job may have before it is dead-lettered.
pub const MAX_DELIVERIES: u16 = 3;
/// Ack deadline: a worker that hangs gives its job back after this long.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a job takes.
const WORK: Duration = Duration::from_millis(100);
/// Longest the whole run may take.
const RUN_LIMIT: Duration = Duration::from_secs(30);
/// The worker that is killed mid-job.
const DOOMED: usize = 2;

/// What happened.
#[derive(Debug, Default)]
pub struct Report {
    /// Job id -> (worker that completed it, deliveries it took).
    pub completed: BTreeMap<String, (usize, u32)>,
    /// The job the doomed worker was killed on.
    pub killed_on: Option<String>,
    /// The poison job's id.
    pub poison: String,
    /// The dead letter that came back for it: (reason, deliveries).
    pub dead_letter: Option<(DeadReason, u32)>,
}

/// What a worker tells the coordinator.
enum Note {
    Done {
        job: String,
        worker: usize,
        deliveries: u32,
    },
    Killed {
        job: String,
    },
    Dead {
        reason: DeadReason,
        deliveries: u32,
    },
}

/// Runs the pool against the broker at `addr` with `jobs` ordinary jobs
/// and one poison job, printing each step with `say`.
///
/// # Errors
/// A client error, or a run that does not finish within 30 s.
pub async fn run(
    addr: &str,
    jobs: usize,
    say: impl Fn(String) + Send + Sync + Clone + 'static,
) -> Result<Report, Box<dyn std::error::Error + Send + Sync>> {
    let boss = Client::connect(addr).await?;
    boss.create("jobs").await?;
    boss.create("jobs.dead").await?;
    // A group outlives its members: start from empty groups, so that jobs
    // of an earlier run do not mix with these.
    for (topic, group) in [("jobs", "workers"), ("jobs.dead", "morgue")] {
        match boss.delete_group(topic, group).await {
            Ok(()) => say(format!("removed the group '{group}' of an earlier run")),
            Err(e) if e.code() == Some(herald_client::ErrorCode::NotSubscribed) => {}
            Err(e) => return Err(e.into()),
        }
    }

    let (notes, mut inbox) = mpsc::unbounded_channel();
    // A dead letter reaches only the subscriptions its topic has when it
    // is published: the morgue subscribes first.
    let morgue = boss
        .subscribe_with("jobs.dead", SubscribeOptions::new().group("morgue"))
        .await?;
    tokio::spawn(watch_morgue(morgue, notes.clone(), say.clone()));

    let options = SubscribeOptions::new()
        .prefetch(1)
        .group("workers")
        .wait(WAIT)
        .max_deliveries(MAX_DELIVERIES);
    say(format!(
        "{WORKERS} workers join 'workers' on 'jobs': sub jobs{}",
        options.sub_options()
    ));
    let mut workers = Vec::new();
    for n in 1..=WORKERS {
        let client = Client::connect(addr).await?;
        let sub = client.subscribe_with("jobs", options.clone()).await?;
        workers.push(tokio::spawn(worker(
            n,
            client,
            sub,
            notes.clone(),
            say.clone(),
        )));
    }

    // Ids unique per run: an id still pending from an earlier run would be
    // a duplicate.
    let run = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_millis();
    let poison = format!("poison-{run}");
    let mut report = Report {
        poison: poison.clone(),
        ..Report::default()
    };
    let mut publishes = Vec::new();
    for i in 1..=jobs {
        let id = format!("job-{run}-{i}");
        publishes.push(boss.publish("jobs", &Event::new(id, format!("job {i}"))));
        if i == 2 {
            publishes.push(boss.publish("jobs", &Event::new(poison.clone(), "poison")));
        }
    }
    for confirm in publishes {
        confirm.await?;
    }
    say(format!("published {jobs} jobs and {poison}"));

    let finished = async {
        while report.completed.len() < jobs || report.dead_letter.is_none() {
            match inbox.recv().await {
                Some(Note::Done {
                    job,
                    worker,
                    deliveries,
                }) => {
                    report.completed.insert(job, (worker, deliveries));
                }
                Some(Note::Killed { job }) => report.killed_on = Some(job),
                Some(Note::Dead { reason, deliveries }) => {
                    report.dead_letter = Some((reason, deliveries));
                }
                None => break,
            }
        }
    };
    let in_time = tokio::time::timeout(RUN_LIMIT, finished).await.is_ok();
    for w in &workers {
        w.abort();
    }
    if !in_time {
        return Err(format!("not done within {RUN_LIMIT:?}: {report:?}").into());
    }
    Ok(report)
}

/// Works on each job: acks it after the work, nacks the poison job, and,
/// for the doomed worker, dies in the middle of its first ordinary job.
async fn worker(
    n: usize,
    client: Client,
    mut jobs: Subscription,
    notes: mpsc::UnboundedSender<Note>,
    say: impl Fn(String),
) {
    while let Some(job) = jobs.next().await {
        let tries = describe(&job);
        if job.msg == "poison" {
            say(format!("worker {n}: {} fails{tries}: nack", job.id));
            if job.nack().await.is_err() {
                return;
            }
            continue;
        }
        if n == DOOMED {
            say(format!(
                "worker {n}: working on {}{tries}... killed before it acks",
                job.id
            ));
            let _ = notes.send(Note::Killed {
                job: job.id.clone(),
            });
            // Dropping the client, the subscription and the delivery
            // closes the connection: the broker gives the job back to the
            // group at once (without waiting for its deadline).
            drop((job, jobs, client));
            return;
        }
        tokio::time::sleep(WORK).await;
        if job.ack().await.is_err() {
            return;
        }
        say(format!("worker {n}: done {}{tries}", job.id));
        let _ = notes.send(Note::Done {
            job: job.id.clone(),
            worker: n,
            deliveries: job.deliveries(),
        });
    }
}

/// Prints the dead letters and reports them.
async fn watch_morgue(
    mut dead: Subscription,
    notes: mpsc::UnboundedSender<Note>,
    say: impl Fn(String),
) {
    while let Some(letter) = dead.next().await {
        if let Some(info) = letter.dead() {
            say(format!(
                "jobs.dead: {} ({} on '{}' after {} deliveries, reason {})",
                letter.id,
                info.id,
                info.subscription,
                info.deliveries,
                info.reason.as_str()
            ));
            let _ = notes.send(Note::Dead {
                reason: info.reason,
                deliveries: info.deliveries,
            });
        }
        if letter.ack().await.is_err() {
            return;
        }
    }
}

/// ` (delivery 2, redelivered)` for a redelivery, nothing for a first one.
fn describe(job: &Delivery) -> String {
    if job.redelivered() {
        format!(" (delivery {}, redelivered)", job.deliveries())
    } else {
        String::new()
    }
}

fn options() -> Result<(String, usize), String> {
    let mut addr = std::env::var("HERALD_ADDR").unwrap_or_else(|_| "127.0.0.1:8000".into());
    let mut jobs = 9;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--jobs" => {
                jobs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n >= WORKERS)
                    .ok_or("--jobs needs a number, at least 3")?;
            }
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: worker_pool [--addr ADDR] [--jobs N]"
                ));
            }
        }
    }
    Ok((addr, jobs))
}

#[allow(dead_code)] // The test that runs the example calls `run`.
#[tokio::main]
async fn main() {
    let code = match options() {
        Err(e) => {
            eprintln!("worker_pool: {e}");
            2
        }
        Ok((addr, jobs)) => match run(&addr, jobs, |line| println!("{line}")).await {
            Ok(report) => {
                if let Some(job) = &report.killed_on
                    && let Some((worker, deliveries)) = report.completed.get(job)
                {
                    println!(
                        "{job}, whose worker was killed, was completed by worker {worker} (delivery {deliveries})"
                    );
                }
                if let Some((reason, deliveries)) = report.dead_letter {
                    println!(
                        "{} was dead-lettered after {deliveries} deliveries ({})",
                        report.poison,
                        reason.as_str()
                    );
                }
                println!("all {} jobs done", report.completed.len());
                0
            }
            Err(e) => {
                eprintln!("worker_pool: {e}");
                1
            }
        },
    };
    std::process::exit(code);
}
