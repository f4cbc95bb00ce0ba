//! Progress on stderr: an indicatif bar on a terminal, or a plain status
//! line every 10 s for CI logs. Either way it names the URL that has been in
//! flight longest once that exceeds [`STUCK_AFTER`], so a run that seems
//! stuck says what it waits on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle as BarStyle};

use crate::inflight::InFlight;
use crate::input::InputStats;
use crate::output::human_ms;

/// How progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressStyle {
    /// An updating bar (needs a terminal).
    Bar,
    /// A status line every 10 seconds, for CI logs.
    Plain,
    /// Nothing.
    Off,
}

/// In flight this long, a URL is named in the progress display.
pub const STUCK_AFTER: Duration = Duration::from_secs(5);
const PLAIN_EVERY: Duration = Duration::from_secs(10);
const BAR_EVERY: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Counts {
    done: AtomicU64,
    failed: AtomicU64,
    /// Set at the first signal: nothing new starts, so no total or ETA.
    stopping: AtomicBool,
}

/// The progress display of one run; a no-op when off.
pub struct Progress {
    bar: Option<ProgressBar>,
    counts: Arc<Counts>,
    stop: Option<Sender<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts the display chosen by `style`.
    pub fn start(style: ProgressStyle, input: Arc<InputStats>, in_flight: Arc<InFlight>) -> Self {
        let counts = Arc::new(Counts::default());
        if style == ProgressStyle::Off {
            return Progress {
                bar: None,
                counts,
                stop: None,
                ticker: None,
            };
        }
        let bar = (style == ProgressStyle::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(style_for(false));
            bar
        });
        let (stop, stopped) = bounded::<()>(0);
        let ticker = {
            let (bar, counts, in_flight) =
                (bar.clone(), Arc::clone(&counts), Arc::clone(&in_flight));
            let started = Instant::now();
            std::thread::Builder::new()
                .name("fetchpool-progress".into())
                .spawn(move || {
                    let every = if bar.is_some() {
                        BAR_EVERY
                    } else {
                        PLAIN_EVERY
                    };
                    let mut known_len = false;
                    while stopped.recv_timeout(every).is_err_and(|e| e.is_timeout()) {
                        let failed = counts.failed.load(Ordering::Relaxed);
                        let stuck = in_flight.oldest().filter(|(age, _)| *age >= STUCK_AFTER);
                        let total = input.total();
                        let stopping = counts.stopping.load(Ordering::Relaxed);
                        match &bar {
                            Some(bar) if stopping => {
                                bar.set_message(format!("finishing {} in flight", in_flight.len()));
                                bar.tick();
                            }
                            Some(bar) => {
                                if let Some(total) = total {
                                    bar.set_length(total);
                                    if !known_len {
                                        bar.set_style(style_for(true));
                                        known_len = true;
                                    }
                                }
                                bar.set_message(message(bar.per_sec(), failed, stuck.as_ref()));
                                bar.tick();
                            }
                            None => {
                                let done = counts.done.load(Ordering::Relaxed);
                                let secs = started.elapsed().as_secs_f64();
                                let total = total.map_or_else(|| "?".to_owned(), |t| t.to_string());
                                let rate = done as f64 / secs.max(0.001);
                                eprintln!(
                                    "fetchpool: {done}/{total} done, {}",
                                    message(rate, failed, stuck.as_ref())
                                );
                            }
                        }
                    }
                })
                .ok()
        };
        Progress {
            bar,
            counts,
            stop: Some(stop),
            ticker,
        }
    }

    /// Counts one finished entry.
    pub fn record(&self, failed: bool) {
        self.counts.done.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.counts.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Runs `f` with the bar cleared, so lines written to the same terminal
    /// are never torn.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// The run was interrupted by a signal (`code` is its exit code): says
    /// so once, and from now on the bar shows what is still in flight.
    pub fn stopping(&self, code: u8, in_flight: usize) {
        self.counts.stopping.store(true, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_style(
                BarStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| BarStyle::default_spinner()),
            );
            bar.set_message(format!("finishing {in_flight} in flight"));
        }
        let again = if code == 130 {
            "Ctrl-C again"
        } else {
            "a second signal"
        };
        self.suspend(|| {
            eprintln!(
                "fetchpool: interrupted: starting nothing new, finishing {in_flight} in flight \
                 ({again} stops waiting)"
            );
        });
    }

    /// Removes the bar and stops the ticker.
    pub fn finish(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn style_for(known_total: bool) -> BarStyle {
    let template = if known_total {
        "{spinner} [{bar:30}] {pos}/{len} ETA {eta} {msg}"
    } else {
        "{spinner} {pos} done {msg}"
    };
    BarStyle::with_template(template)
        .unwrap_or_else(|_| BarStyle::default_bar())
        .progress_chars("=> ")
}

fn message(rate: f64, failed: u64, stuck: Option<&(Duration, String)>) -> String {
    let mut msg = format!("{rate:.0}/s, {failed} failed");
    if let Some((age, url)) = stuck {
        msg.push_str(&format!(
            ", waiting {} on {}",
            human_ms(age.as_secs_f64() * 1000.0),
            crate::input::url::shown(url)
        ));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_a_stuck_url() {
        let m = message(
            12.3,
            3,
            Some(&(Duration::from_secs(7), "http://slow/".into())),
        );
        assert_eq!(m, "12/s, 3 failed, waiting 7.00 s on http://slow/");
    }
}
