//! The `docker` provider against the machine's Docker engine, with a PostgreSQL image built from
//! this machine's PostgreSQL 15 binaries (`docker/test-postgres/build.sh`), since no registry
//! may be reachable.
//!
//! When no engine answers (or there is no docker CLI), every test prints
//! `SKIP: no Docker engine answers at <host> (<why>)` and passes (`common::docker`).
//! Each test provisions its own container under a unique run id and checks, with the docker CLI,
//! that no container carrying `dev.ci-gate.run=<run id>` is left afterwards.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ci_gate::provision::docker::{self, LABEL_CREATED, LABEL_HOST, LABEL_PID, LABEL_RUN};
use ci_gate::provision::{ProviderChoice, ProviderKind, ProvisionError, ProvisionRequest};
use common::docker::{TEST_IMAGE, containers_labelled};
use sqlx::{Connection, PgConnection};

macro_rules! require_image {
    () => {
        if common::docker::skip() {
            return;
        }
    };
}

/// Connect to `db` as the admin and return the one integer `sql` selects.
async fn select_int(server: &ci_gate::provision::Server, db: &str, sql: &'static str) -> i32 {
    let mut conn = PgConnection::connect_with(&server.admin_options(db))
        .await
        .unwrap_or_else(|e| panic!("connect to {db}: {e}"));
    let (n,): (i32,) = sqlx::query_as(sql)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.expect("close");
    n
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
    containers_labelled(LABEL_RUN, run_id)
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
    assert_eq!(select_int(&server, &db, "SELECT 40 + 2").await, 42);

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

/// `--pg-version` against an image of another major: refused before any container starts,
/// as an environment error (exit 3) that says what to pass instead.
#[tokio::test]
async fn an_image_of_another_major_than_pg_version_is_refused() {
    require_image!();
    let run = run_id("major");
    let mut req = request(&run, Some(TEST_IMAGE));
    req.pg_version = Some("17".into());
    let err = docker::provision(&req).await.expect_err("15 is not 17");
    let text = err.to_string();
    assert!(matches!(err, ProvisionError::Unavailable { .. }), "{err:?}");
    assert!(
        text.contains("ci-gate-test/postgres:15 runs PostgreSQL 15")
            && text.contains("--pg-version asks for 17"),
        "{text}"
    );
    assert!(
        text.contains("postgres:17") && text.contains("--pg-version 15"),
        "{text}"
    );
    assert!(containers_of_run(&run).is_empty());
    // The same major is fine.
    req.pg_version = Some("15".into());
    let server = docker::provision(&req).await.expect("provision");
    assert_eq!(server.major(), 15);
    assert!(server.shutdown().await.is_empty());
}

/// Without `--image`, the image is `postgres:<major of --pg-version>`; an unreadable version is
/// bad input (exit 2). (No registry may be reachable here: then the error names the image.)
#[tokio::test]
async fn pg_version_chooses_the_postgres_tag() {
    require_image!();
    let mut req = request(&run_id("tag"), None);
    req.pg_version = Some("15.3".into());
    assert_eq!(docker::image_ref(&req), "postgres:15");
    match docker::provision(&req).await {
        Ok(server) => {
            assert_eq!(server.major(), 15);
            assert!(server.shutdown().await.is_empty());
        }
        Err(e) => assert!(e.to_string().contains("postgres:15"), "{e}"),
    }
    req.pg_version = Some("fifteen".into());
    let err = docker::provision(&req).await.expect_err("not a version");
    assert!(matches!(err, ProvisionError::BadInput { .. }), "{err:?}");
    assert!(err.to_string().contains("--pg-version fifteen"), "{err}");
}

/// A daemon on this machine gets a container without network, the server's unix socket in a
/// bind-mounted directory of this machine; otherwise a published port. The notes say which.
#[tokio::test]
async fn the_transport_is_a_unix_socket_when_the_daemon_is_local() {
    require_image!();
    let run = run_id("sock");
    let server = docker::provision(&request(&run, Some(TEST_IMAGE)))
        .await
        .expect("provision");
    let notes = server.notes.join("\n");
    let live = containers_of_run(&run);
    assert_eq!(live.len(), 1, "{live:?}");
    let network = common::docker::docker(&[
        "inspect",
        "--format",
        "{{.HostConfig.NetworkMode}}",
        &live[0],
    ]);
    if notes.contains("unix socket in") {
        assert_eq!(network, "none", "{notes}");
        assert!(server.admin.get_socket().is_some(), "{notes}");
    } else {
        assert_ne!(network, "none", "{notes}");
        assert!(server.admin.get_socket().is_none(), "{notes}");
    }
    assert!(server.shutdown().await.is_empty());
}

/// The second run on an engine commits a pre-initialised image of the chosen one; later runs
/// copy its cluster instead of running initdb, with their own password.
#[tokio::test]
async fn later_runs_start_from_the_pre_initialised_image() {
    require_image!();
    // From scratch: no derived image, no mark of an earlier run (other tests of this binary may
    // make them again meanwhile; the third run finds one either way).
    let tags = common::docker::docker(&[
        "images",
        "ci-gate-prepared/postgres",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    for tag in tags.lines().filter(|t| !t.is_empty()) {
        let _ = Command::new("docker")
            .args(["image", "rm", "-f", tag])
            .output();
    }
    let mut last = String::new(); // every round's notes
    for round in 0..3 {
        let run = run_id(&format!("prep{round}"));
        let server = docker::provision(&request(&run, Some(TEST_IMAGE)))
            .await
            .expect("provision");
        last.push_str(&format!("round {round}: {}\n", server.notes.join("\n")));
        let conn = PgConnection::connect_with(&server.admin_options("postgres"))
            .await
            .expect("connect with this run's password");
        conn.close().await.expect("close");
        assert!(server.shutdown().await.is_empty());
        assert!(containers_of_run(&run).is_empty());
    }
    let third = last.split("round 2:").nth(1).unwrap_or_default();
    assert!(
        third.contains("copied from the pre-initialised image"),
        "{last}"
    );
    // Tagged ci-gate-prepared/postgres:<key> and labelled with its base. (Runs of this binary's
    // other tests may have committed one concurrently, whose untagged copy stays while a container
    // uses it: their number is not checked.)
    let tagged = common::docker::docker(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        "--filter",
        &format!("label=dev.ci-gate.prepared.from={TEST_IMAGE}"),
    ]);
    assert!(
        tagged
            .lines()
            .any(|t| t.starts_with("ci-gate-prepared/postgres:") && !t.ends_with("-seen")),
        "no derived image of {TEST_IMAGE}: {tagged}"
    );
}

/// `--cache-dir`'s mechanics for containers: the stopped cluster streamed out of the container
/// is streamed into the next one instead of initdb; a corrupt archive is refused (and the server
/// made afresh).
#[tokio::test]
async fn an_archived_container_cluster_is_restored_and_a_corrupt_one_refused() {
    require_image!();
    let server = docker::provision(&request(&run_id("arch"), Some(TEST_IMAGE)))
        .await
        .expect("provision");
    let db = server
        .create_database("keep", None, None)
        .await
        .expect("create database");
    let mut conn = PgConnection::connect_with(&server.admin_options(&db))
        .await
        .expect("connect");
    sqlx::raw_sql("CREATE TABLE kept AS SELECT 42 AS answer")
        .execute(&mut conn)
        .await
        .expect("create table");
    conn.close().await.expect("close");
    let dir = tempfile::tempdir().expect("tempdir");
    let tar = dir.path().join("cluster.tar");
    let (warnings, sha) = server.shutdown_archiving(&db, &tar).await;
    assert!(warnings.is_empty(), "{warnings:?}");
    let archive = ci_gate::provision::archive::Archive {
        path: tar.clone(),
        sha256: sha.expect("archived"),
    };

    let run = run_id("rest");
    let restored = docker::provision_from(&request(&run, Some(TEST_IMAGE)), Some(&archive))
        .await
        .expect("provision from the archive");
    assert!(
        matches!(restored.restored, ci_gate::provision::Restored::Yes),
        "{:?}",
        restored.restored
    );
    // With this run's password.
    assert_eq!(
        select_int(&restored, &db, "SELECT answer FROM kept").await,
        42
    );
    assert!(restored.shutdown().await.is_empty());
    assert!(containers_of_run(&run).is_empty());

    let mut bytes = std::fs::read(&tar).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid..mid + 64].iter_mut().for_each(|b| *b ^= 0x5a);
    std::fs::write(&tar, bytes).expect("write");
    let fresh = docker::provision_from(&request(&run_id("bad"), Some(TEST_IMAGE)), Some(&archive))
        .await
        .expect("a fresh server instead");
    match &fresh.restored {
        ci_gate::provision::Restored::Failed(e) => {
            assert!(e.to_string().contains("restore"), "{e}")
        }
        other => panic!("a corrupt archive must be refused: {other:?}"),
    }
    assert!(fresh.shutdown().await.is_empty());
}

/// An image that ships `/docker-entrypoint-initdb.d` scripts is initialised by its own
/// entrypoint, so what the scripts set up is there (and ci-gate's settings still apply).
#[tokio::test]
async fn an_image_with_init_scripts_goes_through_its_own_entrypoint() {
    require_image!();
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        ctx.path().join("init.sql"),
        "CREATE TABLE from_init_script AS SELECT 7 AS seven;\n",
    )
    .expect("write");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {TEST_IMAGE}\nCOPY init.sql /docker-entrypoint-initdb.d/\n"),
    )
    .expect("write");
    let tag = format!("ci-gate-test/postgres-init:{}", std::process::id());
    let _image = common::docker::build_image(&tag, ctx.path());
    let server = docker::provision(&request(&run_id("init"), Some(&tag)))
        .await
        .expect("provision");
    let seven = select_int(&server, "postgres", "SELECT seven FROM from_init_script").await;
    assert_eq!(seven, 7, "the init script ran");
    assert!(server.shutdown().await.is_empty());
}
