//! The stages depend on each other in one direction only (ARCHITECTURE.md, "Layers"): this test
//! reads every `crate::…` path in `src/` and fails when a module reaches a module it must not
//! (a stage reaching a later one, a renderer reaching past the check stage into the runs, anything
//! below the command line reaching `cli`).

use std::collections::BTreeSet;
use std::path::Path;

/// (module, modules it must not name). Modules not listed may name anything.
const FORBIDDEN: &[(&str, &[&str])] = &[
    // Shared vocabulary and helpers: below every stage.
    ("model", &["*"]),
    ("fmt", &["*"]),
    ("sql", &["*"]),
    // Progress on stderr: the pipeline names phases, the command line shows them.
    ("progress", &["*"]),
    // The stages, in pipeline order.
    (
        "discover",
        &[
            "plan",
            "provision",
            "run",
            "live",
            "inspect",
            "check",
            "report",
            "settings",
            "config",
            "pipeline",
            "commands",
            "cli",
        ],
    ),
    (
        "plan",
        &[
            "provision",
            "run",
            "live",
            "inspect",
            "check",
            "report",
            "settings",
            "config",
            "pipeline",
            "commands",
            "cli",
        ],
    ),
    (
        "provision",
        &[
            "discover", "plan", "run", "live", "check", "report", "settings", "config", "pipeline",
            "commands", "cli",
        ],
    ),
    (
        "inspect",
        &[
            "discover", "plan", "run", "live", "check", "report", "settings", "config", "pipeline",
            "commands", "cli",
        ],
    ),
    (
        "run",
        &[
            "report", "settings", "config", "pipeline", "commands", "cli",
        ],
    ),
    (
        "live",
        &[
            "report", "settings", "config", "pipeline", "commands", "cli",
        ],
    ),
    (
        "check",
        &[
            "report", "settings", "config", "pipeline", "commands", "cli",
        ],
    ),
    // Renderers read what the check stage decided, never the runs behind it.
    (
        "report",
        &[
            "run",
            "plan",
            "provision",
            "inspect",
            "live",
            "settings",
            "config",
            "pipeline",
            "commands",
            "cli",
        ],
    ),
    // Configuration and orchestration sit above the stages; only `commands` knows the CLI.
    (
        "config",
        &["run", "live", "report", "pipeline", "commands", "cli"],
    ),
    (
        "settings",
        &["run", "live", "report", "pipeline", "commands", "cli"],
    ),
    ("pipeline", &["commands", "cli"]),
    (
        "git",
        &[
            "run", "check", "report", "settings", "config", "pipeline", "commands", "cli",
        ],
    ),
    (
        "error",
        &["run", "check", "report", "pipeline", "commands", "cli"],
    ),
];

/// The top-level module a source file belongs to.
fn module_of(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    first
        .unwrap_or_default()
        .trim_end_matches(".rs")
        .to_string()
}

/// Every `crate::name` in the code (comments and doc comments skipped).
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = after;
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_stage_reaches_where_it_must_not() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 20,
        "found only {} files under src/",
        files.len()
    );
    let mut violations = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap_or(file);
        let module = module_of(rel);
        let Some((_, forbidden)) = FORBIDDEN.iter().find(|(m, _)| *m == module) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for target in crate_refs(&text) {
            if target == module {
                continue;
            }
            if forbidden.contains(&"*") || forbidden.contains(&target.as_str()) {
                violations.push(format!("{} ({module}) → crate::{target}", rel.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "stages reaching where they must not:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_layer_check_sees_paths_inside_code_and_skips_comments() {
    let refs = crate_refs(
        "use crate::report::Report; // crate::cli\nlet x = crate::run::trace::f();\n/// crate::pipeline\n",
    );
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        vec!["report".to_string(), "run".to_string()]
    );
}
