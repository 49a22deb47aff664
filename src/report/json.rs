//! The JSON report (`--json PATH|-`): the [`Report`] as is, `schema_version` 1.

use super::Report;

pub fn render(report: &Report) -> String {
    // Serialising plain data cannot fail; fall back to a minimal object just in case.
    serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"schema_version\":1,\"error\":\"{e}\"}}"))
}
