//! `drops-schema`: a migration drops a schema that exists in production. Documentation: `drops_schema.md` beside this file.

use super::Rule;
use super::observed::{at, for_each_statement};
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity};

pub const RULE: Rule = Rule {
    id: "drops-schema",
    category: Category::Destructive,
    default_severity: Severity::Error,
    summary: "a migration drops a schema that exists in production",
    doc: include_str!("drops_schema.md"),
    check,
};

pub fn check(ev: &Evidence) -> Vec<Finding> {
    let traces = ev.traces;
    for_each_statement(traces, |t, st, out| {
        for schema in &st.dropped_schemas {
            out.push(at(&RULE, t, st, format!("drops schema {schema}, which exists on the base branch, with everything in it"))
                .evidence(format!("observed: schema {schema} is gone from the catalog after this statement"))
                .fix("move what must survive out of the schema first, and drop it only once nothing uses it"));
        }
    })
}
