//! `--cache-dir`: the base state is stored after a verified build and restored on the next run
//! on the same base; a corrupt, tampered or stale entry is detected and rebuilt, never trusted.
//! With the local provider an entry is an archived cluster (`cluster-*`); with a server reached by
//! URL it is a SQL dump (`base-*`).

mod common;

use std::path::Path;

use ci_gate::provision::local;
use common::repo::Repo;
use common::{Run, ci_gate, local_request};

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

fn summary(run: &Run) -> String {
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

/// `verify` on the `pr` branch against `main` with `--cache-dir`, on the local provider or, with
/// `url`, on a server reached by URL.
fn run(r: &Repo, cache: &Path, url: Option<&str>) -> Run {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = ci_gate(tmp.path());
    cmd.arg("verify")
        .arg(r.path())
        .args(["--base", "main", "--json", "-", "--cache-dir"])
        .arg(cache);
    match url {
        Some(u) => cmd.args(["--provider", "url", "--database-url", u]),
        None => cmd.args(["--provider", "local"]),
    };
    let run = common::finish(cmd.output().unwrap_or_else(|e| panic!("run: {e}")));
    common::assert_no_leftovers(tmp.path(), &run);
    run
}

fn entry(cache: &Path, prefix: &str) -> std::path::PathBuf {
    std::fs::read_dir(cache)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no {prefix}* cache entry in {}", cache.display()))
}

fn restored(run: &Run) -> bool {
    summary(run).contains("restored from the base cache")
}

fn applied_once(run: &Run) -> bool {
    summary(run).contains("applied once")
}

#[test]
fn second_run_restores_the_archived_cluster_and_agrees_with_the_first() {
    let r = history_repo(200);
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let first = run(&r, cache.path(), None);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(applied_once(&first), "{}", summary(&first));
    let e = entry(cache.path(), "cluster-");
    assert!(e.join("cluster.tar").exists() && e.join("manifest.json").exists());
    // Only the base database and no stale WAL went into the archive.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(e.join("manifest.json")).unwrap_or_default())
            .unwrap_or_default();
    assert!(
        manifest["database"]
            .as_str()
            .is_some_and(|d| d.ends_with("_cache"))
    );

    let second = run(&r, cache.path(), None);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(restored(&second), "{}", summary(&second));
    assert_eq!(first.rules(), second.rules());
    let j = second.json.clone().unwrap_or_default();
    assert_eq!(j["checks"]["incremental"]["applied"], 2);
    // A hit does not rewrite the entry.
    assert_eq!(entry(cache.path(), "cluster-"), e);
}

#[test]
fn a_corrupt_cluster_archive_is_detected_and_rebuilt() {
    let r = history_repo(30);
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run(&r, cache.path(), None).code, 0);
    let tar = entry(cache.path(), "cluster-").join("cluster.tar");
    let mut bytes = std::fs::read(&tar).unwrap_or_default();
    // Flip bytes in the middle of the archive (file contents, not only the end).
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&tar, bytes).unwrap_or_default();
    let again = run(&r, cache.path(), None);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.notes().contains("unusable"), "{}", again.notes());
    assert!(applied_once(&again), "{}", summary(&again));
    // Rewritten: the next run restores again.
    let third = run(&r, cache.path(), None);
    assert!(restored(&third), "{}", summary(&third));
}

#[test]
fn an_archive_of_another_base_with_a_matching_hash_is_still_not_trusted() {
    // Two histories: the entry for B gets A's archive and hash (a consistent, valid entry for the
    // wrong base). The restored history shows it.
    let (a, b) = (history_repo(30), history_repo(31));
    let (ca, cb) = (
        tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
        tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
    );
    assert_eq!(run(&a, ca.path(), None).code, 0);
    assert_eq!(run(&b, cb.path(), None).code, 0);
    let (ea, eb) = (entry(ca.path(), "cluster-"), entry(cb.path(), "cluster-"));
    std::fs::copy(ea.join("cluster.tar"), eb.join("cluster.tar")).unwrap_or_else(|e| panic!("{e}"));
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_default()).unwrap_or_default()
    };
    let (ma, mut mb) = (
        read(&ea.join("manifest.json")),
        read(&eb.join("manifest.json")),
    );
    mb["tar_sha256"] = ma["tar_sha256"].clone();
    mb["database"] = ma["database"].clone();
    mb["owner"] = ma["owner"].clone();
    std::fs::write(eb.join("manifest.json"), mb.to_string()).unwrap_or_default();
    let again = run(&b, cb.path(), None);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.notes().contains("does not match the base migrations"),
        "{}",
        again.notes()
    );
    assert!(applied_once(&again), "{}", summary(&again));
}

#[test]
fn a_different_base_uses_a_different_entry() {
    let r = history_repo(30);
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run(&r, cache.path(), None).code, 0);
    // main moves on (the PR's first migration lands there) and the PR merges it: a new base
    common::repo::git(r.path(), &["checkout", "-q", "main"]);
    r.write("29990101000000_cache_a", NEW_A).commit("land a");
    common::repo::git(r.path(), &["checkout", "-q", "pr"]);
    common::repo::git(r.path(), &["merge", "-q", "--no-edit", "main"]);
    let again = run(&r, cache.path(), None);
    assert!(applied_once(&again), "{}", summary(&again));
    assert_eq!(
        std::fs::read_dir(cache.path())
            .map(|d| d.count())
            .unwrap_or(0),
        2
    );
}

/// A server ci-gate did not start, reached by URL: there the entry is a SQL dump.
async fn external() -> (local::LocalCluster, String) {
    let cluster = local::start(&local_request("cache-url"))
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    let url = common::cluster_url(&cluster);
    (cluster, url)
}

#[tokio::test]
async fn url_provider_second_run_restores_the_dump_and_agrees_with_the_first() {
    let (cluster, url) = external().await;
    let r = history_repo(60);
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let first = run(&r, cache.path(), Some(&url));
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(applied_once(&first), "{}", summary(&first));
    let e = entry(cache.path(), "base-");
    assert!(e.join("base.sql").exists() && e.join("manifest.json").exists());
    let second = run(&r, cache.path(), Some(&url));
    assert!(restored(&second), "{}", summary(&second));
    assert_eq!(first.rules(), second.rules());
    let _ = cluster.stop();
}

#[tokio::test]
async fn url_provider_tampered_dump_with_a_matching_hash_is_not_trusted() {
    let (cluster, url) = external().await;
    let r = history_repo(30);
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run(&r, cache.path(), Some(&url)).code, 0);
    let e = entry(cache.path(), "base-");
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
    let again = run(&r, cache.path(), Some(&url));
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.notes().contains("does not match the base migrations"),
        "{}",
        again.notes()
    );
    assert!(applied_once(&again));
    let _ = cluster.stop();
}

/// A repository whose `main` has a short history, a `pr` branch that only adds a migration (its
/// run fills the cache for `main`), and `branch` made from `main` by `change`.
fn warm_cache_then(cache: &Path, branch: &str, change: impl Fn(&Repo)) -> (Repo, Run) {
    let r = history_repo(20);
    let first = run(&r, cache, None);
    assert_eq!(first.code, 0, "{}", first.stderr);
    common::repo::git(r.path(), &["checkout", "-q", "main"]);
    r.branch(branch);
    change(&r);
    r.commit(branch);
    let second = run(&r, cache, None);
    (r, second)
}

#[test]
fn warm_cache_edit_of_a_base_migration_gives_its_findings_and_exit_1() {
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (_r, run) = warm_cache_then(cache.path(), "edit", |r| {
        let name = first_migration(r);
        let path = r
            .path()
            .join("prisma/migrations")
            .join(&name)
            .join("migration.sql");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(
            &path,
            format!("{text}\n-- CreateTable\nCREATE TABLE \"EditProbe\" (\"id\" INTEGER);\n"),
        )
        .unwrap_or_default();
    });
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.rules()
            .contains(&"edited-applied-migration".to_string()),
        "{:?}",
        run.rules()
    );
    assert!(restored(&run), "the base did not change: {}", summary(&run));
}

#[test]
fn warm_cache_delete_all_gives_deleted_applied_migration_and_exit_1() {
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (_r, run) = warm_cache_then(cache.path(), "wipe", |r| {
        let dir = r.path().join("prisma/migrations");
        std::fs::remove_dir_all(&dir).unwrap_or_default();
    });
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let deleted = run
        .findings()
        .iter()
        .filter(|f| f["rule"] == "deleted-applied-migration")
        .count();
    assert_eq!(deleted, 20, "{:?}", run.rules());
    assert!(
        run.notes().contains("no migrations on this branch"),
        "{}",
        run.notes()
    );
}

fn first_migration(r: &Repo) -> String {
    let mut names: Vec<String> = std::fs::read_dir(r.path().join("prisma/migrations"))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.into_iter().next().unwrap_or_default()
}
