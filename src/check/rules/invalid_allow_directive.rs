//! `invalid-allow-directive`: a `-- ci-gate: allow` comment without a reason, naming an unknown
//! rule, or matching no finding. Documentation: `invalid_allow_directive.md` beside this file.
//! The directives themselves are parsed and applied in [`crate::check::allow`].

use super::Rule;
use crate::check::{Category, Evidence, Finding, Severity};

pub const RULE: Rule = Rule {
    id: "invalid-allow-directive",
    category: Category::Lint,
    default_severity: Severity::Error,
    summary: "a `-- ci-gate: allow` comment without a reason, naming an unknown rule, or matching no finding",
    doc: include_str!("invalid_allow_directive.md"),
    check,
};

/// Directives are judged against the other rules' findings, after they ran: see
/// [`crate::check::allow::apply`]. Nothing to find in the evidence itself.
pub fn check(_: &Evidence) -> Vec<Finding> {
    Vec::new()
}
