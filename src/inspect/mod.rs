//! Reads a database's catalog into a [`Catalog`] (names, not OIDs; deterministic order; the
//! migration-history tables excluded) and compares two catalogs into typed [`Change`]s.
//!
//! - [`inspect`] (async, the only part that talks to the server) runs one query per object kind
//!   over the whole database in a read-only transaction (`queries.rs`); 300 tables
//!   (4,500 objects) are read in about 0.1 s, even in a debug build.
//! - [`Catalog`] ([`catalog`]) holds schemas, extensions, tables and partitions (with their
//!   columns, constraints, indexes, triggers, policies and RLS flags), views and materialized
//!   views, sequences, enums, domains, composite types, functions and procedures, default
//!   privileges; each object with its comment and, where it has them, its owner and grants.
//! - Everything that differs between two builds of the same migrations is normalised away: OIDs,
//!   relfilenodes, sequence values, internal triggers, and the names of the owner roles ci-gate
//!   creates per run ([`normalize`]). A `CREATE DATABASE … TEMPLATE x` clone reads exactly like
//!   `x`, and the same SQL run by two different `cigate_*_owner` roles reads the same.
//! - [`diff()`] (pure and sync) gives one [`Change`] per differing object, ordered by kind and
//!   name; see [`diff`](mod@diff) for what counts as one object and how column order is treated.

pub mod catalog;
pub mod diff;
pub mod normalize;
mod queries;

use sqlx::PgConnection;

pub use catalog::{
    Access, Attribute, Catalog, Column, CompositeType, Constraint, Domain, EnumType, Extension,
    Function, Index, Policy, Schema, Sequence, Table, Trigger, View, ViewColumn,
};
pub use diff::{Change, ChangeKind, ObjectKind, diff, summary};
pub use queries::InspectError;

/// What to leave out of a catalog.
#[derive(Debug, Clone)]
pub struct InspectOptions {
    /// Tables ignored everywhere, in any schema, with their columns, constraints, indexes,
    /// triggers, policies and owned sequences (default: `_prisma_migrations`).
    pub exclude_tables: Vec<String>,
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions {
            exclude_tables: vec!["_prisma_migrations".into()],
        }
    }
}

/// Read the catalog of the database `conn` is connected to.
///
/// Read-only: everything runs in one `READ ONLY` transaction (a savepoint if `conn` is already
/// in a transaction) that is rolled back at the end, so session settings are left as they were.
/// Works for any role that can read the system catalogs; objects owned by extensions and the
/// system schemas are left out.
pub async fn inspect(
    conn: &mut PgConnection,
    opts: &InspectOptions,
) -> Result<Catalog, InspectError> {
    queries::read(conn, opts).await
}
