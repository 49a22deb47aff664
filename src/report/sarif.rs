//! SARIF 2.1.0 (`--sarif PATH|-`), for GitHub code scanning (`github/codeql-action/upload-sarif`)
//! and other SARIF consumers.
//!
//! One run; one rule entry per rule id used, with the rule's documentation as help; one result per
//! finding with a repo-relative location (`uriBaseId` `%SRCROOT%`), a fingerprint that survives
//! line moves, and an in-source suppression for allowed findings.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Report;
use crate::check::{Finding, Severity, find_rule};

pub const SARIF_VERSION: &str = "2.1.0";
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The key of ci-gate's entry in `partialFingerprints`.
pub const FINGERPRINT_KEY: &str = "ciGateFinding/v1";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Notice => "note",
    }
}

/// The SARIF log as pretty JSON.
pub fn render(report: &Report) -> String {
    serde_json::to_string_pretty(&to_value(report)).unwrap_or_else(|_| "{}".to_string())
}

/// The SARIF log as a JSON value.
pub fn to_value(report: &Report) -> Value {
    // Rule ids in first-use order, each with its index in `rules`.
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rules = Vec::new();
    for f in &report.findings {
        if !index.contains_key(f.rule.as_str()) {
            index.insert(&f.rule, rules.len());
            rules.push(rule_descriptor(&f.rule));
        }
    }
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| result(report, f, index[f.rule.as_str()]))
        .collect();

    let mut driver = json!({
        "name": "ci-gate",
        "semanticVersion": env!("CARGO_PKG_VERSION"),
        "version": env!("CARGO_PKG_VERSION"),
        "rules": rules,
    });
    // The package's repository (or homepage) once Cargo.toml names one.
    if let Some(uri) = [env!("CARGO_PKG_REPOSITORY"), env!("CARGO_PKG_HOMEPAGE")]
        .into_iter()
        .find(|u| !u.is_empty())
    {
        driver["informationUri"] = json!(uri);
    }
    json!({
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": { "driver": driver },
            // Columns in findings are 1-based characters (code points), not UTF-16 units.
            "columnKind": "unicodeCodePoints",
            "results": results,
            "properties": {
                "verdict": report.verdict,
                "migrationsDir": report.migrations_dir,
            },
        }],
    })
}

/// `KebabCase` → `PascalCase` for the rule's `name` (`squawk/ban-drop-column` → `SquawkBanDropColumn`).
fn pascal(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut cs = p.chars();
            match cs.next() {
                Some(c) => c.to_ascii_uppercase().to_string() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn rule_descriptor(id: &str) -> Value {
    match find_rule(id) {
        Some(rule) => json!({
            "id": rule.id,
            "name": pascal(rule.id),
            "shortDescription": { "text": rule.summary },
            "fullDescription": { "text": first_paragraph(rule.doc) },
            "help": { "text": rule.doc, "markdown": rule.doc },
            "defaultConfiguration": { "level": level(rule.default_severity) },
            "properties": { "tags": ["migrations", "postgresql", rule.category.to_string()] },
        }),
        None => json!({
            "id": id,
            "name": pascal(id),
            "shortDescription": { "text": id },
            "properties": { "tags": ["migrations", "postgresql"] },
        }),
    }
}

/// The text under `## What it detects` (or the first paragraph that is not a heading).
fn first_paragraph(doc: &str) -> String {
    let body = doc
        .split_once("## What it detects")
        .map(|(_, rest)| rest)
        .unwrap_or(doc);
    let para: Vec<&str> = body
        .lines()
        .skip_while(|l| l.trim().is_empty() || l.starts_with('#'))
        .take_while(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::trim)
        .collect();
    para.join(" ")
}

fn result(report: &Report, f: &Finding, rule_index: usize) -> Value {
    let mut text = f.message.clone();
    if let Some(fix) = &f.fix {
        text.push_str("\nFix: ");
        text.push_str(fix);
    }
    let mut r = json!({
        "ruleId": f.rule,
        "ruleIndex": rule_index,
        "level": level(f.severity),
        "message": { "text": text },
        "partialFingerprints": { FINGERPRINT_KEY: fingerprint(f) },
    });
    // Code scanning needs a location on every result: the finding's file, else its migration's
    // file, else the migrations directory.
    let uri = f.file.clone().or_else(|| {
        f.migration.as_ref().and_then(|m| {
            report
                .migrations
                .iter()
                .find(|row| &row.name == m)
                .map(|row| row.path.clone())
        })
    });
    let uri = uri.unwrap_or_else(|| report.migrations_dir.clone());
    let mut physical = json!({
        "artifactLocation": { "uri": uri_encode(&uri), "uriBaseId": "%SRCROOT%" },
    });
    if let Some(line) = f.line.filter(|l| *l > 0) {
        let mut region = json!({ "startLine": line });
        if let Some(col) = f.column.filter(|c| *c > 0) {
            region["startColumn"] = json!(col);
        }
        if let Some(stmt) = &f.statement {
            region["snippet"] = json!({ "text": stmt });
        }
        physical["region"] = region;
    }
    let mut location = json!({ "physicalLocation": physical });
    if let Some(m) = &f.migration {
        location["logicalLocations"] = json!([{ "name": m, "kind": "module" }]);
    }
    r["locations"] = json!([location]);
    let mut props = json!({ "category": f.category, "source": f.source });
    if !f.evidence.is_empty() {
        props["evidence"] = json!(f.evidence);
    }
    r["properties"] = props;
    if f.allowed {
        r["suppressions"] = json!([{
            "kind": "inSource",
            "status": "accepted",
            "justification": f.allow_reason.as_deref().unwrap_or(""),
        }]);
    }
    r
}

/// Stable across runs and line moves: rule, file, migration and the message with every number
/// replaced (line numbers, positions, durations), lower-cased, whitespace collapsed.
pub fn fingerprint(f: &Finding) -> String {
    let mut h = Sha256::new();
    for part in [
        f.rule.as_str(),
        f.file.as_deref().unwrap_or(""),
        f.migration.as_deref().unwrap_or(""),
        &normalize_message(&f.message),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

fn normalize_message(m: &str) -> String {
    let mut out = String::with_capacity(m.len());
    let mut in_digits = false;
    for ch in m.chars() {
        if ch.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
            continue;
        }
        in_digits = false;
        out.extend(ch.to_lowercase());
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Percent-encode what may not appear in a URI reference; `/` stays.
fn uri_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.replace('\\', "/").bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uris() {
        assert_eq!(pascal("migration-fails"), "MigrationFails");
        assert_eq!(pascal("squawk/ban-drop-column"), "SquawkBanDropColumn");
        assert_eq!(uri_encode("a b/ü.sql"), "a%20b/%C3%BC.sql");
    }

    #[test]
    fn numbers_do_not_change_the_fingerprint_text() {
        assert_eq!(
            normalize_message("line 7:  Column 12 failed"),
            normalize_message("line 70: column 3 failed")
        );
    }
}
