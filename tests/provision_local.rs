//! The `local` provider against the real PostgreSQL server binaries of this machine.
//!
//! Each test starts its own throwaway cluster and checks that nothing is left afterwards: the
//! temp dir is gone and the postmaster's pid no longer exists.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ci_gate::provision::local::{self, LocalCluster};
use ci_gate::provision::{
    self, ProviderChoice, ProviderKind, ProvisionError, ProvisionRequest, Server,
};
use sqlx::{Connection, PgConnection};

fn request(run_id: &str) -> ProvisionRequest {
    ProvisionRequest {
        provider: ProviderChoice::Local,
        database_url: None,
        pg_version: None,
        image: None,
        pg_bin: None,
        run_id: run_id.to_string(),
    }
}

/// Whether a process with this pid exists (a zombie counts as gone: it no longer runs).
fn process_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // "<pid> (<comm>) <state> ..."
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next());
            state != Some("Z") && state != Some("X")
        }
        Err(_) => false,
    }
}

/// Wait briefly for something that should already hold (reaping is asynchronous).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The data directory and postmaster pid of a running server, read through SQL and
/// `postmaster.pid` (the `Server` keeps its guard private).
async fn data_dir_and_pid(server: &Server) -> (PathBuf, u32) {
    let mut conn = server.admin_connection().await.expect("admin connection");
    let (dir,): (String,) = sqlx::query_as("SELECT current_setting('data_directory')")
        .fetch_one(&mut conn)
        .await
        .expect("data_directory");
    conn.close().await.expect("close");
    let dir = PathBuf::from(dir);
    let pidfile = std::fs::read_to_string(dir.join("postmaster.pid")).expect("postmaster.pid");
    let pid = pidfile
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("pid in postmaster.pid");
    (dir, pid)
}

fn assert_cleaned_up(temp_dir: &Path, pid: u32) {
    eventually("postmaster to exit", || !process_running(pid));
    assert!(
        !temp_dir.exists(),
        "temp dir {} still exists",
        temp_dir.display()
    );
}

#[tokio::test]
async fn provision_connect_create_database_and_shutdown() {
    let started = Instant::now();
    let server = provision::provision(&request("plt1"))
        .await
        .unwrap_or_else(|e| panic!("provision failed:\n{e}"));
    let elapsed = started.elapsed();
    eprintln!(
        "local provider: server ready in {:?} (Server::startup = {:?})",
        elapsed, server.startup
    );

    assert_eq!(server.kind, ProviderKind::Local);
    assert!(server.admin_is_superuser);
    assert_eq!(server.major(), 15, "version {}", server.version);

    let mut conn = server.admin_connection().await.expect("admin connection");
    let (version,): (String,) = sqlx::query_as("SELECT version()")
        .fetch_one(&mut conn)
        .await
        .expect("version()");
    assert!(version.starts_with("PostgreSQL 15"), "{version}");
    let (tz, enc): (String, String) =
        sqlx::query_as("SELECT current_setting('TimeZone'), pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'postgres'")
            .fetch_one(&mut conn)
            .await
            .expect("settings");
    assert_eq!((tz.as_str(), enc.as_str()), ("UTC", "UTF8"));
    conn.close().await.expect("close");

    let db = server
        .create_database("t", None, None)
        .await
        .expect("create database");
    assert_eq!(db, "cigate_plt1_t");
    let mut conn = PgConnection::connect_with(&server.admin_options(&db))
        .await
        .expect("connect to new db");
    sqlx::raw_sql("CREATE TABLE x (id int); INSERT INTO x VALUES (1)")
        .execute(&mut conn)
        .await
        .expect("ddl");
    conn.close().await.expect("close");

    // A password-authenticated role can log in (trust auth accepts it).
    assert!(
        server
            .create_role("plt1_owner", Some("secret"))
            .await
            .expect("create role")
    );
    let mut conn = PgConnection::connect_with(&server.user_options(&db, "plt1_owner", "secret"))
        .await
        .expect("login as role");
    let (who,): (String,) = sqlx::query_as("SELECT current_user::text")
        .fetch_one(&mut conn)
        .await
        .expect("current_user");
    assert_eq!(who, "plt1_owner");
    conn.close().await.expect("close");

    let (data_dir, pid) = data_dir_and_pid(&server).await;
    assert!(process_running(pid));
    let temp_dir = data_dir.parent().expect("temp dir").to_path_buf();
    assert!(
        temp_dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("ci-gate-plt1-"))
    );

    let warnings = server.shutdown().await;
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_cleaned_up(&temp_dir, pid);
}

#[tokio::test]
async fn drop_alone_cleans_up() {
    let server = provision::provision(&request("plt2"))
        .await
        .unwrap_or_else(|e| panic!("provision failed:\n{e}"));
    let (data_dir, pid) = data_dir_and_pid(&server).await;
    let temp_dir = data_dir.parent().expect("temp dir").to_path_buf();
    assert!(temp_dir.exists() && process_running(pid));
    drop(server);
    assert_cleaned_up(&temp_dir, pid);
}

#[tokio::test]
async fn cluster_accessors_and_stop() {
    let cluster: LocalCluster = local::start(&request("plt3"))
        .await
        .unwrap_or_else(|e| panic!("start failed:\n{e}"));
    let temp_dir = cluster.temp_dir().to_path_buf();
    let pid = cluster.pid();
    assert!(cluster.data_dir().join("PG_VERSION").is_file());
    assert!(
        cluster
            .socket_dir()
            .join(format!(".s.PGSQL.{}", cluster.port()))
            .exists()
    );
    assert!(process_running(pid));

    let mut conn = PgConnection::connect_with(&cluster.admin_options())
        .await
        .expect("connect");
    let (one,): (i32,) = sqlx::query_as("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .expect("select");
    assert_eq!(one, 1);
    // An open session does not hold up the fast shutdown.
    let stopped = Instant::now();
    cluster.stop().expect("stop");
    eprintln!("local provider: stopped in {:?}", stopped.elapsed());
    assert_cleaned_up(&temp_dir, pid);
    drop(conn);
}

#[tokio::test]
async fn postmaster_killed_from_outside_is_not_an_error_on_stop() {
    let cluster = local::start(&request("plt4"))
        .await
        .unwrap_or_else(|e| panic!("start failed:\n{e}"));
    let temp_dir = cluster.temp_dir().to_path_buf();
    let pid = cluster.pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    eventually("postmaster to die", || !process_running(pid));
    cluster.stop().expect("stop after external kill");
    assert!(!temp_dir.exists());
}

#[tokio::test]
async fn pg_version_selects_the_installed_major() {
    let mut req = request("plt5");
    req.pg_version = Some("15".into());
    let server = provision::provision(&req)
        .await
        .unwrap_or_else(|e| panic!("provision failed:\n{e}"));
    assert_eq!(server.major(), 15);
    assert!(server.shutdown().await.is_empty());
}

#[tokio::test]
async fn explicit_pg_bin_is_used() {
    let mut req = request("plt6");
    req.pg_bin = Some(PathBuf::from("/usr/lib/postgresql/15/bin"));
    let server = provision::provision(&req)
        .await
        .unwrap_or_else(|e| panic!("provision failed:\n{e}"));
    assert_eq!(server.major(), 15);
    assert!(server.shutdown().await.is_empty());
}

#[tokio::test]
async fn bogus_pg_bin_is_bad_input() {
    let mut req = request("plt7");
    req.pg_bin = Some(PathBuf::from("/nonexistent/ci-gate/bin"));
    match provision::provision(&req).await {
        Err(ProvisionError::BadInput { what, hint }) => {
            assert!(what.contains("/nonexistent/ci-gate/bin"), "{what}");
            assert!(what.contains("initdb"), "{what}");
            assert!(hint.contains("pg_config --bindir"), "{hint}");
        }
        Err(other) => panic!("expected BadInput, got {other:?}"),
        Ok(_) => panic!("expected BadInput, got a server"),
    }
}

#[tokio::test]
async fn pg_bin_with_initdb_but_no_postgres_is_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(
        "/usr/lib/postgresql/15/bin/initdb",
        dir.path().join("initdb"),
    )
    .expect("symlink");
    let mut req = request("plt8");
    req.pg_bin = Some(dir.path().to_path_buf());
    match provision::provision(&req).await {
        Err(ProvisionError::BadInput { what, .. }) => assert!(what.contains("postgres"), "{what}"),
        Err(other) => panic!("expected BadInput, got {other:?}"),
        Ok(_) => panic!("expected BadInput, got a server"),
    }
}

#[tokio::test]
async fn broken_server_fails_fast_with_log_and_leaves_nothing() {
    // A `postgres` that exits at once: startup must fail immediately with its output, not after
    // the 30 s readiness deadline, and leave no temp dir behind.
    let dir = tempfile::Builder::new()
        .prefix("plt9-bin")
        .tempdir()
        .expect("tempdir");
    std::os::unix::fs::symlink(
        "/usr/lib/postgresql/15/bin/initdb",
        dir.path().join("initdb"),
    )
    .expect("symlink");
    let fake = dir.path().join("postgres");
    std::fs::write(&fake, "#!/bin/sh\nif [ \"$1\" = -V ] || [ \"$1\" = --version ]; then echo 'postgres (PostgreSQL) 15.0'; exit 0; fi\necho 'FATAL:  simulated startup failure' >&2\nexit 1\n")
        .expect("write fake");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    // The temp dir holding the fake must be reachable by the unprivileged user when we are root.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod dir");

    let mut req = request("plt9");
    req.pg_bin = Some(dir.path().to_path_buf());
    let before = leftover_dirs("ci-gate-plt9-");
    let started = Instant::now();
    let err = match local::start(&req).await {
        Err(e) => e,
        Ok(_) => panic!("expected a startup failure"),
    };
    let text = err.to_string();
    eprintln!("{text}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, ProvisionError::Unavailable { .. }));
    assert!(text.contains("simulated startup failure"), "{text}");
    assert_eq!(leftover_dirs("ci-gate-plt9-"), before);
}

fn leftover_dirs(prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = [std::env::temp_dir(), PathBuf::from("/tmp")]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Children of `pid` (PostgreSQL's auxiliary processes and backends).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .is_some_and(|stat| {
                    let ppid = stat
                        .rsplit(')')
                        .next()
                        .and_then(|rest| rest.split_whitespace().nth(1));
                    ppid == Some(pid.to_string().as_str())
                })
        })
        .collect()
}

const HELPER_ENV: &str = "CI_GATE_TEST_SIGKILL_HELPER";

/// Not a test on its own: the child process of `sigkill_of_ci_gate_leaves_no_server_running`.
#[tokio::test]
#[ignore = "helper, run by sigkill_of_ci_gate_leaves_no_server_running"]
async fn sigkill_helper() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let cluster = local::start(&request("plt10"))
        .await
        .unwrap_or_else(|e| panic!("start failed:\n{e}"));
    println!("READY {} {}", cluster.pid(), cluster.temp_dir().display());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tokio::time::sleep(Duration::from_secs(120)).await;
    drop(cluster);
}

#[test]
fn sigkill_of_ci_gate_leaves_no_server_running() {
    use std::io::BufRead;
    let exe = std::env::current_exe().expect("current exe");
    let mut child = std::process::Command::new(exe)
        .args([
            "sigkill_helper",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn helper");
    let stdout = child.stdout.take().expect("stdout");
    let mut ready = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("read helper output");
        // libtest prints "test sigkill_helper ... " on the same line.
        if let Some(rest) = line.split_once("READY ").map(|(_, rest)| rest) {
            let (pid, dir) = rest.split_once(' ').expect("READY pid dir");
            ready = Some((pid.parse::<u32>().expect("pid"), PathBuf::from(dir)));
            break;
        }
    }
    let Some((pid, dir)) = ready else {
        let _ = child.kill();
        panic!("helper did not start a cluster: {:?}", child.wait());
    };
    let kids = children_of(pid);
    assert!(process_running(pid) && !kids.is_empty());
    child.kill().expect("SIGKILL helper");
    let _ = child.wait();
    eventually("postmaster to die with ci-gate", || !process_running(pid));
    eventually("PostgreSQL's child processes to exit", || {
        kids.iter().all(|k| !process_running(*k))
    });
    // Only the temp dir (and a 56-byte SysV segment) can remain after a SIGKILL.
    assert!(dir.exists());
    local::remove_leftover(&dir).expect("remove leftover");
    assert!(!dir.exists());
}

/// Whether `/dev/shm` is a tmpfs with at least 1 GiB free (the local provider's rule).
fn shm_eligible() -> bool {
    let Ok(out) = std::process::Command::new("stat")
        .args(["-f", "-c", "%T %a %S", "/dev/shm"])
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let parts: Vec<&str> = text.split_whitespace().collect();
    match parts.as_slice() {
        ["tmpfs", avail, size] => {
            let (a, s) = (avail.parse::<u64>(), size.parse::<u64>());
            matches!((a, s), (Ok(a), Ok(s)) if a * s >= 1 << 30)
        }
        _ => false,
    }
}

#[test]
fn without_tmpdir_the_cluster_lives_on_tmpfs_and_is_removed() {
    let project = tempfile::tempdir().expect("tempdir");
    let mig = project.path().join("prisma/migrations/20240101000000_init");
    std::fs::create_dir_all(&mig).expect("mkdir");
    std::fs::write(
        mig.join("migration.sql"),
        "-- CreateTable\nCREATE TABLE \"User\" (\n    \"id\" SERIAL NOT NULL,\n\n    CONSTRAINT \"User_pkey\" PRIMARY KEY (\"id\")\n);\n",
    )
    .expect("write");
    std::fs::write(
        project.path().join("prisma/migrations/migration_lock.toml"),
        "provider = \"postgresql\"\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ci-gate"))
        .arg("verify")
        .arg(project.path())
        .args(["--provider", "local", "--verbose"])
        .env_remove("TMPDIR")
        .env("NO_COLOR", "1")
        .output()
        .expect("run ci-gate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("local cluster in "))
        .unwrap_or_else(|| panic!("no cluster location in --verbose output:\n{stdout}"));
    let dir = line
        .split("local cluster in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("a path");
    if shm_eligible() {
        assert!(dir.starts_with("/dev/shm/ci-gate-"), "{line}");
        assert!(line.contains("tmpfs"), "{line}");
    } else {
        assert!(!dir.starts_with("/dev/shm/"), "{line}");
    }
    assert!(!Path::new(dir).exists(), "{dir} was left behind");
}
