//! Which base tables a seeded run fills and observes. Shared by the focus (which draws it from the
//! migrations' text) and the trace (which observes within it), so neither imports the other for it.

use std::collections::BTreeSet;

/// The base tables a seeded run fills.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every table (when the focus was not enough).
    #[default]
    All,
    /// Only these table OIDs.
    Only(BTreeSet<i64>),
}

impl Scope {
    pub fn contains(&self, oid: i64) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(set) => set.contains(&oid),
        }
    }
}
