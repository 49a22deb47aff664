//! The Markdown report: the pull-request comment and the job summary (GitHub-flavoured Markdown).
//!
//! Layout, for a reviewer with ten seconds:
//! 1. the marker (`<!-- ci-gate:v1 key=… -->`, invisible, on the first line; it finds the comment
//!    again on the next push),
//! 2. a verdict heading with counts, and one line of context (tool version, server, base),
//! 3. one table, a row per new or changed migration, worst first: its own verdict (error,
//!    warning, not traced, allowed, clean), the strongest lock it held on an existing table, its
//!    time on the seeded rows ("Seeded run"), and the one-line why of its worst finding, linked
//!    to the rule's page; on a long history with no base only the flagged rows and a count of the
//!    others,
//! 4. what ran and what did not, in one line (a failed check says why; passed ones are named
//!    without a tick when the verdict is red), then the report's notes,
//! 5. one collapsed `<details>` per finding (statement excerpt, evidence, fix, rule page), the
//!    allowed findings with their reasons, and how the run reached them (each check's full line,
//!    internal statistics), all collapsed.
//!
//! A clean run gets a one-line all-clear instead of the table.
//!
//! The body stays under [`MarkdownOptions::max_chars`] (counted in UTF-8 bytes, which is never less
//! than GitHub's character count): details are cut first (allowed findings, then the least severe),
//! then table rows (the least severe first), each cut replaced by a "… N more, see the job summary"
//! line. Whole blocks are cut, never text inside a code block or a `<details>`, so the output stays
//! valid.

use std::fmt::Write as _;

use super::{MigrationRow, Report, RowVerdict, Verdict, human_ms, rule_docs};
use crate::check::{Finding, Severity};
use crate::model::{Change, CheckStatus, Status};

/// Default budget for a PR comment (GitHub rejects bodies over 65,536 characters).
pub const DEFAULT_MAX_CHARS: usize = 65_000;
/// Budget for the job summary (GitHub takes at most 1 MiB per step).
pub const SUMMARY_MAX_CHARS: usize = 1_000_000;
/// With no base every migration is "new": histories longer than this list only flagged rows.
const FULL_TABLE_MAX: usize = 30;
/// Longest text put in a table cell or a `<summary>` (characters).
const CELL_MAX: usize = 240;
/// Longest message in a row's "why" (characters): one line; the details have the rest.
const WHY_MAX: usize = 140;
/// Longest statement excerpt shown (characters, and lines).
const STATEMENT_MAX: usize = 2_000;
const STATEMENT_MAX_LINES: usize = 40;
/// Longest evidence line, fix or message body (characters).
const TEXT_MAX: usize = 1_500;
/// At most this many evidence lines per finding.
const EVIDENCE_MAX: usize = 20;

#[derive(Debug, Clone)]
pub struct MarkdownOptions {
    /// What the marker identifies (e.g. workflow + migrations dir), so that two workflows or two
    /// migration directories keep separate comments.
    pub key: String,
    /// Upper bound on the body's size in UTF-8 bytes.
    pub max_chars: usize,
    /// Where the full report is (the job summary of the run), for the "see the job summary" lines.
    pub summary_link: Option<String>,
}

impl Default for MarkdownOptions {
    fn default() -> Self {
        MarkdownOptions {
            key: "default".into(),
            max_chars: DEFAULT_MAX_CHARS,
            summary_link: None,
        }
    }
}

/// The marker line for `key`: `<!-- ci-gate:v1 key=KEY -->`. The key is reduced to characters
/// that cannot end the HTML comment or the line.
pub fn marker(key: &str) -> String {
    format!("<!-- ci-gate:v1 key={} -->", sanitize_key(key))
}

fn sanitize_key(key: &str) -> String {
    let mut out = String::new();
    for c in key.trim().chars() {
        let c = if c.is_ascii_alphanumeric() || "._/:@+=-".contains(c) {
            c
        } else {
            '_'
        };
        // `--` may not appear inside an HTML comment.
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    if out.is_empty() {
        out.push_str("default");
    }
    out
}

/// Whether `body` is a ci-gate report with this marker (the marker must be its first line).
pub fn has_marker(body: &str, marker: &str) -> bool {
    body.lines().next().map(str::trim) == Some(marker.trim())
}

pub fn render(report: &Report, opts: &MarkdownOptions) -> String {
    let parts = Parts::build(report, opts);
    parts.fit(opts.max_chars)
}

/// Marker, verdict with counts, and the context line (never cut).
fn head(report: &Report, opts: &MarkdownOptions) -> String {
    let c = report.counts;
    let mut head = String::new();
    head.push_str(&marker(&opts.key));
    head.push('\n');
    let (icon, word) = match report.verdict {
        Verdict::Pass => ("✅", "pass"),
        Verdict::Fail => ("❌", "fail"),
    };
    let mut counts = vec![
        plural(c.errors, "error", "errors"),
        plural(c.warnings, "warning", "warnings"),
    ];
    if c.notices > 0 {
        counts.push(plural(c.notices, "notice", "notices"));
    }
    if c.allowed > 0 {
        counts.push(format!("{} allowed", c.allowed));
    }
    let _ = writeln!(head, "### {icon} ci-gate: {word} — {}", counts.join(", "));
    head.push('\n');
    head.push_str(&context_line(report));
    head.push('\n');
    head
}

/// What ran and what did not, in one line: failed checks with their reason, passed ones by name
/// (ticked only when the verdict is a pass), the trace with its coverage, the rest as not run.
fn checks_line(report: &Report) -> String {
    let lead = if report.verdict == Verdict::Pass {
        "✅"
    } else {
        "passed:"
    };
    let show = |line: &str| inline(&clip(line, CELL_MAX), false);
    let parts = report.checks_summary().parts("❌", lead, &show);
    format!("**Checks:** {}\n", parts.join(" · "))
}

/// The checks line, then one line per note.
fn checks_and_notes(report: &Report) -> String {
    let mut out = checks_line(report);
    if !report.notes.is_empty() {
        out.push('\n');
    }
    for note in &report.notes {
        let _ = writeln!(out, "- ℹ️ {}", inline(&clip(note, TEXT_MAX), false));
    }
    out
}

/// How the run reached its findings, collapsed: every check's full line and the statistics.
fn run_details(report: &Report) -> String {
    let mut out = String::from("<details><summary>How this was checked</summary>\n\n");
    for (name, check) in report.checks_in_order() {
        let mark = match check.status {
            CheckStatus::Pass => "passed",
            CheckStatus::Fail => "failed",
            CheckStatus::Skipped => "not run",
        };
        let _ = writeln!(
            out,
            "- **{name}** ({mark}): {}",
            inline(&clip(&check.summary, TEXT_MAX), false)
        );
    }
    for s in &report.statistics {
        let _ = writeln!(out, "- {}", inline(&clip(s, TEXT_MAX), false));
    }
    out.push_str("\n</details>\n");
    out
}

/// The rows listed by design (worst first), and the line about the others.
fn listed_rows(
    report: &Report,
    listed_by_design: &dyn Fn(&MigrationRow) -> bool,
) -> (Vec<(String, bool)>, Option<String>) {
    let with_base = report.has_base();
    let mut rows = Vec::new();
    let mut unchanged = 0usize;
    let mut clean_rows = 0usize;
    for r in report.rows_worst_first() {
        if listed_by_design(r) {
            let flagged = r.outcome.verdict != RowVerdict::Clean;
            rows.push((table_row(report, r), flagged));
        } else if with_base && r.change == Change::Unchanged {
            unchanged += 1;
        } else {
            clean_rows += 1;
        }
    }
    let mut parts = Vec::new();
    if unchanged > 0 {
        parts.push(format!("{unchanged} unchanged from the base"));
    }
    if clean_rows > 0 {
        parts.push(format!(
            "{} with no findings",
            plural(clean_rows, "migration", "migrations")
        ));
    }
    let unlisted = (!parts.is_empty()).then(|| format!("Not listed: {}.", parts.join(", ")));
    (rows, unlisted)
}

/// The report cut into blocks that can be dropped whole.
struct Parts {
    /// Marker, verdict, context (never cut).
    head: String,
    /// The all-clear line, for a clean run.
    all_clear: Option<String>,
    table_header: String,
    /// Table rows in migration order, and whether each is flagged.
    rows: Vec<(String, bool)>,
    /// The line under the table about rows not listed by design (not a cut).
    unlisted: Option<String>,
    /// Checks and notes.
    checks: String,
    /// One `<details>` block per finding that is not allowed, worst first.
    details: Vec<String>,
    /// One list item per allowed finding.
    allowed: Vec<String>,
    /// How the run reached its findings (collapsed), after them.
    run_details: String,
    footer: String,
    link: Option<String>,
}

impl Parts {
    fn build(report: &Report, opts: &MarkdownOptions) -> Parts {
        let c = report.counts;
        let clean = c.errors + c.warnings + c.notices + c.allowed == 0
            && report.verdict == Verdict::Pass
            && report
                .migrations
                .iter()
                .all(|r| r.outcome.verdict == RowVerdict::Clean);
        let with_base = report.has_base();
        let listed_by_design = |r: &MigrationRow| -> bool {
            if r.outcome.verdict != RowVerdict::Clean {
                return true;
            }
            if with_base {
                r.change != Change::Unchanged
            } else {
                report.migrations.len() <= FULL_TABLE_MAX
            }
        };
        let (rows, unlisted) = if clean {
            (Vec::new(), None)
        } else {
            listed_rows(report, &listed_by_design)
        };
        let checks = checks_and_notes(report);

        let mut details = Vec::new();
        let mut allowed = Vec::new();
        for f in &report.findings {
            if f.allowed {
                allowed.push(allowed_item(f));
            } else {
                details.push(details_block(f));
            }
        }

        let link = opts.summary_link.clone();
        let mut footer = format!("<sub>ci-gate {}", env!("CARGO_PKG_VERSION"));
        if let Some(l) = &link {
            let _ = write!(footer, " · [full report in the job summary]({})", url(l));
        }
        footer.push_str("</sub>\n");
        footer.push_str(&link_definitions(report));
        let time = if with_base { "Seeded run" } else { "Time" };
        Parts {
            head: head(report, opts),
            all_clear: clean.then(|| all_clear(report)),
            table_header: format!(
                "| Verdict | Migration | Strongest lock | {time} | Why |\n|---|---|---|--:|---|\n"
            ),
            rows,
            unlisted,
            checks,
            details,
            allowed,
            run_details: run_details(report),
            footer,
            link,
        }
    }

    fn more_line(&self, n: usize, what: (&str, &str)) -> String {
        let see = match &self.link {
            Some(l) => format!("see the [job summary]({})", url(l)),
            None => "see the job summary".to_string(),
        };
        format!(
            "… {} more {} not shown here; {see}.\n",
            n,
            plural_word(n, what)
        )
    }

    /// Assemble with the rows whose index is in `keep_rows` (true = kept), the first
    /// `keep_details` detail blocks and the first `keep_allowed` allowed items.
    fn assemble(&self, keep_rows: &[bool], keep_details: usize, keep_allowed: usize) -> String {
        let mut out = String::with_capacity(self.head.len() * 4 + self.rows.len() * 120);
        out.push_str(&self.head);
        out.push('\n');
        if let Some(line) = &self.all_clear {
            out.push_str(line);
            out.push_str("\n\n");
        }
        let shown = keep_rows.iter().filter(|k| **k).count();
        if shown > 0 {
            out.push_str(&self.table_header);
            for ((row, _), keep) in self.rows.iter().zip(keep_rows) {
                if *keep {
                    out.push_str(row);
                }
            }
            out.push('\n');
        }
        if let Some(u) = &self.unlisted {
            out.push_str(u);
            out.push_str("\n\n");
        }
        let cut_rows = self.rows.len() - shown;
        if cut_rows > 0 {
            out.push_str(&self.more_line(cut_rows, ("migration", "migrations")));
            out.push('\n');
        }
        if !self.checks.is_empty() {
            out.push_str(&self.checks);
            out.push('\n');
        }
        for d in &self.details[..keep_details] {
            out.push_str(d);
            out.push('\n');
        }
        let cut_details = self.details.len() - keep_details;
        if cut_details > 0 {
            out.push_str(&self.more_line(cut_details, ("finding", "findings")));
            out.push('\n');
        }
        if !self.allowed.is_empty() {
            out.push_str(&self.allowed_block(keep_allowed));
            out.push('\n');
        }
        out.push_str(&self.run_details);
        out.push('\n');
        out.push_str(&self.footer);
        out
    }

    fn allowed_block(&self, keep: usize) -> String {
        let total = self.allowed.len();
        let mut out = format!(
            "<details><summary>☑️ {} (reviewed exceptions)</summary>\n\n",
            plural(total, "allowed finding", "allowed findings")
        );
        for item in &self.allowed[..keep] {
            out.push_str(item);
        }
        if keep < total {
            if keep > 0 {
                out.push('\n');
            }
            out.push_str(&self.more_line(total - keep, ("allowed finding", "allowed findings")));
        }
        out.push_str("\n</details>\n");
        out
    }

    fn allowed_size(&self, keep: usize, allowed_prefix: &[usize]) -> usize {
        let total = self.allowed.len();
        if total == 0 {
            return 0;
        }
        let mut n = format!(
            "<details><summary>☑️ {} (reviewed exceptions)</summary>\n\n",
            plural(total, "allowed finding", "allowed findings")
        )
        .len();
        n += allowed_prefix[keep];
        if keep < total {
            if keep > 0 {
                n += 1;
            }
            n += self
                .more_line(total - keep, ("allowed finding", "allowed findings"))
                .len();
        }
        n + "\n</details>\n".len() + 1
    }

    /// The size `assemble` would produce, without building it: `rows_len` is the total length
    /// of the kept rows, `shown` their number.
    fn size(&self, cut: &Cut, prefix: &Prefix) -> usize {
        let mut n = self.head.len() + 1 + self.run_details.len() + 1 + self.footer.len();
        if let Some(line) = &self.all_clear {
            n += line.len() + 2;
        }
        if cut.shown > 0 {
            n += self.table_header.len() + 1 + cut.rows_len;
        }
        if let Some(u) = &self.unlisted {
            n += u.len() + 2;
        }
        if self.rows.len() > cut.shown {
            n += self
                .more_line(self.rows.len() - cut.shown, ("migration", "migrations"))
                .len()
                + 1;
        }
        if !self.checks.is_empty() {
            n += self.checks.len() + 1;
        }
        n += prefix.details[cut.details];
        if self.details.len() > cut.details {
            n += self
                .more_line(self.details.len() - cut.details, ("finding", "findings"))
                .len()
                + 1;
        }
        n + self.allowed_size(cut.allowed, &prefix.allowed)
    }

    fn fit(&self, max: usize) -> String {
        let prefix = Prefix {
            details: prefix_sums(self.details.iter().map(|d| d.len() + 1)),
            allowed: prefix_sums(self.allowed.iter().map(String::len)),
        };
        let mut keep_rows = vec![true; self.rows.len()];
        let mut cut = Cut {
            shown: self.rows.len(),
            rows_len: self.rows.iter().map(|(r, _)| r.len()).sum(),
            details: self.details.len(),
            allowed: self.allowed.len(),
        };
        // 1. Cut details: allowed findings first, then findings from the least severe.
        while self.size(&cut, &prefix) > max && cut.allowed > 0 {
            cut.allowed -= 1;
        }
        while self.size(&cut, &prefix) > max && cut.details > 0 {
            cut.details -= 1;
        }
        // 2. Cut rows: clean ones from the end first, then flagged ones from the end.
        if self.size(&cut, &prefix) > max {
            let order: Vec<usize> = (0..self.rows.len())
                .rev()
                .filter(|i| !self.rows[*i].1)
                .chain((0..self.rows.len()).rev().filter(|i| self.rows[*i].1))
                .collect();
            for i in order {
                if self.size(&cut, &prefix) <= max {
                    break;
                }
                keep_rows[i] = false;
                cut.shown -= 1;
                cut.rows_len -= self.rows[i].0.len();
            }
        }
        let out = self.assemble(&keep_rows, cut.details, cut.allowed);
        debug_assert_eq!(out.len(), self.size(&cut, &prefix));
        if out.len() <= max {
            return out;
        }
        // 3. Still too large (huge notes or checks): the verdict alone.
        let mut out = self.head.clone();
        out.push('\n');
        let see = match &self.link {
            Some(l) => format!("see the [job summary]({})", url(l)),
            None => "see the job summary".to_string(),
        };
        let _ = writeln!(out, "The report is too large for this comment; {see}.");
        out
    }
}

/// What is kept.
struct Cut {
    shown: usize,
    rows_len: usize,
    details: usize,
    allowed: usize,
}

/// Prefix sums of block sizes: `details[k]` is the size of the first k detail blocks.
struct Prefix {
    details: Vec<usize>,
    allowed: Vec<usize>,
}

fn prefix_sums(sizes: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut out = vec![0];
    for s in sizes {
        out.push(out[out.len() - 1] + s);
    }
    out
}

/// The one sentence of a clean run: what was verified.
fn all_clear(report: &Report) -> String {
    let with_base = report.has_base();
    let new_count = report
        .migrations
        .iter()
        .filter(|r| !with_base || r.change != Change::Unchanged)
        .count();
    if report.migrations.is_empty() {
        return "No migrations found; nothing to check.".to_string();
    }
    if !with_base {
        return format!(
            "All clear: {} applied from scratch, no findings.",
            plural(new_count, "migration", "migrations")
        );
    }
    if new_count == 0 {
        return "All clear: no new or changed migrations, and no findings.".to_string();
    }
    let traced = report.checks.trace.status == CheckStatus::Pass;
    format!(
        "All clear: {} applied on the base{}, no findings.",
        plural(new_count, "new migration", "new migrations"),
        if traced {
            " and traced on seeded rows"
        } else {
            ""
        }
    )
}

fn context_line(report: &Report) -> String {
    let mut parts = Vec::new();
    match &report.prisma {
        Some(p) => parts.push(match &p.version {
            Some(v) => format!("prisma {}", text(v)),
            None => "prisma (version unknown)".to_string(),
        }),
        None => parts.push(text(&report.format)),
    }
    if let Some(s) = &report.server {
        parts.push(format!(
            "PostgreSQL {} ({})",
            text(&s.version),
            text(&s.provider)
        ));
    }
    match (&report.base_ref, &report.base_dir) {
        (Some(b), _) => {
            let short: String = b.commit.chars().take(7).collect();
            parts.push(format!("base {} at {}", code(&b.requested), code(&short)));
        }
        (None, Some(dir)) => parts.push(format!("base directory {}", code(dir))),
        (None, None) => parts.push("no base: from scratch only".to_string()),
    }
    let total = report.migrations.len();
    let new = report
        .migrations
        .iter()
        .filter(|r| r.change != Change::Unchanged)
        .count();
    let count = if report.has_base() {
        format!("{new} new or changed of {total} migrations")
    } else {
        plural(total, "migration", "migrations")
    };
    parts.push(format!("{count} in {}", code(&report.migrations_dir)));
    parts.join(" · ")
}

/// The verdict cell: an icon and the word.
fn verdict_cell(v: RowVerdict) -> String {
    let icon = match v {
        RowVerdict::Error => "❌",
        RowVerdict::Warning => "⚠️",
        RowVerdict::NotTraced => "⏸️",
        RowVerdict::Allowed => "☑️",
        RowVerdict::Clean => "✅",
    };
    match v {
        RowVerdict::Error => format!("{icon} **{}**", v.words()),
        _ => format!("{icon} {}", v.words()),
    }
}

/// A rule id as inline code, linked to its page when it has one (a reference link: the targets
/// are defined once, at the end, by [`link_definitions`]).
fn rule_link(id: &str, in_table: bool) -> String {
    let label = if in_table { cell_code(id) } else { code(id) };
    match rule_docs::url(id) {
        Some(_) => format!("[{label}][{id}]"),
        None => label,
    }
}

/// The targets of the rule links: one definition per rule that has findings.
fn link_definitions(report: &Report) -> String {
    let mut ids: Vec<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = String::new();
    for id in ids {
        if let Some(u) = rule_docs::url(id) {
            let _ = writeln!(out, "[{id}]: {}", url(&u));
        }
    }
    if !out.is_empty() {
        out.insert(0, '\n');
    }
    out
}

/// The why of a row: its worst finding's rule and message (the reason, when allowed), why it
/// was not traced, or its failure note.
fn why_cell(report: &Report, r: &MigrationRow) -> String {
    if let Some(f) = report.worst_finding(r) {
        let mut why = format!(
            "{}: {}",
            rule_link(&f.rule, true),
            cell_text(&clip(&single_line(&f.message), WHY_MAX))
        );
        let also: Vec<String> = r
            .rules
            .iter()
            .filter(|id| **id != f.rule)
            .map(|id| cell_code(id))
            .collect();
        if !also.is_empty() {
            let _ = write!(why, " (also {})", also.join(", "));
        }
        if r.outcome.verdict == RowVerdict::Allowed {
            let reason = f.allow_reason.as_deref().unwrap_or("(no reason given)");
            let _ = write!(why, " — allowed: {}", cell_text(&clip(reason, CELL_MAX)));
        }
        if r.outcome.verdict != RowVerdict::NotTraced {
            return why;
        }
    }
    if let Some(reason) = &r.outcome.not_traced_reason {
        return cell_text(&clip(reason, CELL_MAX));
    }
    match &r.note {
        Some(note) => cell_text(&clip(note, CELL_MAX)),
        None => "–".to_string(),
    }
}

fn table_row(report: &Report, r: &MigrationRow) -> String {
    let mut name = cell_code(&r.name);
    if report.has_base() && r.change != Change::New && r.change != Change::Unchanged {
        let _ = write!(name, " ({})", cell_text(&r.change.to_string()));
    }
    let time = match (report.has_base(), r.outcome.seeded_ms, r.status) {
        (true, Some(ms), _) => human_ms(ms),
        (false, _, Status::Applied | Status::Failed) => human_ms(r.duration_ms),
        _ => "–".to_string(),
    };
    let lock = r
        .lock
        .as_deref()
        .map(|l| cell_text(&clip(l, CELL_MAX)))
        .unwrap_or_else(|| "–".to_string());
    format!(
        "| {} | {name} | {lock} | {time} | {} |\n",
        verdict_cell(r.outcome.verdict),
        why_cell(report, r)
    )
}

fn severity_icon(s: Severity) -> &'static str {
    match s {
        Severity::Error => "❌",
        Severity::Warning => "⚠️",
        Severity::Notice => "ℹ️",
    }
}

fn details_block(f: &Finding) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<details><summary>{} <code>{}</code> {}",
        severity_icon(f.severity),
        html(&f.rule),
        f.severity
    );
    if let Some(loc) = f.location() {
        let _ = write!(out, " at <code>{}</code>", html(&loc));
    }
    let one_line = single_line(&f.message);
    let clipped = clip(&one_line, CELL_MAX);
    let _ = writeln!(out, ": {}</summary>", html_inline(&clipped));
    out.push('\n');
    if clipped != f.message {
        let _ = writeln!(out, "{}\n", text_multiline(&clip(&f.message, TEXT_MAX)));
    }
    if let Some(m) = &f.migration
        && !f
            .file
            .as_deref()
            .is_some_and(|file| file.contains(m.as_str()))
    {
        let _ = writeln!(out, "Migration {}\n", code(m));
    }
    if let Some(stmt) = &f.statement {
        out.push_str(&sql_block(stmt));
        out.push('\n');
    }
    if !f.evidence.is_empty() {
        for e in f.evidence.iter().take(EVIDENCE_MAX) {
            let _ = writeln!(out, "- {}", inline(&clip(e, TEXT_MAX), false));
        }
        if f.evidence.len() > EVIDENCE_MAX {
            let _ = writeln!(
                out,
                "- … {} more lines of evidence",
                f.evidence.len() - EVIDENCE_MAX
            );
        }
        out.push('\n');
    }
    if let Some(fix) = &f.fix {
        let _ = writeln!(out, "**Fix:** {}\n", inline(&clip(fix, TEXT_MAX), false));
    }
    let _ = writeln!(
        out,
        "About this rule: {} (or {})\n",
        rule_link(&f.rule, false),
        code(&format!("ci-gate explain {}", f.rule))
    );
    out.push_str("</details>\n");
    out
}

fn allowed_item(f: &Finding) -> String {
    let mut out = format!("- {}", rule_link(&f.rule, false));
    if let Some(loc) = f.location() {
        let _ = write!(out, " at {}", code(&loc));
    }
    let _ = write!(out, ": {}", inline(&clip(&f.message, CELL_MAX), false));
    let reason = f.allow_reason.as_deref().unwrap_or("(no reason given)");
    let _ = writeln!(
        out,
        " — **allowed:** {}",
        inline(&clip(reason, TEXT_MAX), false)
    );
    out
}

/// A fenced ```sql block whose fence is longer than any backtick run in the text.
fn sql_block(stmt: &str) -> String {
    let mut excerpt: String = stmt
        .lines()
        .take(STATEMENT_MAX_LINES)
        .collect::<Vec<_>>()
        .join("\n");
    let mut cut = excerpt.len() < stmt.trim_end().len();
    if excerpt.chars().count() > STATEMENT_MAX {
        excerpt = excerpt.chars().take(STATEMENT_MAX).collect();
        cut = true;
    }
    if cut {
        excerpt.push_str("\n-- …");
    }
    let fence = "`".repeat(longest_run(&excerpt, '`').max(2) + 1);
    format!("{fence}sql\n{excerpt}\n{fence}\n")
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for ch in s.chars() {
        if ch == c {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

fn single_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most `max` characters, with "…" when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Inline code: a backtick fence longer than any run inside, on one line.
pub(crate) fn code(s: &str) -> String {
    let s = single_line(s);
    let fence = "`".repeat(longest_run(&s, '`') + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// Inline code inside a table cell (`|` must be escaped even there).
fn cell_code(s: &str) -> String {
    code(s).replace('|', "\\|")
}

/// Plain text for Markdown: HTML and Markdown punctuation escaped, on one line.
pub(crate) fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in single_line(s).chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '|' | '#' => {
                out.push('\\');
                out.push(ch);
            }
            c => out.push(c),
        }
    }
    out
}

/// Text in which `code` spans (ci-gate's messages use them) stay code spans; the rest as [`text`].
fn inline(s: &str, in_table: bool) -> String {
    let one = single_line(s);
    let parts: Vec<&str> = one.split('`').collect();
    if parts.len() < 3 || parts.len().is_multiple_of(2) {
        return text(&one);
    }
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i % 2 == 0 {
            out.push_str(&text(p));
        } else if in_table {
            out.push_str(&cell_code(p));
        } else {
            out.push_str(&code(p));
        }
    }
    out
}

/// Escaped text that keeps its line breaks (as `<br>`).
fn text_multiline(s: &str) -> String {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| inline(l, false))
        .collect::<Vec<_>>()
        .join("<br>\n")
}

/// Text for a table cell: `|` escaped (also inside code spans), lines joined.
fn cell_text(s: &str) -> String {
    inline(s, true)
}

/// Text inside raw HTML (`<summary>`, `<code>`).
fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text inside raw HTML, with `code` spans turned into `<code>`.
fn html_inline(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len() < 3 || parts.len().is_multiple_of(2) {
        // No pair, or an odd backtick out: keep the text as it is.
        return html(s);
    }
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(&html(p));
            out.push_str("</code>");
        } else {
            out.push_str(&html(p));
        }
    }
    out
}

/// A link target: spaces, parentheses and angle brackets percent-encoded.
fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            ' ' => out.push_str("%20"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '"' => out.push_str("%22"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn plural_word<'a>(n: usize, (one, many): (&'a str, &'a str)) -> &'a str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_key_cannot_break_the_comment() {
        assert_eq!(
            marker("PR check/prisma/migrations"),
            "<!-- ci-gate:v1 key=PR_check/prisma/migrations -->"
        );
        let m = marker("a-->b\n<!--c");
        assert!(!m[4..m.len() - 3].contains("--"), "{m}");
        assert!(!m.contains('\n'));
        assert!(has_marker(&format!("{m}\nbody"), &m));
        assert!(!has_marker(&format!("text\n{m}"), &m));
    }

    #[test]
    fn code_spans_survive_backticks() {
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(cell_code("a|b"), "`a\\|b`");
    }

    #[test]
    fn text_escapes_html_and_pipes() {
        assert_eq!(text("<b>a|b</b>\nnext"), "&lt;b&gt;a\\|b&lt;/b&gt; next");
        assert_eq!(html("<x y=\"1\">"), "&lt;x y=&quot;1&quot;&gt;");
    }

    #[test]
    fn sql_fence_is_longer_than_any_backtick_run() {
        let b = sql_block("SELECT '```' AS x");
        assert!(b.starts_with("````sql\n"), "{b}");
        assert!(b.ends_with("\n````\n"));
    }
}
