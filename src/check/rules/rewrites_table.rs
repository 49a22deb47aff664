//! `rewrites-table`: a statement rewrites an existing, non-empty table under an ACCESS EXCLUSIVE lock. Documentation: `rewrites_table.md` beside this file.

use super::Rule;
use super::observed::{at, for_each_statement, human};
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity};

pub const RULE: Rule = Rule {
    id: "rewrites-table",
    category: Category::Lock,
    default_severity: Severity::Warning,
    summary: "a statement rewrites an existing, non-empty table under an ACCESS EXCLUSIVE lock",
    doc: include_str!("rewrites_table.md"),
    check,
};

pub fn check(ev: &Evidence) -> Vec<Finding> {
    let traces = ev.traces;
    for_each_statement(traces, |t, st, out| {
        for (table, rows) in &st.rewritten {
            if *rows == 0 {
                continue;
            }
            out.push(at(&RULE, t, st, format!("rewrites {table} (every row copied to a new file) while holding ACCESS EXCLUSIVE: reads and writes wait for the whole rewrite"))
                .evidence(format!("observed: relfilenode of {table} changed; {rows} seeded rows copied in {}", human(st.duration)))
                .fix("avoid the rewrite: add columns without volatile defaults, change types through a new column and a backfill, and set lock_timeout"));
        }
    })
}
