//! Herald client (being written).
#![forbid(unsafe_code)]
