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

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, PgConnection};

use super::Failure;
use super::focus::Scope;
use super::prisma::{RawError, Semantics, locate};
use crate::discover::Migration;
use crate::provision::quote_ident;
use crate::sql::position::line_col;
use crate::sql::split::{self, is_non_transactional, is_transaction_control};

/// A relation as the catalog shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rel {
    pub schema: String,
    pub name: String,
    /// r table, p partitioned, m matview, i index, S sequence, v view
    pub kind: String,
    pub filenode: i64,
}

impl Rel {
    /// `schema.name` quoted the way PostgreSQL prints it (`public."User"`).
    pub fn qualified(&self) -> String {
        format!(
            "{}.{}",
            display_ident(&self.schema),
            display_ident(&self.name)
        )
    }
    pub fn is_table(&self) -> bool {
        self.kind == "r" || self.kind == "p" || self.kind == "m"
    }
}

/// An identifier quoted only when PostgreSQL would need it.
pub fn display_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        quote_ident(name)
    }
}

/// A column as the catalog shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Col {
    pub name: String,
    pub type_sql: String,
    pub not_null: bool,
    /// The type's OID and modifier: a renamed type keeps its OID, so it is not a type change.
    pub type_oid: i64,
    pub typmod: i32,
    pub is_enum: bool,
}

/// The catalog facts the trace compares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub rels: HashMap<i64, Rel>,
    /// (table oid, attnum) → column
    pub cols: HashMap<(i64, i16), Col>,
    pub schemas: HashMap<i64, String>,
    /// enum type oid → (qualified name, labels in order)
    pub enums: HashMap<i64, (String, Vec<String>)>,
    /// table oid → (seq_scan + idx_scan, n_tup_ins, n_tup_upd, n_tup_del) in this transaction
    pub stats: HashMap<i64, (i64, i64, i64, i64)>,
    /// relation oid → lock modes held by our backend
    pub locks: HashMap<i64, BTreeSet<String>>,
    pub lock_timeout: String,
}

const USER_NS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

type RelRow = (i64, String, String, String, i64);
type ColRow = (i64, i16, String, String, bool, i64, i32, bool);

/// The columns of a relation row (`RelRow`), from `pg_class c` and `pg_namespace n`.
const REL: &str =
    "c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text, c.relfilenode::int8";
const REL_KINDS: &str = "c.relkind IN ('r','p','m','i','S','v','I')";

/// The columns of the tables among the OIDs `$1`.
fn cols_of_sql() -> String {
    format!(
        "{COLS} FROM unnest($1::int8[]::oid[]) AS r(oid) JOIN pg_class c ON c.oid = r.oid \
         JOIN pg_attribute a ON a.attrelid = r.oid JOIN pg_type t ON t.oid = a.atttypid \
         WHERE c.relkind IN ('r','p') AND a.attnum > 0 AND NOT a.attisdropped"
    )
}

/// The columns of a column row (`ColRow`), from `pg_attribute a` and `pg_type t`.
const COLS: &str = "SELECT a.attrelid::int8, a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atttypid::int8, a.atttypmod, t.typtype = 'e'";

/// What pg_stat_xact_user_tables shows (seq_scan + idx_scan, n_tup_ins/upd/del), read straight
/// from the functions behind it for the tables among the OIDs `$1`.
const STATS_OF: &str = "SELECT r.oid::int8, (pg_stat_get_xact_numscans(r.oid) + COALESCE((SELECT sum(pg_stat_get_xact_numscans(i.indexrelid)) \
        FROM pg_index i WHERE i.indrelid = r.oid), 0))::int8, \
        pg_stat_get_xact_tuples_inserted(r.oid)::int8, pg_stat_get_xact_tuples_updated(r.oid)::int8, \
        pg_stat_get_xact_tuples_deleted(r.oid)::int8 \
 FROM unnest($1::int8[]::oid[]) AS r(oid)";

/// The relation locks our backend holds in this database: `rel`, `mode`.
const LOCKS: &str = "SELECT relation::int8 AS rel, mode::text AS mode FROM pg_locks \
    WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted \
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

fn insert_cols(cols: &mut HashMap<(i64, i16), Col>, rows: Vec<ColRow>) {
    for (rel, num, name, type_sql, not_null, type_oid, typmod, is_enum) in rows {
        cols.insert(
            (rel, num),
            Col {
                name,
                type_sql,
                not_null,
                type_oid,
                typmod,
                is_enum,
            },
        );
    }
}

/// Every enum type of the user's schemas: oid → (qualified name, labels in order).
async fn read_enums(
    conn: &mut PgConnection,
) -> Result<HashMap<i64, (String, Vec<String>)>, sqlx::Error> {
    let rows: Vec<(i64, String, Vec<String>)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT t.oid::int8, quote_ident(n.nspname) || '.' || quote_ident(t.typname), \
                COALESCE((SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '{{}}') \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype = 'e' AND {USER_NS}"
    )))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(oid, name, labels)| (oid, (name, labels)))
        .collect())
}

/// The transaction counters of the tables among `oids`.
async fn read_stats(
    conn: &mut PgConnection,
    oids: &[i64],
) -> Result<HashMap<i64, Counters>, sqlx::Error> {
    if oids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(STATS_OF)
        .bind(oids)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(oid, s, i, u, d)| (oid, (s, i, u, d)))
        .collect())
}

/// Read the catalog facts. With `Scope::Only`, columns and statistics are read for the focus
/// tables only, and relations for the focus tables, their indexes and whatever our backend holds
/// a lock on (`all_rels` reads every relation: the baseline needs them all to tell pre-existing
/// relations from new ones). Whatever a statement does outside the focus shows as a lock, which
/// [`super::focus::outside`] turns into a full re-run, so nothing observed is lost.
pub async fn snapshot(
    conn: &mut PgConnection,
    scope: &Scope,
    all_rels: bool,
) -> Result<Snapshot, sqlx::Error> {
    let oids: Vec<i64> = match scope {
        Scope::All => Vec::new(),
        Scope::Only(set) => set.iter().copied().collect(),
    };
    let scoped = matches!(scope, Scope::Only(_));
    // Scoped queries start from the (short) list of OIDs, so they cost the same at 5,000
    // migrations as at 50.
    let rels_sql = if scoped && !all_rels {
        format!(
            "WITH ids AS (SELECT unnest($1::int8[]::oid[]) AS oid \
               UNION SELECT i.indexrelid FROM pg_index i WHERE i.indrelid = ANY($1::int8[]::oid[]) \
               UNION SELECT l.relation FROM pg_locks l WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation') \
             SELECT {REL} FROM ids JOIN pg_class c ON c.oid = ids.oid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE {USER_NS} AND {REL_KINDS}"
        )
    } else {
        format!(
            "SELECT {REL} FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER_NS} AND {REL_KINDS} \
             AND ($1::int8[] IS NOT NULL)"
        )
    };
    let rels: Vec<RelRow> = sqlx::query_as(AssertSqlSafe(rels_sql))
        .bind(&oids)
        .fetch_all(&mut *conn)
        .await?;
    let cols_sql = if scoped {
        cols_of_sql()
    } else {
        format!(
            "{COLS} FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE {USER_NS} AND c.relkind IN ('r','p') AND a.attnum > 0 AND NOT a.attisdropped \
             AND ($1::int8[] IS NOT NULL)"
        )
    };
    let cols: Vec<ColRow> = sqlx::query_as(AssertSqlSafe(cols_sql))
        .bind(&oids)
        .fetch_all(&mut *conn)
        .await?;
    let schemas: Vec<(i64, String)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT n.oid::int8, n.nspname::text FROM pg_namespace n WHERE {USER_NS}"
    )))
    .fetch_all(&mut *conn)
    .await?;
    let enums = read_enums(conn).await?;
    let stats_sql = if scoped {
        STATS_OF
    } else {
        "SELECT relid::int8, (COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0))::int8, n_tup_ins::int8, n_tup_upd::int8, n_tup_del::int8 \
         FROM pg_stat_xact_user_tables WHERE ($1::int8[] IS NOT NULL)"
    };
    let stats: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(stats_sql)
        .bind(&oids)
        .fetch_all(&mut *conn)
        .await?;
    let locks: Vec<(i64, String)> =
        sqlx::query_as(AssertSqlSafe(format!("SELECT rel, mode FROM ({LOCKS}) l")))
            .fetch_all(&mut *conn)
            .await?;
    let lock_timeout: (String,) = sqlx::query_as("SELECT current_setting('lock_timeout')")
        .fetch_one(&mut *conn)
        .await?;
    let mut snap = Snapshot {
        lock_timeout: lock_timeout.0,
        ..Snapshot::default()
    };
    for (oid, schema, name, kind, filenode) in rels {
        snap.rels.insert(
            oid,
            Rel {
                schema,
                name,
                kind,
                filenode,
            },
        );
    }
    insert_cols(&mut snap.cols, cols);
    snap.schemas = schemas.into_iter().collect();
    snap.enums = enums;
    for (oid, scans, ins, upd, del) in stats {
        snap.stats.insert(oid, (scans, ins, upd, del));
    }
    for (oid, mode) in locks {
        snap.locks.entry(oid).or_default().insert(mode);
    }
    Ok(snap)
}

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

/// Scans (seq + idx), rows inserted, updated, deleted in this transaction.
type Counters = (i64, i64, i64, i64);

/// OIDs below this (FirstNormalObjectId) belong to the system catalogs.
const FIRST_USER_OID: i64 = 16384;

/// What the trace knows of the seeded clone between statements, kept current from what each
/// statement locked.
#[derive(Debug, Clone, Default)]
struct Known {
    /// false: read it all again before relying on it (after an autocommit file, a failure, a
    /// schema change or a failed read).
    valid: bool,
    /// rels: every relation of the user's schemas; cols: the tracked tables' ([`tracked`]);
    /// schemas; enums. Its `stats` and `locks` are unused.
    snap: Snapshot,
    /// index oid → table oid: all of pg_index, as [`index_tables`] reads it.
    index_table: HashMap<i64, i64>,
    /// The tracked tables whose transaction counters may not be 0 → the values read last.
    stats: HashMap<i64, Counters>,
    /// `stats` holds this transaction's exact values (and every other tracked table's are 0).
    stats_exact: bool,
    /// `pg_stat_force_next_flush()` can be called (PostgreSQL ≥ 15); None: not asked yet.
    flush: Option<bool>,
}

/// What our session shows around a statement, read in one round trip.
#[derive(Debug, Clone, Default)]
struct Probe {
    locks: HashMap<i64, BTreeSet<String>>,
    lock_timeout: String,
    /// `current_schemas(true)`: how `format_type` qualifies type names.
    search_path: String,
    /// Rows inserted, updated, deleted by this transaction in pg_namespace (0..3), pg_type
    /// (3..6) and pg_enum (6..9): whether schemas, type names or enum labels may have changed.
    catalog: Vec<i64>,
    /// Without `track_counts` the catalog counters stay 0 and say nothing.
    track_counts: bool,
}

/// A pre-existing table of the scope: the tables whose columns and counters are compared.
fn tracked(base: &Baseline, oid: i64) -> bool {
    base.scope.contains(oid) && base.snap.rels.get(&oid).is_some_and(Rel::is_table)
}

async fn probe(conn: &mut PgConnection) -> Result<Probe, sqlx::Error> {
    type Row = (String, String, bool, Vec<i64>, Vec<i64>, Vec<String>);
    let mut counters = Vec::new();
    for cat in ["pg_namespace", "pg_type", "pg_enum"] {
        for what in ["inserted", "updated", "deleted"] {
            counters.push(format!(
                "pg_stat_get_xact_tuples_{what}('pg_catalog.{cat}'::regclass)"
            ));
        }
    }
    let sql = format!(
        "WITH l AS ({LOCKS}) \
         SELECT current_setting('lock_timeout'), array_to_string(current_schemas(true), ','), \
                current_setting('track_counts')::bool, ARRAY[{}]::int8[], \
                COALESCE((SELECT array_agg(rel ORDER BY rel, mode) FROM l), '{{}}'), \
                COALESCE((SELECT array_agg(mode ORDER BY rel, mode) FROM l), '{{}}')",
        counters.join(", ")
    );
    let (lock_timeout, search_path, track_counts, catalog, rels, modes): Row =
        sqlx::query_as(AssertSqlSafe(sql))
            .fetch_one(&mut *conn)
            .await?;
    let mut locks: HashMap<i64, BTreeSet<String>> = HashMap::new();
    for (rel, mode) in rels.into_iter().zip(modes) {
        locks.entry(rel).or_default().insert(mode);
    }
    Ok(Probe {
        locks,
        lock_timeout,
        search_path,
        catalog,
        track_counts,
    })
}

/// Read what the trace knows from scratch: every relation, the tracked tables' columns, schemas,
/// enums; every tracked table's counters may be non-zero.
async fn load_known(conn: &mut PgConnection, base: &Baseline) -> Result<Known, sqlx::Error> {
    let snap = snapshot(conn, &base.scope, true).await?;
    let index_table = read_index_tables(conn).await?;
    Ok(known_from(base, snap, index_table))
}

fn known_from(base: &Baseline, mut snap: Snapshot, index_table: HashMap<i64, i64>) -> Known {
    snap.cols.retain(|(rel, _), _| tracked(base, *rel));
    snap.stats.clear();
    snap.locks.clear();
    let stats = base
        .snap
        .rels
        .keys()
        .filter(|oid| tracked(base, **oid))
        .map(|oid| (*oid, (0, 0, 0, 0)))
        .collect();
    Known {
        valid: true,
        snap,
        index_table,
        stats,
        stats_exact: false,
        flush: base.known.flush,
    }
}

/// Before a transaction starts: have the counters of earlier transactions flushed, so that this
/// one starts from 0 and reading them stays cheap (PostgreSQL ≥ 15; they are read anyway).
async fn flush_counters(conn: &mut PgConnection, known: &mut Known) {
    if known.stats.is_empty() {
        return;
    }
    if known.flush.is_none() {
        let ok: Result<(bool,), _> = sqlx::query_as(
            "SELECT COALESCE(has_function_privilege(to_regprocedure('pg_catalog.pg_stat_force_next_flush()'), 'EXECUTE'), false)",
        )
        .fetch_one(&mut *conn)
        .await;
        known.flush = Some(ok.is_ok_and(|r| r.0));
    }
    if known.flush == Some(true) {
        let _ = sqlx::raw_sql("SELECT pg_catalog.pg_stat_force_next_flush()")
            .execute(&mut *conn)
            .await;
    }
}

/// Inside a transaction, before a statement: the facts after the previous statement when they
/// are still current (`carried`), else read now; the counters of the tables that may have some,
/// once per transaction. None: a read failed (the statement is compared on full snapshots).
async fn lock_before(
    conn: &mut PgConnection,
    base: &mut Baseline,
    carried: Option<Probe>,
) -> Option<Probe> {
    if !base.known.valid {
        base.known = load_known(conn, base).await.ok()?;
    }
    let p = match carried {
        Some(p) => p,
        None => probe(conn).await.ok()?,
    };
    if !base.known.stats_exact {
        let oids: Vec<i64> = base.known.stats.keys().copied().collect();
        let now = read_stats(conn, &oids).await.ok()?;
        base.known.stats = now
            .into_iter()
            .filter(|(_, v)| *v != (0, 0, 0, 0))
            .collect();
        base.known.stats_exact = true;
    }
    Some(p)
}

/// The part of what is known that [`observe`] looks at: of the relations `oids` (all: None), those
/// a scoped snapshot holds (the scope's tables and their indexes, and the relations `locks`
/// names), and the columns of those tables.
fn known_view(
    base: &Baseline,
    locks: &HashMap<i64, BTreeSet<String>>,
    oids: Option<&BTreeSet<i64>>,
) -> Snapshot {
    let k = &base.known;
    let visible = |oid: i64| {
        base.scope.contains(oid)
            || k.index_table
                .get(&oid)
                .is_some_and(|t| base.scope.contains(*t))
            || locks.contains_key(&oid)
    };
    let rels = match oids {
        Some(set) => set
            .iter()
            .filter(|oid| visible(**oid))
            .filter_map(|oid| k.snap.rels.get(oid).map(|r| (*oid, r.clone())))
            .collect(),
        None => k
            .snap
            .rels
            .iter()
            .filter(|(oid, _)| visible(**oid))
            .map(|(oid, r)| (*oid, r.clone()))
            .collect(),
    };
    let cols = k
        .snap
        .cols
        .iter()
        .filter(|((rel, _), _)| oids.is_none_or(|set| set.contains(rel)))
        .map(|(key, col)| (*key, col.clone()))
        .collect();
    Snapshot {
        rels,
        cols,
        ..Snapshot::default()
    }
}

/// Update how `format_type` prints the types of the known columns (a type or its schema renamed,
/// another search path).
async fn refresh_type_names(conn: &mut PgConnection, known: &mut Known) -> Result<(), sqlx::Error> {
    let pairs: BTreeSet<(i64, i32)> = known
        .snap
        .cols
        .values()
        .map(|c| (c.type_oid, c.typmod))
        .collect();
    if pairs.is_empty() {
        return Ok(());
    }
    let (types, mods): (Vec<i64>, Vec<i32>) = pairs.into_iter().unzip();
    let rows: Vec<(i64, i32, Option<String>)> = sqlx::query_as(
        "SELECT u.t::int8, u.m, format_type(u.t, u.m) FROM unnest($1::int8[]::oid[], $2::int4[]) AS u(t, m)",
    )
    .bind(&types)
    .bind(&mods)
    .fetch_all(&mut *conn)
    .await?;
    let names: HashMap<(i64, i32), String> = rows
        .into_iter()
        .filter_map(|(t, m, n)| n.map(|n| ((t, m), n)))
        .collect();
    for col in known.snap.cols.values_mut() {
        if let Some(name) = names.get(&(col.type_oid, col.typmod))
            && *name != col.type_sql
        {
            col.type_sql = name.clone();
        }
    }
    Ok(())
}

/// The enum types of the user's schemas: oid → qualified name.
async fn enum_names(conn: &mut PgConnection) -> Result<HashMap<i64, String>, sqlx::Error> {
    let rows: Vec<(i64, String)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT t.oid::int8, quote_ident(n.nspname) || '.' || quote_ident(t.typname) FROM pg_type t \
         JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype = 'e' AND {USER_NS}"
    )))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Statements that run code themselves: what a PL/pgSQL block scanned and then lost with a
/// caught error's subtransaction shows in the counters but not in the locks.
fn runs_code(text: &str) -> bool {
    let upper = text.trim_start().to_ascii_uppercase();
    upper.starts_with("DO") || upper.starts_with("SELECT") || upper.starts_with("CALL")
}

/// After a statement inside a transaction: read what it can have changed (the relations our
/// backend holds a lock on, with their columns and counters; schemas, type names and enums when
/// the catalog counters moved), compare with what was known before it, and keep the result.
/// Returns the facts after the statement and whether `refine_row_changes` queried tables.
async fn observe_locked(
    conn: &mut PgConnection,
    before: &Probe,
    base: &mut Baseline,
    index_of: &HashMap<i64, i64>,
    st: &mut StatementTrace,
) -> Result<(Probe, bool), sqlx::Error> {
    let after = probe(conn).await?;
    let moved = |range: std::ops::Range<usize>| {
        after.catalog.get(range.clone()) != before.catalog.get(range)
    };
    if !after.track_counts || !before.track_counts || moved(0..3) {
        // A schema was created, renamed or dropped: relations change names without a lock.
        // Compare the whole scope, and read everything again before the next statement.
        let full = snapshot(conn, &base.scope, false).await?;
        let mut was = known_view(base, &before.locks, None);
        was.schemas = base.known.snap.schemas.clone();
        was.stats = base.known.stats.clone();
        was.locks = before.locks.clone();
        observe(&was, &full, base, index_of, st);
        base.known.valid = false;
        let refined = refine_row_changes(conn, &full, base, st).await;
        return Ok((after, !refined.is_empty()));
    }
    let locked: Vec<i64> = after
        .locks
        .keys()
        .copied()
        .filter(|oid| *oid >= FIRST_USER_OID)
        .collect();
    // (oid, schema, name, kind, filenode, table of an index, visible in a snapshot)
    type LockedRow = (i64, String, String, String, i64, i64, bool);
    let rows: Vec<LockedRow> = if locked.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {REL}, COALESCE(i.indrelid::int8, 0), ({USER_NS} AND {REL_KINDS}) \
             FROM unnest($1::int8[]::oid[]) AS r(oid) JOIN pg_class c ON c.oid = r.oid \
             JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_index i ON i.indexrelid = c.oid"
        )))
        .bind(&locked)
        .fetch_all(&mut *conn)
        .await?
    };
    // What to compare: the relations locked before or after, and the tables of locked indexes.
    let mut cand: BTreeSet<i64> = locked.iter().copied().collect();
    cand.extend(before.locks.keys().filter(|oid| **oid >= FIRST_USER_OID));
    for oid in &locked {
        cand.extend(index_of.get(oid));
        cand.extend(base.known.index_table.get(oid));
    }
    cand.extend(rows.iter().map(|r| r.5).filter(|t| *t != 0));
    let mut was = known_view(base, &before.locks, Some(&cand));
    // Counters: of the tracked tables among those (of every tracked table for code that can lose
    // its locks with a subtransaction).
    let counted: Vec<i64> = if runs_code(&st.text) {
        match &base.scope {
            Scope::Only(set) => set.iter().copied().filter(|o| tracked(base, *o)).collect(),
            Scope::All => base
                .snap
                .rels
                .keys()
                .copied()
                .filter(|o| tracked(base, *o))
                .collect(),
        }
    } else {
        cand.iter().copied().filter(|o| tracked(base, *o)).collect()
    };
    let stats = read_stats(conn, &counted).await?;
    let tables: Vec<i64> = locked
        .iter()
        .copied()
        .filter(|o| tracked(base, *o))
        .collect();
    let cols: Vec<ColRow> = if tables.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(AssertSqlSafe(cols_of_sql()))
            .bind(&tables)
            .fetch_all(&mut *conn)
            .await?
    };
    // Enums: labels move pg_enum; types created, renamed, moved or dropped move pg_type (as
    // every table created does), and when pg_enum did not move, their labels are the known ones
    // (none for a new type).
    let enums = if moved(6..9) {
        Some(read_enums(conn).await?)
    } else if moved(3..6) {
        let names = enum_names(conn).await?;
        let known = &base.known.snap.enums;
        let same = names.len() == known.len()
            && names
                .iter()
                .all(|(oid, name)| known.get(oid).is_some_and(|(n, _)| n == name));
        (!same).then(|| {
            names
                .into_iter()
                .map(|(oid, name)| {
                    let labels = known.get(&oid).map(|e| e.1.clone()).unwrap_or_default();
                    (oid, (name, labels))
                })
                .collect::<HashMap<_, _>>()
        })
    } else {
        None
    };
    let enums_moved = enums.is_some();
    // Keep what was read.
    let k = &mut base.known;
    let returned: HashSet<i64> = rows.iter().map(|r| r.0).collect();
    for oid in &locked {
        k.snap.rels.remove(oid);
        if !returned.contains(oid) {
            k.index_table.remove(oid);
        }
    }
    for (oid, schema, name, kind, filenode, table, visible) in rows {
        if table != 0 {
            k.index_table.insert(oid, table);
        }
        if visible {
            k.snap.rels.insert(
                oid,
                Rel {
                    schema,
                    name,
                    kind,
                    filenode,
                },
            );
        }
    }
    let tables: HashSet<i64> = tables.into_iter().collect();
    k.snap.cols.retain(|(rel, _), _| !tables.contains(rel));
    insert_cols(&mut k.snap.cols, cols);
    if let Some(e) = enums {
        k.snap.enums = e;
    }
    was.stats = counted
        .iter()
        .filter_map(|oid| k.stats.get(oid).map(|v| (*oid, *v)))
        .collect();
    was.locks = before.locks.clone();
    for (oid, v) in &stats {
        if *v == (0, 0, 0, 0) {
            k.stats.remove(oid);
        } else {
            k.stats.insert(*oid, *v);
        }
    }
    if moved(3..6) || after.search_path != before.search_path {
        refresh_type_names(conn, &mut base.known).await?;
    }
    let mut now = known_view(base, &after.locks, Some(&cand));
    if enums_moved {
        now.enums = base.known.snap.enums.clone();
    }
    now.stats = stats;
    now.locks = after.locks.clone();
    now.lock_timeout = after.lock_timeout.clone();
    observe(&was, &now, base, index_of, st);
    // Row counts read against everything known (the scope's tables).
    let snap = std::mem::take(&mut base.known.snap);
    let refined = refine_row_changes(conn, &snap, base, st).await;
    base.known.snap = snap;
    if !refined.is_empty() {
        // Counted tables were scanned: read their counters again before the next statement.
        for oid in &refined {
            base.known.stats.entry(*oid).or_insert((0, 0, 0, 0));
        }
        base.known.stats_exact = false;
    }
    Ok((after, !refined.is_empty()))
}

async fn count(conn: &mut PgConnection, rel: &Rel) -> i64 {
    try_count(conn, rel).await.unwrap_or(0)
}

async fn try_count(conn: &mut PgConnection, rel: &Rel) -> Result<i64, sqlx::Error> {
    let sql = format!("SELECT count(*)::int8 FROM {}", rel.qualified());
    sqlx::query_as::<_, (i64,)>(AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await
        .map(|r| r.0)
}

/// The query fingerprinting the rows of `rel` over `cols`.
fn fingerprint_sql(rel: &Rel, cols: &[String]) -> String {
    let list = cols
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT md5(COALESCE(string_agg(t::text, '|' ORDER BY t::text), ''))::text FROM (SELECT {list} FROM {}) t",
        rel.qualified()
    )
}

async fn fingerprint(conn: &mut PgConnection, rel: &Rel, cols: &[String]) -> Option<String> {
    try_fingerprint(conn, rel, cols).await.ok().flatten()
}

async fn try_fingerprint(
    conn: &mut PgConnection,
    rel: &Rel,
    cols: &[String],
) -> Result<Option<String>, sqlx::Error> {
    if cols.is_empty() {
        return Ok(None);
    }
    let sql = fingerprint_sql(rel, cols);
    sqlx::query_as::<_, (String,)>(AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await
        .map(|r| Some(r.0))
}

fn table_columns(snap: &Snapshot, oid: i64) -> Vec<String> {
    let mut cols: Vec<(i16, String)> = snap
        .cols
        .iter()
        .filter(|((r, _), _)| *r == oid)
        .map(|((_, n), c)| (*n, c.name.clone()))
        .collect();
    cols.sort();
    cols.into_iter().map(|(_, n)| n).collect()
}

/// Take the baseline (after seeding, before any new migration): the whole catalog, and row
/// counts and fingerprints of the tables in `scope` (the others are out of the migrations' reach,
/// which the caller checks against the locks taken: [`super::focus::outside`]).
pub async fn baseline(conn: &mut PgConnection, scope: &Scope) -> Result<Baseline, sqlx::Error> {
    let snap = snapshot(conn, scope, true).await?;
    let mut b = Baseline {
        snap: snap.clone(),
        scope: scope.clone(),
        ..Baseline::default()
    };
    if let Ok(index_table) = read_index_tables(conn).await {
        b.known = known_from(&b, snap.clone(), index_table);
    }
    b.enum_labels = snap.enums.values().cloned().collect();
    let tables: Vec<(i64, &Rel)> = snap
        .rels
        .iter()
        .filter(|(oid, rel)| rel.kind == "r" && scope.contains(**oid))
        .map(|(oid, rel)| (*oid, rel))
        .collect();
    // Many tables per round trip; a chunk that fails (a table the owner cannot read) is done
    // table by table, as before.
    for chunk in tables.chunks(BASELINE_CHUNK) {
        let parts: Vec<String> = chunk
            .iter()
            .map(|(oid, rel)| {
                let cols = table_columns(&snap, *oid);
                format!(
                    "SELECT {oid}::int8, (SELECT count(*) FROM {q})::int8, {fp}",
                    q = rel.qualified(),
                    fp = if cols.is_empty() {
                        "NULL::text".to_string()
                    } else {
                        format!("({})", fingerprint_sql(rel, &cols))
                    }
                )
            })
            .collect();
        let batch: Result<Vec<(i64, i64, Option<String>)>, _> =
            sqlx::query_as(AssertSqlSafe(parts.join(" UNION ALL ")))
                .fetch_all(&mut *conn)
                .await;
        match batch {
            Ok(rows) => {
                for (oid, n, fp) in rows {
                    b.rows.insert(oid, n);
                    if let Some(f) = fp {
                        b.fingerprints.insert(oid, f);
                    }
                }
            }
            Err(_) => {
                for (oid, rel) in chunk {
                    b.rows.insert(*oid, count(conn, rel).await);
                    if let Some(f) = fingerprint(conn, rel, &table_columns(&snap, *oid)).await {
                        b.fingerprints.insert(*oid, f);
                    }
                }
            }
        }
    }
    Ok(b)
}

/// Tables per baseline query.
const BASELINE_CHUNK: usize = 100;

/// The owning table of an index relation.
async fn index_tables(conn: &mut PgConnection) -> HashMap<i64, i64> {
    read_index_tables(conn).await.unwrap_or_default()
}

async fn read_index_tables(conn: &mut PgConnection) -> Result<HashMap<i64, i64>, sqlx::Error> {
    sqlx::query_as::<_, (i64, i64)>("SELECT indexrelid::int8, indrelid::int8 FROM pg_index")
        .fetch_all(&mut *conn)
        .await
        .map(|v| v.into_iter().collect())
}

/// Compare two snapshots around a statement.
fn observe(
    before: &Snapshot,
    after: &Snapshot,
    base: &mut Baseline,
    index_of: &HashMap<i64, i64>,
    st: &mut StatementTrace,
) {
    let pre = |oid: &i64| base.snap.rels.contains_key(oid);
    // A relation outside a scoped snapshot (dropped by the statement, say) is still in the
    // baseline's full list of relations.
    let name_of = |oid: &i64| {
        after
            .rels
            .get(oid)
            .or(before.rels.get(oid))
            .or(base.snap.rels.get(oid))
            .map(Rel::qualified)
            .unwrap_or_else(|| format!("oid {oid}"))
    };
    // Locks newly held.
    for (oid, modes) in &after.locks {
        let old = before.locks.get(oid);
        for m in modes {
            if old.is_some_and(|o| o.contains(m)) {
                continue;
            }
            let table_oid = index_of.get(oid).copied().unwrap_or(*oid);
            let Some(rel) = after
                .rels
                .get(oid)
                .or(before.rels.get(oid))
                .or(base.snap.rels.get(oid))
            else {
                continue;
            };
            if rel.kind == "S" || rel.kind == "v" {
                continue;
            }
            st.locks.push(LockTaken {
                relation: rel.qualified(),
                table: name_of(&table_oid),
                table_oid,
                mode: m.clone(),
                preexisting: pre(&table_oid),
            });
        }
    }
    for (oid, rel) in &before.rels {
        match after.rels.get(oid) {
            None => {
                if rel.is_table() && pre(oid) {
                    st.dropped_tables.push(rel.qualified());
                }
            }
            Some(now) => {
                if now.filenode != rel.filenode && rel.is_table() && pre(oid) && rel.kind != "m" {
                    st.rewritten
                        .push((rel.qualified(), base.rows.get(oid).copied().unwrap_or(0)));
                }
                if (now.name != rel.name || now.schema != rel.schema) && rel.is_table() && pre(oid)
                {
                    st.renamed_tables.push((rel.qualified(), now.qualified()));
                }
            }
        }
    }
    for ((rel, num), col) in &before.cols {
        if !pre(rel) || !base.snap.cols.contains_key(&(*rel, *num)) {
            continue;
        }
        let table = name_of(rel);
        match after.cols.get(&(*rel, *num)) {
            None => {
                if after.rels.contains_key(rel) {
                    st.dropped_columns
                        .push((table, col.name.clone(), col.type_sql.clone()));
                }
            }
            Some(now) => {
                if now.name != col.name {
                    st.renamed_columns
                        .push((table.clone(), col.name.clone(), now.name.clone()));
                }
                // An enum swapped for another enum is how Prisma changes labels: reported by
                // drops-enum-value, not as a type change.
                let changed = now.type_oid != col.type_oid || now.typmod != col.typmod;
                if changed && !(now.is_enum && col.is_enum) {
                    st.type_changes.push((
                        table,
                        now.name.clone(),
                        col.type_sql.clone(),
                        now.type_sql.clone(),
                    ));
                }
            }
        }
    }
    for (oid, name) in &before.schemas {
        if !after.schemas.contains_key(oid) && base.snap.schemas.contains_key(oid) {
            st.dropped_schemas.push(display_ident(name));
        }
    }
    // Enum labels that existed before the pull request: compared with the last labels seen under
    // the same name, so Prisma's swap (new type, rename old, rename new, drop old) is followed.
    for (name, known) in base.enum_labels.iter() {
        if let Some((_, now)) = after.enums.values().find(|(n, _)| n == name) {
            let removed: Vec<String> = known.iter().filter(|l| !now.contains(l)).cloned().collect();
            if !removed.is_empty() {
                st.dropped_enum_values.push((name.clone(), removed));
            }
        }
    }
    for (oid, (scans, _ins, upd, del)) in &after.stats {
        if !pre(oid) {
            continue;
        }
        let (s0, _, u0, d0) = before.stats.get(oid).copied().unwrap_or((0, 0, 0, 0));
        if *scans > s0 {
            st.scanned.push(name_of(oid));
        }
        if *upd > u0 || *del > d0 {
            st.row_changes.push(RowChanges {
                table: name_of(oid),
                updated: upd - u0,
                deleted: del - d0,
                ..RowChanges::default()
            });
        }
    }
    st.lock_timeout = after.lock_timeout.clone();
    for (name, known) in base.enum_labels.iter_mut() {
        if let Some((_, now)) = after.enums.values().find(|(n, _)| n == name) {
            known.retain(|l| now.contains(l));
        }
    }
}

/// Trace `m` on `conn` (a seeded clone of base). Returns its trace; a failure stops at the
/// failing statement (later migrations are not traced by the caller).
pub async fn trace_migration(
    conn: &mut PgConnection,
    m: &Migration,
    semantics: Semantics,
    base: &mut Baseline,
) -> MigrationTrace {
    let script = m.text.as_str();
    let stmts = split::split(script);
    let per_statement = stmts.is_some();
    let units: Vec<(usize, usize)> = match &stmts {
        Some(s) if !s.is_empty() => s.iter().map(|s| (s.start, s.end)).collect(),
        _ => vec![(0, script.len())],
    };
    let has_tx_control = stmts
        .as_ref()
        .is_some_and(|s| s.iter().any(|x| is_transaction_control(x.text(script))));
    let lone_non_tx = units.len() == 1 && is_non_transactional(&script[units[0].0..units[0].1]);
    let autocommit = has_tx_control || lone_non_tx;
    let whole_tx = semantics == Semantics::WholeFile && !autocommit;
    // Inside a transaction, follow the locks (the module doc); an autocommit file releases them
    // before the statement returns, so it is compared on full snapshots, and what is known is
    // read again after it.
    let mut follow = !autocommit && !base.full_snapshots;
    if follow && !base.known.valid {
        match load_known(conn, base).await {
            Ok(k) => base.known = k,
            Err(_) => follow = false,
        }
    }
    if !follow {
        base.known.valid = false;
    }
    let index_of = if follow {
        base.known.index_table.clone()
    } else {
        index_tables(conn).await
    };
    // Any migration can be the first of a deploy on a fresh connection: a SET lock_timeout from an
    // earlier file must not count for this one.
    let _ = sqlx::raw_sql("RESET lock_timeout")
        .execute(&mut *conn)
        .await;
    let mut trace = MigrationTrace {
        name: m.name.clone(),
        path: m.path.clone(),
        per_statement,
        statements: Vec::new(),
        failure: None,
    };

    if whole_tx {
        if follow {
            flush_counters(conn, &mut base.known).await;
        }
        let _ = sqlx::raw_sql("BEGIN").execute(&mut *conn).await;
    }
    // Inside one transaction, the facts after a statement are the ones before the next, unless
    // something ran in between (the row counts of `refine_row_changes`, which take locks).
    let mut carried: Option<Snapshot> = None;
    let mut carried_probe: Option<Probe> = None;
    for (start, end) in units {
        let text = if per_statement {
            &script[start..end]
        } else {
            script
        };
        let per_stmt_tx = !whole_tx && !autocommit;
        if per_stmt_tx {
            if follow {
                flush_counters(conn, &mut base.known).await;
            }
            let _ = sqlx::raw_sql("BEGIN").execute(&mut *conn).await;
        }
        let before_probe = if follow {
            let p = lock_before(conn, base, carried_probe.take()).await;
            if p.is_none() {
                base.known.valid = false;
            }
            p
        } else {
            None
        };
        // Without the lock-following facts: a full snapshot of the scope.
        let before = if before_probe.is_some() {
            Snapshot::default()
        } else {
            match carried.take() {
                Some(snap) => snap,
                None => snapshot(conn, &base.scope, false).await.unwrap_or_default(),
            }
        };
        let t = Instant::now();
        let result = sqlx::raw_sql(AssertSqlSafe(text.to_string()))
            .execute(&mut *conn)
            .await;
        let duration = t.elapsed();
        let (line, column) = line_col(script, start);
        let mut st = StatementTrace {
            start,
            end,
            line,
            column,
            text: text.to_string(),
            duration,
            ..StatementTrace::default()
        };
        match result {
            Ok(r) => {
                st.rows_affected = r.rows_affected();
                if let Some(was) = before_probe {
                    match observe_locked(conn, &was, base, &index_of, &mut st).await {
                        Ok((now, queried)) => {
                            if whole_tx && !queried {
                                carried_probe = Some(now);
                            }
                        }
                        Err(_) => base.known.valid = false,
                    }
                } else if let Ok(after) = snapshot(conn, &base.scope, false).await {
                    observe(&before, &after, base, &index_of, &mut st);
                    let queried = !refine_row_changes(conn, &after, base, &mut st)
                        .await
                        .is_empty();
                    if whole_tx && !queried && !follow {
                        carried = Some(after);
                    }
                }
                if per_stmt_tx {
                    commit(conn, &mut base.known).await;
                }
                trace.statements.push(st);
            }
            Err(e) => {
                let raw = RawError::from_sqlx(&e, text, if per_statement { start } else { 0 });
                let raw = if per_statement {
                    raw.in_statement(start, end)
                } else {
                    raw
                };
                trace.failure = Some(locate(script, raw, None));
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                base.known.valid = false;
                trace.statements.push(st);
                return trace;
            }
        }
    }
    if whole_tx {
        commit(conn, &mut base.known).await;
    }
    trace
}

/// COMMIT: the counters may be flushed from now on, and a failed commit rolled back what is known.
async fn commit(conn: &mut PgConnection, known: &mut Known) {
    if sqlx::raw_sql("COMMIT").execute(&mut *conn).await.is_err() {
        known.valid = false;
    }
    known.stats_exact = false;
}

/// Row counts for truncations and rewrites, and whether an UPDATE touched pre-existing columns
/// (a backfill of a new column does not). Returns the tables it queried (and so locked).
async fn refine_row_changes(
    conn: &mut PgConnection,
    after: &Snapshot,
    base: &mut Baseline,
    st: &mut StatementTrace,
) -> Vec<i64> {
    let mut queried = Vec::new();
    let upper = st.text.trim_start().to_ascii_uppercase();
    // TRUNCATE (and DELETE inside functions) show as a smaller row count.
    let candidates: Vec<i64> = base.rows.keys().copied().collect();
    for oid in candidates {
        let Some(rel) = after.rels.get(&oid) else {
            continue;
        };
        let before_rows = base.rows.get(&oid).copied().unwrap_or(0);
        let touched = st.row_changes.iter().any(|r| r.table == rel.qualified())
            || st.rewritten.iter().any(|(t, _)| *t == rel.qualified())
            || upper.starts_with("TRUNCATE")
            || upper.starts_with("DO")
            || upper.starts_with("SELECT")
            || upper.starts_with("CALL");
        if !touched || before_rows == 0 {
            continue;
        }
        queried.push(oid);
        // A failed query aborts the transaction, whose COMMIT then rolls back: what is known is
        // no longer what the clone has.
        let now = try_count(conn, rel).await.unwrap_or_else(|_| {
            base.known.valid = false;
            0
        });
        if now < before_rows {
            match st
                .row_changes
                .iter_mut()
                .find(|r| r.table == rel.qualified())
            {
                Some(rc) => rc.truncated_from = Some(before_rows),
                None => st.row_changes.push(RowChanges {
                    table: rel.qualified(),
                    deleted: before_rows - now,
                    truncated_from: Some(before_rows),
                    ..RowChanges::default()
                }),
            }
        }
        base.rows.insert(oid, now);
        // Values of pre-existing columns changed?
        let old_cols: Vec<String> = table_columns(&base.snap, oid)
            .into_iter()
            .filter(|c| after.cols.values().any(|x| &x.name == c))
            .collect();
        let present: Vec<String> = table_columns(after, oid)
            .into_iter()
            .filter(|c| old_cols.contains(c))
            .collect();
        if let (Some(prev), Some(fp)) = (
            base.fingerprints.get(&oid).cloned(),
            try_fingerprint(conn, rel, &present)
                .await
                .unwrap_or_else(|_| {
                    base.known.valid = false;
                    None
                }),
        ) {
            let same_columns = present.len() == table_columns(&base.snap, oid).len();
            if same_columns
                && prev != fp
                && let Some(rc) = st
                    .row_changes
                    .iter_mut()
                    .find(|r| r.table == rel.qualified())
            {
                rc.changed_existing_columns = true;
            }
            if same_columns {
                base.fingerprints.insert(oid, fp);
            }
        }
    }
    queried
}

/// The strongest lock a migration took on a pre-existing table, e.g. ("ACCESS EXCLUSIVE", table).
pub fn strongest_lock(t: &MigrationTrace) -> Option<(String, String)> {
    const ORDER: [&str; 8] = [
        "AccessShareLock",
        "RowShareLock",
        "RowExclusiveLock",
        "ShareUpdateExclusiveLock",
        "ShareLock",
        "ShareRowExclusiveLock",
        "ExclusiveLock",
        "AccessExclusiveLock",
    ];
    t.statements
        .iter()
        .flat_map(|s| s.locks.iter())
        .filter(|l| l.preexisting)
        .max_by_key(|l| ORDER.iter().position(|m| *m == l.mode).unwrap_or(0))
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
