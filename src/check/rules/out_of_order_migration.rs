//! `out-of-order-migration`: a new migration sorts before one already on base. Documentation:
//! `out_of_order_migration.md` beside this file.

use super::Rule;
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity, Source};

use crate::plan::Classification;

pub const RULE: Rule = Rule {
    id: "out-of-order-migration",
    category: Category::History,
    default_severity: Severity::Error,
    summary: "a new migration sorts before one already applied on the base branch",
    doc: include_str!("out_of_order_migration.md"),
    check,
};

pub fn check(ev: &Evidence) -> Vec<Finding> {
    let Some(plan) = ev.plan else {
        return Vec::new();
    };
    let head = ev.head;
    let mut out = Vec::new();
    for e in &plan.head {
        if let Classification::New {
            out_of_order_before: Some(last),
        } = &e.class
        {
            let h = &head.migrations[e.index];
            out.push(
                Finding::new(
                    &RULE,
                    Source::History,
                    format!(
                        "`{}` sorts before `{last}`, already on the base branch: production (`prisma migrate deploy`) applies it after `{last}`, a fresh database before it",
                        h.name
                    ),
                )
                .migration(&h.name)
                .file(&h.path)
                .evidence("the incremental and from-scratch runs apply it at different positions; the drift check compares the results")
                .fix(format!("rename the directory so it sorts after `{last}` (a newer timestamp), e.g. by regenerating it with `prisma migrate dev`")),
            );
        }
    }
    out
}
