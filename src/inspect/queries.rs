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

mod objects;
mod relations;
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
) -> Result<Catalog, InspectError> {
    let tx_err = |source| InspectError::Transaction { source };
    let mut tx = if conn.is_in_transaction() {
        conn.begin().await.map_err(tx_err)?
    } else {
        conn.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(tx_err)?
    };
    sqlx::raw_sql(SETTINGS)
        .execute(&mut *tx)
        .await
        .map_err(tx_err)?;
    let catalog = read_all(&mut tx, &opts.exclude_tables).await;
    // Read-only: rolling back also restores the settings.
    tx.rollback().await.map_err(tx_err)?;
    catalog
}

/// Read every object kind, in an order where each kind's parent is already there (columns,
/// constraints, indexes, triggers and policies attach to tables, views and types read before).
async fn read_all(conn: &mut PgConnection, excluded: &[String]) -> Result<Catalog, InspectError> {
    let mut r = Reader::new(conn, excluded)
        .await
        .map_err(|source| InspectError::Query {
            kind: "database owner, schema names and server version",
            source,
        })?;
    let step = |kind: &'static str, res: Result<(), sqlx::Error>| {
        res.map_err(|source| InspectError::Query { kind, source })
    };
    step("schemas", r.schemas().await)?;
    step("extensions", r.extensions().await)?;
    step("tables", r.tables().await)?;
    step("views", r.views().await)?;
    step("enums, domains and composite types", r.types().await)?;
    step("columns", r.columns().await)?;
    step("table constraints", r.table_constraints().await)?;
    step("domain constraints", r.domain_constraints().await)?;
    step("indexes", r.indexes().await)?;
    step("triggers", r.triggers().await)?;
    step("policies", r.policies().await)?;
    step("sequences", r.sequences().await)?;
    step("functions", r.functions().await)?;
    step("default privileges", r.default_privileges().await)?;
    Ok(r.cat)
}

/// Why a catalog could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// Opening, configuring or rolling back the read-only transaction.
    #[error("{source}")]
    Transaction {
        #[source]
        source: sqlx::Error,
    },
    /// The query for one kind of object (or decoding its rows) failed. The database's message is
    /// part of the text, since callers show only this error's text.
    #[error("reading the {kind}: {source}")]
    Query {
        kind: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

impl InspectError {
    /// The database error underneath, for callers that present database errors their own way.
    pub fn db_error(&self) -> &sqlx::Error {
        match self {
            InspectError::Transaction { source } | InspectError::Query { source, .. } => source,
        }
    }
}

/// Tables (and views, for nested objects) a row belongs to: its relation is one we list.
fn rel_filter(alias: &str) -> String {
    format!(
        "{USER_NS} AND {} AND NOT ({alias}.relkind IN ('r', 'p') AND {alias}.relname = ANY($1))",
        not_ext("pg_catalog.pg_class", &format!("{alias}.oid"))
    )
}

/// One read of a catalog: what every per-kind query needs, and the catalog being filled.
struct Reader<'c> {
    conn: &'c mut PgConnection,
    /// Which table names we must not see (`$1` in the queries that filter relations).
    excluded: &'c [String],
    roles: Roles,
    names: Names,
    version_num: i32,
    cat: Catalog,
}

impl<'c> Reader<'c> {
    async fn new(conn: &'c mut PgConnection, excluded: &'c [String]) -> Result<Self, sqlx::Error> {
        let (db_owner, bootstrap): (String, String) = sqlx::query_as(
            "SELECT pg_catalog.pg_get_userbyid(d.datdba)::text, pg_catalog.pg_get_userbyid(10)::text \
             FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()",
        )
        .fetch_one(&mut *conn)
        .await?;
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
        Ok(Reader {
            conn,
            excluded,
            roles: Roles {
                db_owner,
                bootstrap,
            },
            names,
            version_num,
            cat: Catalog::default(),
        })
    }

    /// Run one catalog query; `filtered`: it binds the excluded table names as `$1`.
    async fn fetch(&mut self, sql: String, filtered: bool) -> Result<Vec<PgRow>, sqlx::Error> {
        fetch(&mut *self.conn, sql, filtered.then_some(self.excluded)).await
    }
}
