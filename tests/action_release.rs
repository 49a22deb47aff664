//! The Action's install path (`action/run.sh`) against local HTTP servers that serve release
//! assets the way GitHub does: `/<owner>/<repo>/releases/download/<tag>/<asset>` answered with
//! a 302 to a separate asset host (github.com) or to `/storage/releases/…` on the same host
//! (GitHub Enterprise Server), `/releases/latest/download/…` redirected to the newest tag, 404
//! for anything not published. Cases: asset ok (and then served from the tool cache), checksum
//! mismatch, missing asset, GHES, and the real archive `release/build.sh` produced.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TARGET: &str = "x86_64-unknown-linux-gnu";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn asset_name() -> String {
    format!("ci-gate-{TARGET}.tar.gz")
}

/// A faked runner: temp, tool cache, a work dir, and an action checkout whose Cargo.toml says
/// which release the action's ref belongs to.
struct Runner {
    dir: tempfile::TempDir,
}

impl Runner {
    fn new(action_version: &str) -> Runner {
        let r = Runner {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
        };
        for d in ["temp", "toolcache", "work", "action", "stage"] {
            std::fs::create_dir_all(r.p(d)).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(
            r.p("action/Cargo.toml"),
            format!("[package]\nname = \"ci-gate\"\nversion = \"{action_version}\"\n"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        r
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Run action/run.sh as the action step would, with `server_url` as GITHUB_SERVER_URL.
    fn run(&self, server_url: &str, version: &str, extra: &[(&str, &str)]) -> Output {
        let _ = std::fs::remove_file(self.p("output.txt"));
        let mut cmd = Command::new("bash");
        cmd.arg(root().join("action/run.sh"))
            .current_dir(self.p("work"))
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.dir.path())
            .env("RUNNER_TEMP", self.p("temp"))
            .env("RUNNER_TOOL_CACHE", self.p("toolcache"))
            .env("GITHUB_OUTPUT", self.p("output.txt"))
            .env("GITHUB_PATH", self.p("path.txt"))
            .env("GITHUB_ACTION_PATH", self.p("action"))
            .env("GITHUB_ACTION_REPOSITORY", "acme/ci-gate")
            .env("GITHUB_SERVER_URL", server_url)
            .env("CI_GATE_ALLOW_HTTP", "1")
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("INPUT_VERSION", version)
            .env("INPUT_COMMENT", "never");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().unwrap_or_else(|e| panic!("{e}"))
    }

    fn output(&self, key: &str) -> String {
        std::fs::read_to_string(self.p("output.txt"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
            .unwrap_or_default()
    }

    fn installed(&self) -> PathBuf {
        self.p("temp/ci-gate-bin/ci-gate")
    }

    /// A release archive laid out like release/build.sh's, holding a fake ci-gate that writes a
    /// passing report with 3 warnings.
    fn fake_archive(&self) -> Vec<u8> {
        let stage = self.p(&format!("stage/ci-gate-{TARGET}"));
        std::fs::create_dir_all(&stage).unwrap_or_else(|e| panic!("{e}"));
        let fake = "#!/bin/sh\nwhile [ $# -gt 0 ]; do if [ \"$1\" = --json ]; then shift; echo '{\"verdict\":\"pass\",\"counts\":{\"errors\":0,\"warnings\":3}}' > \"$1\"; fi; shift; done\nexit 0\n";
        std::fs::write(stage.join("ci-gate"), fake).unwrap_or_else(|e| panic!("{e}"));
        let ok = Command::new("chmod")
            .arg("755")
            .arg(stage.join("ci-gate"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chmod");
        let tgz = self.p("stage/asset.tar.gz");
        let ok = Command::new("tar")
            .arg("-czf")
            .arg(&tgz)
            .arg("-C")
            .arg(self.p("stage"))
            .arg(format!("ci-gate-{TARGET}"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "tar");
        std::fs::read(&tgz).unwrap_or_else(|e| panic!("{e}"))
    }
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn sha256_line(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{hex}  {}\n", asset_name())
}

/// How the release server stores assets.
#[derive(Clone, Copy)]
enum Layout {
    /// github.com: the download URL redirects to another host.
    GitHub,
    /// GitHub Enterprise Server: the download URL redirects to `/storage/releases/…` on itself.
    Ghes,
}

/// A release server publishing `tag` (also as `latest`) with `asset` and `sha` (either may be
/// `None`: not published). Returns the server (GITHUB_SERVER_URL) and the asset host, if any.
async fn release_server(
    layout: Layout,
    tag: &str,
    asset: Option<Vec<u8>>,
    sha: Option<String>,
) -> (MockServer, Option<MockServer>) {
    let server = MockServer::start().await;
    let assets = match layout {
        Layout::GitHub => Some(MockServer::start().await),
        Layout::Ghes => None,
    };
    let store_base = match (&assets, layout) {
        (Some(a), Layout::GitHub) => format!("{}/github-production-release-asset/4242", a.uri()),
        _ => format!("{}/storage/releases/4242/files", server.uri()),
    };
    let store = assets.as_ref().unwrap_or(&server);
    let name = asset_name();
    let download = format!("/acme/ci-gate/releases/download/{tag}");
    for (file, body) in [
        (name.clone(), asset),
        (format!("{name}.sha256"), sha.map(String::into_bytes)),
    ] {
        // latest/download redirects to the newest release's download URL.
        Mock::given(method("GET"))
            .and(path(format!(
                "/acme/ci-gate/releases/latest/download/{file}"
            )))
            .respond_with(
                ResponseTemplate::new(302)
                    .insert_header("Location", format!("{}{download}/{file}", server.uri())),
            )
            .mount(&server)
            .await;
        let Some(body) = body else { continue };
        let stored = format!("{store_base}/{file}");
        Mock::given(method("GET"))
            .and(path(format!("{download}/{file}")))
            .respond_with(ResponseTemplate::new(302).insert_header("Location", stored.as_str()))
            .mount(&server)
            .await;
        let stored_path = stored
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
            .unwrap_or_default();
        Mock::given(method("GET"))
            .and(path(stored_path))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("Content-Type", "application/octet-stream")
                    .set_body_bytes(body),
            )
            .mount(store)
            .await;
    }
    (server, assets)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_action_installs_its_own_release_verifies_it_and_caches_it() {
    let r = Runner::new("9.9.9");
    let asset = r.fake_archive();
    let sha = sha256_line(&asset);
    let (server, assets) = release_server(Layout::GitHub, "v9.9.9", Some(asset), Some(sha)).await;
    // No version input: the release of the action's own source (its Cargo.toml), as `@v9`
    // resolves through the moved major tag.
    let out = r.run(&server.uri(), "", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(r.installed().exists());
    assert_eq!(r.output("verdict"), "pass", "{}", show(&out));
    assert_eq!(r.output("warnings"), "3");
    assert!(
        show(&out).contains(&format!(
            "/acme/ci-gate/releases/download/v9.9.9/{}",
            asset_name()
        )),
        "{}",
        show(&out)
    );
    let cached = r.p("toolcache/ci-gate/9.9.9/x86_64/ci-gate");
    assert!(cached.exists(), "not in the tool cache: {}", show(&out));
    assert!(r.p("toolcache/ci-gate/9.9.9/x86_64.complete").exists());

    // The next job on this runner: no download at all (the servers are gone).
    drop(server);
    drop(assets);
    std::fs::remove_dir_all(r.p("temp")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(r.p("temp")).unwrap_or_else(|e| panic!("{e}"));
    let out = r.run("http://127.0.0.1:9", "v9.9.9", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(show(&out).contains("from the tool cache"), "{}", show(&out));
    assert_eq!(r.output("verdict"), "pass");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checksum_mismatch_stops_the_job_and_installs_nothing() {
    let r = Runner::new("9.9.9");
    let asset = r.fake_archive();
    let wrong = format!("{}  {}\n", "0".repeat(64), asset_name());
    let (server, _assets) =
        release_server(Layout::GitHub, "v9.9.9", Some(asset), Some(wrong)).await;
    let out = r.run(&server.uri(), "9.9.9", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("::error title=ci-gate action::checksum mismatch"),
        "{}",
        show(&out)
    );
    assert!(!r.installed().exists(), "the binary was installed");
    assert!(!r.p("toolcache/ci-gate/9.9.9").exists(), "it was cached");
    assert_eq!(r.output("verdict"), "error");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_asset_stops_the_job_saying_what_to_do() {
    let r = Runner::new("9.9.9");
    // v9.9.9 is published, but without a checksum file; v1.2.3 is not published at all.
    let asset = r.fake_archive();
    let (server, _assets) = release_server(Layout::GitHub, "v9.9.9", Some(asset), None).await;
    let started = std::time::Instant::now();
    let out = r.run(&server.uri(), "v1.2.3", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let text = show(&out);
    assert!(text.contains("no release asset at"), "{text}");
    assert!(text.contains("version: source"), "{text}");
    assert!(!text.contains("cargo install"), "it must not build: {text}");
    assert!(started.elapsed().as_secs() < 60, "{text}");

    let out = r.run(&server.uri(), "v9.9.9", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(show(&out).contains("no checksum file"), "{}", show(&out));
    assert!(!r.installed().exists());

    // No build for this platform (Windows, Intel macOS): the same kind of explanation.
    let out = r.run(&server.uri(), "v9.9.9", &[("RUNNER_OS", "Windows")]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        show(&out).contains("no ci-gate release build for Windows/X64"),
        "{}",
        show(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn github_enterprise_server_urls_and_latest_work() {
    let r = Runner::new("9.9.9");
    let asset = r.fake_archive();
    let sha = sha256_line(&asset);
    let (server, _none) = release_server(Layout::Ghes, "v9.9.9", Some(asset), Some(sha)).await;
    // A GHES server URL with a trailing slash, and `latest`.
    let out = r.run(&format!("{}/", server.uri()), "latest", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(r.output("verdict"), "pass", "{}", show(&out));
    let requests = server.received_requests().await.unwrap_or_default();
    let paths: Vec<String> = requests.iter().map(|q| q.url.path().to_string()).collect();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("/storage/releases/4242/files/")),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|p| p == &format!("/acme/ci-gate/releases/latest/download/{}", asset_name())),
        "{paths:?}"
    );
    // Plain http is refused unless the test hook allows it.
    let r = Runner::new("9.9.9");
    let out = r.run(&server.uri(), "v9.9.9", &[("CI_GATE_ALLOW_HTTP", "0")]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(!r.installed().exists());
}

/// The archive release/build.sh made (`dist/ci-gate-x86_64-unknown-linux-gnu.tar.gz`, or
/// `$CI_GATE_RELEASE_ARCHIVE`), installed by the Action and run on a real project.
#[tokio::test(flavor = "multi_thread")]
async fn the_release_archive_built_here_installs_and_runs_through_the_action() {
    let archive = std::env::var_os("CI_GATE_RELEASE_ARCHIVE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("dist").join(asset_name()));
    if !archive.exists() {
        assert!(
            std::env::var("CI_GATE_REQUIRE_RELEASE_ARCHIVE").as_deref() != Ok("1"),
            "{} is required but missing: run release/build.sh {TARGET}",
            archive.display()
        );
        eprintln!(
            "SKIP: no release archive at {} (run release/build.sh {TARGET} first)",
            archive.display()
        );
        return;
    }
    let version = env!("CARGO_PKG_VERSION");
    let r = Runner::new(version);
    let bytes = std::fs::read(&archive).unwrap_or_else(|e| panic!("{e}"));
    // The checksum file release/build.sh wrote next to it, byte for byte.
    let sha_file = PathBuf::from(format!("{}.sha256", archive.display()));
    let sha = std::fs::read_to_string(&sha_file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sha, sha256_line(&bytes), "{} is stale", sha_file.display());
    let (server, _assets) = release_server(
        Layout::GitHub,
        &format!("v{version}"),
        Some(bytes),
        Some(sha),
    )
    .await;
    copy_dir(&root().join("tests/fixtures/clean"), &r.p("work/clean"));
    let out = r.run(
        &server.uri(),
        "",
        &[
            ("INPUT_WORKING_DIRECTORY", "clean"),
            ("INPUT_ARGS", "--provider local"),
            ("TMPDIR", r.p("temp").to_str().unwrap_or("/tmp")),
            ("NO_COLOR", "1"),
            (
                "PYTHONPATH",
                &std::env::var("PYTHONPATH").unwrap_or_default(),
            ),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(r.output("verdict"), "pass", "{}", show(&out));
    let v = Command::new(r.installed())
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        String::from_utf8_lossy(&v.stdout).trim(),
        format!("ci-gate {version}")
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{e}"));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{e}")) {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
