//! The catalog facts the trace compares ([`Snapshot`]: relations, columns, schemas, enums, this
//! transaction's counters, our backend's locks, `lock_timeout`) and the queries reading them, for
//! the whole database or scoped to the focus tables.

use std::collections::{BTreeSet, HashMap};

use sqlx::{AssertSqlSafe, PgConnection};

use super::known::Counters;
use crate::run::scope::Scope;
use crate::sql::quote::quote_ident;

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

pub(super) const USER_NS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

pub(super) type RelRow = (i64, String, String, String, i64);
pub(super) type ColRow = (i64, i16, String, String, bool, i64, i32, bool);

/// The columns of a relation row (`RelRow`), from `pg_class c` and `pg_namespace n`.
pub(super) const REL: &str =
    "c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text, c.relfilenode::int8";
pub(super) const REL_KINDS: &str = "c.relkind IN ('r','p','m','i','S','v','I')";

/// The columns of the tables among the OIDs `$1`.
pub(super) fn cols_of_sql() -> String {
    format!(
        "{COLS} FROM unnest($1::int8[]::oid[]) AS r(oid) JOIN pg_class c ON c.oid = r.oid \
         JOIN pg_attribute a ON a.attrelid = r.oid JOIN pg_type t ON t.oid = a.atttypid \
         WHERE c.relkind IN ('r','p') AND a.attnum > 0 AND NOT a.attisdropped"
    )
}

/// The columns of a column row (`ColRow`), from `pg_attribute a` and `pg_type t`.
pub(super) const COLS: &str = "SELECT a.attrelid::int8, a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atttypid::int8, a.atttypmod, t.typtype = 'e'";

/// What pg_stat_xact_user_tables shows (seq_scan + idx_scan, n_tup_ins/upd/del), read straight
/// from the functions behind it for the tables among the OIDs `$1`.
pub(super) const STATS_OF: &str = "SELECT r.oid::int8, (pg_stat_get_xact_numscans(r.oid) + COALESCE((SELECT sum(pg_stat_get_xact_numscans(i.indexrelid)) \
        FROM pg_index i WHERE i.indrelid = r.oid), 0))::int8, \
        pg_stat_get_xact_tuples_inserted(r.oid)::int8, pg_stat_get_xact_tuples_updated(r.oid)::int8, \
        pg_stat_get_xact_tuples_deleted(r.oid)::int8 \
 FROM unnest($1::int8[]::oid[]) AS r(oid)";

/// The relation locks our backend holds in this database: `rel`, `mode`, in a stable order (the
/// findings built from them, and their order in the report, must not vary between runs).
pub(super) const LOCKS: &str = "SELECT relation::int8 AS rel, mode::text AS mode FROM pg_locks \
    WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted \
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
    ORDER BY relation, mode";

pub(super) fn insert_cols(cols: &mut HashMap<(i64, i16), Col>, rows: Vec<ColRow>) {
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
pub(super) async fn read_enums(
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
pub(super) async fn read_stats(
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
/// [`crate::run::focus::outside`] turns into a full re-run, so nothing observed is lost.
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
