//! The first stages of `verify`, which overlap: find the migrations and the base (discover), then
//! start the server (provision) while the head and base files are read, restoring the base from
//! `--cache-dir` when an entry fits; then the roles the migrations run as.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::ServerSlot;
use crate::discover::{self, FsTree, MigrationSet};
use crate::error::UserError;
use crate::format::{Format, FormatKind};
use crate::git;
use crate::provision::{self, ProviderChoice, ProviderKind, ProvisionRequest, Restored, Server};
use crate::run::build::Builder;
use crate::run::builds::{self, ArchiveSlot, BuildOutcome, Caches, Timings, cache_unusable};
use crate::run::cache::{BaseCache, ClusterCache, ClusterManifest as Manifest};
use crate::run::prisma::Semantics;
use crate::settings::Settings;

/// Where the migrations are, and what they are compared against.
pub struct Target {
    /// The migrations directory, absolute.
    pub dir: PathBuf,
    /// The repository root (or the project, outside git): report paths are relative to it.
    pub root: PathBuf,
    pub git_root: Option<PathBuf>,
    /// The migrations directory relative to `root`.
    pub rel_dir: String,
    /// The base commit, when there is one.
    pub base: Option<git::Base>,
    /// `--base-dir`: the base migrations come from this directory instead of a commit.
    pub base_dir: Option<PathBuf>,
}

/// Discover: the migrations directory and the base (exit 2 or 3 before anything starts).
pub fn target(settings: &Settings, notes: &mut Vec<String>) -> Result<Target, UserError> {
    let project = &settings.project;
    let dir = settings.migrations.value.clone();
    // Paths in the report are relative to the repository root (for annotations and SARIF), or to
    // the project when it is not in a git repository.
    let git_root = git::repo_root(project);
    let root = git_root.clone().unwrap_or_else(|| project.clone());
    let rel_dir = discover::tree::relative(&root, &dir);
    let explicit = settings
        .base
        .as_ref()
        .filter(|b| b.origin == crate::settings::Origin::Flag)
        .map(|b| b.value.as_str());
    let configured = settings
        .base
        .as_ref()
        .filter(|b| b.origin != crate::settings::Origin::Flag)
        .map(|b| b.value.as_str());
    let base = match &git_root {
        _ if settings.base_dir.is_some() => None,
        Some(r) => match git::resolve_base(r, explicit, configured) {
            Ok(Ok(b)) => Some(b),
            Ok(Err(reason)) if explicit.is_some() => {
                return Err(UserError::environment(format!(
                    "--base {}: {reason}",
                    explicit.unwrap_or_default()
                ))
                .hint("pass a branch or commit that shares history with HEAD"));
            }
            Ok(Err(reason)) => {
                notes.push(format!("{reason}: from scratch only (the incremental, drift, destructive and lock checks need a base: --base REF)"));
                None
            }
            Err(e) => return Err(UserError::environment(e.what).detail(e.detail).hint(e.hint)),
        },
        None if explicit.is_some() => {
            return Err(UserError::bad_input(format!(
                "--base was given but {} is not in a git repository",
                project.display()
            ))
            .hint("run ci-gate inside the repository's work tree, or drop --base"));
        }
        None => {
            notes.push("not a git repository: from scratch only (the incremental, drift, destructive and lock checks need a base)".into());
            None
        }
    };
    // Without a base, a missing directory is a typo (exit 2 before anything starts); with one,
    // the pull request may have deleted every migration, which the base comparison reports.
    if !dir.exists() && base.is_none() {
        return Err(discover::DiscoverError::MissingDir { path: dir }.into());
    }
    Ok(Target {
        dir,
        root,
        git_root,
        rel_dir,
        base,
        base_dir: settings.base_dir.clone(),
    })
}

/// How files are applied, from the Prisma version (unknown: the stricter ≤ 7.3 semantics, noted).
pub fn semantics(settings: &Settings, notes: &mut Vec<String>) -> Semantics {
    match settings.prisma_version() {
        Some(v) if v.splits_statements() => Semantics::Statements,
        Some(_) => Semantics::WholeFile,
        None => {
            notes.push(
                "Prisma version unknown (no prisma in package.json or lockfiles, no prisma-version in .ci-gate.yml): \
                 applied each migration.sql as one transaction, as Prisma ≤ 7.3 does (the stricter)"
                    .into(),
            );
            Semantics::WholeFile
        }
    }
}

/// The server is up (in the slot) and the files are read.
pub struct Ready {
    pub head: MigrationSet,
    pub base: Option<MigrationSet>,
    pub discover_time: Duration,
    /// The whole-cluster cache entry of the provider that gave the server (local or docker;
    /// None for a server reached by URL).
    pub cluster_cache: Option<ClusterCache>,
    /// The cache entry the cluster was restored from, if any.
    pub restored: Option<Manifest>,
}

/// Provision, while discovery reads the head (from disk) and the base (from git objects).
pub async fn provision_and_discover(
    settings: &Settings,
    target: &Target,
    semantics: Semantics,
    slot: &ServerSlot,
    notes: &mut Vec<String>,
) -> Result<Ready, UserError> {
    let mut req = settings.provision_request(run_id());
    // With --live-url, the throwaway server takes production's major when it is installed.
    if let Some(url) = &settings.live_url
        && let Some(note) = crate::live::match_live_major(&mut req, url).await
    {
        notes.push(note);
    }
    let mut caches = cluster_caches(settings, target, semantics, &req, notes);
    let restore = caches.restore();
    let provisioning = provision::provision_from(&req, &restore);
    let (root, dir, base_commit, base_dir) = (
        target.root.clone(),
        target.rel_dir.clone(),
        target.base.as_ref().map(|b| b.commit.clone()),
        target.base_dir.clone(),
    );
    let kind = settings
        .format
        .as_ref()
        .map_or(FormatKind::Prisma, |f| f.value);
    let format = crate::format::select(kind, semantics).ok_or_else(|| {
        UserError::bad_input(format!("format `{kind}` cannot be selected here"))
            .hint(format!("use one of: {}", FormatKind::names().join(", ")))
    })?;
    let discovering = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let head = format.discover(&FsTree::new(&root), &dir);
        let base = match base_dir {
            Some(base_dir) => Some(read_base_dir(&*format, base_dir, &dir)),
            None => base_commit.map(|commit| read_base(&*format, &root, &commit, &dir)),
        };
        (head, base, started.elapsed())
    });
    let (server, discovered) = tokio::join!(provisioning, discovering);
    let (cluster_cache, restored) = match &server {
        Ok(s) => caches.settle(s, notes),
        Err(_) => (None, None),
    };
    let (head, base, discover_time) = discovered.unwrap_or_else(|e| {
        let err = discover::DiscoverError::Io {
            path: target.dir.clone(),
            source: std::io::Error::other(e.to_string()),
        };
        (Err(err), None, Duration::ZERO)
    });
    // Hand the server to the slot first, so it is cleaned up whatever happens next.
    let up = match server {
        Ok(s) => {
            *slot.lock().await = Some(s);
            Ok(())
        }
        Err(e) => Err(e),
    };
    let base = base.transpose();
    // A pull request that deletes every migration: nothing on head, everything deleted.
    let base_has_migrations = matches!(&base, Ok(Some(b)) if !b.migrations.is_empty());
    let head = match head {
        Err(discover::DiscoverError::Empty { .. } | discover::DiscoverError::MissingDir { .. })
            if base_has_migrations =>
        {
            notes.push(format!(
                "{}: no migrations on this branch; the base branch has some (every one is reported as deleted)",
                target.rel_dir
            ));
            Ok(empty_set(kind, &target.rel_dir))
        }
        other => other,
    };
    let head = head?; // bad input wins over a missing server
    let base = base?;
    up?;
    notes.extend(head.notes.iter().map(|n| n.message.clone()));
    Ok(Ready {
        head,
        base,
        discover_time,
        cluster_cache,
        restored,
    })
}

/// A whole-cluster cache entry (`--cache-dir`) and what it holds, if anything.
struct CacheEntry {
    cache: ClusterCache,
    found: Option<(Manifest, provision::archive::Archive)>,
}

/// The cluster cache entries of the providers that may give this run's server. An entry is
/// only valid for the provider (and binaries or image) that wrote it, so each has its own key;
/// `auto` without a URL may end up with either.
#[derive(Default)]
struct ClusterCaches {
    local: Option<CacheEntry>,
    docker: Option<CacheEntry>,
}

impl ClusterCaches {
    fn restore(&self) -> provision::Restore {
        let archive = |e: &Option<CacheEntry>| {
            e.as_ref()
                .and_then(|e| e.found.as_ref().map(|(_, a)| a.clone()))
        };
        provision::Restore {
            local: archive(&self.local),
            docker: archive(&self.docker),
        }
    }

    /// The entry of the provider that gave `server`, and the manifest of what it restored; an
    /// entry it could not use is dropped (it is rebuilt and rewritten), with a note.
    fn settle(
        &mut self,
        server: &Server,
        notes: &mut Vec<String>,
    ) -> (Option<ClusterCache>, Option<Manifest>) {
        let entry = match server.kind {
            ProviderKind::Local => self.local.take(),
            ProviderKind::Docker => self.docker.take(),
            ProviderKind::Url => None,
        };
        let Some(CacheEntry { cache, found }) = entry else {
            return (None, None);
        };
        match &server.restored {
            Restored::Yes => (Some(cache), found.map(|(m, _)| m)),
            Restored::Failed(why) => {
                notes.push(cache_unusable(&why.one_line()));
                cache.invalidate();
                (Some(cache), None)
            }
            Restored::NotAsked => (Some(cache), None),
        }
    }
}

/// The cluster cache entries, keyed by the base's git tree so they are found (and initdb
/// skipped) before any file is read.
fn cluster_caches(
    settings: &Settings,
    target: &Target,
    semantics: Semantics,
    req: &ProvisionRequest,
    notes: &mut Vec<String>,
) -> ClusterCaches {
    let tree = match (&settings.cache_dir, &target.base, &target.git_root) {
        (Some(d), Some(b), Some(r)) => git::tree_id(r, &b.commit, &target.rel_dir).map(|t| (d, t)),
        _ => None,
    };
    let Some((dir, tree)) = tree else {
        return ClusterCaches::default();
    };
    let provider = settings.provider.value;
    let auto = provider == ProviderChoice::Auto && req.database_url.is_none();
    let common = format!(
        "{semantics:?}|{}|{:?}|{:?}",
        settings.superuser.value, settings.extensions, settings.roles
    );
    let mut entry = |key: String| {
        let cache = ClusterCache::new(&dir.value, &tree, &key);
        let found = match cache.lookup() {
            Ok(found) => found,
            Err(why) => {
                notes.push(cache_unusable(&why));
                cache.invalidate();
                None
            }
        };
        CacheEntry { cache, found }
    };
    ClusterCaches {
        local: (auto || provider == ProviderChoice::Local)
            .then(|| entry(format!("{common}|{:?}|{:?}", req.pg_bin, req.pg_version))),
        docker: (auto || provider == ProviderChoice::Docker).then(|| {
            let image = provision::docker::image_ref(req);
            entry(format!("{common}|docker|{image}"))
        }),
    }
}

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

/// The base set from git objects; a base without the directory is an empty history.
fn read_base(
    format: &dyn Format,
    root: &Path,
    commit: &str,
    dir: &str,
) -> Result<MigrationSet, discover::DiscoverError> {
    let tree = match git::GitTree::load(root, commit, dir) {
        Ok(t) => t,
        Err(e) => {
            return Err(discover::DiscoverError::Io {
                path: PathBuf::from(format!("{commit}:{dir}")),
                source: std::io::Error::other(e.detail),
            });
        }
    };
    discover_base(format, &tree, dir)
}

/// The base set from `--base-dir`, mounted where the head's migrations are so that its
/// migrations carry the same paths.
fn read_base_dir(
    format: &dyn Format,
    base_dir: PathBuf,
    dir: &str,
) -> Result<MigrationSet, discover::DiscoverError> {
    let tree = Mounted {
        dir: FsTree::new(base_dir),
        at: dir.to_string(),
    };
    discover_base(format, &tree, dir)
}

/// Discover a base; a base without the directory (or an empty one) is an empty history.
fn discover_base(
    format: &dyn Format,
    tree: &dyn discover::Tree,
    dir: &str,
) -> Result<MigrationSet, discover::DiscoverError> {
    match format.discover(tree, dir) {
        Ok(set) => Ok(set),
        Err(
            discover::DiscoverError::MissingDir { .. }
            | discover::DiscoverError::Empty { .. }
            | discover::DiscoverError::NotADir { .. }
            | discover::DiscoverError::NotPostgres { .. },
        ) => Ok(empty_set(format.kind(), dir)),
        Err(e) => Err(e),
    }
}

/// A migration set with no migrations (a branch without the directory).
fn empty_set(format: FormatKind, dir: &str) -> MigrationSet {
    MigrationSet {
        format,
        dir: dir.to_string(),
        migrations: vec![],
        problems: vec![],
        notes: vec![],
    }
}

/// A directory on disk seen at `at` (a path relative to the repository root): `at/x` is `x`
/// in the directory, and nothing else exists.
struct Mounted {
    dir: FsTree,
    at: String,
}

impl Mounted {
    fn inner<'a>(&self, path: &'a str) -> Option<&'a str> {
        if self.at.is_empty() || self.at == "." {
            return Some(path);
        }
        if path == self.at {
            return Some("");
        }
        path.strip_prefix(self.at.as_str())?.strip_prefix('/')
    }
}

impl discover::Tree for Mounted {
    fn list(&self, dir: &str) -> std::io::Result<Vec<discover::tree::Entry>> {
        match self.inner(dir) {
            Some(d) => self.dir.list(d),
            None => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        }
    }

    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        self.inner(path).map_or(Ok(None), |p| self.dir.read(p))
    }

    fn is_dir(&self, dir: &str) -> bool {
        self.inner(dir).is_some_and(|d| self.dir.is_dir(d))
    }

    fn display(&self, path: &str) -> PathBuf {
        self.inner(path)
            .map_or_else(|| PathBuf::from(path), |p| self.dir.display(p))
    }
}

/// The base database restored with the cluster, renamed for this run (None when there is none or
/// it cannot be adopted).
pub async fn adopt_restored(
    server: &Server,
    ready: &Ready,
    notes: &mut Vec<String>,
) -> Option<String> {
    let m = ready.restored.as_ref()?;
    match server.adopt_database(&m.database, "base").await {
        Ok(db) => Some(db),
        Err(e) => {
            notes.push(cache_unusable(&e));
            None
        }
    }
}

/// Create the configured roles and the owner role migrations run as.
pub async fn prepare_roles(
    server: &Server,
    settings: &Settings,
    restored_owner: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<Option<(String, String)>, UserError> {
    for role in &settings.roles {
        server.create_role(role, None).await.map_err(|e| {
            UserError::environment(format!(
                "could not create role `{role}` (from `roles:` in .ci-gate.yml)"
            ))
            .detail(e.to_string())
        })?;
    }
    if settings.superuser.value {
        notes.push("migrations ran as the superuser (--superuser)".into());
        return Ok(None);
    }
    let name = format!("cigate_{}_owner", server.run_id);
    let password = uuid::Uuid::new_v4().simple().to_string();
    if let Some(old) = restored_owner
        && server.rename_role(old, &name, &password).await.is_ok()
    {
        return Ok(Some((name, password)));
    }
    match server.create_role(&name, Some(&password)).await {
        Ok(_) => Ok(Some((name, password))),
        Err(e) => {
            notes.push(format!(
                "migrations ran as the server's user, not a separate owner role (could not create a role: {})",
                crate::error::db_message(&e)
            ));
            Ok(None)
        }
    }
}

/// The team's own seed rows, read up front (bad input before any work): (report path, SQL).
pub fn read_seed(settings: &Settings, root: &Path) -> Result<Option<(String, String)>, UserError> {
    let Some(seed) = &settings.seed else {
        return Ok(None);
    };
    let abs = &seed.value;
    let sql = std::fs::read_to_string(abs).map_err(|e| {
        UserError::bad_input(format!(
            "cannot read the seed file {} (`seed:` in .ci-gate.yml): {e}",
            abs.display()
        ))
        .hint("fix the path, relative to the project directory")
    })?;
    Ok(Some((discover::tree::relative(root, abs), sql)))
}

/// Run: from scratch only without a base; else base, seeded trace, incremental and scratch, with
/// the base from `--cache-dir` when it fits.
#[allow(clippy::too_many_arguments)]
pub async fn build(
    builder: &Builder<'_>,
    settings: &Settings,
    target: &Target,
    ready: &Ready,
    restored_db: Option<String>,
    semantics: Semantics,
    archive: &ArchiveSlot,
    notes: &mut Vec<String>,
    timings: &mut Timings,
) -> Result<BuildOutcome, UserError> {
    let seed = read_seed(settings, &target.root)?;
    let Some(base) = &ready.base else {
        return Ok(builds::scratch_only(builder, &ready.head, timings).await?);
    };
    // The cluster cache serves the servers ci-gate starts; one reached by URL keeps a SQL dump.
    let cluster = ready
        .cluster_cache
        .as_ref()
        .filter(|_| builder.server.can_archive());
    let dump = settings
        .cache_dir
        .as_ref()
        .filter(|_| cluster.is_none())
        .map(|d| {
            let key = format!(
                "{:?}|{}|{:?}|{:?}",
                semantics,
                builder.owner.is_some(),
                settings.extensions,
                settings.roles
            );
            BaseCache::new(&d.value, builder.server, base, &key)
        });
    let caches = Caches {
        dump: dump.as_ref(),
        cluster,
        restored_db,
        archive,
    };
    Ok(builds::incremental(
        builder,
        base,
        &ready.head,
        seed.as_ref(),
        caches,
        notes,
        timings,
    )
    .await?)
}
