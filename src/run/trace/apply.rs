//! Running one migration the way the tool would (one transaction per file, per statement, or
//! autocommit) and tracing each statement: [`trace_migration`].

use std::time::Instant;

use sqlx::{AssertSqlSafe, PgConnection};

use super::known::{Known, Probe, flush_counters, load_known, lock_before, observe_locked};
use super::observe::{observe, refine_row_changes};
use super::rows::index_tables;
use super::snapshot::{Snapshot, snapshot};
use super::{Baseline, MigrationTrace, StatementTrace};
use crate::discover::Migration;
use crate::run::prisma::{RawError, Semantics, locate};
use crate::sql::position::LineIndex;
use crate::sql::split::{self, is_non_transactional, is_transaction_control};

/// How a file is run: its units (statements, or the whole file when it cannot be split exactly)
/// and whether it runs in autocommit (its own transaction control, or a lone statement that
/// refuses transactions) as the tool would.
struct Units {
    /// Byte ranges of the units.
    units: Vec<(usize, usize)>,
    /// false: the file could not be split exactly and runs whole.
    per_statement: bool,
    autocommit: bool,
}

impl Units {
    fn of(script: &str) -> Self {
        let stmts = split::split(script);
        let per_statement = stmts.is_some();
        let units: Vec<(usize, usize)> = match &stmts {
            Some(s) if !s.is_empty() => glue_begin(s.iter().map(|s| (s.start, s.end)), script),
            _ => vec![(0, script.len())],
        };
        let has_tx_control = stmts
            .as_ref()
            .is_some_and(|s| s.iter().any(|x| is_transaction_control(x.text(script))));
        let lone_non_tx = units.len() == 1 && is_non_transactional(&script[units[0].0..units[0].1]);
        Units {
            units,
            per_statement,
            autocommit: has_tx_control || lone_non_tx,
        }
    }
}

/// A `BEGIN` (or `START TRANSACTION`) runs together with the statement after it: nothing of the
/// harness may run between them, since `SET TRANSACTION` and `SET TRANSACTION SNAPSHOT` must be
/// the transaction's first statement.
fn glue_begin(units: impl Iterator<Item = (usize, usize)>, script: &str) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut open: Option<(usize, usize)> = None;
    for (start, end) in units {
        if let Some((begin, _)) = open.take() {
            out.push((begin, end));
        } else if split::transaction_control(&script[start..end]) == Some(split::TxControl::Begin) {
            open = Some((start, end));
        } else {
            out.push((start, end));
        }
    }
    out.extend(open);
    out
}

/// Trace `m` on `conn` (a seeded clone of base). Returns its trace; a failure stops at the
/// failing statement (later migrations are not traced by the caller).
pub async fn trace_migration(
    conn: &mut PgConnection,
    m: &Migration,
    semantics: Semantics,
    base: &mut Baseline,
) -> MigrationTrace {
    let script = m.text.as_str();
    let Units {
        units,
        per_statement,
        autocommit,
    } = Units::of(script);
    let lines = LineIndex::new(script);
    let whole_tx = semantics == Semantics::WholeFile && !autocommit;
    // Inside a transaction, follow the locks (the module doc); an autocommit file releases them
    // before the statement returns, so it is compared on full snapshots, and what is known is
    // read again after it.
    let mut follow = !autocommit && !base.full_snapshots;
    if follow && !base.known.valid {
        match load_known(conn, base).await {
            Ok(k) => base.known = k,
            Err(_) => follow = false,
        }
    }
    if !follow {
        base.known.valid = false;
    }
    let index_of = if follow {
        base.known.index_table.clone()
    } else {
        index_tables(conn).await
    };
    // Any migration can be the first of a deploy on a fresh connection: a SET lock_timeout from an
    // earlier file must not count for this one.
    let _ = sqlx::raw_sql("RESET lock_timeout")
        .execute(&mut *conn)
        .await;
    let mut trace = MigrationTrace {
        name: m.name.clone(),
        path: m.path.clone(),
        per_statement,
        one_transaction: whole_tx,
        resumed_after: None,
        without: Vec::new(),
        statements: Vec::new(),
        failure: None,
    };

    // The file's transaction opens right before its first statement, after the harness read what
    // it needs: nothing of ours runs inside it first (SET TRANSACTION must come first).
    let mut open_file_tx = whole_tx;
    if whole_tx && follow {
        flush_counters(conn, &mut base.known).await;
    }
    // Inside one transaction, the facts after a statement are the ones before the next, unless
    // something ran in between (the row counts of `refine_row_changes`, which take locks).
    let mut carried: Option<Snapshot> = None;
    let mut carried_probe: Option<Probe> = None;
    for (start, end) in units {
        let text = if per_statement {
            &script[start..end]
        } else {
            script
        };
        let per_stmt_tx = !whole_tx && !autocommit;
        if per_stmt_tx && follow {
            flush_counters(conn, &mut base.known).await;
        }
        let before_probe = if follow {
            let p = lock_before(conn, base, carried_probe.take()).await;
            if p.is_none() {
                base.known.valid = false;
            }
            p
        } else {
            None
        };
        // Without the lock-following facts: a full snapshot of the scope.
        let before = if before_probe.is_some() {
            Snapshot::default()
        } else {
            match carried.take() {
                Some(snap) => snap,
                None => snapshot(conn, &base.scope, false).await.unwrap_or_default(),
            }
        };
        if per_stmt_tx || std::mem::take(&mut open_file_tx) {
            let _ = sqlx::raw_sql("BEGIN").execute(&mut *conn).await;
        }
        let t = Instant::now();
        let result = sqlx::raw_sql(AssertSqlSafe(text.to_string()))
            .execute(&mut *conn)
            .await;
        let duration = t.elapsed();
        let (line, column) = lines.line_col(start + split::after_begin(text));
        let mut st = StatementTrace {
            start,
            end,
            line,
            column,
            text: text.to_string(),
            duration,
            ..StatementTrace::default()
        };
        match result {
            Ok(r) => {
                st.rows_affected = r.rows_affected();
                if let Some(was) = before_probe {
                    match observe_locked(conn, &was, base, &index_of, &mut st).await {
                        Ok((now, queried)) => {
                            if whole_tx && !queried {
                                carried_probe = Some(now);
                            }
                        }
                        Err(_) => base.known.valid = false,
                    }
                } else if let Ok(after) = snapshot(conn, &base.scope, false).await {
                    observe(&before, &after, base, &index_of, &mut st);
                    let queried = !refine_row_changes(conn, &after, base, &mut st)
                        .await
                        .is_empty();
                    if whole_tx && !queried && !follow {
                        carried = Some(after);
                    }
                }
                if per_stmt_tx {
                    commit(conn, &mut base.known).await;
                }
                trace.statements.push(st);
            }
            Err(e) => {
                let raw = RawError::from_sqlx(&e, text, if per_statement { start } else { 0 });
                let raw = if per_statement {
                    raw.in_statement(start, end)
                } else {
                    raw
                };
                trace.failure = Some(locate(script, raw, None));
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                base.known.valid = false;
                trace.statements.push(st);
                return trace;
            }
        }
    }
    if whole_tx {
        commit(conn, &mut base.known).await;
    }
    trace
}

/// COMMIT: the counters may be flushed from now on, and a failed commit rolled back what is known.
pub(super) async fn commit(conn: &mut PgConnection, known: &mut Known) {
    if sqlx::raw_sql("COMMIT").execute(&mut *conn).await.is_err() {
        known.valid = false;
    }
    known.stats_exact = false;
}
