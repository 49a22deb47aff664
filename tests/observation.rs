//! What each migration holds (issue 11): locks an earlier statement took are followed until the
//! transaction ends, and work done under them is an observed finding; the harness never runs a
//! query inside a migration's transaction before its first statement, so observation does not
//! change what it observes.

mod common;

use common::Run;
use common::repo::{Repo, verify};

/// Base: "User" and "Document" (Prisma's generated style).
const INIT: &str = "-- CreateTable\nCREATE TABLE \"User\" (\n    \"id\" TEXT NOT NULL,\n    \"email\" TEXT NOT NULL,\n\n    CONSTRAINT \"User_pkey\" PRIMARY KEY (\"id\")\n);\n\n-- CreateTable\nCREATE TABLE \"Document\" (\n    \"id\" TEXT NOT NULL,\n    \"title\" TEXT NOT NULL,\n    \"userId\" TEXT NOT NULL,\n\n    CONSTRAINT \"Document_pkey\" PRIMARY KEY (\"id\")\n);\n\n-- AddForeignKey\nALTER TABLE \"Document\" ADD CONSTRAINT \"Document_userId_fkey\" FOREIGN KEY (\"userId\") REFERENCES \"User\"(\"id\") ON DELETE CASCADE ON UPDATE CASCADE;\n";

/// `prisma migrate dev`'s file for a new optional relation on `table`: add the column, create the
/// related table, index the column, add the foreign key.
fn add_relation(table: &str) -> String {
    format!(
        "-- AlterTable\nALTER TABLE \"{table}\" ADD COLUMN     \"folderId\" TEXT;\n\n-- CreateTable\nCREATE TABLE \"Folder\" (\n    \"id\" TEXT NOT NULL,\n    \"name\" TEXT NOT NULL,\n\n    CONSTRAINT \"Folder_pkey\" PRIMARY KEY (\"id\")\n);\n\n-- CreateIndex\nCREATE INDEX \"{table}_folderId_idx\" ON \"{table}\"(\"folderId\");\n\n-- AddForeignKey\nALTER TABLE \"{table}\" ADD CONSTRAINT \"{table}_folderId_fkey\" FOREIGN KEY (\"folderId\") REFERENCES \"Folder\"(\"id\") ON DELETE SET NULL ON UPDATE CASCADE;\n"
    )
}

fn pull_request(files: &[(&str, &str)]) -> Repo {
    let r = Repo::new();
    r.write("20240101000000_init", INIT).commit("base");
    r.branch("pr");
    for (name, sql) in files {
        r.write(name, sql);
    }
    r.commit("pr");
    r
}

fn of_rule(run: &Run, rule: &str) -> Vec<serde_json::Value> {
    run.findings()
        .into_iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

fn lines(found: &[serde_json::Value]) -> Vec<u64> {
    found.iter().filter_map(|f| f["line"].as_u64()).collect()
}

#[test]
fn index_build_and_foreign_key_validation_under_add_columns_access_exclusive_are_observed() {
    let r = pull_request(&[("20240201000000_folders", &add_relation("Document"))]);
    let run = verify(r.path(), &["--base", "main"]);
    let found = of_rule(&run, "blocks-reads-writes");
    assert_eq!(lines(&found), vec![13, 16], "{found:?}");
    for f in &found {
        let message = f["message"].as_str().unwrap_or("");
        assert!(
            message.contains("ACCESS EXCLUSIVE on public.\"Document\", taken at line 2"),
            "{message}"
        );
        assert!(f["evidence"].to_string().contains("seeded rows"), "{f}");
    }
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("builds an index")
    );
    assert!(
        found[1]["message"]
            .as_str()
            .unwrap_or("")
            .contains("validates a foreign key")
    );
    // squawk's twins join the observed findings instead of being dismissed.
    assert!(
        found[0]["evidence"]
            .to_string()
            .contains("squawk/require-concurrent-index-creation"),
        "{}",
        found[0]
    );
    assert!(
        found[1]["evidence"]
            .to_string()
            .contains("squawk/adding-foreign-key-constraint"),
        "{}",
        found[1]
    );
}

#[test]
fn the_same_statements_on_a_table_created_in_the_pull_request_get_no_lock_finding() {
    let create = "-- CreateTable\nCREATE TABLE \"Page\" (\n    \"id\" TEXT NOT NULL,\n\n    CONSTRAINT \"Page_pkey\" PRIMARY KEY (\"id\")\n);\n";
    let r = pull_request(&[
        ("20240201000000_pages", create),
        ("20240202000000_folders", &add_relation("Page")),
    ]);
    let run = verify(r.path(), &["--base", "main"]);
    for rule in [
        "blocks-reads-writes",
        "blocks-writes",
        "missing-lock-timeout",
    ] {
        assert!(
            of_rule(&run, rule).is_empty(),
            "{rule}: {:?}",
            run.findings()
        );
    }
}

#[test]
fn with_prisma_7_4_each_statement_commits_and_the_index_build_only_blocks_writes() {
    let r = pull_request(&[("20240201000000_folders", &add_relation("Document"))]);
    let run = verify(r.path(), &["--base", "main", "--prisma-version", "7.4.0"]);
    assert!(
        of_rule(&run, "blocks-reads-writes").is_empty(),
        "{:?}",
        run.findings()
    );
    assert_eq!(
        lines(&of_rule(&run, "blocks-writes")),
        vec![13, 16],
        "{:?}",
        run.findings()
    );
}

#[test]
fn a_migration_setting_its_own_isolation_level_passes() {
    let explicit = "BEGIN;\nSET TRANSACTION ISOLATION LEVEL REPEATABLE READ;\n-- UpdateData\nUPDATE \"User\" SET \"email\" = lower(\"email\");\nCOMMIT;\n";
    let implicit = "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\n-- UpdateData\nUPDATE \"Document\" SET \"title\" = trim(\"title\");\n";
    let r = pull_request(&[
        ("20240201000000_lowercase_emails", explicit),
        ("20240202000000_trim_titles", implicit),
    ]);
    let run = verify(r.path(), &["--base", "main"]);
    for rule in ["fails-on-existing-rows", "migration-fails"] {
        assert!(
            of_rule(&run, rule).is_empty(),
            "{rule}: {:?}",
            run.findings()
        );
    }
}

#[test]
fn observation_does_not_change_outcomes_of_session_and_transaction_state() {
    // Each applies in the plain (incremental) run; traced on seeded rows, each must behave the
    // same: a difference would be a fails-on-existing-rows or a traced failure.
    let corpus: [(&str, &str); 6] = [
        (
            "20240201000000_set_local",
            "SET LOCAL statement_timeout = '5s';\nSET LOCAL lock_timeout = '2s';\n-- AlterTable\nALTER TABLE \"User\" ADD COLUMN     \"bio\" TEXT;\n",
        ),
        (
            "20240202000000_advisory",
            "SELECT pg_advisory_xact_lock(4242);\n-- AlterTable\nALTER TABLE \"User\" ADD COLUMN     \"nick\" TEXT;\nSELECT pg_advisory_xact_lock(4242);\n",
        ),
        (
            "20240203000000_nowait",
            "SET lock_timeout = '2s';\nLOCK TABLE \"Document\" IN SHARE ROW EXCLUSIVE MODE NOWAIT;\n-- AlterTable\nALTER TABLE \"Document\" ADD COLUMN     \"pinned\" BOOLEAN NOT NULL DEFAULT false;\n",
        ),
        (
            "20240204000000_do_block",
            "DO $$\nBEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'Role') THEN\n    CREATE TYPE \"Role\" AS ENUM ('USER', 'ADMIN');\n  END IF;\nEND\n$$;\n",
        ),
        (
            "20240205000000_function",
            "CREATE OR REPLACE FUNCTION touch_title() RETURNS trigger AS $$\nBEGIN\n  NEW.\"title\" := trim(NEW.\"title\");\n  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;\n\nCREATE TRIGGER \"Document_touch\" BEFORE UPDATE ON \"Document\" FOR EACH ROW EXECUTE FUNCTION touch_title();\n",
        ),
        (
            "20240206000000_snapshot_read",
            "BEGIN;\nSET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE;\nSELECT count(*) FROM \"User\";\nCOMMIT;\n",
        ),
    ];
    let r = pull_request(&corpus);
    let run = verify(r.path(), &["--base", "main"]);
    for rule in [
        "fails-on-existing-rows",
        "migration-fails",
        "unterminated-transaction",
    ] {
        assert!(
            of_rule(&run, rule).is_empty(),
            "{rule}: {:?}",
            run.findings()
        );
    }
    let rows = run.json.clone().unwrap_or_default()["migrations"].clone();
    let applied = rows
        .as_array()
        .map(|a| a.iter().filter(|m| m["status"] == "applied").count())
        .unwrap_or(0);
    assert_eq!(applied, corpus.len(), "{rows}");
}

const LT: &str = "SET lock_timeout = '5s';\n";

#[test]
fn eight_migrations_each_with_one_problem_get_every_finding_in_one_run() {
    let files: Vec<(String, String, &str)> = vec![
        ("20240301000000_doc_index", format!("{LT}-- CreateIndex\nCREATE INDEX \"Document_title_idx\" ON \"Document\"(\"title\");\n"), "blocks-writes"),
        ("20240302000000_user_name", format!("{LT}-- AlterTable\nALTER TABLE \"User\" ADD COLUMN     \"name\" TEXT NOT NULL;\n"), "fails-on-existing-rows"),
        ("20240303000000_user_name_idx", format!("{LT}-- CreateIndex\nCREATE INDEX \"User_name_idx\" ON \"User\"(\"name\");\n"), "blocks-writes"),
        ("20240304000000_drop_title", format!("{LT}-- AlterTable\nALTER TABLE \"Document\" DROP COLUMN \"title\";\n"), "drops-column"),
        ("20240305000000_cleanup", format!("{LT}DELETE FROM \"Document\";\n"), "deletes-rows"),
        ("20240306000000_rename", format!("{LT}-- AlterTable\nALTER TABLE \"User\" RENAME COLUMN \"email\" TO \"mail\";\n"), "renames-column"),
        ("20240307000000_narrow", format!("{LT}-- AlterTable\nALTER TABLE \"Document\" ALTER COLUMN \"userId\" SET DATA TYPE VARCHAR(8);\n"), "narrows-column-type"),
        ("20240308000000_hidden_drop", format!("{LT}DO $$ BEGIN EXECUTE 'DROP TABLE \"Document\"'; END $$;\n"), "drops-table"),
    ]
    .into_iter()
    .map(|(n, s, r)| (n.to_string(), s, r))
    .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, s, _)| (n.as_str(), s.as_str()))
        .collect();
    let r = pull_request(&refs);
    let run = verify(r.path(), &["--base", "main"]);
    for (name, _, rule) in &files {
        assert!(
            run.findings()
                .iter()
                .any(|f| f["rule"] == *rule && f["migration"] == name.as_str()),
            "{name}: no {rule} in {:?}",
            run.findings()
                .iter()
                .map(|f| (f["rule"].clone(), f["migration"].clone()))
                .collect::<Vec<_>>()
        );
    }
    assert!(
        run.notes()
            .contains("traced on a fresh copy where it applied without rows"),
        "{}",
        run.notes()
    );
}

#[test]
fn after_a_migration_that_fails_outright_the_rest_is_traced_without_it() {
    let r = pull_request(&[
        (
            "20240301000000_broken",
            &format!("{LT}-- AlterTable\nALTER TABLE \"Nope\" ADD COLUMN     \"x\" INTEGER;\n"),
        ),
        (
            "20240302000000_drop_title",
            &format!("{LT}-- AlterTable\nALTER TABLE \"Document\" DROP COLUMN \"title\";\n"),
        ),
    ]);
    let run = verify(r.path(), &["--base", "main"]);
    assert_eq!(
        of_rule(&run, "migration-fails").len(),
        1,
        "{:?}",
        run.findings()
    );
    let drops = of_rule(&run, "drops-column");
    assert_eq!(drops.len(), 1, "{:?}", run.findings());
    assert!(
        run.notes().contains("fails even without rows"),
        "{}",
        run.notes()
    );
}

#[test]
fn a_migration_that_needs_the_one_left_out_is_not_traced_and_says_so() {
    let r = pull_request(&[
        (
            "20240301000000_broken_create",
            &format!(
                "{LT}-- CreateTable\nCREATE TABLE \"Tag\" (\"id\" TEXT NOT NULL, CONSTRAINT \"Tag_pkey\" PRIMARY KEY (\"id\"));\nSELECT 1/0;\n"
            ),
        ),
        (
            "20240302000000_tag_name",
            &format!("{LT}-- AlterTable\nALTER TABLE \"Tag\" ADD COLUMN     \"name\" TEXT;\n"),
        ),
    ]);
    let run = verify(r.path(), &["--base", "main"]);
    assert!(
        of_rule(&run, "fails-on-existing-rows").is_empty(),
        "{:?}",
        run.findings()
    );
    assert!(
        run.notes()
            .contains("are not traced (they may depend on what was left out)"),
        "{}",
        run.notes()
    );
}

#[test]
fn a_lock_taken_right_after_begin_is_named_by_its_own_statement() {
    let fix = "BEGIN;\n\nLOCK TABLE \"Document\" IN ACCESS EXCLUSIVE MODE;\n\n-- UpdateData\nUPDATE \"Document\" SET \"title\" = trim(\"title\");\n\nCOMMIT;\n";
    let r = pull_request(&[("20240201000000_trim_titles", fix)]);
    let run = verify(r.path(), &["--base", "main"]);
    let found = of_rule(&run, "blocks-reads-writes");
    assert_eq!(lines(&found), vec![6], "{found:?}");
    let message = found[0]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("taken at line 3 by `LOCK TABLE \"Document\" IN ACCESS EXCLUSIVE MODE`"),
        "{message}"
    );
}

#[test]
fn a_resumed_seeded_run_never_fires_pull_request_code_as_the_superuser() {
    // The pull request's own trigger runs when the resumed copy is seeded again: it must run as
    // the migration owner. It refuses to run as a superuser, so seeding "User" would be skipped
    // (and said in the notes) if the rows were written as one.
    let trigger = "CREATE FUNCTION refuse_superuser() RETURNS trigger AS $$\nBEGIN\n  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN\n    RAISE EXCEPTION 'pull request code ran as a superuser';\n  END IF;\n  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;\n\nCREATE TRIGGER \"User_guard\" BEFORE INSERT ON \"User\" FOR EACH ROW EXECUTE FUNCTION refuse_superuser();\n";
    let r = pull_request(&[
        ("20240201000000_guard", trigger),
        (
            "20240202000000_doc_summary",
            &format!(
                "{LT}-- AlterTable\nALTER TABLE \"Document\" ADD COLUMN     \"summary\" TEXT NOT NULL;\n"
            ),
        ),
        (
            "20240203000000_user_nick",
            &format!(
                "{LT}-- AlterTable\nALTER TABLE \"User\" ADD COLUMN     \"nick\" TEXT NOT NULL;\n"
            ),
        ),
    ]);
    let run = verify(r.path(), &["--base", "main"]);
    assert!(
        run.notes().contains("fresh copy"),
        "resumed: {}",
        run.notes()
    );
    assert!(
        !run.notes().contains("ran as a superuser"),
        "{}",
        run.notes()
    );
    assert!(!run.stderr.contains("ran as a superuser"), "{}", run.stderr);
    let nick: Vec<_> = of_rule(&run, "fails-on-existing-rows")
        .into_iter()
        .filter(|f| f["migration"] == "20240203000000_user_nick")
        .collect();
    assert_eq!(
        nick.len(),
        1,
        "User was seeded on the resumed copy: {:?}",
        run.findings()
    );
}
