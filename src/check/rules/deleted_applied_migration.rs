//! `deleted-applied-migration`: a migration present on base is gone (or renamed) on head.
//! Documentation: `deleted_applied_migration.md` beside this file.

use super::Rule;
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity, Source};
use crate::discover::MigrationSet;
use crate::live::LiveProblem;
use crate::plan::{Classification, Plan};

pub const RULE: Rule = Rule {
    id: "deleted-applied-migration",
    category: Category::History,
    default_severity: Severity::Error,
    summary: "a migration already on the base branch was deleted or renamed",
    doc: include_str!("deleted_applied_migration.md"),
    check,
};

pub fn check(ev: &Evidence) -> Vec<Finding> {
    ev.live_then_base(in_production, against_base)
}

/// A migration production recorded as applied, with no directory here.
fn in_production(p: &LiveProblem) -> Option<Finding> {
    let LiveProblem::Unknown { name, table } = p else {
        return None;
    };
    Some(
        Finding::new(
            &RULE,
            Source::Drift,
            format!("`{name}` is recorded as applied in production but has no directory here"),
        )
        .migration(name)
        .evidence(format!("production's {table} has a finished row for it"))
        .fix("restore the migration directory from the commit that deployed it"),
    )
}

fn against_base(plan: &Plan, base: &MigrationSet, head: &MigrationSet) -> Vec<Finding> {
    let mut out = Vec::new();
    for &bi in &plan.deleted {
        let b = &base.migrations[bi];
        out.push(
            Finding::new(
                &RULE,
                Source::History,
                format!("`{}` is on the base branch but gone from this one: databases that applied it keep its changes, fresh ones will not have them", b.name),
            )
            .migration(&b.name)
            .file(&b.path)
            .evidence(format!("present at base as {}", b.path))
            .fix("restore the migration; undo its effect with a new migration instead"),
        );
    }
    for e in &plan.head {
        if let Classification::Renamed { from } = &e.class {
            let h = &head.migrations[e.index];
            out.push(
                Finding::new(
                    &RULE,
                    Source::History,
                    format!("`{from}` was renamed to `{}`: `prisma migrate deploy` finds no history row for the new name and applies it again", h.name),
                )
                .migration(&h.name)
                .file(&h.path)
                .evidence(format!("same script as base's {from}"))
                .fix("keep the original directory name"),
            );
        }
    }
    out
}
