//! Gives the pipeline a PostgreSQL server to build throwaway databases on.
//!
//! Every provider returns a [`Server`]: an admin connection (superuser where ci-gate started the
//! server itself; the given credentials for `url`) and a guard that owns whatever was started.
//! The guarantee of this module: after [`Server::shutdown`] (or, as a fallback, `Drop`), nothing
//! ci-gate created is left behind — no cluster, container, database, role, socket or temp dir.
//! Databases and roles are only ever created through [`Server::create_database`] and
//! [`Server::create_role`], so the `url` provider can drop exactly what it made and nothing else.

pub mod archive;
pub mod binaries;
pub mod docker;
pub mod local;
pub mod url;

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection};

/// Which provider the user asked for (`--provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderChoice {
    Auto,
    Docker,
    Local,
    Url,
}

/// Which provider actually gave the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Docker,
    Local,
    Url,
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProviderKind::Docker => "docker",
            ProviderKind::Local => "local",
            ProviderKind::Url => "url",
        })
    }
}

/// Everything a provider needs to know.
#[derive(Debug, Clone)]
pub struct ProvisionRequest {
    pub provider: ProviderChoice,
    /// `--database-url`: an existing server (provider `url`).
    pub database_url: Option<String>,
    /// Major version wanted (`--pg-version`), e.g. "16". Docker uses it as the image tag;
    /// local prefers binaries of that major.
    pub pg_version: Option<String>,
    /// `--image` for docker (default `postgres:<pg_version or 16>`).
    pub image: Option<String>,
    /// `--pg-bin` for local: the directory holding `initdb` and `postgres`.
    pub pg_bin: Option<PathBuf>,
    /// Unique id of this run; used in database, role, container-label and temp-dir names.
    pub run_id: String,
}

/// A provider's failure. Each variant says what was tried and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The environment lacks something (exit 3).
    #[error("{what}\n{detail}\nhint: {hint}")]
    Unavailable {
        what: String,
        detail: String,
        hint: String,
    },
    /// The user's input is wrong (bad URL, bad --pg-bin) (exit 2).
    #[error("{what}\nhint: {hint}")]
    BadInput { what: String, hint: String },
}

impl ProvisionError {
    /// One line: what failed, and the first line of the evidence.
    pub fn one_line(&self) -> String {
        match self {
            ProvisionError::Unavailable { what, detail, .. } => {
                match detail
                    .lines()
                    .next()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                {
                    Some(first) => format!("{what}: {first}"),
                    None => what.clone(),
                }
            }
            ProvisionError::BadInput { what, .. } => what.clone(),
        }
    }

    pub fn unavailable(
        what: impl Into<String>,
        detail: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        ProvisionError::Unavailable {
            what: what.into(),
            detail: detail.into(),
            hint: hint.into(),
        }
    }
}

/// What became of the archived cluster a provider was given (`--cache-dir`).
#[derive(Debug, Default)]
pub enum Restored {
    /// None was given.
    #[default]
    NotAsked,
    /// The server runs on the archived cluster.
    Yes,
    /// It could not be used, and the server was made afresh: why.
    Failed(ProvisionError),
}

/// Archived clusters (`--cache-dir`) the providers that start their own server may start from
/// instead of running initdb, one per provider (an archive is only valid for the provider, and
/// the binaries or image, that wrote it).
#[derive(Debug, Clone, Default)]
pub struct Restore {
    pub local: Option<archive::Archive>,
    pub docker: Option<archive::Archive>,
}

/// Resources a provider owns, released on shutdown (and on Drop as a last resort).
pub enum Guard {
    Local(local::LocalCluster),
    Docker(docker::DockerServer),
    /// Nothing started; only the databases and roles we created are dropped.
    Url,
}

/// A running server ci-gate may create databases on.
pub struct Server {
    pub kind: ProviderKind,
    /// Admin connection options (database `postgres` unless the URL named another).
    pub admin: PgConnectOptions,
    /// The admin password, when there is one (sqlx does not expose it); for client tools.
    pub admin_password: Option<String>,
    /// Whether `admin` is a superuser (false for some `url` servers).
    pub admin_is_superuser: bool,
    /// `SHOW server_version`, e.g. "15.18 (Debian 15.18-0+deb12u1)" trimmed to "15.18".
    pub version: String,
    /// `server_version_num`, e.g. 150018.
    pub version_num: u32,
    /// Wall time from request to a server that answers.
    pub startup: Duration,
    pub run_id: String,
    /// What was tried before this provider succeeded (for `auto`), shown with --verbose.
    pub notes: Vec<String>,
    /// Whether the server runs on an archived cluster it was given ([`provision_from`]).
    pub restored: Restored,
    created_databases: Mutex<Vec<String>>,
    created_roles: Mutex<Vec<String>>,
    guard: Option<Guard>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("kind", &self.kind)
            .field("version", &self.version)
            .finish()
    }
}

/// Quoting for the SQL ci-gate writes (one implementation, in [`crate::sql::quote`]).
pub use crate::sql::quote::{quote_ident, quote_literal};

impl Server {
    /// Wrap an admin connection into a `Server`: connects once, reads the version and whether
    /// the user is a superuser.
    pub async fn connect(
        kind: ProviderKind,
        admin: PgConnectOptions,
        run_id: String,
        started: std::time::Instant,
        guard: Guard,
    ) -> Result<Server, ProvisionError> {
        let mut server = Server {
            kind,
            admin,
            admin_password: None,
            admin_is_superuser: false,
            version: String::new(),
            version_num: 0,
            startup: Duration::ZERO,
            run_id,
            notes: Vec::new(),
            restored: Restored::NotAsked,
            created_databases: Mutex::new(Vec::new()),
            created_roles: Mutex::new(Vec::new()),
            guard: Some(guard),
        };
        let mut conn = server.admin_connection().await.map_err(|e| {
            ProvisionError::unavailable(
                format!("could not connect to the {kind} PostgreSQL server"),
                e.to_string(),
                "check that the server is running and the credentials are right",
            )
        })?;
        let row: (String, String, bool) = sqlx::query_as(
            "SELECT current_setting('server_version'), current_setting('server_version_num'), \
             (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(|e| {
            ProvisionError::unavailable(
                "could not read the server version",
                e.to_string(),
                "is this a PostgreSQL server?",
            )
        })?;
        let _ = conn.close().await;
        server.version = row
            .0
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        server.version_num = row.1.parse().unwrap_or(0);
        server.admin_is_superuser = row.2;
        server.startup = started.elapsed();
        Ok(server)
    }

    /// The directory of the server binaries ci-gate started (local provider).
    pub fn bin_dir(&self) -> Option<PathBuf> {
        match &self.guard {
            Some(Guard::Local(c)) => Some(c.bin_dir().to_path_buf()),
            _ => None,
        }
    }

    /// Major version, e.g. 15.
    pub fn major(&self) -> u32 {
        self.version_num / 10000
    }

    /// Options for database `db` as the admin user.
    pub fn admin_options(&self, db: &str) -> PgConnectOptions {
        self.admin.clone().database(db)
    }

    /// Options for database `db` as `user` with `password`.
    pub fn user_options(&self, db: &str, user: &str, password: &str) -> PgConnectOptions {
        self.admin
            .clone()
            .database(db)
            .username(user)
            .password(password)
    }

    /// A fresh admin connection to the admin database.
    pub async fn admin_connection(&self) -> Result<PgConnection, sqlx::Error> {
        connect_quiet(&self.admin).await
    }

    /// Create a database named `cigate_<run>_<purpose>` owned by `owner` (or the admin user),
    /// optionally from a template. Returns its name. Tracked for cleanup.
    pub async fn create_database(
        &self,
        purpose: &str,
        owner: Option<&str>,
        template: Option<&str>,
    ) -> Result<String, sqlx::Error> {
        let name = format!("cigate_{}_{}", self.run_id, purpose);
        let mut sql = format!("CREATE DATABASE {}", quote_ident(&name));
        if let Some(owner) = owner {
            sql.push_str(&format!(" OWNER {}", quote_ident(owner)));
        }
        match template {
            Some(t) => {
                sql.push_str(&format!(" TEMPLATE {}", quote_ident(t)));
                // PostgreSQL 15's default WAL_LOG copies block by block through the WAL;
                // FILE_COPY copies the files after a checkpoint: 0.46 s → 0.15 s for a
                // 5,000-migration base on tmpfs, 2.77 s → 1.93 s on ext4 (BENCHMARKS.md). The
                // checkpoint is server-wide, so only on a server this run started.
                if self.version_num >= 150000 && self.kind != ProviderKind::Url {
                    sql.push_str(" STRATEGY FILE_COPY");
                }
            }
            None => sql.push_str(" TEMPLATE template0"),
        }
        let mut conn = self.admin_connection().await?;
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
        let _ = conn.close().await;
        if let Ok(mut dbs) = self.created_databases.lock() {
            dbs.push(name.clone());
        }
        Ok(name)
    }

    /// Take over database `old` (restored with the cluster from the cache) as this run's
    /// `cigate_<run>_<purpose>`. Only on a server this run started.
    pub async fn adopt_database(&self, old: &str, purpose: &str) -> Result<String, sqlx::Error> {
        if self.kind == ProviderKind::Url {
            return Err(sqlx::Error::Protocol("not a server ci-gate started".into()));
        }
        let name = format!("cigate_{}_{}", self.run_id, purpose);
        let mut conn = self.admin_connection().await?;
        let sql = format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote_ident(old),
            quote_ident(&name)
        );
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
        let _ = conn.close().await;
        if let Ok(mut dbs) = self.created_databases.lock() {
            dbs.push(name.clone());
        }
        Ok(name)
    }

    /// Rename role `old` (restored with the cluster) to `new`, a LOGIN role with `password`.
    /// Only on a server this run started.
    pub async fn rename_role(
        &self,
        old: &str,
        new: &str,
        password: &str,
    ) -> Result<(), sqlx::Error> {
        if self.kind == ProviderKind::Url {
            return Err(sqlx::Error::Protocol("not a server ci-gate started".into()));
        }
        let mut conn = self.admin_connection().await?;
        let sql = format!(
            "ALTER ROLE {} RENAME TO {}; ALTER ROLE {} LOGIN PASSWORD {}",
            quote_ident(old),
            quote_ident(new),
            quote_ident(new),
            quote_literal(password)
        );
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
        let _ = conn.close().await;
        if let Ok(mut roles) = self.created_roles.lock() {
            roles.push(new.to_string());
        }
        Ok(())
    }

    /// Drop a database this run created (force-disconnecting sessions).
    pub async fn drop_database(&self, name: &str) -> Result<(), sqlx::Error> {
        let mine = self
            .created_databases
            .lock()
            .map(|d| d.iter().any(|n| n == name))
            .unwrap_or(false);
        if !mine {
            return Ok(()); // never drop what we did not create
        }
        let mut conn = self.admin_connection().await?;
        let force = if self.version_num >= 130000 {
            " WITH (FORCE)"
        } else {
            ""
        };
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {}{}",
            quote_ident(name),
            force
        )))
        .execute(&mut conn)
        .await?;
        let _ = conn.close().await;
        if let Ok(mut dbs) = self.created_databases.lock() {
            dbs.retain(|n| n != name);
        }
        Ok(())
    }

    /// Create a role if it does not exist yet. Returns true if this run created it (and will
    /// drop it at shutdown). `login_password` makes it a LOGIN role with that password.
    pub async fn create_role(
        &self,
        name: &str,
        login_password: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let mut conn = self.admin_connection().await?;
        let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_roles WHERE rolname = $1")
            .bind(name)
            .fetch_optional(&mut conn)
            .await?;
        if exists.is_some() {
            let _ = conn.close().await;
            return Ok(false);
        }
        let mut sql = format!("CREATE ROLE {}", quote_ident(name));
        if let Some(pw) = login_password {
            sql.push_str(&format!(" LOGIN PASSWORD {}", quote_literal(pw)));
        }
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
        let _ = conn.close().await;
        if let Ok(mut roles) = self.created_roles.lock() {
            roles.push(name.to_string());
        }
        Ok(true)
    }

    /// Names of databases this run created and has not dropped yet.
    pub fn live_databases(&self) -> Vec<String> {
        self.created_databases
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    /// Give up on what the provider does in the background for later runs (the docker
    /// provider's pre-initialised image), so that shutting down does not wait for it.
    pub fn abandon_background_work(&mut self) {
        if let Some(Guard::Docker(container)) = &mut self.guard {
            container.abandon_commit();
        }
    }

    /// Whether this server's cluster can be archived at shutdown ([`Server::shutdown_archiving`]):
    /// one ci-gate started (local or docker).
    pub fn can_archive(&self) -> bool {
        matches!(self.guard, Some(Guard::Local(_)) | Some(Guard::Docker(_)))
    }

    /// For a server ci-gate started: drop every database this run created except `keep_db`,
    /// stop the server cleanly and archive its data directory to `tar` (see
    /// [`local::LocalCluster::stop_archiving`], [`docker::DockerServer::stop_archiving`]), then
    /// clean up as [`Server::shutdown`] does. Returns the warnings and, when the archive was
    /// written, its SHA-256.
    pub async fn shutdown_archiving(
        mut self,
        keep_db: &str,
        tar: &std::path::Path,
    ) -> (Vec<String>, Option<String>) {
        if !self.can_archive() {
            return (self.shutdown().await, None);
        }
        let mut warnings = Vec::new();
        for db in self.live_databases() {
            if db != keep_db
                && let Err(e) = self.drop_database(&db).await
            {
                warnings.push(format!("could not drop database {db}: {e}"));
            }
        }
        let archived = match self.guard.take() {
            Some(Guard::Local(cluster)) => cluster.stop_archiving(tar).map_err(|e| e.to_string()),
            Some(Guard::Docker(mut container)) => {
                warnings.extend(container.finish_commit().await);
                container
                    .stop_archiving(tar)
                    .await
                    .map_err(|e| e.to_string())
            }
            Some(Guard::Url) | None => Err("no server to archive".to_string()),
        };
        let sha = archived.map_err(|e| warnings.push(e)).ok();
        (warnings, sha)
    }

    /// Drop every database and role this run created, then stop whatever the provider started.
    /// Errors are collected as warnings: cleanup never fails the run.
    pub async fn shutdown(mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !matches!(self.guard, Some(Guard::Local(_)) | Some(Guard::Docker(_))) {
            // On a server we did not start, remove exactly what we made; what cannot be removed
            // (the server went away) is named with the SQL that removes it later.
            let mut left = Vec::new();
            for db in self.live_databases() {
                if let Err(e) = self.drop_database(&db).await {
                    warnings.push(format!("could not drop database {db}: {e}"));
                    left.push(format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE);",
                        quote_ident(&db)
                    ));
                }
            }
            let roles = self
                .created_roles
                .lock()
                .map(|r| r.clone())
                .unwrap_or_default();
            if !roles.is_empty() {
                match self.admin_connection().await {
                    Ok(mut conn) => {
                        for role in roles.iter().rev() {
                            let sql = format!("DROP ROLE IF EXISTS {}", quote_ident(role));
                            if let Err(e) =
                                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await
                            {
                                warnings.push(format!("could not drop role {role}: {e}"));
                                left.push(format!("DROP ROLE IF EXISTS {};", quote_ident(role)));
                            }
                        }
                        let _ = conn.close().await;
                    }
                    Err(e) => {
                        warnings.push(format!("could not connect to drop roles: {e}"));
                        for role in roles.iter().rev() {
                            left.push(format!("DROP ROLE IF EXISTS {};", quote_ident(role)));
                        }
                    }
                }
            }
            if !left.is_empty() {
                warnings.push(format!(
                    "left on the server ci-gate was given (it created them for this run; remove them when the server is back, as a superuser): {}",
                    left.join(" ")
                ));
            }
        }
        match self.guard.take() {
            Some(Guard::Local(cluster)) => {
                if let Err(e) = cluster.stop() {
                    warnings.push(e.to_string());
                }
            }
            Some(Guard::Docker(mut container)) => {
                warnings.extend(container.finish_commit().await);
                if let Err(e) = container.stop().await {
                    warnings.push(e.to_string());
                }
            }
            Some(Guard::Url) | None => {}
        }
        warnings
    }
}

/// Connect without sqlx's per-statement logging.
pub async fn connect_quiet(opts: &PgConnectOptions) -> Result<PgConnection, sqlx::Error> {
    opts.clone().disable_statement_logging().connect().await
}

/// Provision a server as requested (`auto`: see [`auto`]).
pub async fn provision(req: &ProvisionRequest) -> Result<Server, ProvisionError> {
    provision_from(req, &Restore::default()).await
}

/// [`provision`], starting the local or docker server from the archived cluster `restore` holds
/// for it; [`Server::restored`] says whether it did.
pub async fn provision_from(
    req: &ProvisionRequest,
    restore: &Restore,
) -> Result<Server, ProvisionError> {
    // A malformed image reference is bad input (exit 2); an absent image is the environment's.
    if let Some(image) = req.image.as_deref()
        && matches!(req.provider, ProviderChoice::Docker | ProviderChoice::Auto)
        && !docker::valid_image_ref(image.trim())
    {
        return Err(ProvisionError::BadInput {
            what: format!("--image {image:?} is not a valid Docker image reference"),
            hint: "write it as [registry/]name[:tag], lowercase, e.g. postgres:16 or ghcr.io/org/postgres:16-alpine".into(),
        });
    }
    match req.provider {
        ProviderChoice::Url => url::provision(req).await,
        ProviderChoice::Local => local::provision_from(req, restore.local.as_ref()).await,
        ProviderChoice::Docker => docker::provision_from(req, restore.docker.as_ref()).await,
        ProviderChoice::Auto => auto(req, restore).await,
    }
}

/// `--provider auto`: `url` when a URL is given; else this machine's server binaries of the
/// requested major; else Docker with the image present; else Docker pulling it (a network fetch,
/// said in the report); else an error naming what each said.
async fn auto(req: &ProvisionRequest, restore: &Restore) -> Result<Server, ProvisionError> {
    if req.database_url.is_some() {
        return url::provision(req).await;
    }
    let mut tried = Vec::new();
    match local::provision_from(req, restore.local.as_ref()).await {
        Ok(s) => return Ok(s),
        Err(e) => tried.push(format!("local: {}", first_line(&e.to_string()))),
    }
    let pulled = match docker::usable(req).await {
        Ok(availability) => availability == docker::Availability::Pullable,
        Err(why) => {
            tried.push(format!("docker: {why}"));
            return Err(none_available(&tried));
        }
    };
    match docker::provision_from(req, restore.docker.as_ref()).await {
        Ok(mut s) => {
            if pulled {
                tried.push(format!(
                    "docker: image {} was not present and was pulled from its registry (a network fetch)",
                    docker::image_ref(req)
                ));
            }
            tried.append(&mut s.notes); // what was tried, then the provider's own notes
            s.notes = tried;
            Ok(s)
        }
        Err(e) => {
            tried.push(format!("docker: {}", first_line(&e.to_string())));
            Err(none_available(&tried))
        }
    }
}

fn none_available(tried: &[String]) -> ProvisionError {
    ProvisionError::unavailable(
        "no PostgreSQL available for --provider auto",
        tried
            .iter()
            .map(|t| format!("  {t}"))
            .collect::<Vec<_>>()
            .join("\n"),
        "install PostgreSQL server binaries (e.g. `apt-get install postgresql`), start Docker with the postgres image available, or pass --database-url",
    )
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
