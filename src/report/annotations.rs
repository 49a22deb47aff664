//! GitHub Actions annotations (workflow commands on stdout):
//! `::error file=…,line=…,col=…,title=RULE::message`.
//!
//! Worst first (errors, warnings, notices, then allowed findings as notices), at most
//! [`PER_LEVEL`] per level because GitHub keeps only 10 error and 10 warning annotations per step
//! and drops the rest silently; then one `::notice::` counting what was left out. Paths are the
//! report's, which are relative to the repository root. Escaping follows `@actions/core`
//! (`packages/core/src/command.ts`): data `%`→`%25`, `\r`→`%0D`, `\n`→`%0A`; properties also
//! `:`→`%3A` and `,`→`%2C`.

use super::Report;
use crate::check::{Finding, Severity};

/// GitHub's limit of annotations per level and step.
pub const PER_LEVEL: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    fn command(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }
}

fn level(f: &Finding) -> Level {
    if f.allowed {
        return Level::Notice;
    }
    match f.severity {
        Severity::Error => Level::Error,
        Severity::Warning => Level::Warning,
        Severity::Notice => Level::Notice,
    }
}

/// The annotation lines, in output order (no trailing newline on each).
pub fn lines(report: &Report) -> Vec<String> {
    // Worst first; allowed findings after the real notices; the report's order otherwise.
    let expanded: Vec<Finding> = report.findings.iter().flat_map(at_each_site).collect();
    let mut findings: Vec<&Finding> = expanded.iter().collect();
    findings.sort_by_key(|f| (level(f), f.allowed));
    let count = |l: Level| findings.iter().filter(|f| level(f) == l).count();
    let (errors, warnings, notices) = (
        count(Level::Error),
        count(Level::Warning),
        count(Level::Notice),
    );
    let over = errors.saturating_sub(PER_LEVEL) + warnings.saturating_sub(PER_LEVEL);
    // Keep room for the counting notice among the notices.
    let notice_cap = if over > 0 || notices > PER_LEVEL {
        PER_LEVEL - 1
    } else {
        PER_LEVEL
    };
    let mut out = Vec::new();
    let mut shown = [0usize; 3];
    let mut left_out = 0usize;
    for f in findings {
        let l = level(f);
        let cap = if l == Level::Notice {
            notice_cap
        } else {
            PER_LEVEL
        };
        let slot = &mut shown[l as usize];
        if *slot >= cap {
            left_out += 1;
            continue;
        }
        *slot += 1;
        out.push(annotation(l, f));
    }
    if left_out > 0 {
        out.push(format!(
            "::notice title=ci-gate::{}",
            escape_data(&format!(
                "{left_out} more finding{} not annotated (GitHub shows at most {PER_LEVEL} per level); see the job summary for all of them",
                if left_out == 1 { " is" } else { "s are" }
            ))
        ));
    }
    out
}

/// The annotations as one string, one command per line.
pub fn render(report: &Report) -> String {
    let mut s = lines(report).join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// A finding reported once for several places (see [`Finding::sites`]) is annotated at each of
/// them: the whole finding at its own place, a short one at every other.
fn at_each_site(f: &Finding) -> Vec<Finding> {
    let mut out = vec![Finding {
        sites: Vec::new(),
        ..f.clone()
    }];
    let n = f.sites.len() + 1;
    out.extend(f.sites.iter().map(|s| Finding {
        migration: s.migration.clone(),
        file: s.file.clone(),
        line: s.line,
        column: s.column,
        message: format!(
            "{}: one of the {n} places of this finding; the first ({}) has the details",
            s.message,
            f.location().unwrap_or_default()
        ),
        evidence: Vec::new(),
        sites: Vec::new(),
        ..f.clone()
    }));
    out
}

fn annotation(l: Level, f: &Finding) -> String {
    let mut props = Vec::new();
    if let Some(file) = &f.file {
        props.push(format!("file={}", escape_property(file)));
        if let Some(line) = f.line {
            props.push(format!("line={line}"));
            if let Some(col) = f.column {
                props.push(format!("col={col}"));
            }
        }
    }
    let title = if f.allowed {
        format!("{} (allowed)", f.rule)
    } else {
        f.rule.clone()
    };
    props.push(format!("title={}", escape_property(&title)));
    let mut message = f.message.clone();
    if let Some(fix) = &f.fix {
        message.push_str("\nFix: ");
        message.push_str(fix);
    }
    if f.allowed {
        message.push_str("\nAllowed: ");
        message.push_str(f.allow_reason.as_deref().unwrap_or("(no reason given)"));
    }
    format!(
        "::{} {}::{}",
        l.command(),
        props.join(","),
        escape_data(&message)
    )
}

/// `@actions/core` `escapeData`.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// `@actions/core` `escapeProperty`.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_matches_actions_toolkit() {
        assert_eq!(escape_data("50% a\r\nb: c,d"), "50%25 a%0D%0Ab: c,d");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }
}
