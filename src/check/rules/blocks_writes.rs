//! `blocks-writes`: SHARE or SHARE ROW EXCLUSIVE on an existing table (non-concurrent index, foreign key validation). Documentation: `blocks_writes.md` beside this file.

use super::Rule;
use super::observed::{at, human};
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
    let traces = ev.traces;
    let mut out = Vec::new();
    for t in traces {
        // A table the migration also holds ACCESS EXCLUSIVE on is reported by the stronger rules.
        let exclusive: Vec<&str> = t
            .statements
            .iter()
            .flat_map(|s| s.locks.iter())
            .filter(|l| l.mode == "AccessExclusiveLock")
            .map(|l| l.table.as_str())
            .collect();
        for st in &t.statements {
            for l in st.locks.iter().filter(|l| {
                l.preexisting && l.relation == l.table && !exclusive.contains(&l.table.as_str())
            }) {
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
                        .evidence(format!("observed: {} on {} ({})", l.mode, l.table, human(st.duration)))
                        .fix("build indexes with CREATE INDEX CONCURRENTLY in a migration of their own; add foreign keys NOT VALID, then VALIDATE CONSTRAINT in a separate migration"),
                );
            }
        }
    }
    out
}
