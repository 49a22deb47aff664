//! Destructive and dangerous operations, observed on a real server: a pull request with one of
//! each problem gets exactly the expected rule at the right file:line with evidence from the
//! server; a safe pull request and the quiet counterpart of every rule get none.

mod common;

use std::collections::BTreeSet;

use common::repo::{Repo, verify};

const BASE: &str = r#"-- CreateEnum
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN', 'GUEST');

-- CreateSchema
CREATE SCHEMA "reporting";

-- CreateTable
CREATE TABLE "reporting"."Daily" ("day" DATE NOT NULL);

-- CreateTable
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "legacy" TEXT,
    "role" "Role" NOT NULL DEFAULT 'USER',

    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Post" (
    "id" SERIAL NOT NULL,
    "title" TEXT NOT NULL,
    "subtitle" TEXT,
    "slug" VARCHAR(100),
    "views" INTEGER NOT NULL DEFAULT 0,
    "authorId" INTEGER NOT NULL,

    CONSTRAINT "Post_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Session" ("id" SERIAL NOT NULL, "token" TEXT NOT NULL, CONSTRAINT "Session_pkey" PRIMARY KEY ("id"));

-- CreateTable
CREATE TABLE "AuditLog" ("id" SERIAL NOT NULL, "event" TEXT NOT NULL, CONSTRAINT "AuditLog_pkey" PRIMARY KEY ("id"));

-- CreateTable
CREATE TABLE "Tag" ("id" SERIAL NOT NULL, "name" TEXT NOT NULL, CONSTRAINT "Tag_pkey" PRIMARY KEY ("id"));

-- AddForeignKey
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
"#;

fn base_repo() -> Repo {
    let r = Repo::new();
    r.write("20240101000000_init", BASE).commit("base");
    r.branch("pr");
    r
}

/// (migration, sql, expected (rule, line))
type Problem = (&'static str, &'static str, &'static [(&'static str, usize)]);

const PROBLEMS: &[Problem] = &[
    (
        "20240301000000_drop_legacy",
        "SET lock_timeout = '5s';\n-- AlterTable\nALTER TABLE \"User\" DROP COLUMN \"legacy\";\n",
        &[("drops-column", 3)],
    ),
    (
        "20240302000000_post_title_idx",
        "SET lock_timeout = '5s';\n-- CreateIndex\nCREATE INDEX \"Post_title_idx\" ON \"Post\"(\"title\");\n",
        &[("blocks-writes", 3)],
    ),
    (
        "20240303000000_views_bigint",
        "SET lock_timeout = '5s';\n-- AlterTable\nALTER TABLE \"Post\" ALTER COLUMN \"views\" SET DATA TYPE BIGINT;\n",
        &[("rewrites-table", 3)],
    ),
    (
        "20240304000000_clear_sessions",
        "-- Remove stale sessions\nDELETE FROM \"Session\";\n",
        &[("deletes-rows", 2)],
    ),
    (
        "20240305000000_rename_name",
        "SET lock_timeout = '5s';\nALTER TABLE \"User\" RENAME COLUMN \"name\" TO \"fullName\";\n",
        &[("renames-column", 2)],
    ),
    (
        "20240306000000_drop_audit_in_do",
        "SET lock_timeout = '5s';\nDO $$\nBEGIN\n  EXECUTE 'DROP TABLE \"AuditLog\"';\nEND $$;\n",
        &[("drops-table", 2)],
    ),
    (
        "20240307000000_rename_tag",
        "SET lock_timeout = '5s';\nALTER TABLE \"Tag\" RENAME TO \"Label\";\n",
        &[("renames-table", 2)],
    ),
    (
        "20240308000000_drop_reporting",
        "SET lock_timeout = '5s';\nDROP SCHEMA \"reporting\" CASCADE;\n",
        &[("drops-schema", 2), ("drops-table", 2)],
    ),
    (
        "20240309000000_role_without_guest",
        "SET lock_timeout = '5s';\n-- AlterEnum\nCREATE TYPE \"Role_new\" AS ENUM ('USER', 'ADMIN');\nALTER TABLE \"User\" ALTER COLUMN \"role\" DROP DEFAULT;\nALTER TABLE \"User\" ALTER COLUMN \"role\" TYPE \"Role_new\" USING (\"role\"::text::\"Role_new\");\nALTER TYPE \"Role\" RENAME TO \"Role_old\";\nALTER TYPE \"Role_new\" RENAME TO \"Role\";\nDROP TYPE \"Role_old\";\nALTER TABLE \"User\" ALTER COLUMN \"role\" SET DEFAULT 'USER';\n",
        &[("drops-enum-value", 7), ("rewrites-table", 5)],
    ),
    (
        "20240310000000_slug_short",
        "SET lock_timeout = '5s';\nALTER TABLE \"Post\" ALTER COLUMN \"slug\" SET DATA TYPE VARCHAR(20);\n",
        &[("narrows-column-type", 2), ("rewrites-table", 2)],
    ),
    (
        "20240311000000_subtitle_required",
        "SET lock_timeout = '5s';\nALTER TABLE \"Post\" ALTER COLUMN \"subtitle\" SET NOT NULL;\n",
        &[("blocks-reads-writes", 2)],
    ),
    (
        "20240312000000_email_no_timeout",
        "-- AlterTable\nALTER TABLE \"User\" ADD COLUMN \"nickname\" TEXT;\n",
        &[("missing-lock-timeout", 2)],
    ),
    // Last: the seeded run stops at a failure.
    (
        "20240320000000_post_tenant",
        "-- AlterTable\nALTER TABLE \"Post\" ADD COLUMN \"tenantId\" TEXT NOT NULL;\n",
        &[("fails-on-existing-rows", 2)],
    ),
];

#[test]
fn one_of_each_problem_gets_exactly_the_expected_rule_at_its_line() {
    let r = base_repo();
    for (name, sql, _) in PROBLEMS {
        r.write(name, sql);
    }
    r.commit("problems");
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let findings = run.findings();
    for (name, _, expected) in PROBLEMS {
        let got: BTreeSet<String> = findings
            .iter()
            .filter(|f| {
                f["migration"] == *name
                    && f["rule"]
                        .as_str()
                        .is_some_and(|r| !r.starts_with("squawk/"))
            })
            .map(|f| f["rule"].as_str().unwrap_or("").to_string())
            .collect();
        let want: BTreeSet<String> = expected.iter().map(|(r, _)| r.to_string()).collect();
        assert_eq!(
            got,
            want,
            "{name}: findings {:#?}",
            findings
                .iter()
                .filter(|f| f["migration"] == *name)
                .collect::<Vec<_>>()
        );
        for (rule, line) in *expected {
            let f = findings
                .iter()
                .find(|f| f["migration"] == *name && f["rule"] == *rule)
                .cloned()
                .unwrap_or_default();
            assert_eq!(f["file"], format!("prisma/migrations/{name}/migration.sql"));
            assert_eq!(f["line"], *line as u64, "{name} {rule}: {f}");
            let evidence = f["evidence"].to_string();
            assert!(
                evidence.contains("observed") || evidence.contains("proven"),
                "{name} {rule}: evidence from the server: {evidence}"
            );
        }
    }
    // The failing migration applied on the empty base (incremental) but not on seeded rows.
    let f = run.finding("fails-on-existing-rows");
    assert!(f["message"].as_str().unwrap_or("").contains("23502"), "{f}");
    assert!(f["fix"].as_str().unwrap_or("").contains("nullable"), "{f}");
    // The table row shows the strongest lock.
    let json = run.json.clone().unwrap_or_default();
    let row = json["migrations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .find(|m| m["name"] == "20240303000000_views_bigint")
        .unwrap_or_default();
    assert_eq!(row["lock"], "ACCESS EXCLUSIVE on public.\"Post\"");
}

#[test]
fn a_safe_pull_request_gets_no_error_and_no_lock_warning() {
    let r = base_repo();
    r.write(
        "20240401000000_comments",
        "SET lock_timeout = '5s';\n-- CreateTable\nCREATE TABLE \"Comment\" (\n    \"id\" SERIAL NOT NULL,\n    \"body\" TEXT NOT NULL,\n    \"postId\" INTEGER NOT NULL,\n\n    CONSTRAINT \"Comment_pkey\" PRIMARY KEY (\"id\")\n);\n\n-- CreateIndex\nCREATE INDEX \"Comment_postId_idx\" ON \"Comment\"(\"postId\");\n\n-- AddForeignKey\nALTER TABLE \"Comment\" ADD CONSTRAINT \"Comment_postId_fkey\" FOREIGN KEY (\"postId\") REFERENCES \"Post\"(\"id\") ON DELETE RESTRICT ON UPDATE CASCADE;\n",
    )
    .write("20240402000000_user_bio", "SET lock_timeout = '5s';\n-- AlterTable\nALTER TABLE \"User\" ADD COLUMN \"bio\" TEXT;\n")
    .write("20240403000000_post_slug_idx", "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"Post_slug_idx\" ON \"Post\"(\"slug\");\n")
    .write(
        "20240404000000_backfill_bio",
        "-- Backfill in batches\nUPDATE \"User\" SET \"bio\" = '' WHERE \"id\" IN (SELECT \"id\" FROM \"User\" WHERE \"bio\" IS NULL LIMIT 1000);\n",
    )
    .commit("safe");
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.findings());
    let lock_findings: Vec<_> = run
        .findings()
        .into_iter()
        .filter(|f| f["category"] == "lock")
        .collect();
    assert!(lock_findings.is_empty(), "{lock_findings:#?}");
}

#[test]
fn each_rule_stays_quiet_on_its_safe_counterpart() {
    let r = base_repo();
    r.write(
        "20240501000000_new_things",
        "SET lock_timeout = '5s';\nCREATE TABLE \"Draft\" (\"id\" SERIAL NOT NULL, \"title\" TEXT, \"n\" INTEGER, CONSTRAINT \"Draft_pkey\" PRIMARY KEY (\"id\"));\nINSERT INTO \"Draft\" (\"title\", \"n\") VALUES ('a', 1), ('b', 2);\nCREATE SCHEMA \"scratchpad\";\nALTER TABLE \"User\" ADD COLUMN \"tmp\" TEXT;\nALTER TABLE \"User\" ADD COLUMN \"flag\" BOOLEAN NOT NULL DEFAULT false;\nALTER TYPE \"Role\" ADD VALUE 'OWNER';\n",
    )
    .write(
        "20240502000000_undo_new_things",
        "SET lock_timeout = '5s';\nALTER TABLE \"User\" RENAME COLUMN \"tmp\" TO \"tmp2\";\nALTER TABLE \"User\" DROP COLUMN \"tmp2\";\nALTER TABLE \"Draft\" RENAME TO \"Draft2\";\nCREATE INDEX \"Draft2_title_idx\" ON \"Draft2\"(\"title\");\nALTER TABLE \"Draft2\" ALTER COLUMN \"title\" SET NOT NULL;\nALTER TABLE \"Draft2\" ALTER COLUMN \"n\" SET DATA TYPE BIGINT;\nDELETE FROM \"Draft2\";\nDROP TABLE \"Draft2\";\nDROP SCHEMA \"scratchpad\";\nALTER TABLE \"Post\" ALTER COLUMN \"slug\" SET DATA TYPE VARCHAR(200);\n",
    )
    .commit("quiet");
    let run = verify(r.path(), &["--base", "main"]);
    let observed: Vec<_> = run
        .findings()
        .into_iter()
        .filter(|f| f["source"] == "observed" || f["source"] == "proven")
        .collect();
    assert!(observed.is_empty(), "{observed:#?}\n{}", run.stderr);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn static_findings_merge_into_observed_ones_or_are_dismissed_by_the_trace() {
    let r = base_repo();
    for (name, sql, _) in PROBLEMS {
        r.write(name, sql);
    }
    r.commit("problems");
    let run = verify(r.path(), &["--base", "main"]);
    // Every squawk finding with an observed twin joined it or was dismissed: none stands alone.
    let alone: Vec<_> = run
        .findings()
        .into_iter()
        .filter(|f| f["rule"].as_str().is_some_and(|r| r.starts_with("squawk/")))
        .collect();
    assert!(alone.is_empty(), "{alone:#?}");
    let idx = run
        .findings()
        .into_iter()
        .find(|f| f["rule"] == "blocks-writes" && f["migration"] == "20240302000000_post_title_idx")
        .unwrap_or_default();
    assert!(
        idx["evidence"]
            .to_string()
            .contains("static: squawk/require-concurrent-index-creation"),
        "{idx}"
    );
    // The statistics go to the collapsed details (JSON `statistics`), not among the notes.
    let json = run.json.clone().unwrap_or_default();
    let stats = json["statistics"].to_string();
    assert!(
        stats.contains("merged into what the trace observed"),
        "{stats}"
    );
    assert!(
        !json["notes"].to_string().contains("alone would report"),
        "{json}"
    );
}

#[test]
fn a_static_lock_warning_the_trace_shows_harmless_is_dismissed() {
    let r = base_repo();
    // squawk flags the foreign key (adding-foreign-key-constraint); the trace shows the referenced
    // table only locked for an instant, since the new table is empty.
    r.write(
        "20240401000000_comments",
        "SET lock_timeout = '5s';\nCREATE TABLE \"Comment\" (\"id\" SERIAL NOT NULL, \"postId\" INTEGER NOT NULL, CONSTRAINT \"Comment_pkey\" PRIMARY KEY (\"id\"));\nALTER TABLE \"Comment\" ADD CONSTRAINT \"Comment_postId_fkey\" FOREIGN KEY (\"postId\") REFERENCES \"Post\"(\"id\") ON DELETE RESTRICT ON UPDATE CASCADE;\n",
    )
    .commit("comments");
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.findings()
            .iter()
            .all(|f| f["rule"] != "squawk/adding-foreign-key-constraint"),
        "{:#?}",
        run.findings()
    );
    let stats = run.json.clone().unwrap_or_default()["statistics"].to_string();
    assert!(stats.contains("dismissed as harmless"), "{stats}");
}

#[test]
fn allow_directives_mark_findings_allowed_with_their_reason() {
    let r = base_repo();
    r.write(
        "20240301000000_drop_legacy",
        "SET lock_timeout = '5s';\n-- ci-gate: allow drops-column -- unused since v2.3, see #812\nALTER TABLE \"User\" DROP COLUMN \"legacy\";\n",
    )
    .write("20240302000000_drop_name", "SET lock_timeout = '5s';\n-- ci-gate: allow drops-column\nALTER TABLE \"User\" DROP COLUMN \"name\";\n")
    .write("20240303000000_unused_allow", "SET lock_timeout = '5s';\n-- ci-gate: allow drops-table -- nothing is dropped here\nALTER TABLE \"Post\" ADD COLUMN \"x\" TEXT;\n")
    .commit("allows");
    let run = verify(r.path(), &["--base", "main"]);
    let findings = run.findings();
    let legacy = findings
        .iter()
        .find(|f| f["rule"] == "drops-column" && f["migration"] == "20240301000000_drop_legacy")
        .cloned()
        .unwrap_or_default();
    assert_eq!(legacy["allowed"], true, "{legacy}");
    assert_eq!(legacy["allow_reason"], "unused since v2.3, see #812");
    // no reason: not allowed, and the directive itself is a finding
    let name = findings
        .iter()
        .find(|f| f["rule"] == "drops-column" && f["migration"] == "20240302000000_drop_name")
        .cloned()
        .unwrap_or_default();
    assert_eq!(name["allowed"], false);
    let invalid: Vec<_> = findings
        .iter()
        .filter(|f| f["rule"] == "invalid-allow-directive")
        .collect();
    assert_eq!(
        invalid.len(),
        2,
        "missing reason and unused allow: {invalid:#?}"
    );
    assert!(
        invalid
            .iter()
            .any(|f| f["migration"] == "20240303000000_unused_allow" && f["line"] == 2)
    );
    assert_eq!(run.code, 1);
    let json = run.json.clone().unwrap_or_default();
    assert_eq!(json["counts"]["allowed"], 1);
}
