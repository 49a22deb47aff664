//! The catalog queries: one per object kind, each joined over the whole database (never one per
//! table), run in one read-only transaction with fixed output settings.
//!
//! `search_path` is empty while reading, so every name PostgreSQL prints (`format_type`,
//! `pg_get_expr`, `pg_get_indexdef`, `pg_get_viewdef`, …) is schema-qualified unless it lives in
//! `pg_catalog`, whatever the database's or role's own `search_path` is; `DateStyle`,
//! `IntervalStyle`, `TimeZone`, `extra_float_digits` and `bytea_output` are pinned for the same
//! reason (they change how constants in defaults and view queries print).
//!
//! Left out everywhere: `pg_catalog`, `information_schema`, `pg_toast*`, `pg_temp*` (every
//! schema named `pg_…`), objects that belong to an extension (`pg_depend.deptype = 'e'`), and
//! the tables in [`InspectOptions::exclude_tables`] with everything hanging off them.

use std::collections::{BTreeMap, HashMap};

use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};

use super::InspectOptions;
use super::catalog::*;
use super::normalize::{Roles, SEP};
use crate::sql::quote::quote_ident;

/// Schemas we read objects from.
const USER_NS: &str = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'";

/// Fixed output settings for the read (see the module doc).
const SETTINGS: &str = "SET LOCAL search_path = ''; \
     SET LOCAL DateStyle = 'ISO, YMD'; \
     SET LOCAL IntervalStyle = 'postgres'; \
     SET LOCAL TimeZone = 'UTC'; \
     SET LOCAL extra_float_digits = 3; \
     SET LOCAL bytea_output = 'hex'";

/// `NOT EXISTS` an extension membership for object `oid` of catalog `classid`.
fn not_ext(classid: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = '{classid}'::pg_catalog.regclass \
         AND e.objid = {oid} AND e.deptype = 'e')"
    )
}

/// An exploded ACL as `role<SEP>PRIVILEGE[*]` items (`PUBLIC` for grantee 0).
fn explode(acl: &str) -> String {
    format!(
        "ARRAY(SELECT coalesce(r.rolname::text, 'PUBLIC') || chr(31) || x.privilege_type \
         || CASE WHEN x.is_grantable THEN '*' ELSE '' END \
         FROM pg_catalog.aclexplode({acl}) x LEFT JOIN pg_catalog.pg_roles r ON r.oid = x.grantee)"
    )
}

/// Select-list items: owner name, effective ACL, default ACL (in that order).
fn access_cols(acl: &str, kind: char, owner: &str) -> String {
    format!(
        "pg_catalog.pg_get_userbyid({owner})::text, {}, {}",
        explode(&format!(
            "coalesce({acl}, pg_catalog.acldefault('{kind}', {owner}))"
        )),
        explode(&format!("pg_catalog.acldefault('{kind}', {owner})"))
    )
}

/// A collation name (qualified unless in `pg_catalog`) for collation OID `coll` when it is set
/// and differs from `type_coll`.
fn collation_col(coll: &str, type_coll: &str) -> String {
    format!(
        "CASE WHEN {coll} <> 0 AND {coll} <> {type_coll} THEN \
           (SELECT CASE WHEN cn.nspname = 'pg_catalog' THEN quote_ident(co.collname) \
                   ELSE quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END \
            FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace \
            WHERE co.oid = {coll}) END"
    )
}

/// Reads rows with positional getters, advancing a cursor.
struct Cols<'r> {
    row: &'r PgRow,
    i: usize,
}

impl<'r> Cols<'r> {
    fn new(row: &'r PgRow) -> Self {
        Cols { row, i: 0 }
    }

    fn next<T>(&mut self) -> Result<T, sqlx::Error>
    where
        T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        let v = self.row.try_get(self.i)?;
        self.i += 1;
        Ok(v)
    }

    fn text(&mut self) -> Result<String, sqlx::Error> {
        self.next::<String>()
    }

    fn opt(&mut self) -> Result<Option<String>, sqlx::Error> {
        self.next::<Option<String>>()
    }

    fn list(&mut self) -> Result<Vec<String>, sqlx::Error> {
        Ok(self.next::<Option<Vec<String>>>()?.unwrap_or_default())
    }

    fn flag(&mut self) -> Result<bool, sqlx::Error> {
        Ok(self.next::<Option<bool>>()?.unwrap_or(false))
    }

    /// Owner, effective ACL, default ACL → normalised [`Access`].
    fn access(&mut self, roles: &Roles) -> Result<Access, sqlx::Error> {
        let owner = self.text()?;
        let effective = self.list()?;
        let default = self.list()?;
        Ok(roles.access(&owner, &effective, &default))
    }
}

/// Display names: schema as `quote_ident` writes it, object always quoted.
struct Names {
    schemas: HashMap<String, String>,
}

impl Names {
    fn schema(&self, nsp: &str) -> String {
        self.schemas
            .get(nsp)
            .cloned()
            .unwrap_or_else(|| quote_ident(nsp))
    }

    fn qualify(&self, nsp: &str, name: &str) -> String {
        format!("{}.{}", self.schema(nsp), quote_ident(name))
    }

    /// `nsp<SEP>name` (as the queries build it) → qualified name.
    fn qualify_joined(&self, joined: &str) -> String {
        match joined.split_once(SEP) {
            Some((nsp, name)) => self.qualify(nsp, name),
            None => quote_ident(joined),
        }
    }
}

/// Run a catalog query. Queries that filter relations bind the excluded table names as `$1`.
async fn fetch(
    conn: &mut PgConnection,
    sql: String,
    excluded: Option<&[String]>,
) -> Result<Vec<PgRow>, sqlx::Error> {
    let query = sqlx::query(AssertSqlSafe(sql));
    match excluded {
        Some(names) => query.bind(names.to_vec()).fetch_all(conn).await,
        None => query.fetch_all(conn).await,
    }
}

/// Read the catalog of the database `conn` is connected to. See [`super::inspect`].
pub(crate) async fn read(
    conn: &mut PgConnection,
    opts: &InspectOptions,
) -> Result<Catalog, sqlx::Error> {
    let mut tx = if conn.is_in_transaction() {
        conn.begin().await?
    } else {
        conn.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?
    };
    sqlx::raw_sql(SETTINGS).execute(&mut *tx).await?;
    let catalog = read_all(&mut tx, &opts.exclude_tables).await;
    // Read-only: rolling back also restores the settings.
    tx.rollback().await?;
    catalog
}

async fn read_all(conn: &mut PgConnection, excluded: &[String]) -> Result<Catalog, sqlx::Error> {
    // Which names we must not see. `$1` in the queries below.
    let x = excluded;
    let mut cat = Catalog::default();

    let (db_owner, bootstrap): (String, String) = sqlx::query_as(
        "SELECT pg_catalog.pg_get_userbyid(d.datdba)::text, pg_catalog.pg_get_userbyid(10)::text \
         FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()",
    )
    .fetch_one(&mut *conn)
    .await?;
    let roles = Roles {
        db_owner,
        bootstrap,
    };
    let names = Names {
        schemas: sqlx::query_as::<_, (String, String)>(
            "SELECT nspname::text, pg_catalog.quote_ident(nspname) FROM pg_catalog.pg_namespace",
        )
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect(),
    };
    let version_num: i32 =
        sqlx::query_scalar("SELECT pg_catalog.current_setting('server_version_num')::int")
            .fetch_one(&mut *conn)
            .await?;
    // Tables (and views, for nested objects) a row belongs to: its relation is one we list.
    let rel_filter = |alias: &str| {
        format!(
            "{USER_NS} AND {} AND NOT ({alias}.relkind IN ('r', 'p') AND {alias}.relname = ANY($1))",
            not_ext("pg_catalog.pg_class", &format!("{alias}.oid"))
        )
    };

    // Schemas.
    let sql = format!(
        "SELECT n.nspname::text, pg_catalog.obj_description(n.oid, 'pg_namespace'), {} \
         FROM pg_catalog.pg_namespace n WHERE {USER_NS} AND {}",
        access_cols("n.nspacl", 'n', "n.nspowner"),
        not_ext("pg_catalog.pg_namespace", "n.oid"),
    );
    for row in fetch(conn, sql, None).await? {
        let mut c = Cols::new(&row);
        let name = c.text()?;
        let comment = c.opt()?;
        let access = c.access(&roles)?;
        cat.schemas.insert(
            names.schema(&name),
            Schema {
                name,
                access,
                comment,
            },
        );
    }

    // Extensions.
    let sql = "SELECT e.extname::text, e.extversion, n.nspname::text \
               FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
        .to_string();
    for row in fetch(conn, sql, None).await? {
        let mut c = Cols::new(&row);
        let name = c.text()?;
        let version = c.text()?;
        let schema = names.schema(&c.text()?);
        cat.extensions.insert(
            quote_ident(&name),
            Extension {
                name,
                schema,
                version,
            },
        );
    }

    // Tables and partitions.
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, \
           CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END, \
           c.relispartition, \
           CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END, \
           ARRAY(SELECT pn.nspname::text || chr(31) || pc.relname::text FROM pg_catalog.pg_inherits i \
                 JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent \
                 JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace \
                 WHERE i.inhrelid = c.oid ORDER BY i.inhseqno), \
           c.relpersistence = 'u', c.relrowsecurity, c.relforcerowsecurity, c.relreplident::text, \
           (SELECT ic.relname::text FROM pg_catalog.pg_index ix JOIN pg_catalog.pg_class ic ON ic.oid = ix.indexrelid \
            WHERE ix.indrelid = c.oid AND ix.indisreplident LIMIT 1), \
           coalesce(c.reloptions, '{{}}')::text[], \
           pg_catalog.obj_description(c.oid, 'pg_class'), {} \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND {}",
        access_cols("c.relacl", 'r', "c.relowner"),
        rel_filter("c"),
    );
    for row in fetch(conn, sql, Some(x)).await? {
        let mut c = Cols::new(&row);
        let schema = c.text()?;
        let name = c.text()?;
        let partition_key = c.opt()?;
        let is_partition = c.flag()?;
        let partition_bound = c.opt()?;
        let parents: Vec<String> = c.list()?.iter().map(|p| names.qualify_joined(p)).collect();
        let unlogged = c.flag()?;
        let rls_enabled = c.flag()?;
        let rls_forced = c.flag()?;
        let replident = c.text()?;
        let replident_index = c.opt()?;
        let mut options = c.list()?;
        options.sort();
        let comment = c.opt()?;
        let access = c.access(&roles)?;
        let (partition_of, inherits) = if is_partition {
            (parents.first().cloned(), Vec::new())
        } else {
            (None, parents)
        };
        let replica_identity = match replident.as_str() {
            "n" => "nothing".to_string(),
            "f" => "full".to_string(),
            "i" => format!(
                "index {}",
                quote_ident(replident_index.as_deref().unwrap_or("?"))
            ),
            _ => "default".to_string(),
        };
        cat.tables.insert(
            names.qualify(&schema, &name),
            Table {
                schema,
                name,
                partition_key,
                partition_of,
                partition_bound,
                inherits,
                unlogged,
                rls_enabled,
                rls_forced,
                replica_identity,
                options,
                access,
                comment,
                ..Table::default()
            },
        );
    }

    // Views and materialized views.
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, c.relkind = 'm', pg_catalog.pg_get_viewdef(c.oid, true), \
           coalesce(c.reloptions, '{{}}')::text[], c.relispopulated, \
           pg_catalog.obj_description(c.oid, 'pg_class'), {} \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('v', 'm') AND {}",
        access_cols("c.relacl", 'r', "c.relowner"),
        rel_filter("c"),
    );
    for row in fetch(conn, sql, Some(x)).await? {
        let mut c = Cols::new(&row);
        let schema = c.text()?;
        let name = c.text()?;
        let materialized = c.flag()?;
        let query = c
            .opt()?
            .unwrap_or_default()
            .trim()
            .trim_end_matches(';')
            .to_string();
        let mut options = c.list()?;
        options.sort();
        let populated = c.flag()?;
        let comment = c.opt()?;
        let access = c.access(&roles)?;
        cat.views.insert(
            names.qualify(&schema, &name),
            View {
                schema,
                name,
                materialized,
                query,
                options,
                populated,
                access,
                comment,
                ..View::default()
            },
        );
    }

    // Enums, domains and composite types.
    let sql = format!(
        "SELECT n.nspname::text, t.typname::text, t.typtype::text, \
           ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder), \
           CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END, \
           t.typnotnull, pg_catalog.pg_get_expr(t.typdefaultbin, 'pg_catalog.pg_type'::pg_catalog.regclass), \
           CASE WHEN t.typtype = 'd' THEN {} END, \
           pg_catalog.obj_description(t.oid, 'pg_type'), {} \
         FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
         LEFT JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype \
         LEFT JOIN pg_catalog.pg_class c ON c.oid = t.typrelid \
         WHERE (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND c.relkind = 'c')) AND {USER_NS} AND {} \
          ",
        collation_col("t.typcollation", "coalesce(bt.typcollation, 0)"),
        access_cols("t.typacl", 'T', "t.typowner"),
        not_ext("pg_catalog.pg_type", "t.oid"),
    );
    for row in fetch(conn, sql, None).await? {
        let mut c = Cols::new(&row);
        let schema = c.text()?;
        let name = c.text()?;
        let typtype = c.text()?;
        let labels = c.list()?;
        let base_type = c.opt()?;
        let not_null = c.flag()?;
        let default = c.opt()?;
        let collation = c.opt()?;
        let comment = c.opt()?;
        let access = c.access(&roles)?;
        let key = names.qualify(&schema, &name);
        match typtype.as_str() {
            "e" => {
                cat.enums.insert(
                    key,
                    EnumType {
                        schema,
                        name,
                        labels,
                        access,
                        comment,
                    },
                );
            }
            "d" => {
                cat.domains.insert(
                    key,
                    Domain {
                        schema,
                        name,
                        base_type: base_type.unwrap_or_default(),
                        collation,
                        default,
                        not_null,
                        constraints: BTreeMap::new(),
                        access,
                        comment,
                    },
                );
            }
            _ => {
                cat.composite_types.insert(
                    key,
                    CompositeType {
                        schema,
                        name,
                        attributes: Vec::new(),
                        access,
                        comment,
                    },
                );
            }
        }
    }

    // Columns of tables, views and composite types, in order.
    let generated = if version_num >= 120000 {
        "a.attgenerated::text"
    } else {
        "''::text"
    };
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, c.relkind::text, a.attname::text, \
           pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, \
           pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), a.attidentity::text, {generated}, {}, \
           pg_catalog.col_description(c.oid, a.attnum), {}, \
           pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, \
           s.seqcache, s.seqcycle \
         FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum \
         LEFT JOIN pg_catalog.pg_depend di ON a.attidentity <> '' \
           AND di.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND di.refobjid = c.oid \
           AND di.refobjsubid = a.attnum AND di.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
           AND di.deptype = 'i' \
         LEFT JOIN pg_catalog.pg_sequence s ON s.seqrelid = di.objid \
         WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'c') AND {} \
         ORDER BY c.oid, a.attnum",
        collation_col("a.attcollation", "t.typcollation"),
        explode("a.attacl"),
        rel_filter("c"),
    );
    for row in fetch(conn, sql, Some(x)).await? {
        let mut c = Cols::new(&row);
        let schema = c.text()?;
        let rel = c.text()?;
        let relkind = c.text()?;
        let name = c.text()?;
        let data_type = c.text()?;
        let not_null = c.flag()?;
        let expr = c.opt()?;
        let identity_kind = c.opt()?.unwrap_or_default();
        let generated_kind = c.opt()?.unwrap_or_default();
        let collation = c.opt()?;
        let comment = c.opt()?;
        let grants = roles.grants(&c.list()?);
        let seq_type = c.opt()?;
        let seq: Option<(i64, i64, i64, i64, i64, bool)> = match c.next::<Option<i64>>()? {
            Some(start) => Some((start, c.next()?, c.next()?, c.next()?, c.next()?, c.next()?)),
            None => None,
        };
        let key = names.qualify(&schema, &rel);
        match relkind.as_str() {
            "r" | "p" => {
                let Some(table) = cat.tables.get_mut(&key) else {
                    continue;
                };
                let (default, generated) = match generated_kind.as_str() {
                    "s" => (
                        None,
                        Some(format!(
                            "GENERATED ALWAYS AS ({}) STORED",
                            expr.unwrap_or_default()
                        )),
                    ),
                    "v" => (
                        None,
                        Some(format!(
                            "GENERATED ALWAYS AS ({}) VIRTUAL",
                            expr.unwrap_or_default()
                        )),
                    ),
                    _ => (expr, None),
                };
                let identity = match identity_kind.as_str() {
                    "a" => Some("GENERATED ALWAYS AS IDENTITY".to_string()),
                    "d" => Some("GENERATED BY DEFAULT AS IDENTITY".to_string()),
                    _ => None,
                }
                .map(|text| match (&seq_type, seq) {
                    (Some(ty), Some(seq)) => identity_with_options(text, &data_type, ty, seq),
                    _ => text,
                });
                table.columns.push(Column {
                    name,
                    data_type,
                    not_null,
                    default,
                    identity,
                    generated,
                    collation,
                    comment,
                    grants,
                });
            }
            "v" | "m" => {
                if let Some(view) = cat.views.get_mut(&key) {
                    view.columns.push(ViewColumn {
                        name,
                        comment,
                        grants,
                    });
                }
            }
            _ => {
                if let Some(ty) = cat.composite_types.get_mut(&key) {
                    ty.attributes.push(Attribute {
                        name,
                        data_type,
                        collation,
                    });
                }
            }
        }
    }

    // Table constraints (not-null constraints are the columns' `not_null`; constraint triggers
    // are triggers). Constraints, indexes and triggers a partition inherits from its partitioned
    // parent are described once, on the parent: a foreign key on a partitioned table is one
    // object, not one per partition (and one that references a partitioned table has a clone per
    // referenced partition, all with the same name).
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, k.conname::text, k.contype::text, \
           pg_catalog.pg_get_constraintdef(k.oid, true), k.convalidated, \
           pg_catalog.obj_description(k.oid, 'pg_constraint') \
         FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE k.contype IN ('c', 'f', 'p', 'u', 'x') AND k.conparentid = 0 \
           AND c.relkind IN ('r', 'p') AND {}",
        rel_filter("c"),
    );
    for row in fetch(conn, sql, Some(x)).await? {
        let mut c = Cols::new(&row);
        let key = names.qualify(&c.text()?, &c.text()?);
        let name = c.text()?;
        let constraint = constraint(&mut c)?;
        if let Some(table) = cat.tables.get_mut(&key) {
            table.constraints.insert(quote_ident(&name), constraint);
        }
    }

    // Domain constraints.
    let sql = format!(
        "SELECT n.nspname::text, t.typname::text, k.conname::text, k.contype::text, \
           pg_catalog.pg_get_constraintdef(k.oid, true), k.convalidated, \
           pg_catalog.obj_description(k.oid, 'pg_constraint') \
         FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_type t ON t.oid = k.contypid \
         JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
         WHERE k.contypid <> 0 AND k.contype = 'c' AND {USER_NS}"
    );
    for row in fetch(conn, sql, None).await? {
        let mut c = Cols::new(&row);
        let key = names.qualify(&c.text()?, &c.text()?);
        let name = c.text()?;
        let constraint = constraint(&mut c)?;
        if let Some(domain) = cat.domains.get_mut(&key) {
            domain.constraints.insert(quote_ident(&name), constraint);
        }
    }

    // Indexes that do not implement a constraint.
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, i.relname::text, pg_catalog.pg_get_indexdef(i.oid), \
           x.indisvalid, pg_catalog.obj_description(i.oid, 'pg_class') \
         FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid \
         JOIN pg_catalog.pg_class c ON c.oid = x.indrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p', 'm') AND NOT i.relispartition AND {} \
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = x.indexrelid \
                           AND k.conrelid = x.indrelid AND k.contype IN ('p', 'u', 'x'))",
        rel_filter("c"),
    );
    for row in fetch(conn, sql, Some(x)).await? {
        let mut c = Cols::new(&row);
        let schema = c.text()?;
        let rel_key = names.qualify(&schema, &c.text()?);
        let key = names.qualify(&schema, &c.text()?);
        let index = Index {
            indexdef: c.text()?,
            valid: c.flag()?,
            comment: c.opt()?,
        };
        if let Some(table) = cat.tables.get_mut(&rel_key) {
            table.indexes.insert(key, index);
        } else if let Some(view) = cat.views.get_mut(&rel_key) {
            view.indexes.insert(key, index);
        }
    }

    // User triggers (before PostgreSQL 13, clones on partitions are internal).
    let cloned = if version_num >= 130000 {
        "t.tgparentid = 0"
    } else {
        "true"
    };
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, t.tgname::text, pg_catalog.pg_get_triggerdef(t.oid, true), \
           t.tgenabled::text, pg_catalog.obj_description(t.oid, 'pg_trigger') \
         FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT t.tgisinternal AND {cloned} AND {}",
        rel_filter("c"),
    );
    for row in fetch(conn, sql, Some(x)).await? {
        let mut c = Cols::new(&row);
        let rel_key = names.qualify(&c.text()?, &c.text()?);
        let name = quote_ident(&c.text()?);
        let triggerdef = c.text()?;
        let enabled = match c.text()?.as_str() {
            "D" => "disabled",
            "R" => "replica",
            "A" => "always",
            _ => "enabled",
        }
        .to_string();
        let trigger = Trigger {
            triggerdef,
            enabled,
            comment: c.opt()?,
        };
        if let Some(table) = cat.tables.get_mut(&rel_key) {
            table.triggers.insert(name, trigger);
        } else if let Some(view) = cat.views.get_mut(&rel_key) {
            view.triggers.insert(name, trigger);
        }
    }

    // Row-level security policies.
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, p.polname::text, p.polcmd::text, p.polpermissive, \
           ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(r)::text END \
                 FROM unnest(p.polroles) r), \
           pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), \
           pg_catalog.obj_description(p.oid, 'pg_policy') \
         FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE {}",
        rel_filter("c"),
    );
    for row in fetch(conn, sql, Some(x)).await? {
        let mut c = Cols::new(&row);
        let rel_key = names.qualify(&c.text()?, &c.text()?);
        let name = quote_ident(&c.text()?);
        let command = match c.text()?.as_str() {
            "r" => "SELECT",
            "a" => "INSERT",
            "w" => "UPDATE",
            "d" => "DELETE",
            _ => "ALL",
        }
        .to_string();
        let policy = Policy {
            command,
            permissive: c.flag()?,
            roles: roles.role_list(&c.list()?),
            using: c.opt()?,
            with_check: c.opt()?,
            comment: c.opt()?,
        };
        if let Some(table) = cat.tables.get_mut(&rel_key) {
            table.policies.insert(name, policy);
        }
    }

    // Sequences (identity columns' sequences are described with their column).
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, \
           s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle, c.relpersistence = 'u', \
           (SELECT tn.nspname::text || chr(31) || tc.relname::text || chr(31) || ta.attname::text \
            FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class tc ON tc.oid = d.refobjid \
            JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace \
            JOIN pg_catalog.pg_attribute ta ON ta.attrelid = tc.oid AND ta.attnum = d.refobjsubid \
            WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid \
              AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype = 'a' \
              AND d.refobjsubid > 0 LIMIT 1), \
           pg_catalog.obj_description(c.oid, 'pg_class'), {} \
         FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE {} AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
             WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'i')",
        access_cols("c.relacl", 's', "c.relowner"),
        rel_filter("c"),
    );
    for row in fetch(conn, sql, Some(x)).await? {
        let mut c = Cols::new(&row);
        let schema = c.text()?;
        let name = c.text()?;
        let data_type = c.text()?;
        let (start, increment, min, max, cache) =
            (c.next()?, c.next()?, c.next()?, c.next()?, c.next()?);
        let cycle = c.flag()?;
        let unlogged = c.flag()?;
        let owned = c.opt()?;
        let comment = c.opt()?;
        let access = c.access(&roles)?;
        let owned_by = match owned {
            Some(owned) => {
                let parts: Vec<&str> = owned.split(SEP).collect();
                if parts.len() == 3 {
                    if excluded.iter().any(|t| t == parts[1]) {
                        continue; // belongs to an excluded table
                    }
                    Some(format!(
                        "{}.{}",
                        names.qualify(parts[0], parts[1]),
                        quote_ident(parts[2])
                    ))
                } else {
                    None
                }
            }
            None => None,
        };
        cat.sequences.insert(
            names.qualify(&schema, &name),
            Sequence {
                schema,
                name,
                data_type,
                start,
                increment,
                min,
                max,
                cache,
                cycle,
                unlogged,
                owned_by,
                access,
                comment,
            },
        );
    }

    // Functions, procedures and aggregates.
    let sql = format!(
        "SELECT n.nspname::text, p.proname::text, pg_catalog.pg_get_function_identity_arguments(p.oid), \
           p.prokind::text, \
           CASE WHEN p.prokind = 'a' THEN \
             'CREATE AGGREGATE ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' \
             || pg_catalog.pg_get_function_arguments(p.oid) || ') (SFUNC = ' || ag.aggtransfn::text \
             || ', STYPE = ' || pg_catalog.format_type(ag.aggtranstype, NULL) \
             || coalesce(', FINALFUNC = ' || nullif(ag.aggfinalfn::oid, 0)::regproc::text, '') \
             || coalesce(', INITCOND = ' || quote_literal(ag.agginitval), '') || ')' \
           ELSE pg_catalog.pg_get_functiondef(p.oid) END, \
           pg_catalog.obj_description(p.oid, 'pg_proc'), {} \
         FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
         LEFT JOIN pg_catalog.pg_aggregate ag ON ag.aggfnoid = p.oid \
         WHERE {USER_NS} AND {}",
        access_cols("p.proacl", 'f', "p.proowner"),
        not_ext("pg_catalog.pg_proc", "p.oid"),
    );
    for row in fetch(conn, sql, None).await? {
        let mut c = Cols::new(&row);
        let schema = c.text()?;
        let name = c.text()?;
        let arguments = c.text()?;
        let kind = match c.text()?.as_str() {
            "p" => "procedure",
            "a" => "aggregate",
            "w" => "window",
            _ => "function",
        }
        .to_string();
        let definition = c.opt()?.unwrap_or_default().trim().to_string();
        let comment = c.opt()?;
        let access = c.access(&roles)?;
        cat.functions.insert(
            format!("{}({arguments})", names.qualify(&schema, &name)),
            Function {
                schema,
                name,
                arguments,
                kind,
                definition,
                access,
                comment,
            },
        );
    }

    // Default privileges.
    let sql = format!(
        "SELECT pg_catalog.pg_get_userbyid(d.defaclrole)::text, n.nspname::text, d.defaclobjtype::text, {}, {} \
         FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace",
        explode("d.defaclacl"),
        // What the role holds on an object of this type by default: "ALL" for that type.
        explode(
            "pg_catalog.acldefault(CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END::\"char\", \
             d.defaclrole)"
        ),
    );
    for row in fetch(conn, sql, None).await? {
        let mut c = Cols::new(&row);
        let raw_role = c.text()?;
        let role = roles.normalize(&raw_role);
        let schema = c.opt()?;
        let objects = match c.text()?.as_str() {
            "r" => "tables",
            "S" => "sequences",
            "f" => "functions",
            "T" => "types",
            "n" => "schemas",
            other => other,
        }
        .to_string();
        let grants = roles.default_grants(&raw_role, &c.list()?, &c.list()?);
        let key = match schema {
            Some(s) => format!(
                "for role {role} in schema {} on {objects}",
                names.schema(&s)
            ),
            None => format!("for role {role} on {objects}"),
        };
        cat.default_privileges.insert(key, grants);
    }

    Ok(cat)
}

fn constraint(c: &mut Cols<'_>) -> Result<Constraint, sqlx::Error> {
    let kind = match c.text()?.as_str() {
        "p" => "primary key",
        "u" => "unique",
        "f" => "foreign key",
        "c" => "check",
        "x" => "exclusion",
        other => other,
    }
    .to_string();
    Ok(Constraint {
        kind,
        definition: c.text()?,
        validated: c.flag()?,
        comment: c.opt()?,
    })
}

/// `GENERATED … AS IDENTITY`, plus the sequence options that differ from what a plain
/// `GENERATED … AS IDENTITY` on a column of this type would get.
fn identity_with_options(
    text: String,
    column_type: &str,
    seq_type: &str,
    (start, increment, min, max, cache, cycle): (i64, i64, i64, i64, i64, bool),
) -> String {
    let type_max = match seq_type {
        "smallint" => i64::from(i16::MAX),
        "integer" => i64::from(i32::MAX),
        _ => i64::MAX,
    };
    let type_min = match seq_type {
        "smallint" => i64::from(i16::MIN),
        "integer" => i64::from(i32::MIN),
        _ => i64::MIN,
    };
    let (default_min, default_max) = if increment > 0 {
        (1, type_max)
    } else {
        (type_min, -1)
    };
    let default_start = if increment > 0 { min } else { max };
    let mut opts = Vec::new();
    if seq_type != column_type {
        opts.push(format!("AS {seq_type}"));
    }
    if start != default_start {
        opts.push(format!("START WITH {start}"));
    }
    if increment != 1 {
        opts.push(format!("INCREMENT BY {increment}"));
    }
    if min != default_min {
        opts.push(format!("MINVALUE {min}"));
    }
    if max != default_max {
        opts.push(format!("MAXVALUE {max}"));
    }
    if cache != 1 {
        opts.push(format!("CACHE {cache}"));
    }
    if cycle {
        opts.push("CYCLE".into());
    }
    if opts.is_empty() {
        text
    } else {
        format!("{text} ({})", opts.join(" "))
    }
}
