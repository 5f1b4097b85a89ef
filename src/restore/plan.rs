//! The plan: the walk of the snapshot's tree that lists what to restore, parents before
//! children, with include and exclude patterns matched against full snapshot paths.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind, Tree};
use cairn_format::{BlobId, Error, Repository};
use globset::GlobSet;

use super::Item;
use crate::walk::{Listing, Place, Visitor, Walker};

/// Include and exclude patterns, matched against a node's full path in the snapshot.
pub(super) struct Filter {
    includes: Option<GlobSet>,
    excludes: GlobSet,
}

impl Filter {
    pub(super) fn new(includes: &[String], excludes: &[String]) -> Result<Self> {
        Ok(Self {
            includes: if includes.is_empty() {
                None
            } else {
                Some(crate::pattern::compile(includes)?)
            },
            excludes: crate::pattern::compile(excludes)?,
        })
    }
}

/// Lists what to restore, parents before children.
pub(super) fn plan(
    repo: &Repository,
    snapshot: &Snapshot,
    subpath: Option<&Path>,
    filter: &Filter,
) -> Result<Vec<Item>> {
    let subpath = subpath.unwrap_or(Path::new("/"));
    let full: PathBuf = std::iter::once(Component::RootDir)
        .chain(subpath.components().filter(|c| matches!(c, Component::Normal(_))))
        .collect();
    let root = match crate::dump::find_node(repo, snapshot, subpath)? {
        None => snapshot.tree,
        Some(Node { kind: NodeKind::Directory { subtree }, .. }) => subtree,
        Some(node) => {
            let included = filter.includes.as_ref().is_none_or(|s| s.is_match(&full));
            let wanted = included && !filter.excludes.is_match(&full);
            return Ok(if wanted { vec![Item { parent: None, node }] } else { Vec::new() });
        }
    };
    let mut planner = Planner { filter, items: Vec::new(), open: Vec::new() };
    Walker::with_paths(repo).walk_at(&root, &full, &mut planner)?;
    let mut items = planner.items;
    items.shrink_to_fit(); // the list outlives its growth: give back up to half of it
    Ok(items)
}

/// Lists the included nodes of a tree, parents before children. A directory is listed when
/// it is included or anything under it is.
struct Planner<'a> {
    filter: &'a Filter,
    items: Vec<Item>,
    /// The directories being walked, innermost last.
    open: Vec<OpenDir>,
}

struct OpenDir {
    item: u32,
    included: bool,
    /// Whether anything under it was listed.
    any: bool,
}

impl Planner<'_> {
    fn push(&mut self, node: &Node) -> Result<u32> {
        let at = u32::try_from(self.items.len()).context("too many items to restore")?;
        let parent = self.open.last().map(|dir| dir.item);
        self.items.push(Item { parent, node: node.clone() });
        Ok(at)
    }

    fn note_listed(&mut self) {
        if let Some(dir) = self.open.last_mut() {
            dir.any = true;
        }
    }
}

impl Visitor for Planner<'_> {
    fn reach(&mut self, _: &BlobId, _: Listing, _: bool, _: &Place) -> Result<bool> {
        Ok(true) // a directory stored twice is restored twice
    }

    fn node(&mut self, node: &Node, at: &Place) -> Result<bool> {
        let filter = self.filter;
        if filter.excludes.is_match(at.path()) {
            return Ok(false);
        }
        let included = self.open.last().is_some_and(|dir| dir.included)
            || filter.includes.as_ref().is_none_or(|s| s.is_match(at.path()));
        if let NodeKind::Directory { .. } = node.kind {
            let item = self.push(node)?;
            self.open.push(OpenDir { item, included, any: false });
            return Ok(true);
        }
        if included {
            self.push(node)?;
            self.note_listed();
        }
        Ok(false)
    }

    fn leave(&mut self, _: &BlobId, _: &Tree, at: &Place) -> Result<()> {
        if at.trees().len() == 1 {
            return Ok(()); // the top of the restore, which is not an item
        }
        let dir = self.open.pop().expect("one open directory per tree below the top");
        if dir.any || dir.included {
            self.note_listed();
        } else {
            self.items.truncate(dir.item as usize); // nothing included: left out
        }
        Ok(())
    }

    fn failed(&mut self, id: &BlobId, _: Listing, error: Error, at: &Place) -> Result<()> {
        bail!("directory {} (tree {id}) does not read: {error}", at.path().display())
    }
}
