//! A read-only view of files, so readers work the same on disk and on a git tree.

use std::path::{Path, PathBuf};

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

    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.abs(path)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
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
