//! `history-drift`: the incremental schema differs from the from-scratch schema. Documentation:
//! `history_drift.md` beside this file.

use super::Rule;
use crate::check::Evidence;
use crate::check::{Category, Finding, Severity, Source};
use crate::inspect::{Change, ChangeKind};

pub const RULE: Rule = Rule {
    id: "history-drift",
    category: Category::Drift,
    default_severity: Severity::Error,
    summary: "the schema production will have (base + new migrations) differs from a fresh database's",
    doc: include_str!("history_drift.md"),
    check,
};

/// One finding per differing object. `left` = from scratch, `right` = incremental.
pub fn check(ev: &Evidence) -> Vec<Finding> {
    let changes: &[Change] = ev.drift;
    changes
        .iter()
        .map(|c| {
            let what = match c.kind {
                ChangeKind::Added => "exists only in the incremental database (base + new migrations)",
                ChangeKind::Removed => "exists only in the from-scratch database",
                ChangeKind::Changed => "differs between the from-scratch and incremental databases",
            };
            let object = serde_json::to_value(c.object).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            let f = Finding::new(&RULE, Source::Drift, format!("{object} {} {what}", c.name));
            // A comment or only a table's column order: nothing an application using named
            // columns can see. Shown, not gating.
            let f = if c.is_minor() { f.severity(Severity::Notice) } else { f };
            f
                .evidence(format!("from scratch: {}", c.left.as_deref().unwrap_or("(absent)")))
                .evidence(format!("incremental:  {}", c.right.as_deref().unwrap_or("(absent)")))
                .fix("make the migrations produce the same schema in both orders: revert edits to applied migrations and give new migrations later timestamps")
        })
        .collect()
}
