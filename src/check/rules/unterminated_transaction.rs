//! `unterminated-transaction`: a migration opens a transaction (`BEGIN`) and never commits it, so
//! it and every later migration of the same deploy are rolled back when the tool's session
//! closes. Documentation: `unterminated_transaction.md` beside this file.

use super::Rule;
use crate::check::Evidence;
use crate::check::{Category, Severity};

pub const RULE: Rule = Rule {
    id: "unterminated-transaction",
    category: Category::History,
    default_severity: Severity::Error,
    summary: "a migration opens a transaction (BEGIN) and never commits it: it and every later migration of the deploy are rolled back",
    doc: include_str!("unterminated_transaction.md"),
    check,
};

use crate::check::{Finding, Source};
use crate::run::Outcome;
use crate::sql::split::excerpt;

/// A finding for each migration that left its session inside a transaction block (observed by
/// the executor, which asks the server after each migration).
pub fn check(ev: &Evidence) -> Vec<Finding> {
    ev.per_run(in_run)
}

fn in_run(outcomes: &[Outcome], run_label: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for o in outcomes {
        let Some(open) = &o.left_open else { continue };
        let later = match open.rolled_back_with_it.len() {
            0 => String::new(),
            n => format!(
                ", and the {n} later migration{} of the same deploy ({}) would run inside it and be rolled back too",
                if n == 1 { "" } else { "s" },
                excerpt(&open.rolled_back_with_it.join(", "), 120)
            ),
        };
        let mut finding = Finding::new(
            &RULE,
            Source::Proven,
            format!(
                "{run_label}: the migration opens a transaction and never commits it: the tool reports it applied, but its session closes with the transaction open, so nothing of it persists{later}"
            ),
        )
        .migration(&o.name)
        .file(&o.path)
        .at(open.line, open.column)
        .evidence("observed: after the file ran without error, the session was still inside a transaction block (the server accepted a SAVEPOINT)")
        .evidence("prisma migrate deploy: the `_prisma_migrations` row inserted before the script stays unfinished, so the next deploy stops with P3009")
        .fix("end the transaction the file opens with COMMIT; (or remove the BEGIN: Prisma ≤ 7.3 already runs each migration.sql as one transaction)");
        if let Some(stmt) = &open.statement {
            finding = finding.statement(excerpt(stmt, 160));
        }
        out.push(finding);
    }
    out
}
