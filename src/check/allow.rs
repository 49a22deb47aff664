//! Allow directives: a finding allowed on purpose, in the migration itself, with its reason.
//!
//! ```sql
//! -- ci-gate: allow drops-column -- column unused since v2.3, see #812
//! ALTER TABLE "users" DROP COLUMN "legacy_name";
//! ```
//!
//! - `-- ci-gate: allow RULE[, RULE…] -- REASON` covers one statement:
//!   - written on its own line(s) between statements: the **next** statement;
//!   - written at the end of a statement's last line (`…; -- ci-gate: allow …`): **that**
//!     statement;
//!   - written inside a statement (between its lines): **that** statement.
//! - `-- ci-gate: allow-file RULE[, RULE…] -- REASON` covers the whole file, wherever it is.
//! - `RULE` is a ci-gate rule id or `squawk/<name>`, separated by commas (or spaces). Allowing a
//!   ci-gate rule also allows the squawk rule that reports the same problem
//!   ([`super::squawk::observed_equivalent`]): `allow drops-column` covers `squawk/ban-drop-column`.
//! - `/* ci-gate: allow … -- REASON */` block comments work the same way. Comments are found by
//!   squawk-syntax's lexer, so text inside strings and `$$` bodies is never a directive.
//!
//! A finding is covered when its file is the migration's path and its line lies within the
//! covered statement's lines (any line, for `allow-file`). Allowed findings stay in the report
//! with `allowed = true` and the reason.
//!
//! A comment is a directive when it starts with `ci-gate:` (any case); other comments that
//! mention ci-gate are ordinary comments. Each of these is an `invalid-allow-directive` finding
//! at the comment's line:column: a directive with no reason after a second `--` (it then allows
//! nothing), an unknown rule, a rule that matched no finding (when a `squawk/<name>` rule is
//! unused because the finding on that statement is its observed twin, the message says which id
//! to allow), a directive naming no rule, a `ci-gate:` directive other than `allow`/`allow-file`,
//! and `ci-gate allow …` with the colon forgotten.

use squawk_syntax::SourceFile;

use super::rules::{INVALID_ALLOW_DIRECTIVE, find_rule};
use super::squawk;
use super::{Finding, Source};
use crate::discover::Migration;
use crate::sql::position::LineIndex;
use crate::sql::split::{self, excerpt};

/// What a directive covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One statement: its byte range in the file (without the trailing `;`).
    NextStatement { start: usize, end: usize },
    /// The whole file (`allow-file`).
    File,
    /// No statement follows the directive.
    Nothing,
}

/// One `-- ci-gate:` comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// 1-based line and column of the comment.
    pub line: usize,
    pub column: usize,
    /// Rule ids as written.
    pub rules: Vec<String>,
    /// The text after the second `--`, trimmed; `None` when absent or empty.
    pub reason: Option<String>,
    pub scope: Scope,
    /// The comment as written.
    pub text: String,
    /// Why the comment is not a usable directive (unknown keyword, no rule named).
    pub malformed: Option<String>,
}

const MARKER: &str = "ci-gate";

/// Every `ci-gate` directive comment of a migration, in file order.
pub fn parse(m: &Migration) -> Vec<Directive> {
    let text = m.text.as_str();
    if !text
        .as_bytes()
        .windows(MARKER.len())
        .any(|w| w.eq_ignore_ascii_case(MARKER.as_bytes()))
    {
        return Vec::new();
    }
    // Too deep to parse safely: no directive is honoured (every finding stays visible).
    if crate::sql::depth::too_deep(text) {
        return Vec::new();
    }
    let parse = SourceFile::parse(text);
    let statements = statements(&parse, text);
    let lines = LineIndex::new(text);
    let mut out = Vec::new();
    for tok in split::comments(&parse) {
        let raw = tok.text();
        let body = if let Some(b) = raw.strip_prefix("--") {
            b
        } else if let Some(b) = raw.strip_prefix("/*") {
            b.strip_suffix("*/").unwrap_or(b)
        } else {
            continue;
        };
        let body = body.trim();
        // `ci-gate:` starts a directive; `ci-gate allow…` is one with the colon forgotten. Any
        // other comment mentioning ci-gate is just a comment.
        let lower = body.to_ascii_lowercase();
        let rest = if lower.starts_with("ci-gate:") {
            Some(&body["ci-gate:".len()..])
        } else if lower.starts_with("ci-gate allow") {
            None
        } else {
            continue;
        };
        let start = usize::from(tok.text_range().start());
        let end = usize::from(tok.text_range().end());
        let (line, column) = lines.line_col(start);
        let mut d = Directive {
            line,
            column,
            rules: Vec::new(),
            reason: None,
            scope: Scope::Nothing,
            text: raw.trim_end().to_string(),
            malformed: None,
        };
        let Some(rest) = rest else {
            d.malformed = Some(
                "not a ci-gate directive: write `-- ci-gate: allow RULE -- REASON` (with the colon)"
                    .into(),
            );
            out.push(d);
            continue;
        };
        let rest = rest.trim_start();
        let keyword_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (keyword, rest) = rest.split_at(keyword_end);
        let file_scope = match keyword.to_ascii_lowercase().as_str() {
            "allow" => false,
            "allow-file" => true,
            other => {
                d.malformed = Some(format!(
                    "unknown ci-gate directive `{other}`: use `allow` (next statement) or `allow-file` (whole file)"
                ));
                out.push(d);
                continue;
            }
        };
        let (rules, reason) = match rest.split_once("--") {
            Some((r, reason)) => (r, Some(reason.trim())),
            None => (rest, None),
        };
        d.rules = rules
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect();
        d.reason = reason.filter(|r| !r.is_empty()).map(str::to_string);
        if d.rules.is_empty() {
            d.malformed =
                Some("names no rule: write `-- ci-gate: allow RULE[, RULE…] -- REASON`".into());
        }
        d.scope = if file_scope {
            Scope::File
        } else {
            covered(&statements, text, start, end)
        };
        out.push(d);
    }
    out
}

/// Byte ranges of the statements (first to last non-trivia token, without a trailing `;`),
/// also for files the parser only partly understands.
fn statements(parse: &squawk_syntax::Parse<SourceFile>, text: &str) -> Vec<(usize, usize)> {
    split::statements(parse, text)
        .into_iter()
        .map(|s| (s.start, s.end))
        .collect()
}

/// The statement a comment at `start..end` covers: the one it sits in, else the one ending
/// earlier on its line (a trailing comment), else the next one.
fn covered(statements: &[(usize, usize)], text: &str, start: usize, end: usize) -> Scope {
    let scope = |&(s, e): &(usize, usize)| Scope::NextStatement { start: s, end: e };
    if let Some(s) = statements.iter().find(|(s, e)| *s <= start && start < *e) {
        return scope(s);
    }
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    if let Some(s) = statements
        .iter()
        .rev()
        .find(|(s, e)| *e <= start && *e >= line_start && *s < start)
    {
        return scope(s);
    }
    statements
        .iter()
        .find(|(s, _)| *s >= end)
        .map_or(Scope::Nothing, scope)
}

/// Whether `rule` is a ci-gate rule id or `squawk/<name>`.
pub fn is_known_rule(rule: &str) -> bool {
    find_rule(rule).is_some() || squawk::is_squawk_rule(rule)
}

/// Whether a directive naming `allowed` covers a finding of rule `finding_rule`.
fn rule_matches(allowed: &str, finding_rule: &str) -> bool {
    if allowed == finding_rule {
        return true;
    }
    if !finding_rule.starts_with(squawk::PREFIX) {
        return false;
    }
    // Aliases (`squawk/prefer-timestamp-tz` = `squawk/prefer-timestamptz`).
    if allowed.starts_with(squawk::PREFIX) {
        let finding = squawk::expand(finding_rule);
        return squawk::expand(allowed).iter().any(|a| finding.contains(a));
    }
    // A ci-gate rule allows its static twin.
    squawk::observed_equivalent(finding_rule) == Some(allowed)
}

/// Mark the findings the directives of `migrations` allow, and return the
/// `invalid-allow-directive` findings (no reason, unknown rule, matched nothing, malformed).
///
/// Call it once, on the final list of findings (after static and observed findings are merged,
/// before the configured severities drop rules that are off), with the migrations whose findings
/// were computed (the new and edited ones): a directive in a file that was not checked would
/// always look unused.
pub fn apply(findings: &mut [Finding], migrations: &[&Migration]) -> Vec<Finding> {
    let mut problems = Vec::new();
    for m in migrations {
        // Built on the first directive with a statement scope (most files have none).
        let lines = std::cell::OnceCell::new();
        let line_of = |offset: usize| {
            lines
                .get_or_init(|| LineIndex::new(m.text.as_str()))
                .line_col(offset)
                .0
        };
        for d in parse(m) {
            let problem = |message: String, fix: &str| {
                Finding::new(&INVALID_ALLOW_DIRECTIVE, Source::Static, message)
                    .migration(&m.name)
                    .file(&m.path)
                    .at(d.line, d.column)
                    .statement(excerpt(&d.text, 160))
                    .fix(fix)
            };
            if let Some(why) = &d.malformed {
                problems.push(problem(
                    format!("`{}`: {why}", excerpt(&d.text, 80)),
                    "write `-- ci-gate: allow RULE[, RULE…] -- REASON` above the statement, or `allow-file` for the whole file",
                ));
                continue;
            }
            // Without the `--`, a reason written after the rules would read as rule names: say
            // only what is missing.
            let Some(reason) = &d.reason else {
                problems.push(problem(
                    format!(
                        "allow directive `{}` gives no reason after a second `--`, so it allows nothing",
                        excerpt(&d.text, 80)
                    ),
                    "add the reason after a second `--`: `-- ci-gate: allow RULE -- why this is safe here`",
                ));
                continue;
            };
            for r in d.rules.iter().filter(|r| !is_known_rule(r)) {
                problems.push(problem(
                    format!("unknown rule `{r}` in allow directive"),
                    "use a rule id from `ci-gate rules` (squawk rules as `squawk/<name>`)",
                ));
            }
            let lines = match d.scope {
                Scope::NextStatement { start, end } => Some((line_of(start), line_of(end))),
                Scope::File => None,
                Scope::Nothing => {
                    problems.push(problem(
                        "allow directive covers no statement: nothing follows it in the file".into(),
                        "put the directive right above the statement it allows, or use `allow-file`",
                    ));
                    continue;
                }
            };
            let mut used = vec![false; d.rules.len()];
            // For an unused `squawk/X`: the observed rule found in scope instead, if any.
            let mut twin: Vec<Option<String>> = vec![None; d.rules.len()];
            for f in findings.iter_mut() {
                if f.file.as_deref() != Some(m.path.as_str()) {
                    continue;
                }
                if let Some((first, last)) = lines {
                    match f.line {
                        Some(l) if l >= first && l <= last => {}
                        _ => continue,
                    }
                }
                for (i, r) in d.rules.iter().enumerate() {
                    if rule_matches(r, &f.rule) {
                        used[i] = true;
                        f.allowed = true;
                        f.allow_reason = Some(reason.clone());
                    } else if squawk::observed_equivalent(r) == Some(f.rule.as_str()) {
                        twin[i] = Some(f.rule.clone());
                    }
                }
            }
            for ((r, _), twin) in d
                .rules
                .iter()
                .zip(&used)
                .zip(&twin)
                .filter(|((r, used), _)| !**used && is_known_rule(r))
            {
                let where_ = match d.scope {
                    Scope::File => "in this file".to_string(),
                    _ => match lines {
                        Some((a, b)) if a == b => format!("on the statement at line {a}"),
                        Some((a, b)) => format!("on the statement at lines {a}–{b}"),
                        None => String::new(),
                    },
                };
                let off = if let Some(t) = twin {
                    format!(
                        "; the finding here is `{t}` (observed on the server): allow `{t}`, which also covers `{r}`"
                    )
                } else if r.starts_with(squawk::PREFIX) && !squawk::default_enabled(r) {
                    format!(" (`{r}` is off unless `.ci-gate.yml` turns it on)")
                } else {
                    String::new()
                };
                problems.push(problem(
                    format!("allow directive for `{r}` matched no finding {where_}{off}"),
                    "remove the directive, or move it right above the statement it is meant for",
                ));
            }
        }
    }
    problems
}
