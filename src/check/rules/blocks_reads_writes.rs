//! `blocks-reads-writes`: ACCESS EXCLUSIVE on an existing table held while the table is scanned (more than a catalog change). Documentation: `blocks_reads_writes.md` beside this file.

use super::Rule;
use super::held::held_work;
use super::observed::{at, for_each_statement, held_finding, human, rows_note};
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
    let mut out = for_each_statement(ev.traces, |t, st, out| {
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
                .evidence(format!("observed: AccessExclusiveLock on {} and a full scan of it in this statement ({}{})", l.table, human(st.duration), rows_note(ev, &l.table)))
                .fix("validate separately: add CHECK/FOREIGN KEY constraints NOT VALID then VALIDATE CONSTRAINT; for SET NOT NULL add a validated CHECK (col IS NOT NULL) first"));
        }
    });
    // Work done later in the same transaction, under an ACCESS EXCLUSIVE an earlier statement
    // took (Prisma ≤ 7.3: ADD COLUMN, then CREATE INDEX and ADD FOREIGN KEY in the same file).
    for t in ev.traces {
        for h in held_work(t)
            .iter()
            .filter(|h| h.held.mode == "AccessExclusiveLock")
        {
            out.push(
                held_finding(&RULE, ev, t, h, "every read and write")
                    .fix("put the index build (CREATE INDEX CONCURRENTLY) or the validation (ADD … NOT VALID, then VALIDATE CONSTRAINT) in a migration of its own, after the one that alters the table"),
            );
        }
    }
    out
}
