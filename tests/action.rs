//! The GitHub Action (`action.yml` + `action/run.sh`), the Dockerfile and the example workflows:
//! their structure, parsed with serde_yaml, and the install-and-run script exercised in a faked
//! runner environment (temp RUNNER_TEMP, GITHUB_OUTPUT, GITHUB_PATH): with a fake ci-gate on PATH,
//! and with the real binary. Downloading a release: tests/action_release.rs.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_yaml::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn st<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what}: not a string: {v:?}"))
}

const INPUTS: [&str; 10] = [
    "version",
    "working-directory",
    "migrations",
    "base",
    "postgres-version",
    "fail-on",
    "comment",
    "github-token",
    "cache",
    "args",
];

fn env_name(input: &str) -> String {
    format!("INPUT_{}", input.to_uppercase().replace('-', "_"))
}

#[test]
fn action_yml_declares_inputs_outputs_and_passes_inputs_only_through_env() {
    let a = yaml("action.yml");
    assert!(!st(&a["name"], "name").is_empty());
    assert!(!st(&a["description"], "description").is_empty());
    assert_eq!(a["runs"]["using"], "composite");

    let inputs = a["inputs"].as_mapping().unwrap_or_else(|| panic!("inputs"));
    let names: Vec<&str> = inputs.keys().map(|k| st(k, "input name")).collect();
    assert_eq!(names, INPUTS);
    for (k, v) in inputs {
        let k = st(k, "input");
        assert!(
            !st(&v["description"], k).is_empty(),
            "{k} has a description"
        );
        assert!(v.get("default").is_some(), "{k} has a default");
    }
    assert_eq!(
        a["inputs"]["github-token"]["default"],
        "${{ github.token }}"
    );
    assert_eq!(a["inputs"]["comment"]["default"], "auto");

    let steps = a["runs"]["steps"]
        .as_sequence()
        .unwrap_or_else(|| panic!("steps"));
    let ids: Vec<&str> = steps.iter().filter_map(|s| s["id"].as_str()).collect();
    let outputs = a["outputs"]
        .as_mapping()
        .unwrap_or_else(|| panic!("outputs"));
    let out_names: Vec<&str> = outputs.keys().map(|k| st(k, "output")).collect();
    assert_eq!(out_names, ["verdict", "errors", "warnings", "report"]);
    // The base cache: restored before verify, saved after it under the key run.sh computed,
    // both driven by step outputs (never by inputs directly).
    // Pinned by SHA (tests/workflows.rs checks the tag comments); the Rust toolchain only for
    // `version: source`.
    const CACHE: &str = "27d5ce7f107fe9357f9df03efb73ab90386fccae";
    const RUST: &str = "dtolnay/rust-toolchain@e081816240890017053eacbb1bdf337761dc5582";
    let used: Vec<&str> = steps.iter().filter_map(|s| s["uses"].as_str()).collect();
    assert_eq!(
        used,
        [
            format!("actions/cache/restore@{CACHE}").as_str(),
            RUST,
            format!("actions/cache/save@{CACHE}").as_str()
        ]
    );
    let rust = steps
        .iter()
        .find(|s| s["uses"] == RUST)
        .unwrap_or_else(|| panic!("toolchain step"));
    assert_eq!(rust["if"], "inputs.version == 'source'");
    let save = steps
        .iter()
        .find(|s| s["uses"] == format!("actions/cache/save@{CACHE}").as_str())
        .unwrap_or_else(|| panic!("save step"));
    assert_eq!(save["with"]["key"], "${{ steps.verify.outputs.cache-key }}");
    assert!(st(&save["if"], "save if").contains("always()"));
    assert_eq!(a["inputs"]["cache"]["default"], "true");
    for (k, v) in outputs {
        let k = st(k, "output");
        let value = st(&v["value"], k);
        let id = ids
            .iter()
            .find(|id| value == format!("${{{{ steps.{id}.outputs.{k} }}}}"))
            .unwrap_or_else(|| panic!("output {k} = {value} names no step output"));
        assert!(!id.is_empty());
        assert!(!st(&v["description"], k).is_empty());
    }

    let mut passed: BTreeMap<String, String> = BTreeMap::new();
    for step in steps {
        if let Some(run) = step.get("run") {
            let run = st(run, "run");
            assert!(!run.contains("${{"), "no expression inside run: {run}");
            assert_eq!(step["shell"], "bash", "explicit shell");
            assert!(
                run.contains("$GITHUB_ACTION_PATH"),
                "runs the action's own script via $GITHUB_ACTION_PATH: {run}"
            );
        }
        if let Some(env) = step.get("env").and_then(Value::as_mapping) {
            for (k, v) in env {
                passed.insert(st(k, "env").to_string(), st(v, "env value").to_string());
            }
        }
    }
    for input in INPUTS {
        assert_eq!(
            passed.get(&env_name(input)).map(String::as_str),
            Some(format!("${{{{ inputs.{input} }}}}").as_str()),
            "{input} goes through env as {}",
            env_name(input)
        );
    }
    // Nothing else anywhere in the steps refers to inputs (no `${{ inputs.* }}` outside `env:`).
    for step in steps {
        let mut s = step.clone();
        if let Some(m) = s.as_mapping_mut() {
            m.remove("env");
            // A condition is evaluated by the runner, never by a shell.
            if m.get("if").and_then(Value::as_str) == Some("inputs.version == 'source'") {
                m.remove("if");
            }
        }
        let text = serde_yaml::to_string(&s).unwrap_or_default();
        assert!(!text.contains("inputs."), "{text}");
    }
}

#[test]
fn action_script_is_valid_bash_and_executable() {
    let script = root().join("action/run.sh");
    let out = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&script)
        .unwrap_or_else(|e| panic!("{e}"))
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0, "action/run.sh is executable");
    // shellcheck where installed.
    if let Ok(out) = Command::new("shellcheck")
        .arg("-S")
        .arg("warning")
        .arg(&script)
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// A faked runner: RUNNER_TEMP, GITHUB_OUTPUT, GITHUB_PATH, a working directory, a bin dir that
/// is first on PATH.
struct Runner {
    dir: tempfile::TempDir,
}

impl Runner {
    fn new() -> Runner {
        let r = Runner {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
        };
        for d in ["temp", "work", "bin"] {
            std::fs::create_dir_all(r.dir.path().join(d)).unwrap_or_else(|e| panic!("{e}"));
        }
        r
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A fake ci-gate: records its arguments, cwd and token, writes a JSON report to the path
    /// after --json, exits with `code`.
    fn fake_ci_gate(&self, json: &str, code: i32) {
        let script = format!(
            "#!/usr/bin/env bash\n\
             printf '%s\\n' \"$@\" > '{args}'\n\
             pwd > '{cwd}'\n\
             printf '%s' \"${{GITHUB_TOKEN:-}}\" > '{token}'\n\
             while [ $# -gt 0 ]; do if [ \"$1\" = --json ]; then shift; printf '%s' '{json}' > \"$1\"; fi; shift; done\n\
             exit {code}\n",
            args = self.p("args.txt").display(),
            cwd = self.p("cwd.txt").display(),
            token = self.p("token.txt").display(),
        );
        let bin = self.p("bin/ci-gate");
        std::fs::write(&bin, script).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn run(&self, inputs: &[(&str, &str)], extra_env: &[(&str, &str)]) -> Output {
        let path = format!(
            "{}:{}",
            self.p("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("bash");
        cmd.arg(root().join("action/run.sh"))
            .current_dir(self.p("work"))
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.dir.path())
            .env("RUNNER_TEMP", self.p("temp"))
            .env("GITHUB_OUTPUT", self.p("output.txt"))
            .env("GITHUB_PATH", self.p("path.txt"))
            .env("GITHUB_ACTION_PATH", root())
            .env("GITHUB_WORKSPACE", self.p("work"))
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64");
        for input in INPUTS {
            cmd.env(env_name(input), "");
        }
        cmd.env("INPUT_COMMENT", "auto");
        for (k, v) in inputs {
            cmd.env(env_name(k), v);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.output().unwrap_or_else(|e| panic!("{e}"))
    }

    fn outputs(&self) -> BTreeMap<String, String> {
        std::fs::read_to_string(self.p("output.txt"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.p(rel)).unwrap_or_default()
    }
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const FAIL_JSON: &str = r#"{"schema_version":1,"verdict":"fail","counts":{"errors":2,"warnings":1,"notices":0,"allowed":0}}"#;

#[test]
fn script_runs_ci_gate_with_the_inputs_and_writes_outputs() {
    for no_jq in [false, true] {
        let r = Runner::new();
        r.fake_ci_gate(FAIL_JSON, 1);
        std::fs::create_dir_all(r.p("work/app")).unwrap_or_else(|e| panic!("{e}"));
        let hostile = "db/$(touch pwned)`touch pwned2`;touch pwned3";
        let env: &[(&str, &str)] = if no_jq {
            &[("CI_GATE_NO_JQ", "1")]
        } else {
            &[]
        };
        let out = r.run(
            &[
                ("version", "path"),
                ("working-directory", "app"),
                ("migrations", hostile),
                ("base", "origin/main"),
                ("postgres-version", "16"),
                ("fail-on", "warning"),
                ("comment", "never"),
                ("github-token", "ghs_secret"),
                ("args", "--verbose  --provider local"),
            ],
            env,
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "ci-gate's exit code: {}",
            show(&out)
        );
        let args: Vec<String> = r.read("args.txt").lines().map(str::to_owned).collect();
        let report = r.p("temp/ci-gate.json").display().to_string();
        assert_eq!(
            args,
            [
                "verify",
                "--json",
                &report,
                "--migrations",
                hostile,
                "--base",
                "origin/main",
                "--pg-version",
                "16",
                "--fail-on",
                "warning",
                "--comment",
                "never",
                "--verbose",
                "--provider",
                "local"
            ]
        );
        for f in ["pwned", "pwned2", "pwned3"] {
            assert!(
                !r.p(&format!("work/app/{f}")).exists() && !r.p(&format!("work/{f}")).exists(),
                "input was evaluated"
            );
        }
        assert_eq!(
            r.read("cwd.txt").trim(),
            r.p("work/app")
                .canonicalize()
                .unwrap_or_default()
                .display()
                .to_string()
        );
        assert_eq!(r.read("token.txt"), "ghs_secret");
        let o = r.outputs();
        assert_eq!(
            o.get("verdict").map(String::as_str),
            Some("fail"),
            "{o:?} {}",
            show(&out)
        );
        assert_eq!(o.get("errors").map(String::as_str), Some("2"));
        assert_eq!(o.get("warnings").map(String::as_str), Some("1"));
        assert_eq!(o.get("report"), Some(&report));
        assert_eq!(
            r.read("path.txt"),
            "",
            "nothing installed, nothing added to PATH"
        );
    }
}

#[test]
fn script_splits_multiline_args_one_per_line() {
    let r = Runner::new();
    r.fake_ci_gate(
        r#"{"verdict":"pass","counts":{"errors":0,"warnings":0}}"#,
        0,
    );
    let out = r.run(
        &[
            ("version", "path"),
            ("args", "--image\npostgres:16 alpine\n\n--quiet\n"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let args: Vec<String> = r.read("args.txt").lines().map(str::to_owned).collect();
    assert_eq!(
        &args[3..],
        [
            "--comment",
            "auto",
            "--image",
            "postgres:16 alpine",
            "--quiet"
        ]
    );
    assert_eq!(r.outputs().get("verdict").map(String::as_str), Some("pass"));
}

#[test]
fn script_reports_error_when_ci_gate_writes_no_report() {
    let r = Runner::new();
    r.fake_ci_gate("", 3);
    std::fs::remove_file(r.p("bin/ci-gate")).unwrap_or_else(|e| panic!("{e}"));
    // A ci-gate that exits 3 without a report (no Postgres available).
    std::fs::write(
        r.p("bin/ci-gate"),
        "#!/bin/sh\necho 'error: no PostgreSQL' >&2\nexit 3\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(r.p("bin/ci-gate"), std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = r.run(&[("version", "path")], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let o = r.outputs();
    assert_eq!(o.get("verdict").map(String::as_str), Some("error"));
    assert_eq!(o.get("errors").map(String::as_str), Some(""));
    assert_eq!(o.get("report").map(String::as_str), Some(""));
}

#[test]
fn script_runs_the_real_binary() {
    let r = Runner::new();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ci-gate"), r.p("bin/ci-gate"))
        .unwrap_or_else(|e| panic!("{e}"));
    // A project with no migrations: bad input (exit 2), no report.
    std::fs::create_dir_all(r.p("work/empty")).unwrap_or_else(|e| panic!("{e}"));
    let out = r.run(
        &[
            ("version", "path"),
            ("working-directory", "empty"),
            ("migrations", "prisma/migrations"),
            ("fail-on", "error"),
            ("comment", "never"),
            ("postgres-version", "15"),
        ],
        &[("TMPDIR", r.p("temp").to_str().unwrap_or("/tmp"))],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert_eq!(
        r.outputs().get("verdict").map(String::as_str),
        Some("error")
    );

    // A real project on a real throwaway server, where the local provider can run.
    let have_pg = Command::new("sh")
        .args([
            "-c",
            "command -v initdb || ls /usr/lib/postgresql/*/bin/initdb",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_pg {
        eprintln!("skipped the real run: no PostgreSQL server binaries");
        return;
    }
    let r = Runner::new();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ci-gate"), r.p("bin/ci-gate"))
        .unwrap_or_else(|e| panic!("{e}"));
    copy_dir(&root().join("tests/fixtures/clean"), &r.p("work/clean"));
    let out = r.run(
        &[
            ("version", "path"),
            ("working-directory", "clean"),
            ("comment", "never"),
            ("args", "--provider local"),
        ],
        &[
            ("TMPDIR", r.p("temp").to_str().unwrap_or("/tmp")),
            ("NO_COLOR", "1"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let o = r.outputs();
    assert_eq!(o.get("verdict").map(String::as_str), Some("pass"), "{o:?}");
    assert_eq!(o.get("errors").map(String::as_str), Some("0"));
    let report = o.get("report").cloned().unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("{report}: {e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json["schema_version"], 1);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{e}"));
    for entry in std::fs::read_dir(from)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
    {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

// The release download path (fake GitHub and GHES release servers): tests/action_release.rs.

// ---- Dockerfile ----

#[test]
fn dockerfile_is_multi_stage_with_postgres_tini_and_ci_gate_entrypoint() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap_or_else(|e| panic!("{e}"));
    // Join continuation lines, drop comments.
    let joined = text.replace("\\\n", " ");
    let instrs: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = instrs
        .iter()
        .copied()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    // Two ways to the binary (source, release), the chosen one, the runtime.
    assert_eq!(froms.len(), 4, "{froms:?}");
    assert!(
        froms[0].starts_with("FROM rust:") && froms[0].ends_with(" AS build-source"),
        "{}",
        froms[0]
    );
    assert!(froms[1].ends_with(" AS build-release"), "{}", froms[1]);
    assert_eq!(froms[2], "FROM build-${BINARY} AS build");
    assert!(
        froms[3].starts_with("FROM debian:bookworm-slim"),
        "{}",
        froms[3]
    );
    assert!(
        instrs.contains(&"ARG BINARY=source"),
        "source is the default"
    );
    assert!(
        !text.contains("--mount"),
        "no BuildKit-only instructions: the legacy builder must build it"
    );
    let runtime_start = instrs.iter().position(|l| *l == froms[3]).unwrap_or(0);
    let (build, runtime) = instrs.split_at(runtime_start);
    assert!(
        build
            .iter()
            .any(|l| l.contains("cargo build --release --locked"))
    );
    assert!(
        build
            .iter()
            .any(|l| l.contains("/ctx/linux-${TARGETARCH}/ci-gate"))
    );
    let apt = runtime
        .iter()
        .find(|l| l.contains("apt-get install"))
        .unwrap_or_else(|| panic!("no apt-get install in the runtime stage"));
    for pkg in [
        "postgresql-${PG_MAJOR}",
        "ca-certificates",
        "tini",
        "git",
        "--no-install-recommends",
    ] {
        assert!(apt.contains(pkg), "{pkg} in {apt}");
    }
    assert!(runtime.contains(&"ARG PG_MAJOR=15"));
    assert!(apt.contains("rm -rf /var/lib/apt/lists/*"));
    assert!(
        runtime
            .iter()
            .any(|l| l.starts_with("COPY --from=build ") && l.ends_with("/usr/local/bin/ci-gate"))
    );
    assert!(
        runtime
            .iter()
            .any(|l| l.starts_with("ENV PATH=\"/usr/lib/postgresql/${PG_MAJOR}/bin:"))
    );
    let entry = runtime
        .iter()
        .find(|l| l.starts_with("ENTRYPOINT "))
        .unwrap_or_else(|| panic!("no ENTRYPOINT"));
    let argv: Vec<String> = serde_json::from_str(entry.trim_start_matches("ENTRYPOINT "))
        .unwrap_or_else(|e| panic!("ENTRYPOINT must be exec form: {e}"));
    assert_eq!(argv, ["/usr/bin/tini", "--", "/usr/local/bin/ci-gate"]);
    assert!(
        !runtime.iter().any(|l| l.starts_with("USER ")),
        "runs as root (the local provider drops privileges itself)"
    );
    let ignore =
        std::fs::read_to_string(root().join(".dockerignore")).unwrap_or_else(|e| panic!("{e}"));
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
    for needed in ["src", "Cargo.toml", "Cargo.lock"] {
        assert!(
            !ignore
                .lines()
                .any(|l| l.trim().trim_end_matches('/') == needed),
            "{needed} is needed to build"
        );
    }
}

// ---- example workflows ----

fn uses(steps: &Value) -> Vec<String> {
    steps
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x["uses"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn runs(steps: &Value) -> Vec<String> {
    steps
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x["run"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn example_workflows_have_the_permissions_and_steps_they_need() {
    // serde_yaml reads the `on:` key as the string "on" (YAML 1.2).
    let pr = yaml("examples/workflows/pr-check.yml");
    assert!(pr["on"].get("pull_request").is_some(), "{:?}", pr["on"]);
    assert!(
        pr["on"].get("pull_request_target").is_none(),
        "not pull_request_target"
    );
    assert_eq!(pr["permissions"]["contents"], "read");
    assert_eq!(pr["permissions"]["pull-requests"], "write");
    let job = pr["jobs"]
        .as_mapping()
        .and_then(|m| m.values().next())
        .cloned()
        .unwrap_or_default();
    let steps = &job["steps"];
    let checkout = steps
        .as_sequence()
        .and_then(|s| {
            s.iter().find(|x| {
                x["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("actions/checkout@"))
            })
        })
        .unwrap_or_else(|| panic!("checkout"));
    assert_eq!(checkout["with"]["fetch-depth"].as_u64(), Some(0));
    assert!(
        uses(steps).iter().any(|u| u.contains("ci-gate")),
        "uses the action"
    );

    let deploy = yaml("examples/workflows/deploy.yml");
    assert_eq!(deploy["on"]["push"]["branches"][0], "main");
    let job = deploy["jobs"]
        .as_mapping()
        .and_then(|m| m.values().next())
        .cloned()
        .unwrap_or_default();
    let steps = job["steps"].as_sequence().cloned().unwrap_or_default();
    let verify = steps
        .iter()
        .position(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("ci-gate verify") && r.contains("--live-url"))
        })
        .unwrap_or_else(|| panic!("verify --live-url step"));
    let deploy_step = steps
        .iter()
        .position(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("prisma migrate deploy"))
        })
        .unwrap_or_else(|| panic!("deploy step"));
    assert!(verify < deploy_step, "verify runs before the deploy");
    let v = &steps[verify];
    assert!(
        !st(&v["run"], "run").contains("${{"),
        "the secret goes through env"
    );
    assert!(
        v["env"].as_mapping().is_some_and(|m| m.values().any(|x| x
            .as_str()
            .is_some_and(|s| s.contains("secrets.READONLY_DATABASE_URL")))),
        "READONLY_DATABASE_URL through env"
    );

    let sarif = yaml("examples/workflows/sarif.yml");
    assert_eq!(sarif["permissions"]["security-events"], "write");
    let job = sarif["jobs"]
        .as_mapping()
        .and_then(|m| m.values().next())
        .cloned()
        .unwrap_or_default();
    assert!(
        uses(&job["steps"])
            .iter()
            .any(|u| u.starts_with("github/codeql-action/upload-sarif@"))
    );
    assert!(
        runs(&job["steps"]).iter().any(|r| r.contains("--sarif"))
            || job["steps"]
                .as_sequence()
                .is_some_and(|s| s.iter().any(|x| x["with"]["args"]
                    .as_str()
                    .is_some_and(|a| a.contains("--sarif")))),
        "writes SARIF"
    );

    for file in ["pr-check.yml", "deploy.yml", "sarif.yml"] {
        let w = yaml(&format!("examples/workflows/{file}"));
        for job in w["jobs"]
            .as_mapping()
            .map(|m| m.values().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            for r in runs(&job["steps"]) {
                assert!(!r.contains("${{"), "{file}: no expressions inside run: {r}");
            }
        }
    }
}

#[test]
fn cache_prep_names_the_directory_and_a_key_per_base_branch() {
    let r = Runner::new();
    let prep = |cache: &str, base_ref: &str| {
        let _ = std::fs::remove_file(r.p("output.txt"));
        let out = Command::new("bash")
            .arg(root().join("action/cache-prep.sh"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUNNER_TEMP", r.p("temp"))
            .env("RUNNER_OS", "Linux")
            .env("GITHUB_OUTPUT", r.p("output.txt"))
            .env("GITHUB_BASE_REF", base_ref)
            .env("INPUT_CACHE", cache)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.status.success(), "{}", show(&out));
        r.outputs()
    };
    let o = prep("true", "release/1.x;$(touch pwned)");
    assert_eq!(
        o.get("dir"),
        Some(&r.p("temp/ci-gate-cache").display().to_string())
    );
    assert_eq!(
        o.get("prefix").map(String::as_str),
        Some("ci-gate-base-Linux-release_1.x___touch_pwned_-")
    );
    assert!(prep("false", "main").is_empty(), "off: no outputs");
}

#[test]
fn script_passes_the_cache_dir_prunes_old_entries_and_names_the_cache_key() {
    let r = Runner::new();
    r.fake_ci_gate(FAIL_JSON, 1);
    let cache = r.p("temp/ci-gate-cache");
    // Three entries, oldest first (mtimes one second apart), and something that is not one.
    for (i, name) in ["cluster-aaaa", "base-bbbb", "cluster-cccc"]
        .iter()
        .enumerate()
    {
        std::fs::create_dir_all(cache.join(name)).unwrap_or_else(|e| panic!("{e}"));
        let t = std::time::SystemTime::UNIX_EPOCH
            + std::time::Duration::from_secs(1_000_000 + i as u64);
        std::fs::File::open(cache.join(name))
            .and_then(|f| f.set_modified(t))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(cache.join("notes.txt"), "keep").unwrap_or_else(|e| panic!("{e}"));
    let cache_dir = cache.display().to_string();
    let env = [
        ("CI_GATE_CACHE_DIR", cache_dir.as_str()),
        ("CI_GATE_CACHE_PREFIX", "ci-gate-base-Linux-main-"),
    ];
    let out = r.run(&[("version", "path")], &env);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let args: Vec<String> = r.read("args.txt").lines().map(str::to_owned).collect();
    let at = args.iter().position(|a| a == "--cache-dir");
    assert_eq!(at.and_then(|i| args.get(i + 1)), Some(&cache_dir));
    let mut left: Vec<String> = std::fs::read_dir(&cache)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["base-bbbb", "cluster-cccc", "notes.txt"]);
    let key = r.outputs().get("cache-key").cloned().unwrap_or_default();
    assert!(
        key.starts_with("ci-gate-base-Linux-main-") && key.len() == 24 + 16,
        "{key}"
    );
    // Same entries, same key: a run that reused its entry saves nothing new.
    let again = r.run(&[("version", "path")], &env);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(r.outputs().get("cache-key"), Some(&key));
}
