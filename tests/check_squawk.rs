//! The static layer (`src/check/squawk.rs`): squawk-linter findings as `squawk/<rule>`, with
//! ci-gate's Prisma-aware defaults. No database.
//!
//! Fixtures: `tests/fixtures/lint/<rule>/fires.sql` (the rule fires) and `quiet.sql` (the safe
//! way to do the same thing: the rule must not fire), for every squawk rule on by default.

#[path = "common/history.rs"]
mod history;

use std::collections::BTreeMap;
use std::path::Path;

use ci_gate::check::squawk::{self, LintContext, LintOutput, RuleLevels};
use ci_gate::check::{Finding, Severity};
use ci_gate::config::Config;
use ci_gate::discover::prisma::checksum;
use ci_gate::discover::{FsTree, Migration, prisma};

fn migration(name: &str, path: &str, text: &str) -> Migration {
    Migration {
        name: name.to_string(),
        path: path.to_string(),
        bytes: text.as_bytes().to_vec(),
        text: text.to_string(),
        checksum: checksum(text.as_bytes()),
    }
}

fn fixture(rule: &str, file: &str) -> Migration {
    let path = format!("tests/fixtures/lint/{rule}/{file}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    migration(rule, &path, &text)
}

/// The rule levels a `.ci-gate.yml` configures (what the pipeline hands the squawk engine).
fn config(yaml: &str) -> RuleLevels {
    let config = Config::parse(yaml, Path::new(".ci-gate.yml")).unwrap_or_else(|e| panic!("{e}"));
    config
        .rules
        .iter()
        .map(|(id, level)| (id.clone(), level.severity()))
        .collect()
}

fn ctx_for(rule: &str) -> LintContext {
    LintContext {
        // REPACK exists from PostgreSQL 19; squawk only suggests it there.
        pg_major: if rule == "prefer-repack" { 19 } else { 16 },
        assume_in_transaction: true,
    }
}

fn line(f: &Finding) -> String {
    let allowed = match (&f.allowed, &f.allow_reason) {
        (true, Some(r)) => format!(" (allowed: {r})"),
        (true, None) => " (allowed)".into(),
        _ => String::new(),
    };
    format!(
        "{} {} [{}]{allowed}: {}",
        f.location().unwrap_or_default(),
        f.rule,
        f.severity,
        f.message
    )
}

fn render(out: &LintOutput) -> String {
    let mut s = String::new();
    for f in &out.findings {
        s.push_str(&line(f));
        s.push('\n');
        if let Some(st) = &f.statement {
            s.push_str(&format!("    statement: {st}\n"));
        }
        for e in &f.evidence {
            s.push_str(&format!("    evidence: {e}\n"));
        }
        if let Some(fix) = &f.fix {
            s.push_str(&format!("    fix: {fix}\n"));
        }
    }
    for d in &out.dismissed {
        s.push_str(&format!("dismissed {}: {}\n", line(&d.finding), d.reason));
    }
    s
}

fn rules_of(out: &LintOutput) -> Vec<&str> {
    out.findings.iter().map(|f| f.rule.as_str()).collect()
}

#[test]
fn every_rule_on_by_default_fires_on_its_fixture_and_not_on_the_safe_version() {
    let defaults = RuleLevels::new();
    let mut missing = Vec::new();
    for (id, _, severity, on) in squawk::squawk_rules() {
        if !on {
            continue;
        }
        let name = id.trim_start_matches("squawk/");
        if !Path::new(&format!("tests/fixtures/lint/{name}")).is_dir() {
            missing.push(name.to_string());
            continue;
        }
        let ctx = ctx_for(name);

        let fires = squawk::lint(&fixture(name, "fires.sql"), &ctx, &defaults);
        let hits: Vec<&Finding> = fires.findings.iter().filter(|f| f.rule == id).collect();
        assert!(
            !hits.is_empty(),
            "{id} does not fire on its fixture:\n{}",
            render(&fires)
        );
        for f in &hits {
            assert_eq!(f.severity, severity, "{id}");
            assert!(f.line.is_some() && f.column.is_some(), "{id}: no location");
            assert_eq!(f.migration.as_deref(), Some(name));
        }
        insta::assert_snapshot!(format!("fires__{name}"), render(&fires));

        let quiet = squawk::lint(&fixture(name, "quiet.sql"), &ctx, &defaults);
        assert!(
            !rules_of(&quiet).contains(&id.as_str()),
            "{id} fires on its safe version:\n{}",
            render(&quiet)
        );
    }
    assert!(
        missing.is_empty(),
        "rules on by default without fixtures: {missing:?}"
    );
}

#[test]
fn quiet_fixtures_that_rely_on_the_file_are_dismissed_with_a_reason() {
    let defaults = RuleLevels::new();
    let ctx = LintContext::default();
    for (name, dismissed_rule) in [
        ("ban-drop-type", "squawk/ban-drop-type"),
        ("ban-drop-default", "squawk/ban-drop-default"),
        ("ban-drop-constraint", "squawk/ban-drop-constraint"),
        ("renaming-object", "squawk/renaming-object"),
    ] {
        let out = squawk::lint(&fixture(name, "quiet.sql"), &ctx, &defaults);
        assert!(
            out.dismissed
                .iter()
                .any(|d| d.finding.rule == dismissed_rule),
            "{name}: expected a dismissed {dismissed_rule}:\n{}",
            render(&out)
        );
        insta::assert_snapshot!(format!("dismissed__{name}"), render(&out));
    }
    // constraint-missing-not-valid repeats adding-foreign-key-constraint on the same constraint.
    let out = squawk::lint(
        &fixture("adding-foreign-key-constraint", "fires.sql"),
        &ctx,
        &defaults,
    );
    assert_eq!(
        rules_of(&out),
        vec!["squawk/adding-foreign-key-constraint"],
        "{}",
        render(&out)
    );
    assert_eq!(out.dismissed.len(), 1);
    assert_eq!(
        out.dismissed[0].finding.rule,
        "squawk/constraint-missing-not-valid"
    );
    assert_eq!(out.raw_counts["squawk/constraint-missing-not-valid"], 1);
}

#[test]
fn the_enum_swap_outside_a_transaction_is_not_dismissed() {
    // Prisma ≥ 7.4 without the BEGIN/COMMIT: the rename and the drop are visible to clients.
    let text = "ALTER TYPE \"Role\" RENAME TO \"Role_old\";\nCREATE TYPE \"Role\" AS ENUM ('A');\nDROP TYPE \"Role_old\";\n";
    let m = migration("swap", "swap.sql", text);
    let ctx = LintContext {
        pg_major: 16,
        assume_in_transaction: false,
    };
    let out = squawk::lint(&m, &ctx, &RuleLevels::new());
    assert!(out.dismissed.is_empty(), "{}", render(&out));
    assert!(rules_of(&out).contains(&"squawk/ban-drop-type"));
}

fn prisma_saas() -> Vec<Migration> {
    prisma::read(
        &FsTree::new(Path::new("examples/prisma-saas")),
        "prisma/migrations",
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .migrations
}

#[test]
fn prisma_saas_with_defaults_reports_only_the_real_hazards() {
    let defaults = RuleLevels::new();
    let ctx = LintContext::default();
    let mut all = String::new();
    let mut raw: BTreeMap<String, usize> = BTreeMap::new();
    for m in prisma_saas() {
        let out = squawk::lint(&m, &ctx, &defaults);
        for f in &out.findings {
            assert!(
                squawk::default_enabled(&f.rule),
                "off-by-default rule fired: {}",
                line(f)
            );
        }
        for (k, v) in &out.raw_counts {
            *raw.entry(k.clone()).or_default() += v;
        }
        for f in &out.findings {
            all.push_str(&line(f));
            all.push('\n');
        }
        for d in &out.dismissed {
            all.push_str(&format!("dismissed {}: {}\n", line(&d.finding), d.reason));
        }
    }
    println!("{all}");
    println!("raw squawk: {raw:#?}");
    insta::assert_snapshot!("prisma_saas_defaults", all);
}

#[test]
fn a_config_turns_an_off_rule_on_and_an_on_rule_off() {
    let m = prisma_saas()
        .into_iter()
        .find(|m| m.name.ends_with("_init"))
        .unwrap_or_else(|| panic!("no init migration"));
    let ctx = LintContext::default();

    let defaults = squawk::lint(&m, &ctx, &RuleLevels::new());
    assert!(!rules_of(&defaults).contains(&"squawk/prefer-timestamptz"));
    // Raw squawk would have said it.
    assert!(defaults.raw_counts["squawk/prefer-timestamptz"] > 0);

    let on = squawk::lint(
        &m,
        &ctx,
        &config("rules:\n  squawk/prefer-timestamptz: notice\n"),
    );
    let hits: Vec<&Finding> = on
        .findings
        .iter()
        .filter(|f| f.rule == "squawk/prefer-timestamptz")
        .collect();
    assert_eq!(hits.len(), defaults.raw_counts["squawk/prefer-timestamptz"]);
    assert!(hits.iter().all(|f| f.severity == Severity::Notice));
    let first = hits[0];
    assert_eq!(
        first.location().as_deref(),
        Some("prisma/migrations/20240112093015_init/migration.sql:13:17")
    );

    // squawk's other spelling works too.
    let alias = squawk::lint(
        &m,
        &ctx,
        &config("rules:\n  squawk/prefer-timestamp-tz: warning\n"),
    );
    assert_eq!(
        alias
            .findings
            .iter()
            .filter(|f| f.rule == "squawk/prefer-timestamptz")
            .count(),
        hits.len()
    );

    // An opt-in squawk rule (not in squawk's default set) runs when named.
    let opt_in = squawk::lint(
        &m,
        &ctx,
        &config("rules:\n  squawk/require-table-schema: warning\n"),
    );
    assert!(rules_of(&opt_in).contains(&"squawk/require-table-schema"));

    // require-timeout-settings is squawk's alias for both timeout rules.
    let timeouts = squawk::lint(
        &m,
        &ctx,
        &config("rules:\n  squawk/require-timeout-settings: warning\n"),
    );
    let r = rules_of(&timeouts);
    assert!(r.contains(&"squawk/require-lock-timeout"), "{r:?}");
    assert!(r.contains(&"squawk/require-statement-timeout"), "{r:?}");

    // And an on rule can be switched off.
    let drop = migration(
        "drop",
        "drop.sql",
        "ALTER TABLE \"User\" DROP COLUMN \"x\";\n",
    );
    assert_eq!(
        rules_of(&squawk::lint(&drop, &ctx, &RuleLevels::new())),
        vec!["squawk/ban-drop-column"]
    );
    assert!(
        squawk::lint(
            &drop,
            &ctx,
            &config("rules:\n  squawk/ban-drop-column: off\n")
        )
        .findings
        .is_empty()
    );
}

#[test]
fn prefer_robust_stmts_needs_non_atomic_files_and_the_config() {
    let m = migration(
        "add",
        "add.sql",
        "-- AlterTable\nALTER TABLE \"User\" ADD COLUMN     \"bio\" TEXT;\n",
    );
    let non_atomic = LintContext {
        pg_major: 16,
        assume_in_transaction: false,
    };
    let on = config("rules: { squawk/prefer-robust-stmts: warning }\n");
    assert!(
        squawk::lint(&m, &non_atomic, &RuleLevels::new())
            .findings
            .is_empty()
    );
    let out = squawk::lint(&m, &non_atomic, &on);
    assert_eq!(rules_of(&out), vec!["squawk/prefer-robust-stmts"]);
    assert_eq!(out.findings[0].location().as_deref(), Some("add.sql:2:20"));
    // One transaction per file (Prisma ≤ 7.3): a half-applied file cannot happen.
    assert!(
        squawk::lint(&m, &LintContext::default(), &on)
            .findings
            .is_empty()
    );
}

#[test]
fn unknown_squawk_rules_in_config_are_rejected() {
    let e = Config::parse(
        "rules:\n  squawk/prefer-robust-stmt: off\n",
        Path::new(".ci-gate.yml"),
    )
    .err()
    .unwrap_or_else(|| panic!("accepted"));
    assert!(
        e.message.contains("squawk/prefer-robust-stmt"),
        "{}",
        e.message
    );
    assert_eq!(e.line, Some(2));
    for ok in [
        "squawk/prefer-robust-stmts",
        "squawk/prefer-timestamp-tz",
        "squawk/require-timeout-settings",
        "squawk/ban-add-column",
    ] {
        config(&format!("rules:\n  {ok}: warning\n"));
    }
}

#[test]
fn positions_count_characters_and_survive_a_bom_and_crlf() {
    let text = "\u{feff}-- é\r\nDROP TABLE \"Séance\";\r\n";
    let m = migration("bom", "bom.sql", text);
    let out = squawk::lint(&m, &LintContext::default(), &RuleLevels::new());
    assert_eq!(rules_of(&out), vec!["squawk/ban-drop-table"]);
    assert_eq!(out.findings[0].location().as_deref(), Some("bom.sql:2:1"));
    assert_eq!(
        out.findings[0].statement.as_deref(),
        Some("DROP TABLE \"Séance\"")
    );
}

#[test]
fn squawk_ignore_comments_show_as_allowed_with_their_reason() {
    let out = squawk::lint(
        &fixture("unused-ignore", "quiet.sql"),
        &LintContext::default(),
        &RuleLevels::new(),
    );
    assert_eq!(rules_of(&out), vec!["squawk/ban-drop-column"]);
    let f = &out.findings[0];
    assert!(f.allowed);
    assert_eq!(
        f.allow_reason.as_deref(),
        Some("squawk-ignore comment on line 1: dropped in code since v2")
    );
}

#[test]
fn syntax_errors_are_reported_not_fatal() {
    let m = migration("bad", "bad.sql", "CREATE TABLE (;\nDROP TABLE \"Old\";\n");
    let out = squawk::lint(&m, &LintContext::default(), &RuleLevels::new());
    assert!(!out.syntax_errors.is_empty());
    assert_eq!(out.syntax_errors[0].line, 1);
}

#[test]
fn observed_equivalents_cover_the_lock_and_destructive_rules() {
    for (squawk_rule, observed) in [
        ("require-concurrent-index-creation", "blocks-writes"),
        ("adding-foreign-key-constraint", "blocks-writes"),
        ("require-concurrent-index-deletion", "blocks-reads-writes"),
        ("constraint-missing-not-valid", "blocks-reads-writes"),
        ("adding-not-nullable-field", "blocks-reads-writes"),
        ("adding-serial-primary-key-field", "blocks-reads-writes"),
        ("disallowed-unique-constraint", "blocks-reads-writes"),
        ("require-concurrent-partition-detach", "blocks-reads-writes"),
        ("require-concurrent-reindex", "blocks-reads-writes"),
        ("adding-field-with-default", "rewrites-table"),
        ("changing-column-type", "rewrites-table"),
        ("prefer-repack", "rewrites-table"),
        ("adding-required-field", "fails-on-existing-rows"),
        ("ban-drop-column", "drops-column"),
        ("ban-drop-table", "drops-table"),
        ("ban-drop-schema", "drops-schema"),
        ("ban-truncate-cascade", "deletes-rows"),
        ("renaming-column", "renames-column"),
        ("renaming-table", "renames-table"),
        (
            "ban-concurrent-index-creation-in-transaction",
            "non-transactional-statement",
        ),
        ("require-lock-timeout", "missing-lock-timeout"),
    ] {
        assert_eq!(
            squawk::observed_equivalent(squawk_rule),
            Some(observed),
            "{squawk_rule}"
        );
        assert_eq!(
            squawk::observed_equivalent(&format!("squawk/{squawk_rule}")),
            Some(observed)
        );
        // The observed rule is a registered ci-gate rule.
        assert!(
            ci_gate::check::find_rule(observed).is_some(),
            "{observed} is not registered"
        );
    }
    assert_eq!(squawk::observed_equivalent("ban-drop-database"), None);
    assert_eq!(squawk::observed_equivalent("prefer-robust-stmts"), None);
}

#[test]
fn rules_and_explain_list_squawk_rules() {
    let rules = squawk::squawk_rules();
    assert!(rules.len() >= 70, "{}", rules.len());
    let off: Vec<&str> = rules
        .iter()
        .filter(|r| !r.3)
        .map(|r| r.0.as_str())
        .collect();
    for r in [
        "squawk/prefer-robust-stmts",
        "squawk/require-statement-timeout",
        "squawk/require-lock-timeout",
        "squawk/prefer-bigint-over-int",
        "squawk/prefer-identity",
        "squawk/prefer-text-field",
        "squawk/prefer-timestamptz",
        "squawk/ban-char-field",
        "squawk/transaction-nesting",
        "squawk/require-enum-value-ordering",
    ] {
        assert!(off.contains(&r), "{r} should be off by default");
    }
    let doc = squawk::explain("squawk/ban-drop-column").unwrap_or_default();
    for heading in [
        "# squawk/ban-drop-column",
        "## What it detects",
        "## Why it matters",
        "## How to do it safely",
        "## Example",
        "https://squawkhq.com/docs/ban-drop-column",
        "drops-column",
    ] {
        assert!(doc.contains(heading), "{heading} missing:\n{doc}");
    }
}

/// Counts for the report (not an assertion of exact numbers): raw squawk versus ci-gate's
/// defaults on the repo's Prisma files and on the 300-migration generated history.
#[test]
fn default_off_rules_cut_the_noise_on_prisma_histories() {
    let mut repo = Vec::new();
    for root in ["examples", "tests/fixtures"] {
        collect(Path::new(root), &mut repo);
    }
    let generated: Vec<Migration> = history::build_prisma_history(300)
        .0
        .into_iter()
        .map(|g| {
            let path = format!("gen/{}/migration.sql", g.name);
            migration(&g.name, &path, &g.sql)
        })
        .collect();
    for (label, set) in [
        ("repo Prisma files", repo),
        ("generated history", generated),
    ] {
        let mut raw: BTreeMap<String, usize> = BTreeMap::new();
        let mut kept: BTreeMap<String, usize> = BTreeMap::new();
        let mut dismissed = 0;
        let started = std::time::Instant::now();
        for m in &set {
            let out = squawk::lint(m, &LintContext::default(), &RuleLevels::new());
            for (k, v) in out.raw_counts {
                *raw.entry(k).or_default() += v;
            }
            for f in &out.findings {
                *kept.entry(f.rule.clone()).or_default() += 1;
            }
            dismissed += out.dismissed.len();
        }
        let elapsed = started.elapsed();
        let raw_total: usize = raw.values().sum();
        let kept_total: usize = kept.values().sum();
        println!(
            "== {label}: {} files, raw squawk {raw_total}, ci-gate {kept_total} (+{dismissed} dismissed), {elapsed:?}",
            set.len()
        );
        for (k, v) in &raw {
            println!(
                "{k:55} raw {v:5}  kept {:5}{}",
                kept.get(k).copied().unwrap_or(0),
                if squawk::default_enabled(k) {
                    ""
                } else {
                    "  (off)"
                }
            );
        }
        assert!(
            kept_total * 2 < raw_total,
            "{label}: defaults did not cut the noise"
        );
        for k in kept.keys() {
            assert!(squawk::default_enabled(k), "{k}");
        }
    }
}

fn collect(dir: &Path, out: &mut Vec<Migration>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            collect(&p, out);
        } else if p.file_name().is_some_and(|n| n == "migration.sql") {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{e}"));
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let name = p
                .parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push(migration(&name, &p.display().to_string(), &text));
        }
    }
}
