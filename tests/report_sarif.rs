//! SARIF 2.1.0: the structure the schema and GitHub code scanning require (hand-written
//! assertions), validation against the vendored OASIS schema with Python's `jsonschema` when it is
//! installed, stable fingerprints, suppressions for allowed findings, and a snapshot.

#[path = "fixtures/reports/reports.rs"]
mod reports;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;

use ci_gate::check::find_rule;
use ci_gate::report::{Report, sarif};
use serde_json::Value;

fn log(r: &Report) -> Value {
    let text = sarif::render(r);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("SARIF is not JSON: {e}\n{text}"))
}

fn s<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"))
}

/// The properties the SARIF 2.1.0 schema requires (and GitHub's upload checks), by hand.
fn assert_structure(v: &Value, r: &Report) {
    assert_eq!(v["version"], "2.1.0");
    assert!(s(&v["$schema"], "$schema").contains("sarif-2.1.0"));
    let runs = v["runs"].as_array().unwrap_or_else(|| panic!("runs"));
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "ci-gate");
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    let rules = driver["rules"]
        .as_array()
        .unwrap_or_else(|| panic!("rules"));
    let ids: Vec<&str> = rules.iter().map(|r| s(&r["id"], "rule id")).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "one rule entry per rule id: {ids:?}"
    );
    let used: HashSet<&str> = r.findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(unique, used, "exactly the rule ids used");
    for rule in rules {
        let id = s(&rule["id"], "id");
        assert!(!s(&rule["shortDescription"]["text"], "shortDescription").is_empty());
        assert!(!s(&rule["name"], "name").contains('-'));
        if let Some(known) = find_rule(id) {
            assert_eq!(rule["shortDescription"]["text"], known.summary);
            assert_eq!(rule["help"]["markdown"], known.doc);
            assert_eq!(
                rule["help"]["text"], known.doc,
                "help.text is required with help"
            );
            assert!(!s(&rule["fullDescription"]["text"], "fullDescription").is_empty());
        }
    }
    let results = run["results"]
        .as_array()
        .unwrap_or_else(|| panic!("results"));
    assert_eq!(results.len(), r.findings.len());
    for (res, f) in results.iter().zip(&r.findings) {
        assert_eq!(res["ruleId"], f.rule.as_str());
        let idx = res["ruleIndex"]
            .as_u64()
            .unwrap_or_else(|| panic!("ruleIndex")) as usize;
        assert_eq!(rules[idx]["id"], f.rule.as_str());
        assert!(["error", "warning", "note"].contains(&s(&res["level"], "level")));
        assert!(s(&res["message"]["text"], "message").starts_with(&f.message));
        let locations = res["locations"]
            .as_array()
            .unwrap_or_else(|| panic!("locations"));
        assert_eq!(
            locations.len(),
            1,
            "code scanning wants a location on every result"
        );
        let phys = &locations[0]["physicalLocation"];
        let uri = s(&phys["artifactLocation"]["uri"], "uri");
        assert!(
            !uri.starts_with('/') && !uri.contains("://") && !uri.starts_with("file:"),
            "repo-relative: {uri}"
        );
        assert_eq!(phys["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        if let Some(file) = &f.file {
            assert_eq!(uri, file);
        }
        match f.line {
            Some(line) => {
                assert_eq!(phys["region"]["startLine"].as_u64(), Some(line as u64));
                if let Some(col) = f.column {
                    assert_eq!(phys["region"]["startColumn"].as_u64(), Some(col as u64));
                }
            }
            None => assert!(phys.get("region").is_none()),
        }
        let fp = s(
            &res["partialFingerprints"][sarif::FINGERPRINT_KEY],
            "fingerprint",
        );
        assert_eq!(fp.len(), 64);
        match f.allowed {
            true => {
                let sup = &res["suppressions"][0];
                assert_eq!(sup["kind"], "inSource");
                assert_eq!(sup["status"], "accepted");
                assert_eq!(
                    sup["justification"],
                    f.allow_reason.as_deref().unwrap_or("")
                );
            }
            false => assert!(res.get("suppressions").is_none()),
        }
    }
}

#[test]
fn sarif_structure_for_every_fixture() {
    for r in [
        reports::passing(),
        reports::failing(),
        reports::allowed(),
        reports::long_history(),
        reports::oversized(),
    ] {
        assert_structure(&log(&r), &r);
    }
}

#[test]
fn sarif_levels_and_unknown_rules() {
    let r = reports::allowed();
    let v = log(&r);
    let results = v["runs"][0]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let levels: Vec<&str> = results.iter().map(|x| s(&x["level"], "level")).collect();
    assert_eq!(levels, ["error", "warning", "warning"]);
    // `drops-column` is not in the registry yet: a minimal rule entry, still valid.
    let rules = v["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let drop = rules
        .iter()
        .find(|r| r["id"] == "drops-column")
        .unwrap_or_else(|| panic!("rule entry"));
    assert_eq!(drop["name"], "DropsColumn");
}

#[test]
fn sarif_fingerprints_survive_line_moves_and_differ_between_findings() {
    let a = reports::failing();
    let mut b = reports::failing();
    for f in &mut b.findings {
        f.line = f.line.map(|l| l + 10);
        f.message = f.message.replace("line 7", "line 17");
    }
    let fps = |r: &Report| -> Vec<String> {
        log(r)["runs"][0]["results"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|x| s(&x["partialFingerprints"][sarif::FINGERPRINT_KEY], "fp").to_string())
            .collect()
    };
    let (fa, fb) = (fps(&a), fps(&b));
    assert_eq!(fa, fb, "stable across runs and line moves");
    let unique: HashSet<&String> = fa.iter().collect();
    assert_eq!(
        unique.len(),
        fa.len(),
        "distinct findings, distinct fingerprints"
    );
}

#[test]
fn sarif_finding_without_file_points_at_its_migration_or_the_directory() {
    let mut r = reports::failing();
    r.findings[0].file = None;
    r.findings[0].line = None;
    let v = log(&r);
    let res = &v["runs"][0]["results"][0];
    let uri = s(
        &res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "uri",
    );
    assert!(uri.starts_with("prisma/migrations"), "{uri}");
}

#[test]
fn sarif_snapshot() {
    // Rule texts and the version live elsewhere (rule docs, Cargo.toml): placeholders keep this
    // snapshot about the SARIF shape; `sarif_structure_for_every_fixture` checks the texts.
    let mut v = log(&reports::failing());
    if let Some(rules) = v["runs"][0]["tool"]["driver"]["rules"].as_array_mut() {
        for rule in rules {
            let id = rule["id"].as_str().unwrap_or_default().to_string();
            for (key, sub) in [
                ("shortDescription", "text"),
                ("fullDescription", "text"),
                ("help", "text"),
                ("help", "markdown"),
            ] {
                if rule[key].get(sub).is_some() {
                    rule[key][sub] = Value::String(format!("<{key}.{sub} of {id}>"));
                }
            }
        }
    }
    for key in ["version", "semanticVersion"] {
        v["runs"][0]["tool"]["driver"][key] = Value::String("VERSION".into());
    }
    let text = serde_json::to_string_pretty(&v).unwrap_or_default();
    insta::assert_snapshot!(text);
}

/// A python3 that has `jsonschema` (installed on the project's machines; otherwise skipped).
fn python_with_jsonschema() -> Option<&'static str> {
    let ok = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some("python3")
}

const VALIDATE_PY: &str = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
v = cls(schema, format_checker=cls.FORMAT_CHECKER)
bad = 0
for path in sys.argv[2:]:
    for err in v.iter_errors(json.load(open(path))):
        bad += 1
        print(f"{path}: {'/'.join(map(str, err.absolute_path))}: {err.message}")
sys.exit(1 if bad else 0)
"#;

#[test]
fn sarif_validates_against_the_oasis_schema() {
    let Some(python) = python_with_jsonschema() else {
        eprintln!("skipped: python3 with jsonschema not found");
        return;
    };
    let schema = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reports/sarif-schema-2.1.0.json");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut files = Vec::new();
    for (name, r) in [
        ("pass", reports::passing()),
        ("fail", reports::failing()),
        ("allowed", reports::allowed()),
        ("oversized", reports::oversized()),
    ] {
        let p = dir.path().join(format!("{name}.sarif"));
        std::fs::write(&p, sarif::render(&r)).unwrap_or_else(|e| panic!("{e}"));
        files.push(p);
    }
    // The validator must also reject a broken log (so a pass means something).
    let broken = dir.path().join("broken.sarif");
    std::fs::write(
        &broken,
        r#"{"version":"2.1.0","runs":[{"tool":{"driver":{}},"results":[{"level":"fatal"}]}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let run = |paths: &[PathBuf]| {
        Command::new(python)
            .arg("-c")
            .arg(VALIDATE_PY)
            .arg(&schema)
            .args(paths)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let out = run(&files);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(std::slice::from_ref(&broken));
    assert!(!out.status.success(), "the validator accepted a broken log");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("'name' is a required property"), "{text}");
}
