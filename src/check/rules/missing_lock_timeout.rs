//! `missing-lock-timeout`: a dangerous lock is taken on an existing table with no lock_timeout set. Documentation: `missing_lock_timeout.md` beside this file.

use super::Rule;
use super::observed::at;
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity};
use crate::run::trace::lock_words;

pub const RULE: Rule = Rule {
    id: "missing-lock-timeout",
    category: Category::Lock,
    default_severity: Severity::Warning,
    summary: "a dangerous lock is taken on an existing table with no lock_timeout set",
    doc: include_str!("missing_lock_timeout.md"),
    check,
};

pub fn check(ev: &Evidence) -> Vec<Finding> {
    let traces = ev.traces;
    let mut out = Vec::new();
    for t in traces {
        let first = t.statements.iter().find(|st| {
            (st.lock_timeout == "0" || st.lock_timeout.is_empty())
                && st
                    .locks
                    .iter()
                    .any(|l| l.preexisting && DANGEROUS.contains(&l.mode.as_str()))
        });
        if let Some(st) = first {
            let what = st
                .locks
                .iter()
                .find(|l| l.preexisting && DANGEROUS.contains(&l.mode.as_str()))
                .map(|l| format!("{} on {}", lock_words(&l.mode), l.table))
                .unwrap_or_default();
            out.push(
                at(&RULE, t, st, format!("takes {what} with lock_timeout = 0: if another session holds a lock on the table, this migration waits, and every query queued behind it waits too"))
                    .evidence(format!("observed: lock_timeout was {} when the lock was taken", if st.lock_timeout.is_empty() { "0" } else { &st.lock_timeout }))
                    .fix("start the migration with SET lock_timeout = '5s'; (and retry the deploy if it times out)"),
            );
        }
    }
    out
}

/// Locks that queue other sessions behind them.
const DANGEROUS: [&str; 4] = [
    "AccessExclusiveLock",
    "ExclusiveLock",
    "ShareRowExclusiveLock",
    "ShareLock",
];
