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
            .and_then(|rows| written(&rows, x.referenced.len()));
        let e = match res {
            Ok(filled @ Filled::Rows { .. }) => return Ok(filled),
            Ok(Filled::Skipped(_)) => return Ok(Filled::Skipped(why)),
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

/// The rows an INSERT returned ([`insert::insert_sql`]), `sets` key arrays after the row id.
fn written(rows: &[PgRow], sets: usize) -> Result<Filled, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Filled::Skipped(String::new()));
    }
    let ids = rows
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
    let keys = (1..=sets)
        .map(|j| rows.iter().map(|r| r.try_get(j)).collect())
        .collect::<Result<_, _>>()?;
    Ok(Filled::Rows { ids, keys })
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
    for s in steps {
        let x = Target {
            t: &tables[s.table],
            links: &s.links,
            fresh,
            referenced: &referenced[s.table],
        };
        let Some(ids) = filled.get(&s.table) else {
            continue;
        };
        let Some(sql) = insert::fixup_sql(&x, ids) else {
            continue;
        };
        let deferred = insert::deferred(x.t, &s.links);
        let message = format!(
            "SAVEPOINT cigate_fix; {sql}; {}RELEASE SAVEPOINT cigate_fix",
            set_constraints(&deferred, "IMMEDIATE")
        );
        match exec(conn, &message).await {
            Ok(()) => {}
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
