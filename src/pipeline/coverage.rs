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
    let stop = stopped_at(traced);
    for row in built.rows.iter_mut().filter(|r| awaited(r)) {
        match traced.traces.iter().find(|t| t.name == row.name) {
            Some(t) => {
                row.outcome.traced = true;
                let ms: u128 = t.statements.iter().map(|s| s.duration.as_millis()).sum();
                row.outcome.seeded_ms = Some(ms as u64);
            }
            None => {
                row.outcome.not_traced_reason = Some(match stop {
                    Some(name) => {
                        format!("the trace stopped at `{name}`, which failed on the seeded rows")
                    }
                    None => "the trace did not reach it".into(),
                });
            }
        }
    }
    trace_check(traced, deployed, stop)
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

/// The migration the trace stopped at, when one failed on the seeded rows.
fn stopped_at(traced: &TracedRun) -> Option<&str> {
    traced
        .traces
        .last()
        .filter(|t| t.failure.is_some())
        .map(|t| t.name.as_str())
}

/// "3 of 4 new migrations traced, stopped at `x` (it failed there); 5 of 12 base tables
/// seeded, 15 rows".
fn trace_check(traced: &TracedRun, deployed: usize, stop: Option<&str>) -> CheckResult {
    let n = traced.traces.len();
    let mut summary = format!("{n} of {deployed} new migrations traced");
    if let Some(name) = stop {
        summary.push_str(&format!(", stopped at `{name}` (it failed there)"));
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
    let failed = usize::from(stop.is_some());
    CheckResult {
        status: CheckStatus::failing_if(stop.is_some()),
        summary,
        applied: Some(n - failed),
        failed: Some(failed),
        skipped: Some(deployed.saturating_sub(n)),
        ..CheckResult::not_run("")
    }
}
