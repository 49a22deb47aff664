//! Progress on stderr while `verify` runs: the pipeline names the phase it enters
//! ([`phase`]); a [`Ticker`] started by the command line shows it. On a terminal the line
//! appears once the run has taken [`QUIET_FOR`] and is redrawn in place, then erased before the
//! report; elsewhere (CI logs) nothing is printed unless asked (`--progress`), and then one line
//! per phase.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs shorter than this show no progress on a terminal.
pub const QUIET_FOR: Duration = Duration::from_secs(2);
const REDRAW: Duration = Duration::from_millis(200);

static PHASE: Mutex<&'static str> = Mutex::new("starting");

/// Enter a phase ("applying the migrations").
pub fn phase(name: &'static str) {
    if let Ok(mut p) = PHASE.lock() {
        *p = name;
    }
}

fn current() -> &'static str {
    PHASE.lock().map(|p| *p).unwrap_or("working")
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Redrawn in place on a terminal, after [`QUIET_FOR`].
    Live,
    /// One line per phase (logs, `--progress` without a terminal).
    Lines,
}

/// The thread that shows progress until dropped.
pub struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Ticker {
    pub fn start(mode: Mode) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || tick(mode, &flag));
        Ticker {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn tick(mode: Mode, stop: &AtomicBool) {
    let started = Instant::now();
    let (mut shown, mut last) = (false, "");
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(REDRAW);
        let (now, elapsed) = (current(), started.elapsed());
        let line = format!("ci-gate: {now} ({:.1} s)", elapsed.as_secs_f64());
        let mut err = std::io::stderr().lock();
        match mode {
            Mode::Live if elapsed >= QUIET_FOR => {
                let _ = write!(err, "\r\x1b[2K{line}");
                shown = true;
            }
            Mode::Lines if now != last => {
                let _ = writeln!(err, "{line}");
                last = now;
            }
            _ => {}
        }
        let _ = err.flush();
    }
    if shown {
        let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
    }
}
