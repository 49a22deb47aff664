//! One container: created with ci-gate's start script, started (with an archived cluster
//! streamed into its tmpfs when restoring), its published port found, and waited for with a
//! connection probe that also watches for the container's exit.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use sqlx::PgConnection;
use sqlx::postgres::PgConnectOptions;
use testcontainers_modules::testcontainers::bollard::Docker;
use testcontainers_modules::testcontainers::bollard::errors::Error as BollardError;
use testcontainers_modules::testcontainers::bollard::models::{
    ContainerCreateBody, ContainerWaitResponse, HostConfig,
};
use testcontainers_modules::testcontainers::bollard::query_parameters::{
    AttachContainerOptionsBuilder, LogsOptionsBuilder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::{RestoreError, StartError, brief, one_line};
use super::image::ImageInfo;
use super::transport::{PORT, SOCKET_GRACE, Transport};
use super::{LABEL_CREATED, LABEL_HOST, LABEL_PID, LABEL_RUN, STARTUP_TIMEOUT, cleanup};
use crate::provision::archive::{Archive, hex_digest};
use crate::provision::{connect_quiet, quote_literal};

/// The tmpfs mount holding the data directory (`data`) and the start script's files. Not the
/// image's own data path: pre-18 official images declare a VOLUME there, which would hide it.
const TMPFS: &str = "/var/lib/postgresql/ci-gate";
/// The tmpfs mount of a container from a pre-initialised image: that image holds [`TMPFS`] as
/// the preparing container's mount point, owned by root, and a tmpfs mounted on an existing
/// directory takes its owner and mode, which would keep `postgres` out.
const TMPFS_COPY: &str = "/var/lib/postgresql/ci-gate-copy";
/// Pause between two readiness probes (the local provider's too).
const PROBE_INTERVAL: Duration = Duration::from_millis(20);
/// Lines of the container's log shown in an error.
const LOG_TAIL_LINES: &str = "30";

/// The container's command (`sh -c SCRIPT ci-gate MODE SETTINGS…`). Instead of the image's
/// entrypoint, which initialises through a temporary server it then stops (≈0.3 s), and runs
/// `/docker-entrypoint-initdb.d` scripts ci-gate has no use for:
/// - `init`: `initdb` into the tmpfs and start `postgres`. An image that ships init scripts
///   (extensions, `shared_preload_libraries`) goes through its own entrypoint instead;
/// - `prepare`: `init`, copying the fresh cluster to the template directory first (committed
///   into a derived image, see [`super::prepared`]);
/// - `template`: copy the derived image's template into the tmpfs and start `postgres`;
/// - `restore`: unpack the archived data directory read from stdin, set this run's password in
///   single-user mode, and start `postgres`.
///
/// `postgres` runs as a child, so that when ci-gate stops it to archive the data directory (it
/// creates `archiving` first) the container, and with it the tmpfs, stays until the archive is
/// read. Otherwise the container ends with the server.
pub(super) const SCRIPT: &str = r#"set -eu
[ -z "${CI_GATE_STARTED:-}" ] || : >"$CI_GATE_STARTED"
T=$CI_GATE_TMPFS
D=$T/data
TPL=/var/lib/postgresql/ci-gate-template
mode=$1
shift
umask 077
copy() {
    mkdir -p "$2"
    tar -cf - -C "$1" . | tar -xf - -C "$2"
}
case $mode in
restore)
    mkdir -p "$D"
    tar -xf - -C "$D"
    printf "ALTER ROLE postgres PASSWORD '%s';\n" "$CI_GATE_PASSWORD" |
        postgres --single -c fsync=off -D "$D" postgres >/dev/null
    ;;
template)
    copy "$TPL" "$D"
    ;;
init | prepare)
    for f in /docker-entrypoint-initdb.d/*; do
        if [ -e "$f" ] && [ -n "${CI_GATE_ENTRYPOINT:-}" ]; then mode=entrypoint; fi
    done
    if [ "$mode" != entrypoint ]; then
        printf '%s\n' "$CI_GATE_PASSWORD" >"$T/pw"
        initdb -D "$D" --username=postgres --pwfile="$T/pw" --auth=scram-sha-256 \
            --encoding=UTF8 --locale=C --no-sync >/dev/null
        rm -f "$T/pw"
        printf 'host all all all scram-sha-256\n' >>"$D/pg_hba.conf"
        if [ "$mode" = prepare ]; then
            if copy "$D" "$TPL" 2>/dev/null; then
                echo "ci-gate: template prepared"
            else
                echo "ci-gate: template not prepared"
            fi
        fi
    else
        echo "ci-gate: template not prepared"
    fi
    ;;
esac
if [ "$mode" = entrypoint ]; then
    POSTGRES_PASSWORD=$CI_GATE_PASSWORD PGDATA=$D $CI_GATE_ENTRYPOINT postgres "$@" &
else
    unset CI_GATE_PASSWORD
    postgres -D "$D" "$@" &
fi
pid=$!
status=0
wait "$pid" || status=$?
while [ -e "$T/archiving" ]; do sleep 0.1; done
exit "$status"
"#;

/// Server settings for a throwaway cluster: the local provider's (durability off, no
/// autovacuum or JIT, dynamic shared memory in the data directory). Where it listens follows
/// from the [`Transport`].
const SERVER_SETTINGS: [&str; 9] = [
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "wal_level=minimal",
    "max_wal_senders=0",
    "autovacuum=off",
    "jit=off",
    "dynamic_shared_memory_type=mmap",
    "log_checkpoints=off",
];

/// How the container gets its data directory.
#[derive(Debug, Clone, Copy)]
pub(super) enum Start<'a> {
    /// initdb.
    Init,
    /// initdb, and a copy for the derived image.
    Prepare,
    /// The derived image's template.
    Template,
    /// This archive, streamed in.
    Restore(&'a Archive),
}

/// What a container is made from.
pub(super) struct Spec<'a> {
    pub image: &'a str,
    pub info: &'a ImageInfo,
    pub run_id: &'a str,
    /// The superuser's password the server starts with (a template keeps its own).
    pub password: &'a str,
    pub transport: &'a Transport,
    pub start: Start<'a>,
}

impl Spec<'_> {
    /// The tmpfs mount point (the data directory is its `data`).
    pub fn tmpfs(&self) -> &'static str {
        match self.start {
            Start::Template => TMPFS_COPY,
            _ => TMPFS,
        }
    }

    fn restore(&self) -> Option<&Archive> {
        match self.start {
            Start::Restore(archive) => Some(archive),
            _ => None,
        }
    }

    fn body(&self) -> ContainerCreateBody {
        let mode = match self.start {
            Start::Init => "init",
            Start::Prepare => "prepare",
            Start::Template => "template",
            Start::Restore(_) => "restore",
        };
        let mut command = vec!["sh", "-c", SCRIPT, "ci-gate", mode];
        command.extend(SERVER_SETTINGS.iter().flat_map(|s| ["-c", s]));
        let listening = self.transport.settings(self.tmpfs());
        command.extend(listening.iter().flat_map(|s| ["-c", s.as_str()]));
        let restoring = self.restore().map(|_| true);
        let mut host = HostConfig {
            tmpfs: Some(HashMap::from([(
                self.tmpfs().to_string(),
                "rw,mode=1777".to_string(),
            )])),
            ..Default::default()
        };
        let mut body = ContainerCreateBody {
            image: Some(self.image.to_string()),
            user: Some("postgres".into()),
            entrypoint: Some(command.into_iter().map(str::to_string).collect()),
            env: Some(vec![
                format!("CI_GATE_PASSWORD={}", self.password),
                format!("CI_GATE_ENTRYPOINT={}", self.info.entrypoint.join(" ")),
                format!("CI_GATE_TMPFS={}", self.tmpfs()),
            ]),
            labels: Some(labels(self.run_id)),
            open_stdin: restoring,
            stdin_once: restoring,
            attach_stdin: restoring,
            ..Default::default()
        };
        self.transport.configure(&mut body, &mut host);
        body.host_config = Some(host);
        body
    }
}

fn labels(run_id: &str) -> HashMap<String, String> {
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    HashMap::from([
        (LABEL_RUN.to_string(), run_id.to_string()),
        (LABEL_PID.to_string(), std::process::id().to_string()),
        (LABEL_CREATED.to_string(), created.to_string()),
        (LABEL_HOST.to_string(), cleanup::this_host()),
    ])
}

/// Create and start the container; with an archive, stream it in. Returns the container id.
/// On error, nothing of this run is left.
pub(super) async fn create_and_start(
    docker: &Docker,
    spec: &Spec<'_>,
) -> Result<String, StartError> {
    // Until the id is known, a cancelled start is cleaned up by the run label.
    let cancelled = cleanup::RemoveRunOnDrop::armed(spec.run_id);
    let created = docker
        .create_container(None, spec.body())
        .await
        .map_err(|source| StartError::Create {
            image: spec.image.to_string(),
            source,
        });
    let id = match created {
        Ok(c) => c.id,
        Err(e) => {
            cleanup::remove_run_containers(docker, spec.run_id).await;
            cancelled.disarm();
            return Err(e);
        }
    };
    let started = start(docker, &id, spec).await;
    if started.is_err() {
        let _ = cleanup::remove_container(docker, &id).await;
    }
    cancelled.disarm();
    started.map(|()| id)
}

async fn start(docker: &Docker, id: &str, spec: &Spec<'_>) -> Result<(), StartError> {
    let stdin = match spec.restore() {
        Some(_) => {
            let options = AttachContainerOptionsBuilder::new()
                .stdin(true)
                .stream(true)
                .build();
            let attached = docker
                .attach_container(id, Some(options))
                .await
                .map_err(RestoreError::Attach)?;
            Some(attached.input)
        }
        None => None,
    };
    docker
        .start_container(id, None)
        .await
        .map_err(|source| StartError::Start {
            image: spec.image.to_string(),
            leftovers: 0,
            source,
        })?;
    if let (Some(mut input), Some(archive)) = (stdin, spec.restore()) {
        send_archive(&mut input, archive).await?;
    }
    Ok(())
}

/// Stream the archive to the container's stdin, hashing every byte; the stream is closed either
/// way (a half-sent archive makes `tar` fail and the container exit).
async fn send_archive(
    input: &mut (impl tokio::io::AsyncWrite + Unpin),
    archive: &Archive,
) -> Result<(), RestoreError> {
    let mut file = tokio::fs::File::open(&archive.path)
        .await
        .map_err(RestoreError::Read)?;
    let mut hash = sha2::Sha256::default();
    let mut buf = vec![0u8; 1 << 20];
    let sent = async {
        loop {
            let n = file.read(&mut buf).await.map_err(RestoreError::Read)?;
            if n == 0 {
                return Ok(());
            }
            sha2::Digest::update(&mut hash, &buf[..n]);
            input
                .write_all(&buf[..n])
                .await
                .map_err(RestoreError::Send)?;
        }
    }
    .await;
    let closed = input.shutdown().await.map_err(RestoreError::Send);
    sent.and(closed)?;
    let got = hex_digest(hash);
    if got != archive.sha256 {
        return Err(RestoreError::Digest {
            got,
            want: archive.sha256.clone(),
        });
    }
    Ok(())
}

/// The host port 5432 is published on (IPv4).
pub(super) async fn published_port(docker: &Docker, id: &str) -> Result<u16, StartError> {
    let port_error = |cause: String| StartError::Port {
        id: id.to_string(),
        cause,
    };
    let inspected = docker
        .inspect_container(id, None)
        .await
        .map_err(|e| port_error(brief(&e)))?;
    inspected
        .network_settings
        .and_then(|n| n.ports)
        .and_then(|mut ports| ports.remove(PORT).flatten())
        .unwrap_or_default()
        .into_iter()
        .filter(|b| !b.host_ip.as_deref().unwrap_or_default().contains(':'))
        .find_map(|b| b.host_port.and_then(|p| p.parse().ok()))
        .ok_or_else(|| port_error(format!("{PORT} is not published")))
}

/// Probe until the server accepts a connection (returned), the container exits, or the
/// deadline passes. Over a socket, the start script's mark must show within
/// [`SOCKET_GRACE`](super::transport::SOCKET_GRACE), else the directory is not shared.
pub(super) async fn wait_ready(
    docker: &Docker,
    id: &str,
    image: &str,
    transport: &Transport,
    admin: &PgConnectOptions,
) -> Result<PgConnection, StartError> {
    let started = Instant::now();
    let exited = docker.wait_container(id, None).into_future();
    tokio::pin!(exited);
    loop {
        let unmarked = match transport {
            Transport::Socket(dir) if !dir.started() => Some(dir.path()),
            _ => None,
        };
        if let Some(dir) = unmarked
            && started.elapsed() > SOCKET_GRACE
        {
            let dir = dir.to_path_buf();
            return Err(StartError::SocketNotShared { dir });
        }
        let probe = async {
            if unmarked.is_some() {
                tokio::time::sleep(PROBE_INTERVAL).await;
                return Err("the container has not started yet".to_string());
            }
            match tokio::time::timeout(Duration::from_secs(2), connect_quiet(admin)).await {
                Ok(Ok(conn)) => Ok(conn),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("connection attempt timed out".to_string()),
            }
        };
        let last_error = tokio::select! {
            biased;
            (waited, _) = &mut exited => return Err(exited_error(docker, id, image, waited).await),
            probed = probe => match probed {
                Ok(conn) => return Ok(conn),
                Err(e) => e,
            },
        };
        if started.elapsed() >= STARTUP_TIMEOUT {
            return Err(StartError::NotReady {
                image: image.to_string(),
                id: id.to_string(),
                address: transport.describe(admin.get_port()),
                last_error: one_line(&last_error),
                logs: logs_tail(docker, id).await,
            });
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

async fn exited_error(
    docker: &Docker,
    id: &str,
    image: &str,
    waited: Option<Result<ContainerWaitResponse, BollardError>>,
) -> StartError {
    let status = match waited {
        Some(Ok(w)) => format!("exit code {}", w.status_code),
        Some(Err(e)) => brief(&e),
        None => "status unknown".into(),
    };
    let logs = logs_tail(docker, id).await;
    StartError::Exited {
        image: image.to_string(),
        status,
        logs,
    }
}

/// Give the superuser `new` as password (the server was started with `old`), and close `conn`.
pub(super) async fn set_password(
    mut conn: PgConnection,
    old: &str,
    new: &str,
) -> Result<(), StartError> {
    use sqlx::Connection;
    if old != new {
        let sql = format!("ALTER ROLE postgres PASSWORD {}", quote_literal(new));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .map_err(|source| StartError::Password { source })?;
    }
    let _ = conn.close().await;
    Ok(())
}

/// The last `lines` lines the container logged (bounded in time).
pub(super) async fn logs(docker: &Docker, id: &str, lines: &str) -> String {
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .tail(lines)
        .build();
    let mut stream = docker.logs(id, Some(options));
    let mut text = String::new();
    let collect = async {
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), collect).await;
    text
}

/// The last lines the container logged, indented, for an error message.
pub(super) async fn logs_tail(docker: &Docker, id: &str) -> String {
    let text = logs(docker, id, LOG_TAIL_LINES).await;
    if text.trim().is_empty() {
        return "(the container logged nothing)".into();
    }
    let mut out = String::from("last lines of the container's log:");
    for line in text.lines() {
        out.push_str("\n  | ");
        out.push_str(line);
    }
    out
}
