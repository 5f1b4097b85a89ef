//! Shows a running operation's [`Progress`]: an indicatif bar on a terminal, JSON status lines
//! on stdout with `--json`, nothing otherwise (cron logs stay clean).

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::Global;
use crate::progress::{Observer, Progress};

/// A background thread sampling progress until dropped or finished.
pub struct Reporter {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Reporter {
    pub fn start(global: &Global, progress: Arc<Progress>, verb: &'static str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = if global.json {
            let stop = stop.clone();
            Some(std::thread::spawn(move || {
                json_lines(&progress, &stop, verb);
            }))
        } else if !global.quiet && std::io::stderr().is_terminal() {
            let stop = stop.clone();
            Some(std::thread::spawn(move || bar(&progress, &stop, verb)))
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

fn json_lines(progress: &Progress, stop: &AtomicBool, verb: &str) {
    let started = Instant::now();
    while !sleep_until_stopped(stop, Duration::from_secs(1)) {
        let sample = progress.sample();
        let fraction = if sample.bytes_total > 0 {
            sample.bytes_done as f64 / sample.bytes_total as f64
        } else {
            0.0
        };
        let line = serde_json::json!({
            "message_type": "status",
            "operation": verb,
            "seconds_elapsed": started.elapsed().as_secs(),
            "percent_done": fraction.min(1.0),
            "files_done": sample.files_done,
            "total_files": sample.files_total,
            "bytes_done": sample.bytes_done,
            "total_bytes": sample.bytes_total,
            "error_count": sample.errors,
            "current_file": sample.current,
        });
        println!("{line}");
    }
}

fn bar(progress: &Progress, stop: &AtomicBool, verb: &str) {
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
            "{}/{} files {}",
            sample.files_done, sample.files_total, name
        ));
    }
    bar.finish_and_clear();
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
