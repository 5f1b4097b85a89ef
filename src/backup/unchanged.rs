//! `--skip-if-unchanged`: whether a finished walk found what the parent snapshot holds. Only
//! the backed-up paths count, not the directories above them (whose times change with any
//! neighbour), and access times do not count (the parent backup's own reads move them).

use std::path::PathBuf;

use anyhow::Result;
use cairn_format::tree::Node;
use cairn_format::tree::NodeKind::{self, Directory};
use cairn_format::{BlobId, Repository};

use crate::dump::find_node_in;

/// Whether every backed-up path is, below `root`, what it is below `parent_root`.
pub(super) fn same_as_parent(
    repo: &Repository,
    parent_root: &BlobId,
    root: &BlobId,
    paths: &[PathBuf],
) -> Result<bool> {
    if parent_root == root {
        return Ok(true);
    }
    for path in paths {
        let old = find_node_in(repo, parent_root, path).ok().flatten();
        let new = find_node_in(repo, root, path)?;
        match (old, new) {
            (Some(old), Some(new)) if same_node(repo, &old, &new)? => {}
            _ => return Ok(false),
        }
    }
    Ok(!paths.is_empty())
}

/// Whether two nodes are equal but for access times, directories compared entry by entry
/// where their trees differ (on a stack of its own: trees may be thousands of levels deep).
fn same_node(repo: &Repository, old: &Node, new: &Node) -> Result<bool> {
    let mut pending = Vec::new();
    if !same_entry(old, new, &mut pending) {
        return Ok(false);
    }
    while let Some((old, new)) = pending.pop() {
        let (old, new) = (repo.load_tree(&old)?, repo.load_tree(&new)?);
        let mut pairs = old.nodes.iter().zip(&new.nodes);
        let same = old.nodes.len() == new.nodes.len()
            && pairs.all(|(a, b)| same_entry(a, b, &mut pending));
        if !same {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Equal but for the access time; two directories whose trees differ go to `pending`.
fn same_entry(old: &Node, new: &Node, pending: &mut Vec<(BlobId, BlobId)>) -> bool {
    if let (Directory { subtree: x }, Directory { subtree: y }) = (&old.kind, &new.kind)
        && x != y
    {
        pending.push((*x, *y));
    }
    masked(old) == masked(new)
}

/// The node without what does not count: its access time, and a directory's subtree (which
/// [`same_node`] compares entry by entry).
fn masked(node: &Node) -> Node {
    let mut node = node.clone();
    node.atime_ns = 0;
    if let NodeKind::Directory { subtree } = &mut node.kind {
        *subtree = BlobId::default();
    }
    node
}
