//! The terminal report: a header line naming the base, a comfy-table of migrations (worst first,
//! each led by its own verdict, colour-coded on a tty), the findings, what ran in one line, and
//! the verdict. Colour only when asked (on a tty, without `NO_COLOR`).

use std::fmt::Write as _;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table};

use super::{MigrationRow, Report, RowVerdict, Verdict, human_ms};
use crate::check::Severity;
use crate::model::{Change, CheckStatus, Status};

#[derive(Debug, Clone, Copy, Default)]
pub struct TerminalOptions {
    pub color: bool,
    /// List every migration, not only the flagged ones, on long histories.
    pub verbose: bool,
    /// Table width; `None` lets comfy-table decide (terminal width, or unlimited).
    pub width: Option<u16>,
}

/// Histories longer than this show only flagged rows unless `verbose`.
const FULL_TABLE_MAX: usize = 30;
/// Longest "why" in a table cell (characters); the findings below carry the rest.
const WHY_MAX: usize = 64;

fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub fn render(report: &Report, opts: &TerminalOptions) -> String {
    let mut out = String::new();
    header(&mut out, report);
    migrations_table(&mut out, report, opts);
    findings(&mut out, report, opts);
    checks_and_verdict(&mut out, report, opts);
    out
}

/// The first line: server, tool version, the base, how many migrations where.
fn header(out: &mut String, report: &Report) {
    let mut header = Vec::new();
    if let Some(s) = &report.server {
        header.push(format!(
            "Postgres {} ({}, {})",
            s.version,
            s.provider,
            human_ms(s.startup_ms)
        ));
    }
    match &report.prisma {
        Some(p) => header.push(match (&p.version, &p.source) {
            (Some(v), Some(src)) => format!("prisma {v} ({src})"),
            _ => "prisma (version unknown)".to_string(),
        }),
        None => header.push(report.format.clone()),
    }
    header.push(match (&report.base_ref, &report.base_dir) {
        (Some(b), _) => {
            let short: String = b.commit.chars().take(7).collect();
            format!("base {} at {short}", b.requested)
        }
        (None, Some(dir)) => format!("base directory {dir}"),
        (None, None) => "no base".to_string(),
    });
    let total = report.migrations.len();
    let count = if report.has_base() {
        let new = report
            .migrations
            .iter()
            .filter(|r| r.change != Change::Unchanged)
            .count();
        format!("{new} new or changed of {total} migrations")
    } else {
        format!("{total} migrations")
    };
    let _ = writeln!(
        out,
        " {} · {count} in {}",
        header.join(" · "),
        report.migrations_dir
    );
}

/// The verdict's word and colour.
fn verdict_style(v: RowVerdict) -> (Color, bool) {
    match v {
        RowVerdict::Error => (Color::Red, true),
        RowVerdict::Warning => (Color::Yellow, false),
        RowVerdict::NotTraced => (Color::Magenta, false),
        RowVerdict::Allowed => (Color::Cyan, false),
        RowVerdict::Clean => (Color::Green, false),
    }
}

/// The why of a row: why it was not traced (whole), its worst finding (clipped: the findings
/// below have the rest), or its failure note.
fn why(report: &Report, row: &MigrationRow) -> String {
    if let (RowVerdict::NotTraced, Some(reason)) =
        (row.outcome.verdict, &row.outcome.not_traced_reason)
    {
        return reason.clone();
    }
    let text = match report.worst_finding(row) {
        Some(f) => {
            let mut w = format!("{}: {}", f.rule, f.message.lines().next().unwrap_or(""));
            if row.outcome.verdict == RowVerdict::Allowed
                && let Some(reason) = &f.allow_reason
            {
                w = format!("{w} (allowed: {reason})");
            }
            w
        }
        None => row.note.clone().unwrap_or_default(),
    };
    if text.chars().count() > WHY_MAX {
        text.chars().take(WHY_MAX - 1).chain(['…']).collect()
    } else {
        text
    }
}

/// The table row of one migration: verdict, name, lock, time, why.
fn migration_row(report: &Report, row: &MigrationRow, color: bool) -> Vec<Cell> {
    let v = row.outcome.verdict;
    let time = match (report.has_base(), row.outcome.seeded_ms, row.status) {
        (true, Some(ms), _) => human_ms(ms),
        (false, _, Status::Applied | Status::Failed) => human_ms(row.duration_ms),
        _ => "-".to_string(),
    };
    let name = if report.has_base() && !matches!(row.change, Change::Unchanged | Change::New) {
        format!("{} ({})", row.name, row.change)
    } else {
        row.name.clone()
    };
    let mut verdict = Cell::new(v.words());
    if color {
        let (c, bold) = verdict_style(v);
        verdict = verdict.fg(c);
        if bold {
            verdict = verdict.add_attribute(Attribute::Bold);
        }
    }
    vec![
        verdict,
        Cell::new(name),
        Cell::new(row.lock.as_deref().unwrap_or("-")),
        Cell::new(time),
        Cell::new(why(report, row)),
    ]
}

/// The migrations table, worst first; long histories list only flagged migrations unless
/// `--verbose`, and with a base the unchanged ones are counted, not listed.
fn migrations_table(out: &mut String, report: &Report, opts: &TerminalOptions) {
    if report.migrations.is_empty() {
        return;
    }
    let long = report.migrations.len() > FULL_TABLE_MAX && !opts.verbose;
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if opts.color {
        table.enforce_styling();
    }
    if let Some(w) = opts.width {
        table.set_width(w);
    }
    let time = if report.has_base() { "seeded" } else { "time" };
    table.set_header(vec!["verdict", "migration", "lock", time, "why"]);
    let (mut hidden_clean, mut hidden_unchanged) = (0usize, 0usize);
    let with_base = report.has_base();
    for row in report.rows_worst_first() {
        let flagged = row.outcome.verdict != RowVerdict::Clean;
        if with_base && !opts.verbose && !flagged && row.change == Change::Unchanged {
            hidden_unchanged += 1;
        } else if long && !flagged {
            hidden_clean += 1;
        } else {
            table.add_row(migration_row(report, row, opts.color));
        }
    }
    if hidden_clean + hidden_unchanged > 0 {
        let mut parts = Vec::new();
        if hidden_unchanged > 0 {
            parts.push(format!("{hidden_unchanged} unchanged from base"));
        }
        if hidden_clean > 0 {
            parts.push(format!("{hidden_clean} clean migrations"));
        }
        let _ = writeln!(out, "{table}");
        let _ = writeln!(out, " … {} (--verbose lists them)", parts.join(", "));
        return;
    }
    let _ = writeln!(out, "{table}");
}

/// What ran and what did not: failed checks with why, passed ones (ticked only when the
/// verdict is a pass), the rest as not run.
fn checks_line(report: &Report, color: bool) -> String {
    let lead = match report.verdict {
        Verdict::Pass => paint(color, "32", "✔"),
        Verdict::Fail => "passed:".to_string(),
    };
    let parts = report
        .checks_summary()
        .parts(&paint(color, "31", "✘"), &lead, &|l| l.to_string());
    format!("checks: {}", parts.join(" · "))
}

/// Each finding with its location, statement, evidence and fix; then the notes.
fn findings(out: &mut String, report: &Report, opts: &TerminalOptions) {
    let mut hidden_notices = 0usize;
    for f in &report.findings {
        if f.severity == Severity::Notice && !opts.verbose {
            hidden_notices += 1;
            continue;
        }
        let (label, code) = match f.severity {
            Severity::Error => ("error", "1;31"),
            Severity::Warning => ("warning", "1;33"),
            Severity::Notice => ("notice", "1;36"),
        };
        let allowed = if f.allowed { " (allowed)" } else { "" };
        let loc = f.location().map(|l| format!(" {l}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "{}{}{}",
            paint(opts.color, code, &format!("{label}[{}]", f.rule)),
            allowed,
            loc
        );
        let _ = writeln!(out, "  {}", f.message);
        if let Some(stmt) = &f.statement {
            let _ = writeln!(out, "  │ {stmt}");
        }
        for e in &f.evidence {
            let _ = writeln!(out, "  · {e}");
        }
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "  = fix: {fix}");
        }
        if let Some(reason) = &f.allow_reason {
            let _ = writeln!(out, "  = allowed: {reason}");
        }
    }
    if hidden_notices > 0 {
        let _ = writeln!(out, " {hidden_notices} notices (--verbose lists them)");
    }
    for note in &report.notes {
        let _ = writeln!(out, " note: {note}");
    }
}

/// What ran in one line (every check on its own line with `--verbose`), timings, statistics
/// and server notes with `--verbose`, and the verdict.
fn checks_and_verdict(out: &mut String, report: &Report, opts: &TerminalOptions) {
    if opts.verbose {
        for (name, c) in report.checks_in_order() {
            let mark = match c.status {
                CheckStatus::Pass => paint(opts.color, "32", "✔"),
                CheckStatus::Fail => paint(opts.color, "31", "✘"),
                CheckStatus::Skipped => "–".to_string(),
            };
            let _ = writeln!(out, " {mark} {name}: {}", c.summary);
        }
        for s in &report.statistics {
            let _ = writeln!(out, " stats: {s}");
        }
    } else {
        let _ = writeln!(out, " {}", checks_line(report, opts.color));
    }
    let phases = [
        "provision",
        "discover",
        "base",
        "clone",
        "incremental",
        "scratch",
        "inspect",
        "total",
    ];
    let timing: Vec<String> = phases
        .iter()
        .filter_map(|p| {
            report
                .timings_ms
                .get(*p)
                .map(|ms| format!("{p} {}", human_ms(*ms)))
        })
        .collect();
    if !timing.is_empty() && opts.verbose {
        let _ = writeln!(out, " timings: {}", timing.join(" · "));
    }
    if let (Some(server), true) = (&report.server, opts.verbose) {
        for note in &server.notes {
            let _ = writeln!(out, " server: {note}");
        }
    }
    let c = report.counts;
    let verdict = match report.verdict {
        Verdict::Pass => paint(opts.color, "1;32", "pass"),
        Verdict::Fail => paint(opts.color, "1;31", "fail"),
    };
    let mut counts = format!("{} errors, {} warnings", c.errors, c.warnings);
    if c.notices > 0 {
        counts.push_str(&format!(", {} notices", c.notices));
    }
    if c.allowed > 0 {
        counts.push_str(&format!(", {} allowed", c.allowed));
    }
    let _ = writeln!(out, " verdict: {verdict} ({counts})");
}
