//! `missing-lock-timeout`: a dangerous lock is taken on an existing table with no lock_timeout set. Documentation: `missing_lock_timeout.md` beside this file.

use super::Rule;
use super::observed::at;
use crate::check::Evidence;
use crate::check::finding::Site;
use crate::check::{Category, Finding, Severity};
use crate::run::trace::StatementTrace;
use crate::run::trace::lock_words;

pub const RULE: Rule = Rule {
    id: "missing-lock-timeout",
    category: Category::Lock,
    default_severity: Severity::Warning,
    summary: "a dangerous lock is taken on an existing table with no lock_timeout set",
    doc: include_str!("missing_lock_timeout.md"),
    check,
};

/// One finding per migration, at its first such statement; [`once_per_pull_request`] then folds
/// them into one. Each carries its own place and lock as its only [`Site`] until then.
pub fn check(ev: &Evidence) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in ev.traces {
        let dangerous = |st: &&StatementTrace| {
            (st.lock_timeout == "0" || st.lock_timeout.is_empty())
                && st
                    .locks
                    .iter()
                    .any(|l| l.preexisting && DANGEROUS.contains(&l.mode.as_str()))
        };
        let Some(st) = t.statements.iter().find(dangerous) else {
            continue;
        };
        let what = st
            .locks
            .iter()
            .find(|l| l.preexisting && DANGEROUS.contains(&l.mode.as_str()))
            .map(|l| format!("{} on {}", lock_words(&l.mode), l.table))
            .unwrap_or_default();
        let f = at(
            &RULE,
            t,
            st,
            format!("takes {what} with lock_timeout = 0: {WAITS}"),
        )
        .evidence(format!(
            "observed: lock_timeout was {} when the lock was taken",
            if st.lock_timeout.is_empty() {
                "0"
            } else {
                &st.lock_timeout
            }
        ))
        .fix(FIX);
        let site = Site {
            migration: f.migration.clone(),
            file: f.file.clone(),
            line: f.line,
            column: f.column,
            message: what,
        };
        out.push(Finding {
            sites: vec![site],
            ..f
        });
    }
    out
}

const WAITS: &str = "if another session holds a lock on the table, the migration waits, and every query queued behind it waits too";

const FIX: &str = "start each migration with `SET lock_timeout = '5s';`, or set it for the whole deploy on its connection (`options=-c lock_timeout=5s` in the database URL) and declare it with `lock-timeout: 5s` in .ci-gate.yml; retry the deploy when it times out";

/// Fold the pull request's findings of this rule into one (the missing setting is one decision
/// of how the team deploys, not one per file): the first migration's finding leads, naming every
/// migration and table; the others become its [`Finding::sites`] (annotated each). Allowed
/// findings stay apart, with their reasons.
pub fn once_per_pull_request(findings: &mut Vec<Finding>) {
    for f in findings
        .iter_mut()
        .filter(|f| f.rule == RULE.id && f.allowed)
    {
        f.sites.clear();
    }
    let mine = |f: &Finding| f.rule == RULE.id && !f.allowed;
    let Some(lead_at) = findings.iter().position(mine) else {
        return;
    };
    let mut sites: Vec<Site> = Vec::new();
    let mut evidence: Vec<String> = Vec::new();
    let mut i = 0;
    findings.retain_mut(|f| {
        let keep = !mine(f) || i == lead_at;
        if mine(f) {
            sites.append(&mut f.sites);
            evidence.append(&mut f.evidence);
        }
        i += 1;
        keep
    });
    let Some(lead) = findings.iter_mut().find(|f| mine(f)) else {
        return;
    };
    let listed: Vec<String> = sites
        .iter()
        .map(|s| {
            let name = s.migration.as_deref().unwrap_or("?");
            format!("`{name}` ({}, line {})", s.message, s.line.unwrap_or(0))
        })
        .collect();
    lead.message = match sites.len() {
        1 => format!(
            "`{}` takes {} with lock_timeout = 0: {WAITS}",
            sites[0].migration.as_deref().unwrap_or("?"),
            sites[0].message
        ),
        n => format!(
            "{n} migrations take a lock that queues every other session on an existing table, with lock_timeout = 0: {}; {WAITS}",
            listed.join(", ")
        ),
    };
    evidence.dedup();
    lead.evidence = evidence;
    sites.remove(0);
    lead.sites = sites;
}

/// Locks that queue other sessions behind them.
const DANGEROUS: [&str; 4] = [
    "AccessExclusiveLock",
    "ExclusiveLock",
    "ShareRowExclusiveLock",
    "ShareLock",
];
