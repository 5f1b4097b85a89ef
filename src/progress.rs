//! Progress reporting between the engine and whoever embeds it. The engine bumps atomic
//! counters (cheap, lock-free, no callbacks in hot loops) and reports warnings through an
//! [`Observer`]; a front end samples the counters on its own timer.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of a long-running operation. Totals are estimates that may grow while it runs.
#[derive(Default)]
pub struct Progress {
    pub files_done: AtomicU64,
    pub bytes_done: AtomicU64,
    pub files_total: AtomicU64,
    pub bytes_total: AtomicU64,
    pub errors: AtomicU64,
    current: Mutex<String>,
}

/// A point-in-time copy of [`Progress`].
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ProgressSample {
    pub files_done: u64,
    pub bytes_done: u64,
    pub files_total: u64,
    pub bytes_total: u64,
    pub errors: u64,
    pub current: String,
}

impl Progress {
    pub fn add_done(&self, files: u64, bytes: u64) {
        self.files_done.fetch_add(files, Ordering::Relaxed);
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn add_bytes(&self, bytes: u64) {
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn add_total(&self, files: u64, bytes: u64) {
        self.files_total.fetch_add(files, Ordering::Relaxed);
        self.bytes_total.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Names the item being worked on (shown next to the bar).
    pub fn set_current(&self, item: &Path) {
        if let Ok(mut current) = self.current.try_lock() {
            current.clear();
            current.push_str(&item.to_string_lossy());
        }
    }

    pub fn sample(&self) -> ProgressSample {
        ProgressSample {
            files_done: self.files_done.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            files_total: self.files_total.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            current: self.current.lock().map(|c| c.clone()).unwrap_or_default(),
        }
    }
}

/// Receives what the engine wants a person to know about while it keeps going.
pub trait Observer: Sync {
    /// Something was skipped or could not be done; the operation continues.
    fn warning(&self, path: &Path, message: &str);
}

/// An observer that logs warnings through `tracing`.
pub struct LogObserver;

impl Observer for LogObserver {
    fn warning(&self, path: &Path, message: &str) {
        tracing::warn!(path = %path.display(), "{message}");
    }
}
