//! A second [`Format`], written against the public trait only, to prove the seam is not
//! Prisma-shaped: plain ordered SQL files (`NNN_name.sql` directly in the directory, byte order,
//! SHA-256 of the bytes), its own history table in its own schema, each file in one transaction
//! of its own (`BEGIN`; file; row; `COMMIT`), or every pending file in one transaction (psql's
//! `--single-transaction`). Its verdicts differ from Prisma's on purpose: an edited applied file
//! is refused, and a late-dated file is skipped for ever (only names after the last applied one
//! are pending, as golang-migrate does).
//!
//! It discovers a temp dir, applies it on a real PostgreSQL (local provider) through
//! `Builder::apply_as`, the run code the pipeline uses, and checks the rows, the failure
//! location, the all-or-nothing run, and the plan and live verdicts.

mod common;

use std::cmp::Ordering;
use std::path::Path;

use ci_gate::discover::tree::{EntryKind, join};
use ci_gate::discover::{DiscoverError, FsTree, Migration, MigrationSet, Tree};
use ci_gate::format::prisma::Prisma;
use ci_gate::format::{
    ApplyPlan, ApplyUnit, Attempt, Finish, Format, FormatKind, HistoryCase, HistoryRow,
    HistoryTable, Param, RunTx, Sql, ToolVerdict, TxMode,
};
use ci_gate::live::{LiveHistory, analyze_with, read_history_of};
use ci_gate::plan::{Classification, plan_with};
use ci_gate::provision::{self, Server, connect_quiet};
use ci_gate::run::apply::History;
use ci_gate::run::build::Builder;
use ci_gate::run::prisma::{ApplyOptions, Semantics};
use ci_gate::run::{ApplyMode, Outcome, Status};
use common::local_request;
use sha2::{Digest, Sha256};

const TABLE: &str = "\"plain_meta\".\"history\"";

/// Plain ordered SQL files.
struct Plain {
    single_transaction: bool,
}

impl Format for Plain {
    fn kind(&self) -> FormatKind {
        FormatKind::Custom("plain")
    }

    fn discover(&self, tree: &dyn Tree, dir: &str) -> Result<MigrationSet, DiscoverError> {
        let io = |path: &str| {
            let path = tree.display(path);
            move |source| DiscoverError::Io { path, source }
        };
        let mut names: Vec<String> = tree
            .list(dir)
            .map_err(io(dir))?
            .into_iter()
            .filter(|e| e.kind == EntryKind::File && is_migration(&e.name))
            .map(|e| e.name)
            .collect();
        if names.is_empty() {
            return Err(DiscoverError::Empty {
                path: tree.display(dir),
            });
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut migrations = Vec::new();
        for file in names {
            let path = join(dir, &file);
            let Some(bytes) = tree.read(&path).map_err(io(&path))? else {
                continue;
            };
            migrations.push(Migration {
                name: file.trim_end_matches(".sql").to_string(),
                path,
                text: String::from_utf8_lossy(&bytes).into_owned(),
                checksum: self.checksum(&bytes),
                bytes,
            });
        }
        Ok(MigrationSet {
            format: self.kind(),
            dir: dir.to_string(),
            migrations,
            problems: vec![],
            notes: vec![],
        })
    }

    fn compare(&self, a: &Migration, b: &Migration) -> Ordering {
        a.name.as_bytes().cmp(b.name.as_bytes())
    }

    fn checksum(&self, bytes: &[u8]) -> String {
        format!("{:x}", Sha256::digest(bytes))
    }

    fn apply_plan(&self, _m: &Migration) -> ApplyPlan {
        ApplyPlan {
            unit: ApplyUnit::WholeFile,
            tx: if self.single_transaction {
                TxMode::Autocommit
            } else {
                TxMode::Transaction
            },
        }
    }

    fn run_tx(&self) -> RunTx {
        if self.single_transaction {
            RunTx::AllPending
        } else {
            RunTx::PerMigration
        }
    }

    fn history_table(&self) -> HistoryTable {
        HistoryTable {
            schema: Some("plain_meta".into()),
            name: "history".into(),
        }
    }

    fn history_ddl(&self) -> Vec<String> {
        vec![
            "CREATE SCHEMA IF NOT EXISTS \"plain_meta\"".into(),
            format!(
                "CREATE TABLE IF NOT EXISTS {TABLE} (name text PRIMARY KEY, checksum text NOT NULL, \
                 applied_at timestamptz NOT NULL DEFAULT now(), execution_ms bigint)"
            ),
        ]
    }

    fn record_started(&self, _a: &Attempt<'_>) -> Vec<Sql> {
        vec![]
    }

    /// Inside the file's transaction: a failed file leaves no row.
    fn record_applied(&self, a: &Attempt<'_>) -> Vec<Sql> {
        vec![Sql::new(
            "could not record the file",
            format!("INSERT INTO {TABLE} (name, checksum) VALUES ($1, $2)"),
            vec![
                Param::Text(a.migration.name.clone()),
                Param::Text(a.migration.checksum.clone()),
            ],
        )]
    }

    fn record_finished(&self, a: &Attempt<'_>, finish: &Finish<'_>) -> Vec<Sql> {
        match finish {
            Finish::Applied { duration, .. } => vec![Sql::new(
                "could not record the duration",
                format!("UPDATE {TABLE} SET execution_ms = $1 WHERE name = $2"),
                vec![
                    Param::Int(duration.as_millis() as i64),
                    Param::Text(a.migration.name.clone()),
                ],
            )],
            Finish::Failed(_) => vec![],
        }
    }

    fn history_select(&self, table: &str) -> String {
        format!(
            "SELECT name, checksum, applied_at::text, applied_at::text, NULL::text, NULL::text \
             FROM {table} ORDER BY name"
        )
    }

    fn verdict(&self, case: HistoryCase<'_>) -> ToolVerdict {
        match case {
            HistoryCase::Edited { name } => ToolVerdict::Refuses {
                message: format!("{name} was modified after it was applied"),
            },
            HistoryCase::OutOfOrder { .. } => ToolVerdict::SkipsForever,
            HistoryCase::Missing { .. } => ToolVerdict::Unnoticed,
            HistoryCase::Failed { .. } => ToolVerdict::Unnoticed,
        }
    }

    /// Only files after the last applied one.
    fn pending(&self, rows: &[HistoryRow], local: &[Migration]) -> Vec<usize> {
        let last = rows
            .iter()
            .filter(|r| r.is_applied())
            .map(|r| r.name.as_str())
            .max();
        (0..local.len())
            .filter(|&i| last.is_none_or(|l| local[i].name.as_str() > l))
            .collect()
    }
}

fn is_migration(file: &str) -> bool {
    let Some(stem) = file.strip_suffix(".sql") else {
        return false;
    };
    let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && stem[digits..].starts_with('_') && stem.len() > digits + 1
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir: {e}"));
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).unwrap_or_else(|e| panic!("write {name}: {e}"));
    }
}

const BASE: &[(&str, &str)] = &[
    (
        "001_users.sql",
        "CREATE TABLE users (id int PRIMARY KEY, email text);\n",
    ),
    (
        "002_posts.sql",
        "CREATE TABLE posts (id int PRIMARY KEY, user_id int REFERENCES users);\n",
    ),
    (
        "003_index.sql",
        "CREATE INDEX posts_user_idx ON posts (user_id);\n",
    ),
    ("README.md", "not a migration\n"),
    ("notes.sql", "-- no number: not a migration\n"),
];

fn discover(plain: &Plain, root: &Path) -> MigrationSet {
    plain
        .discover(&FsTree::new(root), "migrations")
        .unwrap_or_else(|e| panic!("{e}"))
}

fn builder<'a>(server: &'a Server, opts: &'a ApplyOptions) -> Builder<'a> {
    Builder {
        server,
        owner: None,
        extensions: &[],
        superuser_extensions: &[],
        opts,
    }
}

fn options() -> ApplyOptions {
    ApplyOptions {
        semantics: Semantics::WholeFile,
        statement_timeout: std::time::Duration::from_secs(60),
        lock_timeout: None,
    }
}

async fn history(server: &Server, db: &str, plain: &Plain) -> LiveHistory {
    let mut conn = connect_quiet(&server.admin_options(db))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    read_history_of(&mut conn, plain, "public")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn tables(server: &Server, db: &str) -> Vec<String> {
    let mut conn = connect_quiet(&server.admin_options(db))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

fn statuses(out: &[Outcome]) -> Vec<Status> {
    out.iter().map(|o| o.status).collect()
}

#[test]
fn discovery_is_byte_ordered_numbered_sql_files_with_sha256() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(&tmp.path().join("migrations"), BASE);
    write(
        &tmp.path().join("migrations"),
        &[("010_later.sql", "SELECT 1;\n")],
    );
    let set = discover(
        &Plain {
            single_transaction: false,
        },
        tmp.path(),
    );
    let names: Vec<&str> = set.migrations.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["001_users", "002_posts", "003_index", "010_later"]);
    assert_eq!(set.format.to_string(), "plain");
    assert_eq!(set.migrations[0].path, "migrations/001_users.sql");
    assert_eq!(
        set.migrations[3].checksum,
        format!("{:x}", Sha256::digest(b"SELECT 1;\n"))
    );
}

#[test]
fn plan_uses_the_formats_equality_order_and_verdicts_not_prismas() {
    let base_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let head_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(&base_dir.path().join("migrations"), BASE);
    write(&head_dir.path().join("migrations"), BASE);
    write(
        &head_dir.path().join("migrations"),
        &[
            // CRLF only: Prisma's equality accepts it, plain's (bytes) does not.
            (
                "001_users.sql",
                "CREATE TABLE users (id int PRIMARY KEY, email text);\r\n",
            ),
            ("0025_late.sql", "CREATE TABLE late (id int);\n"),
            ("004_new.sql", "CREATE TABLE new (id int);\n"),
        ],
    );
    let plain = Plain {
        single_transaction: false,
    };
    let (base, head) = (
        discover(&plain, base_dir.path()),
        discover(&plain, head_dir.path()),
    );
    let names: Vec<&str> = head.migrations.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "001_users",
            "0025_late",
            "002_posts",
            "003_index",
            "004_new"
        ]
    );

    let p = plan_with(&plain, &base, &head);
    assert_eq!(p.head[0].class, Classification::Edited);
    assert!(matches!(p.head[0].tool, Some(ToolVerdict::Refuses { .. })));
    assert_eq!(
        p.head[1].class,
        Classification::New {
            out_of_order_before: Some("003_index".into())
        }
    );
    assert_eq!(p.head[1].tool, Some(ToolVerdict::SkipsForever));
    assert_eq!(p.deploy, vec![4], "the late file is skipped for ever");

    let prisma = plan_with(&Prisma::default(), &base, &head);
    assert_eq!(prisma.head[0].class, Classification::Unchanged, "CRLF");
    assert_eq!(prisma.head[1].tool, Some(ToolVerdict::Applies));
    assert_eq!(prisma.deploy, vec![1, 4], "Prisma applies the late one");
}

#[tokio::test]
async fn applies_each_file_in_its_own_transaction_with_its_own_rows() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(&tmp.path().join("migrations"), BASE);
    write(
        &tmp.path().join("migrations"),
        &[(
            "004_broken.sql",
            "CREATE TABLE audit (id int);\n\nINSERT INTO audit\n  SELECT nope FROM users;\n",
        )],
    );
    let plain = Plain {
        single_transaction: false,
    };
    let set = discover(&plain, tmp.path());
    let server = provision::provision(&local_request("format-plain"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let opts = options();
    let b = builder(&server, &opts);
    let db = b
        .create("plain", None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let all: Vec<&Migration> = set.migrations.iter().collect();
    let out = b
        .apply_as(&plain, &db, &all, History::PerMigration)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    use Status::*;
    assert_eq!(statuses(&out), [Applied, Applied, Applied, Failed]);
    assert!(out.iter().all(|o| o.mode == ApplyMode::WholeFile));
    let failure = out[3]
        .failure
        .clone()
        .unwrap_or_else(|| panic!("no failure"));
    assert_eq!(failure.sqlstate.as_deref(), Some("42703"));
    assert_eq!((failure.line, failure.column), (4, 10), "{failure:?}");

    // Three rows, none for the failed file, whose CREATE TABLE was rolled back with it.
    let h = history(&server, &db, &plain).await;
    let rows = h.rows.clone().unwrap_or_default();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["001_users", "002_posts", "003_index"]);
    assert!(rows.iter().all(|r| r.is_applied()));
    assert_eq!(rows[0].checksum, Some(set.migrations[0].checksum.clone()));
    assert_eq!(tables(&server, &db).await, ["posts", "users"]);

    // The live reading of that table, against an edited head with a late file.
    let mut head = set.clone();
    head.migrations.truncate(3);
    head.migrations[1].bytes = b"CREATE TABLE posts (id bigint);\n".to_vec();
    head.migrations.push(set.migrations[3].clone());
    let late = Migration {
        name: "0015_late".into(),
        path: "migrations/0015_late.sql".into(),
        bytes: b"SELECT 1;\n".to_vec(),
        text: "SELECT 1;\n".into(),
        checksum: plain.checksum(b"SELECT 1;\n"),
    };
    head.migrations.insert(1, late);
    let a = analyze_with(&plain, &h, &head);
    assert!(
        matches!(
            a.problems.as_slice(),
            [ci_gate::live::LiveProblem::Edited { .. }]
        ),
        "{:?}",
        a.problems
    );
    assert_eq!(a.pending, ["004_broken"], "0015_late is skipped for ever");
    assert_eq!(a.applied, vec![0, 2, 3]);

    // A replay writes the same rows, at once.
    let replayed = b
        .create("replay", None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let out = b
        .apply_as(&plain, &replayed, &all[..3], History::Batched)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(statuses(&out), [Applied, Applied, Applied]);
    let again = history(&server, &replayed, &plain).await.rows;
    let key = |rows: Option<Vec<HistoryRow>>| {
        rows.unwrap_or_default()
            .into_iter()
            .map(|r| (r.name, r.checksum))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(again), key(h.rows));
    drop(b);
    server.shutdown().await;
}

#[tokio::test]
async fn single_transaction_rolls_back_every_file_and_row_on_failure() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(&tmp.path().join("migrations"), BASE);
    let plain = Plain {
        single_transaction: true,
    };
    let good = discover(&plain, tmp.path());
    write(
        &tmp.path().join("migrations"),
        &[("004_broken.sql", "ALTER TABLE nope ADD COLUMN x int;\n")],
    );
    let bad = discover(&plain, tmp.path());
    let server = provision::provision(&local_request("format-plain-single"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let opts = options();
    let b = builder(&server, &opts);

    let db = b
        .create("single", None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let all: Vec<&Migration> = bad.migrations.iter().collect();
    let out = b
        .apply_as(&plain, &db, &all, History::PerMigration)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    use Status::*;
    assert_eq!(statuses(&out), [Skipped, Skipped, Skipped, Failed]);
    assert_eq!(
        out[3].failure.as_ref().and_then(|f| f.sqlstate.as_deref()),
        Some("42P01")
    );
    assert!(tables(&server, &db).await.is_empty(), "all rolled back");
    let rows = history(&server, &db, &plain).await.rows;
    assert_eq!(rows.map(|r| r.len()), Some(0), "no row survives");

    let db = b
        .create("single_ok", None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let all: Vec<&Migration> = good.migrations.iter().collect();
    let out = b
        .apply_as(&plain, &db, &all, History::PerMigration)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(statuses(&out), [Applied, Applied, Applied]);
    let rows = history(&server, &db, &plain).await.rows.unwrap_or_default();
    assert_eq!(rows.len(), 3);
    assert_eq!(tables(&server, &db).await, ["posts", "users"]);
    drop(b);
    server.shutdown().await;
}
