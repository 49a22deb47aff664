//! The squawk engine: squawk-linter over migration files, with the rule set ci-gate enables
//! under the configured [`RuleLevels`], the execution model of the tool ([`LintContext`]), and
//! each violation turned into a [`Finding`] (or a [`Dismissed`] one, with the reason
//! `Analysis::dismissal` gives). [`lint_all`] lints many files on every core, with the rule set
//! prepared once.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use squawk_linter::{Linter, Rule as SquawkRule, Violation};
use squawk_syntax::SourceFile;

use super::RuleLevels;
use super::catalogue::{ALIASES, Entry, PREFIX, RULES, canonical, entry_for, severity};
use super::dismissal::{Analysis, IGNORE};
use crate::check::rules::INVALID_ALLOW_DIRECTIVE;
use crate::check::{Category, Finding, Severity, Source};
use crate::discover::Migration;
use crate::discover::prisma_version::PrismaVersion;
use crate::sql::split::excerpt;

/// How the linted file will be executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LintContext {
    /// PostgreSQL major version the migrations target (squawk's `pg_version`).
    pub pg_major: u32,
    /// The tool runs the whole file in one transaction (squawk's `assume_in_transaction`).
    pub assume_in_transaction: bool,
}

impl Default for LintContext {
    /// PostgreSQL 16, one transaction per file (Prisma ≤ 7.3, what ci-gate assumes when the
    /// Prisma version is unknown).
    fn default() -> Self {
        LintContext {
            pg_major: 16,
            assume_in_transaction: true,
        }
    }
}

impl LintContext {
    /// For Prisma: up to 7.3 (and when unknown) each file is one implicit transaction; from 7.4
    /// each statement is autocommitted.
    pub fn for_prisma(pg_major: u32, version: Option<&PrismaVersion>) -> Self {
        LintContext {
            pg_major,
            assume_in_transaction: !version.is_some_and(PrismaVersion::splits_statements),
        }
    }
}

/// A finding the file itself shows harmless, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct Dismissed {
    pub finding: Finding,
    pub reason: String,
}

/// A place where squawk's parser did not understand the file. The findings of that file may be
/// incomplete; whether the SQL is really invalid is decided by running it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// What [`lint`] found in one file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LintOutput {
    /// Findings of the enabled rules, in file order. Those silenced by a `squawk-ignore` comment
    /// are here with `allowed = true`.
    pub findings: Vec<Finding>,
    /// Findings of enabled rules that the file itself shows harmless.
    pub dismissed: Vec<Dismissed>,
    /// Every violation squawk reported, per `squawk/<rule>`, before ci-gate's defaults and
    /// dismissals (squawk's default rule set plus any rule the levels turn on;
    /// `squawk-ignore` comments honoured): what raw squawk would have printed.
    pub raw_counts: BTreeMap<String, usize>,
    pub syntax_errors: Vec<SyntaxError>,
    /// Why the file was not linted at all, when it was not.
    pub not_linted: Option<String>,
}

/// What linting needs that does not depend on the file, built once per process: squawk's default
/// rule set, each [`RULES`] entry's squawk rule, and every squawk code ci-gate knows with its
/// entry.
struct Tables {
    default_rules: Vec<SquawkRule>,
    /// Parallel to [`RULES`]: the squawk rule its name parses to.
    parsed: Vec<Option<SquawkRule>>,
    /// Every rule squawk can report under a rule set ci-gate builds, with [`entry_for`] of it.
    known: Vec<(SquawkRule, Option<&'static Entry>)>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let default_rules: Vec<SquawkRule> =
            Linter::with_default_rules().rules.into_iter().collect();
        let parsed: Vec<Option<SquawkRule>> = RULES.iter().map(|e| e.name.parse().ok()).collect();
        let aliases = ALIASES
            .iter()
            .filter_map(|(a, _)| a.parse::<SquawkRule>().ok());
        // `Linter::from` adds what a rule expands to.
        let every = Linter::from(
            default_rules
                .iter()
                .copied()
                .chain(parsed.iter().flatten().copied())
                .chain(aliases),
        )
        .rules;
        let known = every.into_iter().map(|r| (r, entry_for(r))).collect();
        Tables {
            default_rules,
            parsed,
            known,
        }
    })
}

/// What linting needs that depends on the context and the rule levels but not on the file, built
/// once per run and shared by every file (and thread): the squawk rule set to run (squawk's own
/// default set, for [`LintOutput::raw_counts`], plus every rule the levels turn on) with squawk's
/// settings, and each rule's entry and severity under the levels.
struct Prepared {
    /// The rule set and settings; each file gets a fresh `Linter` with copies of them (squawk's
    /// `Linter` collects per-file state and is used once).
    template: Linter,
    /// (code, [`entry_for`] it, [`severity`] of that entry under the levels).
    codes: Vec<(SquawkRule, Option<&'static Entry>, Option<Severity>)>,
}

impl Prepared {
    fn new(ctx: &LintContext, levels: &RuleLevels) -> Self {
        let t = tables();
        let mut rules = t.default_rules.clone();
        for (e, parsed) in RULES.iter().zip(&t.parsed) {
            if severity(levels, e).is_some()
                && let Some(r) = *parsed
                && !rules.contains(&r)
            {
                rules.push(r);
            }
        }
        let mut template = Linter::from(rules);
        template.settings.pg_version = ctx.pg_major.to_string().parse().unwrap_or_default();
        template.settings.assume_in_transaction = ctx.assume_in_transaction;
        let codes = t
            .known
            .iter()
            .map(|&(r, e)| (r, e, e.and_then(|e| severity(levels, e))))
            .collect();
        Prepared { template, codes }
    }

    /// squawk over one parsed text, with the prepared rules and settings.
    fn run(&self, parse: &squawk_syntax::Parse<SourceFile>, text: &str) -> Vec<Violation> {
        let mut linter = Linter::from(std::iter::empty());
        linter.rules.clone_from(&self.template.rules);
        linter.settings = self.template.settings.clone();
        linter.lint(parse, text)
    }

    /// [`entry_for`] `code`, and the entry's severity under `levels` (`None`: off).
    fn resolve(
        &self,
        code: SquawkRule,
        levels: &RuleLevels,
    ) -> (Option<&'static Entry>, Option<Severity>) {
        match self.codes.iter().find(|(r, ..)| *r == code) {
            Some(&(_, e, sev)) => (e, sev),
            None => {
                let e = entry_for(code);
                (e, e.and_then(|e| severity(levels, e)))
            }
        }
    }

    /// [`Prepared::lint`], contained: squawk-syntax has `unreachable!()`s that malformed input
    /// reaches (found by fuzzing); a file it cannot handle is not linted, and said so, rather
    /// than ending the run.
    fn lint_contained(&self, m: &Migration, ctx: &LintContext, levels: &RuleLevels) -> LintOutput {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.lint(m, ctx, levels)))
            .unwrap_or_else(|_| LintOutput {
                not_linted: Some(format!(
                    "{}: not linted, the static layer's SQL parser (squawk) failed on this file (the server still applied and judged it)",
                    m.path
                )),
                ..LintOutput::default()
            })
    }

    fn lint(&self, m: &Migration, ctx: &LintContext, levels: &RuleLevels) -> LintOutput {
        let text = m.text.as_str();
        if crate::sql::depth::too_deep(text) {
            // squawk's parser and rules recurse per level: not linted, said as a notice.
            return LintOutput {
                not_linted: Some(format!(
                    "{}: not linted, nested more than {} levels deep (beyond what the static layer parses safely; the server still applied and judged it)",
                    m.path,
                    crate::sql::depth::MAX_NESTING
                )),
                ..LintOutput::default()
            };
        }
        let parse = SourceFile::parse(text);
        let violations = self.run(&parse, text);
        let has_ignores = text.contains(IGNORE);
        // Findings silenced by `squawk-ignore` comments: lint a copy where those comments no
        // longer parse as ignores (same length, so every range stays valid). Only for files that
        // have one.
        let ignored: Vec<Violation> = if has_ignores {
            let neutral = text.replace(IGNORE, "squawk_ignore");
            self.run(&SourceFile::parse(&neutral), &neutral)
                .into_iter()
                .filter(|v| {
                    v.code != SquawkRule::UnusedIgnore
                        && !violations
                            .iter()
                            .any(|o| o.code == v.code && o.text_range == v.text_range)
                })
                .collect()
        } else {
            Vec::new()
        };

        let mut out = LintOutput::default();
        for v in &violations {
            match self.resolve(v.code, levels).0 {
                // `e.id` is `squawk/<canonical name>` (tested).
                Some(e) => match out.raw_counts.get_mut(e.id) {
                    Some(n) => *n += 1,
                    None => {
                        out.raw_counts.insert(e.id.to_string(), 1);
                    }
                },
                None => {
                    *out.raw_counts
                        .entry(format!("{PREFIX}{}", canonical(v.code)))
                        .or_default() += 1
                }
            }
        }

        let dismissable = violations.iter().chain(&ignored).any(|v| {
            matches!(
                v.code,
                SquawkRule::RenamingObject
                    | SquawkRule::BanDropType
                    | SquawkRule::BanDropDefault
                    | SquawkRule::BanDropConstraint
            )
        });
        let file = Analysis::new(
            &parse,
            text,
            ctx.assume_in_transaction,
            dismissable,
            has_ignores,
        );
        for e in parse.errors() {
            let (line, column) = file.line_col(usize::from(e.range().start()));
            out.syntax_errors.push(SyntaxError {
                line,
                column,
                message: e.message().to_string(),
            });
        }

        let mut all: Vec<(&Violation, Option<String>)> =
            violations.iter().map(|v| (v, None)).collect();
        for v in &ignored {
            all.push((v, Some(file.ignore_reason(v))));
        }
        all.sort_by_key(|(v, _)| v.text_range.start());

        for (v, ignore_reason) in all {
            let (Some(e), Some(sev)) = self.resolve(v.code, levels) else {
                continue;
            };
            let mut f = finding(&file, m, e, sev, v, ctx);
            if let Some(reason) = ignore_reason {
                f.allowed = true;
                f.allow_reason = Some(reason);
            }
            match file.dismissal(v, &violations) {
                Some(reason) => out.dismissed.push(Dismissed { finding: f, reason }),
                None => out.findings.push(f),
            }
        }
        out
    }
}

/// Lint one migration with squawk, keeping the rules `levels` enables (the configured levels over
/// ci-gate's defaults), at their configured severity. To lint many files, [`lint_all`] prepares
/// the rule set once and uses every core.
pub fn lint(m: &Migration, ctx: &LintContext, levels: &RuleLevels) -> LintOutput {
    /// A [`Prepared`] with what it was built from (all it depends on).
    type Built = (LintContext, RuleLevels, Rc<Prepared>);
    thread_local! {
        /// The last [`Prepared`] built by `lint` on this thread: the files of one run share it
        /// instead of each building it.
        static LAST: RefCell<Option<Built>> = const { RefCell::new(None) };
    }
    let prepared = LAST.with_borrow_mut(|last| match last {
        Some((c, rules, p)) if c == ctx && rules == levels => Rc::clone(p),
        _ => {
            let p = Rc::new(Prepared::new(ctx, levels));
            *last = Some((*ctx, levels.clone(), Rc::clone(&p)));
            p
        }
    });
    prepared.lint_contained(m, ctx, levels)
}

/// Below this many files [`lint_all`] stays on the calling thread (a thread costs more than
/// linting a few files).
const PARALLEL_MIN_FILES: usize = 8;

/// Stack of [`lint_all`]'s worker threads: squawk's parser recurses, so as much as a main thread
/// gets, not the 2 MiB default of spawned threads.
const WORKER_STACK: usize = 8 << 20;

/// [`lint`] over many migrations on all available cores, with the rule set prepared once. The
/// outputs are in input order, each equal to what [`lint`] returns for that migration.
pub fn lint_all(
    migrations: &[&Migration],
    ctx: &LintContext,
    levels: &RuleLevels,
) -> Vec<LintOutput> {
    let prepared = Prepared::new(ctx, levels);
    let n = migrations.len();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let threads = cores.min(n / (PARALLEL_MIN_FILES / 2));
    if n < PARALLEL_MIN_FILES || threads < 2 {
        return migrations
            .iter()
            .map(|m| prepared.lint_contained(m, ctx, levels))
            .collect();
    }
    // Files are handed out one at a time from a shared index (their cost varies with their
    // length); each thread keeps (index, output) pairs, put back in input order at the end.
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(m) = migrations.get(i) else {
                return done;
            };
            done.push((i, prepared.lint_contained(m, ctx, levels)));
        }
    };
    let parts: Vec<Vec<(usize, LintOutput)>> = std::thread::scope(|s| {
        let spawned: Vec<_> = (1..threads)
            .map(|_| {
                std::thread::Builder::new()
                    .name("ci-gate-lint".into())
                    .stack_size(WORKER_STACK)
                    .spawn_scoped(s, work)
            })
            .collect();
        // The calling thread works too; a thread that could not be spawned leaves its share to
        // the others.
        let mut parts = vec![work()];
        for h in spawned.into_iter().flatten() {
            match h.join() {
                Ok(p) => parts.push(p),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        parts
    });
    let mut slots: Vec<Option<LintOutput>> = std::iter::repeat_with(|| None).take(n).collect();
    for (i, out) in parts.into_iter().flatten() {
        slots[i] = Some(out);
    }
    slots
        .into_iter()
        .zip(migrations)
        // Every index below `n` was taken by exactly one thread; lint on this thread anything
        // missing rather than lose a file.
        .map(|(out, m)| out.unwrap_or_else(|| prepared.lint(m, ctx, levels)))
        .collect()
}

/// The [`Finding`] for one violation of entry `e` at `severity`.
fn finding(
    file: &Analysis,
    m: &Migration,
    e: &Entry,
    severity: Severity,
    v: &Violation,
    ctx: &LintContext,
) -> Finding {
    let start = usize::from(v.text_range.start());
    let end = usize::from(v.text_range.end()).min(file.text.len());
    let (line, column) = file.line_col(start);
    let (end_line, end_column) = file.line_col(end);
    // A finding for a registered rule, re-labelled: keeps this module independent of the
    // `Finding` fields that may be added later.
    let mut f = Finding::new(&INVALID_ALLOW_DIRECTIVE, Source::Static, v.message.clone())
        .migration(&m.name)
        .file(&m.path)
        .at(line, column);
    f.rule = e.id.to_string();
    f.category = Category::Lint;
    f.severity = severity;
    if let Some(s) = file.statement_at(start) {
        f = f.statement(excerpt(s, 160));
    }
    let span = file.text.get(start..end).unwrap_or("");
    f = f.evidence(format!(
        "squawk-linter `{}` (static, from the SQL text) at {line}:{column}–{end_line}:{end_column}: `{}`",
        e.name,
        excerpt(span, 100)
    ));
    match (own_fix(e.name, ctx), &v.help) {
        (Some(fix), Some(help)) => f = f.evidence(format!("squawk's help: {help}")).fix(fix),
        (Some(fix), None) => f = f.fix(fix),
        (None, Some(help)) => f = f.fix(help.clone()),
        (None, None) => {}
    }
    f
}

/// ci-gate's own fix where squawk's help would fail the way the tool runs the file, or where
/// squawk gives none.
fn own_fix(name: &str, ctx: &LintContext) -> Option<String> {
    match name {
        "unused-ignore" => Some(
            "correct the rule name in the squawk-ignore comment (squawk's names: https://squawkhq.com/docs/rules-overview), or remove it".into(),
        ),
        "require-concurrent-index-creation" | "require-concurrent-index-deletion"
            if ctx.assume_in_transaction =>
        {
            Some("use CONCURRENTLY, with the statement alone in its own migration file: the tool runs a multi-statement file in one transaction, where CONCURRENTLY fails".into())
        }
        "ban-concurrent-index-creation-in-transaction" => Some(
            "move the CONCURRENTLY statement into a migration file of its own, with nothing else in it".into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::squawk::squawk_rules;

    /// Every `.sql` under `tests/fixtures` (sorted), as migrations.
    fn fixture_migrations() -> Vec<Migration> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            entries.sort();
            for p in entries {
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "sql") {
                    out.push(p);
                }
            }
        }
        let mut paths = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
            &mut paths,
        );
        paths
            .iter()
            .map(|p| {
                let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                let text = String::from_utf8_lossy(&bytes).into_owned();
                migration(&p.display().to_string(), &text)
            })
            .collect()
    }

    fn migration(path: &str, text: &str) -> Migration {
        Migration {
            name: path.to_string(),
            path: path.to_string(),
            bytes: text.as_bytes().to_vec(),
            text: text.to_string(),
            checksum: String::new(),
        }
    }

    #[test]
    fn lint_all_equals_lint_one_by_one_in_order() {
        let mut files = fixture_migrations();
        // Files with `squawk-ignore` comments, syntax errors, multi-byte text, an enum swap.
        let extra = [
            "-- squawk-ignore ban-drop-column -- legacy\nALTER TABLE \"a\" DROP COLUMN \"b\";\nDROP TABLE x;\n",
            "-- squawk-ignore nope\nDROP TABLE x;\n-- squawk-ignore\nALTER TABLE t RENAME TO u;\n",
            "SELEC 1;\nALTER TABLE \"é\" ADD COLUMN \"ü\" int NOT NULL;\n",
            "\u{feff}ALTER TABLE \"t\" DROP COLUMN \"c\";\r\nDROP INDEX \"ix\";\r\n",
            "BEGIN;\nALTER TYPE \"E\" RENAME TO \"E_old\";\nCREATE TYPE \"E\" AS ENUM ('a');\nDROP TYPE \"E_old\";\nCOMMIT;\n",
            "",
        ];
        for (i, text) in extra.iter().enumerate() {
            files.push(migration(&format!("extra{i}.sql"), text));
        }
        assert!(files.len() >= 40, "only {} fixture files", files.len());
        let on: RuleLevels = squawk_rules()
            .into_iter()
            .map(|(id, ..)| (id, Some(Severity::Warning)))
            .collect();
        let mut every_on: RuleLevels = on;
        every_on.insert("squawk/ban-drop-column".into(), None);
        let configs = [RuleLevels::new(), every_on];
        let ctxs = [
            LintContext::default(),
            LintContext {
                pg_major: 15,
                assume_in_transaction: false,
            },
        ];
        let refs: Vec<&Migration> = files.iter().collect();
        for config in &configs {
            for ctx in &ctxs {
                let one_by_one: Vec<LintOutput> =
                    refs.iter().map(|m| lint(m, ctx, config)).collect();
                assert!(one_by_one.iter().any(|o| !o.findings.is_empty()));
                assert_eq!(lint_all(&refs, ctx, config), one_by_one);
                // Below the threshold (one thread) and nothing at all.
                assert_eq!(lint_all(&refs[..3], ctx, config), one_by_one[..3]);
                assert!(lint_all(&[], ctx, config).is_empty());
            }
        }
    }

    #[test]
    fn lint_follows_each_calls_context_and_config() {
        // `lint` reuses the rule set it prepared for the previous call only when nothing changed.
        let m = migration("m.sql", "ALTER TABLE \"t\" DROP COLUMN \"c\";\n");
        let level = |severity: Option<Severity>| -> RuleLevels {
            [("squawk/ban-drop-column".to_string(), severity)].into()
        };
        let off = level(None);
        let notice = level(Some(Severity::Notice));
        let ctx = LintContext::default();
        let severities = |config: &RuleLevels| -> Vec<Severity> {
            lint(&m, &ctx, config)
                .findings
                .iter()
                .map(|f| f.severity)
                .collect()
        };
        for _ in 0..2 {
            assert_eq!(severities(&RuleLevels::new()), [Severity::Error]);
            assert_eq!(severities(&off), []);
            assert_eq!(severities(&notice), [Severity::Notice]);
        }
        // squawk's `transaction-nesting` is off in ci-gate; `ban-concurrent-index-creation-in-
        // transaction` depends on the context.
        let concurrent = migration(
            "c.sql",
            "SELECT 1;\nCREATE INDEX CONCURRENTLY i ON t (c);\n",
        );
        let rules = |ctx: &LintContext| -> Vec<String> {
            lint(&concurrent, ctx, &RuleLevels::new())
                .findings
                .into_iter()
                .map(|f| f.rule)
                .collect()
        };
        let autocommit = LintContext {
            pg_major: 16,
            assume_in_transaction: false,
        };
        let in_tx = rules(&ctx);
        assert!(in_tx.contains(&"squawk/ban-concurrent-index-creation-in-transaction".into()));
        assert_ne!(rules(&autocommit), in_tx);
        assert_eq!(rules(&ctx), in_tx);
    }

    #[test]
    fn lint_inputs_are_shared_across_threads() {
        fn sync<T: Sync>() {}
        sync::<LintContext>();
        sync::<RuleLevels>();
        sync::<Migration>();
        sync::<Prepared>();
    }

    #[test]
    fn prisma_files_are_one_transaction_up_to_7_3() {
        use crate::discover::prisma_version::parse;
        assert!(LintContext::for_prisma(16, None).assume_in_transaction);
        let v63 = parse("6.19.0", "package.json");
        let v74 = parse("^7.4.1", "package.json");
        assert!(LintContext::for_prisma(16, v63.as_ref()).assume_in_transaction);
        assert!(!LintContext::for_prisma(16, v74.as_ref()).assume_in_transaction);
    }
}
