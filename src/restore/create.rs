//! Directories and files, created before any content is written: files at their full size,
//! so ranges never written stay holes.

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use cairn_format::tree::{Node, NodeKind};

use super::{Item, Overwrite, RestoreSummary, Run, rel};
use crate::metadata;

/// Creates every directory of the restore; returns how many exist afterwards.
pub(super) fn create_dirs(run: &Run<'_>, items: &[Item]) -> u64 {
    let mut created = 0;
    for (i, item) in items.iter().enumerate() {
        if !matches!(item.node.kind, NodeKind::Directory { .. }) {
            continue;
        }
        let rel = rel(items, i);
        match ensure_dir(run, &rel) {
            Ok(()) => created += 1,
            Err(e) => run.warn(&rel, &format!("cannot create directory: {e}")),
        }
    }
    created
}

/// Makes sure `rel` (relative to the target) is a real directory, creating what is missing
/// and refusing to pass through anything that is not a directory. Each directory is checked
/// once per restore: parents are ensured before their children, so usually only the last
/// component of `rel` is new (checking every component every time is quadratic in depth).
pub(super) fn ensure_dir(run: &Run<'_>, rel: &Path) -> io::Result<()> {
    let known = deepest_checked(run, rel);
    let mut so_far = known.to_path_buf();
    for component in rel.strip_prefix(known).unwrap_or(rel).components() {
        so_far.push(component);
        ensure_real_dir(run, &run.options.target.join(&so_far))?;
        (run.checked_dirs.lock().expect("dir cache")).insert(so_far.clone());
    }
    Ok(())
}

/// The deepest ancestor of `rel` already checked (the empty path, the target, when none is).
fn deepest_checked<'p>(run: &Run<'_>, rel: &'p Path) -> &'p Path {
    let checked = run.checked_dirs.lock().expect("dir cache");
    (rel.ancestors())
        .find(|dir| dir.as_os_str().is_empty() || checked.contains(*dir))
        .unwrap_or(Path::new(""))
}

/// Makes `path` a directory: creates it, or replaces a non-directory when overwriting.
fn ensure_real_dir(run: &Run<'_>, path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) if run.options.overwrite == Overwrite::Always => {
            fs::remove_file(path)?;
            fs::create_dir(path)
        }
        Ok(_) => Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists and is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(path),
        Err(e) => Err(e),
    }
}

/// Regular files to write (index into items), and hardlinks to make to them.
#[derive(Default)]
pub(super) struct Files {
    pub written: Vec<usize>,
    /// item index -> item index of the file it is a hardlink of.
    pub links: HashMap<usize, usize>,
    /// Files skipped because they exist (overwrite policy).
    pub skipped: HashSet<usize>,
}

pub(super) fn prepare_files(run: &Run<'_>, items: &[Item], summary: &mut RestoreSummary) -> Files {
    let mut files = Files::default();
    let mut first_of_inode: HashMap<(u64, u64), usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let NodeKind::File { .. } = item.node.kind else {
            continue;
        };
        if item.node.nlink > 1 && item.node.inode != 0 {
            if let Some(&first) = first_of_inode.get(&(item.node.device, item.node.inode)) {
                files.links.insert(i, first);
                continue;
            }
            first_of_inode.insert((item.node.device, item.node.inode), i);
        }
        let rel = rel(items, i);
        let path = run.options.target.join(&rel);
        if should_skip(&path, &item.node, run.options.overwrite) {
            files.skipped.insert(i);
            summary.files_skipped += 1;
            continue;
        }
        summary.total_bytes += item.node.size;
        match create_file(run, &rel, item.node.size) {
            Ok(()) => files.written.push(i),
            Err(e) => run.warn(&path, &format!("cannot create file: {e}")),
        }
    }
    run.progress.add_total(files.written.len() as u64, summary.total_bytes);
    files
}

fn should_skip(path: &Path, node: &Node, overwrite: Overwrite) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    match overwrite {
        Overwrite::Always => false,
        Overwrite::Never => true,
        Overwrite::IfChanged => {
            meta.is_file() && meta.size() == node.size && metadata::mtime_ns(&meta) == node.mtime_ns
        }
    }
}

/// Creates (or truncates) a file at its final size: never-written ranges stay holes.
fn create_file(run: &Run<'_>, rel: &Path, size: u64) -> io::Result<()> {
    if let Some(parent) = rel.parent() {
        ensure_dir(run, parent)?;
    }
    let path = run.options.target.join(rel);
    if fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file()) {
        remove_any(&path)?;
    }
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    file.set_len(size)
}

pub(super) fn remove_any(path: &Path) -> io::Result<()> {
    if fs::symlink_metadata(path)?.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}
