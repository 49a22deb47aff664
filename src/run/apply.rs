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

use super::{ApplyMode, Failure, LeftOpen, Located, Outcome, Status};
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
#[error("{what}: {}", crate::error::sqlx_text(source))]
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
    // 0 is "no limit", as PostgreSQL reads it (config parsing refuses values it does not accept).
    let ms = statement_timeout.as_millis();
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
        left_open: None,
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
        // The script ran: did it leave a transaction block open (`BEGIN` with no `COMMIT`)?
        let result = match result {
            Ok(()) if may_open_transaction(&m.text) => match in_transaction_block(conn).await {
                Ok(false) => Ok(()),
                Ok(true) => Err(Stop::LeftOpen),
                Err(e) => {
                    let e =
                        run_err("could not ask whether the migration left a transaction open")(e);
                    Err(Stop::Raw(Box::new(bookkeeping_failure(
                        e, format, &m.text,
                    )?)))
                }
            },
            Ok(()) => Ok(()),
            Err(raw) => Err(Stop::Raw(Box::new(raw))),
        };
        match result {
            Ok(()) => {
                let duration = r.duration;
                if records_applied {
                    let rows = format.record_finished(&r.attempt(), &r.applied());
                    if let Err(e) = run_sql(conn, rows).await {
                        // The migration broke the bookkeeping (e.g. dropped the history table):
                        // deploy stops on it the same way.
                        failed = true;
                        let raw = bookkeeping_failure(e, format, &m.text)?;
                        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                        outcomes.push(failed_outcome(m, mode, r.duration, raw, None));
                        continue;
                    }
                } else {
                    ran.push(r);
                }
                outcomes.push(Outcome::applied(m, duration, mode));
            }
            Err(Stop::LeftOpen) => {
                failed = true;
                // What closing the tool's session does: everything since the BEGIN is undone
                // (for Prisma, its row stays as inserted before the script: unfinished).
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                if !records_applied {
                    let open = DbError {
                        sqlstate: None,
                        message: LEFT_OPEN_LOG,
                        detail: None,
                        hint: None,
                    };
                    let mut done: Vec<(Attempt, Finish)> =
                        ran.iter().map(|x| (x.attempt(), x.applied())).collect();
                    done.push((r.attempt(), Finish::Failed(open)));
                    record_or_blame(conn, format.record_batch(&done)).await?;
                    ran.clear();
                }
                outcomes.push(left_open_outcome(m, mode, r.duration));
            }
            Err(Stop::Raw(raw)) => {
                let raw = *raw;
                failed = true;
                let outcome = if raw.timed_out {
                    // The connection is in an unknown state; do not touch it further.
                    failed_outcome(m, mode, r.duration, raw, None)
                } else {
                    // A script with its own BEGIN may leave the session in an aborted transaction.
                    // The ROLLBACK is also the probe: when it cannot be sent, the session is gone.
                    let alive = match sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await {
                        Ok(_) => true,
                        Err(e) => e.as_database_error().is_some(),
                    };
                    if !alive || raw.session_ended() {
                        ran.clear();
                        let raw = raw.session_lost(&m.text);
                        failed_outcome(m, mode, r.duration, raw, None)
                    } else {
                        let rows = if records_applied {
                            format.record_finished(&r.attempt(), &Finish::Failed(db_error(&raw)))
                        } else {
                            let mut done: Vec<(Attempt, Finish)> =
                                ran.iter().map(|x| (x.attempt(), x.applied())).collect();
                            done.push((r.attempt(), Finish::Failed(db_error(&raw))));
                            format.record_batch(&done)
                        };
                        record_or_blame(conn, rows).await?;
                        ran.clear();
                        let replayed = replay_if_unplaced(conn, &m.text, mode, &raw).await;
                        failed_outcome(m, mode, r.duration, raw, replayed)
                    }
                };
                outcomes.push(outcome);
            }
        }
    }
    // After a timeout nothing more is written: the connection is in an unknown state.
    if !failed && !ran.is_empty() {
        let done: Vec<(Attempt, Finish)> = ran.iter().map(|x| (x.attempt(), x.applied())).collect();
        if let Err(e) = run_sql(conn, format.record_batch(&done)).await {
            blame_batch(e, format, migrations, &mut outcomes)?;
        }
    }
    // The later migrations would have run inside the transaction left open, and been rolled back
    // with it.
    if let Some(i) = outcomes.iter().position(|o| o.left_open.is_some()) {
        let later: Vec<String> = outcomes[i + 1..].iter().map(|o| o.name.clone()).collect();
        if let Some(open) = outcomes[i].left_open.as_mut() {
            open.rolled_back_with_it = later;
        }
    }
    Ok(outcomes)
}

/// Why a migration stopped the run.
enum Stop {
    /// It failed, as the server (or the client) said.
    Raw(Box<RawError>),
    /// It ran, but left a transaction block open.
    LeftOpen,
}

/// What the history row's `logs` say for a migration that left its transaction open.
const LEFT_OPEN_LOG: &str = "the migration left a transaction open (BEGIN without COMMIT): rolled back when the session closed";

/// Whether `text` can open a transaction block at all (`BEGIN`, `START TRANSACTION`): only then
/// is the session probed after it. A `DO`/function body's `BEGIN` also matches; the probe then
/// answers.
fn may_open_transaction(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("begin") || lower.contains("start")
}

/// Whether the session is inside a transaction block, asked of the server: `SAVEPOINT` is refused
/// outside one (25P01), accepted (and released at once) inside one, refused in an aborted one
/// (25P02).
async fn in_transaction_block(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    match sqlx::raw_sql("SAVEPOINT ci_gate_probe")
        .execute(&mut *conn)
        .await
    {
        Ok(_) => {
            sqlx::raw_sql("RELEASE SAVEPOINT ci_gate_probe")
                .execute(&mut *conn)
                .await?;
            Ok(true)
        }
        Err(e) => match e.as_database_error().and_then(|d| d.code()).as_deref() {
            Some("25P01") => Ok(false),
            Some("25P02") => Ok(true),
            _ => Err(e),
        },
    }
}

/// A bookkeeping statement failed after a migration ran. A database error means the server is
/// fine and the migration changed what the bookkeeping needs (dropped, renamed or locked the
/// history table, revoked a privilege…): that is the migration's failure, placed at the first
/// statement naming the history table. Anything else (the connection or the server went away) is
/// a [`RunError`].
fn bookkeeping_failure(
    e: RunError,
    format: &dyn Format,
    script: &str,
) -> Result<RawError, RunError> {
    if e.source.as_database_error().is_none() {
        return Err(e);
    }
    let table = format.history_table().name;
    let mut raw = RawError::from_sqlx(&e.source, "", 0);
    raw.position = None;
    raw.message = format!(
        "the migration ran, but the tool's bookkeeping after it failed ({}): {}; the migration changed the history table `{table}` the tool writes to",
        e.what, raw.message
    );
    raw.hint = Some(format!(
        "never drop, rename or alter `{table}` in a migration: the tool owns it, and its deploy fails the same way"
    ));
    raw.statement_start = statement_naming(script, &table);
    Ok(raw)
}

/// Write the rows of a failed migration; when the migration itself broke the history table, the
/// rows cannot be written (deploy could not write them either), which is not a server fault.
async fn record_or_blame(conn: &mut PgConnection, rows: Vec<Sql>) -> Result<(), RunError> {
    match run_sql(conn, rows).await {
        Err(e) if e.source.as_database_error().is_none() => Err(e),
        _ => Ok(()),
    }
}

/// The batched rows of a replay could not be written: blame the first migration naming the history
/// table (it is reported failed, the later ones skipped), or fail as bookkeeping.
fn blame_batch(
    e: RunError,
    format: &dyn Format,
    migrations: &[&Migration],
    outcomes: &mut [Outcome],
) -> Result<(), RunError> {
    let table = format.history_table().name;
    let Some(i) = migrations
        .iter()
        .position(|m| statement_naming(&m.text, &table).is_some())
    else {
        return Err(e);
    };
    let m = migrations[i];
    let raw = bookkeeping_failure(e, format, &m.text)?;
    let (mode, duration) = (outcomes[i].mode, outcomes[i].duration);
    outcomes[i] = failed_outcome(m, mode, duration, raw, None);
    for (o, m) in outcomes[i + 1..].iter_mut().zip(&migrations[i + 1..]) {
        *o = skipped(m);
    }
    Ok(())
}

/// The byte range of the first statement of `script` that names `table`.
fn statement_naming(script: &str, table: &str) -> Option<(usize, usize)> {
    let table = table.to_ascii_lowercase();
    split::split(script)?
        .into_iter()
        .find(|s| s.text(script).to_ascii_lowercase().contains(&table))
        .map(|s| (s.start, s.end))
}

/// The outcome of a migration that left its transaction open: `failed` (nothing of it persists),
/// placed at the last `BEGIN`/`START TRANSACTION` not followed by a `COMMIT`/`ROLLBACK`.
fn left_open_outcome(m: &Migration, mode: ApplyMode, duration: Duration) -> Outcome {
    let script = &m.text;
    let mut open: Option<(usize, usize)> = None;
    for s in split::split(script).unwrap_or_default() {
        let first = s
            .text(script)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match first.as_str() {
            "BEGIN" | "START" => open = Some((s.start, s.end)),
            "COMMIT" | "END" | "ROLLBACK" | "ABORT" => open = None,
            _ => {}
        }
    }
    let (line, column) = line_col(script, open.map(|(s, _)| s).unwrap_or(0));
    Outcome {
        left_open: Some(LeftOpen {
            line,
            column,
            statement: open.map(|(s, e)| script[s..e].to_string()),
            rolled_back_with_it: Vec::new(),
        }),
        ..failed(m, mode, duration)
    }
}

/// `m` failed (what went wrong is set by the caller).
fn failed(m: &Migration, mode: ApplyMode, duration: Duration) -> Outcome {
    Outcome {
        status: Status::Failed,
        duration,
        mode,
        ..skipped(m)
    }
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
    if record_applied && let Err(e) = run_sql(conn, format.record_applied(attempt)).await {
        return Ok((mode, Err(bookkeeping_failure(e, format, text)?)));
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
        failure: Some(locate(&m.text, raw, replayed)),
        ..failed(m, mode, duration)
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
    /// The session ended under the migration (the server is checked by the caller).
    session_lost: bool,
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
                session_lost: false,
            };
        }
        RawError::plain(e.to_string(), false)
    }

    /// What [`send`] gave back for `sent` (at byte `base` of the script).
    fn sent(e: Option<sqlx::Error>, sent: &str, base: usize, timeout: Duration) -> RawError {
        match e {
            Some(e) => RawError::from_sqlx(&e, sent, base),
            None => RawError::timeout(client_wait(timeout).unwrap_or(timeout)),
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
            session_lost: false,
        }
    }

    /// The server ended the session (FATAL, class 57P: terminated by an administrator command,
    /// crash or shutdown).
    fn session_ended(&self) -> bool {
        self.sqlstate
            .as_deref()
            .is_some_and(|c| c.starts_with("57P"))
    }

    /// This error ended the session: say so, and place it at the statement that terminates a
    /// backend when the server gave no better place. Whether the server itself is still up is
    /// checked by the caller ([`crate::run::build::Builder::apply_as`]).
    fn session_lost(mut self, script: &str) -> RawError {
        self.message = format!(
            "the migration ended its own database session (the server is still up): {}",
            self.message
        );
        self.hint = Some(
            "a migration must not terminate backends (pg_terminate_backend, pg_cancel_backend) or its own session: prisma migrate deploy loses its connection the same way and leaves the migration unfinished".into(),
        );
        if self.position.is_none() && self.statement_start.is_none() {
            self.statement_start = split::split(script).and_then(|stmts| {
                stmts
                    .iter()
                    .find(|s| {
                        let t = s.text(script).to_ascii_lowercase();
                        t.contains("pg_terminate_backend") || t.contains("pg_cancel_backend")
                    })
                    .map(|s| (s.start, s.end))
            });
        }
        self.session_lost = true;
        self
    }

    /// A NUL byte at byte `at` of the script: PostgreSQL's protocol cannot carry it (a query is a
    /// C string), so the text is never sent.
    fn nul_byte(script: &str, at: usize) -> RawError {
        let (line, column) = line_col(script, at);
        let mut raw = RawError::plain(
            format!(
                "the file contains a NUL byte (U+0000) at line {line}, column {column}; PostgreSQL does not accept NUL bytes in SQL text, so this migration cannot be sent (deploy fails on it too)"
            ),
            false,
        );
        raw.position = Some(at);
        raw.hint = Some(
            "remove the NUL byte (it often comes from a bad copy-paste, a binary file, or an editor saving UTF-16)".into(),
        );
        raw
    }
}

/// How long the client waits beyond the server's statement timeout.
const GRACE: Duration = Duration::from_secs(15);

/// How long the client waits for one message: the statement timeout plus [`GRACE`]; `None` (no
/// limit) when the statement timeout is 0, as PostgreSQL reads it.
fn client_wait(timeout: Duration) -> Option<Duration> {
    if timeout.is_zero() {
        None
    } else {
        Some(timeout.saturating_add(GRACE))
    }
}

async fn send(
    conn: &mut PgConnection,
    sql: &str,
    timeout: Duration,
) -> Result<(), Option<sqlx::Error>> {
    let query = sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(&mut *conn);
    let answer = match client_wait(timeout) {
        Some(wait) => match tokio::time::timeout(wait, query).await {
            Ok(answer) => answer,
            Err(_) => return Err(None),
        },
        None => query.await,
    };
    answer.map(|_| ()).map_err(Some)
}

/// Send `script[start..end]` as one message, unless it holds a NUL byte (never sent).
async fn send_checked(
    conn: &mut PgConnection,
    script: &str,
    (start, end): (usize, usize),
    timeout: Duration,
) -> Result<(), RawError> {
    let text = &script[start..end];
    if let Some(nul) = text.find('\0') {
        return Err(RawError::nul_byte(script, start + nul));
    }
    send(conn, text, timeout)
        .await
        .map_err(|e| RawError::sent(e, text, start, timeout))
}

/// Send byte ranges of `script` one message each, stopping at the first failure.
async fn send_pieces(
    conn: &mut PgConnection,
    script: &str,
    pieces: impl Iterator<Item = (usize, usize)>,
    timeout: Duration,
) -> Result<(), RawError> {
    for (start, end) in pieces {
        send_checked(conn, script, (start, end), timeout)
            .await
            .map_err(|e| e.in_statement(start, end))?;
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
            let r = send_checked(conn, script, (0, script.len()), timeout).await;
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
            let r = send_checked(conn, script, (0, script.len()), timeout).await;
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
            .map(|s| s.text(script).replace('\0', "\\0"));
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
        session_lost: raw.session_lost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_timeout_zero_is_no_client_limit_and_huge_ones_do_not_overflow() {
        assert_eq!(client_wait(Duration::ZERO), None);
        assert_eq!(client_wait(Duration::MAX), Some(Duration::MAX));
        assert_eq!(
            client_wait(Duration::from_secs(1)),
            Some(Duration::from_secs(16))
        );
        // The timeout message of a huge wait does not panic either.
        let raw = RawError::timeout(Duration::MAX);
        assert!(raw.timed_out);
    }

    #[test]
    fn a_nul_byte_is_placed_at_its_line_and_column() {
        let script = "SELECT 1;\nSELECT 'a\0b';\n";
        let at = script.find('\0').unwrap_or_default();
        let f = locate(script, RawError::nul_byte(script, at), None);
        assert_eq!((f.line, f.column), (2, 10));
        assert!(f.message.contains("NUL byte"), "{}", f.message);
        assert!(!f.statement.unwrap_or_default().contains('\0'));
    }

    #[test]
    fn only_files_that_can_open_a_transaction_are_probed() {
        assert!(may_open_transaction("begin;\nselect 1"));
        assert!(may_open_transaction("START TRANSACTION;"));
        assert!(!may_open_transaction("CREATE TABLE t (id int);"));
    }
}
