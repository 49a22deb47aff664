//! `deletes-rows`: DELETE, TRUNCATE or UPDATE removed or changed rows of an existing table (seeded run). Documentation: `deletes_rows.md` beside this file.

use super::Rule;
use super::observed::{at, for_each_statement};
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity};

pub const RULE: Rule = Rule {
    id: "deletes-rows",
    category: Category::Destructive,
    default_severity: Severity::Error,
    summary: "DELETE, TRUNCATE or UPDATE removed or changed rows of an existing table (seeded run)",
    doc: include_str!("deletes_rows.md"),
    check,
};

pub fn check(ev: &Evidence) -> Vec<Finding> {
    let traces = ev.traces;
    for_each_statement(traces, |t, st, out| {
        for rc in &st.row_changes {
            let what = if let Some(from) = rc.truncated_from {
                format!(
                    "removed rows of {} ({from} rows before, {} removed)",
                    rc.table,
                    rc.deleted.max(1)
                )
            } else if rc.deleted > 0 {
                format!("deleted {} row(s) of {}", rc.deleted, rc.table)
            } else if rc.updated > 0 && rc.changed_existing_columns {
                format!(
                    "changed existing values in {} row(s) of {}",
                    rc.updated, rc.table
                )
            } else {
                continue;
            };
            out.push(at(&RULE, t, st, what)
                .evidence(format!("observed on seeded rows: {} updated, {} deleted", rc.updated, rc.deleted))
                .fix("make the data change explicit and reviewable: restrict it with WHERE, keep a backup of the affected rows, or allow it with a reason"));
        }
    })
}
