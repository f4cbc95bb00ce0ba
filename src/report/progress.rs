//! Progress on stderr: an indicatif bar on a terminal, or a plain status
//! line every 10 s for CI logs. Either way it names the URL that has been in
//! flight longest once that exceeds [`STUCK_AFTER`], so a run that seems
//! stuck says what it waits on.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle as BarStyle, TermLike};

use crate::input::InputStats;
use crate::report::stdout::human_rate;
use crate::run::inflight::InFlight;
use crate::text::escape;

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
            let target = if std::io::stderr().is_terminal() {
                ProgressDrawTarget::term_like(Box::new(Stderr::default()))
            } else {
                ProgressDrawTarget::hidden()
            };
            let bar = ProgressBar::with_draw_target(None, target);
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
                                if stopping {
                                    crate::say!(
                                        "fetchpool: {done} done, finishing {} in flight",
                                        in_flight.len()
                                    );
                                    continue;
                                }
                                let secs = started.elapsed().as_secs_f64();
                                let total = total.map_or_else(|| "?".to_owned(), |t| t.to_string());
                                let rate = done as f64 / secs.max(0.001);
                                crate::say!(
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
                BarStyle::with_template("{spinner} {pos} done, {wide_msg}")
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
            crate::say!(
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

/// The bar's terminal: stderr, drawn in one write per frame, with the
/// cursor put back at the start of the bar's line after each frame.
///
/// indicatif pads a bar line to the full width and leaves the cursor in the
/// last column. There, the `^C` the terminal echoes at Ctrl-C wraps to a new
/// line, and the next redraw, one line too low, leaves the old bar frozen on
/// screen above the interrupt message; a line that another process writes
/// to the terminal (`fetchpool ... | head`) starts after the bar instead of
/// over it. At the start of the line, the echo and such lines overwrite the
/// bar, and the next frame clears what is left.
#[derive(Debug, Default)]
struct Stderr {
    frame: Mutex<Vec<u8>>,
}

impl Stderr {
    fn put(&self, bytes: &[u8]) -> io::Result<()> {
        crate::lock::lock(&self.frame).extend_from_slice(bytes);
        Ok(())
    }
}

impl TermLike for Stderr {
    fn width(&self) -> u16 {
        match rustix::termios::tcgetwinsize(io::stderr()) {
            Ok(w) if w.ws_col > 0 => w.ws_col,
            _ => 80,
        }
    }

    fn height(&self) -> u16 {
        rustix::termios::tcgetwinsize(io::stderr()).map_or(24, |w| w.ws_row.max(2))
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            self.put(format!("\x1b[{n}A").as_bytes())?;
        }
        Ok(())
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            self.put(format!("\x1b[{n}B").as_bytes())?;
        }
        Ok(())
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            self.put(format!("\x1b[{n}C").as_bytes())?;
        }
        Ok(())
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            self.put(format!("\x1b[{n}D").as_bytes())?;
        }
        Ok(())
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.put(s.as_bytes())?;
        self.put(b"\n")
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.put(s.as_bytes())
    }

    fn clear_line(&self) -> io::Result<()> {
        self.put(b"\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        let mut frame = std::mem::take(&mut *crate::lock::lock(&self.frame));
        frame.push(b'\r');
        let mut err = io::stderr().lock();
        err.write_all(&frame)?;
        err.flush()
    }
}

fn style_for(known_total: bool) -> BarStyle {
    let template = if known_total {
        "{spinner} [{bar:30}] {pos}/{len} ETA {eta} {wide_msg}"
    } else {
        "{spinner} {pos} done {wide_msg}"
    };
    BarStyle::with_template(template)
        .unwrap_or_else(|_| BarStyle::default_bar())
        .progress_chars("=> ")
}

/// `12 req/s, 3 failed[, waiting 7 s on URL]`: the URL (already redacted)
/// cut to a line and escaped for the terminal.
fn message(rate: f64, failed: u64, stuck: Option<&(Duration, String)>) -> String {
    // Before the first result there is no rate yet, rather than "0 req/s".
    let mut msg = if rate > 0.0 {
        format!("{}, {failed} failed", human_rate(rate))
    } else {
        format!("{failed} failed")
    };
    if let Some((age, url)) = stuck {
        msg.push_str(&format!(
            ", waiting {} s on {}",
            age.as_secs(),
            escape::for_field(&crate::input::url::shown(url))
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
        assert_eq!(m, "12 req/s, 3 failed, waiting 7 s on http://slow/");
    }

    #[test]
    fn message_has_no_rate_before_the_first_result() {
        assert_eq!(message(0.0, 0, None), "0 failed");
    }

    #[test]
    fn message_escapes_the_url_and_never_says_zero_per_second() {
        let m = message(
            0.1,
            0,
            Some(&(
                Duration::from_millis(12_700),
                "http://h/\u{202e}\x1b[2J\n".into(),
            )),
        );
        assert_eq!(
            m,
            "6.0 req/min, 0 failed, waiting 12 s on http://h/\\u{202e}\\x1b[2J\\n"
        );
    }
}
