//! `live-failed-migration`: the live history table records a failed or rolled-back migration.
//! Documentation: `live_failed_migration.md` beside this file.

use super::Rule;
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity, Source};
use crate::live::LiveProblem;

pub const RULE: Rule = Rule {
    id: "live-failed-migration",
    category: Category::Drift,
    default_severity: Severity::Error,
    summary: "the live database's _prisma_migrations records a failed (or rolled-back) migration",
    doc: include_str!("live_failed_migration.md"),
    check,
};

/// The failed and rolled-back rows of production's history table (read by `--live-url`).
pub fn check(ev: &Evidence) -> Vec<Finding> {
    ev.live_findings(|p| match p {
        LiveProblem::Failed {
            name,
            started_at,
            logs,
            path,
        } => Some(failed(name, started_at, logs.as_deref(), path.as_deref())),
        LiveProblem::RolledBack { name, at, path } => Some(rolled_back(name, at, path.as_deref())),
        _ => None,
    })
}

/// A failed row: deploy refuses to run (P3009).
pub fn failed(name: &str, started_at: &str, logs: Option<&str>, path: Option<&str>) -> Finding {
    let mut f = Finding::new(
        &RULE,
        Source::Drift,
        format!("`{name}` is recorded as failed in production (started {started_at}): `prisma migrate deploy` refuses to apply anything until it is resolved (P3009)"),
    )
    .migration(name)
    .fix(format!("find out what the failed run left behind, fix it, then `prisma migrate resolve --rolled-back {name}` (or `--applied` if it completed by hand)"));
    if let Some(p) = path {
        f = f.file(p);
    }
    if let Some(l) = logs.filter(|l| !l.is_empty()) {
        f = f.evidence(format!("logs: {}", crate::sql::split::excerpt(l, 300)));
    }
    f
}

/// A rolled-back row with no later success: deploy applies the migration again.
pub fn rolled_back(name: &str, rolled_back_at: &str, path: Option<&str>) -> Finding {
    let mut f = Finding::new(
        &RULE,
        Source::Drift,
        format!("`{name}` was marked rolled back in production ({rolled_back_at}) and never applied since: the next deploy runs it again from its first statement"),
    )
    .migration(name)
    .severity(Severity::Warning)
    .fix("make sure the migration can run again on production as it is now (idempotent statements), or resolve it as applied");
    if let Some(p) = path {
        f = f.file(p);
    }
    f
}
