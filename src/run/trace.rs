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

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, PgConnection};

use super::Failure;
use super::focus::Scope;
use super::prisma::{RawError, Semantics, locate};
use crate::discover::{Migration, line_col};
use crate::provision::quote_ident;
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
             SELECT c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text, c.relfilenode::int8 \
             FROM ids JOIN pg_class c ON c.oid = ids.oid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE {USER_NS} AND c.relkind IN ('r','p','m','i','S','v','I')"
        )
    } else {
        format!(
            "SELECT c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text, c.relfilenode::int8 FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER_NS} AND c.relkind IN ('r','p','m','i','S','v','I') \
             AND ($1::int8[] IS NOT NULL)"
        )
    };
    let rels: Vec<RelRow> = sqlx::query_as(AssertSqlSafe(rels_sql))
        .bind(&oids)
        .fetch_all(&mut *conn)
        .await?;
    const COLS: &str = "SELECT a.attrelid::int8, a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atttypid::int8, a.atttypmod, t.typtype = 'e'";
    let cols_sql = if scoped {
        format!(
            "{COLS} FROM unnest($1::int8[]::oid[]) AS r(oid) JOIN pg_class c ON c.oid = r.oid \
             JOIN pg_attribute a ON a.attrelid = r.oid JOIN pg_type t ON t.oid = a.atttypid \
             WHERE c.relkind IN ('r','p') AND a.attnum > 0 AND NOT a.attisdropped"
        )
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
    let enums: Vec<(i64, String, Vec<String>)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT t.oid::int8, quote_ident(n.nspname) || '.' || quote_ident(t.typname), \
                COALESCE((SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '{{}}') \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype = 'e' AND {USER_NS}"
    )))
    .fetch_all(&mut *conn)
    .await?;
    // What pg_stat_xact_user_tables shows (seq_scan + idx_scan, n_tup_ins/upd/del), read
    // straight from the functions behind it for the scoped tables.
    let stats_sql = if scoped {
        "SELECT r.oid::int8, (pg_stat_get_xact_numscans(r.oid) + COALESCE((SELECT sum(pg_stat_get_xact_numscans(i.indexrelid)) \
                FROM pg_index i WHERE i.indrelid = r.oid), 0))::int8, \
                pg_stat_get_xact_tuples_inserted(r.oid)::int8, pg_stat_get_xact_tuples_updated(r.oid)::int8, \
                pg_stat_get_xact_tuples_deleted(r.oid)::int8 \
         FROM unnest($1::int8[]::oid[]) AS r(oid)"
    } else {
        "SELECT relid::int8, (COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0))::int8, n_tup_ins::int8, n_tup_upd::int8, n_tup_del::int8 \
         FROM pg_stat_xact_user_tables WHERE ($1::int8[] IS NOT NULL)"
    };
    let stats: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(stats_sql)
        .bind(&oids)
        .fetch_all(&mut *conn)
        .await?;
    let locks: Vec<(i64, String)> = sqlx::query_as(
        "SELECT relation::int8, mode::text FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
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
    for (rel, num, name, type_sql, not_null, type_oid, typmod, is_enum) in cols {
        snap.cols.insert(
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
    snap.schemas = schemas.into_iter().collect();
    for (oid, name, labels) in enums {
        snap.enums.insert(oid, (name, labels));
    }
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
}

async fn count(conn: &mut PgConnection, rel: &Rel) -> i64 {
    let sql = format!("SELECT count(*)::int8 FROM {}", rel.qualified());
    sqlx::query_as::<_, (i64,)>(AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await
        .map(|r| r.0)
        .unwrap_or(0)
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
    if cols.is_empty() {
        return None;
    }
    let sql = fingerprint_sql(rel, cols);
    sqlx::query_as::<_, (String,)>(AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await
        .ok()
        .map(|r| r.0)
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
    sqlx::query_as::<_, (i64, i64)>("SELECT indexrelid::int8, indrelid::int8 FROM pg_index")
        .fetch_all(&mut *conn)
        .await
        .map(|v| v.into_iter().collect())
        .unwrap_or_default()
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
    let index_of = index_tables(conn).await;
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
        let _ = sqlx::raw_sql("BEGIN").execute(&mut *conn).await;
    }
    // Inside one transaction, the snapshot after a statement is the one before the next, unless
    // something ran in between (the row counts of `refine_row_changes`, which take locks).
    let mut carried: Option<Snapshot> = None;
    for (start, end) in units {
        let text = if per_statement {
            &script[start..end]
        } else {
            script
        };
        let per_stmt_tx = !whole_tx && !autocommit;
        if per_stmt_tx {
            let _ = sqlx::raw_sql("BEGIN").execute(&mut *conn).await;
        }
        let before = match carried.take() {
            Some(snap) => snap,
            None => snapshot(conn, &base.scope, false).await.unwrap_or_default(),
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
                if let Ok(after) = snapshot(conn, &base.scope, false).await {
                    observe(&before, &after, base, &index_of, &mut st);
                    let queried = refine_row_changes(conn, &after, base, &mut st).await;
                    if whole_tx && !queried {
                        carried = Some(after);
                    }
                }
                if per_stmt_tx {
                    let _ = sqlx::raw_sql("COMMIT").execute(&mut *conn).await;
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
                trace.statements.push(st);
                return trace;
            }
        }
    }
    if whole_tx {
        let _ = sqlx::raw_sql("COMMIT").execute(&mut *conn).await;
    }
    trace
}

/// Row counts for truncations and rewrites, and whether an UPDATE touched pre-existing columns
/// (a backfill of a new column does not).
async fn refine_row_changes(
    conn: &mut PgConnection,
    after: &Snapshot,
    base: &mut Baseline,
    st: &mut StatementTrace,
) -> bool {
    let mut queried = false;
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
        queried = true;
        let now = count(conn, rel).await;
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
            fingerprint(conn, rel, &present).await,
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
