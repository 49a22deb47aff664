//! The static layer: squawk-linter over a migration's text, reported as `squawk/<rule>` findings.
//!
//! Static lint that squawk already does is wrapped, not rewritten. What ci-gate adds:
//! - **Prisma-aware defaults.** Raw squawk on a real Prisma history is mostly noise (one public
//!   820-migration history: 6,357 warnings). Rules that fire on nearly every file Prisma generates,
//!   or that judge type choices made in `schema.prisma` rather than migration safety, are off by
//!   default ([`default_enabled`]; `catalogue::RULES` says why for each). `.ci-gate.yml` turns any of
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
//!
//! The parts: [`catalogue`] (every squawk rule ci-gate knows, its default, its aliases, its
//! documentation), [`engine`] (running squawk-linter over files), [`dismissal`] (what a file
//! shows about its own hits: dismissals and `squawk-ignore` reasons). The rule levels come in as
//! a plain [`RuleLevels`] map, so this module does not depend on how they are configured.

pub mod catalogue;
pub mod dismissal;
pub mod engine;

use std::collections::BTreeMap;

use crate::check::Severity;

pub use catalogue::{
    PREFIX, SQUAWK_VERSION, default_enabled, expand, explain, is_squawk_rule, observed_equivalent,
    squawk_rules,
};
pub use engine::{Dismissed, LintContext, LintOutput, SyntaxError, lint, lint_all};

/// The configured level of rules, by id as written (`squawk/<name>`, an alias, or ids of other
/// rules, which the squawk engine ignores): `Some(severity)`, or `None` for off. Rules absent keep
/// ci-gate's default.
pub type RuleLevels = BTreeMap<String, Option<Severity>>;
