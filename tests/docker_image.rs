//! The published image's runtime layout, built here where no base image can be pulled: on top
//! of `ci-gate-test/postgres:15` (a `FROM scratch` image of this machine's PostgreSQL binaries,
//! docker/test-postgres/build.sh), the test adds what the Dockerfile's runtime stage adds
//! (ci-gate at the path it copies to, tini, its ENV PATH and exec-form ENTRYPOINT, read from the
//! Dockerfile itself) and runs `ci-gate verify` inside on the example project, as
//! `docker run --rm -v "$PWD:/work" -w /work IMAGE verify` would.
//!
//! Prints `SKIP:` and passes when no Docker engine answers.

mod common;

use std::path::Path;
use std::process::Command;

const BASE: &str = "ci-gate-test/postgres:15";

/// The runtime stage's `ENV PATH=…` and `ENTRYPOINT […]` lines and the destination of its
/// ci-gate COPY, with `${PG_MAJOR}` replaced.
fn runtime_layout(major: &str) -> (String, String, String) {
    let text = std::fs::read_to_string(common::root().join("Dockerfile"))
        .unwrap_or_else(|e| panic!("{e}"));
    let runtime = text
        .split("AS runtime")
        .nth(1)
        .unwrap_or_else(|| panic!("no runtime stage in the Dockerfile"));
    let line = |prefix: &str| {
        runtime
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in the runtime stage"))
            .replace("${PG_MAJOR}", major)
    };
    let copy = line("COPY --from=build ");
    let dest = copy
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    (line("ENV PATH="), line("ENTRYPOINT "), dest)
}

/// Copy `file` into `ctx` at its own absolute path (and the shared libraries it needs).
fn put_with_libs(ctx: &Path, file: &Path, at: &str) {
    let dest = ctx.join(at.trim_start_matches('/'));
    std::fs::create_dir_all(dest.parent().unwrap_or(ctx)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(file, &dest).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let ldd = Command::new("ldd")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("ldd: {e}"));
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .lines()
        .filter_map(|l| l.split("=>").nth(1))
        .filter_map(|r| r.split_whitespace().next())
        .filter(|p| p.starts_with('/'))
    {
        // The base image keeps everything under /usr (merged layout).
        let inside = if lib.starts_with("/usr/") {
            lib.to_string()
        } else {
            format!("/usr{lib}")
        };
        let d = ctx.join(inside.trim_start_matches('/'));
        std::fs::create_dir_all(d.parent().unwrap_or(ctx)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(lib, &d).unwrap_or_else(|e| panic!("{lib}: {e}"));
    }
}

#[test]
fn the_runtime_layout_runs_verify_inside_a_container() {
    if let Err(why) = common::docker::engine() {
        eprintln!(
            "SKIP: {why}; this test needs a Docker engine (set DOCKER_HOST, or start Docker)"
        );
        return;
    }
    let build = Command::new("bash")
        .arg(common::root().join("docker/test-postgres/build.sh"))
        .args(["--tag", BASE])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let tini = Path::new("/usr/bin/tini");
    if !tini.exists() {
        eprintln!(
            "SKIP: no /usr/bin/tini on this machine to put in the image (apt-get install tini)"
        );
        return;
    }

    let (env_path, entrypoint, dest) = runtime_layout("15");
    assert_eq!(dest, "/usr/local/bin/ci-gate");
    let ctx = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rootfs = ctx.path().join("rootfs");
    put_with_libs(&rootfs, Path::new(env!("CARGO_BIN_EXE_ci-gate")), &dest);
    put_with_libs(&rootfs, tini, "/usr/bin/tini");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {BASE}\nCOPY rootfs/ /\n{env_path}\n{entrypoint}\nCMD [\"--help\"]\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let tag = format!("ci-gate-test/runtime:{}", std::process::id());
    let _image = common::docker::build_image(&tag, ctx.path());

    let project = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    common::copy_dir(&common::root().join("examples/prisma-saas"), project.path());
    let out = Command::new("docker")
        .args(["run", "--rm", "--label", "dev.ci-gate.test=docker_image"])
        .arg("-v")
        .arg(format!("{}:/work", project.path().display()))
        .args([
            "-w",
            "/work",
            &tag,
            "verify",
            "--json",
            "-",
            "--provider",
            "local",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    assert_eq!(json["verdict"], "pass", "{stdout}");
    assert_eq!(json["server"]["provider"], "local");
    assert!(
        json["server"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("15.")),
        "{}",
        json["server"]
    );
}
