//! The rule pages: every rule's documentation as the repository publishes it under
//! `docs/rules/` (generated from the `.md` beside each rule in `src/check/rules/` and from
//! squawk's catalogue; `tests/rule_docs.rs` checks the committed copies), what
//! `ci-gate explain` prints (the same text), and the link each finding carries to its page.
//!
//! Links point at [`REPOSITORY`] at [`docs_ref`]: the release tag when this binary is a release
//! build, else the default branch.

use crate::check::{ALL_RULES, find_rule, squawk};

/// Where the pages live in the repository.
pub const DOCS_DIR: &str = "docs/rules";

/// The repository the links point into: `CI_GATE_REPOSITORY_URL` at build time (the release
/// workflow sets it to the repository it runs in), else the placeholder the README uses.
pub const REPOSITORY: &str = match option_env!("CI_GATE_REPOSITORY_URL") {
    Some(url) => url,
    None => "https://github.com/OWNER/ci-gate",
};

/// The default branch, which links of a build that is not a release point at.
pub const DEFAULT_BRANCH: &str = "main";

/// The git ref links point at: `v<crate version>` when this build is a release
/// (`release/build.sh` sets `CI_GATE_RELEASE_TAG` when it builds the commit tagged with the
/// crate's version), else [`DEFAULT_BRANCH`].
pub fn docs_ref() -> String {
    let tag = format!("v{}", env!("CARGO_PKG_VERSION"));
    match option_env!("CI_GATE_RELEASE_TAG") {
        Some(t) if t == tag => tag,
        _ => DEFAULT_BRANCH.to_string(),
    }
}

/// Credit at the foot of every squawk rule's page.
const SQUAWK_CREDIT: &str = "\n\n---\n\nThis rule is squawk's. [squawk](https://github.com/sbdchd/squawk) \
     (squawk-linter, MIT OR Apache-2.0, by its authors; documentation at \
     <https://squawkhq.com>) runs inside ci-gate as a library; its rules keep their names as \
     `squawk/<name>`. ci-gate adds what it observes on a real server, and turns off by default \
     the rules that fire on nearly every file Prisma generates (`ci-gate rules` lists them).\n";

/// The page of rule `id` (a ci-gate rule or `squawk/<name>`), as published and as
/// `ci-gate explain` prints it; `None` for an unknown id.
pub fn page(id: &str) -> Option<String> {
    if let Some(rule) = find_rule(id) {
        return Some(rule.doc.to_string());
    }
    let canonical = squawk::squawk_rules()
        .into_iter()
        .any(|(squawk_id, ..)| squawk_id == id);
    if !canonical {
        return None;
    }
    squawk::explain(id).map(|doc| format!("{}{SQUAWK_CREDIT}", doc.trim_end()))
}

/// What `ci-gate explain ID` prints: the page, or for an alias squawk accepts, what it stands
/// for.
pub fn explain(id: &str) -> Option<String> {
    page(id).or_else(|| squawk::explain(id))
}

/// The page's path in the repository (`docs/rules/<id>.md`; squawk rules under
/// `docs/rules/squawk/`), for a rule that has one.
pub fn path(id: &str) -> Option<String> {
    page(id).map(|_| format!("{DOCS_DIR}/{id}.md"))
}

/// The link to rule `id`'s page, for a rule that has one.
pub fn url(id: &str) -> Option<String> {
    path(id).map(|p| format!("{REPOSITORY}/blob/{}/{p}", docs_ref()))
}

/// Every id `explain` knows: ci-gate's rules, then squawk's.
pub fn all_ids() -> Vec<String> {
    ALL_RULES
        .iter()
        .map(|r| r.id.to_string())
        .chain(squawk::squawk_rules().into_iter().map(|(id, ..)| id))
        .collect()
}

/// The known id closest to a mistyped `id`, when one is close enough to be what was meant.
pub fn suggest(id: &str) -> Option<String> {
    let typed = id.trim().to_lowercase();
    let mut best: Option<(f64, String)> = None;
    for known in all_ids() {
        // Also compare without the `squawk/` prefix, which is easy to forget.
        let bare = known.strip_prefix(squawk::PREFIX).unwrap_or(&known);
        let score = strsim::jaro_winkler(&typed, &known).max(strsim::jaro_winkler(&typed, bare));
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, known));
        }
    }
    best.filter(|(score, _)| *score >= 0.85).map(|(_, id)| id)
}

/// Every published file: (path in the repository, contents): one page per rule and an index.
pub fn pages() -> Vec<(String, String)> {
    let mut out = vec![(format!("{DOCS_DIR}/README.md"), index())];
    for id in all_ids() {
        if let (Some(path), Some(text)) = (path(&id), page(&id)) {
            out.push((path, text));
        }
    }
    out
}

/// `docs/rules/README.md`: every rule with its category, default and one line, linked.
fn index() -> String {
    let mut out = String::from(
        "# Rules\n\n\
         Generated from the documentation beside each rule (`src/check/rules/<id>.md`) and from \
         squawk's catalogue: do not edit by hand; `CI_GATE_UPDATE_DOCS=1 cargo test --test \
         rule_docs` rewrites these pages, and the same test fails when they are out of date. \
         `ci-gate explain ID` prints the same text.\n\n\
         ## ci-gate's rules\n\n| rule | category | default | what it finds |\n|---|---|---|---|\n",
    );
    for r in ALL_RULES {
        out.push_str(&format!(
            "| [`{id}`]({id}.md) | {} | {} | {} |\n",
            r.category,
            r.default_severity,
            r.summary.replace('|', "\\|"),
            id = r.id
        ));
    }
    out.push_str(
        "\n## squawk's rules\n\nStatic lint by [squawk](https://github.com/sbdchd/squawk) \
         (squawk-linter, MIT OR Apache-2.0), run as a library and reported as `squawk/<name>`; \
         each page credits it and links to squawk's own documentation.\n\n\
         | rule | default | what it finds |\n|---|---|---|\n",
    );
    for (id, summary, severity, on) in squawk::squawk_rules() {
        let default = if on {
            severity.to_string()
        } else {
            "off".to_string()
        };
        out.push_str(&format!(
            "| [`{id}`]({id}.md) | {default} | {} |\n",
            summary.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_a_page_and_a_link() {
        for id in all_ids() {
            assert!(page(&id).is_some(), "{id} has no page");
            let url = url(&id).unwrap_or_default();
            assert!(url.ends_with(&format!("/{DOCS_DIR}/{id}.md")), "{url}");
        }
        assert!(page("no-such-rule").is_none());
        assert!(url("squawk/no-such-rule").is_none());
    }

    #[test]
    fn squawk_pages_credit_squawk() {
        let p = page("squawk/ban-drop-column").unwrap_or_default();
        assert!(p.starts_with("# squawk/ban-drop-column"), "{p}");
        assert!(p.contains("https://github.com/sbdchd/squawk"));
    }

    #[test]
    fn typos_get_the_closest_id() {
        assert_eq!(suggest("drop-column").as_deref(), Some("drops-column"));
        assert_eq!(
            suggest("migration-fail").as_deref(),
            Some("migration-fails")
        );
        assert_eq!(
            suggest("ban-drop-column").as_deref(),
            Some("squawk/ban-drop-column")
        );
        assert_eq!(suggest("zzzzzzzz"), None);
    }

    #[test]
    fn links_point_at_main_unless_a_release_build() {
        let r = docs_ref();
        assert!(
            r == DEFAULT_BRANCH || r == format!("v{}", env!("CARGO_PKG_VERSION")),
            "{r}"
        );
    }
}
