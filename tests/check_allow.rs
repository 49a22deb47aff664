//! Allow directives (`src/check/allow.rs`): `-- ci-gate: allow RULE -- REASON` and `allow-file`,
//! one test per case. Findings come from the static layer (squawk) and, for ci-gate's own rules,
//! are built by hand at the line the trace would give. No database.

use std::path::Path;

use ci_gate::check::allow::{self, Scope};
use ci_gate::check::squawk::{self, LintContext, RuleLevels};
use ci_gate::check::{Finding, Source, find_rule};
use ci_gate::config::Config;
use ci_gate::discover::Migration;
use ci_gate::discover::prisma::checksum;

fn fixture(name: &str) -> Migration {
    let path = format!("tests/fixtures/allow/{name}/migration.sql");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    migration(name, &path, &text)
}

fn migration(name: &str, path: &str, text: &str) -> Migration {
    Migration {
        name: name.to_string(),
        path: path.to_string(),
        bytes: text.as_bytes().to_vec(),
        text: text.to_string(),
        checksum: checksum(text.as_bytes()),
    }
}

/// Static findings of `m` with the default rules.
fn lint(m: &Migration) -> Vec<Finding> {
    squawk::lint(m, &LintContext::default(), &RuleLevels::new()).findings
}

/// An observed finding of ci-gate rule `rule` at `line` of `m` (as the trace reports it).
fn observed(rule: &str, m: &Migration, line: usize) -> Finding {
    let r = find_rule(rule).unwrap_or_else(|| panic!("{rule} is not registered"));
    Finding::new(r, Source::Observed, format!("{rule} observed"))
        .migration(&m.name)
        .file(&m.path)
        .at(line, 1)
}

fn show(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            format!(
                "{} {}{}: {}",
                f.location().unwrap_or_default(),
                f.rule,
                match (&f.allowed, &f.allow_reason) {
                    (true, Some(r)) => format!(" (allowed: {r})"),
                    (true, None) => " (allowed)".into(),
                    _ => String::new(),
                },
                f.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `(rule, line, allowed, reason)` per finding.
fn summary(findings: &[Finding]) -> Vec<(String, usize, bool, Option<String>)> {
    findings
        .iter()
        .map(|f| {
            (
                f.rule.clone(),
                f.line.unwrap_or(0),
                f.allowed,
                f.allow_reason.clone(),
            )
        })
        .collect()
}

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn next_statement() {
    let m = fixture("next-statement");
    let mut findings = lint(&m);
    findings.push(observed("drops-column", &m, 3));
    findings.push(observed("drops-column", &m, 6));
    let problems = allow::apply(&mut findings, &[&m]);
    assert!(problems.is_empty(), "{}", show(&problems));
    assert_eq!(
        summary(&findings),
        vec![
            (
                s("squawk/ban-drop-column"),
                3,
                true,
                Some(s("column unused since v2.3, see #812"))
            ),
            (s("squawk/ban-drop-column"), 6, false, None),
            (
                s("drops-column"),
                3,
                true,
                Some(s("column unused since v2.3, see #812"))
            ),
            (s("drops-column"), 6, false, None),
        ],
        "{}",
        show(&findings)
    );
    let d = &allow::parse(&m)[0];
    assert_eq!((d.line, d.column), (2, 1));
    assert_eq!(d.rules, vec!["drops-column"]);
    let Scope::NextStatement { start, end } = d.scope else {
        panic!("{:?}", d.scope)
    };
    assert_eq!(
        &m.text[start..end],
        "ALTER TABLE \"User\" DROP COLUMN \"legacyName\""
    );
}

#[test]
fn next_statement_spans_a_multi_line_statement_and_skips_blank_lines() {
    let m = fixture("multi-line");
    let mut findings = lint(&m);
    let problems = allow::apply(&mut findings, &[&m]);
    assert!(problems.is_empty(), "{}", show(&problems));
    assert_eq!(
        summary(&findings),
        vec![
            (
                s("squawk/ban-drop-column"),
                8,
                true,
                Some(s("both replaced by \"fullName\" in #900"))
            ),
            (
                s("squawk/ban-drop-column"),
                9,
                true,
                Some(s("both replaced by \"fullName\" in #900"))
            ),
        ],
        "{}",
        show(&findings)
    );
}

#[test]
fn allow_file() {
    let m = fixture("allow-file");
    let mut findings = lint(&m);
    let problems = allow::apply(&mut findings, &[&m]);
    assert!(problems.is_empty(), "{}", show(&problems));
    let reason = Some(s("legacy tables, emptied and archived in #640"));
    assert_eq!(
        summary(&findings),
        vec![
            (s("squawk/ban-drop-table"), 5, true, reason.clone()),
            (s("squawk/ban-drop-table"), 8, true, reason),
            // Not named by the directive.
            (s("squawk/ban-drop-column"), 11, false, None),
        ],
        "{}",
        show(&findings)
    );
    assert_eq!(allow::parse(&m)[0].scope, Scope::File);
}

#[test]
fn allow_file_also_covers_findings_without_a_line() {
    let m = fixture("allow-file");
    let mut findings = vec![
        Finding::new(
            find_rule("drops-table").unwrap_or_else(|| panic!("drops-table")),
            Source::Observed,
            "traced per file",
        )
        .migration(&m.name)
        .file(&m.path),
    ];
    let problems = allow::apply(&mut findings, &[&m]);
    // A finding traced per file has no line: only `allow-file` can cover it.
    assert!(findings[0].allowed);
    assert_eq!(
        findings[0].allow_reason.as_deref(),
        Some("legacy tables, emptied and archived in #640")
    );
    assert!(problems.is_empty(), "{}", show(&problems));
}

#[test]
fn trailing_on_the_statements_own_line() {
    let m = fixture("trailing");
    let mut findings = lint(&m);
    let problems = allow::apply(&mut findings, &[&m]);
    assert!(problems.is_empty(), "{}", show(&problems));
    assert_eq!(
        summary(&findings),
        vec![
            (
                s("squawk/ban-drop-column"),
                2,
                true,
                Some(s("never read, see #815"))
            ),
            // The next statement is not covered by the trailing directive above it.
            (s("squawk/ban-drop-column"), 3, false, None),
            (
                s("squawk/ban-drop-column"),
                6,
                true,
                Some(s("last line of a multi-line statement"))
            ),
        ],
        "{}",
        show(&findings)
    );
}

#[test]
fn several_rules_in_one_directive() {
    let m = fixture("several-rules");
    let mut findings = lint(&m);
    let problems = allow::apply(&mut findings, &[&m]);
    assert!(problems.is_empty(), "{}", show(&problems));
    let reason = Some(s("Task is empty in every environment, see #77"));
    assert_eq!(
        summary(&findings),
        vec![
            (
                s("squawk/require-concurrent-index-deletion"),
                3,
                true,
                reason.clone()
            ),
            (s("squawk/changing-column-type"), 6, true, reason.clone()),
            (s("squawk/adding-not-nullable-field"), 6, true, reason),
        ],
        "{}",
        show(&findings)
    );
    let ds = allow::parse(&m);
    assert_eq!(
        ds[1].rules,
        vec![
            "squawk/changing-column-type",
            "squawk/adding-not-nullable-field"
        ]
    );
}

#[test]
fn missing_reason_allows_nothing_and_is_a_finding() {
    let m = fixture("missing-reason");
    let mut findings = lint(&m);
    let problems = allow::apply(&mut findings, &[&m]);
    assert_eq!(
        summary(&findings),
        vec![
            (s("squawk/ban-drop-column"), 3, false, None),
            (s("squawk/ban-drop-column"), 6, false, None),
        ],
        "{}",
        show(&findings)
    );
    insta::assert_snapshot!("missing_reason", show(&problems));
    assert!(problems.iter().all(|p| p.rule == "invalid-allow-directive"
        && p.severity == ci_gate::check::Severity::Error
        && p.migration.as_deref() == Some("missing-reason")));
}

#[test]
fn unknown_rule() {
    let m = fixture("unknown-rule");
    let mut findings = lint(&m);
    let problems = allow::apply(&mut findings, &[&m]);
    // The known rule in the same directive still applies.
    assert_eq!(
        summary(&findings),
        vec![(
            s("squawk/ban-drop-column"),
            3,
            true,
            Some(s("typo next to a real id"))
        )],
        "{}",
        show(&findings)
    );
    insta::assert_snapshot!("unknown_rule", show(&problems));
}

#[test]
fn unused_allow() {
    let m = fixture("unused");
    let mut findings = lint(&m);
    let problems = allow::apply(&mut findings, &[&m]);
    assert_eq!(
        summary(&findings),
        vec![(s("squawk/ban-drop-column"), 9, false, None)],
        "{}",
        show(&findings)
    );
    insta::assert_snapshot!("unused", show(&problems));
}

#[test]
fn squawk_ids_and_aliases() {
    let m = fixture("squawk-ids");
    let config = Config::parse(
        "rules: { squawk/prefer-timestamptz: warning }\n",
        Path::new(".ci-gate.yml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let levels: RuleLevels = config
        .rules
        .iter()
        .map(|(id, level)| (id.clone(), level.severity()))
        .collect();
    let mut findings = squawk::lint(&m, &LintContext::default(), &levels).findings;
    let problems = allow::apply(&mut findings, &[&m]);
    assert!(problems.is_empty(), "{}", show(&problems));
    assert_eq!(
        summary(&findings),
        vec![
            // squawk's other spelling of the rule.
            (
                s("squawk/prefer-timestamptz"),
                3,
                true,
                Some(s("UTC by convention"))
            ),
            (
                s("squawk/require-concurrent-index-creation"),
                6,
                true,
                Some(s("Invoice has 300 rows"))
            ),
        ],
        "{}",
        show(&findings)
    );
}

#[test]
fn a_ci_gate_rule_allows_its_static_twin_but_not_the_reverse() {
    let m = fixture("twin");
    let mut findings = lint(&m);
    findings.push(observed("blocks-writes", &m, 3));
    findings.push(observed("blocks-writes", &m, 6));
    let problems = allow::apply(&mut findings, &[&m]);
    assert_eq!(
        summary(&findings),
        vec![
            (
                s("squawk/require-concurrent-index-creation"),
                3,
                true,
                Some(s("Tag is tiny"))
            ),
            (
                s("squawk/require-concurrent-index-creation"),
                6,
                true,
                Some(s("static only"))
            ),
            (s("blocks-writes"), 3, true, Some(s("Tag is tiny"))),
            (s("blocks-writes"), 6, false, None),
        ],
        "{}",
        show(&findings)
    );
    assert!(problems.is_empty(), "{}", show(&problems));
}

#[test]
fn a_squawk_id_does_not_allow_the_observed_finding_and_says_which_to_allow() {
    // As after the pipeline merged the static finding into the observed one.
    let m = fixture("observed-twin");
    let mut findings = vec![observed("drops-column", &m, 3)];
    let problems = allow::apply(&mut findings, &[&m]);
    assert!(!findings[0].allowed);
    insta::assert_snapshot!("observed_twin", show(&problems));
}

#[test]
fn malformed_and_misplaced_directives() {
    let m = fixture("malformed");
    let mut findings = lint(&m);
    let problems = allow::apply(&mut findings, &[&m]);
    assert!(findings.iter().all(|f| !f.allowed), "{}", show(&findings));
    insta::assert_snapshot!("malformed", show(&problems));
}

#[test]
fn text_in_strings_and_dollar_bodies_is_not_a_directive() {
    let m = fixture("not-comments");
    assert_eq!(allow::parse(&m), vec![]);
    let mut findings = lint(&m);
    assert!(allow::apply(&mut findings, &[&m]).is_empty());
    assert!(findings.iter().all(|f| !f.allowed));
}

#[test]
fn directives_only_apply_to_their_own_file() {
    let a = fixture("next-statement");
    let b = migration(
        "other",
        "prisma/migrations/other/migration.sql",
        "-- AlterTable\nALTER TABLE \"User\" DROP COLUMN \"legacyName\";\n",
    );
    let mut findings = lint(&b);
    findings.extend(lint(&a));
    let problems = allow::apply(&mut findings, &[&a, &b]);
    assert!(problems.is_empty(), "{}", show(&problems));
    let allowed: Vec<(&str, bool)> = findings
        .iter()
        .map(|f| (f.file.as_deref().unwrap_or(""), f.allowed))
        .collect();
    assert_eq!(
        allowed,
        vec![
            ("prisma/migrations/other/migration.sql", false),
            ("tests/fixtures/allow/next-statement/migration.sql", true),
            ("tests/fixtures/allow/next-statement/migration.sql", false),
        ]
    );
}

#[test]
fn the_rule_is_registered_with_its_doc() {
    let r = find_rule("invalid-allow-directive").unwrap_or_else(|| panic!("not registered"));
    assert_eq!(r.default_severity, ci_gate::check::Severity::Error);
    assert_eq!(r.category, ci_gate::check::Category::Lint);
    assert!(r.doc.contains("## How to do it safely"));
}
