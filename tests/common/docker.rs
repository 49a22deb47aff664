//! The Docker engine the docker tests need, and ci-gate's test image: PostgreSQL 15 from this
//! machine's binaries in a `FROM scratch` image (`docker/test-postgres/build.sh`), since no
//! registry may be reachable.
//!
//! Without an engine (or without the docker CLI) a test prints one line,
//! `SKIP: no Docker engine answers at <host> (<why>)`, and passes; a failing image build fails.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

/// The image the docker tests run.
pub const TEST_IMAGE: &str = "ci-gate-test/postgres:15";

/// Build the test image once per test binary. `Err` says why there is no engine.
pub fn test_image() -> Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT.get_or_init(build).clone()
}

fn build() -> Result<(), String> {
    let script = super::root().join("docker/test-postgres/build.sh");
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(&script)
        .args(["--tag", TEST_IMAGE])
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stdout}\n{stderr}",
        script.display(),
        out.status
    );
    eprintln!(
        "build.sh ({:.1} s): {}",
        started.elapsed().as_secs_f64(),
        stdout.trim()
    );
    // build.sh: "docker: no engine answers at HOST; skipping (WHY)" or "docker: CLI not installed; skipping"
    match stdout
        .lines()
        .find(|l| l.starts_with("docker:") && l.contains("skipping"))
    {
        Some(line) => Err(skip_reason(line)),
        None => Ok(()),
    }
}

fn skip_reason(line: &str) -> String {
    let line = line.trim_start_matches("docker:").trim();
    match line.split_once("; skipping") {
        Some((what, why)) => format!("{what}{}", why.trim()),
        None => line.to_string(),
    }
}

/// True (after printing `SKIP: …`) when the test cannot run here: no engine answers.
pub fn skip() -> bool {
    match test_image() {
        Ok(()) => false,
        Err(reason) => {
            eprintln!(
                "SKIP: {reason}; this test needs a Docker engine (set DOCKER_HOST, or start Docker)"
            );
            true
        }
    }
}

/// Whether the engine answers at all (no image needed), with the reason when it does not.
pub fn engine() -> Result<(), String> {
    match Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "no Docker engine answers ({})",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("no docker CLI ({e})")),
    }
}

/// Ids of all containers (any state) labelled with `label=value`.
pub fn containers_labelled(label: &str, value: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-a", "-q", "--no-trunc", "--filter"])
        .arg(format!("label={label}={value}"))
        .output()
        .expect("docker ps");
    assert!(
        out.status.success(),
        "docker ps failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// `docker` with `args`, its stdout (trimmed); panics on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An image built for one test, removed when dropped (also when an assertion fails).
pub struct BuiltImage(pub String);

impl Drop for BuiltImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["image", "rm", "-f", &self.0])
            .output();
    }
}

/// `docker build -t TAG CONTEXT` with the classic builder (a `FROM` of a local image needs no
/// registry); panics when the build fails.
pub fn build_image(tag: &str, context: &std::path::Path) -> BuiltImage {
    let built = Command::new("docker")
        .args(["build", "--quiet", "-t", tag])
        .arg(context)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap_or_else(|e| panic!("docker build: {e}"));
    let image = BuiltImage(tag.to_string());
    assert!(
        built.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    image
}
