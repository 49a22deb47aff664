//! The local provider's postmaster: spawned under our supervision (never daemonized), signalled,
//! waited for without reaping races.

use super::*;

// ---------------------------------------------------------------------------------------------
// The postmaster and its supervisor thread.

/// What the supervisor thread knows about the postmaster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    Running,
    /// Exited (the text says how); the process is a zombie or already reaped.
    Exited(String),
}

pub(super) type Shared = Arc<(Mutex<State>, Condvar)>;

/// A postmaster started and supervised by a dedicated thread.
///
/// The thread forks the postmaster and then blocks until it exits, so it lives exactly as long
/// as the server: that is what makes `PR_SET_PDEATHSIG` correct (it fires when the forking
/// *thread* ends, so forking from a tokio worker or blocking thread would kill the server when
/// that thread is retired). If ci-gate is killed, the thread dies with it and the kernel sends
/// the postmaster SIGKILL; its backends notice the postmaster's death and exit on their own.
pub(super) struct Postmaster {
    pub(super) pid: u32,
    state: Shared,
    supervisor: Option<JoinHandle<()>>,
}

pub(super) fn spawn_postmaster(
    binaries: &Binaries,
    cluster: &LocalCluster,
    run_as: Option<&RunAs>,
    log_path: &Path,
) -> io::Result<Postmaster> {
    let log = File::create(log_path)?;
    let mut cmd = Command::new(&binaries.postgres);
    cmd.arg("-D")
        .arg(&cluster.data_dir)
        .arg("-k")
        .arg(&cluster.socket_dir)
        .arg("-p")
        .arg(cluster.port.to_string());
    for setting in [
        // Unix socket only: no port to collide with, nothing reachable from outside.
        "listen_addresses=",
        // Throwaway data: durability buys nothing.
        "fsync=off",
        "synchronous_commit=off",
        "full_page_writes=off",
        "wal_level=minimal",
        "max_wal_senders=0",
        "max_connections=100",
        // Repeatable runs: no background vacuum taking locks or changing plans, no JIT pauses.
        "autovacuum=off",
        "jit=off",
        "huge_pages=off",
        // Dynamic shared memory as files in the data directory rather than in /dev/shm, so
        // even a postmaster that dies by SIGKILL leaves none behind once the temp dir is gone.
        "dynamic_shared_memory_type=mmap",
        // Quiet log: only what explains a failure.
        "log_checkpoints=off",
        "logging_collector=off",
        "log_destination=stderr",
    ] {
        cmd.arg("-c").arg(setting);
    }
    configure(&mut cmd, run_as, cluster.temp_dir(), &log)?;
    drop(log);

    let state: Shared = Arc::new((Mutex::new(State::Running), Condvar::new()));
    let thread_state = Arc::clone(&state);
    let (tx, rx) = mpsc::channel::<io::Result<u32>>();
    let supervisor = std::thread::Builder::new()
        .name("ci-gate-postmaster".into())
        .spawn(move || {
            let mut child = match cmd.spawn() {
                Ok(child) => child,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(Ok(child.id()));
            let how = wait_without_reaping(&mut child);
            {
                let (lock, cvar) = &*thread_state;
                if let Ok(mut s) = lock.lock() {
                    *s = State::Exited(how);
                }
                cvar.notify_all();
            }
            let _ = child.wait();
        })?;
    match rx.recv() {
        Ok(Ok(pid)) => Ok(Postmaster {
            pid,
            state,
            supervisor: Some(supervisor),
        }),
        Ok(Err(e)) => {
            let _ = supervisor.join();
            Err(e)
        }
        Err(_) => {
            let _ = supervisor.join();
            Err(io::Error::other(
                "the supervisor thread ended before starting the server",
            ))
        }
    }
}

/// Wait for the child to exit without reaping it, and say how it ended. The supervisor records
/// the exit under the state lock and only then reaps: until then the pid stays a zombie, so
/// `Postmaster::signal` (which checks the record under the same lock) can never signal a
/// recycled pid.
#[cfg(target_os = "linux")]
pub(super) fn wait_without_reaping(child: &mut std::process::Child) -> String {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    let pid = Pid::from_raw(child.id() as i32);
    loop {
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(WaitStatus::Exited(_, code)) => return format!("exited with status {code}"),
            Ok(WaitStatus::Signaled(_, sig, _)) => return format!("was killed by {sig}"),
            Ok(other) => return format!("ended ({other:?})"),
            Err(e) => return format!("ended (status unknown: {e})"),
        }
    }
}

/// Elsewhere: reap at once (the window in which the pid could be recycled before the exit is
/// recorded is a few instructions long).
#[cfg(not(target_os = "linux"))]
pub(super) fn wait_without_reaping(child: &mut std::process::Child) -> String {
    match child.wait() {
        Ok(status) => format!("ended ({status})"),
        Err(e) => format!("ended (status unknown: {e})"),
    }
}

impl Postmaster {
    /// `Some(how)` once the postmaster has exited.
    pub(super) fn exited(&self) -> Option<String> {
        match self.state.0.lock() {
            Ok(s) => match &*s {
                State::Running => None,
                State::Exited(how) => Some(how.clone()),
            },
            Err(_) => Some("status unknown (lock poisoned)".into()),
        }
    }

    /// Send `sig` unless the process has exited. Ok(false) if it had.
    pub(super) fn signal(&self, sig: Signal) -> Result<bool, PostmasterError> {
        let guard = self.state.0.lock().map_err(|_| PostmasterError::Poisoned)?;
        if *guard != State::Running {
            return Ok(false);
        }
        match kill(Pid::from_raw(self.pid as i32), sig) {
            Ok(()) => Ok(true),
            Err(nix::errno::Errno::ESRCH) => Ok(false),
            Err(source) => Err(PostmasterError::Signal {
                sig,
                pid: self.pid,
                source,
            }),
        }
    }

    /// Wait up to `timeout` for the exit; true if it exited.
    pub(super) fn wait_exit(&self, timeout: Duration) -> bool {
        let (lock, cvar) = &*self.state;
        match lock.lock() {
            Ok(guard) => match cvar.wait_timeout_while(guard, timeout, |s| *s == State::Running) {
                Ok((s, _)) => *s != State::Running,
                Err(_) => false,
            },
            Err(_) => false,
        }
    }

    /// Immediate shutdown (SIGQUIT: end sessions, exit without a checkpoint, which is all a
    /// data directory about to be deleted needs: 40 ms instead of 240 ms at 5,000 migrations),
    /// SIGKILL if that hangs.
    pub(super) fn stop(self) -> Result<(), PostmasterError> {
        self.stop_with(Signal::SIGQUIT)
    }

    /// Stop with `sig` (SIGINT: fast shutdown, a checkpoint and a clean data directory),
    /// SIGKILL if that hangs.
    pub(super) fn stop_with(mut self, sig: Signal) -> Result<(), PostmasterError> {
        let mut stopped = true;
        self.signal(sig)?;
        if !self.wait_exit(STOP_TIMEOUT) {
            self.signal(Signal::SIGKILL)?;
            stopped = self.wait_exit(KILL_TIMEOUT);
        }
        if !stopped {
            // Leave the supervisor thread detached: joining would block forever.
            self.supervisor.take();
            return Err(PostmasterError::StillRunning { pid: self.pid });
        }
        if let Some(handle) = self.supervisor.take() {
            let _ = handle.join();
        }
        Ok(())
    }
}

impl Drop for Postmaster {
    fn drop(&mut self) {
        // Only reached without `stop` on a panic path; still do not leave the server running.
        if self.supervisor.is_some() {
            let _ = self.signal(Signal::SIGKILL);
            if self.wait_exit(KILL_TIMEOUT)
                && let Some(handle) = self.supervisor.take()
            {
                let _ = handle.join();
            }
        }
    }
}
