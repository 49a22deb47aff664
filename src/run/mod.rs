//! Applies migrations the way the tool would and records what happened to each.
//!
//! `apply` is the one executor: it sends each migration as its [`crate::format::Format`] says and
//! writes the tool's history rows around it, with errors located in the file. `prisma` keeps the
//! `prisma migrate deploy` entry points (formats.md §1.5, prisma-versions.md) on top of it;
//! `build` creates and fills the run's databases.

pub mod apply;
pub mod build;
pub mod builds;
pub mod cache;
pub mod focus;
pub mod live;
pub mod prisma;
pub mod resume;
pub mod scope;
pub mod seed;
pub mod trace;

use std::time::Duration;

use serde::Serialize;

pub use crate::model::{ApplyMode, Status};

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
    /// The database session ended under the migration while the server stayed up (e.g.
    /// `pg_terminate_backend(pg_backend_pid())`): nothing more could be sent on it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub session_lost: bool,
}

/// A migration that ran without error but left a transaction block open (`BEGIN` with no
/// `COMMIT`): the tool's session closes with it open, so it is rolled back, and every later
/// migration of the same deploy runs inside it and is rolled back too.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeftOpen {
    /// Where the unterminated `BEGIN` (or `START TRANSACTION`) is, when it could be found.
    pub line: usize,
    pub column: usize,
    pub statement: Option<String>,
    /// The later migrations of the run that would have run inside the open transaction and been
    /// rolled back with it (reported `skipped`).
    pub rolled_back_with_it: Vec<String>,
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
    /// Set when the migration left a transaction open (its status is then `failed`: nothing of it
    /// persists, although the tool reports it applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_open: Option<LeftOpen>,
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
            left_open: None,
        }
    }
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}
