//! `--live-url`: a read-only look at a real database (production) for the deploy workflow.
//!
//! The session is read-only at the session level (`default_transaction_read_only=on` as a startup
//! option, then `SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`), verified with
//! `SHOW transaction_read_only` before anything is read; statement and lock timeouts are short; no
//! advisory lock is taken. Only SELECTs run on it.
//!
//! From the format's history table (`_prisma_migrations` for Prisma, read as the format's
//! [`Format::history_select`] says) it derives failed and rolled-back rows, applied rows whose
//! checksum no longer matches the file (the format's equality rule), applied rows with no local
//! directory, and the pending set the tool's deploy would apply ([`Format::pending`]; formats.md
//! §1.4–1.5 for Prisma).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, PgConnection};

use crate::discover::{Migration, MigrationSet};
use crate::error::UserError;
use crate::format::prisma::Prisma;
use crate::format::{Format, HistoryTable};
use crate::provision::quote_ident;
use crate::provision::url::redact;

/// A row of the live history table.
pub use crate::format::HistoryRow;

/// (name, checksum, started_at, finished_at, rolled_back_at, logs) as the format's select gives.
type RawRow = (
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The live database's migration history.
#[derive(Debug, Clone, Default)]
pub struct LiveHistory {
    /// `None`: there is no history table.
    pub rows: Option<Vec<HistoryRow>>,
    pub schema: String,
}

/// Why the live database could not be read (bad `--live-url` is exit 2, the rest exit 3).
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("--live-url must be a postgres:// URL, got `{redacted}`")]
    NotPostgresUrl { redacted: String },
    #[error("--live-url is not a valid PostgreSQL URL: {source}")]
    BadUrl {
        #[source]
        source: sqlx::Error,
    },
    #[error("could not connect to the live database {redacted}")]
    Connect {
        redacted: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("no answer from the live database {redacted} within 20 s")]
    Timeout { redacted: String },
    #[error("could not {step}")]
    Session {
        step: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("the live session is not read-only; refusing to continue")]
    NotReadOnly,
    #[error("could not read {what} on the live database")]
    Read {
        what: String,
        #[source]
        source: sqlx::Error,
    },
}

impl LiveError {
    fn hint(&self) -> &'static str {
        match self {
            LiveError::NotPostgresUrl { .. } => {
                "use the form postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=require"
            }
            LiveError::BadUrl { .. } => "use the form postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            LiveError::Connect { .. } => {
                "check the URL and the network; managed servers usually need ?sslmode=require"
            }
            LiveError::Timeout { .. } => "check the host, port and firewall rules",
            LiveError::NotReadOnly => {
                "ci-gate only reads production; check for a pooler that drops startup options"
            }
            LiveError::Session { .. } | LiveError::Read { .. } => "",
        }
    }
}

impl From<LiveError> for UserError {
    fn from(e: LiveError) -> UserError {
        let hint = e.hint();
        let detail = match &e {
            LiveError::Connect { source, .. }
            | LiveError::Session { source, .. }
            | LiveError::Read { source, .. } => source.to_string(),
            _ => String::new(),
        };
        let user = match &e {
            LiveError::NotPostgresUrl { .. } | LiveError::BadUrl { .. } => {
                UserError::bad_input(e.to_string())
            }
            LiveError::Read { what, .. } if what == "the catalog" => {
                UserError::environment("could not read the live database's catalog")
            }
            _ => UserError::environment(e.to_string()),
        };
        user.detail(detail).hint(hint)
    }
}

/// Open the read-only session. `schema` comes from Prisma's `?schema=` parameter (default `public`).
pub async fn connect(url: &str) -> Result<(PgConnection, String), LiveError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(LiveError::NotPostgresUrl {
            redacted: redact(url),
        });
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
        .map_err(|source| LiveError::BadUrl { source })?
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
        Ok(Err(source)) => {
            return Err(LiveError::Connect {
                redacted: redact(url),
                source,
            });
        }
        Err(_) => {
            return Err(LiveError::Timeout {
                redacted: redact(url),
            });
        }
    };
    sqlx::raw_sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        .execute(&mut conn)
        .await
        .map_err(|source| LiveError::Session {
            step: "make the live session read-only",
            source,
        })?;
    let ro: (String,) = sqlx::query_as("SHOW transaction_read_only")
        .fetch_one(&mut conn)
        .await
        .map_err(|source| LiveError::Session {
            step: "verify that the live session is read-only",
            source,
        })?;
    if ro.0 != "on" {
        return Err(LiveError::NotReadOnly);
    }
    Ok((conn, schema))
}

/// Read `_prisma_migrations` (ordered by `started_at`, as Prisma reads it).
pub async fn read_history(conn: &mut PgConnection, schema: &str) -> Result<LiveHistory, LiveError> {
    read_history_of(conn, &Prisma::default(), schema).await
}

/// Read `format`'s history table, in `schema` unless the format names its own, in the tool's
/// reading order.
pub async fn read_history_of(
    conn: &mut PgConnection,
    format: &dyn Format,
    schema: &str,
) -> Result<LiveHistory, LiveError> {
    let HistoryTable { schema: own, name } = format.history_table();
    let table = format!(
        "{}.{}",
        quote_ident(own.as_deref().unwrap_or(schema)),
        quote_ident(&name)
    );
    let exists: (Option<String>,) = sqlx::query_as("SELECT to_regclass($1)::text")
        .bind(&table)
        .fetch_one(&mut *conn)
        .await
        .map_err(|source| LiveError::Read {
            what: "the catalog".into(),
            source,
        })?;
    if exists.0.is_none() {
        return Ok(LiveHistory {
            rows: None,
            schema: schema.to_string(),
        });
    }
    let rows: Vec<RawRow> = sqlx::query_as(AssertSqlSafe(format.history_select(&table)))
        .fetch_all(&mut *conn)
        .await
        .map_err(|source| LiveError::Read { what: name, source })?;
    let rows = rows
        .into_iter()
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
        .collect();
    Ok(LiveHistory {
        rows: Some(rows),
        schema: schema.to_string(),
    })
}

/// A problem production's history table shows (the live rules turn each into a finding).
#[derive(Debug, Clone, PartialEq)]
pub enum LiveProblem {
    /// A row that started and never finished: the tool refuses to deploy (Prisma P3009).
    Failed {
        name: String,
        started_at: String,
        logs: Option<String>,
        path: Option<String>,
    },
    /// Rolled back and not applied since.
    RolledBack {
        name: String,
        at: String,
        path: Option<String>,
    },
    /// Applied, and the file no longer matches the checksum production stored.
    Edited {
        name: String,
        path: String,
        finished_at: Option<String>,
        stored: String,
        file: String,
    },
    /// Applied in production, with no migration of that name here.
    Unknown { name: String, table: String },
}

/// What the live history means for this checkout.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// In the order the history shows them: failed rows, rolled-back ones, then applied rows by
    /// name (edited or unknown).
    pub problems: Vec<LiveProblem>,
    /// Head indices of migrations production records as applied (finished, not rolled back),
    /// in local order: what the comparison database is built from.
    pub applied: Vec<usize>,
    /// Names the tool's deploy would apply, in order ([`Format::pending`]).
    pub pending: Vec<String>,
    /// Applied rows with no local directory.
    pub unknown: Vec<String>,
}

/// [`analyze_with`] for Prisma.
pub fn analyze(history: &LiveHistory, head: &MigrationSet) -> Analysis {
    analyze_with(&Prisma::default(), history, head)
}

/// What `history` means for `head` under `format`'s rules: failed and rolled-back rows, applied
/// rows edited since (the format's checksum equality) or unknown locally, and the format's
/// pending set.
pub fn analyze_with(format: &dyn Format, history: &LiveHistory, head: &MigrationSet) -> Analysis {
    let mut a = Analysis::default();
    let Some(rows) = &history.rows else {
        a.pending = head.migrations.iter().map(|m| m.name.clone()).collect();
        return a;
    };
    let by_name = |name: &str| head.migrations.iter().position(|m| m.name == name);
    let path_of = |name: &str| by_name(name).map(|i| head.migrations[i].path.as_str());

    // Failed rows (Prisma's deploy stops with P3009), and rolled-back ones not applied since.
    for r in rows.iter().filter(|r| r.is_failed()) {
        a.problems.push(LiveProblem::Failed {
            name: r.name.clone(),
            started_at: r.started_at.clone(),
            logs: r.logs.clone(),
            path: path_of(&r.name).map(str::to_string),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for r in rows {
        if let Some(at) = &r.rolled_back_at {
            let still_pending = applied_row(rows, &r.name).is_none()
                && !rows
                    .iter()
                    .any(|x| x.name == r.name && x.rolled_back_at.is_none());
            if still_pending && seen.insert(r.name.clone()) {
                a.problems.push(LiveProblem::RolledBack {
                    name: r.name.clone(),
                    at: at.clone(),
                    path: path_of(&r.name).map(str::to_string),
                });
            }
        }
    }
    // Applied rows: edited since, or unknown locally.
    let applied_names: std::collections::BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.is_applied())
        .map(|r| r.name.as_str())
        .collect();
    let table = format.history_table().name;
    for name in applied_names {
        match by_name(name) {
            Some(i) => a
                .problems
                .extend(edited(format, rows, name, &head.migrations[i])),
            None => {
                a.unknown.push(name.to_string());
                a.problems.push(LiveProblem::Unknown {
                    name: name.to_string(),
                    table: table.clone(),
                });
            }
        }
    }
    a.applied = head
        .migrations
        .iter()
        .enumerate()
        .filter(|(_, m)| applied_row(rows, &m.name).is_some())
        .map(|(i, _)| i)
        .collect();
    a.pending = format
        .pending(rows, &head.migrations)
        .into_iter()
        .map(|i| head.migrations[i].name.clone())
        .collect();
    a
}

/// The latest row recording `name` as applied (finished, not rolled back).
fn applied_row<'r>(rows: &'r [HistoryRow], name: &str) -> Option<&'r HistoryRow> {
    rows.iter().rev().find(|r| r.name == name && r.is_applied())
}

/// The file `m` no longer matches the checksum its applied row stored (formats without
/// checksums store none and never fire).
fn edited(
    format: &dyn Format,
    rows: &[HistoryRow],
    name: &str,
    m: &Migration,
) -> Option<LiveProblem> {
    let row = applied_row(rows, name)?;
    let stored = row.checksum.as_deref()?;
    if format.checksum_matches(stored, &m.bytes) {
        return None;
    }
    Some(LiveProblem::Edited {
        name: name.to_string(),
        path: m.path.clone(),
        finished_at: row.finished_at.clone(),
        stored: stored.to_string(),
        file: m.checksum.clone(),
    })
}

/// `--live-url` with no version asked for: give the throwaway server production's major when
/// that major is available here, so the drift comparison compares like with like. Returns a
/// note saying what was decided (also when production's major is not available), or `None`
/// when an explicit choice (`--pg-version`, `--pg-bin`, `--image`, `--provider url`) stands or production
/// could not be reached (the live check itself reports that).
pub async fn match_live_major(
    req: &mut crate::provision::ProvisionRequest,
    live_url: &str,
) -> Option<String> {
    if req.pg_version.is_some()
        || req.pg_bin.is_some()
        || req.image.is_some()
        || req.provider == crate::provision::ProviderChoice::Url
    {
        return None;
    }
    let (mut conn, _) = connect(live_url).await.ok()?;
    let num: String = sqlx::query_scalar("SELECT current_setting('server_version_num')")
        .fetch_one(&mut conn)
        .await
        .ok()?;
    let _ = sqlx::Connection::close(conn).await;
    let major = num.trim().parse::<u32>().ok()? / 10000;
    let available = req.provider == crate::provision::ProviderChoice::Docker
        || crate::provision::binaries::has_major(major);
    if available {
        req.pg_version = Some(major.to_string());
        Some(format!(
            "the throwaway server runs PostgreSQL {major}, production's major (--live-url)"
        ))
    } else {
        Some(format!(
            "production runs PostgreSQL {major}, which is not installed here: the throwaway server \
             runs another major, and catalog differences between majors are normalised \
             (to match production: {})",
            crate::provision::binaries::install_hint_for(major)
        ))
    }
}
