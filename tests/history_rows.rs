//! The base replay writes its `_prisma_migrations` rows in one statement at the end
//! (`History::Batched`); what it leaves must be what `prisma migrate deploy`'s per-migration
//! protocol (`History::PerMigration`) leaves: same rows, same columns, same failure row and the
//! same error location, with the same schema.

mod common;

use ci_gate::discover::Migration;
use ci_gate::provision::{connect_quiet, local};
use ci_gate::run::Status;
use ci_gate::run::prisma::{ApplyOptions, History, Semantics, apply_all_with, prepare};
use common::{local_request, migration};
use sqlx::PgConnection;

fn history() -> Vec<Migration> {
    vec![
        migration(
            "20240101000000_init",
            "-- CreateTable\nCREATE TABLE \"User\" (\n    \"id\" SERIAL NOT NULL,\n    \"email\" TEXT NOT NULL,\n\n    CONSTRAINT \"User_pkey\" PRIMARY KEY (\"id\")\n);\n",
        ),
        migration(
            "20240102000000_index",
            "-- CreateIndex\nCREATE UNIQUE INDEX \"User_email_key\" ON \"User\"(\"email\");\n",
        ),
        migration(
            "20240103000000_concurrently",
            "CREATE INDEX CONCURRENTLY \"User_id_email_idx\" ON \"User\"(\"id\", \"email\");\n",
        ),
        migration(
            "20240104000000_enum",
            "-- CreateEnum\nCREATE TYPE \"Role\" AS ENUM ('USER', 'ADMIN');\n\n-- AlterTable\nALTER TABLE \"User\" ADD COLUMN \"role\" \"Role\" NOT NULL DEFAULT 'USER';\n",
        ),
    ]
}

fn failing() -> Migration {
    migration(
        "20240105000000_broken",
        "-- AlterTable\nALTER TABLE \"User\" ADD COLUMN \"name\" TEXT;\n\n-- CreateIndex\nCREATE INDEX \"User_slug_idx\" ON \"User\"(\"slug\");\n",
    )
}

/// The history table as comparable rows: name, checksum, finished?, logs, steps, rolled back?,
/// in the order they were started.
async fn rows(conn: &mut PgConnection) -> Vec<(String, String, bool, Option<String>, i32, bool)> {
    sqlx::query_as(
        "SELECT migration_name, checksum, finished_at IS NOT NULL, logs, applied_steps_count, rolled_back_at IS NOT NULL \
         FROM _prisma_migrations ORDER BY started_at, migration_name",
    )
    .fetch_all(conn)
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn schema(conn: &mut PgConnection) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT c.relname::text, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Apply `migrations` both ways, each into its own database; return what each left.
async fn both_ways(
    migrations: &[Migration],
    semantics: Semantics,
) -> Vec<(
    Vec<ci_gate::run::Outcome>,
    Vec<(String, String, bool, Option<String>, i32, bool)>,
    Vec<(String, String)>,
)> {
    let cluster = local::start(&local_request("history-rows"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let opts = ApplyOptions {
        semantics,
        statement_timeout: std::time::Duration::from_secs(60),
        lock_timeout: None,
    };
    let all: Vec<&Migration> = migrations.iter().collect();
    let mut results = Vec::new();
    for (db, history) in [
        ("deploy", History::PerMigration),
        ("batched", History::Batched),
    ] {
        let mut admin = connect_quiet(&cluster.admin_options())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut conn = connect_quiet(&cluster.admin_options().database(db))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        prepare(&mut conn, &opts)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let out = apply_all_with(&mut conn, &all, &opts, history)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        results.push((out, rows(&mut conn).await, schema(&mut conn).await));
    }
    let _ = cluster.stop();
    results
}

#[tokio::test]
async fn batched_history_rows_are_the_rows_deploy_writes() {
    let results = both_ways(&history(), Semantics::WholeFile).await;
    let (deploy, batched) = (&results[0], &results[1]);
    assert!(batched.0.iter().all(|o| o.status == Status::Applied));
    assert_eq!(deploy.1.len(), 4);
    assert!(
        deploy
            .1
            .iter()
            .all(|r| r.2 && r.3.is_none() && r.4 == 1 && !r.5)
    );
    assert_eq!(deploy.1, batched.1, "history rows differ");
    assert_eq!(deploy.2, batched.2, "schemas differ");
}

#[tokio::test]
async fn batched_history_failure_leaves_deploys_failed_row_and_location() {
    for semantics in [Semantics::WholeFile, Semantics::Statements] {
        let mut migrations = history();
        migrations.push(failing());
        migrations.push(migration("20240106000000_after", "SELECT 1;\n"));
        let results = both_ways(&migrations, semantics).await;
        let (deploy, batched) = (&results[0], &results[1]);
        let statuses =
            |r: &Vec<ci_gate::run::Outcome>| r.iter().map(|o| o.status).collect::<Vec<_>>();
        assert_eq!(statuses(&deploy.0), statuses(&batched.0), "{semantics:?}");
        assert_eq!(batched.0[4].status, Status::Failed);
        assert_eq!(batched.0[5].status, Status::Skipped);
        let (fd, fb) = (
            deploy.0[4]
                .failure
                .as_ref()
                .map(|f| (f.sqlstate.clone(), f.line, f.column)),
            batched.0[4]
                .failure
                .as_ref()
                .map(|f| (f.sqlstate.clone(), f.line, f.column)),
        );
        assert_eq!(fd, fb, "{semantics:?}");
        assert_eq!(fb, Some((Some("42703".into()), 5, 1)), "{semantics:?}");
        // Four finished rows, then the failed one: not finished, error in logs, 0 steps.
        assert_eq!(deploy.1, batched.1, "{semantics:?}: history rows differ");
        let last = batched
            .1
            .last()
            .cloned()
            .unwrap_or_else(|| panic!("no rows"));
        assert_eq!(last.0, "20240105000000_broken");
        assert!(!last.2 && last.4 == 0, "{last:?}");
        assert!(
            last.3
                .as_deref()
                .is_some_and(|l| l.contains("Database error code: 42703")),
            "{last:?}"
        );
        assert_eq!(deploy.2, batched.2, "{semantics:?}: schemas differ");
    }
}
