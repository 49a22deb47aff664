//! `blocks-reads-writes`: ACCESS EXCLUSIVE on an existing table held while the table is scanned (more than a catalog change). Documentation: `blocks_reads_writes.md` beside this file.

use super::Rule;
use super::observed::{at, for_each_statement, human};
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity};

pub const RULE: Rule = Rule {
    id: "blocks-reads-writes",
    category: Category::Lock,
    default_severity: Severity::Warning,
    summary: "ACCESS EXCLUSIVE on an existing table held while the table is scanned (more than a catalog change)",
    doc: include_str!("blocks_reads_writes.md"),
    check,
};

pub fn check(ev: &Evidence) -> Vec<Finding> {
    let traces = ev.traces;
    for_each_statement(traces, |t, st, out| {
        for l in st
            .locks
            .iter()
            .filter(|l| l.preexisting && l.mode == "AccessExclusiveLock")
        {
            let scanned = st.scanned.contains(&l.table);
            let rewritten = st.rewritten.iter().any(|(r, _)| *r == l.table);
            if !scanned || rewritten || l.relation != l.table {
                continue;
            }
            out.push(at(&RULE, t, st, format!("holds ACCESS EXCLUSIVE on {} while scanning it: every read and write on {} waits until the scan ends", l.table, l.table))
                .evidence(format!("observed: AccessExclusiveLock on {} and a full scan of it in this statement ({})", l.table, human(st.duration)))
                .fix("validate separately: add CHECK/FOREIGN KEY constraints NOT VALID then VALIDATE CONSTRAINT; for SET NOT NULL add a validated CHECK (col IS NOT NULL) first"));
        }
    })
}
