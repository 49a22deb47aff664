//! Fills the base tables the new migrations reach with a few synthetic rows before they run, so
//! that what only fails on real data (a NOT NULL column without default, a unique index on
//! duplicated values, a narrowing cast) fails here too, and rewrites and deletions touch rows.
//!
//! Rows are valid rows: every foreign key points at a real parent row and every CHECK holds (no
//! trigger is disabled; the server checks each row as it would in production). So:
//!
//! - tables go parents first; a foreign-key cycle (`users` ↔ `accounts`) is broken at its
//!   nullable keys, written NULL and then pointed at a parent row, or at its deferrable ones
//!   (`order`); a self-reference points at another row, or at the row itself when NOT NULL;
//! - values follow the column's type (`values`): enum labels, domains by their base type, arrays,
//!   json, uuid…; generated columns are never written, defaulted ones left to their defaults;
//! - keys never collide with rows the history inserted, and the sequences and identities behind
//!   them are moved past the rows written, so a migration's own INSERT gets a fresh key
//!   (`insert`, `fill`);
//! - a CHECK, a domain or a partition bound that refuses the synthetic values gets values the
//!   server finds it accepts (`candidates`); partitioned tables are filled through the parent.
//!
//! A table that still cannot be filled is skipped, and [`SeedReport::coverage`] says which and
//! why. `seed:` in the config adds the team's own SQL afterwards.

mod candidates;
mod catalog;
mod fill;
mod insert;
mod order;
mod values;

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{AssertSqlSafe, PgConnection};

use super::focus::Focus;
use super::scope::Scope;
use catalog::Table;
use fill::{Filled, exec};
use insert::{Fresh, Target};
use order::Step;

/// Rows per table.
pub const ROWS: i64 = 3;

/// What seeding did.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    /// Tables filled, with the number of synthetic rows written.
    pub filled: BTreeMap<String, i64>,
    /// Tables skipped, with the reason.
    pub skipped: Vec<(String, String)>,
    /// The tables seeding set out to fill (those the new migrations reach, or all).
    pub reached: BTreeSet<String>,
    /// Every table of the base was to be filled (not only those the migrations reach).
    pub every_table: bool,
    /// What went wrong beyond single tables (sequences left where they were).
    pub problems: Vec<String>,
}

impl SeedReport {
    /// "seeded 41 of 43 tables the new migrations reach; skipped …: why".
    pub fn coverage(&self) -> String {
        let of = if self.every_table {
            "tables of the base"
        } else {
            "tables the new migrations reach"
        };
        if self.reached.is_empty() {
            return "the new migrations reach no table of the base: none seeded".into();
        }
        let (n, of_n) = (self.filled.len(), self.reached.len());
        let mut out = format!("seeded {n} of {of_n} {of}");
        if !self.skipped.is_empty() {
            let list: Vec<String> = self
                .skipped
                .iter()
                .map(|(t, why)| format!("{t} ({why})"))
                .collect();
            out.push_str(&format!("; skipped {}", list.join(", ")));
        }
        for p in &self.problems {
            out.push_str(&format!("; {p}"));
        }
        out
    }

    /// Add what seeding another copy did (the seeded run resumed after a failure): the tables
    /// either reached, those filled in either, and the skipped ones filled in neither.
    pub fn merge(&mut self, other: SeedReport) {
        self.reached.extend(other.reached);
        for (t, n) in other.filled {
            let rows = self.filled.entry(t).or_default();
            *rows = (*rows).max(n);
        }
        self.skipped.extend(other.skipped);
        let mut seen = BTreeSet::new();
        let filled = &self.filled;
        self.skipped
            .retain(|(t, _)| !filled.contains_key(t) && seen.insert(t.clone()));
        self.every_table |= other.every_table;
        for p in other.problems {
            if !self.problems.contains(&p) {
                self.problems.push(p);
            }
        }
    }
}

/// Fill the tables of `focus` but those named in `exclude`, in the database `conn` is connected
/// to (as a superuser, so row-level security does not hide rows).
pub async fn seed(
    conn: &mut PgConnection,
    exclude: &[String],
    focus: &Focus,
) -> Result<SeedReport, SeedError> {
    let scope = &focus.scope;
    let tables = catalog::tables(conn, exclude, scope)
        .await
        .map_err(|source| SeedError::ReadTables { source })?;
    let mut report = match seed_once(conn, &tables, true).await? {
        Some(report) => report,
        // A deferred key found no parent row: the rows were rolled back; without deferring.
        None => seed_once(conn, &tables, false).await?.unwrap_or_default(),
    };
    report.reached = tables.iter().map(|t| t.qualified.clone()).collect();
    report.every_table = *scope == Scope::All;
    analyze(conn, focus, &tables).await;
    Ok(report)
}

/// One seeding transaction; `None` (rolled back) when a deferred key could not be fixed.
async fn seed_once(
    conn: &mut PgConnection,
    tables: &[Table],
    deferrable: bool,
) -> Result<Option<SeedReport>, SeedError> {
    let tx = |source| SeedError::Transaction { source };
    let steps = order::order(tables, deferrable);
    let referenced = referenced(tables);
    let mut p = Progress::default();
    exec(conn, "BEGIN").await.map_err(tx)?;
    for batch in steps.chunk_by(|a, b| a.batch == b.batch) {
        let results = fill_batch(conn, tables, batch, &p.fresh, &referenced).await?;
        for (s, result) in batch.iter().zip(results) {
            p.record(conn, &tables[s.table], s, result, &referenced)
                .await?;
        }
    }
    let fixed = fill::fix_keys(conn, tables, &steps, &p.filled, &p.fresh, &referenced);
    if !fixed.await.map_err(tx)? {
        exec(conn, "ROLLBACK").await.map_err(tx)?;
        return Ok(None);
    }
    let advanced = fill::advance_sequences_and_commit(conn, tables, &p.fresh);
    if let Err(why) = advanced.await.map_err(tx)? {
        p.report.problems.push(format!(
            "sequences not advanced past the seeded keys: {why}"
        ));
    }
    Ok(Some(p.report))
}

/// Fill the tables of one batch: in one message when there are several, else (or when that
/// fails) one by one.
async fn fill_batch(
    conn: &mut PgConnection,
    tables: &[Table],
    batch: &[Step],
    fresh: &Fresh,
    referenced: &[Vec<Vec<String>>],
) -> Result<Vec<Filled>, SeedError> {
    let targets: Vec<(Target, &Step)> = batch
        .iter()
        .map(|s| (target(tables, s, fresh, referenced), s))
        .collect();
    if targets.len() > 1
        && let Some(filled) = fill::fill_batch(conn, &targets, ROWS)
            .await
            .map_err(|source| SeedError::Transaction { source })?
    {
        return Ok(filled);
    }
    let mut out = Vec::new();
    for (x, s) in &targets {
        let fill_err = |source| SeedError::Fill {
            table: x.t.qualified.clone(),
            source,
        };
        out.push(fill::fill(conn, x, s, ROWS).await.map_err(fill_err)?);
    }
    Ok(out)
}

/// What one seeding has written so far.
#[derive(Default)]
struct Progress {
    report: SeedReport,
    /// The rows written, by table index.
    filled: BTreeMap<usize, Vec<String>>,
    fresh: Fresh,
}

impl Progress {
    /// Note what filling `t` (step `s`) gave: its rows and keys, or why it was skipped.
    async fn record(
        &mut self,
        conn: &mut PgConnection,
        t: &Table,
        s: &Step,
        result: Filled,
        referenced: &[Vec<Vec<String>>],
    ) -> Result<(), SeedError> {
        match result {
            Filled::Rows { ids, keys } => {
                self.report
                    .filled
                    .insert(t.qualified.clone(), ids.len() as i64);
                self.filled.insert(s.table, ids);
                for (set, rows) in referenced[s.table].iter().zip(keys) {
                    let rows = rows.into_iter().filter(|r| r.iter().all(Option::is_some));
                    self.fresh.insert((t.oid, set.clone()), rows.collect());
                }
            }
            Filled::Skipped(why) => {
                let why =
                    with_history_rows(conn, t, why)
                        .await
                        .map_err(|source| SeedError::Fill {
                            table: t.qualified.clone(),
                            source,
                        })?;
                self.report.skipped.push((t.qualified.clone(), why));
            }
        }
        Ok(())
    }
}

/// What the statements for step `s` are built from.
fn target<'a>(
    tables: &'a [Table],
    s: &'a Step,
    fresh: &'a Fresh,
    referenced: &'a [Vec<Vec<String>>],
) -> Target<'a> {
    Target {
        t: &tables[s.table],
        links: &s.links,
        fresh,
        referenced: &referenced[s.table],
        tag: s.table,
    }
}

/// Per table (by index), the column sets whose written values are needed back: those the
/// foreign keys of `tables` reference, and the key columns a sequence is behind.
fn referenced(tables: &[Table]) -> Vec<Vec<Vec<String>>> {
    tables
        .iter()
        .map(|t| {
            let mut sets: Vec<Vec<String>> = tables
                .iter()
                .flat_map(|c| &c.fks)
                .filter(|fk| fk.parent == t.oid)
                .map(|fk| fk.parent_cols.clone())
                .collect();
            sets.extend(
                t.sequences
                    .iter()
                    .filter(|(c, _)| t.is_key(c))
                    .map(|(c, _)| vec![c.clone()]),
            );
            sets.sort();
            sets.dedup();
            sets
        })
        .collect()
}

/// `why`, and how many rows the table holds from the history when it holds some (it is not
/// empty, only not seeded).
async fn with_history_rows(
    conn: &mut PgConnection,
    t: &Table,
    why: String,
) -> Result<String, sqlx::Error> {
    let sql = format!("SELECT count(*)::int8 FROM {}", t.qualified);
    let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await?;
    Ok(match n {
        0 => why,
        1 => format!("{why}; it holds 1 row from the base's migrations"),
        n => format!("{why}; it holds {n} rows from the base's migrations"),
    })
}

/// Why [`seed`] stopped (a table that cannot be filled is skipped, not an error).
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// Reading the tables, their columns and foreign keys.
    #[error("reading the tables to fill: {source}")]
    ReadTables {
        #[source]
        source: sqlx::Error,
    },
    /// Opening or committing the transaction the rows are inserted in.
    #[error("{source}")]
    Transaction {
        #[source]
        source: sqlx::Error,
    },
    /// The savepoint around one table's rows could not be set, released or rolled back to.
    #[error("filling {table}: {source}")]
    Fill {
        table: String,
        #[source]
        source: sqlx::Error,
    },
}

impl SeedError {
    /// The database error underneath, for callers that present database errors their own way.
    pub fn db_error(&self) -> &sqlx::Error {
        match self {
            SeedError::ReadTables { source }
            | SeedError::Transaction { source }
            | SeedError::Fill { source, .. } => source,
        }
    }
}

/// Statistics for the tables the migrations name (every table when the run seeds them all), so
/// their statements are planned on what the tables hold. The foreign-key ancestors seeded only
/// so that rows have parents are left out: with rows in them, analyzing hundreds of them cost more
/// than seeding them, and nothing the trace observes depends on their plans (a scan counts
/// whether it is sequential or by index).
async fn analyze(conn: &mut PgConnection, focus: &Focus, tables: &[Table]) {
    let analyze = match &focus.scope {
        Scope::All => "ANALYZE".to_string(),
        Scope::Only(_) => {
            let named: Vec<&str> = tables
                .iter()
                .filter(|t| focus.named.contains(&t.oid))
                .map(|t| t.qualified.as_str())
                .collect();
            match named.is_empty() {
                true => String::new(),
                false => format!("ANALYZE {}", named.join(", ")),
            }
        }
    };
    if !analyze.is_empty() {
        let _ = exec(conn, &analyze).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_states_the_numbers() {
        let mut r = SeedReport {
            reached: ["User", "Account", "Ledger"]
                .map(|t| format!("\"public\".\"{t}\""))
                .into(),
            ..SeedReport::default()
        };
        r.filled.insert("\"public\".\"User\"".into(), 3);
        r.filled.insert("\"public\".\"Account\"".into(), 3);
        r.skipped
            .push(("\"public\".\"Ledger\"".into(), "no value generator".into()));
        assert_eq!(
            r.coverage(),
            "seeded 2 of 3 tables the new migrations reach; skipped \"public\".\"Ledger\" (no value generator)"
        );
        r.every_table = true;
        assert!(
            r.coverage()
                .starts_with("seeded 2 of 3 tables of the base;")
        );
        let mut other = SeedReport {
            reached: ["Ledger", "Invoice"]
                .map(|t| format!("\"public\".\"{t}\""))
                .into(),
            every_table: false,
            ..SeedReport::default()
        };
        other.filled.insert("\"public\".\"Ledger\"".into(), 1);
        other.filled.insert("\"public\".\"Invoice\"".into(), 3);
        r.every_table = false;
        r.merge(other);
        assert_eq!(
            r.coverage(),
            "seeded 4 of 4 tables the new migrations reach"
        );
        let none = SeedReport::default();
        assert_eq!(
            none.coverage(),
            "the new migrations reach no table of the base: none seeded"
        );
    }
}
