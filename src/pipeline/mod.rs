//! `ci-gate verify`, the seven stages in order: discover → plan → provision → run → inspect →
//! check → report (DESIGN.md). Each stage lives in its own module; this file only names them and
//! passes what one produced to the next. [`guard`] makes the cleanup guarantee.

mod coverage;
mod guard;
mod start;

pub use guard::shutdown_signal;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Mutex;

use crate::check::assess::{CheckInputs, assess};
use crate::check::{Evidence, squawk::LintContext};
use crate::error::UserError;
use crate::model::Checks;
use crate::plan::Classification;
use crate::provision::Server;
use crate::report::{Header, PrismaInfo, Report, ServerInfo, Verdict};
use crate::run::build::Builder;
use crate::run::builds::{ArchiveSlot, Timings};
use crate::run::prisma::{ApplyOptions, Semantics};
use crate::settings::Settings;

/// Where the server lives while the pipeline runs, so the guard can always release it.
type ServerSlot = Arc<Mutex<Option<Server>>>;

/// Run `verify` with guaranteed cleanup. Returns the report, or the error that stopped it.
pub async fn verify(settings: Settings) -> Result<Report, UserError> {
    guard::guarded(|slot, archive| run(settings, slot, archive)).await
}

async fn run(s: Settings, slot: ServerSlot, archive: ArchiveSlot) -> Result<Report, UserError> {
    let (t0, mut notes, mut timings) = (Instant::now(), s.notes.clone(), Timings::new());
    // discover + provision (overlapping): the files, the base, a server.
    crate::progress::phase("starting PostgreSQL and reading the migrations");
    let target = start::target(&s, &mut notes)?;
    let semantics = start::semantics(&s, &mut notes);
    let ready = start::provision_and_discover(&s, &target, semantics, &slot, &mut notes).await?;
    let guard = slot.lock().await;
    let server = guard
        .as_ref()
        .ok_or_else(|| UserError::environment("the server disappeared"))?;
    let restored_db = start::adopt_restored(server, &ready, &mut notes).await;
    let restored_owner = ready.restored.as_ref().and_then(|m| m.owner.as_deref());
    let owner = start::prepare_roles(server, &s, restored_owner, &mut notes).await?;
    if s.statement_timeout.value.is_zero() {
        notes.push("statement-timeout: 0: no time limit on the migrations (PostgreSQL reads 0 as no limit), and ci-gate waits for them as long as they run".into());
    }
    let opts = ApplyOptions {
        semantics,
        statement_timeout: s.statement_timeout.value,
        lock_timeout: s.lock_timeout.as_ref().map(|t| t.value),
    };
    if let Some(t) = &s.lock_timeout {
        notes.push(format!(
            "lock-timeout: {} (from {}): every migration session starts with lock_timeout = {}, as the deploy's connection does; a lock wait beyond it fails the migration here as in production",
            crate::fmt::human_ms(t.value.as_millis() as u64),
            t.origin,
            crate::fmt::human_ms(t.value.as_millis() as u64),
        ));
    }
    let builder = Builder {
        server,
        owner,
        extensions: &s.extensions,
        superuser_extensions: &s.superuser_extensions,
        opts: &opts,
    };
    // plan + run + inspect: the databases, what each migration did, the catalogs compared.
    crate::progress::phase("applying the migrations");
    let (b, rdb) = (&builder, restored_db);
    let mut built = start::build(
        b,
        &s,
        &target,
        &ready,
        rdb,
        semantics,
        &archive,
        &mut notes,
        &mut timings,
    )
    .await?;
    let trace = coverage::mark(&mut built);
    let live = match &s.live_url {
        Some(url) => {
            crate::progress::phase("reading the live database");
            let t = Instant::now();
            let live = crate::run::live::observe(&builder, url, &ready.head, &mut notes).await?;
            timings.insert("live".into(), t.elapsed().as_millis() as u64);
            Some(live)
        }
        None => None,
    };
    // check: every rule over what the stages saw, then the static layer and allow directives.
    crate::progress::phase("checking: rules and static lint");
    let traces = built
        .traced
        .as_ref()
        .map(|t| t.traces.as_slice())
        .unwrap_or_default();
    let ev = Evidence {
        head: &ready.head,
        base: ready.base.as_ref(),
        plan: built.plan.as_ref(),
        runs: &built.runs,
        drift: &built.drift,
        drift_compared: matches!(
            built.drift_check.status,
            crate::model::CheckStatus::Pass | crate::model::CheckStatus::Fail
        ),
        traces,
        seed: built.traced.as_ref().map(|t| &t.seed),
        live: live.as_ref(),
    };
    let linted: Vec<_> = match &built.plan {
        Some(plan) => plan
            .head
            .iter()
            .filter(|e| !matches!(e.class, Classification::Unchanged))
            .map(|e| &ready.head.migrations[e.index])
            .collect(),
        None => ready.head.migrations.iter().collect(),
    };
    let t_lint = Instant::now();
    let lint = LintContext::for_prisma(server.major(), s.prisma_version());
    let assessed = assess(
        &ev,
        &CheckInputs {
            linted: &linted,
            lint,
            levels: &s.rules,
        },
    );
    notes.extend(assessed.notes);
    timings.insert("static".into(), t_lint.elapsed().as_millis() as u64);
    // report
    timings.insert("provision".into(), server.startup.as_millis() as u64);
    timings.insert("discover".into(), ready.discover_time.as_millis() as u64);
    timings.insert("total".into(), t0.elapsed().as_millis() as u64);
    let checks = Checks {
        scratch: built.scratch,
        incremental: built.incremental,
        drift: built.drift_check,
        history: assessed.history,
        live: assessed.live,
        trace,
    };
    let header = header(
        &s,
        &target,
        semantics,
        server,
        ready.head.format.to_string(),
    );
    let mut report = Report::assemble(
        header,
        built.rows,
        checks,
        assessed.findings,
        notes,
        timings,
    );
    report.statistics = assessed.statistics;
    Ok(report)
}

/// The report's header: what was run, how, and on which server.
fn header(
    s: &Settings,
    target: &start::Target,
    semantics: Semantics,
    server: &Server,
    format: String,
) -> Header {
    let prisma = s.prisma_version();
    Header {
        fail_on: s.fail_on.value,
        comment: s.comment.as_ref().map(|c| c.value),
        format,
        project: s.project.display().to_string(),
        migrations_dir: target.rel_dir.clone(),
        base_ref: target.base.clone(),
        base_dir: s.base_dir.as_ref().map(|d| d.display().to_string()),
        prisma: Some(PrismaInfo {
            version: prisma.map(|v| v.raw.clone()),
            source: prisma.map(|v| v.source.clone()),
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
    }
}

/// Map a report to the process exit code (0 pass, 1 fail).
pub fn exit_code(report: &Report) -> u8 {
    match report.verdict {
        Verdict::Pass => 0,
        Verdict::Fail => 1,
    }
}
