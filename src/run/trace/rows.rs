//! Row counts and fingerprints of tables, and the [`baseline`] taken after seeding: the catalog,
//! and every scope table's row count and fingerprint over its pre-existing columns.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, PgConnection};

use super::Baseline;
use super::known::known_from;
use super::snapshot::{Rel, Snapshot, snapshot};
use crate::run::scope::Scope;
use crate::sql::quote::quote_ident;

pub(super) async fn count(conn: &mut PgConnection, rel: &Rel) -> i64 {
    try_count(conn, rel).await.unwrap_or(0)
}

pub(super) async fn try_count(conn: &mut PgConnection, rel: &Rel) -> Result<i64, sqlx::Error> {
    let sql = format!("SELECT count(*)::int8 FROM {}", rel.qualified());
    sqlx::query_as::<_, (i64,)>(AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await
        .map(|r| r.0)
}

/// The query fingerprinting the rows of `rel` over `cols`.
pub(super) fn fingerprint_sql(rel: &Rel, cols: &[String]) -> String {
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

pub(super) async fn fingerprint(
    conn: &mut PgConnection,
    rel: &Rel,
    cols: &[String],
) -> Option<String> {
    try_fingerprint(conn, rel, cols).await.ok().flatten()
}

pub(super) async fn try_fingerprint(
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

pub(super) fn table_columns(snap: &Snapshot, oid: i64) -> Vec<String> {
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
/// which the caller checks against the locks taken: [`crate::run::focus::outside`]).
pub async fn baseline(conn: &mut PgConnection, scope: &Scope) -> Result<Baseline, sqlx::Error> {
    baseline_within(conn, scope, None).await
}

/// [`baseline`] of a copy on which some of the pull request's migrations already ran (the
/// seeded run resumed after a failure): what counts as pre-existing stays what `before` (the
/// first baseline) held (relations, columns and enums by OID, the same in every copy of the
/// base), so what those migrations created is still the pull request's own.
pub async fn baseline_within(
    conn: &mut PgConnection,
    scope: &Scope,
    before: Option<&Snapshot>,
) -> Result<Baseline, sqlx::Error> {
    let now = snapshot(conn, scope, true).await?;
    let mut snap = now.clone();
    if let Some(before) = before {
        snap.rels.retain(|oid, _| before.rels.contains_key(oid));
        snap.cols.retain(|key, _| before.cols.contains_key(key));
        snap.enums.retain(|oid, _| before.enums.contains_key(oid));
    }
    let mut b = Baseline {
        snap: snap.clone(),
        scope: scope.clone(),
        ..Baseline::default()
    };
    if let Ok(index_table) = read_index_tables(conn).await {
        b.known = known_from(&b, now, index_table);
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
pub(super) const BASELINE_CHUNK: usize = 100;

/// The owning table of an index relation.
pub(super) async fn index_tables(conn: &mut PgConnection) -> HashMap<i64, i64> {
    read_index_tables(conn).await.unwrap_or_default()
}

pub(super) async fn read_index_tables(
    conn: &mut PgConnection,
) -> Result<HashMap<i64, i64>, sqlx::Error> {
    sqlx::query_as::<_, (i64, i64)>("SELECT indexrelid::int8, indrelid::int8 FROM pg_index")
        .fetch_all(&mut *conn)
        .await
        .map(|v| v.into_iter().collect())
}
