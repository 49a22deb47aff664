//! `prisma migrate deploy`, reproduced.
//!
//! For each pending migration, in order:
//! 1. `INSERT INTO _prisma_migrations (id, checksum, started_at, migration_name)`, autocommitted
//!    before the script (`logs` NULL, `applied_steps_count` 0);
//! 2. the script: Prisma ≤ 7.3 sends the whole `migration.sql` as **one simple-query message with
//!    no BEGIN** (one implicit transaction: atomic, and `CREATE INDEX CONCURRENTLY` works only
//!    alone); Prisma ≥ 7.4 splits it into statements and sends each as its own autocommitted
//!    message, falling back to one message when the file cannot be split;
//! 3. success: `applied_steps_count + 1`, then `finished_at` (separate autocommits);
//!    failure: `logs` = the rendered error, and applying stops (P3018).

use std::time::{Duration, Instant};

use sqlx::postgres::{PgDatabaseError, PgErrorPosition};
use sqlx::{AssertSqlSafe, PgConnection};

use super::{ApplyMode, Failure, Located, Outcome, Status};
use crate::discover::{Migration, char_pos_to_byte, line_col};
use crate::sql::split::{self, is_transaction_control};

/// Prisma's `_prisma_migrations` DDL (sql-schema-connector, postgres flavour).
pub const HISTORY_TABLE_DDL: &str = "CREATE TABLE IF NOT EXISTS \"_prisma_migrations\" (\n    \
    \"id\" VARCHAR(36) PRIMARY KEY NOT NULL,\n    \"checksum\" VARCHAR(64) NOT NULL,\n    \
    \"finished_at\" TIMESTAMPTZ,\n    \"migration_name\" VARCHAR(255) NOT NULL,\n    \"logs\" TEXT,\n    \
    \"rolled_back_at\" TIMESTAMPTZ,\n    \"started_at\" TIMESTAMPTZ NOT NULL DEFAULT now(),\n    \
    \"applied_steps_count\" INTEGER NOT NULL DEFAULT 0\n)";

/// How `migration.sql` is executed, by Prisma version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantics {
    /// ≤ 7.3 (and unknown: the stricter): one message per file.
    WholeFile,
    /// ≥ 7.4: one autocommitted message per statement.
    Statements,
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub semantics: Semantics,
    /// Server-side `statement_timeout` for the migrations; the client waits this long plus a grace.
    pub statement_timeout: Duration,
}

/// A failure of the bookkeeping around the migrations (history table, connection): not the
/// migrations' fault.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct RunError {
    pub what: String,
    #[source]
    pub source: sqlx::Error,
}

fn run_err(what: &str) -> impl FnOnce(sqlx::Error) -> RunError + '_ {
    move |source| RunError {
        what: what.to_string(),
        source,
    }
}

/// Prepare a connection the way Prisma's does: search_path `public`, our statement timeout, and
/// the history table.
pub async fn prepare(conn: &mut PgConnection, opts: &ApplyOptions) -> Result<(), RunError> {
    let ms = opts.statement_timeout.as_millis().max(1);
    let setup = format!(
        "SET search_path TO \"public\"; SET statement_timeout = {ms}; SET application_name = 'ci-gate'"
    );
    sqlx::raw_sql(AssertSqlSafe(setup))
        .execute(&mut *conn)
        .await
        .map_err(run_err("could not configure the session"))?;
    sqlx::raw_sql(HISTORY_TABLE_DDL)
        .execute(&mut *conn)
        .await
        .map_err(run_err("could not create _prisma_migrations"))?;
    Ok(())
}

/// How the `_prisma_migrations` rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// As `prisma migrate deploy` does: a row before each script, two updates after it.
    PerMigration,
    /// Replaying history production already has (the base branch): the scripts run exactly as
    /// deploy runs them, one after the other, but their rows are written together once the
    /// scripts have run (or before a failure's row), with the same columns deploy leaves. The
    /// three round trips per migration cost +61 % over the bare scripts at 5,000 migrations
    /// (BENCHMARKS.md); no script sees its own row either way unless it reads the history table.
    Batched,
}

/// A finished migration's row, waiting to be written ([`History::Batched`]).
struct PendingRow {
    id: String,
    checksum: String,
    name: String,
    started_at: String,
    finished_at: String,
}

/// Write the pending rows in one statement and forget them.
async fn flush_rows(conn: &mut PgConnection, rows: &mut Vec<PendingRow>) -> Result<(), RunError> {
    if rows.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&PendingRow) -> &String| rows.iter().map(f).cloned().collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO \"_prisma_migrations\" (\"id\", \"checksum\", \"started_at\", \"finished_at\", \"migration_name\", \"applied_steps_count\") \
         SELECT id, checksum, started::timestamptz, finished::timestamptz, name, 1 \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS r(id, checksum, started, finished, name)",
    )
    .bind(col(|r| &r.id))
    .bind(col(|r| &r.checksum))
    .bind(col(|r| &r.started_at))
    .bind(col(|r| &r.finished_at))
    .bind(col(|r| &r.name))
    .execute(&mut *conn)
    .await
    .map_err(run_err("could not record the applied migrations in _prisma_migrations"))?;
    rows.clear();
    Ok(())
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
    let mut outcomes = Vec::with_capacity(migrations.len());
    let mut failed = false;
    let mut pending = Vec::new();
    for m in migrations {
        if history == History::Batched && !failed {
            let started_at = chrono::Utc::now().to_rfc3339();
            let started = Instant::now();
            let (mode, result) = execute_script(conn, &m.text, opts).await;
            let duration = started.elapsed();
            match result {
                Ok(()) => {
                    pending.push(PendingRow {
                        id: uuid::Uuid::new_v4().to_string(),
                        checksum: m.checksum.clone(),
                        name: m.name.clone(),
                        started_at,
                        finished_at: chrono::Utc::now().to_rfc3339(),
                    });
                    outcomes.push(Outcome::applied(m, duration, mode));
                }
                // The rows of the migrations before it, then this one's as deploy leaves it
                // (started, the error in `logs`). A timed-out connection is not touched.
                Err(raw) => {
                    let id = uuid::Uuid::new_v4().to_string();
                    if !raw.timed_out {
                        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                        flush_rows(conn, &mut pending).await?;
                        insert_started(conn, &id, m, &started_at).await?;
                    }
                    outcomes.push(failed_outcome(conn, m, &id, mode, duration, raw).await?);
                    failed = true;
                }
            }
            continue;
        }
        if failed {
            outcomes.push(Outcome {
                name: m.name.clone(),
                path: m.path.clone(),
                status: Status::Skipped,
                duration: Duration::ZERO,
                mode: ApplyMode::WholeFile,
                failure: None,
            });
            continue;
        }
        let outcome = apply_one(conn, m, opts).await?;
        failed = outcome.status == Status::Failed;
        outcomes.push(outcome);
    }
    if !failed {
        flush_rows(conn, &mut pending).await?;
    }
    Ok(outcomes)
}

/// Apply one migration with its history rows.
pub async fn apply_one(
    conn: &mut PgConnection,
    m: &Migration,
    opts: &ApplyOptions,
) -> Result<Outcome, RunError> {
    let id = uuid::Uuid::new_v4().to_string();
    insert_started(conn, &id, m, &chrono::Utc::now().to_rfc3339()).await?;

    let started = Instant::now();
    let (mode, result) = execute_script(conn, &m.text, opts).await;
    let duration = started.elapsed();

    match result {
        Ok(()) => {
            sqlx::query("UPDATE \"_prisma_migrations\" SET \"applied_steps_count\" = \"applied_steps_count\" + 1 WHERE \"id\" = $1")
                .bind(&id)
                .execute(&mut *conn)
                .await
                .map_err(run_err("could not record the applied step"))?;
            sqlx::query("UPDATE \"_prisma_migrations\" SET \"finished_at\" = $1::timestamptz WHERE \"id\" = $2")
                .bind(chrono::Utc::now().to_rfc3339())
                .bind(&id)
                .execute(&mut *conn)
                .await
                .map_err(run_err("could not record the migration end"))?;
            Ok(Outcome::applied(m, duration, mode))
        }
        Err(raw) => failed_outcome(conn, m, &id, mode, duration, raw).await,
    }
}

/// Deploy's first history write: the row for a migration about to run.
async fn insert_started(
    conn: &mut PgConnection,
    id: &str,
    m: &Migration,
    started_at: &str,
) -> Result<(), RunError> {
    sqlx::query("INSERT INTO \"_prisma_migrations\" (\"id\", \"checksum\", \"started_at\", \"migration_name\") VALUES ($1, $2, $3::timestamptz, $4)")
        .bind(id)
        .bind(&m.checksum)
        .bind(started_at)
        .bind(&m.name)
        .execute(&mut *conn)
        .await
        .map_err(run_err("could not record the migration start in _prisma_migrations"))?;
    Ok(())
}

/// A failed script: the error in the row's `logs` (as deploy writes it), placed in the file.
async fn failed_outcome(
    conn: &mut PgConnection,
    m: &Migration,
    id: &str,
    mode: ApplyMode,
    duration: Duration,
    raw: RawError,
) -> Result<Outcome, RunError> {
    let failed = |failure| Outcome {
        name: m.name.clone(),
        path: m.path.clone(),
        status: Status::Failed,
        duration,
        mode,
        failure: Some(failure),
    };
    if raw.timed_out {
        // The connection is in an unknown state; do not touch it further.
        return Ok(failed(locate(&m.text, raw, None)));
    }
    // A script with its own BEGIN may leave the session in an aborted transaction.
    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
    let logs = render_logs(&m.name, &raw);
    sqlx::query("UPDATE \"_prisma_migrations\" SET \"logs\" = $1 WHERE \"id\" = $2")
        .bind(&logs)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(run_err(
            "could not record the failure in _prisma_migrations",
        ))?;
    let replayed =
        if raw.position.is_none() && raw.statement_start.is_none() && mode != ApplyMode::Statements
        {
            replay_to_find_statement(conn, &m.text, &raw).await
        } else {
            None
        };
    Ok(failed(locate(&m.text, raw, replayed)))
}

/// An error as it came back, before it is placed in the file.
#[derive(Debug, Clone)]
pub(crate) struct RawError {
    sqlstate: Option<String>,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
    context: Option<String>,
    table: Option<String>,
    column: Option<String>,
    constraint: Option<String>,
    /// Byte offset in the script of the server's position.
    position: Option<usize>,
    /// Byte range of the statement that was sent alone and failed.
    statement_start: Option<(usize, usize)>,
    timed_out: bool,
}

impl RawError {
    /// Mark the statement (byte range) that was sent alone.
    pub(crate) fn in_statement(mut self, start: usize, end: usize) -> RawError {
        self.statement_start = Some((start, end));
        self
    }

    pub(crate) fn from_sqlx(e: &sqlx::Error, sent: &str, base: usize) -> RawError {
        if let Some(db) = e.as_database_error()
            && let Some(pg) = db.try_downcast_ref::<PgDatabaseError>()
        {
            let position = match pg.position() {
                Some(PgErrorPosition::Original(n)) => Some(base + char_pos_to_byte(sent, n)),
                _ => None,
            };
            return RawError {
                sqlstate: Some(pg.code().to_string()),
                message: pg.message().to_string(),
                detail: pg.detail().map(str::to_owned),
                hint: pg.hint().map(str::to_owned),
                context: pg.r#where().map(str::to_owned),
                table: pg.table().map(str::to_owned),
                column: pg.column().map(str::to_owned),
                constraint: pg.constraint().map(str::to_owned),
                position,
                statement_start: None,
                timed_out: false,
            };
        }
        RawError::plain(e.to_string(), false)
    }

    fn timeout(after: Duration) -> RawError {
        RawError::plain(
            format!(
                "no answer from the server within {} s (statement timeout plus grace)",
                after.as_secs()
            ),
            true,
        )
    }

    /// An error with only a message (not from the server).
    fn plain(message: String, timed_out: bool) -> RawError {
        RawError {
            sqlstate: None,
            message,
            detail: None,
            hint: None,
            context: None,
            table: None,
            column: None,
            constraint: None,
            position: None,
            statement_start: None,
            timed_out,
        }
    }
}

async fn send(
    conn: &mut PgConnection,
    sql: &str,
    opts: &ApplyOptions,
) -> Result<(), Option<sqlx::Error>> {
    let grace = opts.statement_timeout + Duration::from_secs(15);
    match tokio::time::timeout(
        grace,
        sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(&mut *conn),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Some(e)),
        Err(_) => Err(None),
    }
}

async fn execute_script(
    conn: &mut PgConnection,
    script: &str,
    opts: &ApplyOptions,
) -> (ApplyMode, Result<(), RawError>) {
    let grace = opts.statement_timeout + Duration::from_secs(15);
    if opts.semantics == Semantics::Statements {
        if let Some(stmts) = split::split(script) {
            for s in &stmts {
                let text = s.text(script);
                if let Err(e) = send(conn, text, opts).await {
                    let mut raw = match e {
                        Some(e) => RawError::from_sqlx(&e, text, s.start),
                        None => RawError::timeout(grace),
                    };
                    raw.statement_start = Some((s.start, s.end));
                    return (ApplyMode::Statements, Err(raw));
                }
            }
            return (ApplyMode::Statements, Ok(()));
        }
        let r = send(conn, script, opts).await.map_err(|e| match e {
            Some(e) => RawError::from_sqlx(&e, script, 0),
            None => RawError::timeout(grace),
        });
        return (ApplyMode::WholeFileFallback, r);
    }
    let r = send(conn, script, opts).await.map_err(|e| match e {
        Some(e) => RawError::from_sqlx(&e, script, 0),
        None => RawError::timeout(grace),
    });
    (ApplyMode::WholeFile, r)
}

/// The server gave no position: replay the (rolled-back) file statement by statement inside a
/// transaction that is rolled back, to find the statement that fails with the same SQLSTATE.
/// The database is discarded after a failure anyway (applying stops), so this is safe.
async fn replay_to_find_statement(
    conn: &mut PgConnection,
    script: &str,
    raw: &RawError,
) -> Option<(usize, usize)> {
    let stmts = split::split(script)?;
    if raw.sqlstate.as_deref() == Some("25001") {
        // The statement that refuses a transaction block.
        return stmts
            .iter()
            .find(|s| split::is_non_transactional(s.text(script)))
            .map(|s| (s.start, s.end));
    }
    sqlx::raw_sql("BEGIN").execute(&mut *conn).await.ok()?;
    let mut found = None;
    for s in &stmts {
        let text = s.text(script);
        if is_transaction_control(text) {
            continue;
        }
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(text.to_string()))
            .execute(&mut *conn)
            .await
        {
            let same = e
                .as_database_error()
                .and_then(|d| d.code().map(|c| c.to_string()))
                .map(|c| Some(c) == raw.sqlstate)
                .unwrap_or(false);
            if same || raw.sqlstate.is_none() {
                found = Some((s.start, s.end));
            }
            break;
        }
    }
    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
    found
}

pub(crate) fn locate(script: &str, raw: RawError, replayed: Option<(usize, usize)>) -> Failure {
    let stmts = split::split(script);
    let (offset, statement, located) = if let Some(pos) = raw.position {
        let stmt = stmts
            .as_ref()
            .and_then(|s| split::statement_at(s, pos))
            .map(|s| s.text(script).to_string());
        (pos, stmt, Located::ServerPosition)
    } else if let Some((start, end)) = raw.statement_start.or(replayed) {
        (
            start,
            Some(script[start..end].to_string()),
            Located::Statement,
        )
    } else {
        let first = stmts
            .as_ref()
            .and_then(|s| s.first())
            .map(|s| s.start)
            .unwrap_or(0);
        (first, None, Located::File)
    };
    let (line, column) = line_col(script, offset);
    Failure {
        sqlstate: raw.sqlstate,
        message: raw.message,
        detail: raw.detail,
        hint: raw.hint,
        context: raw.context,
        db_table: raw.table,
        db_column: raw.column,
        db_constraint: raw.constraint,
        line,
        column,
        statement,
        located,
        timed_out: raw.timed_out,
    }
}

/// The `logs` text Prisma writes for a failed migration (P3018's rendering).
fn render_logs(name: &str, raw: &RawError) -> String {
    let mut s = format!(
        "A migration failed to apply. New migrations cannot be applied before the error is recovered from. \
         Read more about how to resolve migration issues in a production database: https://pris.ly/d/migrate-resolve\n\n\
         Migration name: {name}\n\n"
    );
    if let Some(code) = &raw.sqlstate {
        s.push_str(&format!("Database error code: {code}\n\n"));
    }
    s.push_str(&format!("Database error:\n{}", raw.message));
    if let Some(d) = &raw.detail {
        s.push_str(&format!("\nDETAIL: {d}"));
    }
    if let Some(h) = &raw.hint {
        s.push_str(&format!("\nHINT: {h}"));
    }
    s
}
