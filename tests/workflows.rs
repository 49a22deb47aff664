//! The workflows (.github/workflows, examples/workflows) and action.yml: valid against GitHub's
//! schemas (check-jsonschema's vendored copies), clean under zizmor with the committed policy
//! (zizmor.yml), and every action pinned by commit SHA with its tag in a comment.
//!
//! check-jsonschema and zizmor come from PyPI (`pip install check-jsonschema zizmor`; .ci/run
//! installs them). Without them the tool-based tests print `SKIP:` and pass, unless
//! `CI_GATE_REQUIRE_TOOLS=1` (set by .ci/run and ci.yml), in which case they fail.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn repo_workflows() -> Vec<PathBuf> {
    let files = yaml_files(".github/workflows");
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for needed in ["ci.yml", "release.yml"] {
        assert!(names.contains(&needed.to_string()), "{needed} in {names:?}");
    }
    files
}

fn all_checked() -> Vec<PathBuf> {
    let mut files = repo_workflows();
    files.extend(yaml_files("examples/workflows"));
    files.push(root().join("action.yml"));
    files
}

/// Whether `tool` runs; `false` after saying `SKIP:` (or a panic when tools are required).
fn have(tool: &str) -> bool {
    if Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return true;
    }
    assert!(
        std::env::var("CI_GATE_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "{tool} is required (CI_GATE_REQUIRE_TOOLS=1) but not installed: pip install {tool}"
    );
    eprintln!("SKIP: {tool} not installed (pip install {tool}); workflows not checked with it");
    false
}

#[test]
fn workflows_and_the_action_validate_against_githubs_schemas() {
    if !have("check-jsonschema") {
        return;
    }
    for file in all_checked() {
        let schema = if file.ends_with("action.yml") {
            "vendor.github-actions"
        } else {
            "vendor.github-workflows"
        };
        let out = Command::new("check-jsonschema")
            .args(["--builtin-schema", schema])
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "{} against {schema}:\n{}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn workflows_and_the_action_are_clean_under_zizmor() {
    if !have("zizmor") {
        return;
    }
    for file in all_checked() {
        // One file at a time: zizmor only treats a directory as workflows when it is a
        // repository's .github/workflows.
        let out = Command::new("zizmor")
            .arg("--offline")
            .arg("--config")
            .arg(root().join("zizmor.yml"))
            .arg(&file)
            .current_dir(root())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("No findings"),
            "zizmor {}:\n{stdout}{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `uses:` values with their trailing comments, from the raw text (serde drops comments).
fn uses_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim_start().trim_start_matches("- ").trim_start();
            let value = rest.strip_prefix("uses:")?.trim();
            let (r, comment) = value.split_once('#').unwrap_or((value, ""));
            Some((r.trim().to_string(), comment.trim().to_string()))
        })
        .collect()
}

#[test]
fn every_action_is_pinned_by_sha_with_its_tag_in_a_comment() {
    let mut seen: std::collections::BTreeMap<String, String> = Default::default();
    let mut count = 0;
    for file in all_checked() {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{e}"));
        for (reference, comment) in uses_lines(&text) {
            if reference.starts_with("./") || reference.starts_with("docker://") {
                continue;
            }
            // Our own action in the examples: users pin our major tag or our SHA.
            if reference.starts_with("OWNER/ci-gate@") {
                assert_eq!(reference, "OWNER/ci-gate@v1", "{}", file.display());
                continue;
            }
            count += 1;
            let (action, sha) = reference
                .split_once('@')
                .unwrap_or_else(|| panic!("{reference} in {} has no ref", file.display()));
            assert!(
                sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
                "{action} in {} is not pinned by a full commit SHA: {sha}",
                file.display()
            );
            let tag_like = comment
                .trim_start_matches('v')
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            assert!(
                tag_like,
                "{action}@{sha} in {} needs its tag in a comment (`# v1.2.3`), got `{comment}`",
                file.display()
            );
            if let Some(before) = seen.insert(sha.to_string(), comment.clone()) {
                assert_eq!(
                    before,
                    comment,
                    "{sha} is named by two different tags ({})",
                    file.display()
                );
            }
        }
    }
    assert!(count >= 10, "only {count} pinned references found");
}

#[test]
fn repository_workflows_start_with_no_permissions_and_never_persist_credentials() {
    for file in repo_workflows() {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{e}"));
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            doc["permissions"],
            serde_yaml::Value::Mapping(Default::default()),
            "{}: top-level `permissions: {{}}`",
            file.display()
        );
        let jobs = doc["jobs"].as_mapping().cloned().unwrap_or_default();
        for (name, job) in jobs {
            assert!(
                job["permissions"].is_mapping(),
                "{}: job {name:?} states its permissions",
                file.display()
            );
            for step in job["steps"].as_sequence().cloned().unwrap_or_default() {
                if step["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("actions/checkout@"))
                {
                    assert_eq!(
                        step["with"]["persist-credentials"],
                        serde_yaml::Value::Bool(false),
                        "{}: job {name:?}",
                        file.display()
                    );
                }
            }
        }
    }
}
