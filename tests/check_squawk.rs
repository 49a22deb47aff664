#[path = "common/history.rs"]
mod history;

use std::collections::BTreeMap;

fn files() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for root in ["examples", "tests/fixtures"] {
        for e in walk(std::path::Path::new(root)) {
            if e.ends_with("migration.sql") {
                let t = String::from_utf8_lossy(&std::fs::read(&e).unwrap()).into_owned();
                out.push((e.display().to_string(), t));
            }
        }
    }
    out
}
fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap().path();
        if e.is_dir() {
            v.extend(walk(&e));
        } else {
            v.push(e);
        }
    }
    v
}

fn all_rules() -> Vec<squawk_linter::Rule> {
    let names = include_str!("/tmp/explore/names.txt");
    names
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.parse().unwrap())
        .collect()
}

#[test]
fn explore() {
    for (label, set) in [
        ("repo", files()),
        (
            "gen300",
            history::build_prisma_history(300)
                .0
                .into_iter()
                .map(|m| (m.name, m.sql))
                .collect(),
        ),
    ] {
        for ait in [true, false] {
            let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
            for (_name, text) in &set {
                let parse = squawk_syntax::SourceFile::parse(text);
                let mut l = squawk_linter::Linter::from(all_rules());
                l.settings.pg_version = "16".parse().unwrap();
                l.settings.assume_in_transaction = ait;
                let v = l.lint(&parse, text);
                let mut seen = std::collections::BTreeSet::new();
                for x in v {
                    let e = counts.entry(x.code.to_string()).or_default();
                    e.0 += 1;
                    if seen.insert(x.code.to_string()) {
                        e.1 += 1;
                    }
                }
            }
            println!(
                "== {label} ({} files) assume_in_transaction={ait}",
                set.len()
            );
            for (k, (n, f)) in &counts {
                println!("{k:45} {n:6} in {f} files");
            }
        }
    }
}
