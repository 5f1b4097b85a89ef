//! Shows a running operation's [`Progress`]: an indicatif bar on a terminal, JSON status lines
//! on stdout with `--json`, nothing otherwise (cron logs stay clean).

use crate::commands::output::{errln, outln};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::io::Write as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::line::{self, Rate, View};

use crate::cli::Global;
use crate::progress::{Change, Observer, Progress, ProgressSample};

/// A background thread sampling progress until dropped or finished.
pub struct Reporter {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Reporter {
    /// Whether a reporter started now would show anything (a bar on a terminal, or `--json`
    /// status lines), so work done only for progress can be skipped otherwise.
    pub fn shows_progress(global: &Global) -> bool {
        global.json || (!global.quiet && std::io::stderr().is_terminal())
    }

    pub fn start(global: &Global, progress: Arc<Progress>, verb: &'static str) -> Self {
        Self::counting(global, progress, verb, "files")
    }

    /// A reporter whose bar counts `unit` (`packs` for check and repair) instead of files.
    pub fn counting(
        global: &Global,
        progress: Arc<Progress>,
        verb: &'static str,
        unit: &'static str,
    ) -> Self {
        end_phase();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = if global.json {
            let stop = stop.clone();
            Some(std::thread::spawn(move || {
                json_lines(&progress, &stop, verb, unit);
            }))
        } else if Self::shows_progress(global) {
            let stop = stop.clone();
            Some(std::thread::spawn(move || {
                bar(&progress, &stop, verb, unit);
            }))
        } else {
            None
        };
        Self { stop, handle }
    }

    pub fn finish(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn sleep_until_stopped(stop: &AtomicBool, period: Duration) -> bool {
    let until = Instant::now() + period;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn json_lines(progress: &Progress, stop: &AtomicBool, verb: &str, unit: &str) {
    let mut sampler = Sampler::new(verb, unit);
    while !sleep_until_stopped(stop, Duration::from_secs(1)) {
        let (sample, view) = sampler.next(progress);
        super::json_line(&status_line(&sample, &view));
    }
}

/// Samples a running operation's progress with its elapsed time and smoothed rate, for the
/// progress line and the status messages alike.
struct Sampler<'a> {
    verb: &'a str,
    unit: &'a str,
    started: Instant,
    rate: Rate,
    tick: usize,
}

impl<'a> Sampler<'a> {
    fn new(verb: &'a str, unit: &'a str) -> Self {
        Sampler { verb, unit, started: Instant::now(), rate: Rate::default(), tick: 0 }
    }

    fn next(&mut self, progress: &Progress) -> (ProgressSample, View<'a>) {
        let (sample, elapsed) = (progress.sample(), self.started.elapsed());
        self.rate.update(elapsed, sample.bytes_done);
        let eta = self.rate.eta(elapsed, sample.bytes_total.saturating_sub(sample.bytes_done));
        let (verb, unit, rate, tick) = (self.verb, self.unit, self.rate.per_second(), self.tick);
        self.tick += 1;
        (sample, View { verb, unit, elapsed, eta, rate, tick })
    }
}

/// One `--json` status message (`files_done` and `total_files` count `view.unit`).
fn status_line(sample: &ProgressSample, view: &View<'_>) -> serde_json::Value {
    let fraction = if sample.bytes_total > 0 {
        sample.bytes_done as f64 / sample.bytes_total as f64
    } else {
        0.0
    };
    serde_json::json!({
        "message_type": "status",
        "operation": view.verb,
        "unit": view.unit,
        "seconds_elapsed": view.elapsed.as_secs(),
        "seconds_remaining": view.eta.map(|eta| eta.as_secs()),
        "percent_done": fraction.min(1.0),
        "phase": sample.phase,
        "files_done": sample.files_done,
        "total_files": sample.files_total,
        "bytes_done": sample.bytes_done,
        "total_bytes": sample.bytes_total,
        "error_count": sample.errors,
        "bytes_read": sample.sources.read,
        "bytes_holes": sample.sources.holes,
        "bytes_zero": sample.sources.zero,
        "bytes_unchanged": sample.sources.unchanged,
        "bytes_new": sample.sources.new,
        "current_files": if sample.current.is_empty() { vec![] } else { vec![&sample.current] },
    })
}

/// Draws the progress line on stderr five times a second until stopped, then clears it. The
/// line is drawn with plain escape codes, not through indicatif, which pads it to the full
/// width: the terminal's `^C` echo would then wrap it, and the line cleared before the
/// "interrupted" message would be the wrong one.
fn bar(progress: &Progress, stop: &AtomicBool, verb: &str, unit: &str) {
    let mut sampler = Sampler::new(verb, unit);
    loop {
        let (sample, view) = sampler.next(progress);
        show(Some(line::render(&sample, &view, terminal_width())));
        if sleep_until_stopped(stop, Duration::from_millis(200)) {
            break;
        }
    }
    show(None);
}

/// The progress line on screen, if any.
static LIVE: Mutex<Option<String>> = Mutex::new(None);

/// Replaces the progress line with `text`, or clears it.
fn show(text: Option<String>) {
    let mut live = LIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K{}", text.as_deref().unwrap_or(""));
    let _ = err.flush();
    *live = text;
}

/// Runs `print` with the progress line cleared, then draws it again below what it printed.
fn above_bar(print: impl FnOnce()) {
    let live = LIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(text) = live.as_deref() else {
        drop(live);
        return print();
    };
    let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
    print();
    let _ = write!(std::io::stderr().lock(), "{text}");
}

/// Columns of the terminal on stderr (80 when it does not say), less three: room for the
/// terminal's `^C` echo, so that the line does not wrap.
fn terminal_width() -> usize {
    let columns = console::Term::stderr().size_checked().map_or(80, |(_, c)| c);
    usize::from(columns).saturating_sub(3).max(20)
}

/// Shows what a command is doing before its progress starts ("opening repository", "loading
/// index"), as a spinner on a terminal; nothing with `--json`, `-q` or without a terminal.
pub fn phase(global: &Global, what: &'static str) {
    if global.json || !Reporter::shows_progress(global) {
        return;
    }
    let mut phase = PHASE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let spinner = phase.get_or_insert_with(|| {
        let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid");
        spinner.set_style(style.tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "));
        spinner.enable_steady_tick(Duration::from_millis(100));
        spinner
    });
    spinner.set_message(what);
    PHASE_SHOWN.store(true, Ordering::Relaxed);
}

/// Clears the phase spinner: before a prompt, a progress bar, results or an error.
pub fn end_phase() {
    if !PHASE_SHOWN.swap(false, Ordering::Relaxed) {
        return;
    }
    if let Some(spinner) = PHASE.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
        spinner.finish_and_clear();
    }
}

static PHASE: Mutex<Option<ProgressBar>> = Mutex::new(None);
/// Whether [`PHASE`] holds a spinner: checked without the lock on every line printed.
static PHASE_SHOWN: AtomicBool = AtomicBool::new(false);

/// Reports skipped items to a person on stderr (as JSON lines with `--json`), and with `-v`
/// the files a backup saved, on stdout as restic does.
pub struct CliObserver {
    json: bool,
    verbose: u8,
}

impl CliObserver {
    pub fn new(global: &Global) -> Self {
        let verbose = if global.quiet { 0 } else { global.verbose };
        Self { json: global.json, verbose }
    }
}

impl Observer for CliObserver {
    fn warning(&self, path: &std::path::Path, message: &str) {
        if self.json {
            // restic's shape, on stderr as restic puts it.
            super::json_message(&serde_json::json!({
                "message_type": "error",
                "error": {"message": message},
                "item": path.to_string_lossy(),
            }));
        } else {
            above_bar(|| errln!("warning: {}: {message}", path.display()));
        }
    }

    fn saved(&self, path: &std::path::Path, change: Change, is_dir: bool) {
        let shown = match change {
            Change::Unmodified => self.verbose >= 2,
            Change::New | Change::Changed => self.verbose >= 1,
        };
        if !shown {
            return;
        }
        let action = match change {
            Change::New => "new",
            Change::Changed => "modified",
            Change::Unmodified => "unchanged",
        };
        let item = if is_dir { format!("{}/", path.display()) } else { path.display().to_string() };
        if self.json {
            let line = serde_json::json!({"message_type": "verbose_status", "action": action, "item": item});
            super::json_line(&line);
        } else {
            above_bar(|| outln!("{action:<9} {item}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::output::line::tests::image_backup;

    #[test]
    fn status_lines_carry_every_byte_source() {
        let view = View {
            verb: "backup",
            unit: "files",
            elapsed: Duration::from_secs(3),
            eta: Some(Duration::from_secs(7)),
            rate: 0.0,
            tick: 0,
        };
        let line = status_line(&image_backup(), &view);
        assert_eq!(line["seconds_remaining"], 7);
        assert_eq!(line["bytes_read"], 2u64 << 30);
        assert_eq!(line["bytes_holes"], 6u64 << 30);
        assert_eq!(line["bytes_zero"], 3u64 << 20);
        assert_eq!(line["bytes_unchanged"], 1u64 << 30);
        assert_eq!(line["bytes_new"], 300u64 << 20);
        assert_eq!(line["percent_done"], 1.0);
        assert_eq!(line["seconds_elapsed"], 3);
        assert_eq!(line["unit"], "files");
    }
}
