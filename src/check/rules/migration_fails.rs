//! `migration-fails`: a migration fails to apply (from scratch or incrementally). Documentation: `migration_fails.md` beside this file.

use super::Rule;
use crate::check::Evidence;
use crate::check::{Category, Severity};

pub const RULE: Rule = Rule {
    id: "migration-fails",
    category: Category::History,
    default_severity: Severity::Error,
    summary: "a migration fails to apply (from scratch or incrementally)",
    doc: include_str!("migration_fails.md"),
    check,
};

use crate::check::{Finding, Source};
use crate::run::{Failure, Outcome};
use crate::sql::split::excerpt;

/// What the user must do for the common environmental failures, naming the config key.
pub fn fix_for(f: &Failure) -> String {
    let code = f.sqlstate.as_deref().unwrap_or("");
    let msg = f.message.as_str();
    if code == "42704" && msg.starts_with("role \"") {
        let role = msg.split('"').nth(1).unwrap_or("ROLE");
        return format!(
            "if `{role}` exists on your real servers (as on Supabase), add it to `roles:` in .ci-gate.yml so ci-gate creates it first: roles: [{role}]"
        );
    }
    if (code == "42501" || code == "0A000") && msg.contains("permission denied to create extension")
    {
        let ext = msg.split('"').nth(1).unwrap_or("EXTENSION");
        return format!(
            "extension `{ext}` needs a superuser; add it to `extensions:` in .ci-gate.yml so ci-gate creates it before the migrations, as your platform does: extensions: [{ext}]"
        );
    }
    if msg.contains("extension")
        && (msg.contains("is not available")
            || msg.contains("could not open extension control file"))
    {
        return "the server ci-gate used lacks this extension; use an image or server binaries that ship it (--image, --pg-bin, --database-url)".into();
    }
    if msg.contains('\u{feff}') {
        return "the file starts with a UTF-8 byte-order mark, which PostgreSQL rejects (Prisma sends it as is, so deploy fails the same way); re-save the file as UTF-8 without BOM".into();
    }
    if code == "57014" || f.timed_out {
        return "the migration ran longer than `statement-timeout` (default 10min); make it faster, or raise statement-timeout in .ci-gate.yml if that is expected".into();
    }
    "fix the statement so that it applies on a database built from the migrations before it".into()
}

/// A `migration-fails` finding for each failed outcome (except 25001, which is
/// `non-transactional-statement`).
/// Every run's outcomes, in run order.
pub fn check(ev: &Evidence) -> Vec<Finding> {
    ev.per_run(in_run)
}

fn in_run(outcomes: &[Outcome], run_label: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for o in outcomes {
        let Some(f) = &o.failure else { continue };
        if f.sqlstate.as_deref() == Some("25001") {
            continue;
        }
        let code = f
            .sqlstate
            .as_deref()
            .map(|c| format!(" (SQLSTATE {c})"))
            .unwrap_or_default();
        let mut finding = Finding::new(
            &RULE,
            Source::History,
            format!("{}: {}{code}", run_label, f.message),
        )
        .migration(&o.name)
        .file(&o.path)
        .at(f.line, f.column)
        .fix(fix_for(f));
        if let Some(stmt) = &f.statement {
            finding = finding.statement(excerpt(stmt, 160));
        }
        for (label, value) in [
            ("detail", &f.detail),
            ("hint", &f.hint),
            ("context", &f.context),
        ] {
            if let Some(v) = value {
                finding = finding.evidence(format!("{label}: {v}"));
            }
        }
        finding = finding.evidence(match f.located {
            crate::run::Located::ServerPosition => "location: the server's error position".to_string(),
            crate::run::Located::Statement => "location: the statement that fails (the server gave no position)".to_string(),
            crate::run::Located::File => "location: the file (the server gave no position and the statement could not be isolated)".to_string(),
        });
        out.push(finding);
    }
    out
}
