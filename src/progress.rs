//! Progress on stderr: an indicatif bar on a terminal, or a plain status
//! line every 10 s for CI logs. Either way it names the URL that has been in
//! flight longest once that exceeds [`STUCK_AFTER`], so a run that seems
//! stuck says what it waits on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle as BarStyle};

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

/// The URLs being fetched right now, with their start times.
#[derive(Debug, Default)]
pub struct InFlight(Mutex<HashMap<u64, (Instant, String)>>);

impl InFlight {
    /// Notes that entry `seq` started.
    pub fn start(&self, seq: u64, url: &str) {
        self.lock().insert(seq, (Instant::now(), url.to_owned()));
    }

    /// Notes that entry `seq` finished.
    pub fn finish(&self, seq: u64) {
        self.lock().remove(&seq);
    }

    /// The longest-running URL (password hidden) and its age.
    pub fn oldest(&self) -> Option<(Duration, String)> {
        let map = self.lock();
        let (at, url) = map.values().min_by_key(|(at, _)| *at)?;
        Some((at.elapsed(), crate::redact::url(url).into_owned()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (Instant, String)>> {
        crate::lock::lock(&self.0)
    }
}

#[derive(Default)]
struct Counts {
    done: AtomicU64,
    failed: AtomicU64,
}

/// The progress display of one run; a no-op when off.
pub struct Progress {
    bar: Option<ProgressBar>,
    counts: Arc<Counts>,
    in_flight: Option<Arc<InFlight>>,
    stop: Option<Sender<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts the display chosen by `style`.
    pub fn start(style: ProgressStyle, input: Arc<InputStats>) -> Self {
        let counts = Arc::new(Counts::default());
        if style == ProgressStyle::Off {
            return Progress {
                bar: None,
                counts,
                in_flight: None,
                stop: None,
                ticker: None,
            };
        }
        let in_flight = Arc::new(InFlight::default());
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
                        match &bar {
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
            in_flight: Some(in_flight),
            stop: Some(stop),
            ticker,
        }
    }

    /// The in-flight table workers report to, when progress is shown.
    pub fn in_flight(&self) -> Option<Arc<InFlight>> {
        self.in_flight.clone()
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
    fn oldest_in_flight_is_named_without_password() {
        let f = InFlight::default();
        f.start(1, "http://u:pw@a/");
        std::thread::sleep(Duration::from_millis(5));
        f.start(2, "http://b/");
        let (_, url) = f.oldest().unwrap();
        assert_eq!(url, "http://u:***@a/");
        f.finish(1);
        assert_eq!(f.oldest().unwrap().1, "http://b/");
        f.finish(2);
        assert!(f.oldest().is_none());
    }

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
