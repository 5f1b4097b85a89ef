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
    /// Where the done bytes of a backup came from (all within `bytes_done` except `new`).
    pub sources: ByteSources<AtomicU64>,
    current: Mutex<String>,
    phase: Mutex<&'static str>,
}

/// How a backup got through its bytes: read, skipped as holes, read and found zero, taken
/// from the parent unread; and how many of the bytes read were new data for the repository.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct ByteSources<T> {
    pub read: T,
    pub holes: T,
    pub zero: T,
    pub unchanged: T,
    pub new: T,
}

/// A point-in-time copy of [`Progress`].
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ProgressSample {
    pub files_done: u64,
    pub bytes_done: u64,
    pub files_total: u64,
    pub bytes_total: u64,
    pub errors: u64,
    pub sources: ByteSources<u64>,
    pub current: String,
    /// What the operation is doing while its totals are unknown ("scanning", "planning").
    pub phase: &'static str,
}

impl Progress {
    pub fn add_done(&self, files: u64, bytes: u64) {
        self.files_done.fetch_add(files, Ordering::Relaxed);
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn add_bytes(&self, bytes: u64) {
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes read from a file or stream (done).
    pub fn add_read(&self, bytes: u64) {
        self.add_bytes(bytes);
        self.sources.read.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes of a hole, recorded without reading (done).
    pub fn add_hole(&self, bytes: u64) {
        self.add_bytes(bytes);
        self.sources.holes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes taken from the parent snapshot without reading (done).
    pub fn add_unchanged(&self, bytes: u64) {
        self.add_bytes(bytes);
        self.sources.unchanged.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Of the bytes read, an all-zero chunk.
    pub fn add_zero(&self, bytes: u64) {
        self.sources.zero.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Of the bytes read, a chunk the repository did not have.
    pub fn add_new(&self, bytes: u64) {
        self.sources.new.fetch_add(bytes, Ordering::Relaxed);
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

    /// Says what is happening before the totals are known ("scanning", "planning").
    pub fn set_phase(&self, phase: &'static str) {
        if let Ok(mut current) = self.phase.lock() {
            *current = phase;
        }
    }

    pub fn sample(&self) -> ProgressSample {
        ProgressSample {
            files_done: self.files_done.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            files_total: self.files_total.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            sources: ByteSources {
                read: self.sources.read.load(Ordering::Relaxed),
                holes: self.sources.holes.load(Ordering::Relaxed),
                zero: self.sources.zero.load(Ordering::Relaxed),
                unchanged: self.sources.unchanged.load(Ordering::Relaxed),
                new: self.sources.new.load(Ordering::Relaxed),
            },
            current: self.current.lock().map(|c| c.clone()).unwrap_or_default(),
            phase: self.phase.lock().map(|p| *p).unwrap_or_default(),
        }
    }
}

/// Receives what the engine wants a person to know about while it keeps going.
pub trait Observer: Sync {
    /// Something was skipped or could not be done; the operation continues.
    fn warning(&self, path: &Path, message: &str);

    /// A backup saved a file (or a directory, `is_dir`): new, changed since the parent
    /// snapshot, or unmodified (`backup -v`, `-vv`).
    fn saved(&self, _path: &Path, _change: Change, _is_dir: bool) {}
}

/// How a saved file or directory compares with the parent snapshot's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    New,
    Changed,
    Unmodified,
}

/// An observer that logs warnings through `tracing`.
pub struct LogObserver;

impl Observer for LogObserver {
    fn warning(&self, path: &Path, message: &str) {
        tracing::warn!(path = %path.display(), "{message}");
    }
}
