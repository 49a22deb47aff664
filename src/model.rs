//! The shared vocabulary of a run: values that one stage produces and later stages (and the JSON
//! report) read. Defined here, below every stage, so that no stage has to reach into another to
//! name them: `run` says what happened to a migration ([`Status`], [`ApplyMode`]) and fills
//! [`CheckResult`]s; `check` decides; `report` renders [`MigrationRow`]s and [`Checks`] without
//! depending on `run`.
//!
//! Serialised names are part of the JSON contract (`schema_version` 1): never rename a variant's
//! serialised form.

use serde::{Deserialize, Serialize};

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
    /// The tool's own cuts (Drizzle breakpoints, goose statements), one message each.
    Chunks,
}

/// Which severity fails the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    Error,
    Warning,
    Never,
}

/// Whether to post the pull-request comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommentMode {
    Auto,
    Always,
    Never,
}

/// The state of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
    Skipped,
}

impl CheckStatus {
    /// `Fail` when `failed`, else `Pass`.
    pub fn failing_if(failed: bool) -> CheckStatus {
        if failed {
            CheckStatus::Fail
        } else {
            CheckStatus::Pass
        }
    }
}

impl std::str::FromStr for CheckStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pass" => Ok(CheckStatus::Pass),
            "fail" => Ok(CheckStatus::Fail),
            "skipped" => Ok(CheckStatus::Skipped),
            other => Err(format!("unknown check status `{other}`")),
        }
    }
}

/// The state of one check (scratch, incremental, drift, history, live).
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub status: CheckStatus,
    /// A one-line human summary, e.g. "163 applied in 4.1 s".
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl CheckResult {
    pub fn not_run(reason: impl Into<String>) -> CheckResult {
        CheckResult {
            status: CheckStatus::Skipped,
            summary: reason.into(),
            applied: None,
            failed: None,
            skipped: None,
            findings: None,
            duration_ms: None,
        }
    }

    /// A check that did not run, but whose outcome is `status` (e.g. failed because what it
    /// builds on failed).
    pub fn settled(status: CheckStatus, summary: impl Into<String>) -> CheckResult {
        CheckResult {
            status,
            ..CheckResult::not_run(summary)
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Checks {
    pub scratch: CheckResult,
    pub incremental: CheckResult,
    pub drift: CheckResult,
    pub history: CheckResult,
    pub live: CheckResult,
    /// The seeded, traced run of the new migrations: how many it observed, where it stopped, and
    /// how many base tables it seeded (`skipped` without a base).
    pub trace: CheckResult,
}

/// How a head migration relates to the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Unchanged,
    /// New on head (every migration, when there is no base).
    New,
    Edited,
    Renamed,
    OutOfOrder,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::Unchanged => "unchanged",
            Change::New => "new",
            Change::Edited => "edited",
            Change::Renamed => "renamed",
            Change::OutOfOrder => "out-of-order",
        })
    }
}

/// A row of the migrations table.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationRow {
    pub name: String,
    pub path: String,
    pub status: Status,
    pub duration_ms: u64,
    pub new: bool,
    /// Against the base ("new" when there is no base).
    pub change: Change,
    pub mode: ApplyMode,
    /// Rule ids of the findings about this migration.
    pub rules: Vec<String>,
    /// The strongest lock the migration took on a relation that existed before it, e.g.
    /// "ACCESS EXCLUSIVE on public.\"User\"" (filled by the trace; null when not traced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// A short note for the table (e.g. the failure message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The row's own outcome and what the seeded trace saw of it (JSON: flat fields).
    #[serde(flatten)]
    pub outcome: RowOutcome,
}

/// One migration's own outcome, from its findings and from whether it was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowVerdict {
    /// An error finding that is not allowed, or the migration failed.
    Error,
    /// A warning that is not allowed.
    Warning,
    /// The run should have observed it and did not (not applied, or the trace stopped before it):
    /// it cannot be called clean.
    NotTraced,
    /// Findings, every one allowed on purpose.
    Allowed,
    /// Nothing to report.
    #[default]
    Clean,
}

impl RowVerdict {
    /// How the row's verdict reads: "error", "warning", "not traced", "allowed", "clean".
    pub fn words(self) -> &'static str {
        match self {
            RowVerdict::Error => "error",
            RowVerdict::Warning => "warning",
            RowVerdict::NotTraced => "not traced",
            RowVerdict::Allowed => "allowed",
            RowVerdict::Clean => "clean",
        }
    }
}

/// What the report says of one migration beyond how it applied (new JSON fields of
/// `schema_version` 1).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RowOutcome {
    /// Decided by the report from the migration's findings and `not_traced_reason`.
    pub verdict: RowVerdict,
    /// The seeded trace ran it, statement by statement, on a seeded copy of the base where every
    /// migration before it had applied (after a failure on the seeded rows, a fresh copy).
    pub traced: bool,
    /// Why a migration the run should have observed was not: it was not applied, or the trace
    /// stopped before it. Null when traced, and when there was nothing to trace (unchanged from
    /// the base, or no base).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_traced_reason: Option<String>,
    /// How long it took on the seeded rows (the trace), when traced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seeded_ms: Option<u64>,
}
