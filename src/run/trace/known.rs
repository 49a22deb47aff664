//! Lock-following observation: what the trace knows of the seeded clone between statements
//! ([`Known`]), what our session shows around a statement ([`Probe`]), and
//! [`observe_locked`], which after a statement reads only what it can have changed (the relations
//! our backend holds a lock on) and compares it with what was known.

use std::collections::{BTreeSet, HashMap, HashSet};

use sqlx::{AssertSqlSafe, PgConnection};

use super::observe::{observe, refine_row_changes};
use super::rows::read_index_tables;
use super::snapshot::{
    ColRow, LOCKS, REL, REL_KINDS, Rel, Snapshot, USER_NS, cols_of_sql, insert_cols, read_enums,
    read_stats, snapshot,
};
use super::{Baseline, StatementTrace};
use crate::run::scope::Scope;

/// Scans (seq + idx), rows inserted, updated, deleted in this transaction.
pub(super) type Counters = (i64, i64, i64, i64);

/// OIDs below this (FirstNormalObjectId) belong to the system catalogs.
pub(super) const FIRST_USER_OID: i64 = 16384;

/// What the trace knows of the seeded clone between statements, kept current from what each
/// statement locked.
#[derive(Debug, Clone, Default)]
pub(super) struct Known {
    /// false: read it all again before relying on it (after an autocommit file, a failure, a
    /// schema change or a failed read).
    pub(super) valid: bool,
    /// rels: every relation of the user's schemas; cols: the tracked tables' ([`tracked`]);
    /// schemas; enums. Its `stats` and `locks` are unused.
    pub(super) snap: Snapshot,
    /// index oid → table oid: all of pg_index, as [`index_tables`] reads it.
    pub(super) index_table: HashMap<i64, i64>,
    /// The tracked tables whose transaction counters may not be 0 → the values read last.
    pub(super) stats: HashMap<i64, Counters>,
    /// `stats` holds this transaction's exact values (and every other tracked table's are 0).
    pub(super) stats_exact: bool,
    /// `pg_stat_force_next_flush()` can be called (PostgreSQL ≥ 15); None: not asked yet.
    pub(super) flush: Option<bool>,
}

/// What our session shows around a statement, read in one round trip.
#[derive(Debug, Clone, Default)]
pub(super) struct Probe {
    pub(super) locks: HashMap<i64, BTreeSet<String>>,
    pub(super) lock_timeout: String,
    /// `current_schemas(true)`: how `format_type` qualifies type names.
    pub(super) search_path: String,
    /// Rows inserted, updated, deleted by this transaction in pg_namespace (0..3), pg_type
    /// (3..6) and pg_enum (6..9): whether schemas, type names or enum labels may have changed.
    pub(super) catalog: Vec<i64>,
    /// Without `track_counts` the catalog counters stay 0 and say nothing.
    pub(super) track_counts: bool,
}

/// A pre-existing table of the scope: the tables whose columns and counters are compared.
pub(super) fn tracked(base: &Baseline, oid: i64) -> bool {
    base.scope.contains(oid) && base.snap.rels.get(&oid).is_some_and(Rel::is_table)
}

pub(super) async fn probe(conn: &mut PgConnection) -> Result<Probe, sqlx::Error> {
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
pub(super) async fn load_known(
    conn: &mut PgConnection,
    base: &Baseline,
) -> Result<Known, sqlx::Error> {
    let snap = snapshot(conn, &base.scope, true).await?;
    let index_table = read_index_tables(conn).await?;
    Ok(known_from(base, snap, index_table))
}

pub(super) fn known_from(
    base: &Baseline,
    mut snap: Snapshot,
    index_table: HashMap<i64, i64>,
) -> Known {
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
pub(super) async fn flush_counters(conn: &mut PgConnection, known: &mut Known) {
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
pub(super) async fn lock_before(
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

/// The part of what is known that [`observe()`] looks at: of the relations `oids` (all: None), those
/// a scoped snapshot holds (the scope's tables and their indexes, and the relations `locks`
/// names), and the columns of those tables.
pub(super) fn known_view(
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
pub(super) async fn refresh_type_names(
    conn: &mut PgConnection,
    known: &mut Known,
) -> Result<(), sqlx::Error> {
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
pub(super) async fn enum_names(
    conn: &mut PgConnection,
) -> Result<HashMap<i64, String>, sqlx::Error> {
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
pub(super) fn runs_code(text: &str) -> bool {
    let upper = text.trim_start().to_ascii_uppercase();
    upper.starts_with("DO") || upper.starts_with("SELECT") || upper.starts_with("CALL")
}

/// The enum types after a statement, when they may have changed: labels move pg_enum (read them
/// all again); types created, renamed, moved or dropped move pg_type (as every table created
/// does), and when pg_enum did not move, their labels are the known ones (none for a new type).
/// None: unchanged.
async fn read_enum_changes(
    conn: &mut PgConnection,
    labels_moved: bool,
    types_moved: bool,
    known: &Known,
) -> Result<Option<HashMap<i64, (String, Vec<String>)>>, sqlx::Error> {
    if labels_moved {
        return Ok(Some(read_enums(conn).await?));
    }
    if !types_moved {
        return Ok(None);
    }
    let names = enum_names(conn).await?;
    let known = &known.snap.enums;
    let same = names.len() == known.len()
        && names
            .iter()
            .all(|(oid, name)| known.get(oid).is_some_and(|(n, _)| n == name));
    Ok((!same).then(|| {
        names
            .into_iter()
            .map(|(oid, name)| {
                let labels = known.get(&oid).map(|e| e.1.clone()).unwrap_or_default();
                (oid, (name, labels))
            })
            .collect()
    }))
}

impl Known {
    /// Keep what was read after a statement: the `locked` relations as `rows` shows them (gone
    /// when it does not), the columns of the tracked `tables` among them, and the enums when they
    /// were read again.
    fn keep(
        &mut self,
        locked: &[i64],
        rows: Vec<LockedRow>,
        tables: Vec<i64>,
        cols: Vec<ColRow>,
        enums: Option<HashMap<i64, (String, Vec<String>)>>,
    ) {
        let returned: HashSet<i64> = rows.iter().map(|r| r.0).collect();
        for oid in locked {
            self.snap.rels.remove(oid);
            if !returned.contains(oid) {
                self.index_table.remove(oid);
            }
        }
        for (oid, schema, name, kind, filenode, table, visible) in rows {
            if table != 0 {
                self.index_table.insert(oid, table);
            }
            if visible {
                self.snap.rels.insert(
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
        self.snap.cols.retain(|(rel, _), _| !tables.contains(rel));
        insert_cols(&mut self.snap.cols, cols);
        if let Some(e) = enums {
            self.snap.enums = e;
        }
    }
}

/// A relation our backend holds a lock on: (oid, schema, name, kind, filenode, table of an index
/// or 0, visible in a snapshot).
type LockedRow = (i64, String, String, String, i64, i64, bool);

/// After a statement inside a transaction: read what it can have changed (the relations our
/// backend holds a lock on, with their columns and counters; schemas, type names and enums when
/// the catalog counters moved), compare with what was known before it, and keep the result.
/// Returns the facts after the statement and whether `refine_row_changes` queried tables.
pub(super) async fn observe_locked(
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
    let enums = read_enum_changes(conn, moved(6..9), moved(3..6), &base.known).await?;
    let enums_moved = enums.is_some();
    // Keep what was read.
    base.known.keep(&locked, rows, tables, cols, enums);
    let k = &mut base.known;
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
