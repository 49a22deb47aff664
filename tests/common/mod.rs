//! Helpers shared by the integration tests: run the real binary, parse its JSON report.
#![allow(dead_code)]

pub mod docker;
pub mod history;
pub mod production;
pub mod repo;
pub mod shared;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// What a run of `ci-gate` produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub json: Option<serde_json::Value>,
}

impl Run {
    /// Findings of the JSON report (empty when there is none).
    pub fn findings(&self) -> Vec<serde_json::Value> {
        self.json
            .as_ref()
            .and_then(|j| j["findings"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Rule ids of the findings that gate (errors and warnings; notices inform), sorted.
    pub fn rules(&self) -> Vec<String> {
        let mut r: Vec<String> = self
            .findings()
            .iter()
            .filter(|f| f["severity"] != "notice")
            .filter_map(|f| f["rule"].as_str().map(str::to_owned))
            .collect();
        r.sort();
        r
    }

    /// The report's notes, as one JSON text (empty without a report).
    pub fn notes(&self) -> String {
        self.json
            .as_ref()
            .map(|j| j["notes"].to_string())
            .unwrap_or_default()
    }

    pub fn finding(&self, rule: &str) -> serde_json::Value {
        self.findings()
            .into_iter()
            .find(|f| f["rule"] == rule)
            .unwrap_or_else(|| panic!("no {rule} finding in:\n{}\n{}", self.stdout, self.stderr))
    }
}

/// The ci-gate command, with a private TMPDIR so tests can check nothing is left behind.
pub fn ci_gate(tmp: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ci-gate"));
    cmd.env("TMPDIR", tmp)
        .env("NO_COLOR", "1")
        .env_remove("CI_GATE_DATABASE_URL");
    cmd
}

/// A finished process as a [`Run`] (the JSON report parsed from stdout when there is one).
pub fn finish(out: Output) -> Run {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout).ok();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout,
        stderr,
        json,
    }
}

/// `ci-gate verify <args> --provider local --json -`, asserting the private TMPDIR is empty after.
///
/// A project inside this repository (a fixture, an example) is first copied to a temp dir outside
/// any git repository, so the run is from scratch whatever the checkout's remotes say (CI clones
/// have an `origin/main`, which would otherwise become the base). Paths in the report are then
/// relative to the project.
pub fn verify_local(args: &[&str]) -> Run {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let copy = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if let Some(first) = args.first_mut() {
        let p = PathBuf::from(&*first);
        if p.starts_with(root()) && p.is_dir() {
            let name = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
            let target = copy.path().join(name);
            copy_dir(&p, &target);
            *first = target.to_string_lossy().into_owned();
        }
    }
    let out = ci_gate(tmp.path())
        .arg("verify")
        .args(&args)
        .args(["--provider", "local", "--json", "-"])
        .output()
        .unwrap_or_else(|e| panic!("run ci-gate: {e}"));
    let run = finish(out);
    assert_no_leftovers(tmp.path(), &run);
    run
}

/// `ci-gate <args>` as given.
pub fn ci_gate_raw(args: &[&str]) -> Run {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = ci_gate(tmp.path())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run ci-gate: {e}"));
    finish(out)
}

/// Nothing ci-gate made is left in `tmp` (the cluster's directory and socket).
pub fn assert_no_leftovers(tmp: &Path, run: &Run) {
    let left: Vec<_> = std::fs::read_dir(tmp)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "left behind: {left:?}\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
}

/// Copy a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    for entry in std::fs::read_dir(from)
        .unwrap_or_else(|e| panic!("read {}: {e}", from.display()))
        .flatten()
    {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|e| panic!("copy: {e}"));
        }
    }
}

/// Write a Prisma project with the given (name, sql) migrations into `dir`.
pub fn write_project(dir: &Path, migrations: &[(&str, &str)]) -> PathBuf {
    let m = dir.join("prisma/migrations");
    std::fs::create_dir_all(&m).unwrap_or_else(|e| panic!("mkdir: {e}"));
    std::fs::write(
        m.join("migration_lock.toml"),
        "# Please do not edit this file manually\n# It should be added in your version-control system (e.g., Git)\nprovider = \"postgresql\"\n",
    )
    .unwrap_or_else(|e| panic!("write: {e}"));
    for (name, sql) in migrations {
        std::fs::create_dir_all(m.join(name)).unwrap_or_else(|e| panic!("mkdir: {e}"));
        std::fs::write(m.join(name).join("migration.sql"), sql)
            .unwrap_or_else(|e| panic!("write: {e}"));
    }
    dir.to_path_buf()
}

/// A Prisma migration held in memory, with its checksum as discovery computes it.
pub fn migration(name: &str, sql: &str) -> ci_gate::discover::Migration {
    use sha2::{Digest, Sha256};
    ci_gate::discover::Migration {
        name: name.into(),
        path: format!("prisma/migrations/{name}/migration.sql"),
        bytes: sql.as_bytes().to_vec(),
        text: sql.into(),
        checksum: format!("{:x}", Sha256::digest(sql.as_bytes())),
    }
}

/// Prisma's whole-file semantics and a minute's statement timeout, for tests that drive
/// [`ci_gate::run::build::Builder`] themselves.
pub fn whole_file() -> ci_gate::run::prisma::ApplyOptions {
    ci_gate::run::prisma::ApplyOptions {
        semantics: ci_gate::run::prisma::Semantics::WholeFile,
        statement_timeout: std::time::Duration::from_secs(60),
        lock_timeout: None,
    }
}

/// A builder on `server` as its admin user: no owner role, no extensions.
pub fn admin_builder<'a>(
    server: &'a ci_gate::provision::Server,
    opts: &'a ci_gate::run::prisma::ApplyOptions,
) -> ci_gate::run::build::Builder<'a> {
    ci_gate::run::build::Builder {
        server,
        owner: None,
        extensions: &[],
        superuser_extensions: &[],
        opts,
    }
}

/// A request for a throwaway cluster from this machine's server binaries.
pub fn local_request(run_id: &str) -> ci_gate::provision::ProvisionRequest {
    ci_gate::provision::ProvisionRequest {
        provider: ci_gate::provision::ProviderChoice::Local,
        database_url: None,
        pg_version: None,
        image: None,
        pg_bin: None,
        run_id: run_id.into(),
    }
}

/// The URL of a throwaway local cluster, as a user would pass it to `--database-url`.
pub fn cluster_url(cluster: &ci_gate::provision::local::LocalCluster) -> String {
    format!(
        "postgres://postgres@localhost/postgres?host={}&port={}",
        cluster.socket_dir().display(),
        cluster.port()
    )
}
