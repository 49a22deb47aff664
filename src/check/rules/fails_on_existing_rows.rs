//! `fails-on-existing-rows`: a new migration succeeds on the empty base but fails once tables hold rows. Documentation: `fails_on_existing_rows.md` beside this file.

use super::Rule;
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity, Source};
use crate::run::Failure;
use crate::run::seed::SeedReport;
use crate::sql::quote::quote_ident;
use crate::sql::split::excerpt;

pub const RULE: Rule = Rule {
    id: "fails-on-existing-rows",
    category: Category::Proven,
    default_severity: Severity::Error,
    summary: "a new migration succeeds on the empty base but fails once tables hold rows",
    doc: include_str!("fails_on_existing_rows.md"),
    check,
};

/// Every traced migration that failed on the seeded copy but applied on the empty incremental
/// database.
pub fn check(ev: &Evidence) -> Vec<Finding> {
    let applied_incrementally = |name: &str| {
        ev.outcomes("incremental")
            .any(|o| o.name == name && o.status == crate::model::Status::Applied)
    };
    ev.traces
        .iter()
        .filter_map(|t| {
            let f = t.failure.as_ref()?;
            applied_incrementally(&t.name).then(|| finding(&t.name, &t.path, f, ev.seed))
        })
        .collect()
}

/// A finding for a migration that failed on the seeded copy (`failure`) but applied on the empty
/// incremental database; `seed` says what the seeded copy held.
pub fn finding(name: &str, path: &str, f: &Failure, seed: Option<&SeedReport>) -> Finding {
    let code = f.sqlstate.as_deref().unwrap_or("");
    let target = [
        f.db_table.as_deref().map(|t| format!("table {t}")),
        f.db_column.as_deref().map(|c| format!("column {c}")),
        f.db_constraint
            .as_deref()
            .map(|c| format!("constraint {c}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    let mut finding = Finding::new(
        &RULE,
        Source::Proven,
        format!(
            "applies on the empty base but fails once tables hold rows: {} (SQLSTATE {code}){}",
            f.message,
            if target.is_empty() {
                String::new()
            } else {
                format!(" [{target}]")
            }
        ),
    )
    .migration(name)
    .file(path)
    .at(f.line, f.column)
    .evidence(proof(seed, f.db_table.as_deref()))
    .fix(recipe(code, f));
    if let Some(s) = &f.statement {
        finding = finding.statement(excerpt(s, 160));
    }
    if let Some(d) = &f.detail {
        finding = finding.evidence(format!("detail: {d}"));
    }
    finding
}

/// What the proof rests on: how many of the reached tables held synthetic rows, and how many the
/// table the server named held.
fn proof(seed: Option<&SeedReport>, table: Option<&str>) -> String {
    let Some(s) = seed else {
        return "proven: the migration applied on the base without rows and failed on the same base with synthetic rows".into();
    };
    let of = if s.every_table {
        format!(
            "{} of the base's {} tables",
            s.filled.len(),
            s.reached.len()
        )
    } else {
        format!(
            "{} of the {} tables the new migrations reach",
            s.filled.len(),
            s.reached.len()
        )
    };
    let suffix = table.map(|t| format!(".{}", quote_ident(t)));
    let held = suffix
        .as_deref()
        .and_then(|sfx| s.filled.iter().find(|(q, _)| q.ends_with(sfx)))
        .map(|(q, n)| format!("; {q} held {n} of them"))
        .unwrap_or_default();
    format!(
        "proven: the migration applied on the base without rows and failed on the same base with synthetic rows in {of}{held}"
    )
}

/// The safe way, by SQLSTATE.
fn recipe(code: &str, f: &Failure) -> String {
    let col = f
        .db_column
        .as_deref()
        .map(|c| format!("\"{c}\""))
        .unwrap_or_else(|| "the column".into());
    match code {
        "23502" => format!("add {col} as nullable (or with a DEFAULT), backfill it in batches, then SET NOT NULL in a later migration (PostgreSQL 12+: after a validated CHECK ({col} IS NOT NULL))"),
        "23505" => "remove the duplicate rows first (or make the index partial), then create the unique index (CONCURRENTLY, alone in its migration)".into(),
        "23503" => "delete or fix orphan rows first, add the foreign key NOT VALID, then VALIDATE CONSTRAINT in a later migration".into(),
        "23514" | "23P01" => "fix the rows that violate it first, add the constraint NOT VALID, then VALIDATE CONSTRAINT in a later migration".into(),
        "22P02" | "22001" | "22003" | "22007" | "22008" | "42804" => format!("clean the values that do not fit the new type first, or migrate through a new column: add it, backfill with an explicit conversion, switch, drop {col}"),
        _ => "make the migration work on tables that already hold rows: backfill before adding constraints, and test with production-like data (seed: in .ci-gate.yml)".into(),
    }
}
