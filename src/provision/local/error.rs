//! The local provider's errors, one per operation. Each message says what failed and, where a
//! person has to act, how; [`super::start_from`] turns the startup ones into a
//! [`ProvisionError`](crate::provision::ProvisionError) with a hint, and
//! [`crate::provision::Server`] shows the stop ones as cleanup warnings.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

use nix::errno::Errno;
use nix::sys::signal::Signal;

use crate::provision::archive::NotShutDown;

/// Why the postmaster could not be signalled or did not exit.
#[derive(Debug, thiserror::Error)]
pub enum PostmasterError {
    #[error("the postmaster's state lock is poisoned (a thread panicked while holding it)")]
    Poisoned,
    #[error("could not send {sig} to PostgreSQL (pid {pid}): {source}")]
    Signal {
        sig: Signal,
        pid: u32,
        #[source]
        source: Errno,
    },
    #[error(
        "PostgreSQL (pid {pid}) is still running after SIGKILL; kill it by hand: kill -9 {pid}"
    )]
    StillRunning { pid: u32 },
}

/// What [`super::LocalCluster::stop`] left behind (either or both).
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub struct StopError {
    pub postmaster: Option<PostmasterError>,
    /// The temp dir that could not be removed, and why.
    pub dir: Option<(PathBuf, io::Error)>,
}

impl StopError {
    fn describe(&self) -> String {
        let mut lines = Vec::new();
        if let Some(e) = &self.postmaster {
            lines.push(e.to_string());
        }
        if let Some((path, e)) = &self.dir {
            lines.push(format!(
                "could not remove the temporary cluster directory {}: {e}; remove it by hand: rm -rf {}",
                path.display(),
                path.display()
            ));
        }
        lines.join("\n")
    }
}

/// Why [`super::LocalCluster::stop_archiving`] wrote no archive (the cluster is stopped and
/// removed all the same, unless [`ArchiveError::Cleanup`] says otherwise).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the server was not running")]
    NotRunning,
    #[error(transparent)]
    Stop(#[from] PostmasterError),
    #[error("no pg_controldata next to the server binaries")]
    NoControlData,
    #[error("cannot run pg_controldata: {0}")]
    ControlData(#[source] io::Error),
    #[error(transparent)]
    NotShutDown(#[from] NotShutDown),
    #[error("could not archive the data directory to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Archived, but the cluster was not cleaned up after.
    #[error(transparent)]
    Cleanup(#[from] StopError),
}

/// Why [`super::remove_leftover`] refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum LeftoverError {
    #[error("{} is not a ci-gate cluster directory", .0.display())]
    NotOurs(PathBuf),
    #[error("the PostgreSQL server of {} is still running (pid {pid})", path.display())]
    StillRunning { path: PathBuf, pid: i32 },
    #[error("could not remove {}: {source}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Why the data directory could not be made by initdb or restored from an archive. `Display` is
/// what failed; [`DataDirError::detail`] the evidence (initdb's log, the I/O error).
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("could not create the initdb log")]
    InitdbLog {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("could not set up initdb")]
    InitdbSetup {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("could not run {}", initdb.display())]
    InitdbSpawn {
        initdb: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("initdb failed ({status})")]
    InitdbFailed { status: ExitStatus, log: String },
    #[error("could not restore the cached cluster {}", archive.display())]
    Restore {
        archive: PathBuf,
        #[source]
        cause: RestoreError,
    },
}

impl DataDirError {
    pub fn detail(&self) -> String {
        match self {
            DataDirError::InitdbLog { path, source }
            | DataDirError::InitdbSetup { path, source } => {
                format!("{}: {source}", path.display())
            }
            DataDirError::InitdbSpawn { source, .. } => source.to_string(),
            DataDirError::InitdbFailed { log, .. } => log.clone(),
            DataDirError::Restore { cause, .. } => cause.to_string(),
        }
    }
}

/// Why an archived cluster could not be unpacked as the data directory.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("its SHA-256 is {got}, the manifest says {want} (corrupt or tampered)")]
    Digest { got: String, want: String },
}

/// Why the server did not come up. `Display` is what happened; [`ReadyError::detail`] the
/// server's log.
#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    #[error("PostgreSQL was not started")]
    NotStarted,
    #[error("PostgreSQL {how} during startup")]
    Exited { how: String, log: String },
    #[error("PostgreSQL did not accept connections within {secs} s")]
    Timeout {
        secs: u64,
        last_error: String,
        log: String,
    },
}

impl ReadyError {
    pub fn detail(&self) -> String {
        match self {
            ReadyError::NotStarted => String::new(),
            ReadyError::Exited { log, .. } => log.clone(),
            ReadyError::Timeout {
                last_error, log, ..
            } => format!("last attempt: {last_error}\n{log}"),
        }
    }
}
