//! `non-transactional-statement`: a statement that refuses transaction blocks (e.g. CREATE INDEX CONCURRENTLY) in a file the tool runs as one transaction. Documentation: `non_transactional_statement.md` beside this file.

use super::Rule;
use crate::check::{Category, Severity};

pub const RULE: Rule = Rule {
    id: "non-transactional-statement",
    category: Category::History,
    default_severity: Severity::Error,
    summary: "a statement that refuses transaction blocks (e.g. CREATE INDEX CONCURRENTLY) in a file the tool runs as one transaction",
    doc: include_str!("non_transactional_statement.md"),
};
