//! What the seeder needs to know about the tables it fills, read from the catalog in a few
//! queries: columns and their types, foreign keys (multi-column, deferrable), unique indexes,
//! CHECK constraints (the table's and its columns' domains'), the sequences behind columns, and
//! partition keys with their partitions' bounds.

use sqlx::PgConnection;

use crate::run::scope::Scope;
use crate::sql::quote::quote_ident;

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub attnum: i32,
    /// `format_type` of the column's type (a domain by its name).
    pub type_sql: String,
    /// The type candidates are cast to before a CHECK is tried on them (a domain's base type).
    pub base_sql: String,
    /// The type's (or the domain's base type's) typtype: 'b' base, 'e' enum, 'c' composite…
    pub typtype: String,
    /// The type's (or the domain's base type's) typcategory.
    pub category: String,
    /// NOT NULL on the column or on its domain.
    pub not_null: bool,
    pub has_default: bool,
    pub identity: bool,
    pub generated: bool,
    /// The declared length of `varchar(n)` / `char(n)`.
    pub typmod_len: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct ForeignKey {
    /// Schema-qualified and quoted, for `SET CONSTRAINTS`.
    pub name: String,
    pub cols: Vec<String>,
    pub parent: i64,
    pub parent_qualified: String,
    pub parent_cols: Vec<String>,
    pub deferrable: bool,
}

/// A CHECK: the table's own (over `cols`), or a column's domain's (over `VALUE`).
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub cols: Vec<String>,
    /// The boolean expression, as `pg_get_constraintdef` prints it without `CHECK` / `NOT VALID`.
    pub expr: String,
    pub domain: bool,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub oid: i64,
    pub qualified: String,
    pub columns: Vec<Column>,
    pub fks: Vec<ForeignKey>,
    /// The column sets of the unique indexes (expression columns left out).
    pub uniques: Vec<Vec<String>>,
    pub checks: Vec<Check>,
    /// (column, sequence oid): the sequences that give the column its values.
    pub sequences: Vec<(String, i64)>,
    /// Partition key columns (a partitioned table), and its partitions' bounds.
    pub partition_key: Vec<String>,
    pub partition_bounds: Vec<String>,
}

impl Table {
    /// A table with no column, key or constraint yet.
    pub fn empty(oid: i64, qualified: String) -> Table {
        Table {
            oid,
            qualified,
            columns: Vec::new(),
            fks: Vec::new(),
            uniques: Vec::new(),
            checks: Vec::new(),
            sequences: Vec::new(),
            partition_key: Vec::new(),
            partition_bounds: Vec::new(),
        }
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Columns of some unique index: written with values past the existing ones.
    pub fn is_key(&self, col: &str) -> bool {
        self.uniques.iter().any(|u| u.iter().any(|c| c == col))
    }

    /// Whether the columns `cols` hold a unique index's columns: each parent row can be referenced
    /// by one row only (a one-to-one relation).
    pub fn unique_over(&self, cols: &[String]) -> bool {
        self.uniques
            .iter()
            .any(|u| !u.is_empty() && u.iter().all(|c| cols.contains(c)))
    }

    /// Whether every column of `cols` may be NULL.
    pub fn nullable(&self, cols: &[String]) -> bool {
        cols.iter()
            .all(|c| self.column(c).is_some_and(|c| !c.not_null))
    }
}

type RelRow = (i64, String, String);
type ColumnRow = (
    i64,
    i32,
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
type FkRow = (i64, String, i64, String, Vec<String>, Vec<String>, bool);
type CheckRow = (i64, String, Vec<String>, String, bool);

const RELS: &str = "SELECT c.oid::int8, n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_%' \
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') \
     ORDER BY 2, 3";

const COLUMNS: &str = "SELECT a.attrelid::int8, a.attnum::int4, a.attname::text, format_type(a.atttypid, a.atttypmod), \
            CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) ELSE format_type(a.atttypid, a.atttypmod) END, \
            COALESCE(bt.typtype, t.typtype)::text, COALESCE(bt.typcategory, t.typcategory)::text, \
            a.attnotnull OR t.typnotnull, a.atthasdef, a.attidentity <> '', a.attgenerated <> '', \
            CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END \
     FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
     LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype \
     WHERE a.attrelid = ANY($1::int8[]::oid[]) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum";

/// Foreign keys in key order; `conparentid = 0` leaves out the copies PostgreSQL makes for each
/// partition of a referenced partitioned table.
const FKS: &str = "SELECT c.conrelid::int8, quote_ident(n.nspname) || '.' || quote_ident(c.conname), c.confrelid::int8, \
            quote_ident(fn.nspname) || '.' || quote_ident(fc.relname), \
            ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(num, ord) \
                  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num ORDER BY k.ord), \
            ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(num, ord) \
                  JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num ORDER BY k.ord), \
            c.condeferrable \
     FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
     JOIN pg_class fc ON fc.oid = c.confrelid JOIN pg_namespace fn ON fn.oid = fc.relnamespace \
     WHERE c.contype = 'f' AND c.conparentid = 0 AND c.conrelid = ANY($1::int8[]::oid[]) ORDER BY c.conrelid, c.conname";

const UNIQUES: &str = "SELECT i.indrelid::int8, ARRAY(SELECT a.attname::text FROM pg_attribute a \
            WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) AND a.attnum > 0) \
     FROM pg_index i WHERE i.indisunique AND i.indrelid = ANY($1::int8[]::oid[])";

/// Table CHECKs and the CHECKs of the columns' domains.
const CHECKS: &str = "SELECT c.conrelid::int8, c.conname::text, \
            ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)), \
            pg_get_constraintdef(c.oid), false \
     FROM pg_constraint c WHERE c.contype = 'c' AND c.conrelid = ANY($1::int8[]::oid[]) \
     UNION ALL \
     SELECT a.attrelid::int8, c.conname::text, ARRAY[a.attname::text], pg_get_constraintdef(c.oid), true \
     FROM pg_attribute a JOIN pg_constraint c ON c.contypid = a.atttypid AND c.contype = 'c' \
     WHERE a.attrelid = ANY($1::int8[]::oid[]) AND a.attnum > 0 AND NOT a.attisdropped";

/// Sequences owned by a column (serial, identity) or named in its default (`nextval('s')`).
const SEQUENCES: &str = "SELECT d.refobjid::int8, a.attname::text, d.objid::int8 FROM pg_depend d \
     JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
     JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
     WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') \
       AND d.refobjid = ANY($1::int8[]::oid[]) \
     UNION \
     SELECT ad.adrelid::int8, a.attname::text, d.refobjid::int8 FROM pg_attrdef ad \
     JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass \
     JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S' \
     JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum \
     WHERE ad.adrelid = ANY($1::int8[]::oid[])";

/// Partition key columns (in key order; an expression leaves a NULL) and partition bounds.
const PARTITIONS: &str = "SELECT p.partrelid::int8, false, \
            ARRAY(SELECT COALESCE(a.attname::text, '') FROM unnest(p.partattrs::int2[]) WITH ORDINALITY k(num, ord) \
                  LEFT JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = k.num ORDER BY k.ord) \
     FROM pg_partitioned_table p WHERE p.partrelid = ANY($1::int8[]::oid[]) \
     UNION ALL \
     SELECT i.inhparent::int8, true, ARRAY[pg_get_expr(c.relpartbound, c.oid)] \
     FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
     WHERE c.relispartition AND i.inhparent = ANY($1::int8[]::oid[])";

/// The tables of `scope` in the database `conn` is on, but those named in `exclude`.
pub async fn tables(
    conn: &mut PgConnection,
    exclude: &[String],
    scope: &Scope,
) -> Result<Vec<Table>, sqlx::Error> {
    let rels: Vec<RelRow> = sqlx::query_as(RELS).fetch_all(&mut *conn).await?;
    let rels: Vec<RelRow> = rels
        .into_iter()
        .filter(|(oid, _, name)| scope.contains(*oid) && !exclude.contains(name))
        .collect();
    let oids: Vec<i64> = rels.iter().map(|r| r.0).collect();
    let mut out: Vec<Table> = rels.into_iter().map(new_table).collect();
    let cols: Vec<ColumnRow> = sqlx::query_as(COLUMNS)
        .bind(&oids)
        .fetch_all(&mut *conn)
        .await?;
    for c in cols {
        if let Some(t) = find(&mut out, c.0) {
            t.columns.push(column(c));
        }
    }
    let fks: Vec<FkRow> = sqlx::query_as(FKS)
        .bind(&oids)
        .fetch_all(&mut *conn)
        .await?;
    for (oid, name, parent, parent_qualified, cols, parent_cols, deferrable) in fks {
        if let Some(t) = find(&mut out, oid) {
            t.fks.push(ForeignKey {
                name,
                cols,
                parent,
                parent_qualified,
                parent_cols,
                deferrable,
            });
        }
    }
    read_constraints(conn, &oids, &mut out).await?;
    Ok(out)
}

/// Unique indexes, CHECKs, sequences and partitions of `out`'s tables.
async fn read_constraints(
    conn: &mut PgConnection,
    oids: &[i64],
    out: &mut [Table],
) -> Result<(), sqlx::Error> {
    let uniques: Vec<(i64, Vec<String>)> = sqlx::query_as(UNIQUES)
        .bind(oids)
        .fetch_all(&mut *conn)
        .await?;
    for (oid, cols) in uniques {
        if let Some(t) = find(out, oid) {
            t.uniques.push(cols);
        }
    }
    let checks: Vec<CheckRow> = sqlx::query_as(CHECKS)
        .bind(oids)
        .fetch_all(&mut *conn)
        .await?;
    for (oid, name, cols, def, domain) in checks {
        if let Some(t) = find(out, oid) {
            t.checks.push(Check {
                name,
                cols,
                expr: check_expr(&def),
                domain,
            });
        }
    }
    let seqs: Vec<(i64, String, i64)> = sqlx::query_as(SEQUENCES)
        .bind(oids)
        .fetch_all(&mut *conn)
        .await?;
    for (oid, col, seq) in seqs {
        if let Some(t) = find(out, oid) {
            t.sequences.push((col, seq));
        }
    }
    let parts: Vec<(i64, bool, Vec<String>)> = sqlx::query_as(PARTITIONS)
        .bind(oids)
        .fetch_all(&mut *conn)
        .await?;
    for (oid, is_bound, values) in parts {
        if let Some(t) = find(out, oid) {
            if is_bound {
                t.partition_bounds.extend(values);
            } else {
                t.partition_key = values;
            }
        }
    }
    Ok(())
}

fn find(tables: &mut [Table], oid: i64) -> Option<&mut Table> {
    tables.iter_mut().find(|t| t.oid == oid)
}

fn new_table((oid, schema, name): RelRow) -> Table {
    Table::empty(
        oid,
        format!("{}.{}", quote_ident(&schema), quote_ident(&name)),
    )
}

fn column(c: ColumnRow) -> Column {
    Column {
        attnum: c.1,
        name: c.2,
        type_sql: c.3,
        base_sql: c.4,
        typtype: c.5,
        category: c.6,
        not_null: c.7,
        has_default: c.8,
        identity: c.9,
        generated: c.10,
        typmod_len: (c.11 > 4).then_some(c.11 - 4),
    }
}

/// `CHECK ((x > 0)) NOT VALID` → `((x > 0))`.
fn check_expr(def: &str) -> String {
    let e = def.strip_prefix("CHECK ").unwrap_or(def);
    let e = e.strip_suffix(" NOT VALID").unwrap_or(e);
    let e = e.strip_suffix(" NO INHERIT").unwrap_or(e);
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_expressions_lose_their_keywords() {
        assert_eq!(check_expr("CHECK ((x > 0))"), "((x > 0))");
        assert_eq!(check_expr("CHECK ((VALUE > 0)) NOT VALID"), "((VALUE > 0))");
    }
}
