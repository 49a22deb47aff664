//! The catalogue of squawk-linter's rules as ci-gate reports them: every rule's `squawk/<name>`
//! id, whether it is on by default and at which severity (and why some are off), the ci-gate
//! rule observing the same problem on a server, the aliases squawk accepts, and the resolver
//! from a configured id or a squawk code to its entry. It also writes the documentation for
//! `ci-gate explain squawk/<name>`. No linting happens here: that is [`super::engine`].

use squawk_linter::Rule as SquawkRule;

use super::RuleLevels;
use crate::check::Severity;

/// Prefix of every squawk rule id in ci-gate.
pub const PREFIX: &str = "squawk/";

/// How a squawk rule is treated by default.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    /// squawk's name (what its docs use).
    pub(super) name: &'static str,
    /// `squawk/<name>`.
    pub(super) id: &'static str,
    /// On by default in ci-gate.
    pub(super) on: bool,
    pub(super) severity: Severity,
    /// The ci-gate rule that observes the same problem on a server.
    pub(super) observed: Option<&'static str>,
    pub(super) summary: &'static str,
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

/// The squawk-linter release ci-gate links (a test keeps it equal to Cargo.lock's): the static
/// layer's statistics name it.
pub const SQUAWK_VERSION: &str = "2.68.0";

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
pub(super) static RULES: &[Entry] = &[
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
pub(super) const ALIASES: &[(&str, &[&str])] = &[
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

pub(super) fn entry_for(code: SquawkRule) -> Option<&'static Entry> {
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

/// The configured level of a squawk rule (its own entry, else an alias naming it): `Some(None)`
/// when it is configured off.
fn configured(levels: &RuleLevels, name: &str) -> Option<Option<Severity>> {
    let mut via_alias = None;
    for (key, level) in levels {
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

/// Severity of `e` under the configured `levels`; `None` when it is off.
pub(super) fn severity(levels: &RuleLevels, e: &Entry) -> Option<Severity> {
    match configured(levels, e.name) {
        Some(level) => level,
        None => e.on.then_some(e.severity),
    }
}

/// squawk's display name, mapped to the name ci-gate uses (`prefer-timestamp-tz` →
/// `prefer-timestamptz`, as in squawk's docs).
pub(super) fn canonical(code: SquawkRule) -> String {
    entry_for(code).map_or_else(|| code.to_string(), |e| e.name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use squawk_linter::Linter;
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

#[cfg(test)]
mod version_tests {
    #[test]
    fn squawk_version_is_the_one_cargo_lock_links() {
        let lock = include_str!("../../../Cargo.lock");
        let linked = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"squawk-linter\""))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
            .map(|v| v.trim_matches('"'));
        assert_eq!(linked, Some(super::SQUAWK_VERSION));
    }
}
