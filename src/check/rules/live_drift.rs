//! `live-drift`: the live schema differs from what its applied history gives. Documentation:
//! `live_drift.md` beside this file.

use super::Rule;
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity, Source};
use crate::inspect::{Change, ChangeKind};

pub const RULE: Rule = Rule {
    id: "live-drift",
    category: Category::Drift,
    default_severity: Severity::Error,
    summary: "the live database's schema differs from what its own applied migration history produces",
    doc: include_str!("live_drift.md"),
    check,
};

/// `left` = built from the applied history, `right` = live.
pub fn check(ev: &Evidence) -> Vec<Finding> {
    let changes: &[Change] = ev.live.map(|l| l.drift.as_slice()).unwrap_or_default();
    changes
        .iter()
        .map(|c| {
            let what = match c.kind {
                ChangeKind::Added => "exists in production but not in the migrations production recorded as applied",
                ChangeKind::Removed => "is missing in production although its migrations are recorded as applied",
                ChangeKind::Changed => "differs in production from what its applied migrations create",
            };
            let object = serde_json::to_value(c.object).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            Finding::new(&RULE, Source::Drift, format!("{object} {} {what}", c.name))
                .evidence(format!("from history: {}", c.left.as_deref().unwrap_or("(absent)")))
                .evidence(format!("live:         {}", c.right.as_deref().unwrap_or("(absent)")))
                .fix("capture the manual change in a migration (and `prisma migrate resolve --applied` it on production), or revert it on production")
        })
        .collect()
}
