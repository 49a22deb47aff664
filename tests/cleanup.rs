//! Nothing is left behind: no cluster, socket or temp dir after SIGINT/SIGTERM in the middle of a
//! migration; no database or role on a server ci-gate did not start (`--provider url`).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use ci_gate::provision::{ProviderChoice, ProvisionRequest, connect_quiet, local};
use common::{ci_gate, root, write_project};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap_or_else(|| panic!("non-UTF-8 path"))
}

fn postgres_processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmd.contains("postgres") && cmd.contains(needle) {
            found.push(cmd);
        }
    }
    found
}

/// A project whose one migration sleeps for a minute.
fn slow_project() -> tempfile::TempDir {
    let project = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(
        project.path(),
        &[(
            "20240101000000_slow",
            "CREATE TABLE \"A\" (\"id\" INTEGER);\nSELECT pg_sleep(60);\n",
        )],
    );
    project
}

fn interrupt_mid_migration(signal: Signal) {
    let project = slow_project();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let child = ci_gate(tmp.path())
        .args(["verify", path(project.path()), "--provider", "local"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    // Wait for the cluster's directory to appear, then for the migration to be running.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(tmp.path())
        .map(|d| d.count())
        .unwrap_or(0)
        == 0
    {
        assert!(Instant::now() < deadline, "the cluster never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(2500));
    let tmp_str = tmp.path().to_string_lossy().into_owned();
    assert!(
        !postgres_processes_mentioning(&tmp_str).is_empty(),
        "no postgres running under {tmp_str}"
    );
    interrupt(child, signal);
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(
        postgres_processes_mentioning(&tmp_str).is_empty(),
        "postgres still running"
    );
}

/// Send `signal` to `child` and wait (20 s at most) for it to exit as interrupted (exit 3).
fn interrupt(mut child: std::process::Child, signal: Signal) {
    kill(Pid::from_raw(child.id() as i32), signal).unwrap_or_else(|e| panic!("kill: {e}"));
    let started = Instant::now();
    let out = loop {
        if let Ok(Some(_)) = child.try_wait() {
            break child
                .wait_with_output()
                .unwrap_or_else(|e| panic!("wait: {e}"));
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "ci-gate did not exit after {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("interrupted by"), "{stderr}");
}

#[test]
fn sigint_mid_migration_leaves_nothing() {
    interrupt_mid_migration(Signal::SIGINT);
}

#[test]
fn sigterm_mid_migration_leaves_nothing() {
    interrupt_mid_migration(Signal::SIGTERM);
}

/// A server ci-gate did not start, reached by URL.
struct External {
    cluster: Option<local::LocalCluster>,
    url: String,
}

impl External {
    async fn start() -> External {
        let req = ProvisionRequest {
            provider: ProviderChoice::Local,
            database_url: None,
            pg_version: None,
            image: None,
            pg_bin: None,
            run_id: "external".into(),
        };
        let cluster = local::start(&req)
            .await
            .unwrap_or_else(|e| panic!("start: {e}"));
        let url = common::cluster_url(&cluster);
        External {
            cluster: Some(cluster),
            url,
        }
    }

    async fn leftovers(&self) -> (Vec<String>, Vec<String>) {
        let opts = self
            .cluster
            .as_ref()
            .map(|c| c.admin_options())
            .unwrap_or_else(|| panic!("no cluster"));
        let mut conn = connect_quiet(&opts)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let dbs: Vec<(String,)> =
            sqlx::query_as("SELECT datname::text FROM pg_database WHERE datname LIKE 'cigate%'")
                .fetch_all(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        let roles: Vec<(String,)> = sqlx::query_as("SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'cigate%' OR rolname = 'authenticated'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (
            dbs.into_iter().map(|r| r.0).collect(),
            roles.into_iter().map(|r| r.0).collect(),
        )
    }
}

impl Drop for External {
    fn drop(&mut self) {
        if let Some(c) = self.cluster.take() {
            let _ = c.stop();
        }
    }
}

/// `ci-gate verify` of a migration that sleeps a minute, on `server` by URL, returned once its
/// database exists (with the temp dirs it uses, which must outlive it).
async fn slow_run_on(server: &External) -> (std::process::Child, [tempfile::TempDir; 2]) {
    let project = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_project(
        project.path(),
        &[("20240101000000_slow", "SELECT pg_sleep(60);\n")],
    );
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let child = ci_gate(tmp.path())
        .args([
            "verify",
            path(project.path()),
            "--provider",
            "url",
            "--database-url",
            &server.url,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.leftovers().await.0.is_empty() {
        assert!(
            Instant::now() < deadline,
            "ci-gate never created its database"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, [project, tmp])
}

#[tokio::test]
async fn url_provider_creates_and_drops_only_its_own_databases_and_roles() {
    let server = External::start().await;
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (project, expected) in [
        ("examples/prisma-saas", 0),
        ("examples/broken", 1),
        ("tests/fixtures/missing-role-configured", 0),
    ] {
        let out = ci_gate(tmp.path())
            .args([
                "verify",
                path(&root().join(project)),
                "--provider",
                "url",
                "--database-url",
                &server.url,
                "--json",
                "-",
            ])
            .output()
            .unwrap_or_else(|e| panic!("run: {e}"));
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{project}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        assert_eq!(json["server"]["provider"], "url");
        let (dbs, roles) = server.leftovers().await;
        assert!(dbs.is_empty(), "{project}: databases left: {dbs:?}");
        assert!(roles.is_empty(), "{project}: roles left: {roles:?}");
    }
}

#[tokio::test]
async fn url_provider_keeps_roles_that_already_existed() {
    let server = External::start().await;
    let opts = server
        .cluster
        .as_ref()
        .map(|c| c.admin_options())
        .unwrap_or_else(|| panic!("no cluster"));
    let mut conn = connect_quiet(&opts).await.unwrap_or_else(|e| panic!("{e}"));
    sqlx::raw_sql("CREATE ROLE authenticated")
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = ci_gate(tmp.path())
        .args([
            "verify",
            path(&root().join("tests/fixtures/missing-role-configured")),
            "--provider",
            "url",
            "--database-url",
            &server.url,
        ])
        .output()
        .unwrap_or_else(|e| panic!("run: {e}"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, roles) = server.leftovers().await;
    assert_eq!(
        roles,
        vec!["authenticated"],
        "a role that existed before must stay"
    );
}

#[tokio::test]
async fn url_provider_cleans_up_after_sigint() {
    let server = External::start().await;
    let (mut child, _dirs) = slow_run_on(&server).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap_or_else(|e| panic!("kill: {e}"));
    let started = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "ci-gate did not exit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (dbs, roles) = server.leftovers().await;
    assert!(dbs.is_empty(), "databases left: {dbs:?}");
    assert!(roles.is_empty(), "roles left: {roles:?}");
}

#[tokio::test]
async fn url_server_lost_mid_run_names_what_it_left_and_how_to_drop_it() {
    // Issue 13: the databases and the login role stayed on a server that came back, with no hint.
    let mut server = External::start().await;
    let (mut child, _dirs) = slow_run_on(&server).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Some(c) = server.cluster.take() {
        let _ = c.stop();
    }
    let started = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "ci-gate did not exit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read as _;
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("left on the server"), "{stderr}");
    assert!(
        stderr.contains("DROP DATABASE IF EXISTS \"cigate_"),
        "{stderr}"
    );
    assert!(stderr.contains("DROP ROLE IF EXISTS \"cigate_"), "{stderr}");
}

/// The docker provider: SIGINT in the middle of a migration removes the container (found by the
/// pid label) and the directory of its socket, and does not wait for a pre-initialised image.
#[test]
fn docker_sigint_mid_migration_leaves_no_container() {
    if common::docker::skip() {
        return;
    }
    let project = slow_project();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let child = ci_gate(tmp.path())
        .args(["verify", path(project.path()), "--provider", "docker"])
        .args(["--image", common::docker::TEST_IMAGE])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let pid = child.id().to_string();
    let containers = || common::docker::containers_labelled("dev.ci-gate.pid", &pid);
    let deadline = Instant::now() + Duration::from_secs(60);
    while containers().is_empty() {
        assert!(Instant::now() < deadline, "the container never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(3000)); // the migration is sleeping by now
    interrupt(child, Signal::SIGINT);
    assert!(containers().is_empty(), "container left after SIGINT");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}
