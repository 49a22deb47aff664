//! `edited-applied-migration`: a migration present on base changed on head. Documentation:
//! `edited_applied_migration.md` beside this file.

use super::Rule;
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity, Source};
use crate::discover::MigrationSet;
use crate::live::LiveProblem;
use crate::plan::{Classification, Plan, unified_diff};

pub const RULE: Rule = Rule {
    id: "edited-applied-migration",
    category: Category::History,
    default_severity: Severity::Error,
    summary: "a migration already on the base branch (so already applied in production) was edited",
    doc: include_str!("edited_applied_migration.md"),
    check,
};

pub fn check(ev: &Evidence) -> Vec<Finding> {
    ev.live_then_base(in_production, against_base)
}

/// An applied migration whose file no longer matches the checksum production stored.
fn in_production(p: &LiveProblem) -> Option<Finding> {
    let LiveProblem::Edited {
        name,
        path,
        finished_at,
        stored,
        file,
    } = p
    else {
        return None;
    };
    let short = |s: &str| s.chars().take(12).collect::<String>();
    Some(
        Finding::new(
            &RULE,
            Source::Drift,
            format!(
                "`{name}` differs from the version production applied on {}: production keeps the old one",
                finished_at.as_deref().unwrap_or("?")
            ),
        )
        .migration(name)
        .file(path)
        .evidence(format!(
            "checksum in production {} ≠ file {}",
            short(stored),
            short(file)
        ))
        .fix("revert the edit and put the change in a new migration"),
    )
}

fn against_base(plan: &Plan, base: &MigrationSet, head: &MigrationSet) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in &plan.head {
        if e.class != Classification::Edited {
            continue;
        }
        let (Some(bi), h) = (e.base_index, &head.migrations[e.index]) else {
            continue;
        };
        let b = &base.migrations[bi];
        let diff = unified_diff(
            &b.text,
            &h.text,
            &format!("base/{}", b.path),
            &format!("head/{}", h.path),
            40,
        );
        let first_changed = first_changed_line(&b.text, &h.text);
        out.push(
            Finding::new(
                &RULE,
                Source::History,
                format!(
                    "`{}` was edited after it was applied: databases that already ran it keep the old version (`prisma migrate deploy` does not compare checksums; `migrate dev` demands a reset)",
                    h.name
                ),
            )
            .migration(&h.name)
            .file(&h.path)
            .at(first_changed, 1)
            .evidence(format!("checksum on base {} ≠ head {} (CRLF-only differences are tolerated, as Prisma does)", short(&b.checksum), short(&h.checksum)))
            .evidence(diff)
            .fix("revert the edit and put the change in a new migration"),
        );
    }
    out
}

fn short(sum: &str) -> &str {
    &sum[..sum.len().min(12)]
}

fn first_changed_line(old: &str, new: &str) -> usize {
    let n = old.replace("\r\n", "\n");
    let m = new.replace("\r\n", "\n");
    n.lines()
        .zip(m.lines())
        .position(|(a, b)| a != b)
        .map(|i| i + 1)
        .unwrap_or_else(|| n.lines().count().min(m.lines().count()) + 1)
}
