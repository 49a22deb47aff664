//! Filling one table against the server, each try inside a savepoint: the synthetic values first;
//! after a duplicate key, keys further on and fewer rows; after a violated CHECK (the table's,
//! a domain's, or no partition for the row), values the constraint accepts, found by the server
//! itself among the constraint's own literals (or the enum's labels, or NULL when the column is
//! nullable). Then the keys left for later are pointed at parent rows, and the sequences behind
//! the written keys are moved past them.

use std::collections::BTreeMap;

use sqlx::postgres::PgDatabaseError;
use sqlx::{AssertSqlSafe, PgConnection};

use super::candidates::{self, Combos};
use super::catalog::Table;
use super::insert::{self, Attempt};
use super::order::{Link, Step};

/// Tries per table before it is given up.
const ATTEMPTS: usize = 8;

/// What filling one table gave.
pub enum Filled {
    /// Where the rows written are (`ctid@tableoid`).
    Rows(Vec<String>),
    /// Why the table could not be filled.
    Skipped(String),
}

pub(super) async fn exec(conn: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// Roll back to savepoint `name` and drop it (retries do not nest subtransactions).
pub(super) async fn undo(conn: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
    exec(
        conn,
        &format!("ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}"),
    )
    .await
}

/// Fill `t` as `step` says, `rows` rows if it can.
pub async fn fill(
    conn: &mut PgConnection,
    t: &Table,
    step: &Step,
    rows: i64,
) -> Result<Filled, sqlx::Error> {
    let mut a = Attempt::new(rows);
    let deferred = insert::deferred(t, &step.links);
    let mut why = String::from("no row could be written");
    for _ in 0..ATTEMPTS {
        let sql = match insert::insert_sql(t, &step.links, &a) {
            Ok(sql) => sql,
            Err(why) => return Ok(Filled::Skipped(why)),
        };
        exec(conn, "SAVEPOINT cigate_seed").await?;
        if !deferred.is_empty() {
            exec(
                conn,
                &format!("SET CONSTRAINTS {} DEFERRED", deferred.join(", ")),
            )
            .await?;
        }
        let res = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await;
        let e = match res {
            Ok(ctids) if !ctids.is_empty() => {
                exec(conn, "RELEASE SAVEPOINT cigate_seed").await?;
                return Ok(Filled::Rows(ctids));
            }
            Ok(_) => {
                exec(conn, "RELEASE SAVEPOINT cigate_seed").await?;
                return Ok(Filled::Skipped(why));
            }
            Err(e) => e,
        };
        undo(conn, "cigate_seed").await?;
        let Some(db) = pg_error(&e) else {
            return Err(e);
        };
        why = reason(t, step, db);
        match next_attempt(conn, t, &a, db).await? {
            Some(next) => a = next,
            None => break,
        }
    }
    Ok(Filled::Skipped(why))
}

/// The server's error, when `e` is one (anything else ends the seeding).
pub(super) fn pg_error(e: &sqlx::Error) -> Option<&PgDatabaseError> {
    e.as_database_error()?.try_downcast_ref::<PgDatabaseError>()
}

/// What to try after `db` failed attempt `a`; `None` when nothing else can help.
async fn next_attempt(
    conn: &mut PgConnection,
    t: &Table,
    a: &Attempt,
    db: &PgDatabaseError,
) -> Result<Option<Attempt>, sqlx::Error> {
    let mut next = a.clone();
    let combos: Combos = match db.code() {
        "23505" if a.salt < 2 || a.rows > 1 => {
            next.salt += 1;
            if a.salt >= 2 {
                next.rows = 1;
            }
            return Ok(Some(next));
        }
        "23514" => match db.constraint() {
            Some(name) => {
                let done: Vec<&String> = a.overrides.keys().collect();
                candidates::for_check(conn, t, name, a.rows, &done).await?
            }
            None => candidates::for_partition(t),
        },
        _ => None,
    };
    let Some((cols, rows)) = combos else {
        return Ok(None);
    };
    for (j, c) in cols.iter().enumerate() {
        let vals = rows.iter().map(|r| r.get(j).cloned().flatten()).collect();
        next.overrides.insert(c.clone(), vals);
    }
    Ok((next != *a).then_some(next))
}

/// Why `t` could not be filled, from the server's error.
fn reason(t: &Table, step: &Step, db: &PgDatabaseError) -> String {
    let mut why = db.message().to_string();
    if let Some(d) = db.detail() {
        why = format!("{why} ({d})");
    }
    let parent = db.column().and_then(|c| {
        t.fks
            .iter()
            .zip(&step.links)
            .find(|(fk, l)| **l == Link::Parent && fk.cols.iter().any(|x| x == c))
    });
    if let Some((fk, _)) = parent
        && db.code() == "23502"
    {
        let left = if t.unique_over(&fk.cols) {
            " left (one-to-one)"
        } else {
            ""
        };
        why = format!("{why}: no row of {}{left} to point at", fk.parent_qualified);
    }
    if step.stuck {
        why = format!("in a cycle of NOT NULL foreign keys that could not be broken: {why}");
    }
    why
}

/// Point the keys left for later at parent rows (`filled`: the rows written, by table index).
/// `false`: a deferred key could not be pointed at a real row; the caller rolls everything back
/// (rows with a dangling deferred key must never be committed).
pub async fn fix_keys(
    conn: &mut PgConnection,
    tables: &[Table],
    steps: &[Step],
    filled: &BTreeMap<usize, Vec<String>>,
) -> Result<bool, sqlx::Error> {
    for s in steps {
        let (t, Some(ctids)) = (&tables[s.table], filled.get(&s.table)) else {
            continue;
        };
        let Some(sql) = insert::fixup_sql(t, &s.links) else {
            continue;
        };
        let deferred = insert::deferred(t, &s.links);
        exec(conn, "SAVEPOINT cigate_fix").await?;
        let mut res = sqlx::query(AssertSqlSafe(sql))
            .bind(ctids)
            .execute(&mut *conn)
            .await
            .map(|_| ());
        if res.is_ok() && !deferred.is_empty() {
            let sql = format!("SET CONSTRAINTS {} IMMEDIATE", deferred.join(", "));
            res = exec(conn, &sql).await;
        }
        match res {
            Ok(()) => exec(conn, "RELEASE SAVEPOINT cigate_fix").await?,
            Err(e) if e.as_database_error().is_none() => return Err(e),
            // Nullable keys stay NULL: the rows are valid as they are.
            Err(_) if deferred.is_empty() => undo(conn, "cigate_fix").await?,
            Err(_) => return Ok(false),
        }
    }
    Ok(true)
}

/// Move every sequence behind a written numeric column past the largest value now in it, so the
/// migrations' own INSERTs get fresh keys. `Err`: the server's message.
pub async fn advance_sequences(
    conn: &mut PgConnection,
    tables: &[Table],
    filled: &BTreeMap<usize, Vec<String>>,
) -> Result<Result<(), String>, sqlx::Error> {
    let mut maxes = Vec::new();
    for t in filled.keys().map(|&i| &tables[i]) {
        for (col, seq) in &t.sequences {
            if t.column(col).is_some_and(|c| c.category == "N") {
                maxes.push(format!(
                    "SELECT {seq}::oid AS seq, (SELECT max({})::int8 FROM {}) AS m",
                    crate::sql::quote::quote_ident(col),
                    t.qualified
                ));
            }
        }
    }
    if maxes.is_empty() {
        return Ok(Ok(()));
    }
    let sql = format!(
        "SELECT count(setval(x.seq::regclass, x.m)) FROM ({}) x JOIN pg_sequence s ON s.seqrelid = x.seq \
         WHERE x.m IS NOT NULL AND s.seqincrement > 0 AND x.m <= s.seqmax \
           AND x.m >= COALESCE(pg_sequence_last_value(x.seq::regclass) + s.seqincrement, s.seqstart)",
        maxes.join(" UNION ALL ")
    );
    exec(conn, "SAVEPOINT cigate_seq").await?;
    match exec(conn, &sql).await {
        Ok(()) => exec(conn, "RELEASE SAVEPOINT cigate_seq").await.map(Ok),
        Err(e) => match e.as_database_error() {
            Some(db) => {
                let msg = db.message().to_string();
                undo(conn, "cigate_seq").await?;
                Ok(Err(msg))
            }
            None => Err(e),
        },
    }
}
