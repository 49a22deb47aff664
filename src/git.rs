//! Git access through the `git` command: where the repository is, which commit is the base, and
//! a read-only [`Tree`] of a commit (so the base set is read from git objects, never by touching
//! the work tree).
//!
//! Base resolution: `--base REF`; in GitHub Actions the event payload (`pull_request.base.sha`,
//! also for `pull_request_target`; `before` on push); the config's `base`; `origin/main`;
//! `origin/master`. Then the merge-base with HEAD. Shallow clones (actions/checkout's default)
//! are deepened step by step, fetching only what is needed; when that is impossible the error
//! names the one line to add to the workflow.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::discover::tree::{Entry, EntryKind, Tree};

/// A git failure the user must act on (exit 3).
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct GitError {
    pub what: String,
    pub detail: String,
    pub hint: String,
}

/// Why one `git` command gave no answer (callers mostly only need to know that it did not).
#[derive(Debug, thiserror::Error)]
enum CommandError {
    #[error("cannot run git: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("{stderr}")]
    Failed { stderr: String },
}

fn git(root: &Path, args: &[&str]) -> Result<String, CommandError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(CommandError::Spawn)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    } else {
        Err(CommandError::Failed {
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Why there is no base to compare with: not an error, the run is from scratch (an error only
/// when the user asked for a base with `--base`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoBase {
    #[error("the repository has no commits yet")]
    NoCommits,
    #[error("no base: no --base, no origin/main or origin/master")]
    NoDefault,
    #[error("`{requested}` and HEAD share no history")]
    Unrelated { requested: String },
}

/// The top of the work tree containing `dir`, if it is in a git repository.
pub fn repo_root(dir: &Path) -> Option<PathBuf> {
    git(dir, &["rev-parse", "--show-toplevel"])
        .ok()
        .map(PathBuf::from)
}

/// The git tree object of `dir` (relative to `root`) at `commit`: it names the directory's exact
/// content (every file's name and bytes), so equal ids mean identical migrations.
pub fn tree_id(root: &Path, commit: &str, dir: &str) -> Option<String> {
    let spec = format!("{commit}:{}", dir.trim_end_matches('/'));
    git(root, &["rev-parse", "--verify", "--quiet", &spec])
        .ok()
        .filter(|id| !id.is_empty())
}

/// Where the base came from, for the report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Base {
    /// What the user or CI named (e.g. `origin/main`, a sha from the event payload).
    pub requested: String,
    /// Where that name came from (`--base`, `GitHub pull_request event`, `.ci-gate.yml`, `default`).
    pub source: String,
    /// The commit compared against: the merge-base of `requested` and HEAD.
    pub commit: String,
    /// HEAD's commit.
    pub head: String,
}

/// The base ref from GitHub Actions' event payload, if any.
pub fn github_event_base() -> Option<(String, String)> {
    if std::env::var("GITHUB_ACTIONS").ok().as_deref() != Some("true") {
        return None;
    }
    let name = std::env::var("GITHUB_EVENT_NAME").ok()?;
    let path = std::env::var("GITHUB_EVENT_PATH").ok()?;
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    match name.as_str() {
        "pull_request" | "pull_request_target" => {
            let sha = json
                .get("pull_request")?
                .get("base")?
                .get("sha")?
                .as_str()?;
            Some((
                sha.to_string(),
                format!("GitHub {name} event (pull_request.base.sha)"),
            ))
        }
        "push" => {
            let before = json.get("before")?.as_str()?;
            if before.chars().all(|c| c == '0') {
                None // a new branch: no previous commit
            } else {
                Some((before.to_string(), "GitHub push event (before)".into()))
            }
        }
        _ => None,
    }
}

/// Decide the base commit. `Ok(Err(reason))`: no base to compare with (scratch only).
pub fn resolve_base(
    root: &Path,
    explicit: Option<&str>,
    configured: Option<&str>,
) -> Result<Result<Base, NoBase>, GitError> {
    let head = match git(root, &["rev-parse", "--verify", "HEAD^{commit}"]) {
        Ok(h) => h,
        Err(_) => return Ok(Err(NoBase::NoCommits)),
    };
    let (requested, source, must_exist) = if let Some(b) = explicit {
        (b.to_string(), "--base".to_string(), true)
    } else if let Some((sha, src)) = github_event_base() {
        (sha, src, true)
    } else if let Some(b) = configured {
        (b.to_string(), ".ci-gate.yml (base)".to_string(), true)
    } else if git(
        root,
        &["rev-parse", "--verify", "--quiet", "origin/main^{commit}"],
    )
    .is_ok()
    {
        ("origin/main".to_string(), "default".to_string(), false)
    } else if git(
        root,
        &["rev-parse", "--verify", "--quiet", "origin/master^{commit}"],
    )
    .is_ok()
    {
        ("origin/master".to_string(), "default".to_string(), false)
    } else {
        return Ok(Err(NoBase::NoDefault));
    };

    // Make sure the base commit is here (a shallow clone may lack it).
    let mut base_commit = git(
        root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{requested}^{{commit}}"),
        ],
    )
    .ok();
    if base_commit.is_none() && must_exist {
        let _ = git(
            root,
            &["fetch", "--no-tags", "--depth=1", "origin", &requested],
        );
        base_commit = git(
            root,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{requested}^{{commit}}"),
            ],
        )
        .ok();
    }
    let Some(base_commit) = base_commit else {
        return Err(GitError {
            what: format!("the base `{requested}` (from {source}) is not a commit in this repository"),
            detail: "it could not be fetched from origin either".into(),
            hint: "pass --base with a branch or commit that exists, or fetch it first (git fetch origin <ref>)".into(),
        });
    };

    // The merge-base, deepening a shallow clone as needed.
    let shallow = git(root, &["rev-parse", "--is-shallow-repository"])
        .map(|s| s == "true")
        .unwrap_or(false);
    let mut merge_base = git(root, &["merge-base", &base_commit, &head]).ok();
    if merge_base.is_none() && shallow {
        for depth in [50, 200, 1000] {
            let _ = git(
                root,
                &[
                    "fetch",
                    "--no-tags",
                    &format!("--deepen={depth}"),
                    "origin",
                    &requested,
                ],
            );
            let _ = git(
                root,
                &[
                    "fetch",
                    "--no-tags",
                    &format!("--deepen={depth}"),
                    "origin",
                    &head,
                ],
            );
            merge_base = git(root, &["merge-base", &base_commit, &head]).ok();
            if merge_base.is_some() {
                break;
            }
        }
        if merge_base.is_none() {
            let _ = git(root, &["fetch", "--no-tags", "--unshallow", "origin"]);
            merge_base = git(root, &["merge-base", &base_commit, &head]).ok();
        }
    }
    let Some(commit) = merge_base else {
        if shallow {
            return Err(GitError {
                what: format!(
                    "cannot find where HEAD branched off `{requested}`: this is a shallow clone and the history could not be fetched"
                ),
                detail: "ci-gate needs the merge-base of the base and HEAD".into(),
                hint: "add `fetch-depth: 0` to the actions/checkout step (with: fetch-depth: 0)"
                    .into(),
            });
        }
        return Ok(Err(NoBase::Unrelated { requested }));
    };
    Ok(Ok(Base {
        requested,
        source,
        commit,
        head,
    }))
}

/// The files of one commit under a directory, read once through `git ls-tree` and
/// `git cat-file --batch`.
#[derive(Debug, Clone)]
pub struct GitTree {
    commit: String,
    /// dir path → entries
    dirs: BTreeMap<String, Vec<Entry>>,
    /// file path → contents
    files: BTreeMap<String, Vec<u8>>,
}

impl GitTree {
    /// Load everything under `dir` (repo-relative, `/` separators) at `commit`.
    pub fn load(root: &Path, commit: &str, dir: &str) -> Result<GitTree, GitError> {
        let fail = |detail: String| GitError {
            what: format!("cannot read {dir} at commit {commit}"),
            detail,
            hint: "check that the base commit is complete in this clone (git fetch origin)".into(),
        };
        let out = Command::new("git")
            .arg("-C")
            .arg(root)
            .args([
                "ls-tree",
                "-r",
                "-t",
                "-z",
                "--full-tree",
                commit,
                "--",
                dir,
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fail(e.to_string()))?;
        if !out.status.success() {
            return Err(fail(String::from_utf8_lossy(&out.stderr).into_owned()));
        }
        let mut dirs: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
        let mut blobs: Vec<(String, String)> = Vec::new();
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        for record in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            let rec = String::from_utf8_lossy(record);
            let Some((meta, path)) = rec.split_once('\t') else {
                continue;
            };
            let mut parts = meta.split(' ');
            let (mode, kind, sha) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            if path == dir || !path.starts_with(&prefix) {
                if path == dir {
                    dirs.entry(dir.to_string()).or_default();
                }
                continue;
            }
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
            let entry_kind = match (mode, kind) {
                ("120000", _) => EntryKind::Symlink,
                (_, "tree") => EntryKind::Dir,
                (_, "blob") => EntryKind::File,
                _ => EntryKind::Other,
            };
            dirs.entry(parent.to_string()).or_default().push(Entry {
                name: name.to_string(),
                kind: entry_kind,
            });
            match entry_kind {
                EntryKind::Dir => {
                    dirs.entry(path.to_string()).or_default();
                }
                EntryKind::File => blobs.push((path.to_string(), sha.to_string())),
                _ => {}
            }
        }
        let files = read_blobs(root, &blobs).map_err(|e| fail(e.to_string()))?;
        Ok(GitTree {
            commit: commit.to_string(),
            dirs,
            files,
        })
    }

    pub fn commit(&self) -> &str {
        &self.commit
    }
}

/// Why `git cat-file --batch` gave no usable contents.
#[derive(Debug, thiserror::Error)]
enum BlobError {
    #[error("cannot run git cat-file: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("no {0} pipe to git cat-file")]
    Pipe(&'static str),
    #[error("{0}")]
    Read(#[source] std::io::Error),
    #[error("truncated git cat-file output")]
    Truncated,
    #[error("bad header: {0}")]
    Header(String),
}

fn read_blobs(
    root: &Path,
    blobs: &[(String, String)],
) -> Result<BTreeMap<String, Vec<u8>>, BlobError> {
    let mut files = BTreeMap::new();
    if blobs.is_empty() {
        return Ok(files);
    }
    let mut child = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(BlobError::Spawn)?;
    let mut stdin = child.stdin.take().ok_or(BlobError::Pipe("stdin"))?;
    let input: String = blobs.iter().map(|(_, sha)| format!("{sha}\n")).collect();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .ok_or(BlobError::Pipe("stdout"))?
        .read_to_end(&mut out)
        .map_err(BlobError::Read)?;
    let _ = writer.join();
    let _ = child.wait();
    let mut pos = 0usize;
    for (path, _) in blobs {
        let nl = out[pos..]
            .iter()
            .position(|b| *b == b'\n')
            .ok_or(BlobError::Truncated)?
            + pos;
        let header = String::from_utf8_lossy(&out[pos..nl]).into_owned();
        let size: usize = header
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| BlobError::Header(header.clone()))?;
        let start = nl + 1;
        let end = start + size;
        if end > out.len() {
            return Err(BlobError::Truncated);
        }
        files.insert(path.clone(), out[start..end].to_vec());
        pos = end + 1; // trailing newline
    }
    Ok(files)
}

impl Tree for GitTree {
    fn list(&self, dir: &str) -> std::io::Result<Vec<Entry>> {
        self.dirs.get(dir).cloned().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{dir} not in {}", self.commit),
            )
        })
    }

    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        Ok(self.files.get(path).cloned())
    }

    fn is_dir(&self, dir: &str) -> bool {
        self.dirs.contains_key(dir)
    }

    fn display(&self, path: &str) -> PathBuf {
        PathBuf::from(format!(
            "{}:{path}",
            &self.commit[..self.commit.len().min(12)]
        ))
    }
}

/// The bytes of `path` (relative to the repository root) at `commit`; `None` when the commit
/// has no such file.
pub fn file_at(root: &Path, commit: &str, path: &str) -> Option<Vec<u8>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["cat-file", "blob", &format!("{commit}:{path}")])
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}
