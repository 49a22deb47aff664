//! The local provider's cluster archive (`--cache-dir`): a stopped data directory in one tar,
//! hashed while written and while read, with only the WAL segment it needs
//! ([`crate::provision::archive`]).

use super::*;
use crate::provision::archive::{Hashing, is_wal_segment, redo_wal_file};

/// The WAL segment holding the last checkpoint of a cleanly stopped cluster, from
/// `pg_controldata` next to the server binaries.
pub(super) fn checkpoint_wal_file(bin_dir: &Path, data_dir: &Path) -> Result<String, ArchiveError> {
    // Next to `postgres`, following a symlink (/usr/local/bin/postgres → …/15/bin/postgres).
    let tool = [bin_dir.to_path_buf()]
        .into_iter()
        .chain(
            fs::canonicalize(bin_dir.join("postgres"))
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf)),
        )
        .map(|d| d.join("pg_controldata"))
        .find(|p| is_executable(p))
        .ok_or(ArchiveError::NoControlData)?;
    let out = Command::new(tool)
        .arg("-D")
        .arg(data_dir)
        .env("LC_ALL", "C")
        .output()
        .map_err(ArchiveError::ControlData)?;
    Ok(redo_wal_file(&String::from_utf8_lossy(&out.stdout))?)
}

/// Write the (stopped) data directory as a tar archive, leaving out every WAL segment but
/// `keep_wal`; returns its SHA-256.
pub(super) fn write_archive(
    data_dir: &Path,
    tar: &Path,
    keep_wal: &str,
) -> Result<String, ArchiveError> {
    let write = || -> io::Result<String> {
        let file = File::create(tar)?;
        let mut builder = ::tar::Builder::new(Hashing::new(io::BufWriter::new(file)));
        builder.follow_symlinks(false);
        let skip = |rel: &Path| {
            rel.parent() == Some(Path::new("pg_wal"))
                && rel.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    is_wal_segment(&n) && n != keep_wal
                })
        };
        append_tree(&mut builder, data_dir, Path::new(""), &skip)?;
        let mut out = builder.into_inner()?;
        io::Write::flush(&mut out)?;
        let sha = out.hex();
        out.inner
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()?;
        Ok(sha)
    };
    write().map_err(|source| ArchiveError::Write {
        path: tar.to_path_buf(),
        source,
    })
}

/// Add `root/rel` and everything under it to the archive as `rel`, except what `skip` names.
pub(super) fn append_tree<W: io::Write>(
    builder: &mut ::tar::Builder<W>,
    root: &Path,
    rel: &Path,
    skip: &dyn Fn(&Path) -> bool,
) -> io::Result<()> {
    let path = root.join(rel);
    let meta = fs::symlink_metadata(&path)?;
    if !rel.as_os_str().is_empty() {
        builder.append_path_with_name(&path, rel)?;
    }
    if meta.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(&path)?.collect::<io::Result<Vec<_>>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let child = rel.join(entry.file_name());
            if !skip(&child) {
                append_tree(builder, root, &child, skip)?;
            }
        }
    }
    Ok(())
}

/// Unpack `archive` as the cluster's data directory, checking its SHA-256 over every byte read;
/// hand it to the unprivileged user when running as root.
pub(super) fn extract_archive(
    archive: &Archive,
    cluster: &LocalCluster,
    run_as: Option<&RunAs>,
) -> Result<(), DataDirError> {
    unpack_verified(archive, cluster, run_as).map_err(|cause| DataDirError::Restore {
        archive: archive.path.clone(),
        cause,
    })
}

fn unpack_verified(
    archive: &Archive,
    cluster: &LocalCluster,
    run_as: Option<&RunAs>,
) -> Result<(), RestoreError> {
    let file = File::open(&archive.path)?;
    let mut reader = Hashing::new(io::BufReader::new(file));
    let mut tar = ::tar::Archive::new(&mut reader);
    tar.set_preserve_permissions(true);
    tar.unpack(&cluster.data_dir)?;
    // The archive's end padding, so the hash covers the whole file.
    io::copy(&mut reader, &mut io::sink())?;
    let got = reader.hex();
    if got != archive.sha256 {
        return Err(RestoreError::Digest {
            got,
            want: archive.sha256.clone(),
        });
    }
    if let Some(user) = run_as {
        chown_tree(&cluster.data_dir, user)?;
    }
    fs::set_permissions(&cluster.data_dir, fs::Permissions::from_mode(0o700))?;
    Ok(())
}

pub(super) fn chown_tree(dir: &Path, user: &RunAs) -> io::Result<()> {
    nix::unistd::fchownat(
        None,
        dir,
        Some(user.uid),
        Some(user.gid),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if fs::symlink_metadata(dir)?.is_dir() {
        for entry in fs::read_dir(dir)? {
            chown_tree(&entry?.path(), user)?;
        }
    }
    Ok(())
}
