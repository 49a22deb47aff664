//! The rule pages published under `docs/rules/` (generated from the `.md` beside each rule and
//! squawk's catalogue), the links the PR comment carries to them, and `ci-gate explain`, which
//! prints the same text.
//!
//! `CI_GATE_UPDATE_DOCS=1 cargo test --test rule_docs` rewrites the pages (and removes pages of
//! rules that no longer exist); without it the test fails when a page is out of date.

#[path = "fixtures/reports/reports.rs"]
mod reports;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ci_gate::check::rules::MIGRATION_FAILS;
use ci_gate::check::{Finding, Severity, Source};
use ci_gate::model::Status;
use ci_gate::report::markdown::{self, MarkdownOptions};
use ci_gate::report::{Report, rule_docs};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir`, relative to the repository root.
fn files_under(dir: &Path, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else if let Ok(rel) = p.strip_prefix(root()) {
            out.insert(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn published_rule_pages_are_up_to_date() {
    let update = std::env::var("CI_GATE_UPDATE_DOCS").is_ok_and(|v| v == "1");
    let pages = rule_docs::pages();
    let expected: BTreeSet<String> = pages.iter().map(|(p, _)| p.clone()).collect();
    let mut stale = Vec::new();
    for (path, text) in &pages {
        let file = root().join(path);
        if update {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::write(&file, text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        } else if std::fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.clone());
        }
    }
    let mut present = BTreeSet::new();
    files_under(&root().join(rule_docs::DOCS_DIR), &mut present);
    for extra in present.difference(&expected) {
        if update {
            std::fs::remove_file(root().join(extra)).unwrap_or_else(|e| panic!("{e}"));
        } else {
            stale.push(format!("{extra} (no such rule)"));
        }
    }
    assert!(
        stale.is_empty(),
        "rule pages out of date: {stale:?}\nrun `CI_GATE_UPDATE_DOCS=1 cargo test --test rule_docs` and commit docs/rules/"
    );
    // Every ci-gate rule's page is the `.md` beside its `.rs`, unchanged.
    for rule in ci_gate::check::ALL_RULES {
        let beside = root()
            .join("src/check/rules")
            .join(format!("{}.md", rule.id.replace('-', "_")));
        let text = std::fs::read_to_string(&beside).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rule_docs::page(rule.id).as_deref(), Some(text.as_str()));
    }
}

/// The files git tracks in this checkout.
fn tracked() -> Option<BTreeSet<String>> {
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(
        out.stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect(),
    )
}

/// Every link target in `md` (inline `](…)` and reference definitions `[x]: …`).
fn links(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in md.lines() {
        if line.starts_with('[')
            && let Some((_, target)) = line.split_once("]: ")
        {
            out.push(target.trim().to_string());
        }
        for (i, _) in line.match_indices("](") {
            let rest = &line[i + 2..];
            out.push(rest[..rest.find(')').unwrap_or(rest.len())].to_string());
        }
    }
    out
}

/// A report with one finding of every rule ci-gate knows (its own and squawk's).
fn every_rule() -> Report {
    let mut row = reports::row("20251201094512_all_rules", Status::Applied, 3);
    row.outcome.traced = true;
    let findings = rule_docs::all_ids()
        .into_iter()
        .map(|id| {
            let mut f = Finding::new(&MIGRATION_FAILS, Source::Static, format!("{id} fired"))
                .severity(Severity::Warning)
                .migration(row.name.clone())
                .file(row.path.clone())
                .at(1, 1);
            f.rule = id;
            f
        })
        .collect();
    reports::report(vec![row], findings, reports::check("pass", "1 applied"))
}

#[test]
fn every_link_in_the_comment_points_at_a_committed_file() {
    let Some(tracked) = tracked() else {
        eprintln!("SKIP: not a git checkout (git ls-files failed)");
        return;
    };
    let prefix = format!("{}/blob/{}/", rule_docs::REPOSITORY, rule_docs::docs_ref());
    let opts = MarkdownOptions {
        max_chars: usize::MAX,
        ..MarkdownOptions::default()
    };
    let rendered = [
        reports::failing(),
        reports::failing_first(),
        reports::untraced_one(),
        reports::allowed(),
        reports::history_300(),
        every_rule(),
    ]
    .map(|r| markdown::render(&r, &opts));
    let mut checked = BTreeSet::new();
    for md in &rendered {
        for link in links(md) {
            let Some(path) = link.strip_prefix(&prefix) else {
                assert!(
                    !link.starts_with(rule_docs::REPOSITORY),
                    "a link into the repository at another ref: {link}"
                );
                continue;
            };
            assert!(
                tracked.contains(path),
                "{link} points at {path}, which is not committed"
            );
            checked.insert(path.to_string());
        }
    }
    // One page per rule (ci-gate's and squawk's) was linked and found.
    assert_eq!(checked.len(), rule_docs::all_ids().len(), "{checked:?}");
}

fn ci_gate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ci-gate"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn explain_prints_the_published_page() {
    for id in ["fails-on-existing-rows", "squawk/ban-drop-column"] {
        let out = ci_gate(&["explain", id]);
        assert!(out.status.success(), "{out:?}");
        let page = std::fs::read_to_string(root().join(format!("docs/rules/{id}.md")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(String::from_utf8_lossy(&out.stdout), page);
    }
    let squawk = String::from_utf8_lossy(&ci_gate(&["explain", "squawk/ban-drop-column"]).stdout)
        .into_owned();
    assert!(squawk.contains("This rule is squawk's"), "{squawk}");
}

#[test]
fn explain_suggests_the_closest_rule_for_a_typo() {
    let out = ci_gate(&["explain", "fails-on-existing-row"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error: unknown rule `fails-on-existing-row`"),
        "{err}"
    );
    assert!(
        err.contains("hint: did you mean `fails-on-existing-rows`? (`ci-gate explain fails-on-existing-rows`)"),
        "{err}"
    );
    let out = ci_gate(&["explain", "ban-drop-column"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did you mean `squawk/ban-drop-column`?")
    );
    let out = ci_gate(&["explain", "qqqqqqqqqqqq"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `ci-gate rules`"));
}
