//! `--cache-dir`: the base state is stored after a verified build and restored on the next run
//! on the same base; a corrupt, tampered or stale entry is detected and rebuilt, never trusted.

mod common;

use std::path::Path;

use common::repo::{Repo, verify};

const NEW_A: &str = "-- CreateTable\nCREATE TABLE \"CacheA\" (\n    \"id\" SERIAL NOT NULL,\n\n    CONSTRAINT \"CacheA_pkey\" PRIMARY KEY (\"id\")\n);\n";
const NEW_B: &str =
    "SET lock_timeout = '5s';\n-- AlterTable\nALTER TABLE \"CacheA\" ADD COLUMN \"name\" TEXT;\n";

fn history_repo(n: usize) -> Repo {
    let r = Repo::new();
    common::history::generate_prisma_history(r.path(), n).unwrap_or_else(|e| panic!("{e}"));
    r.commit("history");
    r.branch("pr");
    r.write("29990101000000_cache_a", NEW_A)
        .write("29990102000000_cache_b", NEW_B)
        .commit("pr");
    r
}

fn summary(run: &common::Run) -> String {
    run.json
        .as_ref()
        .map(|j| {
            j["checks"]["incremental"]["summary"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}

fn entry(cache: &Path) -> std::path::PathBuf {
    std::fs::read_dir(cache)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("base-"))
        })
        .unwrap_or_else(|| panic!("no cache entry in {}", cache.display()))
}

#[test]
fn second_run_restores_the_base_and_agrees_with_the_first() {
    let r = history_repo(200);
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = cache.path().to_string_lossy().into_owned();
    let first = verify(r.path(), &["--base", "main", "--cache-dir", &dir]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        summary(&first).contains("applied once"),
        "{}",
        summary(&first)
    );
    let e = entry(cache.path());
    assert!(e.join("base.sql").exists() && e.join("manifest.json").exists());

    let second = verify(r.path(), &["--base", "main", "--cache-dir", &dir]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        summary(&second).contains("restored from the base cache"),
        "{}",
        summary(&second)
    );
    assert_eq!(first.rules(), second.rules());
    let j = second.json.clone().unwrap_or_default();
    assert_eq!(j["checks"]["incremental"]["applied"], 2);
}

#[test]
fn a_corrupt_entry_is_detected_and_rebuilt() {
    let r = history_repo(30);
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = cache.path().to_string_lossy().into_owned();
    assert_eq!(
        verify(r.path(), &["--base", "main", "--cache-dir", &dir]).code,
        0
    );
    let e = entry(cache.path());
    let mut dump = std::fs::read(e.join("base.sql")).unwrap_or_default();
    let len = dump.len();
    dump.truncate(len / 2);
    std::fs::write(e.join("base.sql"), dump).unwrap_or_default();
    let run = verify(r.path(), &["--base", "main", "--cache-dir", &dir]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.json.clone().unwrap_or_default()["notes"]
            .to_string()
            .contains("unusable"),
        "{}",
        run.stderr
    );
    assert!(summary(&run).contains("applied once"));
    // rewritten: the next run restores again
    let again = verify(r.path(), &["--base", "main", "--cache-dir", &dir]);
    assert!(
        summary(&again).contains("restored from the base cache"),
        "{}",
        summary(&again)
    );
}

#[test]
fn a_tampered_entry_with_a_matching_hash_is_still_not_trusted() {
    let r = history_repo(30);
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = cache.path().to_string_lossy().into_owned();
    assert_eq!(
        verify(r.path(), &["--base", "main", "--cache-dir", &dir]).code,
        0
    );
    let e = entry(cache.path());
    // Drop one history row from the dump, and fix up the manifest's hash.
    let dump = std::fs::read_to_string(e.join("base.sql")).unwrap_or_default();
    let mut removed = false;
    let tampered: String = dump
        .lines()
        .filter(|l| {
            if !removed && l.starts_with("INSERT INTO public._prisma_migrations") {
                removed = true;
                return false;
            }
            true
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(removed);
    std::fs::write(e.join("base.sql"), &tampered).unwrap_or_default();
    use sha2::Digest;
    let hash: String = sha2::Sha256::digest(tampered.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(e.join("manifest.json")).unwrap_or_default())
            .unwrap_or_default();
    manifest["dump_sha256"] = serde_json::json!(hash);
    std::fs::write(e.join("manifest.json"), manifest.to_string()).unwrap_or_default();
    let run = verify(r.path(), &["--base", "main", "--cache-dir", &dir]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.json.clone().unwrap_or_default()["notes"]
            .to_string()
            .contains("does not match the base migrations"),
        "{}",
        run.stderr
    );
    assert!(summary(&run).contains("applied once"));
}

#[test]
fn a_different_base_uses_a_different_entry() {
    let r = history_repo(30);
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = cache.path().to_string_lossy().into_owned();
    assert_eq!(
        verify(r.path(), &["--base", "main", "--cache-dir", &dir]).code,
        0
    );
    // main moves on (the PR's first migration lands there) and the PR merges it: a new base
    common::repo::git(r.path(), &["checkout", "-q", "main"]);
    r.write("29990101000000_cache_a", NEW_A).commit("land a");
    common::repo::git(r.path(), &["checkout", "-q", "pr"]);
    common::repo::git(r.path(), &["merge", "-q", "--no-edit", "main"]);
    let run = verify(r.path(), &["--base", "main", "--cache-dir", &dir]);
    assert!(summary(&run).contains("applied once"), "{}", summary(&run));
    assert_eq!(
        std::fs::read_dir(cache.path())
            .map(|d| d.count())
            .unwrap_or(0),
        2
    );
}
