//! The last stage: ownership, xattrs, modes and times.

use std::fs;

use cairn_format::tree::NodeKind;

use super::create::Files;
use super::{Item, Run, depth, rel};
use crate::metadata;

/// Ownership, xattrs, modes and times: files and others first, then directories deepest
/// first so creating entries no longer changes a directory's mtime.
pub(super) fn apply_metadata(run: &Run<'_>, items: &[Item], files: &Files) {
    let as_root = metadata::running_as_root();
    let mut dirs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if matches!(item.node.kind, NodeKind::Directory { .. }) {
            dirs.push(i);
            continue;
        }
        if files.skipped.contains(&i) || matches!(item.node.kind, NodeKind::Socket) {
            continue;
        }
        let path = run.options.target.join(rel(items, i));
        if fs::symlink_metadata(&path).is_err() {
            continue; // not created (already reported)
        }
        if let Err(e) = metadata::apply(&path, &item.node, as_root) {
            run.warn(&path, &format!("cannot set metadata: {e}"));
        }
    }
    dirs.sort_by_key(|&i| std::cmp::Reverse(depth(items, i)));
    for i in dirs {
        let path = run.options.target.join(rel(items, i));
        if let Err(e) = metadata::apply(&path, &items[i].node, as_root) {
            run.warn(&path, &format!("cannot set metadata: {e}"));
        }
    }
}
