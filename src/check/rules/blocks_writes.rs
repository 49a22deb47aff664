//! `blocks-writes`: SHARE or SHARE ROW EXCLUSIVE on an existing table (non-concurrent index, foreign key validation). Documentation: `blocks_writes.md` beside this file.

use super::Rule;
use super::held::held_work;
use super::observed::{at, held_finding, human, rows_note};
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity};
use crate::run::trace::lock_words;

pub const RULE: Rule = Rule {
    id: "blocks-writes",
    category: Category::Lock,
    default_severity: Severity::Warning,
    summary: "SHARE or SHARE ROW EXCLUSIVE on an existing table (non-concurrent index, foreign key validation)",
    doc: include_str!("blocks_writes.md"),
    check,
};

pub fn check(ev: &Evidence) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in ev.traces {
        let under_held = held_work(t);
        for st in &t.statements {
            for l in st
                .locks
                .iter()
                .filter(|l| l.preexisting && l.relation == l.table)
            {
                // ACCESS EXCLUSIVE during this statement (its own, or an earlier statement's
                // still held) is the stronger rule's; a lock held from earlier is reported below.
                let exclusive_here = st
                    .locks
                    .iter()
                    .any(|o| o.table == l.table && o.mode == "AccessExclusiveLock");
                let held_here = under_held
                    .iter()
                    .any(|h| std::ptr::eq(h.statement, st) && h.table == l.table);
                if exclusive_here || held_here {
                    continue;
                }
                // SHARE (index build) reads the whole table; SHARE ROW EXCLUSIVE (foreign key) costs
                // only when the existing table is validated (scanned); a key from a new table is cheap.
                let costly = match l.mode.as_str() {
                    "ShareLock" | "ExclusiveLock" => true,
                    "ShareRowExclusiveLock" => st.scanned.contains(&l.table),
                    _ => false,
                };
                if !costly {
                    continue;
                }
                out.push(
                    at(&RULE, t, st, format!("takes {} on {}: writes (INSERT, UPDATE, DELETE) to {} wait until the migration commits", lock_words(&l.mode), l.table, l.table))
                        .evidence(format!("observed: {} on {} ({}{})", l.mode, l.table, human(st.duration), rows_note(ev, &l.table)))
                        .fix(FIX),
                );
            }
        }
        for h in under_held
            .iter()
            .filter(|h| h.held.mode != "AccessExclusiveLock")
        {
            out.push(held_finding(&RULE, ev, t, h, "writes (INSERT, UPDATE, DELETE)").fix(FIX));
        }
    }
    out
}

const FIX: &str = "build indexes with CREATE INDEX CONCURRENTLY in a migration of their own; add foreign keys NOT VALID, then VALIDATE CONSTRAINT in a separate migration";
