//! Restore: writes a snapshot (or a path inside it) into a target directory.
//!
//! Plan first, then write, one stage per file: [`plan`] walks the tree and lists what to
//! create; [`create`] makes the directories and creates files at their full size (so zero
//! extents stay holes); [`contents`] groups the blobs the files need by pack and has a pool of
//! threads read each pack once, in offset order, writing every blob to all the file ranges
//! that use it (through a [`sink`]); [`others`] makes links, devices and fifos;
//! [`attributes`] sets metadata last, directories deepest first, so writing never disturbs a
//! time or permission already set; [`verify`] reads everything back on request.
//! [`target_file`] is `--target-file`: one file into a file or over a block device.
//!
//! Safety: every name was validated when its tree was decoded (no `/`, `..`, NUL); each
//! directory on the way to an item is checked to be a real directory, never a symlink, and
//! files are opened with `O_NOFOLLOW`. Nothing is written outside the target.

mod attributes;
mod contents;
mod create;
mod others;
mod plan;
mod sink;
mod target_file;
mod verify;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use cairn_format::Repository;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::Node;

use crate::outcome::Interrupted;
use crate::progress::{Observer, Progress};
use attributes::apply_metadata;
use contents::{discard_failed, write_contents};
use create::{create_dirs, prepare_files};
use others::create_others;
use plan::{Filter, plan};
use sink::write_sparse;
pub use sink::{Disk, FileSink, Sink};
pub use target_file::{TargetFileSummary, write_to_target};
use verify::verify;
use verify::verify_content;

/// What to do with files that already exist in the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Overwrite {
    #[default]
    Always,
    /// Only when size or modification time differ.
    IfChanged,
    Never,
}

/// Everything a restore needs to know.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    pub target: PathBuf,
    /// A path inside the snapshot; its contents (or the file itself) are restored.
    pub subpath: Option<PathBuf>,
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
    pub overwrite: Overwrite,
    pub verify: bool,
    pub interrupt: Arc<AtomicBool>,
    /// Where file contents are written.
    pub sink: Sink,
}

/// What a restore did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RestoreSummary {
    pub files_restored: u64,
    pub dirs_restored: u64,
    pub other_restored: u64,
    pub files_skipped: u64,
    pub bytes_written: u64,
    pub total_bytes: u64,
    pub files_verified: u64,
    /// Files that could not be written completely (or failed `--verify`): removed, so that
    /// nothing incomplete is left looking restored.
    pub files_failed: u64,
    pub errors: u64,
}

/// One thing to create. The list holds every node of the restore, so an item names its parent
/// directory's item instead of carrying its path (paths are rebuilt where they are needed).
struct Item {
    /// Index of the directory item it is in; `None` at the top of the restore.
    parent: Option<u32>,
    node: Node,
}

/// The path of `items[i]` relative to the target.
fn rel(items: &[Item], i: usize) -> PathBuf {
    let mut names = Vec::new();
    let mut at = Some(i);
    while let Some(j) = at {
        names.push(OsStr::from_bytes(&items[j].node.name));
        at = items[j].parent.map(|p| p as usize);
    }
    names.iter().rev().collect()
}

/// How many directories `items[i]` is below the top of the restore.
fn depth(items: &[Item], i: usize) -> usize {
    std::iter::successors(items[i].parent, |&p| items[p as usize].parent).count()
}

/// A file range that wants a blob.
#[derive(Clone, Copy)]
struct Target {
    file: usize,
    offset: u64,
}

struct Run<'a> {
    repo: &'a Repository,
    options: &'a RestoreOptions,
    progress: &'a Progress,
    observer: &'a dyn Observer,
    errors: AtomicU64,
    bytes_written: AtomicU64,
    checked_dirs: Mutex<HashSet<PathBuf>>,
    /// Item indexes of files some of whose bytes were not written.
    failed_files: Mutex<HashSet<usize>>,
}

impl Run<'_> {
    fn warn(&self, path: &Path, message: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.progress.errors.fetch_add(1, Ordering::Relaxed);
        self.observer.warning(path, message);
    }

    /// Reports a failure to write part of the file `items[file]`: the file is removed at the
    /// end of the write phase instead of getting its metadata.
    fn fail_file(&self, items: &[Item], file: usize, message: &str) {
        self.warn(&rel(items, file), message);
        self.failed_files.lock().expect("failed files").insert(file);
    }

    fn interrupted(&self) -> bool {
        self.options.interrupt.load(Ordering::Relaxed)
    }
}

/// Restores `snapshot` according to `options`.
pub fn restore(
    repo: &Repository,
    snapshot: &Snapshot,
    options: &RestoreOptions,
    progress: &Progress,
    observer: &dyn Observer,
) -> Result<RestoreSummary> {
    let span =
        tracing::info_span!("restore", repo = %repo.location(), target = %options.target.display());
    let _enter = span.enter();
    let filter = Filter::new(&options.includes, &options.excludes)?;
    progress.set_phase("planning");
    let items = plan(repo, snapshot, options.subpath.as_deref(), &filter)?;
    fs::create_dir_all(&options.target)
        .with_context(|| format!("cannot create target directory {}", options.target.display()))?;
    Run::new(repo, options, progress, observer).write(&items)
}

impl<'a> Run<'a> {
    fn new(
        repo: &'a Repository,
        options: &'a RestoreOptions,
        progress: &'a Progress,
        observer: &'a dyn Observer,
    ) -> Self {
        Run {
            repo,
            options,
            progress,
            observer,
            errors: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            checked_dirs: Mutex::new(HashSet::new()),
            failed_files: Mutex::new(HashSet::new()),
        }
    }

    /// The stages after the plan, in order.
    fn write(&self, items: &[Item]) -> Result<RestoreSummary> {
        let mut summary =
            RestoreSummary { dirs_restored: create_dirs(self, items), ..RestoreSummary::default() };
        let mut files = prepare_files(self, items, &mut summary);
        write_contents(self, items, &files);
        if self.interrupted() {
            return Err(Interrupted.into());
        }
        discard_failed(self, items, &mut files, &mut summary);
        summary.other_restored = create_others(self, items, &files);
        apply_metadata(self, items, &files);
        if self.options.verify {
            summary.files_verified = verify(self, items, &files);
            discard_failed(self, items, &mut files, &mut summary);
        }
        summary.files_restored = files.written.len() as u64;
        summary.bytes_written = self.bytes_written.load(Ordering::Relaxed);
        summary.errors = self.errors.load(Ordering::Relaxed);
        Ok(summary)
    }
}
