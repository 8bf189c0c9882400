//! Herald log (being written).
#![forbid(unsafe_code)]
