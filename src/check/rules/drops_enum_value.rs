//! `drops-enum-value`: a migration removes a value from an enum that exists in production. Documentation: `drops_enum_value.md` beside this file.

use super::Rule;
use super::observed::{at, for_each_statement};
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity};

pub const RULE: Rule = Rule {
    id: "drops-enum-value",
    category: Category::Destructive,
    default_severity: Severity::Error,
    summary: "a migration removes a value from an enum that exists in production",
    doc: include_str!("drops_enum_value.md"),
    check,
};

pub fn check(ev: &Evidence) -> Vec<Finding> {
    let traces = ev.traces;
    for_each_statement(traces, |t, st, out| {
        for (ty, labels) in &st.dropped_enum_values {
            out.push(at(&RULE, t, st, format!("removes value(s) {} from enum {ty}", labels.iter().map(|l| format!("'{l}'")).collect::<Vec<_>>().join(", ")))
                .evidence(format!("observed: {ty} no longer has {} after this statement", labels.join(", ")))
                .fix("migrate rows off the value and stop writing it in a release first; rows still holding it make the type change fail"));
        }
    })
}
