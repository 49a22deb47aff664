//! Property tests for every parser of untrusted input: the config, Prisma discovery and its lock
//! file, statement splitting, allow directives, Prisma version sources and squawk's lint. Each
//! runs the oracles the fuzz targets run (`tests/oracles/mod.rs`) on generated input, plus
//! properties that need structured input (round trips). Inputs the fuzzers found are regression
//! tests at the end, named after what they broke.

mod oracles;

use ci_gate::config::Config;
use ci_gate::discover::prisma_version;
use ci_gate::sql::split;
use oracles::*;
use proptest::prelude::*;
use std::path::Path;

/// Pieces of SQL that reach the lexer's and splitter's corners.
const SQL: &[&str] = &[
    "CREATE TABLE \"A\" (\"id\" TEXT NOT NULL)",
    ";",
    "; ",
    "\n",
    "\r\n",
    " ",
    "-- c\n",
    "/* c */",
    "/* /* nested */ */",
    "-- ci-gate: allow drops-column -- reason\n",
    "/* ci-gate: allow-file squawk/ban-drop-column -- r */",
    "-- ci-gate allow x\n",
    "-- CI-GATE: deny x -- y\n",
    "ALTER TABLE \"A\" DROP COLUMN \"b\"",
    "CREATE INDEX CONCURRENTLY \"i\" ON \"A\"(\"id\")",
    "DO $$ BEGIN RAISE NOTICE 'a;b'; END $$",
    "$tag$ ; $tag$",
    "E'\\''",
    "'it''s'",
    "BEGIN",
    "COMMIT",
    "SELECT 1",
    "é",
    "\u{feff}",
    "(",
    ")",
    "\"",
    "'",
    "$$",
    "--",
    "/*",
];

fn sql() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(SQL), 0..24).prop_map(|v| v.concat()),
        any::<String>(),
    ]
}

/// Statements that parse cleanly and stay one statement each.
const STATEMENTS: &[&str] = &[
    "CREATE TABLE \"A\" (\"id\" TEXT NOT NULL)",
    "ALTER TABLE \"A\" ADD COLUMN \"b\" INTEGER",
    "CREATE INDEX \"A_b_idx\" ON \"A\"(\"b\")",
    "DO $$ BEGIN RAISE NOTICE 'a;b'; END $$",
    "INSERT INTO \"A\" VALUES ('x;y', E'\\';')",
    "SELECT 1",
    "BEGIN",
    "COMMIT",
];

/// What may stand between statements besides the `;`.
const TRIVIA: &[&str] = &[
    "",
    " ",
    "\n",
    "\r\n",
    "\t",
    "-- note; not a statement\n",
    "/* ; */",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn config_never_panics(text in sql()) {
        check_config(&text);
    }

    #[test]
    fn a_config_that_parses_has_no_unknown_keys(
        entries in prop::collection::vec(
            (
                prop::sample::select(&[
                    "format", "migrations", "base", "superuser", "roles", "extensions",
                    "fail-on", "comment", "statement-timeout", "cache-dir", "seed",
                    "extentions", "postgres-url", "Format", "rules", "prisma-version",
                ][..]),
                prop::sample::select(&[
                    "prisma", "true", "[a, b]", "90s", "0", "error", "auto", "\"7.4\"",
                    "{ drops-column: off }", "{ nope: off }", "1e400", "~", "x",
                ][..]),
            ),
            0..6,
        )
    ) {
        let text: String = entries.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        check_config(&text);
        let unknown = entries.iter().any(|(k, _)| {
            matches!(*k, "extentions" | "postgres-url" | "Format")
        });
        if unknown {
            prop_assert!(Config::parse(&text, Path::new(".ci-gate.yml")).is_err(), "{}", text);
        }
    }

    #[test]
    fn lock_provider_reads_the_first_provider_line(text in sql(), provider in "[a-z\"= ]{0,12}") {
        check_lock_provider(&text);
        check_lock_provider(&format!("{text}\nprovider{provider}\n"));
    }

    #[test]
    fn discovery_never_panics(data in prop::collection::vec(any::<u8>(), 0..400)) {
        check_prisma_discover(&data);
    }

    #[test]
    fn discovery_reads_every_migration_directory(
        migrations in prop::collection::btree_map(
            "[0-9]{1,3}_[a-zA-Z_é-]{0,6}",
            prop::option::of(sql()),
            1..6,
        ),
        crlf in any::<bool>(),
    ) {
        let scripts: Vec<(String, Option<Vec<u8>>)> = migrations
            .iter()
            .map(|(n, s)| {
                let s = s.as_ref().map(|s| {
                    let s = s.replace('\0', "");
                    if crlf { s.replace('\n', "\r\n") } else { s }
                });
                (n.clone(), s.map(String::into_bytes))
            })
            .collect();
        let listed: Vec<(&str, Option<&[u8]>)> = scripts
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_deref().filter(|s| *s != [1])))
            .collect();
        let data = encode_prisma_tree(Some(b"provider = \"postgresql\"\n"), &listed);
        check_prisma_discover(&data);
        let tree = prisma_tree(&data);
        let set = ci_gate::discover::prisma::read(&tree, DIR)
            .unwrap_or_else(|e| panic!("{e}"));
        let with_script: Vec<&str> =
            listed.iter().filter(|(_, s)| s.is_some()).map(|(n, _)| *n).collect();
        let names: Vec<&str> = set.migrations.iter().map(|m| m.name.as_str()).collect();
        prop_assert_eq!(names, with_script);
        prop_assert_eq!(set.problems.len(), listed.len() - set.migrations.len());
    }

    #[test]
    fn split_never_panics(text in sql()) {
        check_split(&text);
    }

    #[test]
    fn splitting_joined_statements_gives_them_back(
        parts in prop::collection::vec(
            (prop::sample::select(STATEMENTS), prop::sample::select(TRIVIA)),
            0..8,
        ),
        lead in prop::sample::select(TRIVIA),
    ) {
        let mut script = lead.to_string();
        for (stmt, trivia) in &parts {
            script.push_str(stmt);
            script.push(';');
            script.push_str(trivia);
        }
        check_split(&script);
        let stmts = split::split(&script).unwrap_or_else(|| panic!("did not split {script:?}"));
        let texts: Vec<&str> = stmts.iter().map(|s| s.text(&script)).collect();
        let expected: Vec<&str> = parts.iter().map(|(s, _)| *s).collect();
        prop_assert_eq!(texts, expected);
    }

    #[test]
    fn allow_directives_never_panic(text in sql()) {
        check_allow(&text);
    }

    #[test]
    fn prisma_version_sources_never_panic(kind in 0u8..6, text in sql()) {
        check_prisma_version_source(kind, &text);
    }

    #[test]
    fn prisma_version_round_trips(
        prefix in prop::sample::select(&["", "^", "~", ">=", "npm:prisma@", "v"][..]),
        major in 0u32..100,
        minor in 0u32..100,
        patch in 0u32..100,
        suffix in prop::sample::select(&["", "-dev.1", " <8", "+build"][..]),
    ) {
        let raw = format!("{prefix}{major}.{minor}.{patch}{suffix}");
        let v = prisma_version::parse(&raw, "t").unwrap_or_else(|| panic!("{raw}"));
        prop_assert_eq!((v.major, v.minor), (major, minor));
        for (kind, text) in [
            (1, format!(r#"{{"devDependencies":{{"prisma":"{raw}"}}}}"#)),
            (2, format!(r#"{{"packages":{{"node_modules/prisma":{{"version":"{raw}"}}}}}}"#)),
            (4, format!("\"prisma@{raw}\":\n  version \"{raw}\"\n")),
        ] {
            check_prisma_version_source(kind, &text);
            let v = VERSION_SOURCES[usize::from(kind)](&text).unwrap_or_else(|| panic!("{text}"));
            prop_assert_eq!((v.major, v.minor), (major, minor));
        }
    }

    #[test]
    fn squawk_lint_never_panics(text in sql()) {
        check_squawk(&text);
    }
}

/// The fixtures (the fuzzers' seeds) pass every oracle.
#[test]
fn fixtures_pass_the_oracles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut seen = 0;
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            seen += 1;
            match path.extension().and_then(|e| e.to_str()) {
                Some("sql") => {
                    check_split(&text);
                    check_allow(&text);
                    check_squawk(&text);
                }
                Some("yml") => check_config(&text),
                Some("toml") => check_lock_provider(&text),
                _ => {
                    for kind in 0..6 {
                        check_prisma_version_source(kind, &text);
                    }
                }
            }
        }
    }
    assert!(seen > 50, "only {seen} fixture files read");
}

// Regression tests: inputs the property tests and fuzzers found, named after what they broke.

/// `;` split into one empty statement (start = end), which Prisma ≥ 7.4 semantics then sent.
#[test]
fn split_lone_semicolon_is_no_statement() {
    check_split(";");
    check_split("SELECT 1;;\n;");
    assert_eq!(split::split(";"), Some(Vec::new()));
}

/// The same empty statement made a directive above a stray `;` cover nothing instead of the
/// statement after it.
#[test]
fn allow_directive_skips_a_lone_semicolon() {
    let text =
        "-- ci-gate: allow drops-column -- unused\n;\nALTER TABLE \"A\" DROP COLUMN \"b\";\n";
    check_allow(text);
    let d = ci_gate::check::allow::parse(&migration(text));
    let start = text.find("ALTER").unwrap_or_default();
    assert!(
        matches!(d[0].scope, ci_gate::check::allow::Scope::NextStatement { start: s, .. } if s == start),
        "{:?}",
        d[0].scope
    );
}

/// Prisma ≥ 6.6 stores the checksum of the text as read (invalid UTF-8 replaced); with CRLF line
/// ends the match test compared only the raw bytes and line-end conversions of the text, so a
/// file's own checksum did not match it.
#[test]
fn checksum_matches_invalid_utf8_with_crlf() {
    check_prisma_discover(&encode_prisma_tree(
        None,
        &[("1_a", Some(b"SELECT 1; -- \xff\r\n".as_slice()))],
    ));
}

/// The config fuzz target's first crash: lone CRs made a config error name a line past the end of
/// the file (libyaml counts a lone CR as a line break).
#[test]
fn config_lone_cr_error_line_inside_file() {
    check_config(
        "format: prisma\nprisma-version: \"6.riformat: ppns: dand: [node\r\rrismafor\npr\r\r\r\r\r\r\r\r9\"\n1migrations: prisma/migrations\nbase: origin/main error\ncomment: auto\n",
    );
    check_config("a: 1\r\r\r\rb: [\n");
}

#[test]
fn squawk_unreachable_on_malformed_sql_is_not_a_crash() {
    // Found by the squawk_lint fuzz target in its first CI run: squawk-syntax 2.68 reaches an
    // `unreachable!()` in column_name.rs on this input. The file is not linted, and says so.
    let text = String::from_utf8_lossy(include_bytes!("fixtures/squawk-panic.sql")).into_owned();
    oracles::check_squawk(&text);
    let m = oracles::migration(&text);
    let out = ci_gate::check::squawk::lint(
        &m,
        &ci_gate::check::squawk::LintContext::default(),
        &ci_gate::check::squawk::RuleLevels::new(),
    );
    assert!(
        out.not_linted
            .as_deref()
            .is_some_and(|n| n.contains("not linted")),
        "{out:?}"
    );
}
