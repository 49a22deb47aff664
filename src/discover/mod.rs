//! The values discovery produces and the files it reads: a [`MigrationSet`] of ordered
//! [`Migration`]s with their exact bytes and checksum as the tool computes it, read through
//! [`Tree`] so the same reader serves a directory on disk and a git tree at a commit
//! (`crate::git::GitTree`). Each tool's reader is its format's `discover`
//! (`crate::format::Format`; Prisma's is `crate::format::prisma::read`, also reachable here as
//! `discover::prisma`); how a migration is sent is the format's `apply_plan`. Layout problems that would break the tool's deploy are collected as
//! [`LayoutProblem`]s (they become findings); input that ci-gate cannot verify at all is a
//! [`DiscoverError`] (exit 2).

pub mod locate;
pub mod prisma_version;
pub mod tree;

use std::path::PathBuf;

use serde::Serialize;

/// The format's name; the type is [`crate::format::FormatKind`] (this alias is kept for
/// callers; the `Format` trait is [`crate::format::Format`]).
pub use crate::format::FormatKind as Format;
/// Prisma's reader lives with the rest of its format; this path is kept for callers.
pub use crate::format::prisma;
pub use tree::{FsTree, Tree};

/// One migration as the tool sees it.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The tool's name for it (Prisma: the directory name, verbatim).
    pub name: String,
    /// Repo-relative (or project-relative) path of the SQL file, with `/` separators.
    pub path: String,
    /// The exact bytes of the file.
    pub bytes: Vec<u8>,
    /// The text the tool sends (invalid UTF-8 replaced by U+FFFD, as Prisma ≥ 6.6 does; BOM and
    /// CRLF kept).
    pub text: String,
    /// Checksum as the tool stores it (Prisma: lowercase hex SHA-256 of the bytes).
    pub checksum: String,
}

/// A problem in the layout that the tool's deploy would trip on.
#[derive(Debug, Clone, PartialEq)]
pub enum LayoutProblem {
    /// A migration directory without its script (Prisma P3015).
    MissingScript { dir: String },
    /// The lock file's provider line cannot be read as Prisma reads it (Prisma P3019).
    UnreadableLockProvider {
        file: String,
        line: Option<usize>,
        read_as: String,
    },
    /// The script is not valid UTF-8.
    NotUtf8 {
        file: String,
        line: usize,
        column: usize,
        byte_offset: usize,
    },
}

/// A notice about the directory that does not break anything by itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiscoverNote {
    pub message: String,
}

/// Everything discovery learnt about one migrations directory.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    pub format: crate::format::FormatKind,
    /// The migrations directory, relative to the project (`/` separators).
    pub dir: String,
    pub migrations: Vec<Migration>,
    pub problems: Vec<LayoutProblem>,
    pub notes: Vec<DiscoverNote>,
}

/// Input that ci-gate cannot verify (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("migrations directory {path} does not exist")]
    MissingDir { path: PathBuf },
    #[error("{path} is not a directory")]
    NotADir { path: PathBuf },
    #[error("no migrations in {path}")]
    Empty { path: PathBuf },
    /// A file that exists but is not read: not a regular file, or too large (bad input).
    #[error("{path} {reason}")]
    Refused {
        path: PathBuf,
        reason: tree::Refused,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{file}:{line}: the migrations are for provider `{provider}`; ci-gate verifies PostgreSQL migrations"
    )]
    NotPostgres {
        file: String,
        line: usize,
        provider: String,
    },
    #[error("no migrations directory found under {project}")]
    NotFound { project: PathBuf },
    #[error("more than one migrations directory found under {project}:\n{}", candidates.iter().map(|c| format!("  {c}")).collect::<Vec<_>>().join("\n"))]
    Ambiguous {
        project: PathBuf,
        candidates: Vec<String>,
    },
}

impl DiscoverError {
    /// Reading `path` failed: a [`tree::Refused`] file when that is why, else an I/O error.
    pub fn read(path: PathBuf, source: std::io::Error) -> DiscoverError {
        match tree::Refused::of(&source) {
            Some(reason) => DiscoverError::Refused {
                path,
                reason: reason.clone(),
            },
            None => DiscoverError::Io { path, source },
        }
    }

    /// What the user should do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            DiscoverError::MissingDir { .. }
            | DiscoverError::NotADir { .. }
            | DiscoverError::NotFound { .. } => {
                "pass --migrations DIR (e.g. prisma/migrations), or set `migrations:` in .ci-gate.yml"
            }
            DiscoverError::Empty { .. } => {
                "point --migrations at the folder holding the migration directories"
            }
            DiscoverError::Io { .. } => "check the path and its permissions",
            DiscoverError::Refused {
                reason: tree::Refused::NotRegular(_),
                ..
            } => {
                "a migration file must be a regular file (or a symlink to one): replace it with the SQL file itself"
            }
            DiscoverError::Refused {
                reason: tree::Refused::TooLarge { .. },
                ..
            } => "split the migration into smaller ones, or load bulk data outside the migrations",
            DiscoverError::NotPostgres { .. } => {
                "ci-gate only verifies PostgreSQL migration histories; run it on a project whose provider is postgresql"
            }
            DiscoverError::Ambiguous { .. } => {
                "choose one with --migrations DIR, or set `migrations:` in .ci-gate.yml"
            }
        }
    }
}

/// Positions in migration text; one implementation for every stage, in [`crate::sql::position`].
pub use crate::sql::position::{char_pos_to_byte, line_col};
