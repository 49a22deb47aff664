//! The `docker` provider against the machine's Docker engine, with a PostgreSQL image built from
//! this machine's PostgreSQL 15 binaries (`docker/test-postgres/build.sh`), since no registry
//! may be reachable.
//!
//! When no engine answers (or there is no docker CLI), every test prints `SKIP: ...` and passes.
//! Each test provisions its own container under a unique run id and checks, with the docker CLI,
//! that no container carrying `dev.ci-gate.run=<run id>` is left afterwards.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ci_gate::provision::docker::{self, LABEL_CREATED, LABEL_HOST, LABEL_PID, LABEL_RUN};
use ci_gate::provision::{ProviderChoice, ProviderKind, ProvisionRequest};
use sqlx::{Connection, PgConnection};

const TEST_IMAGE: &str = "ci-gate-test/postgres:15";

/// Run `build.sh` once per test binary. `Ok(())`: the image exists. `Err(reason)`: no engine
/// (or no CLI): skip. Panics when the build itself fails.
fn test_image() -> Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/test-postgres/build.sh");
            let started = Instant::now();
            let out = Command::new("bash")
                .arg(&script)
                .args(["--tag", TEST_IMAGE])
                .output()
                .unwrap_or_else(|e| panic!("could not run {}: {e}", script.display()));
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(
                out.status.success(),
                "{} failed ({}):\n{stdout}\n{stderr}",
                script.display(),
                out.status
            );
            eprintln!(
                "build.sh ({:.1} s): {}",
                started.elapsed().as_secs_f64(),
                stdout.trim()
            );
            match stdout
                .lines()
                .find(|l| l.starts_with("docker:") && l.contains("skipping"))
            {
                Some(line) => Err(line.to_string()),
                None => Ok(()),
            }
        })
        .clone()
}

macro_rules! require_image {
    () => {
        if let Err(reason) = test_image() {
            eprintln!("SKIP: {reason}");
            return;
        }
    };
}

fn run_id(tag: &str) -> String {
    format!("t{tag}{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

fn request(run_id: &str, image: Option<&str>) -> ProvisionRequest {
    ProvisionRequest {
        provider: ProviderChoice::Docker,
        database_url: None,
        pg_version: None,
        image: image.map(str::to_string),
        pg_bin: None,
        run_id: run_id.to_string(),
    }
}

/// Ids of all containers (any state) labelled with this run.
fn containers_of_run(run_id: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label={LABEL_RUN}={run_id}"),
        ])
        .output()
        .expect("docker ps");
    assert!(
        out.status.success(),
        "docker ps failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

fn label_of(container: &str, label: &str) -> String {
    let out = Command::new("docker")
        .args([
            "inspect",
            "--format",
            &format!("{{{{index .Config.Labels \"{label}\"}}}}"),
            container,
        ])
        .output()
        .expect("docker inspect");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn provisions_connects_and_removes_the_container() {
    require_image!();
    let run = run_id("ok");
    let started = Instant::now();
    let server = docker::provision(&request(&run, Some(TEST_IMAGE)))
        .await
        .expect("provision");
    eprintln!(
        "provisioned {} in {:.2} s (startup {:.2} s)",
        server.version,
        started.elapsed().as_secs_f64(),
        server.startup.as_secs_f64()
    );

    assert_eq!(server.kind, ProviderKind::Docker);
    assert_eq!(server.major(), 15, "version {}", server.version);
    assert!(server.admin_is_superuser);

    let live = containers_of_run(&run);
    assert_eq!(live.len(), 1, "exactly one container for the run: {live:?}");
    assert_eq!(
        label_of(&live[0], LABEL_PID),
        std::process::id().to_string()
    );
    assert!(label_of(&live[0], LABEL_CREATED).parse::<u64>().is_ok());
    assert!(!label_of(&live[0], LABEL_HOST).is_empty());

    let db = server
        .create_database("probe", None, None)
        .await
        .expect("create database");
    assert_eq!(db, format!("cigate_{run}_probe"));
    let mut conn = PgConnection::connect_with(&server.admin_options(&db))
        .await
        .expect("connect to new database");
    let (n,): (i32,) = sqlx::query_as("SELECT 40 + 2")
        .fetch_one(&mut conn)
        .await
        .expect("query");
    assert_eq!(n, 42);
    conn.close().await.expect("close");

    let warnings = server.shutdown().await;
    assert!(warnings.is_empty(), "shutdown warnings: {warnings:?}");
    assert!(
        containers_of_run(&run).is_empty(),
        "container of run {run} left after shutdown"
    );
}

#[tokio::test]
async fn dropping_the_server_inside_a_runtime_removes_the_container() {
    require_image!();
    let run = run_id("drop");
    let server = docker::provision(&request(&run, Some(TEST_IMAGE)))
        .await
        .expect("provision");
    assert_eq!(containers_of_run(&run).len(), 1);
    // No shutdown: the Drop fallback must remove it, synchronously, even on a current-thread
    // runtime (the one #[tokio::test] uses).
    drop(server);
    assert!(
        containers_of_run(&run).is_empty(),
        "container of run {run} left after drop"
    );
}

#[test]
fn dropping_the_server_outside_any_runtime_removes_the_container() {
    require_image!();
    let run = run_id("nort");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(docker::provision(&request(&run, Some(TEST_IMAGE))))
        .expect("provision");
    drop(rt);
    assert_eq!(containers_of_run(&run).len(), 1);
    drop(server); // testcontainers' own Drop would panic here (no runtime)
    assert!(
        containers_of_run(&run).is_empty(),
        "container of run {run} left after drop"
    );
}

#[tokio::test]
async fn usable_accepts_a_present_image() {
    require_image!();
    let availability = docker::usable(&request("usable", Some(TEST_IMAGE)))
        .await
        .expect("test image is usable");
    assert_eq!(availability, docker::Availability::Present);
}

#[tokio::test]
async fn usable_names_a_missing_image() {
    require_image!();
    let missing = "ci-gate-test/does-not-exist:0";
    let started = Instant::now();
    let err = docker::usable(&request("missing", Some(missing)))
        .await
        .expect_err("missing image must not be usable")
        .to_string();
    assert!(
        err.contains(missing) && err.contains("not present"),
        "unexpected reason: {err}"
    );
    assert!(!err.contains('\n'), "one line: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_missing_image_fails_without_leaving_a_container() {
    require_image!();
    let run = run_id("noimg");
    let err = docker::provision(&request(&run, Some("ci-gate-test/does-not-exist:0")))
        .await
        .expect_err("must fail");
    let text = err.to_string();
    assert!(text.contains("ci-gate-test/does-not-exist:0"), "{text}");
    assert!(containers_of_run(&run).is_empty());
}

/// A leftover of a dead ci-gate process on this host, older than an hour, is removed by the
/// next provision; a young one, or one whose process lives, is kept.
#[tokio::test]
async fn provision_sweeps_stale_containers_of_dead_processes() {
    require_image!();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string();
    // A pid that existed and no longer does.
    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead_pid = child.id();
    child.wait().expect("wait");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let create = |run: &str, pid: u32, created: u64| {
        let out = Command::new("docker")
            .args(["create", "--entrypoint", "/bin/sh"])
            .args(["--label", &format!("{LABEL_RUN}={run}")])
            .args(["--label", &format!("{LABEL_PID}={pid}")])
            .args(["--label", &format!("{LABEL_CREATED}={created}")])
            .args(["--label", &format!("{LABEL_HOST}={host}")])
            .arg(TEST_IMAGE)
            .output()
            .expect("docker create");
        assert!(
            out.status.success(),
            "docker create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let stale = run_id("stale");
    let young = run_id("young");
    let alive = run_id("alive");
    create(&stale, dead_pid, now - 2 * 3600);
    create(&young, dead_pid, now - 60);
    create(&alive, std::process::id(), now - 2 * 3600);

    let run = run_id("sweep");
    let server = docker::provision(&request(&run, Some(TEST_IMAGE)))
        .await
        .expect("provision");
    let stale_left = containers_of_run(&stale);
    let young_left = containers_of_run(&young);
    let alive_left = containers_of_run(&alive);
    let notes = server.notes.clone();
    let warnings = server.shutdown().await;
    for kept in young_left.iter().chain(&alive_left) {
        let _ = Command::new("docker").args(["rm", "-f", kept]).output();
    }

    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(
        stale_left.is_empty(),
        "stale container not swept; notes: {notes:?}"
    );
    // Which provision reports the removal is not fixed: the tests of this binary run in
    // parallel and every provision sweeps. Check the note only when it was ours.
    if let Some(note) = notes.iter().find(|n| n.contains(&stale)) {
        assert!(
            note.starts_with("docker: removed stale container"),
            "{note}"
        );
    }
    assert_eq!(
        young_left.len(),
        1,
        "a container younger than an hour must be kept"
    );
    assert_eq!(
        alive_left.len(),
        1,
        "a container whose process lives must be kept"
    );
}

/// The image build script exits 0 with a distinct message when no engine answers.
#[test]
fn build_script_skips_without_an_engine() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/test-postgres/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .output()
        .expect("run build.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {}: {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("docker: ") && stdout.contains("; skipping"),
        "unexpected output: {stdout}"
    );
}

/// `verify` aborts its task on SIGINT/SIGTERM: a provision cancelled at any point of the
/// container's creation, start or readiness wait leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_provision_leaves_no_container() {
    require_image!();
    for delay_ms in [10u64, 60, 150, 400, 1200] {
        let run = run_id(&format!("cancel{delay_ms}"));
        let req = request(&run, Some(TEST_IMAGE));
        let task = tokio::spawn(async move { docker::provision(&req).await });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        task.abort();
        if let Ok(Ok(server)) = task.await {
            // Finished before the abort: shut down normally.
            assert!(server.shutdown().await.is_empty());
        }
        assert!(
            containers_of_run(&run).is_empty(),
            "container of run {run} left after cancelling at {delay_ms} ms"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            containers_of_run(&run).is_empty(),
            "container of run {run} appeared after cancelling at {delay_ms} ms"
        );
    }
}

/// Local speed: the data directory is on a tmpfs mount and durability is off, as for the local
/// provider (the example ran 5.6× slower in a container before).
#[tokio::test]
async fn the_data_directory_is_on_tmpfs_with_durability_off() {
    require_image!();
    let run = run_id("tmpfs");
    let server = docker::provision(&request(&run, Some(TEST_IMAGE)))
        .await
        .expect("provision");
    let mut conn = PgConnection::connect_with(&server.admin_options("postgres"))
        .await
        .expect("connect");
    for (setting, want) in [
        ("fsync", "off"),
        ("synchronous_commit", "off"),
        ("full_page_writes", "off"),
    ] {
        let (value,): (String,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SHOW {setting}")))
            .fetch_one(&mut conn)
            .await
            .expect("show");
        assert_eq!(value, want, "{setting}");
    }
    let (data_dir,): (String,) = sqlx::query_as("SHOW data_directory")
        .fetch_one(&mut conn)
        .await
        .expect("show");
    conn.close().await.expect("close");
    let live = containers_of_run(&run);
    assert_eq!(live.len(), 1, "{live:?}");
    let out = Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{range .Mounts}}{{.Type}} {{.Destination}};{{end}}{{range $k, $v := .HostConfig.Tmpfs}}tmpfs {{$k}};{{end}}",
            &live[0],
        ])
        .output()
        .expect("docker inspect");
    let mounts = String::from_utf8_lossy(&out.stdout).to_string();
    let tmpfs: Vec<&str> = mounts
        .split(';')
        .filter_map(|m| m.strip_prefix("tmpfs "))
        .collect();
    assert!(
        tmpfs.iter().any(|t| data_dir.starts_with(t.trim())),
        "data directory {data_dir} is not under a tmpfs mount: {mounts}"
    );
    let warnings = server.shutdown().await;
    assert!(warnings.is_empty(), "{warnings:?}");
}
