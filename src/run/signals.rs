//! SIGINT and SIGTERM. The first stops the run gracefully: nothing new
//! starts, requests in flight may finish for a grace period. When the grace
//! ends, or at a second signal, the run is told to stop waiting.
//!
//! signal-hook does the async-signal-safe part; its iterator hands signals
//! to an ordinary thread, where any code may run. The handlers are
//! installed before any work starts, so a signal in the first millisecond
//! is handled like any other.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Which signal interrupted the run, if any, and whether to stop waiting.
#[derive(Debug, Clone)]
pub struct Interrupted {
    signal: Arc<AtomicI32>,
    /// Disconnected when the run should stop waiting for requests in flight.
    give_up: Receiver<()>,
}

impl Interrupted {
    /// The exit code for the signal received: 130 for SIGINT, 143 for
    /// SIGTERM (128 + signal number, as shells report).
    pub fn exit_code(&self) -> Option<u8> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            sig => u8::try_from(128 + sig).ok(),
        }
    }

    /// The grace has ended or a second signal came: stop waiting.
    pub fn give_up(&self) -> bool {
        matches!(
            self.give_up.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        )
    }
}

/// What happens on the first signal.
pub trait OnSignal: Send + 'static {
    /// Called once, on the signal thread, at the first signal.
    fn stop(&mut self, signal: i32);
    /// Called once when the grace ends or at a second signal.
    fn give_up(&mut self);
}

/// Listens for SIGINT and SIGTERM and drives `handler`; `grace` is how long
/// requests in flight may go on after the first signal.
pub fn install(grace: Duration, mut handler: impl OnSignal) -> std::io::Result<Interrupted> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let (give_up_tx, give_up) = bounded::<()>(0);
    let interrupted = Interrupted {
        signal: Arc::default(),
        give_up,
    };
    let flag = Arc::clone(&interrupted.signal);
    std::thread::Builder::new()
        .name("fetchpool-signals".into())
        .spawn(move || {
            let mut give_up_tx: Option<Sender<()>> = Some(give_up_tx);
            let Some(first) = signals.forever().next() else {
                return;
            };
            flag.store(first, Ordering::SeqCst);
            handler.stop(first);
            // Wait for a second signal, or for the grace to pass.
            let (second_tx, second) = bounded::<()>(1);
            let handle = signals.handle();
            let waiter = std::thread::Builder::new()
                .name("fetchpool-signals-2".into())
                .spawn(move || {
                    if signals.forever().next().is_some() {
                        let _ = second_tx.send(());
                    }
                });
            let _ = second.recv_timeout(grace);
            handle.close();
            handler.give_up();
            drop(give_up_tx.take());
            drop(waiter);
        })?;
    Ok(interrupted)
}
