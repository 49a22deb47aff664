//! The rule registry: one file per rule, its documentation in a Markdown file beside it.
//!
//! Rule ids are stable (kebab-case) and never renamed. Each doc has the headings
//! `What it detects`, `Why it matters`, `How to do it safely`, `Example` (a test checks them).

pub mod blocks_reads_writes;
pub mod blocks_writes;
pub mod deleted_applied_migration;
pub mod deletes_rows;
pub mod drops_column;
pub mod drops_enum_value;
pub mod drops_schema;
pub mod drops_table;
pub mod edited_applied_migration;
pub mod fails_on_existing_rows;
mod held;
pub mod history_drift;
pub mod invalid_allow_directive;
pub mod invalid_migration_layout;
pub mod live_drift;
pub mod live_failed_migration;
pub mod migration_fails;
pub mod missing_lock_timeout;
pub mod narrows_column_type;
pub mod non_transactional_statement;
mod observed;
pub mod out_of_order_migration;
pub mod renames_column;
pub mod renames_table;
pub mod rewrites_table;
pub mod unterminated_transaction;

use super::{Category, Evidence, Finding, Severity};

/// A rule's metadata, documentation and check: everything the registry needs to run, list and
/// explain it.
#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub category: Category,
    pub default_severity: Severity,
    /// One line for `ci-gate rules`.
    pub summary: &'static str,
    /// Markdown documentation for `ci-gate explain`.
    pub doc: &'static str,
    /// What the rule finds in what the stages saw. Pure: no I/O, no formatting for a renderer.
    pub check: fn(&Evidence) -> Vec<Finding>,
}

pub use blocks_reads_writes::RULE as BLOCKS_READS_WRITES;
pub use blocks_writes::RULE as BLOCKS_WRITES;
pub use deleted_applied_migration::RULE as DELETED_APPLIED_MIGRATION;
pub use deletes_rows::RULE as DELETES_ROWS;
pub use drops_column::RULE as DROPS_COLUMN;
pub use drops_enum_value::RULE as DROPS_ENUM_VALUE;
pub use drops_schema::RULE as DROPS_SCHEMA;
pub use drops_table::RULE as DROPS_TABLE;
pub use edited_applied_migration::RULE as EDITED_APPLIED_MIGRATION;
pub use fails_on_existing_rows::RULE as FAILS_ON_EXISTING_ROWS;
pub use history_drift::RULE as HISTORY_DRIFT;
pub use invalid_allow_directive::RULE as INVALID_ALLOW_DIRECTIVE;
pub use invalid_migration_layout::RULE as INVALID_MIGRATION_LAYOUT;
pub use live_drift::RULE as LIVE_DRIFT;
pub use live_failed_migration::RULE as LIVE_FAILED_MIGRATION;
pub use migration_fails::RULE as MIGRATION_FAILS;
pub use missing_lock_timeout::RULE as MISSING_LOCK_TIMEOUT;
pub use narrows_column_type::RULE as NARROWS_COLUMN_TYPE;
pub use non_transactional_statement::RULE as NON_TRANSACTIONAL_STATEMENT;
pub use out_of_order_migration::RULE as OUT_OF_ORDER_MIGRATION;
pub use renames_column::RULE as RENAMES_COLUMN;
pub use renames_table::RULE as RENAMES_TABLE;
pub use rewrites_table::RULE as REWRITES_TABLE;
pub use unterminated_transaction::RULE as UNTERMINATED_TRANSACTION;

/// Every rule, in the order `ci-gate rules` lists them.
pub static ALL_RULES: &[&Rule] = &[
    &MIGRATION_FAILS,
    &UNTERMINATED_TRANSACTION,
    &EDITED_APPLIED_MIGRATION,
    &DELETED_APPLIED_MIGRATION,
    &OUT_OF_ORDER_MIGRATION,
    &HISTORY_DRIFT,
    &LIVE_DRIFT,
    &LIVE_FAILED_MIGRATION,
    &NON_TRANSACTIONAL_STATEMENT,
    &FAILS_ON_EXISTING_ROWS,
    &DROPS_TABLE,
    &DROPS_COLUMN,
    &DROPS_SCHEMA,
    &DROPS_ENUM_VALUE,
    &NARROWS_COLUMN_TYPE,
    &DELETES_ROWS,
    &RENAMES_TABLE,
    &RENAMES_COLUMN,
    &REWRITES_TABLE,
    &BLOCKS_READS_WRITES,
    &BLOCKS_WRITES,
    &MISSING_LOCK_TIMEOUT,
    &INVALID_MIGRATION_LAYOUT,
    &INVALID_ALLOW_DIRECTIVE,
];

/// Every rule's findings over `ev`, in registry order.
pub fn run_all(ev: &Evidence) -> Vec<Finding> {
    ALL_RULES.iter().flat_map(|r| (r.check)(ev)).collect()
}

/// Look a rule up by id.
pub fn find_rule(id: &str) -> Option<&'static Rule> {
    ALL_RULES.iter().copied().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_doc_has_the_required_headings() {
        for rule in ALL_RULES {
            for heading in [
                "## What it detects",
                "## Why it matters",
                "## How to do it safely",
                "## Example",
            ] {
                assert!(
                    rule.doc.contains(heading),
                    "{} doc lacks {heading}",
                    rule.id
                );
            }
            assert!(
                rule.doc.starts_with(&format!("# {}", rule.id)),
                "{} doc must start with its id",
                rule.id
            );
        }
    }

    #[test]
    fn rule_ids_are_unique_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for rule in ALL_RULES {
            assert!(seen.insert(rule.id), "duplicate {}", rule.id);
            assert!(
                rule.id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{}",
                rule.id
            );
        }
    }
}
