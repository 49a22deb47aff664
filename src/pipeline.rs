//! `ci-gate verify`, stage by stage: config → locate + discover (while the server starts) →
//! databases and roles → apply → findings → report.
//!
//! Cleanup guarantee: the server (and every database and role ci-gate made) is released after
//! success, failure, a panic inside the pipeline, and SIGINT/SIGTERM: the work runs in its own
//! task and the server lives in a slot outside it, which [`verify`] always empties.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, Connection};
use tokio::sync::Mutex;

use crate::check::rules::{invalid_migration_layout, migration_fails, non_transactional_statement};
use crate::check::{Finding, Severity};
use crate::cli::VerifyArgs;
use crate::config::{Config, FailOn};
use crate::discover::{self, FsTree, MigrationSet, locate, prisma_version};
use crate::error::UserError;
use crate::provision::{self, ProviderChoice, ProvisionRequest, Server, quote_ident};
use crate::report::{
    CheckResult, Checks, Counts, MigrationRow, PrismaInfo, Report, ServerInfo, Verdict, human_ms,
};
use crate::run::prisma::{self as prisma_run, ApplyOptions, Semantics};
use crate::run::{Outcome, Status};

/// Default per-migration statement timeout.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);

/// Run `verify` with guaranteed cleanup. Returns the report, or the error that stopped it.
pub async fn verify(args: VerifyArgs) -> Result<Report, UserError> {
    let slot: Arc<Mutex<Option<Server>>> = Arc::new(Mutex::new(None));
    let mut body = tokio::spawn(verify_inner(args, slot.clone()));
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
    if let Some(server) = slot.lock().await.take() {
        for w in server.shutdown().await {
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

/// The nearest ancestor holding `.git`.
fn repo_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

async fn verify_inner(
    args: VerifyArgs,
    slot: Arc<Mutex<Option<Server>>>,
) -> Result<Report, UserError> {
    let t0 = Instant::now();
    let project = project_dir(args.project_dir.as_deref())?;
    let (config, _config_path) = Config::load(&project, args.config.as_deref())?;
    if args.live_url.is_some() {
        return Err(
            UserError::bad_input("--live-url is not available in this version of ci-gate")
                .hint("remove --live-url; the read-only production drift check is being built"),
        );
    }
    let mut notes = Vec::new();
    for (flag, given) in [
        ("--sarif", args.sarif.is_some()),
        ("--markdown", args.markdown.is_some()),
        ("--base", args.base.is_some()),
    ] {
        if given {
            notes.push(format!(
                "{flag} is not available in this version yet; ignored"
            ));
        }
    }

    // Where the migrations are (exit 2 before anything starts).
    let dir = locate::migrations_dir(
        &project,
        args.migrations.as_deref(),
        config.migrations.as_deref(),
    )?;
    // Paths in the report are relative to the repository root (for annotations and SARIF), or to
    // the project when it is not in a git repository.
    let root = repo_root(&project).unwrap_or_else(|| project.clone());
    let rel_dir = discover::tree::relative(&root, &dir);
    if !dir.exists() {
        return Err(discover::DiscoverError::MissingDir { path: dir }.into());
    }

    let provider = args
        .provider
        .or(config.postgres.provider)
        .unwrap_or(ProviderChoice::Auto);
    let database_url = args.database_url.clone().or(config.postgres.url.clone());
    if provider == ProviderChoice::Url && database_url.is_none() {
        return Err(UserError::bad_input("--provider url needs --database-url")
            .hint("pass --database-url postgres://USER:PASSWORD@HOST:PORT/postgres (or set postgres.url in .ci-gate.yml)"));
    }
    let req = ProvisionRequest {
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

    // Start the server while the files are read.
    let tree_root = root.clone();
    let tree_dir = rel_dir.clone();
    let t_discover = Instant::now();
    let discover_task = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let r = discover::prisma::read(&FsTree::new(tree_root), &tree_dir);
        (r, started.elapsed())
    });
    let (server, discovered) = tokio::join!(provision::provision(&req), discover_task);
    let (set, discover_time) = match discovered {
        Ok((r, t)) => (r, t),
        Err(e) => (
            Err(discover::DiscoverError::Io {
                path: dir.clone(),
                source: std::io::Error::other(e.to_string()),
            }),
            t_discover.elapsed(),
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
    let set = set?; // bad input wins over a missing server
    server?;
    let guard = slot.lock().await;
    let Some(server) = guard.as_ref() else {
        return Err(UserError::environment("the server disappeared"));
    };

    // Prisma version → how files are applied.
    let prisma = args
        .prisma_version
        .as_deref()
        .and_then(|v| prisma_version::parse(v, "--prisma-version"))
        .or_else(|| {
            config
                .prisma_version
                .as_deref()
                .and_then(|v| prisma_version::parse(v, ".ci-gate.yml (prisma-version)"))
        })
        .or_else(|| {
            let mut dirs = vec![project.clone()];
            let mut d = dir.parent();
            while let Some(p) = d {
                if !p.starts_with(&project) || p == project {
                    break;
                }
                dirs.push(p.to_path_buf());
                d = p.parent();
            }
            prisma_version::detect(&dirs)
        });
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
    notes.extend(set.notes.iter().map(|n| n.message.clone()));

    let statement_timeout = config
        .statement_timeout
        .as_ref()
        .and_then(|t| t.parse())
        .unwrap_or(DEFAULT_STATEMENT_TIMEOUT);
    let opts = ApplyOptions {
        semantics,
        statement_timeout,
    };
    let superuser = args.superuser || config.superuser.unwrap_or(false);

    let t_scratch = Instant::now();
    let outcomes = apply_from_scratch(server, &set, &config, superuser, &opts, &mut notes).await?;
    let scratch_time = t_scratch.elapsed();

    // Findings.
    let mut findings = invalid_migration_layout::check(&set.problems);
    findings.extend(non_transactional_statement::check(
        &outcomes,
        "from scratch",
    ));
    findings.extend(migration_fails::check(&outcomes, "from scratch"));
    let findings: Vec<Finding> = findings
        .into_iter()
        .filter_map(|mut f| {
            let sev = config.severity_for(&f.rule, f.severity)?;
            f.severity = sev;
            Some(f)
        })
        .collect();

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
    let scratch = CheckResult {
        status: if failed > 0 {
            "fail".into()
        } else {
            "pass".into()
        },
        summary: if failed > 0 {
            format!(
                "{applied} applied, 1 failed, {skipped} skipped ({})",
                human_ms(scratch_time.as_millis() as u64)
            )
        } else {
            format!(
                "{applied} applied in {}",
                human_ms(scratch_time.as_millis() as u64)
            )
        },
        applied: Some(applied),
        failed: Some(failed),
        skipped: Some(skipped),
        findings: None,
        duration_ms: Some(scratch_time.as_millis() as u64),
    };
    let history_findings = findings
        .iter()
        .filter(|f| f.rule == invalid_migration_layout::RULE.id)
        .count();
    let history = CheckResult {
        status: if history_findings > 0 {
            "fail".into()
        } else {
            "pass".into()
        },
        summary: if history_findings > 0 {
            format!("{history_findings} layout problems")
        } else {
            "layout ok".into()
        },
        applied: None,
        failed: None,
        skipped: None,
        findings: Some(history_findings),
        duration_ms: None,
    };
    let no_base = "no base: scratch only (incremental runs come with --base)";
    let mut timings = std::collections::BTreeMap::new();
    timings.insert("provision".to_string(), server.startup.as_millis() as u64);
    timings.insert("discover".to_string(), discover_time.as_millis() as u64);
    timings.insert("scratch".to_string(), scratch_time.as_millis() as u64);
    timings.insert("total".to_string(), t0.elapsed().as_millis() as u64);

    let mut report = Report {
        schema_version: crate::report::SCHEMA_VERSION,
        verdict: Verdict::Pass,
        fail_on: args.fail_on.or(config.fail_on).unwrap_or(FailOn::Error),
        format: set.format.to_string(),
        project: project.display().to_string(),
        migrations_dir: rel_dir,
        base: None,
        head: None,
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
        }),
        counts: Counts::default(),
        migrations: rows(&outcomes),
        checks: Checks {
            scratch,
            incremental: CheckResult::not_run(no_base),
            drift: CheckResult::not_run(no_base),
            history,
            live: CheckResult::not_run("no --live-url"),
        },
        findings,
        notes,
        timings_ms: timings,
    };
    report.finalize();
    Ok(report)
}

fn rows(outcomes: &[Outcome]) -> Vec<MigrationRow> {
    outcomes
        .iter()
        .map(|o| MigrationRow {
            name: o.name.clone(),
            path: o.path.clone(),
            status: o.status,
            duration_ms: o.duration.as_millis() as u64,
            new: true,
            mode: o.mode,
            rules: Vec::new(),
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
        })
        .collect()
}

/// Create the owner role, configured roles, the `scratch` database and extensions, then apply
/// every migration as the owner.
async fn apply_from_scratch(
    server: &Server,
    set: &MigrationSet,
    config: &Config,
    superuser: bool,
    opts: &ApplyOptions,
    notes: &mut Vec<String>,
) -> Result<Vec<Outcome>, UserError> {
    let env =
        |what: String| move |e: sqlx::Error| UserError::environment(what).detail(e.to_string());

    for role in &config.roles {
        server.create_role(role, None).await.map_err(|e| {
            UserError::environment(format!(
                "could not create role `{role}` (from `roles:` in .ci-gate.yml)"
            ))
            .detail(e.to_string())
        })?;
    }

    let mut owner: Option<(String, String)> = None;
    if !superuser {
        let name = format!("cigate_{}_owner", server.run_id);
        let password = uuid::Uuid::new_v4().simple().to_string();
        match server.create_role(&name, Some(&password)).await {
            Ok(_) => owner = Some((name, password)),
            Err(e) => notes.push(format!(
                "migrations ran as the server's user, not a separate owner role (could not create a role: {})",
                e.as_database_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string())
            )),
        }
    } else {
        notes.push("migrations ran as the superuser (--superuser)".into());
    }

    let db = server
        .create_database("scratch", owner.as_ref().map(|(n, _)| n.as_str()), None)
        .await
        .map_err(env("could not create the scratch database".into()))?;

    if !config.extensions.is_empty() {
        let mut conn = provision::connect_quiet(&server.admin_options(&db))
            .await
            .map_err(env(format!("could not connect to {db}")))?;
        for ext in &config.extensions {
            let sql = format!(
                "CREATE EXTENSION IF NOT EXISTS {} CASCADE",
                quote_ident(ext)
            );
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await.map_err(|e| {
                UserError::environment(format!("could not create extension `{ext}` (from `extensions:` in .ci-gate.yml)"))
                    .detail(e.as_database_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string()))
                    .hint("use a server that ships it (--image, --pg-bin or --database-url), or remove it from `extensions:`")
            })?;
        }
        let _ = conn.close().await;
    }

    let conn_opts = match &owner {
        Some((name, pw)) => server.user_options(&db, name, pw),
        None => server.admin_options(&db),
    };
    let mut conn = provision::connect_quiet(&conn_opts)
        .await
        .map_err(env(format!(
            "could not connect to {db} as the migration owner"
        )))?;
    prisma_run::prepare(&mut conn, opts)
        .await
        .map_err(|e| UserError::environment(e.to_string()))?;
    let migrations: Vec<_> = set.migrations.iter().collect();
    let outcomes = prisma_run::apply_all(&mut conn, &migrations, opts)
        .await
        .map_err(|e| {
            UserError::environment(format!("the server failed while applying migrations: {e}"))
                .hint(
                    "the server may have crashed or run out of resources; run again with --verbose",
                )
        })?;
    let _ = conn.close().await;
    Ok(outcomes)
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
