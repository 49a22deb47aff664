//! How ci-gate reaches the server in the container.
//!
//! When the daemon runs on this machine (a unix socket, and the daemon's host name is ours), the
//! container gets no network at all and the server listens on a unix socket in a directory of
//! this machine bind-mounted into it, as the local provider's does: no port to publish, no
//! network to set up and tear down (≈0.15 s each way), nothing reachable from outside. The start
//! script marks the directory first thing; if the mark does not show here, the directory is not
//! shared after all (a daemon in a VM or another container with the same host name, SELinux
//! labels) and the container is made again with a published TCP port, which works everywhere.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use testcontainers_modules::testcontainers::bollard::Docker;
use testcontainers_modules::testcontainers::bollard::models::{
    ContainerCreateBody, HostConfig, PortBinding,
};
use testcontainers_modules::testcontainers::bollard::query_parameters::InspectNetworkOptions;

use super::{cleanup, resolved_docker_host};

/// Where the socket directory is mounted in the container.
const SOCKET_MOUNT: &str = "/var/run/ci-gate-socket";
/// The file the start script creates in the socket directory first thing.
const STARTED: &str = "ci-gate-started";
/// How long after the start the mark may take to show before the directory is taken as not
/// shared.
pub(super) const SOCKET_GRACE: Duration = Duration::from_secs(5);
/// The container's port, as the Engine API names it.
pub(super) const PORT: &str = "5432/tcp";
/// Longest unix socket path the kernel accepts (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A directory of this machine for the server's socket: a private directory (`0711`: others
/// may pass, not list) holding one with a random name that the container's user may write in.
/// Removed, with what the server left in it, when dropped.
pub(super) struct SocketDir {
    /// Held for its `Drop`, which removes the whole tree.
    _outer: tempfile::TempDir,
    inner: PathBuf,
}

impl SocketDir {
    pub fn new(run_id: &str) -> std::io::Result<SocketDir> {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir();
        // <base>/ci-gate-<run>-XXXXXX/<12 hex>/.s.PGSQL.5432
        let long = base.as_os_str().len() + 60 + run_id.len() > MAX_SOCKET_PATH;
        let base = if long { PathBuf::from("/tmp") } else { base };
        let outer = tempfile::Builder::new()
            .prefix(&format!("ci-gate-{run_id}-"))
            .tempdir_in(base)?;
        std::fs::set_permissions(outer.path(), std::fs::Permissions::from_mode(0o711))?;
        let name = uuid::Uuid::new_v4().simple().to_string();
        let inner = outer.path().join(&name[..12]);
        std::fs::create_dir(&inner)?;
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o777))?;
        Ok(SocketDir {
            _outer: outer,
            inner,
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner
    }

    /// Whether the start script's mark is there.
    pub fn started(&self) -> bool {
        self.inner.join(STARTED).exists()
    }
}

/// How ci-gate reaches the server of one container.
pub(super) enum Transport {
    Socket(SocketDir),
    /// A published port, reached at this address.
    Tcp(String),
}

impl Transport {
    /// The server settings that follow from the transport.
    pub fn settings(&self, tmpfs: &str) -> [String; 2] {
        match self {
            Transport::Socket(_) => [
                "listen_addresses=".into(),
                format!("unix_socket_directories={SOCKET_MOUNT}"),
            ],
            Transport::Tcp(_) => [
                "listen_addresses=*".into(),
                format!("unix_socket_directories={tmpfs}"),
            ],
        }
    }

    /// The container's network, mounts and environment for this transport.
    pub fn configure(&self, body: &mut ContainerCreateBody, host: &mut HostConfig) {
        match self {
            Transport::Socket(dir) => {
                host.network_mode = Some("none".into());
                // `z`: relabelled for containers where SELinux enforces (ignored elsewhere).
                host.binds = Some(vec![format!("{}:{SOCKET_MOUNT}:z", dir.path().display())]);
                let mark = format!("CI_GATE_STARTED={SOCKET_MOUNT}/{STARTED}");
                body.env.get_or_insert_with(Vec::new).push(mark);
            }
            Transport::Tcp(address) => {
                // Loopback only when that is where it is reached from.
                let ip = if address == "127.0.0.1" {
                    "127.0.0.1"
                } else {
                    ""
                };
                let binding = PortBinding {
                    host_ip: Some(ip.into()),
                    host_port: Some(String::new()),
                };
                body.exposed_ports = Some(vec![PORT.into()]);
                host.port_bindings = Some([(PORT.to_string(), Some(vec![binding]))].into());
            }
        }
    }

    /// Superuser connection options (`port`: the published one; unused for a socket).
    pub fn admin(&self, port: u16, password: &str) -> PgConnectOptions {
        let options = PgConnectOptions::new_without_pgpass()
            .username("postgres")
            .password(password)
            .database("postgres")
            .application_name("ci-gate");
        match self {
            // sqlx: `.socket(dir)` takes the directory; it appends `.s.PGSQL.<port>`.
            Transport::Socket(dir) => options
                .socket(dir.path())
                .port(5432)
                .ssl_mode(PgSslMode::Disable),
            Transport::Tcp(address) => options.host(address).port(port).ssl_mode(PgSslMode::Prefer),
        }
    }

    /// Where the server is reached, for messages.
    pub fn describe(&self, port: u16) -> String {
        match self {
            Transport::Socket(dir) => format!("unix socket in {}", dir.path().display()),
            Transport::Tcp(address) => format!("{address}:{port}"),
        }
    }
}

/// Whether the daemon runs on this machine and can mount its directories: reached through a unix
/// socket, and its host name is this machine's.
pub(super) async fn daemon_is_local(docker: &Docker) -> bool {
    if !resolved_docker_host().starts_with("unix://") {
        return false;
    }
    match tokio::time::timeout(Duration::from_secs(3), docker.info()).await {
        Ok(Ok(info)) => info.name.is_some_and(|n| n == cleanup::this_host()),
        _ => false,
    }
}

/// Where this process reaches a port the daemon publishes, as testcontainers decides it: the
/// daemon's host for a `tcp://` DOCKER_HOST; inside a container (`/.dockerenv`), the default
/// bridge's gateway; otherwise this machine (IPv4: `localhost` may resolve to ::1).
pub(super) async fn reachable_address(docker: &Docker) -> String {
    let host = resolved_docker_host();
    for scheme in ["tcp://", "http://", "https://"] {
        if let Some(rest) = host.strip_prefix(scheme) {
            let authority = rest.split('/').next().unwrap_or(rest);
            let name = match authority.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
                _ => authority,
            };
            return name.trim_matches(['[', ']']).to_string();
        }
    }
    if Path::new("/.dockerenv").exists() {
        let gateway = docker
            .inspect_network("bridge", None::<InspectNetworkOptions>)
            .await
            .ok()
            .and_then(|n| n.ipam)
            .and_then(|ipam| ipam.config)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| c.gateway)
            .find(|g| !g.trim().is_empty());
        if let Some(gateway) = gateway {
            return gateway;
        }
    }
    "127.0.0.1".to_string()
}
