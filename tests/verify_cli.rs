//! `ci-gate verify` end to end: the real binary, a real PostgreSQL (`--provider local`), the
//! fixtures under tests/fixtures, and the JSON report. Every test also checks that nothing is
//! left in its private TMPDIR (no cluster directory, no socket).

mod common;

use common::{fixture, root, verify_local, write_project};

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap_or_else(|| panic!("non-UTF-8 path"))
}

#[test]
fn example_prisma_saas_verifies_cleanly() {
    let run = verify_local(&[path(&root().join("examples/prisma-saas"))]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let json = run.json.unwrap_or_else(|| panic!("no JSON"));
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["verdict"], "pass");
    assert_eq!(json["format"], "prisma");
    assert_eq!(json["prisma"]["version"], "6.19.0");
    assert_eq!(json["prisma"]["semantics"], "whole-file");
    assert_eq!(json["checks"]["scratch"]["status"], "pass");
    let migrations = json["migrations"].as_array().cloned().unwrap_or_default();
    assert!(migrations.len() >= 10);
    assert!(
        migrations
            .iter()
            .all(|m| m["status"] == "applied" && m["new"] == true)
    );
    assert!(
        run.stderr.contains("checks: ✔ from scratch"),
        "terminal report goes to stderr with --json -: {}",
        run.stderr
    );
}

/// The README's first `cargo run --release -- verify …` line, run as written (paths are relative
/// to the repository root, where the README runs it): a pull request on the bundled example,
/// with an observed finding explained, every row led by its verdict.
#[test]
fn readme_quick_start_checks_a_pull_request() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap_or_default();
    let line = readme
        .lines()
        .find(|l| l.trim_start().starts_with("cargo run --release -- verify"))
        .unwrap_or_else(|| panic!("no `cargo run --release -- verify` line in the README"));
    let args: Vec<String> = line
        .split_whitespace()
        .skip(5)
        .map(|a| match root().join(a) {
            p if p.exists() => path(&p).to_string(),
            _ => a.to_string(),
        })
        .collect();
    assert!(
        args.iter().any(|a| a == "--base-dir"),
        "the quick start checks a pull request: {line}"
    );
    let run = verify_local(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let json = run.json.clone().unwrap_or_default();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(
        json["base_dir"],
        path(&root().join("examples/prisma-saas/prisma/migrations"))
    );
    // An observed finding, explained: where, what the server said, and how to fix it.
    let f = run.finding("fails-on-existing-rows");
    assert_eq!(f["source"], "proven");
    assert_eq!(f["migration"], "20251203152040_invoice_tax_rate");
    assert!(f["message"].as_str().unwrap_or("").contains("23502"), "{f}");
    assert!(f["fix"].as_str().is_some_and(|x| !x.is_empty()), "{f}");
    assert!(run.finding("blocks-writes")["source"] == "observed");
    // Rows tell their verdict; the migration after the failure on seeded rows was not traced.
    let rows = json["migrations"].as_array().cloned().unwrap_or_default();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no row {name}"))
    };
    assert_eq!(row("20251203152040_invoice_tax_rate")["verdict"], "error");
    assert_eq!(row("20251203152040_invoice_tax_rate")["traced"], true);
    // The migration after the one that failed on the seeded rows was traced on a fresh copy; its
    // ACCESS EXCLUSIVE on "Project" without a lock timeout is among the pull request's.
    let last = row("20251204081755_project_archived_at");
    assert_eq!(last["traced"], true, "{last}");
    assert_eq!(last["verdict"], "warning", "{last}");
    assert!(last["not_traced_reason"].is_null(), "{last}");
    assert!(
        json["notes"].to_string().contains("traced on a fresh copy"),
        "{}",
        json["notes"]
    );
    assert_eq!(row("20240112093015_init")["change"], "unchanged");
    assert_eq!(json["checks"]["trace"]["status"], "fail");
    assert!(run.stderr.contains("base directory "), "{}", run.stderr);
    assert!(run.stderr.contains("│ error "), "{}", run.stderr);
}

/// Progress goes to stderr only on a terminal, or when asked: a CI log stays quiet.
#[test]
fn progress_lines_only_when_asked() {
    let project = root().join("examples/broken");
    let quiet = verify_local(&[path(&project)]);
    assert!(!quiet.stderr.contains("ci-gate: "), "{}", quiet.stderr);
    let asked = verify_local(&[path(&project), "--progress"]);
    assert_eq!(asked.code, 1);
    assert!(
        asked
            .stderr
            .lines()
            .any(|l| l.starts_with("ci-gate: applying the migrations (")),
        "{}",
        asked.stderr
    );
}

#[test]
fn example_broken_fails_at_its_line() {
    let run = verify_local(&[path(&root().join("examples/broken"))]);
    assert_eq!(run.code, 1);
    let f = run.finding("migration-fails");
    assert_eq!(
        f["file"],
        "prisma/migrations/20240415120000_post_published_at/migration.sql"
    );
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(7), Some(39))
    );
    assert!(
        f["message"]
            .as_str()
            .unwrap_or("")
            .contains("column \"slug\" does not exist")
    );
    assert!(f["message"].as_str().unwrap_or("").contains("42703"));
    assert_eq!(f["severity"], "error");
    assert_eq!(f["source"], "history");
}

#[test]
fn concurrently_beside_other_statements_fails_like_prisma_deploy() {
    let run = verify_local(&[path(&fixture("concurrently-multi"))]);
    assert_eq!(run.code, 1);
    assert_eq!(run.rules(), vec!["non-transactional-statement"]);
    let f = run.finding("non-transactional-statement");
    assert_eq!(f["line"], 11);
    assert!(f["message"].as_str().unwrap_or("").contains("25001"));
    let json = run.json.clone().unwrap_or_default();
    let statuses: Vec<_> = json["migrations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| m["status"].clone())
        .collect();
    assert_eq!(statuses.last().cloned(), Some(serde_json::json!("failed")));
}

#[test]
fn concurrently_alone_in_its_file_applies() {
    let run = verify_local(&[path(&fixture("concurrently-alone"))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn prisma_7_4_applies_statement_by_statement() {
    let run = verify_local(&[path(&fixture("prisma-7-4"))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json.clone().unwrap_or_default();
    assert_eq!(json["prisma"]["semantics"], "statements");
    // The same file fails when the project is treated as Prisma 6.
    let run = verify_local(&[path(&fixture("prisma-7-4")), "--prisma-version", "6.19.0"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.rules(), vec!["non-transactional-statement"]);
}

#[test]
fn unknown_prisma_version_applies_the_stricter_semantics_and_says_so() {
    let run = verify_local(&[path(&fixture("clean"))]);
    assert_eq!(run.code, 0);
    let json = run.json.clone().unwrap_or_default();
    assert_eq!(json["prisma"]["semantics"], "whole-file");
    assert!(json["notes"].to_string().contains("Prisma version unknown"));
}

#[test]
fn failure_without_server_position_names_the_statement() {
    let run = verify_local(&[path(&fixture("runtime-error-no-position"))]);
    assert_eq!(run.code, 1);
    let f = run.finding("migration-fails");
    assert_eq!(f["line"], 14);
    assert!(
        f["statement"]
            .as_str()
            .unwrap_or("")
            .starts_with("CREATE UNIQUE INDEX \"Category_slug_key\"")
    );
    assert!(
        f["evidence"]
            .to_string()
            .contains("Key (slug)=(general) is duplicated")
    );
}

#[test]
fn missing_role_names_the_config_key_and_config_fixes_it() {
    let run = verify_local(&[path(&fixture("missing-role"))]);
    assert_eq!(run.code, 1);
    let f = run.finding("migration-fails");
    assert!(
        f["fix"]
            .as_str()
            .unwrap_or("")
            .contains("roles: [authenticated]"),
        "{f}"
    );
    assert_eq!(f["line"], 2);
    let run = verify_local(&[path(&fixture("missing-role-configured"))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn missing_extension_names_the_config_key_and_config_fixes_it() {
    let run = verify_local(&[path(&fixture("missing-extension"))]);
    assert_eq!(run.code, 1);
    let f = run.finding("migration-fails");
    assert!(
        f["fix"]
            .as_str()
            .unwrap_or("")
            .contains("extensions: [moddatetime]"),
        "{f}"
    );
    let run = verify_local(&[path(&fixture("missing-extension-configured"))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn migrations_run_as_a_non_superuser_owner() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(
        dir.path(),
        &[(
            "20240101000000_who",
            "CREATE TABLE \"Who\" AS SELECT current_user::text AS u, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su;\nDO $$ BEGIN IF (SELECT su FROM \"Who\") THEN RAISE EXCEPTION 'ran as superuser'; END IF; END $$;\n",
        )],
    );
    let run = verify_local(&[path(dir.path())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dir2 = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(
        dir2.path(),
        &[(
            "20240101000000_who",
            "DO $$ BEGIN IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN RAISE EXCEPTION 'not superuser'; END IF; END $$;\n",
        )],
    );
    let run = verify_local(&[path(dir2.path()), "--superuser"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn statement_timeout_turns_a_hung_migration_into_a_failure() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(
        dir.path(),
        &[(
            "20240101000000_slow",
            "CREATE TABLE \"A\" (\"id\" INTEGER);\nSELECT pg_sleep(30);\n",
        )],
    );
    std::fs::write(dir.path().join(".ci-gate.yml"), "statement-timeout: 1s\n").unwrap_or_default();
    let started = std::time::Instant::now();
    let run = verify_local(&[path(dir.path())]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(25));
    let f = run.finding("migration-fails");
    assert!(f["message"].as_str().unwrap_or("").contains("57014"), "{f}");
    assert!(
        f["fix"]
            .as_str()
            .unwrap_or("")
            .contains("statement-timeout")
    );
    assert_eq!(f["line"], 2);
}

#[test]
fn later_migrations_are_skipped_after_a_failure() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(
        dir.path(),
        &[
            ("20240101000000_a", "CREATE TABLE \"A\" (\"id\" INTEGER);\n"),
            (
                "20240102000000_b",
                "ALTER TABLE \"Nope\" ADD COLUMN \"x\" TEXT;\n",
            ),
            ("20240103000000_c", "CREATE TABLE \"C\" (\"id\" INTEGER);\n"),
        ],
    );
    let run = verify_local(&[path(dir.path())]);
    assert_eq!(run.code, 1);
    let json = run.json.clone().unwrap_or_default();
    let statuses: Vec<String> = json["migrations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| m["status"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(statuses, vec!["applied", "failed", "skipped"]);
    // PostgreSQL gives no position for ALTER TABLE on a missing relation: the statement is named.
    let f = run.finding("migration-fails");
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        f["evidence"]
            .to_string()
            .contains("the statement that fails")
    );
}

#[test]
fn layout_problems_are_findings() {
    let run = verify_local(&[path(&fixture("stray-folder"))]);
    assert_eq!(run.code, 1);
    assert_eq!(run.rules(), vec!["invalid-migration-layout"]);
    assert!(
        run.finding("invalid-migration-layout")["message"]
            .as_str()
            .unwrap_or("")
            .contains("P3015")
    );

    let run = verify_local(&[path(&fixture("lock-unquoted"))]);
    assert_eq!(run.code, 1);
    let f = run.finding("invalid-migration-layout");
    assert!(f["message"].as_str().unwrap_or("").contains("P3019"));
    assert_eq!(f["line"], 3);

    let run = verify_local(&[path(&fixture("invalid-utf8"))]);
    assert_eq!(run.code, 1);
    assert!(
        run.finding("invalid-migration-layout")["message"]
            .as_str()
            .unwrap_or("")
            .contains("not valid UTF-8")
    );
}

#[test]
fn a_missing_lock_file_is_fine() {
    let run = verify_local(&[path(&fixture("no-lock"))]);
    assert_eq!(run.code, 0);
}

#[test]
fn bom_is_sent_as_read_and_fails_like_deploy() {
    let run = verify_local(&[path(&fixture("bom-crlf"))]);
    assert_eq!(run.code, 1);
    let f = run.finding("migration-fails");
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        f["fix"].as_str().unwrap_or("").contains("byte-order mark"),
        "{f}"
    );
}

#[test]
fn crlf_files_apply() {
    let run = verify_local(&[path(&fixture("crlf"))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn explicit_begin_commit_in_a_file_applies() {
    let run = verify_local(&[path(&fixture("explicit-transaction"))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn locale_order_differences_are_noted() {
    let run = verify_local(&[path(&fixture("locale-order"))]);
    assert_eq!(run.code, 0);
    assert!(
        run.json.unwrap_or_default()["notes"]
            .to_string()
            .contains("localeCompare")
    );
}

#[test]
fn nested_schema_is_found_and_node_modules_ignored() {
    let run = verify_local(&[path(&fixture("nested-project"))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json.clone().unwrap_or_default();
    assert_eq!(json["migrations_dir"], "apps/api/prisma/migrations");
}

#[test]
fn a_history_of_several_hundred_migrations_applies() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    common::history::generate_prisma_history(dir.path(), 300)
        .unwrap_or_else(|e| panic!("generate: {e}"));
    let run = verify_local(&[path(dir.path())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json.clone().unwrap_or_default();
    assert_eq!(json["migrations"].as_array().map(Vec::len), Some(300));
    assert_eq!(json["checks"]["scratch"]["applied"], 300);
    // long histories list only flagged rows in the terminal
    assert!(
        run.stderr
            .contains("300 clean migrations (--verbose lists them)"),
        "{}",
        run.stderr
    );
}

#[test]
fn fail_on_never_passes_and_rule_off_silences() {
    let run = verify_local(&[path(&root().join("examples/broken")), "--fail-on", "never"]);
    assert_eq!(run.code, 0);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    common::copy_dir(&fixture("stray-folder"), dir.path());
    std::fs::write(
        dir.path().join(".ci-gate.yml"),
        "rules:\n  invalid-migration-layout: warning\n",
    )
    .unwrap_or_default();
    let run = verify_local(&[path(dir.path())]);
    assert_eq!(
        run.code, 0,
        "a warning does not fail the gate: {}",
        run.stderr
    );
    assert_eq!(
        run.finding("invalid-migration-layout")["severity"],
        "warning"
    );
    let run = verify_local(&[path(dir.path()), "--fail-on", "warning"]);
    assert_eq!(run.code, 1);
}
