//! Filling one table against the server, each try inside a savepoint: the synthetic values first;
//! after a duplicate key, keys further on and fewer rows; after a violated CHECK (the table's,
//! a domain's, or no partition for the row), values the constraint accepts, found by the server
//! itself among the constraint's own literals (or the enum's labels, or NULL when the column is
//! nullable). Then the keys left for later are pointed at parent rows, and the sequences behind
//! the written keys are moved past them.

use std::collections::BTreeMap;

use sqlx::postgres::{PgDatabaseError, PgRow};
use sqlx::{AssertSqlSafe, PgConnection, Row};

use super::candidates::{self, Combos};
use super::catalog::Table;
use super::insert::{self, Attempt, Fresh, Target};
use super::order::{Link, Step};

/// Tries per table before it is given up.
const ATTEMPTS: usize = 8;

/// What filling one table gave.
pub enum Filled {
    /// Where the rows written are (`ctid@tableoid`), and per set of referenced columns
    /// ([`Target::referenced`]) each row's values.
    Rows {
        ids: Vec<String>,
        keys: Vec<Vec<Vec<Option<String>>>>,
    },
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

/// Fill `x.t` as `step` says, `rows` rows if it can.
pub async fn fill(
    conn: &mut PgConnection,
    x: &Target<'_>,
    step: &Step,
    rows: i64,
) -> Result<Filled, sqlx::Error> {
    let t = x.t;
    let mut a = Attempt::new(rows);
    let deferred = insert::deferred(t, &step.links);
    let mut why = String::from("no row could be written");
    for _ in 0..ATTEMPTS {
        let sql = match insert::insert_sql(x, &a) {
            Ok(sql) => sql,
            Err(why) => return Ok(Filled::Skipped(why)),
        };
        // One message, one round trip: the savepoint, the rows, the release.
        let message = format!(
            "SAVEPOINT cigate_seed; {}{sql}; RELEASE SAVEPOINT cigate_seed",
            set_constraints(&deferred, "DEFERRED")
        );
        let res = sqlx::raw_sql(AssertSqlSafe(message))
            .fetch_all(&mut *conn)
            .await
            .and_then(|rows| written(&rows.iter().collect::<Vec<_>>(), x.referenced.len()));
        let e = match res {
            Ok(filled) => return Ok(filled),
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

/// The rows an INSERT returned ([`insert::insert_sql`]: tag, row id, `sets` key arrays).
fn written(rows: &[&PgRow], sets: usize) -> Result<Filled, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Filled::Skipped("no row could be written".into()));
    }
    let ids = rows
        .iter()
        .map(|r| r.try_get::<String, _>(1))
        .collect::<Result<_, _>>()?;
    let keys = (2..2 + sets)
        .map(|j| rows.iter().map(|r| r.try_get(j)).collect())
        .collect::<Result<_, _>>()?;
    Ok(Filled::Rows { ids, keys })
}

/// Fill the tables of one batch (they do not depend on each other) in one message, each with
/// its synthetic values as they are. `None` when any of them failed: the batch is rolled back
/// and the caller fills them one by one ([`fill`]), which retries and says why.
pub async fn fill_batch(
    conn: &mut PgConnection,
    batch: &[(Target<'_>, &Step)],
    rows: i64,
) -> Result<Option<Vec<Filled>>, sqlx::Error> {
    let mut message = vec!["SAVEPOINT cigate_batch".to_string()];
    for (x, s) in batch {
        let Ok(sql) = insert::insert_sql(x, &Attempt::new(rows)) else {
            return Ok(None);
        };
        message.push(format!(
            "{}{sql}",
            set_constraints(&insert::deferred(x.t, &s.links), "DEFERRED")
        ));
    }
    message.push("RELEASE SAVEPOINT cigate_batch".into());
    let all = match sqlx::raw_sql(AssertSqlSafe(message.join("; ")))
        .fetch_all(&mut *conn)
        .await
    {
        Ok(all) => all,
        Err(e) if pg_error(&e).is_some() => {
            undo(conn, "cigate_batch").await?;
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for (x, _) in batch {
        let mine: Vec<&PgRow> = all
            .iter()
            .filter(|r| r.try_get::<i64, _>(0).is_ok_and(|tag| tag == x.tag as i64))
            .collect();
        out.push(written(&mine, x.referenced.len())?);
    }
    Ok(Some(out))
}

/// `SET CONSTRAINTS … mode; ` for the foreign keys `names` (nothing when there are none).
fn set_constraints(names: &[String], mode: &str) -> String {
    if names.is_empty() {
        return String::new();
    }
    format!("SET CONSTRAINTS {} {mode}; ", names.join(", "))
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

/// Point the keys left for later at parent rows (`filled`: the rows written, by table index;
/// `fresh` and `referenced` as in [`Target`], `referenced` by table index).
/// `false`: a deferred key could not be pointed at a real row; the caller rolls everything back
/// (rows with a dangling deferred key must never be committed).
pub async fn fix_keys(
    conn: &mut PgConnection,
    tables: &[Table],
    steps: &[Step],
    filled: &BTreeMap<usize, Vec<String>>,
    fresh: &Fresh,
    referenced: &[Vec<Vec<String>>],
) -> Result<bool, sqlx::Error> {
    let mut fixes = Vec::new();
    for s in steps {
        let x = Target {
            t: &tables[s.table],
            links: &s.links,
            fresh,
            referenced: &referenced[s.table],
            tag: s.table,
        };
        let Some(ids) = filled.get(&s.table) else {
            continue;
        };
        if let Some(sql) = insert::fixup_sql(&x, ids) {
            let deferred = insert::deferred(x.t, &s.links);
            fixes.push(format!(
                "{sql}; {}",
                set_constraints(&deferred, "IMMEDIATE")
            ));
        }
    }
    if fixes.is_empty() {
        return Ok(true);
    }
    // All at once; when one fails, one at a time.
    let all = format!(
        "SAVEPOINT cigate_fix; {}RELEASE SAVEPOINT cigate_fix",
        fixes.concat()
    );
    match exec(conn, &all).await {
        Ok(()) => return Ok(true),
        Err(e) if e.as_database_error().is_none() => return Err(e),
        Err(_) => undo(conn, "cigate_fix").await?,
    }
    for fix in fixes {
        let message = format!("SAVEPOINT cigate_fix; {fix}RELEASE SAVEPOINT cigate_fix");
        match exec(conn, &message).await {
            Ok(()) => {}
            Err(e) if e.as_database_error().is_none() => return Err(e),
            // Nullable keys stay NULL: the rows are valid as they are.
            Err(_) if !fix.contains("SET CONSTRAINTS") => undo(conn, "cigate_fix").await?,
            Err(_) => return Ok(false),
        }
    }
    Ok(true)
}

/// Move every sequence behind a written key column past the largest value written in it (the
/// values came back from the INSERTs in `fresh`), so the migrations' own INSERTs get fresh keys;
/// then commit. `Err`: the server's message (the rows are committed, the sequences left).
pub async fn advance_sequences_and_commit(
    conn: &mut PgConnection,
    tables: &[Table],
    fresh: &Fresh,
) -> Result<Result<(), String>, sqlx::Error> {
    let mut values = Vec::new();
    for t in tables {
        for (col, seq) in &t.sequences {
            let written = fresh.get(&(t.oid, vec![col.clone()]));
            let max = written
                .into_iter()
                .flatten()
                .filter_map(|r| r.first()?.as_deref()?.parse::<i64>().ok())
                .max();
            if let Some(m) = max {
                values.push(format!("({seq}::oid, {m}::int8)"));
            }
        }
    }
    if values.is_empty() {
        return exec(conn, "COMMIT").await.map(Ok);
    }
    let sql = format!(
        "SAVEPOINT cigate_seq; \
         SELECT count(setval(v.seq::regclass, v.m)) FROM (VALUES {}) v(seq, m) \
         JOIN pg_sequence s ON s.seqrelid = v.seq \
         WHERE s.seqincrement > 0 AND v.m <= s.seqmax \
           AND v.m >= COALESCE(pg_sequence_last_value(v.seq::regclass) + s.seqincrement, s.seqstart); \
         RELEASE SAVEPOINT cigate_seq; COMMIT",
        values.join(", ")
    );
    match exec(conn, &sql).await {
        Ok(()) => Ok(Ok(())),
        Err(e) => match pg_error(&e) {
            Some(db) => {
                let msg = db.message().to_string();
                undo(conn, "cigate_seq").await?;
                exec(conn, "COMMIT").await?;
                Ok(Err(msg))
            }
            None => Err(e),
        },
    }
}
