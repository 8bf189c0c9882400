//! Herald server (being written).
#![forbid(unsafe_code)]
