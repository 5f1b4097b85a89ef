//! Everything that is not a directory or a regular file's bytes: hardlinks, symlinks,
//! devices and fifos. Sockets are not restored.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use cairn_format::tree::NodeKind;
use nix::sys::stat::SFlag;

use super::create::{Files, ensure_dir, remove_any};
use super::{Item, Overwrite, Run, rel};
use crate::metadata;

/// Symlinks, hardlinks, devices and fifos. Returns how many were made.
pub(super) fn create_others(run: &Run<'_>, items: &[Item], files: &Files) -> u64 {
    let mut made = 0;
    for i in 0..items.len() {
        let Some(result) = create_other(run, items, files, i) else {
            continue;
        };
        match result {
            Ok(true) => made += 1,
            Ok(false) => {}
            Err(e) => {
                run.warn(&run.options.target.join(rel(items, i)), &format!("cannot create: {e}"));
            }
        }
    }
    made
}

/// Makes `items[i]` if it is something this stage makes; whether it made it.
fn create_other(
    run: &Run<'_>,
    items: &[Item],
    files: &Files,
    i: usize,
) -> Option<io::Result<bool>> {
    let node = &items[i].node;
    let rel = rel(items, i);
    Some(match &node.kind {
        // A socket is only meaningful to the process that bound it.
        NodeKind::Directory { .. } | NodeKind::Socket => return None,
        NodeKind::File { .. } => {
            let first = files.links.get(&i).filter(|_| !files.skipped.contains(&i))?;
            let source = run.options.target.join(self::rel(items, *first));
            replace(run, &rel, |p| fs::hard_link(&source, p))
        }
        NodeKind::Symlink { target } => {
            replace(run, &rel, |p| std::os::unix::fs::symlink(OsStr::from_bytes(target), p))
        }
        NodeKind::BlockDevice { rdev } => make_node(run, &rel, SFlag::S_IFBLK, node.mode, *rdev),
        NodeKind::CharDevice { rdev } => make_node(run, &rel, SFlag::S_IFCHR, node.mode, *rdev),
        NodeKind::Fifo => make_node(run, &rel, SFlag::S_IFIFO, node.mode, 0),
    })
}

/// Creates something at `rel` with `create`, first removing what is there if the overwrite
/// policy allows. Returns whether anything was created.
fn replace(
    run: &Run<'_>,
    rel: &Path,
    create: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<bool> {
    if let Some(parent) = rel.parent() {
        ensure_dir(run, parent)?;
    }
    let path = run.options.target.join(rel);
    if fs::symlink_metadata(&path).is_ok() {
        if run.options.overwrite != Overwrite::Always {
            return Ok(false);
        }
        remove_any(&path)?;
    }
    create(&path)?;
    Ok(true)
}

fn make_node(run: &Run<'_>, rel: &Path, kind: SFlag, mode: u32, rdev: u64) -> io::Result<bool> {
    if kind != SFlag::S_IFIFO && !metadata::running_as_root() {
        run.observer.warning(rel, "device node not restored: creating devices needs root");
        return Ok(false);
    }
    replace(run, rel, |path| {
        let perm = nix::sys::stat::Mode::from_bits_truncate(mode);
        nix::sys::stat::mknod(path, kind, perm, rdev).map_err(io::Error::from)
    })
}
