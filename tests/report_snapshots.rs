//! Snapshot tests of the renderers on fixed reports (no server, no timing noise).

use std::collections::BTreeMap;

use ci_gate::check::rules::{INVALID_MIGRATION_LAYOUT, MIGRATION_FAILS};
use ci_gate::check::{Finding, Source};
use ci_gate::config::FailOn;
use ci_gate::report::{
    CheckResult, Checks, Counts, MigrationRow, PrismaInfo, Report, ServerInfo, Verdict, json,
    terminal,
};
use ci_gate::run::{ApplyMode, Status};

fn row(name: &str, status: Status, ms: u64) -> MigrationRow {
    MigrationRow {
        name: name.into(),
        path: format!("prisma/migrations/{name}/migration.sql"),
        status,
        duration_ms: ms,
        new: true,
        change: "new".into(),
        mode: ApplyMode::WholeFile,
        rules: vec![],
        lock: None,
        note: None,
    }
}

fn check(status: &str, summary: &str) -> CheckResult {
    CheckResult {
        status: status.into(),
        summary: summary.into(),
        applied: None,
        failed: None,
        skipped: None,
        findings: None,
        duration_ms: None,
    }
}

fn base_report(rows: Vec<MigrationRow>, findings: Vec<Finding>, scratch: CheckResult) -> Report {
    let mut r = Report {
        schema_version: 1,
        verdict: Verdict::Pass,
        fail_on: FailOn::Error,
        format: "prisma".into(),
        project: "/repo".into(),
        migrations_dir: "prisma/migrations".into(),
        base: None,
        head: None,
        base_ref: None,
        prisma: Some(PrismaInfo {
            version: Some("6.19.0".into()),
            source: Some("package.json".into()),
            semantics: "whole-file".into(),
        }),
        server: Some(ServerInfo {
            provider: "local".into(),
            version: "15.18".into(),
            startup_ms: 612,
        }),
        counts: Counts::default(),
        migrations: rows,
        checks: Checks {
            scratch,
            incremental: CheckResult::not_run("no base"),
            drift: CheckResult::not_run("no base"),
            history: check("pass", "layout ok"),
            live: CheckResult::not_run("no --live-url"),
        },
        findings,
        notes: vec![],
        timings_ms: BTreeMap::from([
            ("provision".to_string(), 612),
            ("scratch".to_string(), 4100),
        ]),
        comment: None,
    };
    r.finalize();
    r
}

fn passing() -> Report {
    base_report(
        vec![
            row("20240112093015_init", Status::Applied, 24),
            row("20240203141122_projects_and_tasks", Status::Applied, 20),
        ],
        vec![],
        check("pass", "2 applied in 44 ms"),
    )
}

fn failing() -> Report {
    let mut failed = row("20240415120000_post_published_at", Status::Failed, 3);
    failed.note = Some("line 7: column \"slug\" does not exist [42703]".into());
    let finding = Finding::new(
        &MIGRATION_FAILS,
        Source::History,
        "from scratch: column \"slug\" does not exist (SQLSTATE 42703)",
    )
    .migration("20240415120000_post_published_at")
    .file("prisma/migrations/20240415120000_post_published_at/migration.sql")
    .at(7, 39)
    .statement("UPDATE \"Post\" SET \"permalink\" = lower(\"slug\") WHERE \"permalink\" IS NULL")
    .evidence("location: the server's error position")
    .fix("fix the statement so that it applies on a database built from the migrations before it");
    let layout = Finding::new(
        &INVALID_MIGRATION_LAYOUT,
        Source::History,
        "`prisma/migrations/x` has no migration.sql",
    )
    .file("prisma/migrations/x")
    .fix("delete the folder, or add its migration.sql");
    base_report(
        vec![
            row("20240205101500_init", Status::Applied, 11),
            failed,
            row("20240501000000_after", Status::Skipped, 0),
        ],
        vec![finding, layout],
        check("fail", "1 applied, 1 failed, 1 skipped (331 ms)"),
    )
}

fn long_history() -> Report {
    let mut rows: Vec<MigrationRow> = (0..40)
        .map(|i| row(&format!("2024010100{i:04}_m{i}"), Status::Applied, 2))
        .collect();
    rows[39].status = Status::Failed;
    rows[39].note = Some("line 1: relation \"Nope\" does not exist [42P01]".into());
    let finding = Finding::new(
        &MIGRATION_FAILS,
        Source::History,
        "from scratch: relation \"Nope\" does not exist (SQLSTATE 42P01)",
    )
    .migration(rows[39].name.clone())
    .file(rows[39].path.clone())
    .at(1, 1);
    base_report(
        rows,
        vec![finding],
        check("fail", "39 applied, 1 failed, 0 skipped (80 ms)"),
    )
}

fn term(r: &Report, verbose: bool) -> String {
    terminal::render(
        r,
        &terminal::TerminalOptions {
            color: false,
            verbose,
            width: Some(120),
        },
    )
}

#[test]
fn terminal_pass() {
    insta::assert_snapshot!(term(&passing(), false));
}

#[test]
fn terminal_fail() {
    let r = failing();
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(r.counts.errors, 2);
    insta::assert_snapshot!(term(&r, false));
}

#[test]
fn terminal_long_history_shows_only_flagged_rows() {
    let out = term(&long_history(), false);
    assert!(out.contains("39 clean migrations applied"));
    insta::assert_snapshot!(out);
}

#[test]
fn terminal_colour_only_when_asked() {
    let plain = term(&failing(), false);
    assert!(!plain.contains('\x1b'));
    let coloured = terminal::render(
        &failing(),
        &terminal::TerminalOptions {
            color: true,
            verbose: false,
            width: Some(120),
        },
    );
    assert!(coloured.contains("\x1b[1;31m"));
}

#[test]
fn json_fail() {
    insta::assert_snapshot!(json::render(&failing()));
}
