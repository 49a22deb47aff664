//! Turns what the pipeline saw into [`Finding`]s, and holds the rule registry.
//!
//! One rule per file under `rules/`, each with its documentation in a Markdown file beside it;
//! `ci-gate rules` and `ci-gate explain RULE` print from that registry. Severity is per rule,
//! overridable in `.ci-gate.yml`.

pub mod allow;
pub mod assess;
pub mod edits;
pub mod evidence;
pub mod finding;
pub mod rules;
pub mod squawk;

pub use evidence::{Evidence, LiveEvidence};
pub use finding::{Category, Finding, RuleLevel, Severity, Source};
pub use rules::{ALL_RULES, Rule, find_rule, run_all};
