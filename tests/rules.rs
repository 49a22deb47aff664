//! One fixture and one snapshot per rule, end to end (ruff's pattern): for every id in
//! [`ALL_RULES`], `tests/fixtures/rules/<id>/` holds a small Prisma project as a base branch
//! (`base/`) and the pull request's changes (`pr/`), and `fixture.txt` says where the rule must
//! fire and where it must stay quiet. Each case builds a real git repository, runs the real binary
//! (`verify --base main --json -`) against one PostgreSQL cluster shared by this test binary, and
//! asserts the expectations before it snapshots the rule's findings (redacted) with insta.
//!
//! `fixture.txt`, one directive a line (`#` starts a comment):
//!
//! - `fires WHERE`: at least one finding of the rule is at WHERE, and every finding of the rule is
//!   at some `fires` place (so a finding nobody expected fails the test);
//! - `quiet WHERE`: no finding of the rule is at WHERE (the look-alike that must not fire);
//! - `delete PATH`: the pull request removes PATH (relative to the project);
//!
//! where WHERE is `MIGRATION:LINE`, `MIGRATION` (any line, or none), a file name such as
//! `migration_lock.toml:1`, or `"TEXT"` (the message contains TEXT: for findings that name an
//! object but no file, such as drift). A fixture with `live.sql` also gets a live database: the
//! base branch's migrations deployed the way `prisma migrate deploy` does, then `live.sql` run in
//! it; ci-gate reads it through `--live-url`, and the test checks it was left exactly as it was.
//!
//! See `tests/fixtures/rules/README.md` for how to add a rule's fixture.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ci_gate::check::ALL_RULES;
use ci_gate::provision::local;
use ci_gate::provision::{ProviderChoice, ProvisionRequest, connect_quiet, quote_ident};
use common::repo::git;
use common::shared::{Lease, SharedCluster};
use common::{Run, assert_no_leftovers, ci_gate, copy_dir, finish, root};
use serde_json::Value;
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgConnectOptions;

/// The table: one `#[test]` per rule, named after it, and the list the coverage test compares
/// with [`ALL_RULES`] and the fixture directories.
macro_rules! rule_fixtures {
    ($($test:ident => $id:literal,)*) => {
        const TABLE: &[&str] = &[$($id),*];
        $(
            #[test]
            fn $test() {
                check_rule($id);
            }
        )*
    };
}

rule_fixtures! {
    migration_fails => "migration-fails",
    unterminated_transaction => "unterminated-transaction",
    edited_applied_migration => "edited-applied-migration",
    deleted_applied_migration => "deleted-applied-migration",
    out_of_order_migration => "out-of-order-migration",
    history_drift => "history-drift",
    live_drift => "live-drift",
    live_failed_migration => "live-failed-migration",
    non_transactional_statement => "non-transactional-statement",
    fails_on_existing_rows => "fails-on-existing-rows",
    drops_table => "drops-table",
    drops_column => "drops-column",
    drops_schema => "drops-schema",
    drops_enum_value => "drops-enum-value",
    narrows_column_type => "narrows-column-type",
    deletes_rows => "deletes-rows",
    renames_table => "renames-table",
    renames_column => "renames-column",
    rewrites_table => "rewrites-table",
    blocks_reads_writes => "blocks-reads-writes",
    blocks_writes => "blocks-writes",
    missing_lock_timeout => "missing-lock-timeout",
    invalid_migration_layout => "invalid-migration-layout",
    invalid_allow_directive => "invalid-allow-directive",
}

fn fixtures_dir() -> PathBuf {
    root().join("tests/fixtures/rules")
}

#[test]
fn every_rule_has_a_fixture_and_every_fixture_or_snapshot_names_a_rule() {
    let registered: BTreeSet<&str> = ALL_RULES.iter().map(|r| r.id).collect();
    let tabled: BTreeSet<&str> = TABLE.iter().copied().collect();
    let dirs: BTreeSet<String> = std::fs::read_dir(fixtures_dir())
        .unwrap_or_else(|e| panic!("{}: {e}", fixtures_dir().display()))
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let without_fixture: Vec<&str> = registered
        .iter()
        .copied()
        .filter(|id| !dirs.contains(*id))
        .collect();
    assert!(
        without_fixture.is_empty(),
        "rules without tests/fixtures/rules/<id>/ (see its README): {without_fixture:?}"
    );
    let stray: Vec<&String> = dirs
        .iter()
        .filter(|d| !registered.contains(d.as_str()))
        .collect();
    assert!(
        stray.is_empty(),
        "fixture directories naming no rule in ALL_RULES: {stray:?}"
    );
    let untabled: Vec<&&str> = registered.difference(&tabled).collect();
    assert!(
        untabled.is_empty(),
        "rules missing from the table in tests/rules.rs: {untabled:?}"
    );
    let unknown: Vec<&&str> = tabled.difference(&registered).collect();
    assert!(
        unknown.is_empty(),
        "table entries naming no rule: {unknown:?}"
    );
    let orphans: Vec<String> = std::fs::read_dir(root().join("tests/snapshots"))
        .unwrap_or_else(|e| panic!("tests/snapshots: {e}"))
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name
                .strip_prefix("rules__")?
                .strip_suffix(".snap")?
                .to_string();
            (!registered.contains(id.as_str())).then_some(name)
        })
        .collect();
    assert!(
        orphans.is_empty(),
        "snapshots of rules no longer in ALL_RULES (delete them): {orphans:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// One cluster per test binary (see tests/common/shared.rs).

static SHARED: SharedCluster = SharedCluster::new();

/// A case's hold on the shared cluster.
struct Pg {
    admin: PgConnectOptions,
    url: String,
    socket_dir: String,
    port: u16,
    _lease: Lease,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"))
}

fn pg() -> Pg {
    let start = || {
        runtime()
            .block_on(local::start(&ProvisionRequest {
                provider: ProviderChoice::Local,
                database_url: None,
                pg_version: None,
                image: None,
                pg_bin: None,
                run_id: "rules".into(),
            }))
            .unwrap_or_else(|e| panic!("could not start a local PostgreSQL: {e}"))
    };
    let (_lease, (admin, url, socket_dir, port)) = SHARED.lease(start, |c| {
        (
            c.admin_options(),
            common::cluster_url(c),
            c.socket_dir().display().to_string(),
            c.port(),
        )
    });
    Pg {
        admin,
        url,
        socket_dir,
        port,
        _lease,
    }
}

// ---------------------------------------------------------------------------------------------
// The fixture: its expectations, its repository, its live database.

/// Where a finding is, as `fixture.txt` names it.
#[derive(Debug)]
enum Place {
    /// `MIGRATION` or `MIGRATION:LINE` (or a file name in place of the migration).
    At { name: String, line: Option<u64> },
    /// `"TEXT"`: the message contains TEXT.
    Message(String),
}

impl Place {
    fn parse(s: &str) -> Place {
        if let Some(text) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            return Place::Message(text.to_string());
        }
        match s.rsplit_once(':') {
            Some((name, line)) if line.parse::<u64>().is_ok() => Place::At {
                name: name.to_string(),
                line: line.parse().ok(),
            },
            _ => Place::At {
                name: s.to_string(),
                line: None,
            },
        }
    }

    fn holds(&self, f: &Value) -> bool {
        match self {
            Place::Message(text) => f["message"].as_str().unwrap_or("").contains(text.as_str()),
            Place::At { name, line } => {
                let in_it = f["migration"] == name.as_str()
                    || f["file"]
                        .as_str()
                        .is_some_and(|p| p.contains(name.as_str()));
                in_it && line.is_none_or(|l| f["line"] == l)
            }
        }
    }
}

struct Fixture {
    dir: PathBuf,
    fires: Vec<(String, Place)>,
    quiet: Vec<(String, Place)>,
    deletes: Vec<String>,
    live_sql: Option<String>,
}

impl Fixture {
    fn load(rule: &str) -> Fixture {
        let dir = fixtures_dir().join(rule);
        let spec = dir.join("fixture.txt");
        let text =
            std::fs::read_to_string(&spec).unwrap_or_else(|e| panic!("{}: {e}", spec.display()));
        let mut fx = Fixture {
            fires: Vec::new(),
            quiet: Vec::new(),
            deletes: Vec::new(),
            live_sql: std::fs::read_to_string(dir.join("live.sql")).ok(),
            dir,
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.split(" #").next().unwrap_or("").trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
            let arg = arg.trim().to_string();
            match verb {
                "fires" => fx.fires.push((arg.clone(), Place::parse(&arg))),
                "quiet" => fx.quiet.push((arg.clone(), Place::parse(&arg))),
                "delete" => fx.deletes.push(arg),
                _ => panic!("{}:{}: unknown directive `{verb}`", spec.display(), n + 1),
            }
        }
        assert!(
            !fx.fires.is_empty(),
            "{}: no `fires` line: say where {rule} must fire",
            spec.display()
        );
        fx
    }

    /// A git repository: `base/` committed on `main`, then `pr/` copied over it (and the
    /// `delete`d paths removed) committed on `pr`, which stays checked out.
    fn repo(&self) -> tempfile::TempDir {
        let repo = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = repo.path();
        git(p, &["init", "-q", "-b", "main"]);
        git(p, &["config", "user.email", "t@example.com"]);
        git(p, &["config", "user.name", "t"]);
        git(p, &["config", "commit.gpgsign", "false"]);
        git(p, &["config", "core.autocrlf", "false"]);
        copy_dir(&self.dir.join("base"), p);
        git(p, &["add", "-A"]);
        git(p, &["commit", "-q", "-m", "base"]);
        git(p, &["checkout", "-q", "-b", "pr"]);
        if self.dir.join("pr").is_dir() {
            copy_dir(&self.dir.join("pr"), p);
        }
        for d in &self.deletes {
            let target = p.join(d);
            let removed = if target.is_dir() {
                std::fs::remove_dir_all(&target)
            } else {
                std::fs::remove_file(&target)
            };
            removed.unwrap_or_else(|e| panic!("delete {d}: {e}"));
        }
        git(p, &["add", "-A"]);
        git(p, &["commit", "-q", "--allow-empty", "-m", "pull request"]);
        repo
    }
}

/// A "production" database on the shared cluster, owned by a non-superuser: the base branch's
/// migrations deployed with their history rows, then `live.sql`. Dropped (with its role) at the
/// end of the case.
struct Live {
    admin: PgConnectOptions,
    opts: PgConnectOptions,
    name: String,
    url: String,
}

impl Live {
    async fn deploy(pg: &Pg, rule: &str, base: &Path, sql: &str) -> Live {
        let name = format!("live_{}", rule.replace('-', "_"));
        let mut admin = connect_quiet(&pg.admin)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let n = quote_ident(&name);
        // One message each: CREATE DATABASE cannot run in the implicit transaction of two.
        for sql in [
            format!("CREATE ROLE {n} LOGIN PASSWORD 'secret'"),
            format!("CREATE DATABASE {n} OWNER {n}"),
            // History timestamps are read as text in the session's time zone: pin it, so the
            // snapshot does not depend on the machine's.
            format!("ALTER DATABASE {n} SET timezone TO 'UTC'"),
        ] {
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut admin)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let opts = pg
            .admin
            .clone()
            .database(&name)
            .username(&name)
            .password("secret");
        common::production::deploy(&opts, base).await;
        let mut app = connect_quiet(&opts).await.unwrap_or_else(|e| panic!("{e}"));
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&mut app)
            .await
            .unwrap_or_else(|e| panic!("live.sql: {e}"));
        let url = format!(
            "postgres://{name}:secret@localhost/{name}?host={}&port={}",
            pg.socket_dir, pg.port
        );
        Live {
            admin: pg.admin.clone(),
            opts,
            name,
            url,
        }
    }

    async fn state(&self) -> String {
        common::production::state(&self.opts).await
    }

    async fn drop_it(&self) {
        let mut admin = connect_quiet(&self.admin)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let n = quote_ident(&self.name);
        for sql in [
            format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"),
            format!("DROP ROLE IF EXISTS {n}"),
        ] {
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut admin)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The case.

fn verify(repo: &Path, pg: &Pg, live_url: Option<&str>) -> Run {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = ci_gate(tmp.path());
    cmd.arg("verify")
        .arg(repo)
        .args(["--base", "main", "--json", "-", "--provider", "url"])
        .args(["--database-url", &pg.url]);
    if let Some(url) = live_url {
        cmd.args(["--live-url", url]);
    }
    let run = finish(cmd.output().unwrap_or_else(|e| panic!("run ci-gate: {e}")));
    assert_no_leftovers(tmp.path(), &run);
    run
}

/// The findings of `rule`, asserting there is at least one.
fn findings_err(run: &Run, rule: &str) -> Vec<Value> {
    let found: Vec<Value> = run
        .findings()
        .into_iter()
        .filter(|f| f["rule"] == rule)
        .collect();
    assert!(
        !found.is_empty(),
        "{rule} did not fire on its fixture; all findings:\n{}\nstderr:\n{}",
        pretty(&run.findings()),
        run.stderr
    );
    found
}

fn pretty(v: &[Value]) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn check_rule(rule: &str) {
    let fx = Fixture::load(rule);
    let repo = fx.repo();
    let pg = pg();
    let rt = runtime();
    let live = fx
        .live_sql
        .as_deref()
        .map(|sql| rt.block_on(Live::deploy(&pg, rule, &fx.dir.join("base"), sql)));
    let before = live.as_ref().map(|l| rt.block_on(l.state()));
    let run = verify(repo.path(), &pg, live.as_ref().map(|l| l.url.as_str()));
    if let (Some(l), Some(before)) = (&live, before) {
        let after = rt.block_on(l.state());
        rt.block_on(l.drop_it());
        assert_eq!(after, before, "ci-gate changed the live database");
    }
    assert!(
        run.code == 0 || run.code == 1,
        "ci-gate did not produce a verdict (exit {}):\n{}",
        run.code,
        run.stderr
    );

    let found = findings_err(&run, rule);
    for (spec, place) in &fx.fires {
        assert!(
            found.iter().any(|f| place.holds(f)),
            "{rule} did not fire at `{spec}`; its findings:\n{}",
            pretty(&found)
        );
    }
    for (spec, place) in &fx.quiet {
        let wrong: Vec<Value> = found.iter().filter(|f| place.holds(f)).cloned().collect();
        assert!(
            wrong.is_empty(),
            "{rule} fired at `{spec}`, which must stay quiet:\n{}",
            pretty(&wrong)
        );
    }
    let unexpected: Vec<Value> = found
        .iter()
        .filter(|f| !fx.fires.iter().any(|(_, p)| p.holds(f)))
        .cloned()
        .collect();
    assert!(
        unexpected.is_empty(),
        "{rule} fired where fixture.txt expects nothing:\n{}",
        pretty(&unexpected)
    );

    let redact = Redactor {
        known: vec![
            (repo.path().display().to_string(), "[repo]"),
            (pg.socket_dir.clone(), "[socket]"),
            (format!("port={}", pg.port), "port=[port]"),
        ],
    };
    let snapshot: Vec<Value> = found.into_iter().map(|f| redact.value(f)).collect();
    insta::assert_yaml_snapshot!(rule, snapshot);
}

// ---------------------------------------------------------------------------------------------
// Redaction: what changes from run to run becomes a placeholder.

struct Redactor {
    known: Vec<(String, &'static str)>,
}

impl Redactor {
    fn value(&self, v: Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Array(a) => Value::Array(a.into_iter().map(|v| self.value(v)).collect()),
            Value::Object(o) => {
                Value::Object(o.into_iter().map(|(k, v)| (k, self.value(v))).collect())
            }
            other => other,
        }
    }

    fn text(&self, s: &str) -> String {
        let mut s = s.to_string();
        for (from, to) in &self.known {
            if !from.is_empty() {
                s = s.replace(from.as_str(), to);
            }
        }
        let s = replace_runs(&s, "cigate_", 10, |c| c.is_ascii_hexdigit(), "cigate_[run]");
        let s = redact_hex_words(&s, 40, "[commit]");
        redact_durations(&s)
    }
}

/// `prefix` followed by exactly `len` characters matching `ok` becomes `to`.
fn replace_runs(s: &str, prefix: &str, len: usize, ok: fn(char) -> bool, to: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(prefix) {
        let after = &rest[i + prefix.len()..];
        let run: String = after.chars().take_while(|c| ok(*c)).collect();
        out.push_str(&rest[..i]);
        if run.len() == len {
            out.push_str(to);
            rest = &after[len..];
        } else {
            out.push_str(prefix);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Words of exactly `len` hex digits (commit ids) become `to`.
fn redact_hex_words(s: &str, len: usize, to: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.len() == len {
            out.push_str(to);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in s.chars() {
        if c.is_ascii_hexdigit() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// `12 ms`, `1.4 s`, `2 min 3 s` become `[duration]`.
fn redact_durations(s: &str) -> String {
    let tokens: Vec<&str> = s.split(' ').collect();
    let number = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.');
    let unit = |t: &str| {
        let t = t.trim_end_matches([',', ')', ';', '.', ':']);
        matches!(t, "ms" | "s" | "min")
    };
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].trim_start_matches('(');
        if number(t) && i + 1 < tokens.len() && unit(tokens[i + 1]) {
            let lead = &tokens[i][..tokens[i].len() - t.len()];
            let mut j = i + 1;
            // `2 min 3 s`
            while j + 2 < tokens.len() && number(tokens[j + 1]) && unit(tokens[j + 2]) {
                j += 2;
            }
            let unit_tok = tokens[j];
            let tail = unit_tok.trim_start_matches(char::is_alphabetic);
            out.push(format!("{lead}[duration]{tail}"));
            i = j + 1;
        } else {
            out.push(tokens[i].to_string());
            i += 1;
        }
    }
    out.join(" ")
}

#[test]
fn redaction_turns_run_dependent_text_into_placeholders() {
    let r = Redactor {
        known: vec![("/tmp/.tmpAbC".into(), "[repo]")],
    };
    assert_eq!(
        r.text("observed: ShareLock on public.\"Post\" (12 ms), then 1.4 s and 2 min 3 s."),
        "observed: ShareLock on public.\"Post\" ([duration]), then [duration] and [duration]."
    );
    assert_eq!(
        r.text("role cigate_0123456789_owner in /tmp/.tmpAbC at 0123456789abcdef0123456789abcdef01234567"),
        "role cigate_[run]_owner in [repo] at [commit]"
    );
    assert_eq!(r.text("2 rows of 3 tables"), "2 rows of 3 tables");
}
