//! The seeded run fills only the base tables the new migrations can reach (src/run/focus.rs), and
//! when the locks show a statement reached another table, it is traced again with every table
//! seeded: a check never runs on less than it claims.

mod common;

use ci_gate::provision;
use common::repo::{Repo, verify};
use common::{admin_builder, local_request, migration, whole_file};

const BASE: &str = r#"-- CreateTable
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,

    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Post" (
    "id" SERIAL NOT NULL,
    "title" TEXT NOT NULL,
    "authorId" INTEGER NOT NULL,

    CONSTRAINT "Post_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Comment" (
    "id" SERIAL NOT NULL,
    "postId" INTEGER NOT NULL,

    CONSTRAINT "Comment_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Report" (
    "id" SERIAL NOT NULL,
    "body" TEXT NOT NULL,

    CONSTRAINT "Report_pkey" PRIMARY KEY ("id")
);

-- AddForeignKey
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Comment" ADD CONSTRAINT "Comment_postId_fkey" FOREIGN KEY ("postId") REFERENCES "Post"("id") ON DELETE CASCADE ON UPDATE CASCADE;

CREATE FUNCTION purge_old() RETURNS void LANGUAGE sql AS $$ DELETE FROM "Report" $$;
"#;

/// Seed and trace `pr` on a clone of BASE; the tables filled and those reached outside the focus.
async fn seeded_tables(pr: &str, all_tables: bool) -> (Vec<String>, Vec<String>) {
    let server = provision::provision(&local_request("seed-focus"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let opts = whole_file();
    let builder = admin_builder(&server, &opts);
    let base = migration("20240101000000_init", BASE);
    let new = migration("20240201000000_pr", pr);
    let db = builder
        .create("base", None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    builder
        .apply(&db, &[&base])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let seeded = builder
        .create("seeded", Some(&db))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let tr = builder
        .trace(&seeded, &[&new], None, all_tables)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop(builder);
    server.shutdown().await;
    (tr.seed.filled.keys().cloned().collect(), tr.outside)
}

#[tokio::test]
async fn seeded_run_fills_the_named_tables_and_their_parents() {
    // Post is named: its parent User comes along (rows need authors); its child Comment and
    // the unrelated Report are out of reach.
    let (filled, outside) = seeded_tables(
        "-- AlterTable\nALTER TABLE \"Post\" ADD COLUMN \"subtitle\" TEXT;\n",
        false,
    )
    .await;
    assert_eq!(filled, vec!["\"public\".\"Post\"", "\"public\".\"User\""]);
    assert!(outside.is_empty(), "{outside:?}");
    // The same with every table: all four.
    let (filled, _) = seeded_tables(
        "-- AlterTable\nALTER TABLE \"Post\" ADD COLUMN \"subtitle\" TEXT;\n",
        true,
    )
    .await;
    assert_eq!(filled.len(), 4, "{filled:?}");
}

#[tokio::test]
async fn a_delete_reaching_a_child_table_is_named_by_the_locks() {
    // Deleting posts cascades into Comment, which the text does not name.
    let (filled, outside) = seeded_tables("DELETE FROM \"Post\";\n", false).await;
    assert!(
        !filled.contains(&"\"public\".\"Comment\"".to_string()),
        "{filled:?}"
    );
    assert_eq!(outside, vec!["public.\"Comment\""]);
}

#[tokio::test]
async fn a_table_reached_through_a_function_is_named_by_the_locks() {
    let (filled, outside) = seeded_tables("SELECT purge_old();\n", false).await;
    assert!(filled.is_empty(), "{filled:?}");
    assert_eq!(outside, vec!["public.\"Report\""]);
}

fn repo_with(pr: &str) -> Repo {
    let r = Repo::new();
    r.write("20240101000000_init", BASE).commit("base");
    r.branch("pr");
    r.write("20240201000000_pr", pr).commit("pr");
    r
}

#[test]
fn a_focus_miss_is_traced_again_with_every_table_seeded() {
    let r = repo_with("SELECT purge_old();\n");
    let run = verify(r.path(), &["--base", "main"]);
    let notes = run.notes();
    assert!(
        notes.contains("reached public.\\\"Report\\\"")
            && notes.contains("traced again with all 4 tables seeded"),
        "{notes}\n{}",
        run.stdout
    );
    // The rows the function deletes were seeded, so the deletion is observed.
    let f = run.finding("deletes-rows");
    assert!(f.to_string().contains("Report"), "{f}");
}

#[test]
fn a_named_table_is_traced_once() {
    let r = repo_with("-- a cleanup\nDELETE FROM \"Report\";\n");
    let run = verify(r.path(), &["--base", "main"]);
    let notes = run.notes();
    assert!(!notes.contains("traced again"), "{notes}");
    let f = run.finding("deletes-rows");
    assert!(f.to_string().contains("Report"), "{f}");
}
