//! Incremental runs against a git base, end to end: real git repositories built in temp dirs, the
//! real binary, a real PostgreSQL. Each case is a pull request on top of a base branch.

mod common;

use std::path::PathBuf;

use common::ci_gate;
use common::repo::{INIT, POSTS, Repo, git, verify};

const TAGS: &str = "-- CreateTable\nCREATE TABLE \"Tag\" (\n    \"id\" SERIAL NOT NULL,\n    \"name\" TEXT NOT NULL,\n\n    CONSTRAINT \"Tag_pkey\" PRIMARY KEY (\"id\")\n);\n";
const USER_NAME: &str = "-- AlterTable\nALTER TABLE \"User\" ADD COLUMN     \"name\" TEXT;\n";

fn rows(run: &common::Run) -> Vec<(String, String, String)> {
    run.json
        .as_ref()
        .and_then(|j| j["migrations"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["change"].as_str().unwrap_or("").to_string(),
                m["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn clean_pull_request_adding_two_migrations() {
    let r = Repo::with_base();
    r.write("20240301000000_tags", TAGS)
        .write("20240302000000_user_name", USER_NAME)
        .commit("pr");
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Prisma's plain ADD COLUMN has no lock_timeout: a warning, nothing else.
    assert_eq!(
        run.rules(),
        vec!["missing-lock-timeout"],
        "{:?}",
        run.findings()
    );
    assert_eq!(
        rows(&run),
        vec![
            (
                "20240101000000_init".into(),
                "unchanged".into(),
                "unchanged".into()
            ),
            (
                "20240201000000_posts".into(),
                "unchanged".into(),
                "unchanged".into()
            ),
            ("20240301000000_tags".into(), "new".into(), "applied".into()),
            (
                "20240302000000_user_name".into(),
                "new".into(),
                "applied".into()
            ),
        ]
    );
    let json = run.json.clone().unwrap_or_default();
    assert_eq!(json["checks"]["incremental"]["status"], "pass");
    assert_eq!(json["checks"]["incremental"]["applied"], 2);
    assert!(
        json["checks"]["scratch"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("not built twice"),
        "{}",
        json["checks"]
    );
    assert_eq!(json["checks"]["drift"]["status"], "pass");
    assert_eq!(json["base"].as_str().map(str::len), Some(40));
    assert_eq!(json["base_ref"]["requested"], "main");
    // The terminal lists only the new ones.
    assert!(
        run.stderr.contains("20240301000000_tags ") && !run.stderr.contains("20240101000000_init "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("2 unchanged from base"),
        "{}",
        run.stderr
    );
}

#[test]
fn edited_applied_migration_that_changes_the_schema() {
    let r = Repo::with_base();
    r.write(
        "20240101000000_init",
        &INIT.replace("\"email\" TEXT NOT NULL", "\"email\" VARCHAR(320) NOT NULL"),
    )
    .commit("edit init");
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.rules(),
        vec!["edited-applied-migration", "history-drift"]
    );
    let edited = run.finding("edited-applied-migration");
    assert_eq!(
        edited["file"],
        "prisma/migrations/20240101000000_init/migration.sql"
    );
    assert_eq!(edited["line"], 4);
    let evidence = edited["evidence"].to_string();
    assert!(
        evidence.contains("-    \\\"email\\\" TEXT NOT NULL")
            && evidence.contains("+    \\\"email\\\" VARCHAR(320)"),
        "{evidence}"
    );
    let drift = run.finding("history-drift");
    assert!(
        drift["message"].as_str().unwrap_or("").contains("email"),
        "{drift}"
    );
    let ev = drift["evidence"].to_string();
    assert!(
        ev.contains("character varying(320)") && ev.contains("text"),
        "{ev}"
    );
}

#[test]
fn crlf_conversion_alone_is_not_an_edit() {
    let r = Repo::with_base();
    r.write("20240101000000_init", &INIT.replace('\n', "\r\n"))
        .commit("crlf");
    let run = verify(r.path(), &["--base", "main"]);
    assert!(
        !run.rules()
            .contains(&"edited-applied-migration".to_string()),
        "{:?}",
        run.rules()
    );
}

#[test]
fn deleted_applied_migration() {
    let r = Repo::with_base();
    r.remove("20240201000000_posts").commit("delete posts");
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(run.code, 1);
    assert!(
        run.rules()
            .contains(&"deleted-applied-migration".to_string()),
        "{:?}",
        run.rules()
    );
    let f = run.finding("deleted-applied-migration");
    assert_eq!(f["migration"], "20240201000000_posts");
    // Production keeps "Post"; a fresh database does not have it.
    assert!(
        run.findings().iter().any(|f| f["rule"] == "history-drift"
            && f["message"].as_str().unwrap_or("").contains("Post"))
    );
}

#[test]
fn renamed_applied_migration_would_be_applied_again() {
    let r = Repo::with_base();
    r.remove("20240201000000_posts")
        .write("20240201000000_add_posts", POSTS)
        .commit("rename");
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(run.code, 1);
    let f = run.finding("deleted-applied-migration");
    assert!(
        f["message"].as_str().unwrap_or("").contains("renamed"),
        "{f}"
    );
    // deploy re-applies it: the table exists already
    let fails = run.finding("migration-fails");
    assert!(
        fails["message"]
            .as_str()
            .unwrap_or("")
            .contains("incremental"),
        "{fails}"
    );
    assert!(
        fails["message"]
            .as_str()
            .unwrap_or("")
            .contains("already exists"),
        "{fails}"
    );
}

#[test]
fn out_of_order_migration_with_the_same_schema_in_both_orders_is_a_notice() {
    let r = Repo::with_base();
    r.write("20240115000000_user_name", USER_NAME)
        .commit("late branch");
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(
        run.code, 0,
        "a warning does not fail the gate: {}",
        run.stdout
    );
    assert_eq!(run.rules(), vec!["missing-lock-timeout"]);
    let f = run.finding("out-of-order-migration");
    assert_eq!(f["severity"], "notice", "{f}");
    assert!(
        f["message"]
            .as_str()
            .unwrap_or("")
            .contains("20240201000000_posts"),
        "{f}"
    );
    let json = run.json.clone().unwrap_or_default();
    assert_eq!(
        json["checks"]["drift"]["status"], "pass",
        "both orders give the same schema here: {}",
        json["checks"]
    );
    assert!(rows(&run).contains(&(
        "20240115000000_user_name".into(),
        "out-of-order".into(),
        "applied".into()
    )));
}

#[test]
fn out_of_order_migration_that_fails_on_base_order() {
    // The late migration alters "Post", which a fresh database does not have yet at its position.
    let r = Repo::with_base();
    r.write(
        "20240115000000_post_slug",
        "-- AlterTable\nALTER TABLE \"Post\" ADD COLUMN     \"slug\" TEXT;\n",
    )
    .commit("late");
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(run.code, 1);
    let rules = run.rules();
    assert!(
        rules.contains(&"out-of-order-migration".to_string())
            && rules.contains(&"migration-fails".to_string()),
        "{rules:?}"
    );
    let f = run.finding("migration-fails");
    assert!(
        f["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("from scratch:"),
        "{f}"
    );
}

#[test]
fn new_migration_failing_in_both_runs_is_one_finding() {
    let r = Repo::with_base();
    r.write(
        "20240301000000_bad",
        "ALTER TABLE \"Nope\" ADD COLUMN \"x\" TEXT;\n",
    )
    .write("20240302000000_tags", TAGS)
    .commit("bad");
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.rules(), vec!["migration-fails"]);
    assert!(rows(&run).contains(&("20240302000000_tags".into(), "new".into(), "skipped".into())));
}

#[test]
fn base_defaults_to_origin_main_and_reads_git_objects_only() {
    // origin: a bare repository with the base; the checkout is a clone with a PR branch.
    let origin = Repo::with_base();
    git(origin.path(), &["checkout", "-q", "main"]);
    let clone_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let clone = clone_dir.path().join("work");
    git(
        clone_dir.path(),
        &["clone", "-q", &origin.path().to_string_lossy(), "work"],
    );
    git(&clone, &["config", "user.email", "t@example.com"]);
    git(&clone, &["config", "user.name", "t"]);
    git(&clone, &["checkout", "-q", "-b", "pr"]);
    let m = clone.join("prisma/migrations/20240301000000_tags");
    std::fs::create_dir_all(&m).unwrap_or_default();
    std::fs::write(m.join("migration.sql"), TAGS).unwrap_or_default();
    git(&clone, &["add", "-A"]);
    git(&clone, &["commit", "-q", "-m", "tags"]);
    // An uncommitted work-tree edit: head is the work tree, base is git objects.
    std::fs::write(
        clone
            .join("prisma/migrations/20240302000000_user_name/migration.sql")
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".keep"),
        "",
    )
    .ok();
    let status_before = git(&clone, &["status", "--porcelain"]);
    let run = verify(&clone, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json.clone().unwrap_or_default();
    assert_eq!(json["base_ref"]["requested"], "origin/main");
    assert_eq!(json["checks"]["incremental"]["applied"], 1);
    assert_eq!(
        git(&clone, &["status", "--porcelain"]),
        status_before,
        "ci-gate must not touch the work tree"
    );
}

#[test]
fn shallow_clone_fetches_what_it_needs() {
    let origin = Repo::with_base();
    origin.write("20240301000000_tags", TAGS).commit("pr");
    git(origin.path(), &["checkout", "-q", "main"]);
    let base_sha = git(origin.path(), &["rev-parse", "main"]);
    let clone_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let url = format!("file://{}", origin.path().display());
    git(
        clone_dir.path(),
        &[
            "clone", "-q", "--depth", "1", "--branch", "pr", &url, "work",
        ],
    );
    let clone = clone_dir.path().join("work");
    assert_eq!(
        git(&clone, &["rev-parse", "--is-shallow-repository"]),
        "true"
    );
    let run = verify(&clone, &["--base", &base_sha]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json.clone().unwrap_or_default();
    assert_eq!(json["base"], base_sha.as_str());
    assert_eq!(json["checks"]["incremental"]["applied"], 1);
}

#[test]
fn github_pull_request_event_gives_the_base() {
    let r = Repo::with_base();
    let base_sha = git(r.path(), &["rev-parse", "main"]);
    r.write("20240301000000_tags", TAGS).commit("pr");
    let event = r.path().join("event.json");
    std::fs::write(
        &event,
        format!(r#"{{"pull_request":{{"number":7,"base":{{"sha":"{base_sha}","ref":"main"}}}}}}"#),
    )
    .unwrap_or_default();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = ci_gate(tmp.path())
        .args([
            "verify",
            &r.path().to_string_lossy(),
            "--provider",
            "local",
            "--json",
            "-",
        ])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", &event)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json["base"], base_sha.as_str());
    assert!(
        json["base_ref"]["source"]
            .as_str()
            .unwrap_or("")
            .contains("pull_request")
    );
}

#[test]
fn bad_base_is_an_environment_error() {
    let r = Repo::with_base();
    let run = verify(r.path(), &["--base", "no-such-branch"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("no-such-branch") && run.stderr.contains("hint:"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_base_available_runs_from_scratch_and_says_so() {
    let r = Repo::with_base(); // no origin remote
    let run = verify(r.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json.clone().unwrap_or_default();
    assert!(json["base"].is_null());
    assert!(
        json["notes"].to_string().contains("from scratch only"),
        "{}",
        json["notes"]
    );
    assert_eq!(json["checks"]["incremental"]["status"], "skipped");
}

#[test]
fn long_history_applies_the_shared_prefix_once() {
    let r = Repo::new();
    common::history::generate_prisma_history(r.path(), 300).unwrap_or_else(|e| panic!("{e}"));
    r.commit("history");
    r.branch("pr");
    r.write("29990101000000_pr_a", &TAGS.replace("\"Tag", "\"PrA"))
        .write("29990102000000_pr_b", &TAGS.replace("\"Tag", "\"PrB"))
        .commit("pr");
    let run = verify(r.path(), &["--base", "main", "--verbose"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json.clone().unwrap_or_default();
    assert!(
        json["checks"]["incremental"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("300 migrations, applied once"),
        "{}",
        json["checks"]
    );
    assert!(
        json["checks"]["scratch"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("not built twice")
    );
    assert!(json["timings_ms"]["base"].as_u64().is_some());
    assert!(run.stderr.contains("timings: "), "{}", run.stderr);
}
