//! One throwaway cluster shared by every test of a test binary: the first test to need it starts
//! it, the last [`Lease`] dropped stops it (a later test would start a new one).

use std::sync::Mutex;

use ci_gate::provision::local::LocalCluster;

/// Where a test binary keeps its cluster: `static SHARED: SharedCluster = SharedCluster::new();`.
pub struct SharedCluster {
    inner: Mutex<(Option<LocalCluster>, usize)>,
}

/// A test's hold on the shared cluster.
pub struct Lease {
    shared: &'static SharedCluster,
}

impl SharedCluster {
    pub const fn new() -> SharedCluster {
        SharedCluster {
            inner: Mutex::new((None, 0)),
        }
    }

    /// A lease on the running cluster, or `start`'s (called with the lock held, so the cluster is
    /// started once). `with` sees the cluster while the lock is held.
    pub fn lease<T>(
        &'static self,
        start: impl FnOnce() -> LocalCluster,
        with: impl FnOnce(&LocalCluster) -> T,
    ) -> (Lease, T) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let cluster = inner.0.get_or_insert_with(start);
        let seen = with(cluster);
        inner.1 += 1;
        (Lease { shared: self }, seen)
    }

    /// A lease on the cluster if one is running (for tests that start it asynchronously).
    pub fn lease_running<T>(
        &'static self,
        with: impl FnOnce(&LocalCluster) -> T,
    ) -> Option<(Lease, T)> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let seen = inner.0.as_ref().map(with)?;
        inner.1 += 1;
        Some((Lease { shared: self }, seen))
    }

    /// Keep `cluster` (started by the caller) as the shared one and lease it.
    pub fn install(&'static self, cluster: LocalCluster) -> Lease {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0 = Some(cluster);
        inner.1 += 1;
        Lease { shared: self }
    }
}

impl Default for SharedCluster {
    fn default() -> SharedCluster {
        SharedCluster::new()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let cluster = {
            let mut inner = self.shared.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.1 -= 1;
            if inner.1 == 0 { inner.0.take() } else { None }
        };
        if let Some(cluster) = cluster
            && let Err(e) = cluster.stop()
        {
            eprintln!("warning: stopping the test cluster: {e}");
        }
    }
}
