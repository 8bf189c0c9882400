//! libFuzzer entry point; the checks are in `fuzz/src/line_parser.rs`, shared with
//! the corpus replay test (`crates/herald/tests/fuzz_corpus.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz::line_parser::run(data));
