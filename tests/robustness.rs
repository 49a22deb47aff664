//! Hostile and careless migrations get the right outcome (issue 13): a finding and exit 1 for what
//! the migration does to its own deploy (an unterminated transaction, a killed session, a dropped
//! history table, a NUL byte), exit 2 for files ci-gate must not read (FIFOs, devices, over
//! 256 MiB), exit 3 only when the server itself is gone; `statement-timeout: 0` means no limit.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{assert_no_leftovers, ci_gate, finish, verify_local, write_project};

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_else(|| panic!("non-UTF-8 path"))
}

fn statuses(run: &common::Run) -> Vec<String> {
    run.json
        .as_ref()
        .and_then(|j| j["migrations"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|m| m["status"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// The run failed the gate with exactly one finding, of `rule`, on `migration`'s file at `line`.
fn the_finding(run: &common::Run, rule: &str, migration: &str, line: u64) -> serde_json::Value {
    assert_eq!(run.code, 1, "{}", show(run));
    assert_eq!(run.rules(), [rule], "{}", show(run));
    let f = run.finding(rule);
    let file = format!("prisma/migrations/{migration}/migration.sql");
    assert_eq!(f["file"], file.as_str(), "{f}");
    assert_eq!(f["line"], line, "{f}");
    f
}

fn message(f: &serde_json::Value) -> String {
    f["message"].as_str().unwrap_or("").to_string()
}

fn show(run: &common::Run) -> String {
    format!(
        "code {}\nstdout:\n{}\nstderr:\n{}",
        run.code, run.stdout, run.stderr
    )
}

#[test]
fn unterminated_transaction_is_a_finding_on_the_file_that_leaves_it_open() {
    for version in ["6.19.0", "7.4.0"] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write_project(
            dir.path(),
            &[
                ("20240101000000_init", "CREATE TABLE t (id int);\n"),
                (
                    "20240102000000_open",
                    "-- no COMMIT\nBEGIN;\nALTER TABLE t ADD COLUMN x int;\n",
                ),
                ("20240103000000_later", "CREATE TABLE u (id int);\n"),
            ],
        );
        let run = verify_local(&[path(dir.path()), "--prisma-version", version]);
        let f = the_finding(&run, "unterminated-transaction", "20240102000000_open", 2);
        assert!(message(&f).contains("20240103000000_later"), "{f}");
        assert_eq!(
            statuses(&run),
            ["applied", "failed", "skipped"],
            "{version}"
        );
    }
}

#[test]
fn committed_transactions_and_plpgsql_begin_stay_quiet() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(
        dir.path(),
        &[
            (
                "20240101000000_explicit",
                "BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\n",
            ),
            (
                "20240102000000_do",
                "DO $$ BEGIN PERFORM 1; END $$;\nSTART TRANSACTION;\nCREATE TABLE u (id int);\nEND;\n",
            ),
        ],
    );
    let run = verify_local(&[path(dir.path())]);
    assert_eq!(run.code, 0, "{}", show(&run));
    assert_eq!(statuses(&run), ["applied", "applied"]);
}

#[test]
fn migration_that_terminates_its_own_session_is_a_finding_not_a_crash() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(
        dir.path(),
        &[
            ("20240101000000_init", "CREATE TABLE t (id int);\n"),
            (
                "20240102000000_kill",
                "SELECT 1;\nSELECT pg_terminate_backend(pg_backend_pid());\n",
            ),
            ("20240103000000_later", "CREATE TABLE u (id int);\n"),
        ],
    );
    let run = verify_local(&[path(dir.path())]);
    let f = the_finding(&run, "migration-fails", "20240102000000_kill", 2);
    let msg = message(&f);
    assert!(
        msg.contains("ended its own database session") && msg.contains("still up"),
        "{f}"
    );
    assert_eq!(statuses(&run), ["applied", "failed", "skipped"]);
}

#[test]
fn migration_that_drops_the_history_table_is_a_finding() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(
        dir.path(),
        &[
            ("20240101000000_init", "CREATE TABLE t (id int);\n"),
            (
                "20240102000000_drop",
                "CREATE TABLE v (id int);\nDROP TABLE \"_prisma_migrations\";\n",
            ),
        ],
    );
    let run = verify_local(&[path(dir.path())]);
    let f = the_finding(&run, "migration-fails", "20240102000000_drop", 2);
    assert!(message(&f).contains("_prisma_migrations"), "{f}");
    assert!(!f.to_string().contains(" at line "), "{f}");
}

#[test]
fn nul_byte_is_a_finding_at_its_line_not_a_protocol_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(
        dir.path(),
        &[(
            "20240101000000_nul",
            "CREATE TABLE t (id int);\nSELECT 'a\0b';\n",
        )],
    );
    let run = verify_local(&[path(dir.path())]);
    assert_eq!(run.code, 1, "{}", show(&run));
    let f = run.finding("migration-fails");
    assert_eq!(
        (f["line"].clone(), f["column"].clone()),
        (2.into(), 10.into())
    );
    let msg = f["message"].as_str().unwrap_or("");
    assert!(msg.contains("NUL byte") && msg.contains("line 2"), "{f}");
    assert!(
        !run.stdout.contains("invalid message format"),
        "{}",
        show(&run)
    );
}

#[test]
fn statement_timeout_zero_means_no_limit() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(
        dir.path(),
        &[(
            "20240101000000_timeout",
            "SELECT pg_sleep(0.05);\nDO $$ BEGIN\n  IF current_setting('statement_timeout') <> '0' THEN\n    RAISE EXCEPTION 'statement_timeout is %', current_setting('statement_timeout');\n  END IF;\nEND $$;\n",
        )],
    );
    std::fs::write(dir.path().join(".ci-gate.yml"), "statement-timeout: 0\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let run = verify_local(&[path(dir.path())]);
    assert_eq!(run.code, 0, "{}", show(&run));
    assert!(run.notes().contains("no time limit"), "{}", run.notes());
}

/// `verify` on `project`, killed (and failed) if it runs longer than a minute: what used to hang
/// must now end on its own.
fn verify_bounded(project: &Path) -> common::Run {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut child = ci_gate(tmp.path())
        .args(["verify", path(project), "--provider", "local"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > Duration::from_secs(60) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ci-gate did not finish within a minute");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("wait: {e}"),
        }
    }
    let run = finish(child.wait_with_output().unwrap_or_else(|e| panic!("{e}")));
    assert_no_leftovers(tmp.path(), &run);
    run
}

fn assert_bad_input(run: &common::Run, needles: &[&str]) {
    assert_eq!(run.code, 2, "{}", show(run));
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    for n in needles {
        assert!(run.stderr.contains(n), "missing {n:?}:\n{}", run.stderr);
    }
}

#[test]
fn fifo_as_migration_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(dir.path(), &[("20240101000000_init", "SELECT 1;\n")]);
    let m = dir.path().join("prisma/migrations/20240102000000_fifo");
    std::fs::create_dir_all(&m).unwrap_or_else(|e| panic!("{e}"));
    nix::unistd::mkfifo(
        &m.join("migration.sql"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap_or_else(|e| panic!("mkfifo: {e}"));
    let run = verify_bounded(dir.path());
    assert_bad_input(
        &run,
        &["20240102000000_fifo/migration.sql", "FIFO", "regular file"],
    );
}

#[test]
fn symlink_to_a_device_is_bad_input() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(dir.path(), &[("20240101000000_init", "SELECT 1;\n")]);
    let m = dir.path().join("prisma/migrations/20240102000000_zero");
    std::fs::create_dir_all(&m).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink("/dev/zero", m.join("migration.sql"))
        .unwrap_or_else(|e| panic!("{e}"));
    let run = verify_bounded(dir.path());
    assert_bad_input(
        &run,
        &["20240102000000_zero/migration.sql", "character device"],
    );
}

#[test]
fn migration_over_256_mib_is_bad_input() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(dir.path(), &[("20240101000000_init", "SELECT 1;\n")]);
    let m = dir.path().join("prisma/migrations/20240102000000_huge");
    std::fs::create_dir_all(&m).unwrap_or_else(|e| panic!("{e}"));
    // Sparse: no disk used.
    let f = std::fs::File::create(m.join("migration.sql")).unwrap_or_else(|e| panic!("{e}"));
    f.set_len(256 * 1024 * 1024 + 1)
        .unwrap_or_else(|e| panic!("{e}"));
    let run = verify_bounded(dir.path());
    assert_bad_input(
        &run,
        &["20240102000000_huge/migration.sql", "256 MiB", "hint:"],
    );
}

/// sqlx's `Display` of a server error ends in "at line N", a line of PostgreSQL's C source: what
/// ci-gate prints for a bookkeeping failure gives the SQLSTATE instead.
#[tokio::test]
async fn run_errors_do_not_show_a_line_of_postgres_source() {
    let cluster = ci_gate::provision::local::start(&common::local_request("robust-line"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut conn = ci_gate::provision::connect_quiet(&cluster.admin_options())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let source = sqlx::raw_sql("SELECT * FROM no_such_table")
        .execute(&mut conn)
        .await
        .err()
        .unwrap_or_else(|| panic!("the query should fail"));
    assert!(source.to_string().contains(" at line "), "{source}");
    let e = ci_gate::run::apply::RunError {
        what: "could not record the applied step".into(),
        source,
    };
    let shown = e.to_string();
    let _ = cluster.stop();
    assert!(!shown.contains(" at line "), "{shown}");
    assert!(
        shown.contains("no_such_table") && shown.contains("SQLSTATE 42P01"),
        "{shown}"
    );
}

/// A server that goes down under a migration is still an environment fault (exit 3), told apart
/// from a migration ending only its own session by reconnecting.
#[tokio::test]
async fn server_going_down_under_a_migration_is_an_environment_error() {
    use ci_gate::run::build::BuildError;
    let server = ci_gate::provision::provision(&common::local_request("robust-crash"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let opts = common::whole_file();
    let builder = common::admin_builder(&server, &opts);
    let db = builder
        .create("crash", None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // As the superuser (no owner role): an immediate shutdown of the whole server (SIGQUIT to
    // the postmaster), which ends every session with the same 57P01 a self-termination gives.
    // The sleep keeps the migration running until the shutdown reaches it, however loaded the
    // machine (without it, a slow signal let the migration finish first).
    let stop = common::migration(
        "20240101000000_stop",
        "DO $$ BEGIN EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', \
         'kill -QUIT $(head -1 ' || current_setting('data_directory') || '/postmaster.pid)'); \
         PERFORM pg_sleep(30); END $$;\n",
    );
    let result = builder.apply(&db, &[&stop]).await;
    drop(builder);
    server.shutdown().await;
    match result {
        Err(e @ BuildError::ServerLost { .. }) => {
            let user = ci_gate::error::UserError::from(e);
            assert_eq!(user.exit_code(), 3, "{user}");
            assert!(user.to_string().contains("20240101000000_stop"), "{user}");
        }
        Err(e) => panic!("expected ServerLost, got {e}"),
        Ok(out) => panic!("expected ServerLost, got {out:?}"),
    }
}
