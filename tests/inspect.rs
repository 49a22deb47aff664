//! `inspect` and `diff` against a real PostgreSQL server (the `local` provider).
//!
//! One throwaway cluster serves every test of this binary: the first test to need it starts it,
//! the last one to finish stops it (a later test would start a new one). Each case builds its
//! own databases (`CREATE DATABASE`), runs SQL in them as an owner role (`SET ROLE`), and
//! compares the catalogs.
//!
//! One test per object kind shows that a change to it is seen by `diff` (and nothing else is);
//! the `equal_*` tests show that databases built by the same SQL compare equal: twice by the same
//! role, as a `TEMPLATE` clone, and by differently named owner roles.

mod common;

use std::time::Instant;

use ci_gate::inspect::{
    self, Catalog, Change, ChangeKind, InspectOptions, ObjectKind, diff, summary,
};
use ci_gate::provision::local::{self, LocalCluster};
use ci_gate::provision::{ProviderChoice, ProvisionRequest, quote_ident};
use common::shared::{Lease, SharedCluster};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection};

// ---------------------------------------------------------------------------------------------
// One cluster per test binary.

static SHARED: SharedCluster = SharedCluster::new();
/// Serialises starting the cluster (the start is async; `SHARED` is a sync lock).
static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Roles every case may use (roles are cluster-wide, so they are made once, at start).
const ROLES: &[&str] = &[
    "cigate_x_owner",
    "cigate_y_owner",
    "app_owner",
    "anon",
    "authenticated",
];
/// The role cases build their databases as, unless they say otherwise.
const OWNER: &str = "cigate_x_owner";

/// A handle on the shared cluster; the last one dropped stops it.
struct Pg {
    admin: PgConnectOptions,
    _lease: Lease,
}

async fn pg() -> Pg {
    let _starting = STARTING.lock().await;
    if let Some((_lease, admin)) = SHARED.lease_running(LocalCluster::admin_options) {
        return Pg { admin, _lease };
    }
    let cluster = local::start(&ProvisionRequest {
        provider: ProviderChoice::Local,
        database_url: None,
        pg_version: None,
        image: None,
        pg_bin: None,
        run_id: "inspect".into(),
    })
    .await
    .unwrap_or_else(|e| panic!("could not start a local PostgreSQL: {e}"));
    let admin = cluster.admin_options();
    let mut conn = connect(&admin).await;
    for role in ROLES {
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE ROLE {}", quote_ident(role))))
            .execute(&mut conn)
            .await
            .expect("create role");
    }
    conn.close().await.expect("close");
    Pg {
        admin,
        _lease: SHARED.install(cluster),
    }
}

async fn connect(opts: &PgConnectOptions) -> PgConnection {
    opts.clone()
        .disable_statement_logging()
        .connect()
        .await
        .expect("connect")
}

impl Pg {
    async fn exec_in(&self, db: &str, sql: &str) {
        let mut conn = connect(&self.admin.clone().database(db)).await;
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("in {db}: {e}\n{sql}"));
        conn.close().await.expect("close");
    }

    /// Create database `db` owned by `owner` and run `sql` in it as `owner`.
    async fn build(&self, db: &str, owner: &str, sql: &str) {
        self.exec_in(
            "postgres",
            &format!(
                "CREATE DATABASE {} OWNER {} TEMPLATE template0",
                quote_ident(db),
                quote_ident(owner)
            ),
        )
        .await;
        self.run_as(db, owner, sql).await;
    }

    /// Run `sql` in `db` as `role`.
    async fn run_as(&self, db: &str, role: &str, sql: &str) {
        self.exec_in(db, &format!("SET ROLE {};\n{sql}", quote_ident(role)))
            .await;
    }

    async fn catalog(&self, db: &str) -> Catalog {
        self.catalog_with(db, &InspectOptions::default()).await
    }

    async fn catalog_with(&self, db: &str, opts: &InspectOptions) -> Catalog {
        let mut conn = connect(&self.admin.clone().database(db)).await;
        let catalog = inspect::inspect(&mut conn, opts).await.expect("inspect");
        conn.close().await.expect("close");
        catalog
    }

    /// Build `<case>_a` from `base` and `<case>_b` from `base` then `change`; what `diff` says.
    async fn changes(&self, case: &str, base: &str, change: &str) -> Vec<Change> {
        let (a, b) = (format!("{case}_a"), format!("{case}_b"));
        self.build(&a, OWNER, base).await;
        self.build(&b, OWNER, base).await;
        self.run_as(&b, OWNER, change).await;
        diff(&self.catalog(&a).await, &self.catalog(&b).await)
    }
}

/// The only change, which must be about `object` named `name` and of `kind`.
fn only(changes: &[Change], object: ObjectKind, name: &str, kind: ChangeKind) -> Change {
    assert_eq!(
        changes.len(),
        1,
        "expected exactly one change, got {}:\n{changes:#?}",
        changes.len()
    );
    let c = &changes[0];
    assert_eq!(
        (c.object, c.name.as_str(), c.kind),
        (object, name, kind),
        "{c:#?}"
    );
    c.clone()
}

fn left(c: &Change) -> &str {
    c.left.as_deref().unwrap_or("")
}

fn right(c: &Change) -> &str {
    c.right.as_deref().unwrap_or("")
}

/// A schema using every kind of object the catalog holds (and an extension whose own objects
/// must stay out of it).
const RICH: &str = r#"
CREATE EXTENSION citext;
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');
CREATE DOMAIN positive_int AS integer NOT NULL DEFAULT 1 CONSTRAINT positive CHECK (VALUE > 0);
CREATE TYPE address AS (street text, zip varchar(10));
CREATE SEQUENCE invoice_no INCREMENT 10 START 100;
CREATE TABLE "User" (
  id serial PRIMARY KEY,
  email citext NOT NULL,
  name text COLLATE "C",
  role "Role" NOT NULL DEFAULT 'USER',
  created_at timestamptz NOT NULL DEFAULT now(),
  big bigint GENERATED ALWAYS AS IDENTITY (START WITH 1000),
  score positive_int,
  home address,
  lower_email text GENERATED ALWAYS AS (lower(email::text)) STORED
);
CREATE UNIQUE INDEX "User_email_key" ON "User"(email);
CREATE TABLE "Post" (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  author_id integer NOT NULL REFERENCES "User"(id) ON DELETE CASCADE,
  title varchar(200) NOT NULL CHECK (title <> ''),
  published_at date DEFAULT '2020-01-01',
  price numeric(10,2) DEFAULT 1.5
);
CREATE INDEX post_author_idx ON "Post"(author_id) WHERE published_at IS NOT NULL;
CREATE TABLE events (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE INDEX events_at_idx ON events (at);
CREATE UNLOGGED TABLE cache (k text PRIMARY KEY, v jsonb) WITH (fillfactor = 70);
ALTER TABLE "Post" ENABLE ROW LEVEL SECURITY;
CREATE POLICY post_read ON "Post" FOR SELECT TO anon, authenticated USING (published_at IS NOT NULL);
CREATE VIEW published AS SELECT id, title FROM "Post" WHERE published_at IS NOT NULL;
CREATE MATERIALIZED VIEW post_counts AS SELECT author_id, count(*) AS n FROM "Post" GROUP BY author_id;
CREATE INDEX post_counts_idx ON post_counts (author_id);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.created_at := now(); RETURN NEW; END $$;
CREATE TRIGGER user_touch BEFORE UPDATE ON "User" FOR EACH ROW EXECUTE FUNCTION touch();
CREATE PROCEDURE noop(a integer) LANGUAGE sql AS $$ SELECT 1 $$;
CREATE AGGREGATE my_sum(integer) (SFUNC = int4pl, STYPE = integer, INITCOND = '0');
COMMENT ON TABLE "User" IS 'people';
COMMENT ON COLUMN "User".email IS 'login';
GRANT SELECT ON "Post" TO anon;
GRANT SELECT (id, name) ON "User" TO anon;
GRANT USAGE ON SCHEMA public TO anon;
REVOKE EXECUTE ON FUNCTION touch() FROM PUBLIC;
ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO authenticated;
CREATE SCHEMA billing;
CREATE TABLE billing.invoice (id integer PRIMARY KEY DEFAULT nextval('invoice_no'), user_id int REFERENCES "User"(id));
INSERT INTO "User" (email) VALUES ('a@example.com'), ('b@example.com');
"#;

// ---------------------------------------------------------------------------------------------
// Equal builds compare equal.

#[tokio::test]
async fn equal_when_the_same_sql_runs_twice() {
    let pg = pg().await;
    pg.build("eq_twice_a", OWNER, RICH).await;
    pg.build("eq_twice_b", OWNER, RICH).await;
    // Sequence values are not part of the catalog.
    pg.exec_in(
        "eq_twice_b",
        "INSERT INTO \"User\" (email) VALUES ('c@example.com'); SELECT nextval('invoice_no');",
    )
    .await;
    let a = pg.catalog("eq_twice_a").await;
    let b = pg.catalog("eq_twice_b").await;
    if std::env::var_os("INSPECT_DUMP").is_some() {
        eprintln!("{}", serde_json::to_string_pretty(&a).unwrap());
    }
    assert_eq!(diff(&a, &b), Vec::<Change>::new());
    assert_eq!(a, b);

    // The catalog really holds what RICH made, and nothing of citext's own.
    let user = &a.tables["public.\"User\""];
    let names: Vec<&str> = user.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "email",
            "name",
            "role",
            "created_at",
            "big",
            "score",
            "home",
            "lower_email"
        ]
    );
    let col = |n: &str| {
        user.columns
            .iter()
            .find(|c| c.name == n)
            .unwrap()
            .definition()
    };
    assert_eq!(
        col("id"),
        "integer NOT NULL DEFAULT nextval('public.\"User_id_seq\"'::regclass)"
    );
    assert_eq!(col("email"), "public.citext NOT NULL");
    assert_eq!(col("name"), "text COLLATE \"C\"");
    assert_eq!(
        col("role"),
        "public.\"Role\" NOT NULL DEFAULT 'USER'::public.\"Role\""
    );
    assert_eq!(
        col("big"),
        "bigint NOT NULL GENERATED ALWAYS AS IDENTITY (START WITH 1000)"
    );
    assert_eq!(
        col("lower_email"),
        "text GENERATED ALWAYS AS (lower((email)::text)) STORED"
    );
    assert_eq!(user.access.owner, "<owner>");
    assert_eq!(user.comment.as_deref(), Some("people"));
    assert!(
        user.indexes.contains_key("public.\"User_email_key\""),
        "{:?}",
        user.indexes
    );
    assert!(user.constraints.contains_key("\"User_pkey\""));
    assert!(a.sequences.contains_key("public.\"User_id_seq\""));
    assert!(
        !a.sequences.keys().any(|k| k.contains("big")),
        "identity sequences are described with their column: {:?}",
        a.sequences.keys()
    );
    assert!(a.extensions.contains_key("\"citext\""));
    assert!(
        a.functions.keys().all(|k| !k.contains("citext")),
        "extension members leaked: {:?}",
        a.functions.keys()
    );
    assert_eq!(
        a.functions.keys().cloned().collect::<Vec<_>>(),
        [
            "public.\"my_sum\"(integer)",
            "public.\"noop\"(IN a integer)",
            "public.\"touch\"()"
        ]
    );
    assert_eq!(
        a.tables["public.\"events_2024\""]
            .partition_bound
            .as_deref(),
        Some("FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2025-01-01 00:00:00+00')")
    );
    assert_eq!(
        a.schemas["public"].access.grants,
        Some(vec![
            "<owner>=ALL".into(),
            "PUBLIC=USAGE".into(),
            "anon=USAGE".into()
        ])
    );
    assert_eq!(
        a.default_privileges
            .get("for role <owner> on tables")
            .cloned()
            .unwrap_or_default(),
        ["<owner>=ALL", "authenticated=SELECT"]
    );
    assert!(a.object_count() > 40, "{}", a.object_count());
}

#[tokio::test]
async fn equal_for_a_template_clone() {
    let pg = pg().await;
    pg.build("eq_tpl_a", OWNER, RICH).await;
    // Cloned by the superuser without OWNER: the clone's owner is `postgres`, its objects still
    // belong to cigate_x_owner.
    pg.exec_in("postgres", "CREATE DATABASE eq_tpl_b TEMPLATE eq_tpl_a")
        .await;
    let a = pg.catalog("eq_tpl_a").await;
    let b = pg.catalog("eq_tpl_b").await;
    assert_eq!(diff(&a, &b), Vec::<Change>::new());
    assert_eq!(a, b);
}

#[tokio::test]
async fn equal_when_built_by_differently_named_owners() {
    let pg = pg().await;
    pg.build("eq_own_x", "cigate_x_owner", RICH).await;
    pg.build("eq_own_y", "cigate_y_owner", RICH).await;
    // A database as production has it: owned by the application's own role.
    pg.build("eq_own_app", "app_owner", RICH).await;
    let x = pg.catalog("eq_own_x").await;
    let y = pg.catalog("eq_own_y").await;
    let app = pg.catalog("eq_own_app").await;
    assert_eq!(diff(&x, &y), Vec::<Change>::new());
    assert_eq!(diff(&x, &app), Vec::<Change>::new());
    assert_eq!(x, y);
    let text = serde_json::to_string(&x).unwrap();
    assert!(!text.contains("cigate_x"), "owner name leaked into: {text}");

    // But an object owned by someone other than the database owner is a difference.
    pg.exec_in("eq_own_y", "ALTER TABLE cache OWNER TO anon")
        .await;
    let y = pg.catalog("eq_own_y").await;
    let c = only(
        &diff(&x, &y),
        ObjectKind::Grant,
        "table public.\"cache\"",
        ChangeKind::Changed,
    );
    assert!(left(&c).starts_with("owner <owner>"), "{c:?}");
    assert!(right(&c).starts_with("owner anon"), "{c:?}");
}

#[tokio::test]
async fn prisma_migrations_table_is_excluded() {
    let pg = pg().await;
    let base = "CREATE TABLE t (id int PRIMARY KEY);";
    let prisma = r#"CREATE TABLE "_prisma_migrations" (
        "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL,
        "finished_at" TIMESTAMPTZ, "migration_name" VARCHAR(255) NOT NULL,
        "logs" TEXT, "rolled_back_at" TIMESTAMPTZ, "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
        "applied_steps_count" INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX prisma_idx ON "_prisma_migrations" (migration_name);"#;
    let changes = pg.changes("prisma", base, prisma).await;
    assert_eq!(changes, Vec::<Change>::new());

    // With no exclusions it is an ordinary table.
    let none = InspectOptions {
        exclude_tables: vec![],
    };
    let a = pg.catalog_with("prisma_a", &none).await;
    let b = pg.catalog_with("prisma_b", &none).await;
    only(
        &diff(&a, &b),
        ObjectKind::Table,
        "public.\"_prisma_migrations\"",
        ChangeKind::Added,
    );
}

// ---------------------------------------------------------------------------------------------
// One test per object kind: a change to it is seen, and nothing else is.

#[tokio::test]
async fn schema_added() {
    let pg = pg().await;
    let changes = pg.changes("k_schema", "", "CREATE SCHEMA billing;").await;
    let c = only(&changes, ObjectKind::Schema, "billing", ChangeKind::Added);
    assert_eq!(right(&c), "SCHEMA billing");
    assert_eq!(c.left, None);
}

#[tokio::test]
async fn table_added_is_one_change_and_table_properties_are_seen() {
    let pg = pg().await;
    let base = "CREATE TABLE t (id int PRIMARY KEY);";
    let changes = pg
        .changes(
            "k_table",
            base,
            r#"CREATE TABLE "Account" (id serial PRIMARY KEY, email text NOT NULL UNIQUE, n int CHECK (n > 0));
               CREATE INDEX account_n ON "Account"(n);
               ALTER TABLE t ENABLE ROW LEVEL SECURITY;"#,
        )
        .await;
    // The new table (with its columns, constraints, index and serial sequence) and RLS on `t`.
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.object, c.name.as_str(), c.kind))
            .collect::<Vec<_>>(),
        [
            (ObjectKind::Table, "public.\"Account\"", ChangeKind::Added),
            (ObjectKind::Table, "public.\"t\"", ChangeKind::Changed),
            (
                ObjectKind::Sequence,
                "public.\"Account_id_seq\"",
                ChangeKind::Added
            ),
        ],
        "{changes:#?}"
    );
    let table = right(&changes[0]);
    assert!(
        table.starts_with(
            "CREATE TABLE public.\"Account\" (\n    \"id\" integer NOT NULL DEFAULT nextval("
        ),
        "{table}"
    );
    assert!(
        table.contains("CONSTRAINT \"Account_email_key\" UNIQUE (email)"),
        "{table}"
    );
    assert!(
        table.contains("CREATE INDEX account_n ON public.\"Account\" USING btree (n);"),
        "{table}"
    );
    assert_eq!(left(&changes[1]), "row level security: disabled");
    assert_eq!(right(&changes[1]), "row level security: enabled");
    assert_eq!(summary(&changes), "2 tables, 1 sequence differ");
}

#[tokio::test]
async fn partition_bound_changed() {
    let pg = pg().await;
    let changes = pg
        .changes(
            "k_partition",
            "CREATE TABLE ev (at date NOT NULL) PARTITION BY RANGE (at);",
            "CREATE TABLE ev_2024 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');",
        )
        .await;
    only(
        &changes,
        ObjectKind::Table,
        "public.\"ev_2024\"",
        ChangeKind::Added,
    );
    let pg2 = pg
        .changes(
            "k_partition2",
            "CREATE TABLE ev (at date NOT NULL) PARTITION BY RANGE (at);
             CREATE TABLE ev_p PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');",
            "ALTER TABLE ev DETACH PARTITION ev_p;
             ALTER TABLE ev ATTACH PARTITION ev_p FOR VALUES FROM ('2024-01-01') TO ('2026-01-01');",
        )
        .await;
    let c = only(
        &pg2,
        ObjectKind::Table,
        "public.\"ev_p\"",
        ChangeKind::Changed,
    );
    assert_eq!(
        left(&c),
        "partition of: public.\"ev\" FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"
    );
    assert_eq!(
        right(&c),
        "partition of: public.\"ev\" FOR VALUES FROM ('2024-01-01') TO ('2026-01-01')"
    );
}

#[tokio::test]
async fn objects_on_a_partitioned_table_are_one_change_each() {
    let pg = pg().await;
    let base = "CREATE TABLE acct (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
        CREATE TABLE acct_eu PARTITION OF acct FOR VALUES IN ('eu');
        CREATE TABLE acct_us PARTITION OF acct FOR VALUES IN ('us');
        CREATE TABLE ev (at date NOT NULL, acct_id int, region text) PARTITION BY RANGE (at);
        CREATE TABLE ev_1 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE TABLE ev_2 PARTITION OF ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;";
    let changes = pg
        .changes(
            "k_partobj",
            base,
            // A foreign key from a partitioned table to a partitioned table: PostgreSQL clones it
            // per partition on both sides, all under the same name.
            "ALTER TABLE ev ADD CONSTRAINT ev_acct_fk FOREIGN KEY (acct_id, region) REFERENCES acct;
             CREATE INDEX ev_at ON ev (at);
             CREATE TRIGGER ev_noop BEFORE INSERT ON ev FOR EACH ROW EXECUTE FUNCTION noop();",
        )
        .await;
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.object, c.name.as_str()))
            .collect::<Vec<_>>(),
        [
            (ObjectKind::Constraint, "public.\"ev\".\"ev_acct_fk\""),
            (ObjectKind::Index, "public.\"ev_at\""),
            (ObjectKind::Trigger, "public.\"ev\".\"ev_noop\""),
        ],
        "{changes:#?}"
    );
}

#[tokio::test]
async fn column_default_added() {
    let pg = pg().await;
    let changes = pg
        .changes(
            "k_column",
            r#"CREATE TABLE "User" (id int, email text NOT NULL);"#,
            r#"ALTER TABLE "User" ALTER COLUMN email SET DEFAULT 'x';"#,
        )
        .await;
    let c = only(
        &changes,
        ObjectKind::Column,
        "public.\"User\".\"email\"",
        ChangeKind::Changed,
    );
    assert_eq!(left(&c), "text NOT NULL");
    assert_eq!(right(&c), "text NOT NULL DEFAULT 'x'::text");
    assert_eq!(summary(&changes), "1 column differs");
}

#[tokio::test]
async fn column_order_is_one_minor_table_change() {
    let pg = pg().await;
    // Scratch declares `a` between id and b; the history appended it later.
    let pg_a = "CREATE TABLE t (id int, a text, b text);";
    pg.build("k_order_a", OWNER, pg_a).await;
    pg.build(
        "k_order_b",
        OWNER,
        "CREATE TABLE t (id int, b text); ALTER TABLE t ADD COLUMN a text;",
    )
    .await;
    // A dropped column leaves a gap in attnum but not in the logical order.
    pg.build(
        "k_order_c",
        OWNER,
        "CREATE TABLE t (id int, x int, a text, b text); ALTER TABLE t DROP COLUMN x;",
    )
    .await;
    let a = pg.catalog("k_order_a").await;
    let b = pg.catalog("k_order_b").await;
    let c = pg.catalog("k_order_c").await;
    let change = only(
        &diff(&a, &b),
        ObjectKind::Table,
        "public.\"t\"",
        ChangeKind::Changed,
    );
    assert_eq!(left(&change), "column order: \"id\", \"a\", \"b\"");
    assert_eq!(right(&change), "column order: \"id\", \"b\", \"a\"");
    assert!(change.is_minor());
    assert_eq!(diff(&a, &c), Vec::<Change>::new());
}

#[tokio::test]
async fn constraint_not_valid_then_validated() {
    let pg = pg().await;
    let base =
        "CREATE TABLE t (n int); ALTER TABLE t ADD CONSTRAINT n_pos CHECK (n > 0) NOT VALID;";
    let changes = pg
        .changes(
            "k_constraint",
            base,
            "ALTER TABLE t VALIDATE CONSTRAINT n_pos;",
        )
        .await;
    let c = only(
        &changes,
        ObjectKind::Constraint,
        "public.\"t\".\"n_pos\"",
        ChangeKind::Changed,
    );
    assert_eq!(left(&c), "CHECK (n > 0) NOT VALID");
    assert_eq!(right(&c), "CHECK (n > 0)");

    let changes = pg
        .changes(
            "k_fk",
            "CREATE TABLE p (id int PRIMARY KEY); CREATE TABLE c (p_id int);",
            "ALTER TABLE c ADD CONSTRAINT c_p_fk FOREIGN KEY (p_id) REFERENCES p(id) ON DELETE CASCADE;",
        )
        .await;
    let c = only(
        &changes,
        ObjectKind::Constraint,
        "public.\"c\".\"c_p_fk\"",
        ChangeKind::Added,
    );
    assert_eq!(
        right(&c),
        "FOREIGN KEY (p_id) REFERENCES public.p(id) ON DELETE CASCADE"
    );
}

#[tokio::test]
async fn index_changed_and_invalid_index_seen() {
    let pg = pg().await;
    let base = r#"CREATE TABLE "User" (id int, email text, name text);
                  CREATE INDEX "User_email_idx" ON "User"(email);"#;
    let changes = pg
        .changes(
            "k_index",
            base,
            r#"DROP INDEX "User_email_idx"; CREATE INDEX "User_email_idx" ON "User"(email, name);"#,
        )
        .await;
    let c = only(
        &changes,
        ObjectKind::Index,
        "public.\"User_email_idx\"",
        ChangeKind::Changed,
    );
    assert_eq!(
        left(&c),
        "CREATE INDEX \"User_email_idx\" ON public.\"User\" USING btree (email)"
    );
    assert_eq!(
        right(&c),
        "CREATE INDEX \"User_email_idx\" ON public.\"User\" USING btree (email, name)"
    );

    // A failed CREATE INDEX CONCURRENTLY leaves an invalid index behind.
    let base = "CREATE TABLE t (k int); INSERT INTO t VALUES (1), (1);";
    pg.build("k_invalid_a", OWNER, base).await;
    pg.build("k_invalid_b", OWNER, base).await;
    pg.exec_in(
        "k_invalid_a",
        "DELETE FROM t WHERE ctid = (SELECT min(ctid) FROM t)",
    )
    .await;
    pg.exec_in(
        "k_invalid_a",
        "CREATE UNIQUE INDEX CONCURRENTLY t_k ON t (k)",
    )
    .await;
    let mut conn = connect(&pg.admin.clone().database("k_invalid_b")).await;
    let failed = sqlx::raw_sql("CREATE UNIQUE INDEX CONCURRENTLY t_k ON t (k)")
        .execute(&mut conn)
        .await;
    assert!(failed.is_err(), "duplicate keys should fail the index");
    conn.close().await.expect("close");
    let changes = diff(
        &pg.catalog("k_invalid_a").await,
        &pg.catalog("k_invalid_b").await,
    );
    let c = only(
        &changes,
        ObjectKind::Index,
        "public.\"t_k\"",
        ChangeKind::Changed,
    );
    assert_eq!(
        right(&c),
        "CREATE UNIQUE INDEX t_k ON public.t USING btree (k) -- INVALID"
    );
}

#[tokio::test]
async fn sequence_increment_changed() {
    let pg = pg().await;
    let changes = pg
        .changes(
            "k_sequence",
            "CREATE SEQUENCE counter START 5;",
            "ALTER SEQUENCE counter INCREMENT BY 10; SELECT nextval('counter');",
        )
        .await;
    let c = only(
        &changes,
        ObjectKind::Sequence,
        "public.\"counter\"",
        ChangeKind::Changed,
    );
    assert_eq!(
        left(&c),
        "AS bigint START 5 INCREMENT 1 MINVALUE 1 MAXVALUE 9223372036854775807 CACHE 1 NO CYCLE"
    );
    assert!(right(&c).contains("INCREMENT 10"), "{c:?}");
}

#[tokio::test]
async fn enum_label_added() {
    let pg = pg().await;
    let base = r#"CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');"#;
    let changes = pg
        .changes("k_enum", base, r#"ALTER TYPE "Role" ADD VALUE 'OWNER';"#)
        .await;
    let c = only(
        &changes,
        ObjectKind::Enum,
        "public.\"Role\"",
        ChangeKind::Changed,
    );
    assert_eq!(left(&c), "ENUM ('USER', 'ADMIN')");
    assert_eq!(right(&c), "ENUM ('USER', 'ADMIN', 'OWNER')");

    // Label order matters: the same labels added in another position differ.
    pg.build(
        "k_enum_c",
        OWNER,
        r#"CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN'); ALTER TYPE "Role" ADD VALUE 'OWNER' BEFORE 'ADMIN';"#,
    )
    .await;
    let changes = diff(&pg.catalog("k_enum_b").await, &pg.catalog("k_enum_c").await);
    let c = only(
        &changes,
        ObjectKind::Enum,
        "public.\"Role\"",
        ChangeKind::Changed,
    );
    assert_eq!(right(&c), "ENUM ('USER', 'OWNER', 'ADMIN')");
}

#[tokio::test]
async fn domain_check_added() {
    let pg = pg().await;
    let changes = pg
        .changes(
            "k_domain",
            "CREATE DOMAIN score AS integer DEFAULT 0;",
            "ALTER DOMAIN score ADD CONSTRAINT score_pos CHECK (VALUE >= 0); ALTER DOMAIN score SET NOT NULL;",
        )
        .await;
    let c = only(
        &changes,
        ObjectKind::Domain,
        "public.\"score\"",
        ChangeKind::Changed,
    );
    assert_eq!(left(&c), "integer DEFAULT 0");
    assert_eq!(
        right(&c),
        "integer DEFAULT 0 NOT NULL CONSTRAINT \"score_pos\" CHECK (VALUE >= 0)"
    );
}

#[tokio::test]
async fn composite_type_attribute_added() {
    let pg = pg().await;
    let changes = pg
        .changes(
            "k_composite",
            "CREATE TYPE address AS (street text);",
            "ALTER TYPE address ADD ATTRIBUTE zip varchar(10);",
        )
        .await;
    let c = only(
        &changes,
        ObjectKind::CompositeType,
        "public.\"address\"",
        ChangeKind::Changed,
    );
    assert_eq!(left(&c), "AS (\"street\" text)");
    assert_eq!(
        right(&c),
        "AS (\"street\" text, \"zip\" character varying(10))"
    );
}

#[tokio::test]
async fn view_changed() {
    let pg = pg().await;
    let base = "CREATE TABLE t (id int, ok bool); CREATE VIEW v AS SELECT id FROM t;";
    let changes = pg
        .changes(
            "k_view",
            base,
            "CREATE OR REPLACE VIEW v AS SELECT id FROM t WHERE ok;",
        )
        .await;
    let c = only(
        &changes,
        ObjectKind::View,
        "public.\"v\"",
        ChangeKind::Changed,
    );
    // (PostgreSQL versions differ in how they qualify the column names.)
    assert!(left(&c).starts_with("AS SELECT "), "{c:?}");
    assert!(left(&c).ends_with("FROM public.t"), "{c:?}");
    assert!(right(&c).contains("FROM public.t\n  WHERE "), "{c:?}");
    assert!(right(&c).ends_with("ok"), "{c:?}");
}

#[tokio::test]
async fn materialized_view_added_and_its_index() {
    let pg = pg().await;
    let base = "CREATE TABLE t (id int); CREATE MATERIALIZED VIEW mv AS SELECT id FROM t;";
    let changes = pg
        .changes("k_matview", base, "CREATE INDEX mv_id ON mv (id);")
        .await;
    let c = only(
        &changes,
        ObjectKind::Index,
        "public.\"mv_id\"",
        ChangeKind::Added,
    );
    assert_eq!(
        right(&c),
        "CREATE INDEX mv_id ON public.mv USING btree (id)"
    );

    let changes = pg
        .changes(
            "k_matview2",
            "CREATE TABLE t (id int);",
            "CREATE MATERIALIZED VIEW mv AS SELECT id FROM t WITH NO DATA;",
        )
        .await;
    let c = only(
        &changes,
        ObjectKind::MaterializedView,
        "public.\"mv\"",
        ChangeKind::Added,
    );
    assert!(right(&c).ends_with("WITH NO DATA"), "{c:?}");
}

#[tokio::test]
async fn function_body_changed() {
    let pg = pg().await;
    let base = "CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql AS $$ SELECT a + b $$;";
    let changes = pg
        .changes(
            "k_function",
            base,
            "CREATE OR REPLACE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql AS $$ SELECT a + b + 0 $$;",
        )
        .await;
    let c = only(
        &changes,
        ObjectKind::Function,
        "public.\"add\"(a integer, b integer)",
        ChangeKind::Changed,
    );
    assert!(left(&c).starts_with("CREATE OR REPLACE FUNCTION public.add(a integer, b integer)"));
    assert!(right(&c).contains("SELECT a + b + 0"), "{c:?}");

    // A new overload is another function (keyed by signature); a procedure is a function too.
    let changes = pg
        .changes(
            "k_function2",
            base,
            "CREATE FUNCTION add(a bigint, b bigint) RETURNS bigint LANGUAGE sql AS $$ SELECT a + b $$;
             CREATE PROCEDURE log_it(msg text) LANGUAGE sql AS $$ SELECT msg $$;",
        )
        .await;
    assert_eq!(
        changes.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        [
            "public.\"add\"(a bigint, b bigint)",
            "public.\"log_it\"(IN msg text)"
        ]
    );
}

#[tokio::test]
async fn trigger_added() {
    let pg = pg().await;
    let base = "CREATE TABLE t (id int, at timestamptz);
        CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.at := now(); RETURN NEW; END $$;
        CREATE TABLE p (id int PRIMARY KEY); CREATE TABLE c (p_id int REFERENCES p(id));";
    let changes = pg
        .changes(
            "k_trigger",
            base,
            "CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();",
        )
        .await;
    let c = only(
        &changes,
        ObjectKind::Trigger,
        "public.\"t\".\"t_touch\"",
        ChangeKind::Added,
    );
    assert_eq!(
        right(&c),
        "CREATE TRIGGER t_touch BEFORE UPDATE ON public.t FOR EACH ROW EXECUTE FUNCTION public.touch()"
    );
    // Disabling a trigger is a change too.
    let changes = diff(&pg.catalog("k_trigger_b").await, &{
        pg.exec_in("k_trigger_b", "ALTER TABLE t DISABLE TRIGGER t_touch")
            .await;
        pg.catalog("k_trigger_b").await
    });
    let c = only(
        &changes,
        ObjectKind::Trigger,
        "public.\"t\".\"t_touch\"",
        ChangeKind::Changed,
    );
    assert!(right(&c).ends_with("-- disabled"), "{c:?}");
}

#[tokio::test]
async fn policy_added() {
    let pg = pg().await;
    let base = "CREATE TABLE doc (owner text); ALTER TABLE doc ENABLE ROW LEVEL SECURITY;";
    let changes = pg
        .changes(
            "k_policy",
            base,
            "CREATE POLICY own ON doc AS RESTRICTIVE FOR UPDATE TO authenticated, anon \
               USING (owner = current_user) WITH CHECK (owner = current_user);
             CREATE POLICY admin ON doc TO cigate_x_owner USING (true);",
        )
        .await;
    assert_eq!(changes.len(), 2, "{changes:#?}");
    assert_eq!(
        (changes[0].object, changes[0].name.as_str(), changes[0].kind),
        (
            ObjectKind::Policy,
            "public.\"doc\".\"admin\"",
            ChangeKind::Added
        )
    );
    assert_eq!(
        right(&changes[0]),
        "AS PERMISSIVE FOR ALL TO <owner> USING (true)"
    );
    assert_eq!(
        right(&changes[1]),
        "AS RESTRICTIVE FOR UPDATE TO anon, authenticated USING ((owner = CURRENT_USER)) \
         WITH CHECK ((owner = CURRENT_USER))"
    );
}

#[tokio::test]
async fn extension_added_without_its_members() {
    let pg = pg().await;
    pg.build("k_extension_a", OWNER, "").await;
    pg.build("k_extension_b", OWNER, "").await;
    pg.exec_in("k_extension_b", "CREATE EXTENSION hstore").await;
    let changes = diff(
        &pg.catalog("k_extension_a").await,
        &pg.catalog("k_extension_b").await,
    );
    let c = only(
        &changes,
        ObjectKind::Extension,
        "\"hstore\"",
        ChangeKind::Added,
    );
    assert!(
        right(&c).starts_with("EXTENSION \"hstore\" VERSION '"),
        "{c:?}"
    );
    assert!(right(&c).ends_with("SCHEMA public"), "{c:?}");
}

#[tokio::test]
async fn comments_added() {
    let pg = pg().await;
    let base = r#"CREATE TABLE "User" (id int PRIMARY KEY, email text);
        CREATE INDEX u_email ON "User"(email); CREATE TYPE "Role" AS ENUM ('A');"#;
    let changes = pg
        .changes(
            "k_comment",
            base,
            r#"COMMENT ON COLUMN "User".email IS 'login name';
               COMMENT ON TABLE "User" IS 'people';
               COMMENT ON INDEX u_email IS 'lookup';
               COMMENT ON CONSTRAINT "User_pkey" ON "User" IS 'pk';
               COMMENT ON TYPE "Role" IS 'roles';
               COMMENT ON SCHEMA public IS 'changed';"#,
        )
        .await;
    let got: Vec<(ObjectKind, &str, ChangeKind)> = changes
        .iter()
        .map(|c| (c.object, c.name.as_str(), c.kind))
        .collect();
    assert_eq!(
        got,
        [
            (
                ObjectKind::Comment,
                "column public.\"User\".\"email\"",
                ChangeKind::Added
            ),
            (
                ObjectKind::Comment,
                "constraint public.\"User\".\"User_pkey\"",
                ChangeKind::Added
            ),
            (
                ObjectKind::Comment,
                "enum public.\"Role\"",
                ChangeKind::Added
            ),
            (
                ObjectKind::Comment,
                "index public.\"u_email\"",
                ChangeKind::Added
            ),
            (ObjectKind::Comment, "schema public", ChangeKind::Changed),
            (
                ObjectKind::Comment,
                "table public.\"User\"",
                ChangeKind::Added
            ),
        ]
    );
    assert_eq!(right(&changes[0]), "'login name'");
    assert!(changes.iter().all(Change::is_minor));
    assert_eq!(summary(&changes), "6 comments differ");
}

#[tokio::test]
async fn grants_changed() {
    let pg = pg().await;
    let base = r#"CREATE TABLE "Post" (id int, title text);
        CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;"#;
    let changes = pg
        .changes(
            "k_grant",
            base,
            r#"GRANT SELECT, INSERT ON "Post" TO anon;
               GRANT UPDATE (title) ON "Post" TO authenticated;
               REVOKE EXECUTE ON FUNCTION f() FROM PUBLIC;
               ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO anon;"#,
        )
        .await;
    let got: Vec<(&str, &str, &str)> = changes
        .iter()
        .map(|c| {
            assert_eq!(c.object, ObjectKind::Grant, "{c:?}");
            (c.name.as_str(), left(c), right(c))
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "column public.\"Post\".\"title\"",
                "",
                "authenticated=UPDATE"
            ),
            (
                "default privileges for role <owner> on tables",
                "",
                "<owner>=ALL, anon=SELECT"
            ),
            (
                "function public.\"f\"()",
                "owner <owner>; default privileges",
                "owner <owner>; <owner>=ALL"
            ),
            (
                "table public.\"Post\"",
                "owner <owner>; default privileges",
                "owner <owner>; <owner>=ALL, anon=INSERT,SELECT"
            ),
        ]
    );

    // Granting and revoking again leaves a non-NULL ACL equal to the default: no change.
    pg.build("k_grant_c", OWNER, base).await;
    pg.run_as(
        "k_grant_c",
        OWNER,
        r#"GRANT SELECT ON "Post" TO anon; REVOKE SELECT ON "Post" FROM anon;"#,
    )
    .await;
    assert_eq!(
        diff(
            &pg.catalog("k_grant_a").await,
            &pg.catalog("k_grant_c").await
        ),
        Vec::<Change>::new()
    );
}

// ---------------------------------------------------------------------------------------------
// Size: a few hundred tables are read with one query per object kind.

#[tokio::test]
async fn three_hundred_tables() {
    let pg = pg().await;
    let mut sql = String::from("CREATE TYPE status AS ENUM ('new', 'done');\n");
    for i in 0..300 {
        let fk = if i > 0 {
            format!(", parent_id bigint REFERENCES t{} (id)", i - 1)
        } else {
            String::new()
        };
        sql.push_str(&format!(
            "CREATE TABLE t{i} (id bigserial PRIMARY KEY, name text NOT NULL DEFAULT '', \
               email varchar(255) UNIQUE, status status NOT NULL DEFAULT 'new', \
               amount numeric(12,2) CHECK (amount >= 0), created_at timestamptz NOT NULL DEFAULT now(), \
               data jsonb{fk});\n\
             CREATE INDEX t{i}_created ON t{i} (created_at);\n\
             COMMENT ON TABLE t{i} IS 'table {i}';\n"
        ));
    }
    pg.build("big", OWNER, &sql).await;
    let mut conn = connect(&pg.admin.clone().database("big")).await;
    let opts = InspectOptions::default();
    let cold = Instant::now();
    let catalog = inspect::inspect(&mut conn, &opts).await.expect("inspect");
    let cold = cold.elapsed();
    let warm = Instant::now();
    let again = inspect::inspect(&mut conn, &opts).await.expect("inspect");
    let warm = warm.elapsed();
    conn.close().await.expect("close");
    eprintln!(
        "inspect of 300 tables ({} objects): first {cold:?}, second {warm:?}",
        catalog.object_count()
    );
    assert_eq!(catalog.tables.len(), 300);
    assert_eq!(catalog.sequences.len(), 300);
    assert_eq!(catalog, again);
    assert!(
        catalog.object_count() > 300 * 10,
        "{}",
        catalog.object_count()
    );
}
