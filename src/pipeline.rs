//! `ci-gate verify`, stage by stage: config → locate + discover (while the server starts) →
//! databases and roles → apply → findings → report.
//!
//! Cleanup guarantee: the server (and every database and role ci-gate made) is released after
//! success, failure, a panic inside the pipeline, and SIGINT/SIGTERM: the work runs in its own
//! task and the server lives in a slot outside it, which [`verify`] always empties.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::check::rules::{
    deleted_applied_migration, edited_applied_migration, history_drift, invalid_migration_layout,
    migration_fails, non_transactional_statement, out_of_order_migration,
};
use crate::check::{Finding, Severity};
use crate::cli::VerifyArgs;
use crate::config::{Config, FailOn};
use crate::discover::{self, FsTree, Migration, MigrationSet, locate, prisma_version};
use crate::error::UserError;
use crate::git;
use crate::plan::{self, Classification, Plan};
use crate::provision::{self, ProviderChoice, ProvisionRequest, Server};
use crate::report::{
    CheckResult, Checks, Counts, MigrationRow, PrismaInfo, Report, ServerInfo, Verdict, human_ms,
};
use crate::run::build::Builder;
use crate::run::cache::{ClusterCache, PendingArchive};
use crate::run::prisma::{ApplyOptions, Semantics};
use crate::run::{Outcome, Status};

/// Default per-migration statement timeout.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);

/// Run `verify` with guaranteed cleanup. Returns the report, or the error that stopped it.
/// The base cache entry to write from the cluster at shutdown (local provider, cache miss).
type ArchiveSlot = Arc<std::sync::Mutex<Option<PendingArchive>>>;

pub async fn verify(args: VerifyArgs) -> Result<Report, UserError> {
    let slot: Arc<Mutex<Option<Server>>> = Arc::new(Mutex::new(None));
    let archive: ArchiveSlot = Arc::default();
    let mut body = tokio::spawn(verify_inner(args, slot.clone(), archive.clone()));
    let result = tokio::select! {
        joined = &mut body => match joined {
            Ok(r) => r,
            Err(e) if e.is_panic() => Err(UserError::environment("internal error: ci-gate panicked")
                .detail(panic_message(e))
                .hint("this is a bug in ci-gate; please report it with the command you ran")),
            Err(_) => Err(UserError::environment("interrupted")),
        },
        signal = shutdown_signal() => {
            body.abort();
            let _ = body.await; // let the task drop what it holds (connections, a starting server)
            Err(UserError::environment(format!("interrupted by {signal}; cleaned up")))
        }
    };
    let pending = archive.lock().ok().and_then(|mut a| a.take());
    if let Some(server) = slot.lock().await.take() {
        let warnings = match (pending, &result) {
            // Only a run that finished writes the cache.
            (Some(pending), Ok(_)) => match pending.tar_path() {
                Ok(tar) => {
                    let (mut warnings, sha) =
                        server.shutdown_archiving(pending.database(), &tar).await;
                    if let Err(e) = pending.commit(sha) {
                        warnings.push(format!("base cache not written: {e}"));
                    }
                    warnings
                }
                Err(e) => {
                    let mut warnings = server.shutdown().await;
                    warnings.push(format!("base cache not written: {e}"));
                    warnings
                }
            },
            _ => server.shutdown().await,
        };
        for w in warnings {
            eprintln!("warning: cleanup: {w}");
        }
    }
    result
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into()),
        Err(_) => "unknown".into(),
    }
}

async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return "SIGINT";
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

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

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

async fn verify_inner(
    args: VerifyArgs,
    slot: Arc<Mutex<Option<Server>>>,
    archive: ArchiveSlot,
) -> Result<Report, UserError> {
    let t0 = Instant::now();
    let project = project_dir(args.project_dir.as_deref())?;
    let (config, _config_path) = Config::load(&project, args.config.as_deref())?;
    let mut notes = Vec::new();

    // Where the migrations are (exit 2 before anything starts).
    let dir = locate::migrations_dir(
        &project,
        args.migrations.as_deref(),
        config.migrations.as_deref(),
    )?;
    // Paths in the report are relative to the repository root (for annotations and SARIF), or to
    // the project when it is not in a git repository.
    let git_root = git::repo_root(&project);
    let root = git_root.clone().unwrap_or_else(|| project.clone());
    let rel_dir = discover::tree::relative(&root, &dir);
    if !dir.exists() {
        return Err(discover::DiscoverError::MissingDir { path: dir }.into());
    }

    // The base: what production has.
    let base = match &git_root {
        Some(r) => match git::resolve_base(r, args.base.as_deref(), config.base.as_deref()) {
            Ok(Ok(b)) => Some(b),
            Ok(Err(reason)) if args.base.is_some() => {
                return Err(UserError::environment(format!(
                    "--base {}: {reason}",
                    args.base.as_deref().unwrap_or_default()
                ))
                .hint("pass a branch or commit that shares history with HEAD"));
            }
            Ok(Err(reason)) => {
                notes.push(format!("{reason}: from scratch only (the incremental, drift, destructive and lock checks need a base: --base REF)"));
                None
            }
            Err(e) => return Err(UserError::environment(e.what).detail(e.detail).hint(e.hint)),
        },
        None if args.base.is_some() => {
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

    let provider = args
        .provider
        .or(config.postgres.provider)
        .unwrap_or(ProviderChoice::Auto);
    let database_url = args.database_url.clone().or(config.postgres.url.clone());
    if provider == ProviderChoice::Url && database_url.is_none() {
        return Err(UserError::bad_input("--provider url needs --database-url")
            .hint("pass --database-url postgres://USER:PASSWORD@HOST:PORT/postgres (or set postgres.url in .ci-gate.yml)"));
    }
    let mut req = ProvisionRequest {
        provider,
        database_url,
        pg_version: args.pg_version.clone().or(config
            .postgres
            .version
            .as_ref()
            .map(|v| v.to_string())),
        image: args.image.clone().or(config.postgres.image.clone()),
        pg_bin: args.pg_bin.clone().or(config.postgres.bin.clone()),
        run_id: run_id(),
    };
    if let Some(url) = &args.live_url
        && let Some(note) = provision::match_live_major(&mut req, url).await
    {
        notes.push(note);
    }

    // Prisma version → how files are applied.
    let prisma = prisma_version_for(&args, &config, &project, &dir);
    let semantics = match &prisma {
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
    };
    let superuser = args.superuser || config.superuser.unwrap_or(false);
    let cache_dir = args
        .cache_dir
        .clone()
        .or(config.cache_dir.clone())
        .map(|d| if d.is_absolute() { d } else { project.join(d) });
    // The local provider's cache entry is a whole cluster, keyed by the base's git tree, so it is
    // found (and initdb skipped) before any file is read.
    // `auto` without a URL may end up local; an entry found means an earlier run here did.
    let maybe_local = provider == ProviderChoice::Local
        || (provider == ProviderChoice::Auto && req.database_url.is_none());
    let mut cluster_cache = match (&cache_dir, &base, maybe_local) {
        (Some(d), Some(b), true) => git_root
            .as_deref()
            .and_then(|r| git::tree_id(r, &b.commit, &rel_dir))
            .map(|tree| {
                let settings = format!(
                    "{semantics:?}|{superuser}|{:?}|{:?}|{:?}|{:?}",
                    config.extensions, config.roles, req.pg_bin, req.pg_version
                );
                ClusterCache::new(d, &tree, &settings)
            }),
        _ => None,
    };
    let cached_cluster = match cluster_cache.as_ref().map(ClusterCache::lookup) {
        Some(Ok(found)) => found,
        Some(Err(why)) => {
            notes.push(cache_unusable(&why));
            if let Some(c) = &cluster_cache {
                c.invalidate();
            }
            None
        }
        None => None,
    };
    let provisioning = async {
        if let Some((_, archive)) = &cached_cluster {
            match provision::local::provision_from(&req, Some(archive.clone())).await {
                Ok(server) => return (Ok(server), None),
                Err(e) => return (provision::provision(&req).await, Some(e.to_string())),
            }
        }
        (provision::provision(&req).await, None)
    };

    // Start the server while the files (head from disk, base from git objects) are read.
    let (tree_root, tree_dir, base_commit) = (
        root.clone(),
        rel_dir.clone(),
        base.as_ref().map(|b| b.commit.clone()),
    );
    let discover_task = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let head = discover::prisma::read(&FsTree::new(&tree_root), &tree_dir);
        let base = base_commit.map(|commit| read_base(&tree_root, &commit, &tree_dir));
        (head, base, started.elapsed())
    });
    let ((server, restore_failed), discovered) = tokio::join!(provisioning, discover_task);
    let mut restored_base = cached_cluster.map(|(manifest, _)| manifest);
    if let Some(why) = restore_failed {
        notes.push(cache_unusable(&why.lines().next().unwrap_or_default()));
        if let Some(c) = &cluster_cache {
            c.invalidate();
        }
        restored_base = None;
    }
    let (head, base_set, discover_time) = match discovered {
        Ok(r) => r,
        Err(e) => (
            Err(discover::DiscoverError::Io {
                path: dir.clone(),
                source: std::io::Error::other(e.to_string()),
            }),
            None,
            Duration::ZERO,
        ),
    };
    // Hand the server to the slot first, so it is cleaned up whatever happens next.
    let server = match server {
        Ok(s) => {
            *slot.lock().await = Some(s);
            Ok(())
        }
        Err(e) => Err(e),
    };
    let head = head?; // bad input wins over a missing server
    let base_set = base_set.transpose()?;
    server?;
    let guard = slot.lock().await;
    let Some(server) = guard.as_ref() else {
        return Err(UserError::environment("the server disappeared"));
    };
    if server.kind != provision::ProviderKind::Local {
        cluster_cache = None; // `auto` chose another provider: the dump entry applies
    }

    notes.extend(head.notes.iter().map(|n| n.message.clone()));

    let statement_timeout = config
        .statement_timeout
        .as_ref()
        .and_then(|t| t.parse())
        .unwrap_or(DEFAULT_STATEMENT_TIMEOUT);
    let opts = ApplyOptions {
        semantics,
        statement_timeout,
    };
    // A restored cluster brings its base database and the role that owns it: both are renamed
    // for this run.
    let restored_db = match &restored_base {
        Some(m) => match server.adopt_database(&m.database, "base").await {
            Ok(db) => Some(db),
            Err(e) => {
                notes.push(cache_unusable(&e));
                None
            }
        },
        None => None,
    };
    let restored_owner = restored_base.as_ref().and_then(|m| m.owner.as_deref());
    let owner = prepare_roles(server, &config, superuser, restored_owner, &mut notes).await?;
    let builder = Builder {
        server,
        owner,
        extensions: &config.extensions,
        opts: &opts,
    };

    // The team's own seed rows, read up front (bad input before any work).
    let seed_sql = match &config.seed {
        Some(p) => {
            let abs = if p.is_absolute() {
                p.clone()
            } else {
                project.join(p)
            };
            let sql = std::fs::read_to_string(&abs).map_err(|e| {
                UserError::bad_input(format!(
                    "cannot read the seed file {} (`seed:` in .ci-gate.yml): {e}",
                    abs.display()
                ))
                .hint("fix the path, relative to the project directory")
            })?;
            Some((discover::tree::relative(&root, &abs), sql))
        }
        None => None,
    };
    let mut timings = std::collections::BTreeMap::new();
    let outcome = match &base_set {
        None => build_scratch_only(&builder, &head, &mut timings).await?,
        Some(base_set) => {
            // Other providers: the base database as a SQL dump.
            let cache = cache_dir.filter(|_| cluster_cache.is_none()).map(|d| {
                let settings = format!(
                    "{:?}|{}|{:?}|{:?}",
                    semantics,
                    builder.owner.is_some(),
                    config.extensions,
                    config.roles
                );
                crate::run::cache::BaseCache::new(&d, server, base_set, &settings)
            });
            let caches = Caches {
                dump: cache.as_ref(),
                cluster: cluster_cache.as_ref(),
                restored_db,
                archive: &archive,
            };
            build_incremental(
                &builder,
                base_set,
                &head,
                seed_sql.as_ref(),
                caches,
                &mut notes,
                &mut timings,
            )
            .await?
        }
    };

    // Production, read-only.
    let mut live_findings = Vec::new();
    let mut live_check = CheckResult::not_run("no --live-url");
    if let Some(url) = &args.live_url {
        let t = Instant::now();
        let (f, check) = check_live(&builder, url, &head, &mut notes).await?;
        live_findings = f;
        live_check = check;
        timings.insert("live".into(), ms(t.elapsed()));
    }

    // Findings, with configured severities.
    let mut findings = invalid_migration_layout::check(&head.problems);
    findings.extend(live_findings);
    if let (Some(base_set), Some(plan)) = (&base_set, &outcome.plan) {
        findings.extend(edited_applied_migration::check(plan, base_set, &head));
        findings.extend(deleted_applied_migration::check(plan, base_set, &head));
        findings.extend(out_of_order_migration::check(plan, &head));
    }
    for (label, outcomes) in &outcome.runs {
        findings.extend(non_transactional_statement::check(outcomes, label));
        findings.extend(migration_fails::check(outcomes, label));
    }
    findings.extend(history_drift::check(&outcome.drift));
    if let Some(tr) = &outcome.traced {
        findings.extend(observed_findings(&tr.traces, &outcome.runs));
        let filled = tr.seed.filled.len();
        if !tr.seed.skipped.is_empty() {
            notes.push(format!(
                "seeded run: {filled} tables filled with synthetic rows; skipped {}",
                tr.seed
                    .skipped
                    .iter()
                    .map(|(t, why)| format!("{t} ({why})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    // Static layer (squawk) over the new and edited migrations, merged with what the trace saw.
    let linted: Vec<&Migration> = match &outcome.plan {
        Some(plan) => plan
            .head
            .iter()
            .filter(|e| !matches!(e.class, Classification::Unchanged))
            .map(|e| &head.migrations[e.index])
            .collect(),
        None => head.migrations.iter().collect(),
    };
    let t_lint = Instant::now();
    let ctx = crate::check::squawk::LintContext::for_prisma(server.major(), prisma.as_ref());
    let mut statics = Vec::new();
    let mut raw_static = 0usize;
    let mut dismissed = 0usize;
    for out in crate::check::squawk::lint_all(&linted, &ctx, &config) {
        raw_static += out.raw_counts.values().sum::<usize>();
        dismissed += out.dismissed.len();
        statics.extend(out.findings);
    }
    let traced_names: Vec<&str> = outcome
        .traced
        .as_ref()
        .map(|t| t.traces.iter().map(|t| t.name.as_str()).collect())
        .unwrap_or_default();
    let (mut kept, merged, by_trace) = merge_static(statics, &mut findings, &traced_names);
    dismissed += by_trace;
    if outcome.plan.is_none() && !kept.is_empty() {
        // Without a base every migration counts as new, including years of deployed history:
        // static findings inform, they do not gate.
        for f in &mut kept {
            f.severity = Severity::Notice;
        }
        notes.push(format!("no base: {} static findings over the whole history are shown as notices (give --base to gate new migrations)", kept.len()));
    }
    findings.extend(kept);
    timings.insert("static".into(), ms(t_lint.elapsed()));
    if raw_static > 0 {
        notes.push(format!(
            "static lint: squawk alone would report {raw_static} issues in the {} linted files; ci-gate keeps the ones that matter: \
             {merged} merged into what the trace observed, {dismissed} dismissed as harmless (shown so by the trace or the file itself), \
             rules that fire on every Prisma file off by default",
            linted.len()
        ));
    }

    // Allow directives, then configured severities (a rule turned off disappears).
    let mut findings = merge_same_failures(findings);
    let invalid_allows = crate::check::allow::apply(&mut findings, &linted);
    findings.extend(invalid_allows);
    let findings: Vec<Finding> = findings
        .into_iter()
        .filter_map(|mut f| {
            f.severity = config.severity_for(&f.rule, f.severity)?;
            Some(f)
        })
        .collect();

    let history_rules = [
        invalid_migration_layout::RULE.id,
        edited_applied_migration::RULE.id,
        deleted_applied_migration::RULE.id,
        out_of_order_migration::RULE.id,
    ];
    let history_findings = findings
        .iter()
        .filter(|f| history_rules.contains(&f.rule.as_str()))
        .count();
    let history = CheckResult {
        status: if history_findings > 0 {
            "fail".into()
        } else {
            "pass".into()
        },
        summary: match (history_findings, &outcome.plan) {
            (0, Some(_)) => "no applied migration edited, deleted or reordered; layout ok".into(),
            (0, None) => "layout ok".into(),
            (n, _) => format!("{n} problems (edited, deleted, out-of-order or layout)"),
        },
        applied: None,
        failed: None,
        skipped: None,
        findings: Some(history_findings),
        duration_ms: None,
    };
    timings.insert("provision".to_string(), server.startup.as_millis() as u64);
    timings.insert("discover".to_string(), discover_time.as_millis() as u64);
    timings.insert("total".to_string(), t0.elapsed().as_millis() as u64);

    let mut report = Report {
        schema_version: crate::report::SCHEMA_VERSION,
        verdict: Verdict::Pass,
        fail_on: args.fail_on.or(config.fail_on).unwrap_or(FailOn::Error),
        format: head.format.to_string(),
        project: project.display().to_string(),
        migrations_dir: rel_dir,
        base: base.as_ref().map(|b| b.commit.clone()),
        head: base.as_ref().map(|b| b.head.clone()),
        base_ref: base.clone(),
        prisma: Some(PrismaInfo {
            version: prisma.as_ref().map(|v| v.raw.clone()),
            source: prisma.as_ref().map(|v| v.source.clone()),
            semantics: match semantics {
                Semantics::WholeFile => "whole-file".into(),
                Semantics::Statements => "statements".into(),
            },
        }),
        server: Some(ServerInfo {
            provider: server.kind.to_string(),
            version: server.version.clone(),
            startup_ms: server.startup.as_millis() as u64,
            notes: server.notes.clone(),
        }),
        counts: Counts::default(),
        migrations: outcome.rows,
        checks: Checks {
            scratch: outcome.scratch,
            incremental: outcome.incremental,
            drift: outcome.drift_check,
            history,
            live: live_check,
        },
        findings,
        notes,
        timings_ms: timings,
        comment: None,
    };
    report.comment = args.comment.or(config.comment);
    report.finalize();
    Ok(report)
}

/// The base set from git objects; a base without the directory is an empty history.
fn read_base(
    root: &Path,
    commit: &str,
    dir: &str,
) -> Result<MigrationSet, discover::DiscoverError> {
    let empty = || MigrationSet {
        format: discover::Format::Prisma,
        dir: dir.to_string(),
        migrations: vec![],
        problems: vec![],
        notes: vec![],
    };
    let tree = match git::GitTree::load(root, commit, dir) {
        Ok(t) => t,
        Err(e) => {
            return Err(discover::DiscoverError::Io {
                path: PathBuf::from(format!("{commit}:{dir}")),
                source: std::io::Error::other(e.detail),
            });
        }
    };
    match discover::prisma::read(&tree, dir) {
        Ok(set) => Ok(set),
        Err(
            discover::DiscoverError::MissingDir { .. }
            | discover::DiscoverError::Empty { .. }
            | discover::DiscoverError::NotADir { .. },
        ) => Ok(empty()),
        Err(discover::DiscoverError::NotPostgres { .. }) => Ok(empty()),
        Err(e) => Err(e),
    }
}

fn prisma_version_for(
    args: &VerifyArgs,
    config: &Config,
    project: &Path,
    dir: &Path,
) -> Option<prisma_version::PrismaVersion> {
    args.prisma_version
        .as_deref()
        .and_then(|v| prisma_version::parse(v, "--prisma-version"))
        .or_else(|| {
            config
                .prisma_version
                .as_deref()
                .and_then(|v| prisma_version::parse(v, ".ci-gate.yml (prisma-version)"))
        })
        .or_else(|| {
            let mut dirs = vec![project.to_path_buf()];
            let mut d = dir.parent();
            while let Some(p) = d {
                if !p.starts_with(project) || p == project {
                    break;
                }
                dirs.push(p.to_path_buf());
                d = p.parent();
            }
            prisma_version::detect(&dirs)
        })
}

/// Create the configured roles and the owner role migrations run as.
async fn prepare_roles(
    server: &Server,
    config: &Config,
    superuser: bool,
    restored_owner: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<Option<(String, String)>, UserError> {
    for role in &config.roles {
        server.create_role(role, None).await.map_err(|e| {
            UserError::environment(format!(
                "could not create role `{role}` (from `roles:` in .ci-gate.yml)"
            ))
            .detail(e.to_string())
        })?;
    }
    if superuser {
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

/// What the databases showed.
struct BuildOutcome {
    plan: Option<Plan>,
    rows: Vec<MigrationRow>,
    /// (label, outcomes) of every run, for failure findings.
    runs: Vec<(String, Vec<Outcome>)>,
    drift: Vec<crate::inspect::Change>,
    /// The seeded, traced run of the new migrations (with a base only).
    traced: Option<crate::run::build::TracedRun>,
    scratch: CheckResult,
    incremental: CheckResult,
    drift_check: CheckResult,
}

/// The note for a cache entry that cannot be used (it is then rebuilt and rewritten).
fn cache_unusable(why: &dyn std::fmt::Display) -> String {
    format!("base cache entry unusable ({why}): rebuilt from the migrations")
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn run_check(outcomes: &[Outcome], took: Duration, what: &str) -> CheckResult {
    let applied = outcomes
        .iter()
        .filter(|o| o.status == Status::Applied)
        .count();
    let failed = outcomes
        .iter()
        .filter(|o| o.status == Status::Failed)
        .count();
    let skipped = outcomes
        .iter()
        .filter(|o| o.status == Status::Skipped)
        .count();
    CheckResult {
        status: if failed > 0 {
            "fail".into()
        } else {
            "pass".into()
        },
        summary: if failed > 0 {
            format!(
                "{what}: {applied} applied, {failed} failed, {skipped} skipped ({})",
                human_ms(ms(took))
            )
        } else {
            format!("{what}: {applied} applied in {}", human_ms(ms(took)))
        },
        applied: Some(applied),
        failed: Some(failed),
        skipped: Some(skipped),
        findings: None,
        duration_ms: Some(ms(took)),
    }
}

fn row(o: &Outcome, change: &str, new: bool) -> MigrationRow {
    MigrationRow {
        name: o.name.clone(),
        path: o.path.clone(),
        status: o.status,
        duration_ms: ms(o.duration),
        new,
        change: change.to_string(),
        mode: o.mode,
        rules: Vec::new(),
        lock: None,
        note: o.failure.as_ref().map(|f| {
            let code = f
                .sqlstate
                .as_deref()
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default();
            format!(
                "line {}: {}{code}",
                f.line,
                crate::sql::split::excerpt(&f.message, 80)
            )
        }),
    }
}

async fn build_scratch_only(
    builder: &Builder<'_>,
    head: &MigrationSet,
    timings: &mut std::collections::BTreeMap<String, u64>,
) -> Result<BuildOutcome, UserError> {
    let t = Instant::now();
    let db = builder.create("scratch", None).await?;
    let all: Vec<&Migration> = head.migrations.iter().collect();
    let outcomes = builder.apply(&db, &all).await?;
    let took = t.elapsed();
    timings.insert("scratch".into(), ms(took));
    Ok(BuildOutcome {
        plan: None,
        rows: outcomes.iter().map(|o| row(o, "new", true)).collect(),
        scratch: run_check(&outcomes, took, &format!("{} migrations", outcomes.len())),
        runs: vec![("from scratch".into(), outcomes)],
        drift: vec![],
        traced: None,
        incremental: CheckResult::not_run("no base: from scratch only"),
        drift_check: CheckResult::not_run("no base: nothing to compare"),
    })
}

/// `--cache-dir`, for [`build_incremental`]: a SQL dump of the base (url and docker providers) or
/// the archived cluster (local provider).
struct Caches<'a> {
    dump: Option<&'a crate::run::cache::BaseCache>,
    cluster: Option<&'a ClusterCache>,
    /// The base database of a cluster restored from the cache, not verified yet.
    restored_db: Option<String>,
    /// Where a cache miss leaves the entry to write at shutdown.
    archive: &'a ArchiveSlot,
}

/// Base, incremental and scratch, sharing the prefix through templates.
async fn build_incremental(
    builder: &Builder<'_>,
    base: &MigrationSet,
    head: &MigrationSet,
    seed: Option<&(String, String)>,
    caches: Caches<'_>,
    notes: &mut Vec<String>,
    timings: &mut std::collections::BTreeMap<String, u64>,
) -> Result<BuildOutcome, UserError> {
    let plan = plan::plan(base, head);
    let k = plan.shared_prefix;
    let mut runs = Vec::new();

    // 1. The shared prefix, applied once. When base is exactly that prefix, it *is* the base.
    let t = Instant::now();
    let prefix_is_base = k == base.migrations.len();
    let prefix: Vec<&Migration> = head.migrations[..k].iter().collect();
    let owner = builder.owner.as_ref().map(|(n, _)| n.as_str());
    // A cluster restored from the cache holds the base, once its history checks out.
    let mut restored = false;
    let mut adopted = None;
    if let (true, Some(db), Some(c)) = (prefix_is_base, &caches.restored_db, caches.cluster) {
        match c.verify(builder.server, db, base).await {
            Ok(()) => {
                restored = true;
                adopted = Some(db.clone());
                c.touch();
            }
            Err(why) => {
                notes.push(cache_unusable(&why));
                c.invalidate();
                let _ = builder.server.drop_database(db).await;
            }
        }
    }
    let mut prefix_db = match adopted {
        Some(db) => db,
        None => {
            builder
                .create(if prefix_is_base { "base" } else { "prefix" }, None)
                .await?
        }
    };
    // The base cache applies when base is exactly the shared prefix (the usual pull request).
    if let (true, Some(c)) = (prefix_is_base, caches.dump) {
        match c.restore(builder.server, &prefix_db, owner, base).await {
            Ok(r) => restored = r,
            Err(why) => {
                notes.push(cache_unusable(&why));
                c.invalidate();
                let _ = builder.server.drop_database(&prefix_db).await;
                prefix_db = builder.create("base2", None).await?;
            }
        }
    }
    let prefix_out = if restored {
        prefix
            .iter()
            .map(|m| Outcome::applied(m, Duration::ZERO, crate::run::ApplyMode::WholeFile))
            .collect()
    } else {
        builder.replay(&prefix_db, &prefix).await?
    };
    if let (true, false, Some(c)) = (prefix_is_base, restored, caches.dump)
        && prefix_out.iter().all(|o| o.status == Status::Applied)
        && let Err(why) = c.save(builder.server, &prefix_db, owner, base)
    {
        notes.push(format!("base cache not written: {why}"));
    }
    // Local provider, cache miss: keep a clone of the verified base for the archive written at
    // shutdown (the base itself is changed in place below).
    if let (true, false, Some(c)) = (prefix_is_base, restored, caches.cluster)
        && prefix_out.iter().all(|o| o.status == Status::Applied)
    {
        let db = builder.create("cache", Some(&prefix_db)).await?;
        if let Ok(mut slot) = caches.archive.lock() {
            *slot = Some(c.pending(&db, owner, builder.server, base));
        }
    }
    let prefix_ok = prefix_out.iter().all(|o| o.status == Status::Applied);
    runs.push(("base".to_string(), prefix_out.clone()));

    // 2. The rest of base, on a clone of the prefix.
    let mut base_ok = prefix_ok;
    let base_db = if prefix_is_base || !prefix_ok {
        prefix_db.clone()
    } else {
        let db = builder.create("base", Some(&prefix_db)).await?;
        let rest: Vec<&Migration> = base.migrations[k..].iter().collect();
        let out = builder.replay(&db, &rest).await?;
        base_ok = out.iter().all(|o| o.status == Status::Applied);
        runs.push(("base".to_string(), out));
        db
    };
    let base_took = t.elapsed();
    timings.insert("base".into(), ms(base_took));

    let deploy: Vec<&Migration> = plan.deploy.iter().map(|&i| &head.migrations[i]).collect();
    // 3a. Seeded and traced: a clone of base with synthetic rows in every table, then the new
    //     migrations statement by statement, observing locks, rewrites and catalog changes.
    let mut traced = None;
    if base_ok && !deploy.is_empty() {
        let t = Instant::now();
        let db = builder.create("seeded", Some(&base_db)).await?;
        let seed_sql = seed.map(|(path, sql)| (path.as_str(), sql.as_str()));
        let mut tr = builder.trace(&db, &deploy, seed_sql, false).await?;
        if !tr.outside.is_empty() {
            // The statements reached tables the focus did not seed: trace again with all of
            // them, so every observed check covers what it claims.
            notes.push(format!(
                "seeded run: the new migrations reached {} beyond the tables they name and those tables' foreign-key parents; traced again with all {} tables seeded",
                tr.outside.join(", "),
                tr.focus.total
            ));
            let _ = builder.server.drop_database(&db).await;
            let db = builder.create("seeded_all", Some(&base_db)).await?;
            tr = builder.trace(&db, &deploy, seed_sql, true).await?;
        }
        traced = Some(tr);
        timings.insert("trace".into(), ms(t.elapsed()));
    }

    // 3b. The scratch database is cloned from the prefix now, before incremental changes base
    //     (which may be the prefix) in place.
    let scratch_db = if !plan.identical_sequences && prefix_ok {
        let t = Instant::now();
        let db = builder.create("scratch", Some(&prefix_db)).await?;
        timings.insert("clone".into(), ms(t.elapsed()));
        Some(db)
    } else {
        None
    };

    // 3. Incremental: base + the migrations deploy would apply, in deploy order, applied in place
    //    on the base database (every clone of base was taken above).
    let (inc_out, incremental) = if base_ok {
        let t = Instant::now();
        let db = base_db.clone();
        let out = builder.apply(&db, &deploy).await?;
        let took = t.elapsed();
        timings.insert("incremental".into(), ms(took));
        let check = run_check(
            &out,
            took,
            &format!(
                "{} new on base ({} migrations, {} in {})",
                deploy.len(),
                base.migrations.len(),
                if restored {
                    "restored from the base cache"
                } else {
                    "applied once"
                },
                human_ms(ms(base_took))
            ),
        );
        (Some((db, out)), check)
    } else {
        (
            None,
            CheckResult {
                status: "fail".into(),
                ..CheckResult::not_run("the base migrations do not apply: nothing to build on")
            },
        )
    };

    // 4. Scratch: head from empty, sharing the prefix; skipped when it is provably the same
    //    sequence as incremental.
    let mut scratch_out: Option<(String, Vec<Outcome>)> = None;
    let scratch = if plan.identical_sequences {
        CheckResult {
            status: incremental.status.clone(),
            summary: format!(
                "same sequence as incremental (base + {} new): not built twice",
                deploy.len()
            ),
            ..CheckResult::not_run("")
        }
    } else if !prefix_ok {
        CheckResult {
            status: "fail".into(),
            ..CheckResult::not_run("the shared migrations do not apply")
        }
    } else {
        let t = Instant::now();
        let db = scratch_db.clone().unwrap_or_default();
        let rest: Vec<&Migration> = head.migrations[k..].iter().collect();
        let out = builder.apply(&db, &rest).await?;
        let took = t.elapsed();
        timings.insert("scratch".into(), ms(took));
        let check = run_check(
            &out,
            took,
            &format!(
                "{} migrations ({} shared with base, cloned)",
                head.migrations.len(),
                k
            ),
        );
        runs.push(("from scratch".to_string(), out.clone()));
        scratch_out = Some((db, out));
        check
    };
    if let Some((_, out)) = &inc_out {
        runs.push(("incremental".to_string(), out.clone()));
    }

    // 5. Drift: compare the two catalogs when both were built.
    let mut drift = Vec::new();
    let drift_check = if plan.identical_sequences {
        CheckResult {
            status: "pass".into(),
            ..CheckResult::not_run("identical sequences: nothing can differ")
        }
    } else {
        match (&inc_out, &scratch_out) {
            (Some((inc_db, inc)), Some((scr_db, scr)))
                if inc.iter().all(|o| o.status == Status::Applied)
                    && scr.iter().all(|o| o.status == Status::Applied) =>
            {
                let t = Instant::now();
                let (a, b) = (
                    builder.inspect(scr_db).await?,
                    builder.inspect(inc_db).await?,
                );
                drift = crate::inspect::diff(&a, &b);
                timings.insert("inspect".into(), ms(t.elapsed()));
                CheckResult {
                    status: if drift.is_empty() {
                        "pass".into()
                    } else {
                        "fail".into()
                    },
                    summary: if drift.is_empty() {
                        "incremental and from-scratch schemas are identical".into()
                    } else {
                        format!(
                            "{} objects differ between incremental and from scratch",
                            drift.len()
                        )
                    },
                    findings: Some(drift.len()),
                    ..CheckResult::not_run("")
                }
            }
            _ => CheckResult::not_run("skipped: a run failed"),
        }
    };

    // Rows: one per head migration, from the run that applied it.
    let inc_by_name: std::collections::HashMap<&str, &Outcome> = inc_out
        .as_ref()
        .map(|(_, o)| o.iter().map(|x| (x.name.as_str(), x)).collect())
        .unwrap_or_default();
    let scr_by_name: std::collections::HashMap<&str, &Outcome> = scratch_out
        .as_ref()
        .map(|(_, o)| o.iter().map(|x| (x.name.as_str(), x)).collect())
        .unwrap_or_default();
    let mut rows = Vec::new();
    for (i, m) in head.migrations.iter().enumerate() {
        let entry = &plan.head[i];
        let change = match &entry.class {
            Classification::Unchanged => "unchanged",
            Classification::Edited => "edited",
            Classification::Renamed { .. } => "renamed",
            Classification::New {
                out_of_order_before: Some(_),
            } => "out-of-order",
            Classification::New {
                out_of_order_before: None,
            } => "new",
        };
        let new = plan.deploy.contains(&i);
        let outcome = if i < k {
            prefix_out.get(i).map(|o| {
                let mut o = o.clone();
                if o.status == Status::Applied {
                    o.status = Status::Unchanged;
                }
                o
            })
        } else if new {
            inc_by_name
                .get(m.name.as_str())
                .or(scr_by_name.get(m.name.as_str()))
                .map(|o| (*o).clone())
        } else {
            scr_by_name.get(m.name.as_str()).map(|o| (*o).clone())
        };
        let outcome = outcome.unwrap_or(Outcome {
            name: m.name.clone(),
            path: m.path.clone(),
            status: if change == "unchanged" {
                Status::Unchanged
            } else {
                Status::Skipped
            },
            duration: Duration::ZERO,
            mode: crate::run::ApplyMode::WholeFile,
            failure: None,
        });
        rows.push(row(&outcome, change, new));
    }

    // The strongest lock each traced migration took on a table that existed before.
    if let Some(tr) = &traced {
        for t in &tr.traces {
            if let (Some(row), Some((mode, table))) = (
                rows.iter_mut().find(|r| r.name == t.name),
                crate::run::trace::strongest_lock(t),
            ) {
                row.lock = Some(format!("{mode} on {table}"));
            }
        }
    }
    Ok(BuildOutcome {
        plan: Some(plan),
        rows,
        runs,
        drift,
        traced,
        scratch,
        incremental,
        drift_check,
    })
}

/// `--live-url`: history findings, the pending set, and the live catalog against a database built
/// from exactly the migrations production recorded as applied.
async fn check_live(
    builder: &Builder<'_>,
    url: &str,
    head: &MigrationSet,
    notes: &mut Vec<String>,
) -> Result<(Vec<Finding>, CheckResult), UserError> {
    use sqlx::Connection;
    let (mut conn, schema) = crate::live::connect(url).await?;
    let history = crate::live::read_history(&mut conn, &schema).await?;
    let live_catalog =
        crate::inspect::inspect(&mut conn, &crate::inspect::InspectOptions::default())
            .await
            .map_err(|e| {
                UserError::environment("could not read the live database's catalog")
                    .detail(e.to_string())
            })?;
    let _ = conn.close().await;
    let analysis = crate::live::analyze(&history, head);
    let mut findings = analysis.findings.clone();
    if history.rows.is_none() {
        notes.push(format!("the live database has no {schema}._prisma_migrations table: it is not managed by Prisma Migrate; drift not compared"));
    }
    if !analysis.pending.is_empty() {
        notes.push(format!(
            "`prisma migrate deploy` would apply on the live database: {}",
            analysis.pending.join(", ")
        ));
    }
    if !analysis.unknown.is_empty() {
        notes.push(format!(
            "the live drift comparison lacks {} applied migrations with no local directory",
            analysis.unknown.len()
        ));
    }
    let mut differ = 0usize;
    let mut compared = false;
    if history.rows.is_some() {
        let db = builder.create("live", None).await?;
        let applied: Vec<&Migration> = analysis
            .applied
            .iter()
            .map(|&i| &head.migrations[i])
            .collect();
        let out = builder.replay(&db, &applied).await?;
        if let Some(failed) = out.iter().find(|o| o.status == Status::Failed) {
            notes.push(format!("the migrations production recorded as applied do not apply here ({} fails): live drift not compared", failed.name));
        } else {
            let expected = builder.inspect(&db).await?;
            let changes = crate::inspect::diff(&expected, &live_catalog);
            differ = changes.len();
            compared = true;
            findings.extend(crate::check::rules::live_drift::check(&changes));
        }
    }
    let failed_rows = findings
        .iter()
        .filter(|f| f.rule == crate::check::rules::LIVE_FAILED_MIGRATION.id)
        .count();
    let summary = format!(
        "{} applied, {} pending{}{}",
        analysis.applied.len(),
        analysis.pending.len(),
        if failed_rows > 0 {
            format!(", {failed_rows} failed or rolled back")
        } else {
            String::new()
        },
        if compared {
            if differ == 0 {
                ", schema matches its history".to_string()
            } else {
                format!(", {differ} objects drifted")
            }
        } else {
            String::new()
        }
    );
    let status = if findings.iter().any(|f| f.severity == Severity::Error) {
        "fail"
    } else {
        "pass"
    };
    Ok((
        findings,
        CheckResult {
            status: status.into(),
            summary,
            findings: Some(differ),
            ..CheckResult::not_run("")
        },
    ))
}

/// Findings from the traced run: the observed rules, and `fails-on-existing-rows` for a migration
/// that failed there but applied on the empty incremental database.
fn observed_findings(
    traces: &[crate::run::trace::MigrationTrace],
    runs: &[(String, Vec<Outcome>)],
) -> Vec<Finding> {
    use crate::check::rules::*;
    let mut out = Vec::new();
    for check in [
        drops_table::check,
        drops_column::check,
        drops_schema::check,
        drops_enum_value::check,
        narrows_column_type::check,
        deletes_rows::check,
        renames_table::check,
        renames_column::check,
        rewrites_table::check,
        blocks_reads_writes::check,
        blocks_writes::check,
        missing_lock_timeout::check,
    ] {
        out.extend(check(traces));
    }
    let applied_incrementally = |name: &str| {
        runs.iter()
            .filter(|(label, _)| label == "incremental")
            .flat_map(|(_, o)| o.iter())
            .any(|o| o.name == name && o.status == Status::Applied)
    };
    for t in traces {
        if let Some(f) = &t.failure
            && applied_incrementally(&t.name)
        {
            out.push(fails_on_existing_rows::finding(&t.name, &t.path, f));
        }
    }
    out
}

/// Merge static (squawk) findings with observed ones: a static finding whose observed twin fired on
/// the same statement joins it as evidence; one whose twin did not fire in a traced migration is
/// dismissed (the trace shows it harmless); the rest are kept. Returns (kept, merged, dismissed).
fn merge_static(
    statics: Vec<Finding>,
    findings: &mut [Finding],
    traced: &[&str],
) -> (Vec<Finding>, usize, usize) {
    let (mut kept, mut merged, mut dismissed) = (Vec::new(), 0, 0);
    for s in statics {
        let name = s.rule.trim_start_matches(crate::check::squawk::PREFIX);
        let Some(twin) = crate::check::squawk::observed_equivalent(name) else {
            kept.push(s);
            continue;
        };
        // The observed finding of that rule in the same migration whose statement starts at or
        // before the static finding's line (the statement containing it).
        let target = findings
            .iter_mut()
            .filter(|o| {
                o.rule == twin
                    && o.migration == s.migration
                    && o.line.is_some_and(|l| s.line.is_some_and(|sl| l <= sl))
            })
            .max_by_key(|o| o.line);
        if let Some(o) = target {
            o.evidence
                .push(format!("static: {} — {}", s.rule, s.message));
            merged += 1;
            continue;
        }
        // The migration ran traced and the observed twin did not fire: harmless here. (A
        // fails-on-existing-rows twin depends on the seeded rows reaching that table: kept.)
        let in_trace = s.migration.as_deref().is_some_and(|m| traced.contains(&m));
        if in_trace && twin != crate::check::rules::FAILS_ON_EXISTING_ROWS.id {
            dismissed += 1;
            continue;
        }
        kept.push(s);
    }
    (kept, merged, dismissed)
}

/// The same failure seen by several runs (e.g. incremental and from scratch) is one finding.
fn merge_same_failures(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::with_capacity(findings.len());
    for f in findings {
        let key = |x: &Finding| {
            let msg = x
                .message
                .split_once(": ")
                .map(|(_, m)| m.to_string())
                .unwrap_or_else(|| x.message.clone());
            (x.rule.clone(), x.migration.clone(), x.line, x.column, msg)
        };
        if let Some(existing) = out
            .iter_mut()
            .find(|e| key(e) == key(&f) && e.migration.is_some())
        {
            let (label, rest) = f.message.split_once(": ").unwrap_or(("", &f.message));
            let (elabel, _) = existing.message.split_once(": ").unwrap_or(("", ""));
            if !elabel.contains(label) {
                existing.message = format!("{elabel} and {label}: {rest}");
            }
            continue;
        }
        out.push(f);
    }
    out
}

/// Map a report to the process exit code (0 pass, 1 fail).
pub fn exit_code(report: &Report) -> u8 {
    match report.verdict {
        Verdict::Pass => 0,
        Verdict::Fail => 1,
    }
}

/// Severity names for `ci-gate rules`.
pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Notice => "notice",
    }
}
