//! Bad input gets one clear message naming the file and what to do, exit 2, no panic;
//! no Postgres to be had gets exit 3 saying what was tried.

mod common;

use common::{ci_gate_raw, fixture, write_project};

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap_or_else(|| panic!("non-UTF-8 path"))
}

fn assert_clean_error(run: &common::Run, code: i32, needles: &[&str]) {
    assert_eq!(
        run.code, code,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
        "{}",
        run.stderr
    );
    for n in needles {
        assert!(run.stderr.contains(n), "missing {n:?} in:\n{}", run.stderr);
    }
}

#[test]
fn missing_project_directory() {
    let run = ci_gate_raw(&["verify", "/nonexistent/project"]);
    assert_clean_error(
        &run,
        2,
        &["/nonexistent/project", "does not exist", "hint:"],
    );
}

#[test]
fn missing_migrations_directory() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = ci_gate_raw(&[
        "verify",
        path(dir.path()),
        "--migrations",
        "db/migrations",
        "--provider",
        "local",
    ]);
    assert_clean_error(
        &run,
        2,
        &["db/migrations", "does not exist", "--migrations"],
    );
}

#[test]
fn project_without_migrations() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = ci_gate_raw(&["verify", path(dir.path()), "--provider", "local"]);
    assert_clean_error(&run, 2, &["no migrations directory found", "--migrations"]);
}

#[test]
fn empty_migrations_directory() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.path().join("prisma/migrations")).unwrap_or_default();
    let run = ci_gate_raw(&["verify", path(dir.path()), "--provider", "local"]);
    assert_clean_error(&run, 2, &["no migrations in", "prisma/migrations"]);
}

#[test]
fn migrations_path_is_a_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("m.sql"), "SELECT 1;").unwrap_or_default();
    let run = ci_gate_raw(&[
        "verify",
        path(dir.path()),
        "--migrations",
        "m.sql",
        "--provider",
        "local",
    ]);
    assert_clean_error(&run, 2, &["m.sql", "not a directory"]);
}

#[test]
fn unreadable_migration_directory() {
    // root reads everything, so make the path unreadable by making it a dangling symlink instead
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.path().join("prisma")).unwrap_or_default();
    let _ = std::os::unix::fs::symlink("/nonexistent/target", dir.path().join("prisma/migrations"));
    let run = ci_gate_raw(&[
        "verify",
        path(dir.path()),
        "--migrations",
        "prisma/migrations",
        "--provider",
        "local",
    ]);
    assert_clean_error(&run, 2, &["prisma/migrations"]);
}

#[test]
fn broken_yaml_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(dir.path(), &[("20240101000000_a", "SELECT 1;")]);
    std::fs::write(
        dir.path().join(".ci-gate.yml"),
        "format: prisma\nroles: [a, b\n",
    )
    .unwrap_or_default();
    let run = ci_gate_raw(&["verify", path(dir.path()), "--provider", "local"]);
    assert_clean_error(&run, 2, &[".ci-gate.yml:", "hint: fix the YAML syntax"]);
}

#[test]
fn unknown_config_key_names_the_key_and_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(dir.path(), &[("20240101000000_a", "SELECT 1;")]);
    std::fs::write(
        dir.path().join(".ci-gate.yml"),
        "format: prisma\nextentions: [citext]\n",
    )
    .unwrap_or_default();
    let run = ci_gate_raw(&["verify", path(dir.path()), "--provider", "local"]);
    assert_clean_error(&run, 2, &[".ci-gate.yml:2", "extentions", "valid keys"]);
}

#[test]
fn unknown_rule_in_config() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(dir.path(), &[("20240101000000_a", "SELECT 1;")]);
    std::fs::write(
        dir.path().join(".ci-gate.yml"),
        "rules:\n  drops-colum: off\n",
    )
    .unwrap_or_default();
    let run = ci_gate_raw(&["verify", path(dir.path()), "--provider", "local"]);
    assert_clean_error(
        &run,
        2,
        &[
            ".ci-gate.yml:2",
            "unknown rule `drops-colum`",
            "ci-gate rules",
        ],
    );
}

#[test]
fn missing_explicit_config_file() {
    let run = ci_gate_raw(&[
        "verify",
        path(&fixture("clean")),
        "--config",
        "/nonexistent/ci-gate.yml",
    ]);
    assert_clean_error(&run, 2, &["/nonexistent/ci-gate.yml", "cannot read"]);
}

#[test]
fn unknown_provider_is_a_usage_error() {
    let run = ci_gate_raw(&[
        "verify",
        path(&fixture("clean")),
        "--provider",
        "kubernetes",
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("kubernetes") && run.stderr.contains("possible values"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_database_url() {
    let run = ci_gate_raw(&[
        "verify",
        path(&fixture("clean")),
        "--provider",
        "url",
        "--database-url",
        "mysql:/nope",
    ]);
    assert_clean_error(&run, 2, &["--database-url", "postgres://"]);
}

#[test]
fn url_provider_without_url() {
    let run = ci_gate_raw(&["verify", path(&fixture("clean")), "--provider", "url"]);
    assert_clean_error(&run, 2, &["--database-url"]);
}

#[test]
fn other_providers_are_refused_clearly() {
    let run = ci_gate_raw(&[
        "verify",
        path(&fixture("sqlite-provider")),
        "--provider",
        "local",
    ]);
    assert_clean_error(
        &run,
        2,
        &[
            "migration_lock.toml:3",
            "`sqlite`",
            "ci-gate verifies PostgreSQL migrations",
        ],
    );
}

#[test]
fn two_migration_directories_are_listed() {
    let run = ci_gate_raw(&[
        "verify",
        path(&fixture("two-candidates")),
        "--provider",
        "local",
    ]);
    assert_clean_error(
        &run,
        2,
        &[
            "services/billing/prisma/migrations",
            "services/catalog/prisma/migrations",
            "--migrations",
        ],
    );
}

#[test]
fn bad_pg_bin_is_bad_input() {
    let run = ci_gate_raw(&[
        "verify",
        path(&fixture("clean")),
        "--provider",
        "local",
        "--pg-bin",
        "/nonexistent/bin",
    ]);
    assert_clean_error(&run, 2, &["/nonexistent/bin"]);
}

#[test]
fn unreachable_server_is_an_environment_error() {
    let run = ci_gate_raw(&[
        "verify",
        path(&fixture("clean")),
        "--provider",
        "url",
        "--database-url",
        "postgres://postgres:x@127.0.0.1:1/postgres?connect_timeout=3",
    ]);
    assert_clean_error(&run, 3, &["could not connect", "hint:"]);
}

#[test]
fn live_url_must_be_postgres() {
    let run = ci_gate_raw(&[
        "verify",
        path(&fixture("clean")),
        "--provider",
        "local",
        "--live-url",
        "mysql://x:secret@localhost/db",
    ]);
    assert_clean_error(&run, 2, &["--live-url", "x:***@localhost"]);
}

#[test]
fn rules_and_explain() {
    let run = ci_gate_raw(&["rules"]);
    assert_eq!(run.code, 0);
    for id in [
        "migration-fails",
        "non-transactional-statement",
        "invalid-migration-layout",
    ] {
        assert!(run.stdout.contains(id), "{}", run.stdout);
    }
    let run = ci_gate_raw(&["explain", "migration-fails"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.starts_with("# migration-fails")
            && run.stdout.contains("## How to do it safely")
    );
    let run = ci_gate_raw(&["explain", "no-such-rule"]);
    assert_clean_error(&run, 2, &["unknown rule", "ci-gate rules"]);
}
