//! Maps lost blobs to what they cost: for every snapshot, the files and directories that can
//! no longer be restored completely. Subtrees known to contain no loss are skipped in later
//! snapshots, so a repository of many similar snapshots is walked about once.

use std::collections::{HashMap, HashSet};

use cairn_format::content::ContentEntry;
use cairn_format::tree::NodeKind;
use cairn_format::{BlobId, Repository, SnapshotId};

use super::Affected;

/// Files and directories of each snapshot that touch a lost blob.
pub(super) fn affected_paths(
    repo: &Repository,
    snapshots: &[(SnapshotId, BlobId)],
    lost: &HashSet<BlobId>,
) -> Vec<Affected> {
    let mut mapper = Mapper {
        repo,
        lost,
        clean_trees: HashMap::new(),
        out: Vec::new(),
    };
    for (snapshot, tree) in snapshots {
        mapper.tree(*snapshot, tree, "/");
    }
    mapper.out
}

struct Mapper<'a> {
    repo: &'a Repository,
    lost: &'a HashSet<BlobId>,
    /// Trees already walked, and whether they hold no loss.
    clean_trees: HashMap<BlobId, bool>,
    out: Vec<Affected>,
}

impl Mapper<'_> {
    /// Walks a tree, reporting losses under `path`; returns whether it holds none.
    fn tree(&mut self, snapshot: SnapshotId, id: &BlobId, path: &str) -> bool {
        if self.clean_trees.get(id) == Some(&true) {
            return true;
        }
        let tree = if self.lost.contains(id) {
            None
        } else {
            self.repo.load_tree(id).ok()
        };
        let Some(tree) = tree else {
            self.out.push(Affected {
                snapshot,
                path: path.to_string(),
                lost_bytes: 0,
                kind: "directory",
            });
            self.clean_trees.insert(*id, false);
            return false;
        };
        let mut clean = true;
        for node in &tree.nodes {
            let child = format!(
                "{}/{}",
                path.trim_end_matches('/'),
                String::from_utf8_lossy(&node.name)
            );
            match &node.kind {
                NodeKind::Directory { subtree } => clean &= self.tree(snapshot, subtree, &child),
                NodeKind::File { content } => {
                    let lost_bytes = self.lost_in_file(content, node.size);
                    if lost_bytes > 0 {
                        clean = false;
                        self.out.push(Affected {
                            snapshot,
                            path: child,
                            lost_bytes,
                            kind: "file",
                        });
                    }
                }
                _ => {}
            }
        }
        self.clean_trees.insert(*id, clean);
        clean
    }

    /// Bytes of a file that cannot be restored: its lost chunks, or all of it when part of
    /// its content list is lost (where the rest lies is then unknown).
    fn lost_in_file(&self, content: &cairn_format::content::Content, size: u64) -> u64 {
        let (mut lost_bytes, list_lost) = (0, std::cell::Cell::new(false));
        content.visit_blobs(
            &|id| self.repo.read_blob(id),
            &mut |node| {
                let lost = self.lost.contains(node);
                list_lost.set(list_lost.get() || lost);
                !lost
            },
            &mut |entry| {
                if let ContentEntry::Data { id, length } = entry
                    && self.lost.contains(id)
                {
                    lost_bytes += u64::from(*length);
                }
            },
            &mut |_, _| list_lost.set(true),
        );
        if list_lost.get() {
            size.max(1)
        } else {
            lost_bytes
        }
    }
}
