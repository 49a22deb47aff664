//! `non-transactional-statement`: a statement that refuses transaction blocks (e.g. CREATE INDEX CONCURRENTLY) in a file the tool runs as one transaction. Documentation: `non_transactional_statement.md` beside this file.

use super::Rule;
use crate::check::Evidence;
use crate::check::{Category, Severity};

pub const RULE: Rule = Rule {
    id: "non-transactional-statement",
    category: Category::History,
    default_severity: Severity::Error,
    summary: "a statement that refuses transaction blocks (e.g. CREATE INDEX CONCURRENTLY) in a file the tool runs as one transaction",
    doc: include_str!("non_transactional_statement.md"),
    check,
};

use crate::check::{Finding, Source};
use crate::run::Outcome;
use crate::sql::split::excerpt;

/// A finding for each migration that failed with SQLSTATE 25001.
/// Every run's outcomes, in run order.
pub fn check(ev: &Evidence) -> Vec<Finding> {
    ev.per_run(in_run)
}

fn in_run(outcomes: &[Outcome], run_label: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for o in outcomes {
        let Some(f) = &o.failure else { continue };
        if f.sqlstate.as_deref() != Some("25001") {
            continue;
        }
        let mut finding = Finding::new(
            &RULE,
            Source::Proven,
            format!("{run_label}: {} (SQLSTATE 25001): the file runs as one transaction, as `prisma migrate deploy` (≤ 7.3) sends it", f.message),
        )
        .migration(&o.name)
        .file(&o.path)
        .at(f.line, f.column)
        .evidence("applied the way Prisma ≤ 7.3 deploys: the whole migration.sql as one simple-query message (P3018 on deploy)")
        .fix("move this statement into a migration of its own, with no other statement in the file");
        if let Some(stmt) = &f.statement {
            finding = finding.statement(excerpt(stmt, 160));
        }
        out.push(finding);
    }
    out
}
