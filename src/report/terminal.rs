//! The terminal report: a header line, a comfy-table of migrations, the findings, and the checks
//! with the verdict. Colour only when asked (on a tty).

use std::fmt::Write as _;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

use super::{MigrationRow, Report, Verdict, human_ms};
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

/// The first line: server, tool version, how many migrations where.
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
    header.push(format!(
        "{} migrations in {}",
        report.migrations.len(),
        report.migrations_dir
    ));
    let _ = writeln!(out, " {}", header.join(" · "));
}

/// The table row of one migration: name, status, time, notes.
fn migration_row(row: &MigrationRow, with_base: bool, color: bool) -> Vec<String> {
    let status = match row.status {
        Status::Failed => paint(color, "1;31", "failed"),
        Status::Applied => paint(color, "32", "applied"),
        s => s.to_string(),
    };
    let mut notes = row.rules.join(", ");
    if let Some(lock) = &row.lock {
        if !notes.is_empty() {
            notes.push_str("; ");
        }
        notes.push_str(&format!("lock: {lock}"));
    }
    if let Some(n) = &row.note {
        if !notes.is_empty() {
            notes.push_str(": ");
        }
        notes.push_str(n);
    }
    let time = if row.status == Status::Skipped {
        "-".to_string()
    } else {
        human_ms(row.duration_ms)
    };
    let name = if with_base && row.change != Change::Unchanged {
        format!("{} ({})", row.name, row.change)
    } else {
        row.name.clone()
    };
    vec![name, status, time, notes]
}

/// The migrations table; long histories list only flagged migrations unless `--verbose`.
fn migrations_table(out: &mut String, report: &Report, opts: &TerminalOptions) {
    if report.migrations.is_empty() {
        return;
    }
    let long = report.migrations.len() > FULL_TABLE_MAX && !opts.verbose;
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if let Some(w) = opts.width {
        table.set_width(w);
    }
    table.set_header(vec!["migration", "status", "time", "notes"]);
    let (mut hidden, mut hidden_skipped, mut hidden_unchanged) = (0usize, 0usize, 0usize);
    let with_base = report.base_ref.is_some();
    for row in &report.migrations {
        let flagged = !row.rules.is_empty() || row.status == Status::Failed;
        if with_base && !opts.verbose && !flagged && row.change == Change::Unchanged {
            hidden_unchanged += 1;
            continue;
        }
        if long && !flagged {
            if row.status == Status::Skipped {
                hidden_skipped += 1;
            } else {
                hidden += 1;
            }
            continue;
        }
        table.add_row(migration_row(row, with_base, opts.color));
    }
    if hidden + hidden_skipped + hidden_unchanged > 0 {
        let mut parts = Vec::new();
        if hidden_unchanged > 0 {
            parts.push(format!("{hidden_unchanged} unchanged from base"));
        }
        if hidden > 0 {
            parts.push(format!("{hidden} clean migrations applied"));
        }
        if hidden_skipped > 0 {
            parts.push(format!("{hidden_skipped} skipped after the failure"));
        }
        table.add_row(vec![
            format!("… {} (--verbose lists them)", parts.join(", ")),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    let _ = writeln!(out, "{table}");
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

/// One line per check, timings and server notes with `--verbose`, and the verdict.
fn checks_and_verdict(out: &mut String, report: &Report, opts: &TerminalOptions) {
    let checks = [
        ("from scratch", &report.checks.scratch),
        ("incremental", &report.checks.incremental),
        ("drift", &report.checks.drift),
        ("history", &report.checks.history),
        ("live", &report.checks.live),
    ];
    for (name, c) in checks {
        if c.status == CheckStatus::Skipped && !opts.verbose {
            continue;
        }
        let mark = match c.status {
            CheckStatus::Pass => paint(opts.color, "32", "✔"),
            CheckStatus::Fail => paint(opts.color, "31", "✘"),
            _ => "–".to_string(),
        };
        let _ = writeln!(out, " {mark} {name}: {}", c.summary);
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
