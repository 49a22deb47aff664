//! `drops-table`: a migration drops a table that exists in production (observed in the catalog). Documentation: `drops_table.md` beside this file.

use super::Rule;
use super::observed::{at, for_each_statement};
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity};

pub const RULE: Rule = Rule {
    id: "drops-table",
    category: Category::Destructive,
    default_severity: Severity::Error,
    summary: "a migration drops a table that exists in production (observed in the catalog)",
    doc: include_str!("drops_table.md"),
    check,
};

pub fn check(ev: &Evidence) -> Vec<Finding> {
    let traces = ev.traces;
    for_each_statement(traces, |t, st, out| {
        for table in &st.dropped_tables {
            out.push(at(&RULE, t, st, format!("drops table {table}, which exists on the base branch, with all its rows"))
                .evidence(format!("observed: {table} is gone from the catalog after this statement"))
                .fix("first ship a release that no longer uses the table, then drop it in a later deploy (and keep a backup)"));
        }
    })
}
