//! The seeded run goes on after a failure, so that one failing migration does not hide what the
//! ones after it do. After migration X fails on the seeded copy, a fresh copy of base gets every
//! earlier migration and X applied without rows (as the incremental run applies them), is seeded
//! again, and the rest is traced on it. When X fails even without rows, the copy is built without
//! X and the rest is traced "without X"; a later failure there may come from X's absence, so it is
//! not reported as observed (the report says it was not traced).

use super::build::{BuildError, Builder, TracedRun};
use super::builds::all_applied;
use crate::discover::Migration;

/// Trace what `first` did not reach because a migration failed, as many times as migrations fail.
pub async fn resume(
    builder: &Builder<'_>,
    base_db: &str,
    deploy: &[&Migration],
    seed: Option<(&str, &str)>,
    mut run: TracedRun,
    notes: &mut Vec<String>,
) -> Result<TracedRun, BuildError> {
    let mut without: Vec<String> = Vec::new();
    let all_tables = matches!(run.focus.scope, super::scope::Scope::All);
    loop {
        let done = run.traces.len();
        let failed = match run.traces.last() {
            Some(t) if t.failure.is_some() => t.name.clone(),
            _ => return Ok(run),
        };
        if !without.is_empty() {
            // A failure after leaving a migration out may be caused by its absence: it and what
            // follows are not traced (rows say so), and nothing about them is claimed.
            run.traces.pop();
            let after = match deploy.len() - done {
                0 => String::new(),
                n => format!(" and the {n} after it"),
            };
            notes.push(format!(
                "seeded run: `{failed}` failed on the copy without {}; it{after} are not traced (they may depend on what was left out)",
                names(&without),
            ));
            return Ok(run);
        }
        if done == deploy.len() {
            return Ok(run);
        }
        let Some(db) = copy_with(builder, base_db, &deploy[..done], &failed, &mut without).await?
        else {
            notes.push(format!(
                "seeded run: stopped at `{failed}`; the {} migrations after it are not traced (an earlier one does not apply on a copy without rows)",
                deploy.len() - done
            ));
            return Ok(run);
        };
        let before = run.base.clone();
        let rest = &deploy[done..];
        let format = builder.opts.format();
        let more = builder
            .trace_within(&format, &db, rest, seed, all_tables, Some(&before))
            .await;
        let _ = builder.server.drop_database(&db).await;
        let mut more = more?;
        for t in &mut more.traces {
            t.resumed_after = Some(failed.clone());
            t.without = without.clone();
        }
        notes.push(match without.is_empty() {
            true => format!(
                "seeded run: `{failed}` failed on the seeded rows; the {} migrations after it were traced on a fresh copy where it applied without rows, seeded again",
                rest.len()
            ),
            false => format!(
                "seeded run: `{failed}` fails even without rows; the {} migrations after it were traced without it",
                rest.len()
            ),
        });
        run.traces.append(&mut more.traces);
        run.outside.append(&mut more.outside);
        run.seed.merge(more.seed);
    }
}

/// A copy of base with `prior` applied without rows (the last one, `failed`, left out and added
/// to `without` when it does not apply); None when an earlier one does not apply either.
async fn copy_with(
    builder: &Builder<'_>,
    base_db: &str,
    prior: &[&Migration],
    failed: &str,
    without: &mut Vec<String>,
) -> Result<Option<String>, BuildError> {
    let db = builder.create("resumed", Some(base_db)).await?;
    if all_applied(&builder.apply(&db, prior).await?) {
        return Ok(Some(db));
    }
    let _ = builder.server.drop_database(&db).await;
    let kept: Vec<&Migration> = prior.iter().filter(|m| m.name != failed).copied().collect();
    let db = builder.create("resumed", Some(base_db)).await?;
    if all_applied(&builder.apply(&db, &kept).await?) {
        without.push(failed.to_string());
        return Ok(Some(db));
    }
    let _ = builder.server.drop_database(&db).await;
    Ok(None)
}

fn names(list: &[String]) -> String {
    list.iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
