//! Removing containers: by id (the normal path and `Drop`), by run label (a start cancelled
//! before an id was known), and stale ones of dead ci-gate processes (the sweep at every start).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use testcontainers_modules::testcontainers::bollard::Docker;
use testcontainers_modules::testcontainers::bollard::models::ContainerSummary;
use testcontainers_modules::testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use testcontainers_modules::testcontainers::core::client::docker_client_instance;

use super::error::{ApiError, is_not_found};
use super::{LABEL_CREATED, LABEL_HOST, LABEL_PID, LABEL_RUN, short_id};

/// How long listing containers may take (the sweep, a cancelled start).
const LIST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long removing a running container may take (kill, network teardown, layer removal).
const REMOVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Age after which a container of a dead ci-gate process is swept.
const STALE_AFTER: Duration = Duration::from_secs(3600);
/// After a cancelled start: how often, and how far apart, to look for the run's containers.
const CANCEL_ROUNDS: u32 = 6;
const CANCEL_PAUSE: Duration = Duration::from_millis(200);

/// Removes every container of a run when dropped while armed: covers `provision` being
/// cancelled (its task aborted on SIGINT) while the container is created and started, when no
/// guard owns it yet.
pub(super) struct RemoveRunOnDrop {
    run_id: Option<String>,
}

impl RemoveRunOnDrop {
    pub fn armed(run_id: &str) -> RemoveRunOnDrop {
        RemoveRunOnDrop {
            run_id: Some(run_id.to_string()),
        }
    }

    pub fn disarm(mut self) {
        self.run_id = None;
    }
}

impl Drop for RemoveRunOnDrop {
    fn drop(&mut self) {
        if let Some(run_id) = self.run_id.take() {
            block_on_own_thread(async move {
                let Ok(docker) = docker_client_instance().await else {
                    return;
                };
                // A create request may still be in flight at the daemon: look a few times.
                for round in 0..CANCEL_ROUNDS {
                    if round > 0 {
                        tokio::time::sleep(CANCEL_PAUSE).await;
                    }
                    remove_run_containers(&docker, &run_id).await;
                }
            });
        }
    }
}

/// Run `work` to completion on a new thread with its own current-thread runtime and wait for it.
/// Usable from `Drop` anywhere: inside a runtime of either flavour or outside any.
pub(super) fn block_on_own_thread<F>(work: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    // The future sits in a slot so that, if no thread can be spawned, it can be leaked rather
    // than dropped here.
    let slot = Arc::new(Mutex::new(Some(work)));
    let in_thread = Arc::clone(&slot);
    let spawned = std::thread::Builder::new()
        .name("ci-gate-docker-cleanup".into())
        .spawn(move || {
            let Some(work) = in_thread.lock().ok().and_then(|mut w| w.take()) else {
                return;
            };
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(work),
                Err(_) => std::mem::forget(work), // left to the sweep
            }
        });
    match spawned {
        Ok(handle) => {
            let _ = handle.join();
        }
        Err(_) => {
            if let Some(work) = slot.lock().ok().and_then(|mut w| w.take()) {
                std::mem::forget(work); // left to the sweep
            }
        }
    }
}

/// Remove every container of run `run_id`; returns how many were removed.
pub(super) async fn remove_run_containers(docker: &Docker, run_id: &str) -> usize {
    let filter = format!("{LABEL_RUN}={run_id}");
    let listed = list_labelled(docker, &filter).await.unwrap_or_default();
    let mut removed = 0;
    for c in listed {
        if let Some(id) = c.id
            && remove_container(docker, &id).await.is_ok()
        {
            removed += 1;
        }
    }
    removed
}

async fn list_labelled(
    docker: &Docker,
    label_filter: &str,
) -> Result<Vec<ContainerSummary>, ApiError> {
    let mut filters = HashMap::new();
    filters.insert("label", vec![label_filter]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    tokio::time::timeout(LIST_TIMEOUT, docker.list_containers(Some(options)))
        .await
        .map_err(|_| ApiError::Timeout(LIST_TIMEOUT))?
        .map_err(ApiError::from)
}

/// Remove a container (force: killed if running; with its anonymous volumes). Gone already is
/// success.
pub(super) async fn remove_container(docker: &Docker, id: &str) -> Result<(), ApiError> {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match tokio::time::timeout(REMOVE_TIMEOUT, docker.remove_container(id, Some(options))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if is_not_found(&e) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(ApiError::Timeout(REMOVE_TIMEOUT)),
    }
}

/// Remove ci-gate containers of this host whose process is gone and that are older than an hour.
/// One list call with a label filter; what happened is returned as notes, never as an error.
pub(super) async fn sweep_stale(docker: &Docker) -> Vec<String> {
    let listed = match list_labelled(docker, LABEL_RUN).await {
        Ok(l) => l,
        Err(e) => {
            return vec![format!(
                "docker: could not list old ci-gate containers: {e}"
            )];
        }
    };
    let mut notes = Vec::new();
    let host = this_host();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for c in listed {
        let Some(id) = c.id.clone() else { continue };
        let labels = c.labels.clone().unwrap_or_default();
        if !is_stale(&labels, c.created, &host, now, pid_alive) {
            continue;
        }
        let run = labels.get(LABEL_RUN).cloned().unwrap_or_default();
        notes.push(match remove_container(docker, &id).await {
            Ok(()) => format!(
                "docker: removed stale container {} of run {run}",
                short_id(&id)
            ),
            Err(e) => format!(
                "docker: could not remove stale container {}: {e}",
                short_id(&id)
            ),
        });
    }
    notes
}

/// A container is stale if it was made on this host by a process that no longer exists, more
/// than [`STALE_AFTER`] ago. Containers without host or pid labels are never touched.
fn is_stale(
    labels: &HashMap<String, String>,
    docker_created: Option<i64>,
    this_host: &str,
    now: u64,
    alive: impl Fn(i32) -> bool,
) -> bool {
    if labels.get(LABEL_HOST).map(String::as_str) != Some(this_host) {
        return false;
    }
    let Some(pid) = labels
        .get(LABEL_PID)
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|p| *p > 0)
    else {
        return false;
    };
    let created = labels
        .get(LABEL_CREATED)
        .and_then(|c| c.parse::<u64>().ok())
        .or_else(|| docker_created.and_then(|c| u64::try_from(c).ok()));
    let Some(created) = created else { return false };
    if now.saturating_sub(created) < STALE_AFTER.as_secs() {
        return false;
    }
    pid != std::process::id() as i32 && !alive(pid)
}

fn pid_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(Errno::ESRCH) => false,
        Err(_) => true, // EPERM: exists, owned by someone else
    }
}

pub(super) fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_only_when_old_dead_and_ours() {
        let labels = |host: &str, pid: &str, created: u64| {
            HashMap::from([
                (LABEL_RUN.to_string(), "r".to_string()),
                (LABEL_HOST.to_string(), host.to_string()),
                (LABEL_PID.to_string(), pid.to_string()),
                (LABEL_CREATED.to_string(), created.to_string()),
            ])
        };
        let now = 10_000;
        let dead = |_| false;
        let alive = |_| true;
        assert!(is_stale(&labels("h", "4242", 1_000), None, "h", now, dead));
        assert!(!is_stale(
            &labels("h", "4242", 1_000),
            None,
            "h",
            now,
            alive
        ));
        assert!(
            !is_stale(&labels("h", "4242", 9_000), None, "h", now, dead),
            "younger than an hour"
        );
        assert!(
            !is_stale(&labels("other", "4242", 1_000), None, "h", now, dead),
            "another host"
        );
        assert!(
            !is_stale(&labels("h", "0", 1_000), None, "h", now, dead),
            "no usable pid"
        );
        let mut no_created = labels("h", "4242", 0);
        no_created.remove(LABEL_CREATED);
        assert!(
            is_stale(&no_created, Some(1_000), "h", now, dead),
            "falls back to Docker's Created"
        );
    }
}
