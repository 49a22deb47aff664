//! `prisma migrate deploy`, the entry points the tests and the pipeline have always called.
//!
//! What deploy does now lives in [`crate::format::prisma::Prisma`] (its rows, its unit by
//! version) and the executor in [`super::apply`]; these functions pick the Prisma format from
//! [`ApplyOptions::semantics`] and call the executor:
//! 1. `INSERT INTO _prisma_migrations (id, checksum, started_at, migration_name)`, autocommitted
//!    before the script (`logs` NULL, `applied_steps_count` 0);
//! 2. the script: Prisma ≤ 7.3 sends the whole `migration.sql` as **one simple-query message with
//!    no BEGIN** (one implicit transaction: atomic, and `CREATE INDEX CONCURRENTLY` works only
//!    alone); Prisma ≥ 7.4 splits it into statements and sends each as its own autocommitted
//!    message, falling back to one message when the file cannot be split;
//! 3. success: `applied_steps_count + 1`, then `finished_at` (separate autocommits);
//!    failure: `logs` = the rendered error, and applying stops (P3018).

use std::time::Duration;

use sqlx::PgConnection;

use super::Outcome;
use super::apply;
pub use super::apply::{History, RunError};
pub(crate) use super::apply::{RawError, locate};
use crate::discover::Migration;
pub use crate::format::prisma::{HISTORY_TABLE_DDL, Prisma, Semantics};

/// How the Prisma runs are made.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// How this Prisma version sends `migration.sql` (read by [`Prisma`] and the tracer).
    pub semantics: Semantics,
    /// Server-side `statement_timeout` for the migrations; the client waits this long plus a grace.
    pub statement_timeout: Duration,
    /// The `lock_timeout` the deploy's connection sets (`lock-timeout:`): every migration
    /// session starts with it, as a connection opened with `options=-c lock_timeout=…` does.
    pub lock_timeout: Option<Duration>,
}

impl ApplyOptions {
    /// The Prisma format at this version.
    pub fn format(&self) -> Prisma {
        Prisma::new(self.semantics)
    }
}

/// Prepare a connection the way Prisma's does: search_path `public`, our statement timeout, and
/// the history table.
pub async fn prepare(conn: &mut PgConnection, opts: &ApplyOptions) -> Result<(), RunError> {
    apply::prepare(conn, &opts.format(), opts.statement_timeout).await
}

/// Apply `migrations` in order; the first failure stops the run and the rest are `skipped`.
pub async fn apply_all(
    conn: &mut PgConnection,
    migrations: &[&Migration],
    opts: &ApplyOptions,
) -> Result<Vec<Outcome>, RunError> {
    apply_all_with(conn, migrations, opts, History::PerMigration).await
}

/// [`apply_all`], with the history rows written as `history` says.
pub async fn apply_all_with(
    conn: &mut PgConnection,
    migrations: &[&Migration],
    opts: &ApplyOptions,
    history: History,
) -> Result<Vec<Outcome>, RunError> {
    apply::apply_all(
        conn,
        &opts.format(),
        migrations,
        opts.statement_timeout,
        history,
    )
    .await
}
