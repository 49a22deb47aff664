//! Issue 13: nothing a pull request contains escapes the sandbox, no secret is printed, and no
//! output channel (a closed pipe, a missing directory) crashes ci-gate or changes its verdict.

mod common;

use std::io::Read as _;
use std::path::Path;
use std::process::Stdio;

use common::repo::{Repo, git, verify};
use common::{ci_gate, ci_gate_raw};

const TOKEN: &str = "ghp_SENTINELtoken0123456789";
const PGPASS: &str = "SENTINELpgpassword42";
const URLPASS: &str = "SENTINELquerypassword7";
const ENVURLPASS: &str = "SENTINELenvurlpassword9";

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap_or_default();
    }
    std::fs::write(p, text).unwrap_or_else(|e| panic!("{e}"));
}

/// `ci-gate verify REPO --base main --provider local`, with a fake GitHub token in the
/// environment (every output is checked for it).
fn verify_cmd(tmp: &Path, repo: &Path) -> std::process::Command {
    let mut cmd = ci_gate(tmp);
    cmd.env("GITHUB_TOKEN", TOKEN)
        .arg("verify")
        .arg(repo)
        .args(["--base", "main", "--provider", "local"]);
    cmd
}

fn assert_no_sentinel(what: &str, text: &str) {
    for s in [TOKEN, PGPASS, URLPASS, ENVURLPASS, "SENTINEL"] {
        assert!(!text.contains(s), "{what} prints a secret ({s}):\n{text}");
    }
}

#[test]
fn the_pull_requests_own_config_cannot_make_migrations_run_as_superuser() {
    let r = Repo::with_base();
    let marker = r.path().join("pwned");
    write(r.path(), ".ci-gate.yml", "superuser: true\n");
    r.write(
        "20240301000000_evil",
        &format!("COPY (SELECT 1) TO PROGRAM 'touch {}';\n", marker.display()),
    )
    .commit("pr");
    let run = verify(r.path(), &["--base", "main"]);
    assert!(!marker.exists(), "a program ran on the host");
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.finding("migration-fails")["migration"],
        "20240301000000_evil"
    );
    let notes = run.notes();
    assert!(
        notes.contains("privileged keys, ignored") && notes.contains("superuser"),
        "{notes}"
    );
    assert!(
        !notes.contains("migrations ran as the superuser"),
        "{notes}"
    );
}

#[test]
fn the_base_branchs_config_still_grants_what_it_grants() {
    let r = Repo::new();
    r.write("20240101000000_init", common::repo::INIT);
    write(r.path(), ".ci-gate.yml", "superuser: true\n");
    r.commit("base").branch("pr");
    r.write(
        "20240301000000_more",
        "ALTER TABLE \"User\" ADD COLUMN \"n\" INTEGER;\n",
    )
    .commit("pr");
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.notes().contains("migrations ran as the superuser"),
        "{}",
        run.notes()
    );
}

#[test]
fn a_seed_outside_the_repository_is_bad_input_and_prints_nothing_of_it() {
    for seed in ["/proc/self/environ", "link-to-environ.sql"] {
        let r = Repo::with_base();
        let _ =
            std::os::unix::fs::symlink("/proc/self/environ", r.path().join("link-to-environ.sql"));
        write(r.path(), ".ci-gate.yml", &format!("seed: {seed}\n"));
        r.write("20240301000000_x", "SELECT 1;\n").commit("pr");
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let out = verify_cmd(tmp.path(), r.path())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{seed}: {stderr}");
        assert!(
            stderr.contains("`seed:`") && stderr.contains("outside the repository"),
            "{stderr}"
        );
        assert_no_sentinel("a refused seed", &stderr);
    }
}

#[test]
fn no_output_prints_a_secret() {
    let r = Repo::with_base();
    r.write(
        "20240301000000_x",
        "ALTER TABLE \"User\" ADD COLUMN \"bio\" TEXT;\n",
    )
    .commit("pr");
    let out_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (json, md, sarif) = (
        out_dir.path().join("r.json"),
        out_dir.path().join("r.md"),
        out_dir.path().join("r.sarif"),
    );
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = ci_gate(tmp.path())
        .env("GITHUB_TOKEN", TOKEN)
        .env("PGPASSWORD", PGPASS)
        .args([
            "verify",
            &r.path().to_string_lossy(),
            "--base",
            "main",
            "--provider",
            "local",
        ])
        .args(["--comment", "never", "--json"])
        .arg(&json)
        .arg("--markdown")
        .arg(&md)
        .arg("--sarif")
        .arg(&sarif)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_sentinel("stdout", &String::from_utf8_lossy(&out.stdout));
    assert_no_sentinel("stderr", &String::from_utf8_lossy(&out.stderr));
    for f in [&json, &md, &sarif] {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!text.is_empty());
        assert_no_sentinel(&f.display().to_string(), &text);
    }

    // A live URL with the password in its query, unreachable: the error names it, redacted.
    let live = format!("postgres://app@127.0.0.1:9/prod?sslmode=disable&password={URLPASS}");
    let run = {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let out = verify_cmd(tmp.path(), r.path())
            .args(["--comment", "never", "--live-url", &live])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        common::finish(out)
    };
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("password=***"), "{}", run.stderr);
    assert_no_sentinel("a live-url error", &(run.stdout.clone() + &run.stderr));

    // --help shows where --database-url comes from, never its value.
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let help = ci_gate(tmp.path())
        .env(
            "CI_GATE_DATABASE_URL",
            format!("postgres://u:{ENVURLPASS}@h/d"),
        )
        .args(["verify", "--help"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("CI_GATE_DATABASE_URL"), "{help}");
    assert_no_sentinel("verify --help", &help);
}

/// Run ci-gate with stdout closed before it writes anything; return (exit code, stderr).
fn with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut child = ci_gate(tmp.path())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    drop(child.stdout.take());
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    (status.code(), stderr)
}

#[test]
fn a_closed_stdout_is_not_a_crash() {
    let (code, stderr) = with_closed_stdout(&["rules"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The JSON report to a closed pipe: the SARIF file is still written, the verdict kept.
    let r = Repo::with_base();
    r.write(
        "20240301000000_x",
        "ALTER TABLE \"User\" DROP COLUMN \"email\";\n",
    )
    .commit("pr");
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let sarif = out.path().join("r.sarif");
    let (code, stderr) = with_closed_stdout(&[
        "verify",
        &r.path().to_string_lossy(),
        "--base",
        "main",
        "--provider",
        "local",
        "--comment",
        "never",
        "--json",
        "-",
        "--sarif",
        &sarif.to_string_lossy(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let text = std::fs::read_to_string(&sarif).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.contains("drops-column"), "{text}");
}

#[test]
fn every_output_path_behaves_the_same() {
    // Missing parent directories are created, for each of the three.
    let r = Repo::with_base();
    r.write("20240301000000_x", "SELECT 1;\n").commit("pr");
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let paths: Vec<_> = ["a/r.json", "b/c/r.sarif", "d/r.md"]
        .iter()
        .map(|p| out.path().join(p))
        .collect();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = common::finish(
        ci_gate(tmp.path())
            .args([
                "verify",
                &r.path().to_string_lossy(),
                "--base",
                "main",
                "--provider",
                "local",
            ])
            .args(["--comment", "never", "--json"])
            .arg(&paths[0])
            .arg("--sarif")
            .arg(&paths[1])
            .arg("--markdown")
            .arg(&paths[2])
            .output()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    for p in &paths {
        assert!(p.is_file(), "{} not written", p.display());
    }
    // An unwritable path is bad input, before any work (no server is started).
    let blocker = out.path().join("file");
    std::fs::write(&blocker, "x").unwrap_or_default();
    for flag in ["--json", "--sarif", "--markdown"] {
        let target = blocker.join("r.out");
        let run = ci_gate_raw(&[
            "verify",
            &r.path().to_string_lossy(),
            "--provider",
            "local",
            flag,
            &target.to_string_lossy(),
        ]);
        assert_eq!(run.code, 2, "{flag}: {}", run.stderr);
        assert!(
            run.stderr.contains(flag) && run.stderr.contains("hint:"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_statement_timeout_postgres_would_refuse_is_bad_input() {
    let r = Repo::with_base();
    write(
        r.path(),
        ".ci-gate.yml",
        "statement-timeout: 18446744073709551615\n",
    );
    r.commit("pr");
    let run = ci_gate_raw(&["verify", &r.path().to_string_lossy(), "--provider", "local"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("statement-timeout") && !run.stderr.contains("panicked"),
        "{}",
        run.stderr
    );
    let _ = git(r.path(), &["status"]);
}

#[test]
fn a_pull_request_that_loosens_the_gate_says_so_in_the_report() {
    let r = Repo::with_base();
    write(
        r.path(),
        ".ci-gate.yml",
        "rules:\n  drops-column: off\n  rewrites-table: error\nfail-on: never\n",
    );
    r.write(
        "20240301000000_x",
        "ALTER TABLE \"User\" DROP COLUMN \"email\";\n",
    )
    .commit("pr");
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(
        run.code, 0,
        "the run uses the checkout's settings: {}",
        run.stderr
    );
    let notes = run.notes();
    assert!(notes.contains("weakens the gate"), "{notes}");
    assert!(notes.contains("drops-column: error → off"), "{notes}");
    assert!(notes.contains("fail-on: error → never"), "{notes}");
    assert!(
        !notes.contains("rewrites-table"),
        "raising a rule is not weakening: {notes}"
    );
}

#[test]
fn the_seed_sql_runs_as_the_migration_owner_not_the_superuser() {
    let r = Repo::with_base();
    let marker = r.path().join("pwned-by-seed");
    write(r.path(), ".ci-gate.yml", "seed: prisma/ci-seed.sql\n");
    write(
        r.path(),
        "prisma/ci-seed.sql",
        &format!("COPY (SELECT 1) TO PROGRAM 'touch {}';\n", marker.display()),
    );
    r.write(
        "20240301000000_x",
        "ALTER TABLE \"User\" ADD COLUMN \"bio\" TEXT;\n",
    )
    .commit("pr");
    let run = verify(r.path(), &["--base", "main"]);
    assert!(!marker.exists(), "the seed ran a program on the host");
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("ci-seed.sql") && run.stderr.contains("seed"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_extension_only_the_pull_request_lists_is_created_by_the_owner() {
    // file_fdw reads server files: only a superuser may create it.
    let r = Repo::with_base();
    write(r.path(), ".ci-gate.yml", "extensions: [file_fdw]\n");
    r.write("20240301000000_x", "SELECT 1;\n").commit("pr");
    let run = verify(r.path(), &["--base", "main"]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(run.stderr.contains("file_fdw"), "{}", run.stderr);
    assert!(
        run.notes().is_empty() || !run.notes().contains("file_fdw created"),
        "{}",
        run.notes()
    );

    // The same extension listed by the base branch's config: the superuser creates it.
    let r = Repo::new();
    r.write("20240101000000_init", common::repo::INIT);
    write(r.path(), ".ci-gate.yml", "extensions: [file_fdw]\n");
    r.commit("base").branch("pr");
    r.write("20240301000000_x", "SELECT 1;\n").commit("pr");
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

#[test]
fn a_config_extension_a_migration_drops_applies_as_it_would_in_production() {
    // Issue 12: created by the superuser, a later DROP EXTENSION failed with "must be owner".
    let r = Repo::new();
    r.write("20240101000000_init", common::repo::INIT);
    write(r.path(), ".ci-gate.yml", "extensions: [citext]\n");
    r.commit("base").branch("pr");
    r.write("20240301000000_drop_citext", "DROP EXTENSION \"citext\";\n")
        .commit("pr");
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

#[test]
fn a_malformed_image_is_bad_input_an_absent_one_is_the_environment() {
    let r = Repo::with_base();
    r.write("20240301000000_x", "SELECT 1;\n").commit("pr");
    let dir = r.path().to_string_lossy().into_owned();
    let run = ci_gate_raw(&[
        "verify",
        &dir,
        "--provider",
        "docker",
        "--image",
        "Postgres:16 latest",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("not a valid Docker image reference") && run.stderr.contains("hint:"),
        "{}",
        run.stderr
    );
    // Well-formed but not present (no registry here, or no engine): exit 3, not 2.
    let run = ci_gate_raw(&[
        "verify",
        &dir,
        "--provider",
        "docker",
        "--image",
        "ci-gate-test/absent:0",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
}

/// A tmpfs of `size` mounted on a new dir, unmounted on drop; `None` when this machine does not
/// let the test mount (not root, no CAP_SYS_ADMIN).
struct SmallFs(tempfile::TempDir);

impl SmallFs {
    fn mount(size: &str) -> Option<SmallFs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallFs(dir))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

/// System V shared-memory segments nobody is attached to whose creator is gone: what a server
/// killed without cleanup leaves (other tests' live servers, running in parallel, do not count).
fn orphaned_shared_memory() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/sysvipc/shm").unwrap_or_default();
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(id), Some(cpid), Some(nattch)) = (col("shmid"), col("cpid"), col("nattch")) else {
        return Vec::new();
    };
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let gone = !Path::new(&format!("/proc/{}", f.get(cpid)?)).exists();
            (gone && *f.get(nattch)? == "0").then(|| f.get(id).map(|s| s.to_string()))?
        })
        .collect()
}

#[test]
fn a_full_disk_is_named_as_such_and_leaves_nothing() {
    let Some(fs) = SmallFs::mount("3m") else {
        eprintln!(
            "SKIP: cannot mount a small tmpfs here (needs root); the full-disk case is untested"
        );
        return;
    };
    let project = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    common::write_project(project.path(), &[("20240101000000_init", "SELECT 1;\n")]);
    let before = orphaned_shared_memory();
    let out = ci_gate(fs.0.path())
        .args([
            "verify",
            &project.path().to_string_lossy(),
            "--provider",
            "local",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("is full"), "{stderr}");
    assert!(
        !stderr.contains("world-accessible"),
        "blames permissions: {stderr}"
    );
    let new: Vec<String> = orphaned_shared_memory()
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    assert!(new.is_empty(), "shared memory left behind: {new:?}");
    let left: Vec<_> = std::fs::read_dir(fs.0.path())
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

#[test]
fn deeply_nested_sql_does_not_overflow_the_stack() {
    // Found while fuzzing (issue 13): squawk's parser recursed once per level and a pull request
    // with thousands of nested NOTs or parentheses aborted ci-gate (no cleanup, no report).
    let r = Repo::with_base();
    let nots = format!("SELECT {}true;\n", "NOT ".repeat(30_000));
    let parens = format!("SELECT {}1{};\n", "(".repeat(5_000), ")".repeat(5_000));
    r.write("20240301000000_nots", &nots)
        .write("20240302000000_parens", &parens)
        .commit("pr");
    for version in ["6.19.0", "7.4.0"] {
        let run = verify(r.path(), &["--base", "main", "--prisma-version", version]);
        assert!(
            matches!(run.code, 0 | 1),
            "{version}: exit {}\n{}",
            run.code,
            run.stderr
        );
        assert!(run.json.is_some(), "{version}: no report\n{}", run.stderr);
        assert!(
            run.notes().contains("not linted, nested more than"),
            "{}",
            run.notes()
        );
    }
}
