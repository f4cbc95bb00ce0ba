//! Progress on stderr: an indicatif bar on a terminal, or a plain status
//! line every interval (`--progress-interval`, 10 s by default) for CI logs.
//! Either way it names the URL that has been in flight longest once that
//! exceeds [`STUCK_AFTER`] (or the interval, if shorter), so a run that
//! seems stuck says what it waits on.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle as BarStyle, TermLike};

use crate::input::InputStats;
use crate::report::inflight::InFlight;
use crate::report::stdout::human_rate;
use crate::text::escape;

/// How progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressStyle {
    /// An updating bar (needs a terminal).
    Bar,
    /// A status line every interval, for CI logs.
    Plain,
    /// Nothing.
    Off,
}

/// The progress display a run gets: `asked` (`--progress`) if given, else
/// a bar on a terminal, plain lines in CI logs (`CI` set, as GitHub
/// Actions, GitLab CI and others set it, and stderr not a terminal), and
/// nothing otherwise. A terminal that cannot redraw (`TERM=dumb`) gets
/// plain lines instead of a bar. Also a note to print once, when what was
/// asked for cannot be shown.
pub fn choose(asked: Option<ProgressStyle>, env: &Env) -> (ProgressStyle, Option<&'static str>) {
    match asked {
        Some(ProgressStyle::Bar) if !env.stderr_terminal => (
            ProgressStyle::Off,
            Some(
                "--progress bar draws only on a terminal, and stderr is not one: showing no progress (--progress plain prints status lines)",
            ),
        ),
        Some(ProgressStyle::Bar) if env.dumb_terminal => (
            ProgressStyle::Plain,
            Some("TERM=dumb cannot redraw a bar: showing plain status lines instead"),
        ),
        Some(style) => (style, None),
        None if env.stderr_terminal && env.dumb_terminal => (ProgressStyle::Plain, None),
        None if env.stderr_terminal => (ProgressStyle::Bar, None),
        None if env.ci => (ProgressStyle::Plain, None),
        None => (ProgressStyle::Off, None),
    }
}

/// What of the environment decides the progress display.
#[derive(Debug, Clone, Copy, Default)]
pub struct Env {
    /// stderr is a terminal.
    pub stderr_terminal: bool,
    /// `TERM=dumb`.
    pub dumb_terminal: bool,
    /// `CI` is set to anything but empty, `0` or `false`.
    pub ci: bool,
}

impl Env {
    /// Reads it from this process.
    pub fn current() -> Self {
        let var = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
        Env {
            stderr_terminal: io::stderr().is_terminal(),
            dumb_terminal: var("TERM").is_some_and(|t| t == "dumb"),
            ci: var("CI")
                .is_some_and(|v| !matches!(v.trim(), "" | "0" | "false" | "FALSE" | "False")),
        }
    }
}

/// In flight this long (or one interval, if shorter), a URL is named in
/// the progress display.
pub const STUCK_AFTER: Duration = Duration::from_secs(5);
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
    /// Starts the display chosen by `style`; `interval` is the time between
    /// two plain lines.
    pub fn start(
        style: ProgressStyle,
        interval: Duration,
        input: Arc<InputStats>,
        in_flight: Arc<InFlight>,
    ) -> Self {
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
            bar.set_style(style_for(Shape::Count));
            bar
        });
        let (stop, stopped) = bounded::<()>(0);
        let ticker = Ticker {
            bar: bar.clone(),
            counts: Arc::clone(&counts),
            input,
            in_flight,
            started: Instant::now(),
            shape: None,
            every: if bar.is_some() { BAR_EVERY } else { interval },
            stuck_after: STUCK_AFTER.min(interval),
        };
        let ticker = std::thread::Builder::new()
            .name("fetchpool-progress".into())
            .spawn(move || ticker.run(&stopped))
            .ok();
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
            super::stderr::line(format_args!(
                "fetchpool: interrupted: starting nothing new, finishing {in_flight} in flight \
                 ({again} stops waiting)"
            ));
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

/// The progress thread's state: redraws the bar every [`BAR_EVERY`], or
/// prints a plain line every interval (`--progress-interval`).
struct Ticker {
    bar: Option<ProgressBar>,
    counts: Arc<Counts>,
    input: Arc<InputStats>,
    in_flight: Arc<InFlight>,
    started: Instant,
    /// What the bar shows of the total, once known.
    shape: Option<Shape>,
    /// Time between two ticks.
    every: Duration,
    /// In flight this long, a URL is named.
    stuck_after: Duration,
}

impl Ticker {
    /// Ticks until `stopped` disconnects.
    fn run(mut self, stopped: &Receiver<()>) {
        let every = self.every;
        while stopped.recv_timeout(every).is_err_and(|e| e.is_timeout()) {
            let stopping = self.counts.stopping.load(Ordering::Relaxed);
            match self.bar.clone() {
                Some(bar) if stopping => {
                    bar.set_message(format!("finishing {} in flight", self.in_flight.len()));
                    bar.tick();
                }
                Some(bar) => self.draw(&bar),
                None if stopping => {
                    let done = self.counts.done.load(Ordering::Relaxed);
                    let in_flight = self.in_flight.len();
                    super::stderr::line(format_args!(
                        "fetchpool: {done} done, finishing {in_flight} in flight"
                    ));
                }
                None => self.print_plain(),
            }
        }
    }

    /// The URL in flight longest, once it is past `stuck_after`.
    fn stuck(&self) -> Option<(Duration, String)> {
        self.in_flight
            .oldest()
            .filter(|(age, _)| *age >= self.stuck_after)
    }

    /// Redraws the bar, with its total once known.
    fn draw(&mut self, bar: &ProgressBar) {
        if let Some(total) = self.input.total() {
            bar.set_length(total);
            // No "ETA 0s" before a first result gives a pace.
            let shape = if bar.position() > 0 {
                Shape::Eta
            } else {
                Shape::Total
            };
            if self.shape != Some(shape) {
                bar.set_style(style_for(shape));
                self.shape = Some(shape);
            }
        }
        let failed = self.counts.failed.load(Ordering::Relaxed);
        bar.set_message(message(
            bar.per_sec(),
            self.in_flight.requests(),
            failed,
            self.stuck().as_ref(),
        ));
        bar.tick();
    }

    /// Prints the plain status line.
    fn print_plain(&self) {
        let done = self.counts.done.load(Ordering::Relaxed);
        let failed = self.counts.failed.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / secs.max(0.001);
        let total = self.input.total();
        let eta = plain_eta(done, total, rate);
        let total = total.map_or_else(|| "?".to_owned(), |t| t.to_string());
        super::stderr::line(format_args!(
            "fetchpool: {done}/{total} done{eta}, {}",
            message(
                rate,
                self.in_flight.requests(),
                failed,
                self.stuck().as_ref()
            )
        ));
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

/// What the bar can show: a count, a count of a known total, and an ETA
/// once results give a pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Count,
    Total,
    Eta,
}

fn style_for(shape: Shape) -> BarStyle {
    let template = match shape {
        Shape::Eta => "{spinner} [{bar:30}] {pos}/{len} ETA {eta} {wide_msg}",
        Shape::Total => "{spinner} [{bar:30}] {pos}/{len} {wide_msg}",
        Shape::Count => "{spinner} {pos} done {wide_msg}",
    };
    BarStyle::with_template(template)
        .unwrap_or_else(|_| BarStyle::default_bar())
        .progress_chars("=> ")
}

/// `, ETA 1m 5s` for plain lines: when the total is known and results
/// have given a pace.
fn plain_eta(done: u64, total: Option<u64>, rate: f64) -> String {
    match total {
        Some(total) if done > 0 && rate > 0.0 && total > done => {
            let secs = ((total - done) as f64 / rate).ceil() as u64;
            match secs {
                0..60 => format!(", ETA {secs}s"),
                60..3600 => format!(", ETA {}m {}s", secs / 60, secs % 60),
                _ => format!(", ETA {}h {}m", secs / 3600, secs % 3600 / 60),
            }
        }
        _ => String::new(),
    }
}

/// Longest URL shown in the progress display, in characters.
const URL_SHOWN: usize = 72;

/// `url`, its middle elided when it is longer than [`URL_SHOWN`]: the
/// start (scheme and host) and the end of its path stay, since those tell
/// which download it is.
fn elided(url: &str) -> std::borrow::Cow<'_, str> {
    let count = url.chars().count();
    if count <= URL_SHOWN {
        return url.into();
    }
    // The origin, up to 40 characters; the rest of the room for the path.
    let origin = url
        .find("://")
        .and_then(|i| url[i + 3..].find('/').map(|j| i + 3 + j))
        .map_or(count, |end| url[..end].chars().count());
    let head = origin.clamp(16, 40);
    let tail = URL_SHOWN - head - 1;
    let start: String = url.chars().take(head).collect();
    let end: String = url.chars().skip(count - tail).collect();
    format!("{start}…{end}").into()
}

/// `12 req/s, 3 failed[, waiting 7 s on URL]`: the URL (already redacted)
/// cut to a line and escaped for the terminal.
fn message(rate: f64, out: usize, failed: u64, stuck: Option<&(Duration, String)>) -> String {
    // Before the first result there is no rate yet, rather than "0 req/s".
    let mut msg = if rate > 0.0 {
        format!("{}, {out} in flight, {failed} failed", human_rate(rate))
    } else {
        format!("{out} in flight, {failed} failed")
    };
    if let Some((age, url)) = stuck {
        msg.push_str(&format!(
            ", waiting {} s on {}",
            age.as_secs(),
            escape::for_field(&elided(&crate::input::url::shown(url)))
        ));
    }
    msg
}

#[cfg(test)]
#[path = "progress_tests.rs"]
mod tests;
