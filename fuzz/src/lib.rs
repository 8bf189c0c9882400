//! The fuzz targets' checks, one module per target. The libFuzzer binaries in
//! `fuzz_targets/` call them; `crates/herald/tests/fuzz_corpus.rs` includes
//! the same files to replay the committed corpus on stable Rust in every
//! test run (the short version of fuzzing that fits in CI).
pub mod broker;
pub mod event;
pub mod line_parser;
pub mod log_recovery;
pub mod record_decode;
