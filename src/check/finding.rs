//! The [`Finding`] value every check produces and every renderer shows.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a finding is. `error` fails the gate; `warning` is reported; `notice` informs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Notice,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
        })
    }
}

/// A rule's configured level (`rules:` in `.ci-gate.yml`): a severity, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleLevel {
    Error,
    Warning,
    Notice,
    Off,
}

impl RuleLevel {
    pub fn severity(self) -> Option<Severity> {
        match self {
            RuleLevel::Error => Some(Severity::Error),
            RuleLevel::Warning => Some(Severity::Warning),
            RuleLevel::Notice => Some(Severity::Notice),
            RuleLevel::Off => None,
        }
    }
}

/// What a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    History,
    Proven,
    Drift,
    Destructive,
    Breaking,
    Lock,
    Lint,
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        f.write_str(&s)
    }
}

/// Where the evidence for a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Static,
    Observed,
    Proven,
    History,
    Drift,
}

/// One problem found, located as precisely as the evidence allows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub category: Category,
    pub source: Source,
    /// Migration name, when the finding is about one.
    pub migration: Option<String>,
    /// Repo-relative path of the file.
    pub file: Option<String>,
    /// 1-based line and column (characters).
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// A short excerpt of the statement involved.
    pub statement: Option<String>,
    pub message: String,
    /// Facts backing the finding (SQLSTATE, server detail, catalog evidence).
    pub evidence: Vec<String>,
    /// One imperative sentence saying how to fix it.
    pub fix: Option<String>,
    pub allowed: bool,
    pub allow_reason: Option<String>,
    /// Further places the same finding applies to, when a rule reports once per pull request
    /// (`missing-lock-timeout`); the finding's own location is the first. Annotations go on each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<Site>,
}

/// Another place a finding applies to (see [`Finding::sites`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Site {
    pub migration: Option<String>,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// What happens there, in a few words.
    pub message: String,
}

impl Finding {
    /// A finding for `rule` with the rule's default category and severity.
    pub fn new(rule: &super::Rule, source: Source, message: impl Into<String>) -> Finding {
        Finding {
            rule: rule.id.to_string(),
            severity: rule.default_severity,
            category: rule.category,
            source,
            migration: None,
            file: None,
            line: None,
            column: None,
            statement: None,
            message: message.into(),
            evidence: Vec::new(),
            fix: None,
            allowed: false,
            allow_reason: None,
            sites: Vec::new(),
        }
    }

    pub fn migration(mut self, name: impl Into<String>) -> Self {
        self.migration = Some(name.into());
        self
    }

    pub fn file(mut self, path: impl Into<String>) -> Self {
        self.file = Some(path.into());
        self
    }

    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    pub fn statement(mut self, excerpt: impl Into<String>) -> Self {
        self.statement = Some(excerpt.into());
        self
    }

    pub fn evidence(mut self, e: impl Into<String>) -> Self {
        self.evidence.push(e.into());
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// `file:line:column` as far as known.
    pub fn location(&self) -> Option<String> {
        let file = self.file.as_deref()?;
        Some(match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
            (Some(l), None) => format!("{file}:{l}"),
            _ => file.to_string(),
        })
    }
}
