//! Maps lost blobs to what they cost: for every snapshot, the files and directories that can
//! no longer be restored completely. Subtrees known to contain no loss are skipped in later
//! snapshots, so a repository of many similar snapshots is walked about once.

use std::collections::HashSet;

use anyhow::Result;
use cairn_format::tree::{Node, Tree};
use cairn_format::{BlobId, Error, Repository, SnapshotId};

use super::Affected;
use crate::walk::{Listing, Place, Visitor, Walker};

/// Files and directories of each snapshot that touch a lost blob.
pub(super) fn affected_paths(
    repo: &Repository,
    snapshots: &[(SnapshotId, BlobId)],
    lost: &HashSet<BlobId>,
) -> Result<Vec<Affected>> {
    let mut mapper = Mapper {
        snapshot: None,
        lost,
        clean: HashSet::new(),
        dirty: HashSet::new(),
        file: LostInFile::default(),
        out: Vec::new(),
    };
    let mut walker = Walker::with_paths(repo);
    for (snapshot, tree) in snapshots {
        mapper.snapshot = Some(*snapshot);
        walker.walk(tree, &mut mapper)?;
    }
    Ok(mapper.out)
}

struct Mapper<'a> {
    snapshot: Option<SnapshotId>,
    lost: &'a HashSet<BlobId>,
    /// Trees walked to the end with no loss under them: skipped from then on.
    clean: HashSet<BlobId>,
    /// Trees with a loss under them.
    dirty: HashSet<BlobId>,
    /// The file being walked.
    file: LostInFile,
    out: Vec<Affected>,
}

/// What a file's walk found lost.
#[derive(Default)]
struct LostInFile {
    bytes: u64,
    /// Part of its content list is lost: where the rest lies is then unknown.
    list: bool,
}

impl Mapper<'_> {
    fn report(&mut self, at: &Place, lost_bytes: u64, kind: &'static str) {
        self.dirty.extend(at.trees());
        let snapshot = self.snapshot.expect("set before each walk");
        self.out.push(Affected {
            snapshot,
            path: at.path().to_string_lossy().into_owned(),
            lost_bytes,
            kind,
        });
    }
}

impl Visitor for Mapper<'_> {
    fn reach(&mut self, id: &BlobId, listing: Listing, _: bool, at: &Place) -> Result<bool> {
        let lost = self.lost.contains(id);
        match listing {
            Listing::Tree if lost => self.report(at, 0, "directory"),
            Listing::Tree => return Ok(!self.clean.contains(id)),
            Listing::ContentNode => self.file.list |= lost,
        }
        Ok(!lost)
    }

    fn data(&mut self, id: &BlobId, length: u32, _: bool, _: &Place) -> Result<()> {
        if self.lost.contains(id) {
            self.file.bytes += u64::from(length);
        }
        Ok(())
    }

    fn node(&mut self, _: &Node, _: &Place) -> Result<bool> {
        self.file = LostInFile::default();
        Ok(true)
    }

    fn file_done(&mut self, node: &Node, at: &Place) -> Result<()> {
        let file = std::mem::take(&mut self.file);
        let lost_bytes = if file.list { node.size.max(1) } else { file.bytes };
        if lost_bytes > 0 {
            self.report(at, lost_bytes, "file");
        }
        Ok(())
    }

    fn leave(&mut self, id: &BlobId, _: &Tree, _: &Place) -> Result<()> {
        if !self.dirty.contains(id) {
            self.clean.insert(*id);
        }
        Ok(())
    }

    fn failed(&mut self, _: &BlobId, listing: Listing, _: Error, at: &Place) -> Result<()> {
        match listing {
            Listing::Tree => self.report(at, 0, "directory"),
            Listing::ContentNode => self.file.list = true,
        }
        Ok(())
    }
}
