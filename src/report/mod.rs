//! One [`Report`] value, rendered many ways. The verdict and the order of rows and findings are
//! decided here, not in renderers.

pub mod annotations;
pub mod github;
pub mod json;
pub mod markdown;
pub mod publish;
pub mod sarif;
pub mod terminal;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::check::{Finding, Severity};
pub use crate::model::{
    Change, CheckResult, CheckStatus, Checks, CommentMode, FailOn, MigrationRow,
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
    /// How the base was chosen (null: no base, from scratch only).
    pub base_ref: Option<crate::git::Base>,
    pub prisma: Option<PrismaInfo>,
    pub server: Option<ServerInfo>,
    pub counts: Counts,
    pub migrations: Vec<MigrationRow>,
    pub checks: Checks,
    pub findings: Vec<Finding>,
    /// Things the reader should know (unknown Prisma version, order notes, what was skipped).
    pub notes: Vec<String>,
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
            prisma: header.prisma,
            server: header.server,
            counts: Counts::default(),
            migrations,
            checks,
            findings,
            notes,
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
                .filter(|f| {
                    f.migration.as_deref() == Some(&row.name) && f.severity > Severity::Notice
                })
                .map(|f| f.rule.clone())
                .collect();
            rules.dedup();
            row.rules = rules;
        }
        let fails = match self.fail_on {
            FailOn::Error => counts.errors > 0,
            FailOn::Warning => counts.errors + counts.warnings > 0,
            FailOn::Never => false,
        };
        self.verdict = if fails { Verdict::Fail } else { Verdict::Pass };
    }
}

/// "0.6 s", "41 ms", "2 min 3 s" (kept here for the renderers' imports).
pub use crate::fmt::human_ms;
