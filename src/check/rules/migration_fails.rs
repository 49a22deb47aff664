//! `migration-fails`: a migration fails to apply (from scratch or incrementally). Documentation: `migration_fails.md` beside this file.

use super::Rule;
use crate::check::{Category, Severity};

pub const RULE: Rule = Rule {
    id: "migration-fails",
    category: Category::History,
    default_severity: Severity::Error,
    summary: "a migration fails to apply (from scratch or incrementally)",
    doc: include_str!("migration_fails.md"),
};
