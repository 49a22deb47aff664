//! `--live-url`: a read-only look at a real database (production) for the deploy workflow.
//!
//! The session is read-only at the session level (`default_transaction_read_only=on` as a startup
//! option, then `SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`), verified with
//! `SHOW transaction_read_only` before anything is read; statement and lock timeouts are short; no
//! advisory lock is taken. Only SELECTs run on it.
//!
//! From `_prisma_migrations` it derives failed and rolled-back rows, applied rows whose checksum
//! no longer matches the file, applied rows with no local directory, and the pending set
//! `prisma migrate deploy` would apply (formats.md §1.4–1.5).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, PgConnection};

use crate::check::rules::{
    deleted_applied_migration, edited_applied_migration, live_failed_migration,
};
use crate::check::{Finding, Source};
use crate::discover::MigrationSet;
use crate::discover::prisma::checksum_matches;
use crate::error::UserError;
use crate::provision::url::redact;

/// A row of `_prisma_migrations`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub name: String,
    pub checksum: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub rolled_back_at: Option<String>,
    pub logs: Option<String>,
}

/// (migration_name, checksum, started_at, finished_at, rolled_back_at, logs) as read.
type RawRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The live database's migration history.
#[derive(Debug, Clone, Default)]
pub struct LiveHistory {
    /// `None`: there is no `_prisma_migrations` table.
    pub rows: Option<Vec<HistoryRow>>,
    pub schema: String,
}

/// Open the read-only session. `schema` comes from Prisma's `?schema=` parameter (default `public`).
pub async fn connect(url: &str) -> Result<(PgConnection, String), UserError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(UserError::bad_input(format!(
            "--live-url must be a postgres:// URL, got `{}`",
            redact(url)
        ))
        .hint("use the form postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=require"));
    }
    // Prisma's `schema` parameter is not a libpq one: take it out.
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut schema = "public".to_string();
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| {
            if let Some(v) = kv.strip_prefix("schema=") {
                schema = v.to_string();
                false
            } else {
                !kv.is_empty()
            }
        })
        .collect();
    let clean = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let opts = PgConnectOptions::from_str(&clean)
        .map_err(|e| {
            UserError::bad_input(format!("--live-url is not a valid PostgreSQL URL: {e}"))
                .hint("use the form postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        })?
        .options([
            ("default_transaction_read_only", "on"),
            ("statement_timeout", "30s"),
            ("lock_timeout", "2s"),
            ("idle_in_transaction_session_timeout", "60s"),
        ])
        .application_name("ci-gate (read-only)")
        .disable_statement_logging();
    let mut conn = match tokio::time::timeout(Duration::from_secs(20), opts.connect()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return Err(UserError::environment(format!(
                "could not connect to the live database {}",
                redact(url)
            ))
            .detail(e.to_string())
            .hint("check the URL and the network; managed servers usually need ?sslmode=require"));
        }
        Err(_) => {
            return Err(UserError::environment(format!(
                "no answer from the live database {} within 20 s",
                redact(url)
            ))
            .hint("check the host, port and firewall rules"));
        }
    };
    sqlx::raw_sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        .execute(&mut conn)
        .await
        .map_err(|e| {
            UserError::environment("could not make the live session read-only")
                .detail(e.to_string())
        })?;
    let ro: (String,) = sqlx::query_as("SHOW transaction_read_only")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| {
            UserError::environment("could not verify that the live session is read-only")
                .detail(e.to_string())
        })?;
    if ro.0 != "on" {
        return Err(UserError::environment(
            "the live session is not read-only; refusing to continue",
        )
        .hint("ci-gate only reads production; check for a pooler that drops startup options"));
    }
    Ok((conn, schema))
}

/// Read `_prisma_migrations` (ordered by `started_at`, as Prisma reads it).
pub async fn read_history(conn: &mut PgConnection, schema: &str) -> Result<LiveHistory, UserError> {
    let table = format!(
        "{}._prisma_migrations",
        crate::provision::quote_ident(schema)
    );
    let exists: (Option<String>,) = sqlx::query_as("SELECT to_regclass($1)::text")
        .bind(&table)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| {
            UserError::environment("could not read the live database's catalog")
                .detail(e.to_string())
        })?;
    if exists.0.is_none() {
        return Ok(LiveHistory {
            rows: None,
            schema: schema.to_string(),
        });
    }
    let sql = format!(
        "SELECT migration_name, checksum, started_at::text, finished_at::text, rolled_back_at::text, logs FROM {table} ORDER BY started_at"
    );
    let rows: Vec<RawRow> = sqlx::query_as(AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| {
            UserError::environment("could not read _prisma_migrations on the live database")
                .detail(e.to_string())
        })?;
    Ok(LiveHistory {
        rows: Some(
            rows.into_iter()
                .map(
                    |(name, checksum, started_at, finished_at, rolled_back_at, logs)| HistoryRow {
                        name,
                        checksum,
                        started_at,
                        finished_at,
                        rolled_back_at,
                        logs,
                    },
                )
                .collect(),
        ),
        schema: schema.to_string(),
    })
}

/// What the live history means for this checkout.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub findings: Vec<Finding>,
    /// Head indices of migrations production records as applied (finished, not rolled back),
    /// in local order: what the comparison database is built from.
    pub applied: Vec<usize>,
    /// Names `prisma migrate deploy` would apply, in order.
    pub pending: Vec<String>,
    /// Applied rows with no local directory.
    pub unknown: Vec<String>,
}

pub fn analyze(history: &LiveHistory, head: &MigrationSet) -> Analysis {
    let mut a = Analysis::default();
    let Some(rows) = &history.rows else {
        a.pending = head.migrations.iter().map(|m| m.name.clone()).collect();
        return a;
    };
    let by_name = |name: &str| head.migrations.iter().position(|m| m.name == name);
    let applied_row = |name: &str| {
        rows.iter()
            .rev()
            .find(|r| r.name == name && r.finished_at.is_some() && r.rolled_back_at.is_none())
    };

    // Failed rows (deploy stops with P3009), and rolled-back ones not applied since.
    for r in rows {
        let path = by_name(&r.name).map(|i| head.migrations[i].path.as_str());
        if r.finished_at.is_none() && r.rolled_back_at.is_none() {
            a.findings.push(live_failed_migration::failed(
                &r.name,
                &r.started_at,
                r.logs.as_deref(),
                path,
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for r in rows {
        if let Some(at) = &r.rolled_back_at {
            let still_pending = applied_row(&r.name).is_none()
                && !rows
                    .iter()
                    .any(|x| x.name == r.name && x.rolled_back_at.is_none());
            if still_pending && seen.insert(r.name.clone()) {
                let path = by_name(&r.name).map(|i| head.migrations[i].path.as_str());
                a.findings
                    .push(live_failed_migration::rolled_back(&r.name, at, path));
            }
        }
    }
    // Applied rows: edited since, or unknown locally.
    let mut applied_names: Vec<&str> = rows
        .iter()
        .filter(|r| r.finished_at.is_some() && r.rolled_back_at.is_none())
        .map(|r| r.name.as_str())
        .collect();
    applied_names.dedup();
    for name in applied_names
        .iter()
        .copied()
        .collect::<std::collections::BTreeSet<_>>()
    {
        match by_name(name) {
            Some(i) => {
                let m = &head.migrations[i];
                if let Some(row) = applied_row(name)
                    && !checksum_matches(&row.checksum, &m.bytes)
                {
                    a.findings.push(
                            Finding::new(
                                &edited_applied_migration::RULE,
                                Source::Drift,
                                format!("`{name}` differs from the version production applied on {}: production keeps the old one", row.finished_at.as_deref().unwrap_or("?")),
                            )
                            .migration(name)
                            .file(&m.path)
                            .evidence(format!("checksum in production {} ≠ file {}", &row.checksum[..row.checksum.len().min(12)], &m.checksum[..12]))
                            .fix("revert the edit and put the change in a new migration"),
                        );
                }
            }
            None => {
                a.unknown.push(name.to_string());
                a.findings.push(
                    Finding::new(
                        &deleted_applied_migration::RULE,
                        Source::Drift,
                        format!("`{name}` is recorded as applied in production but has no directory here"),
                    )
                    .migration(name)
                    .evidence("production's _prisma_migrations has a finished row for it")
                    .fix("restore the migration directory from the commit that deployed it"),
                );
            }
        }
    }
    a.applied = head
        .migrations
        .iter()
        .enumerate()
        .filter(|(_, m)| applied_row(&m.name).is_some())
        .map(|(i, _)| i)
        .collect();
    // Deploy's pending set: no row of the same name with rolled_back_at NULL.
    a.pending = head
        .migrations
        .iter()
        .filter(|m| {
            !rows
                .iter()
                .any(|r| r.name == m.name && r.rolled_back_at.is_none())
        })
        .map(|m| m.name.clone())
        .collect();
    a
}
