//! The Markdown report (PR comment and job summary): snapshots of fixed reports, the size budget,
//! escaping, and the comment rendered to HTML by a CommonMark + GFM-tables renderer
//! (markdown-it-py, installed into a venv under the target dir when python3 and PyPI are there).

#[path = "fixtures/reports/reports.rs"]
mod reports;

use std::path::PathBuf;
use std::process::Command;

use ci_gate::report::markdown::{self, DEFAULT_MAX_CHARS, MarkdownOptions};
use reports::check_markdown;

fn opts() -> MarkdownOptions {
    MarkdownOptions {
        key: "PR check/prisma/migrations".into(),
        max_chars: DEFAULT_MAX_CHARS,
        summary_link: Some("https://github.com/acme/app/actions/runs/42".into()),
    }
}

fn render(r: &ci_gate::report::Report) -> String {
    let md = markdown::render(r, &opts());
    if let Err(e) = check_markdown(&md) {
        panic!("invalid Markdown: {e}\n{md}");
    }
    md
}

/// The version string changes with every release; keep snapshots stable.
fn stable(md: &str) -> String {
    md.replace(
        &format!("ci-gate {}", env!("CARGO_PKG_VERSION")),
        "ci-gate VERSION",
    )
}

#[test]
fn markdown_pass_is_one_line_all_clear() {
    let md = render(&reports::passing());
    assert!(md.starts_with("<!-- ci-gate:v1 key=PR_check/prisma/migrations -->\n"));
    assert!(md.contains("### ✅ ci-gate: pass — 0 errors, 0 warnings"));
    assert!(md.contains("All clear: 2 migrations applied from scratch, no findings."));
    assert!(!md.contains("| Migration |"), "no table when clean");
    assert_eq!(
        md.matches("<details>").count(),
        1,
        "only how it was checked"
    );
    insta::assert_snapshot!(stable(&md));
}

#[test]
fn markdown_fail() {
    let md = render(&reports::failing());
    assert!(md.contains("### ❌ ci-gate: fail — 3 errors, 1 warning"));
    // One row per new or changed migration: the unchanged one is not listed.
    assert!(!md.contains("| `20240205101500_init`"));
    assert!(md.contains("Not listed: 1 unchanged from the base."));
    assert!(md.contains("| ❌ **error** | `20240302143000_post_permalink` (edited) |"));
    // Never a tick on a migration with an error; the skipped one says why it was not observed.
    assert_rows_truthful(&md);
    assert!(md.contains(
        "| ⏸️ not traced | `20240501000000_after` | – | – | not applied: `20240415120000_post_published_at` failed before it |"
    ));
    // No green tick above the red verdict: passed checks are named, not ticked.
    assert!(md.contains("passed: drift"), "{md}");
    assert!(!md.contains("✅"), "{md}");
    // Internal statistics are collapsed, after the findings.
    let stats = md.find("static lint: squawk alone").unwrap_or(0);
    assert!(
        stats > md.rfind("<details><summary>⚠️").unwrap_or(usize::MAX),
        "{md}"
    );
    assert!(md.contains("ACCESS EXCLUSIVE on public.\"Post\""));
    assert!(md.contains("```sql\nUPDATE \"Post\""));
    assert!(md.contains("**Fix:** fix the statement"));
    assert!(md.contains("base `origin/main` at `3f2a9c1`"));
    insta::assert_snapshot!(stable(&md));
}

#[test]
fn markdown_allowed_findings_show_their_reasons() {
    let md = render(&reports::allowed());
    assert!(md.contains("### ✅ ci-gate: pass — 0 errors, 1 warning, 2 allowed"));
    assert!(md.contains("☑️ 2 allowed findings"));
    assert!(md.contains("**allowed:** column unused since v2.3, see \\#812"));
    // Escaping: pipes, HTML and ampersands in text.
    assert!(md.contains(": VACUUM | ANALYZE &lt;in&gt; a transaction &amp; more</summary>"));
    assert!(!md.contains("<in>"));
    // Table cells: pipes escaped, HTML escaped; each row leads with its verdict.
    assert!(
        md.contains("| ⚠️ warning | `20250612080000_labels_order` | – | 5 ms | [`non-transactional-statement`][non-transactional-statement]: VACUUM"),
        "{md}"
    );
    assert!(
        md.contains(": VACUUM \\| ANALYZE &lt;in&gt; a transaction &amp; more |"),
        "{md}"
    );
    assert!(
        md.contains("| ☑️ allowed | `20250611170422_drop_legacy_name` |"),
        "{md}"
    );
    assert_rows_truthful(&md);
    insta::assert_snapshot!(stable(&md));
}

#[test]
fn markdown_long_history_lists_only_flagged_rows() {
    let md = render(&reports::long_history());
    assert_eq!(md.matches(" | `2024").count(), 1, "{md}");
    assert!(md.contains("Not listed: 39 migrations with no findings."));
    insta::assert_snapshot!(stable(&md));
}

#[test]
fn markdown_oversized_is_cut_and_stays_valid() {
    let r = reports::oversized();
    let full = markdown::render(
        &r,
        &MarkdownOptions {
            max_chars: usize::MAX,
            ..opts()
        },
    );
    check_markdown(&full).unwrap_or_else(|e| panic!("{e}"));
    assert!(full.len() > 4 * DEFAULT_MAX_CHARS, "fixture too small");

    let md = render(&r);
    assert!(md.len() <= DEFAULT_MAX_CHARS, "{} bytes", md.len());
    assert!(md.chars().count() <= 65_536);
    assert!(md.starts_with("<!-- ci-gate:v1 key="));
    assert!(md.contains("### ❌ ci-gate: fail — 134 errors, 266 warnings, 1 allowed"));
    // Details are cut before rows (the allowed finding, the least important block, first), then
    // rows from the least severe: every error row is still there.
    let rows = md.matches(" | `2024").count();
    assert!((134..400).contains(&rows), "{rows} rows");
    assert_eq!(md.matches("| ❌ **error** | `2024").count(), 134);
    assert!(md.contains("more migrations not shown here; see the [job summary](https://github.com/acme/app/actions/runs/42)."));
    assert!(md.contains("400 more findings not shown here; see the [job summary]"));
    assert!(md.contains("… 1 more allowed finding not shown here"));
    assert!(!md.contains("<details><summary>❌"));

    // A smaller budget cuts rows too, clean-or-not from the end, and still closes everything.
    let small = markdown::render(
        &r,
        &MarkdownOptions {
            max_chars: 6_000,
            ..opts()
        },
    );
    check_markdown(&small).unwrap_or_else(|e| panic!("{e}"));
    assert!(small.len() <= 6_000, "{}", small.len());
    assert!(small.contains("more migrations not shown here; see the [job summary]"));
    insta::assert_snapshot!(stable(&small));

    // An absurd budget still gives the verdict.
    let tiny = markdown::render(
        &r,
        &MarkdownOptions {
            max_chars: 10,
            ..opts()
        },
    );
    assert!(tiny.contains("The report is too large for this comment"));
    check_markdown(&tiny).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn markdown_cut_keeps_the_worst_details_first() {
    let r = reports::oversized();
    let md = markdown::render(
        &r,
        &MarkdownOptions {
            max_chars: 120_000,
            ..opts()
        },
    );
    check_markdown(&md).unwrap_or_else(|e| panic!("{e}"));
    assert!(md.len() <= 120_000);
    // The first details kept are errors (the report is sorted worst first).
    let first = md
        .find("<details><summary>")
        .unwrap_or_else(|| panic!("no details kept:\n{md}"));
    assert!(
        md[first..].starts_with("<details><summary>❌"),
        "{}",
        &md[first..first + 80]
    );
    assert!(md.contains("more findings not shown here"));
}

/// Every table row leads with its verdict, and no row with an error carries a tick.
fn assert_rows_truthful(md: &str) {
    for line in md
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Verdict"))
    {
        let verdict = line.split(" | ").next().unwrap_or_default();
        assert!(
            [
                "| ❌ **error**",
                "| ⚠️ warning",
                "| ⏸️ not traced",
                "| ☑️ allowed",
                "| ✅ clean"
            ]
            .contains(&verdict),
            "{line}"
        );
        if line.contains("[`migration-fails`]") || line.contains("[`fails-on-existing-rows`]") {
            assert!(
                verdict == "| ❌ **error**" || verdict == "| ☑️ allowed",
                "{line}"
            );
        }
    }
}

#[test]
fn markdown_clean_with_base_is_short_and_reassuring() {
    let md = render(&reports::clean_with_base());
    assert!(md.contains("### ✅ ci-gate: pass — 0 errors, 0 warnings"));
    assert!(md.contains(
        "All clear: 3 new migrations applied on the base and traced on seeded rows, no findings."
    ));
    assert!(md.contains("base `origin/main` at `3f2a9c1` · 3 new or changed of 15 migrations"));
    assert!(!md.contains("| Verdict |"), "no table when clean");
    assert!(md.lines().count() < 25, "{md}");
    insta::assert_snapshot!(stable(&md));
}

#[test]
fn markdown_failing_first_migration_leads_and_the_rest_say_not_traced() {
    let md = render(&reports::failing_first());
    assert_rows_truthful(&md);
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Verdict"))
        .collect();
    assert_eq!(rows.len(), 3, "{md}");
    assert!(rows[0].starts_with("| ❌ **error** | `20251201094512_invoice_tax_rate` | ACCESS EXCLUSIVE on public.\"Invoice\" | 3 ms | [`fails-on-existing-rows`][fails-on-existing-rows]: column \"taxRate\""), "{}", rows[0]);
    // The link's target is defined once, at the end, pointing at the rule's page.
    assert!(md.contains("\n[fails-on-existing-rows]: https://"), "{md}");
    assert!(
        md.trim_end()
            .ends_with("/docs/rules/fails-on-existing-rows.md"),
        "{md}"
    );
    for r in &rows[1..] {
        assert!(r.starts_with("| ⏸️ not traced |"), "{r}");
        assert!(
            r.contains("the trace stopped after `20251201094512_invoice_tax_rate`"),
            "{r}"
        );
        assert!(!r.contains('✅'));
    }
    assert!(
        md.contains(
            "**Checks:** ❌ trace on seeded rows: 1 of 3 new migrations traced, `20251201094512_invoice_tax_rate` failed on the seeded rows, 2 not traced"
        )
    );
    assert!(md.contains("passed: from scratch, incremental, drift, history"));
    assert!(
        !md.contains("✅"),
        "no green tick above a red verdict: {md}"
    );
    insta::assert_snapshot!(stable(&md));
}

#[test]
fn markdown_a_migration_the_trace_did_not_observe_is_never_clean() {
    let md = render(&reports::untraced_one());
    assert_rows_truthful(&md);
    assert!(md.contains("| ⏸️ not traced | `20251202110307_region_index` | – | – | the trace stopped after `20251201094512_backfill_region` failed on the seeded rows |"), "{md}");
    assert!(md.contains("— allowed: production has no organizations yet"));
    assert!(!md.contains("All clear"));
    insta::assert_snapshot!(stable(&md));
}

#[test]
fn markdown_pull_request_on_a_300_migration_history() {
    let md = render(&reports::history_300());
    assert!(md.contains("4 new or changed of 300 migrations"));
    assert!(md.contains("Not listed: 296 unchanged from the base."));
    assert_eq!(
        md.matches("\n| ").count(),
        1 + 4,
        "header and four rows: {md}"
    );
    assert!(md.contains("(also `missing-lock-timeout`)"));
    insta::assert_snapshot!(stable(&md));
}

// ---- HTML rendering (CommonMark + GFM tables) ----

/// A python with markdown-it-py 4.0.0: a venv under the target dir, created on first use.
fn markdown_it_python() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("markdown-it-venv");
    let python = venv.join("bin/python");
    let ok = |py: &PathBuf| {
        Command::new(py)
            .args([
                "-c",
                "import markdown_it, sys; sys.exit(0 if markdown_it.__version__ == '4.0.0' else 1)",
            ])
            .status()
            .is_ok_and(|s| s.success())
    };
    if ok(&python) {
        return Some(python);
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        return None;
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "markdown-it-py==4.0.0",
        ])
        .status()
        .is_ok_and(|s| s.success());
    (installed && ok(&python)).then_some(python)
}

const RENDER_PY: &str = r#"
import sys
from markdown_it import MarkdownIt
md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
sys.stdout.write(md.render(sys.stdin.read()))
"#;

fn to_html(python: &PathBuf, md: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(python)
        .args(["-c", RENDER_PY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python: {e}"));
    child
        .stdin
        .take()
        .unwrap_or_else(|| panic!("stdin"))
        .write_all(md.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn markdown_fail_renders_to_html_with_table_verdict_and_collapsed_details() {
    let Some(python) = markdown_it_python() else {
        eprintln!("skipped: no python3 with markdown-it-py (venv + pip install failed)");
        return;
    };
    let md = render(&reports::failing());
    let html = to_html(&python, &md);
    // The marker is an invisible HTML comment, the verdict a heading.
    assert!(html.starts_with("<!-- ci-gate:v1 key="), "{html}");
    assert!(html.contains("<h3>❌ ci-gate: fail — 3 errors, 1 warning</h3>"));
    // The table is a real table, with a header and one row per new or changed migration.
    assert!(html.contains("<table>"));
    assert!(html.contains("<th>Migration</th>"));
    assert_eq!(html.matches("<tr>").count(), 1 + 4, "{html}");
    // Details are collapsed, and the SQL inside them is a code block.
    assert_eq!(html.matches("<details>").count(), 5);
    assert!(html.contains("<pre><code class=\"language-sql\">UPDATE &quot;Post&quot;"));
    // Nothing escaped leaks as raw HTML.
    assert!(!html.contains("<in>"));
    insta::assert_snapshot!(stable(&html));

    let allowed = to_html(&python, &render(&reports::allowed()));
    assert!(allowed.contains("VACUUM | ANALYZE &lt;in&gt; a transaction &amp; more"));
    // Escaped pipes do not split cells: every body row has exactly 5 cells.
    for row in allowed.split("<tr>").skip(2) {
        assert_eq!(row.matches("<td").count(), 5, "{row}");
    }
    // The HTML the reviewer sees, for a look by eye (tests/snapshots/…html.snap holds it too).
    if let Ok(dir) = std::env::var("CI_GATE_HTML_OUT") {
        let page = |body: &str| {
            format!(
                "<!doctype html><meta charset=utf-8><link rel=stylesheet href=github.css><body class=markdown-body>{body}</body>"
            )
        };
        let first = to_html(&python, &render(&reports::failing_first()));
        std::fs::write(format!("{dir}/failing_first.html"), page(&first)).ok();
        std::fs::write(format!("{dir}/failing.html"), page(&html)).ok();
    }
    assert!(
        allowed.contains("VACUUM | ANALYZE &lt;in&gt; a transaction &amp; more</td>"),
        "{allowed}"
    );
}
