//! Shows a running operation's [`Progress`]: an indicatif bar on a terminal, JSON status lines
//! on stdout with `--json`, nothing otherwise (cron logs stay clean).

use std::fmt::Write;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::Global;
use crate::progress::{ByteSources, Observer, Progress, ProgressSample};

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
    let started = Instant::now();
    while !sleep_until_stopped(stop, Duration::from_secs(1)) {
        let line = status_line(&progress.sample(), verb, unit, started.elapsed());
        println!("{line}");
    }
}

/// One `--json` status message (`files_done` and `total_files` count `unit`).
fn status_line(
    sample: &ProgressSample,
    verb: &str,
    unit: &str,
    elapsed: Duration,
) -> serde_json::Value {
    let fraction = if sample.bytes_total > 0 {
        sample.bytes_done as f64 / sample.bytes_total as f64
    } else {
        0.0
    };
    serde_json::json!({
        "message_type": "status",
        "operation": verb,
        "unit": unit,
        "seconds_elapsed": elapsed.as_secs(),
        "percent_done": fraction.min(1.0),
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
        "current_file": sample.current,
    })
}

fn bar(progress: &Progress, stop: &AtomicBool, verb: &str, unit: &str) {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
        )
        .expect("valid template"),
    );
    bar.set_prefix(verb.to_string());
    while !sleep_until_stopped(stop, Duration::from_millis(200)) {
        let sample = progress.sample();
        bar.set_length(sample.bytes_total.max(sample.bytes_done));
        bar.set_position(sample.bytes_done);
        let name: String = sample
            .current
            .chars()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        bar.set_message(format!(
            "{}/{} {unit}{} {}",
            sample.files_done,
            sample.files_total,
            sources_text(&sample.sources),
            name
        ));
    }
    bar.finish_and_clear();
}

/// ", 2.0 GiB read, 6.0 GiB holes, 300 MiB new": where the bytes went, naming only what
/// happened (nothing at all for a restore).
fn sources_text(sources: &ByteSources<u64>) -> String {
    [
        (sources.read, "read"),
        (sources.holes, "holes"),
        (sources.zero, "zero"),
        (sources.unchanged, "unchanged"),
        (sources.new, "new"),
    ]
    .into_iter()
    .filter(|&(bytes, _)| bytes > 0)
    .fold(String::new(), |mut text, (bytes, what)| {
        let _ = write!(text, ", {} {what}", indicatif::BinaryBytes(bytes));
        text
    })
}

/// Reports skipped items to a person on stderr, or as JSON lines on stdout with `--json`.
pub struct CliObserver {
    json: bool,
}

impl CliObserver {
    pub fn new(global: &Global) -> Self {
        Self { json: global.json }
    }
}

impl Observer for CliObserver {
    fn warning(&self, path: &std::path::Path, message: &str) {
        if self.json {
            let line = serde_json::json!({
                "message_type": "error",
                "item": path.to_string_lossy(),
                "error": message,
            });
            println!("{line}");
        } else {
            eprintln!("warning: {}: {message}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_backup() -> ProgressSample {
        ProgressSample {
            files_done: 1,
            bytes_done: 9 << 30,
            files_total: 1,
            bytes_total: 9 << 30,
            sources: ByteSources {
                read: 2 << 30,
                holes: 6 << 30,
                zero: 3 << 20,
                unchanged: 1 << 30,
                new: 300 << 20,
            },
            ..ProgressSample::default()
        }
    }

    #[test]
    fn the_bar_says_where_the_bytes_went() {
        assert_eq!(
            sources_text(&image_backup().sources),
            ", 2.00 GiB read, 6.00 GiB holes, 3.00 MiB zero, 1.00 GiB unchanged, 300.00 MiB new"
        );
        assert_eq!(sources_text(&ByteSources::default()), "");
    }

    #[test]
    fn status_lines_carry_every_byte_source() {
        let line = status_line(&image_backup(), "backup", "files", Duration::from_secs(3));
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
