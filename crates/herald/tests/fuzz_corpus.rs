//! The short version of fuzzing that fits in every test run: each cargo-fuzz
//! target's checks (the same source files, `fuzz/src/`) over every input of
//! its committed corpus (`fuzz/corpus/<target>/`), on stable Rust. Inputs
//! that once found a bug are added there as `seed-*` files, so a finding
//! stays fixed. Longer runs: `scripts/fuzz.sh [seconds]` (nightly,
//! cargo-fuzz).
use std::path::{Path, PathBuf};

#[path = "../../../fuzz/src/broker.rs"]
mod broker;
#[path = "../../../fuzz/src/event.rs"]
mod event;
#[path = "../../../fuzz/src/line_parser.rs"]
mod line_parser;
#[path = "../../../fuzz/src/log_recovery.rs"]
mod log_recovery;
#[path = "../../../fuzz/src/record_decode.rs"]
mod record_decode;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    files
}

/// Runs `check` on every corpus input, and on every prefix of it: a prefix
/// is a torn write, a cut line or a shorter command sequence, the inputs a
/// fuzzer tries first.
fn replay(target: &str, check: fn(&[u8])) {
    for file in corpus(target) {
        let data = std::fs::read(&file).expect("read corpus input");
        let step = (data.len() / 64).max(1);
        for end in (0..data.len()).step_by(step).chain([data.len()]) {
            let input = &data[..end];
            if let Err(panic) = std::panic::catch_unwind(|| check(input)) {
                panic!(
                    "{target}: {} cut at {end} of {} bytes fails: {panic:?}",
                    file.display(),
                    data.len()
                );
            }
        }
    }
}

#[test]
fn broker_corpus_keeps_its_invariants() {
    replay("broker", broker::run);
}

#[test]
fn event_corpus() {
    replay("event", event::run);
}

#[test]
fn line_parser_corpus() {
    replay("line_parser", line_parser::run);
}

#[test]
fn log_recovery_corpus() {
    replay("log_recovery", log_recovery::run);
}

#[test]
fn record_decode_corpus() {
    replay("record_decode", record_decode::run);
}
