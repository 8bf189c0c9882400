//! The Herald broker state machine, with no IO.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod change;
pub mod event;

pub use change::{Change, Holder};
pub use event::{Event, Seq};
