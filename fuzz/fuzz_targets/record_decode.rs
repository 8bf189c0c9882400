//! libFuzzer entry point; the checks are in `fuzz/src/record_decode.rs`, shared with
//! the corpus replay test (`crates/herald/tests/fuzz_corpus.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz::record_decode::run(data));
