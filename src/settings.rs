//! [`Settings`]: every knob of a `verify` run, resolved once from the command line (the Action's
//! inputs arrive as flags), `.ci-gate.yml` and what the project itself declares, each value
//! recorded with where it came from ([`Origin`]).
//!
//! Nothing below this module sees a command-line type: `cli` turns its clap structs into
//! [`Flags`], and the pipeline reads only [`Settings`]. Knowing the origin of each value is what
//! lets the report say why ci-gate did what it did, and what lets a setting that widens privilege
//! be refused when it comes from a file the pull request controls.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, RuleLevel};
use crate::discover::Format;
use crate::discover::prisma_version::{self, PrismaVersion};
use crate::error::UserError;
use crate::model::{CommentMode, FailOn};
use crate::provision::{ProviderChoice, ProvisionRequest};

/// Default per-migration statement timeout.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag (the GitHub Action passes its inputs as flags).
    Flag,
    /// An environment variable read for a flag (e.g. `CI_GATE_DATABASE_URL`).
    Env(&'static str),
    /// The config file (today the checkout's `.ci-gate.yml`, i.e. the pull request's own copy).
    Config(PathBuf),
    /// Found in the project (package.json, a lockfile).
    Detected(String),
    /// ci-gate's default.
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag => f.write_str("command line"),
            Origin::Env(var) => write!(f, "${var}"),
            Origin::Config(p) => write!(f, "{}", p.display()),
            Origin::Detected(what) => f.write_str(what),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Setting<T> {
    fn new(value: T, origin: Origin) -> Setting<T> {
        Setting { value, origin }
    }
}

/// The first of a flag and a config value that is set, with its origin.
fn pick<T>(flag: Option<T>, config: Option<T>, file: &Option<PathBuf>) -> Option<Setting<T>> {
    match (flag, config) {
        (Some(v), _) => Some(Setting::new(v, Origin::Flag)),
        (None, Some(v)) => Some(Setting::new(v, config_origin(file))),
        (None, None) => None,
    }
}

fn config_origin(file: &Option<PathBuf>) -> Origin {
    Origin::Config(
        file.clone()
            .unwrap_or_else(|| PathBuf::from(crate::config::FILE_NAME)),
    )
}

/// The config keys that widen privilege or choose what runs on the host. From a config file in
/// the repository they are taken from the **base branch's** copy (already reviewed), never from
/// the pull request's own changes; flags (and the Action's inputs) always apply.
pub const PRIVILEGED_KEYS: &[&str] = &[
    "superuser",
    "postgres.provider",
    "postgres.url",
    "postgres.bin",
    "postgres.image",
    "cache-dir",
    "extensions",
];

/// Where the privileged keys of the config file may come from.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The config file is outside any git repository, or outside the project's repository (the
    /// workflow chose it): all of it applies.
    Whole,
    /// The base branch's copy of the config file (`None`: the base has no such file) at `commit`.
    Base {
        commit: String,
        config: Box<Option<Config>>,
    },
    /// A repository without a base to take them from: the checkout's privileged keys are ignored.
    Nothing,
}

/// The privileged part of a config: what the base branch (or a trusted file) says.
fn privileged_view(head: &Config, trust: &Trust) -> Config {
    let trusted = match trust {
        Trust::Whole => return head.clone(),
        Trust::Base { config, .. } => config.as_ref().clone().unwrap_or_default(),
        Trust::Nothing => Config::default(),
    };
    let mut c = head.clone();
    c.superuser = trusted.superuser;
    c.postgres.provider = trusted.postgres.provider;
    c.postgres.url = trusted.postgres.url.clone();
    c.postgres.bin = trusted.postgres.bin.clone();
    c.postgres.image = trusted.postgres.image.clone();
    c.cache_dir = trusted.cache_dir.clone();
    c.extensions = trusted.extensions.clone();
    c
}

/// The privileged keys the checkout's config sets differently from what applies (for a note).
fn ignored_keys(head: &Config, applied: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |key: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{key}: {a}"));
        }
    };
    differ(
        "superuser",
        format!("{:?}", head.superuser),
        format!("{:?}", applied.superuser),
    );
    differ(
        "postgres.provider",
        format!("{:?}", head.postgres.provider),
        format!("{:?}", applied.postgres.provider),
    );
    differ(
        "postgres.url",
        head.postgres
            .url
            .as_deref()
            .map(crate::provision::url::redact)
            .unwrap_or_default(),
        applied
            .postgres
            .url
            .as_deref()
            .map(crate::provision::url::redact)
            .unwrap_or_default(),
    );
    differ(
        "postgres.bin",
        format!("{:?}", head.postgres.bin),
        format!("{:?}", applied.postgres.bin),
    );
    differ(
        "postgres.image",
        format!("{:?}", head.postgres.image),
        format!("{:?}", applied.postgres.image),
    );
    differ(
        "cache-dir",
        format!("{:?}", head.cache_dir),
        format!("{:?}", applied.cache_dir),
    );
    let extra: Vec<&String> = head
        .extensions
        .iter()
        .filter(|e| !applied.extensions.contains(e))
        .collect();
    if !extra.is_empty() {
        out.push(format!(
            "extensions: {} (created by the migration owner, as a migration would, not by the superuser)",
            extra.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    out
}

/// Decide where the privileged keys of `config_file` come from: a file outside the repository
/// is the workflow's; one inside comes from the base commit (resolved from the flag, the CI
/// event or the default branch: never from the checkout's own `base:` key, which the pull
/// request controls).
fn trust_for(project: &Path, config_file: Option<&Path>, flag_base: Option<&str>) -> Trust {
    let Some(root) = crate::git::repo_root(project) else {
        return Trust::Whole;
    };
    let root = root.canonicalize().unwrap_or(root);
    let file = config_file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| project.join(crate::config::FILE_NAME));
    let file = file.canonicalize().unwrap_or(file);
    let Ok(rel) = file.strip_prefix(&root) else {
        return Trust::Whole;
    };
    let base = match crate::git::resolve_base(&root, flag_base, None) {
        Ok(Ok(b)) => b,
        _ => return Trust::Nothing,
    };
    let rel = rel.to_string_lossy().replace('\\', "/");
    let config = crate::git::file_at(&root, &base.commit, &rel).map(|bytes| {
        let text = String::from_utf8_lossy(&bytes);
        // A base copy that no longer parses grants nothing.
        Config::parse(&text, Path::new(&rel)).unwrap_or_default()
    });
    Trust::Base {
        commit: base.commit,
        config: Box::new(config),
    }
}

/// A rule's effective severity under `levels` (`None`: off).
fn effective(levels: &BTreeMap<String, RuleLevel>, rule: &str) -> Option<crate::check::Severity> {
    if let Some(level) = levels.get(rule) {
        return level.severity();
    }
    if let Some(r) = crate::check::find_rule(rule) {
        return Some(r.default_severity);
    }
    crate::check::squawk::squawk_rules()
        .into_iter()
        .find(|(id, ..)| id == rule)
        .and_then(|(_, _, severity, on)| on.then_some(severity))
}

/// What the checkout's config loosens compared with the base branch's: rules turned down or
/// off, and a more lenient `fail-on` (shown to the reviewer; the run uses the checkout's).
fn weakened(head: &Config, base: &Config) -> Vec<String> {
    let name = |s: Option<crate::check::Severity>| s.map_or("off".to_string(), |s| s.to_string());
    let mut out = Vec::new();
    for rule in head.rules.keys() {
        let (was, now) = (effective(&base.rules, rule), effective(&head.rules, rule));
        if now < was {
            out.push(format!("{rule}: {} → {}", name(was), name(now)));
        }
    }
    let strictness = |f: Option<FailOn>| match f.unwrap_or(FailOn::Error) {
        FailOn::Warning => 2,
        FailOn::Error => 1,
        FailOn::Never => 0,
    };
    if strictness(head.fail_on) < strictness(base.fail_on) {
        let show = |f: Option<FailOn>| format!("{:?}", f.unwrap_or(FailOn::Error)).to_lowercase();
        out.push(format!(
            "fail-on: {} → {}",
            show(base.fail_on),
            show(head.fail_on)
        ));
    }
    let lock = |c: &Config| {
        c.lock_timeout
            .as_ref()
            .and_then(|t| t.parse())
            .filter(|d| !d.is_zero())
    };
    if let (Some(now), None) = (lock(head), lock(base)) {
        out.push(format!(
            "lock-timeout: {} declared (missing-lock-timeout no longer reported)",
            crate::fmt::human_ms(now.as_millis() as u64)
        ));
    }
    out
}

/// The command line's `verify` options, free of clap types (built by `cli`).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub project_dir: Option<PathBuf>,
    pub migrations: Option<PathBuf>,
    pub format: Option<Format>,
    pub base: Option<String>,
    pub base_dir: Option<PathBuf>,
    pub provider: Option<ProviderChoice>,
    pub database_url: Option<String>,
    /// The variable `database_url` was read from, when it came from the environment.
    pub database_url_env: Option<&'static str>,
    pub pg_version: Option<String>,
    pub image: Option<String>,
    pub pg_bin: Option<PathBuf>,
    pub live_url: Option<String>,
    pub comment: Option<CommentMode>,
    pub fail_on: Option<FailOn>,
    pub config: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub superuser: bool,
    pub prisma_version: Option<String>,
}

/// Everything `verify` needs to know before it starts, resolved once.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The project directory, canonical.
    pub project: PathBuf,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// The migrations directory, absolute: `--migrations`, `migrations:`, or found by
    /// `discover::locate` (it may not exist: discovery says so).
    pub migrations: Setting<PathBuf>,
    pub format: Option<Setting<Format>>,
    /// `--base` or `base:` (else the pull request's base, else origin/main: `git::resolve_base`).
    pub base: Option<Setting<String>>,
    /// `--base-dir`: the base branch's migrations directory, as given (a flag only: a pull
    /// request must not choose what it is compared with).
    pub base_dir: Option<PathBuf>,
    pub provider: Setting<ProviderChoice>,
    pub database_url: Option<Setting<String>>,
    pub pg_version: Option<Setting<String>>,
    pub image: Option<Setting<String>>,
    pub pg_bin: Option<Setting<PathBuf>>,
    pub live_url: Option<String>,
    /// The Prisma version whose `migrate deploy` is reproduced; `None` when unknown.
    pub prisma: Option<Setting<PrismaVersion>>,
    pub superuser: Setting<bool>,
    /// Absolute.
    pub cache_dir: Option<Setting<PathBuf>>,
    pub statement_timeout: Setting<Duration>,
    /// The `lock_timeout` the deploy's connection sets (`lock-timeout:`), when declared.
    pub lock_timeout: Option<Setting<Duration>>,
    /// The team's seed SQL file, absolute.
    pub seed: Option<Setting<PathBuf>>,
    pub extensions: Vec<String>,
    pub roles: Vec<String>,
    /// Per-rule severity overrides (`rules:`).
    pub rules: BTreeMap<String, RuleLevel>,
    pub fail_on: Setting<FailOn>,
    pub comment: Option<Setting<CommentMode>>,
    /// Extensions the superuser creates before any pull-request SQL (trusted sources only); the
    /// rest of `extensions` is created by the migration owner.
    pub superuser_extensions: Vec<String>,
    /// Where the config's privileged keys came from.
    pub trust: Trust,
    /// What the reader must know about how the settings were resolved (privileged keys ignored).
    pub notes: Vec<String>,
}

impl Settings {
    /// Resolve the flags against the project's config file.
    pub fn resolve(flags: Flags) -> Result<Settings, UserError> {
        let project = project_dir(flags.project_dir.as_deref())?;
        let repo_root = crate::git::repo_root(&project);
        let (head_config, config_file) =
            Config::load(&project, flags.config.as_deref(), repo_root.as_deref())?;
        let trust = trust_for(&project, config_file.as_deref(), flags.base.as_deref());
        let config = privileged_view(&head_config, &trust);
        let mut notes = Vec::new();
        let ignored = ignored_keys(&head_config, &config);
        if !ignored.is_empty() {
            let from = match &trust {
                Trust::Base { commit, .. } => format!(
                    "the base branch's copy (at {})",
                    &commit[..commit.len().min(12)]
                ),
                _ => "nowhere: there is no base to take them from".to_string(),
            };
            notes.push(format!(
                "the checkout's .ci-gate.yml sets privileged keys, ignored (they widen what runs on this machine, so they come from the command line, the Action's inputs or {from}): {}",
                ignored.join("; ")
            ));
        }
        if let Trust::Base { config: base, .. } = &trust {
            let base = base.as_ref().clone().unwrap_or_default();
            let mut loosened = weakened(&head_config, &base);
            if flags.fail_on.is_some() {
                loosened.retain(|l| !l.starts_with("fail-on:"));
            }
            if !loosened.is_empty() {
                notes.push(format!(
                    "⚠️ this pull request's .ci-gate.yml weakens the gate against the base branch's: {}",
                    loosened.join("; ")
                ));
            }
        }
        if let Some(dir) = flags.base_dir.as_deref().filter(|d| !d.is_dir()) {
            return Err(UserError::bad_input(format!(
                "--base-dir {}: not a directory",
                dir.display()
            ))
            .hint("pass the directory that holds the base branch's migrations (relative to the current directory)"));
        }
        let file = &config_file;
        let absolute = |p: PathBuf| if p.is_absolute() { p } else { project.join(p) };
        let database_url = match (flags.database_url, flags.database_url_env) {
            (Some(u), Some(var)) => Some(Setting::new(u, Origin::Env(var))),
            (flag, _) => pick(flag, config.postgres.url.clone(), file),
        };
        let provider = pick(flags.provider, config.postgres.provider, file)
            .unwrap_or(Setting::new(ProviderChoice::Auto, Origin::Default));
        if provider.value == ProviderChoice::Url && database_url.is_none() {
            return Err(UserError::bad_input("--provider url needs --database-url")
                .hint("pass --database-url postgres://USER:PASSWORD@HOST:PORT/postgres (or set postgres.url in .ci-gate.yml)"));
        }
        let statement_timeout = match config.statement_timeout.as_ref().and_then(|t| t.parse()) {
            Some(d) => Setting::new(d, config_origin(file)),
            None => Setting::new(DEFAULT_STATEMENT_TIMEOUT, Origin::Default),
        };
        let superuser = if flags.superuser {
            Setting::new(true, Origin::Flag)
        } else {
            match config.superuser {
                Some(v) => Setting::new(v, config_origin(file)),
                None => Setting::new(false, Origin::Default),
            }
        };
        let dir = match crate::discover::locate::migrations_dir(
            &project,
            flags.migrations.as_deref(),
            config.migrations.as_deref(),
        ) {
            // In a repository the branch may have deleted every migration: Prisma's default
            // place, compared with the base's (no base and no directory is still an error).
            Err(crate::discover::DiscoverError::NotFound { .. }) if repo_root.is_some() => {
                project.join("prisma/migrations")
            }
            other => other?,
        };
        let migrations = match pick(flags.migrations, config.migrations.clone(), file) {
            Some(s) => Setting::new(dir, s.origin),
            None => Setting::new(dir, Origin::Detected("found in the project".into())),
        };
        let prisma = prisma_for(
            flags.prisma_version.as_deref(),
            config.prisma_version.as_deref(),
            &project,
            &migrations.value,
            file,
        )?;
        let seed = config
            .seed
            .clone()
            .map(|p| Setting::new(absolute(p), config_origin(file)));
        if !matches!(trust, Trust::Whole) {
            // Paths from a file the pull request controls stay inside the repository: a seed of
            // `/proc/self/environ` (or a link to it) would put the runner's secrets into an error.
            if let Some(seed) = &seed {
                inside_repository(&project, &seed.value, "seed")?;
            }
            if matches!(migrations.origin, Origin::Config(_)) {
                inside_repository(&project, &migrations.value, "migrations")?;
            }
        }
        Ok(Settings {
            migrations,
            format: pick(flags.format, config.format, file),
            base: pick(flags.base, config.base.clone(), file),
            base_dir: flags.base_dir,
            provider,
            database_url,
            pg_version: pick(
                flags.pg_version,
                config.postgres.version.as_ref().map(|v| v.to_string()),
                file,
            ),
            image: pick(flags.image, config.postgres.image.clone(), file),
            pg_bin: pick(flags.pg_bin, config.postgres.bin.clone(), file),
            live_url: flags.live_url,
            prisma,
            superuser,
            cache_dir: pick(flags.cache_dir, config.cache_dir.clone(), file).map(|s| Setting {
                value: absolute(s.value),
                origin: s.origin,
            }),
            statement_timeout,
            lock_timeout: config
                .lock_timeout
                .as_ref()
                .and_then(|t| t.parse())
                .filter(|d| !d.is_zero())
                .map(|d| Setting::new(d, config_origin(file))),
            seed: config
                .seed
                .clone()
                .map(|p| Setting::new(absolute(p), config_origin(file))),
            extensions: head_config.extensions.clone(),
            superuser_extensions: config.extensions.clone(),
            roles: config.roles.clone(),
            rules: config.rules.clone(),
            fail_on: pick(flags.fail_on, config.fail_on, file)
                .unwrap_or(Setting::new(FailOn::Error, Origin::Default)),
            comment: pick(flags.comment, config.comment, file),
            trust,
            notes,
            config_file,
            project,
        })
    }

    /// What the provisioner is asked for.
    pub fn provision_request(&self, run_id: String) -> ProvisionRequest {
        ProvisionRequest {
            provider: self.provider.value,
            database_url: self.database_url.as_ref().map(|s| s.value.clone()),
            pg_version: self.pg_version.as_ref().map(|s| s.value.clone()),
            image: self.image.as_ref().map(|s| s.value.clone()),
            pg_bin: self.pg_bin.as_ref().map(|s| s.value.clone()),
            run_id,
        }
    }

    /// Severity for a rule after the `rules:` overrides; `None` when the rule is off.
    pub fn severity_for(
        &self,
        rule: &str,
        default: crate::check::Severity,
    ) -> Option<crate::check::Severity> {
        match self.rules.get(rule) {
            Some(level) => level.severity(),
            None => Some(default),
        }
    }

    /// The Prisma version, if known.
    pub fn prisma_version(&self) -> Option<&PrismaVersion> {
        self.prisma.as_ref().map(|s| &s.value)
    }
}

/// Refuse a path from the checkout's config that leaves the repository (after following links).
fn inside_repository(project: &Path, path: &Path, key: &str) -> Result<(), UserError> {
    let root = crate::git::repo_root(project).unwrap_or_else(|| project.to_path_buf());
    let root = root.canonicalize().unwrap_or(root);
    // A path that does not exist yet is judged by its nearest existing ancestor.
    let mut probe = path.to_path_buf();
    let resolved = loop {
        if let Ok(p) = probe.canonicalize() {
            break p;
        }
        if !probe.pop() {
            break path.to_path_buf();
        }
    };
    if resolved.starts_with(&root) {
        return Ok(());
    }
    Err(UserError::bad_input(format!(
        "`{key}:` in .ci-gate.yml points outside the repository ({})",
        path.display()
    ))
    .hint(format!(
        "keep `{key}` inside the repository, or pass the path on the command line (the workflow's choice, not the pull request's)"
    )))
}

/// The project directory: the argument, else the current directory; it must exist.
fn project_dir(arg: Option<&Path>) -> Result<PathBuf, UserError> {
    let dir = match arg {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir().map_err(|e| {
            UserError::environment(format!("cannot read the current directory: {e}"))
        })?,
    };
    if !dir.is_dir() {
        return Err(UserError::bad_input(format!("project directory {} does not exist or is not a directory", dir.display()))
            .hint("pass the directory that holds your project (e.g. `ci-gate verify examples/prisma-saas`)"));
    }
    dir.canonicalize()
        .map_err(|e| UserError::bad_input(format!("cannot resolve {}: {e}", dir.display())))
}

/// `--prisma-version`, else `prisma-version:`, else what package.json and the lockfiles say (in
/// the project, the directories between it and the migrations directory, then the project's
/// parents up to the repository root: a monorepo's lockfile sits at its root). A given version
/// that is not one is bad input.
fn prisma_for(
    flag: Option<&str>,
    configured: Option<&str>,
    project: &Path,
    dir: &Path,
    file: &Option<PathBuf>,
) -> Result<Option<Setting<PrismaVersion>>, UserError> {
    let given = |raw: &str, source: &str| {
        prisma_version::parse(raw, source).ok_or_else(|| {
            UserError::bad_input(format!("{source}: `{raw}` is not a Prisma version"))
                .hint("write a version such as 6.19.0 or 7.4 (the prisma package's version)")
        })
    };
    if let Some(v) = flag {
        return Ok(Some(Setting::new(
            given(v, "--prisma-version")?,
            Origin::Flag,
        )));
    }
    if let Some(v) = configured {
        let v = given(v, ".ci-gate.yml (prisma-version)")?;
        return Ok(Some(Setting::new(v, config_origin(file))));
    }
    let mut dirs = vec![project.to_path_buf()];
    let mut d = dir.parent();
    while let Some(p) = d {
        if !p.starts_with(project) || p == project {
            break;
        }
        dirs.push(p.to_path_buf());
        d = p.parent();
    }
    if let Some(root) = crate::git::repo_root(project) {
        dirs.extend(
            project
                .ancestors()
                .skip(1)
                .take_while(|p| p.starts_with(&root))
                .map(Path::to_path_buf),
        );
    }
    Ok(prisma_version::detect(&dirs).map(|v| {
        let source = v.source.clone();
        Setting::new(v, Origin::Detected(source))
    }))
}
