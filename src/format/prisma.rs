//! Prisma Migrate (5.x–7.x) as a [`Format`]: layout, checksums, `_prisma_migrations` and
//! `prisma migrate deploy`'s behaviour, from `reference/formats.md` §1 and
//! `reference/prisma-versions.md`.
//!
//! Layout (§1.1–1.3):
//! - every immediate subdirectory is a migration, named verbatim; root files are ignored;
//!   symlinked directories are skipped (Prisma does not follow them);
//! - order is by bytes (Prisma ≤ 6.5); Prisma ≥ 6.6 sorts with ICU `localeCompare`, so a note is
//!   given where the two would differ;
//! - a directory without `migration.sql` breaks deploy (P3015);
//! - `migration_lock.toml` is not parsed as TOML: the provider is the first line starting with
//!   `provider`, with `provider = ` and quotes trimmed (so `provider="postgresql"` reads as
//!   `provider="postgresql` and fails deploy with P3019);
//! - the script is read as UTF-8 with invalid bytes replaced (≥ 6.6), BOM and CRLF kept;
//! - checksum = lowercase hex SHA-256 of the text as read (= of the file, when it is UTF-8); the match test also accepts the CRLF→LF and
//!   LF→CRLF variants ([`checksum_matches`]).
//!
//! Deploy (§1.4–1.5): for each pending migration (no row of that name with `rolled_back_at`
//! NULL: out-of-order ones are applied, edited ones go unnoticed), a row is inserted and
//! autocommitted *before* the script; the script is sent as one simple-query message with no
//! BEGIN (≤ 7.3), or statement by statement, each autocommitted (≥ 7.4, [`Semantics`]); success
//! adds `applied_steps_count + 1` then `finished_at`, failure writes `logs` and stops (P3018).

use std::cmp::Ordering;

use sha2::{Digest, Sha256};

use super::{
    ApplyPlan, ApplyUnit, Attempt, Finish, Format, FormatKind, HistoryCase, HistoryRow,
    HistoryTable, Param, Sql, ToolVerdict, TxMode,
};
use crate::discover::tree::{EntryKind, Tree, join};
use crate::discover::{
    DiscoverError, DiscoverNote, LayoutProblem, Migration, MigrationSet, line_col,
};

/// The lock file's name.
pub const LOCK_FILE: &str = "migration_lock.toml";
/// The script's name inside each migration directory.
pub const SCRIPT: &str = "migration.sql";
/// What Prisma reads when no line starts with `provider`.
pub const PROVIDER_NOT_FOUND: &str = "<PROVIDER NOT FOUND>";

/// Providers that are not PostgreSQL: ci-gate refuses them with a clear message.
const OTHER_PROVIDERS: &[&str] = &["sqlite", "mysql", "sqlserver", "mongodb", "cockroachdb"];

/// Read the Prisma migrations directory `dir` (relative to the tree's root).
pub fn read(tree: &dyn Tree, dir: &str) -> Result<MigrationSet, DiscoverError> {
    if !tree.is_dir(dir) {
        let path = tree.display(dir);
        return Err(if path.exists() {
            DiscoverError::NotADir { path }
        } else {
            DiscoverError::MissingDir { path }
        });
    }
    let entries = tree.list(dir).map_err(|source| DiscoverError::Io {
        path: tree.display(dir),
        source,
    })?;
    let mut problems = Vec::new();
    let mut notes = Vec::new();

    // migration_lock.toml, read the way Prisma reads it.
    let lock_path = join(dir, LOCK_FILE);
    if let Some(bytes) = tree
        .read(&lock_path)
        .map_err(|source| DiscoverError::read(tree.display(&lock_path), source))?
    {
        let text = String::from_utf8_lossy(&bytes);
        match lock_provider(&text) {
            Some((line, provider)) if provider == "postgresql" => {
                let _ = line;
            }
            Some((line, provider)) if OTHER_PROVIDERS.contains(&provider.as_str()) => {
                return Err(DiscoverError::NotPostgres {
                    file: lock_path,
                    line,
                    provider,
                });
            }
            Some((line, provider)) => problems.push(LayoutProblem::UnreadableLockProvider {
                file: lock_path,
                line: Some(line),
                read_as: provider,
            }),
            None => problems.push(LayoutProblem::UnreadableLockProvider {
                file: lock_path,
                line: None,
                read_as: PROVIDER_NOT_FOUND.to_string(),
            }),
        }
    }

    let mut dirs: Vec<String> = Vec::new();
    for entry in &entries {
        match entry.kind {
            EntryKind::Dir => dirs.push(entry.name.clone()),
            EntryKind::Symlink => notes.push(DiscoverNote {
                message: format!(
                    "{}: symlink skipped (Prisma does not follow symlinked migration directories)",
                    join(dir, &entry.name)
                ),
            }),
            _ => {}
        }
    }
    if dirs.is_empty() {
        return Err(DiscoverError::Empty {
            path: tree.display(dir),
        });
    }
    dirs.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    if let Some(note) = icu_order_note(&dirs) {
        notes.push(note);
    }

    let mut migrations = Vec::new();
    for name in dirs {
        let mdir = join(dir, &name);
        let path = join(&mdir, SCRIPT);
        let Some(bytes) = tree
            .read(&path)
            .map_err(|source| DiscoverError::read(tree.display(&path), source))?
        else {
            problems.push(LayoutProblem::MissingScript { dir: mdir });
            continue;
        };
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t.to_string(),
            Err(e) => {
                let valid = e.valid_up_to();
                let prefix = String::from_utf8_lossy(&bytes[..valid]);
                let (line, column) = line_col(&prefix, prefix.len());
                problems.push(LayoutProblem::NotUtf8 {
                    file: path.clone(),
                    line,
                    column,
                    byte_offset: valid,
                });
                String::from_utf8_lossy(&bytes).into_owned()
            }
        };
        // Prisma ≥ 6.6 hashes the text it read (invalid bytes already replaced by U+FFFD); for
        // valid UTF-8 that is the same as hashing the file.
        let checksum = checksum(text.as_bytes());
        migrations.push(Migration {
            name,
            path,
            bytes,
            text,
            checksum,
        });
    }
    Ok(MigrationSet {
        format: FormatKind::Prisma,
        dir: dir.to_string(),
        migrations,
        problems,
        notes,
    })
}

/// The provider as Prisma reads it: the first line starting with `provider`, `provider = ` and
/// surrounding quotes trimmed. Returns the 1-based line and the value.
pub fn lock_provider(text: &str) -> Option<(usize, String)> {
    text.lines()
        .enumerate()
        .find(|(_, l)| l.starts_with("provider"))
        .map(|(i, l)| {
            let v = l.trim_start_matches("provider = ").trim_matches('"');
            (i + 1, v.to_string())
        })
}

/// Lowercase hex SHA-256, as Prisma stores it in `_prisma_migrations.checksum`.
pub fn checksum(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Prisma's match test: the stored checksum matches the script as-is, with CRLF→LF, or with
/// every LF→CRLF. Legacy stored values (not 64 chars) are compared with the unpadded per-byte
/// hex form (prisma-engines#1887).
pub fn checksum_matches(stored: &str, script: &[u8]) -> bool {
    let candidates = {
        let text = String::from_utf8_lossy(script);
        vec![
            script.to_vec(),
            // ≥ 6.6 hashes the text as read: differs from the bytes when they are not UTF-8.
            text.as_bytes().to_vec(),
            text.replace("\r\n", "\n").into_bytes(),
            text.replace('\n', "\r\n").into_bytes(),
        ]
    };
    candidates.iter().any(|c| {
        if !stored.is_empty() && stored.len() != 64 {
            let legacy: String = Sha256::digest(c).iter().map(|b| format!("{b:x}")).collect();
            legacy == stored
        } else {
            checksum(c) == stored
        }
    })
}

/// A note when Prisma ≥ 6.6's ICU `localeCompare` order differs from byte order.
fn icu_order_note(byte_sorted: &[String]) -> Option<DiscoverNote> {
    let mut icu = byte_sorted.to_vec();
    icu.sort_by(|a, b| icu_compare(a, b));
    let first = byte_sorted.iter().zip(&icu).position(|(a, b)| a != b)?;
    Some(DiscoverNote {
        message: format!(
            "migration order: byte order applies `{}` before `{}`, but Prisma ≥ 6.6 sorts with localeCompare and would apply `{}` first; \
             ci-gate applies byte order. Rename one so both orders agree.",
            byte_sorted[first], icu[first], icu[first]
        ),
    })
}

/// An approximation of ICU root collation (what JavaScript's `localeCompare` uses): punctuation
/// before digits before letters, letters compared case-insensitively first, then lowercase
/// before uppercase.
pub fn icu_compare(a: &str, b: &str) -> std::cmp::Ordering {
    fn primary(c: char) -> (u8, u32) {
        const PUNCT: &str = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";
        if c.is_whitespace() {
            (0, c as u32)
        } else if let Some(i) = PUNCT.find(c) {
            (1, i as u32)
        } else if c.is_ascii_digit() {
            (3, c as u32)
        } else if c.is_alphabetic() {
            (4, c.to_lowercase().next().unwrap_or(c) as u32)
        } else {
            (2, c as u32)
        }
    }
    let pa: Vec<_> = a.chars().map(primary).collect();
    let pb: Vec<_> = b.chars().map(primary).collect();
    pa.cmp(&pb).then_with(|| {
        // tertiary: lowercase before uppercase
        let ta: Vec<bool> = a.chars().map(|c| c.is_uppercase()).collect();
        let tb: Vec<bool> = b.chars().map(|c| c.is_uppercase()).collect();
        ta.cmp(&tb)
    })
}

/// The history table's name (unqualified: deploy finds it through `search_path`).
pub const HISTORY_TABLE: &str = "_prisma_migrations";

/// Prisma's `_prisma_migrations` DDL (sql-schema-connector, postgres flavour).
pub const HISTORY_TABLE_DDL: &str = "CREATE TABLE IF NOT EXISTS \"_prisma_migrations\" (\n    \
    \"id\" VARCHAR(36) PRIMARY KEY NOT NULL,\n    \"checksum\" VARCHAR(64) NOT NULL,\n    \
    \"finished_at\" TIMESTAMPTZ,\n    \"migration_name\" VARCHAR(255) NOT NULL,\n    \"logs\" TEXT,\n    \
    \"rolled_back_at\" TIMESTAMPTZ,\n    \"started_at\" TIMESTAMPTZ NOT NULL DEFAULT now(),\n    \
    \"applied_steps_count\" INTEGER NOT NULL DEFAULT 0\n)";

/// How `migration.sql` is executed, by Prisma version (`reference/prisma-versions.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Semantics {
    /// ≤ 7.3 (and unknown: the stricter): one message per file.
    #[default]
    WholeFile,
    /// ≥ 7.4: one autocommitted message per statement, the whole file when it cannot be split.
    Statements,
}

/// Prisma Migrate on PostgreSQL, as `prisma migrate deploy` behaves at one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prisma {
    pub semantics: Semantics,
}

impl Prisma {
    pub fn new(semantics: Semantics) -> Prisma {
        Prisma { semantics }
    }
}

impl Format for Prisma {
    fn kind(&self) -> FormatKind {
        FormatKind::Prisma
    }

    fn discover(&self, tree: &dyn Tree, dir: &str) -> Result<MigrationSet, DiscoverError> {
        read(tree, dir)
    }

    /// Byte order of the directory names (≤ 6.5; discovery notes where ≥ 6.6's ICU order differs).
    fn compare(&self, a: &Migration, b: &Migration) -> Ordering {
        a.name.as_bytes().cmp(b.name.as_bytes())
    }

    /// Of the text as read (invalid UTF-8 replaced), as ≥ 6.6 hashes it.
    fn checksum(&self, bytes: &[u8]) -> String {
        checksum(String::from_utf8_lossy(bytes).as_bytes())
    }

    fn checksum_matches(&self, stored: &str, file: &[u8]) -> bool {
        checksum_matches(stored, file)
    }

    /// Never a transaction of its own; the unit depends on the version.
    fn apply_plan(&self, _m: &Migration) -> ApplyPlan {
        ApplyPlan {
            unit: match self.semantics {
                Semantics::WholeFile => ApplyUnit::WholeFile,
                Semantics::Statements => ApplyUnit::Statements,
            },
            tx: TxMode::Autocommit,
        }
    }

    /// quaint's startup `search_path` is exactly the URL's schema (`public` by default).
    fn session_setup(&self) -> Vec<String> {
        vec!["SET search_path TO \"public\"".into()]
    }

    fn history_table(&self) -> HistoryTable {
        HistoryTable {
            schema: None,
            name: HISTORY_TABLE.into(),
        }
    }

    fn history_ddl(&self) -> Vec<String> {
        vec![HISTORY_TABLE_DDL.into()]
    }

    /// The row deploy inserts before the script (`logs` NULL, `applied_steps_count` 0).
    fn record_started(&self, a: &Attempt<'_>) -> Vec<Sql> {
        vec![Sql::new(
            "could not record the migration start in _prisma_migrations",
            "INSERT INTO \"_prisma_migrations\" (\"id\", \"checksum\", \"started_at\", \"migration_name\") VALUES ($1, $2, $3::timestamptz, $4)",
            vec![
                Param::Text(a.id.into()),
                Param::Text(a.migration.checksum.clone()),
                Param::Text(a.started_at.into()),
                Param::Text(a.migration.name.clone()),
            ],
        )]
    }

    fn record_applied(&self, _a: &Attempt<'_>) -> Vec<Sql> {
        Vec::new()
    }

    /// Success: two separate autocommits; failure: the rendered error in `logs` (P3018).
    fn record_finished(&self, a: &Attempt<'_>, finish: &Finish<'_>) -> Vec<Sql> {
        match finish {
            Finish::Applied { finished_at, .. } => vec![
                Sql::new(
                    "could not record the applied step",
                    "UPDATE \"_prisma_migrations\" SET \"applied_steps_count\" = \"applied_steps_count\" + 1 WHERE \"id\" = $1",
                    vec![Param::Text(a.id.into())],
                ),
                Sql::new(
                    "could not record the migration end",
                    "UPDATE \"_prisma_migrations\" SET \"finished_at\" = $1::timestamptz WHERE \"id\" = $2",
                    vec![Param::Text((*finished_at).into()), Param::Text(a.id.into())],
                ),
            ],
            Finish::Failed(e) => vec![Sql::new(
                "could not record the failure in _prisma_migrations",
                "UPDATE \"_prisma_migrations\" SET \"logs\" = $1 WHERE \"id\" = $2",
                vec![
                    Param::Text(render_logs(&a.migration.name, e)),
                    Param::Text(a.id.into()),
                ],
            )],
        }
    }

    /// One `INSERT … SELECT FROM UNNEST` for every finished row, with the columns deploy leaves;
    /// a failed attempt (the last) gets deploy's insert and `logs` update.
    fn record_batch(&self, done: &[(Attempt<'_>, Finish<'_>)]) -> Vec<Sql> {
        let applied: Vec<(&Attempt<'_>, &str)> = done
            .iter()
            .filter_map(|(a, f)| match f {
                Finish::Applied { finished_at, .. } => Some((a, *finished_at)),
                Finish::Failed(_) => None,
            })
            .collect();
        let mut out = Vec::new();
        if !applied.is_empty() {
            let col = |f: &dyn Fn(&(&Attempt<'_>, &str)) -> String| {
                Param::TextArray(applied.iter().map(f).collect())
            };
            out.push(Sql::new(
                "could not record the applied migrations in _prisma_migrations",
                "INSERT INTO \"_prisma_migrations\" (\"id\", \"checksum\", \"started_at\", \"finished_at\", \"migration_name\", \"applied_steps_count\") \
                 SELECT id, checksum, started::timestamptz, finished::timestamptz, name, 1 \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS r(id, checksum, started, finished, name)",
                vec![
                    col(&|(a, _)| a.id.to_string()),
                    col(&|(a, _)| a.migration.checksum.clone()),
                    col(&|(a, _)| a.started_at.to_string()),
                    col(&|(_, f)| f.to_string()),
                    col(&|(a, _)| a.migration.name.clone()),
                ],
            ));
        }
        for (a, f) in done {
            if let Finish::Failed(_) = f {
                out.extend(self.record_started(a));
                out.extend(self.record_finished(a, f));
            }
        }
        out
    }

    /// Read as Prisma reads it: ordered by `started_at`.
    fn history_select(&self, table: &str) -> String {
        format!(
            "SELECT migration_name, checksum, started_at::text, finished_at::text, rolled_back_at::text, logs FROM {table} ORDER BY started_at"
        )
    }

    /// What `prisma migrate deploy` does (§1.5): it applies late-dated migrations, never
    /// compares checksums (only `migrate dev` demands a reset), ignores rows with no directory,
    /// and stops on failed rows (P3009).
    fn verdict(&self, case: HistoryCase<'_>) -> ToolVerdict {
        match case {
            HistoryCase::OutOfOrder { .. } => ToolVerdict::Applies,
            HistoryCase::Edited { name } => ToolVerdict::RefusesOnlyIn {
                command: "prisma migrate dev".into(),
                message: format!("The migration `{name}` was modified after it was applied."),
            },
            HistoryCase::Missing { .. } => ToolVerdict::Unnoticed,
            HistoryCase::Failed { name } => ToolVerdict::Refuses {
                message: format!(
                    "P3009: migrate found failed migrations in the target database, new migrations will not be applied. The `{name}` migration failed"
                ),
            },
        }
    }

    /// Deploy's pending set: local migrations, in local order, with no row of the same name
    /// where `rolled_back_at` is NULL (a rolled-back migration is applied again).
    fn pending(&self, rows: &[HistoryRow], local: &[Migration]) -> Vec<usize> {
        local
            .iter()
            .enumerate()
            .filter(|(_, m)| {
                !rows
                    .iter()
                    .any(|r| r.name == m.name && r.rolled_back_at.is_none())
            })
            .map(|(i, _)| i)
            .collect()
    }
}

/// The `logs` text Prisma writes for a failed migration (P3018's rendering).
pub fn render_logs(name: &str, e: &super::DbError<'_>) -> String {
    let mut s = format!(
        "A migration failed to apply. New migrations cannot be applied before the error is recovered from. \
         Read more about how to resolve migration issues in a production database: https://pris.ly/d/migrate-resolve\n\n\
         Migration name: {name}\n\n"
    );
    if let Some(code) = e.sqlstate {
        s.push_str(&format!("Database error code: {code}\n\n"));
    }
    s.push_str(&format!("Database error:\n{}", e.message));
    if let Some(d) = e.detail {
        s.push_str(&format!("\nDETAIL: {d}"));
    }
    if let Some(h) = e.hint {
        s.push_str(&format!("\nHINT: {h}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_is_not_parsed_as_toml() {
        assert_eq!(
            lock_provider("# c\nprovider = \"postgresql\"\n"),
            Some((2, "postgresql".into()))
        );
        // Prisma's own trimming: `provider = ` does not match, only the trailing quote goes.
        assert_eq!(
            lock_provider("provider=\"postgresql\""),
            Some((1, "provider=\"postgresql".into()))
        );
        assert_eq!(lock_provider("# nothing"), None);
        // the first line starting with `provider` wins, even a commented-out one later does not
        assert_eq!(
            lock_provider("provider = \"sqlite\"\nprovider = \"postgresql\""),
            Some((1, "sqlite".into()))
        );
    }

    #[test]
    fn checksum_is_lowercase_hex_sha256_of_the_bytes() {
        assert_eq!(
            checksum(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn checksum_match_tolerates_crlf_conversion_both_ways() {
        let lf = b"CREATE TABLE a ();\nCREATE TABLE b ();\n";
        let crlf = b"CREATE TABLE a ();\r\nCREATE TABLE b ();\r\n";
        assert!(checksum_matches(&checksum(lf), crlf));
        assert!(checksum_matches(&checksum(crlf), lf));
        assert!(!checksum_matches(&checksum(lf), b"CREATE TABLE a ();\n"));
    }

    #[test]
    fn checksum_match_accepts_legacy_unpadded_hex() {
        let script = b"SELECT 1;";
        let legacy: String = Sha256::digest(script)
            .iter()
            .map(|b| format!("{b:x}"))
            .collect();
        if legacy.len() != 64 {
            assert!(checksum_matches(&legacy, script));
        }
    }

    #[test]
    fn icu_order_puts_lowercase_and_underscore_differently_from_bytes() {
        use std::cmp::Ordering::*;
        assert_eq!(icu_compare("a", "B"), Less); // bytes: 'B' < 'a'
        assert_eq!(icu_compare("a_b", "a-b"), Less); // bytes: '-' < '_'
        assert_eq!(icu_compare("20240101_a", "20240102_a"), Less);
    }

    fn migration(name: &str, sql: &str) -> Migration {
        Migration {
            name: name.into(),
            path: format!("prisma/migrations/{name}/migration.sql"),
            bytes: sql.as_bytes().to_vec(),
            text: sql.into(),
            checksum: checksum(sql.as_bytes()),
        }
    }

    fn row(name: &str, finished: bool, rolled_back: bool) -> HistoryRow {
        HistoryRow {
            name: name.into(),
            checksum: None,
            started_at: "t".into(),
            finished_at: finished.then(|| "t".into()),
            rolled_back_at: rolled_back.then(|| "t".into()),
            logs: None,
        }
    }

    #[test]
    fn deploy_applies_late_and_rolled_back_migrations_and_ignores_edits() {
        let p = Prisma::default();
        let local = [
            migration("1_a", "A"),
            migration("2_b", "B"),
            migration("3_c", "C"),
        ];
        // 2_b was rolled back (re-applied by deploy); 1_a's failed row still counts as present.
        let rows = [
            row("1_a", false, false),
            row("2_b", false, true),
            row("9_z", true, false),
        ];
        assert_eq!(p.pending(&rows, &local), vec![1, 2]);
        let late = HistoryCase::OutOfOrder {
            name: "2_b",
            before: "3_c",
        };
        assert_eq!(p.verdict(late), ToolVerdict::Applies);
        assert!(matches!(
            p.verdict(HistoryCase::Edited { name: "1_a" }),
            ToolVerdict::RefusesOnlyIn { command, .. } if command == "prisma migrate dev"
        ));
        assert_eq!(
            p.verdict(HistoryCase::Missing { name: "9_z" }),
            ToolVerdict::Unnoticed
        );
        assert!(matches!(
            p.verdict(HistoryCase::Failed { name: "1_a" }),
            ToolVerdict::Refuses { message } if message.starts_with("P3009")
        ));
    }

    #[test]
    fn the_unit_follows_the_version_and_never_opens_a_transaction() {
        let m = migration("1_a", "SELECT 1;");
        let whole = Prisma::new(Semantics::WholeFile).apply_plan(&m);
        let split = Prisma::new(Semantics::Statements).apply_plan(&m);
        assert_eq!(
            (whole.unit, whole.tx),
            (ApplyUnit::WholeFile, TxMode::Autocommit)
        );
        assert_eq!(
            (split.unit, split.tx),
            (ApplyUnit::Statements, TxMode::Autocommit)
        );
    }

    #[test]
    fn rows_are_written_before_and_after_or_at_once_for_a_replay() {
        let p = Prisma::default();
        let (a, b) = (migration("1_a", "A"), migration("2_b", "B"));
        let attempt = |m| Attempt {
            migration: m,
            id: "id",
            started_at: "2024-01-01T00:00:00Z",
        };
        let started = p.record_started(&attempt(&a));
        assert!(
            started[0]
                .text
                .starts_with("INSERT INTO \"_prisma_migrations\"")
        );
        let applied = Finish::Applied {
            finished_at: "2024-01-01T00:00:01Z",
            duration: std::time::Duration::ZERO,
        };
        assert_eq!(p.record_finished(&attempt(&a), &applied).len(), 2);
        let error = super::super::DbError {
            sqlstate: Some("42703"),
            message: "column does not exist",
            detail: None,
            hint: None,
        };
        let batch = p.record_batch(&[(attempt(&a), applied), (attempt(&b), Finish::Failed(error))]);
        // One INSERT … UNNEST for the applied row, then deploy's insert and `logs` for the failure.
        assert_eq!(batch.len(), 3);
        assert!(batch[0].text.contains("UNNEST"));
        assert!(
            matches!(&batch[2].params[0], Param::Text(logs) if logs.contains("Database error code: 42703"))
        );
    }
}
