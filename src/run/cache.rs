//! `--cache-dir`: the verified base state, stored and restored instead of replaying the base
//! history.
//!
//! An entry is keyed by everything that determines the base database: ci-gate's version, the
//! server's major version, how files are applied, the owner mode, configured extensions and
//! roles, and every base migration's name and checksum. It holds a plain-SQL `pg_dump` of the base
//! database (data included: the history rows and anything migrations inserted) with the owner
//! role's name replaced by a placeholder, and a manifest with the dump's SHA-256.
//!
//! Nothing in an entry is trusted: the dump's hash is checked before use, and after restoring,
//! the restored `_prisma_migrations` must list exactly the base migrations with their checksums.
//! A stale, corrupt or unusable entry is dropped, rebuilt from the migrations, and rewritten.
//!
//! With the `local` provider the entry is a whole cluster instead ([`ClusterCache`]): the data
//! directory, stopped cleanly with only the base database in it, as one tar archive. Restoring
//! it replaces initdb and the base replay by unpacking files (a dump's restore replays all the
//! DDL, which cost about as much as the migrations). Its key is known before any file is read:
//! the git tree of the migrations directory at the base commit, plus the settings. The same
//! checks apply: the archive's SHA-256 over every byte unpacked, then the restored history
//! against the base migrations.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Connection};

use crate::discover::MigrationSet;
use crate::provision::{Server, connect_quiet};
use crate::sql::quote::quote_ident;

/// The placeholder for the owner role inside a cached dump.
const OWNER_PLACEHOLDER: &str = "__cigate_owner__";

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    key: String,
    dump_sha256: String,
    migrations: Vec<(String, String)>,
    server_version: String,
    ci_gate_version: String,
}

/// A cache directory and the key of this run's base.
#[derive(Debug, Clone)]
pub struct BaseCache {
    pub dir: PathBuf,
    pub key: String,
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl BaseCache {
    /// The key for `base` built under these settings.
    pub fn new(dir: &Path, server: &Server, base: &MigrationSet, settings: &str) -> BaseCache {
        let mut h = Sha256::new();
        h.update(env!("CARGO_PKG_VERSION"));
        h.update(format!("\0pg{}\0{settings}\0", server.major()));
        for m in &base.migrations {
            h.update(format!("{}\0{}\0", m.name, m.checksum));
        }
        let key: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        BaseCache {
            dir: dir.to_path_buf(),
            key: key[..32].to_string(),
        }
    }

    fn entry(&self) -> PathBuf {
        self.dir.join(format!("base-{}", self.key))
    }

    /// Restore the entry into `db` (an empty database with extensions, owned by `owner`).
    /// `Ok(false)`: no usable entry (the caller builds and saves). A restore that went wrong
    /// leaves `db` in an unknown state: the caller drops it.
    pub async fn restore(
        &self,
        server: &Server,
        db: &str,
        owner: Option<&str>,
        base: &MigrationSet,
    ) -> Result<bool, RestoreError> {
        let entry = self.entry();
        let (Ok(manifest), Ok(dump)) = (
            std::fs::read_to_string(entry.join("manifest.json")),
            std::fs::read(entry.join("base.sql")),
        ) else {
            return Ok(false);
        };
        let manifest: Manifest =
            serde_json::from_str(&manifest).map_err(|source| RestoreError::Manifest { source })?;
        if manifest.key != self.key || manifest.dump_sha256 != hex(&dump) {
            return Err(RestoreError::Tampered);
        }
        let sql = String::from_utf8(dump).map_err(|_| RestoreError::NotUtf8)?;
        let owner_name = owner
            .map(str::to_owned)
            .unwrap_or_else(|| server.admin.get_username().to_string());
        let sql = sql.replace(OWNER_PLACEHOLDER, &quote_ident(&owner_name));
        let mut conn = connect_quiet(&server.admin_options(db))
            .await
            .map_err(|source| RestoreError::Connect { source })?;
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .map_err(|source| RestoreError::Replay { source })?;
        // Verify: the restored history must be exactly the base set.
        let rows = history_rows(&mut conn).await?;
        let _ = conn.close().await;
        same_history(rows, base)?;
        touch(&entry);
        Ok(true)
    }

    /// Dump `db` into the cache (atomically).
    pub fn save(
        &self,
        server: &Server,
        db: &str,
        owner: Option<&str>,
        base: &MigrationSet,
    ) -> Result<(), SaveError> {
        let pg_dump = find_pg_dump(server).ok_or(SaveError::NoPgDump)?;
        let mut cmd = Command::new(&pg_dump);
        let admin = &server.admin;
        let host = admin
            .get_socket()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| admin.get_host().to_string());
        cmd.args([
            "--format=plain",
            "--inserts",
            "--no-publications",
            "--no-subscriptions",
            "--dbname",
            db,
        ])
        .env("PGHOST", host)
        .env("PGPORT", admin.get_port().to_string())
        .env("PGUSER", admin.get_username())
        .env("PGCONNECT_TIMEOUT", "10");
        if let Some(pw) = &server.admin_password {
            cmd.env("PGPASSWORD", pw);
        }
        let out = cmd.output().map_err(|source| SaveError::Spawn {
            path: pg_dump.clone(),
            source,
        })?;
        if !out.status.success() {
            return Err(SaveError::Failed {
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        let text = String::from_utf8(out.stdout).map_err(|_| SaveError::NotUtf8)?;
        // psql meta-commands (\restrict since 15.14) cannot be sent to the server.
        let mut sql: String = text
            .lines()
            .filter(|l| !l.starts_with('\\'))
            .map(|l| format!("{l}\n"))
            .collect();
        if let Some(o) = owner {
            sql = sql
                .replace(&quote_ident(o), OWNER_PLACEHOLDER)
                .replace(o, OWNER_PLACEHOLDER);
        }
        let manifest = Manifest {
            key: self.key.clone(),
            dump_sha256: hex(sql.as_bytes()),
            migrations: base
                .migrations
                .iter()
                .map(|m| (m.name.clone(), m.checksum.clone()))
                .collect(),
            server_version: server.version.clone(),
            ci_gate_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let entry = self.entry();
        let tmp = self
            .dir
            .join(format!(".tmp-{}-{}", self.key, std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|source| WriteError::CreateDir {
            path: tmp.clone(),
            source,
        })?;
        std::fs::write(tmp.join("base.sql"), sql).map_err(|source| WriteError::Write { source })?;
        std::fs::write(
            tmp.join("manifest.json"),
            serde_json::to_string_pretty(&manifest).unwrap_or_default(),
        )
        .map_err(|source| WriteError::Write { source })?;
        let _ = std::fs::remove_dir_all(&entry);
        std::fs::rename(&tmp, &entry).map_err(|source| WriteError::Store { source })?;
        Ok(())
    }

    /// Remove this run's entry (after a failed restore).
    pub fn invalidate(&self) {
        let _ = std::fs::remove_dir_all(self.entry());
    }
}

/// A `pg_dump` at least as new as the server: the local provider's own, else on PATH, else the
/// highest under /usr/lib/postgresql.
fn find_pg_dump(server: &Server) -> Option<PathBuf> {
    let major_of = |p: &Path| -> Option<u32> {
        let out = Command::new(p).arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .last()?
            .split('.')
            .next()?
            .parse()
            .ok()
    };
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = server.bin_dir() {
        candidates.push(dir.join("pg_dump"));
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path().join("bin/pg_dump"))
            .collect();
        dirs.sort();
        dirs.reverse();
        candidates.extend(dirs);
    }
    candidates.push(PathBuf::from("pg_dump"));
    let found_elsewhere = || {
        crate::provision::binaries::all_dirs()
            .into_iter()
            .map(|d| d.join("pg_dump"))
    };
    candidates
        .into_iter()
        .chain(std::iter::once(()).flat_map(|()| found_elsewhere()))
        .find(|p| major_of(p).is_some_and(|m| m >= server.major()))
}

/// The finished, not rolled-back history rows of a restored database.
async fn history_rows(
    conn: &mut sqlx::PgConnection,
) -> Result<Vec<(String, String)>, HistoryError> {
    sqlx::query_as(
        "SELECT migration_name::text, checksum::text FROM public._prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY started_at, migration_name",
    )
    .fetch_all(conn)
    .await
    .map_err(|source| HistoryError::Read { source })
}

/// The restored history must list exactly the base migrations with their checksums.
fn same_history(mut got: Vec<(String, String)>, base: &MigrationSet) -> Result<(), HistoryError> {
    let mut want: Vec<(String, String)> = base
        .migrations
        .iter()
        .map(|m| (m.name.clone(), m.checksum.clone()))
        .collect();
    want.sort();
    got.sort();
    if want != got {
        return Err(HistoryError::Mismatch);
    }
    Ok(())
}

/// What a cluster entry holds besides its archive.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClusterManifest {
    pub key: String,
    pub tar_sha256: String,
    /// The base database inside the archived cluster.
    pub database: String,
    /// The role that owns the base database's objects (`None`: migrations ran as the superuser).
    pub owner: Option<String>,
    pub server_version: String,
    pub ci_gate_version: String,
    pub migrations: Vec<(String, String)>,
}

/// `--cache-dir` with the `local` provider: the base as an archived cluster.
#[derive(Debug, Clone)]
pub struct ClusterCache {
    pub dir: PathBuf,
    pub key: String,
}

impl ClusterCache {
    /// The key for the base whose migrations directory is git tree `tree`, under `settings`
    /// (how files are applied, owner mode, extensions, roles, which server binaries).
    pub fn new(dir: &Path, tree: &str, settings: &str) -> ClusterCache {
        let key = hex(format!("{}\0{settings}\0{tree}", env!("CARGO_PKG_VERSION")).as_bytes());
        ClusterCache {
            dir: dir.to_path_buf(),
            key: key[..32].to_string(),
        }
    }

    fn entry(&self) -> PathBuf {
        self.dir.join(format!("cluster-{}", self.key))
    }

    /// The entry's manifest and archive, when there is one for this key.
    pub fn lookup(
        &self,
    ) -> Result<Option<(ClusterManifest, crate::provision::archive::Archive)>, LookupError> {
        let entry = self.entry();
        let Ok(text) = std::fs::read_to_string(entry.join("manifest.json")) else {
            return Ok(None);
        };
        let manifest: ClusterManifest =
            serde_json::from_str(&text).map_err(|source| LookupError::Manifest { source })?;
        if manifest.key != self.key {
            return Err(LookupError::Tampered);
        }
        let archive = crate::provision::archive::Archive {
            path: entry.join("cluster.tar"),
            sha256: manifest.tar_sha256.clone(),
        };
        Ok(Some((manifest, archive)))
    }

    /// After restoring: the base database must hold exactly the base migrations.
    pub async fn verify(
        &self,
        server: &Server,
        db: &str,
        base: &MigrationSet,
    ) -> Result<(), HistoryError> {
        let mut conn = connect_quiet(&server.admin_options(db))
            .await
            .map_err(|source| HistoryError::Connect { source })?;
        let rows = history_rows(&mut conn).await;
        let _ = conn.close().await;
        same_history(rows?, base)
    }

    /// A new entry to be written at shutdown from database `db` (owned by `owner`).
    pub fn pending(
        &self,
        db: &str,
        owner: Option<&str>,
        server: &Server,
        base: &MigrationSet,
    ) -> PendingArchive {
        PendingArchive {
            entry: self.entry(),
            tmp: self
                .dir
                .join(format!(".tmp-cluster-{}-{}", self.key, std::process::id())),
            manifest: ClusterManifest {
                key: self.key.clone(),
                tar_sha256: String::new(),
                database: db.to_string(),
                owner: owner.map(str::to_owned),
                server_version: server.version.clone(),
                ci_gate_version: env!("CARGO_PKG_VERSION").to_string(),
                migrations: base
                    .migrations
                    .iter()
                    .map(|m| (m.name.clone(), m.checksum.clone()))
                    .collect(),
            },
        }
    }

    /// Remove this key's entry (after a failed restore).
    pub fn invalidate(&self) {
        let _ = std::fs::remove_dir_all(self.entry());
    }

    /// Mark the entry as just used (the Action keeps the most recently used entries).
    pub fn touch(&self) {
        touch(&self.entry());
    }
}

fn touch(dir: &Path) {
    let _ = std::fs::File::open(dir).and_then(|f| f.set_modified(std::time::SystemTime::now()));
}

/// A cluster entry being written: the archive goes to a temp dir in the cache, which is renamed
/// into place with its manifest once the archive's hash is known.
#[derive(Debug, Clone)]
pub struct PendingArchive {
    entry: PathBuf,
    tmp: PathBuf,
    manifest: ClusterManifest,
}

impl PendingArchive {
    /// The database to keep in the archived cluster.
    pub fn database(&self) -> &str {
        &self.manifest.database
    }

    /// Where the archive is to be written (created on demand).
    pub fn tar_path(&self) -> Result<PathBuf, ArchiveError> {
        let _ = std::fs::remove_dir_all(&self.tmp);
        std::fs::create_dir_all(&self.tmp).map_err(|source| WriteError::CreateDir {
            path: self.tmp.clone(),
            source,
        })?;
        Ok(self.tmp.join("cluster.tar"))
    }

    /// Store the entry with the archive's hash (atomically), or clean up after a failure.
    pub fn commit(mut self, sha256: Option<String>) -> Result<(), ArchiveError> {
        let Some(sha) = sha256 else {
            let _ = std::fs::remove_dir_all(&self.tmp);
            return Err(ArchiveError::NotArchived);
        };
        self.manifest.tar_sha256 = sha;
        let text = serde_json::to_string_pretty(&self.manifest)
            .map_err(|source| ArchiveError::Manifest { source })?;
        let write = std::fs::write(self.tmp.join("manifest.json"), text)
            .map_err(|source| WriteError::Write { source });
        let stored = write.and_then(|()| {
            let _ = std::fs::remove_dir_all(&self.entry);
            std::fs::rename(&self.tmp, &self.entry).map_err(|source| WriteError::Store { source })
        });
        if stored.is_err() {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
        Ok(stored?)
    }
}

// The errors below are shown by the pipeline as one line (`base cache entry unusable (…)`,
// `base cache not written: …`), so each message carries its cause's text; the cause is also the
// `source()` for callers that walk the chain.

/// Why [`BaseCache::restore`] could not use the entry.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("unreadable cache manifest: {source}")]
    Manifest {
        #[source]
        source: serde_json::Error,
    },
    #[error("cache entry does not match its manifest (corrupt or tampered)")]
    Tampered,
    #[error("cache entry is not UTF-8")]
    NotUtf8,
    #[error("{source}")]
    Connect {
        #[source]
        source: sqlx::Error,
    },
    #[error("restoring the cached base failed: {source}")]
    Replay {
        #[source]
        source: sqlx::Error,
    },
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// Why [`BaseCache::save`] wrote no entry.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("no pg_dump for this server version found")]
    NoPgDump,
    #[error("cannot run {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pg_dump failed: {stderr}")]
    Failed { stderr: String },
    #[error("pg_dump output is not UTF-8")]
    NotUtf8,
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Why a restored base's history does not vouch for it ([`ClusterCache::verify`], and the last
/// step of [`BaseCache::restore`]).
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{source}")]
    Connect {
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot read the restored history: {source}")]
    Read {
        #[source]
        source: sqlx::Error,
    },
    #[error("the restored history does not match the base migrations")]
    Mismatch,
}

/// Why [`ClusterCache::lookup`] found an entry it cannot use.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("unreadable cache manifest: {source}")]
    Manifest {
        #[source]
        source: serde_json::Error,
    },
    #[error("cache entry does not match its key (corrupt or tampered)")]
    Tampered,
}

/// Why a [`PendingArchive`] was not stored.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the cluster was not archived")]
    NotArchived,
    #[error("{source}")]
    Manifest {
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Why writing a cache entry (a dump or an archived cluster) into the cache directory failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{source}")]
    Write {
        #[source]
        source: std::io::Error,
    },
    #[error("cannot store the cache entry: {source}")]
    Store {
        #[source]
        source: std::io::Error,
    },
}
