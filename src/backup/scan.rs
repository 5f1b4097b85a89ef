//! Counts files and bytes ahead of the walker so progress can show totals and an ETA. Only
//! metadata is read; it stops as soon as the walker finishes or the backup is interrupted.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::Excludes;
use crate::progress::Progress;

pub(super) fn count(
    paths: &[PathBuf],
    excludes: &Excludes,
    progress: &Progress,
    done: &AtomicBool,
    interrupt: &AtomicBool,
) {
    let stop = || done.load(Ordering::Relaxed) || interrupt.load(Ordering::Relaxed);
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = stack.pop() {
        if stop() {
            return;
        }
        if excludes.matches_path(&path) {
            continue;
        }
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if !excludes.skips_directory(&path) {
                push_children(&path, &mut stack);
            }
        } else if meta.is_file() {
            // Only regular files, as the summary's total_files_processed counts them.
            progress.add_total(1, meta.size());
        }
    }
}

fn push_children(dir: &Path, stack: &mut Vec<PathBuf>) {
    if let Ok(entries) = fs::read_dir(dir) {
        stack.extend(entries.filter_map(std::result::Result::ok).map(|e| e.path()));
    }
}
