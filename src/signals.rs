//! SIGINT and SIGTERM: the first stops the run gracefully, a second SIGINT
//! (or SIGTERM) exits at once.
//!
//! signal-hook does the async-signal-safe part; its iterator hands signals
//! to an ordinary thread, where any code may run.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Which signal interrupted the run, if any.
#[derive(Debug, Default, Clone)]
pub struct Interrupted(Arc<AtomicI32>);

impl Interrupted {
    /// The exit code for the signal received: 130 for SIGINT, 143 for
    /// SIGTERM (128 + signal number, as shells report).
    pub fn exit_code(&self) -> Option<u8> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            sig => u8::try_from(128 + sig).ok(),
        }
    }
}

/// Listens for SIGINT and SIGTERM; on the first, calls `on_first` once.
pub fn install(on_first: impl FnOnce() + Send + 'static) -> std::io::Result<Interrupted> {
    let interrupted = Interrupted::default();
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let flag = interrupted.clone();
    std::thread::Builder::new()
        .name("fetchpool-signals".into())
        .spawn(move || {
            let mut on_first = Some(on_first);
            for sig in signals.forever() {
                if flag.0.swap(sig, Ordering::SeqCst) != 0 {
                    // Second signal: the user does not want to wait.
                    std::process::exit(128 + sig);
                }
                if let Some(f) = on_first.take() {
                    eprintln!("fetchpool: interrupted: finishing requests in flight (press Ctrl-C again to quit now)");
                    f();
                }
            }
        })?;
    Ok(interrupted)
}
