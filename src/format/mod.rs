//! The `Format` seam: everything that differs between migration tools, behind one trait.
//!
//! A [`Format`] says how a tool finds its migrations (discovery into a [`MigrationSet`], order),
//! how it fingerprints them (checksum and its own equality rule), how it keeps its history table
//! (name, DDL, the rows it writes around each migration, the rows a replay writes at once), how
//! it reads that table back, what it does itself with edited, missing, out-of-order and failed
//! ("dirty") history ([`ToolVerdict`]), and how it sends each migration to the server
//! ([`ApplyPlan`]: whole file, statements or chunks; a transaction per migration or none; one
//! transaction for the whole run).
//!
//! The trait is **declarative and synchronous**: methods return SQL ([`Sql`]) and plans, never
//! touch a connection. One executor (`run::apply`) performs them, so every format gets the same
//! error location, timeouts and tracing, and a format can be tested without a server.
//!
//! **Dispatch is `&dyn Format`**, not an enum: the format is chosen at run time (flag, config,
//! detection), an implementation outside the crate (the plain-SQL one in `tests/format_plain.rs`)
//! must plug in, and the calls are a handful per migration next to a network round trip, so
//! dynamic dispatch costs nothing measurable. `Send + Sync` lets the pipeline hold it across
//! `.await`s in a spawned task.
//!
//! Implementations: [`prisma`] (Prisma Migrate 5–7, the only one `ci-gate verify` selects today).
//! `ARCHITECTURE.md` maps every tool quirk of `reference/formats.md` to the method that carries it.

pub mod prisma;

use std::cmp::Ordering;
use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::discover::{DiscoverError, Migration, MigrationSet, Tree};

/// Which tool a migrations directory follows: the name users write (`--format`, `format:`).
///
/// A plain domain value: it knows its names ([`FormatKind::names`], [`std::str::FromStr`],
/// [`std::fmt::Display`]); the command line converts at its edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormatKind {
    Prisma,
    /// A format outside ci-gate's list, by its name (an implementation in a test, an
    /// experiment): never parsed from user input.
    Custom(&'static str),
}

/// The names config files may hold (serde's own "unknown variant" message lists them).
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Named {
    Prisma,
}

impl<'de> Deserialize<'de> for FormatKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<FormatKind, D::Error> {
        Ok(match Named::deserialize(d)? {
            Named::Prisma => FormatKind::Prisma,
        })
    }
}

impl Serialize for FormatKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl FormatKind {
    /// Every format ci-gate selects, in the order `--help` lists them.
    pub const ALL: &'static [FormatKind] = &[FormatKind::Prisma];

    /// The name users write.
    pub fn name(self) -> &'static str {
        match self {
            FormatKind::Prisma => "prisma",
            FormatKind::Custom(name) => name,
        }
    }

    /// Every accepted name, for help texts and "expected one of" messages.
    pub fn names() -> Vec<&'static str> {
        FormatKind::ALL.iter().map(|k| k.name()).collect()
    }
}

impl std::fmt::Display for FormatKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of [`FormatKind::names`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown migration format `{given}` (expected one of: {})", FormatKind::names().join(", "))]
pub struct UnknownFormat {
    pub given: String,
}

impl std::str::FromStr for FormatKind {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<FormatKind, UnknownFormat> {
        FormatKind::ALL
            .iter()
            .copied()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownFormat {
                given: s.to_string(),
            })
    }
}

/// A parameter of a bookkeeping statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    /// `NULL` when `None`.
    OptText(Option<String>),
    Int(i64),
    Bool(bool),
    Bytes(Vec<u8>),
    TextArray(Vec<String>),
}

/// One bookkeeping statement: SQL with `$n` placeholders and their values (extended protocol).
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Param>,
    /// What it does, for the error when it fails ("record the migration start in …").
    pub what: String,
}

impl Sql {
    pub fn new(what: impl Into<String>, text: impl Into<String>, params: Vec<Param>) -> Sql {
        Sql {
            text: text.into(),
            params,
            what: what.into(),
        }
    }
}

/// Where a tool keeps its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryTable {
    /// `None`: unqualified, found through the session's `search_path` (Prisma, sqlx).
    pub schema: Option<String>,
    pub name: String,
}

/// How one migration's text is cut into messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyUnit {
    /// The whole file as one simple-query message: one implicit transaction unless the text has
    /// its own `BEGIN`/`COMMIT` (Prisma ≤ 7.3, sqlx, golang-migrate, dbmate, plain).
    WholeFile,
    /// Split into statements by ci-gate's PostgreSQL parser, one message each; the whole file as
    /// one message when it cannot be split exactly (Prisma ≥ 7.4).
    Statements,
    /// The tool's own cuts (byte ranges of [`Migration::text`]), one message each (Drizzle's
    /// `--> statement-breakpoint`, goose's annotated statements, Flyway's parser).
    Chunks(Vec<Range<usize>>),
}

/// Whether the tool wraps one migration in a transaction of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMode {
    /// No `BEGIN`: each message commits on its own (Prisma, golang-migrate, sqlx's
    /// `-- no-transaction`, goose's `NO TRANSACTION`, dbmate's `transaction:false`).
    Autocommit,
    /// `BEGIN`; the unit; [`Format::record_applied`]; `COMMIT` (sqlx, goose, dbmate, Flyway).
    Transaction,
}

/// How one migration is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyPlan {
    pub unit: ApplyUnit,
    pub tx: TxMode,
}

/// The transaction around a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunTx {
    /// Each migration on its own ([`ApplyPlan::tx`] decides).
    PerMigration,
    /// One transaction for every pending migration, rows included; a failure rolls all back
    /// (Drizzle, Flyway `group=true`, psql `--single-transaction`).
    AllPending,
}

/// A migration about to run, as the history writes see it.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub migration: &'a Migration,
    /// A fresh UUID v4 (Prisma's `id`).
    pub id: &'a str,
    /// Client time, RFC 3339 UTC.
    pub started_at: &'a str,
}

/// The server's error, as a history row records it.
#[derive(Debug, Clone, Copy)]
pub struct DbError<'a> {
    pub sqlstate: Option<&'a str>,
    pub message: &'a str,
    pub detail: Option<&'a str>,
    pub hint: Option<&'a str>,
}

/// How a migration ended.
#[derive(Debug, Clone, Copy)]
pub enum Finish<'a> {
    Applied {
        /// Client time, RFC 3339 UTC.
        finished_at: &'a str,
        duration: Duration,
    },
    Failed(DbError<'a>),
}

/// A row read back from a history table, in the shape every tool's rows fit.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// The tool's name for the migration (Prisma: directory name; sqlx, goose: version).
    pub name: String,
    /// As stored; `None` for tools without checksums (golang-migrate, dbmate, goose).
    pub checksum: Option<String>,
    pub started_at: String,
    /// `None`: the migration failed or is half-applied (Prisma's failed row, golang-migrate's
    /// dirty flag, sqlx and Flyway's `success = false`).
    pub finished_at: Option<String>,
    /// Set when the tool was told to forget a failure (Prisma `resolve --rolled-back`).
    pub rolled_back_at: Option<String>,
    /// What the tool recorded about a failure.
    pub logs: Option<String>,
}

impl HistoryRow {
    /// Finished and not rolled back.
    pub fn is_applied(&self) -> bool {
        self.finished_at.is_some() && self.rolled_back_at.is_none()
    }

    /// Neither finished nor rolled back: the tool refuses to go on (P3009, dirty).
    pub fn is_failed(&self) -> bool {
        self.finished_at.is_none() && self.rolled_back_at.is_none()
    }
}

/// A state of the history that tools disagree about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryCase<'a> {
    /// An applied migration whose file changed (after the tool's equality rule).
    Edited { name: &'a str },
    /// An applied migration with no file any more.
    Missing { name: &'a str },
    /// A new migration that sorts before one already applied.
    OutOfOrder { name: &'a str, before: &'a str },
    /// A failed (dirty) row in the history table.
    Failed { name: &'a str },
}

/// What the tool itself does with a [`HistoryCase`] when it deploys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "tool")]
pub enum ToolVerdict {
    /// It applies the migration anyway (out-of-order under Prisma, sqlx, dbmate).
    Applies,
    /// It does not notice (edited under Prisma deploy, Drizzle, golang-migrate).
    Unnoticed,
    /// It never applies the migration (out-of-order under Drizzle 0.x, golang-migrate).
    SkipsForever,
    /// It stops with this message (edited under sqlx; out-of-order under goose, Flyway).
    Refuses { message: String },
    /// Deploy goes on; another command of the tool refuses (Prisma's `migrate dev` on edits).
    RefusesOnlyIn { command: String, message: String },
}

/// A migration tool, as ci-gate reproduces it. See the module doc.
pub trait Format: Send + Sync {
    /// Which tool (what [`MigrationSet::format`] says and the report shows).
    fn kind(&self) -> FormatKind;

    // --- discovery --------------------------------------------------------------------------

    /// Read the migrations directory `dir` (relative to the tree's root) into a set, ordered as
    /// the tool orders it, each [`Migration::checksum`] as the tool stores it. Layout problems
    /// the tool trips on go to [`MigrationSet::problems`], not to the error.
    fn discover(&self, tree: &dyn Tree, dir: &str) -> Result<MigrationSet, DiscoverError>;

    /// The tool's order (discovery sorts by it; "out of order" means "sorts before").
    fn compare(&self, a: &Migration, b: &Migration) -> Ordering;

    /// The checksum the tool stores for a file's bytes.
    fn checksum(&self, bytes: &[u8]) -> String;

    /// The tool's own equality rule: does the `stored` checksum still describe `file`?
    fn checksum_matches(&self, stored: &str, file: &[u8]) -> bool {
        self.checksum(file) == stored
    }

    // --- applying ---------------------------------------------------------------------------

    /// How `m` is sent: unit and transaction.
    fn apply_plan(&self, m: &Migration) -> ApplyPlan;

    /// The transaction around a run of pending migrations.
    fn run_tx(&self) -> RunTx {
        RunTx::PerMigration
    }

    /// Session settings the tool's connection has (e.g. Prisma's `search_path`), one statement
    /// per item, before the history table is created.
    fn session_setup(&self) -> Vec<String> {
        Vec::new()
    }

    // --- history table ----------------------------------------------------------------------

    /// Where the tool keeps its history.
    fn history_table(&self) -> HistoryTable;

    /// The statements that create the history table when missing.
    fn history_ddl(&self) -> Vec<String>;

    /// Written before the migration runs, autocommitted (Prisma's row, golang-migrate's dirty
    /// flag). Inside the run's transaction under [`RunTx::AllPending`].
    fn record_started(&self, attempt: &Attempt<'_>) -> Vec<Sql>;

    /// Written right after the migration succeeded, inside its transaction when it has one
    /// (sqlx, goose, dbmate, Flyway, Drizzle insert here).
    fn record_applied(&self, attempt: &Attempt<'_>) -> Vec<Sql>;

    /// Written after the migration (and its transaction) ended, autocommitted (Prisma's two
    /// updates or its `logs`; golang-migrate's clean flag; sqlx's `execution_time`; Flyway's
    /// `success = false` row for a non-transactional failure).
    fn record_finished(&self, attempt: &Attempt<'_>, finish: &Finish<'_>) -> Vec<Sql>;

    /// Replaying history production already has: the rows of every migration that ran, written
    /// at once after the scripts (see `run::History::Batched`). The default writes each row as
    /// the per-migration protocol would; formats override it with one statement.
    fn record_batch(&self, done: &[(Attempt<'_>, Finish<'_>)]) -> Vec<Sql> {
        done.iter()
            .flat_map(|(a, f)| {
                let mut v = self.record_started(a);
                v.extend(self.record_applied(a));
                v.extend(self.record_finished(a, f));
                v
            })
            .collect()
    }

    /// A `SELECT` on `table` (already quoted and qualified) giving, in the tool's reading order,
    /// `(name text, checksum text, started_at text, finished_at text, rolled_back_at text,
    /// logs text)`, each nullable but `name` and `started_at`: see [`HistoryRow`].
    fn history_select(&self, table: &str) -> String;

    // --- the tool's own verdicts ------------------------------------------------------------

    /// What the tool does itself with `case` on deploy.
    fn verdict(&self, case: HistoryCase<'_>) -> ToolVerdict;

    /// Indices into `local` of the migrations the tool would apply on a database whose history
    /// is `rows`, in the order it applies them.
    fn pending(&self, rows: &[HistoryRow], local: &[Migration]) -> Vec<usize>;
}

impl dyn Format + '_ {
    /// The history table as `"schema"."name"` or `"name"`.
    pub fn history_table_sql(&self) -> String {
        let t = self.history_table();
        match t.schema {
            Some(s) => format!(
                "{}.{}",
                crate::provision::quote_ident(&s),
                crate::provision::quote_ident(&t.name)
            ),
            None => crate::provision::quote_ident(&t.name),
        }
    }

    /// Whether `a` sorts before `b` in the tool's order.
    pub fn sorts_before(&self, a: &Migration, b: &Migration) -> bool {
        self.compare(a, b) == Ordering::Less
    }
}

/// The format for `kind`; Prisma's needs how its version applies files.
/// `None` for [`FormatKind::Custom`], which ci-gate cannot build.
pub fn select(kind: FormatKind, semantics: prisma::Semantics) -> Option<Box<dyn Format>> {
    match kind {
        FormatKind::Prisma => Some(Box::new(prisma::Prisma::new(semantics))),
        FormatKind::Custom(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_parse_display_and_serialize_alike() {
        assert_eq!(FormatKind::names(), ["prisma"]);
        assert_eq!("prisma".parse::<FormatKind>(), Ok(FormatKind::Prisma));
        assert_eq!("Prisma".parse::<FormatKind>(), Ok(FormatKind::Prisma));
        let err = "flyway".parse::<FormatKind>().err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("unknown migration format `flyway` (expected one of: prisma)".into())
        );
        assert_eq!(FormatKind::Prisma.to_string(), "prisma");
        assert_eq!(FormatKind::Custom("plain").to_string(), "plain");
        assert_eq!(
            serde_json::to_string(&FormatKind::Prisma).ok().as_deref(),
            Some("\"prisma\"")
        );
        let parsed: Result<FormatKind, _> = serde_yaml::from_str("prisma");
        assert_eq!(parsed.ok(), Some(FormatKind::Prisma));
        let bad: Result<FormatKind, _> = serde_yaml::from_str("plain");
        assert!(
            bad.err()
                .is_some_and(|e| e.to_string().contains("unknown variant `plain`")),
            "custom formats are never read from config"
        );
    }

    #[test]
    fn select_builds_the_selectable_formats_only() {
        let prisma = select(FormatKind::Prisma, prisma::Semantics::Statements);
        assert_eq!(prisma.map(|f| f.kind()), Some(FormatKind::Prisma));
        assert!(select(FormatKind::Custom("plain"), prisma::Semantics::default()).is_none());
    }
}
