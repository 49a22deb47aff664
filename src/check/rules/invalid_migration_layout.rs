//! `invalid-migration-layout`: the migrations directory would break the tool's deploy (stray folder, unreadable lock file, invalid UTF-8). Documentation: `invalid_migration_layout.md` beside this file.

use super::Rule;
use crate::check::{Category, Severity};

pub const RULE: Rule = Rule {
    id: "invalid-migration-layout",
    category: Category::History,
    default_severity: Severity::Error,
    summary: "the migrations directory would break the tool's deploy (stray folder, unreadable lock file, invalid UTF-8)",
    doc: include_str!("invalid_migration_layout.md"),
};
