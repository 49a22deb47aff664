//! The local provider's cluster archive (`--cache-dir`): a stopped data directory in one tar,
//! hashed while written and while read, with only the WAL segment it needs.

use super::*;

/// A data directory archived by [`LocalCluster::stop_archiving`], with the SHA-256 it must have.
#[derive(Debug, Clone)]
pub struct Archive {
    pub path: PathBuf,
    pub sha256: String,
}

/// Writes through to `inner` and hashes what passes.
pub(super) struct Hashing<T> {
    inner: T,
    hash: sha2::Sha256,
}

impl<T: io::Write> io::Write for Hashing<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hash, &buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<T: io::Read> io::Read for Hashing<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hash, &buf[..n]);
        Ok(n)
    }
}

pub(super) fn hex_digest(hash: sha2::Sha256) -> String {
    sha2::Digest::finalize(hash)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The WAL segment holding the last checkpoint of a cleanly stopped cluster: the only one it
/// needs to start (the others are old or recycled segments, 16 MB each).
pub(super) fn checkpoint_wal_file(bin_dir: &Path, data_dir: &Path) -> Result<String, String> {
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
        .ok_or("no pg_controldata next to the server binaries")?;
    let out = Command::new(tool)
        .arg("-D")
        .arg(data_dir)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| format!("cannot run pg_controldata: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let state_ok = text
        .lines()
        .any(|l| l.starts_with("Database cluster state:") && l.ends_with("shut down"));
    let file = text
        .lines()
        .find_map(|l| l.strip_prefix("Latest checkpoint's REDO WAL file:"))
        .map(|f| f.trim().to_string())
        .filter(|f| f.len() == 24 && f.chars().all(|c| c.is_ascii_hexdigit()));
    match (state_ok, file) {
        (true, Some(f)) => Ok(f),
        _ => Err(format!(
            "the cluster did not shut down cleanly (pg_controldata: {})",
            text.lines()
                .find(|l| l.starts_with("Database cluster state:"))
                .unwrap_or("no state")
        )),
    }
}

/// Write the (stopped) data directory as a tar archive, leaving out every WAL segment but
/// `keep_wal`; returns its SHA-256.
pub(super) fn write_archive(data_dir: &Path, tar: &Path, keep_wal: &str) -> Result<String, String> {
    let write = || -> io::Result<String> {
        let file = File::create(tar)?;
        let mut builder = ::tar::Builder::new(Hashing {
            inner: io::BufWriter::new(file),
            hash: sha2::Sha256::default(),
        });
        builder.follow_symlinks(false);
        let skip = |rel: &Path| {
            rel.parent() == Some(Path::new("pg_wal"))
                && rel.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.len() == 24 && n.chars().all(|c| c.is_ascii_hexdigit()) && n != keep_wal
                })
        };
        append_tree(&mut builder, data_dir, Path::new(""), &skip)?;
        let mut out = builder.into_inner()?;
        io::Write::flush(&mut out)?;
        out.inner
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()?;
        Ok(hex_digest(out.hash))
    };
    write().map_err(|e| {
        format!(
            "could not archive the data directory to {}: {e}",
            tar.display()
        )
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
) -> Result<(), (String, String)> {
    let what = || {
        format!(
            "could not restore the cached cluster {}",
            archive.path.display()
        )
    };
    let file = File::open(&archive.path).map_err(|e| (what(), e.to_string()))?;
    let mut reader = Hashing {
        inner: io::BufReader::new(file),
        hash: sha2::Sha256::default(),
    };
    let mut tar = ::tar::Archive::new(&mut reader);
    tar.set_preserve_permissions(true);
    tar.unpack(&cluster.data_dir)
        .map_err(|e| (what(), e.to_string()))?;
    // The archive's end padding, so the hash covers the whole file.
    io::copy(&mut reader, &mut io::sink()).map_err(|e| (what(), e.to_string()))?;
    let got = hex_digest(reader.hash);
    if got != archive.sha256 {
        return Err((
            what(),
            format!(
                "its SHA-256 is {got}, the manifest says {} (corrupt or tampered)",
                archive.sha256
            ),
        ));
    }
    let own = || -> io::Result<()> {
        if let Some(user) = run_as {
            chown_tree(&cluster.data_dir, user)?;
        }
        fs::set_permissions(&cluster.data_dir, fs::Permissions::from_mode(0o700))
    };
    own().map_err(|e| (what(), e.to_string()))
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
