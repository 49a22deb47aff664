//! One [`Report`] value, rendered many ways. The verdict and the order of rows and findings are
//! decided here, not in renderers.

pub mod annotations;
pub mod github;
pub mod json;
pub mod markdown;
pub mod publish;
pub mod rule_docs;
pub mod sarif;
pub mod terminal;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::check::{Finding, Severity};
use crate::model::Status;
pub use crate::model::{
    Change, CheckResult, CheckStatus, Checks, CommentMode, FailOn, MigrationRow, RowOutcome,
    RowVerdict,
};

/// Version of the JSON report's schema. Fields may be added; none renamed.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    pub provider: String,
    pub version: String,
    pub startup_ms: u64,
    /// What the provider found and decided (binaries, where the data directory is, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrismaInfo {
    /// The version as found, e.g. "6.19.0"; null when unknown.
    pub version: Option<String>,
    pub source: Option<String>,
    /// "whole-file" (≤ 7.3 and unknown) or "statements" (≥ 7.4).
    pub semantics: String,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub errors: usize,
    pub warnings: usize,
    pub notices: usize,
    pub allowed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub verdict: Verdict,
    pub fail_on: FailOn,
    pub format: String,
    pub project: String,
    pub migrations_dir: String,
    pub base: Option<String>,
    pub head: Option<String>,
    /// How the base was chosen (null: no base from git; see `base_dir`).
    pub base_ref: Option<crate::git::Base>,
    /// `--base-dir`: the directory the base migrations were read from, as given (null: none).
    pub base_dir: Option<String>,
    pub prisma: Option<PrismaInfo>,
    pub server: Option<ServerInfo>,
    pub counts: Counts,
    pub migrations: Vec<MigrationRow>,
    pub checks: Checks,
    pub findings: Vec<Finding>,
    /// Things the reader should know (unknown Prisma version, order notes, what was skipped).
    pub notes: Vec<String>,
    /// How ci-gate reached its findings, for the curious (e.g. how many static hits were merged
    /// or dismissed): shown collapsed, never above the findings.
    pub statistics: Vec<String>,
    /// Phase timings in milliseconds.
    pub timings_ms: BTreeMap<String, u64>,
    /// `--comment` or `comment:` from the config, for the sinks (not part of the JSON).
    #[serde(skip)]
    pub comment: Option<CommentMode>,
}

/// What the report says about the run itself (everything but rows, checks and findings).
#[derive(Debug, Clone)]
pub struct Header {
    pub fail_on: FailOn,
    pub comment: Option<CommentMode>,
    pub format: String,
    pub project: String,
    pub migrations_dir: String,
    pub base_ref: Option<crate::git::Base>,
    pub base_dir: Option<String>,
    pub prisma: Option<PrismaInfo>,
    pub server: Option<ServerInfo>,
}

impl Report {
    /// The report of a finished run: counted, sorted and judged ([`Report::finalize`]).
    pub fn assemble(
        header: Header,
        migrations: Vec<MigrationRow>,
        checks: Checks,
        findings: Vec<Finding>,
        notes: Vec<String>,
        timings_ms: BTreeMap<String, u64>,
    ) -> Report {
        let mut report = Report {
            schema_version: SCHEMA_VERSION,
            verdict: Verdict::Pass,
            fail_on: header.fail_on,
            format: header.format,
            project: header.project,
            migrations_dir: header.migrations_dir,
            base: header.base_ref.as_ref().map(|b| b.commit.clone()),
            head: header.base_ref.as_ref().map(|b| b.head.clone()),
            base_ref: header.base_ref,
            base_dir: header.base_dir,
            prisma: header.prisma,
            server: header.server,
            counts: Counts::default(),
            migrations,
            checks,
            findings,
            notes,
            statistics: Vec::new(),
            timings_ms,
            comment: header.comment,
        };
        report.finalize();
        report
    }

    /// Sort findings worst first, count them, and decide the verdict.
    pub fn finalize(&mut self) {
        self.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.allowed.cmp(&b.allowed))
                .then_with(|| a.file.cmp(&b.file))
                .then_with(|| a.line.cmp(&b.line))
                .then_with(|| a.rule.cmp(&b.rule))
        });
        let mut counts = Counts::default();
        for f in &self.findings {
            if f.allowed {
                counts.allowed += 1;
                continue;
            }
            match f.severity {
                Severity::Error => counts.errors += 1,
                Severity::Warning => counts.warnings += 1,
                Severity::Notice => counts.notices += 1,
            }
        }
        self.counts = counts;
        for row in &mut self.migrations {
            let mut rules: Vec<String> = self
                .findings
                .iter()
                // Notices inform; they do not flag a migration.
                .filter(|f| is_about(f, &row.name) && f.severity > Severity::Notice)
                .map(|f| f.rule.clone())
                .collect();
            rules.dedup();
            row.rules = rules;
            if row.status == Status::Skipped && row.outcome.not_traced_reason.is_none() {
                row.outcome.not_traced_reason =
                    Some("not applied: an earlier migration failed".into());
            }
            row.outcome.verdict = row_verdict(row, &self.findings);
        }
        let fails = match self.fail_on {
            FailOn::Error => counts.errors > 0,
            FailOn::Warning => counts.errors + counts.warnings > 0,
            FailOn::Never => false,
        };
        self.verdict = if fails { Verdict::Fail } else { Verdict::Pass };
    }
}

impl Report {
    /// Whether the new migrations were compared with a base (a git ref or `--base-dir`).
    pub fn has_base(&self) -> bool {
        self.base_ref.is_some() || self.base_dir.is_some()
    }

    /// The rows in the order a reviewer reads them: worst verdict first, then migration order.
    pub fn rows_worst_first(&self) -> Vec<&MigrationRow> {
        let mut rows: Vec<&MigrationRow> = self.migrations.iter().collect();
        rows.sort_by_key(|r| r.outcome.verdict);
        rows
    }

    /// The finding that decided `row`'s verdict: its worst one that is not allowed, else its
    /// worst allowed one; at equal severity its own before one that only names it as a further
    /// site, then in report order (notices do not count).
    pub fn worst_finding(&self, row: &MigrationRow) -> Option<&Finding> {
        self.findings
            .iter()
            .filter(|f| is_about(f, &row.name) && f.severity > Severity::Notice)
            .min_by_key(|f| {
                let own = f.migration.as_deref() == Some(row.name.as_str());
                (f.allowed, std::cmp::Reverse(f.severity), !own)
            })
    }
}

/// The seeded trace's name among the checks.
const TRACE: &str = "trace on seeded rows";

/// What ran and what did not, grouped for the one-line summary every renderer shows.
#[derive(Debug, Default)]
pub struct ChecksSummary<'a> {
    /// Failed checks, with their line.
    pub failed: Vec<(&'static str, &'a str)>,
    /// Passed checks; the trace keeps its line (how much it covered).
    pub passed: Vec<(&'static str, Option<&'a str>)>,
    /// Checks that did not run, with why.
    pub not_run: Vec<(&'static str, &'a str)>,
}

impl Report {
    /// Every check, named, in the order the reports list them.
    pub fn checks_in_order(&self) -> [(&'static str, &CheckResult); 6] {
        let c = &self.checks;
        [
            ("from scratch", &c.scratch),
            ("incremental", &c.incremental),
            ("drift", &c.drift),
            ("history", &c.history),
            (TRACE, &c.trace),
            ("live", &c.live),
        ]
    }

    /// The checks grouped by outcome.
    pub fn checks_summary(&self) -> ChecksSummary<'_> {
        let mut out = ChecksSummary::default();
        for (name, check) in self.checks_in_order() {
            let line = check.summary.as_str();
            match check.status {
                CheckStatus::Fail => out.failed.push((name, line)),
                CheckStatus::Pass if name == TRACE => out.passed.push((name, Some(line))),
                CheckStatus::Pass => out.passed.push((name, None)),
                CheckStatus::Skipped => out.not_run.push((name, line)),
            }
        }
        out
    }
}

impl ChecksSummary<'_> {
    /// The parts of the one line: each failed check after `fail_mark` with its line, the passed
    /// ones after `pass_lead`, then those not run with why; `show` renders a check's line.
    pub fn parts(
        &self,
        fail_mark: &str,
        pass_lead: &str,
        show: &dyn Fn(&str) -> String,
    ) -> Vec<String> {
        let mut parts: Vec<String> = self
            .failed
            .iter()
            .map(|(name, line)| format!("{fail_mark} {name}: {}", show(line)))
            .collect();
        if !self.passed.is_empty() {
            let passed: Vec<String> = self
                .passed
                .iter()
                .map(|(name, line)| match line {
                    Some(l) => format!("{name} ({})", show(l)),
                    None => name.to_string(),
                })
                .collect();
            parts.push(format!("{pass_lead} {}", passed.join(", ")));
        }
        if !self.not_run.is_empty() {
            let not_run: Vec<String> = self
                .not_run
                .iter()
                .map(|(name, line)| format!("{name} ({})", show(line)))
                .collect();
            parts.push(format!("not run: {}", not_run.join(", ")));
        }
        parts
    }
}

/// Whether `f` is about migration `name`: its own, or one of its further sites (a rule that
/// reports once per pull request names every migration it applies to).
fn is_about(f: &Finding, name: &str) -> bool {
    f.migration.as_deref() == Some(name)
        || f.sites.iter().any(|s| s.migration.as_deref() == Some(name))
}

/// A row's verdict: its worst finding (allowed ones count as allowed), a failure, or, with
/// nothing found, whether the run observed it at all.
fn row_verdict(row: &MigrationRow, findings: &[Finding]) -> RowVerdict {
    if row.status == Status::Failed {
        return RowVerdict::Error;
    }
    let unobserved = row.outcome.not_traced_reason.is_some();
    let mut verdict = if unobserved {
        RowVerdict::NotTraced
    } else {
        RowVerdict::Clean
    };
    for f in findings.iter().filter(|f| is_about(f, &row.name)) {
        let this = match (f.allowed, f.severity) {
            (true, _) => RowVerdict::Allowed,
            (false, Severity::Error) => RowVerdict::Error,
            (false, Severity::Warning) => RowVerdict::Warning,
            (false, Severity::Notice) => continue,
        };
        verdict = verdict.min(this);
    }
    verdict
}

/// "0.6 s", "41 ms", "2 min 3 s" (kept here for the renderers' imports).
pub use crate::fmt::human_ms;
