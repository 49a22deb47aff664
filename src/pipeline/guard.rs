//! The cleanup guarantee around a run: the server (and every database and role ci-gate made) is
//! released after success, failure, a panic inside the pipeline, and SIGINT/SIGTERM. The work
//! runs in its own task and the server lives in a slot outside it, which [`guarded`] always
//! empties; a run that finished also writes the base cache entry it left in the archive slot.

use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::ServerSlot;
use crate::error::UserError;
use crate::report::Report;
use crate::run::builds::ArchiveSlot;

/// Run `work` with guaranteed cleanup of what it puts in the slots.
pub async fn guarded<F, Fut>(work: F) -> Result<Report, UserError>
where
    F: FnOnce(ServerSlot, ArchiveSlot) -> Fut,
    Fut: Future<Output = Result<Report, UserError>> + Send + 'static,
{
    let slot: ServerSlot = Arc::new(Mutex::new(None));
    let archive: ArchiveSlot = Arc::default();
    let mut body = tokio::spawn(work(slot.clone(), archive.clone()));
    let mut interrupted = false;
    let result = tokio::select! {
        joined = &mut body => match joined {
            Ok(r) => r,
            Err(e) if e.is_panic() => Err(UserError::environment("internal error: ci-gate panicked")
                .detail(panic_message(e))
                .hint("this is a bug in ci-gate; please report it with the command you ran")),
            Err(_) => Err(UserError::environment("interrupted")),
        },
        signal = shutdown_signal() => {
            interrupted = true;
            body.abort();
            let _ = body.await; // let the task drop what it holds (connections, a starting server)
            Err(UserError::environment(format!("interrupted by {signal}; cleaned up")))
        }
    };
    let pending = archive.lock().ok().and_then(|mut a| a.take());
    if let Some(mut server) = slot.lock().await.take() {
        if interrupted {
            server.abandon_background_work(); // no waiting for a pre-initialised image on Ctrl-C
        }
        let warnings = match (pending, &result) {
            // Only a run that finished writes the cache.
            (Some(pending), Ok(_)) => match pending.tar_path() {
                Ok(tar) => {
                    let (mut warnings, sha) =
                        server.shutdown_archiving(pending.database(), &tar).await;
                    if let Err(e) = pending.commit(sha) {
                        warnings.push(format!("base cache not written: {e}"));
                    }
                    warnings
                }
                Err(e) => {
                    let mut warnings = server.shutdown().await;
                    warnings.push(format!("base cache not written: {e}"));
                    warnings
                }
            },
            _ => server.shutdown().await,
        };
        for w in warnings {
            let _ = writeln!(std::io::stderr(), "warning: cleanup: {w}");
        }
    }
    result
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into()),
        Err(_) => "unknown".into(),
    }
}

pub async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return "SIGINT";
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
