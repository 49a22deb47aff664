//! The `docker` provider when no daemon answers. A test binary of its own because it sets
//! `DOCKER_HOST` for the whole process (before any thread reads the environment).

use std::time::{Duration, Instant};

use ci_gate::provision::docker;
use ci_gate::provision::{ProviderChoice, ProvisionError, ProvisionRequest};

const DEAD_HOST: &str = "unix:///nonexistent.sock";

#[test]
fn an_unreachable_daemon_is_reported_quickly_and_plainly() {
    // SAFETY: the only test in this binary, run before any other thread exists that could read
    // the environment (the runtime is built afterwards).
    unsafe { std::env::set_var("DOCKER_HOST", DEAD_HOST) };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let req = ProvisionRequest {
        provider: ProviderChoice::Docker,
        database_url: None,
        pg_version: None,
        image: Some("ci-gate-test/postgres:15".into()),
        pg_bin: None,
        run_id: "down".into(),
    };

    assert_eq!(docker::resolved_docker_host(), DEAD_HOST);

    let started = Instant::now();
    let why = rt
        .block_on(docker::usable(&req))
        .expect_err("no daemon: not usable")
        .to_string();
    assert!(why.contains(DEAD_HOST) && !why.contains('\n'), "{why}");

    let err = rt
        .block_on(docker::provision(&req))
        .expect_err("no daemon: provision fails");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    match &err {
        ProvisionError::Unavailable { what, hint, .. } => {
            assert!(what.contains(DEAD_HOST), "{what}");
            assert!(
                hint.contains("DOCKER_HOST") && hint.contains("--provider local"),
                "{hint}"
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    eprintln!("{err}\n(in {elapsed:?})");
}
