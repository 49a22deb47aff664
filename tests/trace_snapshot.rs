//! The trace follows the locks a statement holds instead of reading the whole scope around it
//! (src/run/trace.rs): what it observes must be what full snapshots of the scope observe, each
//! change attributed to the statement that made it, never to a later one.

mod common;

use ci_gate::discover::Migration;
use ci_gate::provision::{self, Server, connect_quiet};
use ci_gate::run::focus::Scope;
use ci_gate::run::prisma::Semantics;
use ci_gate::run::trace::{self, MigrationTrace, StatementTrace};
use common::{local_request, migration};
use sqlx::{AssertSqlSafe, PgConnection};

const BASE: &str = r#"
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN', 'GUEST');
CREATE TYPE "Mood" AS ENUM ('happy', 'sad');
CREATE SCHEMA "reporting";
CREATE TABLE "reporting"."Daily" ("day" DATE NOT NULL);
CREATE TABLE "User" (
    "id" SERIAL PRIMARY KEY,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "legacy" TEXT,
    "role" "Role" NOT NULL DEFAULT 'USER',
    "mood" "Mood"
);
CREATE TABLE "Post" (
    "id" SERIAL PRIMARY KEY,
    "title" TEXT NOT NULL,
    "slug" VARCHAR(100),
    "views" INTEGER NOT NULL DEFAULT 0,
    "authorId" INTEGER NOT NULL REFERENCES "User"("id")
);
CREATE INDEX "Post_title_idx" ON "Post"("title");
CREATE TABLE "Comment" ("id" SERIAL PRIMARY KEY, "postId" INTEGER REFERENCES "Post"("id") ON DELETE CASCADE, "body" TEXT);
CREATE TABLE "Session" ("id" SERIAL PRIMARY KEY, "token" TEXT NOT NULL);
CREATE TABLE "AuditLog" ("id" SERIAL PRIMARY KEY, "event" TEXT NOT NULL);
CREATE TABLE "Tag" ("id" SERIAL PRIMARY KEY, "name" TEXT NOT NULL);
CREATE FUNCTION try_purge() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM "Session";
  RAISE EXCEPTION 'rolled back';
EXCEPTION WHEN others THEN NULL;
END $$;
INSERT INTO "User" ("email", "name", "legacy", "mood") SELECT 'u' || g, 'n' || g, 'l' || g, 'sad' FROM generate_series(1, 20) g;
INSERT INTO "Post" ("title", "slug", "authorId") SELECT 't' || g, 's' || g, 1 + g % 20 FROM generate_series(1, 30) g;
INSERT INTO "Comment" ("postId", "body") SELECT 1 + g % 30, 'b' FROM generate_series(1, 40) g;
INSERT INTO "Session" ("token") SELECT 'k' || g FROM generate_series(1, 10) g;
INSERT INTO "AuditLog" ("event") SELECT 'e' || g FROM generate_series(1, 10) g;
INSERT INTO "Tag" ("name") SELECT 'g' || g FROM generate_series(1, 5) g;
INSERT INTO "reporting"."Daily" SELECT DATE '2024-01-01' + g FROM generate_series(1, 5) g;
"#;

/// A history touching every kind of change the trace observes, each migration relying on the
/// ones before it.
fn history() -> Vec<Migration> {
    let m = |name: &str, sql: &str| migration(name, sql);
    vec![
        m(
            "20240301000000_views_bigint",
            "ALTER TABLE \"Post\" ALTER COLUMN \"views\" SET DATA TYPE BIGINT;\n",
        ),
        m(
            "20240302000000_post_subtitle",
            "ALTER TABLE \"Post\" ADD COLUMN \"subtitle\" TEXT;\n",
        ),
        m(
            "20240303000000_many",
            "CREATE TABLE \"Note\" (\"id\" SERIAL PRIMARY KEY, \"text\" TEXT);\n\
             ALTER TABLE \"User\" RENAME COLUMN \"name\" TO \"fullName\";\n\
             DROP TABLE \"Tag\";\n\
             CREATE INDEX \"Note_text_idx\" ON \"Note\"(\"text\");\n\
             UPDATE \"User\" SET \"legacy\" = NULL;\n\
             ALTER TABLE \"User\" DROP COLUMN \"legacy\";\n\
             INSERT INTO \"Note\" (\"text\") VALUES ('a');\n\
             DELETE FROM \"Session\" WHERE \"id\" % 2 = 0;\n\
             DROP TABLE \"Note\";\n",
        ),
        m(
            "20240304000000_role_without_guest",
            "CREATE TYPE \"Role_new\" AS ENUM ('USER', 'ADMIN');\n\
             ALTER TABLE \"User\" ALTER COLUMN \"role\" DROP DEFAULT;\n\
             ALTER TABLE \"User\" ALTER COLUMN \"role\" TYPE \"Role_new\" USING (\"role\"::text::\"Role_new\");\n\
             ALTER TYPE \"Role\" RENAME TO \"Role_old\";\n\
             ALTER TYPE \"Role_new\" RENAME TO \"Role\";\n\
             DROP TYPE \"Role_old\";\n\
             ALTER TABLE \"User\" ALTER COLUMN \"role\" SET DEFAULT 'USER';\n",
        ),
        m(
            "20240305000000_mood_labels",
            "ALTER TYPE \"Mood\" ADD VALUE 'meh';\nALTER TYPE \"Mood\" RENAME VALUE 'sad' TO 'blue';\n",
        ),
        m(
            "20240306000000_mood_renamed_then_text",
            "ALTER TYPE \"Mood\" RENAME TO \"Feeling\";\nCREATE TYPE \"Empty\" AS ENUM ();\n\
             ALTER TABLE \"User\" ALTER COLUMN \"mood\" TYPE TEXT;\n",
        ),
        m(
            "20240307000000_audit",
            "ALTER TABLE \"AuditLog\" RENAME TO \"Audit\";\nTRUNCATE \"Audit\";\n",
        ),
        m(
            "20240308000000_delete_post",
            "DELETE FROM \"Post\" WHERE \"id\" = 1;\n",
        ),
        m("20240309000000_try_purge", "SELECT try_purge();\n"),
        m(
            "20240310000000_do_block",
            "DO $$ BEGIN UPDATE \"Post\" SET \"title\" = 'x' WHERE \"id\" = 2; END $$;\n\
             ALTER TABLE \"Post\" ADD COLUMN \"rank\" INTEGER;\n",
        ),
        m(
            "20240311000000_rename_schema",
            "ALTER SCHEMA \"reporting\" RENAME TO \"reports\";\nALTER TABLE \"Session\" ADD COLUMN \"y\" INTEGER;\n",
        ),
        m(
            "20240312000000_drop_schema",
            "DROP SCHEMA \"reports\" CASCADE;\n",
        ),
        m(
            "20240313000000_concurrently",
            "CREATE INDEX CONCURRENTLY \"User_email_idx\" ON \"User\"(\"email\");\n",
        ),
        m(
            "20240314000000_own_transaction",
            "BEGIN;\nALTER TABLE \"Session\" ADD COLUMN \"x\" INTEGER;\nALTER TABLE \"Session\" RENAME COLUMN \"token\" TO \"secret\";\nCOMMIT;\n",
        ),
        m(
            "20240315000000_rename_index",
            "ALTER INDEX \"User_email_idx\" RENAME TO \"User_email_idx2\";\nALTER INDEX \"Post_title_idx\" RENAME TO \"Post_title_idx2\";\n",
        ),
        m(
            "20240316000000_slug_short",
            "SET lock_timeout = '5s';\nALTER TABLE \"Post\" ALTER COLUMN \"slug\" SET DATA TYPE VARCHAR(20);\n",
        ),
        m(
            "20240317000000_search_path",
            "CREATE SCHEMA \"extra\";\nSET search_path = \"extra\", public;\nCREATE TABLE \"Feeling\" (\"id\" INTEGER);\n\
             ALTER TABLE public.\"Post\" DROP COLUMN \"subtitle\";\nRESET search_path;\n",
        ),
        // Last: the run stops at a failure.
        m(
            "20240320000000_post_tenant",
            "ALTER TABLE \"Post\" ADD COLUMN \"tenantId\" TEXT NOT NULL;\n",
        ),
    ]
}

async fn admin(server: &Server, db: &str) -> PgConnection {
    connect_quiet(&server.admin_options(db))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{e}: {sql}"));
}

/// Clone `template` into `db` and trace `migrations` there: on full snapshots, or following
/// the locks. `scope`: the tables seeded (None: all).
async fn traced(
    server: &Server,
    template: &str,
    db: &str,
    migrations: &[Migration],
    semantics: Semantics,
    scope: Option<&[&str]>,
    full_snapshots: bool,
) -> Vec<MigrationTrace> {
    let mut postgres = admin(server, "postgres").await;
    exec(
        &mut postgres,
        &format!("CREATE DATABASE \"{db}\" TEMPLATE \"{template}\""),
    )
    .await;
    let mut conn = admin(server, db).await;
    let scope = match scope {
        None => Scope::All,
        Some(names) => {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let oids: Vec<(i64,)> = sqlx::query_as(
                "SELECT c.oid::int8 FROM pg_class c WHERE c.relname = ANY($1) AND c.relkind = 'r'",
            )
            .bind(&names)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            Scope::Only(oids.into_iter().map(|o| o.0).collect())
        }
    };
    let mut base = trace::baseline(&mut conn, &scope)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    base.full_snapshots = full_snapshots;
    let mut out = Vec::new();
    for m in migrations {
        let t = trace::trace_migration(&mut conn, m, semantics, &mut base).await;
        let failed = t.failure.is_some();
        out.push(t);
        if failed {
            break;
        }
    }
    out
}

/// A statement's observations, order-free, without timings and OIDs.
fn facts(st: &StatementTrace) -> String {
    fn sorted<T: std::fmt::Debug>(v: &[T]) -> Vec<String> {
        let mut s: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
        s.sort();
        s
    }
    let locks: Vec<_> = st
        .locks
        .iter()
        .map(|l| (&l.relation, &l.table, &l.mode, l.preexisting))
        .collect();
    let text = format!(
        "line {} rows {} timeout {:?}\n  locks {:?}\n  rewritten {:?}\n  scanned {:?}\n  dropped tables {:?} columns {:?} schemas {:?} enum values {:?}\n  renamed tables {:?} columns {:?}\n  types {:?}\n  rows {:?}",
        st.line,
        st.rows_affected,
        st.lock_timeout,
        sorted(&locks),
        sorted(&st.rewritten),
        sorted(&st.scanned),
        sorted(&st.dropped_tables),
        sorted(&st.dropped_columns),
        sorted(&st.dropped_schemas),
        sorted(&st.dropped_enum_values),
        sorted(&st.renamed_tables),
        sorted(&st.renamed_columns),
        sorted(&st.type_changes),
        sorted(&st.row_changes),
    );
    // A relation the catalog no longer names shows as "oid N": OIDs differ between clones.
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("oid ") {
        out.push_str(&rest[..i + 4]);
        rest = rest[i + 4..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push('N');
    }
    out.push_str(rest);
    out
}

fn render(traces: &[MigrationTrace]) -> Vec<String> {
    let mut out = Vec::new();
    for t in traces {
        out.push(format!(
            "{} per_statement={} failed={}",
            t.name,
            t.per_statement,
            t.failure.is_some()
        ));
        for st in &t.statements {
            out.push(format!("  {}", facts(st)));
        }
    }
    out
}

struct Lab {
    server: Server,
    template: String,
}

async fn lab(name: &str) -> Lab {
    let server = provision::provision(&local_request(name))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let template = "trace_base".to_string();
    let mut postgres = admin(&server, "postgres").await;
    exec(&mut postgres, &format!("CREATE DATABASE {template}")).await;
    let mut conn = admin(&server, &template).await;
    exec(&mut conn, BASE).await;
    drop(conn);
    Lab { server, template }
}

fn stmt<'a>(traces: &'a [MigrationTrace], name: &str, i: usize) -> &'a StatementTrace {
    let t = traces
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("{name} not traced"));
    &t.statements[i]
}

#[tokio::test]
async fn following_locks_observes_what_full_snapshots_observe() {
    let lab = lab("trace-snapshot").await;
    let migrations = history();
    let mut n = 0;
    for semantics in [Semantics::WholeFile, Semantics::Statements] {
        for scope in [None, Some(&["User", "Post", "Session"][..])] {
            let mut runs = Vec::new();
            for full in [true, false] {
                n += 1;
                let db = format!("run{n}");
                runs.push(render(
                    &traced(
                        &lab.server,
                        &lab.template,
                        &db,
                        &migrations,
                        semantics,
                        scope,
                        full,
                    )
                    .await,
                ));
            }
            let (reference, followed) = (&runs[0], &runs[1]);
            for (i, (r, f)) in reference.iter().zip(followed).enumerate() {
                assert_eq!(
                    r,
                    f,
                    "{semantics:?}, scope {scope:?}: line {i} differs\nfull snapshots:\n{}\nfollowing locks:\n{}",
                    reference.join("\n"),
                    followed.join("\n")
                );
            }
            assert_eq!(reference.len(), followed.len(), "{semantics:?} {scope:?}");
            // Every migration ran, up to the failing last one.
            assert_eq!(
                reference.iter().filter(|l| !l.starts_with(' ')).count(),
                migrations.len(),
                "{}",
                reference.join("\n")
            );
        }
    }
    lab.server.shutdown().await;
}

#[tokio::test]
async fn each_change_is_attributed_to_the_statement_that_made_it() {
    let lab = lab("trace-attribution").await;
    let migrations = history();
    for semantics in [Semantics::WholeFile, Semantics::Statements] {
        let db = format!("attr_{semantics:?}").to_lowercase();
        let t = traced(
            &lab.server,
            &lab.template,
            &db,
            &migrations,
            semantics,
            None,
            false,
        )
        .await;
        let all = render(&t).join("\n");
        // Migration 1 rewrites Post; migration 2 adds a column to it, which rewrites nothing.
        let m1 = stmt(&t, "20240301000000_views_bigint", 0);
        assert_eq!(
            m1.rewritten,
            vec![("public.\"Post\"".to_string(), 30)],
            "{all}"
        );
        assert_eq!(m1.type_changes.len(), 1, "{all}");
        let m2 = stmt(&t, "20240302000000_post_subtitle", 0);
        assert!(m2.rewritten.is_empty(), "{all}");
        assert!(m2.type_changes.is_empty(), "{all}");
        // One file, one transaction in WholeFile: the rename and the drop at their statements.
        let many = "20240303000000_many";
        let rename = stmt(&t, many, 1);
        assert_eq!(
            rename.renamed_columns,
            vec![(
                "public.\"User\"".to_string(),
                "name".to_string(),
                "fullName".to_string()
            )],
            "{all}"
        );
        let drop = stmt(&t, many, 2);
        assert_eq!(
            drop.dropped_tables,
            vec!["public.\"Tag\"".to_string()],
            "{all}"
        );
        let drop_col = stmt(&t, many, 5);
        assert_eq!(
            drop_col.dropped_columns,
            vec![(
                "public.\"User\"".to_string(),
                "legacy".to_string(),
                "text".to_string()
            )],
            "{all}"
        );
        let file = t.iter().find(|m| m.name == many).map(|m| &m.statements);
        for (i, st) in file.into_iter().flatten().enumerate() {
            if i != 1 {
                assert!(st.renamed_columns.is_empty(), "statement {i}: {all}");
            }
            if i != 2 {
                assert!(st.dropped_tables.is_empty(), "statement {i}: {all}");
            }
            if i != 5 {
                assert!(st.dropped_columns.is_empty(), "statement {i}: {all}");
            }
        }
        // The renamed enum's new name is the column's old type.
        let mood = stmt(&t, "20240306000000_mood_renamed_then_text", 2);
        assert_eq!(
            mood.type_changes,
            vec![(
                "public.\"User\"".to_string(),
                "mood".to_string(),
                "\"Feeling\"".to_string(),
                "text".to_string()
            )],
            "{all}"
        );
        // A schema renamed without locking its tables.
        let schema = stmt(&t, "20240311000000_rename_schema", 0);
        assert_eq!(
            schema.renamed_tables,
            vec![(
                "reporting.\"Daily\"".to_string(),
                "reports.\"Daily\"".to_string()
            )],
            "{all}"
        );
    }
    lab.server.shutdown().await;
}
