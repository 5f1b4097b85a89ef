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

/// Equal but for the access time; directories compared entry by entry where their trees
/// differ.
fn same_node(repo: &Repository, old: &Node, new: &Node) -> Result<bool> {
    let same = masked(old) == masked(new);
    match (&old.kind, &new.kind) {
        (Directory { subtree: x }, Directory { subtree: y }) if same && x != y => {
            same_tree(repo, x, y)
        }
        _ => Ok(same),
    }
}

fn same_tree(repo: &Repository, old: &BlobId, new: &BlobId) -> Result<bool> {
    let (old, new) = (repo.load_tree(old)?, repo.load_tree(new)?);
    if old.nodes.len() != new.nodes.len() {
        return Ok(false);
    }
    for (a, b) in old.nodes.iter().zip(&new.nodes) {
        if a.name != b.name || !same_node(repo, a, b)? {
            return Ok(false);
        }
    }
    Ok(true)
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
