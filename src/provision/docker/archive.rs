//! The container's cluster archived for `--cache-dir`: the server stopped cleanly inside the
//! container (which stays, with its tmpfs, while the start script sees `archiving`), every WAL
//! segment but the checkpoint's removed, and the data directory streamed out by `tar` through
//! `docker exec` into the cache file, hashed on the way. The tmpfs is not visible to the
//! daemon's archive API (`docker cp`), hence `exec`.

use std::io::Write;
use std::path::Path;

use futures_util::StreamExt;
use testcontainers_modules::testcontainers::bollard::Docker;
use testcontainers_modules::testcontainers::bollard::container::LogOutput;
use testcontainers_modules::testcontainers::bollard::exec::{CreateExecOptions, StartExecResults};

use super::error::ArchiveError;
use crate::provision::archive::{Hashing, redo_wal_file};

/// Stop the server (fast shutdown: a checkpoint, a clean data directory) and print its control
/// data. `$0` is the tmpfs mount, the data directory its `data`.
const STOP: &str = r#"set -eu
: >"$0/archiving"
pg_ctl stop -D "$0/data" -m fast -w -t 60 -s
LC_ALL=C pg_controldata "$0/data""#;

/// Remove every WAL segment but `$1` and write the data directory `$0` as a tar to stdout.
const TAR: &str = r#"set -eu
cd "$0"
for f in pg_wal/*; do
    case ${f#pg_wal/} in
    "$1") ;;
    ????????????????????????) rm -f "$f" ;;
    esac
done
exec tar -cf - ."#;

/// Archive the (running) container's data directory (`<tmpfs>/data`) to `tar`; returns the
/// archive's SHA-256.
pub(super) async fn archive(
    docker: &Docker,
    id: &str,
    tmpfs: &str,
    tar: &Path,
) -> Result<String, ArchiveError> {
    let data = format!("{tmpfs}/data");
    let mut control = Vec::new();
    let stop = ["sh", "-c", STOP, tmpfs];
    exec(docker, id, "pg_ctl stop", &stop, &mut control).await?;
    let keep = redo_wal_file(&String::from_utf8_lossy(&control))?;
    let write_error = |source| ArchiveError::Write {
        path: tar.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(tar).map_err(write_error)?;
    let mut out = Hashing::new(std::io::BufWriter::new(file));
    exec(
        docker,
        id,
        "tar",
        &["sh", "-c", TAR, &data, &keep],
        &mut out,
    )
    .await?;
    out.flush().map_err(write_error)?;
    let sha = out.hex();
    out.inner
        .into_inner()
        .map_err(|e| write_error(e.into_error()))?
        .sync_all()
        .map_err(write_error)?;
    Ok(sha)
}

/// Run `cmd` in the container, its stdout into `out`; fails on a non-zero exit, with its stderr.
async fn exec(
    docker: &Docker,
    id: &str,
    step: &'static str,
    cmd: &[&str],
    out: &mut dyn Write,
) -> Result<(), ArchiveError> {
    let api = |source| ArchiveError::Exec { step, source };
    let options = CreateExecOptions {
        cmd: Some(cmd.to_vec()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let created = docker.create_exec(id, options).await.map_err(api)?;
    let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&created.id, None).await.map_err(api)?
    else {
        return Ok(()); // not reached: started attached
    };
    let mut stderr = Vec::new();
    while let Some(chunk) = output.next().await {
        match chunk.map_err(api)? {
            LogOutput::StdOut { message } => out
                .write_all(&message)
                .map_err(|source| ArchiveError::Output { step, source })?,
            LogOutput::StdErr { message } if stderr.len() < 8192 => {
                stderr.extend_from_slice(&message)
            }
            _ => {}
        }
    }
    let code = docker
        .inspect_exec(&created.id)
        .await
        .map_err(api)?
        .exit_code
        .unwrap_or(-1);
    if code != 0 {
        return Err(ArchiveError::Failed {
            step,
            code,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        });
    }
    Ok(())
}
