//! `ci-gate verify --provider docker` end to end: the base cache for containers (`--cache-dir`),
//! and the image chosen by `--pg-version`. Prints `SKIP: …` and passes when no Docker engine
//! answers (`common::docker`).

mod common;

use std::path::Path;

use common::docker::TEST_IMAGE;
use common::repo::Repo;
use common::{Run, ci_gate};

const NEW: &str = "-- CreateTable\nCREATE TABLE \"DockerCache\" (\n    \"id\" SERIAL NOT NULL,\n\n    CONSTRAINT \"DockerCache_pkey\" PRIMARY KEY (\"id\")\n);\n";

/// A generated history on `main`, and a `pr` branch adding one migration.
fn history_repo(n: usize) -> Repo {
    let r = Repo::new();
    common::history::generate_prisma_history(r.path(), n).unwrap_or_else(|e| panic!("{e}"));
    r.commit("history");
    r.branch("pr");
    r.write("29990101000000_docker_cache", NEW).commit("pr");
    r
}

/// `verify` of `dir` on the docker provider with the test image, with a private TMPDIR that must
/// be empty afterwards.
fn verify(dir: &Path, args: &[&str]) -> Run {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = ci_gate(tmp.path())
        .arg("verify")
        .arg(dir)
        .args(["--provider", "docker", "--json", "-"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run: {e}"));
    let run = common::finish(out);
    common::assert_no_leftovers(tmp.path(), &run);
    run
}

fn summary(run: &Run) -> String {
    let json = run.json.clone().unwrap_or_default();
    json["checks"]["incremental"]["summary"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn server_notes(run: &Run) -> String {
    let json = run.json.clone().unwrap_or_default();
    json["server"]["notes"].to_string()
}

#[test]
fn the_second_run_restores_the_containers_cluster_from_the_cache() {
    if common::docker::skip() {
        return;
    }
    let r = history_repo(40);
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = cache.path().to_string_lossy().into_owned();
    let args = ["--image", TEST_IMAGE, "--base", "main", "--cache-dir", &dir];

    let first = verify(r.path(), &args);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert!(
        summary(&first).contains("applied once"),
        "{}",
        summary(&first)
    );
    let entries: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        entries[0]
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("cluster-"))
            && entries[0].join("cluster.tar").exists(),
        "a whole-cluster entry, not a dump: {entries:?}"
    );

    let second = verify(r.path(), &args);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        summary(&second).contains("restored from the base cache"),
        "{}",
        summary(&second)
    );
    assert!(
        server_notes(&second).contains("restored from the cache"),
        "{}",
        server_notes(&second)
    );
    assert_eq!(first.rules(), second.rules());
    let j = second.json.clone().unwrap_or_default();
    assert_eq!(j["checks"]["incremental"]["applied"], 1);
    assert_eq!(j["server"]["provider"], "docker");
}

#[test]
fn a_corrupt_container_archive_is_rebuilt_and_the_next_run_restores_again() {
    if common::docker::skip() {
        return;
    }
    let r = history_repo(20);
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = cache.path().to_string_lossy().into_owned();
    let args = ["--image", TEST_IMAGE, "--base", "main", "--cache-dir", &dir];
    assert_eq!(verify(r.path(), &args).code, 0);
    let entry = std::fs::read_dir(cache.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.path())
        .next()
        .unwrap_or_else(|| panic!("no cache entry"));
    let tar = entry.join("cluster.tar");
    let mut bytes = std::fs::read(&tar).unwrap_or_default();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 64].iter_mut().for_each(|b| *b ^= 0x5a);
    std::fs::write(&tar, bytes).unwrap_or_default();

    let again = verify(r.path(), &args);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.notes().contains("unusable"), "{}", again.notes());
    assert!(
        summary(&again).contains("applied once"),
        "{}",
        summary(&again)
    );
    let third = verify(r.path(), &args);
    assert!(
        summary(&third).contains("restored from the base cache"),
        "{}",
        summary(&third)
    );
}

#[test]
fn pg_version_against_an_image_of_another_major_exits_3_with_what_to_do() {
    if common::docker::skip() {
        return;
    }
    let r = Repo::with_base();
    let run = verify(r.path(), &["--image", TEST_IMAGE, "--pg-version", "17"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("runs PostgreSQL 15") && run.stderr.contains("asks for 17"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("postgres:17") && run.stderr.contains("--pg-version 15"),
        "{}",
        run.stderr
    );
    let ok = verify(r.path(), &["--image", TEST_IMAGE, "--pg-version", "15"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let json = ok.json.clone().unwrap_or_default();
    assert!(
        json["server"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("15."))
    );
}

#[test]
fn a_pg_version_that_is_no_version_is_bad_input() {
    if common::docker::skip() {
        return;
    }
    let r = Repo::with_base();
    let run = verify(r.path(), &["--pg-version", "latest"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("--pg-version latest"), "{}", run.stderr);
}
