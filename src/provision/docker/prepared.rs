//! The pre-initialised data directory: an image derived once from the chosen one, holding a
//! cluster made by the start script's `initdb` (`/var/lib/postgresql/ci-gate-template`), so that
//! later containers copy it into their tmpfs instead of running initdb (≈0.8 s → ≈0.1 s).
//!
//! Preparing costs a run a few seconds (the copy, and `docker commit` of it, which the run waits
//! for before removing its container), repaid only if the engine outlives the run: a GitHub-hosted
//! runner starts every job with a fresh engine. So the first run on an engine only tags the base
//! image `…:<key>-seen` (no data is copied); a run that finds that tag prepares: its container
//! copies the fresh cluster before starting its server, and ci-gate commits it while the run goes
//! on. The derived image is tagged
//! `ci-gate-prepared/postgres:<key>`, the key being a hash of the base image's id and the start
//! script, and is labelled with the base image's reference; when a base image is updated, the
//! image derived from its previous version is removed. Remove them all with
//! `docker image rm $(docker images -q ci-gate-prepared/postgres)`.
//!
//! The template's superuser password is the preparing run's (a label of the derived image, as
//! readable as the image itself); each run replaces it with its own on its first connection.

use std::collections::HashMap;
use std::time::Duration;

use sha2::{Digest, Sha256};
use testcontainers_modules::testcontainers::bollard::Docker;
use testcontainers_modules::testcontainers::bollard::models::ContainerConfig;
use testcontainers_modules::testcontainers::bollard::query_parameters::{
    CommitContainerOptionsBuilder, ListImagesOptionsBuilder, RemoveImageOptionsBuilder,
    TagImageOptionsBuilder,
};
use tokio::task::JoinHandle;

use super::container::SCRIPT;
use super::error::ApiError;

/// Where the derived images go.
const REPO: &str = "ci-gate-prepared/postgres";
/// The line the start script logs once the template is in place.
const PREPARED_MARKER: &str = "ci-gate: template prepared";
/// The line it logs when it made none (the copy failed, or the image's own entrypoint ran).
const NOT_PREPARED_MARKER: &str = "ci-gate: template not prepared";
const LABEL_KEY: &str = "dev.ci-gate.prepared.key";
const LABEL_FROM: &str = "dev.ci-gate.prepared.from";
const LABEL_BASE_ID: &str = "dev.ci-gate.prepared.base-id";
const LABEL_PASSWORD: &str = "dev.ci-gate.prepared.password";
/// How long the run waits for the commit at its end.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(60);

/// A derived image with the template, and the template's superuser password.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    pub image: String,
    pub password: String,
}

/// The derived image's key: the base image's id and the start script that made the template.
pub(super) fn key(base_id: &str) -> String {
    let digest = Sha256::digest(format!("{base_id}\0{SCRIPT}"));
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn reference(key: &str) -> String {
    format!("{REPO}:{key}")
}

fn seen_tag(key: &str) -> String {
    format!("{key}-seen")
}

/// What this engine holds for `key`.
pub(super) enum Found {
    /// The derived image.
    Prepared(Prepared),
    /// No derived image, but a run has used the base image here before: prepare it now.
    Seen,
    /// Neither: the first run here.
    New,
}

/// The derived image of `key`, or whether its base was used here before.
pub(super) async fn find(docker: &Docker, key: &str) -> Found {
    let image = reference(key);
    let labels = docker
        .inspect_image(&image)
        .await
        .ok()
        .and_then(|i| i.config?.labels);
    if let Some(labels) = labels
        && labels.get(LABEL_KEY).map(String::as_str) == Some(key)
        && let Some(password) = labels.get(LABEL_PASSWORD)
    {
        let password = password.clone();
        return Found::Prepared(Prepared { image, password });
    }
    match docker.inspect_image(&reference(&seen_tag(key))).await {
        Ok(_) => Found::Seen,
        Err(_) => Found::New,
    }
}

/// Note that base image `base_id` was used on this engine (a tag, no data). Failures are
/// ignored: the next run notes it again.
pub(super) async fn mark_seen(docker: &Docker, base_id: &str, key: &str) {
    let tag = seen_tag(key);
    let options = TagImageOptionsBuilder::new().repo(REPO).tag(&tag).build();
    let _ = docker.tag_image(base_id, Some(options)).await;
}

/// The image a derived image is made from.
pub(super) struct Base<'a> {
    /// As the user named it (`postgres:17`).
    pub reference: &'a str,
    /// Its id (`sha256:…`).
    pub id: &'a str,
}

/// A commit under way; [`Commit::finish`] waits for it.
pub(super) struct Commit(JoinHandle<Result<(), ApiError>>);

impl Commit {
    /// Commit container `id` (started to prepare: it logs [`PREPARED_MARKER`] once its copy is
    /// made) as the derived image of `key`, in the background, then remove what was derived from
    /// earlier versions of `base`.
    pub fn start(docker: &Docker, id: &str, key: &str, base: &Base, password: &str) -> Commit {
        let (docker, id, key, base_id) = (
            docker.clone(),
            id.to_string(),
            key.to_string(),
            base.id.to_string(),
        );
        let base = base.reference.to_string();
        let labels = HashMap::from([
            (LABEL_KEY.to_string(), key.clone()),
            (LABEL_FROM.to_string(), base.clone()),
            (LABEL_BASE_ID.to_string(), base_id),
            (LABEL_PASSWORD.to_string(), password.to_string()),
        ]);
        Commit(tokio::spawn(async move {
            // Only a container that made the copy (not one that went through its image's own
            // entrypoint), and not when a concurrent run has made the image meanwhile.
            if !prepared(&docker, &id).await || docker.inspect_image(&reference(&key)).await.is_ok()
            {
                return Ok(());
            }
            let options = CommitContainerOptionsBuilder::new()
                .container(&id)
                .repo(REPO)
                .tag(&key)
                .pause(false)
                .build();
            let config = ContainerConfig {
                labels: Some(labels),
                ..Default::default()
            };
            let made = docker.commit_container(options, config).await?;
            // What the tag names now: a concurrent run's commit may have taken it since.
            let current = docker.inspect_image(&reference(&key)).await.ok();
            let keep = current.and_then(|i| i.id).unwrap_or(made.id);
            remove_older(&docker, &base, &key, &keep).await;
            let untag = RemoveImageOptionsBuilder::new().noprune(true).build();
            let seen = reference(&seen_tag(&key));
            let _ = docker.remove_image(&seen, Some(untag), None).await;
            Ok(())
        }))
    }

    /// Give up on it (the container is about to go).
    pub fn abort(self) {
        self.0.abort();
    }

    /// Wait for the commit (bounded); what went wrong is a note, never an error of the run.
    pub async fn finish(self) -> Option<String> {
        match tokio::time::timeout(COMMIT_TIMEOUT, self.0).await {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(e))) => Some(format!(
                "docker: the pre-initialised image was not saved: {e}"
            )),
            Ok(Err(e)) => Some(format!(
                "docker: the pre-initialised image was not saved: {e}"
            )),
            Err(_) => Some(format!(
                "docker: the pre-initialised image was not saved within {} s",
                COMMIT_TIMEOUT.as_secs()
            )),
        }
    }
}

/// Whether container `id` logged [`PREPARED_MARKER`] (rather than [`NOT_PREPARED_MARKER`]). The
/// log reaches the daemon through its own copier, maybe after the server's readiness, so it is
/// read a few times.
async fn prepared(docker: &Docker, id: &str) -> bool {
    for round in 0..10 {
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let log = super::container::logs(docker, id, "100").await;
        if log.contains(NOT_PREPARED_MARKER) {
            return false;
        }
        if log.contains(PREPARED_MARKER) {
            return true;
        }
    }
    false
}

/// Remove the images derived from `base` other than `keep` (from an earlier version of it), and
/// those of the same key (a concurrent run's commit under the same tag, left untagged).
async fn remove_older(docker: &Docker, base: &str, key: &str, keep: &str) {
    for filter in [format!("{LABEL_FROM}={base}"), format!("{LABEL_KEY}={key}")] {
        let filters = HashMap::from([("label", vec![filter.as_str()])]);
        let options = ListImagesOptionsBuilder::new().filters(&filters).build();
        let Ok(images) = docker.list_images(Some(options)).await else {
            continue;
        };
        for image in images.iter().filter(|i| i.id != keep) {
            let options = RemoveImageOptionsBuilder::new().force(false).build();
            let _ = docker.remove_image(&image.id, Some(options), None).await;
        }
    }
}
