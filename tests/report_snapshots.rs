//! Snapshot tests of the renderers on fixed reports (no server, no timing noise).

#[path = "fixtures/reports/reports.rs"]
mod reports;

use reports::{check, long_history, report as base_report, row};

use ci_gate::check::rules::{INVALID_MIGRATION_LAYOUT, MIGRATION_FAILS};
use ci_gate::check::{Finding, Source};
use ci_gate::report::{Report, Verdict, json, terminal};
use ci_gate::run::Status;

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
    assert!(out.contains("39 clean migrations"));
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

#[test]
fn terminal_pull_request_names_the_base_and_leads_with_the_failing_migration() {
    let out = term(&reports::failing_first(), false);
    assert!(
        out.lines()
            .next()
            .unwrap_or_default()
            .contains("base origin/main at 3f2a9c1 · 3 new or changed of 15 migrations"),
        "{out}"
    );
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("│ ")).collect();
    assert!(rows[1].starts_with("│ error "), "{out}");
    assert!(rows[1].contains("20251201094512_invoice_tax_rate"), "{out}");
    assert!(
        out.contains("│ not traced ┆ 20251202110307_task_due_date_index"),
        "{out}"
    );
    assert!(
        out.contains("… 12 unchanged from base (--verbose lists them)"),
        "{out}"
    );
    assert!(out.contains(" checks: ✘ trace on seeded rows: 1 of 3 new migrations traced"));
    assert!(!out.contains('✔'), "no tick above a red verdict: {out}");
    insta::assert_snapshot!(out);
}

#[test]
fn terminal_rows_are_colour_coded_by_verdict() {
    let coloured = terminal::render(
        &reports::failing_first(),
        &terminal::TerminalOptions {
            color: true,
            verbose: false,
            width: Some(160),
        },
    );
    // error: bold red; not traced: magenta (comfy-table's crossterm codes).
    assert!(
        coloured.contains("\x1b[38;5;9m")
            || coloured.contains("\x1b[31m")
            || coloured.contains("\x1b[1m"),
        "{coloured:?}"
    );
    assert!(
        coloured.contains("\x1b[38;5;13m") || coloured.contains("\x1b[35m"),
        "{coloured:?}"
    );
}

/// A rule that reports once per pull request (missing-lock-timeout) names its other migrations
/// as sites: each of those rows carries it too, and is never clean.
#[test]
fn rows_count_the_findings_that_name_them_as_sites() {
    use ci_gate::check::finding::Site;
    use ci_gate::check::rules::MISSING_LOCK_TIMEOUT;
    let rows = reports::pull_request(1, &[("20251201_a", 2), ("20251202_b", 3)]);
    let mut f = Finding::new(&MISSING_LOCK_TIMEOUT, Source::Observed, "2 migrations")
        .migration("20251201_a");
    f.sites.push(Site {
        migration: Some("20251202_b".into()),
        file: None,
        line: Some(2),
        column: None,
        message: "SHARE on public.\"Task\"".into(),
    });
    let r = base_report(rows, vec![f], check("pass", "2 applied"));
    for name in ["20251201_a", "20251202_b"] {
        let row = r.migrations.iter().find(|m| m.name == name);
        let row = row.unwrap_or_else(|| panic!("{name}"));
        assert_eq!(
            row.outcome.verdict,
            ci_gate::model::RowVerdict::Warning,
            "{name}"
        );
        assert_eq!(row.rules, vec!["missing-lock-timeout".to_string()]);
    }
}
