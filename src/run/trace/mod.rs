//! Runs new migrations statement by statement on a seeded clone of the base database, inside the
//! transaction boundaries the tool uses, and records what each statement really did.
//!
//! Around every statement: relation locks newly held by our backend (mode, relation, whether it
//! existed before the pull request), relations whose `relfilenode` changed (rewrites), relations
//! scanned (`pg_stat_xact_user_tables`), the catalog changes (tables, columns, schemas, enum
//! labels; renames found by OID), rows inserted/updated/deleted per table, the duration, and the
//! session's `lock_timeout`. A file that cannot be split exactly runs whole: the trace is per file.
//!
//! Boundaries: Prisma ≤ 7.3 runs a file as one transaction (`BEGIN` … statements … `COMMIT`);
//! ≥ 7.4 commits each statement. A file with its own transaction control, or whose only statement
//! refuses transactions, runs in autocommit as the tool would.
//!
//! Cost. Inside a transaction a statement can only change a relation it locks, and the lock is
//! held until commit; so after a statement the trace reads only the relations our backend holds a
//! lock on (with their columns and counters) and compares them with what it knows of the clone:
//! the baseline, updated with every statement's reading (a table rewritten by one migration and
//! altered by the next is compared with its state after the first). Renames of schemas and types,
//! and enum labels, change without a relation lock: this transaction's row counters of
//! `pg_namespace`, `pg_type` and `pg_enum` tell whether to read those again (a schema change
//! compares the whole scope). Autocommit files release their locks before the statement returns:
//! they are compared on full snapshots of the scope, as is every statement with
//! [`Baseline::full_snapshots`]. What this relies on: a table scanned only inside a PL/pgSQL
//! block whose error was caught loses its lock with the subtransaction, so statements that run
//! code directly (`DO`, `CALL`, `SELECT`) read the counters of every scope table.
//!
//! The parts: `snapshot` (the catalog facts and their queries), `known` (the
//! lock-following state and `known::observe_locked`), `observe` (comparing before and after a
//! statement), `rows` (row counts, fingerprints, the [`baseline`]), `apply` (running a file
//! the way the tool would: [`trace_migration`]). This module holds the results
//! ([`MigrationTrace`], [`StatementTrace`]) and the lock vocabulary ([`lock_words`]).

use std::collections::HashMap;
use std::time::Duration;

use super::Failure;
use super::scope::Scope;

mod apply;
mod known;
mod observe;
mod rows;
mod snapshot;

use known::Known;

pub use apply::trace_migration;
pub use rows::{baseline, baseline_within};
pub use snapshot::{Col, Rel, Snapshot, display_ident, snapshot};

/// A lock taken by a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockTaken {
    pub relation: String,
    /// The table the relation belongs to (itself, or an index's table).
    pub table: String,
    /// That table's OID (stable across renames).
    pub table_oid: i64,
    pub mode: String,
    /// The relation existed before the pull request's migrations.
    pub preexisting: bool,
}

/// Row changes on a pre-existing table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowChanges {
    pub table: String,
    pub updated: i64,
    pub deleted: i64,
    /// Rows in the table before the statement, when it was truncated or rewritten.
    pub truncated_from: Option<i64>,
    /// The update changed values of columns that existed before the pull request.
    pub changed_existing_columns: bool,
}

/// What one statement (or one whole file) did.
#[derive(Debug, Clone, Default)]
pub struct StatementTrace {
    /// Byte range in the file.
    pub start: usize,
    pub end: usize,
    pub line: usize,
    pub column: usize,
    pub text: String,
    pub duration: Duration,
    pub rows_affected: u64,
    pub locks: Vec<LockTaken>,
    /// Pre-existing tables rewritten (new relfilenode), with their row count.
    pub rewritten: Vec<(String, i64)>,
    /// Pre-existing tables scanned.
    pub scanned: Vec<String>,
    pub dropped_tables: Vec<String>,
    /// (table, column, type)
    pub dropped_columns: Vec<(String, String, String)>,
    pub dropped_schemas: Vec<String>,
    /// (type, labels removed)
    pub dropped_enum_values: Vec<(String, Vec<String>)>,
    /// (old qualified, new qualified)
    pub renamed_tables: Vec<(String, String)>,
    /// (table, old, new)
    pub renamed_columns: Vec<(String, String, String)>,
    /// (table, column, old type, new type)
    pub type_changes: Vec<(String, String, String, String)>,
    pub row_changes: Vec<RowChanges>,
    pub lock_timeout: String,
}

/// What one migration did.
#[derive(Debug, Clone)]
pub struct MigrationTrace {
    pub name: String,
    pub path: String,
    /// false: the file could not be split exactly and ran whole (one trace entry).
    pub per_statement: bool,
    /// The whole file ran as one transaction (Prisma ≤ 7.3 without its own transaction
    /// control): a lock any statement took is held until the file's end.
    pub one_transaction: bool,
    /// Traced after an earlier migration of the pull request failed in the seeded run: on a fresh
    /// seeded copy where every earlier migration ran without rows (this names the last one that
    /// failed), leaving out those that fail even without rows ([`MigrationTrace::without`]).
    pub resumed_after: Option<String>,
    /// Earlier migrations left out of the copy this one was traced on (they fail outright).
    pub without: Vec<String>,
    pub statements: Vec<StatementTrace>,
    pub failure: Option<Failure>,
}

/// The world before the pull request: relations, columns and row fingerprints of the seeded base.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    pub snap: Snapshot,
    /// The tables seeded and observed (the rest is out of the migrations' reach).
    pub scope: Scope,
    /// table oid → row count
    pub rows: HashMap<i64, i64>,
    /// table oid → md5 of its rows over the pre-existing columns
    pub fingerprints: HashMap<i64, String>,
    /// Pre-existing enums by name → the labels last seen under that name.
    pub enum_labels: HashMap<String, Vec<String>>,
    /// Compare full snapshots of the scope around every statement instead of following the
    /// locks (the reference the lock-following observation is tested against).
    pub full_snapshots: bool,
    /// What the trace knows of the clone between statements.
    known: Known,
}

/// Table lock modes, weakest first.
const LOCK_ORDER: [&str; 8] = [
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
];

/// How strong a lock mode is ("AccessExclusiveLock" highest; unknown modes lowest).
pub fn lock_strength(mode: &str) -> usize {
    LOCK_ORDER.iter().position(|m| *m == mode).unwrap_or(0)
}

/// The strongest lock a migration took on a pre-existing table, e.g. ("ACCESS EXCLUSIVE", table).
pub fn strongest_lock(t: &MigrationTrace) -> Option<(String, String)> {
    t.statements
        .iter()
        .flat_map(|s| s.locks.iter())
        .filter(|l| l.preexisting)
        // The first of equally strong locks: the table the migration locked first.
        .fold(None::<&LockTaken>, |best, l| match best {
            Some(b) if lock_strength(&b.mode) >= lock_strength(&l.mode) => Some(b),
            _ => Some(l),
        })
        .map(|l| (lock_words(&l.mode).to_string(), l.table.clone()))
}

/// "AccessExclusiveLock" → "ACCESS EXCLUSIVE".
pub fn lock_words(mode: &str) -> &'static str {
    match mode {
        "AccessShareLock" => "ACCESS SHARE",
        "RowShareLock" => "ROW SHARE",
        "RowExclusiveLock" => "ROW EXCLUSIVE",
        "ShareUpdateExclusiveLock" => "SHARE UPDATE EXCLUSIVE",
        "ShareLock" => "SHARE",
        "ShareRowExclusiveLock" => "SHARE ROW EXCLUSIVE",
        "ExclusiveLock" => "EXCLUSIVE",
        "AccessExclusiveLock" => "ACCESS EXCLUSIVE",
        _ => "UNKNOWN",
    }
}
