//! `narrows-column-type`: a column's type changes to one that can lose data or fail on existing values. Documentation: `narrows_column_type.md` beside this file.

use super::Rule;
use super::observed::{at, for_each_statement, is_widening};
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity};

pub const RULE: Rule = Rule {
    id: "narrows-column-type",
    category: Category::Destructive,
    default_severity: Severity::Error,
    summary: "a column's type changes to one that can lose data or fail on existing values",
    doc: include_str!("narrows_column_type.md"),
    check,
};

pub fn check(ev: &Evidence) -> Vec<Finding> {
    let traces = ev.traces;
    for_each_statement(traces, |t, st, out| {
        for (table, column, old, new) in &st.type_changes {
            if is_widening(old, new) {
                continue;
            }
            out.push(at(&RULE, t, st, format!("changes {table}.\"{column}\" from {old} to {new}, which can truncate values or fail on existing rows"))
                .evidence(format!("observed: column type {old} → {new}"))
                .fix("add a new column of the new type, backfill and verify it, switch the application, then drop the old column"));
        }
    })
}
