//! `out-of-order-migration`: a new migration sorts before one already on base. Documentation:
//! `out_of_order_migration.md` beside this file.

use super::Rule;
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity, Source};

use crate::format::ToolVerdict;
use crate::plan::Classification;

pub const RULE: Rule = Rule {
    id: "out-of-order-migration",
    category: Category::History,
    default_severity: Severity::Error,
    summary: "a new migration sorts before one already applied on the base branch",
    doc: include_str!("out_of_order_migration.md"),
    check,
};

/// One finding per new migration that sorts before the newest base migration. It gates (error)
/// when the order matters: the tool never applies it (or refuses), the two orders build different
/// schemas (the drift check's differences are named), or they could not both be built. When the
/// tool applies it and both orders give the same schema it is a notice: visible, not blocking.
pub fn check(ev: &Evidence) -> Vec<Finding> {
    let Some(plan) = ev.plan else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in &plan.head {
        let Classification::New {
            out_of_order_before: Some(last),
        } = &e.class
        else {
            continue;
        };
        let h = &ev.head.migrations[e.index];
        let (severity, effect) = effect(ev, e.tool.as_ref());
        out.push(
            Finding::new(
                &RULE,
                Source::History,
                format!(
                    "`{}` sorts before `{last}`, already on the base branch: production (`prisma migrate deploy`) applies it after `{last}`, a fresh database before it; {effect}",
                    h.name
                ),
            )
            .severity(severity)
            .migration(&h.name)
            .file(&h.path)
            .evidence(match ev.drift_compared {
                true => "observed: ci-gate built both orders (base + new, and the files in order) and compared their catalogs",
                false => "not observed: the two orders were not both built, so their schemas could not be compared",
            })
            .fix(format!("rename the directory so it sorts after `{last}` (a newer timestamp), e.g. by regenerating it with `prisma migrate dev`")),
        );
    }
    out
}

/// How much the position matters, from the tool's verdict and the drift check.
fn effect(ev: &Evidence, tool: Option<&ToolVerdict>) -> (Severity, String) {
    match tool {
        Some(ToolVerdict::SkipsForever) => {
            return (
                Severity::Error,
                "the migration tool never applies it on a database that has the later one".into(),
            );
        }
        Some(ToolVerdict::Refuses { message }) => {
            return (
                Severity::Error,
                format!("the migration tool refuses to deploy: {message}"),
            );
        }
        _ => {}
    }
    if !ev.drift_compared {
        return (
            Severity::Error,
            "the two orders could not both be built (a run failed), so nothing shows they agree"
                .into(),
        );
    }
    let (minor, real): (Vec<_>, Vec<_>) = ev.drift.iter().partition(|c| c.is_minor());
    if real.is_empty() {
        let also = match minor.len() {
            0 => String::new(),
            n => format!(" (only the column order of {n} tables or comments differ)"),
        };
        return (
            Severity::Notice,
            format!("harmless here: both orders build the same schema{also} (drift check)"),
        );
    }
    const SHOWN: usize = 3;
    let mut named: Vec<String> = real.iter().take(SHOWN).map(|c| c.name.clone()).collect();
    if real.len() > SHOWN {
        named.push(format!("{} more", real.len() - SHOWN));
    }
    (
        Severity::Error,
        format!(
            "the two orders build different schemas: {} differ (see history-drift)",
            named.join(", ")
        ),
    )
}
