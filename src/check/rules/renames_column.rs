//! `renames-column`: a column that exists in production is renamed: the running application breaks during the deploy. Documentation: `renames_column.md` beside this file.

use super::Rule;
use super::observed::{at, for_each_statement};
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity};

pub const RULE: Rule = Rule {
    id: "renames-column",
    category: Category::Breaking,
    default_severity: Severity::Error,
    summary: "a column that exists in production is renamed: the running application breaks during the deploy",
    doc: include_str!("renames_column.md"),
    check,
};

pub fn check(ev: &Evidence) -> Vec<Finding> {
    let traces = ev.traces;
    for_each_statement(traces, |t, st, out| {
        for (table, old, new) in &st.renamed_columns {
            out.push(at(&RULE, t, st, format!("renames column {table}.\"{old}\" to \"{new}\": the application version still running selects \"{old}\""))
                .evidence(format!("observed: attribute keeps its number, its name changes from {old} to {new}"))
                .fix("keep the column name and rename the field in Prisma with @map(\"old\"), or add the new column, dual-write, backfill, switch, drop"));
        }
    })
}
