//! `dump` and `check`: read a stopped broker's data directory.

use anyhow::{Context, Result, bail};
use herald_core::{Broker, record};
use herald_log::Log;
use serde_json::{Map, Value, json};
use std::fs::File;
use std::path::Path;

/// Refuses a directory a running broker holds: its log is still changing.
fn ensure_stopped(data: &Path) -> Result<()> {
    if !data.is_dir() {
        bail!("no data directory at {}", data.display());
    }
    let lock_path = data.join("LOCK");
    if let Ok(file) = File::open(&lock_path)
        && file.try_lock().is_err()
    {
        bail!(
            "{} is in use by a running broker; stop it first (or read it with `herald stats`)",
            data.display()
        );
    }
    Ok(())
}

fn load(data: &Path) -> Result<Broker> {
    ensure_stopped(data)?;
    let mut broker = Broker::new();
    let mut decoder = record::Decoder::new();
    let report = Log::scan(data, |payload| {
        broker.replay(decoder.decode(payload)?);
        Ok::<_, record::RecordError>(())
    })
    .with_context(|| format!("reading the log in {}", data.display()))?;
    if let Some((path, offset)) = report.torn_tail {
        eprintln!(
            "herald: note: {} ends with an unfinished write at offset {offset} (ignored; the broker truncates it on start)",
            path.display()
        );
    }
    broker.finish_replay();
    Ok(broker)
}

fn topic_view(broker: &Broker, topic: &str) -> Option<Value> {
    let subscribers = broker.pending_by_subscriber(topic)?;
    let mut view = Map::new();
    for (name, events) in subscribers {
        let list: Vec<Value> = events
            .iter()
            .map(|e| {
                // The stored fields are `,"key":value...`: make them an object.
                let mut object = b"{\"_\":0".to_vec();
                object.extend_from_slice(e.fields());
                object.push(b'}');
                let msg = serde_json::from_slice::<Value>(&object)
                    .ok()
                    .and_then(|v| v.get("msg").cloned())
                    .unwrap_or(Value::Null);
                json!({
                    "timestamp": e.timestamp,
                    "priority": e.priority,
                    "msg": msg,
                    "id": e.id(),
                })
            })
            .collect();
        view.insert(name.to_string(), Value::Array(list));
    }
    Some(Value::Object(view))
}

/// `herald dump`.
pub fn dump(data: &Path, topic: Option<&str>) -> Result<()> {
    let broker = load(data)?;
    let out = match topic {
        Some(t) => match topic_view(&broker, t) {
            Some(v) => v,
            None => bail!("no topic '{t}' in {}", data.display()),
        },
        None => {
            let mut all = Map::new();
            for name in broker.topic_names() {
                if let Some(v) = topic_view(&broker, &name) {
                    all.insert(name.to_string(), v);
                }
            }
            Value::Object(all)
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// `herald check`.
pub fn check(data: &Path) -> Result<()> {
    ensure_stopped(data)?;
    // Every payload must decode, not only pass its checksum.
    let report = Log::scan(data, |payload| record::decode(payload).map(|_| ()))
        .with_context(|| format!("checking the log in {}", data.display()))?;
    println!(
        "ok: {} segments, {} records, {} bytes",
        report.segments, report.records, report.bytes
    );
    if let Some((path, offset)) = report.torn_tail {
        println!(
            "note: {} ends with an unfinished write at offset {offset}; the broker truncates it on start",
            path.display()
        );
    }
    Ok(())
}
