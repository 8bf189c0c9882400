//! Connection ids, as the server numbers them.

use std::fmt;

/// A client connection, as numbered by the server. Anonymous subscriptions
/// are named after it (`~<n>`, `docs/protocol.md` 12.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
