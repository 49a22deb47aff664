//! Applies migrations the way the tool would and records what happened to each.
//!
//! `prisma` reproduces `prisma migrate deploy` (formats.md §1.5, prisma-versions.md): history rows
//! written as deploy writes them, each script sent as the tool sends it, errors located in the
//! file.

pub mod build;
pub mod cache;
pub mod focus;
pub mod prisma;
pub mod scope;
pub mod seed;
pub mod trace;

use std::time::Duration;

use serde::Serialize;

/// What happened to one migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Applied,
    Failed,
    Skipped,
    Unchanged,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Applied => "applied",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Unchanged => "unchanged",
        })
    }
}

/// How a script was sent to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApplyMode {
    /// The whole file as one simple-query message (one implicit transaction).
    WholeFile,
    /// Statement by statement, each autocommitted.
    Statements,
    /// Splitting was wanted but the file could not be split exactly: sent whole.
    WholeFileFallback,
}

/// How the failing spot was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Located {
    /// The server's error position.
    ServerPosition,
    /// The statement that failed (sent alone, or found by replaying the file statement by statement).
    Statement,
    /// Only the file is known.
    File,
}

/// A migration that failed, with everything the server said and where in the file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub sqlstate: Option<String>,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// The server's CONTEXT (e.g. the PL/pgSQL line).
    pub context: Option<String>,
    /// The table, column and constraint the server named, when it did.
    pub db_table: Option<String>,
    pub db_column: Option<String>,
    pub db_constraint: Option<String>,
    pub line: usize,
    pub column: usize,
    /// The failing statement's text, when known.
    pub statement: Option<String>,
    pub located: Located,
    /// The client gave up waiting (the server did not answer within the statement timeout).
    pub timed_out: bool,
}

/// One migration's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub path: String,
    pub status: Status,
    #[serde(serialize_with = "ser_ms")]
    pub duration: Duration,
    pub mode: ApplyMode,
    pub failure: Option<Failure>,
}

impl Outcome {
    /// `m` applied in `duration`, sent as `mode`.
    pub fn applied(m: &crate::discover::Migration, duration: Duration, mode: ApplyMode) -> Outcome {
        Outcome {
            name: m.name.clone(),
            path: m.path.clone(),
            status: Status::Applied,
            duration,
            mode,
            failure: None,
        }
    }
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}
