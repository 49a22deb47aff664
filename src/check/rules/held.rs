//! Locks held across statements: inside one transaction (a whole Prisma ≤ 7.3 file, or an
//! explicit `BEGIN … COMMIT` block), a lock an earlier statement took on a pre-existing table is
//! still held while later statements work on that table. An index build or a foreign-key
//! validation after `ALTER TABLE … ADD COLUMN` runs under the ADD COLUMN's ACCESS EXCLUSIVE: every
//! read and write waits for it. [`held_work`] lists that work, for the lock rules.

use std::collections::HashMap;

use crate::run::trace::{MigrationTrace, StatementTrace, lock_strength as strength, lock_words};
use crate::sql::split::{TxControl, after_begin, excerpt, transaction_control};

/// A lock an earlier statement of the same transaction took, still held.
#[derive(Debug, Clone)]
pub struct Held {
    pub mode: String,
    pub line: usize,
    pub statement: String,
}

/// Work a statement did on a pre-existing table while an earlier statement's lock on it was held.
#[derive(Debug, Clone)]
pub struct HeldWork<'a> {
    pub statement: &'a StatementTrace,
    pub table: String,
    pub held: Held,
    /// What the work was, e.g. "builds an index", "validates a foreign key (scans the table)".
    pub work: String,
}

impl HeldWork<'_> {
    /// "ACCESS EXCLUSIVE on public."Document", taken at line 2 by `ALTER TABLE …`".
    pub fn lock_phrase(&self) -> String {
        format!(
            "{} on {}, taken at line {} by `{}`",
            lock_words(&self.held.mode),
            self.table,
            self.held.line,
            self.held.statement
        )
    }
}

/// Every statement of `t` that worked on a pre-existing table under a strong lock an earlier
/// statement of its transaction took (SHARE or stronger: the ones that block writes).
pub fn held_work(t: &MigrationTrace) -> Vec<HeldWork<'_>> {
    let mut held: HashMap<String, Held> = HashMap::new();
    let mut in_block = false;
    let mut out = Vec::new();
    for st in &t.statements {
        for (table, work) in work_on_existing(st) {
            if let Some(h) = held.get(&table)
                && strength(&h.mode) >= strength("ShareLock")
            {
                out.push(HeldWork {
                    statement: st,
                    table,
                    held: h.clone(),
                    work,
                });
            }
        }
        match transaction_control(&st.text) {
            Some(TxControl::Begin) => in_block = true,
            Some(TxControl::End) => {
                in_block = false;
                held.clear();
                continue;
            }
            None => {}
        }
        // Locks outlive the statement only inside a transaction.
        if !(t.one_transaction || in_block) {
            held.clear();
            continue;
        }
        for l in st
            .locks
            .iter()
            .filter(|l| l.preexisting && l.relation == l.table)
        {
            let stronger = held
                .get(&l.table)
                .is_none_or(|h| strength(&l.mode) > strength(&h.mode));
            if stronger {
                let h = Held {
                    mode: l.mode.clone(),
                    line: st.line,
                    statement: excerpt(&st.text[after_begin(&st.text)..], 80),
                };
                held.insert(l.table.clone(), h);
            }
        }
    }
    out
}

/// What `st` did on pre-existing tables that takes time proportional to their rows (rewrites
/// aside).
fn work_on_existing(st: &StatementTrace) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |table: &str, work: &str| {
        if !out.iter().any(|(t, _)| t == table) {
            out.push((table.to_string(), work.to_string()));
        }
    };
    // A rewrite is `rewrites-table`'s whatever lock it runs under: not repeated here.
    let rewritten: Vec<&str> = st.rewritten.iter().map(|(t, _)| t.as_str()).collect();
    let mut add = |table: &str, work: &str| {
        if !rewritten.contains(&table) {
            add(table, work);
        }
    };
    for l in st.locks.iter().filter(|l| l.preexisting) {
        let index_build = l.mode == "ShareLock" && l.relation == l.table;
        if index_build {
            add(&l.table, "builds an index (reads every row)");
        }
    }
    for table in &st.scanned {
        let upper = st.text.to_ascii_uppercase();
        let work = if upper.contains("FOREIGN KEY") {
            "validates a foreign key (reads every row)"
        } else if upper.contains("NOT NULL") {
            "checks NOT NULL (reads every row)"
        } else if upper.contains("CHECK") {
            "validates a CHECK constraint (reads every row)"
        } else {
            "reads every row"
        };
        add(table, work);
    }
    for rc in st
        .row_changes
        .iter()
        .filter(|r| r.updated > 0 || r.deleted > 0)
    {
        add(&rc.table, "updates or deletes existing rows");
    }
    out
}
