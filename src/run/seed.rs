//! Fills every table of the base database with a few synthetic rows before the new migrations
//! run, so that what only fails on real data (a NOT NULL column without default, a unique index
//! on duplicated values, a narrowing cast) fails here too, and so that rewrites and deletions
//! touch rows.
//!
//! Tables are filled in foreign-key order; values follow the column's type (enums, arrays, json,
//! domains by their base type, identity/serial/defaulted columns left to their defaults); a
//! foreign key takes an existing parent value. Each table is filled inside a savepoint: one that
//! cannot be satisfied (a CHECK the generator cannot meet, a cycle) is skipped with a note.
//! `seed:` in the config adds the team's own SQL afterwards.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{AssertSqlSafe, PgConnection};

use super::scope::Scope;
use crate::sql::quote::quote_ident;

/// Rows per table.
pub const ROWS: i64 = 3;

/// What seeding did.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    /// Tables filled, with their row counts.
    pub filled: BTreeMap<String, i64>,
    /// Tables skipped, with the reason.
    pub skipped: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    type_sql: String,
    /// 'b' base, 'e' enum, 'd' domain, 'c' composite…
    typtype: String,
    /// typcategory of the type (or of the domain's base type).
    category: String,
    not_null: bool,
    has_default: bool,
    identity: bool,
    generated: bool,
    typmod_len: Option<i32>,
}

#[derive(Debug, Clone)]
struct Table {
    oid: i64,
    qualified: String,
    columns: Vec<Column>,
    /// (column, parent table oid, parent column qualified expression)
    fks: Vec<(String, i64, String, String)>,
    unique_cols: BTreeSet<String>,
}

type ColumnRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    bool,
    bool,
    bool,
    bool,
    i32,
);

async fn tables(conn: &mut PgConnection, exclude: &[String]) -> Result<Vec<Table>, sqlx::Error> {
    let rels: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT c.oid::int8, n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND n.nspname NOT LIKE 'pg\\_%' \
         AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') \
         ORDER BY 2, 3",
    )
    .fetch_all(&mut *conn)
    .await?;
    let cols: Vec<ColumnRow> = sqlx::query_as(
        "SELECT a.attrelid::int8, a.attname::text, format_type(a.atttypid, a.atttypmod), t.typtype::text, \
                COALESCE(bt.typcategory, t.typcategory)::text, COALESCE(et.typname, '')::text, \
                a.attnotnull, a.atthasdef, a.attidentity <> '', a.attgenerated <> '', a.atttypmod \
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype \
         LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' \
         WHERE a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum",
    )
    .fetch_all(&mut *conn)
    .await?;
    let fks: Vec<(i64, String, i64, String, String)> = sqlx::query_as(
        "SELECT c.conrelid::int8, a.attname::text, c.confrelid::int8, quote_ident(fn.nspname) || '.' || quote_ident(fc.relname), quote_ident(fa.attname) \
         FROM pg_constraint c \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
         JOIN pg_class fc ON fc.oid = c.confrelid JOIN pg_namespace fn ON fn.oid = fc.relnamespace \
         JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1] \
         WHERE c.contype = 'f' AND array_length(c.conkey, 1) = 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    let uniques: Vec<(i64, String)> = sqlx::query_as(
        "SELECT i.indrelid::int8, a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
         WHERE i.indisunique",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for (oid, schema, name) in rels {
        if exclude.iter().any(|e| e == &name) {
            continue;
        }
        let columns = cols
            .iter()
            .filter(|c| c.0 == oid)
            .map(|c| Column {
                name: c.1.clone(),
                type_sql: c.2.clone(),
                typtype: c.3.clone(),
                category: c.4.clone(),
                not_null: c.6,
                has_default: c.7,
                identity: c.8,
                generated: c.9,
                typmod_len: if c.10 > 4 { Some(c.10 - 4) } else { None },
            })
            .collect();
        out.push(Table {
            oid,
            qualified: format!("{}.{}", quote_ident(&schema), quote_ident(&name)),
            columns,
            fks: fks
                .iter()
                .filter(|f| f.0 == oid)
                .map(|f| (f.1.clone(), f.2, f.3.clone(), f.4.clone()))
                .collect(),
            unique_cols: uniques
                .iter()
                .filter(|u| u.0 == oid)
                .map(|u| u.1.clone())
                .collect(),
        });
    }
    Ok(out)
}

/// A value expression for column `c` in row `i` (a SQL expression over `i`).
fn value(c: &Column, table: &Table) -> Option<String> {
    if let Some((_, _, parent, pcol)) = table.fks.iter().find(|f| f.0 == c.name) {
        return Some(format!(
            "(SELECT p.{pcol} FROM {parent} p ORDER BY 1 OFFSET ((i - 1) % GREATEST(1, (SELECT count(*) FROM {parent}))) LIMIT 1)"
        ));
    }
    let t = c.type_sql.as_str();
    let cast = |e: String| format!("({e})::{t}");
    let text_val = |prefix: &str| {
        let v = format!("'{prefix}_' || i");
        match c.typmod_len {
            Some(n)
                if t.starts_with("character varying")
                    || t.starts_with("character(")
                    || t.starts_with("bpchar") =>
            {
                Some(cast(format!("right({v}, {n})")))
            }
            _ => Some(cast(v)),
        }
    };
    if c.typtype == "e" {
        return Some(format!(
            "(enum_range(NULL::{t}))[1 + ((i - 1) % array_length(enum_range(NULL::{t}), 1))]"
        ));
    }
    match c.category.as_str() {
        "A" => Some(format!("'{{}}'::{t}")),
        "B" => Some(cast("i % 2 = 0".into())),
        "N" => {
            if t.starts_with("numeric") {
                Some(cast("i".into()))
            } else if t == "money" {
                Some(cast("i::numeric".into()))
            } else {
                Some(cast("i".into()))
            }
        }
        "D" => {
            if t.starts_with("time") && !t.starts_with("timestamp") {
                Some(cast("'12:00'::time + i * interval '1 minute'".into()))
            } else {
                Some(cast("timestamp '2024-01-01' + i * interval '1 day'".into()))
            }
        }
        "T" => Some(cast("i * interval '1 day'".into())),
        "S" => text_val(c.name.as_str()),
        "U" => {
            if t == "uuid" {
                Some("gen_random_uuid()".into())
            } else if t == "json" || t == "jsonb" {
                Some(format!("jsonb_build_object('seed', i)::{t}"))
            } else if t == "bytea" {
                Some("decode(lpad(to_hex(i), 2, '0'), 'hex')".into())
            } else {
                None
            }
        }
        "I" => Some(cast("'10.0.0.' || i".into())),
        "V" => Some(cast("i::bit(8)".into())),
        _ => None,
    }
}

/// Fill the tables of the database `conn` is connected to (as a superuser, so row-level
/// security does not hide rows).
pub async fn seed(
    conn: &mut PgConnection,
    exclude: &[String],
    scope: &Scope,
) -> Result<SeedReport, SeedError> {
    let mut report = SeedReport::default();
    let pending: Vec<Table> = tables(conn, exclude)
        .await
        .map_err(|source| SeedError::ReadTables { source })?
        .into_iter()
        .filter(|t| scope.contains(t.oid))
        .collect();
    let order = fk_order(pending, &mut report);
    let tx = |source| SeedError::Transaction { source };
    sqlx::raw_sql("BEGIN")
        .execute(&mut *conn)
        .await
        .map_err(tx)?;
    for t in &order {
        let (sql, cols_empty) = match insert_sql(t) {
            Ok(x) => x,
            Err(why) => {
                report.skipped.push((t.qualified.clone(), why));
                continue;
            }
        };
        let fill = |source| SeedError::Fill {
            table: t.qualified.clone(),
            source,
        };
        sqlx::raw_sql("SAVEPOINT cigate_seed")
            .execute(&mut *conn)
            .await
            .map_err(fill)?;
        let inserted = if cols_empty {
            let mut n = 0;
            for _ in 0..ROWS {
                if sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                    .execute(&mut *conn)
                    .await
                    .is_ok()
                {
                    n += 1;
                }
            }
            Ok(n)
        } else {
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut *conn)
                .await
                .map(|r| r.rows_affected() as i64)
        };
        match inserted {
            Ok(n) => {
                sqlx::raw_sql("RELEASE SAVEPOINT cigate_seed")
                    .execute(&mut *conn)
                    .await
                    .map_err(fill)?;
                report.filled.insert(t.qualified.clone(), n);
            }
            Err(e) => {
                sqlx::raw_sql("ROLLBACK TO SAVEPOINT cigate_seed")
                    .execute(&mut *conn)
                    .await
                    .map_err(fill)?;
                let msg = e
                    .as_database_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_else(|| e.to_string());
                report.skipped.push((t.qualified.clone(), msg));
            }
        }
    }
    sqlx::raw_sql("COMMIT")
        .execute(&mut *conn)
        .await
        .map_err(tx)?;
    analyze(conn, scope, &order).await;
    Ok(report)
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

/// Foreign-key order: a table goes when all its (other) parents went. Tables in a cycle are
/// skipped, with the reason in `report`.
fn fk_order(mut pending: Vec<Table>, report: &mut SeedReport) -> Vec<Table> {
    let mut done: BTreeSet<i64> = BTreeSet::new();
    let mut order = Vec::new();
    while !pending.is_empty() {
        let (ready, rest): (Vec<Table>, Vec<Table>) = pending
            .into_iter()
            .partition(|t| t.fks.iter().all(|f| f.1 == t.oid || done.contains(&f.1)));
        if ready.is_empty() {
            for t in rest {
                report
                    .skipped
                    .push((t.qualified.clone(), "in a foreign-key cycle".into()));
            }
            break;
        }
        for t in ready {
            done.insert(t.oid);
            order.push(t);
        }
        pending = rest;
    }
    order
}

/// The INSERT filling table `t` with [`ROWS`] rows, and whether it names no column (then it is
/// `DEFAULT VALUES`, run once per row). `Err`: why the table cannot be filled.
fn insert_sql(t: &Table) -> Result<(String, bool), String> {
    let mut cols = Vec::new();
    let mut vals = Vec::new();
    let mut why_not = None;
    for c in &t.columns {
        if c.generated || c.identity {
            continue;
        }
        let self_ref = t.fks.iter().any(|f| f.0 == c.name && f.1 == t.oid);
        if self_ref {
            if c.not_null {
                why_not = Some(format!("self-referencing NOT NULL column {}", c.name));
            }
            continue;
        }
        if c.has_default && !t.unique_cols.contains(&c.name) {
            continue;
        }
        match value(c, t) {
            Some(v) => {
                cols.push(quote_ident(&c.name));
                vals.push(v);
            }
            None if c.not_null && !c.has_default => {
                why_not = Some(format!("no generator for type {} ({})", c.type_sql, c.name))
            }
            None => {}
        }
    }
    if let Some(w) = why_not {
        return Err(w);
    }
    if cols.is_empty() {
        return Ok((format!("INSERT INTO {} DEFAULT VALUES", t.qualified), true));
    }
    let sql = format!(
        "INSERT INTO {} ({}) SELECT {} FROM generate_series(1, {ROWS}) AS g(i)",
        t.qualified,
        cols.join(", "),
        vals.join(", ")
    );
    Ok((sql, false))
}

/// Fresh statistics would hide nothing we need, but ANALYZE makes plans realistic.
async fn analyze(conn: &mut PgConnection, scope: &Scope, order: &[Table]) {
    let analyze = match scope {
        Scope::All => "ANALYZE".to_string(),
        Scope::Only(_) if order.is_empty() => String::new(),
        Scope::Only(_) => format!(
            "ANALYZE {}",
            order
                .iter()
                .map(|t| t.qualified.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    if !analyze.is_empty() {
        let _ = sqlx::raw_sql(AssertSqlSafe(analyze))
            .execute(&mut *conn)
            .await;
    }
}
