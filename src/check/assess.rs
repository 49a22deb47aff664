//! The check stage in one call: every rule over the [`Evidence`], the static layer (squawk) over
//! the new and edited files merged with what the trace observed, allow directives, configured
//! severities, and the one-line results of the history and live checks.

use std::collections::BTreeMap;

use super::squawk::{self, LintContext};
use super::{Evidence, Finding, RuleLevel, Severity, run_all};
use crate::discover::Migration;
use crate::model::{CheckResult, CheckStatus};

/// What the check stage needs besides the evidence.
pub struct CheckInputs<'a> {
    /// The files the static layer lints (new and edited migrations; all of them without a base).
    pub linted: &'a [&'a Migration],
    pub lint: LintContext,
    /// `rules:` overrides.
    pub levels: &'a BTreeMap<String, RuleLevel>,
}

/// The check stage's output.
pub struct Assessment {
    /// Every finding, allowed ones included, with its configured severity (rules turned off are
    /// gone).
    pub findings: Vec<Finding>,
    pub history: CheckResult,
    /// The `--live-url` line ("not run" without one).
    pub live: CheckResult,
    /// Notes for the reader (seeding coverage, what was not linted).
    pub notes: Vec<String>,
    /// How the findings were reached (static-lint statistics): for the collapsed details.
    pub statistics: Vec<String>,
}

/// Run every rule and the static layer, and decide what the reader sees.
pub fn assess(ev: &Evidence, inputs: &CheckInputs) -> Assessment {
    let mut notes = Vec::new();
    let mut findings = run_all(ev);
    let live = live_check(ev);
    if let Some(seed) = ev.seed {
        notes.push(format!("seeded run: {}", seed.coverage()));
    }
    let levels: squawk::RuleLevels = inputs
        .levels
        .iter()
        .map(|(id, level)| (id.clone(), level.severity()))
        .collect();
    let (mut statics, mut raw_static, mut dismissed) = (Vec::new(), 0usize, 0usize);
    for out in squawk::lint_all(inputs.linted, &inputs.lint, &levels) {
        notes.extend(out.not_linted);
        raw_static += out.raw_counts.values().sum::<usize>();
        dismissed += out.dismissed.len();
        statics.extend(out.findings);
    }
    notes.extend(super::edits::only_changed_statements(&mut statics, ev));
    let traced: Vec<&str> = ev.traces.iter().map(|t| t.name.as_str()).collect();
    let starts = StatementStarts::of(inputs.linted);
    let (mut kept, merged, by_trace) = merge_static(statics, &mut findings, &traced, &starts);
    dismissed += by_trace;
    if ev.plan.is_none() && !kept.is_empty() {
        // Without a base every migration counts as new, including years of deployed history:
        // static findings inform, they do not gate.
        for f in &mut kept {
            f.severity = Severity::Notice;
        }
        notes.push(format!("no base: {} static findings over the whole history are shown as notices (give --base to gate new migrations)", kept.len()));
    }
    findings.extend(kept);
    let mut statistics = Vec::new();
    if raw_static > 0 {
        statistics.push(format!(
            "static lint: squawk-linter {} alone would report {raw_static} issues in the {} linted files; ci-gate keeps the ones that matter: \
             {merged} merged into what the trace observed, {dismissed} dismissed as harmless (shown so by the trace or the file itself), \
             rules that fire on every Prisma file off by default",
            squawk::SQUAWK_VERSION,
            inputs.linted.len()
        ));
    }

    // Allow directives, then configured severities (a rule turned off disappears).
    let mut findings = merge_same_failures(findings);
    let invalid_allows = super::allow::apply(&mut findings, inputs.linted);
    findings.extend(invalid_allows);
    let findings: Vec<Finding> = findings
        .into_iter()
        .filter_map(|mut f| {
            f.severity = match inputs.levels.get(&f.rule) {
                Some(level) => level.severity()?,
                None => f.severity,
            };
            Some(f)
        })
        .collect();
    let mut findings = findings;
    super::rules::missing_lock_timeout::once_per_pull_request(&mut findings);
    let history = history_check(&findings, ev.plan.is_some());
    Assessment {
        findings,
        history,
        live,
        notes,
        statistics,
    }
}

/// The history check's line: layout, and with a base, edited, deleted and reordered migrations.
fn history_check(findings: &[Finding], with_base: bool) -> CheckResult {
    use super::rules::{
        DELETED_APPLIED_MIGRATION, EDITED_APPLIED_MIGRATION, INVALID_MIGRATION_LAYOUT,
        OUT_OF_ORDER_MIGRATION,
    };
    let history_rules = [
        INVALID_MIGRATION_LAYOUT.id,
        EDITED_APPLIED_MIGRATION.id,
        DELETED_APPLIED_MIGRATION.id,
        OUT_OF_ORDER_MIGRATION.id,
    ];
    let of_history = |notice: bool| {
        findings
            .iter()
            .filter(|f| history_rules.contains(&f.rule.as_str()))
            .filter(|f| (f.severity == Severity::Notice) == notice)
            .count()
    };
    let (n, notices) = (of_history(false), of_history(true));
    let mut summary = match (n, with_base) {
        (0, true) => "no applied migration edited, deleted or reordered; layout ok".to_string(),
        (0, false) => "layout ok".to_string(),
        (n, _) => format!("{n} problems (edited, deleted, out-of-order or layout)"),
    };
    if notices > 0 {
        summary.push_str(&format!(
            "; {notices} out of order but harmless (same schema in both orders)"
        ));
    }
    CheckResult {
        status: CheckStatus::failing_if(n > 0),
        summary,
        findings: Some(n),
        ..CheckResult::not_run("")
    }
}

/// The live check's line: what production applied and would apply, failed rows, drift.
fn live_check(ev: &Evidence) -> CheckResult {
    use super::rules::{
        DELETED_APPLIED_MIGRATION, EDITED_APPLIED_MIGRATION, LIVE_DRIFT, LIVE_FAILED_MIGRATION,
    };
    let Some(live) = ev.live else {
        return CheckResult::not_run("no --live-url");
    };
    let failed = (LIVE_FAILED_MIGRATION.check)(ev);
    let failed_rows = failed.len();
    // The history rules' findings that come from production (a base adds its own).
    let from_production = [
        EDITED_APPLIED_MIGRATION.check,
        DELETED_APPLIED_MIGRATION.check,
    ]
    .iter()
    .flat_map(|check| check(ev))
    .filter(|f| f.source == super::Source::Drift);
    let drift = (LIVE_DRIFT.check)(ev);
    let mut summary = format!("{} applied, {} pending", live.applied, live.pending);
    if failed_rows > 0 {
        summary.push_str(&format!(", {failed_rows} failed or rolled back"));
    }
    if live.compared {
        summary.push_str(&match live.drift.len() {
            0 => ", schema matches its history".to_string(),
            n => format!(", {n} objects drifted"),
        });
    }
    let failing = failed
        .iter()
        .chain(&drift)
        .cloned()
        .chain(from_production)
        .any(|f| f.severity == Severity::Error);
    CheckResult {
        status: CheckStatus::failing_if(failing),
        summary,
        findings: Some(live.drift.len()),
        ..CheckResult::not_run("")
    }
}

/// Merge static (squawk) findings with observed ones: a static finding whose observed twin fired on
/// the same statement joins it as evidence; one whose twin did not fire in a traced migration is
/// dismissed (the trace shows it harmless); the rest are kept. Returns (kept, merged, dismissed).
///
/// The lock rules are one family: squawk's "index without CONCURRENTLY" is `blocks-writes` on its
/// own, `blocks-reads-writes` when an earlier statement's ACCESS EXCLUSIVE is still held.
fn merge_static(
    statics: Vec<Finding>,
    findings: &mut [Finding],
    traced: &[&str],
    starts: &StatementStarts,
) -> (Vec<Finding>, usize, usize) {
    use super::rules::{BLOCKS_READS_WRITES, BLOCKS_WRITES};
    let lock_family = [BLOCKS_WRITES.id, BLOCKS_READS_WRITES.id];
    let (mut kept, mut merged, mut dismissed) = (Vec::new(), 0, 0);
    for s in statics {
        let name = s.rule.trim_start_matches(squawk::PREFIX);
        let Some(twin) = squawk::observed_equivalent(name) else {
            kept.push(s);
            continue;
        };
        let twins: &[&str] = if lock_family.contains(&twin) {
            &lock_family
        } else {
            &[twin]
        };
        // The observed twin on the statement containing the static finding's line (when the
        // file splits; else the nearest one starting at or before it).
        let start = starts.containing(s.migration.as_deref(), s.line);
        let target = findings
            .iter_mut()
            .filter(|o| twins.contains(&o.rule.as_str()) && o.migration == s.migration)
            .filter(|o| match start {
                Some(first) => o.line == Some(first),
                None => o.line.is_some_and(|l| s.line.is_some_and(|sl| l <= sl)),
            })
            .max_by_key(|o| o.line);
        if let Some(o) = target {
            o.evidence
                .push(format!("static: {} — {}", s.rule, s.message));
            merged += 1;
            continue;
        }
        // The migration ran traced and the observed twin did not fire: harmless here. (A
        // fails-on-existing-rows twin depends on the seeded rows reaching that table: kept.)
        let in_trace = s.migration.as_deref().is_some_and(|m| traced.contains(&m));
        if in_trace && twin != super::rules::FAILS_ON_EXISTING_ROWS.id {
            dismissed += 1;
            continue;
        }
        kept.push(s);
    }
    (kept, merged, dismissed)
}

/// Where each statement of the linted files starts: (migration, first line, last line).
struct StatementStarts(Vec<(String, usize, usize)>);

impl StatementStarts {
    fn of(linted: &[&Migration]) -> Self {
        let mut out = Vec::new();
        for m in linted {
            let Some(stmts) = crate::sql::split::split(&m.text) else {
                continue;
            };
            let lines = crate::sql::position::LineIndex::new(&m.text);
            out.extend(stmts.iter().map(|st| {
                (
                    m.name.clone(),
                    lines.line_col(st.start).0,
                    lines.line_col(st.end).0,
                )
            }));
        }
        StatementStarts(out)
    }

    /// The first line of the statement of `migration` that contains `line`.
    fn containing(&self, migration: Option<&str>, line: Option<usize>) -> Option<usize> {
        let (m, l) = (migration?, line?);
        self.0
            .iter()
            .find(|(name, a, b)| name == m && (*a..=*b).contains(&l))
            .map(|(_, a, _)| *a)
    }
}

/// The same failure seen by several runs (e.g. incremental and from scratch) is one finding.
fn merge_same_failures(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::with_capacity(findings.len());
    for f in findings {
        let key = |x: &Finding| {
            let msg = x
                .message
                .split_once(": ")
                .map(|(_, m)| m.to_string())
                .unwrap_or_else(|| x.message.clone());
            (x.rule.clone(), x.migration.clone(), x.line, x.column, msg)
        };
        if let Some(existing) = out
            .iter_mut()
            .find(|e| key(e) == key(&f) && e.migration.is_some())
        {
            let (label, rest) = f.message.split_once(": ").unwrap_or(("", &f.message));
            let (elabel, _) = existing.message.split_once(": ").unwrap_or(("", ""));
            if !elabel.contains(label) {
                existing.message = format!("{elabel} and {label}: {rest}");
            }
            continue;
        }
        out.push(f);
    }
    out
}
