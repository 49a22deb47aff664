//! What the run observed of each migration, for the report: which rows the seeded trace ran and
//! how long each took on the seeded rows, why the others were not observed (not applied, or the
//! trace stopped before them), and the trace's own line among the checks, with how many base
//! tables it seeded.

use crate::model::{CheckResult, CheckStatus, MigrationRow, Status};
use crate::run::build::TracedRun;
use crate::run::builds::BuildOutcome;

/// Mark every row with what the run observed of it; return the trace's check line.
pub fn mark(built: &mut BuildOutcome) -> CheckResult {
    mark_skipped(&mut built.rows);
    let Some(plan) = &built.plan else {
        return CheckResult::not_run("no base");
    };
    let deployed = plan.deploy.len();
    if deployed == 0 {
        return CheckResult::not_run("no new migrations to trace");
    }
    let Some(traced) = &built.traced else {
        for row in built.rows.iter_mut().filter(|r| awaited(r)) {
            row.outcome.not_traced_reason =
                Some("the base migrations do not apply: nothing to seed and trace on".into());
        }
        return CheckResult::not_run("the base migrations do not apply");
    };
    // The deploy order (the trace's), by name.
    let order: Vec<String> = plan
        .deploy
        .iter()
        .filter_map(|&i| built.rows.get(i).map(|r| r.name.clone()))
        .collect();
    for row in built.rows.iter_mut().filter(|r| awaited(r)) {
        match traced.traces.iter().find(|t| t.name == row.name) {
            Some(t) => {
                row.outcome.traced = true;
                let ms: u128 = t.statements.iter().map(|s| s.duration.as_millis()).sum();
                row.outcome.seeded_ms = Some(ms as u64);
            }
            None => {
                row.outcome.not_traced_reason =
                    Some(match failed_before(traced, &order, &row.name) {
                        Some(name) => {
                            format!("the trace stopped after `{name}` failed on the seeded rows")
                        }
                        None => "the trace did not reach it".into(),
                    });
            }
        }
    }
    trace_check(traced, deployed)
}

/// A row the seeded trace should have run: one the deploy applies (not skipped after a failure).
fn awaited(row: &MigrationRow) -> bool {
    row.new && row.status != Status::Skipped && row.outcome.not_traced_reason.is_none()
}

/// Skipped rows were never applied: each says which failure came before it.
fn mark_skipped(rows: &mut [MigrationRow]) {
    let mut failed: Option<String> = None;
    for row in rows.iter_mut() {
        match row.status {
            Status::Failed => failed = Some(row.name.clone()),
            Status::Skipped => {
                row.outcome.not_traced_reason = Some(match &failed {
                    Some(name) => format!("not applied: `{name}` failed before it"),
                    None => "not applied: an earlier migration failed".into(),
                });
            }
            _ => {}
        }
    }
}

/// The last traced migration before `name` (in deploy `order`) that failed on the seeded rows:
/// the trace goes on after a failure on a fresh copy, and stops when it cannot (the notes say
/// why).
fn failed_before<'a>(traced: &'a TracedRun, order: &[String], name: &str) -> Option<&'a str> {
    let at = order.iter().position(|n| n == name)?;
    traced
        .traces
        .iter()
        .filter(|t| t.failure.is_some())
        .filter(|t| {
            order
                .iter()
                .position(|n| *n == t.name)
                .is_some_and(|i| i < at)
        })
        .map(|t| t.name.as_str())
        .next_back()
}

/// "4 of 4 new migrations traced, `x` failed on the seeded rows (those after it on a fresh
/// copy); 5 of 12 base tables seeded, 15 rows".
fn trace_check(traced: &TracedRun, deployed: usize) -> CheckResult {
    let n = traced.traces.len();
    let failed: Vec<String> = traced
        .traces
        .iter()
        .filter(|t| t.failure.is_some())
        .map(|t| format!("`{}`", t.name))
        .collect();
    let mut summary = format!("{n} of {deployed} new migrations traced");
    if !failed.is_empty() {
        summary.push_str(&format!(
            ", {} failed on the seeded rows",
            failed.join(", ")
        ));
        if traced.traces.iter().any(|t| t.resumed_after.is_some()) {
            summary.push_str(" (the ones after it on a fresh copy)");
        }
    }
    if n < deployed {
        summary.push_str(&format!(", {} not traced", deployed - n));
    }
    let rows: i64 = traced.seed.filled.values().sum();
    summary.push_str(&format!(
        "; {} of {} base tables seeded, {rows} rows",
        traced.seed.filled.len(),
        traced.focus.total
    ));
    if !traced.seed.skipped.is_empty() {
        summary.push_str(&format!(
            " ({} could not be seeded)",
            traced.seed.skipped.len()
        ));
    }
    CheckResult {
        status: CheckStatus::failing_if(!failed.is_empty()),
        summary,
        applied: Some(n - failed.len()),
        failed: Some(failed.len()),
        skipped: Some(deployed.saturating_sub(n)),
        ..CheckResult::not_run("")
    }
}
