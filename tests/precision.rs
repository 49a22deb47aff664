//! A clean pull request passes the first time (issue 12): out-of-order migrations judged by what
//! the order changes, `missing-lock-timeout` once per pull request and silenced by a declared
//! `lock-timeout:` (which the runs then apply, as production's connection does), static lint on
//! an edited migration limited to what the edit changed, and settings read the way a monorepo
//! lays them out.

mod common;

use common::Run;
use common::repo::{Repo, verify};

const USER_NAME: &str = "-- AlterTable\nALTER TABLE \"User\" ADD COLUMN     \"name\" TEXT;\n";

fn finding_of(run: &Run, rule: &str) -> Vec<serde_json::Value> {
    run.findings()
        .into_iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

#[test]
fn harmless_out_of_order_migration_passes_with_a_visible_notice() {
    let r = Repo::with_base();
    r.write(
        "20240115000000_user_name",
        &format!("SET lock_timeout = '5s';\n{USER_NAME}"),
    )
    .commit("late branch");
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let f = run.finding("out-of-order-migration");
    assert_eq!(f["severity"], "notice", "{f}");
    let message = f["message"].as_str().unwrap_or("");
    assert!(
        message.contains("20240201000000_posts") && message.contains("same schema"),
        "{f}"
    );
    let checks = &run.json.clone().unwrap_or_default()["checks"];
    assert_eq!(checks["history"]["status"], "pass", "{checks}");
    assert!(
        checks["history"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("harmless"),
        "{checks}"
    );
}

#[test]
fn out_of_order_migration_that_changes_the_schema_fails_naming_the_difference() {
    // Base sets the column default last; the late migration sets another one. Production ends
    // with the late one's default (applied last), a fresh database with base's.
    let r = Repo::new();
    r.write("20240101000000_init", common::repo::INIT)
        .write(
            "20240201000000_email_default",
            "-- AlterTable\nALTER TABLE \"User\" ALTER COLUMN \"email\" SET DEFAULT 'nobody@example.com';\n",
        )
        .commit("base");
    r.branch("pr");
    r.write(
        "20240115000000_email_placeholder",
        "SET lock_timeout = '5s';\n-- AlterTable\nALTER TABLE \"User\" ALTER COLUMN \"email\" SET DEFAULT 'placeholder@example.com';\n",
    )
    .commit("late");
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let f = run.finding("out-of-order-migration");
    assert_eq!(f["severity"], "error", "{f}");
    assert!(
        f["message"]
            .as_str()
            .unwrap_or("")
            .contains("\"User\".\"email\""),
        "names the column whose default differs: {f}"
    );
    assert!(
        run.rules().contains(&"history-drift".to_string()),
        "{:?}",
        run.rules()
    );
}

const LOCKING: [(&str, &str); 3] = [
    (
        "20240301000000_user_name",
        "-- AlterTable\nALTER TABLE \"User\" ADD COLUMN     \"name\" TEXT;\n",
    ),
    (
        "20240302000000_post_body",
        "-- AlterTable\nALTER TABLE \"Post\" ADD COLUMN     \"body\" TEXT;\n",
    ),
    (
        "20240303000000_user_bio",
        "-- AlterTable\nALTER TABLE \"User\" ADD COLUMN     \"bio\" TEXT;\n",
    ),
];

fn locking_pull_request(config: Option<&str>) -> Repo {
    let r = Repo::new();
    if let Some(c) = config {
        std::fs::write(r.path().join(".ci-gate.yml"), c).unwrap_or_default();
    }
    r.write("20240101000000_init", common::repo::INIT)
        .write("20240201000000_posts", common::repo::POSTS)
        .commit("base");
    r.branch("pr");
    for (name, sql) in LOCKING {
        r.write(name, sql);
    }
    r.commit("three locking migrations");
    r
}

#[test]
fn three_locking_migrations_give_one_missing_lock_timeout() {
    let r = locking_pull_request(None);
    let run = verify(r.path(), &["--base", "main"]);
    let found = finding_of(&run, "missing-lock-timeout");
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    let message = f["message"].as_str().unwrap_or("");
    for (name, _) in LOCKING {
        assert!(message.contains(name), "names {name}: {message}");
    }
    assert!(
        message.contains("\"Post\"") && message.contains("\"User\""),
        "{message}"
    );
    assert_eq!(f["migration"], LOCKING[0].0);
    let sites = f["sites"].as_array().cloned().unwrap_or_default();
    assert_eq!(sites.len(), 2, "{f}");
    assert_eq!(sites[0]["migration"], LOCKING[1].0);
    assert!(
        f["fix"].as_str().unwrap_or("").contains("lock-timeout"),
        "{f}"
    );
}

#[test]
fn missing_lock_timeout_is_annotated_on_each_statement() {
    let r = locking_pull_request(None);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = common::ci_gate(tmp.path())
        .arg("verify")
        .arg(r.path())
        .args([
            "--base",
            "main",
            "--provider",
            "local",
            "--comment",
            "never",
        ])
        .env("GITHUB_ACTIONS", "true")
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let annotations: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("::warning") && l.contains("title=missing-lock-timeout"))
        .collect();
    assert_eq!(annotations.len(), 3, "{stdout}");
    for (name, _) in LOCKING {
        assert!(
            annotations.iter().any(|a| a.contains(name)),
            "{name}: {annotations:?}"
        );
    }
}

#[test]
fn declared_lock_timeout_silences_missing_lock_timeout() {
    let r = locking_pull_request(Some("lock-timeout: 5s\n"));
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        finding_of(&run, "missing-lock-timeout").is_empty(),
        "{:?}",
        run.rules()
    );
    assert!(
        run.notes().contains("lock-timeout: 5.0 s"),
        "{}",
        run.notes()
    );
}

#[test]
fn edited_migration_is_linted_only_where_the_edit_changed_it() {
    // The base's posts migration adds a required column (squawk flags it); the edit adds an
    // index in a new statement. Only the index is news.
    let r = Repo::new();
    let posts = format!(
        "{}\n-- AlterTable\nALTER TABLE \"User\" ADD COLUMN \"age\" INTEGER NOT NULL;\n",
        common::repo::POSTS
    );
    r.write("20240101000000_init", common::repo::INIT)
        .write("20240201000000_posts", &posts)
        .commit("base");
    r.branch("pr");
    r.write(
        "20240201000000_posts",
        &format!("{posts}\n-- CreateIndex\nCREATE INDEX \"User_age_idx\" ON \"User\"(\"age\");\n"),
    )
    .commit("edit");
    let run = verify(r.path(), &["--base", "main"]);
    let edited = run.finding("edited-applied-migration");
    assert!(
        edited["evidence"]
            .to_string()
            .contains("+CREATE INDEX \\\"User_age_idx\\\""),
        "the diff is shown: {edited}"
    );
    let statics: Vec<_> = run
        .findings()
        .into_iter()
        .filter(|f| f["rule"].as_str().unwrap_or("").starts_with("squawk/"))
        .collect();
    assert!(
        statics
            .iter()
            .all(|f| f["line"].as_u64().unwrap_or(0) >= 16),
        "nothing before the edit is linted again: {statics:?}"
    );
    assert!(
        statics
            .iter()
            .any(|f| f["rule"] == "squawk/require-concurrent-index-creation"),
        "the new index statement is linted: {statics:?}"
    );
    assert!(
        run.notes()
            .contains("only the 1 statements the edit changed"),
        "{}",
        run.notes()
    );
}

#[test]
fn prisma_version_that_is_not_a_version_is_bad_input() {
    let r = Repo::with_base();
    let run = verify(r.path(), &["--base", "main", "--prisma-version", "banana"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("banana"), "{}", run.stderr);
    std::fs::write(r.path().join(".ci-gate.yml"), "\nprisma-version: banana\n").unwrap_or_default();
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(".ci-gate.yml") && run.stderr.contains('2'),
        "{}",
        run.stderr
    );
}

#[test]
fn monorepo_sub_folder_finds_the_root_config_and_lockfile() {
    // apps/web holds the Prisma project; the repository root holds .ci-gate.yml and the
    // workspace's pnpm 9 lockfile.
    let r = Repo::new();
    let root = r.path();
    let web = root.join("apps/web");
    std::fs::create_dir_all(&web).unwrap_or_default();
    std::fs::rename(root.join("prisma"), web.join("prisma")).unwrap_or_default();
    std::fs::remove_file(root.join("package.json")).unwrap_or_default();
    std::fs::write(web.join("package.json"), r#"{"name":"web"}"#).unwrap_or_default();
    std::fs::write(
        root.join("pnpm-lock.yaml"),
        "lockfileVersion: '9.0'\n\npackages:\n\n  prisma@7.4.1:\n    resolution: {integrity: x}\n",
    )
    .unwrap_or_default();
    std::fs::write(
        root.join(".ci-gate.yml"),
        "rules:\n  missing-lock-timeout: off\n",
    )
    .unwrap_or_default();
    let m = web.join("prisma/migrations/20240101000000_init");
    std::fs::create_dir_all(&m).unwrap_or_default();
    std::fs::write(m.join("migration.sql"), common::repo::INIT).unwrap_or_default();
    r.commit("monorepo");
    r.branch("pr");
    let m = web.join("prisma/migrations/20240201000000_user_name");
    std::fs::create_dir_all(&m).unwrap_or_default();
    std::fs::write(m.join("migration.sql"), USER_NAME).unwrap_or_default();
    r.commit("pr");
    let run = verify(&web, &["--base", "main"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let header = run.json.clone().unwrap_or_default()["prisma"].clone();
    let text = header.to_string();
    assert!(
        text.contains("7.4.1") && text.contains("pnpm-lock.yaml"),
        "{header}"
    );
    assert!(!text.contains("7.4.1:"), "{header}");
    assert!(
        finding_of(&run, "missing-lock-timeout").is_empty(),
        "the root config applies"
    );
}

/// Locks "User" from a second session in every database where the pause migration is running,
/// for `hold`, until the child exits. Returns how many databases it locked.
async fn lock_each_paused_database(
    admin: &str,
    child: &mut std::process::Child,
    hold: std::time::Duration,
) -> usize {
    use sqlx::Connection;
    let mut locked = std::collections::HashSet::new();
    let mut holders = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        let Ok(mut conn) = sqlx::PgConnection::connect(admin).await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let paused: Vec<(String,)> = sqlx::query_as(
            "SELECT datname::text FROM pg_stat_activity WHERE datname LIKE 'cigate_%' AND query LIKE '%pg_sleep(3)%' AND state = 'active'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
        let _ = conn.close().await;
        for (db,) in paused {
            if !locked.insert(db.clone()) {
                continue;
            }
            let url = admin.replacen("/postgres?", &format!("/{db}?"), 1);
            holders.push(tokio::spawn(async move {
                let Ok(mut c) = sqlx::PgConnection::connect(&url).await else {
                    return;
                };
                let _ = sqlx::raw_sql("BEGIN; LOCK TABLE \"User\" IN ACCESS SHARE MODE")
                    .execute(&mut c)
                    .await;
                tokio::time::sleep(hold).await;
                let _ = sqlx::raw_sql("COMMIT").execute(&mut c).await;
                let _ = c.close().await;
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for h in holders {
        let _ = h.await;
    }
    locked.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_wait_beyond_the_declared_lock_timeout_fails_the_migration() {
    let cluster = ci_gate::provision::local::start(&common::local_request("lock-wait"))
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    let url = common::cluster_url(&cluster);
    let r = Repo::new();
    std::fs::write(r.path().join(".ci-gate.yml"), "lock-timeout: 1s\n").unwrap_or_default();
    r.write("20240101000000_init", common::repo::INIT)
        .commit("base");
    r.branch("pr");
    // The pause gives the test time to take its lock before the ALTER, as a long-running query
    // in production would hold one.
    r.write("20240301000000_pause", "SELECT pg_sleep(3);\n")
        .write("20240302000000_user_name", USER_NAME)
        .commit("pr");
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut child = common::ci_gate(tmp.path())
        .arg("verify")
        .arg(r.path())
        .args([
            "--base",
            "main",
            "--provider",
            "url",
            "--database-url",
            &url,
            "--json",
            "-",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let locked =
        lock_each_paused_database(&url, &mut child, std::time::Duration::from_secs(4)).await;
    let run = common::finish(child.wait_with_output().unwrap_or_else(|e| panic!("{e}")));
    let _ = cluster.stop();
    assert!(locked >= 1, "the test never saw the pause migration run");
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let failed: Vec<_> = run
        .findings()
        .into_iter()
        .filter(|f| f["migration"] == "20240302000000_user_name")
        .filter(|f| f.to_string().contains("lock timeout"))
        .collect();
    assert!(
        !failed.is_empty(),
        "the ALTER fails on the lock timeout: {:?}",
        run.findings()
    );
    assert!(
        finding_of(&run, "missing-lock-timeout").is_empty(),
        "{:?}",
        run.rules()
    );
}

#[test]
fn auto_provider_prefers_this_machines_server_binaries() {
    // The README's order: local binaries of the requested major first (Docker, even with its
    // image present, only after them).
    let r = Repo::with_base();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = common::ci_gate(tmp.path())
        .arg("verify")
        .arg(r.path())
        .args(["--base", "main", "--provider", "auto", "--json", "-"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let run = common::finish(out);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let server = run.json.clone().unwrap_or_default()["server"].clone();
    assert_eq!(server["provider"], "local", "{server}");
}
