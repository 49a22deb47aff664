//! The `docker` provider: a throwaway PostgreSQL container, driven through the Docker Engine API
//! (bollard, with the client testcontainers configures from `DOCKER_HOST`, its properties file
//! and TLS settings).
//!
//! Made for local speed (BENCHMARKS.md compares it with the local provider):
//! - the data directory is on a tmpfs mount, durability off, as for the local provider;
//! - ci-gate's start script replaces the image's entrypoint ([`container::SCRIPT`]): `initdb`,
//!   then `postgres`, without the temporary server the official entrypoint starts and stops in
//!   between; an image shipping `/docker-entrypoint-initdb.d` scripts goes through its own
//!   entrypoint, so what they set up is there;
//! - with `--cache-dir`, the data directory is an archived cluster streamed into the tmpfs
//!   (`tar` in the image) instead of initdb; a run that built the base stops the server cleanly
//!   and streams the data directory out into the cache ([`archive`]);
//! - readiness is a connection probe every 20 ms that also watches for the container's exit.
//!
//! The image is `--image`, else `postgres:<major of --pg-version, or 16>`; an image of another
//! major than `--pg-version` is refused before (`PG_MAJOR`) or right after (the server's
//! version) it starts.
//!
//! Guarantee: the container is removed (`docker rm -f -v`) on every exit path that runs
//! destructors — [`DockerServer::stop`] on the normal path (from `Server::shutdown`), the `Drop`
//! fallback on early returns, `?`, panics that unwind and aborted tasks, and a removal by run
//! label when startup fails or the provisioning future is dropped mid-start. It is *not* removed
//! when no destructor runs: SIGKILL, a signal the binary does not handle, `std::process::exit`,
//! `panic = "abort"`, or the machine dying. For those, every container carries the labels
//! `dev.ci-gate.run`, `dev.ci-gate.pid`, `dev.ci-gate.created` and `dev.ci-gate.host`, and each
//! provision sweeps containers of this host whose ci-gate process is gone and that are older
//! than an hour (self-hosted runners keep leftovers). By hand:
//! `docker rm -f $(docker ps -aq --filter label=dev.ci-gate.run)`.
//!
//! The daemon is pinged first with a short timeout, so a missing Docker is reported in seconds
//! with the host that was tried and what to do about it.

mod archive;
mod cleanup;
mod container;
mod error;
mod image;
mod prepared;
mod transport;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use testcontainers_modules::testcontainers::bollard::Docker;
use testcontainers_modules::testcontainers::core::client::docker_client_instance;

use super::archive::Archive;
use super::{Guard, ProviderKind, ProvisionError, ProvisionRequest, Restored, Server};
pub use error::{ArchiveError, PingError, StartError, StopError, UsableError};
pub use image::{image_ref, valid_image_ref};

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

const PING_TIMEOUT: Duration = Duration::from_secs(3);
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(5);
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

const DAEMON_HINT: &str = "start Docker (e.g. `sudo systemctl start docker`); for rootless Docker, Podman or Colima \
     set DOCKER_HOST (e.g. unix://$XDG_RUNTIME_DIR/docker.sock, unix:///run/user/$UID/podman/podman.sock, \
     unix://$HOME/.colima/default/docker.sock); or use --provider local";

/// A running PostgreSQL container. [`DockerServer::stop`] removes it; dropping it without
/// `stop` removes it too (see `Drop`).
pub struct DockerServer {
    docker: Docker,
    id: String,
    image: String,
    /// The tmpfs mount holding the data directory.
    tmpfs: &'static str,
    /// How the server is reached (owns the socket directory, removed after the container).
    transport: transport::Transport,
    /// The commit of a pre-initialised image from this container, under way.
    commit: Option<prepared::Commit>,
    /// Removed already (by `stop`): nothing for `Drop` to do.
    removed: bool,
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

    /// Wait for the pre-initialised image this container is being committed to, if any; a note
    /// when it was not saved.
    pub async fn finish_commit(&mut self) -> Option<String> {
        self.commit.take()?.finish().await
    }

    /// Give up on the commit under way, if any (it fails once the container is removed).
    pub fn abandon_commit(&mut self) {
        if let Some(commit) = self.commit.take() {
            commit.abort();
        }
    }

    /// Remove the container (force, with its anonymous volumes), after a commit under way.
    pub async fn stop(mut self) -> Result<(), StopError> {
        let _ = self.finish_commit().await;
        self.removed = true;
        cleanup::remove_container(&self.docker, &self.id)
            .await
            .map_err(|cause| StopError {
                id: self.id.clone(),
                image: self.image.clone(),
                cause,
            })
    }

    /// Stop the server cleanly, write its data directory to `tar` (see [`archive`]), then
    /// remove the container as [`DockerServer::stop`] does. Returns the archive's SHA-256.
    pub async fn stop_archiving(self, tar: &Path) -> Result<String, ArchiveError> {
        let written = archive::archive(&self.docker, &self.id, self.tmpfs, tar).await;
        let removed = self.stop().await;
        let sha = written?;
        removed.map(|()| sha).map_err(ArchiveError::from)
    }
}

impl Drop for DockerServer {
    /// Fallback when [`DockerServer::stop`] was not called (early return, `?`, unwinding panic,
    /// an aborted task): the container is removed on a short-lived thread with its own runtime,
    /// and `drop` waits for it, so it is gone when `drop` returns, inside or outside a runtime.
    /// Removal failures are ignored here (the stale-container sweep is the last resort).
    fn drop(&mut self) {
        self.abandon_commit();
        if !self.removed {
            self.removed = true;
            let (docker, id) = (self.docker.clone(), self.id.clone());
            cleanup::block_on_own_thread(async move {
                let _ = cleanup::remove_container(&docker, &id).await;
            });
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
/// the image is present locally (or its registry answers, so it can be pulled).
pub async fn usable(req: &ProvisionRequest) -> Result<Availability, UsableError> {
    let docker = ping().await.map_err(|cause| UsableError::NoDaemon {
        host: resolved_docker_host(),
        cause,
    })?;
    let image = image_ref(req);
    match docker.inspect_image(&image).await {
        Ok(_) => Ok(Availability::Present),
        Err(e) if error::is_not_found(&e) => {
            let asked = docker.inspect_registry_image(&image, None);
            match tokio::time::timeout(REGISTRY_TIMEOUT, asked).await {
                Ok(Ok(_)) => Ok(Availability::Pullable), // pulled on first use
                Ok(Err(source)) => Err(UsableError::NoRegistry { image, source }),
                Err(_) => Err(UsableError::RegistryTimeout {
                    image,
                    waited: REGISTRY_TIMEOUT,
                }),
            }
        }
        Err(source) => Err(UsableError::Inspect { image, source }),
    }
}

/// Start a PostgreSQL container and return a [`Server`] on it (superuser `postgres` with a
/// random password, database `postgres`). Nothing is left running when this returns an error.
pub async fn provision(req: &ProvisionRequest) -> Result<Server, ProvisionError> {
    provision_from(req, None).await
}

/// [`provision`], with the data directory restored from `from` (a cluster archived by
/// [`DockerServer::stop_archiving`]) instead of made by initdb. When the archive cannot be used
/// the container is made afresh, and [`Server::restored`] says why.
pub async fn provision_from(
    req: &ProvisionRequest,
    from: Option<&Archive>,
) -> Result<Server, ProvisionError> {
    let started = Instant::now();
    let wanted = image::wanted_major(req)?;
    let docker = ping().await.map_err(|cause| StartError::NoDaemon {
        host: resolved_docker_host(),
        cause,
    })?;
    let image = image_ref(req);
    let (mut notes, found, address, local) = tokio::join!(
        cleanup::sweep_stale(&docker),
        image::ensure(&docker, &image),
        transport::reachable_address(&docker),
        transport::daemon_is_local(&docker)
    );
    let info = found?;
    image::check_major(req, &image, info.major, wanted)?;
    let run = Run {
        docker: &docker,
        req,
        image: &image,
        info: &info,
        address,
        socket: AtomicBool::new(local),
        notes: Mutex::new(Vec::new()),
        password: uuid::Uuid::new_v4().simple().to_string(),
    };
    let (guard, admin, restored) = run.start(from).await?;
    notes.extend(run.take_notes());
    notes.push(container_note(&guard, &image, &restored, admin.get_port()));
    // If this fails, the guard is dropped inside `Server::connect`, and its `Drop` removes the
    // container (synchronously) before the error is returned.
    let kind = ProviderKind::Docker;
    let guard = Guard::Docker(guard);
    let mut server = Server::connect(kind, admin, req.run_id.clone(), started, guard).await?;
    if let Some(wanted) = wanted.filter(|w| *w != server.major()) {
        let has = server.major();
        let _ = server.shutdown().await;
        let explicit = req.image.is_some();
        return Err(StartError::MajorMismatch {
            image,
            has,
            wanted,
            explicit,
        }
        .into());
    }
    server.admin_password = Some(run.password);
    server.notes.append(&mut notes);
    server.restored = restored;
    Ok(server)
}

/// What the report's notes say about the container.
fn container_note(guard: &DockerServer, image: &str, restored: &Restored, port: u16) -> String {
    let data = match restored {
        Restored::Yes => ", restored from the cache",
        _ if guard.image != image => ", copied from the pre-initialised image",
        _ => "",
    };
    format!(
        "docker: container {} from {image}, data directory on tmpfs{data}, {}",
        short_id(&guard.id),
        guard.transport.describe(port)
    )
}

/// One provision's choices, for starting its container.
struct Run<'a> {
    docker: &'a Docker,
    req: &'a ProvisionRequest,
    image: &'a str,
    info: &'a image::ImageInfo,
    /// Where a published port is reached.
    address: String,
    /// Whether to try a unix socket in a bind-mounted directory (see [`transport`]).
    socket: AtomicBool,
    /// What was decided on the way.
    notes: Mutex<Vec<String>>,
    /// This run's superuser password.
    password: String,
}

impl Run<'_> {
    /// The container, from the archive when given (else, or when it cannot be used, from the
    /// pre-initialised image, else by initdb).
    async fn start(
        &self,
        from: Option<&Archive>,
    ) -> Result<(DockerServer, PgConnectOptions, Restored), StartError> {
        if let Some(archive) = from {
            let restore = container::Start::Restore(archive);
            match self.container(self.image, restore, &self.password).await {
                Ok((guard, admin)) => return Ok((guard, admin, Restored::Yes)),
                Err(e) => {
                    let (guard, admin) = self.fresh().await?;
                    return Ok((guard, admin, Restored::Failed(e.into())));
                }
            }
        }
        let (guard, admin) = self.fresh().await?;
        Ok((guard, admin, Restored::NotAsked))
    }

    /// A fresh cluster: the derived image's template when there is one (its password replaced
    /// by this run's), else initdb, preparing the derived image when the engine has seen this
    /// image before (see [`prepared`]).
    async fn fresh(&self) -> Result<(DockerServer, PgConnectOptions), StartError> {
        let key = prepared::key(&self.info.id);
        let start = match prepared::find(self.docker, &key).await {
            prepared::Found::Prepared(p) => {
                let copied = container::Start::Template;
                // One that does not start is passed over (and replaced by this run's).
                match self.container(&p.image, copied, &p.password).await {
                    Ok(started) => return Ok(started),
                    Err(e) => {
                        self.note(format!(
                            "docker: the pre-initialised image {} did not start ({}); preparing another",
                            p.image,
                            ProvisionError::from(e).one_line()
                        ));
                        container::Start::Prepare
                    }
                }
            }
            prepared::Found::Seen => container::Start::Prepare,
            prepared::Found::New => container::Start::Init,
        };
        let (started, ()) =
            tokio::join!(self.container(self.image, start, &self.password), async {
                if matches!(start, container::Start::Init) {
                    prepared::mark_seen(self.docker, &self.info.id, &key).await;
                }
            });
        let (mut guard, admin) = started?;
        if matches!(start, container::Start::Prepare) {
            let base = prepared::Base {
                reference: self.image,
                id: &self.info.id,
            };
            let commit =
                prepared::Commit::start(self.docker, &guard.id, &key, &base, &self.password);
            guard.commit = Some(commit);
        }
        Ok((guard, admin))
    }

    /// Create and start a container from `image` and wait until it answers as `postgres` with
    /// `password` (then set to this run's); the guard owns it from the moment it exists, so any
    /// failure or cancellation removes it. Over a unix socket when the daemon is local, else (or
    /// when the socket directory turns out not to be shared) over a published port.
    async fn container(
        &self,
        image: &str,
        start: container::Start<'_>,
        password: &str,
    ) -> Result<(DockerServer, PgConnectOptions), StartError> {
        if self.socket.load(Ordering::Relaxed) {
            match transport::SocketDir::new(&self.req.run_id) {
                Ok(dir) => {
                    let socket = transport::Transport::Socket(dir);
                    match self.container_over(image, start, password, socket).await {
                        Err(StartError::SocketNotShared { dir }) => self.no_socket(format!(
                            "the socket directory {} did not show the container's mark",
                            dir.display()
                        )),
                        other => return other,
                    }
                }
                Err(e) => self.no_socket(format!("no socket directory: {e}")),
            }
        }
        let tcp = transport::Transport::Tcp(self.address.clone());
        self.container_over(image, start, password, tcp).await
    }

    fn take_notes(&self) -> Vec<String> {
        self.notes
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
    }

    fn note(&self, note: String) {
        if let Ok(mut notes) = self.notes.lock() {
            notes.push(note);
        }
    }

    fn no_socket(&self, why: String) {
        self.socket.store(false, Ordering::Relaxed);
        self.note(format!("docker: {why}; using a published port"));
    }

    async fn container_over(
        &self,
        image: &str,
        start: container::Start<'_>,
        password: &str,
        transport: transport::Transport,
    ) -> Result<(DockerServer, PgConnectOptions), StartError> {
        let spec = container::Spec {
            image,
            info: self.info,
            run_id: &self.req.run_id,
            password,
            transport: &transport,
            start,
        };
        let id = container::create_and_start(self.docker, &spec).await?;
        let tmpfs = spec.tmpfs();
        let guard = DockerServer {
            docker: self.docker.clone(),
            id,
            image: image.to_string(),
            commit: None,
            tmpfs,
            transport,
            removed: false,
        };
        let port = match &guard.transport {
            transport::Transport::Tcp(_) => {
                container::published_port(self.docker, &guard.id).await?
            }
            transport::Transport::Socket(_) => 0,
        };
        let admin = guard.transport.admin(port, password);
        let conn =
            container::wait_ready(self.docker, &guard.id, image, &guard.transport, &admin).await?;
        container::set_password(conn, password, &self.password).await?;
        let admin = guard.transport.admin(port, &self.password);
        Ok((guard, admin))
    }
}

/// The Docker host the client uses, resolved the way testcontainers 0.27 does (without its
/// properties file): `DOCKER_HOST`, else the first existing of `/var/run/docker.sock`,
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

/// A client that answered a ping within [`PING_TIMEOUT`].
async fn ping() -> Result<Docker, PingError> {
    let attempt = async {
        let docker = docker_client_instance()
            .await
            .map_err(|e| PingError::Client(e.to_string()))?;
        docker.ping().await.map_err(PingError::Refused)?;
        Ok::<_, PingError>(docker)
    };
    tokio::time::timeout(PING_TIMEOUT, attempt)
        .await
        .map_err(|_| PingError::Timeout(PING_TIMEOUT))?
}

fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}
