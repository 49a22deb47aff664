//! Builds the run's databases: creates them (empty, or cloned from a template with
//! `CREATE DATABASE … TEMPLATE`), applies migrations as the owner role, and reads catalogs.
//!
//! Databases: `prefix` (the migrations base and head share), `base` (what production has),
//! `incremental` (base + the new migrations in deploy order), `scratch` (head from empty, sharing
//! the prefix through its template instead of replaying it).
//!
//! Every method that applies takes the [`Format`] whose tool it imitates (`*_as`); the methods
//! without one use Prisma at [`ApplyOptions::semantics`].

use sqlx::{AssertSqlSafe, Connection};

use super::Outcome;
use super::apply::RunError;
use super::apply::{self, History};
use super::focus::{self, Focus, Scope};
use super::prisma::{ApplyOptions, Semantics};
use crate::discover::Migration;
use crate::error::{UserError, db_message};
use crate::format::{ApplyUnit, Format, TxMode};
use crate::inspect::{self, Catalog, InspectOptions};
use crate::provision::{Server, connect_quiet, quote_ident};

/// Creates and fills databases on one server as one owner role.
pub struct Builder<'a> {
    pub server: &'a Server,
    /// (role, password) migrations run as; `None`: the admin user.
    pub owner: Option<(String, String)>,
    /// `extensions:`, created in every database built from empty.
    pub extensions: &'a [String],
    /// Those of `extensions` a trusted source lists (flags, the base branch's config): the
    /// superuser creates them when the owner may not.
    pub superuser_extensions: &'a [String],
    pub opts: &'a ApplyOptions,
}

/// Why a database could not be built (the migrations' own failures are outcomes, not errors).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The server refused or failed a step of ours (exit 3).
    #[error("{what}")]
    Db {
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("could not create extension `{ext}` (from `extensions:` in .ci-gate.yml)")]
    Extension {
        ext: String,
        #[source]
        source: sqlx::Error,
    },
    /// The tool's session or history table could not be set up.
    #[error("{0}")]
    Prepare(#[source] RunError),
    /// The history bookkeeping failed mid-run.
    #[error("the server failed while applying migrations: {0}")]
    Apply(#[source] RunError),
    /// The session ended during a migration and the server no longer answers: a server fault,
    /// not the migration's (a migration that ends only its own session is a finding).
    #[error("the server went away while {path} was applied: {cause}")]
    ServerLost {
        path: String,
        cause: String,
        #[source]
        source: sqlx::Error,
    },
    /// The catalog of a database we built could not be read.
    #[error("could not read the catalog of {db}")]
    Inspect {
        db: String,
        #[source]
        source: inspect::InspectError,
    },
    /// The synthetic rows could not be written.
    #[error("could not fill the seeded database with synthetic rows")]
    Seed(#[source] super::seed::SeedError),
    /// The team's seed SQL does not apply on the base (exit 2).
    #[error("{path}: the seed SQL (`seed:` in .ci-gate.yml) fails on the base schema")]
    SeedSql {
        path: String,
        #[source]
        source: sqlx::Error,
    },
}

impl From<BuildError> for UserError {
    fn from(e: BuildError) -> UserError {
        match &e {
            BuildError::Db { source, .. } => {
                UserError::environment(e.to_string()).detail(db_message(source))
            }
            BuildError::Extension { source, .. } => UserError::environment(e.to_string())
                .detail(db_message(source))
                .hint("use a server that ships it (--image, --pg-bin or --database-url), or remove it from `extensions:`"),
            BuildError::Prepare(_) => UserError::environment(e.to_string()),
            BuildError::Apply(_) => UserError::environment(e.to_string()).hint(
                "the server may have crashed or run out of resources; run again with --verbose",
            ),
            BuildError::Inspect { source, .. } => {
                UserError::environment(e.to_string()).detail(db_message(source.db_error()))
            }
            BuildError::Seed(source) => {
                UserError::environment(e.to_string()).detail(db_message(source.db_error()))
            }
            BuildError::ServerLost { source, .. } => UserError::environment(e.to_string())
                .detail(format!("reconnecting failed: {}", crate::error::sqlx_text(source)))
                .hint("the server crashed, was shut down or ran out of resources; check its log, then run again"),
            BuildError::SeedSql { source, .. } => UserError::bad_input(e.to_string())
                .detail(db_message(source))
                .hint("make the seed file apply on a database built from the base branch's migrations"),
        }
    }
}

fn env_err(what: String) -> impl FnOnce(sqlx::Error) -> BuildError {
    move |source| BuildError::Db { what, source }
}

impl<'a> Builder<'a> {
    /// Create the `cigate_<run>_<purpose>` database: from `template`, or empty with the configured
    /// extensions created by the admin user.
    pub async fn create(
        &self,
        purpose: &str,
        template: Option<&str>,
    ) -> Result<String, BuildError> {
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
            self.create_extensions(&db).await?;
        }
        Ok(db)
    }

    /// The configured extensions, created the way a migration would create them: by the owner
    /// (so a later migration can alter or drop them); only those a trusted source lists
    /// (`superuser_extensions`: flags or the base branch's config) fall back to the superuser
    /// when the owner may not create them.
    async fn create_extensions(&self, db: &str) -> Result<(), BuildError> {
        let connect = |opts| async move {
            connect_quiet(&opts)
                .await
                .map_err(env_err(format!("could not connect to {db}")))
        };
        let mut owner = connect(self.owner_options(db)).await?;
        let mut admin = None;
        for ext in self.extensions {
            let sql = format!(
                "CREATE EXTENSION IF NOT EXISTS {} CASCADE",
                quote_ident(ext)
            );
            let as_owner = sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                .execute(&mut owner)
                .await;
            let Err(source) = as_owner else { continue };
            let denied = source
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "42501");
            if !(denied && self.superuser_extensions.contains(ext)) {
                return Err(BuildError::Extension {
                    ext: ext.clone(),
                    source,
                });
            }
            if admin.is_none() {
                admin = Some(connect(self.server.admin_options(db)).await?);
            }
            if let Some(conn) = admin.as_mut() {
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(conn)
                    .await
                    .map_err(|source| BuildError::Extension {
                        ext: ext.clone(),
                        source,
                    })?;
            }
        }
        let _ = owner.close().await;
        if let Some(conn) = admin {
            let _ = conn.close().await;
        }
        Ok(())
    }

    fn owner_options(&self, db: &str) -> sqlx::postgres::PgConnectOptions {
        let options = match &self.owner {
            Some((name, pw)) => self.server.user_options(db, name, pw),
            None => self.server.admin_options(db),
        };
        match self.opts.lock_timeout {
            // The connection's default, like production's `options=-c lock_timeout=…`: a
            // migration's own SET overrides it, RESET returns to it.
            Some(t) => options.options([("lock_timeout", format!("{}ms", t.as_millis()))]),
            None => options,
        }
    }

    /// A session on `db` as the owner, prepared the way the tool's is (session settings,
    /// timeout, history table).
    async fn owner_session(
        &self,
        format: &dyn Format,
        db: &str,
    ) -> Result<sqlx::PgConnection, BuildError> {
        let mut conn = connect_quiet(&self.owner_options(db))
            .await
            .map_err(env_err(format!(
                "could not connect to {db} as the migration owner"
            )))?;
        apply::prepare(&mut conn, format, self.opts.statement_timeout)
            .await
            .map_err(BuildError::Prepare)?;
        Ok(conn)
    }

    /// Apply `migrations` to `db` as the owner, the way Prisma does.
    pub async fn apply(
        &self,
        db: &str,
        migrations: &[&Migration],
    ) -> Result<Vec<Outcome>, BuildError> {
        let prisma = self.opts.format();
        self.apply_as(&prisma, db, migrations, History::PerMigration)
            .await
    }

    /// Replay history that production already has (the base branch's migrations): each script
    /// exactly as Prisma runs it, the history rows written together ([`History::Batched`]).
    pub async fn replay(
        &self,
        db: &str,
        migrations: &[&Migration],
    ) -> Result<Vec<Outcome>, BuildError> {
        let prisma = self.opts.format();
        self.apply_as(&prisma, db, migrations, History::Batched)
            .await
    }

    /// Apply `migrations` to `db` as the owner, the way `format`'s tool does, its history rows
    /// written as `history` says.
    pub async fn apply_as(
        &self,
        format: &dyn Format,
        db: &str,
        migrations: &[&Migration],
        history: History,
    ) -> Result<Vec<Outcome>, BuildError> {
        let mut conn = self.owner_session(format, db).await?;
        let timeout = self.opts.statement_timeout;
        let outcomes = apply::apply_all(&mut conn, format, migrations, timeout, history)
            .await
            .map_err(BuildError::Apply)?;
        let _ = conn.close().await;
        // A session that ended under a migration: the migration's doing only if the server still
        // answers (a crash or shutdown ends every session the same way).
        if let Some((o, f)) = outcomes.iter().find_map(|o| {
            o.failure
                .as_ref()
                .filter(|f| f.session_lost)
                .map(|f| (o, f))
        }) {
            self.server_answers(db)
                .await
                .map_err(|source| BuildError::ServerLost {
                    path: o.path.clone(),
                    cause: f.message.clone(),
                    source,
                })?;
        }
        Ok(outcomes)
    }

    /// Whether the server still accepts a new session on `db` and answers it.
    async fn server_answers(&self, db: &str) -> Result<(), sqlx::Error> {
        let mut conn = connect_quiet(&self.server.admin_options(db)).await?;
        sqlx::raw_sql("SELECT 1").execute(&mut conn).await?;
        let _ = conn.close().await;
        Ok(())
    }

    /// Read `db`'s catalog (as the admin, who sees everything).
    pub async fn inspect(&self, db: &str) -> Result<Catalog, BuildError> {
        let mut conn = connect_quiet(&self.server.admin_options(db))
            .await
            .map_err(env_err(format!("could not connect to {db}")))?;
        let catalog = inspect::inspect(&mut conn, &InspectOptions::default())
            .await
            .map_err(|source| BuildError::Inspect {
                db: db.to_string(),
                source,
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
    /// What was there before the migrations ran (the baseline's catalog).
    pub base: super::trace::Snapshot,
}

/// How the tracer should run `format`'s migration `m`: inside one transaction (the whole file
/// is one, implicitly or by the tool's `BEGIN`), or each statement autocommitted.
fn trace_semantics(format: &dyn Format, m: &Migration) -> Semantics {
    let plan = format.apply_plan(m);
    match (plan.unit, plan.tx) {
        (_, TxMode::Transaction) | (ApplyUnit::WholeFile, _) => Semantics::WholeFile,
        (ApplyUnit::Statements | ApplyUnit::Chunks(_), TxMode::Autocommit) => Semantics::Statements,
    }
}

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
    ) -> Result<TracedRun, BuildError> {
        let prisma = self.opts.format();
        self.trace_as(&prisma, db, migrations, seed_sql, all_tables)
            .await
    }

    /// [`Builder::trace`] for `format`'s tool: its history table is never seeded nor "reached",
    /// and each migration is traced in the transaction shape the tool gives it.
    pub async fn trace_as(
        &self,
        format: &dyn Format,
        db: &str,
        migrations: &[&Migration],
        seed_sql: Option<(&str, &str)>,
        all_tables: bool,
    ) -> Result<TracedRun, BuildError> {
        self.trace_within(format, db, migrations, seed_sql, all_tables, None)
            .await
    }

    /// [`Builder::trace_as`] on a copy where earlier migrations of the pull request already ran:
    /// pre-existing is what `before` (the first run's [`TracedRun::base`]) held.
    pub async fn trace_within(
        &self,
        format: &dyn Format,
        db: &str,
        migrations: &[&Migration],
        seed_sql: Option<(&str, &str)>,
        all_tables: bool,
        before: Option<&super::trace::Snapshot>,
    ) -> Result<TracedRun, BuildError> {
        let table = format.history_table();
        let mut admin = connect_quiet(&self.server.admin_options(db))
            .await
            .map_err(env_err(format!("could not connect to {db}")))?;
        let exclude = [table.name.clone()];
        let words = focus::words(migrations.iter().map(|m| m.text.as_str()));
        let mut focus = focus::focus(&mut admin, &words, &exclude)
            .await
            .map_err(env_err(format!("could not read the tables of {db}")))?;
        if all_tables {
            focus.scope = Scope::All;
        }
        // A resumed copy holds the pull request's own triggers, CHECK functions and defaults:
        // the rows written there fire them, so they are written as the migration owner, never
        // as the superuser (on the base, only the base branch's code runs).
        let seed = if before.is_some() {
            let mut owner = connect_quiet(&self.owner_options(db))
                .await
                .map_err(env_err(format!("could not connect to {db} as the owner")))?;
            let seeded = super::seed::seed(&mut owner, &exclude, &focus).await;
            let _ = owner.close().await;
            seeded
        } else {
            super::seed::seed(&mut admin, &exclude, &focus).await
        }
        .map_err(BuildError::Seed)?;
        if let Some((path, sql)) = seed_sql {
            // The team's seed SQL comes from the pull request's checkout: it runs as the
            // migration owner, never as the superuser.
            let mut owner = connect_quiet(&self.owner_options(db))
                .await
                .map_err(env_err(format!("could not connect to {db} as the owner")))?;
            sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
                .execute(&mut owner)
                .await
                .map_err(|source| BuildError::SeedSql {
                    path: path.to_string(),
                    source,
                })?;
            let _ = owner.close().await;
        }
        let _ = admin.close().await;
        let mut conn = self.owner_session(format, db).await?;
        let mut baseline = super::trace::baseline_within(&mut conn, &focus.scope, before)
            .await
            .map_err(env_err("could not read the seeded base".into()))?;
        let mut traces = Vec::new();
        for m in migrations {
            let semantics = trace_semantics(format, m);
            let t = super::trace::trace_migration(&mut conn, m, semantics, &mut baseline).await;
            let failed = t.failure.is_some();
            traces.push(t);
            if failed {
                break;
            }
        }
        let _ = conn.close().await;
        let schema = table.schema.as_deref().unwrap_or("public");
        let history = format!("{schema}.{}", table.name);
        let outside = focus::outside(&traces, &focus.scope, &[history.as_str()]);
        Ok(TracedRun {
            seed,
            traces,
            focus,
            outside,
            base: baseline.snap,
        })
    }
}
