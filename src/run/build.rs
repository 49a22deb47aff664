//! Builds the run's databases: creates them (empty, or cloned from a template with
//! `CREATE DATABASE … TEMPLATE`), applies migrations as the owner role, and reads catalogs.
//!
//! Databases: `prefix` (the migrations base and head share), `base` (what production has),
//! `incremental` (base + the new migrations in deploy order), `scratch` (head from empty, sharing
//! the prefix through its template instead of replaying it).

use sqlx::{AssertSqlSafe, Connection};

use super::Outcome;
use super::focus::{self, Focus, Scope};
use super::prisma::{self as prisma_run, ApplyOptions, History};
use crate::discover::Migration;
use crate::error::{UserError, db_message};
use crate::inspect::{self, Catalog, InspectOptions};
use crate::provision::{Server, connect_quiet, quote_ident};

/// Creates and fills databases on one server as one owner role.
pub struct Builder<'a> {
    pub server: &'a Server,
    /// (role, password) migrations run as; `None`: the admin user.
    pub owner: Option<(String, String)>,
    pub extensions: &'a [String],
    pub opts: &'a ApplyOptions,
}

fn env_err(what: String) -> impl FnOnce(sqlx::Error) -> UserError {
    move |e| UserError::environment(what).detail(db_message(&e))
}

impl<'a> Builder<'a> {
    /// Create the `cigate_<run>_<purpose>` database: from `template`, or empty with the configured
    /// extensions created by the admin user.
    pub async fn create(&self, purpose: &str, template: Option<&str>) -> Result<String, UserError> {
        let db = self
            .server
            .create_database(
                purpose,
                self.owner.as_ref().map(|(n, _)| n.as_str()),
                template,
            )
            .await
            .map_err(env_err(format!("could not create the {purpose} database")))?;
        if template.is_none() && !self.extensions.is_empty() {
            let mut conn = connect_quiet(&self.server.admin_options(&db))
                .await
                .map_err(env_err(format!("could not connect to {db}")))?;
            for ext in self.extensions {
                let sql = format!(
                    "CREATE EXTENSION IF NOT EXISTS {} CASCADE",
                    quote_ident(ext)
                );
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await.map_err(|e| {
                    UserError::environment(format!("could not create extension `{ext}` (from `extensions:` in .ci-gate.yml)"))
                        .detail(db_message(&e))
                        .hint("use a server that ships it (--image, --pg-bin or --database-url), or remove it from `extensions:`")
                })?;
            }
            let _ = conn.close().await;
        }
        Ok(db)
    }

    fn owner_options(&self, db: &str) -> sqlx::postgres::PgConnectOptions {
        match &self.owner {
            Some((name, pw)) => self.server.user_options(db, name, pw),
            None => self.server.admin_options(db),
        }
    }

    /// A session on `db` as the owner, prepared the way the tool's is (search_path, timeout,
    /// history table).
    async fn owner_session(&self, db: &str) -> Result<sqlx::PgConnection, UserError> {
        let mut conn = connect_quiet(&self.owner_options(db))
            .await
            .map_err(env_err(format!(
                "could not connect to {db} as the migration owner"
            )))?;
        prisma_run::prepare(&mut conn, self.opts)
            .await
            .map_err(|e| UserError::environment(e.to_string()))?;
        Ok(conn)
    }

    /// Apply `migrations` to `db` as the owner, the way the tool does.
    pub async fn apply(
        &self,
        db: &str,
        migrations: &[&Migration],
    ) -> Result<Vec<Outcome>, UserError> {
        self.apply_with(db, migrations, History::PerMigration).await
    }

    /// Replay history that production already has (the base branch's migrations): each script
    /// exactly as the tool runs it, the history rows written together ([`History::Batched`]).
    pub async fn replay(
        &self,
        db: &str,
        migrations: &[&Migration],
    ) -> Result<Vec<Outcome>, UserError> {
        self.apply_with(db, migrations, History::Batched).await
    }

    async fn apply_with(
        &self,
        db: &str,
        migrations: &[&Migration],
        history: History,
    ) -> Result<Vec<Outcome>, UserError> {
        let mut conn = self.owner_session(db).await?;
        let outcomes = prisma_run::apply_all_with(&mut conn, migrations, self.opts, history).await.map_err(|e| {
            UserError::environment(format!("the server failed while applying migrations: {e}"))
                .hint("the server may have crashed or run out of resources; run again with --verbose")
        })?;
        let _ = conn.close().await;
        Ok(outcomes)
    }

    /// Read `db`'s catalog (as the admin, who sees everything).
    pub async fn inspect(&self, db: &str) -> Result<Catalog, UserError> {
        let mut conn = connect_quiet(&self.server.admin_options(db))
            .await
            .map_err(env_err(format!("could not connect to {db}")))?;
        let catalog = inspect::inspect(&mut conn, &InspectOptions::default())
            .await
            .map_err(|e| {
                UserError::environment(format!("could not read the catalog of {db}"))
                    .detail(db_message(e.db_error()))
            })?;
        let _ = conn.close().await;
        Ok(catalog)
    }
}

/// What the seeded, traced run produced.
#[derive(Debug, Clone)]
pub struct TracedRun {
    pub seed: super::seed::SeedReport,
    pub traces: Vec<super::trace::MigrationTrace>,
    /// The tables seeded and fingerprinted.
    pub focus: Focus,
    /// Pre-existing tables the statements locked outside the focus: the run does not cover them
    /// and must be repeated with every table seeded ([`focus::outside`]).
    pub outside: Vec<String>,
}

/// The history table: never seeded, and not a table the migrations "reach".
const HISTORY_TABLE: &str = "_prisma_migrations";

impl<'a> Builder<'a> {
    /// Fill `db` (a clone of base) with synthetic rows and the team's `seed` SQL, then run
    /// `migrations` traced, in order, stopping at the first failure. `all_tables`: seed every
    /// table; otherwise only the migrations' [`focus`], and the result says which pre-existing
    /// tables were reached outside it.
    pub async fn trace(
        &self,
        db: &str,
        migrations: &[&Migration],
        seed_sql: Option<(&str, &str)>,
        all_tables: bool,
    ) -> Result<TracedRun, UserError> {
        let mut admin = connect_quiet(&self.server.admin_options(db))
            .await
            .map_err(env_err(format!("could not connect to {db}")))?;
        let exclude = [HISTORY_TABLE.to_string()];
        let words = focus::words(migrations.iter().map(|m| m.text.as_str()));
        let mut focus = focus::focus(&mut admin, &words, &exclude)
            .await
            .map_err(env_err(format!("could not read the tables of {db}")))?;
        if all_tables {
            focus.scope = Scope::All;
        }
        let seed = super::seed::seed(&mut admin, &exclude, &focus.scope)
            .await
            .map_err(|e| {
                UserError::environment("could not fill the seeded database with synthetic rows")
                    .detail(db_message(e.db_error()))
            })?;
        if let Some((path, sql)) = seed_sql {
            sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(&mut admin).await.map_err(|e| {
                UserError::bad_input(format!("{path}: the seed SQL (`seed:` in .ci-gate.yml) fails on the base schema"))
                    .detail(db_message(&e))
                    .hint("make the seed file apply on a database built from the base branch's migrations")
            })?;
        }
        let _ = admin.close().await;
        let mut conn = self.owner_session(db).await?;
        let mut baseline = super::trace::baseline(&mut conn, &focus.scope)
            .await
            .map_err(env_err("could not read the seeded base".into()))?;
        let mut traces = Vec::new();
        for m in migrations {
            let t = super::trace::trace_migration(&mut conn, m, self.opts.semantics, &mut baseline)
                .await;
            let failed = t.failure.is_some();
            traces.push(t);
            if failed {
                break;
            }
        }
        let _ = conn.close().await;
        let history = format!("public.{HISTORY_TABLE}");
        let outside = focus::outside(&traces, &focus.scope, &[history.as_str()]);
        Ok(TracedRun {
            seed,
            traces,
            focus,
            outside,
        })
    }
}
