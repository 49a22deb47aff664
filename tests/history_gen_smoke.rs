//! Smoke test for the synthetic Prisma history generator in `tests/common/history.rs`.
//! Pure file checks (no database): the history is also applied to PostgreSQL by the tests
//! and benchmarks that use it.

#[path = "common/history.rs"]
mod history;

use std::fs;
use std::path::PathBuf;

fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let d = std::env::temp_dir().join(format!(
        "ci-gate-history-{tag}-{}-{nanos}",
        std::process::id()
    ));
    fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// Statements in a file, ignoring `--` comment lines (good enough for the generated SQL).
fn statement_count(sql: &str) -> usize {
    let code: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';').filter(|s| !s.trim().is_empty()).count()
}

#[test]
fn generates_300_prisma_migrations() {
    let dir = temp_dir("300");
    history::generate_prisma_history(&dir, 300).expect("generate");

    let pkg = fs::read_to_string(dir.join("package.json")).expect("package.json");
    assert!(pkg.contains("\"prisma\": \"6.19.0\""), "{pkg}");
    assert!(pkg.contains("\"@prisma/client\": \"6.19.0\""), "{pkg}");
    let schema = fs::read_to_string(dir.join("prisma/schema.prisma")).expect("schema.prisma");
    assert!(schema.contains("provider = \"postgresql\""));

    let mdir = dir.join("prisma/migrations");
    assert_eq!(
        fs::read_to_string(mdir.join("migration_lock.toml")).expect("lock"),
        history::PRISMA_LOCK_FILE
    );

    let mut names: Vec<String> = fs::read_dir(&mdir)
        .expect("read migrations")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_type().expect("type").is_dir())
        .map(|e| e.file_name().into_string().expect("utf-8 name"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 300);
    assert!(
        names[0].starts_with("20220101") && names[0].ends_with("_init"),
        "{}",
        names[0]
    );

    let mut last_ts = String::new();
    let mut concurrently = 0;
    for name in &names {
        let (ts, slug) = name.split_at(14);
        assert!(ts.bytes().all(|b| b.is_ascii_digit()), "{name}");
        assert!(
            slug.starts_with('_')
                && slug[1..]
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{name}"
        );
        assert!(
            ts > last_ts.as_str(),
            "timestamps must strictly increase: {name}"
        );
        last_ts = ts.to_string();

        let sql = fs::read_to_string(mdir.join(name).join("migration.sql")).expect("migration.sql");
        assert!(
            sql.ends_with(";\n") && !sql.ends_with("\n\n"),
            "{name}: {sql:?}"
        );
        if sql.contains("CONCURRENTLY") {
            concurrently += 1;
            assert_eq!(
                statement_count(&sql),
                1,
                "{name}: CONCURRENTLY must be alone:\n{sql}"
            );
        }
    }
    assert_eq!(
        concurrently, 6,
        "one CREATE INDEX CONCURRENTLY every 50 migrations"
    );

    let all: String = names
        .iter()
        .map(|n| fs::read_to_string(mdir.join(n).join("migration.sql")).unwrap())
        .collect();
    for needle in [
        "-- CreateTable",
        "-- CreateEnum",
        "-- AlterEnum",
        "-- CreateIndex",
        "CREATE UNIQUE INDEX",
        "-- AddForeignKey",
        "ADD COLUMN     ",
        "SET DATA TYPE BIGINT",
        "SET DATA TYPE TEXT",
        "UPDATE ",
        "SET NOT NULL",
    ] {
        assert!(
            all.contains(needle),
            "no {needle:?} in the generated history"
        );
    }
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn generation_is_deterministic_and_prefix_stable() {
    let (a, schema_a) = history::build_prisma_history(120);
    let (b, schema_b) = history::build_prisma_history(120);
    assert_eq!(a, b);
    assert_eq!(schema_a, schema_b);
    let (c, _) = history::build_prisma_history(60);
    assert_eq!(&a[..60], &c[..]);
}
