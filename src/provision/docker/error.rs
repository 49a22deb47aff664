//! The docker provider's errors, one per operation, and their presentation: a [`StartError`]
//! becomes a [`ProvisionError`] (what failed, the evidence, what to do) here and nowhere else;
//! the others are shown as one-line reasons or cleanup warnings.

use std::time::Duration;

use testcontainers_modules::testcontainers::bollard::errors::Error as BollardError;

use super::{DAEMON_HINT, STARTUP_TIMEOUT, short_id};
use crate::provision::ProvisionError;
use crate::provision::archive::NotShutDown;

/// A Docker Engine API error in one line: the daemon's own message and status when it sent one.
pub(crate) fn brief(e: &BollardError) -> String {
    let text = match e {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => format!("{message} (HTTP {status_code})"),
        other => other.to_string(),
    };
    one_line(&text)
}

pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A bounded API call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{}", brief(.0))]
    Api(#[from] BollardError),
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
}

/// Why no client answered the ping.
#[derive(Debug, thiserror::Error)]
pub enum PingError {
    #[error("{}", one_line(.0))]
    Client(String),
    #[error("{}", brief(.0))]
    Refused(#[source] BollardError),
    #[error("no reply within {} s", .0.as_secs())]
    Timeout(Duration),
}

/// Why [`super::usable`] says no (one line, for `--provider auto`'s list of what was tried).
#[derive(Debug, thiserror::Error)]
pub enum UsableError {
    #[error("no Docker daemon answers at {host}: {cause}")]
    NoDaemon { host: String, cause: PingError },
    #[error("image {image} not present and no registry reachable ({})", brief(.source))]
    NoRegistry {
        image: String,
        #[source]
        source: BollardError,
    },
    #[error("image {image} not present and no registry reachable (no answer within {} s)", .waited.as_secs())]
    RegistryTimeout { image: String, waited: Duration },
    #[error("could not inspect image {image}: {}", brief(.source))]
    Inspect {
        image: String,
        #[source]
        source: BollardError,
    },
}

/// Why an archived cluster could not be streamed into the container.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("could not attach to the container's stdin: {}", brief(.0))]
    Attach(#[source] BollardError),
    #[error("could not read the archive: {0}")]
    Read(#[source] std::io::Error),
    #[error("could not stream the archive into the container: {0}")]
    Send(#[source] std::io::Error),
    #[error("its SHA-256 is {got}, the manifest says {want} (corrupt or tampered)")]
    Digest { got: String, want: String },
}

/// Why [`super::provision`] gave no server. Shown as a [`ProvisionError`].
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("docker provider: no Docker daemon answers at {host}")]
    NoDaemon { host: String, cause: PingError },
    #[error("--pg-version {given}: not a PostgreSQL major version")]
    BadVersion { given: String },
    #[error("docker provider: image {image} is not present and could not be pulled")]
    Pull {
        image: String,
        #[source]
        source: BollardError,
    },
    #[error("docker provider: could not inspect image {image}")]
    Inspect {
        image: String,
        #[source]
        source: BollardError,
    },
    #[error(
        "docker provider: image {image} runs PostgreSQL {has}, but --pg-version asks for {wanted}"
    )]
    MajorMismatch {
        image: String,
        has: u32,
        wanted: u32,
        /// The image was named by `--image` (else derived from --pg-version).
        explicit: bool,
    },
    #[error("docker provider: could not create a container from {image}")]
    Create {
        image: String,
        #[source]
        source: BollardError,
    },
    #[error("docker provider: could not start a container from {image}")]
    Start {
        image: String,
        leftovers: usize,
        #[source]
        source: BollardError,
    },
    #[error(
        "docker provider: could not find the published port of container {}",
        short_id(id)
    )]
    Port { id: String, cause: String },
    #[error("docker provider: the container from {image} exited during startup ({status})")]
    Exited {
        image: String,
        status: String,
        logs: String,
    },
    #[error("docker provider: container {} ({image}) did not accept connections at {address} within {} s", short_id(id), STARTUP_TIMEOUT.as_secs())]
    NotReady {
        image: String,
        id: String,
        address: String,
        last_error: String,
        logs: String,
    },
    #[error("docker provider: the socket directory {} is not shared with the container", dir.display())]
    SocketNotShared { dir: std::path::PathBuf },
    #[error("docker provider: could not set this run's password on the pre-initialised cluster")]
    Password {
        #[source]
        source: sqlx::Error,
    },
    #[error("docker provider: could not restore the cached cluster into the container")]
    Restore(#[from] RestoreError),
}

const IMAGE_HINT: &str = "is the image a PostgreSQL image following the official image's conventions \
     (initdb and postgres on PATH, a `postgres` user)? Try `docker run --rm -e POSTGRES_PASSWORD=x IMAGE`, \
     or use --provider local";

impl StartError {
    /// The evidence, under the headline.
    fn detail(&self) -> String {
        match self {
            StartError::NoDaemon { cause, .. } => format!("ping: {cause}"),
            StartError::Pull { source, .. }
            | StartError::Inspect { source, .. }
            | StartError::Create { source, .. } => brief(source),
            StartError::Start {
                source, leftovers, ..
            } if *leftovers > 0 => format!(
                "{}\n(removed {leftovers} container(s) left by the failed start)",
                brief(source)
            ),
            StartError::Start { source, .. } => brief(source),
            StartError::Port { cause, .. } => cause.clone(),
            StartError::Exited { logs, .. } => logs.clone(),
            StartError::NotReady {
                last_error, logs, ..
            } => format!("last attempt: {last_error}\n{logs}"),
            StartError::Restore(e) => e.to_string(),
            StartError::Password { source } => source.to_string(),
            StartError::BadVersion { .. }
            | StartError::MajorMismatch { .. }
            | StartError::SocketNotShared { .. } => String::new(),
        }
    }

    fn hint(&self) -> String {
        match self {
            StartError::NoDaemon { .. } => DAEMON_HINT.into(),
            StartError::BadVersion { .. } => "pass a major version such as 15, 16, 17 or 18".into(),
            StartError::Pull { .. } => {
                "pull or build it first (`docker pull IMAGE`, which uses your registry login), \
                 point --image at a local image, or use --provider local"
                    .into()
            }
            StartError::Inspect { .. } => "check `docker image inspect IMAGE`".into(),
            StartError::MajorMismatch {
                has,
                wanted,
                explicit: true,
                ..
            } => format!(
                "pass --image with a PostgreSQL {wanted} image (e.g. postgres:{wanted}), or --pg-version {has}, \
                 or drop one of the two"
            ),
            StartError::MajorMismatch { has, wanted, .. } => format!(
                "the image's tag says {wanted} but it holds {has}: re-pull it (`docker pull postgres:{wanted}`) \
                 or pass --image with a PostgreSQL {wanted} image"
            ),
            StartError::Port { .. } => {
                "check that the Docker host is reachable from here (DOCKER_HOST)".into()
            }
            StartError::Restore(_) => "the cache entry is dropped and rebuilt".into(),
            StartError::SocketNotShared { .. } => "ci-gate uses a published port instead".into(),
            StartError::Create { .. }
            | StartError::Password { .. }
            | StartError::Start { .. }
            | StartError::Exited { .. }
            | StartError::NotReady { .. } => IMAGE_HINT.into(),
        }
    }
}

impl From<StartError> for ProvisionError {
    fn from(e: StartError) -> ProvisionError {
        match e {
            StartError::BadVersion { .. } => ProvisionError::BadInput {
                what: e.to_string(),
                hint: e.hint(),
            },
            _ => ProvisionError::unavailable(e.to_string(), e.detail(), e.hint()),
        }
    }
}

/// Why [`super::DockerServer::stop`] could not remove the container.
#[derive(Debug, thiserror::Error)]
#[error(
    "could not remove docker container {short} ({image}): {cause}; remove it by hand: docker rm -f -v {short}",
    short = short_id(id)
)]
pub struct StopError {
    pub id: String,
    pub image: String,
    pub cause: ApiError,
}

/// Why [`super::DockerServer::stop_archiving`] wrote no archive (the container is removed all
/// the same, unless [`ArchiveError::Cleanup`] says otherwise).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("could not run `{step}` in the container: {}", brief(.source))]
    Exec {
        step: &'static str,
        #[source]
        source: BollardError,
    },
    #[error("`{step}` failed in the container (exit {code}): {}", one_line(.stderr))]
    Failed {
        step: &'static str,
        code: i64,
        stderr: String,
    },
    #[error("could not keep the output of `{step}`: {source}")]
    Output {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    NotShutDown(#[from] NotShutDown),
    #[error("could not write the archive {}: {source}", path.display())]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Archived, but the container was not removed after.
    #[error(transparent)]
    Cleanup(#[from] StopError),
}
