//! The `docker` provider: a throwaway PostgreSQL container started through testcontainers
//! (the copy re-exported by `testcontainers_modules`, so there is one copy in the build).
//!
//! Guarantee: the container is removed (`docker rm -f -v`) on every exit path that runs
//! destructors — [`DockerServer::stop`] on the normal path (from `Server::shutdown`), the `Drop`
//! fallback on early returns, `?`, panics that unwind and aborted tasks, and a removal by run
//! label when startup fails or the provisioning future is dropped mid-start. It is *not* removed when no destructor runs: SIGKILL, a signal the
//! binary does not handle (the default action of SIGINT/SIGTERM kills without unwinding),
//! `std::process::exit`, `panic = "abort"`, or the machine dying. For those, every container
//! carries the labels `dev.ci-gate.run`, `dev.ci-gate.pid`, `dev.ci-gate.created` and
//! `dev.ci-gate.host`, and each provision sweeps containers of this host whose ci-gate process
//! is gone and that are older than an hour (self-hosted runners keep leftovers). By hand:
//! `docker rm -f $(docker ps -aq --filter label=dev.ci-gate.run)`.
//!
//! The daemon is pinged first with a short timeout, so a missing Docker is reported in seconds
//! with the host that was tried and what to do about it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::bollard::Docker;
use testcontainers_modules::testcontainers::bollard::errors::Error as BollardError;
use testcontainers_modules::testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use testcontainers_modules::testcontainers::core::Mount;
use testcontainers_modules::testcontainers::core::client::docker_client_instance;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::{ContainerAsync, ImageExt, TestcontainersError};

use super::{Guard, ProviderKind, ProvisionError, ProvisionRequest, Server, connect_quiet};

/// Label holding the run id of the ci-gate run that started the container.
pub const LABEL_RUN: &str = "dev.ci-gate.run";
/// Label holding the pid of that ci-gate process.
pub const LABEL_PID: &str = "dev.ci-gate.pid";
/// Label holding the creation time, in seconds since the Unix epoch.
pub const LABEL_CREATED: &str = "dev.ci-gate.created";
/// Label holding the host name of the machine ci-gate ran on (pids only mean something there).
pub const LABEL_HOST: &str = "dev.ci-gate.host";

/// Major version used when neither `--image` nor `--pg-version` is given.
pub const DEFAULT_PG_MAJOR: &str = "16";

/// A tmpfs mount in the container (world-writable, so an image whose entrypoint runs as
/// `postgres` can create the data directory in it) and the data directory inside it. Not the
/// image's own data path: pre-18 official images declare a VOLUME there, which would hide it.
const CONTAINER_TMPFS: &str = "/var/lib/postgresql/ci-gate";
const CONTAINER_PGDATA: &str = "/var/lib/postgresql/ci-gate/data";
/// Server settings for a throwaway cluster (the same as the local provider's).
const SERVER_SETTINGS: [&str; 5] = [
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "autovacuum=off",
    "jit=off",
];

const PING_TIMEOUT: Duration = Duration::from_secs(3);
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(5);
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const SWEEP_TIMEOUT: Duration = Duration::from_secs(5);
const STALE_AFTER: Duration = Duration::from_secs(3600);
const CONNECT_ATTEMPTS: u32 = 20;
const CONNECT_PAUSE: Duration = Duration::from_millis(250);
/// After a cancelled start: how often, and how far apart, to look for the run's containers.
const CANCEL_ROUNDS: u32 = 6;
const CANCEL_PAUSE: Duration = Duration::from_millis(200);

const DAEMON_HINT: &str = "start Docker (e.g. `sudo systemctl start docker`); for rootless Docker, Podman or Colima \
     set DOCKER_HOST (e.g. unix://$XDG_RUNTIME_DIR/docker.sock, unix:///run/user/$UID/podman/podman.sock, \
     unix://$HOME/.colima/default/docker.sock); or use --provider local";

/// A running PostgreSQL container. [`DockerServer::stop`] removes it; dropping it without
/// `stop` removes it too (see `Drop`).
pub struct DockerServer {
    /// Boxed: a `ContainerAsync` is ~850 bytes and `Guard` holds this by value.
    container: Option<Box<ContainerAsync<Postgres>>>,
    id: String,
    image: String,
}

impl std::fmt::Debug for DockerServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerServer")
            .field("id", &short_id(&self.id))
            .field("image", &self.image)
            .finish()
    }
}

impl DockerServer {
    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The image the container runs (`name:tag`).
    pub fn image(&self) -> &str {
        &self.image
    }

    /// Remove the container (force, with its anonymous volumes).
    pub async fn stop(mut self) -> Result<(), String> {
        let Some(container) = self.container.take() else {
            return Ok(());
        };
        // On error testcontainers' own Drop of the container tries once more.
        (*container).rm().await.map_err(|e| {
            format!(
                "could not remove docker container {} ({}): {e}",
                short_id(&self.id),
                self.image
            )
        })
    }
}

impl Drop for DockerServer {
    /// Fallback when [`DockerServer::stop`] was not called (early return, `?`, unwinding panic,
    /// an aborted task).
    ///
    /// testcontainers' own `Drop` of a container needs the current thread to be inside a Tokio
    /// runtime (it panics otherwise) and, in a multi-thread runtime, uses `block_in_place`.
    /// Instead, the container is handed to a short-lived thread with its own current-thread
    /// runtime, which removes it; this `drop` waits for that thread, so the container is gone
    /// when `drop` returns — inside or outside a runtime, of either flavour. Removal failures
    /// are ignored here (the stale-container sweep is the last resort).
    fn drop(&mut self) {
        if let Some(container) = self.container.take() {
            block_on_own_thread(async move {
                let _ = (*container).rm().await;
            });
        }
    }
}

/// Removes every container of a run when dropped while armed: covers `provision` being
/// cancelled (its task aborted on SIGINT) while testcontainers creates and starts the container,
/// when no `ContainerAsync` exists yet to clean up after itself.
struct RemoveRunOnDrop {
    run_id: Option<String>,
}

impl RemoveRunOnDrop {
    fn disarm(mut self) {
        self.run_id = None;
    }
}

impl Drop for RemoveRunOnDrop {
    fn drop(&mut self) {
        if let Some(run_id) = self.run_id.take() {
            block_on_own_thread(async move {
                let Ok(docker) = docker_client_instance().await else {
                    return;
                };
                // A create request may still be in flight at the daemon: look a few times.
                for round in 0..CANCEL_ROUNDS {
                    if round > 0 {
                        tokio::time::sleep(CANCEL_PAUSE).await;
                    }
                    remove_run_containers(&docker, &run_id).await;
                }
            });
        }
    }
}

/// Run `work` to completion on a new thread with its own current-thread runtime and wait for it.
/// Usable from `Drop` anywhere: inside a runtime of either flavour or outside any.
fn block_on_own_thread<F>(work: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    // The future sits in a slot so that, if no thread can be spawned, it can be leaked rather
    // than dropped here (dropping a `ContainerAsync` outside a runtime panics).
    let slot = Arc::new(Mutex::new(Some(work)));
    let in_thread = Arc::clone(&slot);
    let spawned = std::thread::Builder::new()
        .name("ci-gate-docker-cleanup".into())
        .spawn(move || {
            let Some(work) = in_thread.lock().ok().and_then(|mut w| w.take()) else {
                return;
            };
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(work),
                Err(_) => std::mem::forget(work), // left to the sweep
            }
        });
    match spawned {
        Ok(handle) => {
            let _ = handle.join();
        }
        Err(_) => {
            if let Some(work) = slot.lock().ok().and_then(|mut w| w.take()) {
                std::mem::forget(work); // left to the sweep
            }
        }
    }
}

/// How the docker provider would get its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// The image is present locally.
    Present,
    /// Its registry answers: it would be pulled (a network fetch).
    Pullable,
}

/// Whether the docker provider can be used: the daemon answers a ping within a short timeout and
/// the image is present locally (or its registry answers, so it can be pulled). `Err` says why
/// not, in one line.
pub async fn usable(req: &ProvisionRequest) -> Result<Availability, String> {
    let docker = ping().await.map_err(|why| {
        format!(
            "no Docker daemon answers at {}: {why}",
            resolved_docker_host()
        )
    })?;
    let image = image_ref(req);
    match docker.inspect_image(&image).await {
        Ok(_) => Ok(Availability::Present),
        Err(e) if is_not_found(&e) => {
            match tokio::time::timeout(
                REGISTRY_TIMEOUT,
                docker.inspect_registry_image(&image, None),
            )
            .await
            {
                Ok(Ok(_)) => Ok(Availability::Pullable), // testcontainers pulls it on first use
                Ok(Err(e)) => Err(format!(
                    "image {image} not present and no registry reachable ({})",
                    one_line(&bollard_message(&e))
                )),
                Err(_) => Err(format!(
                    "image {image} not present and no registry reachable (no answer within {} s)",
                    REGISTRY_TIMEOUT.as_secs()
                )),
            }
        }
        Err(e) => Err(format!(
            "could not inspect image {image}: {}",
            one_line(&bollard_message(&e))
        )),
    }
}

/// Start a PostgreSQL container and return a [`Server`] on it (superuser `postgres` with a
/// random password, database `postgres`). Nothing is left running when this returns an error.
pub async fn provision(req: &ProvisionRequest) -> Result<Server, ProvisionError> {
    let started = Instant::now();
    let docker = ping().await.map_err(|why| {
        ProvisionError::unavailable(
            format!(
                "docker provider: no Docker daemon answers at {}",
                resolved_docker_host()
            ),
            format!("ping: {why}"),
            DAEMON_HINT,
        )
    })?;
    let mut notes = sweep_stale(&docker).await;

    let image = image_ref(req);
    let (name, tag) = split_image(&image);
    let password = uuid::Uuid::new_v4().simple().to_string();
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let request = Postgres::default()
        .with_user("postgres")
        .with_password(&password)
        .with_db_name("postgres")
        .with_name(name)
        .with_tag(tag)
        .with_label(LABEL_RUN, req.run_id.clone())
        .with_label(LABEL_PID, std::process::id().to_string())
        .with_label(LABEL_CREATED, created.to_string())
        .with_label(LABEL_HOST, this_host())
        // Local speed: the data directory on tmpfs (every CREATE DATABASE … TEMPLATE copies
        // files; on the container's overlay disk that costs more than the SQL), durability off
        // as for the local provider.
        .with_env_var("PGDATA", CONTAINER_PGDATA)
        .with_mount(Mount::tmpfs_mount(CONTAINER_TMPFS))
        .with_cmd(SERVER_SETTINGS.iter().flat_map(|s| ["-c", s]))
        .with_startup_timeout(STARTUP_TIMEOUT);

    let cancelled = RemoveRunOnDrop {
        run_id: Some(req.run_id.clone()),
    };
    let container = match request.start().await {
        Ok(c) => c,
        Err(e) => {
            // A failed start can leave a created (or started) container without a handle
            // (e.g. start or timeout after create): remove everything of this run.
            let leftovers = remove_run_containers(&docker, &req.run_id).await;
            cancelled.disarm();
            return Err(start_error(&image, &e, leftovers));
        }
    };
    cancelled.disarm();
    // From here on the guard owns the container: any exit, including cancellation, removes it.
    let guard = DockerServer {
        id: container.id().to_string(),
        container: Some(Box::new(container)),
        image: image.clone(),
    };
    let id = guard.id.clone();

    let endpoint = async {
        let container = guard.container.as_deref().expect("set above");
        let host = container.get_host().await?.to_string();
        let port = container.get_host_port_ipv4(5432).await?;
        Ok::<_, TestcontainersError>((host, port))
    };
    let (host, port) = match endpoint.await {
        Ok(v) => v,
        Err(e) => {
            let _ = guard.stop().await;
            return Err(ProvisionError::unavailable(
                format!(
                    "docker provider: could not find the published port of container {}",
                    short_id(&id)
                ),
                e.to_string(),
                "check that the image EXPOSEs 5432 and that the Docker host is reachable from here",
            ));
        }
    };
    // The port is the one published on IPv4; do not let `localhost` resolve to ::1.
    let host = if host == "localhost" {
        "127.0.0.1".to_string()
    } else {
        host
    };
    let admin = PgConnectOptions::new_without_pgpass()
        .host(&host)
        .port(port)
        .username("postgres")
        .password(&password)
        .database("postgres")
        .ssl_mode(PgSslMode::Prefer)
        .application_name("ci-gate");

    if let Err(e) = wait_connectable(&admin).await {
        let _ = guard.stop().await;
        return Err(ProvisionError::unavailable(
            format!(
                "docker provider: container {} ({image}) is up but PostgreSQL does not accept connections at {host}:{port}",
                short_id(&id)
            ),
            e.to_string(),
            "is the image a PostgreSQL image following the official image's conventions (POSTGRES_PASSWORD, port 5432)?",
        ));
    }

    // If this fails, the guard is dropped inside `Server::connect`, and its `Drop` removes the
    // container (synchronously) before the error is returned.
    let mut server = Server::connect(
        ProviderKind::Docker,
        admin,
        req.run_id.clone(),
        started,
        Guard::Docker(guard),
    )
    .await?;
    server.admin_password = Some(password);
    server.notes.append(&mut notes);
    Ok(server)
}

/// `req.image`, else `postgres:<pg_version or 16>`.
pub fn image_ref(req: &ProvisionRequest) -> String {
    match req
        .image
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(image) => image.to_string(),
        None => format!(
            "postgres:{}",
            req.pg_version
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .unwrap_or(DEFAULT_PG_MAJOR)
        ),
    }
}

/// Whether `image` is a well-formed Docker image reference: `[host[:port]/]path[:tag][@digest]`,
/// path components lowercase `[a-z0-9]` joined by `.`, `_`, `__` or `-`; tag `[A-Za-z0-9_]
/// [A-Za-z0-9_.-]{0,127}`; digest `algorithm:hex`. (The grammar of distribution/reference.)
pub fn valid_image_ref(image: &str) -> bool {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let Some((alg, hex)) = d.split_once(':') else {
            return false;
        };
        let alg_ok = !alg.is_empty()
            && alg
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c));
        if !alg_ok || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
    }
    let (name, tag) = split_image(rest);
    let tag_given = rest.len() > name.len();
    if tag_given {
        let mut chars = tag.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !first_ok
            || tag.len() > 128
            || !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return false;
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    // A first part with a dot, a colon or `localhost` is a registry host.
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let host = parts.remove(0);
        let (h, port) = host.split_once(':').unwrap_or((host, ""));
        let host_ok = !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c));
        if !host_ok || (!port.is_empty() && !port.chars().all(|c| c.is_ascii_digit())) {
            return false;
        }
    }
    !parts.is_empty()
        && parts.iter().all(|p| {
            let bytes = p.as_bytes();
            !p.is_empty()
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && !p.contains("..")
                && !p.contains("___")
        })
}

/// Split `name[:tag]` (the name may contain a registry port: `host:5000/pg:15`). No tag means
/// `latest`, as for `docker run`.
fn split_image(image: &str) -> (String, String) {
    let last_slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[last_slash..].rfind(':') {
        Some(i) => (
            image[..last_slash + i].to_string(),
            image[last_slash + i + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

/// The Docker host testcontainers will use, resolved the way it does (testcontainers 0.27 without
/// the properties file): `DOCKER_HOST`, else the first existing of `/var/run/docker.sock`,
/// `$XDG_RUNTIME_DIR/.docker/run/docker.sock`, `~/.docker/run/docker.sock`,
/// `~/.docker/desktop/docker.sock`, else `unix:///var/run/docker.sock`.
pub fn resolved_docker_host() -> String {
    if let Some(host) = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()) {
        return host;
    }
    let mut candidates = vec![std::path::PathBuf::from("/var/run/docker.sock")];
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .filter(|d| d.is_absolute())
    {
        candidates.push(dir.join(".docker/run/docker.sock"));
    }
    if let Some(home) = std::env::var_os("HOME").map(std::path::PathBuf::from) {
        candidates.push(home.join(".docker/run/docker.sock"));
        candidates.push(home.join(".docker/desktop/docker.sock"));
    }
    candidates
        .into_iter()
        .find(|p| p.exists())
        .map(|p| format!("unix://{}", p.display()))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

/// A client that answered a ping within [`PING_TIMEOUT`]; `Err` is the cause, in one line.
async fn ping() -> Result<Docker, String> {
    let attempt = async {
        let docker = docker_client_instance().await.map_err(|e| e.to_string())?;
        docker.ping().await.map_err(|e| bollard_message(&e))?;
        Ok::<_, String>(docker)
    };
    match tokio::time::timeout(PING_TIMEOUT, attempt).await {
        Ok(Ok(docker)) => Ok(docker),
        Ok(Err(e)) => Err(one_line(&e)),
        Err(_) => Err(format!("no reply within {} s", PING_TIMEOUT.as_secs())),
    }
}

/// Connect until the server answers (the port proxy may lag the readiness message briefly).
async fn wait_connectable(admin: &PgConnectOptions) -> Result<(), sqlx::Error> {
    let mut attempt = 1;
    loop {
        match connect_quiet(admin).await {
            Ok(conn) => {
                use sqlx::Connection;
                let _ = conn.close().await;
                return Ok(());
            }
            Err(e) if attempt >= CONNECT_ATTEMPTS => return Err(e),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(CONNECT_PAUSE).await;
            }
        }
    }
}

fn start_error(image: &str, e: &TestcontainersError, leftovers: Vec<String>) -> ProvisionError {
    let text = e.to_string();
    let mut detail = one_line(&text);
    if !leftovers.is_empty() {
        detail.push_str(&format!(
            "\n(removed {} container(s) left by the failed start)",
            leftovers.len()
        ));
    }
    if text.contains("failed to pull the image") {
        ProvisionError::unavailable(
            format!("docker provider: image {image} is not present and could not be pulled"),
            detail,
            "pull or build it first (`docker pull IMAGE`), point --image at a local image, or use --provider local",
        )
    } else if text.to_lowercase().contains("timeout") {
        ProvisionError::unavailable(
            format!(
                "docker provider: {image} did not report readiness within {} s",
                STARTUP_TIMEOUT.as_secs()
            ),
            detail,
            "the image must log \"database system is ready to accept connections\" on stdout and stderr like the \
             official image; try `docker run --rm -e POSTGRES_PASSWORD=x IMAGE` to see what it does",
        )
    } else {
        ProvisionError::unavailable(
            format!("docker provider: could not start a container from {image}"),
            detail,
            "try `docker run --rm -e POSTGRES_PASSWORD=x IMAGE` to see what fails, or use --provider local",
        )
    }
}

/// Remove every container of run `run_id`; returns the ids removed.
async fn remove_run_containers(docker: &Docker, run_id: &str) -> Vec<String> {
    let filter = format!("{LABEL_RUN}={run_id}");
    let listed = list_labelled(docker, &filter).await.unwrap_or_default();
    let mut removed = Vec::new();
    for c in listed {
        if let Some(id) = c.id
            && remove_container(docker, &id).await.is_ok()
        {
            removed.push(id);
        }
    }
    removed
}

async fn list_labelled(
    docker: &Docker,
    label_filter: &str,
) -> Result<Vec<testcontainers_modules::testcontainers::bollard::models::ContainerSummary>, String>
{
    let mut filters = HashMap::new();
    filters.insert("label", vec![label_filter]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    match tokio::time::timeout(SWEEP_TIMEOUT, docker.list_containers(Some(options))).await {
        Ok(Ok(list)) => Ok(list),
        Ok(Err(e)) => Err(bollard_message(&e)),
        Err(_) => Err("no answer".into()),
    }
}

async fn remove_container(docker: &Docker, id: &str) -> Result<(), String> {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match tokio::time::timeout(SWEEP_TIMEOUT, docker.remove_container(id, Some(options))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if is_not_found(&e) => Ok(()),
        Ok(Err(e)) => Err(bollard_message(&e)),
        Err(_) => Err("no answer".into()),
    }
}

/// Remove ci-gate containers of this host whose process is gone and that are older than an hour.
/// One list call with a label filter; errors are ignored (returned as notes).
async fn sweep_stale(docker: &Docker) -> Vec<String> {
    let mut notes = Vec::new();
    let listed = match list_labelled(docker, LABEL_RUN).await {
        Ok(l) => l,
        Err(e) => {
            notes.push(format!(
                "docker: could not list old ci-gate containers: {e}"
            ));
            return notes;
        }
    };
    let host = this_host();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for c in listed {
        let Some(id) = c.id.clone() else { continue };
        let labels = c.labels.clone().unwrap_or_default();
        if !is_stale(&labels, c.created, &host, now, pid_alive) {
            continue;
        }
        let run = labels.get(LABEL_RUN).cloned().unwrap_or_default();
        match remove_container(docker, &id).await {
            Ok(()) => notes.push(format!(
                "docker: removed stale container {} of run {run}",
                short_id(&id)
            )),
            Err(e) => notes.push(format!(
                "docker: could not remove stale container {}: {e}",
                short_id(&id)
            )),
        }
    }
    notes
}

/// A container is stale if it was made on this host by a process that no longer exists, more
/// than [`STALE_AFTER`] ago. Containers without host or pid labels are never touched.
fn is_stale(
    labels: &HashMap<String, String>,
    docker_created: Option<i64>,
    this_host: &str,
    now: u64,
    alive: impl Fn(i32) -> bool,
) -> bool {
    if labels.get(LABEL_HOST).map(String::as_str) != Some(this_host) {
        return false;
    }
    let Some(pid) = labels
        .get(LABEL_PID)
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|p| *p > 0)
    else {
        return false;
    };
    let created = labels
        .get(LABEL_CREATED)
        .and_then(|c| c.parse::<u64>().ok())
        .or_else(|| docker_created.and_then(|c| u64::try_from(c).ok()));
    let Some(created) = created else { return false };
    if now.saturating_sub(created) < STALE_AFTER.as_secs() {
        return false;
    }
    pid != std::process::id() as i32 && !alive(pid)
}

fn pid_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(Errno::ESRCH) => false,
        Err(_) => true, // EPERM: exists, owned by someone else
    }
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn bollard_message(e: &BollardError) -> String {
    match e {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => format!("{message} (HTTP {status_code})"),
        other => other.to_string(),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod image_ref_tests {
    use super::valid_image_ref;

    #[test]
    fn malformed_image_references_are_told_apart_from_absent_ones() {
        for ok in [
            "postgres",
            "postgres:16",
            "postgres:16-alpine",
            "ghcr.io/owner/ci-gate:1.0.0",
            "localhost:5000/pg:15",
            "registry.example.com/team/postgres_x",
            "postgres@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(valid_image_ref(ok), "{ok}");
        }
        for bad in [
            "Postgres:16",
            "postgres:",
            "post gres",
            "postgres::16",
            ":16",
            "postgres:-x",
            "pg/",
            "-pg",
            "postgres@sha256:xyz",
            "",
        ] {
            assert!(!valid_image_ref(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(image: Option<&str>, pg: Option<&str>) -> ProvisionRequest {
        ProvisionRequest {
            provider: super::super::ProviderChoice::Docker,
            database_url: None,
            pg_version: pg.map(str::to_string),
            image: image.map(str::to_string),
            pg_bin: None,
            run_id: "t".into(),
        }
    }

    #[test]
    fn image_defaults_and_overrides() {
        assert_eq!(image_ref(&req(None, None)), "postgres:16");
        assert_eq!(image_ref(&req(None, Some("17"))), "postgres:17");
        assert_eq!(
            image_ref(&req(Some("ci-gate-test/postgres:15"), Some("17"))),
            "ci-gate-test/postgres:15"
        );
    }

    #[test]
    fn splits_name_and_tag() {
        assert_eq!(split_image("postgres:16"), ("postgres".into(), "16".into()));
        assert_eq!(
            split_image("postgres"),
            ("postgres".into(), "latest".into())
        );
        assert_eq!(
            split_image("reg.local:5000/pg/postgres:15-alpine"),
            ("reg.local:5000/pg/postgres".into(), "15-alpine".into())
        );
        assert_eq!(
            split_image("reg.local:5000/postgres"),
            ("reg.local:5000/postgres".into(), "latest".into())
        );
    }

    #[test]
    fn stale_only_when_old_dead_and_ours() {
        let labels = |host: &str, pid: &str, created: u64| {
            HashMap::from([
                (LABEL_RUN.to_string(), "r".to_string()),
                (LABEL_HOST.to_string(), host.to_string()),
                (LABEL_PID.to_string(), pid.to_string()),
                (LABEL_CREATED.to_string(), created.to_string()),
            ])
        };
        let now = 10_000;
        let dead = |_| false;
        let alive = |_| true;
        assert!(is_stale(&labels("h", "4242", 1_000), None, "h", now, dead));
        assert!(!is_stale(
            &labels("h", "4242", 1_000),
            None,
            "h",
            now,
            alive
        ));
        assert!(
            !is_stale(&labels("h", "4242", 9_000), None, "h", now, dead),
            "younger than an hour"
        );
        assert!(
            !is_stale(&labels("other", "4242", 1_000), None, "h", now, dead),
            "another host"
        );
        assert!(
            !is_stale(&labels("h", "0", 1_000), None, "h", now, dead),
            "no usable pid"
        );
        let mut no_created = labels("h", "4242", 0);
        no_created.remove(LABEL_CREATED);
        assert!(
            is_stale(&no_created, Some(1_000), "h", now, dead),
            "falls back to Docker's Created"
        );
    }
}
