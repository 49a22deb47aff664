//! `renames-table`: a table that exists in production is renamed: the running application breaks during the deploy. Documentation: `renames_table.md` beside this file.

use super::Rule;
use super::observed::{at, for_each_statement};
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity};

pub const RULE: Rule = Rule {
    id: "renames-table",
    category: Category::Breaking,
    default_severity: Severity::Error,
    summary: "a table that exists in production is renamed: the running application breaks during the deploy",
    doc: include_str!("renames_table.md"),
    check,
};

pub fn check(ev: &Evidence) -> Vec<Finding> {
    let traces = ev.traces;
    for_each_statement(traces, |t, st, out| {
        for (old, new) in &st.renamed_tables {
            out.push(at(&RULE, t, st, format!("renames table {old} to {new}: the application version still running queries {old}"))
                .evidence(format!("observed: the relation keeps its OID, its name changes from {old} to {new}"))
                .fix("create the new table (or a view with the new name), write to both, switch reads, then drop the old one"));
        }
    })
}
