//! The static layer: squawk-linter over a migration's text, reported as `squawk/<rule>` findings.
//!
//! Static lint that squawk already does is wrapped, not rewritten. What ci-gate adds:
//! - **Prisma-aware defaults.** Raw squawk on a real Prisma history is mostly noise (one public
//!   820-migration history: 6,357 warnings). Rules that fire on nearly every file Prisma generates,
//!   or that judge type choices made in `schema.prisma` rather than migration safety, are off by
//!   default ([`default_enabled`]; the table below says why for each). `.ci-gate.yml` turns any of
//!   them back on (`rules: { squawk/prefer-robust-stmts: warning }`) or any other one off.
//! - **The right execution model.** [`LintContext::assume_in_transaction`] tells squawk whether the
//!   file runs in one transaction (Prisma ≤ 7.3: one simple-query message, atomic), which is what
//!   exempts foreign keys and indexes on tables created in the same file, and makes
//!   `ban-concurrent-index-creation-in-transaction` fire exactly when Prisma would fail.
//! - **Findings the file itself shows harmless are dismissed** (kept in
//!   [`LintOutput::dismissed`] with the reason, so the report can count them): Prisma's enum swap
//!   (`RENAME TO "X_old"`, `DROP TYPE "X_old"`), a default dropped and set again, a constraint
//!   dropped and re-added under the same name, all inside one transaction; and
//!   `constraint-missing-not-valid` repeating `adding-foreign-key-constraint` on the same
//!   constraint.
//! - **`observed_equivalent`** names the ci-gate rule that observes the same problem on a real
//!   server, so the pipeline can merge the two findings or dismiss the static one when the trace
//!   shows it harmless.
//! - `-- squawk-ignore` comments keep working as in squawk, but the findings they silence stay in
//!   the report, marked allowed, with the comment as the reason (a reviewer sees every exception).
//!
//! Each file is parsed once (squawk-syntax) and linted once (twice only when it contains a
//! `squawk-ignore` comment). [`lint_all`] lints many files on every core, with the rule set
//! prepared once.

use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use squawk_linter::{Linter, Rule as SquawkRule, Violation};
use squawk_syntax::ast::AstNode;
use squawk_syntax::{SourceFile, SyntaxKind};

use crate::check::rules::INVALID_ALLOW_DIRECTIVE;
use crate::check::{Category, Finding, Severity, Source};
use crate::config::{Config, RuleLevel};
use crate::discover::Migration;
use crate::discover::prisma_version::PrismaVersion;
use crate::sql::split::excerpt;

/// Prefix of every squawk rule id in ci-gate.
pub const PREFIX: &str = "squawk/";

/// How the linted file will be executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LintContext {
    /// PostgreSQL major version the migrations target (squawk's `pg_version`).
    pub pg_major: u32,
    /// The tool runs the whole file in one transaction (squawk's `assume_in_transaction`).
    pub assume_in_transaction: bool,
}

impl Default for LintContext {
    /// PostgreSQL 16, one transaction per file (Prisma ≤ 7.3, what ci-gate assumes when the
    /// Prisma version is unknown).
    fn default() -> Self {
        LintContext {
            pg_major: 16,
            assume_in_transaction: true,
        }
    }
}

impl LintContext {
    /// For Prisma: up to 7.3 (and when unknown) each file is one implicit transaction; from 7.4
    /// each statement is autocommitted.
    pub fn for_prisma(pg_major: u32, version: Option<&PrismaVersion>) -> Self {
        LintContext {
            pg_major,
            assume_in_transaction: !version.is_some_and(PrismaVersion::splits_statements),
        }
    }
}

/// A finding the file itself shows harmless, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct Dismissed {
    pub finding: Finding,
    pub reason: String,
}

/// A place where squawk's parser did not understand the file. The findings of that file may be
/// incomplete; whether the SQL is really invalid is decided by running it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// What [`lint`] found in one file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LintOutput {
    /// Findings of the enabled rules, in file order. Those silenced by a `squawk-ignore` comment
    /// are here with `allowed = true`.
    pub findings: Vec<Finding>,
    /// Findings of enabled rules that the file itself shows harmless.
    pub dismissed: Vec<Dismissed>,
    /// Every violation squawk reported, per `squawk/<rule>`, before ci-gate's defaults and
    /// dismissals (squawk's default rule set plus any rule the config turns on;
    /// `squawk-ignore` comments honoured): what raw squawk would have printed.
    pub raw_counts: BTreeMap<String, usize>,
    pub syntax_errors: Vec<SyntaxError>,
}

/// How a squawk rule is treated by default.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// squawk's name (what its docs use).
    name: &'static str,
    /// `squawk/<name>`.
    id: &'static str,
    /// On by default in ci-gate.
    on: bool,
    severity: Severity,
    /// The ci-gate rule that observes the same problem on a server.
    observed: Option<&'static str>,
    summary: &'static str,
}

const fn on(
    name: &'static str,
    id: &'static str,
    severity: Severity,
    observed: Option<&'static str>,
    summary: &'static str,
) -> Entry {
    Entry {
        name,
        id,
        on: true,
        severity,
        observed,
        summary,
    }
}

const fn off(
    name: &'static str,
    id: &'static str,
    observed: Option<&'static str>,
    summary: &'static str,
) -> Entry {
    Entry {
        name,
        id,
        on: false,
        severity: Severity::Warning,
        observed,
        summary,
    }
}

use Severity::{Error as E, Warning as W};

/// Every squawk-linter 2.68 rule, with ci-gate's default.
///
/// Severity: destructive and breaking rules (drops of tables, columns, schemas, databases;
/// `TRUNCATE … CASCADE`; table and column renames) are errors like their observed twins, and so
/// is `CONCURRENTLY` in a file the tool runs in one transaction (it cannot succeed); everything
/// else is a warning, since a static rule guesses and the observed rules carry the proof.
///
/// Off by default, and why (counts: squawk 2.68 with pg 16, one transaction per file, over the 64
/// Prisma files in `examples/` and `tests/fixtures/` / the 300-migration history of
/// `tests/common/history.rs`):
/// - `require-lock-timeout` (59 in 59 files / 293 in 293 files) and `require-statement-timeout`
///   (same): fire on every file Prisma writes, which never sets timeouts. ci-gate's observed
///   `missing-lock-timeout` reports the missing `lock_timeout` only where a dangerous lock was
///   actually taken on an existing table; a statement timeout is a deploy-time setting.
/// - `prefer-robust-stmts` (5 / 6; 198 / 519 when files are not atomic): asks for `IF [NOT]
///   EXISTS` so a half-applied file can be re-run; Prisma never re-runs a failed migration (it
///   records it failed and needs `migrate resolve`), and on Prisma ≤ 7.3 the file is atomic.
/// - `prefer-bigint-over-int` (88 / 122), `prefer-bigint-over-smallint`, `prefer-identity` (48 /
///   24), `prefer-text-field` (8 / 63), `prefer-timestamptz` (82 / 139), `ban-char-field`: judge
///   the column types `schema.prisma` maps to (`Int` → `INTEGER`, `autoincrement()` → `SERIAL`,
///   `@db.VarChar(n)`, `DateTime` → `TIMESTAMP(3)`, `@db.Char(n)`), a design choice made once in
///   the schema, not a hazard of the migration; they fire on most files that create tables.
/// - `require-enum-value-ordering` (3 / 28): Prisma always appends enum values with `ALTER TYPE
///   … ADD VALUE` and no `BEFORE`/`AFTER`; the order matters only to `ORDER BY` on the column.
/// - `transaction-nesting` (2, all in Prisma's own `-- AlterEnum` block): Prisma writes
///   `BEGIN; … COMMIT;` itself when it recreates an enum, and it applies fine
///   (`tests/fixtures/explicit-transaction`); with one transaction per file squawk flags every
///   such block.
/// - squawk's opt-in rules (`require-table-schema`, `ban-add-column`, `ban-new-write-restriction`,
///   `ban-add-enum-value`, `ban-drop-index`, `ban-set-default`, …) stay opt-in: they flag
///   ordinary additive changes (`ban-add-column` 24 / 196, `require-table-schema` 124 / 303).
static RULES: &[Entry] = &[
    // Locks and rewrites.
    on(
        "require-concurrent-index-creation",
        "squawk/require-concurrent-index-creation",
        W,
        Some("blocks-writes"),
        "CREATE INDEX without CONCURRENTLY on an existing table blocks writes while the index builds",
    ),
    on(
        "require-concurrent-index-deletion",
        "squawk/require-concurrent-index-deletion",
        W,
        Some("blocks-reads-writes"),
        "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table",
    ),
    on(
        "constraint-missing-not-valid",
        "squawk/constraint-missing-not-valid",
        W,
        Some("blocks-reads-writes"),
        "a constraint added without NOT VALID scans the table under a lock",
    ),
    on(
        "adding-field-with-default",
        "squawk/adding-field-with-default",
        W,
        Some("rewrites-table"),
        "a column added with a volatile default (or generated) rewrites the table under ACCESS EXCLUSIVE",
    ),
    on(
        "adding-foreign-key-constraint",
        "squawk/adding-foreign-key-constraint",
        W,
        Some("blocks-writes"),
        "a foreign key added to an existing table without NOT VALID blocks writes to both tables while it validates",
    ),
    on(
        "changing-column-type",
        "squawk/changing-column-type",
        W,
        Some("rewrites-table"),
        "ALTER COLUMN … TYPE usually rewrites the table under ACCESS EXCLUSIVE",
    ),
    on(
        "adding-not-nullable-field",
        "squawk/adding-not-nullable-field",
        W,
        Some("blocks-reads-writes"),
        "SET NOT NULL scans the table under ACCESS EXCLUSIVE (and fails if a row is NULL)",
    ),
    on(
        "adding-serial-primary-key-field",
        "squawk/adding-serial-primary-key-field",
        W,
        Some("blocks-reads-writes"),
        "adding a primary key builds its index under ACCESS EXCLUSIVE",
    ),
    on(
        "disallowed-unique-constraint",
        "squawk/disallowed-unique-constraint",
        W,
        Some("blocks-reads-writes"),
        "adding a UNIQUE constraint builds its index under ACCESS EXCLUSIVE",
    ),
    on(
        "require-concurrent-partition-detach",
        "squawk/require-concurrent-partition-detach",
        W,
        Some("blocks-reads-writes"),
        "DETACH PARTITION without CONCURRENTLY takes ACCESS EXCLUSIVE",
    ),
    on(
        "require-concurrent-reindex",
        "squawk/require-concurrent-reindex",
        W,
        Some("blocks-reads-writes"),
        "REINDEX without CONCURRENTLY blocks reads and writes",
    ),
    on(
        "prefer-repack",
        "squawk/prefer-repack",
        W,
        Some("rewrites-table"),
        "CLUSTER / VACUUM FULL rewrite the table under ACCESS EXCLUSIVE; REPACK CONCURRENTLY does not (PostgreSQL 19+)",
    ),
    on(
        "ban-create-domain-with-constraint",
        "squawk/ban-create-domain-with-constraint",
        W,
        None,
        "domains with constraints cannot be changed online",
    ),
    on(
        "ban-alter-domain-with-add-constraint",
        "squawk/ban-alter-domain-with-add-constraint",
        W,
        None,
        "adding a constraint to a domain checks every column using it, under locks",
    ),
    // Destructive.
    on(
        "ban-drop-column",
        "squawk/ban-drop-column",
        E,
        Some("drops-column"),
        "DROP COLUMN loses the data and breaks clients still reading it",
    ),
    on(
        "ban-drop-table",
        "squawk/ban-drop-table",
        E,
        Some("drops-table"),
        "DROP TABLE loses the data and breaks clients still using it",
    ),
    on(
        "ban-drop-database",
        "squawk/ban-drop-database",
        E,
        None,
        "DROP DATABASE in a migration",
    ),
    on(
        "ban-drop-schema",
        "squawk/ban-drop-schema",
        E,
        Some("drops-schema"),
        "DROP SCHEMA removes everything in it",
    ),
    on(
        "ban-truncate-cascade",
        "squawk/ban-truncate-cascade",
        E,
        Some("deletes-rows"),
        "TRUNCATE … CASCADE also empties every table that references it",
    ),
    // Breaking for the application still running.
    on(
        "renaming-column",
        "squawk/renaming-column",
        E,
        Some("renames-column"),
        "renaming a column breaks the running application during a rolling deploy",
    ),
    on(
        "renaming-table",
        "squawk/renaming-table",
        E,
        Some("renames-table"),
        "renaming a table breaks the running application during a rolling deploy",
    ),
    on(
        "adding-required-field",
        "squawk/adding-required-field",
        W,
        Some("fails-on-existing-rows"),
        "ADD COLUMN … NOT NULL without a default fails on a table that has rows",
    ),
    on(
        "ban-drop-not-null",
        "squawk/ban-drop-not-null",
        W,
        None,
        "dropping NOT NULL lets NULLs reach clients that assume none",
    ),
    on(
        "ban-drop-view",
        "squawk/ban-drop-view",
        W,
        None,
        "dropping a view breaks clients using it",
    ),
    on(
        "ban-drop-function",
        "squawk/ban-drop-function",
        W,
        None,
        "dropping a function breaks clients calling it",
    ),
    on(
        "ban-drop-type",
        "squawk/ban-drop-type",
        W,
        None,
        "dropping a type, operator or cast breaks clients using it",
    ),
    on(
        "ban-drop-default",
        "squawk/ban-drop-default",
        W,
        None,
        "dropping a column default breaks inserts that rely on it",
    ),
    on(
        "ban-drop-sequence",
        "squawk/ban-drop-sequence",
        W,
        None,
        "dropping a sequence breaks clients using it",
    ),
    on(
        "ban-drop-domain",
        "squawk/ban-drop-domain",
        W,
        None,
        "dropping a domain breaks clients using it",
    ),
    on(
        "ban-drop-constraint",
        "squawk/ban-drop-constraint",
        W,
        None,
        "dropping a constraint removes a guarantee clients may rely on",
    ),
    on(
        "ban-drop-generated-expression",
        "squawk/ban-drop-generated-expression",
        W,
        None,
        "dropping a generated expression changes what clients read",
    ),
    on(
        "ban-drop-extension",
        "squawk/ban-drop-extension",
        W,
        None,
        "dropping an extension drops its functions and types",
    ),
    on(
        "renaming-object",
        "squawk/renaming-object",
        W,
        None,
        "renaming a constraint, index, type, view, function, sequence, schema or role breaks clients using the old name",
    ),
    on(
        "ban-set-schema",
        "squawk/ban-set-schema",
        W,
        None,
        "moving an object to another schema breaks clients using the old name",
    ),
    on(
        "ban-alter-identity",
        "squawk/ban-alter-identity",
        W,
        None,
        "changing a column's identity can break inserts",
    ),
    // Transactions.
    on(
        "ban-concurrent-index-creation-in-transaction",
        "squawk/ban-concurrent-index-creation-in-transaction",
        E,
        Some("non-transactional-statement"),
        "CREATE INDEX CONCURRENTLY in a file the tool runs in one transaction fails (SQLSTATE 25001)",
    ),
    on(
        "ban-uncommitted-transaction",
        "squawk/ban-uncommitted-transaction",
        W,
        None,
        "a BEGIN that is never committed or rolled back",
    ),
    off(
        "transaction-nesting",
        "squawk/transaction-nesting",
        None,
        "BEGIN/COMMIT inside a file the tool already runs in a transaction (Prisma writes these itself)",
    ),
    // Correctness.
    on(
        "identifier-too-long",
        "squawk/identifier-too-long",
        W,
        None,
        "an identifier longer than 63 bytes is silently truncated",
    ),
    on(
        "ban-duplicate-column-assignments",
        "squawk/ban-duplicate-column-assignments",
        W,
        None,
        "the same column assigned twice in one INSERT or UPDATE",
    ),
    on(
        "unused-ignore",
        "squawk/unused-ignore",
        W,
        None,
        "a squawk-ignore comment names an unknown rule",
    ),
    // Noise on Prisma histories (see above).
    off(
        "require-lock-timeout",
        "squawk/require-lock-timeout",
        Some("missing-lock-timeout"),
        "no lock_timeout set before a statement that takes a lock",
    ),
    off(
        "require-statement-timeout",
        "squawk/require-statement-timeout",
        None,
        "no statement_timeout set before a slow statement",
    ),
    off(
        "prefer-robust-stmts",
        "squawk/prefer-robust-stmts",
        None,
        "statements without IF [NOT] EXISTS cannot be re-run after a partial failure",
    ),
    off(
        "prefer-bigint-over-int",
        "squawk/prefer-bigint-over-int",
        None,
        "32-bit integer columns can overflow",
    ),
    off(
        "prefer-bigint-over-smallint",
        "squawk/prefer-bigint-over-smallint",
        None,
        "16-bit integer columns can overflow",
    ),
    off(
        "prefer-identity",
        "squawk/prefer-identity",
        None,
        "serial columns instead of identity columns",
    ),
    off(
        "prefer-text-field",
        "squawk/prefer-text-field",
        None,
        "varchar(n) instead of text with a CHECK constraint",
    ),
    off(
        "prefer-timestamptz",
        "squawk/prefer-timestamptz",
        None,
        "timestamp without time zone",
    ),
    off(
        "ban-char-field",
        "squawk/ban-char-field",
        None,
        "char(n) columns (blank-padded)",
    ),
    off(
        "require-enum-value-ordering",
        "squawk/require-enum-value-ordering",
        None,
        "ALTER TYPE … ADD VALUE without BEFORE/AFTER (Prisma always appends)",
    ),
    // squawk's opt-in rules.
    off(
        "require-table-schema",
        "squawk/require-table-schema",
        None,
        "table names without a schema",
    ),
    off(
        "ban-drop-trigger",
        "squawk/ban-drop-trigger",
        None,
        "dropping a trigger",
    ),
    off(
        "ban-alter-generated-expression",
        "squawk/ban-alter-generated-expression",
        None,
        "changing or adding a generated expression",
    ),
    off(
        "ban-drop-index",
        "squawk/ban-drop-index",
        None,
        "dropping an index",
    ),
    off(
        "ban-set-default",
        "squawk/ban-set-default",
        None,
        "setting a column default",
    ),
    off(
        "ban-disable-trigger",
        "squawk/ban-disable-trigger",
        None,
        "disabling a trigger or rule",
    ),
    off(
        "ban-replica-identity",
        "squawk/ban-replica-identity",
        None,
        "changing replica identity or publications",
    ),
    off(
        "ban-drop-policy",
        "squawk/ban-drop-policy",
        None,
        "dropping a row-level security policy or rule",
    ),
    off(
        "ban-revoke",
        "squawk/ban-revoke",
        None,
        "revoking privileges or changing ownership",
    ),
    off(
        "ban-replace-view-function",
        "squawk/ban-replace-view-function",
        None,
        "CREATE OR REPLACE of a view, function or trigger",
    ),
    off(
        "ban-alter-policy-condition",
        "squawk/ban-alter-policy-condition",
        None,
        "changing a policy's condition",
    ),
    off(
        "ban-alter-policy-roles",
        "squawk/ban-alter-policy-roles",
        None,
        "changing a policy's roles",
    ),
    off(
        "ban-create-policy",
        "squawk/ban-create-policy",
        None,
        "creating a row-level security policy",
    ),
    off(
        "ban-alter-function-options",
        "squawk/ban-alter-function-options",
        None,
        "changing function options",
    ),
    off(
        "ban-alter-view-options",
        "squawk/ban-alter-view-options",
        None,
        "changing view options",
    ),
    off(
        "ban-alter-role-options",
        "squawk/ban-alter-role-options",
        None,
        "changing role options",
    ),
    off(
        "ban-alter-database-options",
        "squawk/ban-alter-database-options",
        None,
        "changing database options",
    ),
    off(
        "ban-alter-row-level-security",
        "squawk/ban-alter-row-level-security",
        None,
        "enabling or disabling row-level security",
    ),
    off(
        "ban-new-write-restriction",
        "squawk/ban-new-write-restriction",
        None,
        "a new constraint that rejects writes existing clients make",
    ),
    off(
        "ban-add-enum-value",
        "squawk/ban-add-enum-value",
        None,
        "adding an enum value old clients cannot read",
    ),
    off(
        "ban-add-composite-attribute",
        "squawk/ban-add-composite-attribute",
        None,
        "adding a composite type attribute",
    ),
    off(
        "ban-add-column",
        "squawk/ban-add-column",
        None,
        "adding a column (changes the row shape)",
    ),
    off(
        "ban-detach-inheritance",
        "squawk/ban-detach-inheritance",
        None,
        "detaching inheritance",
    ),
    off(
        "ban-alter-sequence-values",
        "squawk/ban-alter-sequence-values",
        None,
        "changing sequence values",
    ),
    off(
        "ban-alter-system-options",
        "squawk/ban-alter-system-options",
        None,
        "ALTER SYSTEM",
    ),
    off(
        "ban-alter-extension",
        "squawk/ban-alter-extension",
        None,
        "changing an extension",
    ),
];

/// squawk names accepted besides [`RULES`]: aliases, and what they stand for.
const ALIASES: &[(&str, &[&str])] = &[
    ("prefer-timestamp-tz", &["prefer-timestamptz"]),
    (
        "require-timeout-settings",
        &["require-lock-timeout", "require-statement-timeout"],
    ),
];

fn strip(id: &str) -> &str {
    id.strip_prefix(PREFIX).unwrap_or(id)
}

fn entry(rule: &str) -> Option<&'static Entry> {
    let name = strip(rule);
    let name = ALIASES
        .iter()
        .find(|(alias, to)| *alias == name && to.len() == 1)
        .map_or(name, |(_, to)| to[0]);
    RULES.iter().find(|e| e.name == name)
}

fn entry_for(code: SquawkRule) -> Option<&'static Entry> {
    entry(&code.to_string())
}

/// Whether `id` is `squawk/<name>` for a rule squawk-linter knows (aliases included).
pub fn is_squawk_rule(id: &str) -> bool {
    let Some(name) = id.strip_prefix(PREFIX) else {
        return false;
    };
    entry(name).is_some() || ALIASES.iter().any(|(alias, _)| *alias == name)
}

/// The canonical ids a `squawk/<name>` id stands for: itself, or what an alias expands to
/// (`squawk/prefer-timestamp-tz` → `squawk/prefer-timestamptz`; `squawk/require-timeout-settings`
/// → both timeout rules). Empty when it is not a squawk rule.
pub fn expand(id: &str) -> Vec<&'static str> {
    let Some(name) = id.strip_prefix(PREFIX) else {
        return Vec::new();
    };
    if let Some((_, to)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
        return to.iter().filter_map(|t| entry(t)).map(|e| e.id).collect();
    }
    entry(name).map(|e| vec![e.id]).unwrap_or_default()
}

/// Whether ci-gate runs a squawk rule when the config does not mention it (`squawk/<name>` or
/// `<name>`).
pub fn default_enabled(rule: &str) -> bool {
    entry(rule).is_some_and(|e| e.on)
}

/// The ci-gate rule that observes on a real server what a squawk rule guesses from the text
/// (`squawk/<name>` or `<name>`). The pipeline merges a static and an observed finding on the same
/// statement into one, and dismisses the static finding when the trace shows the statement
/// harmless (e.g. an index on a table created in the same pull request).
pub fn observed_equivalent(squawk_rule: &str) -> Option<&'static str> {
    entry(squawk_rule).and_then(|e| e.observed)
}

/// Every squawk rule for `ci-gate rules`: id, one line, default severity, on by default.
pub fn squawk_rules() -> Vec<(String, String, Severity, bool)> {
    RULES
        .iter()
        .map(|e| (e.id.to_string(), e.summary.to_string(), e.severity, e.on))
        .collect()
}

/// Documentation for `ci-gate explain squawk/<name>`.
pub fn explain(id: &str) -> Option<String> {
    let name = id.strip_prefix(PREFIX)?;
    if let Some((alias, to)) = ALIASES.iter().find(|(a, _)| *a == name)
        && to.len() > 1
    {
        return Some(format!(
            "# squawk/{alias}\n\nAn alias squawk keeps for {}; in `.ci-gate.yml` it sets both.\n",
            to.iter()
                .map(|t| format!("`squawk/{t}`"))
                .collect::<Vec<_>>()
                .join(" and ")
        ));
    }
    let e = entry(name)?;
    let default = if e.on {
        format!("on, {}", e.severity)
    } else {
        "off".to_string()
    };
    let observed = match e.observed {
        Some(o) => format!(
            "\n\nci-gate also observes this on a real server as `{o}` (`ci-gate explain {o}`): \
             when both fire on the same statement you see one finding with both pieces of \
             evidence, and when the trace shows the statement harmless (for example a table \
             created in the same pull request) the static finding is dismissed."
        ),
        None => String::new(),
    };
    let switch = if e.on {
        format!("rules: {{ {}: off }}", e.id)
    } else {
        format!("rules: {{ {}: warning }}", e.id)
    };
    Some(format!(
        "# {id}\n\n\
         ## What it detects\n{summary}. Static analysis by squawk-linter's `{name}` rule, reported \
         at the exact line and column squawk points at.\n\n\
         ## Why it matters\nSee squawk's documentation: https://squawkhq.com/docs/{name}{observed}\n\n\
         ## How to do it safely\nFollow the fix in the finding (squawk's help), or allow it on \
         purpose with a reason:\n\n\
         ```sql\n-- ci-gate: allow {id} -- why this is safe here\n```\n\n\
         ## Default\n{default}. Change it in `.ci-gate.yml`: `{switch}`.\n\n\
         ## Example\nhttps://squawkhq.com/docs/{name}\n",
        id = e.id,
        summary = capitalize(e.summary),
        name = e.name,
    ))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The configured level of a squawk rule (its own entry, else an alias naming it).
fn configured(config: &Config, name: &str) -> Option<RuleLevel> {
    let mut via_alias = None;
    for (key, level) in &config.rules {
        let Some(n) = key.strip_prefix(PREFIX) else {
            continue;
        };
        if n == name {
            return Some(*level);
        }
        if ALIASES
            .iter()
            .any(|(alias, to)| *alias == n && to.contains(&name))
        {
            via_alias = Some(*level);
        }
    }
    via_alias
}

/// Severity of `e` under `config`; `None` when it is off.
fn severity(config: &Config, e: &Entry) -> Option<Severity> {
    match configured(config, e.name) {
        Some(level) => level.severity(),
        None => e.on.then_some(e.severity),
    }
}

/// What linting needs that does not depend on the file, built once per process: squawk's default
/// rule set, each [`RULES`] entry's squawk rule, and every squawk code ci-gate knows with its
/// entry.
struct Tables {
    default_rules: Vec<SquawkRule>,
    /// Parallel to [`RULES`]: the squawk rule its name parses to.
    parsed: Vec<Option<SquawkRule>>,
    /// Every rule squawk can report under a rule set ci-gate builds, with [`entry_for`] of it.
    known: Vec<(SquawkRule, Option<&'static Entry>)>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let default_rules: Vec<SquawkRule> =
            Linter::with_default_rules().rules.into_iter().collect();
        let parsed: Vec<Option<SquawkRule>> = RULES.iter().map(|e| e.name.parse().ok()).collect();
        let aliases = ALIASES
            .iter()
            .filter_map(|(a, _)| a.parse::<SquawkRule>().ok());
        // `Linter::from` adds what a rule expands to.
        let every = Linter::from(
            default_rules
                .iter()
                .copied()
                .chain(parsed.iter().flatten().copied())
                .chain(aliases),
        )
        .rules;
        let known = every.into_iter().map(|r| (r, entry_for(r))).collect();
        Tables {
            default_rules,
            parsed,
            known,
        }
    })
}

/// What linting needs that depends on the context and the config but not on the file, built once
/// per run and shared by every file (and thread): the squawk rule set to run (squawk's own default
/// set, for [`LintOutput::raw_counts`], plus every rule the config turns on) with squawk's
/// settings, and each rule's entry and severity under the config. It depends on the context and
/// on `config.rules` only (what [`severity`] reads).
struct Prepared {
    /// The rule set and settings; each file gets a fresh `Linter` with copies of them (squawk's
    /// `Linter` collects per-file state and is used once).
    template: Linter,
    /// (code, [`entry_for`] it, [`severity`] of that entry under the config).
    codes: Vec<(SquawkRule, Option<&'static Entry>, Option<Severity>)>,
}

impl Prepared {
    fn new(ctx: &LintContext, config: &Config) -> Self {
        let t = tables();
        let mut rules = t.default_rules.clone();
        for (e, parsed) in RULES.iter().zip(&t.parsed) {
            if severity(config, e).is_some()
                && let Some(r) = *parsed
                && !rules.contains(&r)
            {
                rules.push(r);
            }
        }
        let mut template = Linter::from(rules);
        template.settings.pg_version = ctx.pg_major.to_string().parse().unwrap_or_default();
        template.settings.assume_in_transaction = ctx.assume_in_transaction;
        let codes = t
            .known
            .iter()
            .map(|&(r, e)| (r, e, e.and_then(|e| severity(config, e))))
            .collect();
        Prepared { template, codes }
    }

    /// squawk over one parsed text, with the prepared rules and settings.
    fn run(&self, parse: &squawk_syntax::Parse<SourceFile>, text: &str) -> Vec<Violation> {
        let mut linter = Linter::from(std::iter::empty());
        linter.rules.clone_from(&self.template.rules);
        linter.settings = self.template.settings.clone();
        linter.lint(parse, text)
    }

    /// [`entry_for`] `code`, and the entry's severity under `config` (`None`: off).
    fn resolve(
        &self,
        code: SquawkRule,
        config: &Config,
    ) -> (Option<&'static Entry>, Option<Severity>) {
        match self.codes.iter().find(|(r, ..)| *r == code) {
            Some(&(_, e, sev)) => (e, sev),
            None => {
                let e = entry_for(code);
                (e, e.and_then(|e| severity(config, e)))
            }
        }
    }

    fn lint(&self, m: &Migration, ctx: &LintContext, config: &Config) -> LintOutput {
        let text = m.text.as_str();
        let parse = SourceFile::parse(text);
        let violations = self.run(&parse, text);
        let has_ignores = text.contains(IGNORE);
        // Findings silenced by `squawk-ignore` comments: lint a copy where those comments no
        // longer parse as ignores (same length, so every range stays valid). Only for files that
        // have one.
        let ignored: Vec<Violation> = if has_ignores {
            let neutral = text.replace(IGNORE, "squawk_ignore");
            self.run(&SourceFile::parse(&neutral), &neutral)
                .into_iter()
                .filter(|v| {
                    v.code != SquawkRule::UnusedIgnore
                        && !violations
                            .iter()
                            .any(|o| o.code == v.code && o.text_range == v.text_range)
                })
                .collect()
        } else {
            Vec::new()
        };

        let mut out = LintOutput::default();
        for v in &violations {
            match self.resolve(v.code, config).0 {
                // `e.id` is `squawk/<canonical name>` (tested).
                Some(e) => match out.raw_counts.get_mut(e.id) {
                    Some(n) => *n += 1,
                    None => {
                        out.raw_counts.insert(e.id.to_string(), 1);
                    }
                },
                None => {
                    *out.raw_counts
                        .entry(format!("{PREFIX}{}", canonical(v.code)))
                        .or_default() += 1
                }
            }
        }

        let dismissable = violations.iter().chain(&ignored).any(|v| {
            matches!(
                v.code,
                SquawkRule::RenamingObject
                    | SquawkRule::BanDropType
                    | SquawkRule::BanDropDefault
                    | SquawkRule::BanDropConstraint
            )
        });
        let file = Analysis::new(
            &parse,
            text,
            ctx.assume_in_transaction,
            dismissable,
            has_ignores,
        );
        for e in parse.errors() {
            let (line, column) = file.line_col(usize::from(e.range().start()));
            out.syntax_errors.push(SyntaxError {
                line,
                column,
                message: e.message().to_string(),
            });
        }

        let mut all: Vec<(&Violation, Option<String>)> =
            violations.iter().map(|v| (v, None)).collect();
        for v in &ignored {
            all.push((v, Some(file.ignore_reason(v))));
        }
        all.sort_by_key(|(v, _)| v.text_range.start());

        for (v, ignore_reason) in all {
            let (Some(e), Some(sev)) = self.resolve(v.code, config) else {
                continue;
            };
            let mut f = file.finding(m, e, sev, v, ctx);
            if let Some(reason) = ignore_reason {
                f.allowed = true;
                f.allow_reason = Some(reason);
            }
            match file.dismissal(v, &violations) {
                Some(reason) => out.dismissed.push(Dismissed { finding: f, reason }),
                None => out.findings.push(f),
            }
        }
        out
    }
}

/// Lint one migration with squawk, keeping the rules `config` enables (its `rules:` map over
/// ci-gate's defaults), at their configured severity. To lint many files, [`lint_all`] prepares
/// the rule set once and uses every core.
pub fn lint(m: &Migration, ctx: &LintContext, config: &Config) -> LintOutput {
    /// A [`Prepared`] with what it was built from (all it depends on).
    type Built = (LintContext, BTreeMap<String, RuleLevel>, Rc<Prepared>);
    thread_local! {
        /// The last [`Prepared`] built by `lint` on this thread: the files of one run share it
        /// instead of each building it.
        static LAST: RefCell<Option<Built>> = const { RefCell::new(None) };
    }
    let prepared = LAST.with_borrow_mut(|last| match last {
        Some((c, rules, p)) if c == ctx && *rules == config.rules => Rc::clone(p),
        _ => {
            let p = Rc::new(Prepared::new(ctx, config));
            *last = Some((*ctx, config.rules.clone(), Rc::clone(&p)));
            p
        }
    });
    prepared.lint(m, ctx, config)
}

/// Below this many files [`lint_all`] stays on the calling thread (a thread costs more than
/// linting a few files).
const PARALLEL_MIN_FILES: usize = 8;

/// Stack of [`lint_all`]'s worker threads: squawk's parser recurses, so as much as a main thread
/// gets, not the 2 MiB default of spawned threads.
const WORKER_STACK: usize = 8 << 20;

/// [`lint`] over many migrations on all available cores, with the rule set prepared once. The
/// outputs are in input order, each equal to what [`lint`] returns for that migration.
pub fn lint_all(migrations: &[&Migration], ctx: &LintContext, config: &Config) -> Vec<LintOutput> {
    let prepared = Prepared::new(ctx, config);
    let n = migrations.len();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let threads = cores.min(n / (PARALLEL_MIN_FILES / 2));
    if n < PARALLEL_MIN_FILES || threads < 2 {
        return migrations
            .iter()
            .map(|m| prepared.lint(m, ctx, config))
            .collect();
    }
    // Files are handed out one at a time from a shared index (their cost varies with their
    // length); each thread keeps (index, output) pairs, put back in input order at the end.
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(m) = migrations.get(i) else {
                return done;
            };
            done.push((i, prepared.lint(m, ctx, config)));
        }
    };
    let parts: Vec<Vec<(usize, LintOutput)>> = std::thread::scope(|s| {
        let spawned: Vec<_> = (1..threads)
            .map(|_| {
                std::thread::Builder::new()
                    .name("ci-gate-lint".into())
                    .stack_size(WORKER_STACK)
                    .spawn_scoped(s, work)
            })
            .collect();
        // The calling thread works too; a thread that could not be spawned leaves its share to
        // the others.
        let mut parts = vec![work()];
        for h in spawned.into_iter().flatten() {
            match h.join() {
                Ok(p) => parts.push(p),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        parts
    });
    let mut slots: Vec<Option<LintOutput>> = std::iter::repeat_with(|| None).take(n).collect();
    for (i, out) in parts.into_iter().flatten() {
        slots[i] = Some(out);
    }
    slots
        .into_iter()
        .zip(migrations)
        // Every index below `n` was taken by exactly one thread; lint on this thread anything
        // missing rather than lose a file.
        .map(|(out, m)| out.unwrap_or_else(|| prepared.lint(m, ctx, config)))
        .collect()
}

const IGNORE: &str = "squawk-ignore";

/// squawk's display name, mapped to the name ci-gate uses (`prefer-timestamp-tz` →
/// `prefer-timestamptz`, as in squawk's docs).
fn canonical(code: SquawkRule) -> String {
    entry_for(code).map_or_else(|| code.to_string(), |e| e.name.to_string())
}

/// One statement as words: keywords upper-cased, identifiers unquoted (case kept) or
/// lower-cased when unquoted, `schema.name` reduced to `name`.
#[derive(Debug)]
struct Stmt {
    start: usize,
    end: usize,
    words: Vec<String>,
    /// Inside a transaction (the file's implicit one or an explicit BEGIN).
    in_tx: bool,
    /// Index of the transaction block, to compare statements.
    tx: usize,
}

/// What the file says, computed once from the parse tree.
struct Analysis<'a> {
    text: &'a str,
    stmts: Vec<Stmt>,
    /// (start, end, comment text) of each `squawk-ignore` comment.
    ignores: Vec<(usize, usize, String)>,
    /// Byte offset of each line's start, built on first use by [`Analysis::line_col`].
    line_starts: OnceCell<Vec<usize>>,
}

impl<'a> Analysis<'a> {
    /// `words`: also keep each statement's words (only needed to dismiss findings).
    fn new(
        parse: &squawk_syntax::Parse<SourceFile>,
        text: &'a str,
        assume_in_transaction: bool,
        keep_words: bool,
        has_ignores: bool,
    ) -> Self {
        let mut stmts = Vec::new();
        let mut in_tx = assume_in_transaction;
        let mut tx = 0;
        for stmt in parse.tree().stmts() {
            let node = stmt.syntax();
            let (start, end, words) = if keep_words {
                match stmt_words(node) {
                    Some(x) => x,
                    None => continue,
                }
            } else {
                // Only the bounds and the first word: walk in from both ends.
                let range = node.text_range();
                let trivia = |t: &squawk_syntax::SyntaxToken| {
                    matches!(t.kind(), SyntaxKind::WHITESPACE | SyntaxKind::COMMENT)
                };
                let mut first = node.first_token();
                while let Some(t) = first.as_ref().filter(|t| trivia(t)) {
                    first = t
                        .next_token()
                        .filter(|n| n.text_range().end() <= range.end());
                }
                let Some(first) = first else { continue };
                let mut last = node.last_token();
                while let Some(t) = last.as_ref().filter(|t| trivia(t)) {
                    last = t
                        .prev_token()
                        .filter(|p| p.text_range().start() >= range.start());
                }
                let end = last.map_or(range.end(), |t| t.text_range().end());
                (
                    usize::from(first.text_range().start()),
                    usize::from(end),
                    vec![first.text().to_uppercase()],
                )
            };
            let first = words.first().map(String::as_str).unwrap_or("");
            let is_begin = matches!(first, "BEGIN" | "START");
            let is_end = matches!(first, "COMMIT" | "END" | "ROLLBACK" | "ABORT");
            if is_begin && !in_tx {
                tx += 1;
            }
            if is_begin {
                in_tx = true;
            }
            stmts.push(Stmt {
                start,
                end: text[start..end].trim_end_matches(';').trim_end().len() + start,
                words,
                in_tx,
                tx,
            });
            if is_end {
                // After COMMIT the rest of a one-message file runs in a new implicit transaction.
                in_tx = assume_in_transaction;
                tx += 1;
            }
        }
        let mut ignores = Vec::new();
        if has_ignores {
            for tok in parse
                .syntax_node()
                .descendants_with_tokens()
                .filter_map(|e| e.into_token())
            {
                if tok.kind() == SyntaxKind::COMMENT && tok.text().contains(IGNORE) {
                    let r = tok.text_range();
                    ignores.push((
                        usize::from(r.start()),
                        usize::from(r.end()),
                        tok.text().to_string(),
                    ));
                }
            }
        }
        Analysis {
            text,
            stmts,
            ignores,
            line_starts: OnceCell::new(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset, exactly as
    /// [`crate::discover::line_col`] computes them, without rescanning the text for each one.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let text = self.text;
        let mut offset = offset.min(text.len());
        while offset > 0 && !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        // `starts[0]` is 0, so `line` ≥ 1.
        let line = starts.partition_point(|&s| s <= offset);
        let column = text[starts[line - 1]..offset].chars().count() + 1;
        (line, column)
    }

    fn stmt_index(&self, offset: usize) -> Option<usize> {
        self.stmts
            .iter()
            .position(|s| s.start <= offset && offset < s.end.max(s.start + 1))
    }

    fn finding(
        &self,
        m: &Migration,
        e: &Entry,
        severity: Severity,
        v: &Violation,
        ctx: &LintContext,
    ) -> Finding {
        let start = usize::from(v.text_range.start());
        let end = usize::from(v.text_range.end()).min(self.text.len());
        let (line, column) = self.line_col(start);
        let (end_line, end_column) = self.line_col(end);
        // A finding for a registered rule, re-labelled: keeps this module independent of the
        // `Finding` fields that may be added later.
        let mut f = Finding::new(&INVALID_ALLOW_DIRECTIVE, Source::Static, v.message.clone())
            .migration(&m.name)
            .file(&m.path)
            .at(line, column);
        f.rule = e.id.to_string();
        f.category = Category::Lint;
        f.severity = severity;
        if let Some(i) = self.stmt_index(start) {
            let s = &self.stmts[i];
            f = f.statement(excerpt(&self.text[s.start..s.end], 160));
        }
        let span = self.text.get(start..end).unwrap_or("");
        f = f.evidence(format!(
            "squawk-linter `{}` (static, from the SQL text) at {line}:{column}–{end_line}:{end_column}: `{}`",
            e.name,
            excerpt(span, 100)
        ));
        match (own_fix(e.name, ctx), &v.help) {
            (Some(fix), Some(help)) => f = f.evidence(format!("squawk's help: {help}")).fix(fix),
            (Some(fix), None) => f = f.fix(fix),
            (None, Some(help)) => f = f.fix(help.clone()),
            (None, None) => {}
        }
        f
    }

    /// Why a violation is harmless given the rest of the file, if it is.
    fn dismissal(&self, v: &Violation, all: &[Violation]) -> Option<String> {
        let start = usize::from(v.text_range.start());
        match v.code {
            SquawkRule::ConstraintMissingNotValid => {
                // squawk reports a foreign key, a UNIQUE constraint or a primary key twice: once
                // under its own rule, once here. Keep the precise one.
                let end = usize::from(v.text_range.end());
                all.iter()
                    .find(|o| {
                        matches!(
                            o.code,
                            SquawkRule::AddingForeignKeyConstraint
                                | SquawkRule::DisallowedUniqueConstraint
                                | SquawkRule::AddingSerialPrimaryKeyField
                        ) && usize::from(o.text_range.start()) >= start
                            && usize::from(o.text_range.end()) <= end
                    })
                    .map(|o| {
                        format!(
                            "the same constraint is reported as squawk/{}",
                            canonical(o.code)
                        )
                    })
            }
            SquawkRule::RenamingObject => {
                let i = self.stmt_index(start)?;
                let w = &self.stmts[i].words;
                let (from, to) = type_rename(w)?;
                self.type_swap_rename(i, from, to)
            }
            SquawkRule::BanDropType => {
                let i = self.stmt_index(start)?;
                let name = dropped_type(&self.stmts[i].words)?;
                self.type_swap_drop(i, name)
            }
            SquawkRule::BanDropDefault => {
                let i = self.stmt_index(start)?;
                let s = &self.stmts[i];
                if !s.in_tx {
                    return None;
                }
                let table = altered_table(&s.words)?;
                let cols = column_actions(&s.words, "DROP", "DEFAULT");
                if cols.is_empty() {
                    return None;
                }
                let later: Vec<&Stmt> = self.same_tx_after(i).collect();
                cols.iter()
                    .all(|c| {
                        later.iter().any(|l| {
                            altered_table(&l.words) == Some(table)
                                && column_actions(&l.words, "SET", "DEFAULT").contains(c)
                        })
                    })
                    .then(|| {
                        "the default is set again later in the same transaction, so no client sees the column without one".to_string()
                    })
            }
            SquawkRule::BanDropConstraint => {
                let i = self.stmt_index(start)?;
                let s = &self.stmts[i];
                if !s.in_tx {
                    return None;
                }
                let table = altered_table(&s.words)?;
                let dropped = named_after(&s.words, &["DROP", "CONSTRAINT"]);
                if dropped.is_empty() {
                    return None;
                }
                let readded = |name: &str| {
                    std::iter::once(s).chain(self.same_tx_after(i)).any(|l| {
                        altered_table(&l.words) == Some(table)
                            && named_after(&l.words, &["ADD", "CONSTRAINT"]).contains(&name)
                    })
                };
                dropped.iter().all(|d| readded(d)).then(|| {
                    "the constraint is added again under the same name in the same transaction (Prisma recreates a foreign key this way)".to_string()
                })
            }
            _ => None,
        }
    }

    fn same_tx_after(&self, i: usize) -> impl Iterator<Item = &Stmt> {
        let tx = self.stmts[i].tx;
        self.stmts[i + 1..]
            .iter()
            .take_while(move |s| s.tx == tx && s.in_tx)
    }

    fn same_tx(&self, i: usize) -> impl Iterator<Item = &Stmt> {
        let tx = self.stmts[i].tx;
        self.stmts.iter().filter(move |s| s.tx == tx && s.in_tx)
    }

    /// `ALTER TYPE from RENAME TO to` inside Prisma's enum swap: the type keeps its name in the
    /// end, so no client sees a rename.
    fn type_swap_rename(&self, i: usize, from: &str, to: &str) -> Option<String> {
        if !self.stmts[i].in_tx {
            return None;
        }
        let created = |n: &str| self.same_tx(i).any(|s| created_type(&s.words) == Some(n));
        let dropped = |n: &str| self.same_tx(i).any(|s| dropped_type(&s.words) == Some(n));
        let renamed_to = |n: &str| {
            self.same_tx(i)
                .any(|s| type_rename(&s.words).is_some_and(|(_, t)| t == n))
        };
        // `X_new` (created in this transaction) → `X`; or `X` → `X_old` (dropped later) while
        // something else becomes `X`.
        let ok = created(from) || (dropped(to) && renamed_to(from));
        ok.then(|| {
            format!(
                "part of an enum swap in one transaction (Prisma's `-- AlterEnum`): `{from}` is {}",
                if created(from) {
                    "created in the same transaction".to_string()
                } else {
                    format!("replaced by another type of the same name, and `{to}` dropped")
                }
            )
        })
    }

    /// `DROP TYPE X_old` after `ALTER TYPE X RENAME TO X_old` and a new `X`, in one transaction.
    fn type_swap_drop(&self, i: usize, name: &str) -> Option<String> {
        if !self.stmts[i].in_tx {
            return None;
        }
        let (from, _) = self
            .same_tx(i)
            .filter_map(|s| type_rename(&s.words))
            .find(|(_, to)| *to == name)?;
        let replaced = self
            .same_tx(i)
            .any(|s| type_rename(&s.words).is_some_and(|(_, t)| t == from));
        replaced.then(|| {
            format!("`{name}` is the old copy of `{from}` renamed in the same transaction (Prisma's `-- AlterEnum`); `{from}` still exists")
        })
    }

    /// The `squawk-ignore` comment that silenced `v`: the last one before it naming its rule (or
    /// all rules).
    fn ignore_reason(&self, v: &Violation) -> String {
        let start = usize::from(v.text_range.start());
        let name = v.code.to_string();
        let canonical_name = canonical(v.code);
        let covers = |c: &str| {
            let body = c.trim_start_matches("--").trim_start_matches("/*");
            let body = body.trim_end_matches("*/").trim();
            let Some(rest) = body
                .strip_prefix("squawk-ignore-file")
                .or_else(|| body.strip_prefix(IGNORE))
            else {
                return false;
            };
            let names = rest.split("--").next().unwrap_or("");
            names.trim().is_empty()
                || names
                    .split(',')
                    .any(|n| n.trim() == name || n.trim() == canonical_name)
        };
        let comment = self
            .ignores
            .iter()
            .filter(|(s, _, c)| covers(c) && (*s < start || c.contains("squawk-ignore-file")))
            .max_by_key(|(s, _, c)| (*s < start && !c.contains("squawk-ignore-file"), *s));
        match comment {
            Some((s, _, c)) => {
                let (line, _) = self.line_col(*s);
                let body = c.trim_start_matches("--").trim();
                let reason = body.split_once("--").map(|(_, r)| r.trim().to_string());
                match reason.filter(|r| !r.is_empty()) {
                    Some(r) => format!("squawk-ignore comment on line {line}: {r}"),
                    None => format!("squawk-ignore comment on line {line} (no reason given)"),
                }
            }
            None => "a squawk-ignore comment".to_string(),
        }
    }
}

/// A statement's bounds (first to last non-trivia token) and its words: keywords upper-cased,
/// quoted identifiers unquoted, unquoted ones lower-cased, `schema.name` reduced to `name`, no `;`.
fn stmt_words(node: &squawk_syntax::SyntaxNode) -> Option<(usize, usize, Vec<String>)> {
    let mut start = None;
    let mut end = 0;
    let mut words: Vec<String> = Vec::new();
    let mut join_next = false;
    for tok in crate::sql::split::significant_tokens(node) {
        let kind = tok.kind();
        let range = tok.text_range();
        start.get_or_insert(usize::from(range.start()));
        end = usize::from(range.end());
        let t = tok.text();
        if t == ";" {
            continue;
        }
        if t == "." {
            join_next = true;
            continue;
        }
        let word = if let Some(q) = t.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
            q.replace("\"\"", "\"")
        } else if kind == SyntaxKind::IDENT {
            t.to_lowercase()
        } else {
            t.to_uppercase()
        };
        if join_next && let Some(last) = words.last_mut() {
            *last = word;
        } else {
            words.push(word);
        }
        join_next = false;
    }
    Some((start?, end, words))
}

/// ci-gate's own fix where squawk's help would fail the way the tool runs the file, or where
/// squawk gives none.
fn own_fix(name: &str, ctx: &LintContext) -> Option<String> {
    match name {
        "unused-ignore" => Some(
            "correct the rule name in the squawk-ignore comment (squawk's names: https://squawkhq.com/docs/rules-overview), or remove it".into(),
        ),
        "require-concurrent-index-creation" | "require-concurrent-index-deletion"
            if ctx.assume_in_transaction =>
        {
            Some("use CONCURRENTLY, with the statement alone in its own migration file: the tool runs a multi-statement file in one transaction, where CONCURRENTLY fails".into())
        }
        "ban-concurrent-index-creation-in-transaction" => Some(
            "move the CONCURRENTLY statement into a migration file of its own, with nothing else in it".into(),
        ),
        _ => None,
    }
}

fn word_is(w: &[String], i: usize, s: &str) -> bool {
    w.get(i).is_some_and(|x| x == s)
}

/// `ALTER TYPE a RENAME TO b` → (a, b).
fn type_rename(w: &[String]) -> Option<(&str, &str)> {
    (word_is(w, 0, "ALTER")
        && word_is(w, 1, "TYPE")
        && word_is(w, 3, "RENAME")
        && word_is(w, 4, "TO")
        && w.len() == 6)
        .then(|| (w[2].as_str(), w[5].as_str()))
}

/// `DROP TYPE [IF EXISTS] a` → a (a single type).
fn dropped_type(w: &[String]) -> Option<&str> {
    if !(word_is(w, 0, "DROP") && word_is(w, 1, "TYPE")) {
        return None;
    }
    let i = if word_is(w, 2, "IF") { 4 } else { 2 };
    let name = w.get(i)?;
    // A list (`DROP TYPE a, b`) is not Prisma's pattern.
    (!w[i + 1..].iter().any(|x| x == ",")).then_some(name.as_str())
}

/// `CREATE TYPE a …` → a.
fn created_type(w: &[String]) -> Option<&str> {
    (word_is(w, 0, "CREATE") && word_is(w, 1, "TYPE")).then(|| w.get(2).map(String::as_str))?
}

/// `ALTER TABLE [IF EXISTS] [ONLY] t …` → t.
fn altered_table(w: &[String]) -> Option<&str> {
    if !(word_is(w, 0, "ALTER") && word_is(w, 1, "TABLE")) {
        return None;
    }
    let mut i = 2;
    if word_is(w, i, "IF") {
        i += 2;
    }
    if word_is(w, i, "ONLY") {
        i += 1;
    }
    w.get(i).map(String::as_str)
}

/// Columns in `ALTER [COLUMN] c <verb> <what>` actions.
fn column_actions<'w>(w: &'w [String], verb: &str, what: &str) -> Vec<&'w str> {
    let mut out = Vec::new();
    for i in 0..w.len() {
        if w[i] == verb && word_is(w, i + 1, what) && i >= 2 {
            let c = &w[i - 1];
            let before = &w[i - 2];
            if before == "COLUMN" || before == "ALTER" {
                out.push(c.as_str());
            }
        }
    }
    out
}

/// Names following `keywords` (skipping `IF EXISTS`), e.g. `DROP CONSTRAINT x`.
fn named_after<'w>(w: &'w [String], keywords: &[&str]) -> Vec<&'w str> {
    let mut out = Vec::new();
    for i in 0..w.len() {
        if keywords
            .iter()
            .enumerate()
            .all(|(k, kw)| word_is(w, i + k, kw))
        {
            let mut j = i + keywords.len();
            if word_is(w, j, "IF") {
                j += 2;
            }
            if let Some(n) = w.get(j) {
                out.push(n.as_str());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_rule_name_is_squawks() {
        // `unused-ignore` is reported by squawk's ignore parser, never configured by name.
        for e in RULES.iter().filter(|e| e.name != "unused-ignore") {
            let parsed: SquawkRule = e
                .name
                .parse()
                .unwrap_or_else(|_| panic!("squawk does not know {}", e.name));
            assert_eq!(e.id, format!("{PREFIX}{}", e.name));
            assert_eq!(entry_for(parsed).map(|x| x.name), Some(e.name));
        }
        let mut seen = HashSet::new();
        for e in RULES {
            assert!(seen.insert(e.name), "duplicate {}", e.name);
        }
    }

    #[test]
    fn every_squawk_default_rule_has_an_entry() {
        for r in Linter::with_default_rules().rules {
            assert!(entry_for(r).is_some(), "no entry for squawk rule {r}");
        }
    }

    #[test]
    fn entry_ids_are_prefixed_names() {
        // `lint` counts raw violations under `e.id` instead of formatting `squawk/<name>`.
        for e in RULES {
            assert_eq!(e.id, format!("{PREFIX}{}", e.name));
        }
    }

    /// Every `.sql` under `tests/fixtures` (sorted), as migrations.
    fn fixture_migrations() -> Vec<Migration> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            entries.sort();
            for p in entries {
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "sql") {
                    out.push(p);
                }
            }
        }
        let mut paths = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
            &mut paths,
        );
        paths
            .iter()
            .map(|p| {
                let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                let text = String::from_utf8_lossy(&bytes).into_owned();
                migration(&p.display().to_string(), &text)
            })
            .collect()
    }

    fn migration(path: &str, text: &str) -> Migration {
        Migration {
            name: path.to_string(),
            path: path.to_string(),
            bytes: text.as_bytes().to_vec(),
            text: text.to_string(),
            checksum: String::new(),
        }
    }

    #[test]
    fn lint_all_equals_lint_one_by_one_in_order() {
        let mut files = fixture_migrations();
        // Files with `squawk-ignore` comments, syntax errors, multi-byte text, an enum swap.
        let extra = [
            "-- squawk-ignore ban-drop-column -- legacy\nALTER TABLE \"a\" DROP COLUMN \"b\";\nDROP TABLE x;\n",
            "-- squawk-ignore nope\nDROP TABLE x;\n-- squawk-ignore\nALTER TABLE t RENAME TO u;\n",
            "SELEC 1;\nALTER TABLE \"é\" ADD COLUMN \"ü\" int NOT NULL;\n",
            "\u{feff}ALTER TABLE \"t\" DROP COLUMN \"c\";\r\nDROP INDEX \"ix\";\r\n",
            "BEGIN;\nALTER TYPE \"E\" RENAME TO \"E_old\";\nCREATE TYPE \"E\" AS ENUM ('a');\nDROP TYPE \"E_old\";\nCOMMIT;\n",
            "",
        ];
        for (i, text) in extra.iter().enumerate() {
            files.push(migration(&format!("extra{i}.sql"), text));
        }
        assert!(files.len() >= 40, "only {} fixture files", files.len());
        let on: String = squawk_rules()
            .iter()
            .map(|(id, ..)| format!("  {id}: warning\n"))
            .collect();
        let configs = [
            Config::default(),
            Config::parse(
                &format!("rules:\n{on}  squawk/ban-drop-column: off\n"),
                std::path::Path::new(".ci-gate.yml"),
            )
            .unwrap_or_else(|e| panic!("{e}")),
        ];
        let ctxs = [
            LintContext::default(),
            LintContext {
                pg_major: 15,
                assume_in_transaction: false,
            },
        ];
        let refs: Vec<&Migration> = files.iter().collect();
        for config in &configs {
            for ctx in &ctxs {
                let one_by_one: Vec<LintOutput> =
                    refs.iter().map(|m| lint(m, ctx, config)).collect();
                assert!(one_by_one.iter().any(|o| !o.findings.is_empty()));
                assert_eq!(lint_all(&refs, ctx, config), one_by_one);
                // Below the threshold (one thread) and nothing at all.
                assert_eq!(lint_all(&refs[..3], ctx, config), one_by_one[..3]);
                assert!(lint_all(&[], ctx, config).is_empty());
            }
        }
    }

    #[test]
    fn lint_follows_each_calls_context_and_config() {
        // `lint` reuses the rule set it prepared for the previous call only when nothing changed.
        let m = migration("m.sql", "ALTER TABLE \"t\" DROP COLUMN \"c\";\n");
        let off = Config::parse(
            "rules:\n  squawk/ban-drop-column: off\n",
            std::path::Path::new(".ci-gate.yml"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let notice = Config::parse(
            "rules:\n  squawk/ban-drop-column: notice\n",
            std::path::Path::new(".ci-gate.yml"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let ctx = LintContext::default();
        let severities = |config: &Config| -> Vec<Severity> {
            lint(&m, &ctx, config)
                .findings
                .iter()
                .map(|f| f.severity)
                .collect()
        };
        for _ in 0..2 {
            assert_eq!(severities(&Config::default()), [Severity::Error]);
            assert_eq!(severities(&off), []);
            assert_eq!(severities(&notice), [Severity::Notice]);
        }
        // squawk's `transaction-nesting` is off in ci-gate; `ban-concurrent-index-creation-in-
        // transaction` depends on the context.
        let concurrent = migration(
            "c.sql",
            "SELECT 1;\nCREATE INDEX CONCURRENTLY i ON t (c);\n",
        );
        let rules = |ctx: &LintContext| -> Vec<String> {
            lint(&concurrent, ctx, &Config::default())
                .findings
                .into_iter()
                .map(|f| f.rule)
                .collect()
        };
        let autocommit = LintContext {
            pg_major: 16,
            assume_in_transaction: false,
        };
        let in_tx = rules(&ctx);
        assert!(in_tx.contains(&"squawk/ban-concurrent-index-creation-in-transaction".into()));
        assert_ne!(rules(&autocommit), in_tx);
        assert_eq!(rules(&ctx), in_tx);
    }

    #[test]
    fn line_col_matches_discover() {
        let text = "\u{feff}ab\r\né\n\n-- ü\nxyz";
        let parse = SourceFile::parse(text);
        let file = Analysis::new(&parse, text, true, false, false);
        for offset in 0..=text.len() + 2 {
            assert_eq!(
                file.line_col(offset),
                crate::discover::line_col(text, offset),
                "offset {offset}"
            );
        }
    }

    #[test]
    fn lint_inputs_are_shared_across_threads() {
        fn sync<T: Sync>() {}
        sync::<LintContext>();
        sync::<Config>();
        sync::<Migration>();
        sync::<Prepared>();
    }

    #[test]
    fn prisma_files_are_one_transaction_up_to_7_3() {
        use crate::discover::prisma_version::parse;
        assert!(LintContext::for_prisma(16, None).assume_in_transaction);
        let v63 = parse("6.19.0", "package.json");
        let v74 = parse("^7.4.1", "package.json");
        assert!(LintContext::for_prisma(16, v63.as_ref()).assume_in_transaction);
        assert!(!LintContext::for_prisma(16, v74.as_ref()).assume_in_transaction);
    }

    #[test]
    fn aliases_and_ids() {
        assert!(is_squawk_rule("squawk/prefer-timestamp-tz"));
        assert!(is_squawk_rule("squawk/prefer-timestamptz"));
        assert!(is_squawk_rule("squawk/require-timeout-settings"));
        assert!(!is_squawk_rule("prefer-robust-stmts"));
        assert!(!is_squawk_rule("squawk/drops-column"));
        assert!(default_enabled("squawk/ban-drop-column"));
        assert!(!default_enabled("prefer-robust-stmts"));
        assert_eq!(
            observed_equivalent("squawk/ban-drop-column"),
            Some("drops-column")
        );
        let doc = explain("squawk/prefer-robust-stmts").unwrap_or_default();
        assert!(doc.contains("https://squawkhq.com/docs/prefer-robust-stmts"));
        assert!(explain("squawk/require-timeout-settings").is_some());
        assert!(explain("squawk/nope").is_none());
    }
}
