//! The one executor: applies migrations as a [`Format`] says its tool does, and writes the
//! tool's history rows around them.
//!
//! Per migration (under [`RunTx::PerMigration`]): [`Format::record_started`] (autocommitted),
//! then `BEGIN` when [`ApplyPlan::tx`] asks for it, the unit ([`ApplyUnit`]: whole file, parsed
//! statements or the tool's chunks, each one simple-query message), [`Format::record_applied`],
//! `COMMIT`, then [`Format::record_finished`]. The first failure stops the run; the rest are
//! `skipped`. A failure is placed in the file: the server's position, the statement sent alone,
//! or (when the server gave neither) the statement found by replaying the file inside a
//! rolled-back transaction.
//!
//! Under [`RunTx::AllPending`] one transaction holds every migration and its rows; a failure
//! rolls all of them back (the earlier ones are reported `skipped`: nothing of them remains).
//!
//! [`History::Batched`] replays history production already has: the scripts run exactly as the
//! tool runs them, and the rows are written at once afterwards ([`Format::record_batch`]).

use std::time::{Duration, Instant};

use sqlx::postgres::{PgDatabaseError, PgErrorPosition};
use sqlx::{AssertSqlSafe, PgConnection};

use super::{ApplyMode, Failure, Located, Outcome, Status};
use crate::discover::{Migration, char_pos_to_byte, line_col};
use crate::format::{
    ApplyPlan, ApplyUnit, Attempt, DbError, Finish, Format, Param, RunTx, Sql, TxMode,
};
use crate::sql::split::{self, is_transaction_control};

/// How the history rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// As the tool's deploy does: rows around each migration.
    PerMigration,
    /// Replaying history production already has (the base branch): the scripts run exactly as
    /// deploy runs them, one after the other, but their rows are written together once the
    /// scripts have run (or before a failure's row), with the same columns deploy leaves. The
    /// three round trips per migration cost +61 % over the bare scripts at 5,000 migrations
    /// (BENCHMARKS.md); no script sees its own row either way unless it reads the history table.
    Batched,
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

/// Prepare a connection the way the tool's is: its session settings, our statement timeout,
/// and its history table.
pub async fn prepare(
    conn: &mut PgConnection,
    format: &dyn Format,
    statement_timeout: Duration,
) -> Result<(), RunError> {
    let ms = statement_timeout.as_millis().max(1);
    let mut setup = format.session_setup();
    setup.push(format!("SET statement_timeout = {ms}"));
    setup.push("SET application_name = 'ci-gate'".into());
    sqlx::raw_sql(AssertSqlSafe(setup.join("; ")))
        .execute(&mut *conn)
        .await
        .map_err(run_err("could not configure the session"))?;
    let what = format!("could not create {}", format.history_table().name);
    for ddl in format.history_ddl() {
        sqlx::raw_sql(AssertSqlSafe(ddl))
            .execute(&mut *conn)
            .await
            .map_err(run_err(&what))?;
    }
    Ok(())
}

/// Run bookkeeping statements in order.
async fn run_sql(conn: &mut PgConnection, stmts: Vec<Sql>) -> Result<(), RunError> {
    for s in stmts {
        let mut q = sqlx::query(AssertSqlSafe(s.text));
        for p in s.params {
            q = match p {
                Param::Text(v) => q.bind(v),
                Param::OptText(v) => q.bind(v),
                Param::Int(v) => q.bind(v),
                Param::Bool(v) => q.bind(v),
                Param::Bytes(v) => q.bind(v),
                Param::TextArray(v) => q.bind(v),
            };
        }
        q.execute(&mut *conn).await.map_err(run_err(&s.what))?;
    }
    Ok(())
}

/// A migration that ran, with what its rows need.
struct Ran<'m> {
    migration: &'m Migration,
    id: String,
    started_at: String,
    finished_at: String,
    duration: Duration,
}

impl<'m> Ran<'m> {
    fn start(migration: &'m Migration) -> Ran<'m> {
        Ran {
            migration,
            id: uuid::Uuid::new_v4().to_string(),
            started_at: now(),
            finished_at: String::new(),
            duration: Duration::ZERO,
        }
    }

    fn attempt(&self) -> Attempt<'_> {
        Attempt {
            migration: self.migration,
            id: &self.id,
            started_at: &self.started_at,
        }
    }

    fn applied(&self) -> Finish<'_> {
        Finish::Applied {
            finished_at: &self.finished_at,
            duration: self.duration,
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

fn db_error(raw: &RawError) -> DbError<'_> {
    DbError {
        sqlstate: raw.sqlstate.as_deref(),
        message: &raw.message,
        detail: raw.detail.as_deref(),
        hint: raw.hint.as_deref(),
    }
}

fn skipped(m: &Migration) -> Outcome {
    Outcome {
        name: m.name.clone(),
        path: m.path.clone(),
        status: Status::Skipped,
        duration: Duration::ZERO,
        mode: ApplyMode::WholeFile,
        failure: None,
    }
}

/// Apply `migrations` in order as `format`'s tool does; the first failure stops the run and the
/// rest are `skipped`.
pub async fn apply_all(
    conn: &mut PgConnection,
    format: &dyn Format,
    migrations: &[&Migration],
    statement_timeout: Duration,
    history: History,
) -> Result<Vec<Outcome>, RunError> {
    if format.run_tx() == RunTx::AllPending {
        return apply_all_in_one_tx(conn, format, migrations, statement_timeout, history).await;
    }
    let mut outcomes = Vec::with_capacity(migrations.len());
    let mut ran: Vec<Ran> = Vec::new();
    let mut failed = false;
    for m in migrations {
        if failed {
            outcomes.push(skipped(m));
            continue;
        }
        let mut r = Ran::start(m);
        let records_applied = history == History::PerMigration;
        if records_applied {
            run_sql(conn, format.record_started(&r.attempt())).await?;
        }
        let plan = format.apply_plan(m);
        let started = Instant::now();
        let (mode, result) = execute(
            conn,
            format,
            &r.attempt(),
            &plan,
            statement_timeout,
            records_applied,
        )
        .await?;
        r.duration = started.elapsed();
        r.finished_at = now();
        match result {
            Ok(()) => {
                outcomes.push(Outcome::applied(m, r.duration, mode));
                if records_applied {
                    run_sql(conn, format.record_finished(&r.attempt(), &r.applied())).await?;
                } else {
                    ran.push(r);
                }
            }
            Err(raw) => {
                failed = true;
                let outcome = if raw.timed_out {
                    // The connection is in an unknown state; do not touch it further.
                    failed_outcome(m, mode, r.duration, raw, None)
                } else {
                    // A script with its own BEGIN may leave the session in an aborted transaction.
                    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                    let rows = if records_applied {
                        format.record_finished(&r.attempt(), &Finish::Failed(db_error(&raw)))
                    } else {
                        let mut done: Vec<(Attempt, Finish)> =
                            ran.iter().map(|x| (x.attempt(), x.applied())).collect();
                        done.push((r.attempt(), Finish::Failed(db_error(&raw))));
                        format.record_batch(&done)
                    };
                    run_sql(conn, rows).await?;
                    ran.clear();
                    let replayed = replay_if_unplaced(conn, &m.text, mode, &raw).await;
                    failed_outcome(m, mode, r.duration, raw, replayed)
                };
                outcomes.push(outcome);
            }
        }
    }
    // After a timeout nothing more is written: the connection is in an unknown state.
    if !failed && !ran.is_empty() {
        let done: Vec<(Attempt, Finish)> = ran.iter().map(|x| (x.attempt(), x.applied())).collect();
        run_sql(conn, format.record_batch(&done)).await?;
    }
    Ok(outcomes)
}

/// One migration's unit, inside its own transaction when the plan says so; the format's
/// in-transaction rows when `record_applied`. `Err` is a bookkeeping failure; the inner result
/// is the migration's.
async fn execute(
    conn: &mut PgConnection,
    format: &dyn Format,
    attempt: &Attempt<'_>,
    plan: &ApplyPlan,
    timeout: Duration,
    record_applied: bool,
) -> Result<(ApplyMode, Result<(), RawError>), RunError> {
    let text = &attempt.migration.text;
    let in_tx = plan.tx == TxMode::Transaction;
    if in_tx && let Err(e) = send(conn, "BEGIN", timeout).await {
        return Ok((
            mode_of(&plan.unit),
            Err(RawError::sent(e, "BEGIN", 0, timeout)),
        ));
    }
    let (mode, result) = execute_script(conn, text, &plan.unit, timeout).await;
    if result.is_err() {
        return Ok((mode, result));
    }
    if record_applied {
        run_sql(conn, format.record_applied(attempt)).await?;
    }
    if in_tx && let Err(e) = send(conn, "COMMIT", timeout).await {
        return Ok((mode, Err(RawError::sent(e, "COMMIT", 0, timeout))));
    }
    Ok((mode, Ok(())))
}

fn mode_of(unit: &ApplyUnit) -> ApplyMode {
    match unit {
        ApplyUnit::WholeFile => ApplyMode::WholeFile,
        ApplyUnit::Statements => ApplyMode::Statements,
        ApplyUnit::Chunks(_) => ApplyMode::Chunks,
    }
}

/// [`RunTx::AllPending`]: `BEGIN`, every migration and its rows, `COMMIT`; a failure rolls the
/// whole run back.
async fn apply_all_in_one_tx(
    conn: &mut PgConnection,
    format: &dyn Format,
    migrations: &[&Migration],
    timeout: Duration,
    history: History,
) -> Result<Vec<Outcome>, RunError> {
    sqlx::raw_sql("BEGIN")
        .execute(&mut *conn)
        .await
        .map_err(run_err("could not open the run's transaction"))?;
    let per_migration = history == History::PerMigration;
    let mut outcomes = Vec::with_capacity(migrations.len());
    let mut ran: Vec<Ran> = Vec::new();
    let mut failure = None;
    for m in migrations {
        let mut r = Ran::start(m);
        if per_migration {
            run_sql(conn, format.record_started(&r.attempt())).await?;
        }
        let unit = format.apply_plan(m).unit;
        let started = Instant::now();
        let (mode, result) = execute_script(conn, &m.text, &unit, timeout).await;
        r.duration = started.elapsed();
        r.finished_at = now();
        match result {
            Ok(()) => {
                if per_migration {
                    run_sql(conn, format.record_applied(&r.attempt())).await?;
                }
                outcomes.push(Outcome::applied(m, r.duration, mode));
                ran.push(r);
            }
            Err(raw) => {
                failure = Some((r, mode, raw));
                break;
            }
        }
    }
    if failure.is_none() {
        if !per_migration {
            let done: Vec<(Attempt, Finish)> =
                ran.iter().map(|x| (x.attempt(), x.applied())).collect();
            run_sql(conn, format.record_batch(&done)).await?;
        }
        match send(conn, "COMMIT", timeout).await {
            Ok(()) => {
                if per_migration {
                    for r in &ran {
                        run_sql(conn, format.record_finished(&r.attempt(), &r.applied())).await?;
                    }
                }
                return Ok(outcomes);
            }
            // A deferred check failing at COMMIT is the last migration's.
            Err(e) => match ran.pop() {
                Some(last) => {
                    outcomes.pop();
                    let raw = RawError::sent(e, "COMMIT", 0, timeout);
                    failure = Some((last, ApplyMode::WholeFile, raw));
                }
                None => return Ok(outcomes),
            },
        }
    }
    let Some((r, mode, raw)) = failure else {
        return Ok(outcomes);
    };
    // Everything before the failure was rolled back with it.
    for o in &mut outcomes {
        o.status = Status::Skipped;
    }
    if !raw.timed_out {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
        run_sql(
            conn,
            format.record_finished(&r.attempt(), &Finish::Failed(db_error(&raw))),
        )
        .await?;
    }
    outcomes.push(failed_outcome(r.migration, mode, r.duration, raw, None));
    let done = outcomes.len();
    outcomes.extend(migrations[done..].iter().map(|m| skipped(m)));
    Ok(outcomes)
}

/// A failed migration's outcome, placed in the file.
fn failed_outcome(
    m: &Migration,
    mode: ApplyMode,
    duration: Duration,
    raw: RawError,
    replayed: Option<(usize, usize)>,
) -> Outcome {
    Outcome {
        name: m.name.clone(),
        path: m.path.clone(),
        status: Status::Failed,
        duration,
        mode,
        failure: Some(locate(&m.text, raw, replayed)),
    }
}

/// When the server gave no position and the file went whole, find the failing statement.
async fn replay_if_unplaced(
    conn: &mut PgConnection,
    script: &str,
    mode: ApplyMode,
    raw: &RawError,
) -> Option<(usize, usize)> {
    if raw.position.is_none() && raw.statement_start.is_none() && mode != ApplyMode::Statements {
        replay_to_find_statement(conn, script, raw).await
    } else {
        None
    }
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

    /// What [`send`] gave back for `sent` (at byte `base` of the script).
    fn sent(e: Option<sqlx::Error>, sent: &str, base: usize, timeout: Duration) -> RawError {
        match e {
            Some(e) => RawError::from_sqlx(&e, sent, base),
            None => RawError::timeout(timeout + GRACE),
        }
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

/// How long the client waits beyond the server's statement timeout.
const GRACE: Duration = Duration::from_secs(15);

async fn send(
    conn: &mut PgConnection,
    sql: &str,
    timeout: Duration,
) -> Result<(), Option<sqlx::Error>> {
    match tokio::time::timeout(
        timeout + GRACE,
        sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(&mut *conn),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Some(e)),
        Err(_) => Err(None),
    }
}

/// Send byte ranges of `script` one message each, stopping at the first failure.
async fn send_pieces(
    conn: &mut PgConnection,
    script: &str,
    pieces: impl Iterator<Item = (usize, usize)>,
    timeout: Duration,
) -> Result<(), RawError> {
    for (start, end) in pieces {
        let text = &script[start..end];
        if let Err(e) = send(conn, text, timeout).await {
            return Err(RawError::sent(e, text, start, timeout).in_statement(start, end));
        }
    }
    Ok(())
}

/// Send `script` as `unit` says.
async fn execute_script(
    conn: &mut PgConnection,
    script: &str,
    unit: &ApplyUnit,
    timeout: Duration,
) -> (ApplyMode, Result<(), RawError>) {
    match unit {
        ApplyUnit::Statements => {
            if let Some(stmts) = split::split(script) {
                let pieces = stmts.iter().map(|s| (s.start, s.end));
                let r = send_pieces(conn, script, pieces, timeout).await;
                return (ApplyMode::Statements, r);
            }
            let r = send(conn, script, timeout)
                .await
                .map_err(|e| RawError::sent(e, script, 0, timeout));
            (ApplyMode::WholeFileFallback, r)
        }
        ApplyUnit::Chunks(ranges) => {
            let valid = ranges
                .iter()
                .all(|r| script.get(r.clone()).is_some() && r.start <= r.end);
            if !valid {
                let message = "the format cut the file outside its text".to_string();
                return (ApplyMode::Chunks, Err(RawError::plain(message, false)));
            }
            let pieces = ranges.iter().map(|r| (r.start, r.end));
            (
                ApplyMode::Chunks,
                send_pieces(conn, script, pieces, timeout).await,
            )
        }
        ApplyUnit::WholeFile => {
            let r = send(conn, script, timeout)
                .await
                .map_err(|e| RawError::sent(e, script, 0, timeout));
            (ApplyMode::WholeFile, r)
        }
    }
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

/// Place `raw` in `script`: the server's position, the statement sent alone (or found by
/// replaying), else the file's first statement.
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
