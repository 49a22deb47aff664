//! Progress on stderr while `verify` runs: the pipeline names the phase it enters
//! ([`phase`]); a [`Ticker`] started by the command line shows it. On a terminal the line
//! appears once the run has taken [`QUIET_FOR`] and is redrawn in place, then erased before the
//! report; elsewhere (CI logs) nothing is printed unless asked (`--progress`), and then one line
//! per phase, as it is entered.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs shorter than this show no progress on a terminal.
pub const QUIET_FOR: Duration = Duration::from_secs(2);
const REDRAW: Duration = Duration::from_millis(200);

/// The phase the run is in, and, in [`Mode::Lines`], since when lines are printed.
struct State {
    phase: &'static str,
    lines_since: Option<Instant>,
}

static STATE: Mutex<State> = Mutex::new(State {
    phase: "starting",
    lines_since: None,
});

/// Enter a phase ("applying the migrations"); in [`Mode::Lines`] it is printed at once.
pub fn phase(name: &'static str) {
    if let Ok(mut s) = STATE.lock() {
        s.phase = name;
        if let Some(since) = s.lines_since {
            let _ = writeln!(std::io::stderr().lock(), "{}", line(name, since));
        }
    }
}

fn current() -> &'static str {
    STATE.lock().map(|s| s.phase).unwrap_or("working")
}

fn line(phase: &str, since: Instant) -> String {
    format!("ci-gate: {phase} ({:.1} s)", since.elapsed().as_secs_f64())
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Redrawn in place on a terminal, after [`QUIET_FOR`].
    Live,
    /// One line per phase (logs, `--progress` without a terminal).
    Lines,
}

/// Shows progress until dropped.
pub struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Ticker {
    pub fn start(mode: Mode) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = match mode {
            Mode::Lines => {
                if let Ok(mut s) = STATE.lock() {
                    s.lines_since = Some(Instant::now());
                }
                None
            }
            Mode::Live => {
                let flag = stop.clone();
                Some(std::thread::spawn(move || redraw(&flag)))
            }
        };
        Ticker { stop, handle }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        if let Ok(mut s) = STATE.lock() {
            s.lines_since = None;
        }
    }
}

/// The terminal line, redrawn until `stop`, then erased.
fn redraw(stop: &AtomicBool) {
    let started = Instant::now();
    let mut shown = false;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(REDRAW);
        if started.elapsed() >= QUIET_FOR {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{}", line(current(), started));
            let _ = err.flush();
            shown = true;
        }
    }
    if shown {
        let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
    }
}
