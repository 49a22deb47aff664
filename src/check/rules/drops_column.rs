//! `drops-column`: a migration drops a column that exists in production (observed in the catalog). Documentation: `drops_column.md` beside this file.

use super::Rule;
use super::observed::{at, for_each_statement};
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity};

pub const RULE: Rule = Rule {
    id: "drops-column",
    category: Category::Destructive,
    default_severity: Severity::Error,
    summary: "a migration drops a column that exists in production (observed in the catalog)",
    doc: include_str!("drops_column.md"),
    check,
};

pub fn check(ev: &Evidence) -> Vec<Finding> {
    let traces = ev.traces;
    for_each_statement(traces, |t, st, out| {
        for (table, column, ty) in &st.dropped_columns {
            out.push(at(&RULE, t, st, format!("drops column {table}.\"{column}\" ({ty}), which exists on the base branch"))
                .evidence(format!("observed: column \"{column}\" is gone from {table} after this statement"))
                .fix("stop using the column in a release first (Prisma: remove it from the schema and deploy), then drop it in a later migration"));
        }
    })
}
