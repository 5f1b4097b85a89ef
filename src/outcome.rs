//! What the engine tells its caller besides return values: that an operation was stopped by a
//! signal ([`Interrupted`]), and that a result is partial because something unreadable (a
//! damaged snapshot, an index segment) was skipped on the way. The CLI turns both into exit
//! codes (`exit.rs`).

use std::sync::atomic::{AtomicBool, Ordering};

/// The operation was stopped by SIGINT or SIGTERM after flushing what it had written.
#[derive(Debug, thiserror::Error)]
#[error("interrupted; everything uploaded so far was saved and will be reused by the next run")]
pub struct Interrupted;

/// Set once anything was skipped; a process runs one command.
static PARTIAL: AtomicBool = AtomicBool::new(false);

/// Records that this process's result is partial: something was skipped with a warning.
pub fn note_partial() {
    PARTIAL.store(true, Ordering::Relaxed);
}

/// Whether [`note_partial`] was called.
pub fn is_partial() -> bool {
    PARTIAL.load(Ordering::Relaxed)
}
