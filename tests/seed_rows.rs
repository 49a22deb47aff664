//! The seeded run fills real schemas with valid rows (src/run/seed/): tables in foreign-key
//! cycles, self-references, tables the history already put rows in, CHECKs, domains, enums,
//! generated and identity columns, partitioned tables, multi-column keys. After seeding every
//! foreign key and CHECK validates, and every sequence is past the keys written; the report
//! states how many of the reached tables got rows.

mod common;

use ci_gate::provision::{self, Server, connect_quiet};
use ci_gate::run::build::TracedRun;
use common::repo::{Repo, verify};
use common::{admin_builder, local_request, migration, whole_file};
use sqlx::{AssertSqlSafe, PgConnection};

/// A Prisma schema with what real ones have: a nullable cycle (User ↔ Account), a nullable
/// self-reference, a one-to-one relation, an admin row the history inserted, a multi-column key.
const INIT: &str = r#"-- CreateEnum
CREATE TYPE "Role" AS ENUM ('OWNER', 'MEMBER');

-- CreateTable
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "role" "Role" NOT NULL DEFAULT 'MEMBER',
    "accountId" TEXT,
    "invitedById" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Account" (
    "id" TEXT NOT NULL,
    "ownerId" INTEGER NOT NULL,
    "plan" TEXT NOT NULL DEFAULT 'free',
    "tags" TEXT[],
    "settings" JSONB NOT NULL,

    CONSTRAINT "Account_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Profile" (
    "id" SERIAL NOT NULL,
    "userId" INTEGER NOT NULL,
    "bio" TEXT,

    CONSTRAINT "Profile_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Membership" (
    "accountId" TEXT NOT NULL,
    "userId" INTEGER NOT NULL,
    "role" "Role" NOT NULL,

    CONSTRAINT "Membership_pkey" PRIMARY KEY ("accountId","userId")
);

-- CreateTable
CREATE TABLE "MembershipNote" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "accountId" TEXT NOT NULL,
    "userId" INTEGER NOT NULL,
    "body" TEXT NOT NULL,

    CONSTRAINT "MembershipNote_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");

-- CreateIndex
CREATE UNIQUE INDEX "Profile_userId_key" ON "Profile"("userId");

-- AddForeignKey
ALTER TABLE "User" ADD CONSTRAINT "User_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "Account"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "User" ADD CONSTRAINT "User_invitedById_fkey" FOREIGN KEY ("invitedById") REFERENCES "User"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Account" ADD CONSTRAINT "Account_ownerId_fkey" FOREIGN KEY ("ownerId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Profile" ADD CONSTRAINT "Profile_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Membership" ADD CONSTRAINT "Membership_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "Account"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Membership" ADD CONSTRAINT "Membership_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "MembershipNote" ADD CONSTRAINT "MembershipNote_accountId_userId_fkey" FOREIGN KEY ("accountId", "userId") REFERENCES "Membership"("accountId", "userId") ON DELETE CASCADE ON UPDATE CASCADE;
"#;

/// The history's own rows: the first user and their account (the sequence moves by one).
const ADMIN: &str = r#"-- Seed the first owner
INSERT INTO "User" ("email", "role", "updatedAt") VALUES ('admin@example.com', 'OWNER', CURRENT_TIMESTAMP);
INSERT INTO "Account" ("id", "ownerId", "settings") VALUES ('acc_admin', 1, '{}');
UPDATE "User" SET "accountId" = 'acc_admin' WHERE "id" = 1;
"#;

/// Hand-written SQL Prisma lets through: CHECKs the synthetic values break, a domain, generated
/// and identity columns, a partitioned table, a NOT NULL self-reference and a NOT NULL cycle
/// through a deferrable key.
const HAND_WRITTEN: &str = r#"-- Constraints Prisma cannot express
CREATE DOMAIN "Slug" AS TEXT CHECK (VALUE ~ '^[a-z-]+$');

ALTER TABLE "Account" ADD CONSTRAINT "Account_plan_check" CHECK ("plan" IN ('free', 'pro', 'enterprise'));

CREATE TABLE "Subscription" (
    "id" SERIAL NOT NULL,
    "accountId" TEXT NOT NULL,
    "endsAt" TIMESTAMP(3) NOT NULL,
    "startsAt" TIMESTAMP(3) NOT NULL,
    "seats" INTEGER NOT NULL,
    "slug" "Slug" NOT NULL,
    "label" TEXT GENERATED ALWAYS AS ("slug" || ':' || "seats") STORED,
    CONSTRAINT "Subscription_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "Subscription_period_check" CHECK ("endsAt" > "startsAt"),
    CONSTRAINT "Subscription_seats_check" CHECK ("seats" BETWEEN 5 AND 50),
    CONSTRAINT "Subscription_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "Account"("id") ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE "AuditLog" (
    "id" INTEGER GENERATED ALWAYS AS IDENTITY,
    "userId" INTEGER,
    "at" DATE NOT NULL,
    "parentId" INTEGER,
    "parentAt" DATE,
    CONSTRAINT "AuditLog_pkey" PRIMARY KEY ("id", "at"),
    CONSTRAINT "AuditLog_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE SET NULL ON UPDATE CASCADE,
    CONSTRAINT "AuditLog_parent_fkey" FOREIGN KEY ("parentId", "parentAt") REFERENCES "AuditLog"("id", "at") ON DELETE SET NULL
) PARTITION BY RANGE ("at");
CREATE TABLE "AuditLog_2023" PARTITION OF "AuditLog" FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');

CREATE TABLE "Category" (
    "id" SERIAL NOT NULL,
    "rootId" INTEGER NOT NULL,
    CONSTRAINT "Category_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "Category_rootId_fkey" FOREIGN KEY ("rootId") REFERENCES "Category"("id")
);

CREATE TABLE "Team" (
    "id" SERIAL NOT NULL,
    "leadId" INTEGER NOT NULL,
    CONSTRAINT "Team_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "Player" (
    "id" SERIAL NOT NULL,
    "teamId" INTEGER NOT NULL,
    CONSTRAINT "Player_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "Player_teamId_fkey" FOREIGN KEY ("teamId") REFERENCES "Team"("id")
);
ALTER TABLE "Team" ADD CONSTRAINT "Team_leadId_fkey" FOREIGN KEY ("leadId") REFERENCES "Player"("id") DEFERRABLE INITIALLY IMMEDIATE;
"#;

/// Names every base table, so the focus covers them all.
const TOUCH_ALL: &str = r#"-- AlterTable
ALTER TABLE "User" ADD COLUMN "nickname" TEXT;
ALTER TABLE "Account" ADD COLUMN "note" TEXT;
ALTER TABLE "Profile" ADD COLUMN "note" TEXT;
ALTER TABLE "Membership" ADD COLUMN "note" TEXT;
ALTER TABLE "MembershipNote" ADD COLUMN "note" TEXT;
ALTER TABLE "Subscription" ADD COLUMN "note" TEXT;
ALTER TABLE "AuditLog" ADD COLUMN "note" TEXT;
ALTER TABLE "Category" ADD COLUMN "note" TEXT;
ALTER TABLE "Team" ADD COLUMN "note" TEXT;
ALTER TABLE "Player" ADD COLUMN "note" TEXT;
"#;

/// Build base from `history` on a fresh server, seed a clone and trace `pr` on it; then `check`
/// the seeded database (as the admin) before the server goes.
async fn seeded<F>(history: &[&str], pr: &str, check: F) -> TracedRun
where
    F: AsyncFnOnce(&mut PgConnection, &TracedRun),
{
    let server = provision::provision(&local_request("seed-rows"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let opts = whole_file();
    let builder = admin_builder(&server, &opts);
    let base: Vec<_> = history
        .iter()
        .enumerate()
        .map(|(i, sql)| migration(&format!("2024010{}000000_m{i}", i + 1), sql))
        .collect();
    let db = builder
        .create("base", None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let out = builder
        .apply(&db, &base.iter().collect::<Vec<_>>())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.iter().all(|o| o.failure.is_none()), "{out:?}");
    let clone = builder
        .create("seeded", Some(&db))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let new = migration("20240301000000_pr", pr);
    let tr = builder
        .trace(&clone, &[&new], None, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut conn = admin(&server, &clone).await;
    check(&mut conn, &tr).await;
    let _ = sqlx::Connection::close(conn).await;
    drop(builder);
    server.shutdown().await;
    tr
}

async fn admin(server: &Server, db: &str) -> PgConnection {
    connect_quiet(&server.admin_options(db))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Every foreign key and CHECK of the user's tables, dropped and added again (which validates it
/// over every row), inside a transaction rolled back: the constraints that do not hold.
async fn invalid_constraints(conn: &mut PgConnection) -> Vec<String> {
    let cons: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::text, quote_ident(c.conname), pg_get_constraintdef(c.oid) \
         FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace \
         WHERE c.contype IN ('f', 'c') AND n.nspname = 'public' AND c.conparentid = 0 AND c.coninhcount = 0 \
           AND NOT r.relispartition",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(cons.len() >= 9, "{cons:?}");
    let mut bad = Vec::new();
    for (table, name, def) in cons {
        let sql = format!(
            "BEGIN; ALTER TABLE {table} DROP CONSTRAINT {name}; ALTER TABLE {table} ADD CONSTRAINT {name} {def};"
        );
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await {
            bad.push(format!("{table}.{name}: {e}"));
        }
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
    }
    bad
}

/// Serial and identity sequences whose next value is a key that already exists.
async fn sequences_behind(conn: &mut PgConnection) -> Vec<String> {
    let cols: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT a.attrelid::regclass::text, quote_ident(a.attname), pg_get_serial_sequence(a.attrelid::regclass::text, a.attname) \
         FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid JOIN pg_namespace n ON n.oid = r.relnamespace \
         WHERE n.nspname = 'public' AND r.relkind IN ('r', 'p') AND NOT r.relispartition AND a.attnum > 0 \
           AND pg_get_serial_sequence(a.attrelid::regclass::text, a.attname) IS NOT NULL",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut behind = Vec::new();
    for (table, col, seq) in cols {
        let sql = format!(
            "SELECT (SELECT nextval('{seq}')) <= COALESCE((SELECT max({col}) FROM {table}), 0)"
        );
        let (is_behind,): (bool,) = sqlx::query_as(AssertSqlSafe(sql))
            .fetch_one(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if is_behind {
            behind.push(format!("{table}.{col}"));
        }
    }
    behind
}

#[tokio::test]
async fn every_reached_table_gets_valid_rows() {
    let tr = seeded(&[INIT, ADMIN, HAND_WRITTEN], TOUCH_ALL, async |conn, tr| {
        let bad = invalid_constraints(conn).await;
        assert!(bad.is_empty(), "constraints that do not hold: {bad:?}");
        let behind = sequences_behind(conn).await;
        assert!(behind.is_empty(), "sequences behind their keys: {behind:?}");
        // The cycle's nullable keys point at real rows, not NULL.
        let (linked,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM \"User\" WHERE \"accountId\" IS NOT NULL AND \"invitedById\" IS NOT NULL",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(linked >= 3, "{linked} users linked; {:?}", tr.seed);
        // So does the partitioned table's self-reference (rows found by ctid and partition).
        let (linked,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM \"AuditLog\" WHERE \"parentId\" IS NOT NULL")
                .fetch_one(&mut *conn)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(linked, 3, "{:?}", tr.seed);
    })
    .await;
    assert!(tr.seed.skipped.is_empty(), "{:?}", tr.seed.skipped);
    assert_eq!(tr.seed.reached.len(), 10, "{:?}", tr.seed);
    assert_eq!(tr.seed.filled.len(), 10, "{:?}", tr.seed.filled);
    assert!(tr.seed.filled.values().all(|&n| n >= 1), "{:?}", tr.seed);
    // The admin's row and the history's sequence are left alone; seeded keys come after them.
    assert_eq!(tr.seed.filled.get("\"public\".\"User\""), Some(&3));
    assert_eq!(
        tr.seed.coverage(),
        "seeded 10 of 10 tables the new migrations reach"
    );
    assert!(tr.traces[0].failure.is_none(), "{:?}", tr.traces[0].failure);
}

#[tokio::test]
async fn a_plain_insert_after_seeding_gets_a_fresh_key() {
    let pr = "-- Backfill the support user\nINSERT INTO \"User\" (\"email\", \"updatedAt\") VALUES ('support@example.com', CURRENT_TIMESTAMP);\nINSERT INTO \"Category\" (\"rootId\") VALUES (1);\n";
    let tr = seeded(&[INIT, ADMIN, HAND_WRITTEN], pr, async |_, _| {}).await;
    assert!(
        tr.traces[0].failure.is_none(),
        "{:?}\n{}",
        tr.traces[0].failure,
        tr.seed.coverage()
    );
}

#[tokio::test]
async fn a_table_that_cannot_be_filled_is_named_with_why() {
    let odd = "CREATE TYPE \"Money2\" AS (\"amount\" INTEGER, \"currency\" TEXT);\nCREATE TABLE \"Ledger\" (\"id\" SERIAL NOT NULL, \"total\" \"Money2\" NOT NULL, CONSTRAINT \"Ledger_pkey\" PRIMARY KEY (\"id\"));\n";
    let pr = "ALTER TABLE \"Ledger\" ADD COLUMN \"note\" TEXT;\nALTER TABLE \"Profile\" ADD COLUMN \"note\" TEXT;\n";
    let tr = seeded(&[INIT, ADMIN, odd], pr, async |_, _| {}).await;
    // Profile brings its parent User, and User its cycle partner Account.
    assert_eq!(
        tr.seed.coverage(),
        "seeded 3 of 4 tables the new migrations reach; skipped \"public\".\"Ledger\" (no value generator for type \"Money2\" (column total, NOT NULL without a default))"
    );
}

#[tokio::test]
async fn a_deferred_key_with_no_row_to_point_at_is_never_committed() {
    // Team.leadId is deferrable, so the cycle is broken there; but no Player can be written (a
    // composite column), so the deferred key would dangle: the rows are rolled back and seeding
    // starts again without deferring, leaving the cycle out and the rest seeded.
    let teams = "CREATE TYPE \"Pos\" AS (\"x\" INTEGER, \"y\" INTEGER);\nCREATE TABLE \"Team\" (\"id\" SERIAL NOT NULL, \"leadId\" INTEGER NOT NULL, CONSTRAINT \"Team_pkey\" PRIMARY KEY (\"id\"));\nCREATE TABLE \"Player\" (\"id\" SERIAL NOT NULL, \"teamId\" INTEGER NOT NULL, \"pos\" \"Pos\" NOT NULL, CONSTRAINT \"Player_pkey\" PRIMARY KEY (\"id\"), CONSTRAINT \"Player_teamId_fkey\" FOREIGN KEY (\"teamId\") REFERENCES \"Team\"(\"id\"));\nALTER TABLE \"Team\" ADD CONSTRAINT \"Team_leadId_fkey\" FOREIGN KEY (\"leadId\") REFERENCES \"Player\"(\"id\") DEFERRABLE;\n";
    let pr = "ALTER TABLE \"Team\" ADD COLUMN \"note\" TEXT;\nALTER TABLE \"User\" ADD COLUMN \"note\" TEXT;\n";
    let tr = seeded(&[INIT, ADMIN, teams], pr, async |conn, _| {
        let bad = invalid_constraints(conn).await;
        assert!(bad.is_empty(), "constraints that do not hold: {bad:?}");
    })
    .await;
    let cover = tr.seed.coverage();
    assert!(
        cover.starts_with("seeded 2 of 4 tables the new migrations reach; skipped "),
        "{cover}"
    );
    assert!(
        cover.contains(
            "\"public\".\"Team\" (in a cycle of NOT NULL foreign keys that could not be broken"
        ),
        "{cover}"
    );
    assert!(cover.contains("\"public\".\"Player\" ("), "{cover}");
    assert!(tr.traces[0].failure.is_none(), "{:?}", tr.traces[0].failure);
}

const CYCLE: &str = r#"-- CreateTable
CREATE TABLE "users" (
    "id" TEXT NOT NULL,
    "name" TEXT,
    "accountId" TEXT,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "accounts" (
    "id" TEXT NOT NULL,
    "ownerId" TEXT NOT NULL,

    CONSTRAINT "accounts_pkey" PRIMARY KEY ("id")
);

-- AddForeignKey
ALTER TABLE "users" ADD CONSTRAINT "users_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "accounts"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_ownerId_fkey" FOREIGN KEY ("ownerId") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
"#;

#[tokio::test]
async fn a_broken_key_whose_parent_was_not_seeded_points_at_the_history_rows() {
    // "accounts" cannot be seeded (a composite column), but the history put one row in it: the
    // seeded users, written with "accountId" NULL to break the cycle, point at that row.
    let odd = "CREATE TYPE \"Pos\" AS (\"x\" INTEGER, \"y\" INTEGER);\nALTER TABLE \"accounts\" ADD COLUMN \"pos\" \"Pos\";\nALTER TABLE \"accounts\" ADD COLUMN \"origin\" \"Pos\" NOT NULL DEFAULT ROW(0, 0);\nALTER TABLE \"accounts\" ALTER COLUMN \"origin\" DROP DEFAULT;\n";
    let rows = "INSERT INTO \"users\" (\"id\") VALUES ('u_admin');\nINSERT INTO \"accounts\" (\"id\", \"ownerId\", \"origin\") VALUES ('a_admin', 'u_admin', ROW(1, 1));\n";
    let pr = "ALTER TABLE \"users\" ADD COLUMN \"note\" TEXT;\n";
    let tr = seeded(&[CYCLE, odd, rows], pr, async |conn, _| {
        let (linked,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM \"users\" WHERE \"id\" <> 'u_admin' AND \"accountId\" = 'a_admin'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(linked, 3);
    })
    .await;
    let cover = tr.seed.coverage();
    assert!(
        cover.starts_with("seeded 1 of 2 tables the new migrations reach; skipped \"public\".\"accounts\" (no value generator for type \"Pos\" (column origin, NOT NULL without a default); it holds 1 row from the base's migrations)"),
        "{cover}"
    );
}

fn repo(base: &[&str], pr: &[&str]) -> Repo {
    let r = Repo::new();
    for (i, sql) in base.iter().enumerate() {
        r.write(&format!("2024010{}000000_base{i}", i + 1), sql);
    }
    r.commit("base");
    r.branch("pr");
    for (i, sql) in pr.iter().enumerate() {
        r.write(&format!("2024030{}000000_pr{i}", i + 1), sql);
    }
    r.commit("pr");
    r
}

#[test]
fn a_required_column_on_a_table_in_a_cycle_is_proven_to_fail() {
    let r = repo(
        &[CYCLE],
        &["-- AlterTable\nALTER TABLE \"users\" ADD COLUMN \"email\" TEXT NOT NULL;\n"],
    );
    let run = verify(r.path(), &["--base", "main"]);
    let f = run.finding("fails-on-existing-rows");
    assert_eq!(f["migration"], "20240301000000_pr0", "{f}");
    let evidence = f["evidence"].to_string();
    assert!(
        evidence.contains(
            "synthetic rows in 2 of the 2 tables the new migrations reach; \\\"public\\\".\\\"users\\\" held 3 of them"
        ),
        "{evidence}"
    );
    let notes = run.notes();
    assert!(
        notes.contains("seeded run: seeded 2 of 2 tables the new migrations reach"),
        "{notes}"
    );
}

#[test]
fn rows_the_history_inserted_do_not_stop_seeding() {
    // The history put an admin in "User"; the pull request adds a required unique handle with a
    // default: one admin alone is fine, the seeded users beside it share the default.
    let handle = "-- AlterTable\nALTER TABLE \"User\" ADD COLUMN \"handle\" TEXT NOT NULL DEFAULT '';\n\n-- CreateIndex\nCREATE UNIQUE INDEX \"User_handle_key\" ON \"User\"(\"handle\");\n";
    let r = repo(&[INIT, ADMIN], &[handle]);
    let run = verify(r.path(), &["--base", "main"]);
    let f = run.finding("fails-on-existing-rows");
    assert!(f["message"].to_string().contains("23505"), "{f}");
    assert!(
        f["evidence"]
            .to_string()
            .contains("\\\"public\\\".\\\"User\\\" held 3 of them"),
        "{f}"
    );
    assert!(
        run.notes()
            .contains("seeded run: seeded 2 of 2 tables the new migrations reach"),
        "{}",
        run.notes()
    );
}

#[test]
fn a_plain_insert_into_a_serial_table_is_not_reported() {
    // A data migration adding a user takes the next key from the sequence: the seeded users were
    // written past the existing keys (the admin's, on the second base) and the sequence moved
    // past theirs. (Seeded keys 1, 2, 3 with the sequence left at 1 made this INSERT fail on
    // `Key (id)=(1) already exists`.)
    let simple = (common::repo::INIT, None);
    let with_admin = (INIT, Some(ADMIN));
    for (init, admin) in [simple, with_admin] {
        let insert = "-- Support user\nINSERT INTO \"User\" (\"email\", \"updatedAt\") VALUES ('support@example.com', CURRENT_TIMESTAMP);\n";
        let insert = if admin.is_some() {
            insert.to_string()
        } else {
            insert
                .replace(", \"updatedAt\"", "")
                .replace(", CURRENT_TIMESTAMP", "")
        };
        let base: Vec<&str> = [Some(init), admin].into_iter().flatten().collect();
        let r = repo(&base, &[&insert]);
        let run = verify(r.path(), &["--base", "main"]);
        let rules = run.rules();
        assert!(
            !rules.contains(&"fails-on-existing-rows".to_string())
                && !rules.contains(&"migration-fails".to_string()),
            "{}",
            run.stdout
        );
        let seeded = if admin.is_some() { "2 of 2" } else { "1 of 1" };
        assert!(
            run.notes().contains(&format!(
                "seeded run: seeded {seeded} tables the new migrations reach"
            )),
            "{}",
            run.notes()
        );
    }
}

#[test]
fn a_required_column_on_a_table_holding_history_rows_fails_on_the_base_itself() {
    // The admin row is on the empty base too: the migration fails there (migration-fails), and
    // ci-gate says so rather than claiming it only fails on seeded rows.
    let r = repo(
        &[INIT, ADMIN],
        &["-- AlterTable\nALTER TABLE \"User\" ADD COLUMN \"locale\" TEXT NOT NULL;\n"],
    );
    let run = verify(r.path(), &["--base", "main"]);
    assert!(
        run.rules().contains(&"migration-fails".to_string()),
        "{}",
        run.stdout
    );
}
