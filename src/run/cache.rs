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

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Connection};

use crate::discover::MigrationSet;
use crate::provision::{Server, connect_quiet};

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
    ) -> Result<bool, String> {
        let entry = self.entry();
        let (Ok(manifest), Ok(dump)) = (
            std::fs::read_to_string(entry.join("manifest.json")),
            std::fs::read(entry.join("base.sql")),
        ) else {
            return Ok(false);
        };
        let manifest: Manifest = serde_json::from_str(&manifest)
            .map_err(|e| format!("unreadable cache manifest: {e}"))?;
        if manifest.key != self.key || manifest.dump_sha256 != hex(&dump) {
            return Err("cache entry does not match its manifest (corrupt or tampered)".into());
        }
        let sql = String::from_utf8(dump).map_err(|_| "cache entry is not UTF-8".to_string())?;
        let owner_name = owner
            .map(str::to_owned)
            .unwrap_or_else(|| server.admin.get_username().to_string());
        let sql = sql.replace(
            OWNER_PLACEHOLDER,
            &crate::provision::quote_ident(&owner_name),
        );
        let mut conn = connect_quiet(&server.admin_options(db))
            .await
            .map_err(|e| e.to_string())?;
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("restoring the cached base failed: {e}"))?;
        // Verify: the restored history must be exactly the base set.
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT migration_name::text, checksum::text FROM public._prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY started_at, migration_name",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(|e| format!("cannot read the restored history: {e}"))?;
        let _ = conn.close().await;
        let mut want: Vec<(String, String)> = base
            .migrations
            .iter()
            .map(|m| (m.name.clone(), m.checksum.clone()))
            .collect();
        let mut got = rows;
        want.sort();
        got.sort();
        if want != got {
            return Err("the restored history does not match the base migrations".into());
        }
        Ok(true)
    }

    /// Dump `db` into the cache (atomically).
    pub fn save(
        &self,
        server: &Server,
        db: &str,
        owner: Option<&str>,
        base: &MigrationSet,
    ) -> Result<(), String> {
        let pg_dump = find_pg_dump(server).ok_or("no pg_dump for this server version found")?;
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
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run {}: {e}", pg_dump.display()))?;
        if !out.status.success() {
            return Err(format!(
                "pg_dump failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let text =
            String::from_utf8(out.stdout).map_err(|_| "pg_dump output is not UTF-8".to_string())?;
        // psql meta-commands (\restrict since 15.14) cannot be sent to the server.
        let mut sql: String = text
            .lines()
            .filter(|l| !l.starts_with('\\'))
            .map(|l| format!("{l}\n"))
            .collect();
        if let Some(o) = owner {
            sql = sql
                .replace(&crate::provision::quote_ident(o), OWNER_PLACEHOLDER)
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
        std::fs::create_dir_all(&tmp)
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::write(tmp.join("base.sql"), sql).map_err(|e| e.to_string())?;
        std::fs::write(
            tmp.join("manifest.json"),
            serde_json::to_string_pretty(&manifest).unwrap_or_default(),
        )
        .map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&entry);
        std::fs::rename(&tmp, &entry).map_err(|e| format!("cannot store the cache entry: {e}"))?;
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
    candidates
        .into_iter()
        .find(|p| major_of(p).is_some_and(|m| m >= server.major()))
}
