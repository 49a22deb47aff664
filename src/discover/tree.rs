//! A read-only view of files, so readers work the same on disk and on a git tree.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest migration file (or lock file) ci-gate reads: 256 MiB.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Why a file that exists is not read: it is bad input (exit 2), carried inside an
/// [`std::io::Error`] of kind `InvalidInput` so every reader reports it through its usual path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A FIFO, a device, a socket, a directory (after following symlinks).
    #[error("is {0}, not a regular file")]
    NotRegular(&'static str),
    /// Over [`MAX_FILE_BYTES`].
    #[error("is {size} bytes, over the {} MiB ci-gate reads for one file", MAX_FILE_BYTES / (1024 * 1024))]
    TooLarge { size: u64 },
}

impl Refused {
    fn io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, self)
    }

    /// The refusal inside `e`, when it is one.
    pub fn of(e: &std::io::Error) -> Option<&Refused> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<Refused>())
    }
}

/// What a file that is not a regular file is, for messages.
fn kind_of(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Refuse what is not a regular file of at most [`MAX_FILE_BYTES`].
fn check_meta(meta: &std::fs::Metadata) -> std::io::Result<()> {
    if !meta.is_file() {
        return Err(Refused::NotRegular(kind_of(meta.file_type())).io());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(Refused::TooLarge { size: meta.len() }.io());
    }
    Ok(())
}

/// Read a regular file of at most [`MAX_FILE_BYTES`] (following symlinks, as the tools do).
/// Checked before opening (a FIFO would block the open, `/dev/zero` never ends), opened
/// non-blocking and checked again on the open handle, and read with a cap, so a file swapped in
/// between cannot make the read hang or grow without bound.
pub fn read_regular(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::metadata(path) {
        Ok(meta) => check_meta(&meta)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    check_meta(&meta)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Refused::TooLarge {
            size: bytes.len() as u64,
        }
        .io());
    }
    Ok(Some(bytes))
}

/// An entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
    Other,
}

/// Files under a root, addressed by relative paths with `/` separators.
pub trait Tree {
    /// Entries of a directory (not following symlinks), unsorted.
    fn list(&self, dir: &str) -> std::io::Result<Vec<Entry>>;
    /// Contents of a file; `Ok(None)` when it does not exist.
    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>>;
    /// Whether `dir` exists and is a directory.
    fn is_dir(&self, dir: &str) -> bool;
    /// A human-readable name of `path`, for messages.
    fn display(&self, path: &str) -> PathBuf;
}

/// The working tree on disk.
#[derive(Debug, Clone)]
pub struct FsTree {
    pub root: PathBuf,
}

impl FsTree {
    pub fn new(root: impl Into<PathBuf>) -> FsTree {
        FsTree { root: root.into() }
    }

    fn abs(&self, rel: &str) -> PathBuf {
        if rel.is_empty() || rel == "." {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }
}

impl Tree for FsTree {
    fn list(&self, dir: &str) -> std::io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.abs(dir))? {
            let entry = entry?;
            let ft = entry.file_type()?; // does not follow symlinks, like Prisma
            let kind = if ft.is_symlink() {
                EntryKind::Symlink
            } else if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_file() {
                EntryKind::File
            } else {
                EntryKind::Other
            };
            out.push(Entry {
                name: entry.file_name().to_string_lossy().into_owned(),
                kind,
            });
        }
        Ok(out)
    }

    /// Only regular files of at most [`MAX_FILE_BYTES`] ([`read_regular`]).
    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        read_regular(&self.abs(path))
    }

    fn is_dir(&self, dir: &str) -> bool {
        self.abs(dir).is_dir()
    }

    fn display(&self, path: &str) -> PathBuf {
        self.abs(path)
    }
}

/// Join two relative paths with `/`.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() || dir == "." {
        name.to_string()
    } else {
        format!("{}/{}", dir.trim_end_matches('/'), name)
    }
}

/// `path` relative to `base` with `/` separators, or `path` itself when it is not under `base`.
pub fn relative(base: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(base).unwrap_or(path);
    let s = rel.to_string_lossy().replace('\\', "/");
    if s.is_empty() { ".".into() } else { s }
}
